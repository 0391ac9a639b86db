//! USB HID to a real Ledger: finding it, opening it, and carrying APDUs in Ledger's 64-byte report
//! framing. This module knows reports, not the Ethereum app: a reply's status word is returned to
//! the caller, never interpreted here.
//!
//! The framing is written here rather than taken from `ledger-transport-hid` because that crate's
//! `exchange` blocks on the device for as long as the person takes, with no way to stop it. Here
//! every read lasts at most [`POLL`], and the [`Wait`] is checked between reads, so a timeout or a
//! cancel ends the exchange within about 100 ms. `ledger-transport-hid` is used only to recognise
//! Ledger devices among the HID devices (vendor id `2c97`, usage page `FFA0`).

use std::sync::{Mutex, MutexGuard, TryLockError};
use std::thread;
use std::time::Duration;

use hidapi::{HidApi, HidDevice, HidError};
use ledger_transport_hid::TransportNativeHID;

use crate::error::TransportError;
use crate::transport::{Transport, Wait};

/// Bytes in one HID report, in both directions.
const REPORT_LEN: usize = 64;
/// Ledger's channel id for APDUs; a reply on another channel is not ours.
const CHANNEL: u16 = 0x0101;
/// Ledger's tag for a report that carries APDU bytes.
const TAG_APDU: u8 = 0x05;
/// Channel, tag and sequence index.
const HEADER_LEN: usize = 5;
/// The first report also carries the APDU length.
const FIRST_HEADER_LEN: usize = HEADER_LEN + 2;
/// The longest APDU the framing can describe: its length travels as a u16.
const MAX_APDU_LEN: usize = u16::MAX as usize;

/// The longest a single blocking read lasts before the [`Wait`] is checked again.
const POLL: Duration = Duration::from_millis(100);
/// How often a caller blocked behind another exchange looks at its own [`Wait`].
const LOCK_POLL: Duration = Duration::from_millis(10);
/// Reports dropped, at most, before an exchange: left over from one that was abandoned.
const MAX_STALE_REPORTS: usize = 64;

/// A Ledger seen on USB: what a device list shows, and the path [`HidTransport::open`] takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The operating system's path to the HID interface (`/dev/hidraw3` on Linux).
    pub path: String,
    /// The product name the device reports ("Nano S Plus", …).
    pub product: String,
    /// The USB serial number, when the device reports one.
    pub serial: Option<String>,
}

impl DeviceInfo {
    fn from_hid(info: &hidapi::DeviceInfo) -> Self {
        let product = match info.product_string() {
            Some(name) if !name.trim().is_empty() => name.trim().to_owned(),
            _ => format!("Ledger (product id {:04x})", info.product_id()),
        };
        let serial = info
            .serial_number()
            .map(str::trim)
            .filter(|serial| !serial.is_empty())
            .map(str::to_owned);
        Self {
            path: info.path().to_string_lossy().into_owned(),
            product,
            serial,
        }
    }
}

/// The Ledgers connected now, in the order the operating system lists them. Only the interface
/// that carries APDUs (usage page `FFA0`) is listed, not a device's FIDO interface.
pub fn list_devices() -> Result<Vec<DeviceInfo>, TransportError> {
    let api = HidApi::new().map_err(disconnected)?;
    Ok(TransportNativeHID::list_ledgers(&api)
        .map(DeviceInfo::from_hid)
        .collect())
}

/// A Ledger on USB HID.
///
/// It holds exactly one handle to the device, behind a mutex: exchanges from several threads take
/// turns, a whole APDU and its whole reply at a time, because reports from two exchanges that
/// interleaved would corrupt both. The handle is released when the transport is dropped. A thread
/// waiting for its turn still honours its own [`Wait`].
///
/// An exchange that ends early (timeout or cancel) leaves the prompt on the device: the person
/// should reject it there. Reports left over from an abandoned exchange are dropped before the
/// next one starts.
#[derive(Debug)]
pub struct HidTransport {
    path: String,
    device: Mutex<HidDevice>,
}

impl HidTransport {
    /// Opens the first Ledger listed by [`list_devices`]; [`TransportError::NoDevice`] when there
    /// is none.
    pub fn open_first() -> Result<Self, TransportError> {
        let api = HidApi::new().map_err(disconnected)?;
        let info = TransportNativeHID::list_ledgers(&api)
            .next()
            .ok_or(TransportError::NoDevice)?;
        Self::open_info(&api, info)
    }

