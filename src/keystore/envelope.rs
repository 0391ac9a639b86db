//! The Web3 Secret Storage crypto envelope: a password-derived key, AES-128-CTR, and a keccak MAC.
//!
//! Keystore files and the vault both store their secret in this envelope (the `crypto` object of
//! a v3 keystore), so there is one implementation of the KDF bounds, the cipher and the MAC check.
//! The derived key is 32 bytes: the first 16 are the AES key, the last 16 key the MAC, which is
//! `keccak256(dk[16..32] || ciphertext)` and is compared in constant time.
//!
//! This module must never report why a MAC failed: a wrong password and a damaged ciphertext look
//! the same on purpose.

use std::ops::RangeInclusive;

use aes::cipher::{KeyIvInit, StreamCipher};
use alloy::primitives::Keccak256;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::KeystoreError;
use super::json::{Object, malformed, printable_name};
use crate::secret::{Password, Secret};

/// AES-128 in CTR mode with a 128-bit big-endian counter that wraps at 2^128, as Web3 Secret
/// Storage requires (the `evilnonce` vector starts the counter at ff…ff).
type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

/// scrypt cost for every envelope keyward writes: n = 2^18, r = 8, p = 1 (geth's "standard").
pub const SCRYPT_LOG_N: u8 = 18;
pub const SCRYPT_R: u32 = 8;
pub const SCRYPT_P: u32 = 1;

pub(crate) const DERIVED_KEY_LEN: usize = 32;
const SALT_LEN: usize = 32;
const IV_LEN: usize = 16;

/// The most memory a file may make scrypt allocate (`128 * n * r` bytes): 1 GiB, four times the
/// standard cost. Above this a crafted file could exhaust memory before the MAC is even checked.
const MAX_SCRYPT_MEMORY: u64 = 1 << 30;
/// The most scrypt work (`n * r * p`) a file may demand: sixteen times the standard cost.
const MAX_SCRYPT_WORK: u64 = 1 << 25;
/// The most PBKDF2 rounds a file may demand: about forty times geth's 262144.
const MAX_PBKDF2_ROUNDS: u64 = 10_000_000;

/// How a password becomes the 32-byte envelope key, with the salt.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Kdf {
    Scrypt {
        log_n: u8,
        r: u32,
        p: u32,
        salt: Vec<u8>,
    },
    Pbkdf2 {
        rounds: u32,
        salt: Vec<u8>,
    },
}

impl std::fmt::Debug for Kdf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Scrypt { log_n, r, p, .. } => {
                write!(f, "scrypt(n=2^{log_n}, r={r}, p={p})")
            }
            Self::Pbkdf2 { rounds, .. } => write!(f, "pbkdf2-hmac-sha256(c={rounds})"),
        }
    }
}

impl Kdf {
    /// scrypt at keyward's standard cost with a fresh random salt.
    pub(crate) fn standard() -> Result<Self, KeystoreError> {
        Self::scrypt(SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P)
    }

    /// scrypt with the given cost and a fresh random salt. Tests use a low cost.
    pub(crate) fn scrypt(log_n: u8, r: u32, p: u32) -> Result<Self, KeystoreError> {
        let mut salt = vec![0; SALT_LEN];
        fill_random(&mut salt)?;
        Ok(Self::Scrypt { log_n, r, p, salt })
    }

    /// The work a derivation takes: scrypt's `n * r * p` or PBKDF2's rounds. The fuzzer decrypts
    /// only what is cheap.
    pub(crate) fn cost(&self) -> u64 {
        match self {
            Self::Scrypt { log_n, r, p, .. } => 1u64
                .checked_shl(u32::from(*log_n))
                .unwrap_or(u64::MAX)
                .saturating_mul(u64::from(*r))
                .saturating_mul(u64::from(*p)),
            Self::Pbkdf2 { rounds, .. } => u64::from(*rounds),
        }
    }

    /// Derives the envelope key. This is the slow step (about half a second at standard cost).
    pub(crate) fn derive(&self, password: &Password) -> Result<Secret<[u8; 32]>, KeystoreError> {
        let mut key = Zeroizing::new([0u8; DERIVED_KEY_LEN]);
        self.derive_into(password, &mut key)?;
        Ok(Secret::from(key))
    }

