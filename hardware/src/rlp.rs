//! Just enough RLP to find the items of a transaction's signing preimage: item headers, a whole
//! list, and how far a partly received list has arrived. Canonical encodings only; nothing here
//! decodes numbers or addresses.

/// Why bytes are not (yet) an RLP item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RlpError {
    /// The bytes end before the item does.
    Incomplete,
    /// The bytes can never be a canonical RLP item.
    Malformed(&'static str),
}

/// String or list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    String,
    List,
}

/// An item's header: its kind, how many header bytes precede the payload, and the payload's
/// length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) kind: Kind,
    pub(crate) header_len: usize,
    pub(crate) payload_len: usize,
}

impl Header {
    /// Header and payload together.
    pub(crate) fn total_len(&self) -> Result<usize, RlpError> {
        self.header_len
            .checked_add(self.payload_len)
            .ok_or(RlpError::Malformed("an item is longer than memory"))
    }
}

/// One complete item inside a list, with offsets into the bytes the list was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Item<'a> {
    pub(crate) kind: Kind,
    pub(crate) payload: &'a [u8],
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Lists nest at most this deep in what we accept; a transaction needs three (access lists).
const MAX_NESTING: usize = 16;

/// Reads the header at the front of `bytes`.
pub(crate) fn header(bytes: &[u8]) -> Result<Header, RlpError> {
    let (&first, rest) = bytes.split_first().ok_or(RlpError::Incomplete)?;
    let header = match first {
        0x00..=0x7F => Header {
            kind: Kind::String,
            header_len: 0,
            payload_len: 1,
        },
        0x80..=0xB7 => Header {
            kind: Kind::String,
            header_len: 1,
            payload_len: usize::from(first - 0x80),
        },
        0xB8..=0xBF => long_header(Kind::String, usize::from(first - 0xB7), rest)?,
        0xC0..=0xF7 => Header {
            kind: Kind::List,
            header_len: 1,
            payload_len: usize::from(first - 0xC0),
        },
        0xF8..=0xFF => long_header(Kind::List, usize::from(first - 0xF7), rest)?,
    };
    // A one-byte string below 0x80 must be written as that byte alone.
    if first == 0x81 {
        match rest.first() {
            Some(&byte) if byte < 0x80 => {
                return Err(RlpError::Malformed("a single byte below 0x80 has a header"));
            }
            Some(_) => {}
            None => return Err(RlpError::Incomplete),
        }
    }
    Ok(header)
}

fn long_header(kind: Kind, length_len: usize, rest: &[u8]) -> Result<Header, RlpError> {
    let length_bytes = rest.get(..length_len).ok_or(RlpError::Incomplete)?;
    if length_bytes.first() == Some(&0) {
        return Err(RlpError::Malformed("a length has a leading zero"));
    }
    let mut payload_len: usize = 0;
    for &byte in length_bytes {
        payload_len = payload_len
            .checked_mul(256)
            .and_then(|len| len.checked_add(usize::from(byte)))
            .ok_or(RlpError::Malformed("an item is longer than memory"))?;
    }
    if payload_len < 56 {
        return Err(RlpError::Malformed(
            "a length below 56 is written in the long form",
        ));
    }
    Ok(Header {
        kind,
        header_len: 1 + length_len,
        payload_len,
    })
}

/// The items of the list that `bytes` holds exactly (no bytes before or after it). Nested lists
/// are checked to be well formed too.
pub(crate) fn list(bytes: &[u8]) -> Result<Vec<Item<'_>>, RlpError> {
    let list = header(bytes)?;
    if list.kind != Kind::List {
        return Err(RlpError::Malformed("it is not an RLP list"));
    }
    let total = list.total_len()?;
    if bytes.len() < total {
        return Err(RlpError::Incomplete);
    }
    if bytes.len() > total {
        return Err(RlpError::Malformed("bytes follow the end of the RLP list"));
    }
    items(bytes, list.header_len, total, 0)
}

/// The complete items between `start` and `end` of `bytes`, which must tile that range exactly.
fn items(bytes: &[u8], start: usize, end: usize, depth: usize) -> Result<Vec<Item<'_>>, RlpError> {
    if depth > MAX_NESTING {
        return Err(RlpError::Malformed("lists nest too deep"));
    }
    let mut found = Vec::new();
    let mut offset = start;
    while offset < end {
        let item = item_at(&bytes[..end], offset).map_err(|error| match error {
            RlpError::Incomplete => RlpError::Malformed("an item runs past the end of its list"),
            malformed => malformed,
        })?;
        if item.kind == Kind::List {
            let inner_start = item.end - item.payload.len();
            items(bytes, inner_start, item.end, depth + 1)?;
        }
        offset = item.end;
        found.push(item);
    }
    Ok(found)
}

