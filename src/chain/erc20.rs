//! ERC-20 calls keyward reads with, and defensive decoding of what a token returns.
//!
//! A token contract is third-party code: its `name()` may return a normal ABI string, a bytes32
//! (older tokens such as MKR), or garbage. Decoding never panics and never trusts a length field
//! beyond the bytes actually returned.

use alloy::primitives::{Address, U256};

/// `balanceOf(address)`: keccak256("balanceOf(address)")[..4].
pub const BALANCE_OF: [u8; 4] = [0x70, 0xa0, 0x82, 0x31];
/// `name()`
pub const NAME: [u8; 4] = [0x06, 0xfd, 0xde, 0x03];
/// `symbol()`
pub const SYMBOL: [u8; 4] = [0x95, 0xd8, 0x9b, 0x41];
/// `decimals()`
pub const DECIMALS: [u8; 4] = [0x31, 0x3c, 0xe5, 0x67];

/// The longest string a token may return that keyward reads (before sanitizing caps it further).
const MAX_STRING_BYTES: usize = 1024;

/// Calldata for `balanceOf(owner)`.
pub fn balance_of(owner: Address) -> Vec<u8> {
    let mut data = Vec::with_capacity(36);
    data.extend_from_slice(&BALANCE_OF);
    data.extend_from_slice(&[0; 12]);
    data.extend_from_slice(owner.as_slice());
    data
}

/// A `uint256` return value.
pub fn decode_uint(data: &[u8]) -> Option<U256> {
    (data.len() == 32).then(|| U256::from_be_slice(data))
}

/// A `uint8` return value such as `decimals()`: a uint256 word whose value fits in a byte.
pub fn decode_decimals(data: &[u8]) -> Option<u8> {
    decode_uint(data).and_then(|value| u8::try_from(value).ok())
}

/// A `string` return value, or a `bytes32` one (zero-padded), as raw bytes.
pub fn decode_string(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() == 32 {
        // bytes32: the text, then zero padding.
        let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        return Some(data[..end].to_vec());
    }
    if data.len() < 64 {
        return None;
    }
    let offset = usize::try_from(decode_uint(&data[..32])?).ok()?;
    let length_word = data.get(offset..offset.checked_add(32)?)?;
    let length = usize::try_from(U256::from_be_slice(length_word)).ok()?;
    let start = offset + 32;
    let bytes = data.get(start..start.checked_add(length)?)?;
    Some(bytes[..bytes.len().min(MAX_STRING_BYTES)].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::keccak256;

    #[test]
    fn selectors_are_the_keccak_of_their_signatures() {
        for (selector, signature) in [
            (BALANCE_OF, "balanceOf(address)"),
            (NAME, "name()"),
            (SYMBOL, "symbol()"),
            (DECIMALS, "decimals()"),
        ] {
            assert_eq!(selector, keccak256(signature)[..4], "{signature}");
        }
    }

    #[test]
    fn strings_decode_from_abi_and_bytes32() {
        let mut abi = vec![0u8; 31];
        abi.push(32);
        abi.extend_from_slice(&[0; 31]);
        abi.push(4);
        abi.extend_from_slice(b"TUSD");
        abi.extend_from_slice(&[0; 28]);
        assert_eq!(decode_string(&abi).unwrap(), b"TUSD");

        let mut bytes32 = b"MKR".to_vec();
        bytes32.resize(32, 0);
        assert_eq!(decode_string(&bytes32).unwrap(), b"MKR");
    }

    #[test]
    fn lying_lengths_and_offsets_do_not_panic() {
        let mut huge_length = vec![0u8; 31];
        huge_length.push(32);
        huge_length.extend_from_slice(&[0xff; 32]);
        assert_eq!(decode_string(&huge_length), None);
        let mut far_offset = vec![0xff; 32];
        far_offset.extend_from_slice(&[0; 32]);
        assert_eq!(decode_string(&far_offset), None);
        assert_eq!(decode_string(&[1, 2, 3]), None);
        assert_eq!(decode_decimals(&[0xff; 32]), None);
    }

    proptest::proptest! {
        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = decode_string(&data);
            let _ = decode_uint(&data);
            let _ = decode_decimals(&data);
        }
    }
}
