//! Refusing wallet secrets in the environment.
//!
//! A variable in a process's environment can be read by every other process of the same user
//! (`/proc/PID/environ`), is inherited by every child, and ends up in MCP host configuration files
//! and shell history. keyward takes its password on a trusted channel (the approval page, `keyward
//! approve`, the terminal) or from a 0600 password file, and keys only through its vault, so a
//! command that touches the vault refuses to start when a variable looks like it holds a wallet
//! secret, and says which variable, why, and what to do instead.
//!
//! The rule, chosen so that an ordinary developer environment (API tokens, cloud credentials,
//! session secrets, hashes) does not trip it; a variable with an empty value never does:
//!
//! 1. **By name**, split into words at `_`, `-` and `.`, case ignored:
//!    - it names a recovery phrase: a word `MNEMONIC`, `SEEDPHRASE` or `MNEMONICS`, or the words
//!      `SEED PHRASE`, `RECOVERY PHRASE`, `SECRET PHRASE` or `SECRET RECOVERY` in a row;
//!    - it names a private key: a word `PRIVKEY` or `PRIVATEKEY`, or the words `PRIVATE KEY` or
//!      `PRIV KEY` in a row;
//!    - it names a wallet password: a word `PASSWORD`, `PASSWD`, `PASSPHRASE` or `PASS` after a
//!      word `WALLET`, `VAULT`, `KEYSTORE`, `KEYWARD` or `ETH` (`ETH_PASSWORD` is Foundry's
//!      keystore password variable);
//!    - it is keyward's own and names a secret: it starts with `KEYWARD` and holds a word
//!      `PASSWORD`, `PASSWD`, `PASSPHRASE`, `SECRET`, `TOTP`, `OTP`, `KEY`, `MNEMONIC`, `SEED` or
//!      `PHRASE`;
//!
//!    except when the name's last word is `FILE`, `PATH` or `DIR` (`KEYWARD_PASSWORD_FILE` holds
//!    a path, not the password).
//! 2. **By value**, whatever the name:
//!    - the value is a BIP-39 English recovery phrase: 12 to 24 words of the word list whose
//!      checksum holds (a random sentence passes with odds of at most 1 in 16, and only if every
//!      word is one of the 2048);
//!    - the value is a private key written as Ethereum tools write it, `0x` and 64 hex digits, and
//!      the name holds a word `KEY`, `PK`, `SECRET`, `PRIV`, `SIGNER` or `DEPLOYER`, without a
//!      word `API`, `HASH`, `TX` or `BLOCK`.
//!
//! This module must never print, log or return a variable's value: only its name.

use std::ffi::OsString;
use std::fmt;

use zeroize::Zeroizing;

/// Why a variable looks like a secret. The name is shown; the value never is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretVariable {
    /// The variable's name, with anything unprintable escaped.
    pub name: String,
    pub why: &'static str,
}

/// One or more variables in the environment look like wallet secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretEnvironment(pub Vec<SecretVariable>);

impl std::error::Error for SecretEnvironment {}

impl fmt::Display for SecretEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (one, are) = if self.0.len() == 1 {
            ("variable", "it looks")
        } else {
            ("variables", "they look")
        };
        write!(f, "refusing to start: the environment {one} ")?;
        for (i, variable) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{} ({})", variable.name, variable.why)?;
        }
        write!(
            f,
            " {are} like a wallet secret. Every process of your user can read a process's \
             environment, and every child inherits it. Unset it (or remove it from your MCP \
             host's `env` settings): keyward asks for the vault password on the approval page or \
             in `keyward approve`, or reads it from a file only you can read \
             (--password-file, mode 0600), and takes keys only through its vault \
             (`keyward init --import-mnemonic`, `keyward import-keystore`)"
        )
    }
}

/// Checks this process's environment.
pub fn check() -> Result<(), SecretEnvironment> {
    check_variables(std::env::vars_os())
}

