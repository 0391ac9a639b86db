//! The keyring: the unlocked vault, held in memory between approvals, and the keystore signer.
//!
//! The vault is unlocked with the password the human gives on a trusted channel (or a 0600
//! password file) and locked again, its secrets zeroized, after an idle timeout or on request.
//! A key is derived only for the moment it signs.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use alloy::primitives::Address;

use super::{
    Message, SignedTx, Signer, SignerError, check_digest, check_message_digest, ecdsa, finish,
    finish_message,
};
use crate::chain::tx::UnsignedTx;
use crate::confirm::Approved;
use crate::keystore::{KeystoreError, UnlockedVault, Vault};
use crate::privacy::guard::{Fingerprints, Registration, SecretKind, guard};
use crate::secret::{Password, PrivateKey};
use crate::totp::TotpSecret;

/// How long the vault stays unlocked without an approval.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

#[derive(Debug)]
struct Unlocked {
    vault: UnlockedVault,
    last_used: Instant,
    /// The outbound guard looks for these secrets while this is held.
    _guarded: Registration,
}

#[derive(Debug, Default)]
pub struct Keyring {
    unlocked: Mutex<Option<Unlocked>>,
}

impl Keyring {
    fn lock_state(&self) -> std::sync::MutexGuard<'_, Option<Unlocked>> {
        self.unlocked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn is_unlocked(&self) -> bool {
        self.lock_if_idle();
        self.lock_state().is_some()
    }

    /// Unlocks `vault` with `password` (slow: scrypt). Call it off the async runtime.
    pub fn unlock(&self, vault: &Vault, password: &Password) -> Result<(), KeystoreError> {
        let unlocked = vault.unlock(password)?;
        let guarded = guard().register(fingerprints(&unlocked, password));
        *self.lock_state() = Some(Unlocked {
            vault: unlocked,
            last_used: Instant::now(),
            _guarded: guarded,
        });
        Ok(())
    }

    /// Locks the vault if it has been idle too long. Returns whether it did.
    pub fn lock_if_idle(&self) -> bool {
        let mut state = self.lock_state();
        if state
            .as_ref()
            .is_some_and(|u| u.last_used.elapsed() >= IDLE_TIMEOUT)
        {
            *state = None;
            return true;
        }
        false
    }

    /// Runs `check` with the TOTP secret, if the vault is unlocked and has one.
    pub fn with_totp<T>(&self, check: impl FnOnce(Option<&TotpSecret>) -> T) -> Option<T> {
        let mut state = self.lock_state();
        let unlocked = state.as_mut()?;
        unlocked.last_used = Instant::now();
        Some(check(unlocked.vault.totp()))
    }

    /// A signer for the account at `position`, checked to control `address`.
    pub fn signer(&self, position: usize, address: Address) -> Result<LocalSigner, SignerError> {
        let mut state = self.lock_state();
        let unlocked = state.as_mut().ok_or(SignerError::Locked)?;
        unlocked.last_used = Instant::now();
        let key = unlocked.vault.private_key(position)?;
        if key.address() != address {
            return Err(SignerError::WrongSigner {
                expected: address,
                recovered: Some(key.address()),
            });
        }
        Ok(LocalSigner { key })
    }
}

/// What the outbound guard should look for while `vault` is unlocked: every key it can sign with,
/// in hex, the recovery phrase and its seed, the password and the TOTP secret.
fn fingerprints(vault: &UnlockedVault, password: &Password) -> Fingerprints {
    let mut set = Fingerprints::new();
    set.text(SecretKind::Password, password.expose_secret());
    let mnemonic = vault.mnemonic();
    set.words(SecretKind::RecoveryPhrase, mnemonic.expose_secret().words());
    set.hex(
        SecretKind::RecoveryPhrase,
        mnemonic.seed("").expose_secret(),
    );
    for position in 0..vault.accounts().len() {
        // Ledger accounts have no key here.
        if let Ok(key) = vault.private_key(position) {
            set.hex(SecretKind::PrivateKey, key.expose_secret());
        }
    }
    if let Some(totp) = vault.totp() {
        totp.fingerprint(&mut set);
    }
    set
}

/// Signs with a key from the vault. Dropping it zeroizes the key.
#[derive(Debug)]
pub struct LocalSigner {
    key: PrivateKey,
}

impl Signer for LocalSigner {
    fn address(&self) -> Address {
        self.key.address()
    }

    fn sign_transaction(&self, approved: &Approved<UnsignedTx>) -> Result<SignedTx, SignerError> {
        let hash = check_digest(approved)?;
        let signature = ecdsa::sign_hash(&self.key, &hash)?;
        finish(approved.value(), &hash, &signature, self.key.address())
    }

    fn sign_message(&self, approved: &Approved<Message>) -> Result<[u8; 65], SignerError> {
        let hash = check_message_digest(approved)?;
        let signature = ecdsa::sign_hash(&self.key, &hash)?;
        finish_message(&hash, &signature, self.key.address())
    }
}
