//! Tool errors, and the one place they become what the client sees.
//!
//! Every failure of a tool call is a [`ToolError`]. [`ToolError::into_result`] turns it into a
//! tool result with `isError: true`, a sentence saying what went wrong and what to do, and a
//! structured `error` object; it is an exhaustive match, so a new kind of failure cannot reach the
//! client without a decision about what it may say. Third-party text (an RPC error message) goes
//! only into its own untrusted field.

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Value, json};

use super::args::ArgError;
use crate::chain::ChainError;
use crate::keystore::KeystoreError;
use crate::review::Review;

#[derive(Debug)]
pub(crate) enum ToolError {
    Argument(ArgError),
    UnknownNetwork {
        name: String,
        known: Vec<String>,
    },
    UnknownAccount,
    Wallet(KeystoreError),
    Chain(ChainError),
    /// The policy or the review refused a fund movement.
    Refused {
        /// The configuration key, or "review" for a blocking warning.
        rule: String,
        message: String,
        /// The review that led to the refusal, when there was one.
        review: Option<Box<Review>>,
    },
    UnknownRequest,
    /// A 2026-07-28 retry's `requestState` was refused.
    RequestState(super::approval::SealError),
    /// keyward's own state could not be read or written.
    Unavailable(String),
    /// A bug in keyward, not in the call.
    Internal(&'static str),
}

impl From<ArgError> for ToolError {
    fn from(err: ArgError) -> Self {
        Self::Argument(err)
    }
}

impl From<ChainError> for ToolError {
    fn from(err: ChainError) -> Self {
        Self::Chain(err)
    }
}

impl ToolError {
    pub(crate) fn into_result(self) -> CallToolResult {
        let (kind, message, extra): (&str, String, Option<(&str, Value)>) = match self {
            Self::Argument(err) => ("invalid_argument", err.to_string(), None),
            Self::UnknownNetwork { name, known } => (
                "unknown_network",
                format!(
                    "no network is named \"{}\"; the configured networks are {}",
                    name.chars().take(32).collect::<String>(),
                    known.join(", ")
                ),
                None,
            ),
            Self::UnknownAccount => (
                "unknown_account",
                "no such account: name it by its label, its address or its number as \
                 wallet_accounts lists them"
                    .to_owned(),
                None,
            ),
            Self::Wallet(err) => match err {
                KeystoreError::NoWallet(_) => (
                    "no_wallet",
                    "keyward has no wallet yet: its owner creates one with `keyward init`"
                        .to_owned(),
                    None,
                ),
                other => (
                    "wallet_unreadable",
                    format!("the wallet cannot be read: {other}"),
                    None,
                ),
            },
            // The review's text is keyward's words; what the contract said stays in its own
            // untrusted fields.
            Self::Refused {
                rule,
                message,
                review,
            } => (
                "refused",
                message,
                Some((
                    "refusal",
                    json!({
                        "rule": rule,
                        "review": review.as_ref().map(|review| &review.text),
                        "contract_text": review.as_ref().map(|review| &review.contract_text),
                    }),
                )),
            ),
            Self::UnknownRequest => (
                "unknown_request",
                "no request has this id; request ids come from the tool that prepared the request"
                    .to_owned(),
                None,
            ),
            Self::RequestState(err) => ("request_state", err.to_string(), None),
            Self::Unavailable(problem) => (
                "unavailable",
                format!("keyward cannot handle fund movements right now: {problem}"),
                None,
            ),
            Self::Internal(what) => (
                "internal",
                format!("keyward failed internally: {what}; please report it"),
                None,
            ),
            Self::Chain(err) => match err {
                ChainError::Unreachable { .. } => ("rpc_unreachable", err.to_string(), None),
                ChainError::Untrusted { .. } => ("rpc_untrusted", err.to_string(), None),
                ChainError::Http { .. } => ("rpc_http_error", err.to_string(), None),
                ChainError::BadResponse { .. } => ("rpc_bad_response", err.to_string(), None),
                ChainError::WrongChain { .. } => ("wrong_chain", err.to_string(), None),
                ChainError::Setup => ("internal", err.to_string(), None),
                ChainError::Refused { .. } => ("egress_refused", err.to_string(), None),
                ChainError::Call { ref message, .. } => {
                    let message_json = serde_json::to_value(message).unwrap_or(Value::Null);
                    (
                        "rpc_error",
                        err.to_string(),
                        Some(("rpc_message", message_json)),
                    )
                }
            },
        };
        let mut error = json!({ "kind": kind, "message": message });
        if let Some((key, value)) = extra {
            error[key] = value;
        }
        let mut result = CallToolResult::error(vec![ContentBlock::text(message)]);
        result.structured_content = Some(json!({ "error": error }));
        result
    }
}
