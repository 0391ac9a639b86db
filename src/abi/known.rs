//! A fixed registry of well-known functions, for reading raw calldata the model passes.
//!
//! A selector is four bytes of a hash: it says which signature the caller meant, not what the
//! contract will do. Two standards can share a signature with different meanings: ERC-20's
//! `transferFrom(address,address,uint256)` moves an amount, ERC-721's moves one token by id, and
//! `approve(address,uint256)` is the same. Nothing in the calldata tells them apart, only the
//! contract does, so such a call decodes once per reading ([`KnownCall::other_readings`]) and the
//! reviewer shows both.
//!
//! Calls nested in a call (`multicall`'s `data`, a Safe's `execTransaction` `data`) are decoded
//! against the same registry, at most [`MAX_INNER_CALL_DEPTH`] levels down.

use std::fmt;

use alloy::primitives::U256;

use super::signature::Function;
use super::value::{Call, Value};
use super::{AbiError, MAX_INNER_CALL_DEPTH};

/// Where a known function comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Standard {
    /// Fungible tokens, with the common `increaseAllowance`/`decreaseAllowance` extension and
    /// EIP-2612 `permit`.
    Erc20,
    /// Non-fungible tokens.
    Erc721,
    /// Multi-tokens.
    Erc1155,
    /// Wrapped ether.
    Weth,
    /// Batching calls to the same contract (OpenZeppelin, Uniswap v3).
    Multicall,
    /// Safe (formerly Gnosis Safe) multisig wallets.
    Safe,
}

impl fmt::Display for Standard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Erc20 => "ERC-20",
            Self::Erc721 => "ERC-721",
            Self::Erc1155 => "ERC-1155",
            Self::Weth => "WETH",
            Self::Multicall => "multicall",
            Self::Safe => "Safe",
        })
    }
}

/// One entry of the registry: a signature with parameter names, and the standards where it
/// means the same thing.
#[derive(Debug)]
pub struct KnownFunction {
    /// keccak256 of the canonical signature, first 4 bytes (checked by a test).
    pub selector: [u8; 4],
    /// With parameter names, in the form [`Function::named_signature`] prints.
    pub signature: &'static str,
    pub standards: &'static [Standard],
    /// Which argument holds calls to decode in turn.
    nested: Nested,
}

#[derive(Debug, Clone, Copy)]
enum Nested {
    None,
    /// A `bytes[]` argument, each element a call.
    Each(usize),
    /// A `bytes` argument holding one call.
    One(usize),
}

const EXEC_TRANSACTION: [u8; 4] = [0x6a, 0x76, 0x12, 0x02];

const fn known(
    selector: [u8; 4],
    signature: &'static str,
    standards: &'static [Standard],
) -> KnownFunction {
    KnownFunction {
        selector,
        signature,
        standards,
        nested: Nested::None,
    }
}

use Standard::{Erc20, Erc721, Erc1155, Multicall, Safe, Weth};

