//! EIP-712 typed data (`eth_signTypedData_v4`): a strict parser and the hashes a signature covers.
//!
//! [`parse`] turns the JSON a dApp sends into a [`TypedData`]: the domain, the decoded message
//! tree for the human to review, and the domain separator, message hash and signing hash, all
//! computed here by hand from the EIP (no ABI library, no alloy `eip712`). Hashing happens while
//! parsing, so a `TypedData` that exists is one whose digest is known.
//!
//! The parser refuses anything that two implementations could read differently, because the
//! review would then show one thing while the signature covers another. Decisions:
//! - **Limits first.** Input over [`MAX_INPUT_LEN`] is refused before it is read; the JSON reader
//!   never recurses and stops at the first container nested deeper than [`MAX_DEPTH`]. At most
//!   [`MAX_STRUCT_TYPES`] struct definitions, [`MAX_DEPTH`] array dimensions per type, and an
//!   `encodeType` of at most [`MAX_ENCODED_TYPE_LEN`] bytes, so hashing stays cheap.
//! - **Integers** are a JSON integer, a decimal string or a 0x hex string, range-checked against
//!   their declared `uintN`/`intN`. JSON numbers with a fraction or exponent are refused, even
//!   `5.0` (geth accepts it, eth-account does not). Negative values are written in decimal;
//!   strings may carry leading zeros (`"0x00ff"`, `"007"`), which change no value.
//! - **Bare `uint` / `int`** are refused: the type string is hashed as written, contracts write
//!   `uint256`, and libraries disagree on whether to alias it.
//! - **Missing fields** are refused, at every level. eth-account hashes a missing or null struct
//!   field as 32 zero bytes and ethers refuses it; a value the human never saw must not be signed.
//!   Keys a struct does not declare are refused too (geth `expfail_extradata`).
//! - **`EIP712Domain`** must be declared in `types` (not inferred), with a non-empty subset of
//!   name, version, chainId, verifyingContract, salt, in that order and with their EIP types.
//! - **`primaryType: "EIP712Domain"`** (domain-only signing) is supported as MetaMask, viem and
//!   the hardware wallets do it: the signing hash is `keccak256(0x19 0x01 ‖ domainSeparator)`,
//!   with no message hash. The `message` must then be absent or `{}`, since nothing in it would
//!   be signed.
//! - **Names**: struct names are Solidity identifiers that do not spell an atomic type; field
//!   names may be any non-empty text without `,` `(` `)` or control characters (eth-account's
//!   vectors use a field named `cont ents`).
//! - **Addresses** are `0x` and 40 hex digits; mixed case must be the EIP-55 checksum.
//! - A JSON key repeated within one object is refused.
//!
//! This module must never panic or recurse without bound on any input, never accept input that
//! two readers could take for different values, and never touch key material: it computes what
//! is signed, [`crate::signer`] signs it.

mod json;
mod path;
mod types;
mod values;

#[cfg(test)]
mod tests;

use alloy::primitives::{Address, B256, I256, U256, keccak256};

use self::json::Json;
use self::path::Path;
use self::types::{DOMAIN_TYPE, Types};
use self::values::Decoder;

/// The largest typed data accepted, in bytes. The largest real requests (Seaport orders with many
/// items) are tens of kilobytes; a human could not read more than this in a review anyway.
pub const MAX_INPUT_LEN: usize = 256 * 1024;
/// The deepest JSON nesting accepted (the outer object is level 1); also the most array
/// dimensions one type may have. Seaport's bulk orders, the deepest real typed data, nest about
/// 30 levels (a tree of up to 24 array dimensions); 64 levels are refused.
pub const MAX_DEPTH: usize = 48;
/// The most struct definitions `types` may hold, `EIP712Domain` included.
pub const MAX_STRUCT_TYPES: usize = 128;
/// The longest `encodeType` string of any struct, in bytes.
pub const MAX_ENCODED_TYPE_LEN: usize = 64 * 1024;

