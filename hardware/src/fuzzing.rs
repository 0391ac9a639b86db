//! The entry point for fuzzing what keyward reads from a Ledger (and from whoever impersonates
//! one on the USB bus): for keyward's fuzz target `apdu` and the integration test that replays its
//! committed corpus.
//!
//! The function panics when an invariant breaks: a parser panicked, a reply was accepted that
//! does not say what the protocol says (a signature's parity not matching its v), a round trip
//! lost bytes, or a refusal's message is empty or too long to show. A plain refusal is not a
//! failure.
//!
//! This module is not part of the crate's interface. It must never print or log anything.

use std::collections::VecDeque;
use std::sync::Mutex;

use alloy::primitives::B256;

use crate::app::{Display, EthApp, message_apdus, transaction_apdus};
use crate::error::TransportError;
use crate::path::DerivationPath;
use crate::transport::{Transport, Wait};

/// The longest refusal message allowed: a message says what was wrong and what to do, and
/// repeats no more than a short prefix of what was sent. keyward's own entry points use it too.
pub const MAX_MESSAGE_CHARS: usize = 600;

/// Panics unless `message` is fit to show: not empty, not over [`MAX_MESSAGE_CHARS`].
pub fn check_message(what: &str, message: &str) {
    assert!(!message.trim().is_empty(), "{what}: an empty error message");
    let chars = message.chars().count();
    assert!(
        chars <= MAX_MESSAGE_CHARS,
        "{what}: an error message of {chars} characters: {message:.200}"
    );
}

/// A device that answers each APDU with the next scripted reply.
#[derive(Debug)]
struct Scripted {
    replies: Mutex<VecDeque<Vec<u8>>>,
}

impl Transport for Scripted {
    fn exchange(&self, _apdu: &[u8], _wait: &Wait) -> Result<Vec<u8>, TransportError> {
        self.replies
            .lock()
            .map_err(|_| TransportError::Disconnected("the script was poisoned".to_owned()))?
            .pop_front()
            .ok_or_else(|| TransportError::Disconnected("no more replies".to_owned()))
    }
}

/// Replies as the fuzzer writes them: a length byte, then that many bytes, again and again.
fn scripted(mut data: &[u8]) -> Scripted {
    let mut replies = VecDeque::new();
    while let Some((&len, rest)) = data.split_first() {
        let take = usize::from(len).min(rest.len());
        replies.push_back(rest[..take].to_vec());
        data = &rest[take..];
    }
    Scripted {
        replies: Mutex::new(replies),
    }
}

/// A legacy EIP-155 preimage for chain 1 (`[nonce, gasPrice, gas, to, value, data, 1, 0, 0]`),
/// with enough calldata to take three APDUs.
fn legacy_preimage() -> Vec<u8> {
    let mut fields = vec![
        0x01, 0x85, 0x04, 0xa8, 0x17, 0xc8, 0x00, 0x82, 0x52, 0x08, 0x94,
    ];
    fields.extend_from_slice(&[0x22; 20]);
    fields.push(0x80);
    fields.extend_from_slice(&[0xb9, 0x02, 0x00]);
    fields.extend_from_slice(&[0x5a; 0x200]);
    fields.extend_from_slice(&[0x01, 0x80, 0x80]);
    let mut preimage = vec![0xf9];
    let len = u16::try_from(fields.len()).unwrap_or(u16::MAX);
    preimage.extend_from_slice(&len.to_be_bytes());
    preimage.extend_from_slice(&fields);
    preimage
}

/// An EIP-1559 preimage with an empty list body: enough for the client's shape check.
const TYPED_PREIMAGE: &[u8] = &[
    0x02, 0xc9, 0x01, 0x80, 0x01, 0x01, 0x82, 0x52, 0x08, 0x80, 0x80,
];

/// The first byte chooses what `data[1..]` is:
/// - 0: a command (next byte) and the device's scripted replies to it, read by [`EthApp`];
/// - 1: HID reports, 64 bytes each, put back together into a reply;
/// - 2: a derivation path, as text and in the app's binary form;
/// - 3: a transaction preimage or message cut into APDUs.
pub fn apdu(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => replies(rest),
        1 => hid_reports(rest),
        2 => paths(rest),
        _ => payloads(rest),
    }
}

fn replies(data: &[u8]) {
    let Some((&command, script)) = data.split_first() else {
        return;
    };
    let app = EthApp::new(scripted(script));
    let wait = Wait::new(None);
    let path = DerivationPath::ledger_live(0);
    let hash = B256::repeat_byte(0x42);
    let outcome = match command % 7 {
        0 => app.configuration(&wait).map(|configuration| {
            let _ = configuration.version_text();
        }),
        1 | 2 => {
            let chain_code = command % 7 == 2;
            app.address(&path, Display::Silent, chain_code, Some(1), &wait)
                .map(|info| {
                    assert_eq!(info.public_key[0], 0x04);
                    assert_eq!(info.chain_code.is_some(), chain_code);
                })
        }
        3 => app
            .sign_personal_message(&path, b"hello from the fuzzer", &wait)
            .map(|signature| {
                assert_eq!(signature.v, 27 + u8::from(signature.y_parity));
                assert_eq!(signature.to_rsv()[64], signature.v);
                let _ = signature.recover_address(&hash);
            }),
        4 => app
            .sign_typed_data_hashed(&path, &hash, &hash, &wait)
            .map(|signature| {
                assert_eq!(signature.v, 27 + u8::from(signature.y_parity));
            }),
        5 => app
            .sign_transaction(&path, TYPED_PREIMAGE, &wait)
            .map(|signature| assert_eq!(signature.v, u8::from(signature.y_parity))),
        _ => app
            .sign_transaction(&path, &legacy_preimage(), &wait)
            // Chain 1: v = 37 + parity.
            .map(|signature| assert_eq!(signature.v, 37 + u8::from(signature.y_parity))),
    };
    if let Err(err) = outcome {
        check_message("reply", &err.to_string());
    }
}

