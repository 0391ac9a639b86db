//! EIP-712 against the spec's own example, geth's parser corpus (with geth's digests), and
//! eth-account's cross-implementation messages (with digests computed by eth-account), then the
//! strictness rules one by one, the limits, and properties.
//!
//! The vector files live in `../shared/vectors` (see its README for sources and licences); tests
//! that need them print `skipped: ...` and pass when the folder is absent. The Mail example is
//! also embedded here so the core hashes are always checked.

use std::fs;
use std::path::{Path as FsPath, PathBuf};

use alloy::primitives::{Address, B256, I256, U256, address, b256, keccak256};
use serde_json::Value;

use super::json::{self, Json};
use super::types::Types;
use super::*;

// --- helpers -----------------------------------------------------------------------------------

fn shared_vectors() -> Option<PathBuf> {
    let dir = FsPath::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/vectors"));
    if dir.is_dir() {
        Some(dir.to_path_buf())
    } else {
        println!("skipped: {} is absent", dir.display());
        None
    }
}

fn read(dir: &FsPath, name: &str) -> String {
    fs::read_to_string(dir.join(name)).unwrap()
}

/// The error message `json` is refused with; fails the test if it parses.
fn refusal(json: &str) -> String {
    match parse(json) {
        Ok(typed) => panic!("accepted, signing hash {}: {json}", typed.signing_hash()),
        Err(err) => {
            let message = err.to_string();
            assert!(!message.ends_with('.'), "{message}");
            assert!(
                message.starts_with(|c: char| !c.is_uppercase()),
                "{message}"
            );
            message
        }
    }
}

fn assert_refused(json: &str, expected: &str) {
    let message = refusal(json);
    assert!(
        message.contains(expected),
        "expected a message containing {expected:?}, got {message:?}"
    );
}

/// Typed data whose message is one struct `Test` with the given field list (JSON array items),
/// under a two-field domain.
fn with_struct(fields: &str, message: &str) -> String {
    format!(
        r#"{{"types":{{"EIP712Domain":[{{"name":"name","type":"string"}},{{"name":"chainId","type":"uint256"}}],
            "Test":[{fields}]}},
          "primaryType":"Test","domain":{{"name":"T","chainId":1}},"message":{message}}}"#
    )
}

/// Typed data whose message is `Test { v: <ty> }` with `v` = `value` (raw JSON).
fn single(ty: &str, value: &str) -> String {
    with_struct(
        &format!(r#"{{"name":"v","type":"{ty}"}}"#),
        &format!(r#"{{"v":{value}}}"#),
    )
}

/// The decoded `v` of [`single`].
fn single_value(ty: &str, value: &str) -> Node {
    let typed = parse(&single(ty, value)).unwrap();
    let Some(Node::Struct { members, .. }) = typed.message() else {
        panic!("no struct message")
    };
    members[0].value.clone()
}

/// The EIP-712 example (EIPS/assets/eip-712/Example.js, CC0), byte for byte what Example.js signs.
const MAIL: &str = r#"{
  "types": {
    "EIP712Domain": [
      {"name": "name", "type": "string"},
      {"name": "version", "type": "string"},
      {"name": "chainId", "type": "uint256"},
      {"name": "verifyingContract", "type": "address"}
    ],
    "Person": [
      {"name": "name", "type": "string"},
      {"name": "wallet", "type": "address"}
    ],
    "Mail": [
      {"name": "from", "type": "Person"},
      {"name": "to", "type": "Person"},
      {"name": "contents", "type": "string"}
    ]
  },
  "primaryType": "Mail",
  "domain": {
    "name": "Ether Mail",
    "version": "1",
    "chainId": 1,
    "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
  },
  "message": {
    "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
    "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
    "contents": "Hello, Bob!"
  }
}"#;

/// The hashes Example.js prints for [`MAIL`].
const MAIL_DOMAIN_SEPARATOR: B256 =
    b256!("f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f");
const MAIL_MESSAGE_HASH: B256 =
    b256!("c52c0ee5d84264471806290a3f2c4cecfc5490626bf912d01f240d7a274b371e");
const MAIL_SIGNING_HASH: B256 =
    b256!("be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2");

fn hex_b256(value: &Value) -> B256 {
    value.as_str().unwrap().parse().unwrap()
}

// --- the EIP example -----------------------------------------------------------------------------

#[test]
fn the_eip_mail_example_hashes_as_the_eip_says() {
    let typed = parse(MAIL).unwrap();
    assert_eq!(typed.primary_type(), "Mail");
    assert_eq!(typed.domain_separator(), MAIL_DOMAIN_SEPARATOR);
    assert_eq!(typed.message_hash(), Some(MAIL_MESSAGE_HASH));
    assert_eq!(typed.signing_hash(), MAIL_SIGNING_HASH);
    assert_eq!(
        typed.domain(),
        &Domain {
            name: Some("Ether Mail".into()),
            version: Some("1".into()),
            chain_id: Some(U256::from(1)),
            verifying_contract: Some(address!("CcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC")),
            salt: None,
        }
    );
}

#[test]
fn the_mail_message_decodes_into_a_typed_tree() {
    let typed = parse(MAIL).unwrap();
    let person = |name: &str, wallet: Address| Node::Struct {
        type_name: "Person".into(),
        members: vec![
            Member {
                name: "name".into(),
                type_name: "string".into(),
                value: Node::String(name.into()),
            },
            Member {
                name: "wallet".into(),
                type_name: "address".into(),
                value: Node::Address(wallet),
            },
        ],
    };
    let expected = Node::Struct {
        type_name: "Mail".into(),
        members: vec![
            Member {
                name: "from".into(),
                type_name: "Person".into(),
                value: person("Cow", address!("CD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826")),
            },
            Member {
                name: "to".into(),
                type_name: "Person".into(),
                value: person("Bob", address!("bBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB")),
            },
            Member {
                name: "contents".into(),
                type_name: "string".into(),
                value: Node::String("Hello, Bob!".into()),
            },
        ],
    };
    assert_eq!(typed.message(), Some(&expected));
}

#[test]
fn ethereum_signing_vectors_eip712_mail() {
    let Some(dir) = shared_vectors() else { return };
    let file: Value = serde_json::from_str(&read(&dir, "ethereum-signing-vectors.json")).unwrap();
    let vector = &file["eip712_mail"];
    let typed = parse(&vector["typed_data"].to_string()).unwrap();
    assert_eq!(
        typed.domain_separator(),
        hex_b256(&vector["domainSeparator"])
    );
    assert_eq!(
        typed.message_hash(),
        Some(hex_b256(&vector["hashStruct_message"]))
    );
    assert_eq!(typed.signing_hash(), hex_b256(&vector["signHash"]));

    let types =
        Types::parse(&json::parse(&vector["typed_data"]["types"].to_string()).unwrap()).unwrap();
    let encoded = types.encode_type("Mail").unwrap();
    assert_eq!(encoded, vector["encodeType_Mail"].as_str().unwrap());
    assert_eq!(keccak256(&encoded), hex_b256(&vector["typeHash_Mail"]));
}

// --- geth's corpus ---------------------------------------------------------------------------------

const GETH: &str = "geth-eip712-testdata";

/// Every `expfail_*` file and what its refusal must say.
const GETH_EXPECTED_FAILURES: [(&str, &str); 10] = [
    (
        "expfail_arraytype_overload.json",
        "types: \"Person[]\" is not a valid struct name",
    ),
    (
        "expfail_datamismatch_1.json",
        "message.contents: expected an object (struct Person), got a string",
    ),
    (
        "expfail_extradata.json",
        "message: unexpected key \"blahonga\"",
    ),
    (
        "expfail_malformeddomainkeys.json",
        "domain: unexpected key \"vFAILFAILerifyingContract\"",
    ),
    (
        "expfail_nonexistant_type.json",
        "types.Mail.contents: unknown type \"Blahonga\"",
    ),
    (
        "expfail_nonexistant_type2.json",
        "types.EIP712Domain.chainId: \"uint256 ... and now for something completely different\" \
         is not a valid type",
    ),
    (
        "expfail_toolargeuint.json",
        "message.test: \"257\" does not fit in uint8 (0 to 255)",
    ),
    (
        "expfail_toolargeuint2.json",
        "message.test: 257 does not fit in uint8 (0 to 255)",
    ),
    (
        "expfail_unconvertiblefloat.json",
        "message.test: \"255.3\" is not an integer",
    ),
    (
        "expfail_unconvertiblefloat2.json",
        "message.test: 255.3 is not an integer: a JSON number with a fraction",
    ),
];

/// geth does not check EIP-55 checksums, and its files carry two mistyped mixed-case addresses
/// (the EIP's are 0xCcCC… and 0xCD2a…), which keyward refuses before anything else.
fn fix_geth_checksums(json: &str) -> String {
    json.replace(
        "0xCCCcccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
        "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
    )
    .replace(
        "0xcD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826",
        "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826",
    )
}

#[test]
fn geth_expfail_files_are_all_refused_with_the_reason() {
    let Some(dir) = shared_vectors() else { return };
    let mut on_disk: Vec<String> = fs::read_dir(dir.join(GETH))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("expfail_"))
        .collect();
    on_disk.sort();
    let listed: Vec<&str> = GETH_EXPECTED_FAILURES
        .iter()
        .map(|(name, _)| *name)
        .collect();
    assert_eq!(
        on_disk, listed,
        "every expfail file has an expected message"
    );
    for (name, expected) in GETH_EXPECTED_FAILURES {
        let as_is = read(&dir.join(GETH), name);
        let first = refusal(&as_is);
        // With the checksums fixed, each file is refused for the problem it was written for.
        let message = refusal(&fix_geth_checksums(&as_is));
        println!("{name}: {message}");
        if first != message {
            println!("  (as is: {first})");
        }
        assert!(message.contains(expected), "{name}: {message}");
    }
}

