//! The controlling terminal: the trusted channel for passwords, the recovery phrase and the TOTP
//! secret on the command line.
//!
//! Everything here reads from and writes to `/dev/tty`, never stdout or stderr, so piping or
//! logging a command's output cannot capture a secret. Secret input is read with echo off in
//! non-canonical mode, so Ctrl-C cancels cleanly and the terminal settings are always restored.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};

use anyhow::{Context, Result, bail};
use rustix::termios::{self, LocalModes, OptionalActions, SpecialCodeIndex, Termios};
use zeroize::Zeroizing;

use crate::secret::Secret;

/// Clears the screen and the scrollback, so a phrase shown once does not stay on screen.
const CLEAR_SCREEN: &str = "\x1b[H\x1b[2J\x1b[3J";
/// The longest secret line accepted (a 24-word phrase is under 220 bytes).
const MAX_SECRET_LEN: usize = 1024;

pub(crate) struct Terminal {
    tty: File,
}

impl Terminal {
    /// Opens the controlling terminal.
    pub(crate) fn open(why: &str) -> Result<Self> {
        let tty = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .with_context(|| {
                format!(
                    "{why} needs a terminal (keyward shows and reads secrets on the terminal \
                     only, never on stdout or in logs); run it in a terminal"
                )
            })?;
        Ok(Self { tty })
    }

    pub(crate) fn say(&mut self, text: &str) -> Result<()> {
        self.tty
            .write_all(text.as_bytes())
            .and_then(|()| self.tty.flush())
            .context("cannot write to the terminal")
    }

    /// Shows a secret (the phrase, the TOTP URI) on the terminal.
    pub(crate) fn show_secret(&mut self, text: &Secret<String>) -> Result<()> {
        self.say(text.expose_secret())
    }

    pub(crate) fn clear_screen(&mut self) -> Result<()> {
        self.say(CLEAR_SCREEN)
    }

    /// Reads one visible line (for questions whose answer is not secret).
    pub(crate) fn read_line(&mut self, prompt: &str) -> Result<String> {
        self.say(prompt)?;
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            match self.tty.read(&mut byte) {
                Ok(0) => bail!("the terminal closed before an answer was given"),
                Ok(_) if byte[0] == b'\n' => break,
                Ok(_) => line.push(byte[0]),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err).context("cannot read from the terminal"),
            }
            if line.len() > MAX_SECRET_LEN {
                bail!("the answer is too long");
            }
        }
        Ok(String::from_utf8_lossy(&line).trim().to_owned())
    }

    /// Reads a secret line with echo off. Backspace and Ctrl-U edit; Ctrl-C cancels.
    pub(crate) fn read_secret(&mut self, prompt: &str) -> Result<Secret<String>> {
        let guard = RawMode::enter(&self.tty)?;
        // The prompt goes out only once echo is off, so nothing typed after it is echoed.
        self.say(prompt)?;
        let mut typed = Zeroizing::new(Vec::with_capacity(MAX_SECRET_LEN));
        let mut byte = [0u8; 1];
        let outcome = loop {
            match self.tty.read(&mut byte) {
                Ok(0) => {
                    break Err(anyhow::anyhow!(
                        "the terminal closed before input was given"
                    ));
                }
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => break Err(err).context("cannot read from the terminal"),
            }
            match byte[0] {
                b'\r' | b'\n' => break Ok(()),
                0x03 => break Err(anyhow::anyhow!("cancelled; nothing was changed")),
                0x04 if typed.is_empty() => {
                    break Err(anyhow::anyhow!("cancelled; nothing was changed"));
                }
                0x7f | 0x08 => {
                    // Remove one whole UTF-8 character.
                    while typed.pop().is_some_and(|b| b & 0xc0 == 0x80) {}
                }
                0x15 => typed.clear(),
                b if b < 0x20 => {}
                b if typed.len() < MAX_SECRET_LEN => typed.push(b),
                _ => {}
            }
        };
        drop(guard);
        self.say("\n")?;
        outcome?;
        let bytes = std::mem::take(&mut *typed);
        match String::from_utf8(bytes) {
            Ok(text) => Ok(Secret::new(text)),
            Err(err) => {
                zeroize::Zeroize::zeroize(&mut err.into_bytes());
                bail!("the input is not valid UTF-8 text")
            }
        }
    }
}

/// Echo, line editing and signals off until dropped; the original settings come back on every
/// path out, including errors.
struct RawMode {
    tty: File,
    original: Termios,
}

impl RawMode {
    fn enter(tty: &File) -> Result<Self> {
        let tty = tty.try_clone().context("cannot use the terminal")?;
        let original = termios::tcgetattr(&tty).context("cannot read the terminal's settings")?;
        let mut raw = original.clone();
        raw.local_modes
            .remove(LocalModes::ECHO | LocalModes::ICANON | LocalModes::ISIG);
        raw.special_codes[SpecialCodeIndex::VMIN] = 1;
        raw.special_codes[SpecialCodeIndex::VTIME] = 0;
        termios::tcsetattr(&tty, OptionalActions::Now, &raw)
            .context("cannot turn off the terminal's echo")?;
        Ok(Self { tty, original })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(&self.tty, OptionalActions::Now, &self.original);
    }
}