/// Why typed data was refused. Every message says where (`message.to.wallet`, `types.Mail`) and
/// what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Eip712Error {
    #[error("the typed data is {len} bytes, over the {max}-byte limit")]
    TooLarge { len: usize, max: usize },

    #[error("the typed data nests deeper than {max} levels (at byte {offset})")]
    TooDeep { max: usize, offset: usize },

    #[error("the typed data is not valid JSON: {problem} (at byte {offset})")]
    Json {
        problem: &'static str,
        offset: usize,
    },

    #[error(
        "the key {} appears twice in one object (at byte {offset}); implementations would not \
         agree on which value is signed",
        quote(.key)
    )]
    DuplicateKey { key: String, offset: usize },

    #[error(
        "{}: expected {}, got {got}",
        tail(.at),
        explain(.expected)
    )]
    WrongJsonType {
        at: String,
        expected: String,
        got: &'static str,
    },

    #[error(
        "{}: the required key {} is missing",
        tail(.at),
        quote(.key)
    )]
    MissingKey { at: String, key: String },

    #[error(
        "{}: unexpected key {}: {}",
        tail(.at),
        quote(.key),
        explain(.why)
    )]
    UnexpectedKey {
        at: String,
        key: String,
        why: String,
    },

    #[error("types: {count} struct definitions, over the limit of {max}")]
    TooManyTypes { count: usize, max: usize },

    #[error(
        "{}: {} is not a valid struct name: {}",
        tail(.at),
        quote(.name),
        explain(.why)
    )]
    BadStructName {
        at: String,
        name: String,
        why: String,
    },

    #[error(
        "{}: {} is not a valid field name: {}",
        tail(.at),
        quote(.name),
        explain(.why)
    )]
    BadFieldName {
        at: String,
        name: String,
        why: String,
    },

    #[error(
        "{}: the field {} is declared twice",
        tail(.at),
        quote(.name)
    )]
    DuplicateField { at: String, name: String },

    #[error(
        "{}: {} is not a valid type: {}",
        tail(.at),
        quote(.type_name),
        explain(.why)
    )]
    BadType {
        at: String,
        type_name: String,
        why: String,
    },

    #[error(
        "{}: unknown type {}: {} is neither an atomic type nor a struct defined in types",
        tail(.at),
        quote(.type_name),
        quote(.missing)
    )]
    UndefinedType {
        at: String,
        type_name: String,
        missing: String,
    },

    #[error(
        "{}: {}",
        tail(.at),
        explain(.why)
    )]
    BadDomainType { at: String, why: String },

    #[error(
        "types.{}: its encodeType is longer than {max} bytes",
        head(.name)
    )]
    TypeTooLong { name: String, max: usize },

    #[error(
        "primaryType: {} is not a struct defined in types",
        quote(.name)
    )]
    UndefinedPrimaryType { name: String },

    #[error(
        "message: primaryType is EIP712Domain, so only the domain is signed; the message must \
         be absent or {{}}, or it would be shown without being signed"
    )]
    DomainOnlyMessage,

    #[error(
        "{}: {} is not an address: {}",
        tail(.at),
        .value,
        explain(.why)
    )]
    NotAnAddress {
        at: String,
        value: String,
        why: String,
    },

    #[error(
        "{}: {} is not an integer: {}",
        tail(.at),
        .value,
        explain(.why)
    )]
    NotAnInteger {
        at: String,
        value: String,
        why: String,
    },

    #[error(
        "{}: {} does not fit in {} ({})",
        tail(.at),
        .value,
        head(.type_name),
        .range
    )]
    IntegerOutOfRange {
        at: String,
        value: String,
        type_name: String,
        range: String,
    },

    #[error(
        "{}: {} is not {}: {}",
        tail(.at),
        .value,
        head(.type_name),
        explain(.why)
    )]
    BadBytes {
        at: String,
        value: String,
        type_name: String,
        why: String,
    },

    #[error(
        "{}: {} takes exactly {expected} items, got {got}",
        tail(.at),
        head(.type_name)
    )]
    ArrayLength {
        at: String,
        type_name: String,
        expected: usize,
        got: usize,
    },
}

