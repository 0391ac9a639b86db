//! The review of EIP-712 typed data: the domain, the primary type, every field of the message
//! (nested structs indented, arrays counted) and the three hashes, with warnings about the chain
//! and the verifying contract.

use alloy::primitives::{Address, U256};

use super::{Review, Severity, Text, Warning, finish, grouped};
use crate::eip712::{Node, TypedData};
use crate::untrusted::is_hidden;

/// Everything a typed-data review is made from.
#[derive(Debug, Clone)]
pub struct TypedInput<'a> {
    pub from_label: &'a str,
    pub from: Address,
    pub data: &'a TypedData,
    /// The network the request was made on, and its chain id.
    pub network: &'a str,
    pub chain_id: u64,
    /// The verifying contract's name when keyward knows it (a configured token, an address-book
    /// entry or an account).
    pub contract_name: Option<String>,
}

pub fn typed_data(input: &TypedInput<'_>) -> Review {
    let TypedInput {
        from_label,
        from,
        data,
        network,
        chain_id,
        ref contract_name,
    } = *input;
    let domain = data.domain();
    let mut warnings = Vec::new();
    let mut warn = |severity, text: &str| {
        warnings.push(Warning {
            severity,
            text: text.to_owned(),
            blocks: false,
        });
    };
    let app = domain
        .name
        .as_deref()
        .map(|name| format!(" for {}", quoted(name)))
        .unwrap_or_default();
    let title = format!("Sign {}{app} as {from_label}", data.primary_type());
    let mut text = Text(String::new());
    text.0.push_str(&format!("{title}\n{}\n", "-".repeat(64)));
    text.line(
        "Standard",
        "EIP-712 typed data: an off-chain signature that a contract may act on later",
    );
    text.line("From", from_label);
    text.more(grouped(from));

    let mut first = true;
    let mut domain_line = |text: &mut Text, value: String| {
        if first {
            text.line("Domain", value);
            first = false;
        } else {
            text.more(value);
        }
    };
    if let Some(name) = &domain.name {
        domain_line(&mut text, format!("name {}", quoted(name)));
    }
    if let Some(version) = &domain.version {
        domain_line(&mut text, format!("version {}", quoted(version)));
    }
    match domain.chain_id {
        Some(id) if id == U256::from(chain_id) => {
            domain_line(&mut text, format!("chain id {id} ({network})"));
        }
        Some(id) => {
            domain_line(
                &mut text,
                format!("chain id {id}: NOT {network}'s {chain_id}"),
            );
            warn(
                Severity::Critical,
                &format!(
                    "the domain names chain id {id}, not {network} ({chain_id}): the signature \
                     is for another chain"
                ),
            );
        }
        None => {
            domain_line(&mut text, "no chain id: valid on every chain".to_owned());
            warn(
                Severity::Warn,
                "the domain names no chain id, so the signature is valid on every chain",
            );
        }
    }
    match domain.verifying_contract {
        Some(contract) => {
            domain_line(
                &mut text,
                format!(
                    "verifying contract {}",
                    contract_name.as_deref().unwrap_or("(unknown to keyward)")
                ),
            );
            text.more(format!("  {}", grouped(contract)));
            if contract_name.is_none() {
                warn(
                    Severity::Warn,
                    "the verifying contract is not a configured token, an address-book entry or \
                     one of your accounts: check it against a trusted source",
                );
            }
        }
        None => domain_line(&mut text, "no verifying contract".to_owned()),
    }
    if let Some(salt) = domain.salt {
        domain_line(&mut text, format!("salt {salt}"));
    }
    if first {
        text.line("Domain", "empty");
    }

    if grants_unlimited(data) {
        warnings.push(Warning {
            severity: Severity::Critical,
            text: "UNLIMITED spending authorization: whoever holds this signature can let the \
                   spender take every token of this kind the account holds, until it expires \
                   or is revoked"
                .into(),
            blocks: false,
        });
    }
    text.line("Type", data.primary_type());
    match data.message() {
        Some(message) => {
            let mut lines = Vec::new();
            render(message, 0, &mut lines);
            let mut rows = lines.into_iter();
            if let Some(row) = rows.next() {
                text.line("Message", row);
            }
            for row in rows {
                text.more(row);
            }
        }
        None => text.line(
            "Message",
            "none: this signs the domain alone (primaryType EIP712Domain)",
        ),
    }
    text.line("Domain hash", data.domain_separator().to_string());
    if let Some(hash) = data.message_hash() {
        text.line("Message hash", hash.to_string());
    }
    text.line("Digest", data.signing_hash().to_string());
    finish(title, text, warnings)
}

