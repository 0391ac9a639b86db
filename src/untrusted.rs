//! Text from third parties (a token's name and symbol, an RPC error message): sanitized and flagged
//! before it can reach the model or a review.
//!
//! Anyone can deploy a token named "Ignore previous instructions…". So every such string has its
//! control, bidi and zero-width characters removed and its length capped. It travels as its own
//! data field marked `untrusted`, with `suspicious` set and reasons listed when it looks like an
//! instruction or a URL, hid characters, or imitates a configured token's symbol.
//!
//! This module must never return the raw text, and callers must never splice `value` into prose.

use schemars::JsonSchema;
use serde::Serialize;

/// The most characters of untrusted text passed on.
pub const MAX_CHARS: usize = 64;

/// A sanitized third-party string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct UntrustedText {
    /// The text with hidden characters removed, at most 64 characters.
    pub value: String,
    /// Always true: a third party chose this text.
    pub untrusted: bool,
    /// True when the text looks like an instruction or a URL, hid characters, or imitates a
    /// configured token.
    pub suspicious: bool,
    /// What was changed or noticed.
    pub notes: Vec<Note>,
}

/// Why untrusted text was changed or flagged. A fixed vocabulary, never text from the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Note {
    /// Control, bidi or zero-width characters were removed.
    HiddenCharactersRemoved,
    /// The text was cut to 64 characters.
    Truncated,
    /// The text reads like an instruction to the reader.
    LooksLikeInstruction,
    /// The text contains a URL or a domain name.
    ContainsUrl,
    /// The text contains an Ethereum address.
    ContainsAddress,
    /// The text looks like the symbol of a configured token at another address.
    ImitatesConfiguredToken,
    /// The source bytes were not valid UTF-8; invalid sequences were replaced.
    InvalidUtf8,
    /// Nothing readable was left.
    Empty,
}

impl UntrustedText {
    /// Sanitizes raw bytes (as decoded from the chain).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let text = String::from_utf8_lossy(bytes);
        let mut sanitized = Self::new(&text);
        if matches!(text, std::borrow::Cow::Owned(_)) {
            sanitized.flag(Note::InvalidUtf8);
        }
        sanitized
    }

    /// Sanitizes a string.
    pub fn new(raw: &str) -> Self {
        let mut notes = Vec::new();
        let mut value = String::with_capacity(raw.len().min(MAX_CHARS * 4));
        let mut kept = 0;
        let mut hidden = false;
        let mut truncated = false;
        for c in raw.chars() {
            if is_hidden(c) {
                hidden = true;
                continue;
            }
            if kept == MAX_CHARS {
                truncated = true;
                continue;
            }
            value.push(c);
            kept += 1;
        }
        let trimmed = value.trim().to_owned();
        if hidden {
            notes.push(Note::HiddenCharactersRemoved);
        }
        if truncated {
            notes.push(Note::Truncated);
        }
        // Judge the whole raw text, not just the kept prefix, so a payload past the cap still flags.
        let visible: String = raw.chars().filter(|c| !is_hidden(*c)).collect();
        let lower = visible.to_lowercase();
        if looks_like_instruction(&lower) {
            notes.push(Note::LooksLikeInstruction);
        }
        if contains_url(&lower) {
            notes.push(Note::ContainsUrl);
        }
        if contains_address(&lower) {
            notes.push(Note::ContainsAddress);
        }
        if trimmed.is_empty() {
            notes.push(Note::Empty);
        }
        let suspicious = notes.iter().any(|note| note.is_suspicious());
        Self {
            value: trimmed,
            untrusted: true,
            suspicious,
            notes,
        }
    }

    /// Adds a note (and sets `suspicious` when the note is a warning).
    pub fn flag(&mut self, note: Note) {
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
        self.suspicious |= note.is_suspicious();
    }

    /// The text reduced to what a reader compares by eye: letters and digits, upper case, with
    /// common Cyrillic and Greek look-alikes mapped to Latin.
    pub fn skeleton(&self) -> String {
        skeleton(&self.value)
    }
}

impl Note {
    fn is_suspicious(self) -> bool {
        !matches!(self, Self::Truncated | Self::Empty)
    }
}

/// Control (Cc), format (Cf: bidi, zero-width, soft hyphen, tags) and other invisible characters.
pub(crate) fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
        )
}

/// Words that address the reader or ask for an action: rare in genuine token names.
const INSTRUCTION_MARKERS: &[&str] = &[
    "ignore",
    "instruction",
    "previous",
    "prompt",
    "assistant",
    "system:",
    "you must",
    "you are",
    "transfer",
    "send ",
    "approve",
    "claim",
    "airdrop",
    "reward",
    "visit",
    "click",
    "connect your",
    "private key",
    "seed phrase",
    "mnemonic",
    "execute",
    "urgent",
    "immediately",
];

