//! Bearer tokens for MCP over HTTP: created by `keyward token create`, shown once, stored hashed.
//!
//! A token is `kw_` and 43 base64url characters: 256 random bits, so a SHA-256 of it is all the
//! file needs to keep (no salt or slow hash: nobody can guess 256 bits). The file lives beside the
//! vault, mode 0600, and is replaced atomically under a lock, so a running server sees every
//! creation and revocation on its next request and never reads a half-written file.
//!
//! This module must never write, log or return a token after `create` hands it over.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::files::{self, FileError, FileLock};

/// The token file, in the wallet's data directory.
pub const TOKENS_FILE: &str = "http-tokens.json";
const TOKENS_LOCK_FILE: &str = "http-tokens.lock";
const PREFIX: &str = "kw_";
const TOKEN_BYTES: usize = 32;
/// Far more than anyone needs; the file is read on the server's request path.
const MAX_TOKENS: usize = 256;
const MAX_FILE: u64 = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(
        "`{0}` is not a usable token name: use 1 to 40 letters, digits, `-`, `_` or `.`, \
         such as `laptop` or `ci-runner`"
    )]
    BadName(String),
    #[error("a token named `{0}` exists already: choose another name, or revoke that one first")]
    Exists(String),
    #[error("no token is named `{name}`; the tokens are: {known}")]
    Unknown { name: String, known: String },
    #[error("there are {MAX_TOKENS} tokens already: revoke ones no longer used")]
    TooMany,
    #[error("{} is not a keyward token file ({reason}); move it away and create tokens again", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("the operating system's random source failed: {0}")]
    Random(String),
    #[error(transparent)]
    File(#[from] FileError),
}

/// A token's public facts: what `keyward token list` shows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenInfo {
    pub name: String,
    /// Unix seconds.
    pub created: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    name: String,
    created: u64,
    /// SHA-256 of the whole token, lower-case hex.
    sha256: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    version: u32,
    tokens: Vec<Stored>,
}

/// The token file of one wallet home.
#[derive(Debug)]
pub struct TokenStore {
    path: PathBuf,
    lock: PathBuf,
    /// The parsed file and the stamp it was read at; read again only when the file changes.
    cached: Mutex<Option<(Stamp, Hashes)>>,
}

/// Each token's SHA-256 and name.
type Hashes = Arc<Vec<([u8; 32], String)>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    length: u64,
    modified: Option<std::time::SystemTime>,
}

impl TokenStore {
    /// The tokens kept in `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join(TOKENS_FILE),
            lock: data_dir.join(TOKENS_LOCK_FILE),
            cached: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates a token named `name` and returns it: the only time it exists outside the caller.
    pub fn create(&self, name: &str, now: u64) -> Result<Zeroizing<String>, TokenError> {
        check_name(name)?;
        let _lock = self.lock()?;
        let mut file = self.read()?;
        if file.tokens.iter().any(|t| t.name == name) {
            return Err(TokenError::Exists(name.to_owned()));
        }
        if file.tokens.len() >= MAX_TOKENS {
            return Err(TokenError::TooMany);
        }
        let mut random = Zeroizing::new([0u8; TOKEN_BYTES]);
        getrandom::fill(random.as_mut()).map_err(|err| TokenError::Random(err.to_string()))?;
        let mut token = Zeroizing::new(String::with_capacity(PREFIX.len() + 43));
        token.push_str(PREFIX);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(random.as_ref(), &mut token);
        file.tokens.push(Stored {
            name: name.to_owned(),
            created: now,
            sha256: hex::encode(Sha256::digest(token.as_bytes())),
        });
        self.write(&file)?;
        Ok(token)
    }

    /// Removes the token named `name`; a server refuses it from its next request on.
    pub fn revoke(&self, name: &str) -> Result<(), TokenError> {
        let _lock = self.lock()?;
        let mut file = self.read()?;
        let before = file.tokens.len();
        file.tokens.retain(|t| t.name != name);
        if file.tokens.len() == before {
            return Err(TokenError::Unknown {
                name: name.chars().take(40).collect(),
                known: known(&file),
            });
        }
        self.write(&file)
    }

