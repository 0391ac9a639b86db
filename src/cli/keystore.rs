//! `keyward import-keystore` and `keyward export-keystore`: v3 keystore files in and out of the
//! vault, for interchange with geth and Foundry's cast.

use anyhow::{Context, Result, bail};

use super::password::PasswordSource;
use super::{ExportKeystoreArgs, ImportKeystoreArgs, say};
use crate::files;
use crate::home::Home;
use crate::keystore::v3::MAX_KEYSTORE_SIZE;
use crate::keystore::{Keystore, Label, SCRYPT_LOG_N, SCRYPT_P, SCRYPT_R, Vault, find_account};

#[tracing::instrument(level = "info", skip_all, fields(command = "import-keystore"))]
pub(super) fn import(home: &Home, args: ImportKeystoreArgs) -> Result<()> {
    let label = args.label.as_deref().map(Label::new).transpose()?;
    let file = &args.file;
    // Everything that can be checked without a password is checked first.
    let bytes = files::read_limited(file, MAX_KEYSTORE_SIZE as u64)
        .with_context(|| format!("cannot import {}", file.display()))?;
    let keystore = Keystore::parse(&bytes)
        .with_context(|| format!("{} is not a usable keystore", file.display()))?;
    let lock = home.lock_vault()?;
    let vault_path = home.vault_path();
    let vault = Vault::load(&vault_path)?;
    if let Some(stated) = keystore.stated_address()
        && let Some(existing) = vault.accounts().iter().find(|a| a.address == stated)
    {
        bail!(
            "{} is already in the vault, as \"{}\"; nothing was changed",
            stated.to_checksum(None),
            existing.label
        );
    }

    let mut terminal = None;
    let keystore_password = PasswordSource::new(args.keystore_password_file, "keystore file")
        .existing(&mut terminal)?;
    // No context here: a wrong password is reported as exactly one sentence, without the path.
    let key = keystore.decrypt(&keystore_password)?;
    drop(keystore_password);

    let vault_password =
        PasswordSource::new(args.password.password_file, "vault").existing(&mut terminal)?;
    let mut unlocked = vault.unlock(&vault_password)?;
    let account = unlocked.add_imported(key, label)?.clone();
    unlocked.save(&vault_path, &lock)?;
    say(&format!(
        "Imported account {} ({}): {}\nThe key is now encrypted in the vault; {} was left as it \
         was, so delete it if you no longer need it.",
        unlocked.accounts().len() - 1,
        account.label,
        account.address.to_checksum(None),
        file.display(),
    ))
}

#[tracing::instrument(level = "info", skip_all, fields(command = "export-keystore"))]
pub(super) fn export(home: &Home, args: ExportKeystoreArgs) -> Result<()> {
    let vault = Vault::load(&home.vault_path())?;
    let position = find_account(vault.accounts(), &args.account)?;
    let account = vault.accounts()[position].clone();
    if args.out.exists() {
        bail!(
            "{} already exists and keyward never overwrites it: choose another path",
            args.out.display()
        );
    }

    let mut terminal = None;
    let vault_password =
        PasswordSource::new(args.password.password_file, "vault").existing(&mut terminal)?;
    let unlocked = vault.unlock(&vault_password)?;
    drop(vault_password);
    let key = unlocked.private_key(position)?;
    drop(unlocked);

    let keystore_password = PasswordSource::new(args.keystore_password_file, "new keystore file")
        .new_password(&mut terminal, &[account.label.as_str()])?;
    let file = Keystore::encrypt(&key, &keystore_password)?;
    files::write_new(&args.out, &file)?;
    say(&format!(
        "Wrote a v3 keystore for account {position} ({}, {}) to {}\n\
         Encrypted with scrypt n=2^{SCRYPT_LOG_N}, r={SCRYPT_R}, p={SCRYPT_P}. Anyone with this \
         file and its password controls the account.",
        account.label,
        account.address.to_checksum(None),
        args.out.display(),
    ))
}
