//! The outbound guard: does this request, log line or text carry a secret keyward holds right now?
//!
//! While the vault is unlocked, the keyring registers fingerprints of what it holds: each private
//! key as hex, the recovery phrase as a word sequence, the password, and the TOTP secret in base32
//! and hex. The guard never keeps the secrets themselves, only a keyed rolling hash of each
//! (mod 2^61−1 with a random base chosen per process), so it adds no copy of a secret to memory.
//! Locking the vault drops the registration, and with it the fingerprints.
//!
//! A check rolls the hash over the text once per distinct needle length, after folding ASCII to
//! lower case, so `0xABCD…` and `abcd…` both match; the recovery phrase is matched on its letters
//! alone, so any separator (spaces, commas, a JSON array, newlines) still matches. Equal text
//! always hashes equal, so a secret present in the text is always found; an unrelated match needs
//! a 61-bit collision. Passwords shorter than [`MIN_PASSWORD`] are not registered: they could
//! match ordinary text and block the wallet's own traffic.
//!
//! This module must never store a secret, print one, or say more about a hit than its kind.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

/// The shortest password the guard looks for.
pub const MIN_PASSWORD: usize = 8;

const MODULUS: u64 = (1 << 61) - 1;

/// What kind of secret a fingerprint stands for: all a hit may say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    PrivateKey,
    RecoveryPhrase,
    Password,
    TotpSecret,
}

impl SecretKind {
    pub fn describe(self) -> &'static str {
        match self {
            Self::PrivateKey => "a private key",
            Self::RecoveryPhrase => "the recovery phrase",
            Self::Password => "the wallet password",
            Self::TotpSecret => "the TOTP secret",
        }
    }
}

/// How text is read before hashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Projection {
    /// Every byte, ASCII folded to lower case.
    Folded,
    /// ASCII letters only, folded to lower case.
    Letters,
}

impl Projection {
    fn project(self, byte: u8) -> Option<u8> {
        match self {
            Self::Folded => Some(byte.to_ascii_lowercase()),
            Self::Letters => byte
                .is_ascii_alphabetic()
                .then(|| byte.to_ascii_lowercase()),
        }
    }
}

/// Fingerprints of one set of secrets, grouped by how they are searched for.
#[derive(Debug, Default)]
pub struct Fingerprints {
    shapes: HashMap<(Projection, usize), HashMap<u64, SecretKind>>,
}

impl Fingerprints {
    pub fn new() -> Self {
        Self::default()
    }

    /// Hashes `bytes` as `projection` reads them, without making a copy.
    fn add(&mut self, projection: Projection, kind: SecretKind, bytes: impl Iterator<Item = u8>) {
        let hasher = Hasher::get();
        let (hash, len) = bytes
            .filter_map(|b| projection.project(b))
            .fold((0, 0usize), |(h, len), b| {
                (add(mul(h, hasher.base), u64::from(b)), len + 1)
            });
        if len == 0 {
            return;
        }
        self.shapes
            .entry((projection, len))
            .or_default()
            .insert(hash, kind);
    }

    /// Secret bytes, found as hex in either case, with or without `0x`.
    pub fn hex(&mut self, kind: SecretKind, secret: &[u8]) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let digits = secret
            .iter()
            .flat_map(|&b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]]);
        self.add(Projection::Folded, kind, digits);
    }

    /// Secret text, found as written (ASCII case ignored).
    pub fn text(&mut self, kind: SecretKind, secret: &str) {
        if kind == SecretKind::Password && secret.chars().count() < MIN_PASSWORD {
            return;
        }
        self.add(Projection::Folded, kind, secret.bytes());
    }

    /// A phrase, found as its words in order whatever separates them.
    pub fn words<'a>(&mut self, kind: SecretKind, words: impl IntoIterator<Item = &'a str>) {
        self.add(
            Projection::Letters,
            kind,
            words.into_iter().flat_map(str::bytes),
        );
    }

    pub fn is_empty(&self) -> bool {
        self.shapes.is_empty()
    }

    fn find(&self, text: &[u8]) -> Option<SecretKind> {
        let hasher = Hasher::get();
        self.shapes.iter().find_map(|(&(projection, len), hashes)| {
            hasher.roll(projection, len, text, |hash| hashes.get(&hash).copied())
        })
    }
}

/// The process's guard: every set of secrets currently held, by registration.
#[derive(Debug, Default)]
pub struct SecretGuard {
    sets: RwLock<Vec<(u64, Arc<Fingerprints>)>>,
    next: std::sync::atomic::AtomicU64,
}

static GUARD: LazyLock<SecretGuard> = LazyLock::new(SecretGuard::default);

/// The guard all outbound traffic and logs are checked against.
pub fn guard() -> &'static SecretGuard {
    &GUARD
}

impl SecretGuard {
    /// Starts looking for `fingerprints` until the returned registration is dropped.
    pub fn register(&'static self, fingerprints: Fingerprints) -> Registration {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if !fingerprints.is_empty() {
            self.write().push((id, Arc::new(fingerprints)));
        }
        Registration { guard: self, id }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<(u64, Arc<Fingerprints>)>> {
        self.sets
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether any secret is registered.
    pub fn is_armed(&self) -> bool {
        !self
            .sets
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_empty()
    }

    /// The kind of the first registered secret found in `text`, if any.
    pub fn find(&self, text: &[u8]) -> Option<SecretKind> {
        let sets = self
            .sets
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        sets.iter().find_map(|(_, set)| set.find(text))
    }
}

/// Keeps a set of fingerprints in the guard; dropping it removes them.
#[derive(Debug)]
pub struct Registration {
    guard: &'static SecretGuard,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.guard.write().retain(|(id, _)| *id != self.id);
    }
}

