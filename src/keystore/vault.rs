//! The vault: the wallet's secrets under one scrypt envelope, beside a public account list.
//!
//! `vault.json` holds a public part (account labels, addresses and kinds, and whether TOTP is
//! enrolled), readable without the password so that read-only tools work while the wallet is
//! locked, and a `crypto` envelope in keystore v3 form. The envelope seals a small binary payload:
//! the BIP-39 entropy, the imported private keys, the TOTP secret, and a keccak digest of the public
//! part. On unlock the digest is checked, so an account list edited outside keyward (an attacker
//! swapping an address) is caught as soon as the password is entered.
//!
//! The public part is not authenticated while the vault is locked: whoever can write vault.json can
//! show a locked keyward a different address. Everything that signs unlocks first.

use std::fmt;
use std::path::Path;

use alloy::primitives::{Address, keccak256};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::envelope::{Envelope, Kdf, SealingKey};
use super::json::{self, Object, malformed};
use super::{FileKind, KeystoreError};
use crate::files::{self, FileLock};
use crate::hd::{self, Mnemonic};
use crate::secret::{Password, PrivateKey, Secret};
use crate::totp::{self, TotpSecret};

/// The vault file format this keyward reads and writes.
pub const VAULT_FORMAT: u64 = 1;
/// vault.json is a few KiB even with hundreds of accounts.
pub const MAX_VAULT_SIZE: u64 = 1 << 20;
const MAX_ACCOUNTS: usize = 1000;
const MAX_PAYLOAD: usize = 64 * 1024;
const PAYLOAD_MAGIC: &[u8; 4] = b"KWV1";

/// An account's name: what the human and the model call it.
///
/// 1 to 32 characters of ASCII letters, digits, spaces, `-`, `_` and `.`, starting with a letter
/// or digit, not all digits (those select accounts by number) and not starting with `0x` (those
/// select by address). Labels are unique regardless of case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label(String);

impl Label {
    pub const MAX_LEN: usize = 32;

    pub fn new(text: &str) -> Result<Self, KeystoreError> {
        let bytes = text.as_bytes();
        let allowed = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b' ' | b'-' | b'_' | b'.');
        let problem = if bytes.is_empty() || bytes.len() > Self::MAX_LEN {
            Some("a label is 1 to 32 characters long")
        } else if !bytes.iter().all(allowed) {
            Some("a label may hold only letters, digits, spaces, '-', '_' and '.'")
        } else if !bytes[0].is_ascii_alphanumeric() || bytes.ends_with(b" ") {
            Some("a label starts with a letter or digit and does not end with a space")
        } else if bytes.iter().all(u8::is_ascii_digit) {
            Some("a label cannot be only digits (numbers select accounts by position)")
        } else if bytes.len() >= 2 && bytes[..2].eq_ignore_ascii_case(b"0x") {
            Some("a label cannot start with 0x (that selects accounts by address)")
        } else {
            None
        };
        match problem {
            Some(problem) => Err(KeystoreError::InvalidLabel(problem)),
            None => Ok(Self(text.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn same_as(&self, other: &Label) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an account's key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountKind {
    /// Derived from the recovery phrase on m/44'/60'/0'/0/index.
    Hd { index: u32 },
    /// A private key imported from a keystore file.
    Imported,
    /// A key that never leaves a Ledger, at this derivation path (as written, `m/44'/60'/0'/0/0`).
    Ledger { path: String },
}

impl AccountKind {
    /// The name used in vault.json and in `keyward accounts --json`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Hd { .. } => "hd",
            Self::Imported => "imported",
            Self::Ledger { .. } => "ledger",
        }
    }

    /// The derivation path, for HD accounts.
    pub fn path(&self) -> Option<String> {
        match self {
            Self::Hd { index } => Some(hd::account_path(*index)),
            Self::Imported => None,
            Self::Ledger { path } => Some(path.clone()),
        }
    }
}

/// One account of the public account list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub label: Label,
    pub address: Address,
    pub kind: AccountKind,
}

impl Account {
    fn to_json(&self) -> Value {
        let mut value = json!({
            "label": self.label.as_str(),
            "address": self.address.to_checksum(None),
            "kind": self.kind.name(),
        });
        match &self.kind {
            AccountKind::Hd { index } => value["index"] = json!(index),
            AccountKind::Ledger { path } => value["path"] = json!(path),
            AccountKind::Imported => {}
        }
        value
    }

