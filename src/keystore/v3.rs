//! Web3 Secret Storage v3 keystore files, as geth and Foundry's cast read and write them.
//!
//! Reading accepts any valid scrypt or PBKDF2-HMAC-SHA256 keystore within keyward's cost limits,
//! with field names matched case-insensitively like geth. Writing always uses scrypt n=2^18, r=8,
//! p=1. Keys shorter than 32 bytes (geth wrote some 30- and 31-byte keys) are left-padded.

use alloy::primitives::Address;
use serde_json::json;
use zeroize::Zeroizing;

use super::envelope::{Envelope, Kdf, SealingKey};
use super::json::{self, Object, malformed};
use super::{FileKind, KeystoreError};
use crate::secret::{Password, PrivateKey};

/// Keystore files are a few hundred bytes; anything much larger is not one.
pub const MAX_KEYSTORE_SIZE: usize = 64 * 1024;

/// A parsed, still encrypted keystore.
#[derive(Debug, Clone)]
pub struct Keystore {
    envelope: Envelope,
    address: Option<Address>,
}

impl Keystore {
    /// Parses a keystore file without decrypting it, so a malformed file is reported before any
    /// password is asked for.
    pub fn parse(bytes: &[u8]) -> Result<Self, KeystoreError> {
        if bytes.len() > MAX_KEYSTORE_SIZE {
            return Err(malformed(
                "(document)",
                &format!(
                    "is {} bytes; a keystore is a small JSON file under 64 KiB",
                    bytes.len()
                ),
            ));
        }
        let document = json::parse(bytes)?;
        let root = Object::root(&document)?;
        match root.integer("version")? {
            3 => {}
            1 | 2 => {
                return Err(KeystoreError::Unsupported {
                    what: "keystore version",
                    name: Some(root.integer("version")?.to_string()),
                    supported: "version 3 (re-export the key from geth or cast as a v3 keystore)",
                });
            }
            _ => {
                return Err(malformed(
                    "version",
                    "must be 3 (Web3 Secret Storage version 3)",
                ));
            }
        }
        let envelope = Envelope::from_json(&root.object("crypto")?, 1..=32)?;
        let address = match root.get("address")? {
            None => None,
            Some(_) => Some(Address::from_slice(&root.hex("address", 20..=20)?)),
        };
        tracing::debug!(kdf = ?envelope.kdf(), has_address = address.is_some(), "keystore parsed");
        Ok(Self { envelope, address })
    }

    /// The address the file states, if it has the optional `address` field. Unverified until
    /// [`Keystore::decrypt`] succeeds.
    pub fn stated_address(&self) -> Option<Address> {
        self.address
    }

    /// The work its KDF asks for (see `crate::fuzzing`).
    pub(crate) fn kdf_cost(&self) -> u64 {
        self.envelope.kdf().cost()
    }

    /// Decrypts the key. A wrong password gives exactly "invalid password or corrupted keystore".
    pub fn decrypt(&self, password: &Password) -> Result<PrivateKey, KeystoreError> {
        let key = SealingKey::derive(self.envelope.kdf().clone(), password)?;
        let plaintext = key
            .open(&self.envelope)
            .map_err(|_| KeystoreError::WrongPassword(FileKind::Keystore))?;
        let plaintext = plaintext.expose_secret();
        let mut padded = Zeroizing::new([0u8; 32]);
        padded[32 - plaintext.len()..].copy_from_slice(plaintext);
        let key = PrivateKey::from_bytes(&padded).map_err(|_| KeystoreError::InvalidKey)?;
        if let Some(stated) = self.address
            && stated != key.address()
        {
            return Err(KeystoreError::AddressMismatch {
                stated,
                actual: key.address(),
            });
        }
        tracing::debug!("keystore decrypted");
        Ok(key)
    }

    /// Encrypts `key` into a new keystore file (JSON bytes) with scrypt n=2^18, r=8, p=1.
    pub fn encrypt(key: &PrivateKey, password: &Password) -> Result<Vec<u8>, KeystoreError> {
        Self::encrypt_with(key, password, Kdf::standard()?)
    }

