//! `keyward audit verify`: check that the audit log is whole and unedited.
//!
//! Reads only: a log that does not verify is reported, with the line and the problem, and left as
//! it is, since it is the evidence.

use anyhow::{Context, Result, bail};

use super::say;
use crate::audit;
use crate::home::Home;

#[tracing::instrument(level = "info", skip_all, fields(command = "audit verify"))]
pub(super) fn verify(home: &Home) -> Result<()> {
    let dir = home.state_dir();
    match audit::verify(dir) {
        Ok(summary) => match summary.last_hash {
            Some(last_hash) => say(&format!(
                "The audit log in {} verifies: {} entries, none edited, reordered, removed or cut \
                 off.\nLast entry's hash: {last_hash}",
                dir.display(),
                summary.entries,
            )),
            None => say(&format!(
                "The audit log in {} has no entries yet.",
                dir.display()
            )),
        },
        Err(err) if err.is_broken_log() => bail!(
            "the audit log in {} does not verify: {err}; keyward adds nothing to it until it does: \
             keep a copy of audit.jsonl and audit.head as evidence, then move both aside to start \
             a new log",
            dir.display()
        ),
        Err(err) => {
            Err(err).with_context(|| format!("cannot verify the audit log in {}", dir.display()))
        }
    }
}
