//! The Ethereum app client: each command of `shared/ledger/APDU.md` as a blocking method over
//! any [`Transport`], and the pure functions that cut a payload into APDUs.
//!
//! Every reply is checked before it is believed: lengths, the address's EIP-55 checksum against
//! the public key, the v byte against the kind of payload. A signature returned here is still
//! only the device's claim: the caller recovers the signer from the hash it expects
//! ([`Signature::recover_address`]) and compares it with the account before using it.
//!
//! This module never decides what is signed: it sends exactly the bytes it is given.

use std::fmt;

use alloy::primitives::{Address, B256};
use k256::ecdsa::{RecoveryId, VerifyingKey};

use crate::apdu::{self, MAX_DATA, P1_FIRST_CHUNK, P1_NEXT_CHUNK, ins};
use crate::error::{DeviceError, Result};
use crate::path::DerivationPath;
use crate::rlp::{self, Kind, RlpError};
use crate::transport::{Transport, Wait};

/// The Ethereum app on one device, reached through `T`.
#[derive(Debug)]
pub struct EthApp<T: Transport> {
    transport: T,
}

/// The app's settings and version (INS `06`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppConfiguration {
    /// "Blind signing" is enabled in the app's settings: it signs transactions with calldata and
    /// hashed EIP-712.
    pub blind_signing: bool,
    /// The app's version as (major, minor, patch).
    pub version: (u8, u8, u8),
}

impl AppConfiguration {
    /// The version as `1.9.17`.
    pub fn version_text(&self) -> String {
        let (major, minor, patch) = self.version;
        format!("{major}.{minor}.{patch}")
    }
}

/// Whether the device shows the address and asks the person to confirm it (P1 of get address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// Answer without showing anything.
    Silent,
    /// Show the address and wait for the person to confirm or reject it.
    OnDevice,
}

/// An account's public key and address as the device derived them.
#[derive(Clone, PartialEq, Eq)]
pub struct AddressInfo {
    /// Uncompressed SEC1 public key: `04 ‖ x ‖ y`.
    pub public_key: [u8; 65],
    /// The address of `public_key`, checked against the device's EIP-55 text.
    pub address: Address,
    /// The BIP-32 chain code, when it was asked for.
    pub chain_code: Option<[u8; 32]>,
}

impl fmt::Debug for AddressInfo {
    // The chain code with the public key derives every non-hardened child: keep it out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AddressInfo")
            .field("address", &self.address)
            .field("chain_code", &self.chain_code.map(|_| "[REDACTED]"))
            .finish_non_exhaustive()
    }
}

/// A signature from the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    /// The v byte exactly as the device sent it.
    pub v: u8,
    pub r: B256,
    pub s: B256,
    /// The recovery parity, read from `v` by the rule of the signed payload's kind.
    pub y_parity: bool,
}

impl Signature {
    /// `r ‖ s ‖ v` with v = 27 + parity, the form `personal_sign` and `eth_signTypedData` return.
    pub fn to_rsv(&self) -> [u8; 65] {
        let mut bytes = [0u8; 65];
        bytes[..32].copy_from_slice(self.r.as_slice());
        bytes[32..64].copy_from_slice(self.s.as_slice());
        bytes[64] = 27 + u8::from(self.y_parity);
        bytes
    }

    /// The address whose key made this signature over `prehash`. Refuses a zero, out-of-range
    /// or high s (EIP-2), which the app never produces.
    pub fn recover_address(&self, prehash: &B256) -> Result<Address> {
        let signature = k256::ecdsa::Signature::from_scalars(self.r.0, self.s.0)
            .map_err(|_| bad_reply("the signature's r or s is zero or out of range"))?;
        if signature.normalize_s() != signature {
            return Err(bad_reply("the signature has a high s (EIP-2)"));
        }
        let key = VerifyingKey::recover_from_prehash(
            prehash.as_slice(),
            &signature,
            RecoveryId::new(self.y_parity, false),
        )
        .map_err(|_| bad_reply("no public key recovers from the signature"))?;
        let point = key.to_sec1_point(false);
        Ok(Address::from_raw_public_key(&point.as_bytes()[1..]))
    }
}

