//! Signatures with eyes open: a message is reviewed byte for byte on the approval page, approved
//! with a TOTP code like a transfer, and the signature checks out with cast.

use serde_json::{Value, json};

use crate::funds::{Rig, human};
use crate::support::human::{Human, http};
use crate::support::mcp::{Client, Transport, call, ok, over_each_transport, tool_error};
use crate::support::{OutputExt as _, foundry_tool};

const MAIN: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

/// `cast wallet verify`, the independent check of a message signature.
fn cast_verifies(address: &str, message: &str, signature: &str) -> bool {
    cast_verify(&["--address", address, message, signature])
}

/// `cast wallet verify --data`: cast hashes the typed data itself and recovers the signer.
fn cast_verifies_typed(address: &str, typed: &Value, signature: &str) -> bool {
    cast_verify(&[
        "--data",
        "--address",
        address,
        &typed.to_string(),
        signature,
    ])
}

fn cast_verify(args: &[&str]) -> bool {
    let cast = foundry_tool("cast").expect("cast is installed with anvil");
    let empty = tempfile::tempdir().unwrap();
    std::process::Command::new(cast)
        .current_dir(empty.path())
        .args(["wallet", "verify"])
        .args(args)
        .output()
        .unwrap()
        .status
        .success()
}

/// The human reads the page, checks it shows the tool's review, and approves with a code.
async fn approve(prepared: &Value, person: Human) -> Human {
    let url = prepared["approval_url"].as_str().unwrap().to_owned();
    let review = prepared["review"].as_str().unwrap().to_owned();
    human(move || {
        let mut person = person;
        let page = http("GET", &url, &[], None);
        assert_eq!(page.review(), review, "the page shows the tool's review");
        let answered = person.answer(&url, "approve");
        assert!(answered.body.contains("Approved"), "{}", answered.body);
        person
    })
    .await
}

async fn a_message_is_signed_only_after_the_human_reads_it_and_cast_verifies_the_signature(
    transport: Transport,
) {
    let Some(rig) = Rig::start_on(transport, "").await else {
        return;
    };
    let prepared = ok(&call(
        &rig.client,
        "wallet_sign_message",
        json!({ "message": "hello" }),
    )
    .await)
    .clone();
    assert_eq!(prepared["state"], "awaiting_approval");
    assert!(prepared["signature"].is_null());
    let review = prepared["review"].as_str().unwrap();
    assert!(review.contains("| hello\n"), "{review}");
    assert!(review.contains("EIP-191"), "{review}");

    let person = approve(&prepared, Human::default()).await;
    let id = prepared["request_id"].as_str().unwrap();
    let signed = rig.settle(id).await;
    assert_eq!(signed["state"], "signed", "{signed}");
    let signature = signed["signature"].as_str().unwrap();
    // RFC 6979 is deterministic: the same signature eth-account and `cast wallet sign` give for
    // Anvil key 0 (ethereum-signing-vectors.json, eip191_anvil0_hello_DERIVED_HERE).
    assert_eq!(
        signature,
        "0xf16ea9a3478698f695fd1401bfe27e9e4a7e8e3da94aa72b021125e31fa899cc573c48ea3fe1d4ab61a9db10c19032026e3ed2dbccba5a178235ac27f94504311c"
    );
    assert!(cast_verifies(MAIN, "hello", signature));
    assert!(!cast_verifies(MAIN, "hellO", signature));

    // Multi-line text with a hidden character: shown escaped, signed as given.
    let text = "Sign in to example.org\nNonce: 7\u{200b}";
    let prepared = ok(&call(
        &rig.client,
        "wallet_sign_message",
        json!({ "message": text, "from": "1" }),
    )
    .await)
    .clone();
    let review = prepared["review"].as_str().unwrap();
    assert!(review.contains("| Nonce: 7\\u{200b}"), "{review}");
    assert_eq!(prepared["warnings"][0]["severity"], "warn");
    let _person = approve(&prepared, person).await;
    let signed = rig.settle(prepared["request_id"].as_str().unwrap()).await;
    assert!(cast_verifies(
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        text,
        signed["signature"].as_str().unwrap()
    ));
    keyward::audit::verify(rig.state_dir()).unwrap();
}

