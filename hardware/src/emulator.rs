//! An in-process emulator of the Ledger Ethereum app, written from `shared/ledger/APDU.md` alone,
//! for tests and development without a device.
//!
//! It holds a software key from a BIP-39 phrase, answers every command of APDU.md byte for byte
//! as the app does (checked against transcripts of the real app under Speculos), and can play a
//! person who approves, rejects or is slow, a locked device, an app that is not open, a fresh
//! app with blind signing off, and an app older than 1.13 with its early-signing bug.
//!
//! It must never print, log or record key material: its `Debug` shows only its options, and its
//! log holds the APDUs it received (paths and payloads, nothing secret).
//!
//! Where APDU.md is silent, the choices are:
//! - a continuation chunk (P1 `80`) with no command in progress answers `6980` (out of
//!   sequence), and any other command abandons the one in progress, as the app does;
//! - a command that arrives while another is waiting for the person answers `6986` (busy);
//! - a path whose count byte is 0 or above 10 answers `6A80`; data that ends before the path,
//!   the message length or the hashes do, or that runs past them, answers `6A87`;
//! - a transaction that is not an RLP list of the right shape for its type (legacy 6 or 9
//!   items, EIP-2930 8, EIP-1559 9; other types are unknown to 1.9 apps) answers `6A80`;
//! - hashed EIP-712 with blind signing off answers `6A80`, as current apps do;
//! - [`Mode::AppNotOpen`] answers `6D00` (instruction not supported) to everything.

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};
use std::thread;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, keccak256};
use coins_bip32::prelude::{Hint, XKeyInfo};
use coins_bip32::xkeys::{Parent, XPriv};
use k256::ecdsa::SigningKey;
use zeroize::Zeroizing;

use crate::apdu::{CLA, P1_FIRST_CHUNK, P1_NEXT_CHUNK, ins, sw};
use crate::error::{DeviceError, Result, TransportError};
use crate::path::DerivationPath;
use crate::rlp::{self, Kind, RlpError};
use crate::transport::{Transport, Wait};

/// Speculos's default recovery phrase: public, and what the transcripts were recorded with.
/// m/44'/60'/0'/0/0 is `0xDad77910DbDFdE764fC21FCD4E74D71bBACA6D8D`. Never hold funds with it.
pub const SPECULOS_SEED: &str = "glory promote mansion idle axis finger extra february uncover one \
                                 trip resource lawn turtle enact monster seven myth punch hobby \
                                 comfort wild raise skin";

/// How often a person who takes their time is checked on ([`Wait::check`]).
const POLL: Duration = Duration::from_millis(10);

/// The first app version that no longer signs early on a chunk boundary.
const FIXED_EARLY_SIGNING: (u8, u8, u8) = (1, 13, 0);

/// What the person in front of the emulated device does, or what state the device is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Unlocked, app open, the person approves every prompt.
    #[default]
    Approve,
    /// The person rejects every prompt (`6985`).
    Reject,
    /// The device is locked: `5515` to everything.
    Locked,
    /// Another app, or the dashboard, is open: `6D00` to everything.
    AppNotOpen,
}

/// How the emulated app is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatorOptions {
    pub mode: Mode,
    /// The app's "blind signing" setting; off in a freshly installed app.
    pub blind_signing: bool,
    /// The app version it reports and behaves as (major, minor, patch).
    pub version: (u8, u8, u8),
    /// How long the person takes to answer each prompt.
    pub user_delay: Duration,
}

impl Default for EmulatorOptions {
    /// A fresh app 1.9.17 (the version of the transcripts) whose person approves at once.
    fn default() -> Self {
        Self {
            mode: Mode::Approve,
            blind_signing: false,
            version: (1, 9, 17),
            user_delay: Duration::ZERO,
        }
    }
}

/// The emulated device. Cheap to share: every method takes `&self`.
pub struct Emulator {
    root: RootKey,
    options: Mutex<EmulatorOptions>,
    session: Mutex<Session>,
    log: Mutex<Vec<Vec<u8>>>,
}

