//! Golden snapshots of every review class, in `fixtures/reviews/`. A changed review shows in the
//! diff; accept it with `KEYWARD_BLESS=1`.

use std::path::PathBuf;

use alloy::primitives::{Address, U256, address};

use super::*;
use crate::chain::erc20;
use crate::signer;

const MAIN: Address = address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
const FRIEND: Address = address!("70997970C51812dc3A010C7d01b50e0d17dc79C8");
/// Same first and last four hex digits as FRIEND.
const IMPOSTOR: Address = address!("7099000000000000000000000000000000dc79C8");
const TUSD: Address = address!("5FbDB2315678afecb367f032d93F642f64180aa3");
const ETHER: u128 = 1_000_000_000_000_000_000;

fn tusd() -> TokenView {
    TokenView {
        address: TUSD,
        symbol: UntrustedText::new("TUSD"),
        decimals: 6,
        verified: true,
    }
}

fn tx(to: Address, value: U256, input: Vec<u8>, gas_limit: u64) -> UnsignedTx {
    UnsignedTx {
        chain_id: 31337,
        nonce: 7,
        max_priority_fee_per_gas: 1_000_000_000,
        max_fee_per_gas: 2_750_000_000,
        gas_limit,
        to,
        value,
        input,
    }
}

fn facts() -> Facts {
    Facts {
        from_label: "main".into(),
        counterparty_name: Some("friend".into()),
        counterparty_is_contract: false,
        first_time: false,
        look_alike: None,
        simulation: Simulation::Succeeds,
        eth_balance: U256::from(10_000 * ETHER),
        token_balance: Some(U256::from(5_000_000_000u64)),
    }
}

fn eth_transfer(to: Address, facts: &Facts) -> Review {
    let tx = tx(to, U256::from(3 * ETHER / 2), Vec::new(), 21_000);
    build(&ReviewInput {
        network: "anvil",
        tx: &tx,
        from: MAIN,
        action: &Action::EthTransfer,
        facts,
    })
}

fn token_transfer(amount: u64, facts: &Facts) -> Review {
    let amount = U256::from(amount);
    let tx = tx(TUSD, U256::ZERO, erc20::transfer(FRIEND, amount), 52_000);
    build(&ReviewInput {
        network: "anvil",
        tx: &tx,
        from: MAIN,
        action: &Action::TokenTransfer {
            token: tusd(),
            recipient: FRIEND,
            amount,
        },
        facts,
    })
}

fn approval(allowance: Allowance, facts: &Facts) -> Review {
    let tx = tx(
        TUSD,
        U256::ZERO,
        erc20::approve(FRIEND, allowance.amount()),
        48_000,
    );
    build(&ReviewInput {
        network: "anvil",
        tx: &tx,
        from: MAIN,
        action: &Action::TokenApproval {
            token: tusd(),
            spender: FRIEND,
            allowance,
        },
        facts,
    })
}

/// Compares the review as a human reads it (its text, then any contract text apart) with its
/// golden file.
fn check(name: &str, review: &Review) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/reviews")
        .join(format!("{name}.txt"));
    if std::env::var_os("KEYWARD_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, review.for_human()).unwrap();
        return;
    }
    let golden = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "{} is missing: run with KEYWARD_BLESS=1 to create it",
            path.display()
        )
    });
    assert_eq!(
        review.for_human(),
        golden,
        "the {name} review changed; if that is intended, rerun with KEYWARD_BLESS=1 and review \
         the diff of {}",
        path.display()
    );
}

#[test]
fn eth_transfer_review() {
    let review = eth_transfer(FRIEND, &facts());
    check("eth-transfer", &review);
    assert!(review.text.contains("1.5 ETH"));
    assert!(review.text.contains("1500000000000000000 wei"));
    assert!(
        review
            .text
            .contains("0x7099 7970 C518 12dc 3A01 0C7d 01b5 0e0d 17dc 79C8")
    );
    assert!(review.text.contains("anvil, chain id 31337"));
    assert!(review.refusal().is_none());
}

#[test]
fn erc20_transfer_review() {
    let review = token_transfer(250_000_000, &facts());
    check("erc20-transfer", &review);
    assert!(review.text.contains("250 TUSD"));
    assert!(review.refusal().is_none());
}

#[test]
fn limited_approval_review() {
    let review = approval(Allowance::Limited(U256::from(100_000_000u64)), &facts());
    check("approval-limited", &review);
    assert!(review.text.contains("100 TUSD"));
    assert!(!review.text.contains("UNLIMITED"));
}