/// geth's passing files that keyward refuses on purpose, the refusal, and the fix that makes
/// them pass; the fixed versions' hashes are eth-account 0.14.0's (see the table below).
#[test]
fn geth_files_keyward_refuses_are_refused_only_for_the_documented_reasons() {
    let Some(dir) = shared_vectors() else { return };
    let eip712 = read(&dir.join(GETH), "eip712.json");
    // The mistyped checksums (see fix_geth_checksums), then a 5.0, one by one.
    assert_refused(
        &eip712,
        "domain.verifyingContract: \"0xCCCcccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC\" is not an \
         address: its mixed case fails the EIP-55 checksum",
    );
    let eip712 = eip712.replace(
        "0xCCCcccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
        "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
    );
    assert_refused(
        &eip712,
        "message.from.test2: 5.0 is not an integer: a JSON number with a fraction",
    );
    let eip712 = eip712.replace("5.0", "5");
    assert_refused(
        &eip712,
        "message.from.wallet: \"0xcD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826\" is not an address",
    );
    let eip712 = eip712.replace(
        "0xcD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826",
        "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826",
    );
    check_hashes("eip712.json (fixed)", &parse(&eip712).unwrap());

    let arrays = read(&dir.join(GETH), "arrays-1.json");
    assert_refused(
        &arrays,
        "types.Foo.inties: \"uint[]\" is not a valid type: bare uint is refused: write uint256",
    );
    let arrays = arrays.replace("\"uint[]\"", "\"uint256[]\"");
    assert_refused(&arrays, "message.inties[2]: 4.0 is not an integer");
    let arrays = arrays.replace("4.0", "4");
    check_hashes("arrays-1.json (fixed)", &parse(&arrays).unwrap());

    let custom = read(&dir.join(GETH), "custom_arraytype.json");
    check_hashes("custom_arraytype.json", &parse(&custom).unwrap());
}

/// geth's `apitypes` corpus: 123 random typed data with the digest and the message's
/// `encodeData` that geth computed.
#[test]
fn geth_apitypes_corpus_matches_geths_digests() {
    let Some(dir) = shared_vectors() else { return };
    let cases: Vec<Value> =
        serde_json::from_str(&read(&dir.join(GETH), "apitypes-typed-data.json")).unwrap();
    assert_eq!(cases.len(), 123);
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        // The corpus names the message `data`; the rest is eth_signTypedData_v4 as is.
        let request = serde_json::json!({
            "types": case["types"],
            "primaryType": case["primaryType"],
            "domain": case["domain"],
            "message": case["data"],
        });
        let typed = parse(&request.to_string()).unwrap_or_else(|err| panic!("{name}: {err}"));
        let encoded =
            hex::decode(case["encoded"].as_str().unwrap().trim_start_matches("0x")).unwrap();
        assert_eq!(typed.message_hash(), Some(keccak256(&encoded)), "{name}");
        assert_eq!(typed.signing_hash(), hex_b256(&case["digest"]), "{name}");
    }
}

// --- eth-account's corpus --------------------------------------------------------------------------

/// Domain separator, message hash and signing hash of each message, computed with Python
/// eth-account 0.14.0 (`encode_typed_data(full_message=...)`: header, body, and
/// `_hash_eip191_message`). eth-account is an independent implementation; these are its outputs.
const ETH_ACCOUNT_HASHES: [(&str, B256, Option<B256>, B256); 13] = [
    (
        "valid_space_in_custom_type_fieldname",
        b256!("f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f"),
        Some(b256!(
            "0389cab9b0027ce2997240b3ddfb5364bf817d3acda3b3ea6e2ee1f1c1f4a6ae"
        )),
        b256!("71a6b0afa1e5dcddf680d85068e2674a73d60e07a9d047c8f210871804dbba80"),
    ),
    (
        "valid_multi_no_fixed_len_array",
        b256!("f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f"),
        Some(b256!(
            "00d8ff30473776ca1563e27995d0f0d1a0eb61993a8a1eefa0b07c87ecf792b1"
        )),
        b256!("9d4ed1abf83bd225db7e2023022a780ab06ef130800e9cc8f4550f73e027a5ca"),
    ),
    (
        "valid_eip712_example",
        b256!("f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f"),
        Some(b256!(
            "c52c0ee5d84264471806290a3f2c4cecfc5490626bf912d01f240d7a274b371e"
        )),
        b256!("be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"),
    ),
    (
        "valid_issue_201_with_array",
        b256!("1b23aee8f7c1b0e2d17b66b0d2a1a96d31deb41315b9a846e9803adae63431f4"),
        Some(b256!(
            "4188e8bc5e8894921e86581e523a5cbef2124431700a7bd32a644fa409a8b988"
        )),
        b256!("3251bee8474b58a5df1adab9be78e2b18462d7a5ddf423389dcf98042188bef3"),
    ),
    (
        "valid_eip712_example_with_array",
        b256!("f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f"),
        Some(b256!(
            "04e58c373e4cd0695f0c2d6e2d8e379d6b51b987cf27d582dd94a03532d430d3"
        )),
        b256!("1780e7e042fa9ec126ccb68cd707d61580d00601b3eff8a5ec05116b46007fdb"),
    ),
    (
        "valid_eip712_example_addresses_not_checksummed",
        b256!("f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f"),
        Some(b256!(
            "c52c0ee5d84264471806290a3f2c4cecfc5490626bf912d01f240d7a274b371e"
        )),
        b256!("be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"),
    ),
    (
        "valid_issue_201_no_array",
        b256!("1b23aee8f7c1b0e2d17b66b0d2a1a96d31deb41315b9a846e9803adae63431f4"),
        Some(b256!(
            "34b4f7ced8edacb449acc3061a8a1b44dc996724e416734bf32c26fdb9854690"
        )),
        b256!("09eb75cfd1cd5661523c7a3e681f07d57b108a6aff997658939c4dff0006e74a"),
    ),
    (
        "valid_multi_array",
        b256!("f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f"),
        Some(b256!(
            "6c5faac29b3f4552147e5cfef75b4ac09fdc7668ba1208c5f153f047a0da4819"
        )),
        b256!("da275374c3a0790d389b6490d6fdf499f39c72105423f09d7b9be62d2fc08671"),
    ),
    // Refused here on purpose (a struct named ""): see the test below.
    (
        "valid_primary_type_is_empty_string",
        b256!("f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f"),
        Some(b256!(
            "1ab8d109d68848cac9e086d313ab6a94140f371e0daa2be8c6522dff307ac8c8"
        )),
        b256!("da5079987d5ea68beca14009948a4034b066bc86426dc802f4a5762f435b91ff"),
    ),
    // From eip712_messages_valid_py_and_metamask.json: the one keyward also accepts.
    (
        "valid_nested_structs_ethers_does_not_accept_recursive_custom_type_arrays",
        b256!("43d84749eadeb30455374368052bc19f9c40253abdcb431cd76957b20dbd98f5"),
        Some(b256!(
            "dcaeacbd20ef8d65e701a18eb2a79f7a1d620c4f8165fbf3aa059ef80d753aeb"
        )),
        b256!("0c9b68928afbff5af30e99ae29fcdf1cc36974f7ba4a6e4336cc98daa4f0c2af"),
    ),
    // geth's files, as they are or with the fixes the geth test above applies.
    (
        "custom_arraytype.json",
        b256!("f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f"),
        Some(b256!(
            "0ba3f2b34bd3d9564de18044e9676f82eb43f715ac1fc6ea7dc7f746fa56907f"
        )),
        b256!("528c9e0892b9ae24cf1dd215db6a9ea1910b0b2472cd2c95101214601a5add53"),
    ),
    (
        "eip712.json (fixed)",
        b256!("f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f"),
        Some(b256!(
            "c7500f2b8c5488aace35d74b5b9ef6ac512ecd8327d443d5c8ee47d3ae873e22"
        )),
        b256!("78e95bf9921b27376adfb9554684113fe27fbfd8dfc84805eb014b0073c6d5f4"),
    ),
    (
        "arrays-1.json (fixed)",
        b256!("799305d94cf8b71a34fda2d0d6dcea131aecaded77babd7a5e9077f60f378aaf"),
        Some(b256!(
            "e891f127b0a81d05974de40c7b97ff604bafa073d1d4b6eaa60c8149760dc8dc"
        )),
        b256!("559b45e0d51777aceb93bab6543d77db654e1858d01db25af50df737a08e8011"),
    ),
];