    /// Opens the Ledger at `path`, as shown by [`list_devices`]. A path that is not a connected
    /// Ledger's APDU interface is [`TransportError::NoDevice`]: APDUs are never sent to any other
    /// HID device.
    pub fn open(path: &str) -> Result<Self, TransportError> {
        let api = HidApi::new().map_err(disconnected)?;
        let info = TransportNativeHID::list_ledgers(&api)
            .find(|info| info.path().to_bytes() == path.as_bytes())
            .ok_or(TransportError::NoDevice)?;
        Self::open_info(&api, info)
    }

    fn open_info(api: &HidApi, info: &hidapi::DeviceInfo) -> Result<Self, TransportError> {
        let device = api.open_path(info.path()).map_err(disconnected)?;
        Ok(Self {
            path: info.path().to_string_lossy().into_owned(),
            device: Mutex::new(device),
        })
    }

    /// The path this transport opened.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl Transport for HidTransport {
    fn exchange(&self, apdu: &[u8], wait: &Wait) -> Result<Vec<u8>, TransportError> {
        let device = lock_waiting(&self.device, wait)?;
        exchange_reports(&*device, apdu, wait)
    }
}

/// hidapi fails for one reason a person can act on: the device went away, or could not be opened
/// (the message says which, e.g. a permission error when the udev rules are missing).
fn disconnected(error: HidError) -> TransportError {
    TransportError::Disconnected(error.to_string())
}

/// Takes the device lock without blocking past `wait`.
fn lock_waiting<'a, T>(
    mutex: &'a Mutex<T>,
    wait: &Wait,
) -> Result<MutexGuard<'a, T>, TransportError> {
    loop {
        match mutex.try_lock() {
            Ok(guard) => return Ok(guard),
            // A thread panicked mid-exchange; stale reports are dropped before the next one.
            Err(TryLockError::Poisoned(poisoned)) => return Ok(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => {
                wait.check()?;
                thread::sleep(LOCK_POLL);
            }
        }
    }
}

/// What the exchange needs from a HID device, so that the loop around it can be tested without
/// one.
trait ReportDevice {
    /// Writes one report: a report id byte, then [`REPORT_LEN`] bytes. Returns the bytes written.
    fn write_report(&self, report: &[u8; REPORT_LEN + 1]) -> Result<usize, TransportError>;
    /// Reads one report, waiting at most `timeout`; `Ok(0)` when none arrived in time.
    fn read_report(
        &self,
        buffer: &mut [u8; REPORT_LEN],
        timeout: Duration,
    ) -> Result<usize, TransportError>;
}

impl ReportDevice for HidDevice {
    fn write_report(&self, report: &[u8; REPORT_LEN + 1]) -> Result<usize, TransportError> {
        self.write(report).map_err(disconnected)
    }

    fn read_report(
        &self,
        buffer: &mut [u8; REPORT_LEN],
        timeout: Duration,
    ) -> Result<usize, TransportError> {
        let millis = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        self.read_timeout(buffer, millis).map_err(disconnected)
    }
}

/// One APDU out and its reply back, reading in slices of at most [`POLL`] so that `wait` is
/// honoured.
fn exchange_reports(
    device: &impl ReportDevice,
    apdu: &[u8],
    wait: &Wait,
) -> Result<Vec<u8>, TransportError> {
    let reports = frame(apdu).ok_or_else(|| {
        TransportError::Malformed(format!(
            "keyward built a {}-byte command, longer than USB HID carries ({MAX_APDU_LEN} bytes); \
             nothing was sent",
            apdu.len()
        ))
    })?;
    wait.check()?;

    let mut buffer = [0u8; REPORT_LEN];
    for _ in 0..MAX_STALE_REPORTS {
        if device.read_report(&mut buffer, Duration::ZERO)? == 0 {
            break;
        }
    }

    for report in &reports {
        // hidapi wants the report id first; Ledger devices use none, which is written as 0.
        let mut out = [0u8; REPORT_LEN + 1];
        out[1..].copy_from_slice(report);
        let written = device.write_report(&out)?;
        if written != out.len() {
            return Err(TransportError::Disconnected(format!(
                "only {written} of {} bytes of a report reached the device",
                out.len()
            )));
        }
    }

    let mut reassembler = Reassembler::default();
    loop {
        wait.check()?;
        let slice = wait
            .remaining()
            .map_or(POLL, |remaining| remaining.min(POLL));
        let read = device.read_report(&mut buffer, slice)?;
        if read == 0 {
            continue;
        }
        if let Some(reply) = reassembler.push(&buffer[..read])? {
            return Ok(reply);
        }
    }
}