/// A polynomial hash mod 2^61−1 with a base drawn at random once per process.
struct Hasher {
    base: u64,
}

static HASHER: LazyLock<Hasher> = LazyLock::new(|| {
    let mut bytes = [0u8; 8];
    // Without the OS random source the base is fixed; a fixed base only makes crafted
    // collisions (false alarms) easier, never a miss.
    let _ = getrandom::fill(&mut bytes);
    Hasher {
        base: (u64::from_le_bytes(bytes) % (MODULUS - 257)) + 257,
    }
});

impl Hasher {
    fn get() -> &'static Self {
        &HASHER
    }

    /// Rolls a window of `len` projected bytes over `text`, calling `hit` with each window's hash.
    fn roll<T>(
        &self,
        projection: Projection,
        len: usize,
        text: &[u8],
        mut hit: impl FnMut(u64) -> Option<T>,
    ) -> Option<T> {
        // base^(len-1): the weight of the byte leaving the window.
        let top = (1..len).fold(1, |p, _| mul(p, self.base));
        let mut window = vec![0u8; len];
        let mut filled = 0usize;
        let mut h = 0u64;
        for &byte in text {
            let Some(b) = projection.project(byte) else {
                continue;
            };
            let slot = filled % len;
            if filled >= len {
                h = sub(h, mul(u64::from(window[slot]), top));
            }
            h = add(mul(h, self.base), u64::from(b));
            window[slot] = b;
            filled += 1;
            if filled >= len
                && let Some(found) = hit(h)
            {
                window.fill(0);
                return Some(found);
            }
        }
        window.fill(0);
        None
    }
}

fn mul(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    let folded = (product & u128::from(MODULUS)) + (product >> 61);
    reduce(folded as u64)
}

fn add(a: u64, b: u64) -> u64 {
    reduce(a + b)
}

fn sub(a: u64, b: u64) -> u64 {
    reduce(a + MODULUS - b)
}

fn reduce(x: u64) -> u64 {
    let x = (x & MODULUS) + (x >> 61);
    if x >= MODULUS { x - MODULUS } else { x }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] =
        alloy::hex!("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80");
    const PHRASE: &str = "test test test test test test test test test test test junk";

    fn set() -> Fingerprints {
        let mut set = Fingerprints::new();
        set.hex(SecretKind::PrivateKey, &KEY);
        set.words(SecretKind::RecoveryPhrase, PHRASE.split(' '));
        set.text(SecretKind::Password, "correct horse battery");
        set.text(SecretKind::TotpSecret, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP");
        set.hex(SecretKind::TotpSecret, b"12345678901234567890");
        set
    }

    #[test]
    fn finds_each_secret_in_every_listed_encoding() {
        let set = set();
        let key = hex::encode(KEY);
        for (text, kind) in [
            (format!(r#"{{"params":["{key}"]}}"#), SecretKind::PrivateKey),
            (format!("0x{key}"), SecretKind::PrivateKey),
            (format!("0x{}", key.to_uppercase()), SecretKind::PrivateKey),
            (PHRASE.to_owned(), SecretKind::RecoveryPhrase),
            (
                format!(r#"["{}"]"#, PHRASE.replace(' ', "\",\"")),
                SecretKind::RecoveryPhrase,
            ),
            (PHRASE.replace(' ', "\n"), SecretKind::RecoveryPhrase),
            (PHRASE.to_uppercase(), SecretKind::RecoveryPhrase),
            (
                "pw=correct horse battery&x=1".to_owned(),
                SecretKind::Password,
            ),
            (
                "jbswy3dpehpk3pxpjbswy3dpehpk3pxp".to_owned(),
                SecretKind::TotpSecret,
            ),
            (
                format!("0x{}", hex::encode(b"12345678901234567890")),
                SecretKind::TotpSecret,
            ),
        ] {
            assert_eq!(set.find(text.as_bytes()), Some(kind), "{text}");
        }
    }

    #[test]
    fn ordinary_traffic_and_near_misses_pass() {
        let set = set();
        let mut almost = hex::encode(KEY);
        almost.replace_range(63..64, "1");
        for text in [
            r#"[{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}]"#.to_owned(),
            almost,
            hex::encode(&KEY[..31]),
            PHRASE.replace("junk", "jump"),
            "correct horse batter".to_owned(),
            String::new(),
        ] {
            assert_eq!(set.find(text.as_bytes()), None, "{text}");
        }
    }

    #[test]
    fn a_short_password_is_not_looked_for() {
        let mut set = Fingerprints::new();
        set.text(SecretKind::Password, "hunter2");
        assert!(set.is_empty());
    }

    #[test]
    fn the_guard_forgets_a_set_when_its_registration_drops() {
        let text = format!("0x{}", hex::encode(KEY));
        let registration = guard().register(set());
        assert_eq!(guard().find(text.as_bytes()), Some(SecretKind::PrivateKey));
        drop(registration);
        // Other tests may hold their own registrations; this key is only in this one's set.
        assert_eq!(guard().find(text.as_bytes()), None);
    }

    #[test]
    fn the_rolling_hash_equals_the_direct_hash_of_every_window() {
        let hasher = Hasher::get();
        let text = b"The quick brown fox jumps over the lazy dog, 0123456789 times.";
        for len in [1, 2, 7, 31, text.len()] {
            let mut rolled = Vec::new();
            hasher.roll(Projection::Folded, len, text, |h| {
                rolled.push(h);
                None::<()>
            });
            let direct: Vec<u64> = text
                .windows(len)
                .map(|w| {
                    w.iter().fold(0, |h, &b| {
                        add(mul(h, hasher.base), u64::from(b.to_ascii_lowercase()))
                    })
                })
                .collect();
            assert_eq!(rolled, direct, "window {len}");
        }
    }
}
