//! BIP-32 derivation paths as the Ethereum app takes them: one to ten indexes, each hardened or
//! not, sent as a count byte and then each index as a big-endian u32.
//!
//! A path is parsed once at the edge into [`DerivationPath`]; nothing else in this crate takes a
//! path as text.

use std::fmt;

use crate::error::{DeviceError, Result};

/// The bit that marks a hardened index.
pub const HARDENED: u32 = 0x8000_0000;

/// The most indexes the app accepts in one path.
pub const MAX_DEPTH: usize = 10;

/// A validated derivation path such as `m/44'/60'/0'/0/0`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DerivationPath {
    /// 1..=10 indexes, hardened ones with [`HARDENED`] set.
    indexes: Vec<u32>,
}

impl DerivationPath {
    /// Parses `m/44'/60'/0'/0/0`. The leading `m/` may be left out (Ledger's own tools write
    /// `44'/60'/0'/0/0`); `'`, `h` or `H` marks a hardened index.
    pub fn parse(text: &str) -> Result<Self> {
        let body = match text.strip_prefix("m/") {
            Some(body) => body,
            None if text == "m" || text.trim().is_empty() => {
                return Err(path_error(
                    "is empty: write it like m/44'/60'/0'/0/0".to_owned(),
                ));
            }
            None => text,
        };
        let mut indexes = Vec::new();
        for (position, part) in body.split('/').enumerate() {
            if position == MAX_DEPTH {
                return Err(path_error(format!(
                    "has more than {MAX_DEPTH} indexes: the Ledger accepts at most {MAX_DEPTH}"
                )));
            }
            indexes.push(parse_index(position + 1, part)?);
        }
        Ok(Self { indexes })
    }

    /// A path from raw indexes (hardened ones with [`HARDENED`] set).
    pub fn from_indexes(indexes: &[u32]) -> Result<Self> {
        if indexes.is_empty() {
            return Err(path_error(
                "is empty: it needs at least one index".to_owned(),
            ));
        }
        if indexes.len() > MAX_DEPTH {
            return Err(path_error(format!(
                "has {} indexes: the Ledger accepts at most {MAX_DEPTH}",
                indexes.len()
            )));
        }
        Ok(Self {
            indexes: indexes.to_vec(),
        })
    }

    /// Ledger Live's account `account`: `m/44'/60'/account'/0/0`.
    ///
    /// `account` is a hardened index, so only its low 31 bits count: callers holding an
    /// unchecked number use [`DerivationPath::try_ledger_live`], which refuses 2^31 and above
    /// instead of wrapping to a different account.
    pub fn ledger_live(account: u32) -> Self {
        Self {
            indexes: vec![44 | HARDENED, 60 | HARDENED, account | HARDENED, 0, 0],
        }
    }

    /// [`DerivationPath::ledger_live`], refusing an account number of 2^31 or more.
    pub fn try_ledger_live(account: u32) -> Result<Self> {
        if account & HARDENED != 0 {
            return Err(path_error(format!(
                "account {account} is out of range: accounts go from 0 to 2147483647"
            )));
        }
        Ok(Self::ledger_live(account))
    }

    /// The indexes, hardened ones with [`HARDENED`] set.
    pub fn indexes(&self) -> &[u32] {
        &self.indexes
    }

    /// The app's encoding: a count byte, then each index as a big-endian u32.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(1 + 4 * self.indexes.len());
        // At most MAX_DEPTH (10) indexes, by construction.
        bytes.push(self.indexes.len() as u8);
        for index in &self.indexes {
            bytes.extend_from_slice(&index.to_be_bytes());
        }
        bytes
    }

    /// Reads an encoded path from the front of `bytes`; returns it and the bytes after it.
    /// `None` if the count is 0 or above [`MAX_DEPTH`], or the bytes end early.
    pub fn decode(bytes: &[u8]) -> Option<(Self, &[u8])> {
        let (&count, rest) = bytes.split_first()?;
        let count = usize::from(count);
        if count == 0 || count > MAX_DEPTH {
            return None;
        }
        let (encoded, rest) = rest.split_at_checked(4 * count)?;
        let indexes = encoded
            .chunks_exact(4)
            .map(|chunk| u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
            .collect();
        Some((Self { indexes }, rest))
    }
}

