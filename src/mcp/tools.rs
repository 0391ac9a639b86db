//! The tool list: names, descriptions, input and output schemas, annotations.
//!
//! Input schemas are written out here rather than derived, so that every bound the parser
//! enforces (`additionalProperties: false`, string lengths, patterns) is visible in one place and
//! pinned by the golden `tools/list` test. Descriptions state what a tool does; they give the model
//! no instructions.

use std::sync::{Arc, LazyLock};

use rmcp::handler::server::tool::schema_for_output;
use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};

use super::output::{
    AccountsOutput, BalancesOutput, ChainInfoOutput, RequestOutput, TokenInfoOutput,
    TransactionStatusOutput,
};

pub(crate) const ACCOUNTS: &str = "wallet_accounts";
pub(crate) const BALANCES: &str = "wallet_balances";
pub(crate) const TOKEN_INFO: &str = "wallet_token_info";
pub(crate) const CHAIN_INFO: &str = "wallet_chain_info";
pub(crate) const TRANSACTION_STATUS: &str = "wallet_transaction_status";
pub(crate) const TRANSFER: &str = "wallet_transfer";
pub(crate) const APPROVE_TOKEN: &str = "wallet_approve_token";
pub(crate) const REVOKE_APPROVAL: &str = "wallet_revoke_approval";
pub(crate) const SIGN_MESSAGE: &str = "wallet_sign_message";
pub(crate) const SIGN_TYPED_DATA: &str = "wallet_sign_typed_data";
pub(crate) const CONTRACT_CALL: &str = "wallet_contract_call";
pub(crate) const REQUEST_STATUS: &str = "wallet_request_status";

/// The argument names each tool takes, in schema order.
pub(crate) const ACCOUNTS_ARGS: &[&str] = &[];
pub(crate) const BALANCES_ARGS: &[&str] = &["account", "network", "block"];
pub(crate) const TOKEN_INFO_ARGS: &[&str] = &["token", "network", "block"];
pub(crate) const CHAIN_INFO_ARGS: &[&str] = &["network"];
pub(crate) const TRANSACTION_STATUS_ARGS: &[&str] = &["hash", "network"];
pub(crate) const TRANSFER_ARGS: &[&str] = &["from", "to", "amount", "asset", "network"];
pub(crate) const APPROVE_ARGS: &[&str] = &["from", "token", "spender", "amount", "network"];
pub(crate) const REVOKE_ARGS: &[&str] = &["from", "token", "spender", "network"];
pub(crate) const SIGN_MESSAGE_ARGS: &[&str] = &["from", "message", "encoding"];
/// The tools that file a request for the human: whatever they ask the key to sign.
pub(crate) const FUND_TOOLS: &[&str] = &[
    TRANSFER,
    APPROVE_TOKEN,
    REVOKE_APPROVAL,
    SIGN_MESSAGE,
    SIGN_TYPED_DATA,
    CONTRACT_CALL,
];
pub(crate) const SIGN_TYPED_DATA_ARGS: &[&str] = &["from", "typed_data", "network"];
pub(crate) const CONTRACT_CALL_ARGS: &[&str] =
    &["from", "to", "value", "function", "args", "data", "network"];
/// The longest message `wallet_sign_message` takes, in bytes.
pub(crate) const MAX_MESSAGE: usize = 4096;
pub(crate) const REQUEST_STATUS_ARGS: &[&str] = &["request_id", "wait_seconds"];

fn network() -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "maxLength": 32,
        "description": "A network name from keyward's configuration. Default: the configured default network."
    })
}

fn block() -> Value {
    json!({
        "type": "string",
        "pattern": "^(latest|[0-9]{1,20})$",
        "maxLength": 20,
        "description": "The block to read at: \"latest\" or a block number in decimal digits (a JSON number is also accepted). Default: latest."
    })
}

fn address(description: &str) -> Value {
    json!({
        "type": "string",
        "pattern": "^0x[0-9a-fA-F]{40}$",
        "minLength": 42,
        "maxLength": 42,
        "description": description,
    })
}

fn object(properties: Value, required: &[&str]) -> Arc<JsonObject> {
    let mut schema = json!({
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
    });
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    match schema {
        Value::Object(map) => Arc::new(map),
        _ => unreachable!("built as an object above"),
    }
}