/// The BIP-32 master key. coins-bip32's `XPriv` serializes to an xprv string; it stays in here,
/// where nothing prints it.
struct RootKey(XPriv);

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator")
            .field("root", &self.root)
            .field("options", &self.options())
            .field("received", &lock(&self.log).len())
            .finish()
    }
}

/// A chunked command waiting for its next chunk.
#[derive(Debug, Default)]
enum Session {
    #[default]
    Idle,
    Transaction {
        path: DerivationPath,
        received: Vec<u8>,
    },
    Message {
        path: DerivationPath,
        length: usize,
        received: Vec<u8>,
    },
}

/// Why a command ends without data: a status word, or the wait for the person ended.
#[derive(Debug)]
enum Fail {
    Status(u16),
    Wait(TransportError),
}

impl From<TransportError> for Fail {
    fn from(error: TransportError) -> Self {
        Self::Wait(error)
    }
}

type Answer = std::result::Result<Vec<u8>, Fail>;

fn status(word: u16) -> Fail {
    Fail::Status(word)
}

/// A command as the device reads it.
struct Command<'a> {
    ins: u8,
    p1: u8,
    p2: u8,
    data: &'a [u8],
}

impl<'a> Command<'a> {
    fn parse(apdu: &'a [u8]) -> std::result::Result<Self, Fail> {
        match apdu {
            [cla, ..] if *cla != CLA => Err(status(sw::CLA_NOT_SUPPORTED)),
            [_, ins, p1, p2, length, data @ ..] if usize::from(*length) == data.len() => Ok(Self {
                ins: *ins,
                p1: *p1,
                p2: *p2,
                data,
            }),
            _ => Err(status(sw::WRONG_LENGTH)),
        }
    }
}

impl Emulator {
    /// An emulator whose keys come from `mnemonic` (English BIP-39, no passphrase).
    pub fn new(mnemonic: &str, options: EmulatorOptions) -> Result<Self> {
        let mnemonic = bip39::Mnemonic::parse_in_normalized(bip39::Language::English, mnemonic)
            .map_err(|error| {
                DeviceError::Emulator(match error {
                    bip39::Error::BadWordCount(count) => format!(
                        "a recovery phrase has 12, 15, 18, 21 or 24 words; this one has {count}"
                    ),
                    bip39::Error::UnknownWord(index) => format!(
                        "word {} of the recovery phrase is not in the BIP-39 English list",
                        index + 1
                    ),
                    _ => "the recovery phrase's checksum does not match".to_owned(),
                })
            })?;
        let seed = Zeroizing::new(mnemonic.to_seed(""));
        drop(mnemonic);
        let root = XPriv::root_from_seed(seed.as_slice(), Some(Hint::Legacy)).map_err(|_| {
            DeviceError::Emulator("the recovery phrase gives an invalid master key".to_owned())
        })?;
        Ok(Self {
            root: RootKey(root),
            options: Mutex::new(options),
            session: Mutex::default(),
            log: Mutex::default(),
        })
    }

    /// An emulator with [`SPECULOS_SEED`], the phrase the transcripts were recorded with.
    pub fn speculos(options: EmulatorOptions) -> Self {
        match Self::new(SPECULOS_SEED, options) {
            Ok(emulator) => emulator,
            // The phrase is a constant that the tests parse; this arm cannot run.
            Err(error) => unreachable!("SPECULOS_SEED is a valid phrase: {error}"),
        }
    }

    /// The current options.
    pub fn options(&self) -> EmulatorOptions {
        lock(&self.options).clone()
    }

    /// Changes the options from the next command on (as if the person changed a setting,
    /// locked the device or closed the app).
    pub fn set_options(&self, options: EmulatorOptions) {
        *lock(&self.options) = options;
    }