impl<T: Transport> EthApp<T> {
    pub fn new(transport: T) -> Self {
        Self { transport }
    }

    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The app's version and whether blind signing is enabled.
    pub fn configuration(&self, wait: &Wait) -> Result<AppConfiguration> {
        let data = self.exchange(&apdu::command(ins::GET_CONFIGURATION, 0, 0, &[])?, wait)?;
        match data.as_slice() {
            [flags, major, minor, patch, ..] => Ok(AppConfiguration {
                blind_signing: flags & 0x01 != 0,
                version: (*major, *minor, *patch),
            }),
            _ => Err(bad_reply(format!(
                "the configuration has {} bytes where 4 were expected",
                data.len()
            ))),
        }
    }

    /// The public key and address at `path`. With [`Display::OnDevice`] the device shows the
    /// address (and `chain_id`'s network, on apps that know it) and waits for the person.
    pub fn address(
        &self,
        path: &DerivationPath,
        display: Display,
        chain_code: bool,
        chain_id: Option<u64>,
        wait: &Wait,
    ) -> Result<AddressInfo> {
        let mut data = path.encode();
        if let Some(chain_id) = chain_id {
            data.extend_from_slice(&chain_id.to_be_bytes());
        }
        let p1 = match display {
            Display::Silent => 0x00,
            Display::OnDevice => 0x01,
        };
        let apdu = apdu::command(ins::GET_ADDRESS, p1, u8::from(chain_code), &data)?;
        parse_address_reply(&self.exchange(&apdu, wait)?, chain_code)
    }

    /// Signs a transaction's signing preimage: a legacy EIP-155 `rlp([nonce, gasPrice, gas, to,
    /// value, data, chainId, 0, 0])`, or `01`/`02` ‖ rlp(...) for EIP-2930/EIP-1559.
    pub fn sign_transaction(
        &self,
        path: &DerivationPath,
        preimage: &[u8],
        wait: &Wait,
    ) -> Result<Signature> {
        let (shape, apdus) = transaction_commands(path, preimage)?;
        let reply = self.send_chunks(&apdus, wait)?;
        let (v, r, s) = split_signature(&reply)?;
        let y_parity = match shape {
            TransactionShape::Typed => match v {
                0 | 1 => v == 1,
                _ => {
                    return Err(bad_reply(format!(
                        "v is {v} for a typed transaction, where it is 0 or 1"
                    )));
                }
            },
            TransactionShape::Legacy {
                chain_id_low_byte, ..
            } => {
                // (chainId·2 + 35 + parity) mod 256: only the chain id's low byte counts.
                let base = chain_id_low_byte.wrapping_mul(2).wrapping_add(35);
                match v.wrapping_sub(base) {
                    0 => false,
                    1 => true,
                    _ => {
                        return Err(bad_reply(format!(
                            "v is {v}, which does not encode the transaction's chain id: the app \
                             signed without it (Ethereum apps before 1.13 do this for some \
                             chunkings); update the Ethereum app"
                        )));
                    }
                }
            }
        };
        Ok(Signature { v, r, s, y_parity })
    }

    /// Signs an EIP-191 personal message: the device hashes
    /// `"\x19Ethereum Signed Message:\n" ‖ len ‖ message`.
    pub fn sign_personal_message(
        &self,
        path: &DerivationPath,
        message: &[u8],
        wait: &Wait,
    ) -> Result<Signature> {
        let reply = self.send_chunks(&message_apdus(path, message)?, wait)?;
        message_signature(&reply)
    }

    /// Signs EIP-712 typed data given as its two hashes: the device signs
    /// `keccak256(19 01 ‖ domain_separator ‖ message_hash)`. Apps refuse this (6A80,
    /// [`DeviceError::InvalidData`]) unless blind signing is enabled.
    pub fn sign_typed_data_hashed(
        &self,
        path: &DerivationPath,
        domain_separator: &B256,
        message_hash: &B256,
        wait: &Wait,
    ) -> Result<Signature> {
        let mut data = path.encode();
        data.extend_from_slice(domain_separator.as_slice());
        data.extend_from_slice(message_hash.as_slice());
        let apdu = apdu::command(ins::SIGN_EIP712_HASHED, 0, 0, &data)?;
        message_signature(&self.exchange(&apdu, wait)?)
    }

    /// Sends the chunks of one command; every reply but the last must be empty.
    fn send_chunks(&self, apdus: &[Vec<u8>], wait: &Wait) -> Result<Vec<u8>> {
        let Some((last, first)) = apdus.split_last() else {
            return Err(DeviceError::Payload("produced no command".to_owned()));
        };
        for apdu in first {
            let data = self.exchange(apdu, wait)?;
            if !data.is_empty() {
                return Err(bad_reply(format!(
                    "the device answered a middle chunk with {} bytes instead of none: it may \
                     have signed early; update the Ethereum app",
                    data.len()
                )));
            }
        }
        self.exchange(last, wait)
    }

