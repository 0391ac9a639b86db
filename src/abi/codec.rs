//! Calldata: JSON arguments to bytes, and bytes back to a [`Call`], canonical encoding only.
//!
//! The decoder accepts exactly the bytes the encoder would write, and checks this as it goes:
//! every offset must point where the canonical encoding puts the value (right after the previous
//! dynamic value, so nothing overlaps, is skipped or is read twice), every length must fit in what
//! is left, padding must be zero, integers must fit their type and bools be 0 or 1, and nothing may
//! follow the last value. Because values never share bytes, what is decoded is never larger than
//! the calldata, which is itself capped at [`MAX_CALLDATA_BYTES`]. As a last guard the decoded
//! arguments are encoded again and must give back the same bytes.

use alloy::primitives::{Address, I256, Sign, U256};

use super::signature::{Function, Param, Type};
use super::value::{Arg, Call, Value};
use super::{AbiError, ArgumentProblem, CalldataProblem, MAX_CALLDATA_BYTES, Result};

impl Function {
    /// Calldata for this function: the selector, then `args` (a JSON array, one item per
    /// parameter) ABI-encoded.
    ///
    /// Addresses are 0x strings whose EIP-55 checksum must be right if they mix cases; integers
    /// are decimal strings, 0x hex strings or JSON integers (never floats), optionally negative for
    /// `intN`, and must fit their type; bools are `true`/`false`; `string` is a JSON string;
    /// `bytes` and `bytesN` are 0x hex, exactly N bytes for `bytesN`; arrays and tuples are JSON
    /// arrays. Errors name the argument: `argument 2 (amount): ...`.
    pub fn encode(&self, args: &serde_json::Value) -> Result<Vec<u8>> {
        let serde_json::Value::Array(args) = args else {
            return Err(AbiError::ArgumentsNotArray { got: kind(args) });
        };
        if args.len() != self.inputs().len() {
            return Err(AbiError::ArgumentCount {
                signature: self.signature().to_owned(),
                expected: self.inputs().len(),
                got: args.len(),
            });
        }
        let items: Vec<_> = self
            .inputs()
            .iter()
            .zip(args)
            .enumerate()
            .map(|(index, (param, json))| (&param.ty, json, argument(index, param)))
            .collect();
        let mut encoder = Encoder {
            budget: MAX_CALLDATA_BYTES - 4,
            path: Vec::new(),
        };
        let mut out = self.selector().to_vec();
        encoder.sequence(&items, &mut out)?;
        Ok(out)
    }

    /// Decodes calldata for this function, accepting only its canonical encoding (see the
    /// module documentation).
    pub fn decode(&self, calldata: &[u8]) -> Result<Call> {
        if calldata.len() > MAX_CALLDATA_BYTES {
            return Err(AbiError::CalldataTooLarge {
                len: calldata.len(),
            });
        }
        let Some((selector, data)) = calldata.split_first_chunk::<4>() else {
            return Err(AbiError::NoSelector {
                len: calldata.len(),
            });
        };
        if *selector != self.selector() {
            return Err(AbiError::WrongSelector {
                signature: self.signature().to_owned(),
                expected: self.selector(),
                got: *selector,
            });
        }
        let items: Vec<_> = self
            .inputs()
            .iter()
            .enumerate()
            .map(|(index, param)| (&param.ty, argument(index, param)))
            .collect();
        let mut decoder = Decoder {
            data,
            path: Vec::new(),
        };
        let (values, end) = decoder.sequence(&items, 0)?;
        if end != data.len() {
            return Err(AbiError::TrailingBytes {
                len: data.len().saturating_sub(end),
            });
        }
        let call = Call {
            signature: self.signature().to_owned(),
            name: self.name().to_owned(),
            selector: self.selector(),
            args: args(self.inputs(), values),
        };
        // The checks above should make this impossible; it is cheap and says in one line what
        // "canonical" means.
        if self.encode(&call.arguments_json()).ok().as_deref() != Some(calldata) {
            return Err(AbiError::NotCanonical);
        }
        Ok(call)
    }
}

fn args(params: &[Param], values: Vec<Value>) -> Vec<Arg> {
    params
        .iter()
        .zip(values)
        .map(|(param, value)| Arg {
            name: param.name.clone(),
            ty: param.ty.to_string(),
            value,
        })
        .collect()
}

// --- Paths -------------------------------------------------------------------------------------

/// One step from the argument list to the value an error is about.
#[derive(Debug, Clone, Copy)]
enum Segment<'a> {
    /// Counted from 1 in messages, as a person counts arguments.
    Argument { index: usize, name: Option<&'a str> },
    /// Counted from 0, as the index into the JSON array.
    Element(usize),
    /// By name, or by index from 0 when the component has none.
    Component { index: usize, name: Option<&'a str> },
}

fn argument(index: usize, param: &Param) -> Segment<'_> {
    Segment::Argument {
        index,
        name: param.name.as_deref(),
    }
}

