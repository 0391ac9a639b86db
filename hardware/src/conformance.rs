//! Tests across the layers: the emulator against transcripts of the real app, the client against
//! the same transcripts, golden APDU sequences, recovery of every kind of signature, and each
//! device state as the client reports it.
//!
//! The transcripts are `shared/ledger/speculos-nanos-app-1.9.17-transcripts.json` (27 exchanges
//! recorded from the Ethereum app 1.9.17 under Speculos, with its default seed); tests that need
//! them say so and pass when the file is absent.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, keccak256};
use k256::ecdsa::{RecoveryId, VerifyingKey};
use serde_json::Value;

use crate::apdu::MAX_DATA;
use crate::app::{Display, EthApp, Signature, message_apdus, transaction_apdus};
use crate::emulator::{Emulator, EmulatorOptions, Mode};
use crate::error::{DeviceError, TransportError};
use crate::path::DerivationPath;
use crate::rlp::encode;
use crate::transport::{Transport, Wait};

const TRANSCRIPTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/ledger/speculos-nanos-app-1.9.17-transcripts.json"
);

/// Golden APDUs for a 600-byte EIP-1559 preimage, generated once and reviewed by hand.
const EIP1559_600_FIXTURE: &str = include_str!("../tests/fixtures/eip1559-600-apdus.json");

/// m/44'/60'/0'/0/0 under Speculos's seed (APDU.md).
const SPECULOS_ACCOUNT_0: &str = "0xDad77910DbDFdE764fC21FCD4E74D71bBACA6D8D";

fn transcripts() -> Option<Vec<Value>> {
    let Ok(text) = std::fs::read_to_string(TRANSCRIPTS) else {
        eprintln!(
            "skipped: {TRANSCRIPTS} is absent (it lives in the shared folder beside the \
             repository)"
        );
        return None;
    };
    let Value::Array(exchanges) = serde_json::from_str(&text).unwrap() else {
        panic!("the transcripts file is not a JSON array");
    };
    assert_eq!(exchanges.len(), 27, "APDU.md promises 27 exchanges");
    Some(exchanges)
}

fn text<'a>(exchange: &'a Value, field: &str) -> &'a str {
    exchange[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} missing"))
}

fn bytes(exchange: &Value, field: &str) -> Vec<u8> {
    hex::decode(text(exchange, field)).unwrap()
}