#[test]
fn unlimited_approval_review() {
    let review = approval(Allowance::Unlimited, &facts());
    check("approval-unlimited", &review);
    assert!(review.title.contains("UNLIMITED"));
    assert_eq!(review.warnings[0].severity, Severity::Critical);
}

#[test]
fn revoke_review() {
    let review = approval(Allowance::Limited(U256::ZERO), &facts());
    check("revoke", &review);
    assert!(review.title.starts_with("Revoke"));
}

#[test]
fn contract_recipient_review() {
    let facts = Facts {
        counterparty_is_contract: true,
        counterparty_name: None,
        ..facts()
    };
    let review = eth_transfer(TUSD, &facts);
    check("to-contract", &review);
    assert!(review.text.contains("a contract"));
    assert!(review.warnings.iter().any(|w| w.severity == Severity::Warn));
}

#[test]
fn first_time_recipient_review() {
    let facts = Facts {
        first_time: true,
        counterparty_name: None,
        ..facts()
    };
    let review = eth_transfer(FRIEND, &facts);
    check("first-time-recipient", &review);
    assert!(review.text.contains("never used by this wallet before"));
}

#[test]
fn look_alike_review() {
    assert!(looks_alike(IMPOSTOR, FRIEND));
    assert!(!looks_alike(FRIEND, FRIEND));
    let facts = Facts {
        first_time: true,
        counterparty_name: None,
        look_alike: Some(("friend".into(), FRIEND)),
        ..facts()
    };
    let review = eth_transfer(IMPOSTOR, &facts);
    check("look-alike", &review);
    assert_eq!(review.warnings[0].severity, Severity::Critical);
    assert!(review.warnings[0].text.contains("looks like \"friend\""));
}

#[test]
fn zero_address_is_refused() {
    let facts = Facts {
        counterparty_name: None,
        ..facts()
    };
    let review = eth_transfer(Address::ZERO, &facts);
    check("zero-address", &review);
    assert!(review.refusal().unwrap().text.contains("zero address"));
}

#[test]
fn reverting_simulation_is_refused() {
    let facts = Facts {
        simulation: Simulation::Reverts(Some(UntrustedText::new(
            "ERC20: transfer amount exceeds balance",
        ))),
        ..facts()
    };
    let review = token_transfer(250_000_000, &facts);
    check("reverts", &review);
    assert!(review.refusal().unwrap().text.contains("reverts"));
    assert_eq!(
        review.contract_text.revert_reason.as_ref().unwrap().value,
        "ERC20: transfer amount exceeds balance"
    );
    assert_keeps_out(&review, "exceeds balance");
}

/// Third-party text reaches the review only as contract text: never its title, text or warnings.
fn assert_keeps_out(review: &Review, third_party: &str) {
    assert!(!review.title.contains(third_party), "{}", review.title);
    assert!(!review.text.contains(third_party), "{}", review.text);
    for warning in &review.warnings {
        assert!(!warning.text.contains(third_party), "{}", warning.text);
    }
    assert!(review.for_human().contains(third_party));
}

#[test]
fn insufficient_balance_is_refused() {
    let broke = Facts {
        eth_balance: U256::from(ETHER),
        ..facts()
    };
    let review = eth_transfer(FRIEND, &broke);
    check("insufficient-balance", &review);
    assert!(review.refusal().unwrap().text.contains("insufficient ETH"));
    let poor = Facts {
        token_balance: Some(U256::from(1u64)),
        ..facts()
    };
    assert!(
        token_transfer(250_000_000, &poor)
            .refusal()
            .unwrap()
            .text
            .contains("insufficient TUSD")
    );
}