/// The signing domain, as the dApp declared it. A field the `EIP712Domain` type does not declare
/// is `None` (and is not part of the separator).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Domain {
    pub name: Option<String>,
    pub version: Option<String>,
    pub chain_id: Option<U256>,
    pub verifying_contract: Option<Address>,
    pub salt: Option<B256>,
}

/// A decoded value, normalized: integers are numbers, addresses and bytes are bytes, whatever
/// spelling the JSON used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A struct value; members in declaration order.
    Struct {
        type_name: String,
        members: Vec<Member>,
    },
    /// An array value; `type_name` is the array type, e.g. `Person[]`.
    Array {
        type_name: String,
        items: Vec<Node>,
    },
    Address(Address),
    Uint(U256),
    Int(I256),
    Bool(bool),
    /// `bytes`.
    Bytes(Vec<u8>),
    /// `bytesN`: exactly N bytes.
    FixedBytes(Vec<u8>),
    String(String),
}

/// One named member of a struct value, with its declared type (e.g. `uint8`, `Person[2]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub type_name: String,
    pub value: Node,
}

/// Typed data that passed every check, with its hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedData {
    domain: Domain,
    primary_type: String,
    /// `None` when the primary type is `EIP712Domain`.
    message: Option<(Node, B256)>,
    domain_separator: B256,
}

impl TypedData {
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    pub fn primary_type(&self) -> &str {
        &self.primary_type
    }

    /// The decoded message, or `None` for domain-only signing (`primaryType: "EIP712Domain"`).
    pub fn message(&self) -> Option<&Node> {
        self.message.as_ref().map(|(node, _)| node)
    }

    /// `hashStruct(EIP712Domain, domain)`.
    pub fn domain_separator(&self) -> B256 {
        self.domain_separator
    }

    /// `hashStruct(primaryType, message)`, or `None` for domain-only signing.
    pub fn message_hash(&self) -> Option<B256> {
        self.message.as_ref().map(|(_, hash)| *hash)
    }

    /// `keccak256(0x19 0x01 ‖ domainSeparator ‖ hashStruct(message))`, the message hash omitted
    /// for domain-only signing: the digest the signer signs.
    pub fn signing_hash(&self) -> B256 {
        let mut preimage = Vec::with_capacity(66);
        preimage.extend_from_slice(&[0x19, 0x01]);
        preimage.extend_from_slice(self.domain_separator.as_slice());
        if let Some(hash) = self.message_hash() {
            preimage.extend_from_slice(hash.as_slice());
        }
        keccak256(&preimage)
    }
}

