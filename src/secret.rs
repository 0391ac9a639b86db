//! Secret material as types: the one place that decides how a secret may be held.
//!
//! Every value that could move funds or unlock them (a private key, the mnemonic, a BIP-32 node,
//! a password, the TOTP secret, a key derived from a password) lives in one of these types. Each has
//! a private field, zeroizes on drop, prints `[REDACTED]` in `Debug`, and implements neither
//! `Display` nor `Serialize`. The only way to the value is `expose_secret()`, so every use can be
//! found with `git grep expose_secret`.
//!
//! Several dependencies leak in `Debug`, `Display` or `Serialize` (totp-rs `Totp` derives `Debug`,
//! bip39 `Mnemonic` displays its phrase, coins-bip32 `XPriv` serializes to an xprv string). They are
//! held only inside these wrappers and never printed.
//!
//! This module must never gain a `Display`, `Serialize` or logging impl for a secret type.

use std::fmt;

use alloy::primitives::{Address, keccak256};
use coins_bip32::xkeys::XPriv;
use k256::elliptic_curve::sec1::ToSec1Point;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

const REDACTED: &str = "[REDACTED]";

/// A secret value of any zeroizable type.
///
/// Type aliases name the uses: [`Password`], [`crate::hd::Mnemonic`], [`crate::totp::TotpSecret`].
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Secret<T> {
    /// Takes ownership of a secret. The caller's value is moved, not copied.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret value.
    ///
    /// # Security
    /// The returned reference is the secret itself. Use it only on the path that needs it (key
    /// derivation, encryption, signing, display on a trusted terminal), never in a log, error or
    /// tool result.
    pub fn expose_secret(&self) -> &T {
        &self.0
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> ZeroizeOnDrop for Secret<T> {}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T: Zeroize> From<Zeroizing<T>> for Secret<T>
where
    T: Default,
{
    /// Moves a value out of a `Zeroizing` buffer, leaving a zeroed default behind.
    fn from(mut value: Zeroizing<T>) -> Self {
        Self(std::mem::take(&mut *value))
    }
}

/// A password: the vault's, a keystore file's, or the one chosen for an exported keystore.
pub type Password = Secret<String>;

/// A valid secp256k1 private key (a scalar in `[1, n-1]`) and the Ethereum address it controls.
pub struct PrivateKey {
    bytes: Secret<[u8; 32]>,
    address: Address,
}

/// The bytes given as a private key are zero or not below the secp256k1 group order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a valid secp256k1 private key (it must be a number from 1 to n-1)")]
pub struct InvalidPrivateKey;

impl PrivateKey {
    /// Validates the scalar and computes its address.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, InvalidPrivateKey> {
        let key = k256::SecretKey::from_slice(bytes).map_err(|_| InvalidPrivateKey)?;
        let point = key.public_key().to_sec1_point(false);
        // An uncompressed SEC1 point is 0x04 || X || Y; the address hashes X || Y.
        let hash = keccak256(&point.as_bytes()[1..]);
        Ok(Self {
            bytes: Secret::new(*bytes),
            address: Address::from_slice(&hash[12..]),
        })
    }

    /// The Ethereum address this key controls. Public.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The 32 key bytes, big-endian.
    ///
    /// # Security
    /// Returns the private key itself. Call it only on the path that signs or encrypts the key
    /// into a keystore or the vault.
    pub fn expose_secret(&self) -> &[u8; 32] {
        self.bytes.expose_secret()
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// A BIP-32 extended private key (key and chain code).
///
/// coins-bip32's `XPriv` zeroizes itself on drop, but serializes to an xprv string and shows its
/// fingerprint in `Debug`; this wrapper hides both.
pub struct ExtendedPrivateKey(XPriv);

impl ExtendedPrivateKey {
    pub(crate) fn new(inner: XPriv) -> Self {
        Self(inner)
    }

    /// The coins-bip32 node.
    ///
    /// # Security
    /// The returned node derives every key below it. Use it only to derive children or the
    /// signing key.
    pub fn expose_secret(&self) -> &XPriv {
        &self.0
    }
}

impl fmt::Debug for ExtendedPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Anvil's account 0: a published development key, fine to type into a test.
    const ANVIL_KEY_0: [u8; 32] =
        alloy::hex!("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80");

    #[test]
    fn private_key_knows_its_address() {
        let key = PrivateKey::from_bytes(&ANVIL_KEY_0).unwrap();
        assert_eq!(
            key.address().to_checksum(None),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
        );
    }

    #[test]
    fn private_key_rejects_zero_and_the_group_order() {
        assert_eq!(
            PrivateKey::from_bytes(&[0; 32]).unwrap_err(),
            InvalidPrivateKey
        );
        let n = alloy::hex!("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141");
        assert_eq!(PrivateKey::from_bytes(&n).unwrap_err(), InvalidPrivateKey);
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let key = PrivateKey::from_bytes(&ANVIL_KEY_0).unwrap();
        let password: Password = Secret::new("correct horse battery staple".to_owned());
        let bytes = Secret::new(ANVIL_KEY_0);
        for printed in [
            format!("{key:?}"),
            format!("{password:?}"),
            format!("{bytes:?}"),
            format!("{:#?}", Some(&key)),
        ] {
            assert!(printed.contains(REDACTED), "{printed}");
            assert!(
                !printed.contains("ac0974") && !printed.contains("horse"),
                "{printed}"
            );
            assert!(!printed.contains("172"), "decimal bytes leaked: {printed}");
        }
    }

    #[test]
    fn from_zeroizing_moves_the_value() {
        let mut source = Zeroizing::new(String::from("hunter2-but-longer"));
        source.push('!');
        let secret: Password = Secret::from(source);
        assert_eq!(secret.expose_secret(), "hunter2-but-longer!");
    }
}
