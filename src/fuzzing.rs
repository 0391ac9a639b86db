//! One entry point per decoder that reads bytes from outside, for the fuzz targets in `fuzz/` and
//! for the integration test that replays their committed corpus (`tests/fuzz_corpus.rs`).
//!
//! Each function takes arbitrary bytes, runs them through the same code the server runs, and
//! panics when an invariant breaks: a decoder panicked, an accepted input does not re-encode to
//! the same bytes, a hash disagrees with its definition, or a refusal's message is empty or too
//! long to show. A plain refusal of bad input is not a failure. The Ledger reply parsers have
//! their own entry point in `keyward_hardware::fuzzing`.
//!
//! This module is not part of keyward's interface. It must never print, log or write anything:
//! it only asserts.

use alloy::primitives::{Address, U256, keccak256};
use keyward_hardware::fuzzing::check_message;
use serde_json::Value;

use crate::abi::{self, Decoded, Function};
use crate::chain::tx::{self, UnsignedTx};
use crate::config::Config;
use crate::confirm::page;
use crate::eip712;
use crate::keystore::{Keystore, Vault, vault};
use crate::mcp::args::Arguments;
use crate::review::{self, Action, CallReading, Facts, ReviewInput, Simulation, TypedInput};
use crate::secret::Secret;

/// The password the fuzzer's keystores and vaults are sealed with (the seed corpus uses it too).
pub const PASSWORD: &str = "fuzz";
/// The most KDF work (scrypt `n * r * p`, or PBKDF2 rounds) the fuzzer runs per input. Anything
/// dearer is parsed but not decrypted: at keyward's limits one input would take seconds.
pub const MAX_FUZZ_KDF_COST: u64 = 1 << 12;
/// The CSRF token the form target's request carries.
pub const CSRF: &str = "Zm9yIHRoZSBmdXp6ZXIgb25seQ";

/// A fuzz target's entry point.
pub type Target = fn(&[u8]);

/// Every fuzz target by name (as `fuzz/fuzz_targets/` names them) with its entry point.
pub const TARGETS: &[(&str, Target)] = &[
    ("keystore", keystore),
    ("eip712", eip712),
    ("calldata", calldata),
    ("transaction", transaction),
    ("apdu", keyward_hardware::fuzzing::apdu),
    ("arguments", arguments),
    ("config", config),
    ("form", form),
];

/// Keystore files, the vault file and the vault's decrypted payload.
///
/// Input starting with `KWV1` (the payload's magic) is read as a decrypted vault payload, the way
/// unlock reads it after the MAC matched: a fuzzer cannot forge a MAC, so this is the only way
/// to reach that reader. Anything else is parsed as a v3 keystore and as a vault; when one
/// parses and its KDF costs at most [`MAX_FUZZ_KDF_COST`], it is decrypted with [`PASSWORD`].
pub fn keystore(data: &[u8]) {
    if data.starts_with(b"KWV1") {
        if let Err(err) = vault::read_payload(data) {
            check_message("vault payload", &err.to_string());
        }
        return;
    }
    let password = Secret::new(PASSWORD.to_owned());
    match Keystore::parse(data) {
        Ok(keystore) => {
            if keystore.kdf_cost() <= MAX_FUZZ_KDF_COST {
                match keystore.decrypt(&password) {
                    Ok(key) => {
                        if let Some(stated) = keystore.stated_address() {
                            assert_eq!(
                                stated,
                                key.address(),
                                "a keystore decrypted to a key that is not its address"
                            );
                        }
                    }
                    Err(err) => check_message("keystore decrypt", &err.to_string()),
                }
            }
        }
        Err(err) => check_message("keystore parse", &err.to_string()),
    }
    match Vault::parse(data) {
        Ok(vault) => {
            assert!(
                !vault.accounts().is_empty(),
                "a vault parsed with no account"
            );
            if vault.kdf_cost() <= MAX_FUZZ_KDF_COST {
                match vault.unlock(&password) {
                    Ok(unlocked) => assert_eq!(unlocked.accounts(), vault.accounts()),
                    Err(err) => check_message("vault unlock", &err.to_string()),
                }
            }
        }
        Err(err) => check_message("vault parse", &err.to_string()),
    }
}