/// `argument 2 (orders)[3].price`
fn render(path: &[Segment<'_>]) -> String {
    let mut text = String::new();
    for segment in path {
        match *segment {
            Segment::Argument { index, name } => {
                text.push_str(&format!("argument {}", index + 1));
                if let Some(name) = name {
                    text.push_str(&format!(" ({name})"));
                }
            }
            Segment::Element(index) => text.push_str(&format!("[{index}]")),
            Segment::Component {
                name: Some(name), ..
            } => text.push_str(&format!(".{name}")),
            Segment::Component { index, name: None } => text.push_str(&format!(".{index}")),
        }
    }
    if text.is_empty() {
        text.push_str("the arguments");
    }
    text
}

// --- Encoding ----------------------------------------------------------------------------------

struct Encoder<'a> {
    /// Bytes of calldata still allowed; every word written takes from it first.
    budget: usize,
    path: Vec<Segment<'a>>,
}

type EncodeItem<'a> = (&'a Type, &'a serde_json::Value, Segment<'a>);

impl<'a> Encoder<'a> {
    fn fail(&self, problem: ArgumentProblem) -> AbiError {
        AbiError::Argument {
            path: render(&self.path),
            problem,
        }
    }

    fn take(&mut self, bytes: usize) -> Result<()> {
        match self.budget.checked_sub(bytes) {
            Some(rest) => {
                self.budget = rest;
                Ok(())
            }
            None => Err(self.fail(ArgumentProblem::TooLarge)),
        }
    }

    /// Heads in order, then the tails of the dynamic items, each head of a dynamic item holding
    /// its tail's offset from the start of the sequence.
    fn sequence(&mut self, items: &[EncodeItem<'a>], out: &mut Vec<u8>) -> Result<()> {
        let head_len = items
            .iter()
            .fold(0usize, |sum, (ty, ..)| sum.saturating_add(ty.head_size()));
        let mut tail = Vec::new();
        for &(ty, json, segment) in items {
            self.path.push(segment);
            if ty.is_dynamic() {
                self.take(32)?;
                push_length(out, head_len.saturating_add(tail.len()));
                self.value(ty, json, &mut tail)?;
            } else {
                self.value(ty, json, out)?;
            }
            self.path.pop();
        }
        out.extend_from_slice(&tail);
        Ok(())
    }

    fn value(
        &mut self,
        ty: &'a Type,
        json: &'a serde_json::Value,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        match ty {
            Type::Address => {
                let address = self.address(json)?;
                self.take(32)?;
                out.extend_from_slice(&[0; 12]);
                out.extend_from_slice(address.as_slice());
            }
            Type::Bool => {
                let value = json
                    .as_bool()
                    .ok_or_else(|| self.wrong_kind("true or false", json))?;
                self.take(32)?;
                push_length(out, usize::from(value));
            }
            Type::Uint(bits) | Type::Int(bits) => {
                let word = self.integer(ty, *bits, json)?;
                self.take(32)?;
                out.extend_from_slice(&word);
            }
            Type::FixedBytes(len) => {
                let bytes = self.hex(ty, Some(*len), json)?;
                self.take(32)?;
                push_padded(out, &bytes);
            }
            Type::Bytes => {
                let bytes = self.hex(ty, None, json)?;
                self.dynamic_bytes(&bytes, out)?;
            }
            Type::String => {
                let text = json
                    .as_str()
                    .ok_or_else(|| self.wrong_kind("a string", json))?;
                self.dynamic_bytes(text.as_bytes(), out)?;
            }
            Type::Array(inner) => {
                let items = self.array(ty, json)?;
                self.take(32)?;
                push_length(out, items.len());
                self.elements(inner, items, out)?;
            }
            Type::FixedArray(inner, len) => {
                let items = self.array(ty, json)?;
                if items.len() != *len {
                    return Err(self.fail(ArgumentProblem::ArrayLength {
                        ty: ty.to_string(),
                        expected: *len,
                        got: items.len(),
                    }));
                }
                self.elements(inner, items, out)?;
            }
            Type::Tuple(components) => {
                let items = self.array(ty, json)?;
                if items.len() != components.len() {
                    return Err(self.fail(ArgumentProblem::TupleLength {
                        ty: ty.to_string(),
                        expected: components.len(),
                        got: items.len(),
                    }));
                }
                let items: Vec<_> = components
                    .iter()
                    .zip(items)
                    .enumerate()
                    .map(|(index, (component, json))| {
                        let name = component.name.as_deref();
                        (&component.ty, json, Segment::Component { index, name })
                    })
                    .collect();
                self.sequence(&items, out)?;
            }
        }
        Ok(())
    }