    /// Every APDU received so far, in order.
    pub fn log(&self) -> Vec<Vec<u8>> {
        lock(&self.log).clone()
    }

    /// Forgets the APDUs received so far.
    pub fn clear_log(&self) {
        lock(&self.log).clear();
    }

    /// The address at `path`, computed without a command (for tests to compare against).
    pub fn address(&self, path: &DerivationPath) -> Result<Address> {
        let node = self
            .derive(path)
            .map_err(|_| DeviceError::Emulator(format!("{path} leads to an invalid key")))?;
        Ok(address_of(&public_key(&node)))
    }

    fn derive(&self, path: &DerivationPath) -> std::result::Result<XPriv, Fail> {
        let mut node = self.root.0.clone();
        for &index in path.indexes() {
            // Odds of an invalid child are about 2^-127; the app would refuse the path too.
            node = node
                .derive_child(index)
                .map_err(|_| status(sw::INVALID_DATA))?;
        }
        Ok(node)
    }

    /// Signs a 32-byte hash with the key at `path`: RFC 6979, low s. Returns `(r ‖ s, parity)`.
    fn sign(
        &self,
        path: &DerivationPath,
        hash: &B256,
    ) -> std::result::Result<([u8; 64], bool), Fail> {
        let node = self.derive(path)?;
        let key: &SigningKey = node.as_ref();
        let (signature, recovery_id) = key.sign_prehash_recoverable(hash.as_slice());
        let mut rs = [0u8; 64];
        rs.copy_from_slice(&signature.to_bytes());
        Ok((rs, recovery_id.is_y_odd()))
    }

    fn dispatch(
        &self,
        session: &mut Session,
        apdu: &[u8],
        options: &EmulatorOptions,
        wait: &Wait,
    ) -> Answer {
        // Whatever was in progress ends here unless this command continues it and puts it back.
        let previous = std::mem::take(session);
        let command = Command::parse(apdu)?;
        let person = Person { options, wait };
        match command.ins {
            ins::GET_ADDRESS => self.get_address(&command, &person),
            ins::SIGN_TRANSACTION => {
                self.sign_transaction_chunk(&command, previous, session, &person)
            }
            ins::GET_CONFIGURATION => configuration(&command, options),
            ins::SIGN_PERSONAL_MESSAGE => {
                self.sign_message_chunk(&command, previous, session, &person)
            }
            ins::SIGN_EIP712_HASHED => self.sign_typed_data_hashed(&command, &person),
            _ => Err(status(sw::INS_NOT_SUPPORTED)),
        }
    }

    fn get_address(&self, command: &Command<'_>, person: &Person<'_>) -> Answer {
        if command.p1 > 1 || command.p2 > 1 {
            return Err(status(sw::WRONG_PARAMETERS));
        }
        let (path, rest) = read_path(command.data)?;
        // An optional chain id only changes what the screen shows.
        if !(rest.is_empty() || rest.len() == 8) {
            return Err(status(sw::WRONG_LENGTH));
        }
        let node = self.derive(&path)?;
        let public_key = public_key(&node);
        if command.p1 == 1 {
            person.confirm()?;
        }
        let checksummed = address_of(&public_key).to_checksum(None);
        let mut reply = Vec::with_capacity(1 + 65 + 1 + 40 + 32);
        reply.push(65);
        reply.extend_from_slice(&public_key);
        reply.push(40);
        reply.extend_from_slice(&checksummed.as_bytes()[2..]);
        if command.p2 == 1 {
            let info: &XKeyInfo = node.as_ref();
            reply.extend_from_slice(&info.chain_code.0);
        }
        Ok(reply)
    }

