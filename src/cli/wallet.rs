//! `keyward init`, `keyward accounts` and `keyward account add`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::password::PasswordSource;
use super::terminal::Terminal;
use super::{InitArgs, Words, say};
use crate::hd::{self, Mnemonic, WordCount};
use crate::home::Home;
use crate::keystore::{Account, Label, UnlockedVault, Vault};

/// Foundry's default development mnemonic: public, so a wallet made from it holds nothing of value.
const ANVIL_TEST_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// How many times a person may retry typing the phrase or confirmation words.
const ATTEMPTS: usize = 3;
/// How many words of a new phrase must be typed back.
const WORDS_TO_CONFIRM: usize = 2;

#[tracing::instrument(level = "info", skip_all, fields(command = "init", import = args.import_mnemonic, anvil = args.anvil_test_wallet))]
pub(super) fn init(home: &Home, args: InitArgs) -> Result<()> {
    let label = Label::new(&args.label)?;
    // A new phrase and an imported one go over the terminal: check there is one before creating
    // any directory. Only the Anvil test wallet with a password file needs none.
    let mut terminal = if args.anvil_test_wallet && args.password.password_file.is_some() {
        None
    } else {
        Some(Terminal::open("keyward init")?)
    };
    let vault_path = home.vault_path();
    let lock = home.lock_vault()?;
    if vault_path.exists() {
        bail!(
            "a wallet already exists at {}; keyward init never replaces one \
             (use --home DIR to create another wallet elsewhere)",
            vault_path.display()
        );
    }
    let password = PasswordSource::new(args.password.password_file, "vault")
        .new_password(&mut terminal, &[label.as_str()])?;
    let mnemonic = if args.anvil_test_wallet {
        hd::parse_phrase(ANVIL_TEST_MNEMONIC)?
    } else if let Some(tty) = terminal.as_mut().filter(|_| args.import_mnemonic) {
        read_phrase(tty)?
    } else {
        let Some(tty) = terminal.as_mut() else {
            unreachable!("the terminal was opened above")
        };
        let words = match args.words {
            Words::Twelve => WordCount::Twelve,
            Words::TwentyFour => WordCount::TwentyFour,
        };
        let mnemonic = hd::generate(words)?;
        show_and_confirm(tty, &mnemonic)?;
        mnemonic
    };
    let vault = UnlockedVault::create(mnemonic, &password, label)?;
    vault.save_new(&vault_path, &lock)?;
    let first = &vault.accounts()[0];
    say(&format!(
        "Created a wallet in {}\nAccount 0 ({}): {} on {}\n\
         Next: run `keyward totp enroll` to pair your authenticator app.",
        vault_path.display(),
        first.label,
        first.address.to_checksum(None),
        first.kind.path().unwrap_or_default(),
    ))
}

/// Reads an existing phrase with echo off, allowing a few corrections.
fn read_phrase(tty: &mut Terminal) -> Result<Mnemonic> {
    for attempt in 1..=ATTEMPTS {
        let phrase = tty.read_secret(
            "Recovery phrase (12 or 24 words, separated by spaces; input is hidden): ",
        )?;
        match hd::parse_phrase(phrase.expose_secret()) {
            Ok(mnemonic) => return Ok(mnemonic),
            Err(err) if attempt < ATTEMPTS => tty.say(&format!("{err}. Try again.\n"))?,
            Err(err) => return Err(err).context("the recovery phrase was not accepted"),
        }
    }
    bail!("no recovery phrase was accepted; nothing was created")
}

