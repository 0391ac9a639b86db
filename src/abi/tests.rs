//! Encodings checked against an independent implementation, and properties over random types.

use alloy::primitives::{Address, I256, U256};
use proptest::prelude::*;
use serde_json::json;

use super::*;

const ALICE: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const BOB: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

/// Calldata produced by `cast calldata SIGNATURE ARGS...` (foundry's cast 1.7.1, run from an
/// empty directory), with the arguments as keyward's JSON takes them, normalized the way decoding
/// gives them back.
fn cast_vectors() -> Vec<(&'static str, serde_json::Value, &'static str)> {
    vec![
        (
            // cast calldata 'transfer(address,uint256)' $ALICE 1000
            "transfer(address,uint256)",
            json!([ALICE, "1000"]),
            "a9059cbb00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c800000000000000000000000000000000000000000000000000000000000003e8",
        ),
        (
            // cast calldata 'f(int8,string,bytes,uint256[],(address,uint256)[],bytes3,bool)' -- -128
            //   'héllo' 0x0102030405 '[1,2,3]' "[($ALICE,1),($BOB,2)]" 0xabcdef true
            "f(int8,string,bytes,uint256[],(address,uint256)[],bytes3,bool)",
            json!([
                "-128",
                "héllo",
                "0x0102030405",
                ["1", "2", "3"],
                [[ALICE, "1"], [BOB, "2"]],
                "0xabcdef",
                true
            ]),
            "90f14d2dffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff8000000000000000000000000000000000000000000000000000000000000000e00000000000000000000000000000000000000000000000000000000000000120000000000000000000000000000000000000000000000000000000000000016000000000000000000000000000000000000000000000000000000000000001e0abcdef00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001000000000000000000000000000000000000000000000000000000000000000668c3a96c6c6f0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000501020304050000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000003000000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000020000000000000000000000000000000000000000000000000000000000000003000000000000000000000000000000000000000000000000000000000000000200000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c80000000000000000000000000000000000000000000000000000000000000001000000000000000000000000f39fd6e51aad88f6f4ce6ab8827279cfffb922660000000000000000000000000000000000000000000000000000000000000002",
        ),
        (
            // cast calldata 'g(int256,int16,uint8[2],bytes32)' -- -1 300 '[7,255]' 0x00...ff
            "g(int256,int16,uint8[2],bytes32)",
            json!([
                "-1",
                "300",
                ["7", "255"],
                "0x00000000000000000000000000000000000000000000000000000000000000ff"
            ]),
            "8a965278ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff000000000000000000000000000000000000000000000000000000000000012c000000000000000000000000000000000000000000000000000000000000000700000000000000000000000000000000000000000000000000000000000000ff00000000000000000000000000000000000000000000000000000000000000ff",
        ),
        (
            // cast calldata 'multicall(uint256,bytes[])' 1700000000 "[$TRANSFER,0xdeadbeef]"
            // with TRANSFER the first vector's calldata
            "multicall(uint256,bytes[])",
            json!([
                "1700000000",
                [
                    "0xa9059cbb00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c800000000000000000000000000000000000000000000000000000000000003e8",
                    "0xdeadbeef"
                ]
            ]),
            "5ae401dc000000000000000000000000000000000000000000000000000000006553f10000000000000000000000000000000000000000000000000000000000000000400000000000000000000000000000000000000000000000000000000000000002000000000000000000000000000000000000000000000000000000000000004000000000000000000000000000000000000000000000000000000000000000c00000000000000000000000000000000000000000000000000000000000000044a9059cbb00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c800000000000000000000000000000000000000000000000000000000000003e8000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000004deadbeef00000000000000000000000000000000000000000000000000000000",
        ),
        (
            // cast calldata 'h(string[],(bytes,uint256[])[2])' '["a",""]' '[(0x,[]),(0xff,[5])]'
            "h(string[],(bytes,uint256[])[2])",
            json!([["a", ""], [["0x", []], ["0xff", ["5"]]]]),
            "f162d9be00000000000000000000000000000000000000000000000000000000000000400000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000000200000000000000000000000000000000000000000000000000000000000000400000000000000000000000000000000000000000000000000000000000000080000000000000000000000000000000000000000000000000000000000000000161000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000004000000000000000000000000000000000000000000000000000000000000000c00000000000000000000000000000000000000000000000000000000000000040000000000000000000000000000000000000000000000000000000000000006000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000004000000000000000000000000000000000000000000000000000000000000000800000000000000000000000000000000000000000000000000000000000000001ff0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000005",
        ),
        (
            // cast calldata 'execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)'
            //   $ALICE 0 0x12345678 1 0 0 0 0x00..00 0x00..00 0x
            "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)",
            json!([
                ALICE,
                "0",
                "0x12345678",
                "1",
                "0",
                "0",
                "0",
                "0x0000000000000000000000000000000000000000",
                "0x0000000000000000000000000000000000000000",
                "0x"
            ]),
            "6a76120200000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001400000000000000000000000000000000000000000000000000000000000000001000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000180000000000000000000000000000000000000000000000000000000000000000412345678000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        ),
    ]
}

#[test]
fn encodings_match_cast_byte_for_byte_and_decode_back() {
    for (signature, args, expected) in cast_vectors() {
        let function = Function::parse(signature).unwrap();
        let calldata = function.encode(&args).unwrap();
        assert_eq!(hex::encode(&calldata), expected, "{signature}");
        let call = function.decode(&calldata).unwrap();
        assert_eq!(call.arguments_json(), args, "{signature}");
    }
}

#[test]
fn the_safe_vector_is_a_delegatecall_to_an_unknown_selector() {
    let (_, _, hex_calldata) = cast_vectors().pop().unwrap();
    let Decoded::Known(call) = decode_known(&hex::decode(hex_calldata).unwrap()) else {
        panic!("execTransaction not recognised");
    };
    assert_eq!(call.safe_operation(), Some(SafeOperation::DelegateCall));
    assert!(call.contains_delegatecall());
    assert_eq!(
        call.inner,
        [Decoded::Unknown {
            selector: Some([0x12, 0x34, 0x56, 0x78]),
            len: 4
        }]
    );
}

#[test]
fn transfer_matches_the_hand_written_erc20_encoder() {
    let to: Address = ALICE.parse().unwrap();
    let amount = U256::from(10u64).pow(U256::from(24u64));
    let encoded = Function::parse("transfer(address,uint256)")
        .unwrap()
        .encode(&json!([ALICE, amount.to_string()]))
        .unwrap();
    assert_eq!(encoded, crate::chain::erc20::transfer(to, amount));
}

// --- Properties --------------------------------------------------------------------------------

fn leaf_type() -> impl Strategy<Value = Type> {
    prop_oneof![
        Just(Type::Address),
        Just(Type::Bool),
        (1usize..=32).prop_map(|bytes| Type::Uint(bytes * 8)),
        (1usize..=32).prop_map(|bytes| Type::Int(bytes * 8)),
        (1usize..=32).prop_map(Type::FixedBytes),
        Just(Type::Bytes),
        Just(Type::String),
    ]
}

fn any_type() -> impl Strategy<Value = Type> {
    leaf_type().prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|ty| Type::Array(Box::new(ty))),
            (inner.clone(), 1usize..=3).prop_map(|(ty, len)| Type::FixedArray(Box::new(ty), len)),
            prop::collection::vec(inner, 1..=3).prop_map(|types| {
                Type::Tuple(
                    types
                        .into_iter()
                        .map(|ty| Param { name: None, ty })
                        .collect(),
                )
            }),
        ]
    })
}