/// Parameter names follow each standard's text. Entries sharing a selector must share the
/// canonical signature (a test checks), and are listed in the order a review shows them.
static KNOWN_FUNCTIONS: [KnownFunction; 18] = [
    known(
        [0xa9, 0x05, 0x9c, 0xbb],
        "transfer(address to,uint256 amount)",
        &[Erc20],
    ),
    known(
        [0x09, 0x5e, 0xa7, 0xb3],
        "approve(address spender,uint256 amount)",
        &[Erc20],
    ),
    known(
        [0x09, 0x5e, 0xa7, 0xb3],
        "approve(address approved,uint256 tokenId)",
        &[Erc721],
    ),
    known(
        [0x23, 0xb8, 0x72, 0xdd],
        "transferFrom(address from,address to,uint256 amount)",
        &[Erc20],
    ),
    known(
        [0x23, 0xb8, 0x72, 0xdd],
        "transferFrom(address from,address to,uint256 tokenId)",
        &[Erc721],
    ),
    known(
        [0x39, 0x50, 0x93, 0x51],
        "increaseAllowance(address spender,uint256 addedValue)",
        &[Erc20],
    ),
    known(
        [0xa4, 0x57, 0xc2, 0xd7],
        "decreaseAllowance(address spender,uint256 subtractedValue)",
        &[Erc20],
    ),
    known(
        [0xd5, 0x05, 0xac, 0xcf],
        "permit(address owner,address spender,uint256 value,uint256 deadline,uint8 v,bytes32 r,bytes32 s)",
        &[Erc20],
    ),
    known(
        [0x42, 0x84, 0x2e, 0x0e],
        "safeTransferFrom(address from,address to,uint256 tokenId)",
        &[Erc721],
    ),
    known(
        [0xb8, 0x8d, 0x4f, 0xde],
        "safeTransferFrom(address from,address to,uint256 tokenId,bytes data)",
        &[Erc721],
    ),
    known(
        [0xa2, 0x2c, 0xb4, 0x65],
        "setApprovalForAll(address operator,bool approved)",
        &[Erc721, Erc1155],
    ),
    known(
        [0xf2, 0x42, 0x43, 0x2a],
        "safeTransferFrom(address from,address to,uint256 id,uint256 value,bytes data)",
        &[Erc1155],
    ),
    known(
        [0x2e, 0xb2, 0xc2, 0xd6],
        "safeBatchTransferFrom(address from,address to,uint256[] ids,uint256[] values,bytes data)",
        &[Erc1155],
    ),
    known([0xd0, 0xe3, 0x0d, 0xb0], "deposit()", &[Weth]),
    known([0x2e, 0x1a, 0x7d, 0x4d], "withdraw(uint256 wad)", &[Weth]),
    KnownFunction {
        nested: Nested::Each(0),
        ..known(
            [0xac, 0x96, 0x50, 0xd8],
            "multicall(bytes[] data)",
            &[Multicall],
        )
    },
    KnownFunction {
        nested: Nested::Each(1),
        ..known(
            [0x5a, 0xe4, 0x01, 0xdc],
            "multicall(uint256 deadline,bytes[] data)",
            &[Multicall],
        )
    },
    KnownFunction {
        nested: Nested::One(2),
        ..known(
            EXEC_TRANSACTION,
            "execTransaction(address to,uint256 value,bytes data,uint8 operation,uint256 safeTxGas,uint256 baseGas,uint256 gasPrice,address gasToken,address refundReceiver,bytes signatures)",
            &[Safe],
        )
    },
];

/// The registry entries with this selector, in review order (usually none or one).
pub fn known_functions(selector: [u8; 4]) -> impl Iterator<Item = &'static KnownFunction> {
    KNOWN_FUNCTIONS
        .iter()
        .filter(move |known| known.selector == selector)
}

/// What raw calldata is, as far as the registry can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    Known(KnownCall),
    /// The selector is known but the rest is not the canonical encoding of its arguments. Worth a
    /// warning: a contract may still accept it (Solidity ignores trailing bytes, for one).
    Malformed {
        selector: [u8; 4],
        signature: &'static str,
        error: AbiError,
    },
    /// A call nested deeper than [`MAX_INNER_CALL_DEPTH`]; not looked into.
    TooDeep {
        selector: Option<[u8; 4]>,
        len: usize,
    },
    /// Shorter than a selector, or a selector the registry does not know. The caller shows the
    /// raw bytes.
    Unknown {
        selector: Option<[u8; 4]>,
        len: usize,
    },
}

/// A call to a function in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownCall {
    /// Decoded under the first registry entry for its selector.
    pub call: Call,
    /// The standards that entry comes from.
    pub standards: &'static [Standard],
    /// The same bytes read under the other entries with this selector: same values, other names
    /// and meaning (ERC-721's `tokenId` where ERC-20 has `amount`). Empty unless the selector is
    /// ambiguous.
    pub other_readings: Vec<Reading>,
    /// The calls this one carries, decoded in turn: one per element of `multicall`'s `data`, in
    /// order, or the one in `execTransaction`'s `data` (an empty `data` is
    /// [`Decoded::Unknown`] with no selector: a plain ether transfer). Their raw bytes are the
    /// corresponding arguments in [`Self::call`].
    pub inner: Vec<Decoded>,
}

/// Another reading of an ambiguous selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub standards: &'static [Standard],
    pub call: Call,
}

