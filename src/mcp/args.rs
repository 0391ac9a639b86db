//! Tool arguments, parsed strictly from what the model sent into validated types.
//!
//! rmcp does not check arguments against the schema, so this does: unknown arguments are refused,
//! strings are bounded, mixed-case addresses must carry a correct EIP-55 checksum, and number-like
//! arguments accept a decimal string or a JSON number but never a negative, fractional or
//! overflowing one. Every problem becomes an [`ArgError`] that says which argument and why, and
//! never repeats more than a short prefix of what was sent.

use alloy::primitives::{Address, B256};
use rmcp::model::JsonObject;
use serde_json::Value;

use crate::chain::BlockTag;
use crate::config::parse_address;

/// The most argument JSON any keyward tool accepts. Real arguments are under 200 bytes.
pub(crate) const MAX_ARGUMENT_BYTES: usize = 16 * 1024;
/// The longest prefix of a model-sent value repeated in an error.
const ECHO_CHARS: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ArgError {
    #[error("the arguments are over {max} bytes, the most this tool takes")]
    TooLarge { max: usize },

    #[error("unknown argument \"{name}\"; this tool takes {}", list(allowed))]
    Unknown {
        name: String,
        allowed: &'static [&'static str],
    },

    #[error("argument \"{name}\" {problem}")]
    Invalid { name: &'static str, problem: String },

    #[error("argument \"{name}\" is required")]
    Missing { name: &'static str },
}

fn list(allowed: &[&str]) -> String {
    if allowed.is_empty() {
        "no arguments".to_owned()
    } else {
        allowed.join(", ")
    }
}

/// The start of a model-sent string, for an error message.
fn echo(text: &str) -> String {
    let mut shown: String = text
        .chars()
        .take(ECHO_CHARS)
        .filter(|c| !c.is_control())
        .collect();
    if text.chars().count() > ECHO_CHARS {
        shown.push('…');
    }
    shown
}

/// A call's arguments, checked against the tool's argument names.
pub(crate) struct Arguments<'a> {
    map: Option<&'a JsonObject>,
}

impl<'a> Arguments<'a> {
    pub(crate) fn parse(
        arguments: Option<&'a JsonObject>,
        allowed: &'static [&'static str],
    ) -> Result<Self, ArgError> {
        Self::parse_within(arguments, allowed, MAX_ARGUMENT_BYTES)
    }

    /// As [`Arguments::parse`], for a tool that takes up to `max` bytes of arguments.
    pub(crate) fn parse_within(
        arguments: Option<&'a JsonObject>,
        allowed: &'static [&'static str],
        max: usize,
    ) -> Result<Self, ArgError> {
        if let Some(map) = arguments {
            let mut budget = max;
            for (key, value) in map {
                budget = budget
                    .checked_sub(key.len() + 4)
                    .and_then(|left| size_within(value, left))
                    .ok_or(ArgError::TooLarge { max })?;
            }
            if let Some(name) = map.keys().find(|key| !allowed.contains(&key.as_str())) {
                return Err(ArgError::Unknown {
                    name: echo(name),
                    allowed,
                });
            }
        }
        Ok(Self { map: arguments })
    }

    /// The arguments exactly as sent.
    pub(crate) fn raw(&self) -> Option<&'a JsonObject> {
        self.map
    }

    pub(crate) fn get(&self, name: &str) -> Option<&'a Value> {
        self.map
            .and_then(|map| map.get(name))
            .filter(|value| !value.is_null())
    }

    /// An optional string of 1 to `max` characters.
    pub(crate) fn string(
        &self,
        name: &'static str,
        max: usize,
    ) -> Result<Option<&'a str>, ArgError> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        let text = value
            .as_str()
            .ok_or_else(|| invalid(name, "must be a string"))?;
        let length = text.chars().count();
        if length == 0 {
            return Err(invalid(name, "must not be empty"));
        }
        if length > max {
            return Err(invalid(
                name,
                &format!("is {length} characters long; the most is {max}"),
            ));
        }
        Ok(Some(text))
    }

    /// A network name.
    pub(crate) fn network(&self) -> Result<Option<&'a str>, ArgError> {
        self.string("network", 32)
    }

    /// An account selector: a label, a 0x address, or a number (as a string or a JSON number).
    pub(crate) fn account(&self) -> Result<Option<String>, ArgError> {
        self.selector("account")
    }

    /// An account selector under another argument name.
    pub(crate) fn selector(&self, name: &'static str) -> Result<Option<String>, ArgError> {
        match self.get(name) {
            Some(Value::Number(number)) => number
                .as_u64()
                .map(|n| Some(n.to_string()))
                .ok_or_else(|| invalid(name, "as a number must be a whole number from 0 up")),
            Some(_) => Ok(self.string(name, 42)?.map(str::to_owned)),
            None => Ok(None),
        }
    }

    /// A required decimal amount, as a string or a JSON number, returned as its decimal text.
    /// The caller converts it exactly, with the asset's decimals.
    pub(crate) fn amount(&self, name: &'static str) -> Result<String, ArgError> {
        match self.get(name) {
            None => Err(ArgError::Missing { name }),
            Some(Value::Number(number)) => Ok(number.to_string()),
            Some(Value::String(_)) => Ok(self
                .string(name, 100)?
                .map(|text| text.trim().to_owned())
                .unwrap_or_default()),
            Some(_) => Err(invalid(
                name,
                "must be a decimal amount such as \"1.5\", as a string or a number",
            )),
        }
    }

    /// An optional whole number no larger than `max`.
    pub(crate) fn bounded(&self, name: &'static str, max: u64) -> Result<Option<u64>, ArgError> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        let number = whole_number(name, value)?;
        if number > max {
            return Err(invalid(name, &format!("must be at most {max}")));
        }
        Ok(Some(number))
    }

    /// A required address; a mixed-case one must carry a correct EIP-55 checksum.
    pub(crate) fn address(&self, name: &'static str) -> Result<Address, ArgError> {
        let text = self.string(name, 42)?.ok_or(ArgError::Missing { name })?;
        parse_address(text).map_err(|problem| invalid(name, &problem))
    }

    /// A required 32-byte hash, 0x and 64 hexadecimal digits.
    pub(crate) fn hash(&self, name: &'static str) -> Result<B256, ArgError> {
        let text = self.string(name, 66)?.ok_or(ArgError::Missing { name })?;
        let digits = text
            .strip_prefix("0x")
            .filter(|d| d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()));
        digits
            .and_then(|_| text.parse().ok())
            .ok_or_else(|| invalid(name, "must be 0x followed by 64 hexadecimal digits"))
    }

    /// A block number, as a decimal string or a JSON number, or "latest". Absent means latest.
    pub(crate) fn block(&self) -> Result<BlockTag, ArgError> {
        match self.get("block") {
            None => Ok(BlockTag::Latest),
            Some(Value::String(text)) if text == "latest" => Ok(BlockTag::Latest),
            Some(value) => whole_number("block", value).map(BlockTag::Number),
        }
    }
}

