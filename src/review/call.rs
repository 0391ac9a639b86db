//! How a contract call reads in the review: the function and every argument when keyward can
//! decode the calldata, the raw bytes when it cannot, and the warnings each deserves.

use alloy::primitives::{Address, U256};

use super::{Severity, Text, Warning, escape as clean, grouped};
use crate::abi::{Arg, Call, Decoded, KnownCall, Value};

/// Hex bytes per line for calldata keyward cannot decode.
const HEX_PER_LINE: usize = 32;

/// What keyward made of a call's calldata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallReading {
    /// Decoded against the function signature given with the request.
    Given(Call),
    /// Read against keyward's registry of well-known functions.
    Known(Decoded),
}

impl CallReading {
    /// keyward cannot say what the call does: signing it is blind signing.
    /// That includes a call inside a multicall or a Safe transaction.
    pub fn is_blind(&self) -> bool {
        match self {
            Self::Given(_) => false,
            Self::Known(decoded) => unreadable(decoded),
        }
    }

    /// A Safe delegatecall anywhere in what was decoded.
    pub fn delegatecall(&self) -> bool {
        matches!(self, Self::Known(Decoded::Known(call)) if call.contains_delegatecall())
    }

    /// Whether the call, or any call it carries, grants spending power without a limit:
    /// `approve` or `increaseAllowance` of the largest amount, or
    /// `setApprovalForAll(operator, true)`. An approval inside a multicall or a Safe transaction
    /// grants as much as one made directly.
    pub fn grants_unlimited(&self) -> bool {
        self.calls().iter().any(|(call, _)| {
            match (call.signature.as_str(), call.args.get(1).map(|a| &a.value)) {
                (
                    "approve(address,uint256)" | "increaseAllowance(address,uint256)",
                    Some(Value::Uint(amount)),
                ) => *amount == U256::MAX,
                ("setApprovalForAll(address,bool)", Some(Value::Bool(approved))) => *approved,
                _ => false,
            }
        })
    }

    /// For each ERC-20 `transfer`, `approve` or `increaseAllowance` the called contract runs for
    /// the sender (the call itself, or one inside its `multicall`): the recipient or spender and
    /// the amount.
    pub fn token_movements(&self) -> Vec<(Address, U256)> {
        self.calls()
            .into_iter()
            .filter(|(_, on_target)| *on_target)
            .filter_map(|(call, _)| {
                match (
                    call.signature.as_str(),
                    call.args.first().map(|a| &a.value),
                    call.args.get(1).map(|a| &a.value),
                ) {
                    (
                        "transfer(address,uint256)"
                        | "approve(address,uint256)"
                        | "increaseAllowance(address,uint256)",
                        Some(Value::Address(party)),
                        Some(Value::Uint(amount)),
                    ) => Some((*party, *amount)),
                    _ => None,
                }
            })
            .collect()
    }

    /// Every call decoded, the outer one first, each with whether it runs on the called
    /// contract for the sender: a multicall's inner calls do, a Safe transaction's do not.
    fn calls(&self) -> Vec<(&Call, bool)> {
        fn walk<'a>(decoded: &'a Decoded, on_target: bool, calls: &mut Vec<(&'a Call, bool)>) {
            if let Decoded::Known(known) = decoded {
                calls.push((&known.call, on_target));
                let inner_on_target = on_target && known.call.name == "multicall";
                for inner in &known.inner {
                    walk(inner, inner_on_target, calls);
                }
            }
        }
        let mut calls = Vec::new();
        match self {
            Self::Given(call) => calls.push((call, true)),
            Self::Known(decoded) => walk(decoded, true, &mut calls),
        }
        calls
    }