    fn elements(
        &mut self,
        inner: &'a Type,
        items: &'a [serde_json::Value],
        out: &mut Vec<u8>,
    ) -> Result<()> {
        // Each element takes at least its head: refuse a huge array before walking it.
        if items.len().saturating_mul(inner.head_size()) > self.budget {
            return Err(self.fail(ArgumentProblem::TooLarge));
        }
        let items: Vec<_> = items
            .iter()
            .enumerate()
            .map(|(index, json)| (inner, json, Segment::Element(index)))
            .collect();
        self.sequence(&items, out)
    }

    fn dynamic_bytes(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.take(
            bytes
                .len()
                .div_ceil(32)
                .saturating_mul(32)
                .saturating_add(32),
        )?;
        push_length(out, bytes.len());
        push_padded(out, bytes);
        Ok(())
    }

    fn wrong_kind(&self, expected: &'static str, json: &serde_json::Value) -> AbiError {
        self.fail(ArgumentProblem::WrongKind {
            expected,
            got: kind(json),
        })
    }

    fn array(&self, ty: &Type, json: &'a serde_json::Value) -> Result<&'a [serde_json::Value]> {
        match json {
            serde_json::Value::Array(items) => Ok(items),
            _ => Err(self.wrong_kind(
                if matches!(ty, Type::Tuple(_)) {
                    "a JSON array of the tuple's components"
                } else {
                    "a JSON array"
                },
                json,
            )),
        }
    }

    fn address(&self, json: &serde_json::Value) -> Result<Address> {
        let text = json
            .as_str()
            .ok_or_else(|| self.wrong_kind("an address as a 0x string", json))?;
        let mut bytes = [0u8; 20];
        let digits = text
            .strip_prefix("0x")
            .filter(|digits| hex::decode_to_slice(digits, &mut bytes).is_ok())
            .ok_or_else(|| self.fail(ArgumentProblem::BadAddress(snippet(text))))?;
        let address = Address::from(bytes);
        let mixed_case = digits.bytes().any(|b| b.is_ascii_uppercase())
            && digits.bytes().any(|b| b.is_ascii_lowercase());
        // Deliberately no hint at the right spelling: that would turn a typo into a valid address.
        if mixed_case && address.to_checksum(None).get(2..) != Some(digits) {
            return Err(self.fail(ArgumentProblem::BadChecksum(snippet(text))));
        }
        Ok(address)
    }

    /// The 32-byte word of an integer argument, range-checked to `ty`.
    fn integer(&self, ty: &Type, bits: usize, json: &serde_json::Value) -> Result<[u8; 32]> {
        let (negative, magnitude, shown) = match json {
            serde_json::Value::Number(number) => {
                if let Some(value) = number.as_u64() {
                    (false, U256::from(value), number.to_string())
                } else if let Some(value) = number.as_i64() {
                    (
                        value < 0,
                        U256::from(value.unsigned_abs()),
                        number.to_string(),
                    )
                } else {
                    return Err(self.fail(ArgumentProblem::NotAnInteger(number.to_string())));
                }
            }
            serde_json::Value::String(text) => {
                let (negative, unsigned) = match text.strip_prefix('-') {
                    Some(rest) => (true, rest),
                    None => (false, text.as_str()),
                };
                let bad = || self.fail(ArgumentProblem::BadInteger(snippet(text)));
                let (digits, radix, max_digits) = match unsigned.strip_prefix("0x") {
                    Some(hex) if hex.bytes().all(|b| b.is_ascii_hexdigit()) => (hex, 16, 64),
                    None if unsigned.bytes().all(|b| b.is_ascii_digit()) => (unsigned, 10, 78),
                    _ => return Err(bad()),
                };
                if digits.is_empty() {
                    return Err(bad());
                }
                let significant = digits.trim_start_matches('0');
                let magnitude = if significant.len() > max_digits {
                    None
                } else {
                    U256::from_str_radix(significant, radix).ok()
                };
                match magnitude {
                    Some(magnitude) => (negative, magnitude, snippet(text)),
                    None => return Err(self.out_of_range(ty, bits, snippet(text))),
                }
            }
            _ => {
                return Err(self.wrong_kind(
                    "an integer as a decimal string, a 0x hex string or a JSON integer",
                    json,
                ));
            }
        };
        let word = match ty {
            Type::Int(_) => {
                // |min| = 2^(bits-1) is allowed for negatives, one less for positives.
                let limit = U256::from(1u8) << (bits - 1);
                let fits = if negative {
                    magnitude <= limit
                } else {
                    magnitude < limit
                };
                let sign = if negative {
                    Sign::Negative
                } else {
                    Sign::Positive
                };
                I256::checked_from_sign_and_abs(sign, magnitude)
                    .filter(|_| fits)
                    .map(|value| value.to_be_bytes::<32>())
            }
            _ => (!negative && (bits == 256 || magnitude >> bits == U256::ZERO))
                .then(|| magnitude.to_be_bytes::<32>()),
        };
        word.ok_or_else(|| self.out_of_range(ty, bits, shown))
    }

    fn out_of_range(&self, ty: &Type, bits: usize, value: String) -> AbiError {
        let signed = matches!(ty, Type::Int(_));
        let range = match (signed, bits) {
            (false, ..=64) => format!("0 to {}", u128::MAX >> (128 - bits)),
            (true, ..=64) => {
                let limit = 1u128 << (bits - 1);
                format!("-{limit} to {}", limit - 1)
            }
            (false, _) => format!("0 to 2^{bits}-1"),
            (true, _) => format!("-2^{} to 2^{}-1", bits - 1, bits - 1),
        };
        self.fail(ArgumentProblem::OutOfRange {
            value,
            ty: ty.to_string(),
            range,
        })
    }

    /// Bytes from 0x hex, exactly `exact` of them if given.
    fn hex(&self, ty: &Type, exact: Option<usize>, json: &serde_json::Value) -> Result<Vec<u8>> {
        let text = json
            .as_str()
            .ok_or_else(|| self.wrong_kind("bytes as a 0x hex string", json))?;
        let digits = text
            .strip_prefix("0x")
            .filter(|d| d.len() % 2 == 0 && d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.fail(ArgumentProblem::BadHex(snippet(text))))?;
        if let Some(expected) = exact
            && digits.len() != expected * 2
        {
            return Err(self.fail(ArgumentProblem::BytesLength {
                ty: ty.to_string(),
                expected,
                got: digits.len() / 2,
            }));
        }
        if digits.len() / 2 > self.budget {
            return Err(self.fail(ArgumentProblem::TooLarge));
        }
        hex::decode(digits).map_err(|_| self.fail(ArgumentProblem::BadHex(snippet(text))))
    }
}

fn push_length(out: &mut Vec<u8>, value: usize) {
    out.extend_from_slice(&U256::from(value).to_be_bytes::<32>());
}

/// `bytes`, then zeros up to a multiple of 32.
fn push_padded(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes);
    out.resize(
        out.len() + bytes.len().next_multiple_of(32) - bytes.len(),
        0,
    );
}