/// The complete item that starts at `offset`.
fn item_at(bytes: &[u8], offset: usize) -> Result<Item<'_>, RlpError> {
    let rest = bytes.get(offset..).ok_or(RlpError::Incomplete)?;
    let header = header(rest)?;
    let end = offset
        .checked_add(header.total_len()?)
        .ok_or(RlpError::Malformed("an item is longer than memory"))?;
    let payload = bytes
        .get(offset + header.header_len..end)
        .ok_or(RlpError::Incomplete)?;
    Ok(Item {
        kind: header.kind,
        payload,
        start: offset,
        end,
    })
}

/// The end offsets of the items that have fully arrived, reading from `start` of a list whose
/// bytes are still arriving. Stops at the first item that is cut short.
pub(crate) fn arrived_item_ends(bytes: &[u8], start: usize) -> Result<Vec<usize>, RlpError> {
    let mut ends = Vec::new();
    let mut offset = start;
    while offset < bytes.len() {
        match item_at(bytes, offset) {
            Ok(item) => {
                offset = item.end;
                ends.push(item.end);
            }
            Err(RlpError::Incomplete) => break,
            Err(error) => return Err(error),
        }
    }
    Ok(ends)
}

#[cfg(test)]
pub(crate) mod encode {
    //! An RLP encoder for building test transactions.

    pub(crate) fn string(bytes: &[u8]) -> Vec<u8> {
        if let [byte] = bytes
            && *byte < 0x80
        {
            return vec![*byte];
        }
        with_header(0x80, bytes)
    }

    pub(crate) fn uint(value: u64) -> Vec<u8> {
        let bytes = value.to_be_bytes();
        let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        string(&bytes[first..])
    }

    pub(crate) fn list(items: &[Vec<u8>]) -> Vec<u8> {
        with_header(0xC0, &items.concat())
    }

    fn with_header(offset: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if payload.len() < 56 {
            out.push(offset + payload.len() as u8);
        } else {
            let len = (payload.len() as u64).to_be_bytes();
            let first = len.iter().position(|&b| b != 0).unwrap_or(len.len());
            out.push(offset + 55 + (len.len() - first) as u8);
            out.extend_from_slice(&len[first..]);
        }
        out.extend_from_slice(payload);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_list_of_strings_and_lists() {
        let bytes = encode::list(&[
            encode::uint(0),
            encode::uint(5),
            encode::uint(1000),
            encode::string(&[0xAA; 60]),
            encode::list(&[encode::list(&[])]),
        ]);
        let items = list(&bytes).unwrap();
        assert_eq!(items.len(), 5);
        assert_eq!(items[0].payload, &[] as &[u8]);
        assert_eq!(items[1].payload, &[5]);
        assert_eq!(items[2].payload, &[0x03, 0xE8]);
        assert_eq!(items[3].payload, &[0xAA; 60]);
        assert_eq!(items[4].kind, Kind::List);
        assert_eq!(items[4].end, bytes.len());
        assert_eq!(bytes[items[3].start], 0xB8);
    }

    #[test]
    fn refuses_malformed_lists() {
        let cases: [(&[u8], RlpError); 9] = [
            (&[], RlpError::Incomplete),
            (&[0xC2, 0x01], RlpError::Incomplete),
            (&[0x80], RlpError::Malformed("it is not an RLP list")),
            (
                &[0xC1, 0x01, 0x02],
                RlpError::Malformed("bytes follow the end of the RLP list"),
            ),
            (
                &[0xC2, 0x81, 0x05],
                RlpError::Malformed("a single byte below 0x80 has a header"),
            ),
            (
                &[0xF8, 0x01, 0x00],
                RlpError::Malformed("a length below 56 is written in the long form"),
            ),
            (
                &[0xF9, 0x00, 0x38],
                RlpError::Malformed("a length has a leading zero"),
            ),
            // An item inside claims more bytes than the list holds.
            (
                &[0xC2, 0x83, 0x01],
                RlpError::Malformed("an item runs past the end of its list"),
            ),
            (
                &[0xC2, 0xC1, 0x81],
                RlpError::Malformed("an item runs past the end of its list"),
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(list(bytes).unwrap_err(), expected, "{bytes:02x?}");
        }
    }

    #[test]
    fn refuses_lists_nested_too_deep() {
        let mut bytes = encode::list(&[]);
        for _ in 0..40 {
            bytes = encode::list(&[bytes]);
        }
        assert_eq!(
            list(&bytes).unwrap_err(),
            RlpError::Malformed("lists nest too deep")
        );
    }

    #[test]
    fn reports_which_items_have_arrived() {
        let bytes = encode::list(&[encode::uint(1), encode::string(&[7; 10]), encode::uint(3)]);
        // Header, 01, then 8A and ten bytes, then 03.
        assert_eq!(arrived_item_ends(&bytes, 1).unwrap(), vec![2, 13, 14]);
        assert_eq!(arrived_item_ends(&bytes[..12], 1).unwrap(), vec![2]);
        assert_eq!(arrived_item_ends(&bytes[..13], 1).unwrap(), vec![2, 13]);
        assert_eq!(
            arrived_item_ends(&[0xC3, 0xB8, 0x00], 1).unwrap_err(),
            RlpError::Malformed("a length has a leading zero")
        );
    }
}
