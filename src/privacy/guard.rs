//! The outbound guard: does this request, log line or text carry a secret keyward holds right now?
//!
//! While the vault is unlocked, the keyring registers fingerprints of what it holds: each private
//! key as hex, the recovery phrase as a word sequence, the password, and the TOTP secret in base32
//! and hex. The guard never keeps the secrets themselves, only a keyed rolling hash of each
//! (mod 2^61−1 with a random base chosen per process) and the set of byte values each group of
//! same-length secrets uses, so it adds no copy of a secret to memory. Locking the vault drops the
//! registration, and with it the fingerprints.
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
    /// A bearer token for MCP over HTTP, registered once a request presents it.
    AccessToken,
}

impl SecretKind {
    pub fn describe(self) -> &'static str {
        match self {
            Self::PrivateKey => "a private key",
            Self::RecoveryPhrase => "the recovery phrase",
            Self::Password => "the wallet password",
            Self::TotpSecret => "the TOTP secret",
            Self::AccessToken => "an HTTP access token",
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
    shapes: HashMap<(Projection, usize), Shape>,
}

impl Fingerprints {
    pub fn new() -> Self {
        Self::default()
    }

    /// Hashes `bytes` as `projection` reads them, without making a copy.
    fn add(&mut self, projection: Projection, kind: SecretKind, bytes: impl Iterator<Item = u8>) {
        let hasher = Hasher::get();
        let mut used = ByteSet::default();
        let (hash, len) =
            bytes
                .filter_map(|b| projection.project(b))
                .fold((0, 0usize), |(h, len), b| {
                    used.insert(b);
                    (add(mul(h, hasher.base), u64::from(b)), len + 1)
                });
        if len == 0 {
            return;
        }
        self.shapes
            .entry((projection, len))
            .or_default()
            .insert(hash, kind, &used);
    }

    /// Secret bytes, found as hex in either case, with or without `0x`.
    ///
    /// Looked for in 16-byte pieces (32 hex digits, the last piece overlapping the one before), so
    /// keys, seeds and the TOTP secret all share one pass over the text, and any 63 hex digits in
    /// a row of the secret are found.
    pub fn hex(&mut self, kind: SecretKind, secret: &[u8]) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        const PIECE: usize = 16;
        let starts = (0..secret.len())
            .step_by(PIECE)
            .map(|start| start.min(secret.len().saturating_sub(PIECE)));
        for start in starts {
            let piece = &secret[start..secret.len().min(start + PIECE)];
            let digits = piece
                .iter()
                .flat_map(|&b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]]);
            self.add(Projection::Folded, kind, digits);
        }
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
        self.shapes
            .iter()
            .find_map(|(&(projection, len), shape)| hasher.roll(projection, len, text, shape))
    }
}

/// A set of byte values.
#[derive(Debug, Default, Clone, Copy)]
struct ByteSet([u64; 4]);

impl ByteSet {
    fn insert(&mut self, b: u8) {
        self.0[usize::from(b >> 6)] |= 1 << (b & 63);
    }

    #[inline]
    fn contains(&self, b: u8) -> bool {
        self.0[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }

    fn union(&mut self, other: &Self) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine |= theirs;
        }
    }
}

/// The fingerprints of one length and projection: a few hashes, behind a 64-bit filter that
/// rejects almost every window with one AND, and the bytes their secrets are made of. A window
/// holding any other byte cannot match, so the hash only rolls over runs of those bytes: for a
/// key in hex, only over hex strings at least 64 digits long.
#[derive(Debug, Default)]
struct Shape {
    filter: u64,
    hashes: Vec<(u64, SecretKind)>,
    bytes: ByteSet,
}

impl Shape {
    fn insert(&mut self, hash: u64, kind: SecretKind, bytes: &ByteSet) {
        self.filter |= 1 << (hash & 63);
        self.hashes.push((hash, kind));
        self.bytes.union(bytes);
    }