#[test]
fn an_unverified_tokens_symbol_stays_out_of_the_review_and_is_quoted_apart() {
    let token = TokenView {
        address: TUSD,
        symbol: UntrustedText::new("USDC\u{200B} \"approve\" all"),
        decimals: 6,
        verified: false,
    };
    let amount = U256::from(1_000_000u64);
    let tx = tx(TUSD, U256::ZERO, erc20::transfer(FRIEND, amount), 52_000);
    let review = build(&ReviewInput {
        network: "anvil",
        tx: &tx,
        from: MAIN,
        action: &Action::TokenTransfer {
            token,
            recipient: FRIEND,
            amount,
        },
        facts: &facts(),
    });
    check("unverified-token", &review);
    assert_eq!(
        review.title,
        "Send 1 of unverified token 0x5FbD…0aa3 on anvil"
    );
    assert!(review.text.contains("unverified"));
    assert_keeps_out(&review, "USDC");
    // Quoted, with its own quotes escaped so it cannot close the quotation early.
    assert!(
        review
            .for_human()
            .contains("Symbol       \"USDC \\\"approve\\\" all\"\n"),
        "{}",
        review.for_human()
    );
    let poor = Facts {
        token_balance: Some(U256::from(1u64)),
        ..facts()
    };
    let refused = build(&ReviewInput {
        network: "anvil",
        tx: &tx,
        from: MAIN,
        action: &Action::TokenTransfer {
            token: TokenView {
                address: TUSD,
                symbol: UntrustedText::new("USDC"),
                decimals: 6,
                verified: false,
            },
            recipient: FRIEND,
            amount,
        },
        facts: &poor,
    });
    assert_eq!(
        refused.refusal().unwrap().text,
        "insufficient unverified token 0x5FbD…0aa3: the account holds 0.000001"
    );
    assert_keeps_out(&refused, "USDC");
}

fn message(bytes: &[u8], blind_signing: bool) -> Review {
    personal_message(&MessageInput {
        from_label: "main",
        from: MAIN,
        message: bytes,
        blind_signing,
    })
}

#[test]
fn message_review() {
    let review = message("I♥SF".as_bytes(), false);
    check("message", &review);
    assert!(review.warnings.is_empty());
    assert!(review.text.contains("| I♥SF\n"), "{}", review.text);
    assert!(
        review
            .text
            .contains(&signer::message::personal_hash("I♥SF".as_bytes()).to_string())
    );
}

#[test]
fn a_message_with_hidden_characters_shows_them_escaped() {
    let review = message(
        "Log in to example.org\nnonce: 42\u{202e}evil".as_bytes(),
        false,
    );
    check("message_hidden_characters", &review);
    assert!(
        review.text.contains("| nonce: 42\\u{202e}evil"),
        "{}",
        review.text
    );
    assert_eq!(review.warnings[0].severity, Severity::Warn);
    assert!(review.refusal().is_none());
}

#[test]
fn a_32_byte_message_is_blind_signing_and_refused_unless_allowed() {
    let hash = [0xab; 32];
    let refused = message(&hash, false);
    check("message_blind", &refused);
    assert_eq!(refused.warnings[0].severity, Severity::Critical);
    assert!(refused.refusal().is_some());
    let allowed = message(&hash, true);
    assert_eq!(allowed.warnings[0].severity, Severity::Critical);
    assert!(allowed.refusal().is_none());
}

fn contract_call(to: Address, input: Vec<u8>, blind_signing: bool) -> Review {
    let tx = tx(to, U256::ZERO, input.clone(), 90_000);
    let facts = Facts {
        counterparty_name: None,
        counterparty_is_contract: true,
        ..facts()
    };
    build(&ReviewInput {
        network: "anvil",
        tx: &tx,
        from: MAIN,
        action: &Action::ContractCall {
            reading: CallReading::Known(crate::abi::decode_known(&input)),
            blind_signing,
        },
        facts: &facts,
    })
}

fn encode(signature: &str, args: serde_json::Value) -> Vec<u8> {
    crate::abi::Function::parse(signature)
        .unwrap()
        .encode(&args)
        .unwrap()
}

#[test]
fn set_approval_for_all_review() {
    let input = encode(
        "setApprovalForAll(address,bool)",
        serde_json::json!([FRIEND.to_string(), true]),
    );
    let review = contract_call(TUSD, input, false);
    check("set_approval_for_all", &review);
    assert!(
        review.text.contains("[ERC-721, ERC-1155]"),
        "{}",
        review.text
    );
    assert!(review.warnings.iter().any(|w| w.text.contains("UNLIMITED")));
}

#[test]
fn multicall_review() {
    let transfer = encode(
        "transfer(address,uint256)",
        serde_json::json!([FRIEND.to_string(), "1000"]),
    );
    let input = encode(
        "multicall(bytes[])",
        serde_json::json!([[format!("0x{}", hex::encode(&transfer)), "0xdeadbeef"]]),
    );
    let review = contract_call(TUSD, input, false);
    check("multicall", &review);
    assert!(review.text.contains("inner call 1:"), "{}", review.text);
    assert!(review.text.contains("inner call 2:"), "{}", review.text);
    assert!(
        review.warnings[0]
            .text
            .contains("cannot decode inner call 2,"),
        "the blind-signing warning names the call it cannot read: {}",
        review.warnings[0].text
    );
}

