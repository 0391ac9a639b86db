//! Strict field access on parsed JSON, with errors that name the field but never echo its value.
//!
//! serde's typed errors quote the offending value ("invalid type: string \"…\""). A user who points
//! keyward at the wrong file (a plaintext key, a note with a phrase) must not see that file echoed
//! back into a terminal or a log, so keystore JSON is parsed to a `Value` and read through here.

use serde_json::{Map, Value};

use super::KeystoreError;

/// Parses JSON, reporting only the position of a syntax error.
pub(crate) fn parse(bytes: &[u8]) -> Result<Value, KeystoreError> {
    serde_json::from_slice(bytes).map_err(|err| KeystoreError::NotJson {
        line: err.line(),
        column: err.column(),
    })
}

/// A JSON object and its path from the document root, for error messages.
pub(crate) struct Object<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Object<'a> {
    pub(crate) fn root(value: &'a Value) -> Result<Self, KeystoreError> {
        match value {
            Value::Object(map) => Ok(Self {
                map,
                path: String::new(),
            }),
            _ => Err(malformed("(document)", "must be a JSON object")),
        }
    }

    fn child_path(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    /// Looks a field up by name. Like geth (Go's encoding/json), a field matches case-insensitively
    /// when there is no exact match, so `Crypto` is read as `crypto`.
    pub(crate) fn get(&self, name: &str) -> Result<Option<&'a Value>, KeystoreError> {
        if let Some(value) = self.map.get(name) {
            return Ok(Some(value));
        }
        let mut matches = self
            .map
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name));
        match (matches.next(), matches.next()) {
            (None, _) => Ok(None),
            (Some((_, value)), None) => Ok(Some(value)),
            (Some(_), Some(_)) => Err(malformed(
                &self.child_path(name),
                "appears more than once with different capitalisation",
            )),
        }
    }

    pub(crate) fn required(&self, name: &str) -> Result<&'a Value, KeystoreError> {
        self.get(name)?
            .ok_or_else(|| malformed(&self.child_path(name), "is missing"))
    }

    pub(crate) fn object(&self, name: &str) -> Result<Object<'a>, KeystoreError> {
        match self.required(name)? {
            Value::Object(map) => Ok(Object {
                map,
                path: self.child_path(name),
            }),
            _ => Err(malformed(&self.child_path(name), "must be a JSON object")),
        }
    }

    pub(crate) fn string(&self, name: &str) -> Result<&'a str, KeystoreError> {
        match self.required(name)? {
            Value::String(s) => Ok(s),
            _ => Err(malformed(&self.child_path(name), "must be a string")),
        }
    }

    pub(crate) fn boolean(&self, name: &str) -> Result<bool, KeystoreError> {
        self.required(name)?
            .as_bool()
            .ok_or_else(|| malformed(&self.child_path(name), "must be true or false"))
    }

    /// An array of objects, each with its index in its path (`accounts[2]`).
    pub(crate) fn objects(&self, name: &str) -> Result<Vec<Object<'a>>, KeystoreError> {
        let Value::Array(items) = self.required(name)? else {
            return Err(malformed(&self.child_path(name), "must be a JSON array"));
        };
        items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let path = format!("{}[{index}]", self.child_path(name));
                match item {
                    Value::Object(map) => Ok(Object { map, path }),
                    _ => Err(malformed(&path, "must be a JSON object")),
                }
            })
            .collect()
    }

    /// A non-negative JSON integer. Floats such as `8.0` and numeric strings are refused.
    pub(crate) fn integer(&self, name: &str) -> Result<u64, KeystoreError> {
        self.required(name)?
            .as_u64()
            .ok_or_else(|| malformed(&self.child_path(name), "must be a non-negative integer"))
    }

    /// Hex bytes, with or without a `0x` prefix, of a length within `len`.
    pub(crate) fn hex(
        &self,
        name: &str,
        len: std::ops::RangeInclusive<usize>,
    ) -> Result<Vec<u8>, KeystoreError> {
        let text = self.string(name)?;
        let digits = text.strip_prefix("0x").unwrap_or(text);
        let bytes = hex::decode(digits)
            .map_err(|_| malformed(&self.child_path(name), "is not valid hex"))?;
        if !len.contains(&bytes.len()) {
            let problem = if len.start() == len.end() {
                format!(
                    "must be {} bytes of hex, found {}",
                    len.start(),
                    bytes.len()
                )
            } else {
                format!(
                    "must be {} to {} bytes of hex, found {}",
                    len.start(),
                    len.end(),
                    bytes.len()
                )
            };
            return Err(malformed(&self.child_path(name), &problem));
        }
        Ok(bytes)
    }

    pub(crate) fn field_path(&self, name: &str) -> String {
        self.child_path(name)
    }
}

pub(crate) fn malformed(field: &str, problem: &str) -> KeystoreError {
    KeystoreError::Malformed {
        field: field.to_owned(),
        problem: problem.to_owned(),
    }
}

/// A name read from a file, shown in an error only when it is short, lowercase ASCII. Anything else
/// could be arbitrary file content and is not repeated.
pub(crate) fn printable_name(name: &str) -> Option<String> {
    let plain = !name.is_empty()
        && name.len() <= 24
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    plain.then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_field_and_not_the_value() {
        let doc: Value =
            serde_json::json!({"crypto": {"kdfparams": {"n": "secret-looking-value"}}});
        let root = Object::root(&doc).unwrap();
        let err = root
            .object("crypto")
            .unwrap()
            .object("kdfparams")
            .unwrap()
            .integer("n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("crypto.kdfparams.n"), "{err}");
        assert!(!err.contains("secret-looking-value"), "{err}");
    }

    #[test]
    fn field_names_match_case_insensitively_like_geth() {
        let doc: Value = serde_json::json!({"Crypto": {"cipher": "aes-128-ctr"}});
        let root = Object::root(&doc).unwrap();
        assert_eq!(
            root.object("crypto").unwrap().string("cipher").unwrap(),
            "aes-128-ctr"
        );

        let twice: Value = serde_json::json!({"Crypto": {}, "CRYPTO": {}});
        assert!(Object::root(&twice).unwrap().object("crypto").is_err());
    }

    #[test]
    fn syntax_errors_report_only_a_position() {
        let err = parse(b"{\"key\": 0xdeadbeefcafe}").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
        assert!(!err.contains("deadbeef"), "{err}");
    }

    #[test]
    fn hex_checks_length() {
        let doc: Value = serde_json::json!({"iv": "0x0011", "mac": "zz"});
        let root = Object::root(&doc).unwrap();
        assert!(
            root.hex("iv", 16..=16)
                .unwrap_err()
                .to_string()
                .contains("16 bytes")
        );
        assert!(
            root.hex("mac", 32..=32)
                .unwrap_err()
                .to_string()
                .contains("not valid hex")
        );
    }
}
