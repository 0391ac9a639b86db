//! HD wallets: BIP-39 recovery phrases and BIP-32 derivation of accounts on m/44'/60'/0'/0/i.
//!
//! A new phrase takes its entropy from the operating system's CSPRNG. An imported phrase is
//! NFKD-normalized, lower-cased and checked against the English word list and its checksum; an error
//! names the position of a bad word, never the word. Extended keys are parsed strictly (every
//! BIP-32 "test vector 5" key is refused), which coins-bip32 alone does not do.
//!
//! Nothing here prints a phrase, a seed or a key; callers display a phrase only on a trusted
//! terminal, through `expose_secret()`.

use std::fmt;

use bip39::Language;
use coins_bip32::Bip32Error;
use coins_bip32::prelude::{Hint, XKeyInfo};
use coins_bip32::xkeys::{XPriv, XPub};
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use crate::secret::{ExtendedPrivateKey, PrivateKey, Secret};

/// A BIP-39 recovery phrase. bip39's `Mnemonic` displays its words; this alias keeps it inside
/// [`Secret`], which does not.
pub type Mnemonic = Secret<bip39::Mnemonic>;

/// The derivation path of account `index`: BIP-44, coin type 60 (Ether), account 0, external chain.
pub fn account_path(index: u32) -> String {
    format!("m/44'/60'/0'/0/{index}")
}

/// Account indices are non-hardened BIP-32 indices.
pub const MAX_ACCOUNT_INDEX: u32 = (1 << 31) - 1;

/// How long a new recovery phrase is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WordCount {
    /// 128 bits of entropy.
    Twelve,
    /// 256 bits of entropy.
    #[default]
    TwentyFour,
}

impl WordCount {
    fn entropy_len(self) -> usize {
        match self {
            Self::Twelve => 16,
            Self::TwentyFour => 32,
        }
    }
}

/// Errors from recovery phrases, seeds and BIP-32 keys. None carries a word, a seed or a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HdError {
    #[error("a recovery phrase has 12, 15, 18, 21 or 24 words; this one has {0}")]
    WordCount(usize),
    #[error("word {0} is not in the BIP-39 English word list: check its spelling")]
    UnknownWord(usize),
    #[error(
        "the recovery phrase's checksum does not match: a word is wrong or out of order \
         (keyward accepts English BIP-39 phrases only)"
    )]
    Checksum,
    #[error("BIP-39 entropy must be 16 to 32 bytes in steps of 4, not {0} bytes")]
    Entropy(usize),
    #[error("account index {0} is out of range: indices go from 0 to 2147483647")]
    IndexOutOfRange(u64),
    #[error("invalid extended key: {0}")]
    ExtendedKey(&'static str),
    #[error("key derivation failed: {0}")]
    Derivation(&'static str),
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
}

/// A new recovery phrase from the OS CSPRNG.
pub fn generate(words: WordCount) -> Result<Mnemonic, HdError> {
    let mut entropy = Zeroizing::new([0u8; 32]);
    let entropy = &mut entropy[..words.entropy_len()];
    getrandom::fill(entropy).map_err(|err| HdError::Random(err.to_string()))?;
    from_entropy(entropy)
}

/// The phrase that encodes `entropy` (16 to 32 bytes, in steps of 4).
pub fn from_entropy(entropy: &[u8]) -> Result<Mnemonic, HdError> {
    bip39::Mnemonic::from_entropy_in(Language::English, entropy)
        .map(Secret::new)
        .map_err(|_| HdError::Entropy(entropy.len()))
}

/// Parses a phrase a person typed or pasted: NFKD-normalized, case-insensitive, any whitespace.
pub fn parse_phrase(phrase: &str) -> Result<Mnemonic, HdError> {
    // NFKD can expand characters; reserve enough that the buffer never reallocates and leaves an
    // unzeroized copy behind.
    let mut normalized = Zeroizing::new(String::with_capacity(phrase.len() * 4 + 16));
    for c in phrase.nfkd() {
        normalized.extend(c.to_lowercase());
    }
    bip39::Mnemonic::parse_in_normalized(Language::English, &normalized)
        .map(Secret::new)
        .map_err(|err| match err {
            bip39::Error::BadWordCount(count) => HdError::WordCount(count),
            bip39::Error::UnknownWord(index) => HdError::UnknownWord(index + 1),
            _ => HdError::Checksum,
        })
}

impl Secret<bip39::Mnemonic> {
    /// The 64-byte BIP-39 seed. keyward uses no passphrase; the parameter exists for the
    /// published test vectors (passphrase "TREZOR").
    pub fn seed(&self, passphrase: &str) -> Secret<[u8; 64]> {
        Secret::new(self.expose_secret().to_seed(passphrase))
    }

    /// The entropy the phrase encodes, which is what the vault stores.
    pub fn entropy(&self) -> Secret<Vec<u8>> {
        let (mut array, len) = self.expose_secret().to_entropy_array();
        let entropy = Secret::new(array[..len].to_vec());
        zeroize::Zeroize::zeroize(&mut array);
        entropy
    }

    /// The private key of account `index`, on m/44'/60'/0'/0/index.
    pub fn account_key(&self, index: u32) -> Result<PrivateKey, HdError> {
        if index > MAX_ACCOUNT_INDEX {
            return Err(HdError::IndexOutOfRange(index.into()));
        }
        let root = ExtendedPrivateKey::from_seed(self.seed("").expose_secret())?;
        root.derive(&account_path(index))?.private_key()
    }
}

impl ExtendedPrivateKey {
    /// The BIP-32 master node of a seed (16 to 64 bytes; BIP-39 seeds are 64).
    pub fn from_seed(seed: &[u8]) -> Result<Self, HdError> {
        // Legacy hint: serialize as xprv/xpub, the version bytes BIP-32 and Ethereum tools use.
        XPriv::root_from_seed(seed, Some(Hint::Legacy))
            .map(Self::new)
            .map_err(|_| HdError::Derivation("the seed gives an invalid master key"))
    }

    /// The node at `path` below this one, e.g. `m/44'/60'/0'/0/0` (`'` or `h` for hardened).
    pub fn derive(&self, path: &str) -> Result<Self, HdError> {
        self.expose_secret()
            .derive_path(path)
            .map(Self::new)
            .map_err(|err| match err {
                Bip32Error::MalformattedDerivation(_) => {
                    HdError::Derivation("the derivation path is malformed")
                }
                _ => HdError::Derivation("the path leads to an invalid key (try the next index)"),
            })
    }

    /// This node's private key as an Ethereum key.
    pub fn private_key(&self) -> Result<PrivateKey, HdError> {
        let signing_key: &k256::ecdsa::SigningKey = self.expose_secret().as_ref();
        let mut bytes = Zeroizing::new([0u8; 32]);
        let mut field = signing_key.to_bytes();
        bytes.copy_from_slice(&field);
        zeroize::Zeroize::zeroize(field.as_mut_slice());
        PrivateKey::from_bytes(&bytes).map_err(|_| HdError::Derivation("invalid child key"))
    }

    /// The neutered (public) node.
    pub fn public(&self) -> XPub {
        self.expose_secret().verify_key()
    }
}

/// An extended key parsed from its base58check form (`xprv…`, `xpub…`, `tprv…`, `tpub…`).
pub enum ExtendedKey {
    Private(ExtendedPrivateKey),
    Public(XPub),
}

impl fmt::Debug for ExtendedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Private(key) => f.debug_tuple("Private").field(key).finish(),
            Self::Public(key) => f.debug_tuple("Public").field(&key.to_base58()).finish(),
        }
    }
}