    fn from_json(object: &Object<'_>) -> Result<Self, KeystoreError> {
        let label = Label::new(object.string("label")?).map_err(|err| {
            malformed(
                &object.field_path("label"),
                &format!("is not a valid label ({err})"),
            )
        })?;
        let address = Address::from_slice(&object.hex("address", 20..=20)?);
        let kind = match object.string("kind")? {
            "hd" => {
                let index = object.integer("index")?;
                let index = u32::try_from(index)
                    .ok()
                    .filter(|index| *index <= hd::MAX_ACCOUNT_INDEX)
                    .ok_or_else(|| {
                        malformed(&object.field_path("index"), "must be from 0 to 2147483647")
                    })?;
                AccountKind::Hd { index }
            }
            "imported" => AccountKind::Imported,
            "ledger" => {
                let path = object.string("path")?;
                keyward_hardware::DerivationPath::parse(path).map_err(|err| {
                    malformed(&object.field_path("path"), &format!("is not usable: {err}"))
                })?;
                AccountKind::Ledger {
                    path: path.to_owned(),
                }
            }
            _ => {
                return Err(malformed(
                    &object.field_path("kind"),
                    "must be \"hd\", \"imported\" or \"ledger\"",
                ));
            }
        };
        Ok(Self {
            label,
            address,
            kind,
        })
    }
}

/// Finds an account by position (`2`), address (`0x…`, any case) or label (any case).
pub fn find_account(accounts: &[Account], selector: &str) -> Result<usize, KeystoreError> {
    let selector = selector.trim();
    let found = if let Ok(position) = selector.parse::<usize>() {
        (position < accounts.len()).then_some(position)
    } else if selector.len() == 42 && selector[..2].eq_ignore_ascii_case("0x") {
        let address: Option<Address> = selector.parse().ok();
        address.and_then(|address| accounts.iter().position(|a| a.address == address))
    } else {
        accounts
            .iter()
            .position(|a| a.label.as_str().eq_ignore_ascii_case(selector))
    };
    found.ok_or(KeystoreError::UnknownAccount)
}

/// The vault as read from disk: the public account list and the still-sealed envelope.
#[derive(Debug, Clone)]
pub struct Vault {
    accounts: Vec<Account>,
    totp_enrolled: bool,
    envelope: Envelope,
}

