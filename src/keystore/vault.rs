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
//!
//! Unlocked, the envelope key and the payload are derived and decrypted in place into one
//! [`LockedBuffer`] (mlocked, zeroized on drop; see [`crate::memory`]), and the secrets are read
//! where they lie. Nothing else holds them between operations: a phrase, a seed, a key or a TOTP
//! object is built from the buffer for one operation and dropped (zeroized) at its end.

use std::fmt;
use std::path::Path;

use alloy::primitives::{Address, keccak256};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::envelope::{self, DERIVED_KEY_LEN, Envelope, Kdf};
use super::json::{self, Object, malformed};
use super::{FileKind, KeystoreError};
use crate::files::{self, FileLock};
use crate::hd::{self, Mnemonic};
use crate::memory::LockedBuffer;
use crate::secret::{Password, PrivateKey};
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

    /// The work its KDF asks for (see `crate::fuzzing`).
    pub(crate) fn kdf_cost(&self) -> u64 {
        self.envelope.kdf().cost()
    }

    /// Derives the key from `password` (the slow step), checks the MAC, and checks the account
    /// list against the digest sealed inside. The key is derived, and the payload decrypted,
    /// straight into the unlocked vault's locked buffer.
    #[tracing::instrument(level = "debug", skip_all, fields(accounts = self.accounts.len()))]
    pub fn unlock(&self, password: &Password) -> Result<UnlockedVault, KeystoreError> {
        let mut buffer = LockedBuffer::new(DERIVED_KEY_LEN + self.envelope.ciphertext_len());
        let (key, payload) = split_key(buffer.expose_secret_mut());
        self.envelope.kdf().derive_into(password, key)?;
        envelope::open_into(key, &self.envelope, payload)
            .map_err(|_| KeystoreError::WrongPassword(FileKind::Vault))?;
        let secrets = VaultSecrets::from_buffer(buffer)?;
        let imported_accounts = self
            .accounts
            .iter()
            .filter(|a| a.kind == AccountKind::Imported)
            .count();
        if secrets.public_digest() != public_digest(&self.accounts, self.totp_enrolled)
            || secrets.imported_count() != imported_accounts
            || secrets.totp().is_some() != self.totp_enrolled
        {
            return Err(KeystoreError::VaultTampered);
        }
        tracing::debug!("vault unlocked");
        Ok(UnlockedVault {
            accounts: self.accounts.clone(),
            kdf: self.envelope.kdf().clone(),
            secrets,
        })
    }
}