/// Shows a new phrase once, clears it, and asks for two of its words back.
fn show_and_confirm(tty: &mut Terminal, mnemonic: &Mnemonic) -> Result<()> {
    let words: Vec<&str> = mnemonic.expose_secret().words().collect();
    let mut sheet = zeroize::Zeroizing::new(String::with_capacity(1024));
    sheet.push_str(
        "\nYour recovery phrase. Write these words on paper, in order, and keep them offline.\n\
         They restore every account; anyone who sees them can take your funds.\n\
         keyward will not show them again.\n\n",
    );
    for (row, chunk) in words.chunks(4).enumerate() {
        for (col, word) in chunk.iter().enumerate() {
            sheet.push_str(&format!("{:>4}. {word:<10}", row * 4 + col + 1));
        }
        sheet.push('\n');
    }
    tty.show_secret(&crate::secret::Secret::from(sheet))?;
    tty.read_line("\nPress Enter once you have written them down. ")?;
    tty.clear_screen()?;

    let positions = pick_positions(words.len())?;
    for attempt in 1..=ATTEMPTS {
        let mut all_right = true;
        for &position in &positions {
            let typed = tty.read_secret(&format!("Word #{} (hidden): ", position + 1))?;
            let typed = zeroize::Zeroizing::new(typed.expose_secret().trim().to_lowercase());
            all_right &= *typed == words[position];
        }
        if all_right {
            return Ok(());
        }
        if attempt < ATTEMPTS {
            tty.say("That does not match what was shown. Check your paper and try again.\n")?;
        }
    }
    bail!(
        "the words typed back did not match the recovery phrase; nothing was created. \
         Run keyward init again for a new phrase"
    )
}

/// Distinct random word positions to confirm, in ascending order.
fn pick_positions(count: usize) -> Result<Vec<usize>> {
    let mut positions = Vec::with_capacity(WORDS_TO_CONFIRM);
    while positions.len() < WORDS_TO_CONFIRM {
        let random =
            getrandom::u32().context("the operating system's random number generator failed")?;
        let position = random as usize % count;
        if !positions.contains(&position) {
            positions.push(position);
        }
    }
    positions.sort_unstable();
    Ok(positions)
}

#[tracing::instrument(level = "info", skip_all, fields(command = "accounts", json))]
pub(super) fn accounts(home: &Home, json: bool) -> Result<()> {
    let vault = Vault::load(&home.vault_path())?;
    if json {
        let accounts: Vec<_> = vault
            .accounts()
            .iter()
            .enumerate()
            .map(|(number, account)| account_json(number, account))
            .collect();
        let document = json!({ "accounts": accounts, "totp_enrolled": vault.totp_enrolled() });
        return say(&serde_json::to_string_pretty(&document)?);
    }
    let width = vault
        .accounts()
        .iter()
        .map(|a| a.label.as_str().len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut table = format!(
        "{:>3}  {:<width$}  {:<42}  {:<8}  path\n",
        "#", "label", "address", "kind"
    );
    for (number, account) in vault.accounts().iter().enumerate() {
        table.push_str(&format!(
            "{number:>3}  {:<width$}  {}  {:<8}  {}\n",
            account.label.as_str(),
            account.address.to_checksum(None),
            account.kind.name(),
            account.kind.path().unwrap_or_else(|| "-".to_owned()),
        ));
    }
    table.push_str(if vault.totp_enrolled() {
        "\nTOTP second factor: enrolled"
    } else {
        "\nTOTP second factor: not enrolled (run `keyward totp enroll`)"
    });
    say(&table)
}

fn account_json(number: usize, account: &Account) -> serde_json::Value {
    json!({
        "number": number,
        "label": account.label.as_str(),
        "address": account.address.to_checksum(None),
        "kind": account.kind.name(),
        "path": account.kind.path(),
    })
}

#[tracing::instrument(level = "info", skip_all, fields(command = "account add"))]
pub(super) fn add_account(
    home: &Home,
    label: Option<&str>,
    password_file: Option<PathBuf>,
) -> Result<()> {
    let label = label.map(Label::new).transpose()?;
    let lock = home.lock_vault()?;
    let vault_path = home.vault_path();
    let vault = Vault::load(&vault_path)?;
    let password = PasswordSource::new(password_file, "vault").existing(&mut None)?;
    let mut unlocked = vault.unlock(&password)?;
    let account = unlocked.add_hd_account(label)?.clone();
    unlocked.save(&vault_path, &lock)?;
    say(&format!(
        "Added account {} ({}): {} on {}",
        unlocked.accounts().len() - 1,
        account.label,
        account.address.to_checksum(None),
        account.kind.path().unwrap_or_default(),
    ))
}