impl Vault {
    /// Reads vault.json. A missing file is [`KeystoreError::NoWallet`].
    pub fn load(path: &Path) -> Result<Self, KeystoreError> {
        if !path.exists() {
            return Err(KeystoreError::NoWallet(path.to_owned()));
        }
        let bytes = files::read_limited(path, MAX_VAULT_SIZE)?;
        Self::parse(&bytes)
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, KeystoreError> {
        let document = json::parse(bytes)?;
        let root = Object::root(&document)?;
        if root.get("keyward_vault")?.is_none() {
            return Err(malformed(
                "keyward_vault",
                "is missing: this file is not a keyward vault",
            ));
        }
        match root.integer("keyward_vault")? {
            VAULT_FORMAT => {}
            newer => return Err(KeystoreError::VaultVersion(newer)),
        }
        let accounts = root
            .objects("accounts")?
            .iter()
            .map(Account::from_json)
            .collect::<Result<Vec<_>, _>>()?;
        check_account_list(&accounts)?;
        let totp_enrolled = root.boolean("totp_enrolled")?;
        let envelope = Envelope::from_json(&root.object("crypto")?, 1..=MAX_PAYLOAD)?;
        Ok(Self {
            accounts,
            totp_enrolled,
            envelope,
        })
    }

    /// The public account list. Unauthenticated until [`Vault::unlock`] succeeds.
    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    pub fn totp_enrolled(&self) -> bool {
        self.totp_enrolled
    }

    /// Derives the key from `password` (the slow step), checks the MAC, and checks the account
    /// list against the digest sealed inside.
    #[tracing::instrument(level = "debug", skip_all, fields(accounts = self.accounts.len()))]
    pub fn unlock(&self, password: &Password) -> Result<UnlockedVault, KeystoreError> {
        let sealing_key = SealingKey::derive(self.envelope.kdf().clone(), password)?;
        let plaintext = sealing_key
            .open(&self.envelope)
            .map_err(|_| KeystoreError::WrongPassword(FileKind::Vault))?;
        let payload = Payload::decode(plaintext.expose_secret())?;
        let imported_accounts = self
            .accounts
            .iter()
            .filter(|a| a.kind == AccountKind::Imported)
            .count();
        if payload.public_digest != public_digest(&self.accounts, self.totp_enrolled)
            || payload.imported.len() != imported_accounts
            || payload.totp.is_some() != self.totp_enrolled
        {
            return Err(KeystoreError::VaultTampered);
        }
        let mnemonic = hd::from_entropy(payload.entropy.expose_secret())
            .map_err(|_| KeystoreError::CorruptVault("the recovery phrase entropy is invalid"))?;
        tracing::debug!("vault unlocked");
        Ok(UnlockedVault {
            accounts: self.accounts.clone(),
            sealing_key,
            mnemonic,
            imported: payload.imported,
            totp: payload.totp,
        })
    }
}

fn check_account_list(accounts: &[Account]) -> Result<(), KeystoreError> {
    if accounts.is_empty() {
        return Err(malformed(
            "accounts",
            "is empty; a vault has at least one account",
        ));
    }
    if accounts.len() > MAX_ACCOUNTS {
        return Err(malformed("accounts", "holds more than 1000 accounts"));
    }
    for (i, account) in accounts.iter().enumerate() {
        for earlier in &accounts[..i] {
            let clash = if earlier.label.same_as(&account.label) {
                Some("repeats the label of an earlier account")
            } else if earlier.address == account.address {
                Some("repeats the address of an earlier account")
            } else if earlier.kind != AccountKind::Imported && earlier.kind == account.kind {
                Some("repeats the derivation index of an earlier account")
            } else {
                None
            };
            if let Some(problem) = clash {
                return Err(malformed(&format!("accounts[{i}]"), problem));
            }
        }
    }
    Ok(())
}

fn public_digest(accounts: &[Account], totp_enrolled: bool) -> [u8; 32] {
    let public = json!({
        "accounts": accounts.iter().map(Account::to_json).collect::<Vec<_>>(),
        "totp_enrolled": totp_enrolled,
    });
    keccak256(public.to_string().as_bytes()).0
}

/// The vault's secrets, decrypted. Dropping it zeroizes them.
#[derive(Debug)]
pub struct UnlockedVault {
    accounts: Vec<Account>,
    sealing_key: SealingKey,
    mnemonic: Mnemonic,
    /// Keys of the imported accounts, in the order those accounts appear in `accounts`.
    imported: Vec<PrivateKey>,
    totp: Option<TotpSecret>,
}

impl UnlockedVault {
    /// A new vault holding `mnemonic`, with account 0 labelled `label`, sealed under `password`
    /// with scrypt n=2^18, r=8, p=1.
    pub fn create(
        mnemonic: Mnemonic,
        password: &Password,
        label: Label,
    ) -> Result<Self, KeystoreError> {
        Self::create_with(mnemonic, password, label, Kdf::standard()?)
    }

    pub(crate) fn create_with(
        mnemonic: Mnemonic,
        password: &Password,
        label: Label,
        kdf: Kdf,
    ) -> Result<Self, KeystoreError> {
        let first = mnemonic.account_key(0)?;
        Ok(Self {
            accounts: vec![Account {
                label,
                address: first.address(),
                kind: AccountKind::Hd { index: 0 },
            }],
            sealing_key: SealingKey::derive(kdf, password)?,
            mnemonic,
            imported: Vec::new(),
            totp: None,
        })
    }

    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    /// The recovery phrase.
    pub(crate) fn mnemonic(&self) -> &Mnemonic {
        &self.mnemonic
    }

