//! The Ethereum app's command frames (APDUs) and status words, as listed in
//! `shared/ledger/APDU.md`: building a command, splitting a reply into its data and status word,
//! and turning a status word into a [`DeviceError`].
//!
//! This layer knows the byte layout only; what each command means lives in [`crate::app`].

use crate::error::{DeviceError, Result};

/// The Ethereum app's instruction class.
pub const CLA: u8 = 0xE0;

/// The most data bytes one APDU carries.
pub const MAX_DATA: usize = 255;

/// Length of the header before the data: CLA, INS, P1, P2, Lc.
pub const HEADER_LEN: usize = 5;

/// Instruction bytes.
pub mod ins {
    /// Get an address and its public key.
    pub const GET_ADDRESS: u8 = 0x02;
    /// Sign a transaction, in chunks.
    pub const SIGN_TRANSACTION: u8 = 0x04;
    /// Read the app's settings and version.
    pub const GET_CONFIGURATION: u8 = 0x06;
    /// Sign an EIP-191 personal message, in chunks.
    pub const SIGN_PERSONAL_MESSAGE: u8 = 0x08;
    /// Sign EIP-712 typed data given as its two hashes.
    pub const SIGN_EIP712_HASHED: u8 = 0x0C;
}

/// P1 of the first chunk of a chunked command.
pub const P1_FIRST_CHUNK: u8 = 0x00;
/// P1 of every later chunk.
pub const P1_NEXT_CHUNK: u8 = 0x80;

/// Status words.
pub mod sw {
    /// Success.
    pub const OK: u16 = 0x9000;
    /// The person rejected the request on the device.
    pub const REJECTED: u16 = 0x6985;
    /// Invalid data, or blind signing is disabled.
    pub const INVALID_DATA: u16 = 0x6A80;
    /// Wrong P1 or P2.
    pub const WRONG_PARAMETERS: u16 = 0x6B00;
    /// Command out of sequence.
    pub const OUT_OF_SEQUENCE: u16 = 0x6980;
    /// Busy (another command is in progress).
    pub const BUSY: u16 = 0x6986;
    /// Wrong data length.
    pub const WRONG_LENGTH: u16 = 0x6A87;
    /// The device is locked.
    pub const LOCKED: u16 = 0x5515;
    /// Security status not satisfied: locked, on some firmware.
    pub const SECURITY_STATUS: u16 = 0x6982;
    /// Instruction not supported: the Ethereum app is not the one open.
    pub const INS_NOT_SUPPORTED: u16 = 0x6D00;
    /// Class not supported: no app, or another app, is open.
    pub const CLA_NOT_SUPPORTED: u16 = 0x6E00;
    /// Answered by the dashboard or another app instead of the Ethereum app.
    pub const CLA_NOT_SUPPORTED_ALT: u16 = 0x6E01;
    /// Answered by the dashboard or another app instead of the Ethereum app.
    pub const INS_NOT_SUPPORTED_ALT: u16 = 0x6D02;
    /// Answered by the dashboard when no app is open.
    pub const APP_NOT_OPEN: u16 = 0x6511;
}

/// One command: `E0 ‖ ins ‖ p1 ‖ p2 ‖ Lc ‖ data`. Refuses more than [`MAX_DATA`] data bytes.
pub fn command(ins: u8, p1: u8, p2: u8, data: &[u8]) -> Result<Vec<u8>> {
    let Ok(length) = u8::try_from(data.len()) else {
        return Err(DeviceError::Payload(format!(
            "does not fit one command: {} bytes where the Ledger takes at most {MAX_DATA}",
            data.len()
        )));
    };
    let mut apdu = Vec::with_capacity(HEADER_LEN + data.len());
    apdu.extend_from_slice(&[CLA, ins, p1, p2, length]);
    apdu.extend_from_slice(data);
    Ok(apdu)
}

/// Splits a reply into its data and its status word. A reply shorter than a status word is
/// [`DeviceError::BadReply`].
pub fn split_reply(reply: &[u8]) -> Result<(&[u8], u16)> {
    match reply.split_last_chunk::<2>() {
        Some((data, status)) => Ok((data, u16::from_be_bytes(*status))),
        None => Err(DeviceError::BadReply(format!(
            "a reply of {} bytes has no status word",
            reply.len()
        ))),
    }
}

/// The reply's data if its status is `9000`, else the error that status means.
pub fn reply_data(reply: &[u8]) -> Result<&[u8]> {
    let (data, status) = split_reply(reply)?;
    match status_error(status) {
        None => Ok(data),
        Some(error) => Err(error),
    }
}