#[test]
fn calls_inside_a_multicall_count_as_the_calls_they_are() {
    let approve = |amount: &str| {
        encode(
            "approve(address,uint256)",
            serde_json::json!([FRIEND.to_string(), amount]),
        )
    };
    let transfer = encode(
        "transfer(address,uint256)",
        serde_json::json!([FRIEND.to_string(), "7"]),
    );
    let multicall = |calls: &[&[u8]]| {
        let data: Vec<String> = calls
            .iter()
            .map(|call| format!("0x{}", hex::encode(call)))
            .collect();
        encode("multicall(bytes[])", serde_json::json!([data]))
    };
    let read = |input: &[u8]| CallReading::Known(crate::abi::decode_known(input));

    // An unlimited approval hidden in a multicall, or in a multicall inside one, is unlimited.
    let max = U256::MAX.to_string();
    let hidden = multicall(&[&transfer, &approve(&max)]);
    assert!(read(&hidden).grants_unlimited());
    assert!(read(&multicall(&[&hidden])).grants_unlimited());
    assert!(!read(&multicall(&[&transfer, &approve("5")])).grants_unlimited());
    let review = contract_call(TUSD, hidden.clone(), false);
    assert!(review.warnings.iter().any(|w| w.text.contains("UNLIMITED")));

    // Every transfer and approval the token runs for the sender counts, in order.
    assert_eq!(
        read(&multicall(&[&transfer, &approve("5")])).token_movements(),
        vec![(FRIEND, U256::from(7)), (FRIEND, U256::from(5))]
    );
    // A Safe transaction's inner call runs from the Safe, not from this account.
    let zero = Address::ZERO.to_string();
    let safe = encode(
        "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)",
        serde_json::json!([
            TUSD.to_string(),
            "0",
            format!("0x{}", hex::encode(&transfer)),
            "0",
            "0",
            "0",
            "0",
            zero,
            zero,
            "0x"
        ]),
    );
    assert!(read(&safe).token_movements().is_empty());
}

#[test]
fn unknown_calldata_review() {
    let review = contract_call(TUSD, alloy::hex!("deadbeef0102").to_vec(), true);
    check("unknown_calldata", &review);
    assert_eq!(review.warnings[0].severity, Severity::Critical);
    assert!(review.refusal().is_none(), "blind signing is allowed here");
    let refused = contract_call(TUSD, alloy::hex!("deadbeef0102").to_vec(), false);
    assert!(refused.refusal().is_some());
}

#[test]
fn safe_delegatecall_review() {
    let zero = Address::ZERO.to_string();
    let input = encode(
        "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)",
        serde_json::json!([
            FRIEND.to_string(),
            "0",
            "0x",
            "1",
            "0",
            "0",
            "0",
            zero,
            zero,
            "0x"
        ]),
    );
    let review = contract_call(TUSD, input, false);
    check("safe_delegatecall", &review);
    assert!(
        review
            .warnings
            .iter()
            .any(|w| w.severity == Severity::Critical && w.text.contains("delegatecall"))
    );
}

/// EIP-712's Mail example (ethereum/EIPs assets/eip-712/Example.js), typed in.
const MAIL: &str = r#"{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],"Person":[{"name":"name","type":"string"},{"name":"wallet","type":"address"}],"Mail":[{"name":"from","type":"Person"},{"name":"to","type":"Person"},{"name":"contents","type":"string"}]},"primaryType":"Mail","domain":{"name":"Ether Mail","version":"1","chainId":1,"verifyingContract":"0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},"message":{"from":{"name":"Cow","wallet":"0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},"to":{"name":"Bob","wallet":"0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},"contents":"Hello, Bob!"}}"#;

#[test]
fn mail_review() {
    let data = crate::eip712::parse(MAIL).unwrap();
    // On mainnet, as the example is: no chain warning, only the unknown contract.
    let review = typed_data(&TypedInput {
        from_label: "main",
        from: MAIN,
        data: &data,
        network: "mainnet",
        chain_id: 1,
        contract_name: None,
        tokens: &[],
    });
    check("mail", &review);
    for hash in [
        "0xf2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f",
        "0xc52c0ee5d84264471806290a3f2c4cecfc5490626bf912d01f240d7a274b371e",
        "0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2",
    ] {
        assert!(
            review.text.contains(hash),
            "{hash} missing:\n{}",
            review.text
        );
    }
    assert_eq!(review.warnings.len(), 1, "{:?}", review.warnings);

    // The same data asked for on anvil: the domain names another chain.
    let review = typed_data(&TypedInput {
        from_label: "main",
        from: MAIN,
        data: &data,
        network: "anvil",
        chain_id: 31337,
        contract_name: None,
        tokens: &[],
    });
    assert_eq!(review.warnings[0].severity, Severity::Critical);
    assert!(review.warnings[0].text.contains("another chain"));
}

