//! Solidity function calls: signatures, calldata encoding and strict decoding, known selectors.
//!
//! `wallet_contract_call` takes either a signature with JSON arguments, which [`Function::encode`]
//! turns into calldata, or raw calldata, which [`decode_known`] reads against a small registry of
//! well-known functions so a reviewer can show a human what the call does.
//!
//! Everything here reads text and bytes the model chose, so it is bounded (at most
//! [`MAX_CALLDATA_BYTES`] of calldata, types nested at most [`MAX_TYPE_DEPTH`] deep, nested calls
//! decoded at most [`MAX_INNER_CALL_DEPTH`] deep) and must never panic on any input. Decoding
//! accepts only the canonical encoding, the one [`Function::encode`] produces, so the arguments a
//! reviewer shows and the bytes sent cannot disagree.
//!
//! Names in a [`Call`] decoded against a signature the model gave, and every `string` argument,
//! are text someone else chose: a review shows them as data, never as keyward's own words.

mod codec;
mod known;
mod signature;
#[cfg(test)]
mod tests;
mod value;

pub use known::{
    Decoded, KnownCall, KnownFunction, Reading, SafeOperation, Standard, decode_known,
    known_functions,
};
pub use signature::{Function, Param, Type};
pub use value::{Arg, Call, Value};

/// The largest calldata keyward encodes or decodes, selector included.
pub const MAX_CALLDATA_BYTES: usize = 128 * 1024;
/// How deep types may nest: each array dimension and each tuple is one level.
pub const MAX_TYPE_DEPTH: usize = 16;
/// The longest function signature accepted, in bytes.
pub const MAX_SIGNATURE_BYTES: usize = 4096;
/// The longest function or parameter name accepted.
pub const MAX_NAME_BYTES: usize = 64;
/// How many levels of calls nested in calls (`multicall`, Safe `execTransaction`) are decoded.
pub const MAX_INNER_CALL_DEPTH: usize = 4;

/// Why a signature, arguments or calldata were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AbiError {
    #[error("invalid function signature at character {at}: {problem}")]
    Signature {
        at: usize,
        problem: SignatureProblem,
    },

    #[error("the arguments must be a JSON array, got {got}")]
    ArgumentsNotArray { got: &'static str },

    #[error(
        "{} takes {}, got {got}",
        shown(.signature),
        count(.expected, "argument")
    )]
    ArgumentCount {
        signature: String,
        expected: usize,
        got: usize,
    },

    #[error(
        "{}: {problem}",
        tail(.path)
    )]
    Argument {
        path: String,
        problem: ArgumentProblem,
    },

    #[error(
        "the calldata is {len} bytes, more than the {MAX_CALLDATA_BYTES}-byte limit keyward decodes"
    )]
    CalldataTooLarge { len: usize },

    #[error("the calldata is {}, too short to hold a 4-byte function selector", count(.len, "byte"))]
    NoSelector { len: usize },

    #[error(
        "the calldata starts with selector 0x{}, not 0x{} of {}",
        hex::encode(got),
        hex::encode(expected),
        shown(.signature)
    )]
    WrongSelector {
        signature: String,
        expected: [u8; 4],
        got: [u8; 4],
    },

    #[error(
        "{}: {problem}",
        tail(.path)
    )]
    Calldata {
        path: String,
        problem: CalldataProblem,
    },

    #[error("the calldata has {} after the encoded arguments", count(.len, "byte"))]
    TrailingBytes { len: usize },

    #[error("the calldata decodes but is not the canonical encoding of its arguments")]
    NotCanonical,
}

/// What is wrong with a function signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureProblem {
    #[error("the signature is empty")]
    Empty,

    #[error("the signature is longer than {MAX_SIGNATURE_BYTES} bytes")]
    TooLong,

    #[error("only printable ASCII is allowed")]
    NotAscii,

    #[error(
        "expected {expected}, found {}",
        shown(.found)
    )]
    Expected {
        expected: &'static str,
        found: String,
    },

    #[error(
        "`{}` is not a Solidity type{hint}",
        shown(.name)
    )]
    UnknownType { name: String, hint: &'static str },

    #[error(
        "`{}` is not a valid name: names are letters, digits, `_` and `$`, not starting with a digit",
        shown(.0)
    )]
    BadName(String),

    #[error("names are at most {MAX_NAME_BYTES} characters")]
    NameTooLong,

    #[error(
        "the parameter name `{}` is used twice",
        shown(.0)
    )]
    DuplicateName(String),

    #[error("`()` is not a parameter type: a tuple needs at least one component")]
    EmptyTuple,

    #[error(
        "`{}` is not an array length: expected a whole number from 1",
        shown(.0)
    )]
    BadArrayLength(String),

    #[error("types nest more than {MAX_TYPE_DEPTH} levels deep")]
    TooDeep,

    #[error("the parameters cannot fit in {MAX_CALLDATA_BYTES} bytes of calldata")]
    TooLarge,
}

