//! Values: checks each JSON value against its declared type, normalizes it into a [`Node`], and
//! computes its EIP-712 encoding (`encodeData`) in the same pass.
//!
//! Each value has one reading: an integer is a JSON integer, a decimal string or a 0x hex string
//! (never `5.0` or `1e3`); bytes are 0x hex of the exact length; a struct is an object with
//! exactly its fields. Recursion here follows the JSON nesting, which the reader already bounded.

use std::collections::{BTreeMap, BTreeSet};

use alloy::primitives::{Address, B256, I256, U256, keccak256};

use super::json::Json;
use super::path::Path;
use super::types::{Atomic, Shape, Ty, Types};
use super::{Eip712Error, Member, Node, quote};

/// Decodes values against validated [`Types`], with the type hashes precomputed.
#[derive(Debug)]
pub(super) struct Decoder<'t> {
    pub(super) types: &'t Types,
    pub(super) type_hashes: &'t BTreeMap<String, B256>,
}

impl Decoder<'_> {
    /// A value of struct `name`: its node and `hashStruct` of it.
    pub(super) fn structure(
        &self,
        name: &str,
        json: &Json<'_>,
        at: &Path<'_>,
    ) -> Result<(Node, B256), Eip712Error> {
        let Json::Object(entries) = json else {
            return Err(Eip712Error::WrongJsonType {
                at: at.to_string(),
                expected: format!("an object (struct {name})"),
                got: json.kind(),
            });
        };
        let fields = self.types.fields(name).unwrap_or_default();
        let declared: BTreeSet<&str> = fields.iter().map(|field| field.name.as_str()).collect();
        let mut given = BTreeMap::new();
        for (key, value) in entries {
            if !declared.contains(key.as_ref()) {
                return Err(Eip712Error::UnexpectedKey {
                    at: at.to_string(),
                    key: key.to_string(),
                    why: format!("struct {name} has no such field, and it would not be signed"),
                });
            }
            given.insert(key.as_ref(), value);
        }
        let type_hash = match self.type_hashes.get(name) {
            Some(hash) => *hash,
            None => keccak256(self.types.encode_type(name)?),
        };
        let mut encoded = Vec::with_capacity(32 * (fields.len() + 1));
        encoded.extend_from_slice(type_hash.as_slice());
        let mut members = Vec::with_capacity(fields.len());
        for field in fields {
            let Some(value) = given.get(field.name.as_str()) else {
                return Err(Eip712Error::MissingKey {
                    at: at.to_string(),
                    key: field.name.clone(),
                });
            };
            let ty = Ty::of(&field.ty);
            let (node, word) = self.value(ty, value, &Path::Field(at, &field.name))?;
            encoded.extend_from_slice(word.as_slice());
            members.push(Member {
                name: field.name.clone(),
                type_name: ty.written().to_string(),
                value: node,
            });
        }
        let node = Node::Struct {
            type_name: name.to_string(),
            members,
        };
        Ok((node, keccak256(&encoded)))
    }

    /// A value of any type: its node and its 32-byte `encodeData` word.
    fn value(
        &self,
        ty: Ty<'_>,
        json: &Json<'_>,
        at: &Path<'_>,
    ) -> Result<(Node, B256), Eip712Error> {
        match ty.shape() {
            Shape::Struct(name) => self.structure(name, json, at),
            Shape::Array { element, len } => {
                let Json::Array(items) = json else {
                    return Err(Eip712Error::WrongJsonType {
                        at: at.to_string(),
                        expected: format!("an array ({})", ty.written()),
                        got: json.kind(),
                    });
                };
                if let Some(expected) = len
                    && items.len() != expected
                {
                    return Err(Eip712Error::ArrayLength {
                        at: at.to_string(),
                        type_name: ty.written().to_string(),
                        expected,
                        got: items.len(),
                    });
                }
                let mut encoded = Vec::with_capacity(32 * items.len());
                let mut nodes = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    let (node, word) = self.value(element, item, &Path::Index(at, index))?;
                    encoded.extend_from_slice(word.as_slice());
                    nodes.push(node);
                }
                let node = Node::Array {
                    type_name: ty.written().to_string(),
                    items: nodes,
                };
                Ok((node, keccak256(&encoded)))
            }
            Shape::Atomic(atomic) => atomic_value(atomic, ty.written(), json, at),
        }
    }
}

