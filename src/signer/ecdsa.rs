//! Software ECDSA on secp256k1: signs a 32-byte digest with a key keyward holds, and recovers the
//! address behind a signature.
//!
//! Signatures are RFC 6979 deterministic (no randomness to fail or leak through) and low-s (EIP-2),
//! and every signature is recovered and checked against the key's address before it is returned.
//! This module must never print, log or copy key material beyond the zeroizing signing key it
//! builds for one signature, and never decides what gets signed: the caller passes a digest the
//! human has already approved.

use alloy::primitives::{Address, B256, U256, keccak256};
use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};

use crate::chain::tx::TxSignature;
use crate::secret::PrivateKey;

/// Half the secp256k1 group order: EIP-2 rejects any s above it.
const HALF_ORDER: U256 = U256::from_be_bytes(alloy::hex!(
    "7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0"
));

/// Why a digest could not be signed. None carries key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("the private key is not a valid secp256k1 scalar")]
    InvalidKey,

    /// Ethereum's y_parity has no room for the x-reduced recovery bit; odds are about 2^-128.
    #[error("the signature needs a recovery id Ethereum cannot encode")]
    UnencodableRecoveryId,

    /// The fresh signature does not recover to the key's address: a fault, never sent out.
    #[error("the signature failed its self-check and was discarded")]
    SelfCheckFailed,
}

/// Signs a 32-byte prehash with RFC 6979 deterministic ECDSA on secp256k1, low-s normalized
/// (EIP-2).
pub fn sign_hash(key: &PrivateKey, hash: &B256) -> Result<TxSignature, SignError> {
    // from_slice borrows the 32 bytes in place; the SigningKey zeroizes its scalar on drop.
    let signing_key =
        SigningKey::from_slice(key.expose_secret()).map_err(|_| SignError::InvalidKey)?;
    // k256 normalizes s to the low half and flips the recovery id to match.
    let (signature, recovery_id) = signing_key.sign_prehash_recoverable(hash.as_slice());
    drop(signing_key);
    if recovery_id.is_x_reduced() {
        return Err(SignError::UnencodableRecoveryId);
    }
    let (r, s) = signature.split_bytes();
    let signature = TxSignature {
        y_parity: recovery_id.is_y_odd(),
        r: U256::from_be_slice(&r),
        s: U256::from_be_slice(&s),
    };
    // A signature over the wrong key or a corrupted computation would burn the approval and could
    // leak key bits; checking costs one recovery.
    if recover(hash, &signature) != Some(key.address()) {
        return Err(SignError::SelfCheckFailed);
    }
    Ok(signature)
}