    /// Derives the envelope key straight into `key`, so that no other copy of it is made (the
    /// vault derives into its locked buffer).
    #[tracing::instrument(level = "debug", skip_all, fields(kdf = ?self))]
    pub(crate) fn derive_into(
        &self,
        password: &Password,
        key: &mut [u8; DERIVED_KEY_LEN],
    ) -> Result<(), KeystoreError> {
        let password = password.expose_secret().as_bytes();
        match self {
            Self::Scrypt { log_n, r, p, salt } => {
                let params = scrypt::Params::new(*log_n, *r, *p).map_err(|_| {
                    malformed("crypto.kdfparams", "holds invalid scrypt parameters")
                })?;
                scrypt::scrypt(password, salt, &params, key)
                    .map_err(|_| malformed("crypto.kdfparams.dklen", "is not a valid length"))?;
            }
            Self::Pbkdf2 { rounds, salt } => {
                pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, *rounds, key);
            }
        }
        tracing::trace!("envelope key derived");
        Ok(())
    }

    fn from_json(crypto: &Object<'_>) -> Result<Self, KeystoreError> {
        let kdf = crypto.string("kdf")?;
        let params = crypto.object("kdfparams")?;
        let dklen = params.integer("dklen")?;
        // Only the first 32 bytes are used; PBKDF2's output is a prefix-stable stream, so a longer
        // dklen derives the same first 32 bytes.
        if !(32..=64).contains(&dklen) {
            return Err(malformed(
                &params.field_path("dklen"),
                "must be from 32 to 64 (the key and MAC halves need 32 bytes)",
            ));
        }
        let salt = params.hex("salt", 0..=1024)?;
        match kdf {
            "scrypt" => {
                let n = params.integer("n")?;
                let r = params.integer("r")?;
                let p = params.integer("p")?;
                if n < 2 || !n.is_power_of_two() {
                    return Err(malformed(
                        &params.field_path("n"),
                        "must be a power of two greater than 1",
                    ));
                }
                let r = u32::try_from(r).ok().filter(|r| *r >= 1).ok_or_else(|| {
                    malformed(&params.field_path("r"), "must be from 1 to 2^32-1")
                })?;
                let p = u32::try_from(p).ok().filter(|p| *p >= 1).ok_or_else(|| {
                    malformed(&params.field_path("p"), "must be from 1 to 2^32-1")
                })?;
                let memory = n.saturating_mul(u64::from(r)).saturating_mul(128);
                let work = n.saturating_mul(u64::from(r)).saturating_mul(u64::from(p));
                if memory > MAX_SCRYPT_MEMORY || work > MAX_SCRYPT_WORK {
                    return Err(KeystoreError::KdfTooExpensive {
                        what: format!("scrypt n={n}, r={r}, p={p}"),
                    });
                }
                let log_n = u8::try_from(n.trailing_zeros()).unwrap_or(u8::MAX);
                Ok(Self::Scrypt { log_n, r, p, salt })
            }
            "pbkdf2" => {
                let prf = params.string("prf")?;
                if prf != "hmac-sha256" {
                    return Err(KeystoreError::Unsupported {
                        what: "PBKDF2 function",
                        name: printable_name(prf),
                        supported: "hmac-sha256",
                    });
                }
                let rounds = params.integer("c")?;
                if rounds == 0 {
                    return Err(malformed(&params.field_path("c"), "must be at least 1"));
                }
                if rounds > MAX_PBKDF2_ROUNDS {
                    return Err(KeystoreError::KdfTooExpensive {
                        what: format!("pbkdf2 c={rounds}"),
                    });
                }
                Ok(Self::Pbkdf2 {
                    rounds: u32::try_from(rounds).unwrap_or(u32::MAX),
                    salt,
                })
            }
            other => Err(KeystoreError::Unsupported {
                what: "key derivation function",
                name: printable_name(other),
                supported: "scrypt, pbkdf2",
            }),
        }
    }

    fn to_json(&self) -> (&'static str, Value) {
        match self {
            Self::Scrypt { log_n, r, p, salt } => (
                "scrypt",
                json!({
                    "dklen": DERIVED_KEY_LEN,
                    "n": 1u64 << log_n,
                    "p": p,
                    "r": r,
                    "salt": hex::encode(salt),
                }),
            ),
            Self::Pbkdf2 { rounds, salt } => (
                "pbkdf2",
                json!({
                    "c": rounds,
                    "dklen": DERIVED_KEY_LEN,
                    "prf": "hmac-sha256",
                    "salt": hex::encode(salt),
                }),
            ),
        }
    }
}