async fn a_hash_to_sign_is_blind_signing_refused_by_default_and_bad_messages_get_clear_errors(
    transport: Transport,
) {
    let Some(rig) = Rig::start_on(transport, "").await else {
        return;
    };
    let hash = format!("0x{}", "ab".repeat(32));
    let result = call(
        &rig.client,
        "wallet_sign_message",
        json!({ "message": hash, "encoding": "hex" }),
    )
    .await;
    let (kind, message) = tool_error(&result);
    assert_eq!(kind, "refused");
    assert!(message.contains("blind signing"), "{message}");
    let refusal = &result.structured_content.as_ref().unwrap()["error"]["refusal"];
    assert_eq!(refusal["rule"], "policy.blind_signing");
    assert!(refusal["review"].as_str().unwrap().contains("| abab"));

    for (arguments, expected) in [
        (json!({ "message": "" }), "must not be empty"),
        (
            json!({ "message": "abc", "encoding": "hex" }),
            "must start with 0x",
        ),
        (
            json!({ "message": "0xabc", "encoding": "hex" }),
            "even number of hexadecimal digits",
        ),
        (
            json!({ "message": "x", "encoding": "base64" }),
            "\"utf8\" or \"hex\"",
        ),
        (json!({ "message": "x".repeat(4097) }), "at most 4096 bytes"),
        (json!({ "message": "x", "code": "123456" }), "code"),
    ] {
        let (kind, message) =
            tool_error(&call(&rig.client, "wallet_sign_message", arguments).await);
        assert_eq!(kind, "invalid_argument", "{message}");
        assert!(message.contains(expected), "{message} lacks {expected:?}");
    }

    // With blind signing allowed, the same hash is filed with its critical warning and still
    // needs the human and a code.
    let Some(rig) = Rig::start_on(transport, "blind_signing = true").await else {
        return;
    };
    let prepared = ok(&call(
        &rig.client,
        "wallet_sign_message",
        json!({ "message": hash, "encoding": "hex" }),
    )
    .await)
    .clone();
    assert_eq!(prepared["state"], "awaiting_approval");
    assert_eq!(prepared["warnings"][0]["severity"], "critical");
    let url = prepared["approval_url"].as_str().unwrap().to_owned();
    human(move || Human::default().answer(&url, "reject")).await;
    let rejected = rig.settle(prepared["request_id"].as_str().unwrap()).await;
    assert_eq!(rejected["state"], "rejected");
    assert!(rejected["signature"].is_null());
}

