//! Process hardening, applied before any command can touch a secret.
//!
//! Core dumps are disabled (`RLIMIT_CORE = 0`) and the process is marked non-dumpable
//! (`PR_SET_DUMPABLE = 0`), which also stops other processes of the same user from attaching with
//! ptrace or reading `/proc/PID/mem`. A panic prints one fixed sentence: its payload could hold
//! anything, so it is never shown. Release builds abort on panic (`panic = "abort"`).
//!
//! This module must never print a panic's payload or location.

use std::io::Write as _;

/// What a panic prints, always the same: the payload is never shown.
pub const PANIC_MESSAGE: &str = "keyward stopped on an internal error. Nothing secret was printed \
and no file was left half-written. Please report this bug at https://github.com/keyward/keyward/issues\n";

#[derive(Debug, thiserror::Error)]
#[error(
    "cannot {what} ({source}); keyward will not handle secrets in a process that could leak them \
     into a core dump"
)]
pub struct HardenError {
    what: &'static str,
    source: rustix::io::Errno,
}

/// Disables core dumps and ptrace access for this process.
pub fn harden_process() -> Result<(), HardenError> {
    use rustix::process::{DumpableBehavior, Resource, Rlimit, set_dumpable_behavior, setrlimit};

    setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )
    .map_err(|source| HardenError {
        what: "disable core dumps",
        source,
    })?;
    set_dumpable_behavior(DumpableBehavior::NotDumpable).map_err(|source| HardenError {
        what: "mark the process non-dumpable",
        source,
    })?;
    Ok(())
}

/// Replaces the default panic output (payload and location) with [`PANIC_MESSAGE`].
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|_| {
        let _ = std::io::stderr().write_all(PANIC_MESSAGE.as_bytes());
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs this test binary again, as a child that installs the hook and panics with a secret in
    /// the payload; the child's stderr must hold the fixed message and not the payload.
    #[test]
    fn panic_hook_prints_only_the_fixed_message() {
        const PAYLOAD: &str = "secret payload 0xdeadbeefcafe";
        if std::env::var_os("KEYWARD_TEST_PANIC_CHILD").is_some() {
            install_panic_hook();
            panic!("{PAYLOAD}");
        }
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "harden::tests::panic_hook_prints_only_the_fixed_message",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("KEYWARD_TEST_PANIC_CHILD", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "the child did not panic");
        assert!(stderr.contains(PANIC_MESSAGE.trim_end()), "{stderr}");
        assert!(
            !stderr.contains("deadbeefcafe"),
            "the payload leaked: {stderr}"
        );
        assert!(
            !stderr.contains("harden.rs"),
            "the location leaked: {stderr}"
        );
    }

    #[test]
    fn hardening_disables_core_dumps_and_dumpability() {
        harden_process().unwrap();
        let limit = rustix::process::getrlimit(rustix::process::Resource::Core);
        assert_eq!(limit.current, Some(0));
        assert_eq!(limit.maximum, Some(0));
        assert_eq!(
            rustix::process::dumpable_behavior().unwrap(),
            rustix::process::DumpableBehavior::NotDumpable
        );
    }
}