/// A Safe transaction's `operation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SafeOperation {
    /// 0: an ordinary call.
    Call,
    /// 1: runs the target's code with the Safe's own storage and balance; the target can do
    /// anything the Safe can, including changing its owners.
    DelegateCall,
    /// Any other value: not an operation the Safe contracts define.
    Other(u8),
}

impl KnownCall {
    /// The `operation` of a Safe `execTransaction`; `None` for any other call.
    pub fn safe_operation(&self) -> Option<SafeOperation> {
        if self.call.selector != EXEC_TRANSACTION {
            return None;
        }
        match self.call.args.get(3).map(|arg| &arg.value) {
            Some(Value::Uint(operation)) if operation.is_zero() => Some(SafeOperation::Call),
            Some(Value::Uint(operation)) if *operation == U256::from(1u8) => {
                Some(SafeOperation::DelegateCall)
            }
            Some(Value::Uint(operation)) => u8::try_from(*operation).ok().map(SafeOperation::Other),
            _ => None,
        }
    }

    /// Whether this call or any call decoded inside it is a Safe delegatecall. Calls that were
    /// not decoded (unknown, malformed, too deep) are not looked into.
    pub fn contains_delegatecall(&self) -> bool {
        self.safe_operation() == Some(SafeOperation::DelegateCall)
            || self.inner.iter().any(|inner| match inner {
                Decoded::Known(call) => call.contains_delegatecall(),
                _ => false,
            })
    }
}

/// Reads raw calldata against the registry. Never fails and never panics: whatever is not a
/// canonical call to a known function comes back as what it is.
pub fn decode_known(calldata: &[u8]) -> Decoded {
    decode_at(calldata, 0)
}