    pub(crate) fn encrypt_with(
        key: &PrivateKey,
        password: &Password,
        kdf: Kdf,
    ) -> Result<Vec<u8>, KeystoreError> {
        let envelope = SealingKey::derive(kdf, password)?.seal(key.expose_secret())?;
        let document = json!({
            "address": hex::encode(key.address()),
            "crypto": envelope.to_json(),
            "id": uuid::Uuid::new_v4().to_string(),
            "version": 3,
        });
        let mut bytes = serde_json::to_vec_pretty(&document)
            .map_err(|_| malformed("(document)", "could not be serialized"))?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn password(text: &str) -> Password {
        Secret::new(text.to_owned())
    }

    /// The PBKDF2 vector of the Web3 Secret Storage definition (ethereum.org), typed in so it runs
    /// even without ../shared/vectors.
    const SPEC_PBKDF2: &str = r#"{"crypto":{"cipher":"aes-128-ctr","cipherparams":{"iv":"6087dab2f9fdbbfaddc31a909735c1e6"},"ciphertext":"5318b4d5bcd28de64ee5559e671353e16f075ecae9f99c7a79a38af5f869aa46","kdf":"pbkdf2","kdfparams":{"c":262144,"dklen":32,"prf":"hmac-sha256","salt":"ae3cd4e7013836a3df6bd7241b12db061dbe2c6785853cce422d148a624ce0bd"},"mac":"517ead924a9d0dc3124507e3393d175ce3ff7c1e96529c6c555ce9e51205e9b2"},"id":"3198bc9c-6672-5ab3-d995-4942343ae5b6","version":3}"#;

    #[test]
    fn decrypts_the_spec_pbkdf2_vector() {
        let key = Keystore::parse(SPEC_PBKDF2.as_bytes())
            .unwrap()
            .decrypt(&password("testpassword"))
            .unwrap();
        assert_eq!(
            hex::encode(key.expose_secret()),
            "7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d"
        );
        assert_eq!(
            hex::encode(key.address()),
            "008aeeda4d805471df9b2a5b0f38a0c3bcba786b"
        );
    }

    #[test]
    fn wrong_password_gives_the_one_sentence() {
        let err = Keystore::parse(SPEC_PBKDF2.as_bytes())
            .unwrap()
            .decrypt(&password("not it"))
            .unwrap_err();
        assert_eq!(err.to_string(), "invalid password or corrupted keystore");
    }

    #[test]
    fn round_trips_and_states_its_address() {
        let key = PrivateKey::from_bytes(&[0x11; 32]).unwrap();
        let file =
            Keystore::encrypt_with(&key, &password("pw"), Kdf::scrypt(4, 8, 1).unwrap()).unwrap();
        let parsed = Keystore::parse(&file).unwrap();
        assert_eq!(parsed.stated_address(), Some(key.address()));
        let back = parsed.decrypt(&password("pw")).unwrap();
        assert_eq!(back.expose_secret(), key.expose_secret());
    }

    #[test]
    fn a_swapped_address_field_is_caught() {
        let key = PrivateKey::from_bytes(&[0x11; 32]).unwrap();
        let file =
            Keystore::encrypt_with(&key, &password("pw"), Kdf::scrypt(4, 8, 1).unwrap()).unwrap();
        let mut document: serde_json::Value = serde_json::from_slice(&file).unwrap();
        document["address"] = json!("f39fd6e51aad88f6f4ce6ab8827279cfffb92266");
        let altered = serde_json::to_vec(&document).unwrap();
        let err = Keystore::parse(&altered)
            .unwrap()
            .decrypt(&password("pw"))
            .unwrap_err();
        assert!(
            matches!(err, KeystoreError::AddressMismatch { .. }),
            "{err}"
        );
    }

    #[test]
    fn writes_standard_scrypt_cost() {
        let key = PrivateKey::from_bytes(&[0x11; 32]).unwrap();
        // Parse our own output's parameters without paying for a real encryption twice.
        let file = Keystore::encrypt_with(&key, &password("pw"), Kdf::standard().unwrap()).unwrap();
        let document: serde_json::Value = serde_json::from_slice(&file).unwrap();
        let params = &document["crypto"]["kdfparams"];
        assert_eq!(params["n"], 262_144);
        assert_eq!(params["r"], 8);
        assert_eq!(params["p"], 1);
        assert_eq!(params["dklen"], 32);
        assert_eq!(document["crypto"]["kdf"], "scrypt");
        assert_eq!(document["version"], 3);
    }

    #[test]
    fn malformed_files_say_what_is_wrong() {
        let cases: [(&str, &str); 5] = [
            ("[]", "must be a JSON object"),
            (r#"{"version":3}"#, "`crypto` is missing"),
            (
                r#"{"version":1,"crypto":{}}"#,
                "unsupported keystore version \"1\"",
            ),
            (
                &SPEC_PBKDF2.replace("aes-128-ctr", "aes-256-gcm"),
                "unsupported cipher \"aes-256-gcm\"",
            ),
            (
                &SPEC_PBKDF2.replace("\"c\":262144", "\"c\":-1"),
                "`crypto.kdfparams.c` must be a non-negative integer",
            ),
        ];
        for (file, expected) in cases {
            let err = Keystore::parse(file.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(expected), "{file}: {err}");
        }
    }

    #[test]
    fn truncation_is_a_json_error_not_a_panic() {
        for end in 0..SPEC_PBKDF2.len() {
            assert!(Keystore::parse(&SPEC_PBKDF2.as_bytes()[..end]).is_err());
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let _ = Keystore::parse(&bytes);
        }

        #[test]
        fn parse_never_panics_on_a_damaged_keystore(at in 0..SPEC_PBKDF2.len(), byte in proptest::prelude::any::<u8>()) {
            let mut file = SPEC_PBKDF2.as_bytes().to_vec();
            file[at] = byte;
            let _ = Keystore::parse(&file);
        }
    }
}