#[cfg(feature = "hid")]
fn hid_reports(data: &[u8]) {
    use crate::hid::{Reassembler, frame};
    let mut reassembler = Reassembler::default();
    for report in data.chunks(64) {
        match reassembler.push(report) {
            Ok(None) => {}
            Ok(Some(reply)) => {
                assert!(reply.len() >= 2, "a reply without a status word");
                // What came in re-frames and comes back out the same.
                let reports = frame(&reply).unwrap_or_else(|| panic!("a reply too long to frame"));
                let mut again = Reassembler::default();
                let mut out = None;
                for report in &reports {
                    out = again.push(report).unwrap_or_else(|err| panic!("{err}"));
                }
                assert_eq!(out.as_deref(), Some(reply.as_slice()));
                return;
            }
            Err(err) => {
                check_message("hid", &err.to_string());
                return;
            }
        }
    }
}

#[cfg(not(feature = "hid"))]
fn hid_reports(_data: &[u8]) {}

fn paths(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        match DerivationPath::parse(text) {
            Ok(path) => {
                let again = DerivationPath::parse(&path.to_string());
                assert_eq!(
                    again.as_ref().ok(),
                    Some(&path),
                    "a path does not survive printing"
                );
            }
            Err(err) => check_message("path", &err.to_string()),
        }
    }
    if let Some((path, rest)) = DerivationPath::decode(data) {
        let mut again = path.encode();
        again.extend_from_slice(rest);
        assert_eq!(again, data, "a decoded path encodes differently");
    }
}

fn payloads(data: &[u8]) {
    let path = DerivationPath::ledger_live(3);
    let mut whole = path.encode();
    whole.extend_from_slice(data);
    match transaction_apdus(&path, data) {
        Ok(apdus) => check_chunks(&apdus, &whole),
        Err(err) => check_message("preimage", &err.to_string()),
    }
    let mut message = path.encode();
    message.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
    message.extend_from_slice(data);
    match message_apdus(&path, data) {
        Ok(apdus) => check_chunks(&apdus, &message),
        Err(err) => check_message("message", &err.to_string()),
    }
}

/// The APDUs carry exactly `payload`, in order, the first marked as such.
fn check_chunks(apdus: &[Vec<u8>], payload: &[u8]) {
    let mut carried = Vec::with_capacity(payload.len());
    for (index, apdu) in apdus.iter().enumerate() {
        assert!(apdu.len() >= 5 && apdu.len() <= 5 + 255);
        assert_eq!(
            usize::from(apdu[4]),
            apdu.len() - 5,
            "an APDU's length byte is wrong"
        );
        assert_eq!(apdu[2], if index == 0 { 0x00 } else { 0x80 });
        carried.extend_from_slice(&apdu[5..]);
    }
    assert_eq!(carried, payload, "the APDUs do not carry the payload");
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// No reply, report sequence, path or payload makes a parser panic or break its
        /// invariants, in each of the fuzz target's modes.
        #[test]
        fn arbitrary_bytes_in_every_mode(mode in 0u8..4, command in any::<u8>(), body in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut data = vec![mode, command];
            data.extend_from_slice(&body);
            apdu(&data);
        }

        /// A scripted device that sends well-formed but random replies: right status, random
        /// data of about the right length.
        #[test]
        fn random_replies_with_an_ok_status(command in 0u8..7, replies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 60..70), 1..4)) {
            let mut data = vec![0, command];
            for mut reply in replies {
                reply.extend_from_slice(&[0x90, 0x00]);
                data.push(u8::try_from(reply.len()).unwrap());
                data.extend_from_slice(&reply);
            }
            apdu(&data);
        }
    }

    #[cfg(feature = "hid")]
    proptest! {
        /// Any reply the device can send survives framing into reports and reassembly.
        #[test]
        fn any_reply_reassembles_from_its_reports(reply in proptest::collection::vec(any::<u8>(), 2..1200)) {
            use crate::hid::{Reassembler, frame};
            let mut reassembler = Reassembler::default();
            let reports = frame(&reply).unwrap();
            let (last, first) = reports.split_last().unwrap();
            for report in first {
                prop_assert_eq!(reassembler.push(report).unwrap(), None);
            }
            prop_assert_eq!(reassembler.push(last).unwrap(), Some(reply));
        }
    }
}
