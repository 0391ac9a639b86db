//! Masking: shortened addresses for the model's view and the logs, and redacted URLs in logs.
//!
//! An address is shortened to its first and last four hex digits (`0x1234…abcd`): enough to tell
//! a person's few accounts apart at a glance, too little to look one up. Masking works on text,
//! so it also covers addresses inside a review line or an error message: any `0x` followed by
//! exactly 40 hex digits, not part of a longer hex string (a hash or calldata stays whole).

use std::borrow::Cow;
use std::collections::HashSet;

use alloy::primitives::Address;
use serde_json::Value;

/// `0x1234…abcd`, from the checksummed form.
pub fn short(address: &Address) -> String {
    let full = address.to_checksum(None);
    format!("{}…{}", &full[..6], &full[38..])
}

/// Shortens addresses in text, except those in `keep` (such as configured token contracts, which
/// are public and which the model names in its calls).
#[derive(Debug, Default, Clone)]
pub struct Masker {
    keep: HashSet<Address>,
}

impl Masker {
    pub fn new(keep: impl IntoIterator<Item = Address>) -> Self {
        Self {
            keep: keep.into_iter().collect(),
        }
    }

    /// `text` with every address not kept shortened.
    pub fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let bytes = text.as_bytes();
        let mut out: Option<String> = None;
        let mut copied = 0;
        let mut i = 0;
        while let Some(found) = find_0x(bytes, i) {
            let start = found;
            let digits = bytes[start + 2..]
                .iter()
                .take_while(|b| b.is_ascii_hexdigit())
                .count();
            let before_ok = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
            let end = match digits {
                40 => Some(start + 42),
                4 => grouped_end(bytes, start),
                _ => None,
            };
            if let Some(end) = end.filter(|_| before_ok) {
                let address: Option<Address> = text[start + 2..end].replace(' ', "").parse().ok();
                if let Some(address) = address.filter(|a| !self.keep.contains(a)) {
                    let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
                    out.push_str(&text[copied..start]);
                    out.push_str(&short(&address));
                    copied = end;
                    i = end;
                    continue;
                }
            }
            i = start + 2 + digits;
        }
        match out {
            None => Cow::Borrowed(text),
            Some(mut out) => {
                out.push_str(&text[copied..]);
                Cow::Owned(out)
            }
        }
    }

    /// Masks every string in a JSON value, in place.
    pub fn json(&self, value: &mut Value) {
        match value {
            Value::String(text) => {
                if let Cow::Owned(masked) = self.text(text) {
                    *text = masked;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.json(item)),
            Value::Object(fields) => fields.values_mut().for_each(|field| self.json(field)),
            _ => {}
        }
    }
}

/// Where an address written in groups of four (`0x7099 7970 … 79C8`, as reviews show it) that
/// starts at `start` ends, if one does.
fn grouped_end(bytes: &[u8], start: usize) -> Option<usize> {
    let end = start + 2 + 10 * 4 + 9;
    let groups = bytes.get(start + 2..end)?;
    let well_formed = groups.iter().enumerate().all(|(i, b)| {
        if i % 5 == 4 {
            *b == b' '
        } else {
            b.is_ascii_hexdigit()
        }
    });
    let after_ok = bytes.get(end).is_none_or(|b| !b.is_ascii_hexdigit());
    (well_formed && after_ok).then_some(end)
}

fn find_0x(bytes: &[u8], from: usize) -> Option<usize> {
    let rest = bytes.get(from..)?;
    rest.windows(2)
        .position(|w| w[0] == b'0' && (w[1] == b'x' || w[1] == b'X'))
        .map(|p| from + p)
}

/// `text` with the path, query and credentials of every http(s) URL cut off:
/// `https://user:pw@host:8545/v3/KEY?x=1` becomes `https://host:8545/…`.
pub fn redact_urls(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        out.push_str(&rest[..at + 3]);
        let after = &rest[at + 3..];
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | ')'))
            .unwrap_or(after.len());
        let url = &after[..end];
        let authority = url.split(['/', '?', '#']).next().unwrap_or_default();
        let host = authority.rsplit('@').next().unwrap_or_default();
        if authority.contains('@') {
            out.push_str("***@");
        }
        out.push_str(host);
        if url.len() > authority.len() {
            out.push_str("/…");
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

    #[test]
    fn shortens_addresses_in_prose_and_leaves_hashes_whole() {
        let masker = Masker::default();
        let hash = format!("0x{}", "ab".repeat(32));
        let text = format!("Send 1 ETH to {ALICE} (alice). Digest {hash}.");
        assert_eq!(
            masker.text(&text),
            format!("Send 1 ETH to 0xf39F…2266 (alice). Digest {hash}.")
        );
        let lower = ALICE.to_lowercase();
        assert_eq!(masker.text(&lower), "0xf39F…2266");
        assert_eq!(masker.text(&format!("a{lower}")), format!("a{lower}"));
        assert!(matches!(masker.text("nothing here"), Cow::Borrowed(_)));
        assert_eq!(
            masker.text("To: 0xf39F d6e5 1aad 88F6 F4ce 6aB8 8272 79cf fFb9 2266 (main)"),
            "To: 0xf39F…2266 (main)"
        );
        assert_eq!(masker.text("0xf39F d6e5"), "0xf39F d6e5");
    }

    #[test]
    fn kept_addresses_stay_whole_and_json_is_walked() {
        let token: Address = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
            .parse()
            .unwrap();
        let masker = Masker::new([token]);
        let mut value = serde_json::json!({
            "accounts": [{"address": ALICE, "label": "main"}],
            "token": token.to_checksum(None),
            "n": 1,
        });
        masker.json(&mut value);
        assert_eq!(value["accounts"][0]["address"], "0xf39F…2266");
        assert_eq!(value["token"], token.to_checksum(None));
    }

    #[test]
    fn urls_lose_their_path_query_and_credentials() {
        assert_eq!(
            redact_urls("POST https://user:pw@rpc.example:8545/v3/abcdef?key=1 failed"),
            "POST https://***@rpc.example:8545/… failed"
        );
        assert_eq!(
            redact_urls("at http://127.0.0.1:8545/"),
            "at http://127.0.0.1:8545/…"
        );
        assert_eq!(redact_urls("host http://a.b"), "host http://a.b");
    }
}
