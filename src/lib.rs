//! keyward: a crypto-wallet MCP server that an AI assistant can use but never own.
//!
//! The model can read accounts and balances, prepare transfers and ask for signatures; only the
//! human authorizes a fund movement, on a channel the model can neither see nor forge. See
//! `DESIGN.md` in the shared folder for the trust model; each module's first lines say what it is
//! for and what it must never do.

pub mod abi;
pub mod audit;
pub mod build_info;
pub mod chain;
pub mod cli;
pub mod config;
pub mod confirm;
pub mod eip712;
pub mod files;
#[doc(hidden)]
pub mod fuzzing;
pub mod harden;
pub mod hd;
pub mod home;
pub mod http;
pub mod keystore;
pub mod mcp;
pub mod memory;
pub mod policy;
pub mod privacy;
pub mod review;
#[cfg(target_os = "linux")]
pub mod sandbox;
pub mod secret;
pub mod secret_env;
pub mod signer;
pub mod totp;
pub mod untrusted;