    /// One APDU; the reply's data if its status is 9000.
    fn exchange(&self, apdu: &[u8], wait: &Wait) -> Result<Vec<u8>> {
        let reply = self.transport.exchange(apdu, wait)?;
        apdu::reply_data(&reply).map(<[u8]>::to_vec)
    }
}

/// The APDUs that sign `preimage` at `path` (INS `04`), headers included.
///
/// `path ‖ preimage` is cut into chunks of at most 255 bytes, the first with P1 `00` and the
/// rest `80`; the first holds the path and at least the start of the preimage (so a typed
/// transaction's type byte). For a legacy transaction no chunk ends just before the
/// `rlp(chainId) 80 80` suffix: apps before 1.13 take that boundary for the end of a
/// pre-EIP-155 transaction and sign early, without the chain id. The chunk that would end there
/// is one byte shorter.
pub fn transaction_apdus(path: &DerivationPath, preimage: &[u8]) -> Result<Vec<Vec<u8>>> {
    transaction_commands(path, preimage).map(|(_, apdus)| apdus)
}

fn transaction_commands(
    path: &DerivationPath,
    preimage: &[u8],
) -> Result<(TransactionShape, Vec<Vec<u8>>)> {
    let shape = TransactionShape::of(preimage)?;
    let mut payload = path.encode();
    let path_len = payload.len();
    payload.extend_from_slice(preimage);
    let avoid = match shape {
        TransactionShape::Typed => None,
        TransactionShape::Legacy {
            early_sign_offset, ..
        } => Some(path_len + early_sign_offset),
    };
    Ok((shape, commands(ins::SIGN_TRANSACTION, &payload, avoid)?))
}

/// The APDUs that sign an EIP-191 personal message at `path` (INS `08`), headers included:
/// `path ‖ u32 BE length ‖ message` cut into chunks of at most 255 bytes.
pub fn message_apdus(path: &DerivationPath, message: &[u8]) -> Result<Vec<Vec<u8>>> {
    let Ok(length) = u32::try_from(message.len()) else {
        return Err(DeviceError::Payload(format!(
            "is a message of {} bytes: the Ledger takes at most 4 GiB",
            message.len()
        )));
    };
    let mut payload = path.encode();
    payload.extend_from_slice(&length.to_be_bytes());
    payload.extend_from_slice(message);
    commands(ins::SIGN_PERSONAL_MESSAGE, &payload, None)
}

/// Cuts `payload` into full chunks, except that no chunk ends at offset `avoid` (the chunk that
/// would is one byte shorter).
fn commands(ins: u8, payload: &[u8], avoid: Option<usize>) -> Result<Vec<Vec<u8>>> {
    let mut apdus = Vec::with_capacity(payload.len() / MAX_DATA + 1);
    let mut start = 0;
    while start < payload.len() {
        let mut end = payload.len().min(start + MAX_DATA);
        // Only a full chunk can end at `avoid` (it lies before the payload's end), so the
        // shortened chunk still has 254 bytes.
        if avoid == Some(end) && end < payload.len() {
            end -= 1;
        }
        let p1 = if start == 0 {
            P1_FIRST_CHUNK
        } else {
            P1_NEXT_CHUNK
        };
        apdus.push(apdu::command(ins, p1, 0, &payload[start..end])?);
        start = end;
    }
    Ok(apdus)
}

/// What the client needs to know about a preimage before sending it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TransactionShape {
    /// EIP-2718 typed: a type byte, then an RLP list.
    Typed,
    /// Legacy EIP-155 with its chain id.
    Legacy {
        /// Offset in the preimage where the `rlp(chainId) 80 80` suffix starts.
        early_sign_offset: usize,
        chain_id_low_byte: u8,
    },
}