/// Cuts an APDU into Ledger HID reports: each starts with the channel (`0101`), the tag (`05`)
/// and a u16 big-endian sequence index from 0; the first also carries the APDU's length as a u16
/// big-endian. The last report is padded with zeros. `None` when the APDU is longer than a u16
/// length can describe.
pub(crate) fn frame(apdu: &[u8]) -> Option<Vec<[u8; REPORT_LEN]>> {
    let length = u16::try_from(apdu.len()).ok()?;
    let mut reports = Vec::new();
    let mut rest = apdu;
    let mut sequence: u16 = 0;
    loop {
        let mut report = [0u8; REPORT_LEN];
        report[..2].copy_from_slice(&CHANNEL.to_be_bytes());
        report[2] = TAG_APDU;
        report[3..HEADER_LEN].copy_from_slice(&sequence.to_be_bytes());
        let start = if sequence == 0 {
            report[HEADER_LEN..FIRST_HEADER_LEN].copy_from_slice(&length.to_be_bytes());
            FIRST_HEADER_LEN
        } else {
            HEADER_LEN
        };
        let take = rest.len().min(REPORT_LEN - start);
        report[start..start + take].copy_from_slice(&rest[..take]);
        rest = &rest[take..];
        reports.push(report);
        if rest.is_empty() {
            return Some(reports);
        }
        // At most 65535 bytes in reports of at least 57: the index stays far below u16::MAX.
        sequence = sequence.checked_add(1)?;
    }
}

/// Puts a reply back together from its reports, checking that each is on Ledger's channel, carries
/// the APDU tag and comes in sequence. Bytes past the announced length are padding.
#[derive(Debug, Default)]
pub(crate) struct Reassembler {
    /// The reply's length, known once the first report has arrived.
    expected: Option<usize>,
    reply: Vec<u8>,
    next_sequence: u16,
}

impl Reassembler {
    /// Takes the next report; returns the whole reply (data ‖ SW1 SW2) once it is complete.
    pub(crate) fn push(&mut self, report: &[u8]) -> Result<Option<Vec<u8>>, TransportError> {
        let sequence = self.next_sequence;
        let header_len = if self.expected.is_none() {
            FIRST_HEADER_LEN
        } else {
            HEADER_LEN
        };
        if report.len() < header_len {
            return Err(malformed(format!(
                "report {sequence} is {} bytes, too short for its {header_len}-byte header",
                report.len()
            )));
        }
        let channel = u16::from_be_bytes([report[0], report[1]]);
        if channel != CHANNEL {
            return Err(malformed(format!(
                "report {sequence} came on channel {channel:04x}, not {CHANNEL:04x}"
            )));
        }
        let tag = report[2];
        if tag != TAG_APDU {
            return Err(malformed(format!(
                "report {sequence} has tag {tag:02x}, not {TAG_APDU:02x}"
            )));
        }
        let got = u16::from_be_bytes([report[3], report[4]]);
        if got != sequence {
            return Err(malformed(format!(
                "report {got} arrived where report {sequence} was due"
            )));
        }

        let expected = match self.expected {
            Some(expected) => expected,
            None => {
                let expected = usize::from(u16::from_be_bytes([report[5], report[6]]));
                self.expected = Some(expected);
                self.reply.reserve_exact(expected);
                expected
            }
        };
        let body = &report[header_len..];
        let take = body.len().min(expected - self.reply.len());
        self.reply.extend_from_slice(&body[..take]);

        if self.reply.len() < expected {
            self.next_sequence = sequence
                .checked_add(1)
                .ok_or_else(|| malformed("the reply runs past 65535 reports".to_owned()))?;
            return Ok(None);
        }
        if expected < 2 {
            return Err(malformed(format!(
                "the reply is {expected} bytes, too short for a status word"
            )));
        }
        Ok(Some(std::mem::take(&mut self.reply)))
    }
}

