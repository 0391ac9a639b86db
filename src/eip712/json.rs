//! A strict, iterative JSON reader for typed data, written here instead of using `serde_json`.
//!
//! Two things a signing request needs that `serde_json::Value` cannot give: numbers keep their
//! exact spelling (without `arbitrary_precision`, a 30-digit integer literal silently becomes an
//! f64, and `5.0` is indistinguishable from `5`), and a key repeated in one object is an error
//! (`serde_json` keeps the last one, other implementations the first: the human would review one
//! value while the signature covers another).
//!
//! The reader never recurses, so hostile nesting cannot exhaust the stack; it stops at the first
//! container deeper than [`MAX_DEPTH`](super::MAX_DEPTH). It must never panic on any input.

use std::borrow::Cow;
use std::collections::BTreeSet;

use super::{Eip712Error, MAX_DEPTH};

/// One JSON value, borrowing from the input where it can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Json<'a> {
    Null,
    Bool(bool),
    /// The literal as written (validated against the JSON number grammar), e.g. `-12`, `5.0`.
    Number(&'a str),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    /// Entries in document order; keys are unique.
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl Json<'_> {
    /// "a string", "an object", ...: for messages such as `expected an address, got a number`.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

/// An open container while its contents are read.
enum Frame<'a> {
    Array(Vec<Json<'a>>),
    Object {
        entries: Vec<(Cow<'a, str>, Json<'a>)>,
        seen: BTreeSet<Cow<'a, str>>,
        /// The key whose value is being read.
        key: Cow<'a, str>,
    },
}

/// Parses one JSON document (RFC 8259, no extensions) with nothing but whitespace around it.
pub(super) fn parse(text: &str) -> Result<Json<'_>, Eip712Error> {
    let mut reader = Reader { text, pos: 0 };
    let mut stack: Vec<Frame<'_>> = Vec::new();
    loop {
        // Read the start of a value: a scalar completes it, a container opens a frame.
        reader.skip_whitespace();
        let start = reader.pos;
        let mut value = match reader.peek() {
            Some(b'{') | Some(b'[') => {
                if stack.len() >= MAX_DEPTH {
                    return Err(Eip712Error::TooDeep {
                        max: MAX_DEPTH,
                        offset: start,
                    });
                }
                let open = reader.peek();
                reader.pos += 1;
                reader.skip_whitespace();
                if open == Some(b'[') {
                    if reader.eat(b']') {
                        Json::Array(Vec::new())
                    } else {
                        stack.push(Frame::Array(Vec::new()));
                        continue;
                    }
                } else if reader.eat(b'}') {
                    Json::Object(Vec::new())
                } else {
                    let key = reader.key()?;
                    let mut seen = BTreeSet::new();
                    seen.insert(key.clone());
                    stack.push(Frame::Object {
                        entries: Vec::new(),
                        seen,
                        key,
                    });
                    continue;
                }
            }
            Some(b'"') => Json::String(reader.string()?),
            Some(b't') => reader.literal("true", Json::Bool(true))?,
            Some(b'f') => reader.literal("false", Json::Bool(false))?,
            Some(b'n') => reader.literal("null", Json::Null)?,
            Some(b'-' | b'0'..=b'9') => Json::Number(reader.number()?),
            Some(_) => return Err(reader.error("expected a value")),
            None => return Err(reader.error("the text ends where a value should start")),
        };
        // Hand the finished value to its container; a closing bracket finishes that one too.
        loop {
            let Some(frame) = stack.pop() else {
                reader.skip_whitespace();
                if reader.pos < text.len() {
                    return Err(reader.error("unexpected text after the end of the document"));
                }
                return Ok(value);
            };
            reader.skip_whitespace();
            match frame {
                Frame::Array(mut items) => {
                    items.push(value);
                    if reader.eat(b',') {
                        stack.push(Frame::Array(items));
                        break;
                    }
                    if !reader.eat(b']') {
                        return Err(reader.error("expected , or ] after an array item"));
                    }
                    value = Json::Array(items);
                }
                Frame::Object {
                    mut entries,
                    mut seen,
                    key,
                } => {
                    entries.push((key, value));
                    if reader.eat(b',') {
                        reader.skip_whitespace();
                        let key_at = reader.pos;
                        let key = reader.key()?;
                        if !seen.insert(key.clone()) {
                            return Err(Eip712Error::DuplicateKey {
                                key: key.into_owned(),
                                offset: key_at,
                            });
                        }
                        stack.push(Frame::Object { entries, seen, key });
                        break;
                    }
                    if !reader.eat(b'}') {
                        return Err(reader.error("expected , or } after an object value"));
                    }
                    value = Json::Object(entries);
                }
            }
        }
    }
}