fn check_hashes(name: &str, typed: &TypedData) {
    let Some((_, separator, message, signing)) = ETH_ACCOUNT_HASHES
        .iter()
        .find(|(listed, ..)| *listed == name)
    else {
        panic!("{name} has no expected hashes")
    };
    assert_eq!(typed.domain_separator(), *separator, "{name}");
    assert_eq!(typed.message_hash(), *message, "{name}");
    assert_eq!(typed.signing_hash(), *signing, "{name}");
}

/// Each named message of an eth-account file, as JSON text with its keys in the file's order
/// (serde_json's map would sort them, and which bad key is named first depends on the order).
fn eth_account_file(dir: &FsPath, name: &str) -> Vec<(String, String)> {
    let text = read(&dir.join("eth-account"), name);
    let Json::Object(entries) = json::parse(&text).unwrap() else {
        panic!("{name} is not an object")
    };
    entries
        .iter()
        .map(|(name, message)| {
            let mut out = String::new();
            write_json(message, &mut out);
            (name.to_string(), out)
        })
        .collect()
}

fn write_json(json: &Json<'_>, out: &mut String) {
    match json {
        Json::Null => out.push_str("null"),
        Json::Bool(value) => out.push_str(if *value { "true" } else { "false" }),
        Json::Number(literal) => out.push_str(literal),
        Json::String(text) => out.push_str(&serde_json::to_string(text.as_ref()).unwrap()),
        Json::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Json::Object(entries) => {
            out.push('{');
            for (index, (key, value)) in entries.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(key.as_ref()).unwrap());
                out.push(':');
                write_json(value, out);
            }
            out.push('}');
        }
    }
}

#[test]
fn eth_account_valid_messages_hash_as_eth_account_does() {
    let Some(dir) = shared_vectors() else { return };
    let messages = eth_account_file(&dir, "eip712_messages_valid_for_all.json");
    assert_eq!(messages.len(), 9);
    for (name, message) in &messages {
        if name == "valid_primary_type_is_empty_string" {
            continue;
        }
        let typed = parse(message).unwrap_or_else(|err| panic!("{name}: {err}"));
        check_hashes(name, &typed);
    }
}

/// eth-account, ethers and MetaMask accept a struct named "" (used as `"type": ""`); its
/// encodeType reads `Mail( from, to,string contents)(string name,address wallet)`. keyward
/// requires struct names to be identifiers, as EIP-712 does, so such a type set cannot be
/// confused with another one.
#[test]
fn eth_account_empty_struct_name_is_refused_deliberately() {
    let Some(dir) = shared_vectors() else { return };
    let messages = eth_account_file(&dir, "eip712_messages_valid_for_all.json");
    let (_, message) = messages
        .iter()
        .find(|(name, _)| name == "valid_primary_type_is_empty_string")
        .unwrap();
    let refused = refusal(message);
    println!("valid_primary_type_is_empty_string: {refused}");
    assert!(
        refused.contains("types: \"\" is not a valid struct name"),
        "{refused}"
    );
}

#[test]
fn eth_account_invalid_messages_are_all_refused_with_the_reason() {
    let Some(dir) = shared_vectors() else { return };
    let expected = [
        (
            "invalid_data_field_name_does_not_match_type_field_name",
            "message.from: unexpected key \"wallet\": struct Person has no such field",
        ),
        (
            "invalid_char_string_invalid_for_int_type",
            "message.to.balance: \"how do you do?\" is not an integer",
        ),
        (
            "invalid_single_array_value_for_nested_array_type",
            "message.to: person[2][][4] takes exactly 4 items, got 1",
        ),
        (
            "invalid_bad_uint_field_type_in_types_passed_an_int",
            "types.Person.balance: \"uint25689\" is not a valid type: uintN takes N from 8 to \
             256 in steps of 8",
        ),
        (
            "invalid_undefined_field_type_in_types",
            "types.Mail.from: \"Hello Person\" is not a valid type",
        ),
        (
            "invalid_bad_uint_field_type_in_types_passed_a_string",
            "types.Person.balance: \"uint25689\" is not a valid type",
        ),
        (
            "invalid_custom_typed_used_but_not_defined",
            "types.Mail.attachments: unknown type \"Attachment[]\": \"Attachment\" is neither",
        ),
        (
            "invalid_string_array_value_for_nested_string_array_type",
            "message.from.nicknames[0]: expected an array (string[]), got a string",
        ),
        (
            "one_arg_invalid_domain_value_not_in_domain_types",
            "domain: unexpected key \"salt\": struct EIP712Domain has no such field",
        ),
        (
            "one_arg_invalid_domain_type_not_in_domain_values",
            "domain: the required key \"salt\" is missing",
        ),
        // eth-account: Person is not the root type. Here: the message is not a Person.
        (
            "one_arg_invalid_non_primary_type_for_primary_type",
            "message: unexpected key \"from\": struct Person has no such field",
        ),
        (
            "one_arg_invalid_undefined_type_for_primary_type",
            "primaryType: \"Horse\" is not a struct defined in types",
        ),
    ];
    let mut messages = eth_account_file(&dir, "eip712_messages_invalid.json");
    messages.extend(eth_account_file(
        &dir,
        "eip712_messages_one_arg_invalid.json",
    ));
    assert_eq!(messages.len(), expected.len());
    for (name, message) in &messages {
        let (_, reason) = expected
            .iter()
            .find(|(listed, _)| listed == name)
            .unwrap_or_else(|| panic!("{name} has no expected message"));
        let refused = refusal(message);
        println!("{name}: {refused}");
        assert!(refused.contains(reason), "{name}: {refused}");
    }
}

