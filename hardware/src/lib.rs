//! Ledger hardware signing for keyward: the Ethereum app client, its transports, and an emulator
//! of the app for tests and development.
//!
//! Every public item is re-exported here; each module is one layer:
//! - [`transport`]: one APDU out, one reply back, over any [`Transport`] (USB HID, Speculos TCP,
//!   the in-process emulator), with a [`Wait`] that bounds how long a person may take;
//! - [`error`]: every way a device or transport can fail, each with a message that says what to
//!   do.

pub mod error;
#[cfg(feature = "hid")]
pub mod hid;
pub mod speculos;
pub mod transport;

pub use error::{DeviceError, Result, TransportError};
#[cfg(feature = "hid")]
pub use hid::{DeviceInfo, HidTransport, list_devices};
pub use speculos::SpeculosTransport;
pub use transport::{Transport, Wait};