fn looks_like_instruction(lower: &str) -> bool {
    INSTRUCTION_MARKERS
        .iter()
        .any(|marker| lower.contains(marker))
}

fn contains_url(lower: &str) -> bool {
    if lower.contains("://") || lower.contains("www.") {
        return true;
    }
    // A domain: a dot between a word and 2 to 10 letters, like "evil.example" or "claim.io".
    lower
        .split(|c: char| c.is_whitespace() || c == '/' || c == '(' || c == ')')
        .any(|word| {
            word.rsplit_once('.').is_some_and(|(name, tld)| {
                let tld = tld.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
                name.chars().any(char::is_alphabetic)
                    && (2..=10).contains(&tld.len())
                    && tld.bytes().all(|b| b.is_ascii_lowercase())
            })
        })
}

fn contains_address(lower: &str) -> bool {
    lower.match_indices("0x").any(|(at, _)| {
        let digits = &lower[at + 2..];
        digits.len() >= 40 && digits.bytes().take(40).all(|b| b.is_ascii_hexdigit())
    })
}

/// See [`UntrustedText::skeleton`].
pub fn skeleton(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'А' | 'а' | 'Α' | 'α' => 'A',
            'В' | 'в' | 'Β' | 'β' => 'B',
            'С' | 'с' | 'Ϲ' => 'C',
            'Е' | 'е' | 'Ε' | 'ε' => 'E',
            'Н' | 'н' | 'Η' => 'H',
            'І' | 'і' | 'Ι' | 'ι' => 'I',
            'Ј' | 'ј' => 'J',
            'К' | 'к' | 'Κ' | 'κ' => 'K',
            'М' | 'м' | 'Μ' => 'M',
            'Ν' => 'N',
            'О' | 'о' | 'Ο' | 'ο' | '0' => 'O',
            'Р' | 'р' | 'Ρ' | 'ρ' => 'P',
            'Ѕ' | 'ѕ' => 'S',
            'Т' | 'т' | 'Τ' | 'τ' => 'T',
            'Х' | 'х' | 'Χ' | 'χ' => 'X',
            'У' | 'у' | 'Υ' | 'υ' => 'Y',
            'Ζ' => 'Z',
            other => other.to_ascii_uppercase(),
        })
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass_unflagged() {
        for name in [
            "USD Coin",
            "Wrapped Ether",
            "Dai Stablecoin",
            "USDC.e",
            "stETH",
        ] {
            let text = UntrustedText::new(name);
            assert_eq!(text.value, name);
            assert!(text.untrusted);
            assert!(!text.suspicious, "{name}: {:?}", text.notes);
        }
    }

    #[test]
    fn hidden_characters_are_removed_and_flagged() {
        let text = UntrustedText::new("T\u{200B}USD\u{202E}\u{E0041}\u{0007}");
        assert_eq!(text.value, "TUSD");
        assert!(text.suspicious);
        assert_eq!(text.notes, [Note::HiddenCharactersRemoved]);
    }

    #[test]
    fn injections_and_urls_are_flagged_even_past_the_cap() {
        let long = format!("{} visit https://evil.example", "a".repeat(100));
        let text = UntrustedText::new(&long);
        assert_eq!(text.value.chars().count(), MAX_CHARS);
        assert!(text.notes.contains(&Note::Truncated));
        assert!(text.notes.contains(&Note::ContainsUrl));
        assert!(text.notes.contains(&Note::LooksLikeInstruction));

        let domain = UntrustedText::new("Free tokens at claim-now.xyz");
        assert!(
            domain.notes.contains(&Note::ContainsUrl),
            "{:?}",
            domain.notes
        );
        let address = UntrustedText::new("send to 0x000000000000000000000000000000000000dEaD");
        assert!(address.notes.contains(&Note::ContainsAddress));
    }

    #[test]
    fn invalid_utf8_is_replaced_and_flagged() {
        let text = UntrustedText::from_bytes(b"ok\xffok");
        assert_eq!(text.value, "ok\u{FFFD}ok");
        assert!(text.notes.contains(&Note::InvalidUtf8));
    }

    #[test]
    fn skeletons_see_through_look_alikes() {
        // Cyrillic Т and С, Greek Ο.
        assert_eq!(skeleton("UЅDС"), "USDC");
        assert_eq!(skeleton("ТUSD"), "TUSD");
        assert_eq!(skeleton("Τ.U-S D"), "TUSD");
    }
}