fn apdus(exchange: &Value) -> Vec<Vec<u8>> {
    exchange["apdus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|apdu| hex::decode(apdu.as_str().unwrap()).unwrap())
        .collect()
}

fn speculos() -> Emulator {
    Emulator::speculos(EmulatorOptions::default())
}

fn blind() -> EmulatorOptions {
    EmulatorOptions {
        blind_signing: true,
        ..EmulatorOptions::default()
    }
}

fn no_limit() -> Wait {
    Wait::new(None)
}

fn account(index: u32) -> DerivationPath {
    DerivationPath::ledger_live(index)
}

fn signature_bytes(signature: &Signature) -> Vec<u8> {
    [
        &[signature.v][..],
        signature.r.as_slice(),
        signature.s.as_slice(),
    ]
    .concat()
}

/// Recovers the signer with k256 alone, independently of [`Signature::recover_address`].
fn recover(hash: &B256, signature: &Signature) -> Address {
    let parsed = k256::ecdsa::Signature::from_scalars(signature.r.0, signature.s.0).unwrap();
    let key = VerifyingKey::recover_from_prehash(
        hash.as_slice(),
        &parsed,
        RecoveryId::new(signature.y_parity, false),
    )
    .unwrap();
    let point = key.to_sec1_point(false);
    Address::from_slice(&keccak256(&point.as_bytes()[1..])[12..])
}

// ---------------------------------------------------------------------------------------------
// Transactions used below.

const TO: [u8; 20] = alloy::hex!("b2bb2b958afa2e96dab3f3ce7162b87daea39017");
const USDC: [u8; 20] = alloy::hex!("a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48");

fn legacy(chain_id: u64, data: &[u8]) -> Vec<u8> {
    encode::list(&[
        encode::uint(9),
        encode::uint(30_000_000_000),
        encode::uint(100_000),
        encode::string(&TO),
        encode::uint(10_000_000_000_000_000),
        encode::string(data),
        encode::uint(chain_id),
        encode::uint(0),
        encode::uint(0),
    ])
}

fn eip1559(data: &[u8]) -> Vec<u8> {
    let body = encode::list(&[
        encode::uint(1),
        encode::uint(42),
        encode::uint(1_500_000_000),
        encode::uint(30_000_000_000),
        encode::uint(120_000),
        encode::string(&USDC),
        encode::uint(0),
        encode::string(data),
        encode::list(&[]),
    ]);
    [&[0x02][..], &body].concat()
}

fn eip2930(data: &[u8]) -> Vec<u8> {
    let access_list = encode::list(&[encode::list(&[
        encode::string(&USDC),
        encode::list(&[encode::string(&[0x07; 32])]),
    ])]);
    let body = encode::list(&[
        encode::uint(137),
        encode::uint(3),
        encode::uint(40_000_000_000),
        encode::uint(80_000),
        encode::string(&TO),
        encode::uint(1),
        encode::string(data),
        access_list,
    ]);
    [&[0x01][..], &body].concat()
}

/// Calldata-like bytes: a selector, then a recognizable pattern.
fn calldata(len: usize) -> Vec<u8> {
    let mut data = vec![0xa9, 0x05, 0x9c, 0xbb];
    data.extend((0..len.saturating_sub(4)).map(|i| (i % 251) as u8));
    data.truncate(len);
    data
}

/// The 600-byte EIP-1559 preimage of the golden test: 553 bytes of calldata to USDC.
fn eip1559_600() -> Vec<u8> {
    let preimage = eip1559(&calldata(553));
    assert_eq!(preimage.len(), 600);
    preimage
}

/// A legacy chain-137 preimage of 238 bytes: its `rlp(137) 80 80` suffix (4 bytes) starts at
/// offset 234 = 255 − 21, where the first full chunk after a 21-byte path ends.
fn legacy_137_on_the_boundary() -> Vec<u8> {
    let preimage = legacy(137, &calldata(190));
    assert_eq!(preimage.len(), 238);
    preimage
}

/// Cuts `path ‖ preimage` into full chunks with no guard: what a client without it sends.
fn naive_transaction_apdus(path: &DerivationPath, preimage: &[u8]) -> Vec<Vec<u8>> {
    let payload = [path.encode(), preimage.to_vec()].concat();
    payload
        .chunks(MAX_DATA)
        .enumerate()
        .map(|(index, chunk)| {
            let p1 = if index == 0 { 0x00 } else { 0x80 };
            [&[0xE0, 0x04, p1, 0x00, chunk.len() as u8][..], chunk].concat()
        })
        .collect()
}

/// Preimage offsets at which chunks end (all but the last), after a path of `path_len` bytes.
fn boundaries(apdus: &[Vec<u8>], path_len: usize) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut offset = 0;
    for apdu in &apdus[..apdus.len() - 1] {
        offset += apdu.len() - 5;
        ends.push(offset - path_len);
    }
    ends
}

// ---------------------------------------------------------------------------------------------
// The emulator and the client against the real app's transcripts.

#[test]
fn emulator_reproduces_every_transcript_byte_for_byte() {
    let Some(exchanges) = transcripts() else {
        return;
    };
    let emulator = speculos();
    for (number, exchange) in exchanges.iter().enumerate() {
        let apdus = apdus(exchange);
        let (last, first) = apdus.split_last().unwrap();
        for apdu in first {
            assert_eq!(
                emulator.exchange(apdu, &no_limit()).unwrap(),
                [0x90, 0x00],
                "exchange {number}: a middle chunk"
            );
        }
        let status = u16::try_from(exchange["sw"].as_u64().unwrap()).unwrap();
        let expected = [bytes(exchange, "response"), status.to_be_bytes().to_vec()].concat();
        assert_eq!(
            hex::encode(emulator.exchange(last, &no_limit()).unwrap()),
            hex::encode(expected),
            "exchange {number} ({})",
            text(exchange, "kind")
        );
    }
}