/// One line per leaf, struct and array, indented two spaces per level.
fn render(node: &Node, depth: usize, lines: &mut Vec<String>) {
    match node {
        Node::Struct { members, .. } => {
            for member in members {
                let indent = "  ".repeat(depth);
                match &member.value {
                    Node::Struct { type_name, .. } => {
                        lines.push(format!("{indent}{}: {type_name}", member.name));
                        render(&member.value, depth + 1, lines);
                    }
                    Node::Array { items, .. } => {
                        lines.push(format!(
                            "{indent}{}: {} ({} item{})",
                            member.name,
                            member.type_name,
                            items.len(),
                            if items.len() == 1 { "" } else { "s" }
                        ));
                        render(&member.value, depth + 1, lines);
                    }
                    leaf => lines.push(format!("{indent}{}: {}", member.name, leaf_text(leaf))),
                }
            }
        }
        Node::Array { items, .. } => {
            let indent = "  ".repeat(depth);
            for (index, item) in items.iter().enumerate() {
                match item {
                    Node::Struct { type_name, .. } => {
                        lines.push(format!("{indent}[{index}]: {type_name}"));
                        render(item, depth + 1, lines);
                    }
                    Node::Array { type_name, items } => {
                        lines.push(format!(
                            "{indent}[{index}]: {type_name} ({} items)",
                            items.len()
                        ));
                        render(item, depth + 1, lines);
                    }
                    leaf => lines.push(format!("{indent}[{index}]: {}", leaf_text(leaf))),
                }
            }
        }
        leaf => lines.push(format!("{}{}", "  ".repeat(depth), leaf_text(leaf))),
    }
}

fn leaf_text(node: &Node) -> String {
    match node {
        Node::Address(address) => grouped(*address),
        Node::Uint(value) => value.to_string(),
        Node::Int(value) => value.to_string(),
        Node::Bool(value) => value.to_string(),
        Node::Bytes(bytes) | Node::FixedBytes(bytes) => format!("0x{}", hex::encode(bytes)),
        Node::String(text) => quoted(text),
        Node::Struct { type_name, .. } | Node::Array { type_name, .. } => type_name.clone(),
    }
}

/// A string in double quotes, with quotes, backslashes, line breaks and invisible characters
/// escaped, so that it cannot pass for review text.
fn quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if is_hidden(c) => out.push_str(&format!("\\u{{{:04x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether the typed data is a spending authorization without a limit: an EIP-2612 `Permit` of
/// the largest uint256, a DAI-style `Permit` with `allowed: true`, or a Permit2 permit
/// (`PermitSingle`, `PermitBatch`, `PermitTransferFrom`, `PermitBatchTransferFrom`) of the
/// largest amount its type holds.
pub fn grants_unlimited(data: &TypedData) -> bool {
    let Some(message) = data.message() else {
        return false;
    };
    let uint160_max = (U256::from(1u8) << 160) - U256::from(1u8);
    let unlimited =
        |node: Option<&Node>, max: U256| matches!(node, Some(Node::Uint(amount)) if *amount >= max);
    let each = |node: Option<&Node>, field: &str, max: U256| match node {
        Some(Node::Array { items, .. }) => {
            items.iter().any(|item| unlimited(member(item, field), max))
        }
        Some(item @ Node::Struct { .. }) => unlimited(member(item, field), max),
        _ => false,
    };
    match data.primary_type() {
        "Permit" => {
            unlimited(member(message, "value"), U256::MAX)
                || matches!(member(message, "allowed"), Some(Node::Bool(true)))
        }
        "PermitSingle" | "PermitBatch" => each(member(message, "details"), "amount", uint160_max),
        "PermitTransferFrom" | "PermitBatchTransferFrom" => {
            each(member(message, "permitted"), "amount", U256::MAX)
        }
        _ => false,
    }
}

fn member<'a>(node: &'a Node, name: &str) -> Option<&'a Node> {
    match node {
        Node::Struct { members, .. } => members
            .iter()
            .find(|member| member.name == name)
            .map(|member| &member.value),
        _ => None,
    }
}