impl TransactionShape {
    fn of(preimage: &[u8]) -> Result<Self> {
        let Some(&first) = preimage.first() else {
            return Err(DeviceError::Payload("is empty".to_owned()));
        };
        if first <= 0x7F {
            // EIP-2718: a type byte, then the type's RLP list to the end.
            rlp::list(&preimage[1..]).map_err(|error| {
                payload_error(
                    &format!("is not a well-formed type-{first} transaction"),
                    error,
                )
            })?;
            return Ok(Self::Typed);
        }
        let items = rlp::list(preimage)
            .map_err(|error| payload_error("is not a well-formed legacy transaction", error))?;
        match items.as_slice() {
            [_, _, _, _, _, _, chain_id, zero_r, zero_s]
                if chain_id.kind == Kind::String
                    && [zero_r, zero_s]
                        .iter()
                        .all(|item| item.kind == Kind::String && item.payload.is_empty()) =>
            {
                let suffix_len = chain_id.end - chain_id.start + 2;
                Ok(Self::Legacy {
                    early_sign_offset: preimage.len() - suffix_len,
                    chain_id_low_byte: chain_id.payload.last().copied().unwrap_or(0),
                })
            }
            items if items.len() == 6 => Err(DeviceError::Payload(
                "is a legacy transaction without a chain id (pre-EIP-155): it could be replayed \
                 on any chain, so it is not sent to the Ledger"
                    .to_owned(),
            )),
            _ => Err(DeviceError::Payload(format!(
                "is not an EIP-155 signing preimage: it has {} items where [nonce, gasPrice, gas, \
                 to, value, data, chainId, 0, 0] has 9",
                items.len()
            ))),
        }
    }
}

fn payload_error(what: &str, error: RlpError) -> DeviceError {
    let reason = match error {
        RlpError::Incomplete => "it ends early",
        RlpError::Malformed(reason) => reason,
    };
    DeviceError::Payload(format!("{what} ({reason})"))
}

fn bad_reply(reason: impl Into<String>) -> DeviceError {
    DeviceError::BadReply(reason.into())
}

/// Reads `41 ‖ pubkey ‖ 28 ‖ 40 EIP-55 characters ‖ [chain code]` and checks that the text is
/// the checksummed address of the key.
fn parse_address_reply(data: &[u8], chain_code: bool) -> Result<AddressInfo> {
    let expected_len = 1 + 65 + 1 + 40 + if chain_code { 32 } else { 0 };
    if data.len() != expected_len {
        return Err(bad_reply(format!(
            "the address reply has {} bytes where {expected_len} were expected",
            data.len()
        )));
    }
    if data[0] != 65 || data[66] != 40 {
        return Err(bad_reply(
            "the address reply's length bytes are not 65 and 40",
        ));
    }
    let mut public_key = [0u8; 65];
    public_key.copy_from_slice(&data[1..66]);
    if public_key[0] != 0x04 || VerifyingKey::from_sec1_bytes(&public_key).is_err() {
        return Err(bad_reply(
            "the public key is not an uncompressed secp256k1 point",
        ));
    }
    let address = Address::from_raw_public_key(&public_key[1..]);
    let text = &data[67..107];
    let checksummed = address.to_checksum(None);
    if text != &checksummed.as_bytes()[2..] {
        let reason = if text.eq_ignore_ascii_case(&checksummed.as_bytes()[2..]) {
            "the address text is not in its EIP-55 checksum case"
        } else {
            "the address text is not the address of the public key"
        };
        return Err(bad_reply(reason));
    }
    let chain_code = if chain_code {
        let mut code = [0u8; 32];
        code.copy_from_slice(&data[107..]);
        Some(code)
    } else {
        None
    };
    Ok(AddressInfo {
        public_key,
        address,
        chain_code,
    })
}

fn split_signature(data: &[u8]) -> Result<(u8, B256, B256)> {
    match data {
        [v, rest @ ..] if rest.len() == 64 => Ok((
            *v,
            B256::from_slice(&rest[..32]),
            B256::from_slice(&rest[32..]),
        )),
        _ => Err(bad_reply(format!(
            "the signature has {} bytes where 65 (v ‖ r ‖ s) were expected",
            data.len()
        ))),
    }
}