/// A non-negative whole number that fits in 64 bits, from a decimal string or a JSON number.
pub(crate) fn whole_number(name: &'static str, value: &Value) -> Result<u64, ArgError> {
    let text = match value {
        Value::Number(number) => number.to_string(),
        Value::String(text) => text.trim().to_owned(),
        _ => return Err(invalid(name, "must be a decimal string or a number")),
    };
    if let Some(rest) = text.strip_prefix('-') {
        return Err(invalid(
            name,
            if rest.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                && rest.chars().any(|c| c.is_ascii_digit())
            {
                "must not be negative"
            } else {
                "must be a whole number written in decimal digits"
            },
        ));
    }
    if text.contains(['.', 'e', 'E'])
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return Err(invalid(
            name,
            "must be a whole number, without a fraction or exponent",
        ));
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(
            name,
            &format!(
                "must be a whole number written in decimal digits, not \"{}\"",
                echo(&text)
            ),
        ));
    }
    text.parse::<u64>()
        .map_err(|_| invalid(name, "is too large: the most is 18446744073709551615"))
}

pub(crate) fn invalid(name: &'static str, problem: &str) -> ArgError {
    ArgError::Invalid {
        name,
        problem: problem.to_owned(),
    }
}

/// `Some(budget left)` when `value` serializes to at most `budget` bytes (roughly), without
/// serializing it.
fn size_within(value: &Value, budget: usize) -> Option<usize> {
    match value {
        Value::Null | Value::Bool(_) => budget.checked_sub(5),
        Value::Number(_) => budget.checked_sub(24),
        Value::String(text) => budget.checked_sub(text.len() + 2),
        Value::Array(items) => items.iter().try_fold(budget.checked_sub(2)?, |left, item| {
            size_within(item, left.checked_sub(1)?)
        }),
        Value::Object(map) => map
            .iter()
            .try_fold(budget.checked_sub(2)?, |left, (key, item)| {
                size_within(item, left.checked_sub(key.len() + 4)?)
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ALLOWED: &[&str] = &["account", "network", "block", "token", "hash"];

    fn args(value: Value) -> JsonObject {
        value.as_object().unwrap().clone()
    }

    fn parsed(value: &JsonObject) -> Arguments<'_> {
        Arguments::parse(Some(value), ALLOWED).unwrap()
    }

    #[test]
    fn unknown_and_oversized_arguments_are_refused() {
        let unknown = args(json!({"acount": "main"}));
        let err = Arguments::parse(Some(&unknown), ALLOWED)
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            err,
            "unknown argument \"acount\"; this tool takes account, network, block, token, hash"
        );

        let huge = args(json!({"network": "x".repeat(10 << 20)}));
        assert_eq!(
            Arguments::parse(Some(&huge), ALLOWED).err(),
            Some(ArgError::TooLarge {
                max: MAX_ARGUMENT_BYTES
            })
        );
        let deep = args(json!({"network": [[[vec!["xxxx"; 4000]]]]}));
        assert_eq!(
            Arguments::parse(Some(&deep), ALLOWED).err(),
            Some(ArgError::TooLarge {
                max: MAX_ARGUMENT_BYTES
            })
        );
    }

    #[test]
    fn addresses_need_hex_and_a_right_checksum() {
        let good = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
        assert!(
            parsed(&args(json!({"token": good})))
                .address("token")
                .is_ok()
        );
        let bad_checksum = args(json!({"token": good.replacen('F', "f", 1)}));
        let err = parsed(&bad_checksum)
            .address("token")
            .unwrap_err()
            .to_string();
        assert!(err.contains("EIP-55 checksum"), "{err}");
        let not_hex = args(json!({"token": "0xZZbDB2315678afecb367f032d93F642f64180aa3"}));
        assert!(
            parsed(&not_hex)
                .address("token")
                .unwrap_err()
                .to_string()
                .contains("40 hexadecimal")
        );
        assert_eq!(
            parsed(&args(json!({}))).address("token").unwrap_err(),
            ArgError::Missing { name: "token" }
        );
    }

    #[test]
    fn blocks_accept_strings_and_numbers_but_only_whole_non_negative_ones() {
        let block = |value: Value| parsed(&args(json!({"block": value}))).block();
        assert_eq!(block(json!("123")), Ok(BlockTag::Number(123)));
        assert_eq!(block(json!(123)), Ok(BlockTag::Number(123)));
        assert_eq!(block(json!("latest")), Ok(BlockTag::Latest));
        for (value, expected) in [
            (json!(-1), "must not be negative"),
            (json!("-5"), "must not be negative"),
            (json!(1.5), "without a fraction"),
            (json!("2.0"), "without a fraction"),
            (json!(1e30), "without a fraction"),
            (json!("18446744073709551616"), "too large"),
            (json!(u64::MAX as f64 * 4.0), "without a fraction"),
            (json!("0x10"), "decimal digits"),
            (json!(true), "decimal string or a number"),
        ] {
            let err = block(value.clone()).unwrap_err().to_string();
            assert!(err.contains(expected), "{value}: {err}");
        }
    }

    #[test]
    fn accounts_may_be_numbers() {
        assert_eq!(
            parsed(&args(json!({"account": 3}))).account(),
            Ok(Some("3".to_owned()))
        );
        assert!(parsed(&args(json!({"account": -3}))).account().is_err());
        assert_eq!(
            parsed(&args(json!({"account": "main"}))).account(),
            Ok(Some("main".to_owned()))
        );
        assert!(parsed(&args(json!({"account": ""}))).account().is_err());
    }

    #[test]
    fn errors_echo_only_a_short_prefix() {
        let long = args(json!({"block": "z".repeat(5000)}));
        let err = parsed(&long).block().unwrap_err().to_string();
        assert!(err.len() < 200, "{err}");
    }

    /// Any JSON value, nested a few levels, with the strings and numbers argument readers meet.
    fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            ".{0,80}".prop_map(Value::from),
            "(0x)?[0-9a-fA-F]{0,70}".prop_map(Value::from),
            "[0-9]{0,40}(\\.[0-9]{0,30})?".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                proptest::collection::btree_map(".{0,12}", inner, 0..6)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// No argument object, however odd, makes a reader panic; every refusal has a message
        /// short enough to show, naming what was wrong.
        #[test]
        fn no_argument_object_panics_a_reader_and_every_refusal_is_short(
            entries in proptest::collection::vec(
                (proptest::sample::select(ALLOWED.to_vec()), any_json()),
                0..6,
            ),
            stray in proptest::option::of(".{1,20}"),
        ) {
            let mut map: JsonObject = entries
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value))
                .collect();
            if let Some(stray) = stray {
                map.insert(stray, Value::Null);
            }
            let arguments = match Arguments::parse(Some(&map), ALLOWED) {
                Ok(arguments) => arguments,
                Err(err) => {
                    let message = err.to_string();
                    proptest::prop_assert!(!message.is_empty() && message.len() < 400, "{}", message);
                    return Ok(());
                }
            };
            let messages = [
                arguments.network().err().map(|e| e.to_string()),
                arguments.account().err().map(|e| e.to_string()),
                arguments.selector("account").err().map(|e| e.to_string()),
                arguments.amount("token").err().map(|e| e.to_string()),
                arguments.bounded("block", 60).err().map(|e| e.to_string()),
                arguments.address("token").err().map(|e| e.to_string()),
                arguments.hash("hash").err().map(|e| e.to_string()),
                arguments.block().err().map(|e| e.to_string()),
                arguments.string("network", 64).err().map(|e| e.to_string()),
            ];
            for message in messages.into_iter().flatten() {
                proptest::prop_assert!(!message.is_empty() && message.len() < 400, "{}", message);
            }
        }
    }
}
