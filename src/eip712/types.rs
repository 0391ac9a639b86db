//! The `types` section: struct definitions, field types, and `encodeType`.
//!
//! Every type string is checked against one canonical grammar, because EIP-712 hashes the type
//! strings as written: `uint` and `uint256`, or `bytes01` and `bytes1`, would give different type
//! hashes for what a reader takes to be the same struct, and implementations disagree on aliases.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use alloy::primitives::{B256, keccak256};

use super::json::Json;
use super::path::Path;
use super::{Eip712Error, MAX_DEPTH, MAX_ENCODED_TYPE_LEN, MAX_STRUCT_TYPES};

/// The name of the domain struct.
pub(super) const DOMAIN_TYPE: &str = "EIP712Domain";

/// The fields an `EIP712Domain` may declare, in the only order keyward accepts, with their types.
/// eth-account hashes the domain in this order whatever the `types` say, geth and MetaMask in the
/// declared order: requiring this order makes every implementation agree on the separator.
const DOMAIN_FIELDS: [(&str, &str); 5] = [
    ("name", "string"),
    ("version", "string"),
    ("chainId", "uint256"),
    ("verifyingContract", "address"),
    ("salt", "bytes32"),
];

/// A type EIP-712 encodes in one 32-byte word, or hashes (`string`, `bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Atomic {
    Address,
    Bool,
    String,
    Bytes,
    /// `bytesN`, N in 1..=32.
    FixedBytes(usize),
    /// `uintN`, N in 8..=256, a multiple of 8.
    Uint(usize),
    /// `intN`, N in 8..=256, a multiple of 8.
    Int(usize),
}

/// What a field's type is once its array suffixes are taken off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Base {
    Atomic(Atomic),
    /// A struct defined in `types` (checked after all definitions are read).
    Struct(String),
}

/// A field type: a base with zero or more array dimensions, as written (`Person[2][]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FieldType {
    written: String,
    base: Base,
    /// In written order; the last one is the outermost (`T[2][]` is a dynamic array of `T[2]`).
    dims: Vec<Dim>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dim {
    /// `None` for `[]`.
    len: Option<usize>,
    /// Byte offset of this dimension's `[` in the written type.
    at: usize,
}

/// A view of a field type with only its first `dims` dimensions: walks down nested arrays.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ty<'t> {
    field: &'t FieldType,
    dims: usize,
}

/// What a value of a [`Ty`] must be.
#[derive(Debug, Clone, Copy)]
pub(super) enum Shape<'t> {
    Atomic(Atomic),
    Struct(&'t str),
    /// An array of `element`, of exactly `len` items when fixed.
    Array {
        element: Ty<'t>,
        len: Option<usize>,
    },
}

impl<'t> Ty<'t> {
    pub(super) fn of(field: &'t FieldType) -> Self {
        Ty {
            field,
            dims: field.dims.len(),
        }
    }

    /// The type as written, e.g. `Person[2]` for the items of a `Person[2][]`.
    pub(super) fn written(&self) -> &'t str {
        match self.field.dims.get(self.dims) {
            Some(dim) => self.field.written.get(..dim.at).unwrap_or_default(),
            None => &self.field.written,
        }
    }

    pub(super) fn shape(&self) -> Shape<'t> {
        match self
            .dims
            .checked_sub(1)
            .and_then(|outer| self.field.dims.get(outer).map(|dim| (outer, dim.len)))
        {
            Some((outer, len)) => Shape::Array {
                element: Ty {
                    field: self.field,
                    dims: outer,
                },
                len,
            },
            None => match &self.field.base {
                Base::Atomic(atomic) => Shape::Atomic(*atomic),
                Base::Struct(name) => Shape::Struct(name),
            },
        }
    }
}

/// One member of a struct definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FieldDef {
    pub(super) name: String,
    pub(super) ty: FieldType,
}

/// All struct definitions, validated: names, field names and types are well formed, every
/// referenced struct is defined, and `EIP712Domain` is present and well formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Types {
    structs: BTreeMap<String, Vec<FieldDef>>,
}

impl Types {
    /// Reads and validates the `types` object.
    pub(super) fn parse(json: &Json<'_>) -> Result<Self, Eip712Error> {
        let root = Path::Root("types");
        let Json::Object(entries) = json else {
            return Err(Eip712Error::WrongJsonType {
                at: root.to_string(),
                expected: "an object of struct definitions".into(),
                got: json.kind(),
            });
        };
        if entries.len() > MAX_STRUCT_TYPES {
            return Err(Eip712Error::TooManyTypes {
                count: entries.len(),
                max: MAX_STRUCT_TYPES,
            });
        }
        let mut structs = BTreeMap::new();
        for (name, definition) in entries {
            let at = Path::Field(&root, name);
            check_struct_name(name).map_err(|why| Eip712Error::BadStructName {
                at: root.to_string(),
                name: name.to_string(),
                why,
            })?;
            structs.insert(name.to_string(), parse_fields(definition, &at)?);
        }
        let types = Types { structs };
        types.check_references()?;
        types.check_domain()?;
        Ok(types)
    }