/// EIP-712 typed data: the parser, the three hashes and the review a human reads.
pub fn eip712(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let typed = match eip712::parse(text) {
        Ok(typed) => typed,
        Err(err) => {
            check_message("eip712", &err.to_string());
            return;
        }
    };
    // The signing hash is its definition: keccak256(0x19 0x01 ‖ domainSeparator [‖ hashStruct]).
    let mut preimage = vec![0x19, 0x01];
    preimage.extend_from_slice(typed.domain_separator().as_slice());
    match typed.message_hash() {
        Some(hash) => preimage.extend_from_slice(hash.as_slice()),
        None => assert_eq!(typed.primary_type(), "EIP712Domain"),
    }
    assert_eq!(typed.signing_hash(), keccak256(&preimage));
    // Parsing is a function of the text.
    let again = eip712::parse(text).map(|again| again.signing_hash());
    assert_eq!(again, Ok(typed.signing_hash()));

    let review = review::typed_data(&TypedInput {
        from_label: "main",
        from: Address::repeat_byte(0x11),
        data: &typed,
        network: "anvil",
        chain_id: 31337,
        contract_name: None,
        tokens: &[],
    });
    assert!(!review.title.is_empty() && !review.text.is_empty());
    let shown = review.for_human();
    assert!(
        shown.contains(&typed.signing_hash().to_string()),
        "the review does not show the signing hash"
    );
    let _ = review::authorization(&typed);
    let _ = review::grants_unlimited(&typed);
}

/// Calldata: the registry decoder behind reviews of raw calldata, and strict decoding against a
/// signature. The first byte chooses: even, `data[1..]` is raw calldata for the registry; odd,
/// `data[1..]` is a signature, a newline, then calldata to decode against it, which must then
/// re-encode to the same bytes (decoding accepts only the canonical encoding).
pub fn calldata(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let decoded = abi::decode_known(rest);
        match &decoded {
            Decoded::Known(known) => {
                assert_eq!(known.call.selector.as_slice(), &rest[..4]);
                let function = Function::parse(&known.call.signature)
                    .unwrap_or_else(|err| panic!("a registry signature does not parse: {err}"));
                let again = function.encode(&known.call.arguments_json());
                assert_eq!(
                    again.as_deref(),
                    Ok(rest),
                    "a known call does not re-encode to its calldata"
                );
            }
            Decoded::Malformed { error, .. } => check_message("calldata", &error.to_string()),
            Decoded::TooDeep { .. } | Decoded::Unknown { .. } => {}
        }
        render_call(CallReading::Known(decoded), rest);
        return;
    }
    let Some(newline) = rest.iter().position(|&b| b == b'\n') else {
        return;
    };
    let Ok(signature) = std::str::from_utf8(&rest[..newline]) else {
        return;
    };
    let calldata = &rest[newline + 1..];
    let function = match Function::parse(signature) {
        Ok(function) => function,
        Err(err) => {
            check_message("signature", &err.to_string());
            return;
        }
    };
    match function.decode(calldata) {
        Ok(call) => {
            let again = function.encode(&call.arguments_json());
            assert_eq!(
                again.as_deref(),
                Ok(calldata),
                "decoded calldata does not re-encode to the same bytes"
            );
            render_call(CallReading::Given(call), calldata);
        }
        Err(err) => check_message("calldata", &err.to_string()),
    }
}

/// The review of a contract call carrying `input`, as the approval page shows it.
fn render_call(reading: CallReading, input: &[u8]) {
    let tx = UnsignedTx {
        chain_id: 31337,
        nonce: 7,
        max_priority_fee_per_gas: 1_000_000_000,
        max_fee_per_gas: 30_000_000_000,
        gas_limit: 100_000,
        to: Address::repeat_byte(0x22),
        value: U256::ZERO,
        input: input.to_vec(),
    };
    let facts = Facts {
        from_label: "main".to_owned(),
        counterparty_name: None,
        counterparty_is_contract: true,
        first_time: false,
        look_alike: None,
        simulation: Simulation::Succeeds,
        eth_balance: U256::from(10u8).pow(U256::from(18u8)),
        token_balance: None,
    };
    let action = Action::ContractCall {
        reading,
        blind_signing: false,
    };
    let review = review::build(&ReviewInput {
        network: "anvil",
        tx: &tx,
        from: Address::repeat_byte(0x11),
        action: &action,
        facts: &facts,
    });
    assert!(!review.title.is_empty() && !review.text.is_empty());
    let _ = review.for_human();
}