fn hex_json(bytes: Vec<u8>) -> serde_json::Value {
    json!(format!("0x{}", hex::encode(bytes)))
}

/// A random value of `ty`, in the normalized JSON form decoding gives back.
fn value_of(ty: &Type) -> BoxedStrategy<serde_json::Value> {
    match ty {
        Type::Address => any::<[u8; 20]>()
            .prop_map(|bytes| json!(Address::from(bytes).to_checksum(None)))
            .boxed(),
        Type::Bool => any::<bool>().prop_map(|value| json!(value)).boxed(),
        Type::Uint(bits) => {
            let bits = *bits;
            any::<[u8; 32]>()
                .prop_map(move |word| {
                    let value = U256::from_be_bytes(word);
                    let value = if bits == 256 {
                        value
                    } else {
                        value % (U256::from(1u8) << bits)
                    };
                    json!(value.to_string())
                })
                .boxed()
        }
        Type::Int(bits) => {
            let len = bits / 8;
            prop::collection::vec(any::<u8>(), len)
                .prop_map(move |low| {
                    let fill = if low[0] & 0x80 == 0 { 0 } else { 0xff };
                    let mut word = [fill; 32];
                    word[32 - len..].copy_from_slice(&low);
                    json!(I256::from_be_bytes(word).to_string())
                })
                .boxed()
        }
        Type::FixedBytes(len) => prop::collection::vec(any::<u8>(), *len)
            .prop_map(hex_json)
            .boxed(),
        Type::Bytes => prop::collection::vec(any::<u8>(), 0..70)
            .prop_map(hex_json)
            .boxed(),
        Type::String => any::<String>().prop_map(|text| json!(text)).boxed(),
        Type::Array(inner) => prop::collection::vec(value_of(inner), 0..3)
            .prop_map(serde_json::Value::Array)
            .boxed(),
        Type::FixedArray(inner, len) => prop::collection::vec(value_of(inner), *len)
            .prop_map(serde_json::Value::Array)
            .boxed(),
        Type::Tuple(components) => components
            .iter()
            .map(|c| value_of(&c.ty))
            .collect::<Vec<_>>()
            .prop_map(serde_json::Value::Array)
            .boxed(),
    }
}

/// A function of random parameter types, and random arguments for it.
fn any_call() -> impl Strategy<Value = (Function, serde_json::Value)> {
    prop::collection::vec(any_type(), 0..4).prop_flat_map(|types| {
        let list: Vec<String> = types.iter().map(ToString::to_string).collect();
        let function = Function::parse(&format!("f({})", list.join(","))).unwrap();
        let values: Vec<_> = types.iter().map(value_of).collect();
        (Just(function), values.prop_map(serde_json::Value::Array))
    })
}

