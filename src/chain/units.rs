//! Exact conversion of base units (wei, a token's smallest unit) to decimal text. No floats.

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
}