/// Recovers the address that produced `signature` over `hash`; None if invalid (r or s
/// zero/out of range, high s, no point).
pub fn recover(hash: &B256, signature: &TxSignature) -> Option<Address> {
    // A high s is the malleated twin of a valid signature: accepting it would give one approval
    // two transaction hashes.
    if signature.s > HALF_ORDER {
        return None;
    }
    // from_scalars rejects zero and anything at or above the group order.
    let parsed = Signature::from_scalars(
        signature.r.to_be_bytes::<32>(),
        signature.s.to_be_bytes::<32>(),
    )
    .ok()?;
    let recovery_id = RecoveryId::new(signature.y_parity, false);
    let key = VerifyingKey::recover_from_prehash(hash.as_slice(), &parsed, recovery_id).ok()?;
    let point = key.to_sec1_point(false);
    // An uncompressed SEC1 point is 0x04 || X || Y; the address hashes X || Y.
    let hash = keccak256(point.as_bytes().get(1..)?);
    Some(Address::from_slice(&hash[12..]))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use serde_json::Value;

    use super::*;

    // Anvil's account 0: a published development key, fine to type into a test.
    const ANVIL_KEY_0: [u8; 32] =
        alloy::hex!("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80");

    const ORDER: U256 = U256::from_be_bytes(alloy::hex!(
        "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
    ));

    fn anvil_key() -> PrivateKey {
        PrivateKey::from_bytes(&ANVIL_KEY_0).unwrap()
    }

    fn hex_of(value: &Value) -> Vec<u8> {
        let text = value.as_str().unwrap();
        hex::decode(text.strip_prefix("0x").unwrap_or(text)).unwrap()
    }

    fn number(value: &Value) -> U256 {
        match value {
            Value::Number(number) => U256::from(number.as_u64().unwrap()),
            Value::String(text) => text.parse().unwrap(),
            other => panic!("not a number: {other}"),
        }
    }

    #[test]
    fn half_order_is_half_the_group_order() {
        assert_eq!(HALF_ORDER, ORDER >> 1);
    }

    #[test]
    fn sign_matches_the_anvil_eip191_vector() {
        // ethereum-signing-vectors.json, eip191_anvil0_hello_DERIVED_HERE (eth-account and cast
        // agree), typed in so it runs without ../shared/vectors.
        let hash = B256::from(alloy::hex!(
            "50b2c43fd39106bafbba0da34fc430e1f91e3c96ea2acee2bc34119f92b37750"
        ));
        let signature = sign_hash(&anvil_key(), &hash).unwrap();
        let mut rsv = signature.r.to_be_bytes::<32>().to_vec();
        rsv.extend_from_slice(&signature.s.to_be_bytes::<32>());
        rsv.push(27 + u8::from(signature.y_parity));
        assert_eq!(
            hex::encode(rsv),
            "f16ea9a3478698f695fd1401bfe27e9e4a7e8e3da94aa72b021125e31fa899cc573c48ea3fe1d4ab61a9db10c19032026e3ed2dbccba5a178235ac27f94504311c"
        );
    }

    /// Every entry of ethereum-signing-vectors.json that states a key, a digest and a signature:
    /// EIP-155, EIP-191 and EIP-712 digests all go through the same prehash signer.
    #[test]
    fn sign_matches_the_ethereum_signing_vectors() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/vectors"));
        if !dir.is_dir() {
            println!("skipped: {} is absent", dir.display());
            return;
        }
        let file: Value =
            serde_json::from_slice(&fs::read(dir.join("ethereum-signing-vectors.json")).unwrap())
                .unwrap();
        let mut checked = 0;
        for (name, vector) in file.as_object().unwrap() {
            let digest = ["signing_hash", "prefixed_hash", "signHash"]
                .iter()
                .find_map(|field| vector.get(*field));
            let (Some(digest), Some(key)) = (digest, vector.get("private_key")) else {
                // EIP-1559 entries state no digest; chain::tx checks them from the transaction.
                continue;
            };
            let key = PrivateKey::from_bytes(&hex_of(key).try_into().unwrap()).unwrap();
            let hash = B256::from_slice(&hex_of(digest));
            let signature = sign_hash(&key, &hash).unwrap();
            let (r, s, v) = if let Some(rsv) = vector.get("signature") {
                let rsv = hex_of(rsv);
                (
                    U256::from_be_slice(&rsv[..32]),
                    U256::from_be_slice(&rsv[32..64]),
                    U256::from(rsv[64]),
                )
            } else {
                (
                    number(&vector["r"]),
                    number(&vector["s"]),
                    number(&vector["v"]),
                )
            };
            assert_eq!(signature.r, r, "{name}: r");
            assert_eq!(signature.s, s, "{name}: s");
            // v is 27/28 (EIP-191, EIP-712) or chain_id * 2 + 35/36 (EIP-155).
            let v = u64::try_from(v).unwrap();
            let parity = if v >= 35 { (v - 35) % 2 } else { v - 27 };
            assert_eq!(u64::from(signature.y_parity), parity, "{name}: v");
            if let Some(address) = vector.get("address") {
                let address: Address = address.as_str().unwrap().parse().unwrap();
                assert_eq!(recover(&hash, &signature), Some(address), "{name}");
            }
            assert_eq!(recover(&hash, &signature), Some(key.address()), "{name}");
            checked += 1;
        }
        // eip155, eip191_personal_sign, eip191_anvil0_hello_DERIVED_HERE, eip712_mail.
        assert_eq!(checked, 4);
    }

    #[test]
    fn recover_of_sign_is_the_key_address() {
        let key = anvil_key();
        for seed in 0u8..32 {
            let hash = keccak256([seed]);
            let signature = sign_hash(&key, &hash).unwrap();
            assert!(signature.s <= HALF_ORDER, "high s for seed {seed}");
            assert_eq!(recover(&hash, &signature), Some(key.address()));
        }
    }

    #[test]
    fn signing_is_deterministic() {
        let hash = keccak256(b"same digest, same signature");
        assert_eq!(
            sign_hash(&anvil_key(), &hash).unwrap(),
            sign_hash(&anvil_key(), &hash).unwrap()
        );
    }

    #[test]
    fn recover_rejects_a_high_s() {
        let hash = keccak256(b"malleable");
        let signature = sign_hash(&anvil_key(), &hash).unwrap();
        // (r, n - s) with the parity flipped is the same point's mirror: valid ECDSA, not EIP-2.
        let twin = TxSignature {
            y_parity: !signature.y_parity,
            r: signature.r,
            s: ORDER - signature.s,
        };
        assert!(twin.s > HALF_ORDER);
        assert_eq!(recover(&hash, &twin), None);
    }

    #[test]
    fn recover_of_a_tampered_hash_is_another_address() {
        let key = anvil_key();
        let hash = keccak256(b"approved");
        let signature = sign_hash(&key, &hash).unwrap();
        let mut tampered = hash;
        tampered.0[31] ^= 1;
        let recovered = recover(&tampered, &signature);
        assert_ne!(recovered, Some(key.address()));
    }

    #[test]
    fn recover_rejects_zero_and_out_of_range_scalars() {
        let hash = keccak256(b"range");
        let good = sign_hash(&anvil_key(), &hash).unwrap();
        for (r, s) in [
            (U256::ZERO, good.s),
            (good.r, U256::ZERO),
            (ORDER, good.s),
            (U256::MAX, good.s),
            (good.r, ORDER),
            (good.r, U256::MAX),
        ] {
            for y_parity in [false, true] {
                assert_eq!(recover(&hash, &TxSignature { y_parity, r, s }), None);
            }
        }
    }

    #[test]
    fn recover_rejects_an_r_with_no_curve_point() {
        // 5^3 + 7 is not a square modulo p, so no point has x = 5.
        for y_parity in [false, true] {
            let signature = TxSignature {
                y_parity,
                r: U256::from(5),
                s: U256::from(1),
            };
            assert_eq!(recover(&keccak256(b"x"), &signature), None);
        }
    }

    #[test]
    fn errors_never_carry_key_material() {
        for err in [
            SignError::InvalidKey,
            SignError::UnencodableRecoveryId,
            SignError::SelfCheckFailed,
        ] {
            let text = format!("{err} {err:?}");
            assert!(!text.contains("ac0974"), "{text}");
            assert!(!err.to_string().ends_with('.'));
        }
    }
}
