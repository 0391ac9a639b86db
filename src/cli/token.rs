//! `keyward token create|list|revoke`: the bearer tokens MCP clients present over HTTP.
//!
//! A new token goes to stdout once, alone on its line, so a script can capture it; the file keeps
//! only its hash (see [`crate::http::tokens`]). Each creation and revocation is in the audit log,
//! by name.

use std::io::Write as _;

use anyhow::Result;
use serde_json::json;

use super::say;
use crate::audit::{AuditLog, Kind};
use crate::home::Home;
use crate::http::tokens::TokenStore;

pub(super) fn create(home: &Home, name: &str) -> Result<()> {
    let store = TokenStore::new(home.data_dir());
    let now = crate::confirm::guard::now();
    let token = store.create(name, now)?;
    AuditLog::open(home.state_dir())?.record(
        Kind::TokensChanged,
        None,
        json!({ "created": name }),
    )?;
    let mut stderr = std::io::stderr().lock();
    writeln!(
        stderr,
        "Token `{name}` created. It is shown once, below; keyward keeps only its hash. Give it to \
         the MCP host as the header `Authorization: Bearer <token>`; `keyward token revoke {name}` \
         withdraws it."
    )?;
    drop(stderr);
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(token.as_bytes())?;
    stdout.write_all(b"\n")?;
    stdout.flush()?;
    Ok(())
}

pub(super) fn list(home: &Home, as_json: bool) -> Result<()> {
    let tokens = TokenStore::new(home.data_dir()).list()?;
    if as_json {
        let tokens: Vec<_> = tokens
            .iter()
            .map(|t| json!({ "name": t.name, "created": t.created }))
            .collect();
        return say(&serde_json::to_string_pretty(&json!({ "tokens": tokens }))?);
    }
    if tokens.is_empty() {
        return say("No tokens. Create one with `keyward token create --name NAME`.");
    }
    let width = tokens
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut table = format!("{:width$}  CREATED", "NAME");
    for token in &tokens {
        table.push_str(&format!(
            "\n{:width$}  {}",
            token.name,
            crate::review::utc(token.created)
        ));
    }
    say(&table)
}

pub(super) fn revoke(home: &Home, name: &str) -> Result<()> {
    TokenStore::new(home.data_dir()).revoke(name)?;
    AuditLog::open(home.state_dir())?.record(
        Kind::TokensChanged,
        None,
        json!({ "revoked": name }),
    )?;
    say(&format!(
        "Token `{name}` revoked: a running server refuses it from its next request on."
    ))
}