fn atomic_value(
    atomic: Atomic,
    type_name: &str,
    json: &Json<'_>,
    at: &Path<'_>,
) -> Result<(Node, B256), Eip712Error> {
    let wrong = |expected: &str| Eip712Error::WrongJsonType {
        at: at.to_string(),
        expected: expected.to_string(),
        got: json.kind(),
    };
    match atomic {
        Atomic::Bool => {
            let Json::Bool(value) = json else {
                return Err(wrong("true or false"));
            };
            Ok((Node::Bool(*value), B256::with_last_byte(u8::from(*value))))
        }
        Atomic::String => {
            let Json::String(text) = json else {
                return Err(wrong("a string"));
            };
            Ok((Node::String(text.to_string()), keccak256(text.as_bytes())))
        }
        Atomic::Address => {
            let Json::String(text) = json else {
                return Err(wrong("an address (a 0x-prefixed hex string)"));
            };
            let address = parse_address(text).map_err(|why| Eip712Error::NotAnAddress {
                at: at.to_string(),
                value: quote(text),
                why,
            })?;
            Ok((Node::Address(address), address.into_word()))
        }
        Atomic::Bytes => {
            let Json::String(text) = json else {
                return Err(wrong("bytes (a 0x-prefixed hex string)"));
            };
            let bytes = parse_hex(text).map_err(|why| Eip712Error::BadBytes {
                at: at.to_string(),
                value: quote(text),
                type_name: type_name.to_string(),
                why: why.into(),
            })?;
            let hash = keccak256(&bytes);
            Ok((Node::Bytes(bytes), hash))
        }
        Atomic::FixedBytes(len) => {
            let Json::String(text) = json else {
                return Err(wrong(&format!("{type_name} (a 0x-prefixed hex string)")));
            };
            let bad = |why: String| Eip712Error::BadBytes {
                at: at.to_string(),
                value: quote(text),
                type_name: type_name.to_string(),
                why,
            };
            let bytes = parse_hex(text).map_err(|why| bad(why.into()))?;
            if bytes.len() != len {
                return Err(bad(format!(
                    "it is {} bytes, {type_name} takes exactly {len} (0x and {} hex digits)",
                    bytes.len(),
                    2 * len
                )));
            }
            let mut word = B256::ZERO;
            word[..len].copy_from_slice(&bytes);
            Ok((Node::FixedBytes(bytes), word))
        }
        Atomic::Uint(bits) | Atomic::Int(bits) => {
            let signed = matches!(atomic, Atomic::Int(_));
            let shown = match json {
                Json::Number(literal) => quote_number(literal),
                Json::String(text) => quote(text),
                _ => {
                    return Err(wrong(
                        "an integer (a JSON integer, a decimal string or a 0x hex string)",
                    ));
                }
            };
            let (negative, magnitude) = match parse_integer(json) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => {
                    return Err(Eip712Error::IntegerOutOfRange {
                        at: at.to_string(),
                        value: shown,
                        type_name: type_name.to_string(),
                        range: range(signed, bits),
                    });
                }
                Err(why) => {
                    return Err(Eip712Error::NotAnInteger {
                        at: at.to_string(),
                        value: shown,
                        why: why.into(),
                    });
                }
            };
            // uintN: below 2^N. intN: from -2^(N-1) to 2^(N-1)-1. N is 8..=256, so only 2^256
            // overflows, and every U256 is below it.
            let limit = |exponent: usize| U256::ONE.checked_shl(exponent);
            let fits = match (signed, negative) {
                (false, false) => limit(bits).is_none_or(|limit| magnitude < limit),
                // Not even -0: a uint written with a minus sign is a mistake somewhere.
                (false, true) => false,
                (true, false) => limit(bits - 1).is_some_and(|limit| magnitude < limit),
                (true, true) => limit(bits - 1).is_some_and(|limit| magnitude <= limit),
            };
            if !fits {
                return Err(Eip712Error::IntegerOutOfRange {
                    at: at.to_string(),
                    value: shown,
                    type_name: type_name.to_string(),
                    range: range(signed, bits),
                });
            }
            if signed {
                // Two's complement of the magnitude: sign-extended to 256 bits, as EIP-712 says.
                let raw = if negative {
                    U256::ZERO.wrapping_sub(magnitude)
                } else {
                    magnitude
                };
                let value = I256::from_raw(raw);
                Ok((Node::Int(value), B256::from(raw.to_be_bytes::<32>())))
            } else {
                Ok((
                    Node::Uint(magnitude),
                    B256::from(magnitude.to_be_bytes::<32>()),
                ))
            }
        }
    }
}

