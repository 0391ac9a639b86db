//! A decoded call as a tree a reviewer can render, and its JSON form.

use alloy::primitives::{Address, I256, U256};
use serde_json::json;

/// A function call decoded from calldata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The canonical signature: `transfer(address,uint256)`.
    pub signature: String,
    pub name: String,
    pub selector: [u8; 4],
    pub args: Vec<Arg>,
}

/// One argument, or one component of a tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// The name the signature gave it, if any.
    pub name: Option<String>,
    /// Its canonical type: `uint256`, `(address,uint256)[]`.
    pub ty: String,
    pub value: Value,
}

/// A decoded ABI value. Integers keep their full width; the type in the enclosing [`Arg`] says
/// how many bits the value was checked to fit in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Address(Address),
    Uint(U256),
    Int(I256),
    Bool(bool),
    /// `bytes`
    Bytes(Vec<u8>),
    /// `bytesN`: exactly N bytes.
    FixedBytes(Vec<u8>),
    /// Valid UTF-8, but text a third party chose: sanitize it before showing it.
    String(String),
    /// `T[]` or `T[k]`.
    Array(Vec<Value>),
    /// A tuple's components with their names and types.
    Tuple(Vec<Arg>),
}

impl Value {
    /// The JSON form [`super::Function::encode`] accepts: checksummed addresses, integers as
    /// decimal strings, bytes as 0x hex, arrays and tuples as arrays. Encoding it gives back the
    /// same calldata.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Address(address) => json!(address.to_checksum(None)),
            Self::Uint(value) => json!(value.to_string()),
            Self::Int(value) => json!(value.to_string()),
            Self::Bool(value) => json!(value),
            Self::Bytes(bytes) | Self::FixedBytes(bytes) => {
                json!(format!("0x{}", hex::encode(bytes)))
            }
            Self::String(text) => json!(text),
            Self::Array(items) => items.iter().map(Self::to_json).collect(),
            Self::Tuple(components) => components.iter().map(|c| c.value.to_json()).collect(),
        }
    }
}

impl Call {
    /// The arguments in the JSON form [`super::Function::encode`] accepts.
    pub fn arguments_json(&self) -> serde_json::Value {
        self.args.iter().map(|arg| arg.value.to_json()).collect()
    }
}