#[test]
fn client_sends_the_transcripts_apdus_and_reads_their_replies() {
    let Some(exchanges) = transcripts() else {
        return;
    };
    let app = EthApp::new(speculos());
    let wait = no_limit();
    let mut kinds = Vec::new();
    for (number, exchange) in exchanges.iter().enumerate() {
        let path = DerivationPath::parse(text(exchange, "path")).unwrap();
        let expected_apdus = apdus(exchange);
        app.transport().clear_log();
        let kind = text(exchange, "kind");
        match kind {
            "get_address" => {
                let info = app
                    .address(&path, Display::Silent, false, None, &wait)
                    .unwrap();
                assert_eq!(
                    info.address.to_checksum(None),
                    text(exchange, "expected_address"),
                    "exchange {number}"
                );
                assert_eq!(&info.public_key[..], &bytes(exchange, "response")[1..66]);
            }
            "personal_sign" => {
                let message = bytes(exchange, "message_hex");
                assert_eq!(
                    message_apdus(&path, &message).unwrap(),
                    expected_apdus,
                    "exchange {number}"
                );
                let signature = app.sign_personal_message(&path, &message, &wait).unwrap();
                assert_eq!(signature_bytes(&signature), bytes(exchange, "response"));
            }
            "sign_tx_legacy" | "sign_tx_eip1559" => {
                let preimage = bytes(exchange, "unsigned_tx_hex");
                assert_eq!(
                    transaction_apdus(&path, &preimage).unwrap(),
                    expected_apdus,
                    "exchange {number}"
                );
                let signature = app.sign_transaction(&path, &preimage, &wait).unwrap();
                assert_eq!(signature_bytes(&signature), bytes(exchange, "response"));
                assert_eq!(
                    recover(&keccak256(&preimage), &signature).to_checksum(None),
                    SPECULOS_ACCOUNT_0
                );
            }
            other => panic!("exchange {number}: unknown kind {other}"),
        }
        assert_eq!(app.transport().log(), expected_apdus, "exchange {number}");
        kinds.push(kind);
    }
    for kind in [
        "get_address",
        "personal_sign",
        "sign_tx_legacy",
        "sign_tx_eip1559",
    ] {
        assert!(kinds.contains(&kind), "no {kind} transcript was checked");
    }
}

// ---------------------------------------------------------------------------------------------
// Golden APDU sequences.

