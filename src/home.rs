//! Where keyward keeps its files.
//!
//! By default the XDG base directories: the vault in `$XDG_DATA_HOME/keyward` (else
//! `~/.local/share/keyward`), configuration in `$XDG_CONFIG_HOME/keyward` (else
//! `~/.config/keyward`), and state such as the audit log in `$XDG_STATE_HOME/keyward` (else
//! `~/.local/state/keyward`). The global `--home DIR` flag, or `KEYWARD_HOME`, puts all three in one
//! directory instead.

use std::path::{Path, PathBuf};

use crate::files::{self, FileError, FileLock};

pub const VAULT_FILE: &str = "vault.json";
const VAULT_LOCK_FILE: &str = "vault.lock";

#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error(
        "cannot tell where keyward's files go: HOME is not set; pass --home DIR or set KEYWARD_HOME"
    )]
    NoHome,
    #[error("cannot resolve the directory {}: {source}", path.display())]
    Resolve {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// keyward's directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    data: PathBuf,
    config: PathBuf,
    state: PathBuf,
}

impl Home {
    /// `--home DIR` (or `KEYWARD_HOME`) when given, else the XDG directories.
    pub fn resolve(explicit: Option<&Path>) -> Result<Self, HomeError> {
        match explicit {
            Some(dir) => Self::single(dir),
            None => Self::xdg(|name| std::env::var_os(name).map(PathBuf::from)),
        }
    }

    /// All of keyward's files in one directory.
    pub fn single(dir: &Path) -> Result<Self, HomeError> {
        let dir = std::path::absolute(dir).map_err(|source| HomeError::Resolve {
            path: dir.to_owned(),
            source,
        })?;
        Ok(Self {
            data: dir.clone(),
            config: dir.clone(),
            state: dir,
        })
    }

    fn xdg(var: impl Fn(&str) -> Option<PathBuf>) -> Result<Self, HomeError> {
        // The XDG spec says relative values are invalid and must be ignored.
        let absolute = |name: &str| var(name).filter(|path| path.is_absolute());
        let home = absolute("HOME");
        let base = |name: &str, fallback: &str| -> Result<PathBuf, HomeError> {
            absolute(name)
                .or_else(|| home.as_ref().map(|home| home.join(fallback)))
                .map(|base| base.join("keyward"))
                .ok_or(HomeError::NoHome)
        };
        Ok(Self {
            data: base("XDG_DATA_HOME", ".local/share")?,
            config: base("XDG_CONFIG_HOME", ".config")?,
            state: base("XDG_STATE_HOME", ".local/state")?,
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    pub fn config_dir(&self) -> &Path {
        &self.config
    }

    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    pub fn vault_path(&self) -> PathBuf {
        self.data.join(VAULT_FILE)
    }

    /// Takes the vault's write lock, creating the data directory (mode 0700) if needed.
    pub fn lock_vault(&self) -> Result<FileLock, FileError> {
        files::create_private_dir(&self.data)?;
        FileLock::try_exclusive(&self.data.join(VAULT_LOCK_FILE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<PathBuf> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| PathBuf::from(value))
        }
    }

    #[test]
    fn xdg_defaults_under_home() {
        let home = Home::xdg(env(&[("HOME", "/home/ada")])).unwrap();
        assert_eq!(
            home.vault_path(),
            Path::new("/home/ada/.local/share/keyward/vault.json")
        );
        assert_eq!(home.config_dir(), Path::new("/home/ada/.config/keyward"));
        assert_eq!(
            home.state_dir(),
            Path::new("/home/ada/.local/state/keyward")
        );
    }

    #[test]
    fn xdg_variables_win_and_relative_ones_are_ignored() {
        let home = Home::xdg(env(&[
            ("HOME", "/home/ada"),
            ("XDG_DATA_HOME", "/data"),
            ("XDG_CONFIG_HOME", "relative/config"),
        ]))
        .unwrap();
        assert_eq!(home.data_dir(), Path::new("/data/keyward"));
        assert_eq!(home.config_dir(), Path::new("/home/ada/.config/keyward"));
    }

    #[test]
    fn no_home_is_a_clear_error() {
        let err = Home::xdg(env(&[])).unwrap_err().to_string();
        assert!(err.contains("--home"), "{err}");
    }

    #[test]
    fn a_single_home_holds_everything() {
        let home = Home::single(Path::new("/srv/keyward")).unwrap();
        assert_eq!(home.vault_path(), Path::new("/srv/keyward/vault.json"));
        assert_eq!(home.state_dir(), Path::new("/srv/keyward"));
    }
}