/// Checks the given variables.
pub fn check_variables(
    variables: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<(), SecretEnvironment> {
    let mut found = Vec::new();
    for (name, value) in variables {
        let value = Zeroizing::new(value.into_encoded_bytes());
        let name_text = name.to_string_lossy();
        if let Some(why) = looks_secret(&name_text, &value) {
            found.push(SecretVariable {
                name: name_text.escape_debug().to_string(),
                why,
            });
        }
    }
    if found.is_empty() {
        Ok(())
    } else {
        Err(SecretEnvironment(found))
    }
}

/// The reason `name=value` looks like a wallet secret, if it does.
fn looks_secret(name: &str, value: &[u8]) -> Option<&'static str> {
    if value.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let upper = name.to_ascii_uppercase();
    let words: Vec<&str> = upper
        .split(['_', '-', '.'])
        .filter(|w| !w.is_empty())
        .collect();
    let has = |word: &str| words.contains(&word);
    // A variable that names a file or directory (`KEYWARD_PASSWORD_FILE`) holds a path, not the
    // secret: only its value is checked.
    let names_a_path = words
        .last()
        .is_some_and(|w| matches!(*w, "FILE" | "PATH" | "DIR" | "FILES" | "PATHS"));
    if !names_a_path && let Some(why) = secret_name(&words, has) {
        return Some(why);
    }
    value_looks_secret(&words, value)
}

/// The name-based half of the rule.
fn secret_name(words: &[&str], has: impl Fn(&str) -> bool) -> Option<&'static str> {
    let pair = |first: &str, second: &str| words.windows(2).any(|w| w == [first, second]);

    if ["MNEMONIC", "MNEMONICS", "SEEDPHRASE"]
        .iter()
        .any(|w| has(w))
        || pair("SEED", "PHRASE")
        || pair("RECOVERY", "PHRASE")
        || pair("SECRET", "PHRASE")
        || pair("SECRET", "RECOVERY")
    {
        return Some("its name says it holds a recovery phrase");
    }
    if has("PRIVKEY") || has("PRIVATEKEY") || pair("PRIVATE", "KEY") || pair("PRIV", "KEY") {
        return Some("its name says it holds a private key");
    }
    let password_word = |w: &&str| matches!(*w, "PASSWORD" | "PASSWD" | "PASSPHRASE" | "PASS");
    let wallet_word = |w: &&str| matches!(*w, "WALLET" | "VAULT" | "KEYSTORE" | "KEYWARD" | "ETH");
    if let Some(first_wallet) = words.iter().position(wallet_word)
        && words[first_wallet..].iter().any(password_word)
    {
        return Some("its name says it holds a wallet password");
    }
    if words.first() == Some(&"KEYWARD")
        && words.iter().any(|w| {
            matches!(
                *w,
                "PASSWORD"
                    | "PASSWD"
                    | "PASSPHRASE"
                    | "SECRET"
                    | "TOTP"
                    | "OTP"
                    | "KEY"
                    | "MNEMONIC"
                    | "SEED"
                    | "PHRASE"
            )
        })
    {
        return Some("keyward never reads a secret from its environment");
    }
    None
}

/// The value-based half of the rule.
fn value_looks_secret(words: &[&str], value: &[u8]) -> Option<&'static str> {
    if is_recovery_phrase(value) {
        return Some("its value is a valid BIP-39 recovery phrase");
    }
    let keyish = words
        .iter()
        .any(|w| matches!(*w, "KEY" | "PK" | "SECRET" | "PRIV" | "SIGNER" | "DEPLOYER"))
        && !words
            .iter()
            .any(|w| matches!(*w, "API" | "HASH" | "TX" | "BLOCK"));
    if keyish && is_hex_key(value) {
        return Some("its value is a 32-byte hex key and its name says key");
    }
    None
}

/// `0x` and 64 hex digits, surrounding whitespace ignored.
fn is_hex_key(value: &[u8]) -> bool {
    let value = value.trim_ascii();
    value.len() == 66
        && (value.starts_with(b"0x") || value.starts_with(b"0X"))
        && value[2..].iter().all(u8::is_ascii_hexdigit)
}

