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
/// `transfer(address,uint256)`
pub const TRANSFER: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];
/// `approve(address,uint256)`
pub const APPROVE: [u8; 4] = [0x09, 0x5e, 0xa7, 0xb3];
/// `allowance(address,address)`
pub const ALLOWANCE: [u8; 4] = [0xdd, 0x62, 0xed, 0x3e];

/// Calldata for `balanceOf(owner)`.
pub fn balance_of(owner: Address) -> Vec<u8> {
    let mut data = Vec::with_capacity(36);
    data.extend_from_slice(&BALANCE_OF);
    data.extend_from_slice(&[0; 12]);
    data.extend_from_slice(owner.as_slice());
    data
}

/// Calldata for `transfer(recipient, amount)`.
pub fn transfer(recipient: Address, amount: U256) -> Vec<u8> {
    address_and_word(TRANSFER, recipient, amount)
}

/// Calldata for `approve(spender, amount)`.
pub fn approve(spender: Address, amount: U256) -> Vec<u8> {
    address_and_word(APPROVE, spender, amount)
}

/// Calldata for `allowance(owner, spender)`.
pub fn allowance(owner: Address, spender: Address) -> Vec<u8> {
    let mut data = Vec::with_capacity(68);
    data.extend_from_slice(&ALLOWANCE);
    data.extend_from_slice(&[0; 12]);
    data.extend_from_slice(owner.as_slice());
    data.extend_from_slice(&[0; 12]);
    data.extend_from_slice(spender.as_slice());
    data
}

fn address_and_word(selector: [u8; 4], address: Address, amount: U256) -> Vec<u8> {
    let mut data = Vec::with_capacity(68);
    data.extend_from_slice(&selector);
    data.extend_from_slice(&[0; 12]);
    data.extend_from_slice(address.as_slice());
    data.extend_from_slice(&amount.to_be_bytes::<32>());
    data
}

/// Decodes calldata of the shape `selector(address,uint256)` exactly: no extra bytes, and a
/// clean address word.
pub fn decode_address_and_word(selector: [u8; 4], data: &[u8]) -> Option<(Address, U256)> {
    if data.len() != 68 || data[..4] != selector || data[4..16].iter().any(|&b| b != 0) {
        return None;
    }
    Some((
        Address::from_slice(&data[16..36]),
        U256::from_be_slice(&data[36..68]),
    ))
}

/// A revert's reason: the payload of `Error(string)`, if that is what the data holds.
pub fn decode_revert_reason(data: &[u8]) -> Option<&[u8]> {
    const ERROR_STRING: [u8; 4] = [0x08, 0xc3, 0x79, 0xa0];
    if data.len() < 4 || data[..4] != ERROR_STRING {
        return None;
    }
    decode_string(&data[4..]).filter(|_| data.len() > 36)
}

/// A `uint256` return value.
pub fn decode_uint(data: &[u8]) -> Option<U256> {
    (data.len() == 32).then(|| U256::from_be_slice(data))
}

/// A `uint8` return value such as `decimals()`: a uint256 word whose value fits in a byte.
pub fn decode_decimals(data: &[u8]) -> Option<u8> {
    decode_uint(data).and_then(|value| u8::try_from(value).ok())
}

/// A `string` return value, or a `bytes32` one (zero-padded), as raw bytes of any length: the
/// sanitizer reads only as much of them as it needs (see [`crate::untrusted`]).
pub fn decode_string(data: &[u8]) -> Option<&[u8]> {
    if data.len() == 32 {
        // bytes32: the text, then zero padding.
        let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        return Some(&data[..end]);
    }
    if data.len() < 64 {
        return None;
    }
    let offset = usize::try_from(decode_uint(&data[..32])?).ok()?;
    let length_word = data.get(offset..offset.checked_add(32)?)?;
    let length = usize::try_from(U256::from_be_slice(length_word)).ok()?;
    let start = offset + 32;
    data.get(start..start.checked_add(length)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::keccak256;

    #[test]
    fn call_data_round_trips_and_decoding_is_exact() {
        let to = Address::repeat_byte(0x11);
        let amount = U256::from(123_456u64);
        let data = transfer(to, amount);
        assert_eq!(data.len(), 68);
        assert_eq!(decode_address_and_word(TRANSFER, &data), Some((to, amount)));
        assert_eq!(decode_address_and_word(APPROVE, &data), None);
        let mut longer = data.clone();
        longer.push(0);
        assert_eq!(decode_address_and_word(TRANSFER, &longer), None);
        let mut dirty = data;
        dirty[5] = 1;
        assert_eq!(decode_address_and_word(TRANSFER, &dirty), None);
    }

    #[test]
    fn selectors_are_the_keccak_of_their_signatures() {
        for (selector, signature) in [
            (BALANCE_OF, "balanceOf(address)"),
            (NAME, "name()"),
            (TRANSFER, "transfer(address,uint256)"),
            (APPROVE, "approve(address,uint256)"),
            (ALLOWANCE, "allowance(address,address)"),
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
    fn long_strings_and_revert_reasons_come_back_whole() {
        // The sanitizer, not the decoder, decides how much of a string to read.
        let text = vec![b'x'; 100_000];
        let mut revert = vec![0x08, 0xc3, 0x79, 0xa0];
        revert.extend_from_slice(&U256::from(32).to_be_bytes::<32>());
        revert.extend_from_slice(&U256::from(text.len()).to_be_bytes::<32>());
        revert.extend_from_slice(&text);
        assert_eq!(decode_revert_reason(&revert), Some(&text[..]));
        assert_eq!(decode_string(&revert[4..]), Some(&text[..]));
        assert_eq!(decode_revert_reason(&revert[..revert.len() - 1]), None);
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