    fn sign_transaction_chunk(
        &self,
        command: &Command<'_>,
        previous: Session,
        session: &mut Session,
        person: &Person<'_>,
    ) -> Answer {
        if command.p2 != 0 {
            return Err(status(sw::WRONG_PARAMETERS));
        }
        let (path, received) = match (command.p1, previous) {
            (P1_FIRST_CHUNK, _) => {
                let (path, rest) = read_path(command.data)?;
                (path, rest.to_vec())
            }
            (P1_NEXT_CHUNK, Session::Transaction { path, mut received }) => {
                received.extend_from_slice(command.data);
                (path, received)
            }
            (P1_NEXT_CHUNK, _) => return Err(status(sw::OUT_OF_SEQUENCE)),
            _ => return Err(status(sw::WRONG_PARAMETERS)),
        };
        let (signed, v_rule) = match transaction_progress(&received, person.options.version)? {
            Progress::NeedMore => {
                *session = Session::Transaction { path, received };
                return Ok(Vec::new());
            }
            Progress::Complete { has_data, v_rule } => (has_data, v_rule),
            // The old app's bug: it takes what it has for a whole pre-EIP-155 transaction.
            Progress::EarlySign { has_data } => (has_data, VRule::PreEip155),
        };
        if signed && !person.options.blind_signing {
            return Err(status(sw::INVALID_DATA));
        }
        person.confirm()?;
        let (rs, parity) = self.sign(&path, &keccak256(&received))?;
        let parity = u8::from(parity);
        let v = match v_rule {
            VRule::Parity => parity,
            VRule::Eip155 { chain_id_low_byte } => chain_id_low_byte
                .wrapping_mul(2)
                .wrapping_add(35)
                .wrapping_add(parity),
            VRule::PreEip155 => 27 + parity,
        };
        Ok(signature_reply(v, &rs))
    }

    fn sign_message_chunk(
        &self,
        command: &Command<'_>,
        previous: Session,
        session: &mut Session,
        person: &Person<'_>,
    ) -> Answer {
        if command.p2 != 0 {
            return Err(status(sw::WRONG_PARAMETERS));
        }
        let (path, length, received) = match (command.p1, previous) {
            (P1_FIRST_CHUNK, _) => {
                let (path, rest) = read_path(command.data)?;
                let Some((length, message)) = rest.split_first_chunk::<4>() else {
                    return Err(status(sw::WRONG_LENGTH));
                };
                let length = usize::try_from(u32::from_be_bytes(*length))
                    .map_err(|_| status(sw::WRONG_LENGTH))?;
                (path, length, message.to_vec())
            }
            (
                P1_NEXT_CHUNK,
                Session::Message {
                    path,
                    length,
                    mut received,
                },
            ) => {
                received.extend_from_slice(command.data);
                (path, length, received)
            }
            (P1_NEXT_CHUNK, _) => return Err(status(sw::OUT_OF_SEQUENCE)),
            _ => return Err(status(sw::WRONG_PARAMETERS)),
        };
        if received.len() > length {
            return Err(status(sw::WRONG_LENGTH));
        }
        if received.len() < length {
            *session = Session::Message {
                path,
                length,
                received,
            };
            return Ok(Vec::new());
        }
        person.confirm()?;
        let mut prefixed = format!("\x19Ethereum Signed Message:\n{length}").into_bytes();
        prefixed.extend_from_slice(&received);
        let (rs, parity) = self.sign(&path, &keccak256(&prefixed))?;
        Ok(signature_reply(27 + u8::from(parity), &rs))
    }

    fn sign_typed_data_hashed(&self, command: &Command<'_>, person: &Person<'_>) -> Answer {
        if command.p1 != 0 || command.p2 != 0 {
            return Err(status(sw::WRONG_PARAMETERS));
        }
        let (path, rest) = read_path(command.data)?;
        if rest.len() != 64 {
            return Err(status(sw::WRONG_LENGTH));
        }
        if !person.options.blind_signing {
            return Err(status(sw::INVALID_DATA));
        }
        person.confirm()?;
        let mut encoded = vec![0x19, 0x01];
        encoded.extend_from_slice(rest);
        let (rs, parity) = self.sign(&path, &keccak256(&encoded))?;
        Ok(signature_reply(27 + u8::from(parity), &rs))
    }
}