/// Messages only some implementations accept. keyward accepts the one all fields of which are
/// present and refuses the rest, each for a rule in the module documentation.
#[test]
fn eth_account_partially_valid_messages_follow_the_strict_rules() {
    let Some(dir) = shared_vectors() else { return };
    let expected = [
        (
            "valid_space_in_custom_type_metamask_returns_empty_string_if_non_alphanum_in_custom_type",
            Some("types: \"Per son\" is not a valid struct name"),
        ),
        (
            "valid_missing_eip712_type_metamask_ignores_domain_data_if_domain_types_not_present",
            Some("types.EIP712Domain: it is missing"),
        ),
        (
            "valid_missing_primary_type_key_metamask_requires_primary_type_key",
            Some("typed data: the required key \"primaryType\" is missing"),
        ),
        (
            "valid_missing_primary_type_key_and_eip712domain_type_metamask_needs_primarytype",
            Some("types.EIP712Domain: it is missing"),
        ),
        (
            "valid_int_value_for_string_type_ethers_handles_mismatched_type_and_value_differently",
            Some("message.contents: expected a string, got a number"),
        ),
        (
            "valid_null_value_for_custom_type_ethers_requires_non_null",
            Some("message.to: expected an object (struct Person), got null"),
        ),
        (
            "valid_nested_structs_ethers_does_not_accept_recursive_custom_type_arrays",
            None,
        ),
        (
            "valid_eip712_example_ethers_does_not_accept_recursive_custom_types",
            Some("message.from.friend: the required key \"friend\" is missing"),
        ),
    ];
    let mut messages = eth_account_file(&dir, "eip712_messages_valid_py_and_ethers.json");
    messages.extend(eth_account_file(
        &dir,
        "eip712_messages_valid_py_and_metamask.json",
    ));
    assert_eq!(messages.len(), expected.len());
    for (name, message) in &messages {
        let (_, reason) = expected
            .iter()
            .find(|(listed, _)| listed == name)
            .unwrap_or_else(|| panic!("{name} has no expectation"));
        match reason {
            None => check_hashes(name, &parse(message).unwrap()),
            Some(reason) => {
                let refused = refusal(message);
                println!("{name}: {refused}");
                assert!(refused.contains(reason), "{name}: {refused}");
            }
        }
    }
}

// --- domain-only signing -------------------------------------------------------------------------

#[test]
fn domain_only_signing_hashes_the_domain_alone() {
    let domain_only = MAIL.replace(
        "\"primaryType\": \"Mail\"",
        "\"primaryType\": \"EIP712Domain\"",
    );
    let empty_message = {
        let start = domain_only.find("\"message\"").unwrap();
        format!("{}\"message\": {{}}}}", &domain_only[..start])
    };
    let typed = parse(&empty_message).unwrap();
    assert_eq!(typed.primary_type(), "EIP712Domain");
    assert_eq!(typed.message(), None);
    assert_eq!(typed.message_hash(), None);
    assert_eq!(typed.domain_separator(), MAIL_DOMAIN_SEPARATOR);
    // keccak256(0x19 0x01 ‖ the Mail domain separator), computed with Python eth_utils.keccak
    // (eth-account itself has no domain-only signing).
    assert_eq!(
        typed.signing_hash(),
        b256!("aa83c70305ec6c131e7a88f258c40813447bec8b9bcef94e5479603d9959da07")
    );

    let no_message = {
        let start = domain_only.find(",\n  \"message\"").unwrap();
        format!("{}}}", &domain_only[..start])
    };
    assert_eq!(parse(&no_message).unwrap(), typed);

    assert_refused(
        &domain_only,
        "message: primaryType is EIP712Domain, so only the domain is signed",
    );
}

// --- strictness, value by value ------------------------------------------------------------------

#[test]
fn integers_take_a_json_integer_a_decimal_string_or_a_hex_string() {
    for spelling in [
        "255",
        "\"255\"",
        "\"0xff\"",
        "\"0xFF\"",
        "\"0x00ff\"",
        "\"000255\"",
    ] {
        assert_eq!(
            single_value("uint8", spelling),
            Node::Uint(U256::from(255)),
            "{spelling}"
        );
    }
    for spelling in ["-128", "\"-128\""] {
        assert_eq!(
            single_value("int8", spelling),
            Node::Int(I256::try_from(-128_i64).unwrap()),
            "{spelling}"
        );
    }
    // An integer literal beyond 2^64 keeps every digit (an f64 would not).
    let max = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
    assert_eq!(single_value("uint256", max), Node::Uint(U256::MAX));
    assert_eq!(
        single_value("uint256", "9007199254740993"),
        Node::Uint(U256::from(9_007_199_254_740_993_u64))
    );
}

#[test]
fn floats_and_other_integer_spellings_are_refused() {
    for (value, reason) in [
        (
            "5.0",
            "5.0 is not an integer: a JSON number with a fraction or an exponent",
        ),
        ("1e3", "1e3 is not an integer"),
        ("1E3", "1E3 is not an integer"),
        ("-0.0", "-0.0 is not an integer"),
        ("\"5.0\"", "\"5.0\" is not an integer"),
        ("\"1e3\"", "\"1e3\" is not an integer"),
        ("\"+5\"", "\"+5\" is not an integer"),
        ("\" 5\"", "\" 5\" is not an integer"),
        ("\"5 \"", "\"5 \" is not an integer"),
        ("\"1_000\"", "\"1_000\" is not an integer"),
        ("\"\"", "\"\" is not an integer"),
        (
            "\"0x\"",
            "\"0x\" is not an integer: expected hex digits after 0x",
        ),
        ("\"0X5\"", "\"0X5\" is not an integer"),
        ("\"0xg\"", "\"0xg\" is not an integer"),
        (
            "\"-0x5\"",
            "\"-0x5\" is not an integer: a negative number is written in decimal",
        ),
        ("true", "message.v: expected an integer"),
        ("null", "got null"),
        ("[5]", "got an array"),
    ] {
        assert_refused(&single("int64", value), reason);
    }
}

#[test]
fn integers_are_range_checked_against_their_width_and_sign() {
    let fits = |ty: &str, value: &str| parse(&single(ty, value)).is_ok();
    assert!(fits("uint8", "0") && fits("uint8", "255") && !fits("uint8", "256"));
    assert!(!fits("uint8", "-1") && !fits("uint8", "\"-0\""));
    assert!(fits("int8", "127") && !fits("int8", "128"));
    assert!(fits("int8", "-128") && !fits("int8", "-129"));
    assert!(fits(
        "uint256",
        "\"0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\""
    ));
    assert!(!fits(
        "uint256",
        "\"0x10000000000000000000000000000000000000000000000000000000000000000\""
    ));
    assert!(!fits(
        "uint256",
        "115792089237316195423570985008687907853269984665640564039457584007913129639936"
    ));
    let int256_min =
        "\"-57896044618658097711785492504343953926634992332820282019728792003956564819968\"";
    let int256_max =
        "\"57896044618658097711785492504343953926634992332820282019728792003956564819967\"";
    let int256_max_plus_one =
        "\"57896044618658097711785492504343953926634992332820282019728792003956564819968\"";
    assert_eq!(single_value("int256", int256_min), Node::Int(I256::MIN));
    assert_eq!(single_value("int256", int256_max), Node::Int(I256::MAX));
    assert!(!fits("int256", int256_max_plus_one));
    assert!(!fits(
        "int256",
        "\"0x8000000000000000000000000000000000000000000000000000000000000000\""
    ));
    assert_refused(
        &single("uint8", "256"),
        "message.v: 256 does not fit in uint8 (0 to 255)",
    );
    assert_refused(
        &single("int16", "-32769"),
        "does not fit in int16 (-32768 to 32767)",
    );
    assert_refused(
        &single("uint136", "-1"),
        "does not fit in uint136 (0 to 2^136-1)",
    );
    assert_refused(
        &single("int256", int256_max_plus_one),
        "(-2^255 to 2^255-1)",
    );
}

#[test]
fn negative_integers_encode_as_sign_extended_twos_complement() {
    let typed = parse(&single("int8", "-1")).unwrap();
    let type_hash = keccak256("Test(int8 v)");
    let mut preimage = type_hash.to_vec();
    preimage.extend_from_slice(&[0xff; 32]);
    assert_eq!(typed.message_hash(), Some(keccak256(&preimage)));
}

