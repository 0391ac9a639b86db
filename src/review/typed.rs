//! The review of EIP-712 typed data: the domain, the primary type, every field of the message
//! (nested structs indented, arrays counted) and the three hashes, with warnings about the chain
//! and the verifying contract.

use alloy::primitives::{Address, U256};

use super::{Review, Severity, Text, Warning, escape, finish, grouped};
use crate::eip712::{Node, TypedData};

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
    /// The network's configured tokens: address, symbol, decimals.
    pub tokens: &'a [(Address, String, u8)],
}

pub fn typed_data(input: &TypedInput<'_>) -> Review {
    let TypedInput {
        from_label,
        from,
        data,
        network,
        chain_id,
        ref contract_name,
        tokens,
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
    let found = authorization(data);
    let token_amount = |grant: &Grant| {
        let configured = tokens.iter().find(|(address, ..)| *address == grant.token);
        let symbol =
            configured.map_or_else(|| "tokens".to_owned(), |(_, symbol, _)| symbol.clone());
        if grant.unlimited {
            format!("UNLIMITED {symbol}")
        } else {
            match configured {
                Some((_, symbol, decimals)) => {
                    format!(
                        "{} {symbol}",
                        crate::chain::units::format_units(grant.amount, *decimals)
                    )
                }
                None => format!("{} base units of tokens", grant.amount),
            }
        }
    };
    let title = match &found {
        Some(found) if found.grants.len() == 1 => format!(
            "Authorize spending of {} on {network}",
            token_amount(&found.grants[0])
        ),
        Some(found) => format!(
            "Authorize spending of {} tokens on {network}",
            found.grants.len()
        ),
        None => format!("Sign {}{app} as {from_label}", data.primary_type()),
    };
    let mut text = Text(String::new());
    text.0.push_str(&format!("{title}\n{}\n", "-".repeat(64)));
    text.line(
        "Standard",
        "EIP-712 typed data: an off-chain signature that a contract may act on later",
    );
    text.line("From", from_label);
    text.more(grouped(from));
    if let Some(found) = &found {
        match found.spender {
            Some(spender) => {
                text.line("Authorizes", "the spender");
                text.more(format!("  {}", grouped(spender)));
            }
            None => text.line("Authorizes", "a spender the data does not name"),
        }
        for grant in &found.grants {
            text.more(format!("to spend {}", token_amount(grant)));
            text.more(format!("  of the token {}", grouped(grant.token)));
            if let Some(expires) = grant.expires {
                text.more(format!("  until {}", when(expires)));
            }
        }
        if let Some(deadline) = found.deadline {
            text.more(format!("signature usable until {}", when(deadline)));
        }
    }

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

/// A string in double quotes, escaped so that it cannot pass for review text.
fn quoted(text: &str) -> String {
    format!("\"{}\"", escape(text))
}

/// A spending authorization recognized in typed data: EIP-2612 `Permit` (and DAI's variant)
/// and Uniswap Permit2's `PermitSingle`, `PermitBatch`, `PermitTransferFrom` and
/// `PermitBatchTransferFrom`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub spender: Option<Address>,
    pub grants: Vec<Grant>,
    /// Until when the signature may be used.
    pub deadline: Option<U256>,
}

/// One token the spender may move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub token: Address,
    pub amount: U256,
    /// The largest amount the field holds: everything, now and later.
    pub unlimited: bool,
    /// When the allowance itself ends (Permit2's `expiration`), if it does.
    pub expires: Option<U256>,
}

pub fn authorization(data: &TypedData) -> Option<Authorization> {
    let message = data.message()?;
    let uint160_max = (U256::from(1u8) << 160) - U256::from(1u8);
    let address = |node: Option<&Node>| match node {
        Some(Node::Address(address)) => Some(*address),
        _ => None,
    };
    let uint = |node: Option<&Node>| match node {
        Some(Node::Uint(value)) => Some(*value),
        _ => None,
    };
    let grant = |item: &Node, max: U256, expires: bool| {
        let amount = uint(member(item, "amount"))?;
        Some(Grant {
            token: address(member(item, "token"))?,
            amount,
            unlimited: amount >= max,
            expires: if expires {
                uint(member(item, "expiration"))
            } else {
                None
            },
        })
    };
    let grants = |node: Option<&Node>, max: U256, expires: bool| match node {
        Some(Node::Array { items, .. }) => {
            items.iter().map(|item| grant(item, max, expires)).collect()
        }
        Some(item @ Node::Struct { .. }) => grant(item, max, expires).map(|g| vec![g]),
        _ => None,
    };
    let spender = address(member(message, "spender"));
    match data.primary_type() {
        "Permit" => {
            let token = data.domain().verifying_contract?;
            let (amount, unlimited) = match (member(message, "value"), member(message, "allowed")) {
                (Some(Node::Uint(value)), _) => (*value, *value == U256::MAX),
                (_, Some(Node::Bool(allowed))) => {
                    (if *allowed { U256::MAX } else { U256::ZERO }, *allowed)
                }
                _ => return None,
            };
            Some(Authorization {
                spender,
                grants: vec![Grant {
                    token,
                    amount,
                    unlimited,
                    expires: None,
                }],
                deadline: uint(member(message, "deadline")).or(uint(member(message, "expiry"))),
            })
        }
        "PermitSingle" | "PermitBatch" => Some(Authorization {
            spender,
            grants: grants(member(message, "details"), uint160_max, true)?,
            deadline: uint(member(message, "sigDeadline")),
        }),
        "PermitTransferFrom" | "PermitBatchTransferFrom" => Some(Authorization {
            spender,
            grants: grants(member(message, "permitted"), U256::MAX, false)?,
            deadline: uint(member(message, "deadline")),
        }),
        _ => None,
    }
}

/// Whether the typed data authorizes spending without a limit.
pub fn grants_unlimited(data: &TypedData) -> bool {
    authorization(data).is_some_and(|found| found.grants.iter().any(|grant| grant.unlimited))
}

/// A date for a Unix time in a uint, or the number when it is past any date worth printing.
fn when(value: U256) -> String {
    match u64::try_from(value) {
        Ok(seconds) if seconds < 253_402_300_800 => super::utc(seconds),
        _ => format!("{value} (no practical end)"),
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