impl Transport for Emulator {
    fn exchange(&self, apdu: &[u8], wait: &Wait) -> std::result::Result<Vec<u8>, TransportError> {
        lock(&self.log).push(apdu.to_vec());
        let options = self.options();
        let answer = match options.mode {
            Mode::Locked => Err(status(sw::LOCKED)),
            Mode::AppNotOpen => Err(status(sw::INS_NOT_SUPPORTED)),
            Mode::Approve | Mode::Reject => match self.session.try_lock() {
                Ok(mut session) => self.dispatch(&mut session, apdu, &options, wait),
                Err(TryLockError::Poisoned(poisoned)) => {
                    self.dispatch(&mut poisoned.into_inner(), apdu, &options, wait)
                }
                // Another command is waiting for the person.
                Err(TryLockError::WouldBlock) => Err(status(sw::BUSY)),
            },
        };
        match answer {
            Ok(mut data) => {
                data.extend_from_slice(&sw::OK.to_be_bytes());
                Ok(data)
            }
            Err(Fail::Status(word)) => Ok(word.to_be_bytes().to_vec()),
            Err(Fail::Wait(error)) => Err(error),
        }
    }
}

/// The person at the device, asked to confirm.
struct Person<'a> {
    options: &'a EmulatorOptions,
    wait: &'a Wait,
}

impl Person<'_> {
    /// Takes `user_delay` to answer, looking at the wait every [`POLL`]; then approves or
    /// rejects by the mode.
    fn confirm(&self) -> std::result::Result<(), Fail> {
        let asked = Instant::now();
        loop {
            self.wait.check()?;
            let Some(left) = self.options.user_delay.checked_sub(asked.elapsed()) else {
                break;
            };
            if left.is_zero() {
                break;
            }
            thread::sleep(left.min(POLL));
        }
        match self.options.mode {
            Mode::Reject => Err(status(sw::REJECTED)),
            _ => Ok(()),
        }
    }
}

fn configuration(command: &Command<'_>, options: &EmulatorOptions) -> Answer {
    if command.p1 != 0 || command.p2 != 0 {
        return Err(status(sw::WRONG_PARAMETERS));
    }
    if !command.data.is_empty() {
        return Err(status(sw::WRONG_LENGTH));
    }
    let (major, minor, patch) = options.version;
    Ok(vec![u8::from(options.blind_signing), major, minor, patch])
}

/// The path at the front of a first chunk, and what follows it.
fn read_path(data: &[u8]) -> std::result::Result<(DerivationPath, &[u8]), Fail> {
    match DerivationPath::decode(data) {
        Some(decoded) => Ok(decoded),
        None => match data.first() {
            Some(&count) if (1..=10).contains(&count) => Err(status(sw::WRONG_LENGTH)),
            Some(_) => Err(status(sw::INVALID_DATA)),
            None => Err(status(sw::WRONG_LENGTH)),
        },
    }
}

