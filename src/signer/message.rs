//! Off-chain signatures: what a message request signs and how it is hashed.
//!
//! The digest the human approves is computed here from the exact content, and the signer computes
//! it again before signing; a message is never signed from a digest alone.

use alloy::primitives::{B256, keccak256};

use crate::chain::tx::TxSignature;
use crate::eip712::TypedData;

/// The content of a signature request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// EIP-191 version 0x45 (`personal_sign`): the bytes, prefixed with
    /// `"\x19Ethereum Signed Message:\n"` and their length in decimal.
    Personal(Vec<u8>),
    /// EIP-712 typed data: keccak256(0x19 0x01 ‖ domainSeparator ‖ hashStruct(message)).
    Typed(Box<TypedData>),
}

impl Message {
    /// The 32 bytes the key signs.
    pub fn signing_hash(&self) -> B256 {
        match self {
            Self::Personal(bytes) => personal_hash(bytes),
            Self::Typed(data) => data.signing_hash(),
        }
    }
}

/// EIP-191 version 0x45: keccak256("\x19Ethereum Signed Message:\n" ‖ len(message) ‖ message).
pub fn personal_hash(message: &[u8]) -> B256 {
    let mut prefixed = format!("\x19Ethereum Signed Message:\n{}", message.len()).into_bytes();
    prefixed.extend_from_slice(message);
    keccak256(prefixed)
}

/// A 65-byte signature as wallets return it: r ‖ s ‖ v, with v 27 or 28.
pub fn rsv(signature: &TxSignature) -> [u8; 65] {
    let mut bytes = [0u8; 65];
    bytes[..32].copy_from_slice(&signature.r.to_be_bytes::<32>());
    bytes[32..64].copy_from_slice(&signature.s.to_be_bytes::<32>());
    bytes[64] = 27 + u8::from(signature.y_parity);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// EIP-191 "I♥SF" from eth-account's documentation and Anvil key 0's "hello" (eth-account
    /// and cast agree), both from ethereum-signing-vectors.json, typed in so they always run.
    #[test]
    fn personal_hashes_match_the_published_vectors() {
        assert_eq!(
            personal_hash("I♥SF".as_bytes()).to_string(),
            "0x1476abb745d423bf09273f1afd887d951181d25adc66c4834a70491911b7f750"
        );
        assert_eq!(
            personal_hash(b"hello").to_string(),
            "0x50b2c43fd39106bafbba0da34fc430e1f91e3c96ea2acee2bc34119f92b37750"
        );
        assert_eq!(
            Message::Personal(b"hello".to_vec()).signing_hash(),
            personal_hash(b"hello")
        );
    }
}
