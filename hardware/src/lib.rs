//! Ledger hardware signing for keyward: the Ethereum app client, its transports, and an emulator
//! of the app for tests and development.
//!
//! Every public item is re-exported here; each module is one layer:
//! - [`transport`]: one APDU out, one reply back, over any [`Transport`] (USB HID, Speculos TCP,
//!   the in-process emulator), with a [`Wait`] that bounds how long a person may take;
//! - [`apdu`]: command frames and status words, and what each status word means;
//! - [`path`]: BIP-32 derivation paths as the app takes them;
//! - [`app`]: the Ethereum app's commands ([`EthApp`]) and the pure functions that cut a payload
//!   into APDUs;
//! - [`emulator`]: an in-process [`Emulator`] of the app, with a software key, for tests;
//! - [`error`]: every way a device or transport can fail, each with a message that says what to
//!   do.
//!
//! The protocol facts all of this follows are in `shared/ledger/APDU.md`.

pub mod apdu;
pub mod app;
pub mod emulator;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "hid")]
pub mod hid;
pub mod path;
mod rlp;
pub mod speculos;
pub mod transport;

#[cfg(test)]
mod conformance;

pub use apdu::{split_reply, status_error};
pub use app::{
    AddressInfo, AppConfiguration, Display, EthApp, Signature, message_apdus, transaction_apdus,
};
pub use emulator::{Emulator, EmulatorOptions, Mode, SPECULOS_SEED};
pub use error::{DeviceError, Result, TransportError};
#[cfg(feature = "hid")]
pub use hid::{DeviceInfo, HidTransport, list_devices};
pub use path::DerivationPath;
pub use speculos::SpeculosTransport;
pub use transport::{Transport, Wait};