/// The MAC did not match: a wrong password or a damaged ciphertext, deliberately not told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MacMismatch;

/// A password-derived key and the KDF (with salt) it came from, so that a vault can be re-sealed
/// after a change without running scrypt again. Each seal draws a fresh IV.
#[derive(Debug)]
pub(crate) struct SealingKey {
    kdf: Kdf,
    key: Secret<[u8; 32]>,
}

impl SealingKey {
    pub(crate) fn derive(kdf: Kdf, password: &Password) -> Result<Self, KeystoreError> {
        let key = kdf.derive(password)?;
        Ok(Self { kdf, key })
    }

    pub(crate) fn seal(&self, plaintext: &[u8]) -> Result<Envelope, KeystoreError> {
        seal_with(&self.kdf, self.key.expose_secret(), plaintext)
    }

    /// Checks the MAC in constant time, then decrypts.
    pub(crate) fn open(&self, envelope: &Envelope) -> Result<Secret<Vec<u8>>, MacMismatch> {
        let mut plaintext = Zeroizing::new(vec![0u8; envelope.ciphertext.len()]);
        open_into(self.key.expose_secret(), envelope, &mut plaintext)?;
        Ok(Secret::from(plaintext))
    }
}

/// Seals `plaintext` under `key`, which `kdf` derived, with a fresh IV.
pub(crate) fn seal_with(
    kdf: &Kdf,
    key: &[u8; DERIVED_KEY_LEN],
    plaintext: &[u8],
) -> Result<Envelope, KeystoreError> {
    let mut iv = [0u8; IV_LEN];
    fill_random(&mut iv)?;
    let mut ciphertext = plaintext.to_vec();
    apply_keystream(key, &iv, &mut ciphertext);
    let mac = mac(key, &ciphertext);
    Ok(Envelope {
        kdf: kdf.clone(),
        iv,
        ciphertext,
        mac,
    })
}

/// Checks the MAC in constant time, then decrypts into `plaintext` (exactly
/// [`Envelope::ciphertext_len`] bytes), so that the plaintext exists only where the caller wants
/// it.
pub(crate) fn open_into(
    key: &[u8; DERIVED_KEY_LEN],
    envelope: &Envelope,
    plaintext: &mut [u8],
) -> Result<(), MacMismatch> {
    let expected = mac(key, &envelope.ciphertext);
    if !bool::from(expected.ct_eq(&envelope.mac)) || plaintext.len() != envelope.ciphertext.len() {
        tracing::debug!("envelope MAC mismatch");
        return Err(MacMismatch);
    }
    plaintext.copy_from_slice(&envelope.ciphertext);
    apply_keystream(key, &envelope.iv, plaintext);
    Ok(())
}

/// The sealed form of a secret: what the `crypto` object of a keystore holds.
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    kdf: Kdf,
    iv: [u8; IV_LEN],
    ciphertext: Vec<u8>,
    mac: [u8; 32],
}

impl Envelope {
    pub(crate) fn kdf(&self) -> &Kdf {
        &self.kdf
    }

    /// The length of the sealed secret, which is the plaintext's.
    pub(crate) fn ciphertext_len(&self) -> usize {
        self.ciphertext.len()
    }

    /// Reads the `crypto` object. `ciphertext_len` bounds the sealed secret's size.
    pub(crate) fn from_json(
        crypto: &Object<'_>,
        ciphertext_len: RangeInclusive<usize>,
    ) -> Result<Self, KeystoreError> {
        let cipher = crypto.string("cipher")?;
        if cipher != "aes-128-ctr" {
            return Err(KeystoreError::Unsupported {
                what: "cipher",
                name: printable_name(cipher),
                supported: "aes-128-ctr",
            });
        }
        let iv = crypto.object("cipherparams")?.hex("iv", IV_LEN..=IV_LEN)?;
        let ciphertext = crypto.hex("ciphertext", ciphertext_len)?;
        let mac = crypto.hex("mac", 32..=32)?;
        let kdf = Kdf::from_json(crypto)?;
        Ok(Self {
            kdf,
            iv: iv
                .try_into()
                .map_err(|_| malformed("crypto.cipherparams.iv", "must be 16 bytes"))?,
            ciphertext,
            mac: mac
                .try_into()
                .map_err(|_| malformed("crypto.mac", "must be 32 bytes"))?,
        })
    }

