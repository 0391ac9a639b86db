//! Where passwords come from: the terminal with echo off, or a 0600 password file for automation.
//!
//! Never from argv or an environment variable, which other processes and logs can see. A new
//! password is checked for strength and refused with the reason.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use zeroize::Zeroize;

use super::terminal::Terminal;
use crate::files;
use crate::secret::{Password, Secret};

/// The shortest new password accepted, besides the strength estimate.
pub(crate) const MIN_LEN: usize = 12;
const MAX_PASSWORD_FILE: u64 = 4096;
const ATTEMPTS: usize = 3;

/// How one password is obtained: a file when given, else the terminal.
#[derive(Debug, Clone)]
pub(crate) struct PasswordSource {
    /// Read the password from this file instead of the terminal.
    pub(crate) file: Option<PathBuf>,
    /// What the password is for, in prompts and errors ("vault", "keystore file").
    pub(crate) what: &'static str,
}

impl PasswordSource {
    pub(crate) fn new(file: Option<PathBuf>, what: &'static str) -> Self {
        Self { file, what }
    }

    /// An existing password (to unlock something).
    pub(crate) fn existing(&self, terminal: &mut Option<Terminal>) -> Result<Password> {
        match &self.file {
            Some(path) => read_password_file(path),
            None => terminal_for(terminal, self.what)?.read_secret(&format!(
                "Password of the {} (input is hidden): ",
                self.what
            )),
        }
    }

    /// A new password: typed twice on the terminal, or read from the file, and checked for
    /// strength either way.
    pub(crate) fn new_password(
        &self,
        terminal: &mut Option<Terminal>,
        context: &[&str],
    ) -> Result<Password> {
        if let Some(path) = &self.file {
            let password = read_password_file(path)?;
            check_strength(&password, context)
                .with_context(|| format!("the password in {} is not accepted", path.display()))?;
            return Ok(password);
        }
        let terminal = terminal_for(terminal, self.what)?;
        for attempt in 1..=ATTEMPTS {
            let password = terminal.read_secret(&format!(
                "New password for the {} (at least {MIN_LEN} characters; input is hidden): ",
                self.what
            ))?;
            if let Err(err) = check_strength(&password, context) {
                if attempt == ATTEMPTS {
                    return Err(err);
                }
                terminal.say(&format!("{err:#}\n"))?;
                continue;
            }
            let again = terminal.read_secret("Type it again: ")?;
            if password.expose_secret() == again.expose_secret() {
                return Ok(password);
            }
            if attempt == ATTEMPTS {
                bail!("the two passwords did not match; nothing was changed");
            }
            terminal.say("The two passwords did not match. Try again.\n")?;
        }
        bail!("no password was set; nothing was changed")
    }
}

fn terminal_for<'a>(terminal: &'a mut Option<Terminal>, what: &str) -> Result<&'a mut Terminal> {
    if terminal.is_none() {
        *terminal = Some(Terminal::open(&format!(
            "asking for the password of the {what} (or pass a password file)"
        ))?);
    }
    terminal
        .as_mut()
        .context("the terminal could not be opened")
}

/// Reads a password file: owner-only (mode 0600 or stricter), UTF-8, one trailing newline ignored.
pub(crate) fn read_password_file(path: &Path) -> Result<Password> {
    let mut bytes =
        files::read_private(path, MAX_PASSWORD_FILE).context("the password file is refused")?;
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    if bytes.is_empty() {
        bail!("the password file {} is empty", path.display());
    }
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(text) => Ok(Secret::new(text)),
        Err(err) => {
            err.into_bytes().zeroize();
            bail!("the password file {} is not UTF-8 text", path.display())
        }
    }
}

/// Refuses passwords that are short or easy to guess, with the reason and a suggestion.
pub(crate) fn check_strength(password: &Password, context: &[&str]) -> Result<()> {
    let text = password.expose_secret();
    let length = text.chars().count();
    if length < MIN_LEN {
        bail!(
            "this password is too short ({length} characters); use at least {MIN_LEN}, \
             for example four or more random words"
        );
    }
    let mut inputs = vec!["keyward", "wallet", "ethereum", "password"];
    inputs.extend_from_slice(context);
    let estimate = zxcvbn::zxcvbn(text, &inputs);
    if estimate.score() < zxcvbn::Score::Three {
        let mut reason = String::from("this password is too easy to guess");
        if let Some(feedback) = estimate.feedback() {
            if let Some(warning) = feedback.warning() {
                reason.push_str(&format!(" ({warning})"));
            }
            for suggestion in feedback.suggestions() {
                reason.push_str(&format!("; {suggestion}"));
            }
        }
        bail!("{reason}; four or more random words work well");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password(text: &str) -> Password {
        Secret::new(text.to_owned())
    }

    #[test]
    fn weak_passwords_are_refused_with_a_reason() {
        let short = check_strength(&password("Tr0ub4dor&3"), &[]).unwrap_err();
        assert!(short.to_string().contains("too short"), "{short}");
        let common = check_strength(&password("password1234"), &[]).unwrap_err();
        assert!(common.to_string().contains("too easy to guess"), "{common}");
        let named = check_strength(&password("keywardkeyward"), &[]).unwrap_err();
        assert!(named.to_string().contains("too easy"), "{named}");
        check_strength(&password("orchid velvet canyon seventeen"), &[]).unwrap();
    }

    #[test]
    fn reasons_never_repeat_the_password() {
        let err = check_strength(&password("qwertyuiop12"), &[])
            .unwrap_err()
            .to_string();
        assert!(!err.contains("qwertyuiop12"), "{err}");
    }
}