#[test]
fn addresses_are_40_hex_digits_with_a_valid_checksum_when_mixed_case() {
    let wallet = address!("CD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826");
    for spelling in [
        "\"0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826\"",
        "\"0xcd2a3d9f938e13cd947ec05abc7fe734df8dd826\"",
        "\"0xCD2A3D9F938E13CD947EC05ABC7FE734DF8DD826\"",
    ] {
        assert_eq!(
            single_value("address", spelling),
            Node::Address(wallet),
            "{spelling}"
        );
    }
    for (value, reason) in [
        (
            "\"0xcD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826\"",
            "its mixed case fails the EIP-55 checksum (expected \
             0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826)",
        ),
        (
            "\"0xzz\"",
            "message.v: \"0xzz\" is not an address: expected 0x followed by 40 hex",
        ),
        (
            "\"cd2a3d9f938e13cd947ec05abc7fe734df8dd826\"",
            "is not an address",
        ),
        (
            "\"0Xcd2a3d9f938e13cd947ec05abc7fe734df8dd826\"",
            "is not an address",
        ),
        (
            "\"0xcd2a3d9f938e13cd947ec05abc7fe734df8dd8\"",
            "is not an address",
        ),
        (
            "\"0xcd2a3d9f938e13cd947ec05abc7fe734df8dd82600\"",
            "is not an address",
        ),
        (
            "\"0xcd2a3d9f938e13cd947ec05abc7fe734df8dd82g\"",
            "is not an address",
        ),
        (
            "1",
            "expected an address (a 0x-prefixed hex string), got a number",
        ),
    ] {
        assert_refused(&single("address", value), reason);
    }
}

#[test]
fn bytes_are_hex_of_the_exact_length() {
    assert_eq!(single_value("bytes", "\"0x\""), Node::Bytes(Vec::new()));
    assert_eq!(
        single_value("bytes", "\"0xABcd\""),
        Node::Bytes(vec![0xab, 0xcd])
    );
    assert_eq!(
        single_value("bytes2", "\"0xabcd\""),
        Node::FixedBytes(vec![0xab, 0xcd])
    );
    for (ty, value, reason) in [
        (
            "bytes",
            "\"0xabc\"",
            "\"0xabc\" is not bytes: expected 0x followed by an even number",
        ),
        ("bytes", "\"abcd\"", "is not bytes"),
        ("bytes", "\"hello\"", "is not bytes"),
        (
            "bytes",
            "[1, 2]",
            "expected bytes (a 0x-prefixed hex string), got an array",
        ),
        (
            "bytes4",
            "\"0xabcdef\"",
            "is not bytes4: it is 3 bytes, bytes4 takes exactly 4",
        ),
        (
            "bytes4",
            "\"0xabcdef0102\"",
            "it is 5 bytes, bytes4 takes exactly 4",
        ),
        (
            "bytes32",
            "\"0x\"",
            "it is 0 bytes, bytes32 takes exactly 32",
        ),
    ] {
        assert_refused(&single(ty, value), reason);
    }
}

#[test]
fn fixed_bytes_are_left_aligned_in_their_word() {
    let typed = parse(&single("bytes2", "\"0xabcd\"")).unwrap();
    let mut preimage = keccak256("Test(bytes2 v)").to_vec();
    let mut word = [0_u8; 32];
    word[..2].copy_from_slice(&[0xab, 0xcd]);
    preimage.extend_from_slice(&word);
    assert_eq!(typed.message_hash(), Some(keccak256(&preimage)));
}

#[test]
fn bools_and_strings_take_only_their_json_type() {
    assert_eq!(single_value("bool", "true"), Node::Bool(true));
    assert_eq!(
        single_value("string", "\"\\u00e9\\ud83d\\ude80\""),
        Node::String("é🚀".into())
    );
    assert_refused(
        &single("bool", "\"true\""),
        "expected true or false, got a string",
    );
    assert_refused(&single("bool", "1"), "expected true or false, got a number");
    assert_refused(
        &single("string", "12345"),
        "expected a string, got a number",
    );
    assert_refused(&single("string", "null"), "expected a string, got null");
}

#[test]
fn arrays_check_their_shape_and_fixed_lengths() {
    assert_eq!(
        single_value("uint8[2][]", "[[1, 2], [3, 4], [5, 6]]"),
        Node::Array {
            type_name: "uint8[2][]".into(),
            items: [[1_u8, 2], [3, 4], [5, 6]]
                .iter()
                .map(|pair| Node::Array {
                    type_name: "uint8[2]".into(),
                    items: pair.iter().map(|n| Node::Uint(U256::from(*n))).collect(),
                })
                .collect(),
        }
    );
    assert_refused(
        &single("uint8[2][]", "[[1, 2], [3]]"),
        "message.v[1]: uint8[2] takes exactly 2 items, got 1",
    );
    assert_refused(
        &single("uint8[]", "5"),
        "message.v: expected an array (uint8[]), got a number",
    );
    assert_refused(
        &single("uint8[]", "[1, 256]"),
        "message.v[1]: 256 does not fit in uint8",
    );
    assert_refused(
        &single("uint8[0]", "[]"),
        "the array length \"0\" is not a positive",
    );
    assert_refused(
        &single("uint8[01]", "[1]"),
        "the array length \"01\" is not a positive",
    );
}

