//! The TOTP second factor: its secret, the provisioning URI and QR code, and the code check.
//!
//! RFC 6238 with HMAC-SHA-1, 6 digits and 30-second steps: the settings every authenticator app
//! understands. The secret is 160 bits (RFC 4226's recommendation). A code is accepted for the
//! current step and one step either side, and compared in constant time.
//!
//! The secret, the URI and the QR code are secrets: they go to a trusted terminal only, never to
//! stdout, a log or a tool result. This module never produces a current code for display.

use std::fmt::Write as _;

use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Builder};
use zeroize::Zeroizing;

use crate::secret::Secret;

/// The TOTP secret and its parameters. totp-rs derives `Debug` with the secret in it; this alias
/// keeps it inside [`Secret`].
pub type TotpSecret = Secret<totp_rs::Totp>;

/// 160 bits, the length RFC 4226 recommends.
pub const SECRET_LEN: usize = 20;
pub const DIGITS: usize = 6;
pub const STEP_SECONDS: u64 = 30;
/// Steps accepted either side of the current one.
pub const SKEW_STEPS: u64 = 1;
const ISSUER: &str = "keyward";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    #[error("a TOTP secret must be at least {SECRET_LEN} bytes (160 bits), not {0}")]
    TooShort(usize),
    #[error("the TOTP secret was rejected: {0}")]
    Invalid(String),
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
}

/// A new 160-bit secret from the OS CSPRNG.
pub fn generate() -> Result<TotpSecret, TotpError> {
    let mut bytes = Zeroizing::new([0u8; SECRET_LEN]);
    getrandom::fill(bytes.as_mut()).map_err(|err| TotpError::Random(err.to_string()))?;
    from_bytes(bytes.as_ref())
}

/// A secret from its raw bytes (as stored in the vault).
pub fn from_bytes(secret: &[u8]) -> Result<TotpSecret, TotpError> {
    if secret.len() < SECRET_LEN {
        return Err(TotpError::TooShort(secret.len()));
    }
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS as u8)
        .with_skew(SKEW_STEPS as u16)
        .with_step_duration(STEP_SECONDS)
        .with_secret(secret.to_vec())
        .build()
        .map(Secret::new)
        .map_err(|err| TotpError::Invalid(err.to_string()))
}

impl Secret<totp_rs::Totp> {
    /// The raw secret bytes, as the vault stores them.
    pub fn secret_bytes(&self) -> &[u8] {
        self.expose_secret().secret().as_ref()
    }

    /// Adds the secret, in base32 and in hex, to a set of fingerprints for the outbound guard.
    pub fn fingerprint(&self, set: &mut crate::privacy::guard::Fingerprints) {
        use crate::privacy::guard::SecretKind;
        let bytes = self.secret_bytes();
        // Sized up front, so no reallocation leaves a copy behind.
        let mut base32 = Zeroizing::new(String::with_capacity(bytes.len() * 8 / 5 + 1));
        base32_encode(bytes, &mut base32);
        set.text(SecretKind::TotpSecret, &base32);
        set.hex(SecretKind::TotpSecret, bytes);
    }

    /// The `otpauth://` URI an authenticator app imports. Contains the secret.
    pub fn provisioning_uri(&self, account: &str) -> Secret<String> {
        let mut uri = Zeroizing::new(String::with_capacity(160 + account.len() * 3));
        uri.push_str("otpauth://totp/");
        percent_encode(ISSUER, &mut uri);
        uri.push(':');
        percent_encode(account, &mut uri);
        uri.push_str("?secret=");
        base32_encode(self.secret_bytes(), &mut uri);
        // write! to a String cannot fail.
        let _ = write!(
            uri,
            "&issuer={ISSUER}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}"
        );
        Secret::from(uri)
    }

    /// The provisioning URI as a QR code drawn with Unicode half blocks, for a terminal.
    pub fn qr_code(&self, account: &str) -> Option<Secret<String>> {
        let uri = self.provisioning_uri(account);
        let code = qrcode::QrCode::new(uri.expose_secret().as_bytes()).ok()?;
        let drawing = code
            .render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build();
        Some(Secret::new(drawing))
    }