/// How far a transaction has arrived.
#[derive(Debug, PartialEq, Eq)]
enum Progress {
    NeedMore,
    Complete {
        has_data: bool,
        v_rule: VRule,
    },
    /// An app before 1.13 stops here: the chunk ended right after a legacy data field.
    EarlySign {
        has_data: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VRule {
    /// Typed transactions: v is the parity.
    Parity,
    /// Legacy EIP-155: (chainId·2 + 35 + parity) mod 256.
    Eip155 { chain_id_low_byte: u8 },
    /// Legacy without a chain id: 27 + parity.
    PreEip155,
}

fn transaction_progress(
    received: &[u8],
    version: (u8, u8, u8),
) -> std::result::Result<Progress, Fail> {
    let invalid = || status(sw::INVALID_DATA);
    let Some(&first) = received.first() else {
        return Ok(Progress::NeedMore);
    };
    let tx_type = (first <= 0x7F).then_some(first);
    if !matches!(tx_type, None | Some(1 | 2)) {
        return Err(invalid());
    }
    let body_start = usize::from(tx_type.is_some());
    let body = &received[body_start..];
    let header = match rlp::header(body) {
        Ok(header) if header.kind == Kind::List => header,
        Ok(_) | Err(RlpError::Malformed(_)) => return Err(invalid()),
        Err(RlpError::Incomplete) => return Ok(Progress::NeedMore),
    };
    let total = header.total_len().map_err(|_| invalid())?;
    if body.len() > total {
        return Err(invalid());
    }
    if body.len() < total {
        if tx_type.is_none() && version < FIXED_EARLY_SIGNING {
            let ends = rlp::arrived_item_ends(body, header.header_len).map_err(|_| invalid())?;
            if let [.., before_data, data_end] = ends.as_slice()
                && ends.len() == 6
                && *data_end == body.len()
            {
                return Ok(Progress::EarlySign {
                    has_data: body[*before_data..*data_end] != [0x80],
                });
            }
        }
        return Ok(Progress::NeedMore);
    }
    let items = rlp::list(body).map_err(|_| invalid())?;
    let (data, v_rule) = match (tx_type, items.as_slice()) {
        (None, [_, _, _, _, _, data, chain_id, _, _]) => (
            data,
            VRule::Eip155 {
                chain_id_low_byte: chain_id.payload.last().copied().unwrap_or(0),
            },
        ),
        (None, [_, _, _, _, _, data]) => (data, VRule::PreEip155),
        (Some(1), [_, _, _, _, _, _, data, _]) | (Some(2), [_, _, _, _, _, _, _, data, _]) => {
            (data, VRule::Parity)
        }
        _ => return Err(invalid()),
    };
    Ok(Progress::Complete {
        has_data: !data.payload.is_empty(),
        v_rule,
    })
}

fn public_key(node: &XPriv) -> [u8; 65] {
    let key: &SigningKey = node.as_ref();
    let point = key.verifying_key().to_sec1_point(false);
    let mut bytes = [0u8; 65];
    bytes.copy_from_slice(point.as_bytes());
    bytes
}

fn address_of(public_key: &[u8; 65]) -> Address {
    Address::from_slice(&keccak256(&public_key[1..])[12..])
}

fn signature_reply(v: u8, rs: &[u8; 64]) -> Vec<u8> {
    let mut reply = Vec::with_capacity(65);
    reply.push(v);
    reply.extend_from_slice(rs);
    reply
}

/// Locks a mutex whose data stays consistent even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(emulator: &Emulator, apdu: &str) -> String {
        let reply = emulator
            .exchange(&hex::decode(apdu).unwrap(), &Wait::new(None))
            .unwrap();
        hex::encode(reply)
    }

    const PATH: &str = "058000002c8000003c800000000000000000000000";