/// EIP-1559 transactions: the unsigned signing payload and the signed raw form. Whatever either
/// decoder accepts re-encodes to exactly the same bytes.
pub fn transaction(data: &[u8]) {
    match UnsignedTx::decode_payload(data) {
        Ok(tx) => assert_eq!(
            tx.signing_payload(),
            data,
            "an accepted payload re-encodes differently"
        ),
        Err(err) => check_message("payload", &err.to_string()),
    }
    match tx::decode_signed(data) {
        Ok((tx, signature)) => {
            assert_eq!(
                tx.encode_signed(&signature),
                data,
                "an accepted raw transaction re-encodes differently"
            );
        }
        Err(err) => check_message("raw transaction", &err.to_string()),
    }
}

/// Every tool's argument names, as `tools/list` declares them.
const TOOL_ARGUMENTS: &[&[&str]] = &[
    crate::mcp::tools::ACCOUNTS_ARGS,
    crate::mcp::tools::BALANCES_ARGS,
    crate::mcp::tools::TOKEN_INFO_ARGS,
    crate::mcp::tools::CHAIN_INFO_ARGS,
    crate::mcp::tools::TRANSACTION_STATUS_ARGS,
    crate::mcp::tools::TRANSFER_ARGS,
    crate::mcp::tools::APPROVE_ARGS,
    crate::mcp::tools::REVOKE_ARGS,
    crate::mcp::tools::SIGN_MESSAGE_ARGS,
    crate::mcp::tools::SIGN_TYPED_DATA_ARGS,
    crate::mcp::tools::CONTRACT_CALL_ARGS,
    crate::mcp::tools::REQUEST_STATUS_ARGS,
];

/// Tool arguments: the first byte picks a tool, the rest is the JSON arguments object. They are
/// checked against the tool's names, then every reader runs on every argument.
pub fn arguments(data: &[u8]) {
    let Some((&tool, json)) = data.split_first() else {
        return;
    };
    let allowed = TOOL_ARGUMENTS[usize::from(tool) % TOOL_ARGUMENTS.len()];
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(json) else {
        return;
    };
    let arguments = match Arguments::parse(Some(&map), allowed) {
        Ok(arguments) => arguments,
        Err(err) => {
            check_message("arguments", &err.to_string());
            return;
        }
    };
    let mut messages = vec![arguments.network().err(), arguments.block().err()];
    for &name in allowed {
        messages.extend([
            arguments.string(name, 64).err(),
            arguments.selector(name).err(),
            arguments.amount(name).err(),
            arguments.bounded(name, 3600).err(),
            arguments.address(name).err(),
            arguments.hash(name).err(),
        ]);
        if let Ok(text) = arguments.amount(name)
            && let Err(err) = crate::chain::units::parse_units(&text, 18)
        {
            check_message("amount", &err.to_string());
        }
    }
    for err in messages.into_iter().flatten() {
        check_message("argument", &err.to_string());
    }
}

/// The configuration file. A network's RPC URL only ever prints redacted.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(text, "keyward.toml") {
        Ok(config) => {
            assert!(!config.networks().is_empty());
            let default = config.default_network();
            assert!(config.network(Some(&default.name)).is_some());
            for network in config.networks() {
                let url = network.rpc_url.expose_url();
                let shown = network.rpc_url.to_string();
                if url.query().is_some() {
                    assert!(shown.ends_with("?***"), "an RPC URL prints its query");
                }
                if let Some(password) = url.password() {
                    assert!(shown.contains("***@") && !shown.contains(&format!(":{password}@")));
                }
            }
        }
        Err(err) => check_message("config", &err.to_string()),
    }
}