fn from() -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "maxLength": 42,
        "description": "The sending account: its label, its 0x address, or its number from wallet_accounts. Default: account 0."
    })
}

fn amount(description: &str) -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "maxLength": 100,
        "pattern": "^[0-9]+(\\.[0-9]+)?$",
        "description": description,
    })
}

fn token() -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "maxLength": 42,
        "description": "The token: a symbol configured for the network, or the token contract's 0x address."
    })
}

/// A tool that asks for a fund movement: it changes nothing until the human approves.
fn moves_funds(title: &str) -> ToolAnnotations {
    ToolAnnotations::with_title(title)
        .read_only(false)
        .destructive(true)
        .idempotent(false)
        .open_world(true)
}

fn read_only(title: &str, open_world: bool) -> ToolAnnotations {
    ToolAnnotations::with_title(title)
        .read_only(true)
        .destructive(false)
        .idempotent(true)
        .open_world(open_world)
}

/// Every tool keyward serves, in a stable order.
pub(crate) static TOOLS: LazyLock<Vec<Tool>> = LazyLock::new(|| {
    vec![
        Tool::new(
            ACCOUNTS,
            "The wallet's accounts: number, label, checksummed address and signer kind, and whether \
             a TOTP second factor is enrolled. Available while the wallet is locked.",
            object(json!({}), &[]),
        )
        .with_raw_output_schema(schema_for_output::<AccountsOutput>())
        .annotate(read_only("Wallet accounts", false)),
        Tool::new(
            BALANCES,
            "ETH and configured-token balances of one account or of every account, each as exact \
             base units and as a decimal amount with its symbol. Tokens listed here are the ones \
             in keyward's configuration for the network.",
            object(
                json!({
                    "account": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 42,
                        "description": "One account: its label, its 0x address, or its number from wallet_accounts. Default: every account."
                    },
                    "network": network(),
                    "block": block(),
                }),
                &[],
            ),
        )
        .with_raw_output_schema(schema_for_output::<BalancesOutput>())
        .annotate(read_only("Wallet balances", true)),
        Tool::new(
            TOKEN_INFO,
            "What an ERC-20 contract reports about itself: name, symbol and decimals, read from the \
             chain. Names and symbols are chosen by whoever deployed the token, so they are \
             returned sanitized, marked untrusted, and flagged suspicious when they look like an \
             instruction, a URL, or another token. Tokens in keyward's configuration are marked \
             verified with their configured symbol.",
            object(
                json!({
                    "token": address("The token contract's address. A mixed-case address must have a valid EIP-55 checksum."),
                    "network": network(),
                    "block": block(),
                }),
                &["token"],
            ),
        )
        .with_raw_output_schema(schema_for_output::<TokenInfoOutput>())
        .annotate(read_only("Token information", true)),
        Tool::new(
            CHAIN_INFO,
            "The network's name and chain id, its latest block number and base fee. The chain id is \
             checked against keyward's configuration on every call.",
            object(json!({ "network": network() }), &[]),
        )
        .with_raw_output_schema(schema_for_output::<ChainInfoOutput>())
        .annotate(read_only("Chain information", true)),
        Tool::new(
            TRANSACTION_STATUS,
            "The status of a transaction by hash: pending, mined (with block, success and gas used) \
             or unknown to the node.",
            object(
                json!({
                    "hash": {
                        "type": "string",
                        "pattern": "^0x[0-9a-fA-F]{64}$",
                        "minLength": 66,
                        "maxLength": 66,
                        "description": "The transaction hash: 0x and 64 hexadecimal digits."
                    },
                    "network": network(),
                }),
                &["hash"],
            ),
        )
        .with_raw_output_schema(schema_for_output::<TransactionStatusOutput>())
        .annotate(read_only("Transaction status", true)),
        Tool::new(
            TRANSFER,
            "Prepares a transfer of ETH or an ERC-20 token and files it as a request that waits \
             for the wallet's owner. Nothing is sent until the owner reads keyward's review on \
             the approval page or in the terminal approver and approves it with a code from an \
             authenticator app; the model cannot approve. The result holds the request id, its \
             state, the approval page's URL and the full review. Policy limits and the review's \
             blocking checks (zero address, a failing simulation, insufficient balance) refuse a \
             request at once.",
            object(
                json!({
                    "from": from(),
                    "to": address("The recipient's address. A mixed-case address must have a valid EIP-55 checksum."),
                    "amount": amount("The amount in the asset's own units, as a decimal string such as \"1.5\" (a JSON number is also accepted). Never rounded: more decimals than the asset has is an error."),
                    "asset": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 42,
                        "description": "ETH, a token symbol configured for the network, or a token contract's 0x address. Default: ETH."
                    },
                    "network": network(),
                }),
                &["to", "amount"],
            ),
        )
        .with_raw_output_schema(schema_for_output::<RequestOutput>())
        .annotate(moves_funds("Transfer funds")),
        Tool::new(
            APPROVE_TOKEN,
            "Prepares an ERC-20 approve(spender, amount), which lets the spender move up to that \
             amount of the account's tokens, and files it as a request that waits for the \
             wallet's owner, as wallet_transfer does. An amount of \"unlimited\" asks for the \
             largest allowance, which the policy refuses unless it allows unlimited approvals.",
            object(
                json!({
                    "from": from(),
                    "token": token(),
                    "spender": address("The address allowed to spend. A mixed-case address must have a valid EIP-55 checksum."),
                    "amount": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 100,
                        "pattern": "^([0-9]+(\\.[0-9]+)?|unlimited)$",
                        "description": "The allowance in the token's units as a decimal string, or \"unlimited\"."
                    },
                    "network": network(),
                }),
                &["token", "spender", "amount"],
            ),
        )
        .with_raw_output_schema(schema_for_output::<RequestOutput>())
        .annotate(moves_funds("Approve token spending")),
        Tool::new(
            REVOKE_APPROVAL,
            "Prepares an ERC-20 approve(spender, 0), which removes the spender's allowance, and \
             files it as a request that waits for the wallet's owner, as wallet_transfer does.",
            object(
                json!({
                    "from": from(),
                    "token": token(),
                    "spender": address("The address whose allowance is removed."),
                    "network": network(),
                }),
                &["token", "spender"],
            ),
        )
        .with_raw_output_schema(schema_for_output::<RequestOutput>())
        .annotate(moves_funds("Revoke token approval")),
        Tool::new(
            SIGN_MESSAGE,
            "Asks the wallet's owner to sign an EIP-191 personal message (personal_sign) and files \
             it as a request that waits for the owner, as wallet_transfer does. The review shows \
             every byte: text as text with invisible characters escaped, anything else as hex. \
             32 bytes that are not text look like a hash, which is blind signing: refused unless \
             the policy allows it. Once approved, the request's result holds the 65-byte \
             signature (r, s, v).",
            object(
                json!({
                    "from": from(),
                    "message": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 2 * MAX_MESSAGE + 2,
                        "description": "The message: UTF-8 text, or with encoding \"hex\" the bytes as 0x-prefixed hexadecimal. At most 4096 bytes."
                    },
                    "encoding": {
                        "type": "string",
                        "enum": ["utf8", "hex"],
                        "description": "How message is written. Default: utf8."
                    },
                }),
                &["message"],
            ),
        )
        .with_raw_output_schema(schema_for_output::<RequestOutput>())
        .annotate(moves_funds("Sign a message")),
        Tool::new(
            SIGN_TYPED_DATA,
            "Asks the wallet's owner to sign EIP-712 typed data (eth_signTypedData_v4) and files \
             it as a request that waits for the owner, as wallet_transfer does. The parser is \
             strict: every field declared and present, integers in range, no floats, checksummed \
             addresses. The review shows the domain (name, version, chain id, verifying \
             contract), the primary type, every field, and the domain, message and signing \
             hashes; a domain for another chain or with no chain id, and an unknown verifying \
             contract, are warned about. Once approved, the request's result holds the 65-byte \
             signature.",
            object(
                json!({
                    "from": from(),
                    "typed_data": {
                        "type": "object",
                        "description": "The eth_signTypedData_v4 JSON {types, primaryType, domain, message}. The same JSON as a string is also accepted."
                    },
                    "network": network(),
                }),
                &["typed_data"],
            ),
        )
        .with_raw_output_schema(schema_for_output::<RequestOutput>())
        .annotate(moves_funds("Sign typed data")),
        Tool::new(
            CONTRACT_CALL,
            "Prepares a call to a contract and files it as a request that waits for the wallet's \
             owner, as wallet_transfer does. Give the function as a Solidity signature with its \
             arguments, or raw calldata: raw calldata is read against keyward's registry of \
             well-known functions (ERC-20, ERC-721, ERC-1155, WETH, multicall, Safe), and \
             calldata it cannot read is blind signing, refused unless the policy allows it. \
             Unlimited approvals are refused unless the policy allows them.",
            object(
                json!({
                    "from": from(),
                    "to": address("The contract's address. A mixed-case address must have a valid EIP-55 checksum."),
                    "value": amount("ETH to send with the call, as a decimal string such as \"0.1\". Default: 0."),
                    "function": {
                        "type": "string",
                        "minLength": 3,
                        "maxLength": 4096,
                        "description": "A Solidity function signature, such as \"transfer(address to, uint256 amount)\". Goes with args; not with data."
                    },
                    "args": {
                        "type": "array",
                        "description": "The function's arguments in order: addresses and bytes as 0x hex, integers as decimal strings, arrays and tuples as arrays."
                    },
                    "data": {
                        "type": "string",
                        "pattern": "^0x([0-9a-fA-F]{2})*$",
                        "maxLength": 16384,
                        "description": "Raw calldata as 0x hex, instead of function and args."
                    },
                    "network": network(),
                }),
                &["to"],
            ),
        )
        .with_raw_output_schema(schema_for_output::<RequestOutput>())
        .annotate(moves_funds("Call a contract")),
        Tool::new(
            REQUEST_STATUS,
            "The state of a request filed by any tool that moves funds or signs: \
             awaiting_approval, approved, awaiting_device (the human confirms on their Ledger), \
             rejected, expired, signed, broadcast, mined or failed, with the transaction hash and \
             receipt once sent, or the signature. With \
             wait_seconds it waits up to that long for the request to finish (mined, failed, \
             rejected or expired), reporting each step as a progress notification.",
            object(
                json!({
                    "request_id": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 40,
                        "description": "The request id a fund-movement tool returned."
                    },
                    "wait_seconds": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": 60,
                        "description": "Wait up to this many seconds for the request to finish. Default: 0."
                    },
                }),
                &["request_id"],
            ),
        )
        .with_raw_output_schema(schema_for_output::<RequestOutput>())
        .annotate(read_only("Request status", false)),
    ]
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_lists_match_the_schemas() {
        for (tool, args) in [
            (ACCOUNTS, ACCOUNTS_ARGS),
            (BALANCES, BALANCES_ARGS),
            (TOKEN_INFO, TOKEN_INFO_ARGS),
            (CHAIN_INFO, CHAIN_INFO_ARGS),
            (TRANSACTION_STATUS, TRANSACTION_STATUS_ARGS),
            (TRANSFER, TRANSFER_ARGS),
            (APPROVE_TOKEN, APPROVE_ARGS),
            (REVOKE_APPROVAL, REVOKE_ARGS),
            (SIGN_MESSAGE, SIGN_MESSAGE_ARGS),
            (SIGN_TYPED_DATA, SIGN_TYPED_DATA_ARGS),
            (CONTRACT_CALL, CONTRACT_CALL_ARGS),
            (REQUEST_STATUS, REQUEST_STATUS_ARGS),
        ] {
            let definition = TOOLS.iter().find(|t| t.name == tool).unwrap();
            let properties: Vec<&str> = definition.input_schema["properties"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            let mut expected = args.to_vec();
            expected.sort_unstable();
            let mut found = properties.clone();
            found.sort_unstable();
            assert_eq!(found, expected, "{tool}");
            assert_eq!(
                definition.input_schema["additionalProperties"], false,
                "{tool}"
            );
            let annotations = definition.annotations.as_ref().unwrap();
            let moves = FUND_TOOLS.contains(&tool);
            assert_eq!(annotations.read_only_hint, Some(!moves), "{tool}");
            assert_eq!(annotations.destructive_hint, Some(moves), "{tool}");
            assert!(definition.output_schema.is_some(), "{tool}");
        }
    }

    #[test]
    fn descriptions_state_facts_without_addressing_the_model() {
        for tool in TOOLS.iter() {
            let description = tool.description.as_deref().unwrap().to_lowercase();
            for imperative in [
                "you must",
                "always ",
                "never ",
                "ignore",
                "call this",
                "use this",
                "important",
            ] {
                assert!(
                    !description.contains(imperative),
                    "{}: {imperative}",
                    tool.name
                );
            }
        }
    }
}
