//! Exact conversion between base units (wei, a token's smallest unit) and decimal text. No floats.

use alloy::primitives::U256;

/// `value / 10^decimals` written exactly, with trailing zeros of the fraction dropped:
/// 1234567000 with 6 decimals is "1234.567"; 5 with 18 decimals is "0.000000000000000005".
pub fn format_units(value: U256, decimals: u8) -> String {
    let digits = value.to_string();
    let decimals = usize::from(decimals);
    if decimals == 0 {
        return digits;
    }
    let padded = if digits.len() <= decimals {
        format!("{}{digits}", "0".repeat(decimals + 1 - digits.len()))
    } else {
        digits
    };
    let (whole, fraction) = padded.split_at(padded.len() - decimals);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        whole.to_owned()
    } else {
        format!("{whole}.{fraction}")
    }
}

/// Why a decimal amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("must be a decimal number such as \"1.5\", with digits and at most one '.'")]
    NotDecimal,
    #[error("has more than {0} digits after the point, finer than the asset's smallest unit")]
    TooPrecise(u8),
    #[error("is too large")]
    TooLarge,
}

/// `text * 10^decimals` exactly: "1.5" with 6 decimals is 1500000. Digits and one optional '.',
/// nothing else (no sign, exponent, spaces or separators), and no more fraction digits than
/// `decimals`, so an amount is never rounded.
pub fn parse_units(text: &str, decimals: u8) -> Result<U256, AmountError> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty())
        || !digits(whole)
        || !digits(fraction)
        || (text.contains('.') && (whole.is_empty() || fraction.is_empty()))
        || text.len() > 100
    {
        return Err(AmountError::NotDecimal);
    }
    if fraction.len() > usize::from(decimals) {
        return Err(AmountError::TooPrecise(decimals));
    }
    let padded = format!(
        "{whole}{fraction}{}",
        "0".repeat(usize::from(decimals) - fraction.len())
    );
    U256::from_str_radix(&padded, 10).map_err(|_| AmountError::TooLarge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_formatting() {
        let cases: [(u128, u8, &str); 7] = [
            (1_234_567_000, 6, "1234.567"),
            (1_234_567_003, 6, "1234.567003"),
            (5, 18, "0.000000000000000005"),
            (10_000_000_000_000_000_000_000, 18, "10000"),
            (0, 18, "0"),
            (42, 0, "42"),
            (100, 2, "1"),
        ];
        for (value, decimals, shown) in cases {
            assert_eq!(format_units(U256::from(value), decimals), shown);
        }
        assert_eq!(
            format_units(U256::MAX, 18),
            "115792089237316195423570985008687907853269984665640564039457.584007913129639935"
        );
    }

    #[test]
    fn exact_parsing_refuses_rounding_and_odd_notation() {
        assert_eq!(parse_units("1.5", 6), Ok(U256::from(1_500_000u64)));
        assert_eq!(parse_units("0.000001", 6), Ok(U256::from(1u64)));
        assert_eq!(parse_units("12", 0), Ok(U256::from(12u64)));
        assert_eq!(parse_units("0", 18), Ok(U256::ZERO));
        assert_eq!(parse_units("0.0000001", 6), Err(AmountError::TooPrecise(6)));
        for bad in [
            "", ".", "1.", ".5", "-1", "+1", "1e3", "1,5", " 1", "1.2.3", "0x10",
        ] {
            assert_eq!(
                parse_units(bad, 18),
                Err(AmountError::NotDecimal),
                "{bad:?}"
            );
        }
        assert_eq!(parse_units(&"9".repeat(80), 18), Err(AmountError::TooLarge));
        for (value, decimals) in [(1_234_567u128, 6u8), (5, 18), (0, 0), (u128::MAX, 18)] {
            let value = U256::from(value);
            assert_eq!(
                parse_units(&format_units(value, decimals), decimals),
                Ok(value)
            );
        }
    }
}