impl ExtendedKey {
    /// Parses an extended key and enforces every BIP-32 validity rule: checksum, known version,
    /// key prefix matching the version, private key in [1, n-1], public key on the curve, and a
    /// depth-0 key having a zero parent fingerprint and index.
    pub fn parse(text: &str) -> Result<Self, HdError> {
        let key = match XPriv::from_base58(text) {
            Ok(private) => Self::Private(ExtendedPrivateKey::new(private)),
            Err(Bip32Error::BadXPrivVersionBytes(_)) => match XPub::from_base58(text) {
                Ok(public) => Self::Public(public),
                Err(Bip32Error::BadXPubVersionBytes(_)) => {
                    return Err(HdError::ExtendedKey("unknown version bytes"));
                }
                Err(err) => return Err(extended_key_error(&err)),
            },
            Err(err) => return Err(extended_key_error(&err)),
        };
        let info: &XKeyInfo = match &key {
            Self::Private(private) => private.expose_secret().as_ref(),
            Self::Public(public) => public.as_ref(),
        };
        if info.depth == 0 && info.parent.0 != [0; 4] {
            return Err(HdError::ExtendedKey(
                "a master key (depth 0) must have a zero parent fingerprint",
            ));
        }
        if info.depth == 0 && info.index != 0 {
            return Err(HdError::ExtendedKey(
                "a master key (depth 0) must have child index 0",
            ));
        }
        Ok(key)
    }
}