    /// The private key of the account at `position` in [`UnlockedVault::accounts`].
    pub fn private_key(&self, position: usize) -> Result<PrivateKey, KeystoreError> {
        let account = self
            .accounts
            .get(position)
            .ok_or(KeystoreError::UnknownAccount)?;
        match &account.kind {
            AccountKind::Hd { index } => Ok(self.mnemonic.account_key(*index)?),
            AccountKind::Ledger { .. } => Err(KeystoreError::OnLedger(account.label.clone())),
            AccountKind::Imported => {
                let slot = self.accounts[..position]
                    .iter()
                    .filter(|a| a.kind == AccountKind::Imported)
                    .count();
                let key = self
                    .imported
                    .get(slot)
                    .ok_or(KeystoreError::CorruptVault("an imported key is missing"))?;
                PrivateKey::from_bytes(key.expose_secret()).map_err(|_| KeystoreError::InvalidKey)
            }
        }
    }

    /// Derives the next HD account. `label` defaults to `account-N`.
    pub fn add_hd_account(&mut self, label: Option<Label>) -> Result<&Account, KeystoreError> {
        let index = self
            .accounts
            .iter()
            .filter_map(|a| match a.kind {
                AccountKind::Hd { index } => Some(index + 1),
                AccountKind::Imported | AccountKind::Ledger { .. } => None,
            })
            .max()
            .unwrap_or(0);
        let label = match label {
            Some(label) => label,
            None => Label::new(&format!("account-{index}"))?,
        };
        let key = self.mnemonic.account_key(index)?;
        let account = Account {
            label,
            address: key.address(),
            kind: AccountKind::Hd { index },
        };
        self.check_new(&account)?;
        Ok(self.push(account))
    }

    /// Adds an imported private key. `label` defaults to `imported-N`.
    pub fn add_imported(
        &mut self,
        key: PrivateKey,
        label: Option<Label>,
    ) -> Result<&Account, KeystoreError> {
        let label = match label {
            Some(label) => label,
            None => Label::new(&format!("imported-{}", self.imported.len() + 1))?,
        };
        let account = Account {
            label,
            address: key.address(),
            kind: AccountKind::Imported,
        };
        self.check_new(&account)?;
        self.imported.push(key);
        Ok(self.push(account))
    }

    /// Adds an account whose key lives on a Ledger at `path`, with the address the device showed
    /// and the person confirmed there.
    pub fn add_ledger(
        &mut self,
        path: &keyward_hardware::DerivationPath,
        address: Address,
        label: Label,
    ) -> Result<&Account, KeystoreError> {
        let account = Account {
            label,
            address,
            kind: AccountKind::Ledger {
                path: path.to_string(),
            },
        };
        self.check_new(&account)?;
        Ok(self.push(account))
    }

    fn check_new(&self, account: &Account) -> Result<(), KeystoreError> {
        if self.accounts.len() >= MAX_ACCOUNTS {
            return Err(KeystoreError::TooManyAccounts);
        }
        if let Some(existing) = self.accounts.iter().find(|a| a.address == account.address) {
            return Err(KeystoreError::DuplicateAddress {
                address: account.address,
                label: existing.label.clone(),
            });
        }
        if self
            .accounts
            .iter()
            .any(|a| a.label.same_as(&account.label))
        {
            return Err(KeystoreError::DuplicateLabel(account.label.clone()));
        }
        Ok(())
    }

    fn push(&mut self, account: Account) -> &Account {
        self.accounts.push(account);
        &self.accounts[self.accounts.len() - 1]
    }

    pub fn totp(&self) -> Option<&TotpSecret> {
        self.totp.as_ref()
    }

    /// Replaces the TOTP secret. Callers verify a code for the new secret first.
    pub fn set_totp(&mut self, secret: TotpSecret) {
        self.totp = Some(secret);
    }

