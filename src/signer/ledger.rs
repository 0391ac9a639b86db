//! The Ledger signer: the key stays on the device, whose screen is a second trusted display.
//!
//! keyward sends the device exactly the bytes the human approved (the transaction's signing
//! preimage, the message, or the typed data's two hashes), after checking they still hash to the
//! approved digest. Before signing it reads the account's address from the device and compares
//! it with the vault's, so a different Ledger (or a different passphrase) is caught before the
//! person is asked anything. After signing it recovers the signer from the approved digest and
//! the signature: if the device signed anything else, nothing is sent.
//!
//! Every device call blocks until the person answers: [`Signer`] methods here must run off the
//! async runtime (`spawn_blocking`), and each is bounded by `ledger.timeout_seconds`.

use std::sync::Arc;

use alloy::primitives::{Address, U256};
use keyward_hardware::{
    DerivationPath, DeviceError, Display, Emulator, EmulatorOptions, EthApp, Mode, Transport, Wait,
};

use super::{
    Message, SignedTx, Signer, SignerError, check_digest, check_message_digest, finish,
    finish_message,
};
use crate::chain::tx::{TxSignature, UnsignedTx};
use crate::config::{EmulatorMode, LedgerSettings, LedgerTransport};
use crate::confirm::Approved;

/// How keyward reaches the Ledger: one per server, opened for each use (a USB device is held only
/// while it signs).
#[derive(Debug)]
pub struct Ledger {
    settings: LedgerSettings,
    /// The in-process emulator keeps its state (its mode, its log) for the server's life.
    emulator: Option<Arc<Emulator>>,
}

impl Ledger {
    pub fn new(settings: &LedgerSettings) -> Result<Self, DeviceError> {
        let emulator = match &settings.transport {
            LedgerTransport::Emulator(emulated) => {
                Some(Arc::new(Emulator::speculos(EmulatorOptions {
                    mode: match emulated.mode {
                        EmulatorMode::Approve => Mode::Approve,
                        EmulatorMode::Reject => Mode::Reject,
                        EmulatorMode::Locked => Mode::Locked,
                        EmulatorMode::AppNotOpen => Mode::AppNotOpen,
                    },
                    blind_signing: emulated.blind_signing,
                    version: emulated.version,
                    user_delay: emulated.user_delay,
                })))
            }
            LedgerTransport::Hid | LedgerTransport::Speculos(_) => None,
        };
        Ok(Self {
            settings: settings.clone(),
            emulator,
        })
    }

    /// A wait of `ledger.timeout_seconds`.
    pub fn wait(&self) -> Wait {
        Wait::new(Some(self.settings.timeout))
    }

    /// Opens the transport the configuration names. Blocks.
    pub fn open(&self, wait: &Wait) -> Result<EthApp<Box<dyn Transport>>, DeviceError> {
        let transport: Box<dyn Transport> = match &self.settings.transport {
            LedgerTransport::Hid => open_hid()?,
            LedgerTransport::Speculos(address) => Box::new(
                keyward_hardware::SpeculosTransport::connect(*address, wait)?,
            ),
            LedgerTransport::Emulator(_) => match &self.emulator {
                Some(emulator) => Box::new(emulator.clone()),
                None => return Err(keyward_hardware::TransportError::NoDevice.into()),
            },
        };
        Ok(EthApp::new(transport))
    }

    /// What the configured transport is, for messages.
    pub fn describe(&self) -> &'static str {
        match self.settings.transport {
            LedgerTransport::Hid => "Ledger on USB",
            LedgerTransport::Speculos(_) => "Speculos emulator",
            LedgerTransport::Emulator(_) => {
                "built-in Ledger emulator (public test seed: never send it real funds)"
            }
        }
    }

    /// A signer for the account at `path` whose address the vault records as `address`.
    pub fn signer(
        self: &Arc<Self>,
        path: &str,
        address: Address,
    ) -> Result<LedgerSigner, SignerError> {
        let path = DerivationPath::parse(path)?;
        Ok(LedgerSigner {
            ledger: self.clone(),
            path,
            address,
        })
    }
}

#[cfg(feature = "hid")]
fn open_hid() -> Result<Box<dyn Transport>, DeviceError> {
    Ok(Box::new(keyward_hardware::HidTransport::open_first()?))
}

#[cfg(not(feature = "hid"))]
fn open_hid() -> Result<Box<dyn Transport>, DeviceError> {
    Err(DeviceError::Transport(
        keyward_hardware::TransportError::Disconnected(
            "this keyward was built without USB support (the hid feature)".to_owned(),
        ),
    ))
}

/// Signs with the Ledger for one account.
#[derive(Debug)]
pub struct LedgerSigner {
    ledger: Arc<Ledger>,
    path: DerivationPath,
    address: Address,
}

impl LedgerSigner {
    fn open(&self, wait: &Wait) -> Result<EthApp<Box<dyn Transport>>, SignerError> {
        let app = self.ledger.open(wait)?;
        check_device(&app, &self.path, self.address, wait)?;
        Ok(app)
    }
}

/// Checks the device holds `address` at `path`: the re-check on every connection.
fn check_device<T: Transport>(
    app: &EthApp<T>,
    path: &DerivationPath,
    address: Address,
    wait: &Wait,
) -> Result<(), SignerError> {
    let found = app.address(path, Display::Silent, false, None, wait)?;
    if found.address != address {
        return Err(SignerError::OtherDevice {
            path: path.to_string(),
            expected: address,
            found: found.address,
        });
    }
    Ok(())
}

