//! Leak canaries: known secrets, in every encoding they could leak in, and a search for them.

use base64::Engine as _;

/// A set of secrets to look for, each under every encoding it might leak in.
#[derive(Default)]
pub(crate) struct Canaries {
    needles: Vec<(String, Vec<u8>)>,
}

impl Canaries {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn add(&mut self, what: String, needle: Vec<u8>) {
        assert!(
            needle.len() >= 12,
            "canary {what} is too short to search for safely"
        );
        self.needles.push((what, needle));
    }

    /// Raw secret bytes (a key, entropy, a seed, a TOTP secret): hex in both cases with and
    /// without 0x, base64 and base32.
    pub(crate) fn bytes(&mut self, what: &str, secret: &[u8]) {
        let hex = hex::encode(secret);
        self.add(format!("{what} (hex)"), hex.clone().into_bytes());
        self.add(format!("{what} (HEX)"), hex.to_uppercase().into_bytes());
        self.add(
            format!("{what} (base64)"),
            base64::engine::general_purpose::STANDARD
                .encode(secret)
                .trim_end_matches('=')
                .as_bytes()
                .to_vec(),
        );
        let base32 = base32(secret);
        self.add(format!("{what} (base32)"), base32.clone().into_bytes());
        self.add(
            format!("{what} (base32, lower case)"),
            base32.to_lowercase().into_bytes(),
        );
    }

    /// A secret text (a password): as typed, and as the hex and base64 of its bytes.
    pub(crate) fn text(&mut self, what: &str, secret: &str) {
        self.add(format!("{what} (text)"), secret.as_bytes().to_vec());
        self.add(
            format!("{what} (hex of text)"),
            hex::encode(secret).into_bytes(),
        );
        self.add(
            format!("{what} (base64 of text)"),
            base64::engine::general_purpose::STANDARD
                .encode(secret)
                .trim_end_matches('=')
                .as_bytes()
                .to_vec(),
        );
    }

    /// A recovery phrase: the whole phrase, the words run together, and every run of three
    /// consecutive words (a partial leak is a leak).
    pub(crate) fn phrase(&mut self, what: &str, phrase: &str) {
        let words: Vec<&str> = phrase.split_whitespace().collect();
        self.text(what, &words.join(" "));
        self.add(
            format!("{what} (words run together)"),
            words.concat().into_bytes(),
        );
        for (i, window) in words.windows(3).enumerate() {
            self.add(
                format!("{what} (words {}-{})", i + 1, i + 3),
                window.join(" ").into_bytes(),
            );
        }
    }

    /// The first canary found in `haystack`, if any.
    pub(crate) fn find(&self, haystack: &[u8]) -> Option<&str> {
        self.needles
            .iter()
            .find(|(_, needle)| {
                haystack
                    .windows(needle.len())
                    .any(|w| w == needle.as_slice())
            })
            .map(|(what, _)| what.as_str())
    }

    pub(crate) fn assert_absent(&self, haystack: &[u8], place: &str) {
        if let Some(what) = self.find(haystack) {
            panic!("{what} leaked into {place}");
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.needles.len()
    }
}

/// RFC 4648 base32 without padding, the form TOTP secrets travel in.
pub(crate) fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Decodes RFC 4648 base32 (upper case, no padding).
pub(crate) fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for c in text.bytes() {
        let value = ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}