fn malformed(detail: String) -> TransportError {
    TransportError::Malformed(detail)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;

    /// The address APDU from APDU.md's transcripts: 26 bytes, one report.
    const GET_ADDRESS: &str = "e002000015058000002c8000003c800000000000000000000000";

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap_or_default())
            .collect()
    }

    /// A reply in reports, built by hand (not by `frame`) so the two checks are independent.
    fn reply_reports(reply: &[u8]) -> Vec<[u8; REPORT_LEN]> {
        let mut reports = Vec::new();
        let mut offset = 0;
        let mut sequence: u16 = 0;
        loop {
            let mut report = [0u8; REPORT_LEN];
            report[0] = 0x01;
            report[1] = 0x01;
            report[2] = 0x05;
            report[3] = (sequence >> 8) as u8;
            report[4] = sequence as u8;
            let start = if sequence == 0 {
                report[5] = (reply.len() >> 8) as u8;
                report[6] = reply.len() as u8;
                7
            } else {
                5
            };
            let take = (reply.len() - offset).min(REPORT_LEN - start);
            report[start..start + take].copy_from_slice(&reply[offset..offset + take]);
            offset += take;
            reports.push(report);
            if offset == reply.len() {
                return reports;
            }
            sequence += 1;
        }
    }

    fn reassemble(reports: &[[u8; REPORT_LEN]]) -> Result<Vec<u8>, TransportError> {
        let mut reassembler = Reassembler::default();
        for (index, report) in reports.iter().enumerate() {
            if let Some(reply) = reassembler.push(report)? {
                assert_eq!(index + 1, reports.len(), "complete before the last report");
                return Ok(reply);
            }
        }
        Err(TransportError::Malformed("incomplete".to_owned()))
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + 3) as u8).collect()
    }

    #[test]
    fn a_short_apdu_fits_one_report_with_header_length_and_zero_padding() {
        let apdu = unhex(GET_ADDRESS);
        let reports = frame(&apdu).unwrap_or_default();
        assert_eq!(reports.len(), 1);
        let report = reports[0];
        assert_eq!(&report[..7], &[0x01, 0x01, 0x05, 0x00, 0x00, 0x00, 26]);
        assert_eq!(&report[7..7 + 26], apdu.as_slice());
        assert!(report[7 + 26..].iter().all(|&byte| byte == 0));
    }

    #[test]
    fn an_empty_apdu_is_one_report_announcing_zero_bytes() {
        let reports = frame(&[]).unwrap_or_default();
        assert_eq!(reports.len(), 1);
        assert_eq!(&reports[0][..7], &[0x01, 0x01, 0x05, 0, 0, 0, 0]);
    }

    #[test]
    fn a_long_apdu_continues_with_sequence_numbers_and_five_byte_headers() {
        // 260 bytes: the longest short APDU (5 header bytes + 255 data bytes).
        let apdu = pattern(260);
        let reports = frame(&apdu).unwrap_or_default();
        // 57 in the first report, then 59 per report: 57 + 59 * 4 = 293 ≥ 260 > 57 + 59 * 3.
        assert_eq!(reports.len(), 5);
        for (index, report) in reports.iter().enumerate() {
            assert_eq!(&report[..3], &[0x01, 0x01, 0x05]);
            assert_eq!(u16::from_be_bytes([report[3], report[4]]), index as u16);
        }
        assert_eq!(&reports[0][5..7], &[0x01, 0x04]);
        let mut carried = reports[0][7..].to_vec();
        for report in &reports[1..] {
            carried.extend_from_slice(&report[5..]);
        }
        assert_eq!(&carried[..260], apdu.as_slice());
        assert!(carried[260..].iter().all(|&byte| byte == 0));
    }

    #[test]
    fn apdus_that_exactly_fill_reports_need_no_extra_report() {
        assert_eq!(frame(&pattern(57)).unwrap_or_default().len(), 1);
        assert_eq!(frame(&pattern(58)).unwrap_or_default().len(), 2);
        assert_eq!(frame(&pattern(57 + 59)).unwrap_or_default().len(), 2);
        assert_eq!(frame(&pattern(57 + 59 + 1)).unwrap_or_default().len(), 3);
        let full = frame(&pattern(57 + 59)).unwrap_or_default();
        assert_eq!(&full[1][5..], &pattern(57 + 59)[57..]);
    }

    #[test]
    fn an_apdu_longer_than_a_u16_length_is_refused() {
        assert!(frame(&vec![0; 65_535]).is_some());
        assert!(frame(&vec![0; 65_536]).is_none());
    }

    #[test]
    fn framing_and_reassembly_agree_at_every_boundary() {
        for len in [2, 3, 56, 57, 58, 115, 116, 117, 175, 176, 260, 1000] {
            let data = pattern(len);
            let by_hand = reply_reports(&data);
            assert_eq!(frame(&data).unwrap_or_default(), by_hand, "length {len}");
            assert_eq!(reassemble(&by_hand), Ok(data), "length {len}");
        }
    }

    #[test]
    fn the_address_reply_from_the_transcripts_is_reassembled_from_two_reports() {
        let reply = unhex(concat!(
            "4104ef5b152e3f15eb0c50c9916161c2309e54bd87b9adce722d69716bcdef85f547678e15ab40a78919",
            "c7284e67a17ee9a96e8b9886b60f767d93023bac8dbc16e4284461643737393130446244466445373634",
            "66433231464344344537344437316242414341364438449000",
        ));
        assert_eq!(reply.len(), 109);
        let reports = reply_reports(&reply);
        assert_eq!(reports.len(), 2);
        let reassembled = reassemble(&reports).unwrap_or_default();
        assert_eq!(reassembled, reply);
        assert_eq!(
            &reassembled[67..107],
            b"Dad77910DbDFdE764fC21FCD4E74D71bBACA6D8D"
        );
        assert_eq!(&reassembled[107..], &[0x90, 0x00]);
    }

    #[test]
    fn padding_after_the_announced_length_is_ignored() {
        let mut report = reply_reports(&[0x90, 0x00])[0];
        report[9..].fill(0xAA);
        assert_eq!(reassemble(&[report]), Ok(vec![0x90, 0x00]));
        // A short read that still holds the whole reply is enough.
        let mut reassembler = Reassembler::default();
        assert_eq!(reassembler.push(&report[..9]), Ok(Some(vec![0x90, 0x00])));
    }

    fn malformed_detail(result: Result<Option<Vec<u8>>, TransportError>) -> String {
        match result {
            Err(TransportError::Malformed(detail)) => detail,
            other => format!("not malformed: {other:?}"),
        }
    }

    #[test]
    fn a_report_on_another_channel_is_malformed() {
        let mut report = reply_reports(&[0x90, 0x00])[0];
        report[1] = 0x02;
        let detail = malformed_detail(Reassembler::default().push(&report));
        assert!(detail.contains("channel 0102"), "{detail}");
    }

    #[test]
    fn a_report_with_another_tag_is_malformed() {
        let mut report = reply_reports(&[0x90, 0x00])[0];
        report[2] = 0x02;
        let detail = malformed_detail(Reassembler::default().push(&report));
        assert!(detail.contains("tag 02"), "{detail}");
    }

    #[test]
    fn a_report_out_of_sequence_is_malformed() {
        let reports = reply_reports(&pattern(130));
        assert_eq!(reports.len(), 3);

        let mut first_is_not_zero = reports[0];
        first_is_not_zero[4] = 1;
        let detail = malformed_detail(Reassembler::default().push(&first_is_not_zero));
        assert!(
            detail.contains("report 1 arrived where report 0"),
            "{detail}"
        );

        let mut reassembler = Reassembler::default();
        assert_eq!(reassembler.push(&reports[0]), Ok(None));
        let detail = malformed_detail(reassembler.push(&reports[2]));
        assert!(
            detail.contains("report 2 arrived where report 1"),
            "{detail}"
        );

        let mut reassembler = Reassembler::default();
        assert_eq!(reassembler.push(&reports[0]), Ok(None));
        let detail = malformed_detail(reassembler.push(&reports[0]));
        assert!(
            detail.contains("report 0 arrived where report 1"),
            "{detail}"
        );
    }

    #[test]
    fn a_truncated_report_is_malformed() {
        let reports = reply_reports(&pattern(100));
        let detail = malformed_detail(Reassembler::default().push(&reports[0][..6]));
        assert!(detail.contains("report 0 is 6 bytes"), "{detail}");

        let mut reassembler = Reassembler::default();
        assert_eq!(reassembler.push(&reports[0]), Ok(None));
        let detail = malformed_detail(reassembler.push(&reports[1][..4]));
        assert!(detail.contains("report 1 is 4 bytes"), "{detail}");
        let detail = malformed_detail(Reassembler::default().push(&[]));
        assert!(detail.contains("report 0 is 0 bytes"), "{detail}");
    }

    #[test]
    fn a_truncated_reply_waits_for_more_and_a_reply_without_status_word_is_malformed() {
        let reports = reply_reports(&pattern(100));
        let mut reassembler = Reassembler::default();
        // The first report says 100 bytes; 57 came. The reply is not complete.
        assert_eq!(reassembler.push(&reports[0]), Ok(None));

        let one_byte = reply_reports(&[0x90])[0];
        let detail = malformed_detail(Reassembler::default().push(&one_byte));
        assert!(detail.contains("too short for a status word"), "{detail}");
        let empty = reply_reports(&[])[0];
        let detail = malformed_detail(Reassembler::default().push(&empty));
        assert!(detail.contains("0 bytes, too short"), "{detail}");
    }

    /// A HID device in memory: replies become readable once the APDU has been written, and a read
    /// with nothing to return waits out its timeout, as hidapi does.
    #[derive(Default)]
    struct FakeDevice {
        stale: RefCell<VecDeque<[u8; REPORT_LEN]>>,
        replies: RefCell<Vec<[u8; REPORT_LEN]>>,
        pending: RefCell<VecDeque<[u8; REPORT_LEN]>>,
        written: RefCell<Vec<[u8; REPORT_LEN + 1]>>,
        longest_read: RefCell<Duration>,
        fail_writes: bool,
    }

    impl ReportDevice for FakeDevice {
        fn write_report(&self, report: &[u8; REPORT_LEN + 1]) -> Result<usize, TransportError> {
            if self.fail_writes {
                return Err(disconnected(HidError::HidApiError {
                    message: "No such device".to_owned(),
                }));
            }
            let mut written = self.written.borrow_mut();
            written.push(*report);
            // Like the device, answer once the whole APDU has arrived (the first report, after
            // the report id, announces its length).
            let announced = usize::from(u16::from_be_bytes([written[0][6], written[0][7]]));
            let needed = frame(&vec![0; announced]).map_or(0, |reports| reports.len());
            if written.len() == needed {
                self.pending.borrow_mut().extend(self.replies.take());
            }
            Ok(report.len())
        }

        fn read_report(
            &self,
            buffer: &mut [u8; REPORT_LEN],
            timeout: Duration,
        ) -> Result<usize, TransportError> {
            let longest = *self.longest_read.borrow();
            *self.longest_read.borrow_mut() = longest.max(timeout);
            let next = self.stale.borrow_mut().pop_front();
            let next = next.or_else(|| self.pending.borrow_mut().pop_front());
            match next {
                Some(report) => {
                    *buffer = report;
                    Ok(REPORT_LEN)
                }
                None => {
                    thread::sleep(timeout);
                    Ok(0)
                }
            }
        }
    }

    #[test]
    fn an_exchange_writes_report_id_zero_then_the_frame_and_returns_the_reply() {
        let apdu = unhex(GET_ADDRESS);
        let reply = pattern(109);
        let device = FakeDevice {
            replies: RefCell::new(reply_reports(&reply)),
            ..FakeDevice::default()
        };
        let wait = Wait::new(Some(Duration::from_secs(5)));
        assert_eq!(exchange_reports(&device, &apdu, &wait), Ok(reply));
        let written = device.written.borrow();
        assert_eq!(written.len(), 1);
        assert_eq!(written[0][0], 0x00);
        assert_eq!(&written[0][1..], &frame(&apdu).unwrap_or_default()[0]);
    }

    #[test]
    fn a_long_apdu_goes_out_in_all_its_reports_before_the_reply_is_read() {
        let apdu = pattern(260);
        let reply = pattern(200);
        let device = FakeDevice {
            replies: RefCell::new(reply_reports(&reply)),
            ..FakeDevice::default()
        };
        let wait = Wait::new(Some(Duration::from_secs(5)));
        assert_eq!(exchange_reports(&device, &apdu, &wait), Ok(reply));
        let written: Vec<[u8; REPORT_LEN]> = device
            .written
            .borrow()
            .iter()
            .map(|out| {
                assert_eq!(out[0], 0x00, "report id");
                let mut report = [0u8; REPORT_LEN];
                report.copy_from_slice(&out[1..]);
                report
            })
            .collect();
        assert_eq!(written, frame(&apdu).unwrap_or_default());
        assert_eq!(written.len(), 5);
    }

    #[test]
    fn reports_left_from_an_abandoned_exchange_are_dropped_first() {
        let device = FakeDevice {
            stale: RefCell::new(reply_reports(&[0x69, 0x85]).into_iter().collect()),
            replies: RefCell::new(reply_reports(&[0x01, 0x90, 0x00])),
            ..FakeDevice::default()
        };
        let wait = Wait::new(Some(Duration::from_secs(5)));
        assert_eq!(
            exchange_reports(&device, &[0xE0, 0x06, 0, 0, 0], &wait),
            Ok(vec![0x01, 0x90, 0x00])
        );
    }

    #[test]
    fn a_silent_device_times_out_reading_in_short_slices() {
        let device = FakeDevice::default();
        let wait = Wait::new(Some(Duration::from_millis(250)));
        let started = Instant::now();
        assert_eq!(
            exchange_reports(&device, &[0xE0, 0x06, 0, 0, 0], &wait),
            Err(TransportError::TimedOut { seconds: 0 })
        );
        assert!(started.elapsed() < Duration::from_millis(450));
        assert!(*device.longest_read.borrow() <= POLL);
    }

    #[test]
    fn a_cancel_from_another_thread_ends_the_exchange_within_a_poll() {
        let device = FakeDevice::default();
        let wait = Wait::new(None);
        let canceller = wait.clone();
        let handle = thread::spawn(move || {
            thread::sleep(Duration::from_millis(150));
            canceller.cancel();
            Instant::now()
        });
        let result = exchange_reports(&device, &[0xE0, 0x06, 0, 0, 0], &wait);
        let ended = Instant::now();
        assert_eq!(result, Err(TransportError::Cancelled));
        match handle.join() {
            Ok(cancelled_at) => {
                let lag = ended.saturating_duration_since(cancelled_at);
                assert!(lag < POLL + Duration::from_millis(100), "{lag:?}");
            }
            Err(_) => panic!("the cancelling thread panicked"),
        }
    }

    #[test]
    fn a_device_that_fails_is_disconnected_with_hidapi_s_message() {
        let device = FakeDevice {
            fail_writes: true,
            ..FakeDevice::default()
        };
        let wait = Wait::new(Some(Duration::from_secs(1)));
        match exchange_reports(&device, &[0xE0, 0x06, 0, 0, 0], &wait) {
            Err(TransportError::Disconnected(message)) => {
                assert!(message.contains("No such device"), "{message}");
            }
            other => panic!("expected Disconnected, got {other:?}"),
        }
    }

    #[test]
    fn a_malformed_reply_is_reported_not_retried() {
        let mut report = reply_reports(&[0x90, 0x00])[0];
        report[0] = 0x02;
        let device = FakeDevice {
            replies: RefCell::new(vec![report]),
            ..FakeDevice::default()
        };
        let wait = Wait::new(Some(Duration::from_secs(1)));
        assert!(matches!(
            exchange_reports(&device, &[0xE0, 0x06, 0, 0, 0], &wait),
            Err(TransportError::Malformed(_))
        ));
    }

    #[test]
    fn a_caller_behind_a_long_exchange_still_times_out() {
        let mutex = Arc::new(Mutex::new(()));
        let held = Arc::clone(&mutex);
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let holder = thread::spawn(move || {
            let _guard = held.lock();
            let _ = locked_tx.send(());
            let _ = release_rx.recv();
        });
        assert!(locked_rx.recv().is_ok());
        let wait = Wait::new(Some(Duration::from_millis(100)));
        assert!(matches!(
            lock_waiting(&mutex, &wait),
            Err(TransportError::TimedOut { .. })
        ));
        let _ = release_tx.send(());
        assert!(holder.join().is_ok());
        assert!(lock_waiting(&mutex, &Wait::new(Some(Duration::from_secs(1)))).is_ok());
    }
}
