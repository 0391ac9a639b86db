//! EIP-1559 (type 2) transactions: the exact bytes keyward hashes, signs and broadcasts.
//!
//! The signing payload built here is what the human approves (through its keccak256 digest) and
//! what the signer signs, so keyward encodes it itself instead of trusting a library's defaults.
//! The decoders accept only the canonical encoding this module would produce: a second accepted
//! spelling of the same transaction would let the bytes shown and the bytes signed drift apart.
//!
//! This module must never panic on any input, never accept a non-empty access list or a contract
//! creation, and never hold or touch key material (signing lives in [`crate::signer`]).

use alloy::primitives::{Address, B256, U256, keccak256};

/// The EIP-2718 type byte of an EIP-1559 transaction.
const TX_TYPE: u8 = 0x02;

/// chain_id, nonce, max_priority_fee_per_gas, max_fee_per_gas, gas_limit, to, value, input,
/// access_list.
const UNSIGNED_FIELDS: usize = 9;
/// The unsigned fields, then y_parity, r and s.
const SIGNED_FIELDS: usize = UNSIGNED_FIELDS + 3;

/// An EIP-1559 (type 2) transaction before signing. Access list always empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsignedTx {
    pub chain_id: u64,
    pub nonce: u64,
    pub max_priority_fee_per_gas: u128,
    pub max_fee_per_gas: u128,
    pub gas_limit: u64,
    pub to: Address,
    pub value: U256,
    pub input: Vec<u8>,
}

/// An ECDSA signature in the form an EIP-1559 transaction carries it.
///
/// Decoding does not check it: [`crate::signer::ecdsa::recover`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxSignature {
    pub y_parity: bool,
    pub r: U256,
    pub s: U256,
}

