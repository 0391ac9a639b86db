//! The privacy filter: what leaves keyward for a third party, and what the model and the logs see.
//!
//! - [`egress`]: the one outbound HTTP client, with its host allowlist and the secret check.
//! - [`guard`]: fingerprints of the secrets held right now, for that check and for the logs.
//! - [`mask`]: shortened addresses for `privacy.model_view = "masked"` and for the logs, and
//!   redacted URLs.
//! - [`logs`]: the log writer that applies both to every line.
//!
//! The RPC provider, the LLM vendor behind the model, and anyone who reads a log are third
//! parties. This module must never send, show or log a secret, and must never be bypassed: the
//! chain reader has no other way out.

pub mod egress;
pub mod guard;
pub mod logs;
pub mod mask;