/// Has the device sign the approved transaction's exact preimage, and proves by recovery that
/// the signature is over the approved digest by `address`.
fn sign_transaction_on<T: Transport>(
    app: &EthApp<T>,
    path: &DerivationPath,
    address: Address,
    tx: &UnsignedTx,
    hash: &alloy::primitives::B256,
    wait: &Wait,
) -> Result<SignedTx, SignerError> {
    let signature = app.sign_transaction(path, &tx.signing_payload(), wait)?;
    finish(tx, hash, &tx_signature(&signature), address)
}

fn tx_signature(signature: &keyward_hardware::Signature) -> TxSignature {
    TxSignature {
        y_parity: signature.y_parity,
        r: U256::from_be_bytes(signature.r.0),
        s: U256::from_be_bytes(signature.s.0),
    }
}

impl Signer for LedgerSigner {
    fn address(&self) -> Address {
        self.address
    }

    fn sign_transaction(&self, approved: &Approved<UnsignedTx>) -> Result<SignedTx, SignerError> {
        let hash = check_digest(approved)?;
        let wait = self.ledger.wait();
        let app = self.open(&wait)?;
        sign_transaction_on(
            &app,
            &self.path,
            self.address,
            approved.value(),
            &hash,
            &wait,
        )
    }

    fn sign_message(&self, approved: &Approved<Message>) -> Result<[u8; 65], SignerError> {
        let hash = check_message_digest(approved)?;
        let wait = self.ledger.wait();
        let signature = match approved.value() {
            Message::Personal(bytes) => {
                let app = self.open(&wait)?;
                app.sign_personal_message(&self.path, bytes, &wait)?
            }
            Message::Typed(data) => {
                let message_hash = data.message_hash().ok_or(SignerError::Unsupported(
                    "the Ethereum app signs typed data as a domain and a message; it cannot sign \
                     domain-only typed data (primaryType EIP712Domain)",
                ))?;
                let app = self.open(&wait)?;
                app.sign_typed_data_hashed(
                    &self.path,
                    &data.domain_separator(),
                    &message_hash,
                    &wait,
                )?
            }
        };
        finish_message(&hash, &tx_signature(&signature), self.address)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use alloy::primitives::{Address, U256};
    use keyward_hardware::{
        DerivationPath, Emulator, EmulatorOptions, EthApp, Transport, TransportError, Wait,
    };

    use super::{check_device, sign_transaction_on};
    use crate::chain::tx::UnsignedTx;
    use crate::signer::SignerError;

    const DEVICE: &str = "0xDad77910DbDFdE764fC21FCD4E74D71bBACA6D8D";

    /// A link that changes the last byte of the value in a signing APDU (the transfer's preimage
    /// ends `… value ‖ 80 ‖ c0`), keeping it a valid transaction: what a compromised USB stack or
    /// a buggy device would do.
    #[derive(Debug)]
    struct Tampering {
        device: Emulator,
        tampered: Mutex<u32>,
    }

    impl Transport for Tampering {
        fn exchange(&self, apdu: &[u8], wait: &Wait) -> Result<Vec<u8>, TransportError> {
            let mut apdu = apdu.to_vec();
            let at = apdu.len().saturating_sub(3);
            if apdu.get(1) == Some(&0x04)
                && let Some(byte) = apdu.get_mut(at)
            {
                *byte ^= 0x01;
                *self
                    .tampered
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
            }
            self.device.exchange(&apdu, wait)
        }
    }

    fn transfer() -> UnsignedTx {
        UnsignedTx {
            chain_id: 31337,
            nonce: 3,
            max_priority_fee_per_gas: 1_000_000_000,
            max_fee_per_gas: 3_000_000_000,
            gas_limit: 21_000,
            to: Address::repeat_byte(0x11),
            value: U256::from(10u64).pow(U256::from(18u64)),
            input: Vec::new(),
        }
    }

    #[test]
    fn the_device_signs_the_approved_preimage_and_it_recovers_to_the_account() {
        let app = EthApp::new(Emulator::speculos(EmulatorOptions::default()));
        let path = DerivationPath::parse("m/44'/60'/0'/0/0").unwrap();
        let address: Address = DEVICE.parse().unwrap();
        let wait = Wait::new(None);
        check_device(&app, &path, address, &wait).unwrap();
        let tx = transfer();
        let signed =
            sign_transaction_on(&app, &path, address, &tx, &tx.signing_hash(), &wait).unwrap();
        assert_eq!(signed.raw[0], 0x02);
    }

    #[test]
    fn a_byte_changed_on_the_way_to_the_device_is_refused() {
        let tampering = Tampering {
            device: Emulator::speculos(EmulatorOptions::default()),
            tampered: Mutex::new(0),
        };
        let app = EthApp::new(tampering);
        let path = DerivationPath::parse("m/44'/60'/0'/0/0").unwrap();
        let address: Address = DEVICE.parse().unwrap();
        let tx = transfer();
        let err = sign_transaction_on(
            &app,
            &path,
            address,
            &tx,
            &tx.signing_hash(),
            &Wait::new(None),
        )
        .unwrap_err();
        assert!(
            matches!(err, SignerError::WrongSigner { expected, .. } if expected == address),
            "{err}"
        );
        assert!(*app.transport().tampered.lock().unwrap() > 0);
    }

    #[test]
    fn another_device_or_path_is_caught_before_anything_is_signed() {
        let app = EthApp::new(Emulator::speculos(EmulatorOptions::default()));
        let other = DerivationPath::parse("m/44'/60'/1'/0/0").unwrap();
        let err =
            check_device(&app, &other, DEVICE.parse().unwrap(), &Wait::new(None)).unwrap_err();
        assert!(err.to_string().contains("holds another key"), "{err}");
        assert!(
            app.transport().log().iter().all(|apdu| apdu[1] == 0x02),
            "only the address was read"
        );
    }
}
