//! Signers: turn an approved transaction into a signed one; never sign anything else or let a key
//! out.
//!
//! [`Signer`] accepts only an [`Approved`] value, which only the confirmation module can make, so
//! a path that skips policy or the human's approval does not compile. Before signing, the signer
//! re-encodes the transaction and compares its digest with the one the human approved; after
//! signing, it recovers the signer's address from the signature and compares it with the
//! account's. A mismatch at either point is refused.
//!
//! The keystore signer is [`keyring`]; the Ledger signer is [`ledger`], over `keyward-hardware`.

pub mod ecdsa;
pub mod keyring;
pub mod ledger;
pub mod message;

use alloy::primitives::{Address, B256};

use crate::chain::tx::{UnsignedTx, transaction_hash};
use crate::confirm::Approved;
pub use keyring::Keyring;
pub use message::Message;

/// A transaction signed and ready to broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTx {
    pub raw: Vec<u8>,
    pub hash: B256,
}

#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error(
        "the transaction to sign differs from the one approved (digest {signing} instead of \
         {approved}); nothing was signed"
    )]
    DigestMismatch { approved: B256, signing: B256 },

    #[error(
        "the signature recovers to {recovered:?} instead of the account {expected}; nothing was \
         sent"
    )]
    WrongSigner {
        expected: Address,
        recovered: Option<Address>,
    },

    #[error("the wallet is locked: approve again and give the password")]
    Locked,

    #[error("signing failed: {0}")]
    Sign(#[from] ecdsa::SignError),

    #[error("the account's key cannot be used: {0}")]
    Key(#[from] crate::keystore::KeystoreError),

    #[error(transparent)]
    Device(#[from] keyward_hardware::DeviceError),

    #[error(
        "the connected Ledger holds another key: at {path} it has {found}, but this account is \
         {expected}; connect the Ledger (and passphrase) you added the account with"
    )]
    OtherDevice {
        path: String,
        expected: Address,
        found: Address,
    },

    #[error("{0}")]
    Unsupported(&'static str),
}

/// Something that signs approved transactions for one address.
pub trait Signer {
    fn address(&self) -> Address;

    /// Signs exactly the approved transaction.
    fn sign_transaction(&self, approved: &Approved<UnsignedTx>) -> Result<SignedTx, SignerError>;

    /// Signs exactly the approved message; returns r ‖ s ‖ v.
    fn sign_message(&self, approved: &Approved<Message>) -> Result<[u8; 65], SignerError>;
}

/// Checks an approved message still hashes to the approved digest, before any signer signs it.
fn check_message_digest(approved: &Approved<Message>) -> Result<B256, SignerError> {
    let signing = approved.value().signing_hash();
    if signing != approved.digest() {
        return Err(SignerError::DigestMismatch {
            approved: approved.digest(),
            signing,
        });
    }
    Ok(signing)
}

/// Checks that a message signature recovers to `expected`, and encodes it.
fn finish_message(
    hash: &B256,
    signature: &crate::chain::tx::TxSignature,
    expected: Address,
) -> Result<[u8; 65], SignerError> {
    let recovered = ecdsa::recover(hash, signature);
    if recovered != Some(expected) {
        return Err(SignerError::WrongSigner {
            expected,
            recovered,
        });
    }
    Ok(message::rsv(signature))
}

/// Checks an approved transaction still has the approved digest, before any signer signs it.
fn check_digest(approved: &Approved<UnsignedTx>) -> Result<B256, SignerError> {
    let signing = approved.value().signing_hash();
    if signing != approved.digest() {
        return Err(SignerError::DigestMismatch {
            approved: approved.digest(),
            signing,
        });
    }
    Ok(signing)
}

/// Encodes a signature and checks that it recovers to `expected`.
fn finish(
    tx: &UnsignedTx,
    hash: &B256,
    signature: &crate::chain::tx::TxSignature,
    expected: Address,
) -> Result<SignedTx, SignerError> {
    let recovered = ecdsa::recover(hash, signature);
    if recovered != Some(expected) {
        return Err(SignerError::WrongSigner {
            expected,
            recovered,
        });
    }
    let raw = tx.encode_signed(signature);
    Ok(SignedTx {
        hash: transaction_hash(&raw),
        raw,
    })
}