/// Reads a decrypted vault payload as [`Vault::unlock`] does once the MAC matched, then every
/// secret in it as signing would: for the fuzzer, which cannot forge a MAC. Returns how many
/// imported keys it holds.
pub(crate) fn read_payload(payload: &[u8]) -> Result<usize, KeystoreError> {
    let mut buffer = LockedBuffer::new(DERIVED_KEY_LEN + payload.len());
    buffer.expose_secret_mut()[DERIVED_KEY_LEN..].copy_from_slice(payload);
    let secrets = VaultSecrets::from_buffer(buffer)?;
    hd::from_entropy(secrets.entropy())?;
    for slot in 0..secrets.imported_count() {
        let key = secrets
            .imported(slot)
            .ok_or(KeystoreError::CorruptVault("an imported key is missing"))?;
        PrivateKey::from_bytes(key).map_err(|_| KeystoreError::InvalidKey)?;
    }
    if let Some(secret) = secrets.totp() {
        totp::from_bytes(secret)
            .map_err(|_| KeystoreError::CorruptVault("the TOTP secret is invalid"))?;
    }
    Ok(secrets.imported_count())
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
    /// How the envelope key was derived (public: the salt and cost), to seal again under it.
    kdf: Kdf,
    secrets: VaultSecrets,
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
        let accounts = vec![Account {
            label,
            address: first.address(),
            kind: AccountKind::Hd { index: 0 },
        }];
        let entropy = mnemonic.entropy();
        drop(mnemonic);
        let secrets = VaultSecrets::build(
            |key| kdf.derive_into(password, key),
            &public_digest(&accounts, false),
            entropy.expose_secret(),
            &[],
            None,
        )?;
        Ok(Self {
            accounts,
            kdf,
            secrets,
        })
    }

    /// The recovery phrase, rebuilt from the entropy for one use.
    pub(crate) fn mnemonic(&self) -> Result<Mnemonic, KeystoreError> {
        hd::from_entropy(self.secrets.entropy())
            .map_err(|_| KeystoreError::CorruptVault("the recovery phrase entropy is invalid"))
    }

    /// New secrets with these imported keys and TOTP secret, under the same envelope key.
    fn rebuilt(
        &self,
        imported: &[&[u8; 32]],
        totp: Option<&[u8]>,
    ) -> Result<VaultSecrets, KeystoreError> {
        VaultSecrets::build(
            |key| {
                key.copy_from_slice(self.secrets.key());
                Ok(())
            },
            &public_digest(&self.accounts, totp.is_some()),
            self.secrets.entropy(),
            imported,
            totp,
        )
    }

    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    /// The private key of the account at `position` in [`UnlockedVault::accounts`].
    pub fn private_key(&self, position: usize) -> Result<PrivateKey, KeystoreError> {
        let account = self
            .accounts
            .get(position)
            .ok_or(KeystoreError::UnknownAccount)?;
        match &account.kind {
            AccountKind::Hd { index } => Ok(self.mnemonic()?.account_key(*index)?),
            AccountKind::Ledger { .. } => Err(KeystoreError::OnLedger(account.label.clone())),
            AccountKind::Imported => {
                let slot = self.accounts[..position]
                    .iter()
                    .filter(|a| a.kind == AccountKind::Imported)
                    .count();
                let key = self
                    .secrets
                    .imported(slot)
                    .ok_or(KeystoreError::CorruptVault("an imported key is missing"))?;
                PrivateKey::from_bytes(key).map_err(|_| KeystoreError::InvalidKey)
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
        let key = self.mnemonic()?.account_key(index)?;
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
            None => Label::new(&format!("imported-{}", self.secrets.imported_count() + 1))?,
        };
        let account = Account {
            label,
            address: key.address(),
            kind: AccountKind::Imported,
        };
        self.check_new(&account)?;
        let mut imported = self.secrets.imported_keys();
        imported.push(key.expose_secret());
        let secrets = self.rebuilt(&imported, self.secrets.totp())?;
        drop(imported);
        // The old buffer is zeroized as it is dropped here.
        self.secrets = secrets;
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

    /// The TOTP secret, if one is enrolled, built from the vault's buffer for one use: dropping it
    /// zeroizes that copy.
    pub fn totp(&self) -> Option<TotpSecret> {
        self.secrets
            .totp()
            .and_then(|bytes| totp::from_bytes(bytes).ok())
    }

    /// Replaces the TOTP secret. Callers verify a code for the new secret first.
    pub fn set_totp(&mut self, secret: TotpSecret) -> Result<(), KeystoreError> {
        let imported = self.secrets.imported_keys();
        let secrets = self.rebuilt(&imported, Some(secret.secret_bytes()))?;
        drop(imported);
        self.secrets = secrets;
        Ok(())
    }

    /// The vault file's bytes, sealed again with a fresh IV under the same password-derived key.
    pub fn to_file_bytes(&self) -> Result<Vec<u8>, KeystoreError> {
        let totp = self.secrets.totp();
        let totp_enrolled = totp.is_some();
        let imported = self.secrets.imported_keys();
        let mut payload = Zeroizing::new(vec![
            0u8;
            Payload::encoded_len(
                self.secrets.entropy().len(),
                imported.len(),
                totp.map_or(0, <[u8]>::len)
            )
        ]);
        Payload::encode_into(
            &mut payload,
            &public_digest(&self.accounts, totp_enrolled),
            self.secrets.entropy(),
            &imported,
            totp,
        );
        let envelope = envelope::seal_with(&self.kdf, self.secrets.key(), &payload)?;
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

/// The envelope key and the payload side by side in `buffer`.
fn split_key(buffer: &mut [u8]) -> (&mut [u8; DERIVED_KEY_LEN], &mut [u8]) {
    let (key, payload) = buffer.split_at_mut(DERIVED_KEY_LEN);
    let Ok(key) = <&mut [u8; DERIVED_KEY_LEN]>::try_from(key) else {
        unreachable!("split at the key's length")
    };
    (key, payload)
}

/// The secrets of an unlocked vault, in one locked buffer: the envelope key (32 bytes), then the
/// payload exactly as it is sealed (see [`Payload`]), read in place.
#[derive(Debug)]
struct VaultSecrets {
    buffer: LockedBuffer,
    layout: Layout,
}

/// Where each secret lies in a [`VaultSecrets`] buffer.
#[derive(Debug)]
struct Layout {
    public_digest: [u8; 32],
    entropy: std::ops::Range<usize>,
    /// The imported keys, 32 bytes each, in the order of the imported accounts.
    imported: std::ops::Range<usize>,
    totp: Option<std::ops::Range<usize>>,
}

impl VaultSecrets {
    /// Takes a buffer holding the key and a decrypted payload, and finds the secrets in it.
    fn from_buffer(buffer: LockedBuffer) -> Result<Self, KeystoreError> {
        let layout = Payload::layout(&buffer.expose_secret()[DERIVED_KEY_LEN..], DERIVED_KEY_LEN)?;
        Ok(Self { buffer, layout })
    }

    /// A new buffer: the key written by `write_key`, then the payload for these secrets.
    fn build(
        write_key: impl FnOnce(&mut [u8; DERIVED_KEY_LEN]) -> Result<(), KeystoreError>,
        public_digest: &[u8; 32],
        entropy: &[u8],
        imported: &[&[u8; 32]],
        totp: Option<&[u8]>,
    ) -> Result<Self, KeystoreError> {
        let payload_len =
            Payload::encoded_len(entropy.len(), imported.len(), totp.map_or(0, <[u8]>::len));
        let mut buffer = LockedBuffer::new(DERIVED_KEY_LEN + payload_len);
        let (key, payload) = split_key(buffer.expose_secret_mut());
        write_key(key)?;
        Payload::encode_into(payload, public_digest, entropy, imported, totp);
        Self::from_buffer(buffer)
    }

    /// The envelope key.
    fn key(&self) -> &[u8; DERIVED_KEY_LEN] {
        let Some(key) = self.buffer.expose_secret().first_chunk::<DERIVED_KEY_LEN>() else {
            unreachable!("the buffer starts with the key")
        };
        key
    }

    /// The digest of the public part, as sealed (meaningful right after unlock only).
    fn public_digest(&self) -> [u8; 32] {
        self.layout.public_digest
    }

    fn entropy(&self) -> &[u8] {
        &self.buffer.expose_secret()[self.layout.entropy.clone()]
    }

    fn imported_count(&self) -> usize {
        self.layout.imported.len() / 32
    }

    fn imported(&self, slot: usize) -> Option<&[u8; 32]> {
        self.buffer.expose_secret()[self.layout.imported.clone()]
            .as_chunks::<32>()
            .0
            .get(slot)
    }

    /// References to every imported key, in order (no copies).
    fn imported_keys(&self) -> Vec<&[u8; 32]> {
        self.buffer.expose_secret()[self.layout.imported.clone()]
            .as_chunks::<32>()
            .0
            .iter()
            .collect()
    }

    fn totp(&self) -> Option<&[u8]> {
        self.layout
            .totp
            .clone()
            .map(|range| &self.buffer.expose_secret()[range])
    }
}

/// The sealed part of the vault, in a small binary layout so that no serializer ever holds a secret:
///
/// ```text
/// "KWV1" | public digest (32) | entropy length (1) | entropy | imported count (2, BE)
///        | 32 bytes per imported key | TOTP secret length (1, 0 = none) | TOTP secret
/// ```
struct Payload;

impl Payload {
    fn encoded_len(entropy: usize, imported: usize, totp: usize) -> usize {
        4 + 32 + 1 + entropy + 2 + 32 * imported + 1 + totp
    }

    /// Writes the payload into `out`, which is exactly [`Payload::encoded_len`] bytes.
    fn encode_into(
        out: &mut [u8],
        public_digest: &[u8; 32],
        entropy: &[u8],
        imported: &[&[u8; 32]],
        totp: Option<&[u8]>,
    ) {
        let totp = totp.unwrap_or_default();
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            out[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(PAYLOAD_MAGIC);
        put(public_digest);
        // Entropy is 16 to 32 bytes, at most 1000 keys, and a TOTP secret 20 bytes: all fit.
        put(&[entropy.len() as u8]);
        put(entropy);
        put(&(imported.len() as u16).to_be_bytes());
        for key in imported {
            put(*key);
        }
        put(&[totp.len() as u8]);
        put(totp);
    }

    /// Checks a decrypted payload and says where each secret lies in it, as offsets from `base`.
    /// Nothing is copied.
    fn layout(bytes: &[u8], base: usize) -> Result<Layout, KeystoreError> {
        let mut reader = Reader { bytes };
        let offset = |reader: &Reader<'_>| base + bytes.len() - reader.bytes.len();
        if reader.take(4)? != PAYLOAD_MAGIC {
            return Err(KeystoreError::CorruptVault("unknown payload layout"));
        }
        let public_digest: [u8; 32] = reader.array()?;
        let entropy_len = usize::from(reader.take(1)?[0]);
        if !matches!(entropy_len, 16 | 20 | 24 | 28 | 32) {
            return Err(KeystoreError::CorruptVault(
                "the recovery phrase entropy is invalid",
            ));
        }
        let entropy_start = offset(&reader);
        reader.take(entropy_len)?;
        let count = usize::from(u16::from_be_bytes(reader.array()?));
        let imported_start = offset(&reader);
        for _ in 0..count {
            let key = reader.take(32)?;
            // Validated without a copy that outlives the check: k256 zeroizes its scalar on drop.
            if k256::SecretKey::from_slice(key).is_err() {
                return Err(KeystoreError::CorruptVault("an imported key is invalid"));
            }
        }
        let imported_end = offset(&reader);
        let totp_len = usize::from(reader.take(1)?[0]);
        let totp_start = offset(&reader);
        let totp = match totp_len {
            0 => None,
            len if len < totp::SECRET_LEN => {
                return Err(KeystoreError::CorruptVault("the TOTP secret is invalid"));
            }
            len => {
                reader.take(len)?;
                Some(totp_start..totp_start + len)
            }
        };
        if !reader.bytes.is_empty() {
            return Err(KeystoreError::CorruptVault("unexpected trailing bytes"));
        }
        Ok(Layout {
            public_digest,
            entropy: entropy_start..entropy_start + entropy_len,
            imported: imported_start..imported_end,
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
    use crate::secret::Secret;

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
        vault.set_totp(totp::from_bytes(&[5; 20]).unwrap()).unwrap();

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
        let key = [0x22; 32];
        let totp = [5; 20];
        let mut encoded = vec![0; Payload::encoded_len(vault.secrets.entropy().len(), 1, 20)];
        Payload::encode_into(
            &mut encoded,
            &[1; 32],
            vault.secrets.entropy(),
            &[&key],
            Some(&totp),
        );
        for end in 0..encoded.len() {
            assert!(Payload::layout(&encoded[..end], 0).is_err());
        }
        let layout = Payload::layout(&encoded, 0).unwrap();
        assert_eq!(&encoded[layout.entropy], vault.secrets.entropy());
        assert_eq!(&encoded[layout.imported], &key);
        assert_eq!(&encoded[layout.totp.unwrap()], &totp);
    }

    #[test]
    fn the_unlocked_vaults_secrets_sit_in_one_locked_buffer() {
        let mut vault = new_vault();
        vault
            .add_imported(
                PrivateKey::from_bytes(&[0x22; 32]).unwrap(),
                Some(Label::new("cold").unwrap()),
            )
            .unwrap();
        vault.set_totp(totp::from_bytes(&[5; 20]).unwrap()).unwrap();
        let buffer = vault.secrets.buffer.expose_secret();
        let page = region::page::size();
        assert_eq!(buffer.as_ptr() as usize % page, 0);
        assert_eq!(vault.secrets.imported(0), Some(&[0x22; 32]));
        assert_eq!(vault.secrets.totp(), Some(&[5u8; 20][..]));
        assert!(format!("{vault:?}").contains("[REDACTED]"));
        assert!(!format!("{vault:?}").contains("34, 34"));
    }

    proptest::proptest! {
        #[test]
        fn decoders_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = Payload::layout(&bytes, 0);
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