    pub(super) fn fields(&self, name: &str) -> Option<&[FieldDef]> {
        self.structs.get(name).map(Vec::as_slice)
    }

    /// Every struct a field names is defined.
    fn check_references(&self) -> Result<(), Eip712Error> {
        let root = Path::Root("types");
        for (name, fields) in &self.structs {
            for field in fields {
                if let Base::Struct(referenced) = &field.ty.base
                    && !self.structs.contains_key(referenced)
                {
                    return Err(Eip712Error::UndefinedType {
                        at: Path::Field(&Path::Field(&root, name), &field.name).to_string(),
                        type_name: field.ty.written.clone(),
                        missing: referenced.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// `EIP712Domain` exists and declares a non-empty, ordered subset of [`DOMAIN_FIELDS`].
    fn check_domain(&self) -> Result<(), Eip712Error> {
        let at = Path::Field(&Path::Root("types"), DOMAIN_TYPE).to_string();
        let Some(fields) = self.structs.get(DOMAIN_TYPE) else {
            return Err(Eip712Error::BadDomainType {
                at,
                why: "it is missing; the domain must be declared, implementations disagree on \
                      what to infer when it is not"
                    .into(),
            });
        };
        if fields.is_empty() {
            return Err(Eip712Error::BadDomainType {
                at,
                why: "it declares no field, so the signature would be valid for every \
                      application and chain"
                    .into(),
            });
        }
        let mut next = 0;
        for field in fields {
            let Some((position, &(name, expected))) = DOMAIN_FIELDS
                .iter()
                .enumerate()
                .find(|(_, (name, _))| *name == field.name)
            else {
                return Err(Eip712Error::BadDomainType {
                    at,
                    why: format!(
                        "{} is not a domain field (name, version, chainId, verifyingContract, \
                         salt)",
                        super::quote(&field.name)
                    ),
                });
            };
            if field.ty.written != expected {
                return Err(Eip712Error::BadDomainType {
                    at,
                    why: format!(
                        "{name} is declared as {}, it must be {expected}",
                        super::quote(&field.ty.written)
                    ),
                });
            }
            if position < next {
                return Err(Eip712Error::BadDomainType {
                    at,
                    why: format!(
                        "{name} is out of order; declare the fields in the order name, version, \
                         chainId, verifyingContract, salt"
                    ),
                });
            }
            next = position + 1;
        }
        Ok(())
    }

    /// `encodeType(name)`: the struct, then every struct it references (transitively), sorted by
    /// name, each as `Name(type1 field1,type2 field2)`.
    pub(super) fn encode_type(&self, name: &str) -> Result<String, Eip712Error> {
        let mut referenced = BTreeSet::new();
        let mut pending = vec![name];
        while let Some(current) = pending.pop() {
            for field in self.fields(current).unwrap_or_default() {
                if let Base::Struct(other) = &field.ty.base
                    && other != name
                    && referenced.insert(other.as_str())
                {
                    pending.push(other);
                }
            }
        }
        let mut encoded = String::new();
        for current in std::iter::once(name).chain(referenced) {
            encoded.push_str(current);
            encoded.push('(');
            for (index, field) in self.fields(current).unwrap_or_default().iter().enumerate() {
                if index > 0 {
                    encoded.push(',');
                }
                // Writing to a String cannot fail.
                let _ = write!(encoded, "{} {}", field.ty.written, field.name);
            }
            encoded.push(')');
            if encoded.len() > MAX_ENCODED_TYPE_LEN {
                return Err(Eip712Error::TypeTooLong {
                    name: name.to_string(),
                    max: MAX_ENCODED_TYPE_LEN,
                });
            }
        }
        Ok(encoded)
    }

    /// `typeHash = keccak256(encodeType)` of `roots` and every struct they reach: all a value
    /// rooted there can need.
    pub(super) fn type_hashes(
        &self,
        roots: &[&str],
    ) -> Result<BTreeMap<String, B256>, Eip712Error> {
        let mut reached: BTreeSet<&str> = BTreeSet::new();
        let mut pending: Vec<&str> = roots.to_vec();
        while let Some(current) = pending.pop() {
            if !reached.insert(current) {
                continue;
            }
            for field in self.fields(current).unwrap_or_default() {
                if let Base::Struct(other) = &field.ty.base {
                    pending.push(other);
                }
            }
        }
        reached
            .into_iter()
            .filter(|name| self.structs.contains_key(*name))
            .map(|name| Ok((name.to_string(), keccak256(self.encode_type(name)?))))
            .collect()
    }
}

/// A struct definition: an array of `{"name": ..., "type": ...}`.
fn parse_fields(json: &Json<'_>, struct_at: &Path<'_>) -> Result<Vec<FieldDef>, Eip712Error> {
    let Json::Array(items) = json else {
        return Err(Eip712Error::WrongJsonType {
            at: struct_at.to_string(),
            expected: "an array of {\"name\", \"type\"} fields".into(),
            got: json.kind(),
        });
    };
    let mut fields: Vec<FieldDef> = Vec::with_capacity(items.len());
    let mut names = BTreeSet::new();
    for (index, item) in items.iter().enumerate() {
        let at = Path::Index(struct_at, index);
        let Json::Object(entries) = item else {
            return Err(Eip712Error::WrongJsonType {
                at: at.to_string(),
                expected: "a {\"name\", \"type\"} field".into(),
                got: item.kind(),
            });
        };
        let mut name = None;
        let mut type_name = None;
        for (key, value) in entries {
            let slot = match key.as_ref() {
                "name" => &mut name,
                "type" => &mut type_name,
                other => {
                    return Err(Eip712Error::UnexpectedKey {
                        at: at.to_string(),
                        key: other.to_string(),
                        why: "a field has only name and type".into(),
                    });
                }
            };
            let Json::String(text) = value else {
                return Err(Eip712Error::WrongJsonType {
                    at: Path::Field(&at, key).to_string(),
                    expected: "a string".into(),
                    got: value.kind(),
                });
            };
            *slot = Some(text.as_ref());
        }
        let (Some(name), Some(type_name)) = (name, type_name) else {
            return Err(Eip712Error::MissingKey {
                at: at.to_string(),
                key: if name.is_none() { "name" } else { "type" }.into(),
            });
        };
        check_field_name(name).map_err(|why| Eip712Error::BadFieldName {
            at: at.to_string(),
            name: name.to_string(),
            why,
        })?;
        if !names.insert(name) {
            return Err(Eip712Error::DuplicateField {
                at: at.to_string(),
                name: name.to_string(),
            });
        }
        let ty = parse_type(type_name).map_err(|why| Eip712Error::BadType {
            at: Path::Field(struct_at, name).to_string(),
            type_name: type_name.to_string(),
            why,
        })?;
        fields.push(FieldDef {
            name: name.to_string(),
            ty,
        });
    }
    Ok(fields)
}

/// A struct name is a Solidity identifier, and not one an atomic type could be mistaken for.
fn check_struct_name(name: &str) -> Result<(), String> {
    if !is_identifier(name) {
        return Err("a struct name is a letter, $ or _ followed by letters, digits, $ or _".into());
    }
    if atomic(name).is_some() {
        return Err("it is the name of an atomic type".into());
    }
    Ok(())
}

/// Field names are what eth-account, ethers and MetaMask all accept (a space included), minus what
/// would make `encodeType` ambiguous (`,` `(` `)`) or a review misleading (control characters).
fn check_field_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.contains([',', '(', ')']) {
        return Err("a field name cannot contain , ( or ) (they delimit encodeType)".into());
    }
    if name.chars().any(char::is_control) {
        return Err("a field name cannot contain control characters".into());
    }
    Ok(())
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_' || first == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// Parses a field type: a base (atomic or struct name) and `[]` / `[k]` suffixes.
fn parse_type(written: &str) -> Result<FieldType, String> {
    let base_end = written.find('[').unwrap_or(written.len());
    let (base_name, mut suffixes) = written.split_at(base_end);
    let base = match atomic(base_name) {
        Some(atomic) => Base::Atomic(atomic?),
        None if is_identifier(base_name) => Base::Struct(base_name.to_string()),
        None => {
            return Err(
                "it is neither an atomic type nor a struct name (a letter, $ or _ \
                        followed by letters, digits, $ or _), with optional [] or [k] suffixes"
                    .into(),
            );
        }
    };
    let mut dims = Vec::new();
    let mut at = base_end;
    while !suffixes.is_empty() {
        let Some((inside, rest)) = suffixes
            .strip_prefix('[')
            .and_then(|after| after.split_once(']'))
        else {
            return Err("an array suffix is [] or [k]".into());
        };
        let len = if inside.is_empty() {
            None
        } else {
            Some(fixed_length(inside)?)
        };
        dims.push(Dim { len, at });
        if dims.len() > MAX_DEPTH {
            return Err(format!("it has more than {MAX_DEPTH} array dimensions"));
        }
        at += inside.len() + 2;
        suffixes = rest;
    }
    Ok(FieldType {
        written: written.to_string(),
        base,
        dims,
    })
}

/// The `k` of `T[k]`: a positive decimal without leading zeros.
fn fixed_length(digits: &str) -> Result<usize, String> {
    let canonical = digits.bytes().all(|byte| byte.is_ascii_digit()) && !digits.starts_with('0');
    match digits.parse::<usize>() {
        Ok(len) if canonical => Ok(len),
        _ => Err(format!(
            "the array length {} is not a positive whole number without leading zeros",
            super::quote(digits)
        )),
    }
}

/// `Some` when `name` is spelled like an atomic type: `Ok` if it is one, `Err` saying why not
/// (`uint7`, `bytes33`, bare `uint`).
fn atomic(name: &str) -> Option<Result<Atomic, String>> {
    let atomic = match name {
        "address" => Atomic::Address,
        "bool" => Atomic::Bool,
        "string" => Atomic::String,
        "bytes" => Atomic::Bytes,
        "uint" | "int" => {
            return Some(Err(format!(
                "bare {name} is refused: write {name}256 (the type is hashed as written, and \
                 contracts write {name}256)"
            )));
        }
        _ => {
            let (prefix, digits) = ["uint", "int", "bytes"]
                .into_iter()
                .find_map(|prefix| Some((prefix, name.strip_prefix(prefix)?)))?;
            if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
                return None;
            }
            let size = digits
                .parse::<usize>()
                .ok()
                .filter(|_| !digits.starts_with('0'));
            return Some(match (prefix, size) {
                ("bytes", Some(n @ 1..=32)) => Ok(Atomic::FixedBytes(n)),
                ("bytes", _) => Err("bytesN takes N from 1 to 32, without leading zeros".into()),
                ("uint", Some(bits @ 8..=256)) if bits.is_multiple_of(8) => Ok(Atomic::Uint(bits)),
                ("int", Some(bits @ 8..=256)) if bits.is_multiple_of(8) => Ok(Atomic::Int(bits)),
                _ => Err(format!(
                    "{prefix}N takes N from 8 to 256 in steps of 8, without leading zeros"
                )),
            });
        }
    };
    Some(Ok(atomic))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_array_types_peel_from_the_last_suffix() {
        let ty = parse_type("string[3][4][2]").unwrap();
        let top = Ty::of(&ty);
        assert_eq!(top.written(), "string[3][4][2]");
        let Shape::Array { element, len } = top.shape() else {
            panic!("not an array")
        };
        assert_eq!((element.written(), len), ("string[3][4]", Some(2)));
        let Shape::Array { element, len } = element.shape() else {
            panic!("not an array")
        };
        assert_eq!((element.written(), len), ("string[3]", Some(4)));
        let Shape::Array { element, len } = element.shape() else {
            panic!("not an array")
        };
        assert_eq!((element.written(), len), ("string", Some(3)));
        assert!(matches!(element.shape(), Shape::Atomic(Atomic::String)));
    }

    #[test]
    fn atomic_types_are_canonical() {
        for good in [
            "uint8", "uint256", "int8", "int136", "bytes1", "bytes32", "address",
        ] {
            assert!(matches!(atomic(good), Some(Ok(_))), "{good}");
        }
        for bad in [
            "uint", "int", "uint0", "uint7", "uint264", "uint008", "int25689", "bytes0", "bytes33",
            "bytes01",
        ] {
            assert!(matches!(atomic(bad), Some(Err(_))), "{bad}");
        }
        for not_atomic in ["Person", "interval", "uint8x", "bytesX", "uint 8"] {
            assert!(atomic(not_atomic).is_none(), "{not_atomic}");
        }
    }

    #[test]
    fn malformed_array_suffixes_are_refused() {
        for bad in [
            "uint256[",
            "uint256]",
            "uint256[0]",
            "uint256[01]",
            "uint256[-1]",
            "uint256[1x]",
            "uint256[ 1]",
            "uint256[][",
            "uint256[]x",
            "Person []",
            "[]",
        ] {
            assert!(parse_type(bad).is_err(), "{bad}");
        }
        let deep = format!("uint256{}", "[]".repeat(MAX_DEPTH + 1));
        assert!(parse_type(&deep).unwrap_err().contains("dimensions"));
        assert!(parse_type(&format!("uint256{}", "[]".repeat(MAX_DEPTH))).is_ok());
    }
}