fn kind(json: &serde_json::Value) -> &'static str {
    match json {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a bool",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The model's text quoted back in an error, cut to a readable length.
fn snippet(text: &str) -> String {
    const MAX_CHARS: usize = 80;
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

// --- Decoding ----------------------------------------------------------------------------------

struct Decoder<'a> {
    /// The arguments, after the selector: offsets count from here.
    data: &'a [u8],
    path: Vec<Segment<'a>>,
}

type DecodeItem<'a> = (&'a Type, Segment<'a>);

impl<'a> Decoder<'a> {
    fn fail(&self, problem: CalldataProblem) -> AbiError {
        AbiError::Calldata {
            path: render(&self.path),
            problem,
        }
    }

    fn word(&self, at: usize) -> Result<&'a [u8; 32]> {
        at.checked_add(32)
            .and_then(|end| self.data.get(at..end))
            .and_then(|word| word.try_into().ok())
            .ok_or_else(|| self.fail(CalldataProblem::Truncated))
    }

    /// A length word, which cannot exceed the calldata's own length.
    fn length(&self, at: usize) -> Result<usize> {
        let value = U256::from_be_bytes(*self.word(at)?);
        usize::try_from(value)
            .ok()
            .filter(|&len| len <= self.data.len())
            .ok_or_else(|| self.fail(CalldataProblem::Length(value.to_string())))
    }

    /// The values of a sequence starting at `base`, and where its encoding ends.
    fn sequence(&mut self, items: &[DecodeItem<'a>], base: usize) -> Result<(Vec<Value>, usize)> {
        let head_len = items
            .iter()
            .fold(0usize, |sum, (ty, _)| sum.saturating_add(ty.head_size()));
        let mut head = base;
        let mut tail = base.saturating_add(head_len);
        let mut values = Vec::with_capacity(items.len());
        for &(ty, segment) in items {
            self.path.push(segment);
            if ty.is_dynamic() {
                let found = U256::from_be_bytes(*self.word(head)?);
                let expected = tail - base;
                if found != U256::from(expected) {
                    return Err(self.fail(CalldataProblem::Offset {
                        found: found.to_string(),
                        expected,
                    }));
                }
                let (value, end) = self.value(ty, tail)?;
                values.push(value);
                tail = end;
                head += 32;
            } else {
                let (value, end) = self.value(ty, head)?;
                values.push(value);
                head = end;
            }
            self.path.pop();
        }
        Ok((values, tail))
    }

    /// The value of type `ty` whose encoding starts at `at`, and where it ends.
    fn value(&mut self, ty: &'a Type, at: usize) -> Result<(Value, usize)> {
        let after_word = at.saturating_add(32);
        let value = match ty {
            Type::Address => {
                let word = self.word(at)?;
                if word[..12].iter().any(|&b| b != 0) {
                    return Err(self.fail(CalldataProblem::DirtyAddress));
                }
                Value::Address(Address::from_slice(&word[12..]))
            }
            Type::Bool => match self.word(at)? {
                word if word[..31].iter().all(|&b| b == 0) && word[31] <= 1 => {
                    Value::Bool(word[31] == 1)
                }
                _ => return Err(self.fail(CalldataProblem::BadBool)),
            },
            Type::Uint(bits) => {
                let word = self.word(at)?;
                if word[..32 - bits / 8].iter().any(|&b| b != 0) {
                    return Err(self.fail(CalldataProblem::OutOfRange(ty.to_string())));
                }
                Value::Uint(U256::from_be_bytes(*word))
            }
            Type::Int(bits) => {
                let word = self.word(at)?;
                let first = 32 - bits / 8;
                // Sign extension: every byte above the value repeats its sign bit.
                let fill = if word[first] & 0x80 == 0 { 0 } else { 0xff };
                if word[..first].iter().any(|&b| b != fill) {
                    return Err(self.fail(CalldataProblem::OutOfRange(ty.to_string())));
                }
                Value::Int(I256::from_raw(U256::from_be_bytes(*word)))
            }
            Type::FixedBytes(len) => {
                let word = self.word(at)?;
                if word[*len..].iter().any(|&b| b != 0) {
                    return Err(self.fail(CalldataProblem::DirtyPadding));
                }
                Value::FixedBytes(word[..*len].to_vec())
            }
            Type::Bytes | Type::String => {
                let len = self.length(at)?;
                let end = after_word.saturating_add(len.next_multiple_of(32));
                let padded = self
                    .data
                    .get(after_word..end)
                    .ok_or_else(|| self.fail(CalldataProblem::Length(len.to_string())))?;
                let (bytes, padding) = padded.split_at(len);
                if padding.iter().any(|&b| b != 0) {
                    return Err(self.fail(CalldataProblem::DirtyPadding));
                }
                let value = if *ty == Type::String {
                    let text = std::str::from_utf8(bytes)
                        .map_err(|_| self.fail(CalldataProblem::NotUtf8))?;
                    Value::String(text.to_owned())
                } else {
                    Value::Bytes(bytes.to_vec())
                };
                return Ok((value, end));
            }
            Type::Array(inner) => {
                let len = self.length(at)?;
                // Each element takes at least its head: refuse a length the data cannot hold
                // before allocating for it.
                let room = self.data.len().saturating_sub(after_word);
                if len.saturating_mul(inner.head_size()) > room {
                    return Err(self.fail(CalldataProblem::Length(len.to_string())));
                }
                let items: Vec<_> = (0..len)
                    .map(|index| (&**inner, Segment::Element(index)))
                    .collect();
                let (values, end) = self.sequence(&items, after_word)?;
                return Ok((Value::Array(values), end));
            }
            Type::FixedArray(inner, len) => {
                let items: Vec<_> = (0..*len)
                    .map(|index| (&**inner, Segment::Element(index)))
                    .collect();
                let (values, end) = self.sequence(&items, at)?;
                return Ok((Value::Array(values), end));
            }
            Type::Tuple(components) => {
                let items: Vec<_> = components
                    .iter()
                    .enumerate()
                    .map(|(index, component)| {
                        let name = component.name.as_deref();
                        (&component.ty, Segment::Component { index, name })
                    })
                    .collect();
                let (values, end) = self.sequence(&items, at)?;
                return Ok((Value::Tuple(args(components, values)), end));
            }
        };
        Ok((value, after_word))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn function(signature: &str) -> Function {
        Function::parse(signature).unwrap()
    }

    fn encode_error(signature: &str, args: serde_json::Value) -> String {
        function(signature).encode(&args).unwrap_err().to_string()
    }

    fn decode_error(signature: &str, calldata: &[u8]) -> String {
        function(signature)
            .decode(calldata)
            .unwrap_err()
            .to_string()
    }

    const ALICE: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

    #[test]
    fn integers_are_read_from_decimal_hex_and_json_integers() {
        let f = function("f(uint256 a, int64 b)");
        let expected = f.encode(&json!(["1000", "-5"])).unwrap();
        for args in [
            json!([1000, -5]),
            json!(["0x3e8", "-0x5"]),
            json!(["0x00000003E8", "-05"]),
            json!(["001000", -5]),
        ] {
            assert_eq!(f.encode(&args).unwrap(), expected, "{args}");
        }
        let max = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
        let call =
            function("f(uint256)").decode(&function("f(uint256)").encode(&json!([max])).unwrap());
        assert_eq!(call.unwrap().args[0].value, Value::Uint(U256::MAX));
        let min = function("f(int256)").encode(&json!([format!("-{}", U256::from(1u8) << 255)]));
        assert_eq!(min.unwrap()[4..], I256::MIN.to_be_bytes::<32>());
    }

    #[test]
    fn argument_errors_name_the_argument_and_the_fix() {
        let transfer = "transfer(address to, uint256 amount)";
        for (signature, args, message) in [
            (
                transfer,
                json!([ALICE, 1.5]),
                "argument 2 (amount): the JSON number 1.5 is not a whole number that fits in 64 bits: pass large or exact values as a decimal string",
            ),
            (
                transfer,
                json!([ALICE, 1e30]),
                "argument 2 (amount): the JSON number 1e+30 is not a whole number that fits in 64 bits: pass large or exact values as a decimal string",
            ),
            (
                transfer,
                json!([ALICE, "-1"]),
                "argument 2 (amount): -1 is out of range for uint256 (0 to 2^256-1)",
            ),
            (
                transfer,
                json!([ALICE, "1 ether"]),
                "argument 2 (amount): `1 ether` is not an integer: expected decimal digits or 0x followed by hex digits",
            ),
            (
                transfer,
                json!([ALICE, "0x"]),
                "argument 2 (amount): `0x` is not an integer: expected decimal digits or 0x followed by hex digits",
            ),
            (
                transfer,
                json!([ALICE, null]),
                "argument 2 (amount): expected an integer as a decimal string, a 0x hex string or a JSON integer, got null",
            ),
            (
                transfer,
                json!(["0x70997970C51812dc3A010C7d01b50e0d17dc79c8", 1]),
                "argument 1 (to): `0x70997970C51812dc3A010C7d01b50e0d17dc79c8` has mixed-case letters but they do not match its EIP-55 checksum: the address may have a typo, check it against its source",
            ),
            (
                transfer,
                json!(["0x1234", 1]),
                "argument 1 (to): `0x1234` is not an address: expected 0x followed by 40 hex digits",
            ),
            (
                transfer,
                json!([ALICE]),
                "transfer(address,uint256) takes 2 arguments, got 1",
            ),
            (
                "f(uint256 x)",
                json!([1, 2]),
                "f(uint256) takes 1 argument, got 2",
            ),
            (
                transfer,
                json!({"to": ALICE}),
                "the arguments must be a JSON array, got an object",
            ),
            (
                "f(uint8 small)",
                json!([256]),
                "argument 1 (small): 256 is out of range for uint8 (0 to 255)",
            ),
            (
                "f(int8)",
                json!(["-129"]),
                "argument 1: -129 is out of range for int8 (-128 to 127)",
            ),
            (
                "f(int8)",
                json!([128]),
                "argument 1: 128 is out of range for int8 (-128 to 127)",
            ),
            (
                "f(int256)",
                json!([format!("{}", U256::from(1u8) << 255)]),
                "argument 1: 57896044618658097711785492504343953926634992332820282019728792003956564819968 is out of range for int256 (-2^255 to 2^255-1)",
            ),
            (
                "f(uint256)",
                json!([format!("0x1{}", "0".repeat(64))]),
                "argument 1: 0x10000000000000000000000000000000000000000000000000000000000000000 is out of range for uint256 (0 to 2^256-1)",
            ),
            (
                "f(bool ok)",
                json!(["true"]),
                "argument 1 (ok): expected true or false, got a string",
            ),
            (
                "f(bytes4 tag)",
                json!(["0x010203"]),
                "argument 1 (tag): bytes4 takes exactly 4 bytes, got 3",
            ),
            (
                "f(bytes data)",
                json!(["0x123"]),
                "argument 1 (data): `0x123` is not hex bytes: expected 0x followed by pairs of hex digits",
            ),
            (
                "f(bytes data)",
                json!(["1234"]),
                "argument 1 (data): `1234` is not hex bytes: expected 0x followed by pairs of hex digits",
            ),
            (
                "f(uint256[2] pair)",
                json!([[1, 2, 3]]),
                "argument 1 (pair): uint256[2] takes exactly 2 elements, got 3",
            ),
            (
                "f((address to, uint96 amount)[] moves)",
                json!([[[ALICE, 1], [ALICE, "79228162514264337593543950336"]]]),
                "argument 1 (moves)[1].amount: 79228162514264337593543950336 is out of range for uint96 (0 to 2^96-1)",
            ),
            (
                "f((address, uint256)[] moves)",
                json!([[[ALICE, 1], [ALICE]]]),
                "argument 1 (moves)[1]: the tuple (address,uint256) takes 2 components, got 1",
            ),
            (
                "f((address, (bool, string))[][] nested)",
                json!([[[], [[ALICE, [true, 7]]]]]),
                "argument 1 (nested)[1][0].1.1: expected a string, got a number",
            ),
            (
                "f(string)",
                json!([["not", "a", "string"]]),
                "argument 1: expected a string, got an array",
            ),
        ] {
            assert_eq!(
                encode_error(signature, args.clone()),
                message,
                "{signature} {args}"
            );
        }
    }

    #[test]
    fn checksums_are_checked_only_when_the_case_is_mixed() {
        let f = function("f(address)");
        let lower = ALICE.to_lowercase();
        let upper = format!("0x{}", ALICE[2..].to_uppercase());
        let expected = f.encode(&json!([ALICE])).unwrap();
        assert_eq!(f.encode(&json!([lower])).unwrap(), expected);
        assert_eq!(f.encode(&json!([upper])).unwrap(), expected);
        assert!(f.encode(&json!([format!("0X{}", &ALICE[2..])])).is_err());
    }

    #[test]
    fn oversized_arguments_are_refused_quickly() {
        let big = format!("0x{}", "00".repeat(MAX_CALLDATA_BYTES));
        assert_eq!(
            encode_error("f(bytes data)", json!([big])),
            "argument 1 (data): the arguments would encode to more than 131072 bytes of calldata"
        );
        // Each inner array is small; together they are not.
        let row: Vec<u64> = vec![1; 1000];
        let rows = vec![row; 1000];
        assert!(
            encode_error("f(uint256[][])", json!([rows]))
                .ends_with("more than 131072 bytes of calldata")
        );
        let wide = vec![0u8; 1_000_000];
        assert_eq!(
            encode_error("f(uint8[])", json!([wide])),
            "argument 1: the arguments would encode to more than 131072 bytes of calldata"
        );
        // The most bytes that fit: 4 (selector) + 32 (offset) + 32 (length) + the data padded
        // to 32, at most the limit.
        let most = (MAX_CALLDATA_BYTES - 4 - 64) / 32 * 32;
        let fits = format!("0x{}", "ab".repeat(most));
        let calldata = function("f(bytes)").encode(&json!([fits])).unwrap();
        assert_eq!(calldata.len(), 4 + 64 + most);
        assert!(function("f(bytes)").decode(&calldata).is_ok());
        let one_more = format!("0x{}", "ab".repeat(most + 1));
        assert!(encode_error("f(bytes)", json!([one_more])).ends_with("131072 bytes of calldata"));
        let mut too_long = calldata;
        too_long.resize(MAX_CALLDATA_BYTES + 1, 0);
        assert_eq!(
            decode_error("f(bytes)", &too_long),
            "the calldata is 131073 bytes, more than the 131072-byte limit keyward decodes"
        );
    }

    /// `f(bytes[] data)` with data = [0x01, 0x0203]: selector, offset 0x20, length 2, offsets
    /// 0x40 and 0x80, then each element's length and padded bytes.
    fn two_byte_strings() -> Vec<u8> {
        function("f(bytes[] data)")
            .encode(&json!([["0x01", "0x0203"]]))
            .unwrap()
    }

    fn word(value: u64) -> [u8; 32] {
        U256::from(value).to_be_bytes::<32>()
    }

    fn with_word(calldata: &[u8], index: usize, value: [u8; 32]) -> Vec<u8> {
        let mut out = calldata.to_vec();
        out[4 + 32 * index..4 + 32 * (index + 1)].copy_from_slice(&value);
        out
    }

    #[test]
    fn decoding_rejects_truncated_extra_and_moved_data() {
        let f = "f(bytes[] data)";
        let good = two_byte_strings();
        assert_eq!(good.len(), 4 + 32 * 8);
        assert!(function(f).decode(&good).is_ok());
        for len in 0..good.len() {
            assert!(
                function(f).decode(&good[..len]).is_err(),
                "prefix of {len} bytes"
            );
        }
        let mut extra = good.clone();
        extra.push(0);
        assert_eq!(
            decode_error(f, &extra),
            "the calldata has 1 byte after the encoded arguments"
        );
        let mut extra_word = good.clone();
        extra_word.extend_from_slice(&[0; 32]);
        assert_eq!(
            decode_error(f, &extra_word),
            "the calldata has 32 bytes after the encoded arguments"
        );

        // Both elements pointing at the same bytes: valid for a lenient decoder, and the way to
        // make small calldata decode into something huge.
        assert_eq!(
            decode_error(f, &with_word(&good, 3, word(0x40))),
            "argument 1 (data)[1]: the offset is 64, but the canonical encoding puts this value at offset 128"
        );
        assert_eq!(
            decode_error(f, &with_word(&good, 0, word(0x40))),
            "argument 1 (data): the offset is 64, but the canonical encoding puts this value at offset 32"
        );
        assert_eq!(
            decode_error(f, &with_word(&good, 0, [0xff; 32])),
            "argument 1 (data): the offset is 115792089237316195423570985008687907853269984665640564039457584007913129639935, but the canonical encoding puts this value at offset 32"
        );
        assert_eq!(
            decode_error(f, &with_word(&good, 1, word(1_000_000))),
            "argument 1 (data): the length 1000000 runs past the end of the calldata"
        );
        assert_eq!(
            decode_error(f, &with_word(&good, 4, word(100))),
            "argument 1 (data)[0]: the length 100 runs past the end of the calldata"
        );
        // An element one byte longer eats into its own padding, which then is not zero...
        let mut longer = with_word(&good, 4, word(2));
        longer[4 + 32 * 5 + 1] = 0xee;
        assert!(function(f).decode(&longer).is_ok());
        longer[4 + 32 * 5 + 2] = 0xee;
        assert_eq!(
            decode_error(f, &longer),
            "argument 1 (data)[0]: the padding after the data is not zero"
        );
        assert_eq!(
            decode_error(f, &[0xac, 0x96, 0x50, 0xd8]),
            "the calldata starts with selector 0xac9650d8, not 0xd0b47c04 of f(bytes[])"
        );
        assert_eq!(
            decode_error(f, &[1, 2]),
            "the calldata is 2 bytes, too short to hold a 4-byte function selector"
        );
    }

    #[test]
    fn decoding_rejects_words_outside_their_type() {
        let transfer = function("transfer(address to, uint256 amount)");
        let good = transfer.encode(&json!([ALICE, 5])).unwrap();
        let mut dirty = good.clone();
        dirty[4] = 1;
        assert_eq!(
            transfer.decode(&dirty).unwrap_err().to_string(),
            "argument 1 (to): the address word has nonzero bytes before the 20 address bytes"
        );
        for (signature, bad_word, message) in [
            (
                "f(bool flag)",
                word(2),
                "argument 1 (flag): a bool word must be 0 or 1",
            ),
            (
                "f(uint8 x)",
                word(256),
                "argument 1 (x): the value does not fit in uint8",
            ),
            (
                "f(int8 x)",
                word(128),
                "argument 1 (x): the value does not fit in int8",
            ),
            (
                "f(int8 x)",
                {
                    let mut w = [0xff; 32];
                    w[31] = 0x7f; // -129 as a sign-extended word is ...ff7f
                    w
                },
                "argument 1 (x): the value does not fit in int8",
            ),
            (
                "f(bytes2 x)",
                {
                    let mut w = [0; 32];
                    w[2] = 1;
                    w
                },
                "argument 1 (x): the padding after the data is not zero",
            ),
        ] {
            let f = function(signature);
            let mut calldata = f.selector().to_vec();
            calldata.extend_from_slice(&bad_word);
            assert_eq!(decode_error(signature, &calldata), message, "{signature}");
        }
        let negative = function("f(int8)").encode(&json!([-128])).unwrap();
        assert_eq!(
            function("f(int8)").decode(&negative).unwrap().args[0].value,
            Value::Int(I256::try_from(-128i64).unwrap())
        );
        let text = function("f(string s)").encode(&json!(["ab"])).unwrap();
        let mut not_utf8 = text.clone();
        not_utf8[4 + 64] = 0xff;
        assert_eq!(
            decode_error("f(string s)", &not_utf8),
            "argument 1 (s): the string is not valid UTF-8"
        );
    }

    #[test]
    fn huge_array_lengths_are_refused_before_allocating() {
        let f = function("f(uint256[][] grid)");
        let mut calldata = f.selector().to_vec();
        calldata.extend_from_slice(&word(0x20));
        calldata.extend_from_slice(&word(u64::from(u32::MAX)));
        assert_eq!(
            f.decode(&calldata).unwrap_err().to_string(),
            "argument 1 (grid): the length 4294967295 runs past the end of the calldata"
        );
        // A length that fits the data only if elements took no room.
        let mut calldata = f.selector().to_vec();
        calldata.extend_from_slice(&word(0x20));
        calldata.extend_from_slice(&word(3));
        calldata.extend_from_slice(&word(0x60));
        calldata.extend_from_slice(&word(0));
        assert_eq!(
            f.decode(&calldata).unwrap_err().to_string(),
            "argument 1 (grid): the length 3 runs past the end of the calldata"
        );
    }
}
