//! Keys at rest: Web3 Secret Storage v3 keystore files and keyward's encrypted vault.
//!
//! Both store their secret in the same envelope ([`envelope`]): a password-derived key (scrypt, or
//! PBKDF2 on import), AES-128-CTR and a keccak MAC compared in constant time. Keystore files are for
//! interchange with geth and Foundry's cast ([`v3`]); the vault holds the wallet itself ([`vault`]).
//!
//! Nothing here prints, logs or returns a secret in an error. A wrong password is reported with one
//! fixed sentence that names neither the file nor a parameter.

mod envelope;
mod json;
pub mod v3;
pub mod vault;

use std::fmt;
use std::path::PathBuf;

use alloy::primitives::Address;

use crate::files::FileError;
use crate::hd::HdError;

#[cfg(test)]
pub(crate) use envelope::Kdf;
pub use envelope::{SCRYPT_LOG_N, SCRYPT_P, SCRYPT_R};
pub use v3::Keystore;
pub use vault::{Account, AccountKind, Label, UnlockedVault, Vault, find_account};

/// Which kind of file an error is about, for the one wrong-password sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Keystore,
    Vault,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Keystore => "keystore",
            Self::Vault => "vault",
        })
    }
}

/// Everything that can go wrong reading, decrypting or writing a keystore or the vault.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// The MAC did not match. Deliberately the same for a wrong password and a damaged file.
    #[error("invalid password or corrupted {0}")]
    WrongPassword(FileKind),

    #[error("not a JSON document (syntax error at line {line}, column {column})")]
    NotJson { line: usize, column: usize },

    #[error("malformed: `{field}` {problem}")]
    Malformed { field: String, problem: String },

    #[error(
        "unsupported {what}{}: keyward supports {supported}",
        name.as_deref().map(|name| format!(" \"{name}\"")).unwrap_or_default()
    )]
    Unsupported {
        what: &'static str,
        /// The name found in the file, when it is short and plain enough to repeat safely.
        name: Option<String>,
        supported: &'static str,
    },

    #[error(
        "the file asks for {what}, more memory or time than keyward allows; \
         re-encrypt the key with standard settings (scrypt n=262144, r=8, p=1) and try again"
    )]
    KdfTooExpensive { what: String },

    #[error("the keystore decrypted, but it does not hold a valid secp256k1 private key")]
    InvalidKey,

    #[error(
        "the keystore names address {stated} but its key controls {actual}: \
         the file was altered, do not use it"
    )]
    AddressMismatch { stated: Address, actual: Address },

    #[error("the operating system's random number generator failed: {0}")]
    Random(String),

    #[error(
        "vault.json was written by a newer keyward (format {0}); this keyward reads format 1, \
         so upgrade keyward"
    )]
    VaultVersion(u64),

    #[error("the vault's encrypted contents are damaged ({0}); restore vault.json from a backup")]
    CorruptVault(&'static str),

    #[error(
        "the vault's account list does not match its encrypted contents: vault.json was edited \
         outside keyward; restore it from a backup"
    )]
    VaultTampered,

    #[error("no wallet at {}: create one with `keyward init` (or pass --home to use another)", .0.display())]
    NoWallet(PathBuf),

    #[error("invalid label: {0}")]
    InvalidLabel(&'static str),

    #[error(
        "no such account: name it by its number, label or address as `keyward accounts` lists them"
    )]
    UnknownAccount,

    #[error("address {address} is already in the vault, as \"{label}\"")]
    DuplicateAddress { address: Address, label: Label },

    #[error("the label \"{0}\" is already taken (labels are compared without regard to case)")]
    DuplicateLabel(Label),

    #[error("the vault already holds 1000 accounts, the most it can hold")]
    TooManyAccounts,

    #[error("account \"{0}\" lives on a Ledger: its key never leaves the device")]
    OnLedger(Label),

    #[error(transparent)]
    File(#[from] FileError),

    #[error(transparent)]
    Hd(#[from] HdError),
}
