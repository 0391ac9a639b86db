//! The tools-hash: one SHA-256 that names the exact tool list a keyward build serves, so that a
//! user can check that the server their MCP host launched offers the tools they reviewed.
//!
//! It is the SHA-256 of the *canonical* form of the `tools` array of the `tools/list` result, as
//! keyward sends it on the wire: JSON with every object's keys sorted by Unicode code point, no
//! whitespace between tokens, strings as UTF-8 with only `"`, `\` and U+0000 to U+001F escaped
//! (`\b \t \n \f \r` short, the rest as `\u00xx` in lower-case hex), numbers as integers in
//! decimal. That is what Python's `json.dumps(tools, sort_keys=True, separators=(",", ":"),
//! ensure_ascii=False)` writes, so anyone can recompute it in a few lines (README, "Verifying what
//! you run"). It is written `sha256:` and 64 lower-case hex digits.
//!
//! This module hashes public data only: the tool list holds no account, address or secret.

use std::sync::LazyLock;

use rmcp::model::Tool;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::tools::TOOLS;

/// What every tools-hash starts with: the algorithm's name.
pub(crate) const PREFIX: &str = "sha256:";

static TOOLS_HASH: LazyLock<String> = LazyLock::new(|| hash_of(&TOOLS));

/// The tools-hash of the tool list this build serves (`sha256:` and 64 lower-case hex digits),
/// computed once.
pub fn tools_hash() -> &'static str {
    &TOOLS_HASH
}

/// The tools-hash of any tool list, serialized exactly as rmcp puts it on the wire.
pub(crate) fn hash_of(tools: &[Tool]) -> String {
    #[expect(
        clippy::expect_used,
        reason = "a Tool is strings, maps, booleans and integers: serializing it cannot fail"
    )]
    let wire = serde_json::to_value(tools).expect("a tool list serializes to JSON");
    let mut canonical = String::new();
    write_canonical(&wire, &mut canonical);
    format!(
        "{PREFIX}{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    )
}

/// Appends the canonical JSON form of `value` (see the module's documentation) to `out`.
pub(crate) fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        // Integers print alike everywhere; a test keeps fractions out of the tool list, since
        // languages disagree on how to print them (`1e20` here, `1e+20` in Python).
        Value::Number(number) => out.push_str(&number.to_string()),
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Byte order of UTF-8 is code point order, which is how Python sorts `str` keys.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by_key(|(key, _)| *key);
            out.push('{');
            for (index, (key, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
    }
}

fn write_string(text: &str, out: &mut String) {
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            control if u32::from(control) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", u32::from(control)));
            }
            other => out.push(other),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use serde_json::json;

    use super::*;

    fn canonical(value: &Value) -> String {
        let mut out = String::new();
        write_canonical(value, &mut out);
        out
    }

    /// The expected text was written by Python 3.11: `json.dumps(value, sort_keys=True,
    /// separators=(",", ":"), ensure_ascii=False)` on the same value, so the README's recipe and
    /// keyward agree on key order, escapes and non-ASCII text.
    #[test]
    fn canonical_json_is_what_python_writes() {
        let value = json!({
            "b": "\u{0}\u{1}\u{8}\t\n\u{b}\u{c}\r\u{1f}\u{7f} \"\\ é € 😀 \u{2028} </script>",
            "a": [1, -2, 0, true, null, false],
            "é": 1,
            "z": {},
            "Z": [],
        });
        assert_eq!(
            canonical(&value),
            "{\"Z\":[],\"a\":[1,-2,0,true,null,false],\"b\":\"\\u0000\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f\u{7f} \\\"\\\\ é € 😀 \u{2028} </script>\",\"z\":{},\"é\":1}"
        );
    }

    #[test]
    fn the_hash_is_sha256_of_the_canonical_wire_form() {
        let wire = serde_json::to_value(&*TOOLS).unwrap();
        let expected = hex::encode(Sha256::digest(canonical(&wire).as_bytes()));
        assert_eq!(tools_hash(), format!("sha256:{expected}"));
        assert_eq!(tools_hash().len(), PREFIX.len() + 64);
        assert!(
            tools_hash()[PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }

    #[test]
    fn a_changed_tool_description_changes_the_hash() {
        let original = hash_of(&TOOLS);
        assert_eq!(original, tools_hash());
        let mut changed = TOOLS.clone();
        let description = changed[1].description.clone().unwrap();
        changed[1].description = Some(Cow::Owned(format!("{description} ")));
        assert_ne!(hash_of(&changed), original, "one space more must show");
        // Order matters too: the list is hashed as served.
        let mut reordered = TOOLS.clone();
        reordered.swap(0, 1);
        assert_ne!(hash_of(&reordered), original);
        // And the unchanged copy hashes the same.
        assert_eq!(hash_of(&TOOLS.clone()), original);
    }

    /// Python, JavaScript and Rust print integers alike but not fractions or exponents, so the
    /// canonical form stays reproducible only while the tool list holds integers alone.
    #[test]
    fn every_number_in_the_tool_list_is_an_integer() {
        fn walk(value: &Value, path: &str) {
            match value {
                Value::Number(number) => assert!(
                    number.is_i64() || number.is_u64(),
                    "{path} is {number}: the tools-hash's canonical JSON takes integers only \
                     (README, \"Verifying what you run\")"
                ),
                Value::Array(items) => {
                    for (index, item) in items.iter().enumerate() {
                        walk(item, &format!("{path}[{index}]"));
                    }
                }
                Value::Object(map) => {
                    for (key, item) in map {
                        walk(item, &format!("{path}.{key}"));
                    }
                }
                _ => {}
            }
        }
        walk(&serde_json::to_value(&*TOOLS).unwrap(), "tools");
    }
}