    #[inline]
    fn get(&self, hash: u64) -> Option<SecretKind> {
        if self.filter & (1 << (hash & 63)) == 0 {
            return None;
        }
        self.hashes
            .iter()
            .find(|(h, _)| *h == hash)
            .map(|(_, kind)| *kind)
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

    /// Rolls a window of `len` projected bytes over `text`, looking each window's hash up in
    /// `shape`.
    fn roll(
        &self,
        projection: Projection,
        len: usize,
        text: &[u8],
        shape: &Shape,
    ) -> Option<SecretKind> {
        // base^(len-1): the weight of the byte leaving the window.
        let top = (1..len).fold(1, |p, _| mul(p, self.base));
        match projection {
            Projection::Folded => {
                let mut rest = text;
                while !rest.is_empty() {
                    let start = rest
                        .iter()
                        .position(|b| shape.bytes.contains(b.to_ascii_lowercase()))
                        .unwrap_or(rest.len());
                    rest = &rest[start..];
                    let run = rest
                        .iter()
                        .position(|b| !shape.bytes.contains(b.to_ascii_lowercase()))
                        .unwrap_or(rest.len());
                    if run >= len
                        && let Some(found) = self.roll_run(len, top, &rest[..run], shape)
                    {
                        return Some(found);
                    }
                    rest = &rest[run..];
                }
                None
            }
            Projection::Letters => self.roll_letters(len, top, text, shape),
        }
    }

    /// Every window of a run in which every byte counts, so the byte leaving the window is in the
    /// run itself.
    fn roll_run(&self, len: usize, top: u64, run: &[u8], shape: &Shape) -> Option<SecretKind> {
        let mut h = 0u64;
        for &b in &run[..len] {
            h = add(mul(h, self.base), u64::from(b.to_ascii_lowercase()));
        }
        if let Some(found) = shape.get(h) {
            return Some(found);
        }
        for (&gone, &b) in run.iter().zip(&run[len..]) {
            h = sub(h, mul(u64::from(gone.to_ascii_lowercase()), top));
            h = add(mul(h, self.base), u64::from(b.to_ascii_lowercase()));
            if let Some(found) = shape.get(h) {
                return Some(found);
            }
        }
        None
    }

    /// The letters of `text`, other bytes skipped; a letter no secret of the shape holds starts
    /// the window again.
    fn roll_letters(&self, len: usize, top: u64, text: &[u8], shape: &Shape) -> Option<SecretKind> {
        let mut window = vec![0u8; len];
        let (mut slot, mut filled) = (0usize, 0usize);
        let mut h = 0u64;
        let mut found = None;
        for &byte in text {
            if !byte.is_ascii_alphabetic() {
                continue;
            }
            let b = byte.to_ascii_lowercase();
            if !shape.bytes.contains(b) {
                (h, filled) = (0, 0);
                continue;
            }
            if filled == len {
                h = sub(h, mul(u64::from(window[slot]), top));
            } else {
                filled += 1;
            }
            h = add(mul(h, self.base), u64::from(b));
            window[slot] = b;
            slot = if slot + 1 == len { 0 } else { slot + 1 };
            if filled == len {
                found = shape.get(h);
                if found.is_some() {
                    break;
                }
            }
        }
        // The window held letters of the text, possibly of a secret.
        window.fill(0);
        found
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
            // A partial leak: the last digit changed, or only the second half.
            (format!("{}1", &key[..63]), SecretKind::PrivateKey),
            (key[32..].to_owned(), SecretKind::PrivateKey),
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
        for text in [
            r#"[{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}]"#.to_owned(),
            hex::encode(&KEY[..15]),
            hex::encode(&KEY[1..16]),
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
    fn every_window_of_every_length_is_found_in_both_projections() {
        let text = b"The quick brown fox, 0x0123456789ABCDEF, jumps over the lazy dog.";
        for len in [1, 2, 7, 31, text.len()] {
            for start in 0..=text.len() - len {
                let window = &text[start..start + len];
                let mut set = Fingerprints::new();
                set.text(SecretKind::TotpSecret, std::str::from_utf8(window).unwrap());
                assert_eq!(set.find(text), Some(SecretKind::TotpSecret), "{window:?}");
                let letters: String = window
                    .iter()
                    .filter(|b| b.is_ascii_alphabetic())
                    .map(|&b| char::from(b))
                    .collect();
                let mut set = Fingerprints::new();
                set.words(SecretKind::RecoveryPhrase, [letters.as_str()]);
                if !letters.is_empty() {
                    assert_eq!(
                        set.find(text),
                        Some(SecretKind::RecoveryPhrase),
                        "{letters}"
                    );
                }
            }
        }
    }
}
