//! The rlimits layer: no core dumps, and caps on address space and open files that a runaway or
//! compromised keyward cannot raise again (the hard limit is lowered with the soft one).

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

use super::{Report, SandboxError};

/// Address space: scrypt at keyward's cost takes 256 MiB per unlock, and every thread reserves a
/// stack and a malloc arena; 4 GiB leaves room for that many times over.
pub const ADDRESS_SPACE: u64 = 4 << 30;
/// Open files: the vault, the logs, the listeners, and a connection per client and per RPC node.
pub const OPEN_FILES: u64 = 4096;

pub(super) fn apply(report: &mut Report) -> Result<(), SandboxError> {
    for (resource, cap, name) in [
        (Resource::Core, 0, "core dumps 0"),
        (Resource::As, ADDRESS_SPACE, "address space 4 GiB"),
        (Resource::Nofile, OPEN_FILES, "open files 4096"),
    ] {
        let current = getrlimit(resource);
        // Never raise a limit someone set lower.
        let cap = current.maximum.map_or(cap, |maximum| maximum.min(cap));
        setrlimit(
            resource,
            Rlimit {
                current: Some(cap),
                maximum: Some(cap),
            },
        )
        .map_err(|err| SandboxError::Failed(format!("cannot set the rlimit for {name}: {err}")))?;
    }
    report
        .applied
        .push("rlimits: no core dumps, 4 GiB of address space, 4096 open files".into());
    Ok(())
}