#[test]
fn golden_eip1559_600_bytes_with_calldata() {
    let fixture: Value = serde_json::from_str(EIP1559_600_FIXTURE).unwrap();
    let path = DerivationPath::parse(text(&fixture, "path")).unwrap();
    let preimage = eip1559_600();
    assert_eq!(hex::encode(&preimage), text(&fixture, "preimage"));
    let expected: Vec<String> = fixture["apdus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|apdu| apdu.as_str().unwrap().to_owned())
        .collect();

    let apdus = transaction_apdus(&path, &preimage).unwrap();
    let produced: Vec<String> = apdus.iter().map(hex::encode).collect();
    assert_eq!(produced, expected);

    // The rules, independently of the fixture: 21 + 600 = 621 bytes = 255 + 255 + 111.
    let sizes: Vec<usize> = apdus.iter().map(|apdu| apdu.len() - 5).collect();
    assert_eq!(sizes, [255, 255, 111]);
    let path_bytes = path.encode();
    assert_eq!(apdus[0][5..5 + path_bytes.len()], path_bytes);
    assert_eq!(
        apdus[0][5 + path_bytes.len()],
        0x02,
        "type byte in the first chunk"
    );
    let mut joined = Vec::new();
    for (index, apdu) in apdus.iter().enumerate() {
        assert_eq!(&apdu[..2], &[0xE0, 0x04]);
        assert_eq!(apdu[2], if index == 0 { 0x00 } else { 0x80 }, "P1");
        assert_eq!(apdu[3], 0x00, "P2");
        assert_eq!(usize::from(apdu[4]), apdu.len() - 5, "Lc");
        assert!(apdu.len() - 5 <= MAX_DATA);
        joined.extend_from_slice(&apdu[5..]);
    }
    assert_eq!(joined, [path_bytes, preimage.clone()].concat());

    // And the emulator signs it once it has all three chunks.
    let app = EthApp::new(Emulator::speculos(blind()));
    let signature = app.sign_transaction(&path, &preimage, &no_limit()).unwrap();
    assert_eq!(app.transport().log(), apdus);
    assert_eq!(
        recover(&keccak256(&preimage), &signature),
        app.transport().address(&path).unwrap()
    );
}

#[test]
fn golden_legacy_137_guard_moves_the_cut_off_the_early_sign_offset() {
    let path = account(0);
    let preimage = legacy_137_on_the_boundary();
    // rlp(137) is 81 89: the suffix 81 89 80 80 starts at len − 4.
    let early_sign_offset = preimage.len() - 4;
    assert_eq!(&preimage[early_sign_offset..], &[0x81, 0x89, 0x80, 0x80]);

    let naive = naive_transaction_apdus(&path, &preimage);
    assert_eq!(
        boundaries(&naive, 21),
        [early_sign_offset],
        "the naive cut hits it"
    );

    let guarded = transaction_apdus(&path, &preimage).unwrap();
    assert_eq!(boundaries(&guarded, 21), [early_sign_offset - 1]);
    let sizes: Vec<usize> = guarded.iter().map(|apdu| apdu.len() - 5).collect();
    assert_eq!(sizes, [254, 5]);
    assert_eq!(
        hex::encode(&guarded[1]),
        format!("e004800005{}", hex::encode(&preimage[233..]))
    );
    assert_eq!(&guarded[0][..5], &[0xE0, 0x04, 0x00, 0x00, 0xFE]);
    assert_eq!(
        [&guarded[0][5..], &guarded[1][5..]].concat(),
        [path.encode(), preimage.clone()].concat()
    );
}

#[test]
fn an_app_before_1_13_signs_the_naive_cut_early_but_not_the_guarded_one() {
    let path = account(0);
    let preimage = legacy_137_on_the_boundary();
    let options = EmulatorOptions {
        version: (1, 12, 0),
        ..blind()
    };
    let wait = no_limit();

    // Guarded: a correct EIP-155 signature over the whole preimage.
    let app = EthApp::new(Emulator::speculos(options.clone()));
    let address = app.transport().address(&path).unwrap();
    let signature = app.sign_transaction(&path, &preimage, &wait).unwrap();
    assert!(
        matches!(signature.v, 53 | 54),
        "v = 137·2 + 35 + parity mod 256"
    );
    assert_eq!(recover(&keccak256(&preimage), &signature), address);

    // Naive: the first chunk already comes back signed, over the truncated bytes, without the
    // chain id (v = 27/28).
    let emulator = Emulator::speculos(options);
    let naive = naive_transaction_apdus(&path, &preimage);
    let reply = emulator.exchange(&naive[0], &wait).unwrap();
    assert_eq!(reply.len(), 65 + 2, "signed after the first chunk");
    assert_eq!(&reply[65..], &[0x90, 0x00]);
    let early = Signature {
        v: reply[0],
        r: B256::from_slice(&reply[1..33]),
        s: B256::from_slice(&reply[33..65]),
        y_parity: reply[0] == 28,
    };
    assert!(matches!(early.v, 27 | 28));
    let truncated = &preimage[..preimage.len() - 4];
    assert_eq!(recover(&keccak256(truncated), &early), address);
    assert_ne!(recover(&keccak256(&preimage), &early), address);
    // The rest of the naive sequence no longer belongs to any command.
    assert_eq!(
        emulator.exchange(&naive[1], &wait).unwrap(),
        0x6980u16.to_be_bytes()
    );

    // From 1.13 on the same naive sequence is signed correctly.
    let fixed = Emulator::speculos(EmulatorOptions {
        version: (1, 13, 0),
        ..blind()
    });
    assert_eq!(fixed.exchange(&naive[0], &wait).unwrap(), [0x90, 0x00]);
    let reply = fixed.exchange(&naive[1], &wait).unwrap();
    assert!(matches!(reply[0], 53 | 54));
}

#[test]
fn the_client_refuses_an_early_signature_from_an_old_app() {
    // The early signature arrives on a middle chunk: the client stops there.
    let emulator = Emulator::speculos(EmulatorOptions {
        version: (1, 12, 0),
        ..blind()
    });
    let naive = naive_transaction_apdus(&account(0), &legacy_137_on_the_boundary());
    let app = EthApp::new(ScriptedFrom {
        emulator: &emulator,
        apdus: naive,
    });
    let error = app
        .sign_transaction(&account(0), &legacy_137_on_the_boundary(), &no_limit())
        .unwrap_err();
    assert!(matches!(error, DeviceError::BadReply(_)), "{error:?}");
}

/// Sends the emulator a fixed APDU sequence whatever the client builds (to play a client
/// without the guard), one APDU per exchange.
#[derive(Debug)]
struct ScriptedFrom<'a> {
    emulator: &'a Emulator,
    apdus: Vec<Vec<u8>>,
}