fn extended_key_error(err: &Bip32Error) -> HdError {
    HdError::ExtendedKey(match err {
        Bip32Error::BadB58Checksum => "the base58 checksum does not match",
        Bip32Error::B58Error(_) => "not valid base58",
        Bip32Error::BadPayloadLength => "not 78 bytes long",
        Bip32Error::BadPadding(_) => "a private key must start with a 0x00 byte",
        Bip32Error::BackendError(_) | Bip32Error::EllipticCurveError(_) => {
            "the key is not a valid secp256k1 key"
        }
        _ => "it cannot be decoded",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // BIP-39 English vector 0 (trezor/python-mnemonic vectors.json), passphrase "TREZOR".
    const ABANDON_ABOUT: &str = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

    #[test]
    fn bip39_vector_zero() {
        let phrase = parse_phrase(ABANDON_ABOUT).unwrap();
        assert_eq!(
            hex::encode(phrase.entropy().expose_secret()),
            "00000000000000000000000000000000"
        );
        assert_eq!(
            hex::encode(phrase.seed("TREZOR").expose_secret()),
            "c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264c1e1c92f2cf141630c7a3c4ab7c81b2f001698e7463b04"
        );
    }

    #[test]
    fn anvil_accounts_derive_on_the_ethereum_path() {
        // Foundry's default mnemonic and its published first two accounts.
        let phrase =
            parse_phrase("test test test test test test test test test test test junk").unwrap();
        let expected = [
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
            "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        ];
        for (index, address) in expected.iter().enumerate() {
            let key = phrase.account_key(index as u32).unwrap();
            assert_eq!(key.address().to_checksum(None), *address);
        }
    }

    #[test]
    fn typed_phrases_are_normalized() {
        // Upper case, full-width letters (NFKD maps them to ASCII) and odd whitespace.
        let messy = "  ABANDON abandon\tabandon abandon abandon abandon abandon abandon abandon abandon abandon ａｂｏｕｔ\n";
        let clean = parse_phrase(ABANDON_ABOUT).unwrap();
        assert_eq!(
            parse_phrase(messy).unwrap().entropy().expose_secret(),
            clean.entropy().expose_secret()
        );
    }

    #[test]
    fn phrase_errors_name_positions_not_words() {
        let typo = ABANDON_ABOUT.replacen("abandon", "abandonn", 1);
        assert_eq!(parse_phrase(&typo).unwrap_err(), HdError::UnknownWord(1));
        assert_eq!(
            parse_phrase(&ABANDON_ABOUT.replace("about", "abandon")).unwrap_err(),
            HdError::Checksum
        );
        assert_eq!(
            parse_phrase("abandon about").unwrap_err(),
            HdError::WordCount(2)
        );
        let message = parse_phrase(&typo).unwrap_err().to_string();
        assert!(!message.contains("abandonn"), "{message}");
    }

    #[test]
    fn generated_phrases_have_the_requested_length_and_differ() {
        let a = generate(WordCount::Twelve).unwrap();
        let b = generate(WordCount::TwentyFour).unwrap();
        assert_eq!(a.expose_secret().word_count(), 12);
        assert_eq!(b.expose_secret().word_count(), 24);
        let c = generate(WordCount::TwentyFour).unwrap();
        assert_ne!(b.entropy().expose_secret(), c.entropy().expose_secret());
    }

    #[test]
    fn bip32_vector_one_chain_m_0h() {
        // BIP-32 test vector 1, typed in: seed 000102…0f, chain m/0H.
        let root = XPriv::root_from_seed(
            &alloy::hex!("000102030405060708090a0b0c0d0e0f"),
            Some(Hint::Legacy),
        )
        .unwrap();
        let child = ExtendedPrivateKey::new(root).derive("m/0'").unwrap();
        assert_eq!(
            child.public().to_base58(),
            "xpub68Gmy5EdvgibQVfPdqkBBCHxA5htiqg55crXYuXoQRKfDBFA1WEjWgP6LHhwBZeNK1VTsfTFUHCdrfp1bgwQ9xv5ski8PX9rL2dZXvgGDnw"
        );
        assert_eq!(
            child.expose_secret().to_base58().as_str(),
            "xprv9uHRZZhk6KAJC1avXpDAp4MDc3sQKNxDiPvvkX8Br5ngLNv1TxvUxt4cV1rGL5hj6KCesnDYUhd7oWgT11eZG7XnxHrnYeSvkzY7d2bhkJ7"
        );
    }

    #[test]
    fn master_key_with_a_parent_fingerprint_is_refused() {
        // BIP-32 test vector 5: coins-bip32 decodes this; keyward must not accept it.
        let err = ExtendedKey::parse("xprv9s2SPatNQ9Vc6GTbVMFPFo7jsaZySyzk7L8n2uqKXJen3KUmvQNTuLh3fhZMBoG3G4ZW1N2kZuHEPY53qmbZzCHshoQnNf4GvELZfqTUrcv").unwrap_err();
        assert!(err.to_string().contains("parent fingerprint"), "{err}");
    }

    proptest::proptest! {
        #[test]
        fn phrase_and_key_parsers_never_panic(text in "\\PC{0,200}") {
            let _ = parse_phrase(&text);
            let _ = ExtendedKey::parse(&text);
        }

        #[test]
        fn every_entropy_round_trips_through_its_phrase(entropy in proptest::collection::vec(proptest::prelude::any::<u8>(), 16..=16)) {
            let phrase = from_entropy(&entropy).unwrap();
            let parsed = parse_phrase(&phrase.expose_secret().to_string()).unwrap();
            let back = parsed.entropy();
            proptest::prop_assert_eq!(back.expose_secret(), &entropy);
        }
    }
}
