//! The log writer: every line tracing writes to stderr passes through here first.
//!
//! - Addresses are shortened ([`super::mask`]) unless `log.reveal_addresses = true`.
//! - The path, query and credentials of every URL are cut off, so an RPC provider's API key in
//!   its URL never reaches a log, whoever logged it (keyward or a dependency at trace level).
//! - A line that carries a secret the keyring holds ([`super::guard`]) is replaced whole by a
//!   line saying a line was withheld and of what kind. No code path should ever log a secret;
//!   this is the net under that rule.
//!
//! This module must never write a line it has not checked.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use super::guard::guard;
use super::mask::{Masker, redact_urls};

static REVEAL_ADDRESSES: AtomicBool = AtomicBool::new(false);

/// Whether logs show full addresses (`log.reveal_addresses`). Masked until the config says so.
pub fn reveal_addresses(reveal: bool) {
    REVEAL_ADDRESSES.store(reveal, Ordering::Relaxed);
}

/// What a log line becomes before it is written.
pub fn filter_line(line: &str) -> String {
    if let Some(kind) = guard().find(line.as_bytes()) {
        return format!(
            "[keyward withheld a log line: it contained {}]\n",
            kind.describe()
        );
    }
    let line = redact_urls(line);
    if REVEAL_ADDRESSES.load(Ordering::Relaxed) {
        line.into_owned()
    } else {
        Masker::default().text(&line).into_owned()
    }
}

/// Makes a [`LineWriter`] per event, for `tracing_subscriber::fmt().with_writer(..)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(Vec::with_capacity(256))
    }
}

/// Collects one event's text and writes it, filtered, to stderr when dropped.
#[derive(Debug)]
pub struct LineWriter(Vec<u8>);

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let line = filter_line(&String::from_utf8_lossy(&self.0));
        self.0.fill(0);
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    /// Every span names its fields: `skip_all` and an explicit `fields(..)`, so no argument (a
    /// password, a vault) is ever recorded by accident through its `Debug`.
    #[test]
    fn every_instrumented_function_skips_its_arguments() {
        fn sources(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    sources(&path, found);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    found.push(path);
                }
            }
        }
        let mut files = Vec::new();
        for dir in ["src", "hardware/src"] {
            sources(
                &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir),
                &mut files,
            );
        }
        let mut spans = 0;
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            // Spelled in two parts so that this test does not find itself.
            for (at, _) in text.match_indices(concat!("#[tracing::", "instrument")) {
                let attribute = &text[at..at + text[at..].find(")]").unwrap_or(0) + 2];
                spans += 1;
                assert!(
                    attribute.contains("skip_all"),
                    "{}: a span records its arguments: {attribute}",
                    file.display()
                );
            }
            assert!(
                !text.contains(concat!("#[", "instrument")),
                "{}: use #[tracing::instrument(skip_all, ..)]",
                file.display()
            );
        }
        assert!(spans > 5, "found only {spans} spans: is the search broken?");
    }

    use super::super::guard::{Fingerprints, SecretKind};
    use super::*;

    #[test]
    fn lines_are_masked_redacted_and_withheld_when_they_hold_a_secret() {
        let line = "INFO sent to 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266 via https://rpc.example/v3/APIKEY\n";
        assert_eq!(
            filter_line(line),
            "INFO sent to 0xf39F…2266 via https://rpc.example/…\n"
        );
        reveal_addresses(true);
        assert_eq!(
            filter_line(line),
            "INFO sent to 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266 via https://rpc.example/…\n"
        );
        reveal_addresses(false);
        let mut set = Fingerprints::new();
        set.text(SecretKind::Password, "canary password 123");
        let _held = guard().register(set);
        let leaked = filter_line("DEBUG pw=canary password 123\n");
        assert_eq!(
            leaked,
            "[keyward withheld a log line: it contained the wallet password]\n"
        );
    }
}