/// What a status word means: `None` for `9000`, else the error to report.
pub fn status_error(status: u16) -> Option<DeviceError> {
    Some(match status {
        sw::OK => return None,
        sw::REJECTED => DeviceError::Rejected,
        sw::INVALID_DATA => DeviceError::InvalidData,
        sw::WRONG_PARAMETERS => DeviceError::WrongParameters,
        sw::OUT_OF_SEQUENCE | sw::BUSY => DeviceError::OutOfSequence { sw: status },
        sw::WRONG_LENGTH => DeviceError::WrongLength,
        sw::LOCKED | sw::SECURITY_STATUS => DeviceError::Locked,
        sw::INS_NOT_SUPPORTED
        | sw::CLA_NOT_SUPPORTED
        | sw::CLA_NOT_SUPPORTED_ALT
        | sw::INS_NOT_SUPPORTED_ALT
        | sw::APP_NOT_OPEN => DeviceError::AppNotOpen,
        other => DeviceError::Status { sw: other },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_command_with_its_length() {
        assert_eq!(
            command(ins::GET_CONFIGURATION, 0, 0, &[]).unwrap(),
            [0xE0, 0x06, 0x00, 0x00, 0x00]
        );
        assert_eq!(
            command(ins::SIGN_TRANSACTION, P1_NEXT_CHUNK, 0, &[1, 2, 3]).unwrap(),
            [0xE0, 0x04, 0x80, 0x00, 0x03, 1, 2, 3]
        );
        let full = command(ins::SIGN_TRANSACTION, 0, 0, &[7; MAX_DATA]).unwrap();
        assert_eq!(full.len(), HEADER_LEN + MAX_DATA);
        assert_eq!(full[4], 0xFF);
    }

    #[test]
    fn refuses_a_command_too_long_for_one_apdu() {
        let error = command(ins::SIGN_TRANSACTION, 0, 0, &[0; MAX_DATA + 1]).unwrap_err();
        assert!(matches!(error, DeviceError::Payload(_)), "{error:?}");
    }

    #[test]
    fn splits_data_from_the_status_word() {
        assert_eq!(
            split_reply(&[1, 2, 0x90, 0x00]).unwrap(),
            (&[1, 2][..], 0x9000)
        );
        assert_eq!(split_reply(&[0x69, 0x85]).unwrap(), (&[][..], 0x6985));
        for short in [&[][..], &[0x90][..]] {
            assert!(matches!(split_reply(short), Err(DeviceError::BadReply(_))));
        }
        assert_eq!(reply_data(&[5, 0x90, 0x00]).unwrap(), &[5]);
        assert_eq!(reply_data(&[5, 0x69, 0x85]), Err(DeviceError::Rejected));
    }

    #[test]
    fn status_9000_is_no_error() {
        assert_eq!(status_error(0x9000), None);
    }

    #[test]
    fn status_6985_is_a_rejection() {
        assert_eq!(status_error(0x6985), Some(DeviceError::Rejected));
    }

    #[test]
    fn status_6a80_is_invalid_data_or_blind_signing_off() {
        let error = status_error(0x6A80).unwrap();
        assert_eq!(error, DeviceError::InvalidData);
        assert!(error.to_string().contains("enable blind signing"));
    }

    #[test]
    fn status_6b00_is_wrong_parameters() {
        assert_eq!(status_error(0x6B00), Some(DeviceError::WrongParameters));
    }

    #[test]
    fn status_6980_and_6986_are_out_of_sequence() {
        assert_eq!(
            status_error(0x6980),
            Some(DeviceError::OutOfSequence { sw: 0x6980 })
        );
        assert_eq!(
            status_error(0x6986),
            Some(DeviceError::OutOfSequence { sw: 0x6986 })
        );
    }

    #[test]
    fn status_6a87_is_wrong_length() {
        assert_eq!(status_error(0x6A87), Some(DeviceError::WrongLength));
    }

    #[test]
    fn status_5515_and_6982_mean_locked() {
        assert_eq!(status_error(0x5515), Some(DeviceError::Locked));
        assert_eq!(status_error(0x6982), Some(DeviceError::Locked));
    }

    #[test]
    fn statuses_of_another_app_mean_the_ethereum_app_is_not_open() {
        for status in [0x6D00, 0x6E00, 0x6E01, 0x6D02, 0x6511] {
            assert_eq!(
                status_error(status),
                Some(DeviceError::AppNotOpen),
                "{status:04X}"
            );
        }
    }

    #[test]
    fn any_other_status_is_reported_with_its_number() {
        for status in [0x0000, 0x6700, 0x6A81, 0x6F00, 0x9001, 0xFFFF] {
            let error = status_error(status).unwrap();
            assert_eq!(error, DeviceError::Status { sw: status });
            assert!(error.to_string().contains(&format!("{status:04X}")));
        }
    }
}