    pub fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
        Ok(self
            .read()?
            .tokens
            .into_iter()
            .map(|t| TokenInfo {
                name: t.name,
                created: t.created,
            })
            .collect())
    }

    /// The name of the token `presented` is, if it is one; every stored token is compared, in
    /// constant time, whichever matches.
    pub fn verify(&self, presented: &str) -> Result<Option<String>, TokenError> {
        let hashes = self.hashes()?;
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (hash, name) in hashes.iter() {
            if bool::from(hash.ct_eq(&digest)) && found.is_none() {
                found = Some(name.clone());
            }
        }
        Ok(found)
    }

    /// How many tokens exist.
    pub fn count(&self) -> Result<usize, TokenError> {
        Ok(self.hashes()?.len())
    }

    /// The stored hashes, parsed again only when the file changed (a `stat` per request).
    fn hashes(&self) -> Result<Hashes, TokenError> {
        use std::os::unix::fs::MetadataExt;
        let stamp = match std::fs::metadata(&self.path) {
            Ok(metadata) => Some(Stamp {
                inode: metadata.ino(),
                length: metadata.len(),
                modified: metadata.modified().ok(),
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(_) => None,
        };
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        if let (Some(stamp), Some((seen, hashes))) = (stamp, cached.as_ref())
            && *seen == stamp
        {
            return Ok(Arc::clone(hashes));
        }
        let file = self.read()?;
        let mut hashes = Vec::with_capacity(file.tokens.len());
        for token in file.tokens {
            let mut hash = [0u8; 32];
            hex::decode_to_slice(&token.sha256, &mut hash)
                .map_err(|_| self.corrupt("a hash is not 64 hex digits"))?;
            hashes.push((hash, token.name));
        }
        let hashes = Arc::new(hashes);
        *cached = stamp.map(|stamp| (stamp, Arc::clone(&hashes)));
        Ok(hashes)
    }

    fn read(&self) -> Result<TokenFile, TokenError> {
        let Some(bytes) = files::read_optional(&self.path, MAX_FILE)? else {
            return Ok(TokenFile {
                version: 1,
                tokens: Vec::new(),
            });
        };
        let file: TokenFile =
            serde_json::from_slice(&bytes).map_err(|err| self.corrupt(&err.to_string()))?;
        if file.version != 1 {
            return Err(self.corrupt(&format!("version {} is unknown", file.version)));
        }
        Ok(file)
    }

    fn write(&self, file: &TokenFile) -> Result<(), TokenError> {
        let mut bytes =
            serde_json::to_vec_pretty(file).map_err(|err| self.corrupt(&err.to_string()))?;
        bytes.push(b'\n');
        files::write_atomic(&self.path, &bytes)?;
        Ok(())
    }

    fn lock(&self) -> Result<FileLock, TokenError> {
        if let Some(dir) = self.path.parent() {
            files::create_private_dir(dir)?;
        }
        Ok(FileLock::try_exclusive(&self.lock)?)
    }

    fn corrupt(&self, reason: &str) -> TokenError {
        TokenError::Corrupt {
            path: self.path.clone(),
            reason: reason.chars().take(200).collect(),
        }
    }
}

fn check_name(name: &str) -> Result<(), TokenError> {
    let fine = (1..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if fine {
        Ok(())
    } else {
        Err(TokenError::BadName(
            name.chars()
                .take(40)
                .map(|c| if c.is_control() { '?' } else { c })
                .collect(),
        ))
    }
}

fn known(file: &TokenFile) -> String {
    if file.tokens.is_empty() {
        "none (create one with `keyward token create --name NAME`)".to_owned()
    } else {
        file.tokens
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_token_verifies_until_revoked_and_the_file_holds_only_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path());
        assert_eq!(store.verify("kw_nothing").unwrap(), None);
        let token = store.create("laptop", 1_700_000_000).unwrap();
        assert!(
            token.starts_with("kw_") && token.len() == 46,
            "{}",
            token.len()
        );
        let other = store.create("ci", 1_700_000_001).unwrap();
        assert_eq!(store.verify(&token).unwrap().as_deref(), Some("laptop"));
        assert_eq!(store.verify(&other).unwrap().as_deref(), Some("ci"));
        assert_eq!(store.verify(&token[..45]).unwrap(), None);
        let text = std::fs::read_to_string(store.path()).unwrap();
        assert!(!text.contains(&token[3..]) && !text.contains(&other[3..]));
        let names: Vec<String> = store.list().unwrap().into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["laptop", "ci"]);

        // A second store, as the CLI is a second process: the first sees the change at once.
        TokenStore::new(dir.path()).revoke("laptop").unwrap();
        assert_eq!(store.verify(&token).unwrap(), None);
        assert_eq!(store.verify(&other).unwrap().as_deref(), Some("ci"));
    }

    #[test]
    fn names_are_checked_unique_and_revoking_an_unknown_name_lists_the_known_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path());
        for bad in ["", "two words", "a/b", &"x".repeat(41), "naïve"] {
            assert!(
                matches!(store.create(bad, 0), Err(TokenError::BadName(_))),
                "{bad}"
            );
        }
        store.create("laptop", 0).unwrap();
        let err = store.create("laptop", 0).unwrap_err();
        assert!(err.to_string().contains("exists already"), "{err}");
        let err = store.revoke("desktop").unwrap_err().to_string();
        assert!(
            err.contains("no token is named `desktop`") && err.contains("laptop"),
            "{err}"
        );
    }

    #[test]
    fn a_damaged_file_is_reported_not_treated_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path());
        files::write_atomic(store.path(), b"{\"version\":1,\"tokens\":[{\"name\":\"a\"").unwrap();
        let err = store.verify("kw_x").unwrap_err().to_string();
        assert!(err.contains("is not a keyward token file"), "{err}");
        assert!(store.create("b", 0).is_err());
    }
}