fn typed_review(json: &serde_json::Value) -> Review {
    let data = crate::eip712::parse(&json.to_string()).unwrap();
    typed_data(&TypedInput {
        from_label: "main",
        from: MAIN,
        data: &data,
        network: "anvil",
        chain_id: 31337,
        contract_name: Some("the token TUSD (in keyward's configuration)".into()),
        tokens: &[(TUSD, "TUSD".to_owned(), 6)],
    })
}

#[test]
fn permit_review() {
    let review = typed_review(&serde_json::json!({
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
        "domain": { "name": "Test Dollar", "version": "1", "chainId": 31337, "verifyingContract": TUSD.to_string() },
        "message": { "owner": MAIN.to_string(), "spender": FRIEND.to_string(), "value": "115792089237316195423570985008687907853269984665640564039457584007913129639935", "nonce": 0, "deadline": "1798761599" }
    }));
    check("permit_unlimited", &review);
    let limited = crate::eip712::parse(
        &serde_json::json!({
            "types": {
                "EIP712Domain": [{ "name": "name", "type": "string" }],
                "Permit": [{ "name": "value", "type": "uint256" }]
            },
            "primaryType": "Permit",
            "domain": { "name": "x" },
            "message": { "value": "1" }
        })
        .to_string(),
    )
    .unwrap();
    assert!(!grants_unlimited(&limited));
    assert_eq!(review.warnings[0].severity, Severity::Critical);
}

#[test]
fn permit2_batch_review() {
    let details = |token: Address, amount: &str| serde_json::json!({ "token": token.to_string(), "amount": amount, "expiration": "1798761599", "nonce": "0" });
    let review = typed_review(&serde_json::json!({
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
            "PermitBatch": [
                { "name": "details", "type": "PermitDetails[]" },
                { "name": "spender", "type": "address" },
                { "name": "sigDeadline", "type": "uint256" }
            ]
        },
        "primaryType": "PermitBatch",
        "domain": { "name": "Permit2", "chainId": 31337, "verifyingContract": TUSD.to_string() },
        "message": {
            "details": [details(TUSD, "1000000"), details(FRIEND, "1461501637330902918203684832716283019655932542975")],
            "spender": FRIEND.to_string(),
            "sigDeadline": "1798761599"
        }
    }));
    check("permit2_batch_unlimited", &review);
    assert!(
        review.text.contains("details: PermitDetails[] (2 items)"),
        "{}",
        review.text
    );
    assert!(review.warnings.iter().any(|w| w.text.contains("UNLIMITED")));
}

#[test]
fn times_are_shown_as_utc_dates() {
    assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
    assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
    assert_eq!(utc(1_795_300_877), "2026-11-21 22:41:17 UTC");
    assert_eq!(utc(4_102_444_799), "2099-12-31 23:59:59 UTC");
}

#[test]
fn permit2_single_review() {
    let review = typed_review(&serde_json::json!({
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
        "domain": { "name": "Permit2", "chainId": 31337, "verifyingContract": TUSD.to_string() },
        "message": {
            "details": {
                "token": TUSD.to_string(),
                "amount": "1461501637330902918203684832716283019655932542975",
                "expiration": "1798761599",
                "nonce": "0"
            },
            "spender": FRIEND.to_string(),
            "sigDeadline": "1796083199"
        }
    }));
    check("permit2_single_unlimited", &review);
    for expected in [
        "Authorize spending of UNLIMITED TUSD on anvil",
        "to spend UNLIMITED TUSD",
        "0x7099 7970 C518 12dc 3A01 0C7d 01b5 0e0d 17dc 79C8",
        "of the token 0x5FbD B231 5678 afec b367 f032 d93F 642f 6418 0aa3",
        "until 2026-12-31 23:59:59 UTC",
    ] {
        assert!(
            review.text.contains(expected),
            "{expected:?} missing:\n{}",
            review.text
        );
    }
}