/// What is wrong with one JSON argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgumentProblem {
    #[error("expected {expected}, got {got}")]
    WrongKind {
        expected: &'static str,
        got: &'static str,
    },

    #[error(
        "`{}` is not an address: expected 0x followed by 40 hex digits",
        shown(.0)
    )]
    BadAddress(String),

    #[error(
        "`{}` has mixed-case letters but they do not match its EIP-55 checksum: the address may have a typo, check it against its source",
        shown(.0)
    )]
    BadChecksum(String),

    #[error(
        "the JSON number {} is not a whole number that fits in 64 bits: pass large or exact values as a decimal string",
        shown(.0)
    )]
    NotAnInteger(String),

    #[error(
        "`{}` is not an integer: expected decimal digits or 0x followed by hex digits",
        shown(.0)
    )]
    BadInteger(String),

    #[error(
        "{value} is out of range for {} ({range})",
        shown(.ty)
    )]
    OutOfRange {
        value: String,
        ty: String,
        range: String,
    },

    #[error(
        "`{}` is not hex bytes: expected 0x followed by pairs of hex digits",
        shown(.0)
    )]
    BadHex(String),

    #[error(
        "{} takes exactly {}, got {got}",
        shown(.ty),
        count(.expected, "byte")
    )]
    BytesLength {
        ty: String,
        expected: usize,
        got: usize,
    },

    #[error(
        "{} takes exactly {}, got {got}",
        shown(.ty),
        count(.expected, "element")
    )]
    ArrayLength {
        ty: String,
        expected: usize,
        got: usize,
    },

    #[error(
        "the tuple {} takes {}, got {got}",
        shown(.ty),
        count(.expected, "component")
    )]
    TupleLength {
        ty: String,
        expected: usize,
        got: usize,
    },

    #[error("the arguments would encode to more than {MAX_CALLDATA_BYTES} bytes of calldata")]
    TooLarge,
}

/// What is wrong with the calldata at one argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalldataProblem {
    #[error("the calldata ends before this value")]
    Truncated,

    #[error(
        "the offset is {}, but the canonical encoding puts this value at offset {expected}",
        shown(.found)
    )]
    Offset { found: String, expected: usize },

    #[error(
        "the length {} runs past the end of the calldata",
        shown(.0)
    )]
    Length(String),

    #[error("the address word has nonzero bytes before the 20 address bytes")]
    DirtyAddress,

    #[error("a bool word must be 0 or 1")]
    BadBool,

    #[error(
        "the value does not fit in {}",
        shown(.0)
    )]
    OutOfRange(String),

    #[error("the padding after the data is not zero")]
    DirtyPadding,

    #[error("the string is not valid UTF-8")]
    NotUtf8,
}

pub type Result<T> = std::result::Result<T, AbiError>;

/// The most characters of a signature, type or name an error message repeats: a signature may
/// be 4096 bytes, and the model sent it anyway.
const SHOWN: usize = 80;
/// The most characters of an argument's path (`argument 2 (orders)[3].amount`) shown: its end.
const SHOWN_PATH: usize = 120;

/// The start of `text`, cut after [`SHOWN`] characters.
fn shown(text: &str) -> String {
    match text.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// The end of a path, the part that says which value, cut to [`SHOWN_PATH`] characters.
fn tail(path: &str) -> String {
    let count = path.chars().count();
    match path.char_indices().nth(count.saturating_sub(SHOWN_PATH)) {
        Some((start, _)) if start > 0 => format!("…{}", &path[start..]),
        _ => path.to_owned(),
    }
}

/// `1 byte`, `2 bytes`.
fn count(n: &usize, noun: &str) -> String {
    if *n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