fn decode_at(calldata: &[u8], depth: usize) -> Decoded {
    let selector = calldata.first_chunk::<4>().copied();
    let len = calldata.len();
    if depth > MAX_INNER_CALL_DEPTH {
        return Decoded::TooDeep { selector, len };
    }
    let Some(selector) = selector else {
        return Decoded::Unknown { selector, len };
    };
    let mut entries = known_functions(selector);
    let Some(first) = entries.next() else {
        return Decoded::Unknown {
            selector: Some(selector),
            len,
        };
    };
    let call = match Function::parse(first.signature).and_then(|f| f.decode(calldata)) {
        Ok(call) => call,
        Err(error) => {
            return Decoded::Malformed {
                selector,
                signature: first.signature,
                error,
            };
        }
    };
    // Same canonical signature, so the same bytes decode the same way under other names.
    let other_readings = entries
        .filter_map(|entry| {
            let call = Function::parse(entry.signature)
                .and_then(|f| f.decode(calldata))
                .ok()?;
            Some(Reading {
                standards: entry.standards,
                call,
            })
        })
        .collect();
    let argument = |index: usize| call.args.get(index).map(|arg| &arg.value);
    let inner = match first.nested {
        Nested::Each(index) => match argument(index) {
            Some(Value::Array(calls)) => calls
                .iter()
                .filter_map(|value| match value {
                    Value::Bytes(bytes) => Some(decode_at(bytes, depth + 1)),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        },
        Nested::One(index) => match argument(index) {
            Some(Value::Bytes(bytes)) => vec![decode_at(bytes, depth + 1)],
            _ => Vec::new(),
        },
        Nested::None => Vec::new(),
    };
    Decoded::Known(KnownCall {
        call,
        standards: first.standards,
        other_readings,
        inner,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Address, keccak256};
    use serde_json::json;

    const ALICE: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    const BOB: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

    fn encode(signature: &str, args: serde_json::Value) -> Vec<u8> {
        Function::parse(signature).unwrap().encode(&args).unwrap()
    }

    fn known_call(decoded: Decoded) -> KnownCall {
        match decoded {
            Decoded::Known(call) => call,
            other => panic!("not a known call: {other:?}"),
        }
    }

    #[test]
    fn every_selector_is_the_keccak_of_its_signature() {
        for entry in &KNOWN_FUNCTIONS {
            let function = Function::parse(entry.signature).unwrap();
            let hash = keccak256(function.signature().as_bytes());
            assert_eq!(entry.selector, hash[..4], "{}", entry.signature);
            assert_eq!(function.selector(), entry.selector, "{}", entry.signature);
            // Written in the normal form, so what a review prints is what is listed here.
            assert_eq!(function.named_signature(), entry.signature);
            for other in known_functions(entry.selector) {
                let other_function = Function::parse(other.signature).unwrap();
                assert_eq!(other_function.signature(), function.signature());
                if !std::ptr::eq(other, entry) {
                    // Same names would be the same reading: list the standards in one entry.
                    assert_ne!(other.signature, entry.signature);
                }
            }
            let (index, expected) = match entry.nested {
                Nested::None => continue,
                Nested::Each(index) => (index, "bytes[]"),
                Nested::One(index) => (index, "bytes"),
            };
            assert_eq!(
                function.inputs()[index].ty.to_string(),
                expected,
                "{}",
                entry.signature
            );
        }
    }

    #[test]
    fn selectors_match_published_values() {
        for (selector, canonical) in [
            ([0xa9, 0x05, 0x9c, 0xbb], "transfer(address,uint256)"),
            ([0x09, 0x5e, 0xa7, 0xb3], "approve(address,uint256)"),
            (
                [0x23, 0xb8, 0x72, 0xdd],
                "transferFrom(address,address,uint256)",
            ),
            ([0xa2, 0x2c, 0xb4, 0x65], "setApprovalForAll(address,bool)"),
            ([0xd0, 0xe3, 0x0d, 0xb0], "deposit()"),
            ([0x2e, 0x1a, 0x7d, 0x4d], "withdraw(uint256)"),
            ([0xac, 0x96, 0x50, 0xd8], "multicall(bytes[])"),
            ([0x5a, 0xe4, 0x01, 0xdc], "multicall(uint256,bytes[])"),
            (
                [0x6a, 0x76, 0x12, 0x02],
                "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)",
            ),
        ] {
            let entry = known_functions(selector).next().unwrap();
            assert_eq!(
                Function::parse(entry.signature).unwrap().signature(),
                canonical
            );
        }
    }

    #[test]
    fn an_erc20_transfer_decodes_with_its_names() {
        let calldata = encode("transfer(address,uint256)", json!([ALICE, "1000"]));
        let known = known_call(decode_known(&calldata));
        assert_eq!(known.standards, &[Erc20]);
        assert_eq!(known.call.name, "transfer");
        let names: Vec<_> = known.call.args.iter().map(|a| a.name.as_deref()).collect();
        assert_eq!(names, [Some("to"), Some("amount")]);
        assert_eq!(
            known.call.args[0].value,
            Value::Address(ALICE.parse::<Address>().unwrap())
        );
        assert_eq!(known.call.args[1].value, Value::Uint(U256::from(1000u64)));
        assert!(known.other_readings.is_empty() && known.inner.is_empty());
        assert_eq!(known.safe_operation(), None);
    }

    #[test]
    fn transfer_from_shows_both_the_erc20_and_the_erc721_reading() {
        let calldata = encode(
            "transferFrom(address,address,uint256)",
            json!([ALICE, BOB, 7]),
        );
        let known = known_call(decode_known(&calldata));
        assert_eq!(known.standards, &[Erc20]);
        assert_eq!(known.call.args[2].name.as_deref(), Some("amount"));
        assert_eq!(known.other_readings.len(), 1);
        let erc721 = &known.other_readings[0];
        assert_eq!(erc721.standards, &[Erc721]);
        assert_eq!(erc721.call.args[2].name.as_deref(), Some("tokenId"));
        assert_eq!(erc721.call.args[2].value, known.call.args[2].value);

        let approve = known_call(decode_known(&encode(
            "approve(address,uint256)",
            json!([ALICE, 7]),
        )));
        assert_eq!(
            approve.other_readings[0].call.args[0].name.as_deref(),
            Some("approved")
        );
        // Same meaning in both standards: one reading.
        let approval = known_call(decode_known(&encode(
            "setApprovalForAll(address,bool)",
            json!([ALICE, true]),
        )));
        assert_eq!(approval.standards, &[Erc721, Erc1155]);
        assert!(approval.other_readings.is_empty());
    }

    #[test]
    fn multicall_decodes_its_inner_calls_and_shows_unknown_ones_raw() {
        let transfer = encode("transfer(address,uint256)", json!([ALICE, 1000]));
        let calldata = encode(
            "multicall(uint256,bytes[])",
            json!([
                1_700_000_000u64,
                [format!("0x{}", hex::encode(&transfer)), "0xdeadbeef", "0x"]
            ]),
        );
        let known = known_call(decode_known(&calldata));
        assert_eq!(known.standards, &[Multicall]);
        assert_eq!(known.inner.len(), 3);
        assert_eq!(known_call(known.inner[0].clone()).call.name, "transfer");
        assert_eq!(
            known.inner[1],
            Decoded::Unknown {
                selector: Some([0xde, 0xad, 0xbe, 0xef]),
                len: 4
            }
        );
        assert_eq!(
            known.inner[2],
            Decoded::Unknown {
                selector: None,
                len: 0
            }
        );
    }

    #[test]
    fn nested_multicalls_stop_at_the_depth_limit() {
        let mut calldata = encode("withdraw(uint256)", json!([1]));
        for _ in 0..MAX_INNER_CALL_DEPTH + 1 {
            calldata = encode(
                "multicall(bytes[])",
                json!([[format!("0x{}", hex::encode(&calldata))]]),
            );
        }
        let mut decoded = decode_known(&calldata);
        for _ in 0..MAX_INNER_CALL_DEPTH + 1 {
            let known = known_call(decoded);
            assert_eq!(known.call.name, "multicall");
            decoded = known.inner[0].clone();
        }
        assert_eq!(
            decoded,
            Decoded::TooDeep {
                selector: Some([0x2e, 0x1a, 0x7d, 0x4d]),
                len: 36
            }
        );
    }

    fn exec_transaction(operation: u64, data: &str) -> Vec<u8> {
        let zero = "0x0000000000000000000000000000000000000000";
        encode(
            "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)",
            json!([ALICE, 0, data, operation, 0, 0, 0, zero, zero, "0x"]),
        )
    }

    #[test]
    fn a_safe_delegatecall_is_flagged_even_inside_a_multicall() {
        let transfer = encode("transfer(address,uint256)", json!([BOB, 5]));
        let transfer = format!("0x{}", hex::encode(transfer));
        let call = known_call(decode_known(&exec_transaction(0, &transfer)));
        assert_eq!(call.safe_operation(), Some(SafeOperation::Call));
        assert!(!call.contains_delegatecall());
        assert_eq!(known_call(call.inner[0].clone()).call.name, "transfer");

        let delegate = exec_transaction(1, "0x");
        let call = known_call(decode_known(&delegate));
        assert_eq!(call.safe_operation(), Some(SafeOperation::DelegateCall));
        assert!(call.contains_delegatecall());
        assert_eq!(
            call.inner,
            [Decoded::Unknown {
                selector: None,
                len: 0
            }]
        );

        let wrapped = encode(
            "multicall(bytes[])",
            json!([[transfer, format!("0x{}", hex::encode(&delegate))]]),
        );
        let call = known_call(decode_known(&wrapped));
        assert_eq!(call.safe_operation(), None);
        assert!(call.contains_delegatecall());

        let other = known_call(decode_known(&exec_transaction(2, "0x")));
        assert_eq!(other.safe_operation(), Some(SafeOperation::Other(2)));
    }

    #[test]
    fn known_selectors_with_bad_arguments_are_malformed_not_unknown() {
        let mut calldata = encode("transfer(address,uint256)", json!([ALICE, 1]));
        calldata.push(0);
        assert_eq!(
            decode_known(&calldata),
            Decoded::Malformed {
                selector: [0xa9, 0x05, 0x9c, 0xbb],
                signature: "transfer(address to,uint256 amount)",
                error: AbiError::TrailingBytes { len: 1 },
            }
        );
        assert_eq!(
            decode_known(&[]),
            Decoded::Unknown {
                selector: None,
                len: 0
            }
        );
        assert_eq!(
            decode_known(&[0xa9, 0x05, 0x9c]),
            Decoded::Unknown {
                selector: None,
                len: 3
            }
        );
        assert!(matches!(
            decode_known(&[0xa9, 0x05, 0x9c, 0xbb]),
            Decoded::Malformed { .. }
        ));
        assert!(matches!(
            decode_known(&[0xd0, 0xe3, 0x0d, 0xb0]),
            Decoded::Known(_)
        ));
    }
}
