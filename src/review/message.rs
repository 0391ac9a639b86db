//! The review of an EIP-191 personal message: every byte the key will sign, shown as text when it
//! is text and as hex when it is not, with invisible characters escaped.

use alloy::primitives::Address;

use super::{Review, Severity, Text, Warning, escape_hidden, finish, grouped};
use crate::signer::message::personal_hash;
use crate::untrusted::is_hidden;

/// Hex bytes per line when a message is not text.
const HEX_PER_LINE: usize = 32;

/// Everything a message review is made from.
#[derive(Debug, Clone)]
pub struct MessageInput<'a> {
    pub from_label: &'a str,
    pub from: Address,
    pub message: &'a [u8],
    /// `policy.blind_signing`: whether a message that looks like a hash may be signed at all.
    pub blind_signing: bool,
}

pub fn personal_message(input: &MessageInput<'_>) -> Review {
    let MessageInput {
        from_label,
        from,
        message,
        blind_signing,
    } = *input;
    let mut warnings = Vec::new();
    let title = format!("Sign a message as {from_label}");
    let mut text = Text(String::new());
    text.0.push_str(&format!("{title}\n{}\n", "-".repeat(64)));
    text.line(
        "Standard",
        "EIP-191 personal message: not a transaction, and valid on any chain",
    );
    text.line("From", from_label);
    text.more(grouped(from));

    let bytes = message.len();
    match std::str::from_utf8(message) {
        Ok(utf8) if !utf8.is_empty() => {
            let lines: Vec<&str> = utf8.split('\n').collect();
            let mut escaped = false;
            text.line(
                "Message",
                format!(
                    "{bytes} bytes of UTF-8 text, {} line{}:",
                    lines.len(),
                    if lines.len() == 1 { "" } else { "s" }
                ),
            );
            for line in lines {
                let shown: String = line
                    .chars()
                    .map(|c| {
                        if is_hidden(c) {
                            escaped = true;
                            escape_hidden(c)
                        } else {
                            c.to_string()
                        }
                    })
                    .collect();
                text.more(format!("| {shown}"));
            }
            if escaped {
                warnings.push(Warning {
                    severity: Severity::Warn,
                    text: "the message holds invisible or direction-changing characters, shown \
                           escaped as \\u{...}: make sure you know why"
                        .into(),
                    blocks: false,
                });
            }
        }
        _ => {
            text.line("Message", format!("{bytes} bytes, not text; in hex:"));
            for chunk in message.chunks(HEX_PER_LINE) {
                text.more(format!("| {}", hex::encode(chunk)));
            }
            if bytes == 32 {
                warnings.push(Warning {
                    severity: Severity::Critical,
                    text: "these 32 bytes look like a hash: signing one can authorize anything, \
                           such as a transaction or a permit, that this review cannot show \
                           (blind signing)"
                        .into(),
                    blocks: !blind_signing,
                });
            } else {
                warnings.push(Warning {
                    severity: Severity::Warn,
                    text: "the message is not text: sign it only if you know what these bytes are"
                        .into(),
                    blocks: false,
                });
            }
        }
    }
    text.line("Digest", personal_hash(message).to_string());
    finish(title, text, warnings)
}