struct Reader<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn error(&self, problem: &'static str) -> Eip712Error {
        Eip712Error::Json {
            problem,
            offset: self.pos,
        }
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &'static str, value: Json<'a>) -> Result<Json<'a>, Eip712Error> {
        if self.text.as_bytes()[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("expected a value"))
        }
    }

    /// An object key and the colon after it.
    fn key(&mut self) -> Result<Cow<'a, str>, Eip712Error> {
        if self.peek() != Some(b'"') {
            return Err(self.error("expected a string key"));
        }
        let key = self.string()?;
        self.skip_whitespace();
        if !self.eat(b':') {
            return Err(self.error("expected : after an object key"));
        }
        Ok(key)
    }

    /// A string starting at the opening quote. Borrowed unless it holds an escape.
    fn string(&mut self) -> Result<Cow<'a, str>, Eip712Error> {
        self.pos += 1;
        let bytes = self.text.as_bytes();
        let mut owned: Option<String> = None;
        let mut run_start = self.pos;
        loop {
            let Some(&byte) = bytes.get(self.pos) else {
                return Err(self.error("a string is not closed"));
            };
            match byte {
                b'"' => {
                    let run = &self.text[run_start..self.pos];
                    self.pos += 1;
                    return Ok(match owned {
                        None => Cow::Borrowed(run),
                        Some(mut text) => {
                            text.push_str(run);
                            Cow::Owned(text)
                        }
                    });
                }
                b'\\' => {
                    let text = owned.get_or_insert_with(String::new);
                    text.push_str(&self.text[run_start..self.pos]);
                    self.pos += 1;
                    let escaped = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.pos += 1;
                            let c = self.unicode_escape()?;
                            text.push(c);
                            run_start = self.pos;
                            continue;
                        }
                        _ => return Err(self.error("unknown escape in a string")),
                    };
                    text.push(escaped);
                    self.pos += 1;
                    run_start = self.pos;
                }
                0x00..=0x1f => return Err(self.error("a control character in a string")),
                // Any other byte, including the parts of a multi-byte UTF-8 character: the input
                // is a &str, so runs between ASCII delimiters are whole characters.
                _ => self.pos += 1,
            }
        }
    }

    /// The four hex digits after `\u` (already consumed), and a low surrogate's if needed.
    fn unicode_escape(&mut self) -> Result<char, Eip712Error> {
        let high = self.hex4()?;
        let code = match high {
            0xd800..=0xdbff => {
                if !(self.eat(b'\\') && self.eat(b'u')) {
                    return Err(self.error("a lone surrogate in a \\u escape"));
                }
                let low = self.hex4()?;
                if !(0xdc00..=0xdfff).contains(&low) {
                    return Err(self.error("a lone surrogate in a \\u escape"));
                }
                0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00)
            }
            0xdc00..=0xdfff => return Err(self.error("a lone surrogate in a \\u escape")),
            _ => high,
        };
        char::from_u32(code).ok_or_else(|| self.error("a lone surrogate in a \\u escape"))
    }

    fn hex4(&mut self) -> Result<u32, Eip712Error> {
        let mut code = 0;
        for _ in 0..4 {
            let digit = self
                .peek()
                .and_then(|byte| char::from(byte).to_digit(16))
                .ok_or_else(|| self.error("a \\u escape needs four hex digits"))?;
            code = code * 16 + digit;
            self.pos += 1;
        }
        Ok(code)
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, returned as written.
    fn number(&mut self) -> Result<&'a str, Eip712Error> {
        let start = self.pos;
        self.eat(b'-');
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if matches!(self.peek(), Some(b'0'..=b'9')) {
                    return Err(self.error("a number has a leading zero"));
                }
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("a number needs a digit after its sign")),
        }
        if self.eat(b'.') {
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("a number needs a digit after its decimal point"));
            }
            self.digits();
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("a number needs a digit in its exponent"));
            }
            self.digits();
        }
        Ok(&self.text[start..self.pos])
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }
}