    pub(crate) fn to_json(&self) -> Value {
        let (kdf, kdfparams) = self.kdf.to_json();
        json!({
            "cipher": "aes-128-ctr",
            "cipherparams": { "iv": hex::encode(self.iv) },
            "ciphertext": hex::encode(&self.ciphertext),
            "kdf": kdf,
            "kdfparams": kdfparams,
            "mac": hex::encode(self.mac),
        })
    }
}

fn apply_keystream(key: &[u8; 32], iv: &[u8; IV_LEN], buffer: &mut [u8]) {
    let Some(aes_key) = key.first_chunk::<16>() else {
        unreachable!("a 32-byte key has a 16-byte prefix")
    };
    let mut cipher = Aes128Ctr::new(aes_key.into(), iv.into());
    cipher.apply_keystream(buffer);
}

fn mac(key: &[u8; 32], ciphertext: &[u8]) -> [u8; 32] {
    let mut hasher = Keccak256::new();
    hasher.update(&key[16..]);
    hasher.update(ciphertext);
    hasher.finalize().0
}

/// Fills `buffer` from the operating system's CSPRNG.
pub(crate) fn fill_random(buffer: &mut [u8]) -> Result<(), KeystoreError> {
    getrandom::fill(buffer).map_err(|err| KeystoreError::Random(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password(text: &str) -> Password {
        Secret::new(text.to_owned())
    }

    #[test]
    fn seal_then_open_round_trips_with_a_fresh_iv() {
        let key = SealingKey::derive(Kdf::scrypt(4, 8, 1).unwrap(), &password("pw")).unwrap();
        let first = key.seal(b"attack at dawn").unwrap();
        let second = key.seal(b"attack at dawn").unwrap();
        assert_ne!(first.iv, second.iv);
        assert_ne!(first.ciphertext, second.ciphertext);
        assert_eq!(key.open(&first).unwrap().expose_secret(), b"attack at dawn");
        assert_eq!(
            key.open(&second).unwrap().expose_secret(),
            b"attack at dawn"
        );
    }

    #[test]
    fn any_flipped_ciphertext_bit_fails_the_mac() {
        let key = SealingKey::derive(Kdf::scrypt(4, 8, 1).unwrap(), &password("pw")).unwrap();
        let sealed = key.seal(&[7; 40]).unwrap();
        for bit in 0..sealed.ciphertext.len() * 8 {
            let mut damaged = sealed.clone();
            damaged.ciphertext[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(key.open(&damaged).unwrap_err(), MacMismatch);
        }
    }

    #[test]
    fn counter_wraps_at_128_bits() {
        // With iv = ff…ff the second block's counter is 00…00: the keystream of block 2 must equal
        // block 1 of a cipher started at zero.
        let key = [9u8; 32];
        let mut wrapped = [0u8; 32];
        apply_keystream(&key, &[0xff; 16], &mut wrapped);
        let mut from_zero = [0u8; 16];
        apply_keystream(&key, &[0; 16], &mut from_zero);
        assert_eq!(wrapped[16..], from_zero);
    }

    #[test]
    fn crafted_costs_are_refused_before_any_work() {
        let doc = json!({"crypto": {
            "cipher": "aes-128-ctr", "cipherparams": {"iv": "00".repeat(16)},
            "ciphertext": "00".repeat(32), "mac": "00".repeat(32), "kdf": "scrypt",
            "kdfparams": {"dklen": 32, "n": 1u64 << 30, "r": 8, "p": 1, "salt": "00"}}});
        let crypto = Object::root(&doc).unwrap().object("crypto").unwrap();
        let err = Envelope::from_json(&crypto, 1..=32).unwrap_err();
        assert!(
            matches!(err, KeystoreError::KdfTooExpensive { .. }),
            "{err}"
        );
    }

    proptest::proptest! {
        #[test]
        fn any_plaintext_round_trips(plaintext in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let key = SealingKey {
                kdf: Kdf::Pbkdf2 { rounds: 1, salt: vec![1; 16] },
                key: Secret::new([3; 32]),
            };
            let sealed = key.seal(&plaintext).unwrap();
            let opened = key.open(&sealed).unwrap();
            proptest::prop_assert_eq!(opened.expose_secret(), &plaintext);
        }
    }
}