/// Decoding either succeeds or fails on one of its own checks: the last-resort re-encoding
/// comparison never has to catch anything.
fn assert_strict(function: &Function, calldata: &[u8]) -> std::result::Result<(), TestCaseError> {
    if let Err(error) = function.decode(calldata) {
        prop_assert_ne!(error, AbiError::NotCanonical);
    }
    Ok(())
}

proptest! {
    #[test]
    fn random_calls_round_trip((function, args) in any_call()) {
        let calldata = function.encode(&args).unwrap();
        let call = function.decode(&calldata).unwrap();
        prop_assert_eq!(call.arguments_json(), args);
        prop_assert_eq!(call.signature, function.signature());
    }

    #[test]
    fn mutated_calldata_decodes_only_if_canonical(
        (function, args) in any_call(),
        index in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let calldata = function.encode(&args).unwrap();
        let mut mutated = calldata.clone();
        let at = index.index(mutated.len());
        mutated[at] = byte;
        assert_strict(&function, &mutated)?;
        assert_strict(&function, &calldata[..cut.index(calldata.len())])?;
        let mut longer = calldata;
        longer.push(byte);
        prop_assert!(function.decode(&longer).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        (function, _) in any_call(),
        body in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut calldata = function.selector().to_vec();
        calldata.extend_from_slice(&body);
        assert_strict(&function, &calldata)?;
        let _ = decode_known(&body);
    }

    #[test]
    fn arbitrary_bytes_after_known_selectors_never_panic(
        entry in prop::sample::select(vec![
            [0xa9, 0x05, 0x9c, 0xbb],
            [0x23, 0xb8, 0x72, 0xdd],
            [0x2e, 0xb2, 0xc2, 0xd6],
            [0xac, 0x96, 0x50, 0xd8],
            [0x5a, 0xe4, 0x01, 0xdc],
            [0x6a, 0x76, 0x12, 0x02],
        ]),
        words in prop::collection::vec(
            prop_oneof![
                any::<[u8; 32]>(),
                (0u64..400).prop_map(|n| U256::from(n).to_be_bytes::<32>()),
            ],
            0..24,
        ),
    ) {
        // Small words make plausible offsets and lengths, so decoding gets past the first checks.
        let mut calldata = entry.to_vec();
        calldata.extend(words.iter().flatten());
        if let Decoded::Malformed { error, .. } = decode_known(&calldata) {
            prop_assert_ne!(error, AbiError::NotCanonical);
        }
    }

    #[test]
    fn any_transfer_round_trips_and_matches_the_erc20_encoder(
        to in any::<[u8; 20]>(),
        amount in any::<[u8; 32]>(),
    ) {
        let to = Address::from(to);
        let amount = U256::from_be_bytes(amount);
        let calldata = crate::chain::erc20::transfer(to, amount);
        let Decoded::Known(call) = decode_known(&calldata) else {
            return Err(TestCaseError::fail("transfer not recognised"));
        };
        prop_assert_eq!(&call.call.args[0].value, &Value::Address(to));
        prop_assert_eq!(&call.call.args[1].value, &Value::Uint(amount));
        let again = Function::parse("transfer(address,uint256)")
            .unwrap()
            .encode(&call.call.arguments_json())
            .unwrap();
        prop_assert_eq!(again, calldata);
    }
}

/// However long the signature, types and names the model sent, a refusal repeats only their start
/// (or, for a path, its end). The fuzzer found a 600-character signature repeated whole in the
/// wrong-selector error (`fuzz/regressions/calldata/long-signature-repeated-in-the-error`); a
/// signature may be 4096 bytes.
#[test]
fn refusals_repeat_only_a_bounded_part_of_the_signature() {
    let params = vec!["(address,uint256,string,bytes)[]"; 100].join(",");
    let function = Function::parse(&format!("f({params})")).unwrap();
    let named = Function::parse(&format!(
        "g((uint8 {a},uint8 {b}) {c})",
        a = "a".repeat(64),
        b = "b".repeat(64),
        c = "c".repeat(64)
    ))
    .unwrap();
    let messages = [
        function.decode(&[0xde, 0xad, 0xbe, 0xef]).unwrap_err(),
        function.encode(&json!([])).unwrap_err(),
        named.encode(&json!([["1", "x".repeat(5000)]])).unwrap_err(),
        Function::parse(&format!("f({})", "x".repeat(3000))).unwrap_err(),
    ]
    .map(|err| err.to_string());
    for message in &messages {
        assert!(
            message.chars().count() <= 300,
            "{} characters: {message}",
            message.chars().count()
        );
    }
    assert!(
        messages[0].contains("not 0x") && messages[0].contains('…'),
        "{}",
        messages[0]
    );
    assert!(
        messages[1].contains("takes 100 arguments, got 0"),
        "{}",
        messages[1]
    );
    assert!(
        messages[2].ends_with("expected decimal digits or 0x followed by hex digits"),
        "{}",
        messages[2]
    );
}