/// The approval page's posted form, read by the handler's own function, and the HTML escaping of
/// every text the page shows.
pub fn form(data: &[u8]) {
    match page::read_form(data, CSRF) {
        Ok(submission) => {
            // Accepted only with the right CSRF token, and the decision is the one posted. A
            // form that names a field twice is refused, so each appears once here.
            let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(data)
                .unwrap_or_else(|_| panic!("an accepted form is not urlencoded"));
            let field = |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| key == name)
                    .map(|(_, value)| value.as_str())
            };
            assert_eq!(
                field("csrf"),
                Some(CSRF),
                "a form with another CSRF token was accepted"
            );
            let decision = if submission.answer.approve {
                "approve"
            } else {
                "reject"
            };
            assert_eq!(field("decision"), Some(decision));
            // An approval is bound to the request the page showed.
            assert!(
                !submission.answer.approve || submission.shown.is_some(),
                "an approval without the shown request's digest was accepted"
            );
        }
        Err(refusal) => check_message("form", refusal.text()),
    }
    let text = String::from_utf8_lossy(data);
    let escaped = page::escape(&text);
    assert!(
        !escaped.contains(['<', '>', '"', '\'']),
        "escaped text still holds markup"
    );
    let unescaped = escaped
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    assert_eq!(unescaped, text, "escaping lost text");
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use proptest::sample::Index;

    use super::*;

    /// The committed seeds of every target, loaded once.
    /// Each target's seed files' contents.
    type Seeds = Vec<Vec<Vec<u8>>>;

    fn seeds() -> &'static Seeds {
        static SEEDS: std::sync::LazyLock<Seeds> = std::sync::LazyLock::new(|| {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
            TARGETS
                .iter()
                .map(|(name, _)| {
                    let mut files: Vec<_> = std::fs::read_dir(root.join(name))
                        .unwrap()
                        .map(|entry| entry.unwrap().path())
                        .collect();
                    files.sort();
                    files
                        .iter()
                        .map(|file| std::fs::read(file).unwrap())
                        .collect()
                })
                .collect()
        });
        &SEEDS
    }

    fn seeds_of(name: &str) -> &'static [Vec<u8>] {
        let index = TARGETS
            .iter()
            .position(|(target, _)| *target == name)
            .unwrap();
        &seeds()[index]
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_break_no_entry_point(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            for (_, target) in TARGETS {
                target(&data);
            }
        }

        /// A seed with one byte changed, cut short, or with a byte inserted: what a fuzzer tries
        /// first, run on every test run.
        #[test]
        fn damaged_seeds_break_no_entry_point(
            target in 0..TARGETS.len(),
            seed in any::<Index>(),
            at in any::<Index>(),
            byte in any::<u8>(),
            how in 0u8..3,
        ) {
            let seeds = &seeds()[target];
            prop_assert!(!seeds.is_empty());
            let mut data = seeds[seed.index(seeds.len())].clone();
            let at = at.index(data.len().max(1));
            match how {
                0 if !data.is_empty() => data[at] = byte,
                1 => data.truncate(at),
                _ => data.insert(at.min(data.len()), byte),
            }
            TARGETS[target].1(&data);
        }
    }

    #[test]
    fn the_seeds_reach_past_the_first_refusal() {
        // The keystore seeds decrypt with the fuzzer's password, so the fuzzer starts from
        // files that get through the MAC.
        let password = Secret::new(PASSWORD.to_owned());
        let keystores = seeds_of("keystore");
        let unlocked = keystores
            .iter()
            .filter(|data| Keystore::parse(data).is_ok_and(|k| k.decrypt(&password).is_ok()))
            .count();
        assert!(unlocked >= 2, "{unlocked} keystore seeds decrypt");
        assert!(keystores.iter().any(|data| {
            Vault::parse(data)
                .is_ok_and(|v| v.kdf_cost() <= MAX_FUZZ_KDF_COST && v.unlock(&password).is_ok())
        }));
        assert!(
            keystores
                .iter()
                .any(|data| data.starts_with(b"KWV1") && vault::read_payload(data).is_ok())
        );
        // Each form seed that carries the right token is read.
        assert!(
            seeds_of("form")
                .iter()
                .filter(|data| page::read_form(data, CSRF).is_ok())
                .count()
                >= 3
        );
        // The typed data and transactions include accepted ones.
        assert!(
            seeds_of("eip712")
                .iter()
                .filter(|data| eip712::parse(std::str::from_utf8(data).unwrap()).is_ok())
                .count()
                >= 3
        );
        assert!(
            seeds_of("transaction")
                .iter()
                .any(|data| UnsignedTx::decode_payload(data).is_ok())
        );
        assert!(
            seeds_of("transaction")
                .iter()
                .any(|data| tx::decode_signed(data).is_ok())
        );
    }
}