impl Transport for ScriptedFrom<'_> {
    fn exchange(&self, _apdu: &[u8], wait: &Wait) -> Result<Vec<u8>, TransportError> {
        let sent = self.emulator.log().len();
        self.emulator.exchange(&self.apdus[sent], wait)
    }
}

// ---------------------------------------------------------------------------------------------
// Every kind of signature recovers to the path's address.

#[test]
fn signatures_recover_to_the_path_address() {
    let app = EthApp::new(Emulator::speculos(blind()));
    let wait = no_limit();
    let cases: [(&str, Vec<u8>, DerivationPath, &[u8]); 5] = [
        ("legacy chain 1", legacy(1, &[]), account(0), &[37, 38]),
        (
            "legacy chain 137 (v wraps)",
            legacy(137, &calldata(68)),
            account(1),
            &[53, 54],
        ),
        ("EIP-1559", eip1559(&calldata(68)), account(0), &[0, 1]),
        ("EIP-1559, three chunks", eip1559_600(), account(2), &[0, 1]),
        ("EIP-2930", eip2930(&calldata(4)), account(0), &[0, 1]),
    ];
    let mut parities = Vec::new();
    for (name, preimage, path, v_values) in cases {
        let signature = app.sign_transaction(&path, &preimage, &wait).unwrap();
        assert!(
            v_values.contains(&signature.v),
            "{name}: v = {}",
            signature.v
        );
        let hash = keccak256(&preimage);
        let address = app.transport().address(&path).unwrap();
        assert_eq!(recover(&hash, &signature), address, "{name}");
        assert_eq!(signature.recover_address(&hash).unwrap(), address, "{name}");
        parities.push(signature.y_parity);
    }

    let path = DerivationPath::parse("m/44'/60'/0'/0/5").unwrap();
    let address = app.transport().address(&path).unwrap();
    let message = b"keyward parity test".repeat(20);
    let signature = app.sign_personal_message(&path, &message, &wait).unwrap();
    let prefixed = [
        format!("\x19Ethereum Signed Message:\n{}", message.len()).as_bytes(),
        &message,
    ]
    .concat();
    assert!(matches!(signature.v, 27 | 28));
    assert_eq!(recover(&keccak256(&prefixed), &signature), address);
    assert_eq!(signature.to_rsv()[64], signature.v);
    parities.push(signature.y_parity);

    let domain_separator = keccak256(b"domain");
    let message_hash = keccak256(b"message");
    let signature = app
        .sign_typed_data_hashed(&path, &domain_separator, &message_hash, &wait)
        .unwrap();
    let digest = keccak256([&[0x19, 0x01][..], &domain_separator[..], &message_hash[..]].concat());
    assert!(matches!(signature.v, 27 | 28));
    assert_eq!(recover(&digest, &signature), address);
    assert_eq!(
        app.transport().log().last().unwrap(),
        &[
            &[0xE0, 0x0C, 0x00, 0x00, 0x55][..],
            &path.encode(),
            &domain_separator[..],
            &message_hash[..],
        ]
        .concat()
    );
    parities.push(signature.y_parity);

    // Both parities turned up, so both branches of every v rule were not all skipped.
    assert!(
        parities.contains(&true) && parities.contains(&false),
        "{parities:?}"
    );
}