    /// The vault file's bytes, sealed again with a fresh IV under the same password-derived key.
    pub fn to_file_bytes(&self) -> Result<Vec<u8>, KeystoreError> {
        let totp_enrolled = self.totp.is_some();
        let payload = Payload::encode(
            &public_digest(&self.accounts, totp_enrolled),
            &self.mnemonic,
            &self.imported,
            self.totp.as_ref(),
        );
        let envelope = self.sealing_key.seal(&payload)?;
        let document = json!({
            "keyward_vault": VAULT_FORMAT,
            "accounts": self.accounts.iter().map(Account::to_json).collect::<Vec<_>>(),
            "totp_enrolled": totp_enrolled,
            "crypto": envelope.to_json(),
        });
        let mut bytes = serde_json::to_vec_pretty(&document)
            .map_err(|_| malformed("(document)", "could not be serialized"))?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Replaces vault.json atomically. The lock proves the caller holds the vault's write lock
    /// (taken before the vault was read, so no other change is lost).
    pub fn save(&self, path: &Path, _lock: &FileLock) -> Result<(), KeystoreError> {
        files::write_atomic(path, &self.to_file_bytes()?)?;
        tracing::debug!(accounts = self.accounts.len(), "vault saved");
        Ok(())
    }

    /// Writes a new vault.json, refusing to replace an existing one.
    pub fn save_new(&self, path: &Path, _lock: &FileLock) -> Result<(), KeystoreError> {
        files::write_new(path, &self.to_file_bytes()?)?;
        tracing::debug!("vault created");
        Ok(())
    }
}

/// The sealed part of the vault, in a small binary layout so that no serializer ever holds a secret:
///
/// ```text
/// "KWV1" | public digest (32) | entropy length (1) | entropy | imported count (2, BE)
///        | 32 bytes per imported key | TOTP secret length (1, 0 = none) | TOTP secret
/// ```
struct Payload {
    public_digest: [u8; 32],
    entropy: Secret<Vec<u8>>,
    imported: Vec<PrivateKey>,
    totp: Option<TotpSecret>,
}

impl Payload {
    fn encode(
        public_digest: &[u8; 32],
        mnemonic: &Mnemonic,
        imported: &[PrivateKey],
        totp: Option<&TotpSecret>,
    ) -> Zeroizing<Vec<u8>> {
        let entropy = mnemonic.entropy();
        let entropy = entropy.expose_secret();
        let totp = totp.map(|t| t.secret_bytes()).unwrap_or_default();
        let mut out = Zeroizing::new(Vec::with_capacity(
            4 + 32 + 1 + entropy.len() + 2 + 32 * imported.len() + 1 + totp.len(),
        ));
        out.extend_from_slice(PAYLOAD_MAGIC);
        out.extend_from_slice(public_digest);
        // Entropy is 16 to 32 bytes, at most 1000 keys, and a TOTP secret 20 bytes: all fit.
        out.push(entropy.len() as u8);
        out.extend_from_slice(entropy);
        out.extend_from_slice(&(imported.len() as u16).to_be_bytes());
        for key in imported {
            out.extend_from_slice(key.expose_secret());
        }
        out.push(totp.len() as u8);
        out.extend_from_slice(totp);
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, KeystoreError> {
        let mut reader = Reader { bytes };
        if reader.take(4)? != PAYLOAD_MAGIC {
            return Err(KeystoreError::CorruptVault("unknown payload layout"));
        }
        let public_digest: [u8; 32] = reader.array()?;
        let entropy_len = usize::from(reader.take(1)?[0]);
        let entropy = Secret::new(reader.take(entropy_len)?.to_vec());
        let count = u16::from_be_bytes(reader.array()?);
        let mut imported = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let key = Zeroizing::new(reader.array::<32>()?);
            imported.push(
                PrivateKey::from_bytes(&key)
                    .map_err(|_| KeystoreError::CorruptVault("an imported key is invalid"))?,
            );
        }
        let totp_len = usize::from(reader.take(1)?[0]);
        let totp = match totp_len {
            0 => None,
            len => Some(
                totp::from_bytes(reader.take(len)?)
                    .map_err(|_| KeystoreError::CorruptVault("the TOTP secret is invalid"))?,
            ),
        };
        if !reader.bytes.is_empty() {
            return Err(KeystoreError::CorruptVault("unexpected trailing bytes"));
        }
        Ok(Self {
            public_digest,
            entropy,
            imported,
            totp,
        })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], KeystoreError> {
        if self.bytes.len() < len {
            return Err(KeystoreError::CorruptVault("the payload is truncated"));
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], KeystoreError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password(text: &str) -> Password {
        Secret::new(text.to_owned())
    }

    fn anvil_phrase() -> Mnemonic {
        hd::parse_phrase("test test test test test test test test test test test junk").unwrap()
    }

    fn new_vault() -> UnlockedVault {
        UnlockedVault::create_with(
            anvil_phrase(),
            &password("pw"),
            Label::new("main").unwrap(),
            Kdf::scrypt(4, 8, 1).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn accounts_are_public_and_secrets_survive_a_round_trip() {
        let mut vault = new_vault();
        vault.add_hd_account(None).unwrap();
        let imported = PrivateKey::from_bytes(&[0x22; 32]).unwrap();
        let imported_address = imported.address();
        vault
            .add_imported(imported, Some(Label::new("cold").unwrap()))
            .unwrap();
        vault.set_totp(totp::from_bytes(&[5; 20]).unwrap());

        let locked = Vault::parse(&vault.to_file_bytes().unwrap()).unwrap();
        let labels: Vec<_> = locked.accounts().iter().map(|a| a.label.as_str()).collect();
        assert_eq!(labels, ["main", "account-1", "cold"]);
        assert_eq!(
            locked.accounts()[1].address.to_checksum(None),
            "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
        );
        assert!(locked.totp_enrolled());

        let unlocked = locked.unlock(&password("pw")).unwrap();
        assert_eq!(unlocked.private_key(2).unwrap().address(), imported_address);
        assert_eq!(
            unlocked.private_key(0).unwrap().address().to_checksum(None),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
        );
        assert_eq!(unlocked.totp().unwrap().secret_bytes(), &[5; 20]);
    }

    #[test]
    fn wrong_password_gives_the_one_sentence() {
        let locked = Vault::parse(&new_vault().to_file_bytes().unwrap()).unwrap();
        let err = locked.unlock(&password("nope")).unwrap_err();
        assert_eq!(err.to_string(), "invalid password or corrupted vault");
    }

    #[test]
    fn an_edited_account_list_is_caught_on_unlock() {
        let bytes = new_vault().to_file_bytes().unwrap();
        let mut document: Value = serde_json::from_slice(&bytes).unwrap();
        document["accounts"][0]["address"] = json!("0x000000000000000000000000000000000000dEaD");
        let locked = Vault::parse(&serde_json::to_vec(&document).unwrap()).unwrap();
        assert!(matches!(
            locked.unlock(&password("pw")),
            Err(KeystoreError::VaultTampered)
        ));
    }

    #[test]
    fn labels_and_addresses_stay_unique() {
        let mut vault = new_vault();
        let err = vault
            .add_hd_account(Some(Label::new("MAIN").unwrap()))
            .unwrap_err();
        assert!(matches!(err, KeystoreError::DuplicateLabel(_)), "{err}");
        let again = vault.private_key(0).unwrap();
        let err = vault.add_imported(again, None).unwrap_err();
        assert!(
            matches!(err, KeystoreError::DuplicateAddress { .. }),
            "{err}"
        );
        assert_eq!(vault.accounts().len(), 1);
    }

    #[test]
    fn label_rules() {
        for good in ["main", "Cold storage", "a.b-c_d", "x1"] {
            Label::new(good).unwrap();
        }
        for bad in [
            "",
            " x",
            "x ",
            "12",
            "0xabc",
            "naïve",
            "a/b",
            &"a".repeat(33),
        ] {
            assert!(Label::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn accounts_are_found_by_position_address_or_label() {
        let vault = new_vault();
        let accounts = vault.accounts();
        assert_eq!(find_account(accounts, "0").unwrap(), 0);
        assert_eq!(find_account(accounts, "MAIN").unwrap(), 0);
        assert_eq!(
            find_account(accounts, "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266").unwrap(),
            0
        );
        assert!(find_account(accounts, "1").is_err());
        assert!(find_account(accounts, "other").is_err());
    }

    #[test]
    fn payload_decoding_never_panics_on_truncation() {
        let vault = new_vault();
        let encoded = Payload::encode(&[1; 32], &vault.mnemonic, &[], None);
        for end in 0..encoded.len() {
            assert!(Payload::decode(&encoded[..end]).is_err());
        }
        assert!(Payload::decode(&encoded).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn decoders_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = Payload::decode(&bytes);
            let _ = Vault::parse(&bytes);
        }

        #[test]
        fn labels_either_parse_or_say_why(text in "\\PC{0,40}") {
            match Label::new(&text) {
                Ok(label) => proptest::prop_assert_eq!(label.as_str(), text.as_str()),
                Err(err) => proptest::prop_assert!(err.to_string().starts_with("invalid label: a label")),
            }
        }
    }
}