/// Why bytes are not a transaction keyward accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxDecodeError {
    #[error("the transaction is empty")]
    Empty,

    #[error("the first byte is 0x{0:02x}, not the EIP-1559 transaction type 0x02")]
    WrongType(u8),

    #[error("the RLP ends before the length it declares")]
    Truncated,

    #[error("the RLP is not canonical: a length or a single byte is not in its shortest form")]
    NonCanonical,

    #[error("bytes follow the end of the transaction")]
    TrailingBytes,

    #[error("the transaction body is not an RLP list")]
    NotAList,

    #[error("the transaction has {got} fields, expected {expected}")]
    FieldCount { expected: usize, got: usize },

    #[error("field {field} is a list, expected a byte string")]
    ExpectedBytes { field: &'static str },

    #[error("field {field} is a byte string, expected a list")]
    ExpectedList { field: &'static str },

    #[error("integer field {field} has a leading zero byte")]
    LeadingZero { field: &'static str },

    #[error("integer field {field} does not fit in {bits} bits")]
    IntegerTooLarge { field: &'static str, bits: usize },

    #[error("the to field is empty (contract creation), which keyward does not support")]
    ContractCreation,

    #[error("the to field is {len} bytes, expected a 20-byte address")]
    BadAddressLength { len: usize },

    #[error("the access list is not empty; keyward supports only empty access lists")]
    AccessListNotEmpty,

    #[error("y_parity is {0}, expected 0 or 1")]
    BadYParity(u64),
}

impl UnsignedTx {
    /// 0x02 || rlp([chain_id, nonce, max_priority_fee_per_gas, max_fee_per_gas, gas_limit, to,
    /// value, input, access_list=[]])
    pub fn signing_payload(&self) -> Vec<u8> {
        let mut fields = Vec::with_capacity(self.input.len() + 128);
        self.encode_fields(&mut fields);
        typed_list(&fields)
    }

    /// keccak256(signing_payload): the digest the human approves and the signer signs.
    pub fn signing_hash(&self) -> B256 {
        keccak256(self.signing_payload())
    }

    /// Parses a signing payload back; strict (canonical RLP, no trailing bytes, no leading zeros
    /// in integers, type byte 0x02, empty access list only, `to` must be 20 bytes — contract
    /// creation is not supported).
    pub fn decode_payload(payload: &[u8]) -> Result<Self, TxDecodeError> {
        let fields = typed_list_items::<UNSIGNED_FIELDS>(payload)?;
        decode_fields(&fields)
    }

    /// 0x02 || rlp([..9 fields.., y_parity, r, s]): what eth_sendRawTransaction takes.
    pub fn encode_signed(&self, signature: &TxSignature) -> Vec<u8> {
        let mut fields = Vec::with_capacity(self.input.len() + 200);
        self.encode_fields(&mut fields);
        encode_uint(&mut fields, &[u8::from(signature.y_parity)]);
        encode_uint(&mut fields, &signature.r.to_be_bytes::<32>());
        encode_uint(&mut fields, &signature.s.to_be_bytes::<32>());
        typed_list(&fields)
    }

    /// The most this transaction can cost the sender: gas_limit * max_fee_per_gas + value
    /// (saturating).
    pub fn max_cost(&self) -> U256 {
        U256::from(self.gas_limit)
            .saturating_mul(U256::from(self.max_fee_per_gas))
            .saturating_add(self.value)
    }

    /// The nine unsigned fields, RLP-encoded back to back, without the list header.
    fn encode_fields(&self, out: &mut Vec<u8>) {
        encode_uint(out, &self.chain_id.to_be_bytes());
        encode_uint(out, &self.nonce.to_be_bytes());
        encode_uint(out, &self.max_priority_fee_per_gas.to_be_bytes());
        encode_uint(out, &self.max_fee_per_gas.to_be_bytes());
        encode_uint(out, &self.gas_limit.to_be_bytes());
        encode_bytes(out, self.to.as_slice());
        encode_uint(out, &self.value.to_be_bytes::<32>());
        encode_bytes(out, &self.input);
        // Access lists are unsupported: always the empty list, which the decoder insists on.
        encode_header(out, LIST, 0);
    }
}

/// Parses a signed EIP-1559 raw transaction (strict, as [`UnsignedTx::decode_payload`]).
///
/// The signature is parsed, not verified: recover its signer with
/// [`crate::signer::ecdsa::recover`].
pub fn decode_signed(raw: &[u8]) -> Result<(UnsignedTx, TxSignature), TxDecodeError> {
    let fields = typed_list_items::<SIGNED_FIELDS>(raw)?;
    let [unsigned @ .., y_parity, r, s] = &fields;
    let tx = decode_fields(unsigned)?;
    let y_parity = match decode_u64(*y_parity, "y_parity")? {
        0 => false,
        1 => true,
        other => return Err(TxDecodeError::BadYParity(other)),
    };
    let signature = TxSignature {
        y_parity,
        r: decode_u256(*r, "r")?,
        s: decode_u256(*s, "s")?,
    };
    Ok((tx, signature))
}

/// keccak256 of the signed raw bytes: the transaction hash.
pub fn transaction_hash(raw: &[u8]) -> B256 {
    keccak256(raw)
}

// --- RLP ---------------------------------------------------------------------------------------
//
// Only what a type 2 transaction needs: byte strings, unsigned integers and one flat list.

/// The short-form prefix base of a byte string.
const STRING: u8 = 0x80;
/// The short-form prefix base of a list.
const LIST: u8 = 0xc0;
/// The longest payload a short-form prefix can announce.
const SHORT_MAX: usize = 55;

/// One decoded RLP item: its kind and its payload (without the header).
#[derive(Debug, Clone, Copy)]
enum Item<'a> {
    Bytes(&'a [u8]),
    List(&'a [u8]),
}

fn typed_list(fields: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(fields.len() + 10);
    out.push(TX_TYPE);
    encode_header(&mut out, LIST, fields.len());
    out.extend_from_slice(fields);
    out
}

fn encode_header(out: &mut Vec<u8>, base: u8, len: usize) {
    match u8::try_from(len) {
        Ok(short) if len <= SHORT_MAX => out.push(base + short),
        _ => {
            let be = (len as u64).to_be_bytes();
            let len_bytes = strip_leading_zeros(&be);
            // At most 8 length bytes, so the long-form prefix stays within its range.
            out.push(base + SHORT_MAX as u8 + len_bytes.len() as u8);
            out.extend_from_slice(len_bytes);
        }
    }
}

fn encode_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    match bytes {
        [single] if *single < STRING => out.push(*single),
        _ => {
            encode_header(out, STRING, bytes.len());
            out.extend_from_slice(bytes);
        }
    }
}

/// A big-endian unsigned integer, minimal: zero is the empty string.
fn encode_uint(out: &mut Vec<u8>, be: &[u8]) {
    encode_bytes(out, strip_leading_zeros(be));
}

fn strip_leading_zeros(be: &[u8]) -> &[u8] {
    let first = be.iter().position(|byte| *byte != 0).unwrap_or(be.len());
    &be[first..]
}

/// Checks the type byte and that one list spans the rest, and splits it into exactly `N` items.
fn typed_list_items<const N: usize>(raw: &[u8]) -> Result<[Item<'_>; N], TxDecodeError> {
    let (&tx_type, mut rest) = raw.split_first().ok_or(TxDecodeError::Empty)?;
    if tx_type != TX_TYPE {
        return Err(TxDecodeError::WrongType(tx_type));
    }
    let body = next_item(&mut rest)?;
    if !rest.is_empty() {
        return Err(TxDecodeError::TrailingBytes);
    }
    let Item::List(mut body) = body else {
        return Err(TxDecodeError::NotAList);
    };
    let mut items = [Item::Bytes(&[]); N];
    let mut got = 0;
    while !body.is_empty() {
        let item = next_item(&mut body)?;
        if let Some(slot) = items.get_mut(got) {
            *slot = item;
        }
        got += 1;
    }
    if got != N {
        return Err(TxDecodeError::FieldCount { expected: N, got });
    }
    Ok(items)
}

/// Takes one item off the front of `input`, rejecting every non-canonical header.
fn next_item<'a>(input: &mut &'a [u8]) -> Result<Item<'a>, TxDecodeError> {
    let (&prefix, rest) = input.split_first().ok_or(TxDecodeError::Truncated)?;
    let (item, rest) = match prefix {
        0x00..=0x7f => (Item::Bytes(&input[..1]), rest),
        0x80..=0xb7 => {
            let (payload, rest) = take(rest, usize::from(prefix - STRING))?;
            if let [single] = payload
                && *single < STRING
            {
                return Err(TxDecodeError::NonCanonical);
            }
            (Item::Bytes(payload), rest)
        }
        0xb8..=0xbf => {
            let (len, rest) = long_length(rest, prefix - STRING - SHORT_MAX as u8)?;
            let (payload, rest) = take(rest, len)?;
            (Item::Bytes(payload), rest)
        }
        0xc0..=0xf7 => {
            let (payload, rest) = take(rest, usize::from(prefix - LIST))?;
            (Item::List(payload), rest)
        }
        0xf8..=0xff => {
            let (len, rest) = long_length(rest, prefix - LIST - SHORT_MAX as u8)?;
            let (payload, rest) = take(rest, len)?;
            (Item::List(payload), rest)
        }
    };
    *input = rest;
    Ok(item)
}

/// Reads a long-form length of `len_bytes` bytes; it must be minimal and above [`SHORT_MAX`].
fn long_length(input: &[u8], len_bytes: u8) -> Result<(usize, &[u8]), TxDecodeError> {
    let (be, rest) = take(input, usize::from(len_bytes))?;
    if be.first() == Some(&0) {
        return Err(TxDecodeError::NonCanonical);
    }
    // Up to 8 bytes: a u64 holds it; a length beyond usize cannot fit in memory anyway.
    let len = be
        .iter()
        .fold(0u64, |len, byte| (len << 8) | u64::from(*byte));
    let len = usize::try_from(len).map_err(|_| TxDecodeError::Truncated)?;
    if len <= SHORT_MAX {
        return Err(TxDecodeError::NonCanonical);
    }
    Ok((len, rest))
}

fn take(input: &[u8], len: usize) -> Result<(&[u8], &[u8]), TxDecodeError> {
    input.split_at_checked(len).ok_or(TxDecodeError::Truncated)
}

fn decode_fields(fields: &[Item<'_>]) -> Result<UnsignedTx, TxDecodeError> {
    let [
        chain_id,
        nonce,
        max_priority_fee_per_gas,
        max_fee_per_gas,
        gas_limit,
        to,
        value,
        input,
        access_list,
    ] = fields
    else {
        return Err(TxDecodeError::FieldCount {
            expected: UNSIGNED_FIELDS,
            got: fields.len(),
        });
    };
    let tx = UnsignedTx {
        chain_id: decode_u64(*chain_id, "chain_id")?,
        nonce: decode_u64(*nonce, "nonce")?,
        max_priority_fee_per_gas: u128::from_be_bytes(decode_uint(
            *max_priority_fee_per_gas,
            "max_priority_fee_per_gas",
        )?),
        max_fee_per_gas: u128::from_be_bytes(decode_uint(*max_fee_per_gas, "max_fee_per_gas")?),
        gas_limit: decode_u64(*gas_limit, "gas_limit")?,
        to: decode_to(*to)?,
        value: decode_u256(*value, "value")?,
        input: bytes(*input, "input")?.to_vec(),
    };
    match access_list {
        Item::List([]) => Ok(tx),
        Item::List(_) => Err(TxDecodeError::AccessListNotEmpty),
        Item::Bytes(_) => Err(TxDecodeError::ExpectedList {
            field: "access_list",
        }),
    }
}

fn bytes<'a>(item: Item<'a>, field: &'static str) -> Result<&'a [u8], TxDecodeError> {
    match item {
        Item::Bytes(bytes) => Ok(bytes),
        Item::List(_) => Err(TxDecodeError::ExpectedBytes { field }),
    }
}

/// A minimal big-endian integer of at most `N` bytes, left-padded to `N`.
fn decode_uint<const N: usize>(
    item: Item<'_>,
    field: &'static str,
) -> Result<[u8; N], TxDecodeError> {
    let be = bytes(item, field)?;
    if be.first() == Some(&0) {
        return Err(TxDecodeError::LeadingZero { field });
    }
    let mut out = [0; N];
    let start = N
        .checked_sub(be.len())
        .ok_or(TxDecodeError::IntegerTooLarge { field, bits: N * 8 })?;
    out[start..].copy_from_slice(be);
    Ok(out)
}

fn decode_u64(item: Item<'_>, field: &'static str) -> Result<u64, TxDecodeError> {
    decode_uint(item, field).map(u64::from_be_bytes)
}

fn decode_u256(item: Item<'_>, field: &'static str) -> Result<U256, TxDecodeError> {
    decode_uint(item, field).map(U256::from_be_bytes::<32>)
}

fn decode_to(item: Item<'_>) -> Result<Address, TxDecodeError> {
    match bytes(item, "to")? {
        [] => Err(TxDecodeError::ContractCreation),
        to => Address::try_from(to).map_err(|_| TxDecodeError::BadAddressLength { len: to.len() }),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::{Path, PathBuf};

    use serde_json::Value;

    use super::*;
    use crate::secret::PrivateKey;
    use crate::signer::ecdsa::{recover, sign_hash};

    fn shared_vectors() -> Option<PathBuf> {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/vectors"));
        if dir.is_dir() {
            Some(dir.to_path_buf())
        } else {
            println!("skipped: {} is absent", dir.display());
            None
        }
    }

    /// Reads a vector file, quoting every bare integer first: serde_json (without
    /// `arbitrary_precision`) would round a 77-digit `r` through an f64.
    fn read_json(dir: &Path, name: &str) -> Value {
        let text = fs::read_to_string(dir.join(name)).unwrap();
        serde_json::from_str(&quote_integers(&text)).unwrap()
    }

    fn quote_integers(json: &str) -> String {
        let mut out = String::with_capacity(json.len());
        let (mut in_string, mut escaped, mut in_number) = (false, false, false);
        for c in json.chars() {
            if in_number && !c.is_ascii_digit() {
                out.push('"');
                in_number = false;
            }
            if in_string {
                in_string = escaped || c != '"';
                escaped = !escaped && c == '\\';
            } else if c == '"' {
                in_string = true;
            } else if c.is_ascii_digit() && !in_number {
                out.push('"');
                in_number = true;
            }
            out.push(c);
        }
        if in_number {
            out.push('"');
        }
        out
    }

    /// A number as the vector files write it: a JSON integer, `0x` hex or decimal text.
    fn number(value: &Value) -> U256 {
        match value {
            Value::Number(number) => U256::from(number.as_u64().unwrap()),
            Value::String(text) => text.parse().unwrap(),
            other => panic!("not a number: {other}"),
        }
    }

    fn u64_of(value: &Value) -> u64 {
        u64::try_from(number(value)).unwrap()
    }

    fn u128_of(value: &Value) -> u128 {
        u128::try_from(number(value)).unwrap()
    }

    fn hex_of(value: &Value) -> Vec<u8> {
        let text = value.as_str().unwrap();
        hex::decode(text.strip_prefix("0x").unwrap_or(text)).unwrap()
    }

    fn key_of(value: &Value) -> PrivateKey {
        PrivateKey::from_bytes(&hex_of(value).try_into().unwrap()).unwrap()
    }

    /// Builds the transaction of an eth-account style dictionary (camelCase field names).
    fn tx_of(fields: &Value) -> UnsignedTx {
        UnsignedTx {
            chain_id: u64_of(&fields["chainId"]),
            nonce: u64_of(&fields["nonce"]),
            max_priority_fee_per_gas: u128_of(&fields["maxPriorityFeePerGas"]),
            max_fee_per_gas: u128_of(&fields["maxFeePerGas"]),
            gas_limit: u64_of(&fields["gas"]),
            to: fields["to"].as_str().unwrap().parse().unwrap(),
            value: number(&fields["value"]),
            input: hex_of(&fields["data"]),
        }
    }

    fn is_eip1559(fields: &Value) -> bool {
        fields
            .get("type")
            .is_some_and(|ty| number(ty) == U256::from(2))
    }

    fn has_access_list(fields: &Value) -> bool {
        fields
            .get("accessList")
            .and_then(Value::as_array)
            .is_some_and(|list| !list.is_empty())
    }

    /// Signs `tx` with `key` and checks the raw bytes, the round trip and the recovered sender.
    fn sign_and_check(name: &str, tx: &UnsignedTx, key: &PrivateKey, raw: &[u8]) -> TxSignature {
        let signature = sign_hash(key, &tx.signing_hash()).unwrap();
        let encoded = tx.encode_signed(&signature);
        assert_eq!(hex::encode(&encoded), hex::encode(raw), "{name}: raw");
        assert_eq!(
            decode_signed(raw).unwrap(),
            (tx.clone(), signature),
            "{name}"
        );
        assert_eq!(
            UnsignedTx::decode_payload(&tx.signing_payload()).unwrap(),
            *tx,
            "{name}"
        );
        assert_eq!(
            recover(&tx.signing_hash(), &signature),
            Some(key.address()),
            "{name}"
        );
        signature
    }

    #[test]
    fn eth_account_eip1559_transactions_encode_and_round_trip() {
        let Some(dir) = shared_vectors() else { return };
        let file = read_json(&dir, "eth-account/eth_test_transactions.json");
        let mut checked = 0;
        for (index, vector) in file["transactions"].as_array().unwrap().iter().enumerate() {
            if !is_eip1559(vector) {
                continue;
            }
            let name = format!("eth_test_transactions[{index}]");
            if has_access_list(vector) {
                println!("{name}: skipped, it has an access list (unsupported)");
                continue;
            }
            sign_and_check(
                &name,
                &tx_of(vector),
                &key_of(&vector["key"]),
                &hex_of(&vector["signed"]),
            );
            checked += 1;
        }
        assert_eq!(
            checked, 1,
            "the file has one EIP-1559 entry without an access list"
        );
    }

    /// The items of a signed raw transaction, each with its full encoding (header included).
    fn raw_items(raw: &[u8]) -> Vec<(Item<'_>, &[u8])> {
        let mut rest = &raw[1..];
        let Item::List(mut body) = next_item(&mut rest).unwrap() else {
            panic!("not a list")
        };
        let mut items = Vec::new();
        while !body.is_empty() {
            let before = body;
            let item = next_item(&mut body).unwrap();
            items.push((item, &before[..before.len() - body.len()]));
        }
        items
    }

    /// Checks the v, r and s a vector states (when it states them) against `signature`.
    fn check_stated_signature(name: &str, vector: &Value, signature: &TxSignature) {
        if let Some(v) = vector.get("v") {
            assert_eq!(number(v), U256::from(signature.y_parity), "{name}: v");
        }
        if let Some(r) = vector.get("r") {
            assert_eq!(number(r), signature.r, "{name}: r");
        }
        if let Some(s) = vector.get("s") {
            assert_eq!(number(s), signature.s, "{name}: s");
        }
    }

    #[test]
    fn ethereum_signing_vectors_eip1559() {
        let Some(dir) = shared_vectors() else { return };
        let file = read_json(&dir, "ethereum-signing-vectors.json");
        let mut checked = 0;
        for (name, vector) in file.as_object().unwrap() {
            let Some(fields) = vector.get("tx").filter(|tx| is_eip1559(tx)) else {
                continue;
            };
            let key = vector
                .get("key")
                .or_else(|| vector.get("private_key"))
                .unwrap();
            let key = key_of(key);
            let raw = hex_of(&vector["raw"]);
            if let Some(hash) = vector.get("hash") {
                assert_eq!(
                    transaction_hash(&raw).to_vec(),
                    hex_of(hash),
                    "{name}: hash"
                );
            }
            if let Some(from) = vector.get("from") {
                assert_eq!(
                    key.address(),
                    from.as_str().unwrap().parse::<Address>().unwrap()
                );
            }
            let signature = if has_access_list(fields) {
                // keyward cannot build this transaction, but its signature still tests the signer:
                // the signing payload is the raw list without its last three items.
                assert_eq!(
                    decode_signed(&raw).unwrap_err(),
                    TxDecodeError::AccessListNotEmpty,
                    "{name}"
                );
                let items = raw_items(&raw);
                assert_eq!(items.len(), SIGNED_FIELDS, "{name}");
                let fields: Vec<u8> = items[..UNSIGNED_FIELDS]
                    .iter()
                    .flat_map(|(_, encoded)| encoded.iter().copied())
                    .collect();
                let signature = sign_hash(&key, &keccak256(typed_list(&fields))).unwrap();
                let stated = |index: usize| match items[index].0 {
                    Item::Bytes(be) => U256::try_from_be_slice(be).unwrap(),
                    Item::List(_) => panic!("{name}: a list in the signature"),
                };
                assert_eq!(stated(9), U256::from(signature.y_parity), "{name}");
                assert_eq!(stated(10), signature.r, "{name}");
                assert_eq!(stated(11), signature.s, "{name}");
                println!("{name}: access list unsupported, checked the signature only");
                signature
            } else {
                sign_and_check(name, &tx_of(fields), &key, &raw)
            };
            check_stated_signature(name, vector, &signature);
            checked += 1;
        }
        assert_eq!(checked, 2, "the file has two EIP-1559 entries");
    }

    fn sample() -> UnsignedTx {
        UnsignedTx {
            chain_id: 31337,
            nonce: 0,
            max_priority_fee_per_gas: 1_000_000_000,
            max_fee_per_gas: 2_000_000_000,
            gas_limit: 21_000,
            to: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
                .parse()
                .unwrap(),
            value: U256::from(10).pow(U256::from(18)),
            input: Vec::new(),
        }
    }

    /// Re-encodes `fields` (each already RLP-encoded) as a type 2 list.
    fn payload_of(fields: &[&[u8]]) -> Vec<u8> {
        typed_list(&fields.concat())
    }

    /// The sample's fields, each RLP-encoded, to be altered one at a time.
    fn sample_fields() -> Vec<Vec<u8>> {
        let payload = sample().signing_payload();
        raw_items(&payload)
            .into_iter()
            .map(|(_, encoded)| encoded.to_vec())
            .collect()
    }

    fn decode_altered(index: usize, replacement: &[u8]) -> Result<UnsignedTx, TxDecodeError> {
        let mut fields = sample_fields();
        fields[index] = replacement.to_vec();
        let fields: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
        UnsignedTx::decode_payload(&payload_of(&fields))
    }

    #[test]
    fn sample_payload_is_the_known_bytes() {
        // The DERIVED_HERE Anvil vector's raw transaction without its signature, typed in so the
        // encoder is checked without ../shared/vectors.
        assert_eq!(
            hex::encode(sample().signing_payload()),
            "02f1827a6980843b9aca0084773594008252089470997970c51812dc3a010c7d01b50e0d17dc79c8880de0b6b3a764000080c0"
        );
        assert_eq!(
            UnsignedTx::decode_payload(&sample().signing_payload()).unwrap(),
            sample()
        );
    }

    #[test]
    fn zero_integers_encode_as_the_empty_string() {
        let tx = UnsignedTx {
            chain_id: 0,
            nonce: 0,
            max_priority_fee_per_gas: 0,
            max_fee_per_gas: 0,
            gas_limit: 0,
            to: Address::ZERO,
            value: U256::ZERO,
            input: vec![0x00],
        };
        let payload = tx.signing_payload();
        assert_eq!(
            hex::encode(&payload),
            "02dd80808080809400000000000000000000000000000000000000008000c0"
        );
        assert_eq!(UnsignedTx::decode_payload(&payload).unwrap(), tx);
    }

    #[test]
    fn long_input_uses_the_long_form_and_round_trips() {
        let tx = UnsignedTx {
            input: vec![0xab; 300],
            ..sample()
        };
        let payload = tx.signing_payload();
        // A list longer than 255 bytes: 0xf9 and a two-byte length; the input is 0xb9 0x01 0x2c.
        assert_eq!(payload[1], 0xf9);
        assert!(hex::encode(&payload).contains("b9012cabab"));
        assert_eq!(UnsignedTx::decode_payload(&payload).unwrap(), tx);
    }

    #[test]
    fn decode_rejects_trailing_bytes() {
        let mut payload = sample().signing_payload();
        payload.push(0x00);
        assert_eq!(
            UnsignedTx::decode_payload(&payload).unwrap_err(),
            TxDecodeError::TrailingBytes
        );
        let signature = TxSignature {
            y_parity: true,
            r: U256::from(1),
            s: U256::from(2),
        };
        let mut raw = sample().encode_signed(&signature);
        raw.push(0x80);
        assert_eq!(
            decode_signed(&raw).unwrap_err(),
            TxDecodeError::TrailingBytes
        );
    }

    #[test]
    fn decode_rejects_a_wrong_type_byte() {
        let mut payload = sample().signing_payload();
        payload[0] = 0x01;
        assert_eq!(
            UnsignedTx::decode_payload(&payload).unwrap_err(),
            TxDecodeError::WrongType(0x01)
        );
        // A legacy transaction starts with its list header.
        assert_eq!(
            UnsignedTx::decode_payload(&payload[1..]).unwrap_err(),
            TxDecodeError::WrongType(0xf1)
        );
        assert_eq!(
            UnsignedTx::decode_payload(&[]).unwrap_err(),
            TxDecodeError::Empty
        );
    }

    #[test]
    fn decode_rejects_a_leading_zero_in_an_integer() {
        // nonce 1 as 0x82 0x00 0x01, and nonce 0 as the single byte 0x00 instead of 0x80.
        for nonce in [&[0x82, 0x00, 0x01][..], &[0x00]] {
            assert_eq!(
                decode_altered(1, nonce).unwrap_err(),
                TxDecodeError::LeadingZero { field: "nonce" }
            );
        }
        assert_eq!(
            decode_altered(6, &[0x83, 0x00, 0x12, 0x34]).unwrap_err(),
            TxDecodeError::LeadingZero { field: "value" }
        );
    }

    #[test]
    fn decode_rejects_non_canonical_lengths() {
        // A single byte below 0x80 wrapped in a string header.
        assert_eq!(
            decode_altered(1, &[0x81, 0x05]).unwrap_err(),
            TxDecodeError::NonCanonical
        );
        // A 2-byte input in the long form.
        assert_eq!(
            decode_altered(7, &[0xb8, 0x02, 0xaa, 0xbb]).unwrap_err(),
            TxDecodeError::NonCanonical
        );
        // A long-form length with a leading zero.
        let mut long = vec![0xb9, 0x00, 0x40];
        long.extend_from_slice(&[0xaa; 0x40]);
        assert_eq!(
            decode_altered(7, &long).unwrap_err(),
            TxDecodeError::NonCanonical
        );
    }

    #[test]
    fn decode_rejects_an_integer_too_large() {
        let mut nonce = vec![0x89, 0x01];
        nonce.extend_from_slice(&[0; 8]);
        assert_eq!(
            decode_altered(1, &nonce).unwrap_err(),
            TxDecodeError::IntegerTooLarge {
                field: "nonce",
                bits: 64
            }
        );
    }

    #[test]
    fn decode_rejects_a_non_empty_access_list() {
        // [[0x00..01, []]]: one address with no storage keys.
        let mut entry = vec![0xd6, 0x94];
        entry.extend_from_slice(&[0; 19]);
        entry.extend_from_slice(&[0x01, 0xc0]);
        let mut access_list = vec![0xd7];
        access_list.extend_from_slice(&entry);
        assert_eq!(
            decode_altered(8, &access_list).unwrap_err(),
            TxDecodeError::AccessListNotEmpty
        );
        assert_eq!(
            decode_altered(8, &[0x80]).unwrap_err(),
            TxDecodeError::ExpectedList {
                field: "access_list"
            }
        );
    }

    #[test]
    fn decode_rejects_a_19_byte_to_and_contract_creation() {
        let mut to = vec![0x93];
        to.extend_from_slice(&[0x11; 19]);
        assert_eq!(
            decode_altered(5, &to).unwrap_err(),
            TxDecodeError::BadAddressLength { len: 19 }
        );
        assert_eq!(
            decode_altered(5, &[0x80]).unwrap_err(),
            TxDecodeError::ContractCreation
        );
        assert_eq!(
            decode_altered(5, &[0xc0]).unwrap_err(),
            TxDecodeError::ExpectedBytes { field: "to" }
        );
    }

    #[test]
    fn decode_rejects_a_wrong_field_count() {
        let fields = sample_fields();
        let fields: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
        assert_eq!(
            UnsignedTx::decode_payload(&payload_of(&fields[..8])).unwrap_err(),
            TxDecodeError::FieldCount {
                expected: 9,
                got: 8
            }
        );
        let signature = TxSignature {
            y_parity: false,
            r: U256::from(7),
            s: U256::from(9),
        };
        let raw = sample().encode_signed(&signature);
        // A signed transaction is not a signing payload, and the other way around.
        assert_eq!(
            UnsignedTx::decode_payload(&raw).unwrap_err(),
            TxDecodeError::FieldCount {
                expected: 9,
                got: 12
            }
        );
        assert_eq!(
            decode_signed(&sample().signing_payload()).unwrap_err(),
            TxDecodeError::FieldCount {
                expected: 12,
                got: 9
            }
        );
    }

    #[test]
    fn decode_rejects_a_bad_y_parity_and_truncation() {
        let signature = TxSignature {
            y_parity: true,
            r: U256::from(7),
            s: U256::from(9),
        };
        let raw = sample().encode_signed(&signature);
        let mut items: Vec<Vec<u8>> = raw_items(&raw)
            .into_iter()
            .map(|(_, encoded)| encoded.to_vec())
            .collect();
        items[9] = vec![0x02];
        assert_eq!(
            decode_signed(&typed_list(&items.concat())).unwrap_err(),
            TxDecodeError::BadYParity(2)
        );
        assert_eq!(
            decode_signed(&raw[..raw.len() - 1]).unwrap_err(),
            TxDecodeError::Truncated
        );
    }

    #[test]
    fn max_cost_is_gas_times_fee_plus_value_and_saturates() {
        assert_eq!(
            sample().max_cost(),
            U256::from(21_000u64 * 2_000_000_000) + U256::from(10).pow(U256::from(18))
        );
        let huge = UnsignedTx {
            gas_limit: u64::MAX,
            max_fee_per_gas: u128::MAX,
            value: U256::MAX,
            ..sample()
        };
        assert_eq!(huge.max_cost(), U256::MAX);
    }

    #[test]
    fn errors_are_lowercase_without_a_trailing_period() {
        for err in [
            TxDecodeError::Empty,
            TxDecodeError::WrongType(1),
            TxDecodeError::NonCanonical,
            TxDecodeError::AccessListNotEmpty,
            TxDecodeError::BadAddressLength { len: 19 },
            TxDecodeError::IntegerTooLarge {
                field: "nonce",
                bits: 64,
            },
        ] {
            let message = err.to_string();
            assert!(!message.ends_with('.'), "{message}");
            assert!(
                message.starts_with(|c: char| !c.is_uppercase()),
                "{message}"
            );
        }
    }

    fn arbitrary_tx() -> impl proptest::strategy::Strategy<Value = UnsignedTx> {
        use proptest::prelude::*;
        (
            any::<u64>(),
            any::<u64>(),
            any::<u128>(),
            any::<u128>(),
            any::<u64>(),
            any::<[u8; 20]>(),
            any::<[u8; 32]>(),
            proptest::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(|(chain_id, nonce, tip, fee, gas_limit, to, value, input)| {
                UnsignedTx {
                    chain_id,
                    nonce,
                    max_priority_fee_per_gas: tip,
                    max_fee_per_gas: fee,
                    gas_limit,
                    to: Address::from(to),
                    value: U256::from_be_bytes(value),
                    input,
                }
            })
    }

    proptest::proptest! {
        #[test]
        fn decoders_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = UnsignedTx::decode_payload(&bytes);
            let _ = decode_signed(&bytes);
            let mut typed = vec![TX_TYPE];
            typed.extend_from_slice(&bytes);
            let _ = UnsignedTx::decode_payload(&typed);
            let _ = decode_signed(&typed);
        }

        #[test]
        fn decoders_never_panic_on_a_damaged_transaction(
            at in 0usize..200,
            byte in proptest::prelude::any::<u8>(),
            cut in 0usize..200,
        ) {
            let signature = TxSignature { y_parity: true, r: U256::MAX, s: U256::from(1) };
            let mut raw = sample().encode_signed(&signature);
            let at = at % raw.len();
            raw[at] = byte;
            raw.truncate(raw.len() - cut % raw.len());
            if let Ok((tx, signature)) = decode_signed(&raw) {
                // Anything accepted is canonical: it re-encodes to the same bytes.
                proptest::prop_assert_eq!(tx.encode_signed(&signature), raw);
            }
        }

        #[test]
        fn any_transaction_round_trips(
            tx in arbitrary_tx(),
            y_parity in proptest::prelude::any::<bool>(),
            r in proptest::prelude::any::<[u8; 32]>(),
            s in proptest::prelude::any::<[u8; 32]>(),
        ) {
            let payload = tx.signing_payload();
            proptest::prop_assert_eq!(&UnsignedTx::decode_payload(&payload).unwrap(), &tx);
            let (r, s) = (U256::from_be_bytes(r), U256::from_be_bytes(s));
            let signature = TxSignature { y_parity, r, s };
            let raw = tx.encode_signed(&signature);
            proptest::prop_assert_eq!(decode_signed(&raw).unwrap(), (tx, signature));
        }
    }
}