#[test]
fn both_parities_decode_for_each_v_rule() {
    // Sign enough distinct payloads of each kind that both parities appear and each recovers.
    let app = EthApp::new(Emulator::speculos(blind()));
    let wait = no_limit();
    let path = account(0);
    let address = app.transport().address(&path).unwrap();
    type Build = fn(u8) -> Vec<u8>;
    let kinds: [(&str, Build); 3] = [
        ("legacy 137", |n| legacy(137, &[n])),
        ("legacy 1", |n| legacy(1, &[n])),
        ("EIP-1559", |n| eip1559(&[n])),
    ];
    for (name, build) in kinds {
        let mut seen = [false; 2];
        for n in 0..16 {
            let preimage = build(n);
            let signature = app.sign_transaction(&path, &preimage, &wait).unwrap();
            assert_eq!(
                recover(&keccak256(&preimage), &signature),
                address,
                "{name}"
            );
            seen[usize::from(signature.y_parity)] = true;
        }
        assert_eq!(seen, [true, true], "{name}");
    }
    let mut seen = [false; 2];
    for n in 0..16u8 {
        let message = [n];
        let signature = app.sign_personal_message(&path, &message, &wait).unwrap();
        let prefixed = [&b"\x19Ethereum Signed Message:\n1"[..], &message].concat();
        assert_eq!(recover(&keccak256(&prefixed), &signature), address);
        seen[usize::from(signature.y_parity)] = true;
    }
    assert_eq!(seen, [true, true], "personal message");
}

// ---------------------------------------------------------------------------------------------
// Device states and the person, as the client reports them.

fn with_mode(mode: Mode) -> EthApp<Emulator> {
    EthApp::new(Emulator::speculos(EmulatorOptions { mode, ..blind() }))
}

#[test]
fn a_locked_device_is_reported_as_locked() {
    let app = with_mode(Mode::Locked);
    let wait = no_limit();
    assert_eq!(app.configuration(&wait), Err(DeviceError::Locked));
    assert_eq!(
        app.address(&account(0), Display::Silent, false, None, &wait),
        Err(DeviceError::Locked)
    );
    assert_eq!(
        app.sign_transaction(&account(0), &eip1559_600(), &wait),
        Err(DeviceError::Locked)
    );
    assert_eq!(
        app.transport()
            .exchange(&[0xE0, 0x06, 0, 0, 0], &wait)
            .unwrap(),
        [0x55, 0x15]
    );
}

#[test]
fn a_closed_app_is_reported_as_not_open() {
    let app = with_mode(Mode::AppNotOpen);
    let wait = no_limit();
    assert_eq!(app.configuration(&wait), Err(DeviceError::AppNotOpen));
    assert_eq!(
        app.sign_personal_message(&account(0), b"hi", &wait),
        Err(DeviceError::AppNotOpen)
    );
    assert_eq!(
        app.transport()
            .exchange(&[0xE0, 0x06, 0, 0, 0], &wait)
            .unwrap(),
        [0x6D, 0x00]
    );
}

#[test]
fn a_rejection_comes_where_the_person_confirms() {
    let app = with_mode(Mode::Reject);
    let wait = no_limit();
    // Nothing to confirm: a silent address and the configuration still answer.
    assert!(
        app.address(&account(0), Display::Silent, false, None, &wait)
            .is_ok()
    );
    assert!(app.configuration(&wait).is_ok());
    assert_eq!(
        app.address(&account(0), Display::OnDevice, false, Some(1), &wait),
        Err(DeviceError::Rejected)
    );
    // All three chunks go out; only the last is rejected.
    app.transport().clear_log();
    assert_eq!(
        app.sign_transaction(&account(0), &eip1559_600(), &wait),
        Err(DeviceError::Rejected)
    );
    assert_eq!(app.transport().log().len(), 3);
    assert_eq!(
        app.sign_personal_message(&account(0), &[0x61; 600], &wait),
        Err(DeviceError::Rejected)
    );
    assert_eq!(
        app.sign_typed_data_hashed(&account(0), &B256::ZERO, &B256::ZERO, &wait),
        Err(DeviceError::Rejected)
    );
}

