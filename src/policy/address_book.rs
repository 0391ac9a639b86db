//! The address book: names the owner gives to addresses, edited only with
//! `keyward address-book add|remove|list`, never by a tool.
//!
//! Names appear in reviews, and the recipient rule `address_book_only` admits only these
//! addresses (and the wallet's own accounts). Stored as `address-book.json` in the data directory.

use std::path::{Path, PathBuf};

use alloy::primitives::Address;
use serde::{Deserialize, Serialize};

use crate::files::{self, FileError};

pub const FILE: &str = "address-book.json";
const MAX_FILE: u64 = 1 << 20;
pub const MAX_NAME: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    pub address: Address,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressBook {
    pub entries: Vec<Entry>,
}

#[derive(Debug, thiserror::Error)]
pub enum AddressBookError {
    #[error("{} is not an address book keyward wrote ({problem}); fix or move it", .path.display())]
    Corrupt { path: PathBuf, problem: String },

    #[error(
        "a name is 1 to {MAX_NAME} letters, digits, spaces, '-', '_' or '.', starting with a \
         letter or digit"
    )]
    BadName,

    #[error("the address book already has an entry named \"{0}\"; remove it first")]
    NameTaken(String),

    #[error("the address book already has {address} as \"{name}\"")]
    AddressTaken { address: Address, name: String },

    #[error("the address book has no entry named \"{0}\"; `keyward address-book list` shows them")]
    NoSuchName(String),

    #[error(transparent)]
    File(#[from] FileError),
}

impl AddressBook {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(FILE)
    }

    pub fn load(data_dir: &Path) -> Result<Self, AddressBookError> {
        let path = Self::path(data_dir);
        match files::read_optional(&path, MAX_FILE)? {
            Some(bytes) => {
                serde_json::from_slice(&bytes).map_err(|err| AddressBookError::Corrupt {
                    path,
                    problem: err.to_string(),
                })
            }
            None => Ok(Self::default()),
        }
    }

    pub fn save(&self, data_dir: &Path) -> Result<(), AddressBookError> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|err| AddressBookError::Corrupt {
            path: Self::path(data_dir),
            problem: err.to_string(),
        })?;
        files::write_atomic(&Self::path(data_dir), &bytes)?;
        Ok(())
    }

    pub fn name_of(&self, address: Address) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.address == address)
            .map(|e| e.name.as_str())
    }

    pub fn add(&mut self, name: &str, address: Address) -> Result<(), AddressBookError> {
        let valid = !name.is_empty()
            && name.len() <= MAX_NAME
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.'));
        if !valid {
            return Err(AddressBookError::BadName);
        }
        if self
            .entries
            .iter()
            .any(|e| e.name.eq_ignore_ascii_case(name))
        {
            return Err(AddressBookError::NameTaken(name.to_owned()));
        }
        if let Some(existing) = self.name_of(address) {
            return Err(AddressBookError::AddressTaken {
                address,
                name: existing.to_owned(),
            });
        }
        self.entries.push(Entry {
            name: name.to_owned(),
            address,
        });
        Ok(())
    }

    pub fn remove(&mut self, name: &str) -> Result<Entry, AddressBookError> {
        let position = self
            .entries
            .iter()
            .position(|e| e.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| AddressBookError::NoSuchName(name.chars().take(40).collect()))?;
        Ok(self.entries.remove(position))
    }
}
