//! The keyring: the unlocked vault, held in memory between approvals, and the keystore signer.
//!
//! The vault is unlocked with the password the human gives on a trusted channel (or a 0600
//! password file) and locked again, its secrets zeroized, after an idle timeout or on request.
//! A key is derived only for the moment it signs.
//!
//! Locking drops the [`UnlockedVault`], which zeroizes its secrets. This module must never hand
//! out a reference to the unlocked vault that outlives its mutex guard: a lock must leave no copy
//! behind.

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

/// How long the vault stays unlocked without an approval, unless the configuration says otherwise
/// (`[approval] lock_after_seconds`).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

#[derive(Debug)]
struct Unlocked {
    vault: UnlockedVault,
    last_used: Instant,
    /// The outbound guard looks for these secrets while this is held.
    _guarded: Registration,
}

#[derive(Debug)]
pub struct Keyring {
    unlocked: Mutex<Option<Unlocked>>,
    idle_timeout: Duration,
}

impl Default for Keyring {
    fn default() -> Self {
        Self::new(IDLE_TIMEOUT)
    }
}

impl Keyring {
    /// A locked keyring that locks itself again `idle_timeout` after the vault was last used.
    pub fn new(idle_timeout: Duration) -> Self {
        Self {
            unlocked: Mutex::new(None),
            idle_timeout,
        }
    }

    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

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
        let unlocked = vault.unlock(password);
        // scrypt, the MAC check and AES ran below this frame; AES's key schedule starts with the
        // key itself, and moves left copies no destructor sees.
        crate::memory::scrub_stack();
        let unlocked = unlocked?;
        let guarded = guard().register(fingerprints(&unlocked, password));
        // Fingerprinting derived every key and the seed below this frame too.
        crate::memory::scrub_stack();
        *self.lock_state() = Some(Unlocked {
            vault: unlocked,
            last_used: Instant::now(),
            _guarded: guarded,
        });
        Ok(())
    }

    /// Locks the vault now: the unlocked vault is dropped, which zeroizes its secrets. Returns
    /// whether it was unlocked.
    pub fn lock(&self) -> bool {
        let unlocked = self.lock_state().take();
        // Dropped here, outside the mutex, so a slow drop never holds up another caller.
        unlocked.is_some()
    }

    /// Locks the vault if it has been idle too long. Returns whether it did.
    pub fn lock_if_idle(&self) -> bool {
        let mut state = self.lock_state();
        if state
            .as_ref()
            .is_some_and(|u| u.last_used.elapsed() >= self.idle_timeout)
        {
            let unlocked = state.take();
            drop(state);
            return unlocked.is_some();
        }
        false
    }

    /// Runs `check` with the TOTP secret, if the vault is unlocked and has one.
    pub fn with_totp<T>(&self, check: impl FnOnce(Option<&TotpSecret>) -> T) -> Option<T> {
        let mut state = self.lock_state();
        let unlocked = state.as_mut()?;
        unlocked.last_used = Instant::now();
        let totp = unlocked.vault.totp();
        let checked = check(totp.as_ref());
        drop(totp);
        drop(state);
        crate::memory::scrub_stack();
        Some(checked)
    }

    /// A signer for the account at `position`, checked to control `address`.
    pub fn signer(&self, position: usize, address: Address) -> Result<LocalSigner, SignerError> {
        let mut state = self.lock_state();
        let unlocked = state.as_mut().ok_or(SignerError::Locked)?;
        unlocked.last_used = Instant::now();
        let key = unlocked.vault.private_key(position);
        drop(state);
        // The phrase, the seed and five BIP-32 nodes were built below this frame.
        crate::memory::scrub_stack();
        let key = key?;
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
    if let Ok(mnemonic) = vault.mnemonic() {
        set.words(SecretKind::RecoveryPhrase, mnemonic.expose_secret().words());
        set.hex(
            SecretKind::RecoveryPhrase,
            mnemonic.seed("").expose_secret(),
        );
    }
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

/// Signs with a key from the vault. Dropping it zeroizes the key; the caller scrubs the stack
/// ([`crate::memory::scrub_stack`]) once it has signed, for the copies signing left there.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystore::Label;
    use crate::secret::Secret;

    /// A one-account vault under a cheap scrypt, and its password.
    fn vault() -> (Vault, Password) {
        let password: Password = Secret::new("keyring test password".to_owned());
        let phrase =
            crate::hd::parse_phrase("test test test test test test test test test test test junk")
                .unwrap();
        let unlocked = UnlockedVault::create_with(
            phrase,
            &password,
            Label::new("main").unwrap(),
            crate::keystore::Kdf::scrypt(4, 8, 1).unwrap(),
        )
        .unwrap();
        (
            Vault::parse(&unlocked.to_file_bytes().unwrap()).unwrap(),
            password,
        )
    }

    #[test]
    fn lock_drops_the_unlocked_vault_and_says_whether_it_was_unlocked() {
        let (vault, password) = vault();
        let keyring = Keyring::default();
        assert_eq!(keyring.idle_timeout(), IDLE_TIMEOUT);
        assert!(!keyring.lock(), "a locked keyring has nothing to lock");
        keyring.unlock(&vault, &password).unwrap();
        assert!(keyring.is_unlocked());
        let address = vault.accounts()[0].address;
        assert!(keyring.signer(0, address).is_ok());
        assert!(keyring.lock());
        assert!(!keyring.is_unlocked());
        assert!(matches!(
            keyring.signer(0, address),
            Err(SignerError::Locked)
        ));
        assert!(!keyring.lock());
    }

    #[test]
    fn the_idle_timeout_is_the_configured_one_and_use_postpones_it() {
        let (vault, password) = vault();
        let keyring = Keyring::new(Duration::from_millis(300));
        keyring.unlock(&vault, &password).unwrap();
        assert!(!keyring.lock_if_idle());
        std::thread::sleep(Duration::from_millis(200));
        // Using the vault restarts the clock.
        assert!(keyring.with_totp(|_| ()).is_some());
        std::thread::sleep(Duration::from_millis(200));
        assert!(!keyring.lock_if_idle(), "locked although used 200 ms ago");
        std::thread::sleep(Duration::from_millis(150));
        assert!(keyring.lock_if_idle());
        assert!(!keyring.lock_if_idle(), "locked twice");
        assert!(keyring.with_totp(|_| ()).is_none());
    }
}