#[test]
fn blind_signing_off_refuses_calldata_and_hashed_typed_data() {
    let app = EthApp::new(speculos());
    let wait = no_limit();
    assert!(!app.configuration(&wait).unwrap().blind_signing);
    // The refusal comes after the whole transaction arrived.
    app.transport().clear_log();
    assert_eq!(
        app.sign_transaction(&account(0), &eip1559_600(), &wait),
        Err(DeviceError::InvalidData)
    );
    assert_eq!(app.transport().log().len(), 3);
    assert_eq!(
        app.sign_transaction(&account(0), &legacy(1, &calldata(4)), &wait),
        Err(DeviceError::InvalidData)
    );
    assert_eq!(
        app.sign_typed_data_hashed(&account(0), &B256::ZERO, &B256::ZERO, &wait),
        Err(DeviceError::InvalidData)
    );
    // A plain transfer needs no blind signing.
    assert!(
        app.sign_transaction(&account(0), &legacy(1, &[]), &wait)
            .is_ok()
    );
    assert!(
        app.sign_transaction(&account(0), &eip1559(&[]), &wait)
            .is_ok()
    );
}

fn slow(user_delay: Duration) -> EthApp<Arc<Emulator>> {
    EthApp::new(Arc::new(Emulator::speculos(EmulatorOptions {
        user_delay,
        ..blind()
    })))
}

#[test]
fn a_slow_person_and_a_short_wait_time_out() {
    let app = slow(Duration::from_secs(30));
    let started = Instant::now();
    let error = app
        .sign_transaction(
            &account(0),
            &eip1559_600(),
            &Wait::new(Some(Duration::from_millis(100))),
        )
        .unwrap_err();
    assert_eq!(
        error,
        DeviceError::Transport(TransportError::TimedOut { seconds: 0 })
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The abandoned transaction is gone: a continuation is out of sequence.
    assert_eq!(
        app.transport()
            .exchange(&[0xE0, 0x04, 0x80, 0x00, 0x01, 0x80], &no_limit())
            .unwrap(),
        [0x69, 0x80]
    );
}

#[test]
fn cancel_from_another_thread_ends_the_wait_promptly() {
    let app = slow(Duration::from_secs(30));
    let wait = Wait::new(None);
    let canceller = {
        let wait = wait.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            wait.cancel();
        })
    };
    let started = Instant::now();
    let error = app
        .sign_personal_message(&account(0), b"take your time", &wait)
        .unwrap_err();
    canceller.join().unwrap();
    assert_eq!(error, DeviceError::Transport(TransportError::Cancelled));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_command_during_a_prompt_finds_the_device_busy() {
    let app = Arc::new(slow(Duration::from_secs(30)));
    let wait = Wait::new(None);
    let prompt = {
        let app = Arc::clone(&app);
        let wait = wait.clone();
        thread::spawn(move || app.address(&account(0), Display::OnDevice, false, None, &wait))
    };
    // Give the prompt time to come up; until it does the device answers normally.
    thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let busy = loop {
        match app.configuration(&no_limit()) {
            Err(error) => break error,
            Ok(_) if started.elapsed() < Duration::from_secs(5) => {
                thread::sleep(Duration::from_millis(5));
            }
            Ok(_) => panic!("the device never became busy"),
        }
    };
    assert_eq!(busy, DeviceError::OutOfSequence { sw: 0x6986 });
    wait.cancel();
    assert_eq!(
        prompt.join().unwrap(),
        Err(DeviceError::Transport(TransportError::Cancelled))
    );
    assert!(app.configuration(&no_limit()).is_ok());
}

#[test]
fn a_confirmed_address_waits_for_the_person() {
    let app = slow(Duration::from_millis(150));
    let started = Instant::now();
    let info = app
        .address(&account(0), Display::OnDevice, true, Some(1), &no_limit())
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert!(info.chain_code.is_some());
    // A silent address does not wait.
    let started = Instant::now();
    app.address(&account(0), Display::Silent, false, None, &no_limit())
        .unwrap();
    assert!(started.elapsed() < Duration::from_millis(150));
}
