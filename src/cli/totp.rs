//! `keyward totp enroll`: pair an authenticator app with the vault's TOTP secret.
//!
//! The new secret is shown on the terminal only (QR code and otpauth URI), then a code is read
//! from stdin, which may be the terminal or a pipe. The secret is stored only once a correct code
//! for it arrives, so a failed or abandoned re-enrollment leaves the previous secret in force.

use std::io::BufRead as _;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use zeroize::Zeroizing;

use super::password::PasswordSource;
use super::say;
use super::terminal::Terminal;
use crate::home::Home;
use crate::keystore::Vault;
use crate::totp::{self, TotpSecret};

const ATTEMPTS: usize = 3;

#[tracing::instrument(level = "info", skip_all, fields(command = "totp enroll"))]
pub(super) fn enroll(home: &Home, password_file: Option<PathBuf>) -> Result<()> {
    let lock = home.lock_vault()?;
    let vault_path = home.vault_path();
    let vault = Vault::load(&vault_path)?;
    let mut terminal = Some(Terminal::open("keyward totp enroll")?);
    let password = PasswordSource::new(password_file, "vault").existing(&mut terminal)?;
    let mut unlocked = vault.unlock(&password)?;
    drop(password);
    let Some(tty) = terminal.as_mut() else {
        unreachable!("the terminal was opened above")
    };

    let replacing = unlocked.totp().is_some();
    let secret = totp::generate()?;
    show_secret(tty, &secret, replacing)?;
    let confirmed = confirm(tty, &secret);
    tty.clear_screen()?;
    confirmed?;

    unlocked.set_totp(secret)?;
    unlocked.save(&vault_path, &lock)?;
    say(if replacing {
        "TOTP re-enrolled: approvals now take codes from the new entry; remove the old one from your app."
    } else {
        "TOTP enrolled: approving a transfer or signature will ask for a code from your app."
    })
}

fn show_secret(tty: &mut Terminal, secret: &TotpSecret, replacing: bool) -> Result<()> {
    let account = account_name();
    tty.say(
        "\nScan this QR code with your authenticator app (Aegis, Google Authenticator, 1Password, \
         ...). It shows a secret: keep it off screenshots and screen shares.\n\n",
    )?;
    if let Some(qr) = secret.qr_code(&account) {
        tty.show_secret(&qr)?;
    }
    tty.say("\nOr add it by hand with this URI:\n")?;
    tty.show_secret(&secret.provisioning_uri(&account))?;
    tty.say(if replacing {
        "\n\nThe current secret stays active until a code for this new one is confirmed.\n"
    } else {
        "\n\n"
    })
}

/// Reads codes from stdin until one matches the new secret.
fn confirm(tty: &mut Terminal, secret: &TotpSecret) -> Result<()> {
    let stdin_is_terminal = rustix::termios::isatty(std::io::stdin());
    for attempt in 1..=ATTEMPTS {
        let code = if stdin_is_terminal {
            Zeroizing::new(
                tty.read_secret("Code shown by the app (6 digits, hidden): ")?
                    .expose_secret()
                    .clone(),
            )
        } else {
            tty.say("Reading the 6-digit code from standard input...\n")?;
            let mut line = Zeroizing::new(String::with_capacity(64));
            let read = std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the code from standard input")?;
            if read == 0 {
                break;
            }
            line
        };
        if secret.verify(&code, unix_time()?).is_some() {
            return Ok(());
        }
        if attempt < ATTEMPTS {
            tty.say(
                "That code does not match. Check the phone's clock and try the current code.\n",
            )?;
        }
    }
    bail!(
        "no correct code was entered, so the new TOTP secret was discarded and nothing changed; \
         check that the phone's clock is right and run `keyward totp enroll` again"
    )
}

fn unix_time() -> Result<u64> {
    Ok(SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is before 1970; TOTP needs the right time")?
        .as_secs())
}

/// The name the authenticator app lists the entry under: `wallet@HOST`.
fn account_name() -> String {
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    if host.is_empty() {
        "wallet".to_owned()
    } else {
        format!("wallet@{host}")
    }
}