/// `0x` and 40 hex digits; when the letters mix cases, they must be the EIP-55 checksum.
fn parse_address(text: &str) -> Result<Address, String> {
    let shape = "expected 0x followed by 40 hex digits";
    let digits = text.strip_prefix("0x").ok_or(shape)?;
    if digits.len() != 40 {
        return Err(shape.into());
    }
    let bytes = parse_hex_digits(digits).ok_or(shape)?;
    let address = Address::from_slice(&bytes);
    let has_upper = digits.bytes().any(|byte| byte.is_ascii_uppercase());
    let has_lower = digits.bytes().any(|byte| byte.is_ascii_lowercase());
    if has_upper && has_lower && address.to_checksum(None) != text {
        return Err(format!(
            "its mixed case fails the EIP-55 checksum (expected {}), so it may be mistyped",
            address.to_checksum(None)
        ));
    }
    Ok(address)
}

/// `0x` and an even number of hex digits (either case).
fn parse_hex(text: &str) -> Result<Vec<u8>, &'static str> {
    let shape = "expected 0x followed by an even number of hex digits";
    let digits = text.strip_prefix("0x").ok_or(shape)?;
    parse_hex_digits(digits).ok_or(shape)
}

fn parse_hex_digits(digits: &str) -> Option<Vec<u8>> {
    if !digits.len().is_multiple_of(2) || !digits.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    hex::decode(digits).ok()
}

/// An integer in one of its three accepted spellings, as a sign and a magnitude.
/// `Ok(None)` when it is well formed but does not fit in 256 bits.
fn parse_integer(json: &Json<'_>) -> Result<Option<(bool, U256)>, &'static str> {
    let (negative, digits, radix) = match json {
        Json::Number(literal) => {
            if literal.contains(['.', 'e', 'E']) {
                return Err(
                    "a JSON number with a fraction or an exponent (even 5.0 or 1e3) is \
                            refused; send a JSON integer or a decimal string",
                );
            }
            // The reader checked the grammar: an optional minus, then digits.
            match literal.strip_prefix('-') {
                Some(digits) => (true, digits, 10),
                None => (false, *literal, 10),
            }
        }
        Json::String(text) => {
            if let Some(hex) = text.strip_prefix("0x") {
                (false, hex, 16)
            } else if text.starts_with("-0x") {
                return Err("a negative number is written in decimal");
            } else {
                match text.strip_prefix('-') {
                    Some(digits) => (true, digits, 10),
                    None => (false, text.as_ref(), 10),
                }
            }
        }
        _ => return Err("expected a JSON integer, a decimal string or a 0x hex string"),
    };
    let valid = !digits.is_empty()
        && digits.bytes().all(|byte| match radix {
            16 => byte.is_ascii_hexdigit(),
            _ => byte.is_ascii_digit(),
        });
    if !valid {
        return Err(if radix == 16 {
            "expected hex digits after 0x"
        } else {
            "expected a JSON integer, a decimal string (digits, an optional leading -) or a 0x \
             hex string"
        });
    }
    let radix_u256 = U256::from(radix);
    let mut magnitude = U256::ZERO;
    for byte in digits.bytes() {
        let digit = char::from(byte).to_digit(radix).unwrap_or_default();
        let Some(next) = magnitude
            .checked_mul(radix_u256)
            .and_then(|shifted| shifted.checked_add(U256::from(digit)))
        else {
            return Ok(None);
        };
        magnitude = next;
    }
    Ok(Some((negative, magnitude)))
}

/// The accepted range of `uintN` / `intN`, for an error message.
fn range(signed: bool, bits: usize) -> String {
    match (signed, bits) {
        (false, 8..=64) => format!("0 to {}", u128::MAX >> (128 - bits)),
        (true, 8..=64) => {
            let max = u128::MAX >> (129 - bits);
            format!("-{} to {max}", max + 1)
        }
        (false, _) => format!("0 to 2^{bits}-1"),
        (true, _) => format!("-2^{0} to 2^{0}-1", bits - 1),
    }
}

/// A number literal for an error message, cut short like [`quote`] cuts strings.
fn quote_number(literal: &str) -> String {
    let quoted = quote(literal);
    // Numbers need no quotes: a number shows as 257, the string "257" as "257".
    quoted
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .map(str::to_string)
        .unwrap_or(quoted)
}