/// Parses and hashes `eth_signTypedData_v4` JSON: `{"types", "primaryType", "domain",
/// "message"}`. Strict; see the module documentation for every rule.
pub fn parse(text: &str) -> Result<TypedData, Eip712Error> {
    if text.len() > MAX_INPUT_LEN {
        return Err(Eip712Error::TooLarge {
            len: text.len(),
            max: MAX_INPUT_LEN,
        });
    }
    let json = json::parse(text)?;
    let root = Path::Root("typed data");
    let Json::Object(entries) = &json else {
        return Err(Eip712Error::WrongJsonType {
            at: root.to_string(),
            expected: "an object with types, primaryType, domain and message".into(),
            got: json.kind(),
        });
    };
    let (mut types, mut primary_type, mut domain, mut message) = (None, None, None, None);
    for (key, value) in entries {
        let slot = match key.as_ref() {
            "types" => &mut types,
            "primaryType" => &mut primary_type,
            "domain" => &mut domain,
            "message" => &mut message,
            _ => {
                return Err(Eip712Error::UnexpectedKey {
                    at: root.to_string(),
                    key: key.to_string(),
                    why: "typed data has only types, primaryType, domain and message".into(),
                });
            }
        };
        *slot = Some(value);
    }
    let missing = |key: &str| Eip712Error::MissingKey {
        at: root.to_string(),
        key: key.into(),
    };
    let types = Types::parse(types.ok_or_else(|| missing("types"))?)?;
    let primary_type = match primary_type.ok_or_else(|| missing("primaryType"))? {
        Json::String(name) => name.as_ref(),
        other => {
            return Err(Eip712Error::WrongJsonType {
                at: "primaryType".into(),
                expected: "the name of a struct in types".into(),
                got: other.kind(),
            });
        }
    };
    if types.fields(primary_type).is_none() {
        return Err(Eip712Error::UndefinedPrimaryType {
            name: primary_type.into(),
        });
    }
    let type_hashes = types.type_hashes(&[DOMAIN_TYPE, primary_type])?;
    let decoder = Decoder {
        types: &types,
        type_hashes: &type_hashes,
    };
    let domain_json = domain.ok_or_else(|| missing("domain"))?;
    let (domain_node, domain_separator) =
        decoder.structure(DOMAIN_TYPE, domain_json, &Path::Root("domain"))?;
    let message = if primary_type == DOMAIN_TYPE {
        match message {
            None => None,
            Some(Json::Object(entries)) if entries.is_empty() => None,
            Some(_) => return Err(Eip712Error::DomainOnlyMessage),
        }
    } else {
        let message_json = message.ok_or_else(|| missing("message"))?;
        Some(decoder.structure(primary_type, message_json, &Path::Root("message"))?)
    };
    Ok(TypedData {
        domain: domain_from(domain_node),
        primary_type: primary_type.to_string(),
        message,
        domain_separator,
    })
}

/// Reads the decoded `EIP712Domain` value into a [`Domain`]. The domain type was checked to hold
/// only the five EIP fields with their EIP types, so each member has the node its name implies.
fn domain_from(node: Node) -> Domain {
    let mut domain = Domain::default();
    let Node::Struct { members, .. } = node else {
        return domain;
    };
    for member in members {
        match (member.name.as_str(), member.value) {
            ("name", Node::String(name)) => domain.name = Some(name),
            ("version", Node::String(version)) => domain.version = Some(version),
            ("chainId", Node::Uint(chain_id)) => domain.chain_id = Some(chain_id),
            ("verifyingContract", Node::Address(address)) => {
                domain.verifying_contract = Some(address);
            }
            ("salt", Node::FixedBytes(salt)) => domain.salt = B256::try_from(salt.as_slice()).ok(),
            _ => {}
        }
    }
    domain
}

/// The most characters of untrusted text an error message repeats, escapes included.
const SHOWN: usize = 80;
/// The most characters of a path (`message.to.wallet`) an error message shows: its end.
const SHOWN_PATH: usize = 120;
/// The most characters of an explanation built around untrusted names.
const SHOWN_WHY: usize = 240;

/// Quotes untrusted text for an error message: escaped (no control or bidi characters reach a
/// terminal) and cut after [`SHOWN`] characters of output, so escapes cannot lengthen it.
fn quote(text: &str) -> String {
    let mut quoted = String::from("\"");
    let mut shown = 0;
    for c in text.chars() {
        let escaped: String = c.escape_debug().collect();
        shown += escaped.chars().count();
        if shown > SHOWN {
            quoted.push('…');
            break;
        }
        quoted.push_str(&escaped);
    }
    quoted.push('"');
    quoted
}

/// The start of a name or value already made safe to show (an identifier, a type, a quoted
/// value), cut after [`SHOWN`] characters: names in typed data have no length limit.
fn head(text: &str) -> String {
    cut(text, SHOWN)
}

/// An explanation, cut after [`SHOWN_WHY`] characters (it may repeat a struct name).
fn explain(text: &str) -> String {
    cut(text, SHOWN_WHY)
}

fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// The end of a path, the part that says which field, cut to [`SHOWN_PATH`] characters.
fn tail(path: &str) -> String {
    let count = path.chars().count();
    if count <= SHOWN_PATH {
        return path.to_owned();
    }
    let start = path
        .char_indices()
        .nth(count - SHOWN_PATH)
        .map_or(0, |(index, _)| index);
    format!("…{}", &path[start..])
}