impl fmt::Display for DerivationPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("m")?;
        for index in &self.indexes {
            if index & HARDENED != 0 {
                write!(f, "/{}'", index & !HARDENED)?;
            } else {
                write!(f, "/{index}")?;
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for DerivationPath {
    type Err = DeviceError;

    fn from_str(text: &str) -> Result<Self> {
        Self::parse(text)
    }
}

fn path_error(message: String) -> DeviceError {
    DeviceError::Path(message)
}

/// One index of a path; `position` counts from 1 for messages.
fn parse_index(position: usize, part: &str) -> Result<u32> {
    let (digits, hardened) = match part.strip_suffix(['\'', 'h', 'H']) {
        Some(digits) => (digits, true),
        None => (part, false),
    };
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(path_error(format!(
            "has an invalid index {position} ({}): each index is a decimal number, optionally \
             followed by ' for hardened, as in m/44'/60'/0'/0/0",
            shorten(part)
        )));
    }
    // Any digit string too long for u32 is also out of range.
    let index = digits
        .parse::<u32>()
        .ok()
        .filter(|index| index & HARDENED == 0);
    let Some(index) = index else {
        return Err(path_error(format!(
            "has index {position} ({}) out of range: indexes go from 0 to 2147483647 \
             (mark hardened ones with ')",
            shorten(part)
        )));
    };
    Ok(if hardened { index | HARDENED } else { index })
}

/// Quotes a piece of the caller's text, cut short so a pasted blob cannot flood a message.
fn shorten(part: &str) -> String {
    const LIMIT: usize = 24;
    match part.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{:?}…", &part[..cut]),
        None => format!("{part:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays_the_standard_path() {
        let path = DerivationPath::parse("m/44'/60'/0'/0/0").unwrap();
        assert_eq!(
            path.indexes(),
            &[0x8000_002c, 0x8000_003c, 0x8000_0000, 0, 0]
        );
        assert_eq!(path.to_string(), "m/44'/60'/0'/0/0");
    }

    #[test]
    fn encodes_like_the_apdu_md_example() {
        // APDU.md: m/44'/60'/0'/0/0 encodes as 05 8000002c 8000003c 80000000 00000000 00000000.
        let path = DerivationPath::parse("m/44'/60'/0'/0/0").unwrap();
        assert_eq!(
            hex::encode(path.encode()),
            "058000002c8000003c800000000000000000000000"
        );
    }

    #[test]
    fn accepts_h_markers_and_a_missing_m() {
        let expected = DerivationPath::parse("m/44'/60'/0'/0/0").unwrap();
        for text in ["m/44h/60h/0h/0/0", "m/44H/60H/0H/0/0", "44'/60'/0'/0/0"] {
            let path = DerivationPath::parse(text).unwrap();
            assert_eq!(path, expected, "{text}");
            assert_eq!(path.to_string(), "m/44'/60'/0'/0/0");
        }
        let path: DerivationPath = "m/44'/60'/0'/7".parse().unwrap();
        assert_eq!(path.to_string(), "m/44'/60'/0'/7");
    }

    #[test]
    fn ledger_live_accounts() {
        assert_eq!(
            DerivationPath::ledger_live(0),
            DerivationPath::parse("m/44'/60'/0'/0/0").unwrap()
        );
        assert_eq!(
            DerivationPath::ledger_live(3).to_string(),
            "m/44'/60'/3'/0/0"
        );
        assert_eq!(
            DerivationPath::try_ledger_live(2_147_483_647)
                .unwrap()
                .to_string(),
            "m/44'/60'/2147483647'/0/0"
        );
        let error = DerivationPath::try_ledger_live(HARDENED).unwrap_err();
        assert!(error.to_string().contains("out of range"), "{error}");
    }

    #[test]
    fn refuses_what_is_not_a_path_and_says_why() {
        let cases = [
            ("", "is empty"),
            ("m", "is empty"),
            ("m/", "invalid index 1"),
            ("m/44'//0", "invalid index 2"),
            ("m/44'/60'/x/0/0", "invalid index 3"),
            ("m/44'/60'/-1/0/0", "invalid index 3"),
            ("m/44'/60'/+1/0/0", "invalid index 3"),
            ("m/44'/60'/ 0/0/0", "invalid index 3"),
            ("m/44''/60'", "invalid index 1"),
            ("m/'", "invalid index 1"),
            ("M/44'/60'", "invalid index 1"),
            ("m/44'/60'/0'/0/0/", "invalid index 6"),
            ("m/2147483648", "index 1 (\"2147483648\") out of range"),
            ("m/2147483648'", "out of range"),
            ("m/99999999999999999999", "out of range"),
            ("m/0/1/2/3/4/5/6/7/8/9/10", "more than 10"),
        ];
        for (text, reason) in cases {
            let error = DerivationPath::parse(text).unwrap_err();
            assert!(matches!(error, DeviceError::Path(_)), "{text}: {error:?}");
            let message = error.to_string();
            assert!(message.starts_with("the derivation path "), "{message}");
            assert!(message.contains(reason), "{text}: {message}");
        }
        // The deepest path the app takes still parses.
        let deepest = DerivationPath::parse("m/0/1/2/3/4/5/6/7/8/9").unwrap();
        assert_eq!(deepest.encode().len(), 41);
        assert_eq!(
            DerivationPath::parse("m/2147483647'").unwrap().indexes(),
            &[u32::MAX]
        );
    }

    #[test]
    fn long_junk_is_quoted_short() {
        let junk = "x".repeat(10_000);
        let message = DerivationPath::parse(&junk).unwrap_err().to_string();
        assert!(message.len() < 300, "{message}");
    }

    #[test]
    fn from_indexes_checks_the_depth() {
        assert!(DerivationPath::from_indexes(&[]).is_err());
        assert!(DerivationPath::from_indexes(&[0; 11]).is_err());
        assert_eq!(
            DerivationPath::from_indexes(&[44 | HARDENED, 7])
                .unwrap()
                .to_string(),
            "m/44'/7"
        );
    }

    #[test]
    fn decode_reads_back_what_encode_wrote() {
        let path = DerivationPath::parse("m/44'/60'/1'/0/9").unwrap();
        let mut bytes = path.encode();
        bytes.extend_from_slice(b"rest");
        let (decoded, rest) = DerivationPath::decode(&bytes).unwrap();
        assert_eq!(decoded, path);
        assert_eq!(rest, b"rest");

        assert_eq!(DerivationPath::decode(&[]), None);
        assert_eq!(DerivationPath::decode(&[0]), None);
        assert_eq!(DerivationPath::decode(&[11; 45]), None);
        assert_eq!(DerivationPath::decode(&[2, 0, 0, 0, 1, 0, 0]), None);
    }
}