    /// Checks `code` against the steps around `unix_time` and returns the step it matched.
    ///
    /// Whitespace inside the code is ignored ("123 456"). Every candidate step is compared, in
    /// constant time, whether or not an earlier one matched. Refusing a code that was already used
    /// is the caller's job: it must persist the returned step and reject any step not after it.
    pub fn verify(&self, code: &str, unix_time: u64) -> Option<u64> {
        let typed: Zeroizing<String> =
            Zeroizing::new(code.chars().filter(|c| !c.is_whitespace()).collect());
        if typed.len() != DIGITS || !typed.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let current = unix_time / STEP_SECONDS;
        let mut matched = None;
        for step in current.saturating_sub(SKEW_STEPS)..=current.saturating_add(SKEW_STEPS) {
            let expected = Zeroizing::new(
                self.expose_secret()
                    .generate(step.saturating_mul(STEP_SECONDS))
                    .to_string(),
            );
            if bool::from(expected.as_bytes().ct_eq(typed.as_bytes())) && matched.is_none() {
                matched = Some(step);
            }
        }
        matched
    }
}

/// RFC 4648 base32 without padding, as otpauth URIs carry it.
fn base32_encode(bytes: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
}

fn percent_encode(text: &str, out: &mut String) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 seed "12345678901234567890". The RFC's codes are 8 digits;
    /// keyward uses 6, which are the last 6 digits of the same HOTP value.
    const RFC_SEED: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_sha1_vectors_last_six_digits() {
        let secret = from_bytes(RFC_SEED).unwrap();
        for (time, eight_digits) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(
                secret.verify(&eight_digits[2..], time),
                Some(time / 30),
                "t={time}"
            );
        }
    }

    #[test]
    fn accepts_one_step_of_skew_and_no_more() {
        let secret = from_bytes(RFC_SEED).unwrap();
        let code = secret.expose_secret().generate(1_000_000 * 30).to_string();
        assert_eq!(secret.verify(&code, 1_000_000 * 30), Some(1_000_000));
        assert_eq!(secret.verify(&code, 1_000_001 * 30), Some(1_000_000));
        assert_eq!(secret.verify(&code, 999_999 * 30), Some(1_000_000));
        assert_eq!(secret.verify(&code, 1_000_002 * 30), None);
        assert_eq!(secret.verify(&code, 999_998 * 30), None);
    }

    #[test]
    fn refuses_malformed_codes() {
        let secret = from_bytes(RFC_SEED).unwrap();
        for code in ["", "12345", "1234567", "12345a", "١٢٣٤٥٦"] {
            assert_eq!(secret.verify(code, 59), None, "{code}");
        }
        assert_eq!(secret.verify("287 082", 59), Some(1));
    }

    #[test]
    fn secrets_shorter_than_160_bits_are_refused() {
        assert_eq!(from_bytes(&[1; 16]).unwrap_err(), TotpError::TooShort(16));
        assert_eq!(generate().unwrap().secret_bytes().len(), SECRET_LEN);
    }

    #[test]
    fn provisioning_uri_carries_the_base32_secret() {
        let secret = from_bytes(RFC_SEED).unwrap();
        let uri = secret.provisioning_uri("wallet@host one");
        assert_eq!(
            uri.expose_secret(),
            "otpauth://totp/keyward:wallet%40host%20one?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=keyward&algorithm=SHA1&digits=6&period=30"
        );
        assert!(secret.qr_code("wallet").is_some());
        assert!(!format!("{secret:?}").contains("GEZDGNBV"));
    }

    proptest::proptest! {
        #[test]
        fn verify_never_panics_and_only_accepts_six_digits(code in "\\PC{0,12}", time in proptest::prelude::any::<u64>()) {
            let secret = from_bytes(RFC_SEED).unwrap();
            if secret.verify(&code, time).is_some() {
                proptest::prop_assert_eq!(code.chars().filter(char::is_ascii_digit).count(), DIGITS);
            }
        }
    }
}