/// The ERC-2612 fixture token is itself right: a Permit signed by cast as EIP-712 typed data is
/// accepted by its `permit`, and the allowance becomes the signed value.
#[test]
fn the_permit_fixture_token_accepts_a_permit_signed_by_cast() {
    use crate::support::anvil::{Anvil, PERMIT_DOLLAR};
    let Some(anvil) = Anvil::start(None, 31337) else {
        return;
    };
    anvil.deploy_tokens();
    anvil.deploy_permit_dollar();
    let cast = foundry_tool("cast").expect("cast is installed with anvil");
    let empty = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let output = std::process::Command::new(&cast)
            .current_dir(empty.path())
            .args(args)
            .args(["--rpc-url", &anvil.url])
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    let spender = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    let typed = permit_dollar_permit(spender, "2500000");
    // Anvil's published key 0.
    let key = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    let output = std::process::Command::new(&cast)
        .current_dir(empty.path())
        .args([
            "wallet",
            "sign",
            "--private-key",
            key,
            "--data",
            &typed.to_string(),
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let signature = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let bytes = hex::decode(signature.trim_start_matches("0x")).unwrap();
    let (r, s, v) = (
        format!("0x{}", hex::encode(&bytes[..32])),
        format!("0x{}", hex::encode(&bytes[32..64])),
        bytes[64].to_string(),
    );
    run(&[
        "send",
        "--private-key",
        key,
        PERMIT_DOLLAR,
        "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)",
        MAIN,
        spender,
        "2500000",
        "99999999999",
        &v,
        &r,
        &s,
    ]);
    let allowance = run(&[
        "call",
        PERMIT_DOLLAR,
        "allowance(address,address)(uint256)",
        MAIN,
        spender,
    ]);
    assert_eq!(allowance.split_whitespace().next().unwrap(), "2500000");
}

async fn contract_calls_run_as_reviewed_and_unreadable_calldata_is_blind_signing(
    transport: Transport,
) {
    use crate::support::anvil::TEST_DOLLAR;
    let Some(rig) = Rig::start_on(transport, "").await else {
        return;
    };
    const FRIEND: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    let before = crate::funds::cast_balance(&rig.anvil.url, FRIEND, Some(TEST_DOLLAR));
    let prepared = ok(&call(
        &rig.client,
        "wallet_contract_call",
        json!({
            "to": TEST_DOLLAR,
            "function": "transfer(address recipient, uint256 value)",
            "args": [FRIEND, "2500000"],
        }),
    )
    .await)
    .clone();
    let review = prepared["review"].as_str().unwrap();
    assert!(review.starts_with("Call transfer on anvil"), "{review}");
    // A function keyward knows reads under keyward's names, not the request's.
    assert!(
        review.contains("transfer(address to, uint256 amount) [ERC-20]"),
        "{review}"
    );
    assert!(
        review.contains("to (address): 0x7099 7970 C518 12dc 3A01 0C7d 01b5 0e0d 17dc 79C8"),
        "{review}"
    );
    assert!(review.contains("amount (uint256): 2500000"), "{review}");
    let _ = approve(&prepared, Human::default()).await;
    let mined = rig.settle(prepared["request_id"].as_str().unwrap()).await;
    assert_eq!(mined["state"], "mined", "{mined}");
    assert_eq!(
        crate::funds::cast_balance(&rig.anvil.url, FRIEND, Some(TEST_DOLLAR)) - before,
        2_500_000
    );

    // Raw calldata of a known function reads as that function.
    let raw = format!(
        "0xa9059cbb000000000000000000000000{}{:064x}",
        FRIEND[2..].to_lowercase(),
        7u64
    );
    let prepared = ok(&call(
        &rig.client,
        "wallet_contract_call",
        json!({ "to": TEST_DOLLAR, "data": raw }),
    )
    .await)
    .clone();
    let review = prepared["review"].as_str().unwrap();
    assert!(
        review.contains("transfer(address to, uint256 amount) [ERC-20]"),
        "{review}"
    );

    // Calldata nobody can read: refused under the default policy, naming the rule.
    let result = call(
        &rig.client,
        "wallet_contract_call",
        json!({ "to": FRIEND, "data": "0xdeadbeef0102" }),
    )
    .await;
    let (kind, message) = tool_error(&result);
    assert_eq!(kind, "refused", "{message}");
    assert!(message.contains("blind signing"), "{message}");
    assert_eq!(
        result.structured_content.as_ref().unwrap()["error"]["refusal"]["rule"],
        "policy.blind_signing"
    );
    // An unlimited approval through a call is refused like wallet_approve_token's.
    let (kind, message) = tool_error(
        &call(
            &rig.client,
            "wallet_contract_call",
            json!({
                "to": TEST_DOLLAR,
                "function": "approve(address,uint256)",
                "args": [FRIEND, U256_MAX],
            }),
        )
        .await,
    );
    assert_eq!(kind, "refused", "{message}");
    assert!(message.contains("unlimited"), "{message}");
    for (arguments, expected) in [
        (json!({ "to": TEST_DOLLAR }), "function"),
        (
            json!({ "to": TEST_DOLLAR, "function": "transfer(address,uint256)", "data": "0x" }),
            "cannot be given together",
        ),
        (
            json!({ "to": TEST_DOLLAR, "function": "transfer(address,uint256)", "args": [FRIEND] }),
            "argument",
        ),
        (
            json!({ "to": TEST_DOLLAR, "function": "transfer(address,uint257)", "args": [] }),
            "uint257",
        ),
    ] {
        let (kind, message) =
            tool_error(&call(&rig.client, "wallet_contract_call", arguments).await);
        assert_eq!(kind, "invalid_argument", "{message}");
        assert!(message.contains(expected), "{message} lacks {expected:?}");
    }
}

const U256_MAX: &str =
    "115792089237316195423570985008687907853269984665640564039457584007913129639935";

async fn with_blind_signing_allowed_unreadable_calldata_carries_the_warning_and_needs_the_code(
    transport: Transport,
) {
    let Some(rig) = Rig::start_on(transport, "blind_signing = true").await else {
        return;
    };
    const FRIEND: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    let nonce = rig.nonce(MAIN);
    let prepared = ok(&call(
        &rig.client,
        "wallet_contract_call",
        json!({ "to": FRIEND, "data": "0xdeadbeef0102" }),
    )
    .await)
    .clone();
    assert_eq!(prepared["state"], "awaiting_approval");
    assert_eq!(prepared["warnings"][0]["severity"], "critical");
    let review = prepared["review"].as_str().unwrap();
    assert!(
        review.contains("UNKNOWN: selector 0xdeadbeef, 6 bytes"),
        "{review}"
    );
    assert!(review.contains("| deadbeef0102"), "{review}");
    assert!(review.contains("blind signing"), "{review}");
    let _ = approve(&prepared, Human::default()).await;
    let mined = rig.settle(prepared["request_id"].as_str().unwrap()).await;
    assert_eq!(mined["state"], "mined", "{mined}");
    assert_eq!(rig.nonce(MAIN), nonce + 1);
}

async fn a_permit_signed_through_keyward_is_accepted_by_the_token_and_sets_the_allowance(
    transport: Transport,
) {
    use crate::support::anvil::PERMIT_DOLLAR;
    let Some(rig) = Rig::start_on(transport, "").await else {
        return;
    };
    rig.anvil.deploy_permit_dollar();
    const SPENDER: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    let typed = permit_dollar_permit(SPENDER, "4200000");
    let prepared = ok(&call(
        &rig.client,
        "wallet_sign_typed_data",
        json!({ "typed_data": typed }),
    )
    .await)
    .clone();
    let review = prepared["review"].as_str().unwrap();
    for expected in [
        "Authorize spending of 4200000 base units of tokens on anvil",
        "chain id 31337 (anvil)",
        "value: 4200000",
        "spender: 0x7099 7970 C518 12dc 3A01 0C7d 01b5 0e0d 17dc 79C8",
    ] {
        assert!(review.contains(expected), "{expected:?} missing:\n{review}");
    }
    let _ = approve(&prepared, Human::default()).await;
    let signed = rig.settle(prepared["request_id"].as_str().unwrap()).await;
    assert_eq!(signed["state"], "signed", "{signed}");
    let signature = signed["signature"].as_str().unwrap();
    let bytes = hex::decode(&signature[2..]).unwrap();

    // The token checks the signature itself: cast submits it, and the allowance is the value.
    let cast = foundry_tool("cast").expect("cast is installed with anvil");
    let empty = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let output = std::process::Command::new(&cast)
            .current_dir(empty.path())
            .args(args)
            .args(["--rpc-url", &rig.anvil.url])
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    run(&[
        "send",
        "--private-key",
        // Anvil's published key 2 pays for the submission; the permit is main's.
        "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
        PERMIT_DOLLAR,
        "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)",
        MAIN,
        SPENDER,
        "4200000",
        "99999999999",
        &bytes[64].to_string(),
        &format!("0x{}", hex::encode(&bytes[..32])),
        &format!("0x{}", hex::encode(&bytes[32..64])),
    ]);
    let allowance = run(&[
        "call",
        PERMIT_DOLLAR,
        "allowance(address,address)(uint256)",
        MAIN,
        SPENDER,
    ]);
    assert_eq!(allowance.split_whitespace().next().unwrap(), "4200000");
}

fn permit2_single(amount: &str) -> Value {
    json!({
        "types": {
            "EIP712Domain": [
                { "name": "name", "type": "string" },
                { "name": "chainId", "type": "uint256" },
                { "name": "verifyingContract", "type": "address" }
            ],
            "PermitDetails": [
                { "name": "token", "type": "address" },
                { "name": "amount", "type": "uint160" },
                { "name": "expiration", "type": "uint48" },
                { "name": "nonce", "type": "uint48" }
            ],
            "PermitSingle": [
                { "name": "details", "type": "PermitDetails" },
                { "name": "spender", "type": "address" },
                { "name": "sigDeadline", "type": "uint256" }
            ]
        },
        "primaryType": "PermitSingle",
        "domain": { "name": "Permit2", "chainId": 31337, "verifyingContract": "0x000000000022D473030F116dDEE9F6B43aC78BA3" },
        "message": {
            "details": {
                "token": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                "amount": amount,
                "expiration": "1798761599",
                "nonce": "0"
            },
            "spender": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
            "sigDeadline": "1798761599"
        }
    })
}

/// Sends `typed` to wallet_sign_typed_data and checks the tool error is `kind`, naming `expected`.
async fn expect_typed_error(client: &Client, typed: Value, kind: &str, expected: &str) -> String {
    let (found, message) = tool_error(
        &call(
            client,
            "wallet_sign_typed_data",
            json!({ "typed_data": typed }),
        )
        .await,
    );
    assert_eq!(found, kind, "{message}");
    assert!(message.contains(expected), "{message} lacks {expected:?}");
    message
}

const UINT160_MAX: &str = "1461501637330902918203684832716283019655932542975";

async fn unlimited_permits_are_refused_by_default_and_bad_typed_data_gets_the_parsers_message(
    transport: Transport,
) {
    let Some(rig) = Rig::start_on(transport, "").await else {
        return;
    };
    let result = call(
        &rig.client,
        "wallet_sign_typed_data",
        json!({ "typed_data": permit2_single(UINT160_MAX) }),
    )
    .await;
    let (kind, message) = tool_error(&result);
    assert_eq!(kind, "refused", "{message}");
    assert!(message.contains("unlimited"), "{message}");
    assert_eq!(
        result.structured_content.as_ref().unwrap()["error"]["refusal"]["rule"],
        "policy.unlimited_approvals"
    );
    // A limited one is filed; as a string of JSON too.
    let prepared = ok(&call(
        &rig.client,
        "wallet_sign_typed_data",
        json!({ "typed_data": permit2_single("1000000").to_string() }),
    )
    .await)
    .clone();
    assert_eq!(prepared["state"], "awaiting_approval");
    assert!(
        prepared["review"]
            .as_str()
            .unwrap()
            .contains("amount: 1000000")
    );

    let mut float = permit2_single("1000000");
    float["message"]["sigDeadline"] = json!(5.0);
    let mut missing = permit2_single("1000000");
    missing["message"]["details"]
        .as_object_mut()
        .unwrap()
        .remove("nonce");
    for (typed, expected) in [
        (float, "sigDeadline"),
        (missing, "nonce"),
        (json!("not json"), "typed_data"),
        (json!(42), "object or a string"),
    ] {
        expect_typed_error(&rig.client, typed, "invalid_argument", expected).await;
    }

    // A limited permit for a configured token spends from its limits.
    let Some(limited) = Rig::start_on(
        transport,
        "[[policy.limits]]\nasset = \"TUSD\"\nper_transaction = \"0.5\"\n",
    )
    .await
    else {
        return;
    };
    expect_typed_error(
        &limited.client,
        permit2_single("1000000"),
        "refused",
        "TUSD",
    )
    .await;

    // Allowed by the policy: filed, with the critical warning, and still needs the human.
    let Some(rig) = Rig::start_on(transport, "unlimited_approvals = true").await else {
        return;
    };
    let prepared = ok(&call(
        &rig.client,
        "wallet_sign_typed_data",
        json!({ "typed_data": permit2_single(UINT160_MAX) }),
    )
    .await)
    .clone();
    assert_eq!(prepared["state"], "awaiting_approval");
    assert_eq!(prepared["warnings"][0]["severity"], "critical");
    assert!(
        prepared["warnings"][0]["text"]
            .as_str()
            .unwrap()
            .contains("UNLIMITED")
    );
    // A wrong code signs nothing; the right one signs, and the signature recovers to main.
    let url = prepared["approval_url"].as_str().unwrap().to_owned();
    let wrong = human(move || {
        let page = http("GET", &url, &[], None);
        let right = crate::support::human::code_at(crate::support::human::unix_now());
        let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
        Human::default().submit(&url, &page, &wrong, "approve")
    })
    .await;
    assert!(!wrong.body.contains("Approved"), "{}", wrong.body);
    let id = prepared["request_id"].as_str().unwrap();
    let status = ok(&call(
        &rig.client,
        "wallet_request_status",
        json!({ "request_id": id }),
    )
    .await)
    .clone();
    assert_eq!(status["state"], "awaiting_approval", "{status}");
    let _ = approve(&prepared, Human::default()).await;
    let signed = rig.settle(id).await;
    assert_eq!(signed["state"], "signed", "{signed}");
    let signature = signed["signature"].as_str().unwrap();
    assert!(cast_verifies_typed(
        MAIN,
        &permit2_single(UINT160_MAX),
        signature
    ));
    assert!(!cast_verifies_typed(MAIN, &permit2_single("1"), signature));
}

async fn oversized_or_deeply_nested_typed_data_is_refused_quickly_and_large_real_data_is_not(
    transport: Transport,
) {
    let Some(rig) = Rig::start_on(transport, "").await else {
        return;
    };
    // A megabyte: refused by size before anything reads it.
    let mut huge = permit2_single("1");
    huge["message"]["spender"] = json!("0x".to_owned() + &"a".repeat(1_000_000));
    // 64 levels: refused by the reader at the first level too deep.
    let deep = format!(
        r#"{{"types":{{"EIP712Domain":[]}},"primaryType":"EIP712Domain","domain":{{}},"message":{}{}}}"#,
        "[".repeat(60),
        "]".repeat(60)
    );
    for (typed, expected) in [
        (huge.clone(), "over 524288 bytes"),
        (json!(huge.to_string()), "over 524288 bytes"),
        (json!(deep), "nests deeper than 48 levels"),
    ] {
        let started = std::time::Instant::now();
        let message = expect_typed_error(&rig.client, typed, "invalid_argument", expected).await;
        println!("refused in {:?}: {message}", started.elapsed());
    }
    // Real typed data can be tens of kilobytes (a Seaport order with many items): 100 KB of
    // contents in a Mail is filed for review.
    let mail = json!({
        "types": {
            "EIP712Domain": [{ "name": "name", "type": "string" }, { "name": "chainId", "type": "uint256" }],
            "Mail": [{ "name": "contents", "type": "string" }]
        },
        "primaryType": "Mail",
        "domain": { "name": "Ether Mail", "chainId": 31337 },
        "message": { "contents": "a long letter. ".repeat(7_000) }
    });
    let prepared = ok(&call(
        &rig.client,
        "wallet_sign_typed_data",
        json!({ "typed_data": mail }),
    )
    .await)
    .clone();
    assert_eq!(prepared["state"], "awaiting_approval");
}

#[tokio::test]
async fn a_token_moved_by_a_contract_call_obeys_its_limits_and_the_recipient_rule() {
    use crate::support::anvil::TEST_DOLLAR;
    const STRANGER: &str = "0x000000000000000000000000000000000000dEaD";
    let Some(rig) = Rig::start(
        "recipients = \"address_book_only\"\n[[policy.limits]]\nasset = \"TUSD\"\nper_transaction = \"1\"\n",
    )
    .await
    else {
        return;
    };
    // The owner lists the token contract, as one does to call it under this rule.
    let mut add = crate::support::keyward_command();
    add.arg("--home")
        .arg(rig.state_dir())
        .args(["address-book", "add", "tusd", TEST_DOLLAR]);
    crate::support::run_detached(add).assert_success();
    for (arguments, kind, expected) in [
        // Over the TUSD limit, to one of the wallet's own accounts (always an allowed recipient).
        (
            json!({
                "to": TEST_DOLLAR,
                "function": "transfer(address,uint256)",
                "args": ["0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "2000000"],
            }),
            "refused",
            "TUSD",
        ),
        // To a stranger: the recipient rule sees through the call.
        (
            json!({
                "to": TEST_DOLLAR,
                "function": "approve(address,uint256)",
                "args": [STRANGER, "1"],
            }),
            "refused",
            "address book",
        ),
        // Two transfers in one multicall are held to the limit by their total (0.6 + 0.6).
        (
            json!({
                "to": TEST_DOLLAR,
                "function": "multicall(bytes[])",
                "args": [[
                    erc20_call("a9059cbb", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "600000"),
                    erc20_call("a9059cbb", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "600000"),
                ]],
            }),
            "refused",
            "1.2 TUSD",
        ),
        // An approval to a stranger inside a multicall, as raw calldata.
        (
            json!({
                "to": TEST_DOLLAR,
                "function": "multicall(bytes[])",
                "args": [[erc20_call("095ea7b3", STRANGER, "1")]],
            }),
            "refused",
            "address book",
        ),
        // An unlimited approval inside a multicall is still unlimited.
        (
            json!({
                "to": TEST_DOLLAR,
                "function": "multicall(bytes[])",
                "args": [[erc20_call(
                    "095ea7b3",
                    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                    &alloy::primitives::U256::MAX.to_string(),
                )]],
            }),
            "refused",
            "unlimited",
        ),
        // ETH with a token call is two movements: refused with a clear message.
        (
            json!({
                "to": TEST_DOLLAR,
                "value": "1",
                "function": "transfer(address,uint256)",
                "args": ["0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "1"],
            }),
            "invalid_argument",
            "its own request",
        ),
    ] {
        let (found, message) =
            tool_error(&call(&rig.client, "wallet_contract_call", arguments).await);
        assert_eq!(found, kind, "{message}");
        assert!(message.contains(expected), "{message} lacks {expected:?}");
    }
}

#[tokio::test]
async fn permits_are_held_to_the_limits_by_their_total_and_the_spender_to_the_recipient_rule() {
    const STRANGER: &str = "0x000000000000000000000000000000000000dEaD";
    let Some(rig) = Rig::start(
        "recipients = \"address_book_only\"\n[[policy.limits]]\nasset = \"TUSD\"\nper_transaction = \"1\"\n",
    )
    .await
    else {
        return;
    };
    // A Permit2 batch granting 0.6 TUSD twice is 1.2 TUSD of spending power.
    let mut batch = permit2_single("600000");
    let details = batch["message"]["details"].clone();
    batch["types"]["PermitBatch"] = json!([
        { "name": "details", "type": "PermitDetails[]" },
        { "name": "spender", "type": "address" },
        { "name": "sigDeadline", "type": "uint256" }
    ]);
    batch["types"]
        .as_object_mut()
        .unwrap()
        .remove("PermitSingle");
    batch["primaryType"] = json!("PermitBatch");
    batch["message"]["details"] = json!([details.clone(), details]);
    let mut stranger = permit2_single("1");
    stranger["message"]["spender"] = json!(STRANGER);
    for (typed, expected) in [(batch.clone(), "1.2 TUSD"), (stranger, "address book")] {
        expect_typed_error(&rig.client, typed, "refused", expected).await;
    }
    // Half as much in each grant fits; the spender is one of the wallet's own accounts.
    batch["message"]["details"][0]["amount"] = json!("300000");
    batch["message"]["details"][1]["amount"] = json!("300000");
    let prepared = ok(&call(
        &rig.client,
        "wallet_sign_typed_data",
        json!({ "typed_data": batch }),
    )
    .await)
    .clone();
    assert_eq!(prepared["state"], "awaiting_approval", "{prepared}");
}

/// ERC-20 calldata: a 4-byte selector (hex), an address and an amount.
fn erc20_call(selector: &str, party: &str, amount: &str) -> String {
    let amount: alloy::primitives::U256 = amount.parse().unwrap();
    format!(
        "0x{selector}{:0>64}{amount:064x}",
        party[2..].to_lowercase()
    )
}

/// An EIP-2612 Permit from main for PermitDollar on Anvil, with nonce 0.
fn permit_dollar_permit(spender: &str, value: &str) -> Value {
    json!({
        "types": {
            "EIP712Domain": [
                { "name": "name", "type": "string" },
                { "name": "version", "type": "string" },
                { "name": "chainId", "type": "uint256" },
                { "name": "verifyingContract", "type": "address" }
            ],
            "Permit": [
                { "name": "owner", "type": "address" },
                { "name": "spender", "type": "address" },
                { "name": "value", "type": "uint256" },
                { "name": "nonce", "type": "uint256" },
                { "name": "deadline", "type": "uint256" }
            ]
        },
        "primaryType": "Permit",
        "domain": {
            "name": "Permit Dollar",
            "version": "1",
            "chainId": 31337,
            "verifyingContract": crate::support::anvil::PERMIT_DOLLAR
        },
        "message": { "owner": MAIN, "spender": spender, "value": value, "nonce": 0, "deadline": "99999999999" }
    })
}

over_each_transport!(
    a_message_is_signed_only_after_the_human_reads_it_and_cast_verifies_the_signature,
    a_hash_to_sign_is_blind_signing_refused_by_default_and_bad_messages_get_clear_errors,
    contract_calls_run_as_reviewed_and_unreadable_calldata_is_blind_signing,
    with_blind_signing_allowed_unreadable_calldata_carries_the_warning_and_needs_the_code,
    a_permit_signed_through_keyward_is_accepted_by_the_token_and_sets_the_allowance,
    unlimited_permits_are_refused_by_default_and_bad_typed_data_gets_the_parsers_message,
    oversized_or_deeply_nested_typed_data_is_refused_quickly_and_large_real_data_is_not,
);