/// A message or EIP-712 signature: v = 27 + parity.
fn message_signature(data: &[u8]) -> Result<Signature> {
    let (v, r, s) = split_signature(data)?;
    let y_parity = match v {
        27 | 28 => v == 28,
        _ => {
            return Err(bad_reply(format!(
                "v is {v} for a message signature, where it is 27 or 28"
            )));
        }
    };
    Ok(Signature { v, r, s, y_parity })
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use alloy::primitives::keccak256;

    use super::*;
    use crate::error::TransportError;
    use crate::rlp::encode;

    /// Answers each APDU with the next canned reply and records what it was sent.
    #[derive(Debug, Default)]
    struct Scripted {
        replies: Mutex<VecDeque<Vec<u8>>>,
        sent: Mutex<Vec<Vec<u8>>>,
    }

    impl Scripted {
        fn new(replies: &[&[u8]]) -> Self {
            Self {
                replies: Mutex::new(replies.iter().map(|reply| reply.to_vec()).collect()),
                sent: Mutex::default(),
            }
        }
    }

    impl Transport for Scripted {
        fn exchange(&self, apdu: &[u8], _wait: &Wait) -> Result<Vec<u8>, TransportError> {
            self.sent.lock().unwrap().push(apdu.to_vec());
            self.replies
                .lock()
                .unwrap()
                .pop_front()
                .ok_or(TransportError::Disconnected("script ended".to_owned()))
        }
    }

    fn path() -> DerivationPath {
        DerivationPath::ledger_live(0)
    }

    fn ok(data: &[u8]) -> Vec<u8> {
        [data, &[0x90, 0x00]].concat()
    }

    /// The app's reply for m/44'/60'/0'/0/0 under Speculos's seed, from the transcripts.
    const SPECULOS_ADDRESS_REPLY: &str = "4104ef5b152e3f15eb0c50c9916161c2309e54bd87b9adce722d69716bcdef85f547678e15ab40a78919c7284e67a17ee9a96e8b9886b60f767d93023bac8dbc16e42844616437373931304462444664453736346643323146434434453734443731624241434136443844";

    fn legacy(chain_id: u64, data_len: usize) -> Vec<u8> {
        encode::list(&[
            encode::uint(7),
            encode::uint(20_000_000_000),
            encode::uint(21_000),
            encode::string(&[0x11; 20]),
            encode::uint(1),
            encode::string(&vec![0xAB; data_len]),
            encode::uint(chain_id),
            encode::uint(0),
            encode::uint(0),
        ])
    }

    #[test]
    fn reads_a_valid_address_reply() {
        let reply = hex::decode(SPECULOS_ADDRESS_REPLY).unwrap();
        let info = parse_address_reply(&reply, false).unwrap();
        assert_eq!(
            info.address.to_checksum(None),
            "0xDad77910DbDFdE764fC21FCD4E74D71bBACA6D8D"
        );
        assert_eq!(info.chain_code, None);
        let with_code = [reply.as_slice(), &[0x5A; 32]].concat();
        let info = parse_address_reply(&with_code, true).unwrap();
        assert_eq!(info.chain_code, Some([0x5A; 32]));
        assert!(!format!("{info:?}").contains("5a"), "{info:?}");
    }

    #[test]
    fn bad_address_replies_are_refused() {
        let good = hex::decode(SPECULOS_ADDRESS_REPLY).unwrap();
        let mut wrong_case = good.clone();
        // 'D' of "Dad7…" lower-cased: the same address, the wrong checksum.
        wrong_case[67] = b'd';
        let mut other_address = good.clone();
        other_address[106] = b'3';
        let mut bad_key = good.clone();
        bad_key[1] = 0x02;
        let mut off_curve = good.clone();
        off_curve[65] ^= 0x01;
        let mut bad_length_byte = good.clone();
        bad_length_byte[0] = 0x40;
        let cases: [(&str, Vec<u8>, bool); 8] = [
            ("has 100 bytes where 107", good[..100].to_vec(), false),
            ("has 0 bytes where 107", Vec::new(), false),
            ("has 107 bytes where 139", good.clone(), true),
            ("checksum", wrong_case, false),
            ("not the address", other_address, false),
            ("uncompressed", bad_key, false),
            ("uncompressed", off_curve, false),
            ("65 and 40", bad_length_byte, false),
        ];
        for (reason, data, chain_code) in cases {
            match parse_address_reply(&data, chain_code) {
                Err(DeviceError::BadReply(message)) => {
                    assert!(message.contains(reason), "{reason}: {message}");
                }
                other => panic!("{reason}: {other:?}"),
            }
        }
    }

    #[test]
    fn address_sends_the_path_the_flags_and_the_chain_id() {
        let reply = ok(&hex::decode(SPECULOS_ADDRESS_REPLY).unwrap());
        let app = EthApp::new(Scripted::new(&[&reply, b"\x90\x00"]));
        let wait = Wait::new(None);
        app.address(&path(), Display::OnDevice, false, Some(137), &wait)
            .unwrap();
        let error = app
            .address(&path(), Display::Silent, true, None, &wait)
            .unwrap_err();
        assert!(matches!(error, DeviceError::BadReply(_)), "{error:?}");
        let sent = app.transport().sent.lock().unwrap();
        assert_eq!(
            hex::encode(&sent[0]),
            "e00201001d058000002c8000003c8000000000000000000000000000000000000089"
        );
        assert_eq!(
            hex::encode(&sent[1]),
            "e002000115058000002c8000003c800000000000000000000000"
        );
    }

    #[test]
    fn short_replies_and_statuses_are_errors() {
        let wait = Wait::new(None);
        let app = EthApp::new(Scripted::new(&[
            b"\x90",
            b"\x01\x90\x00",
            b"\x69\x85",
            &ok(&[0x1B; 64]),
        ]));
        assert!(matches!(
            app.configuration(&wait),
            Err(DeviceError::BadReply(_))
        ));
        assert!(matches!(
            app.configuration(&wait),
            Err(DeviceError::BadReply(_))
        ));
        assert_eq!(
            app.sign_personal_message(&path(), b"hi", &wait),
            Err(DeviceError::Rejected)
        );
        assert!(matches!(
            app.sign_personal_message(&path(), b"hi", &wait),
            Err(DeviceError::BadReply(_))
        ));
        assert_eq!(
            app.configuration(&wait),
            Err(DeviceError::Transport(TransportError::Disconnected(
                "script ended".to_owned()
            )))
        );
    }

    #[test]
    fn reads_the_configuration() {
        let app = EthApp::new(Scripted::new(&[
            &ok(&[0x01, 1, 9, 17]),
            &ok(&[0x00, 1, 13, 0]),
        ]));
        let wait = Wait::new(None);
        let config = app.configuration(&wait).unwrap();
        assert_eq!(
            config,
            AppConfiguration {
                blind_signing: true,
                version: (1, 9, 17)
            }
        );
        assert_eq!(config.version_text(), "1.9.17");
        assert!(!app.configuration(&wait).unwrap().blind_signing);
        assert_eq!(
            app.transport().sent.lock().unwrap()[0],
            [0xE0, 0x06, 0, 0, 0]
        );
    }

    #[test]
    fn v_bytes_that_do_not_fit_the_payload_are_refused() {
        let wait = Wait::new(None);
        let signature = |v: u8| ok(&[&[v][..], &[0x22; 64]].concat());
        // Typed: 0 or 1 only.
        let typed = [&[0x02][..], &encode::list(&[encode::uint(1)])].concat();
        let app = EthApp::new(Scripted::new(&[&signature(1), &signature(27)]));
        assert!(
            app.sign_transaction(&path(), &typed, &wait)
                .unwrap()
                .y_parity
        );
        assert!(matches!(
            app.sign_transaction(&path(), &typed, &wait),
            Err(DeviceError::BadReply(_))
        ));
        // Legacy chain 137: v = 309 + parity, mod 256 = 53/54; 27/28 is the early-sign bug.
        let tx = legacy(137, 0);
        let app = EthApp::new(Scripted::new(&[
            &signature(53),
            &signature(54),
            &signature(27),
        ]));
        assert!(!app.sign_transaction(&path(), &tx, &wait).unwrap().y_parity);
        assert!(app.sign_transaction(&path(), &tx, &wait).unwrap().y_parity);
        let error = app.sign_transaction(&path(), &tx, &wait).unwrap_err();
        assert!(
            error.to_string().contains("update the Ethereum app"),
            "{error}"
        );
        // Messages: 27 or 28.
        let app = EthApp::new(Scripted::new(&[&signature(28), &signature(1)]));
        let signature = app.sign_personal_message(&path(), b"x", &wait).unwrap();
        assert!(signature.y_parity);
        assert_eq!(signature.to_rsv()[64], 28);
        assert!(matches!(
            app.sign_personal_message(&path(), b"x", &wait),
            Err(DeviceError::BadReply(_))
        ));
    }

    #[test]
    fn a_middle_chunk_that_answers_data_is_a_bad_reply() {
        let wait = Wait::new(None);
        let app = EthApp::new(Scripted::new(&[&ok(&[0x1B; 65])]));
        let error = app
            .sign_personal_message(&path(), &[0x61; 400], &wait)
            .unwrap_err();
        assert!(matches!(error, DeviceError::BadReply(_)), "{error:?}");
        assert_eq!(app.transport().sent.lock().unwrap().len(), 1);
    }

    #[test]
    fn refuses_preimages_that_are_not_transactions() {
        let cases: [(&str, Vec<u8>); 7] = [
            ("is empty", Vec::new()),
            (
                "not a well-formed legacy transaction (it is not an RLP list)",
                vec![0x80],
            ),
            ("ends early", vec![0xC5, 0x01]),
            ("bytes follow", [legacy(1, 0), vec![0x00]].concat()),
            (
                "without a chain id",
                encode::list(&vec![encode::uint(0); 6]),
            ),
            ("has 8 items", encode::list(&vec![encode::uint(0); 8])),
            ("not a well-formed type-2 transaction", vec![0x02, 0x80]),
        ];
        for (reason, preimage) in cases {
            let error = transaction_apdus(&path(), &preimage).unwrap_err();
            assert!(
                matches!(error, DeviceError::Payload(_)),
                "{reason}: {error:?}"
            );
            assert!(error.to_string().contains(reason), "{reason}: {error}");
        }
        // A nonzero r or s slot is not an EIP-155 signing preimage.
        let mut items = vec![encode::uint(0); 9];
        items[7] = encode::uint(1);
        assert!(transaction_apdus(&path(), &encode::list(&items)).is_err());
    }

    #[test]
    fn message_apdus_cut_greedily() {
        let apdus = message_apdus(&path(), &[0x61; 500]).unwrap();
        let sizes: Vec<usize> = apdus.iter().map(|apdu| apdu.len() - 5).collect();
        // 21 path + 4 length + 500 bytes = 525 = 255 + 255 + 15.
        assert_eq!(sizes, [255, 255, 15]);
        assert_eq!(&apdus[0][..5], &[0xE0, 0x08, 0x00, 0x00, 0xFF]);
        assert_eq!(&apdus[0][26..30], &[0, 0, 0x01, 0xF4]);
        assert_eq!(&apdus[1][..4], &[0xE0, 0x08, 0x80, 0x00]);
        assert_eq!(&apdus[2][..5], &[0xE0, 0x08, 0x80, 0x00, 0x0F]);
        // An empty message is a single APDU with a zero length.
        assert_eq!(
            hex::encode(&message_apdus(&path(), &[]).unwrap()[0]),
            "e008000019058000002c8000003c80000000000000000000000000000000"
        );
    }

    #[test]
    fn the_guard_moves_only_the_boundary_on_the_suffix() {
        // A legacy chain-1 tx long enough for three chunks; shift its length so that each of
        // the first two natural cuts lands on the suffix in turn.
        for data_len in 250..760 {
            let preimage = legacy(1, data_len);
            let path = path();
            let suffix_start = preimage.len() - 3;
            let apdus = transaction_apdus(&path, &preimage).unwrap();
            let mut offset = 0;
            let mut joined = Vec::new();
            for (index, apdu) in apdus.iter().enumerate() {
                let data = &apdu[5..];
                assert!(data.len() <= MAX_DATA && !data.is_empty());
                assert_eq!(usize::from(apdu[4]), data.len());
                assert_eq!(apdu[2], if index == 0 { 0x00 } else { 0x80 });
                joined.extend_from_slice(data);
                offset += data.len();
                assert_ne!(offset, 21 + suffix_start, "data_len {data_len}");
                // Every chunk but the last and a shortened one is full.
                if index + 1 < apdus.len() {
                    let natural_end = offset == 21 + suffix_start - 1;
                    assert!(data.len() == 255 || (data.len() == 254 && natural_end));
                }
            }
            assert_eq!(joined, [path.encode(), preimage.clone()].concat());
        }
    }

    #[test]
    fn recover_address_refuses_a_high_s() {
        let hash = keccak256(b"x");
        let order_minus_one =
            alloy::hex!("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140");
        let signature = Signature {
            v: 27,
            r: B256::repeat_byte(0x11),
            s: B256::from(order_minus_one),
            y_parity: false,
        };
        assert!(matches!(
            signature.recover_address(&hash),
            Err(DeviceError::BadReply(_))
        ));
        let zero = Signature {
            s: B256::ZERO,
            ..signature
        };
        assert!(zero.recover_address(&hash).is_err());
    }
}