#[test]
fn structs_need_exactly_their_fields() {
    let fields = r#"{"name":"a","type":"uint8"},{"name":"b","type":"string"}"#;
    assert!(parse(&with_struct(fields, r#"{"b":"x","a":1}"#)).is_ok());
    assert_refused(
        &with_struct(fields, r#"{"a":1}"#),
        "message: the required key \"b\" is missing",
    );
    assert_refused(
        &with_struct(fields, r#"{"a":1,"b":null}"#),
        "message.b: expected a string, got null",
    );
    assert_refused(
        &with_struct(fields, r#"{"a":1,"b":"x","c":2}"#),
        "message: unexpected key \"c\": struct Test has no such field, and it would not be signed",
    );
    assert_refused(
        &with_struct(fields, r#"{"a":1,"b":"x","a":2}"#),
        "the key \"a\" appears twice in one object",
    );
    assert_refused(
        &with_struct(fields, "[]"),
        "message: expected an object (struct Test)",
    );
}

#[test]
fn field_order_is_the_declared_order_not_the_json_order() {
    let fields = r#"{"name":"a","type":"uint8"},{"name":"b","type":"uint8"}"#;
    let forward = parse(&with_struct(fields, r#"{"a":1,"b":2}"#)).unwrap();
    let backward = parse(&with_struct(fields, r#"{"b":2,"a":1}"#)).unwrap();
    assert_eq!(forward.signing_hash(), backward.signing_hash());
    let swapped = parse(&with_struct(fields, r#"{"a":2,"b":1}"#)).unwrap();
    assert_ne!(forward.signing_hash(), swapped.signing_hash());
}

// --- strictness, types -----------------------------------------------------------------------------

#[test]
fn type_strings_are_canonical() {
    for (ty, reason) in [
        ("uint", "bare uint is refused: write uint256"),
        ("int[]", "bare int is refused: write int256"),
        ("uint7", "uintN takes N from 8 to 256 in steps of 8"),
        ("int264", "intN takes N from 8 to 256"),
        ("uint08", "without leading zeros"),
        ("bytes0", "bytesN takes N from 1 to 32"),
        ("bytes33", "bytesN takes N from 1 to 32"),
        ("Person[", "an array suffix is [] or [k]"),
        ("uint8 []", "is not a valid type"),
        ("", "is not a valid type"),
    ] {
        assert_refused(&single(ty, "0"), reason);
    }
}

#[test]
fn struct_and_field_names_are_checked() {
    let typed = |types: &str, primary: &str, message: &str| {
        format!(
            r#"{{"types":{{"EIP712Domain":[{{"name":"chainId","type":"uint256"}}],{types}}},
              "primaryType":"{primary}","domain":{{"chainId":1}},"message":{message}}}"#
        )
    };
    assert!(
        parse(&typed(
            r#""$_a1":[{"name":"cont ents","type":"uint8"}]"#,
            "$_a1",
            r#"{"cont ents":1}"#
        ))
        .is_ok()
    );
    for (name, reason) in [
        (
            "address",
            "\"address\" is not a valid struct name: it is the name of an atomic type",
        ),
        ("uint8", "it is the name of an atomic type"),
        ("uint", "it is the name of an atomic type"),
        ("1abc", "a struct name is a letter, $ or _"),
        ("Per son", "\"Per son\" is not a valid struct name"),
        ("", "\"\" is not a valid struct name"),
    ] {
        assert_refused(&typed(&format!(r#""{name}":[]"#), name, "{}"), reason);
    }
    for (field, reason) in [
        (
            "a,b",
            "types.T[0]: \"a,b\" is not a valid field name: a field name cannot contain ,",
        ),
        ("f(x)", "a field name cannot contain , ( or )"),
        (
            "a\\nb",
            "\"a\\nb\" is not a valid field name: a field name cannot contain control",
        ),
        ("", "\"\" is not a valid field name: it is empty"),
    ] {
        assert_refused(
            &typed(
                &format!(r#""T":[{{"name":"{field}","type":"uint8"}}]"#),
                "T",
                "{}",
            ),
            reason,
        );
    }
    assert_refused(
        &typed(
            r#""T":[{"name":"a","type":"uint8"},{"name":"a","type":"bool"}]"#,
            "T",
            "{}",
        ),
        "types.T[1]: the field \"a\" is declared twice",
    );
    assert_refused(
        &typed(r#""T":[{"name":"a","type":"uint8","x":1}]"#, "T", "{}"),
        "types.T[0]: unexpected key \"x\": a field has only name and type",
    );
    assert_refused(
        &typed(r#""T":[{"name":"a"}]"#, "T", "{}"),
        "types.T[0]: the required key \"type\" is missing",
    );
    assert_refused(
        &typed(r#""T":[{"name":"a","type":5}]"#, "T", "{}"),
        "types.T[0].type: expected a string, got a number",
    );
    assert_refused(
        &typed(r#""T":{"a":"uint8"}"#, "T", "{}"),
        "types.T: expected an array of {\"name\", \"type\"} fields, got an object",
    );
    assert_refused(
        &typed(r#""T":[{"name":"a","type":"U"}]"#, "T", "{}"),
        "types.T.a: unknown type \"U\": \"U\" is neither an atomic type nor a struct defined",
    );
}

#[test]
fn the_domain_type_is_a_canonical_subset_of_the_eip_fields() {
    let with_domain = |fields: &str, domain: &str| {
        format!(
            r#"{{"types":{{"EIP712Domain":[{fields}],"T":[]}},"primaryType":"T",
              "domain":{domain},"message":{{}}}}"#
        )
    };
    let all = r#"{"name":"name","type":"string"},{"name":"version","type":"string"},
        {"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"},
        {"name":"salt","type":"bytes32"}"#;
    let salt = "0x1234567890123456789012345678901234567890123456789012345678901234";
    let typed = parse(&with_domain(
        all,
        &format!(
            r#"{{"name":"N","version":"2","chainId":"0x89",
               "verifyingContract":"0x0000000000000000000000000000000000000001","salt":"{salt}"}}"#
        ),
    ))
    .unwrap();
    assert_eq!(
        typed.domain(),
        &Domain {
            name: Some("N".into()),
            version: Some("2".into()),
            chain_id: Some(U256::from(137)),
            verifying_contract: Some(Address::with_last_byte(1)),
            salt: Some(salt.parse().unwrap()),
        }
    );
    for (fields, reason) in [
        (
            r#"{"name":"chainId","type":"uint256"},{"name":"name","type":"string"}"#,
            "types.EIP712Domain: name is out of order; declare the fields in the order name, \
             version, chainId, verifyingContract, salt",
        ),
        (
            r#"{"name":"chainId","type":"uint64"}"#,
            "types.EIP712Domain: chainId is declared as \"uint64\", it must be uint256",
        ),
        (
            r#"{"name":"chain","type":"uint256"}"#,
            "types.EIP712Domain: \"chain\" is not a domain field",
        ),
        ("", "types.EIP712Domain: it declares no field"),
    ] {
        assert_refused(&with_domain(fields, "{}"), reason);
    }
    assert_refused(
        &with_domain(
            r#"{"name":"chainId","type":"uint256"}"#,
            r#"{"chainId":1.0}"#,
        ),
        "domain.chainId: 1.0 is not an integer",
    );
}

#[test]
fn the_request_has_exactly_its_four_keys() {
    assert_refused(
        &MAIL.replacen('{', r#"{"extra": 1, "#, 1),
        "typed data: unexpected key \"extra\": typed data has only types, primaryType, domain \
         and message",
    );
    let without = |key: &str| {
        let mut value: Value = serde_json::from_str(MAIL).unwrap();
        value.as_object_mut().unwrap().remove(key);
        value.to_string()
    };
    for key in ["types", "primaryType", "domain", "message"] {
        assert_refused(
            &without(key),
            &format!("typed data: the required key \"{key}\" is missing"),
        );
    }
    assert_refused(
        &MAIL.replace("\"primaryType\": \"Mail\"", "\"primaryType\": [\"Mail\"]"),
        "primaryType: expected the name of a struct in types, got an array",
    );
    assert_refused(
        "[]",
        "typed data: expected an object with types, primaryType",
    );
    assert_refused(
        &MAIL.replace(
            "\"primaryType\": \"Mail\"",
            "\"primaryType\": \"Mail\", \"types\": {}",
        ),
        "the key \"types\" appears twice in one object",
    );
}

#[test]
fn recursive_types_are_encoded_once_and_hashed() {
    // A Person may name friends of type Person: encodeType lists Person once.
    let json = with_struct(
        r#"{"name":"me","type":"Person"}"#,
        r#"{"me":{"name":"a","friends":[{"name":"b","friends":[]}]}}"#,
    )
    .replace(
        "\"Test\":[",
        r#""Person":[{"name":"name","type":"string"},{"name":"friends","type":"Person[]"}],"Test":["#,
    );
    let typed = parse(&json).unwrap();
    let types = Types::parse(
        &json::parse(
            r#"{"EIP712Domain":[{"name":"name","type":"string"}],
            "Person":[{"name":"name","type":"string"},{"name":"friends","type":"Person[]"}],
            "Test":[{"name":"me","type":"Person"}]}"#,
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        types.encode_type("Test").unwrap(),
        "Test(Person me)Person(string name,Person[] friends)"
    );
    assert_eq!(
        types.encode_type("Person").unwrap(),
        "Person(string name,Person[] friends)"
    );
    // hashStruct by hand: b has no friends (keccak of nothing), a has b.
    let person_hash = keccak256("Person(string name,Person[] friends)");
    let hash_person = |name: &str, friends: &[B256]| {
        let mut preimage = person_hash.to_vec();
        preimage.extend_from_slice(keccak256(name).as_slice());
        let friends: Vec<u8> = friends.iter().flat_map(|hash| hash.0).collect();
        preimage.extend_from_slice(keccak256(&friends).as_slice());
        keccak256(&preimage)
    };
    let b = hash_person("b", &[]);
    let a = hash_person("a", &[b]);
    let mut preimage = keccak256("Test(Person me)Person(string name,Person[] friends)").to_vec();
    preimage.extend_from_slice(a.as_slice());
    assert_eq!(typed.message_hash(), Some(keccak256(&preimage)));
}

// --- limits ----------------------------------------------------------------------------------------

#[test]
fn input_over_the_size_limit_is_refused_before_parsing() {
    let padding = " ".repeat(MAX_INPUT_LEN + 1 - MAIL.len());
    let too_large = format!("{MAIL}{padding}");
    assert_eq!(too_large.len(), MAX_INPUT_LEN + 1);
    assert_eq!(
        parse(&too_large),
        Err(Eip712Error::TooLarge {
            len: MAX_INPUT_LEN + 1,
            max: MAX_INPUT_LEN
        })
    );
    let just_fits = &too_large[..MAX_INPUT_LEN];
    assert_eq!(parse(just_fits).unwrap().signing_hash(), MAIL_SIGNING_HASH);
    // Garbage is refused for its size, without being read.
    assert!(matches!(
        parse(&"[".repeat(2 * MAX_INPUT_LEN)),
        Err(Eip712Error::TooLarge { .. })
    ));
}

#[test]
fn nesting_deeper_than_the_limit_is_refused_at_the_first_level_too_deep() {
    // One bracket too many, and a quarter megabyte of them: both stop at the first one too deep.
    for count in [MAX_DEPTH + 1, MAX_INPUT_LEN] {
        let deep = "[".repeat(count);
        assert_eq!(
            parse(&deep),
            Err(Eip712Error::TooDeep {
                max: MAX_DEPTH,
                offset: MAX_DEPTH
            })
        );
    }
    let objects = "{\"a\":".repeat(MAX_DEPTH + 1);
    assert!(matches!(parse(&objects), Err(Eip712Error::TooDeep { .. })));
    // 64 levels, as the acceptance names them, are refused.
    assert!(matches!(
        parse(&format!("{}{}", "[".repeat(64), "]".repeat(64))),
        Err(Eip712Error::TooDeep { .. })
    ));
    // Exactly MAX_DEPTH levels are read (and then refused for what they say, not for depth).
    let at_limit = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    assert_refused(&at_limit, "typed data: expected an object");
}

#[test]
fn deep_arrays_in_a_message_are_accepted_up_to_the_limit() {
    // The request object, `message` and `v` take three levels; the rest are array levels.
    let nested = |dims: usize| {
        let ty = format!("uint8{}", "[]".repeat(dims));
        let value = format!("{}1{}", "[".repeat(dims), "]".repeat(dims));
        single(&ty, &value)
    };
    assert!(parse(&nested(MAX_DEPTH - 2)).is_ok());
    assert!(matches!(
        parse(&nested(MAX_DEPTH - 1)),
        Err(Eip712Error::TooDeep { .. })
    ));
    // A type with more dimensions than that is refused even with an empty value.
    let ty = format!("uint8{}", "[]".repeat(MAX_DEPTH + 1));
    assert_refused(&single(&ty, "[]"), "it has more than 48 array dimensions");
}

#[test]
fn too_many_struct_types_are_refused() {
    let types: Vec<String> = (0..MAX_STRUCT_TYPES)
        .map(|index| format!(r#""T{index}":[]"#))
        .collect();
    let json = format!(
        r#"{{"types":{{"EIP712Domain":[{{"name":"chainId","type":"uint256"}}],{}}},
          "primaryType":"T0","domain":{{"chainId":1}},"message":{{}}}}"#,
        types.join(",")
    );
    assert_refused(
        &json,
        "types: 129 struct definitions, over the limit of 128",
    );
}

#[test]
fn an_oversized_encode_type_is_refused() {
    let long_name = "a".repeat(MAX_ENCODED_TYPE_LEN);
    assert_refused(
        &single("uint8", "1").replace("\"name\":\"v\"", &format!("\"name\":\"{long_name}\"")),
        "types.Test: its encodeType is longer than 65536 bytes",
    );
}

// --- the JSON reader -------------------------------------------------------------------------------

#[test]
fn json_reader_refuses_what_rfc_8259_refuses() {
    for (text, problem) in [
        ("", "the text ends where a value should start"),
        ("{\"a\":1,}", "expected a string key"),
        ("[1,]", "expected a value"),
        ("[01]", "a number has a leading zero"),
        ("[-]", "a number needs a digit after its sign"),
        ("[1.]", "a number needs a digit after its decimal point"),
        ("[1e]", "a number needs a digit in its exponent"),
        ("[.5]", "expected a value"),
        ("[NaN]", "expected a value"),
        ("[tru]", "expected a value"),
        ("['a']", "expected a value"),
        ("[\"\\ud800\"]", "a lone surrogate"),
        ("[\"\\udc00\"]", "a lone surrogate"),
        ("[\"\\ud800\\u0041\"]", "a lone surrogate"),
        ("[\"\\x\"]", "unknown escape"),
        ("[\"\\u12\"]", "a \\u escape needs four hex digits"),
        ("[\"a\nb\"]", "a control character in a string"),
        ("[\"abc", "a string is not closed"),
        ("{\"a\" 1}", "expected : after an object key"),
        ("[1 2]", "expected , or ] after an array item"),
        ("{\"a\":1 \"b\":2}", "expected , or } after an object value"),
        ("[1] x", "unexpected text after the end of the document"),
        ("\u{feff}[]", "expected a value"),
        (
            "[1] // comment",
            "unexpected text after the end of the document",
        ),
    ] {
        match json::parse(text) {
            Err(Eip712Error::Json { problem: got, .. }) => {
                assert!(got.starts_with(problem), "{text:?}: {got}");
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
    assert!(matches!(
        json::parse(r#"{"a":1,"b":{"a":2},"a":3}"#),
        Err(Eip712Error::DuplicateKey { .. })
    ));
    // The same key in different objects is fine; escapes spelling the same key are not.
    assert!(json::parse(r#"{"a":{"a":1}}"#).is_ok());
    assert!(matches!(
        json::parse(r#"{"a":1,"\u0061":2}"#),
        Err(Eip712Error::DuplicateKey { .. })
    ));
}

#[test]
fn json_reader_keeps_numbers_as_written() {
    let parsed = json::parse(" [ -0 , 5.0 , 1e3 , 123456789012345678901234567890 ] ").unwrap();
    assert_eq!(
        parsed,
        Json::Array(vec![
            Json::Number("-0"),
            Json::Number("5.0"),
            Json::Number("1e3"),
            Json::Number("123456789012345678901234567890"),
        ])
    );
}

#[test]
fn error_quotes_are_escaped_and_cut_short() {
    assert_eq!(quote("a\"b\\c\n"), r#""a\"b\\c\n""#);
    assert_eq!(quote("\u{202e}evil"), r#""\u{202e}evil""#);
    let long = quote(&"x".repeat(500));
    assert_eq!(long, format!("\"{}…\"", "x".repeat(80)));
    assert_refused(
        &single("address", &format!("\"{}\"", "z".repeat(10_000))),
        &format!("message.v: \"{}…\" is not an address", "z".repeat(80)),
    );
}

// --- properties ------------------------------------------------------------------------------------

/// Our JSON value as serde_json's, to compare the readers.
fn to_serde(json: &Json<'_>) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(value) => Value::Bool(*value),
        Json::Number(literal) => serde_json::from_str(literal).unwrap(),
        Json::String(text) => Value::String(text.to_string()),
        Json::Array(items) => Value::Array(items.iter().map(to_serde).collect()),
        Json::Object(entries) => Value::Object(
            entries
                .iter()
                .map(|(key, value)| (key.to_string(), to_serde(value)))
                .collect(),
        ),
    }
}

fn arbitrary_json() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map(any::<String>(), inner, 0..8)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A Mail-like message, and the same message spelled differently (address case, integer
/// spelling, key order): every spelling must hash alike, and as a hand-written hashStruct says.
#[derive(Debug, Clone)]
struct MailLike {
    from: (String, [u8; 20]),
    to: (String, [u8; 20]),
    contents: String,
    amount: U256,
    delta: i64,
    tags: Vec<[u8; 4]>,
}

const MAIL_LIKE_TYPES: &str = r#"{
    "EIP712Domain": [{"name":"name","type":"string"},{"name":"chainId","type":"uint256"}],
    "Person": [{"name":"name","type":"string"},{"name":"wallet","type":"address"}],
    "Mail": [{"name":"from","type":"Person"},{"name":"to","type":"Person"},
             {"name":"contents","type":"string"},{"name":"amount","type":"uint256"},
             {"name":"delta","type":"int64"},{"name":"tags","type":"bytes4[]"}]}"#;

impl MailLike {
    /// `spelling` picks, per value, among the accepted spellings.
    fn to_json(&self, spelling: u8) -> String {
        let address = |bytes: &[u8; 20]| {
            let address = Address::from(*bytes);
            match spelling % 3 {
                0 => address.to_checksum(None),
                1 => format!("{address:#x}"),
                _ => format!("0x{}", hex::encode_upper(bytes)),
            }
        };
        let person = |(name, wallet): &(String, [u8; 20])| {
            format!(
                r#"{{"wallet":"{}","name":{}}}"#,
                address(wallet),
                serde_json::to_string(name).unwrap()
            )
        };
        let amount = match spelling % 3 {
            0 => format!("\"{}\"", self.amount),
            1 => format!("\"{:#x}\"", self.amount),
            _ => self.amount.to_string(),
        };
        let delta = if spelling.is_multiple_of(2) {
            self.delta.to_string()
        } else {
            format!("\"{}\"", self.delta)
        };
        let tags: Vec<String> = self
            .tags
            .iter()
            .map(|tag| {
                if spelling.is_multiple_of(2) {
                    format!("\"0x{}\"", hex::encode(tag))
                } else {
                    format!("\"0x{}\"", hex::encode_upper(tag))
                }
            })
            .collect();
        format!(
            r#"{{"primaryType":"Mail","types":{MAIL_LIKE_TYPES},
               "domain":{{"chainId":"1","name":"Mail-like"}},
               "message":{{"tags":[{}],"delta":{delta},"amount":{amount},
                 "contents":{},"to":{},"from":{}}}}}"#,
            tags.join(","),
            serde_json::to_string(&self.contents).unwrap(),
            person(&self.to),
            person(&self.from),
        )
    }

    /// hashStruct(Mail, message), written out from the EIP for this one shape.
    fn expected_message_hash(&self) -> B256 {
        let person_type = "Person(string name,address wallet)";
        let mail_type = format!(
            "Mail(Person from,Person to,string contents,uint256 amount,int64 delta,bytes4[] \
             tags){person_type}"
        );
        let person = |(name, wallet): &(String, [u8; 20])| {
            let mut preimage = keccak256(person_type).to_vec();
            preimage.extend_from_slice(keccak256(name).as_slice());
            preimage.extend_from_slice(&[0; 12]);
            preimage.extend_from_slice(wallet);
            keccak256(&preimage)
        };
        let mut tags = Vec::new();
        for tag in &self.tags {
            tags.extend_from_slice(tag);
            tags.extend_from_slice(&[0; 28]);
        }
        let mut preimage = keccak256(&mail_type).to_vec();
        preimage.extend_from_slice(person(&self.from).as_slice());
        preimage.extend_from_slice(person(&self.to).as_slice());
        preimage.extend_from_slice(keccak256(&self.contents).as_slice());
        preimage.extend_from_slice(&self.amount.to_be_bytes::<32>());
        preimage.extend_from_slice(&I256::try_from(self.delta).unwrap().to_be_bytes::<32>());
        preimage.extend_from_slice(keccak256(&tags).as_slice());
        keccak256(&preimage)
    }
}

fn arbitrary_mail_like() -> impl proptest::strategy::Strategy<Value = MailLike> {
    use proptest::prelude::*;
    let person = (any::<String>(), any::<[u8; 20]>());
    (
        person,
        person,
        any::<String>(),
        any::<[u8; 32]>(),
        any::<i64>(),
        proptest::collection::vec(any::<[u8; 4]>(), 0..5),
    )
        .prop_map(|(from, to, contents, amount, delta, tags)| MailLike {
            from,
            to,
            contents,
            amount: U256::from_be_bytes(amount),
            delta,
            tags,
        })
}

proptest::proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        let _ = parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn parse_never_panics_on_json_like_text(text in "[\\[\\]{}\":,0-9a-fx.eE+\\-\\\\u tnrul]{0,300}") {
        let _ = parse(&text);
    }

    #[test]
    fn parse_never_panics_on_damaged_typed_data(
        position in 0..MAIL.len(),
        replacement in proptest::prelude::any::<char>(),
    ) {
        let mut damaged: Vec<char> = MAIL.chars().collect();
        let position = position.min(damaged.len() - 1);
        damaged[position] = replacement;
        let damaged: String = damaged.into_iter().collect();
        if let Ok(typed) = parse(&damaged) {
            // Whatever still parses hashes the same every time.
            proptest::prop_assert_eq!(parse(&damaged).unwrap(), typed);
        }
    }

    #[test]
    fn json_reader_agrees_with_serde_json(value in arbitrary_json(), pretty in proptest::prelude::any::<bool>()) {
        let text = if pretty {
            serde_json::to_string_pretty(&value).unwrap()
        } else {
            serde_json::to_string(&value).unwrap()
        };
        proptest::prop_assert_eq!(to_serde(&json::parse(&text).unwrap()), value);
    }

    #[test]
    fn mail_like_messages_hash_alike_in_every_spelling(mail in arbitrary_mail_like()) {
        let expected = mail.expected_message_hash();
        let first = parse(&mail.to_json(0)).unwrap();
        proptest::prop_assert_eq!(first.message_hash(), Some(expected));
        for spelling in 1..6 {
            let other = parse(&mail.to_json(spelling)).unwrap();
            proptest::prop_assert_eq!(&other, &first);
        }
        let Some(Node::Struct { members, .. }) = first.message() else {
            panic!("no struct message")
        };
        proptest::prop_assert_eq!(&members[3].value, &Node::Uint(mail.amount));
        proptest::prop_assert_eq!(&members[4].value, &Node::Int(I256::try_from(mail.delta).unwrap()));
    }
}

// --- found by fuzzing --------------------------------------------------------------------------

/// However long or escape-heavy the names and values it repeats, a refusal stays short enough to
/// show. The fuzzer found a type name of 90 DEL characters, each escaped to six (`\u{7f}`), making
/// a 643-character message (`fuzz/regressions/eip712/escaped-type-name-lengthens-the-error`); long
/// plain field names in a path and long struct names were unbounded too.
#[test]
fn refusals_stay_short_whatever_the_typed_data_repeats() {
    let crash = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fuzz/regressions/eip712/escaped-type-name-lengthens-the-error"
    ))
    .unwrap();
    let long = "a".repeat(5000);
    let struct_name = format!("S{}", "x".repeat(5000));
    let domain = r#""EIP712Domain":[{"name":"name","type":"string"}]"#;
    let cases = [
        crash,
        // A long plain field name in the path of a bad value.
        format!(
            r#"{{"types":{{{domain},"T":[{{"name":"{long}","type":"uint8"}}]}},"primaryType":"T","domain":{{"name":"n"}},"message":{{"{long}":"300"}}}}"#
        ),
        // A long struct name in an array type given the wrong number of items.
        format!(
            r#"{{"types":{{{domain},"T":[{{"name":"v","type":"{struct_name}[2]"}}],"{struct_name}":[{{"name":"a","type":"bool"}}]}},"primaryType":"T","domain":{{"name":"n"}},"message":{{"v":[]}}}}"#
        ),
        // Escapes in a key, a type and a primary type.
        format!(
            r#"{{"types":{{{domain},"T":[{{"name":"v","type":"{}"}}]}},"primaryType":"T","domain":{{"name":"n"}},"message":{{}}}}"#,
            "\\u0001".repeat(500)
        ),
        format!(
            r#"{{"types":{{{domain}}},"primaryType":"{}","domain":{{"name":"n"}}}}"#,
            "\\u202e".repeat(500)
        ),
    ];
    for case in &cases {
        let message = refusal(case);
        assert!(
            message.chars().count() <= 400,
            "{} characters: {message}",
            message.chars().count()
        );
    }
    // What is cut still says where: the end of the path, and that text was cut.
    assert!(refusal(&cases[1]).starts_with('…'));
    assert!(refusal(&cases[1]).contains("does not fit in uint8"));
    assert!(refusal(&cases[2]).contains("Sxxx"));
}