/// 12 to 24 English BIP-39 words with a valid checksum.
fn is_recovery_phrase(value: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(value) else {
        return false;
    };
    let words = text.split_whitespace().count();
    if !(12..=24).contains(&words) || words % 3 != 0 || text.len() > 24 * 9 + 64 {
        return false;
    }
    let mut normalized = Zeroizing::new(String::with_capacity(text.len()));
    for (i, word) in text.split_whitespace().enumerate() {
        if i > 0 {
            normalized.push(' ');
        }
        normalized.extend(word.chars().map(|c| c.to_ascii_lowercase()));
    }
    crate::hd::parse_phrase(&normalized).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pairs: &[(&str, &str)]) -> Result<(), SecretEnvironment> {
        check_variables(
            pairs
                .iter()
                .map(|(name, value)| (OsString::from(name), OsString::from(value))),
        )
    }

    /// BIP-39 English vector 0: a valid phrase that is public.
    const ABANDON_ABOUT: &str = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
    const HEX_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    #[test]
    fn names_that_say_wallet_secret_are_refused() {
        for name in [
            "PRIVATE_KEY",
            "DEPLOYER_PRIVATE_KEY",
            "eth_private_key",
            "PRIVKEY",
            "MNEMONIC",
            "HARDHAT_MNEMONIC",
            "SEED_PHRASE",
            "wallet-seed-phrase",
            "SECRET_RECOVERY_PHRASE",
            "KEYWARD_PASSWORD",
            "KEYWARD_VAULT_PASSPHRASE",
            "KEYWARD_TOTP_SECRET",
            "WALLET_PASSWORD",
            "VAULT_PASS",
            "ETH_PASSWORD",
            "ETH_KEYSTORE_PASSWORD",
        ] {
            let err = check(&[(name, "x")]).unwrap_err();
            assert_eq!(err.0.len(), 1, "{name}");
            assert_eq!(err.0[0].name, name);
        }
    }

    #[test]
    fn values_that_are_secrets_are_refused_under_the_names_that_fit() {
        assert!(check(&[("NOTES", ABANDON_ABOUT)]).is_err());
        assert!(check(&[("X", &ABANDON_ABOUT.to_uppercase())]).is_err());
        for name in ["DEPLOYER_KEY", "SIGNER", "PK", "MY_SECRET", "TEST_PRIV"] {
            assert!(check(&[(name, HEX_KEY)]).is_err(), "{name}");
        }
    }

    #[test]
    fn an_ordinary_developer_environment_passes() {
        check(&[
            ("PATH", "/usr/bin:/bin"),
            ("HOME", "/home/me"),
            ("KEYWARD_HOME", "/home/me/.keyward"),
            ("KEYWARD_DEV_PORT", "8545"),
            ("KEYWARD_REQUIRE_TOOLS", "1"),
            ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
            ("GITHUB_TOKEN", "ghp_0123456789abcdefghijklmnopqrstuvwxyz"),
            ("ETHERSCAN_API_KEY", "ABCDEFGHIJKLMNOPQRSTUVWXYZ12345678"),
            ("INFURA_API_KEY", HEX_KEY),
            ("SSH_AUTH_SOCK", "/run/user/1000/ssh-agent.socket"),
            ("GPG_KEY", "0x0123456789ABCDEF"),
            ("GIT_COMMIT", "0123456789abcdef0123456789abcdef01234567"),
            ("TX_HASH", HEX_KEY),
            ("DEPLOY_TX", HEX_KEY),
            ("SESSION_SECRET", &HEX_KEY[2..]),
            ("PASSWORD_STORE_DIR", "/home/me/.password-store"),
            ("KEYWARD_PASSWORD_FILE", "/home/me/.keyward-password"),
            ("PRIVATE_KEY_PATH", "/home/me/key.json"),
            ("PGPASSWORD", "hunter2"),
            ("LESSKEY", "/home/me/.less"),
            ("WORDS", "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon"),
            ("PRIVATE_KEY", ""),
            ("MNEMONIC", "  "),
        ])
        .unwrap();
    }

    #[test]
    fn the_message_names_every_variable_and_never_a_value() {
        let err = check(&[
            ("PRIVATE_KEY", HEX_KEY),
            ("PATH", "/bin"),
            ("RESTORE", ABANDON_ABOUT),
        ])
        .unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("PRIVATE_KEY (its name says it holds a private key)"),
            "{message}"
        );
        assert!(
            message.contains("RESTORE (its value is a valid BIP-39 recovery phrase)"),
            "{message}"
        );
        assert!(message.contains("--password-file"), "{message}");
        assert!(
            !message.contains("ac0974") && !message.contains("abandon"),
            "{message}"
        );
        assert!(!message.contains("PATH"), "{message}");
    }

    #[test]
    fn unprintable_names_are_escaped() {
        let err = check(&[("PRIVATE_KEY_\n\u{1b}[2J", "x")]).unwrap_err();
        assert_eq!(err.0[0].name, "PRIVATE_KEY_\\n\\u{1b}[2J");
    }
}