    #[test]
    fn is_send_and_sync_and_prints_no_secret() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Emulator>();
        let emulator = Emulator::speculos(EmulatorOptions::default());
        let printed = format!("{emulator:?}");
        assert!(printed.contains("[REDACTED]"), "{printed}");
        for word in SPECULOS_SEED.split(' ') {
            assert!(!printed.contains(word), "{printed}");
        }
        assert!(!printed.contains("xprv"), "{printed}");
    }

    #[test]
    fn refuses_bad_phrases_without_quoting_them() {
        let cases = [
            ("glory promote", "has 2"),
            (
                "glory promote mansion idle axis finger extra february uncover one trip zzzz",
                "word 12",
            ),
            (
                "glory promote mansion idle axis finger extra february uncover one trip trip",
                "checksum",
            ),
        ];
        for (phrase, reason) in cases {
            let error = Emulator::new(phrase, EmulatorOptions::default()).unwrap_err();
            let message = error.to_string();
            assert!(matches!(error, DeviceError::Emulator(_)), "{error:?}");
            assert!(message.contains(reason), "{message}");
            assert!(!message.contains("glory"), "{message}");
        }
    }

    #[test]
    fn answers_malformed_commands_with_their_status_words() {
        let emulator = Emulator::speculos(EmulatorOptions::default());
        let cases = [
            ("e1020000", "6e00"),
            ("e00200", "6a87"),
            (&format!("e0020000ff{PATH}"), "6a87"),
            (&format!("e0ff000015{PATH}"), "6d00"),
            (&format!("e0020200 15{PATH}").replace(' ', ""), "6b00"),
            (&format!("e0020002 15{PATH}").replace(' ', ""), "6b00"),
            ("e002000001 00", "6a80"),
            ("e002000001 0b", "6a80"),
            ("e002000002 0580", "6a87"),
            (&format!("e002000016{PATH}00"), "6a87"),
            ("e006010000", "6b00"),
            ("e00600000100", "6a87"),
            (&format!("e004800015{PATH}"), "6980"),
            (&format!("e004400015{PATH}"), "6b00"),
            (&format!("e004000115{PATH}"), "6b00"),
            (&format!("e008800015{PATH}"), "6980"),
            (&format!("e008000015{PATH}"), "6a87"),
            (&format!("e008000017{PATH}0000"), "6a87"),
            (&format!("e00800001a{PATH}0000000001"), "6a87"),
            (&format!("e00c000015{PATH}"), "6a87"),
            (&format!("e00c010055{PATH}{}", "00".repeat(64)), "6b00"),
            // A fresh app refuses hashed EIP-712: blind signing is off.
            (&format!("e00c000055{PATH}{}", "00".repeat(64)), "6a80"),
            // Type 3 is unknown to the app.
            (&format!("e004000017{PATH}03c0"), "6a80"),
            // Not a list.
            (&format!("e004000016{PATH}80"), "6a80"),
            // Bytes after the end of the list.
            (&format!("e004000018{PATH}c08080"), "6a80"),
            // A complete list that is not a transaction.
            (&format!("e004000016{PATH}c0"), "6a80"),
        ];
        for (apdu, expected) in cases {
            let apdu = apdu.replace(' ', "");
            assert_eq!(send(&emulator, &apdu), expected, "{apdu}");
        }
    }

    #[test]
    fn any_other_command_abandons_a_transaction_in_progress() {
        let emulator = Emulator::speculos(EmulatorOptions::default());
        // The first chunk of a long list: c0-header for 300 bytes (f9 012c) and a nonce.
        assert_eq!(
            send(&emulator, &format!("e004000019{PATH}f9012c80")),
            "9000"
        );
        assert_eq!(send(&emulator, "e006000000"), "000109119000");
        assert_eq!(send(&emulator, "e00480000180"), "6980");
    }

    #[test]
    fn configuration_reports_the_options() {
        let emulator = Emulator::speculos(EmulatorOptions {
            blind_signing: true,
            version: (1, 12, 0),
            ..EmulatorOptions::default()
        });
        assert_eq!(send(&emulator, "e006000000"), "01010c009000");
        emulator.set_options(EmulatorOptions::default());
        assert_eq!(send(&emulator, "e006000000"), "000109119000");
        assert_eq!(emulator.log().len(), 2);
        emulator.clear_log();
        assert!(emulator.log().is_empty());
    }

    #[test]
    fn the_chain_code_follows_the_address_when_asked() {
        let emulator = Emulator::speculos(EmulatorOptions::default());
        let plain = send(&emulator, &format!("e002000015{PATH}"));
        let with_code = send(&emulator, &format!("e002000115{PATH}"));
        let with_chain_id = send(&emulator, &format!("e00200001d{PATH}0000000000000089"));
        assert_eq!(plain.len(), (107 + 2) * 2);
        assert_eq!(with_code.len(), (107 + 32 + 2) * 2);
        assert_eq!(with_code[..214], plain[..214]);
        assert_eq!(with_chain_id, plain);
    }
}
