//! `keyward address-book add|remove|list`: the only way to edit the address book. A tool cannot.

use anyhow::Result;
use serde_json::json;

use super::say;
use crate::audit::{AuditLog, Kind};
use crate::config::parse_address;
use crate::home::Home;
use crate::policy::AddressBook;

pub(super) fn add(home: &Home, name: &str, address: &str) -> Result<()> {
    let address =
        parse_address(address).map_err(|problem| anyhow::anyhow!("the address {problem}"))?;
    let mut book = AddressBook::load(home.data_dir())?;
    book.add(name, address)?;
    crate::files::create_private_dir(home.data_dir())?;
    book.save(home.data_dir())?;
    AuditLog::open(home.state_dir())?.record(
        Kind::AddressBookChanged,
        None,
        json!({ "added": name, "address": address }),
    )?;
    say(&format!("Added \"{name}\": {}", address.to_checksum(None)))
}

pub(super) fn remove(home: &Home, name: &str) -> Result<()> {
    let mut book = AddressBook::load(home.data_dir())?;
    let removed = book.remove(name)?;
    book.save(home.data_dir())?;
    AuditLog::open(home.state_dir())?.record(
        Kind::AddressBookChanged,
        None,
        json!({ "removed": removed.name, "address": removed.address }),
    )?;
    say(&format!("Removed \"{}\"", removed.name))
}

pub(super) fn list(home: &Home) -> Result<()> {
    let book = AddressBook::load(home.data_dir())?;
    if book.entries.is_empty() {
        return say(
            "The address book is empty. Add an entry with `keyward address-book add NAME ADDRESS`.",
        );
    }
    for entry in &book.entries {
        say(&format!(
            "{:<32} {}",
            entry.name,
            entry.address.to_checksum(None)
        ))?;
    }
    Ok(())
}