    /// Where the first call keyward cannot read is: "this calldata", or "inner call 2", or
    /// "inner call 1, inner call 3".
    fn unreadable_part(&self) -> Option<String> {
        fn find(decoded: &Decoded, path: &mut Vec<usize>) -> bool {
            match decoded {
                Decoded::Known(known) => known.inner.iter().enumerate().any(|(index, inner)| {
                    path.push(index + 1);
                    find(inner, path) || {
                        path.pop();
                        false
                    }
                }),
                other => unreadable(other),
            }
        }
        let Self::Known(decoded) = self else {
            return None;
        };
        let mut path = Vec::new();
        find(decoded, &mut path).then(|| {
            if path.is_empty() {
                "this calldata".to_owned()
            } else {
                path.iter()
                    .map(|index| format!("inner call {index}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        })
    }

    /// The function's name for the title, when known.
    pub fn name(&self) -> Option<&str> {
        match self {
            Self::Given(call) => Some(&call.name),
            Self::Known(Decoded::Known(known)) => Some(&known.call.name),
            Self::Known(_) => None,
        }
    }
}

fn unreadable(decoded: &Decoded) -> bool {
    match decoded {
        Decoded::Known(known) => known.inner.iter().any(unreadable),
        // No calldata at all is a plain ETH transfer, which the review shows in full.
        Decoded::Unknown {
            selector: None,
            len,
        } => *len > 0,
        Decoded::Unknown { .. } | Decoded::Malformed { .. } | Decoded::TooDeep { .. } => true,
    }
}

/// The call's lines in the review.
pub(super) fn call_lines(text: &mut Text, reading: &CallReading, input: &[u8]) {
    match reading {
        CallReading::Given(call) => {
            text.line(
                "Function",
                format!("{} (as the request names it)", signature_of(call)),
            );
            args_lines(text, &call.args, 1);
        }
        CallReading::Known(decoded) => decoded_lines(text, decoded, input, 0),
    }
}

fn decoded_lines(text: &mut Text, decoded: &Decoded, input: &[u8], depth: usize) {
    let indent = "  ".repeat(depth);
    let label = |text: &mut Text, value: String| {
        if depth == 0 {
            text.line("Function", value);
        } else {
            text.more(format!("{indent}{value}"));
        }
    };
    match decoded {
        Decoded::Known(known) => known_lines(text, known, depth, &label),
        Decoded::Unknown {
            selector: None,
            len: 0,
        } => {
            label(text, "none: plain ETH, no calldata".to_owned());
        }
        Decoded::Unknown { selector, len } => {
            label(
                text,
                match selector {
                    Some(selector) => format!(
                        "UNKNOWN: selector 0x{}, {len} bytes of calldata keyward cannot read",
                        hex::encode(selector)
                    ),
                    None => format!("UNKNOWN: {len} bytes, too short for a function selector"),
                },
            );
            if depth == 0 {
                raw_lines(text, input);
            }
        }
        Decoded::Malformed {
            selector,
            signature,
            error,
        } => {
            label(
                text,
                format!(
                    "MALFORMED: selector 0x{} is {signature}, but the arguments are not its \
                     encoding ({error})",
                    hex::encode(selector)
                ),
            );
            if depth == 0 {
                raw_lines(text, input);
            }
        }
        Decoded::TooDeep { len, .. } => {
            label(text, format!("a call nested too deep to read, {len} bytes"));
        }
    }
}

fn known_lines(
    text: &mut Text,
    known: &KnownCall,
    depth: usize,
    label: &dyn Fn(&mut Text, String),
) {
    let standards: Vec<String> = known.standards.iter().map(ToString::to_string).collect();
    label(
        text,
        format!("{} [{}]", signature_of(&known.call), standards.join(", ")),
    );
    args_lines(text, &known.call.args, depth + 1);
    for other in &known.other_readings {
        let standards: Vec<String> = other.standards.iter().map(ToString::to_string).collect();
        text.more(format!(
            "{}or, read as {}: {}",
            "  ".repeat(depth + 1),
            standards.join(", "),
            signature_of(&other.call)
        ));
        args_lines(text, &other.call.args, depth + 2);
    }
    for (index, inner) in known.inner.iter().enumerate() {
        text.more(format!(
            "{}inner call {}:",
            "  ".repeat(depth + 1),
            index + 1
        ));
        decoded_lines(text, inner, &[], depth + 2);
    }
}

/// `transfer(address to, uint256 amount)`, names as given (sanitized).
fn signature_of(call: &Call) -> String {
    let params: Vec<String> = call
        .args
        .iter()
        .map(|arg| match &arg.name {
            Some(name) => format!("{} {}", arg.ty, clean(name)),
            None => arg.ty.clone(),
        })
        .collect();
    format!("{}({})", clean(&call.name), params.join(", "))
}

fn args_lines(text: &mut Text, args: &[Arg], depth: usize) {
    for (index, arg) in args.iter().enumerate() {
        let name = arg
            .name
            .as_deref()
            .map_or_else(|| format!("#{}", index + 1), clean);
        value_lines(text, &format!("{name} ({})", arg.ty), &arg.value, depth);
    }
}

fn value_lines(text: &mut Text, label: &str, value: &Value, depth: usize) {
    let indent = "  ".repeat(depth);
    match value {
        Value::Tuple(components) => {
            text.more(format!("{indent}{label}:"));
            args_lines(text, components, depth + 1);
        }
        Value::Array(items) => {
            text.more(format!(
                "{indent}{label}: {} item{}",
                items.len(),
                if items.len() == 1 { "" } else { "s" }
            ));
            for (index, item) in items.iter().enumerate() {
                value_lines(text, &format!("[{index}]"), item, depth + 1);
            }
        }
        leaf => text.more(format!("{indent}{label}: {}", leaf_text(leaf))),
    }
}

fn leaf_text(value: &Value) -> String {
    match value {
        Value::Address(address) => grouped(*address),
        Value::Uint(amount) if *amount == U256::MAX => format!("{amount} (the largest uint256)"),
        Value::Uint(amount) => amount.to_string(),
        Value::Int(amount) => amount.to_string(),
        Value::Bool(flag) => flag.to_string(),
        Value::Bytes(bytes) | Value::FixedBytes(bytes) => format!("0x{}", hex::encode(bytes)),
        Value::String(text) => format!("\"{}\" (text from the request)", clean(text)),
        Value::Array(_) | Value::Tuple(_) => String::new(),
    }
}

fn raw_lines(text: &mut Text, input: &[u8]) {
    for chunk in input.chunks(HEX_PER_LINE) {
        text.more(format!("| {}", hex::encode(chunk)));
    }
}

/// The warnings a call deserves.
pub(super) fn call_warnings(reading: &CallReading, blind_signing: bool) -> Vec<Warning> {
    let mut warnings = Vec::new();
    if let Some(part) = reading.unreadable_part() {
        warnings.push(Warning {
            severity: Severity::Critical,
            text: format!(
                "keyward cannot decode {part}, so this review cannot say what the call does: \
                 signing it is blind signing"
            ),
            blocks: !blind_signing,
        });
    }
    if reading.delegatecall() {
        warnings.push(Warning {
            severity: Severity::Critical,
            text: "a Safe transaction with operation 1 (delegatecall): the target runs with the \
                   Safe's own storage and funds and can do anything the Safe can, including \
                   changing its owners"
                .into(),
            blocks: false,
        });
    }
    if reading.grants_unlimited() {
        warnings.push(Warning {
            severity: Severity::Critical,
            text: "UNLIMITED spending power: the spender or operator can take every token of \
                   this kind the account ever holds, until it is revoked"
                .into(),
            blocks: false,
        });
    }
    if let CallReading::Given(_) = reading {
        warnings.push(Warning {
            severity: Severity::Info,
            text: "the function's name and parameter names come from the request: keyward \
                   checked that the calldata encodes these arguments for this signature, not \
                   what the contract does with them"
                .into(),
            blocks: false,
        });
    }
    warnings
}
