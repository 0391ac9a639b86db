//! The Landlock layer: which files keyward may open and which TCP ports it may use.
//!
//! keyward asks for everything up to ABI 6 and takes what the kernel has (best effort): each ABI
//! that is missing leaves something open, and the report says what.

use std::path::PathBuf;

use landlock::{
    ABI, Access, AccessFs, AccessNet, LandlockStatus, NetPort, PathBeneath, PathFd,
    RestrictionStatus, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetError, Scope,
};

use super::{Plan, Report, SandboxError};

/// The newest ABI whose rights keyward uses: 6 adds signal and abstract-socket scoping.
const WANTED: ABI = ABI::V6;

pub(super) fn apply(plan: &Plan, report: &mut Report) -> Result<(), SandboxError> {
    let status = restrict(plan).map_err(|err| SandboxError::Failed(format!("Landlock: {err}")))?;
    let abi = match status.landlock {
        LandlockStatus::Available { effective_abi, .. } => effective_abi,
        LandlockStatus::NotEnabled => {
            report.missing.push(
                "Landlock is built into this kernel but not enabled (add landlock to the lsm= \
                 boot parameter): keyward can open any file its user can, and reach any port"
                    .into(),
            );
            ABI::Unsupported
        }
        LandlockStatus::NotImplemented => {
            report.missing.push(
                "this kernel has no Landlock (Linux 5.13 or later with CONFIG_SECURITY_LANDLOCK): \
                 keyward can open any file its user can, and reach any port"
                    .into(),
            );
            ABI::Unsupported
        }
    };
    if status.no_new_privs {
        report.applied.push("no_new_privs".into());
    } else {
        report
            .missing
            .push("no_new_privs could not be set: a set-uid program could gain privileges".into());
    }
    if abi == ABI::Unsupported {
        return Ok(());
    }
    report.applied.push(format!(
        "Landlock ABI {}: files under {} (read-write) and {} more paths read-only",
        abi as i32,
        plan.writable
            .iter()
            .map(|path| path.display().to_string())
            .collect::<Vec<_>>()
            .join(" and "),
        plan.readable.len()
    ));
    report.missing.extend(gaps(abi));
    if abi >= ABI::V4 {
        report.applied.push(format!(
            "TCP connect only to port {}, bind only to port {}",
            list(&plan.connect),
            list(&plan.bind)
        ));
    }
    Ok(())
}

/// What stays open on a kernel whose Landlock stops at `abi`, one sentence per missing ABI.
fn gaps(abi: ABI) -> Vec<String> {
    [
        (
            ABI::V2,
            "renaming files across directories is not restricted (needs Landlock ABI 2, Linux 5.19)",
        ),
        (ABI::V3, "truncating files is not restricted (needs Landlock ABI 3, Linux 6.2)"),
        (
            ABI::V4,
            "TCP ports are not restricted: keyward can connect anywhere (needs Landlock ABI 4, \
             Linux 6.7)",
        ),
        (ABI::V5, "ioctl on device files is not restricted (needs Landlock ABI 5, Linux 6.10)"),
        (
            ABI::V6,
            "signals and abstract Unix sockets outside keyward are not restricted (needs Landlock \
             ABI 6, Linux 6.12)",
        ),
    ]
    .into_iter()
    .filter(|(needed, _)| abi < *needed)
    .map(|(_, gap)| gap.to_owned())
    .collect()
}

fn list(ports: &[u16]) -> String {
    if ports.is_empty() {
        return "none".into();
    }
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn restrict(plan: &Plan) -> Result<RestrictionStatus, RulesetError> {
    let all = AccessFs::from_all(WANTED);
    let read = AccessFs::from_read(WANTED);
    let device = AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::IoctlDev;
    let mut ruleset = Ruleset::default()
        .handle_access(all)?
        .handle_access(AccessNet::from_all(WANTED))?
        .scope(Scope::AbstractUnixSocket | Scope::Signal)?
        .create()?;
    // Paths that do not exist (no /lib64 here, no /etc/gai.conf there) are skipped: nothing can be
    // opened there anyway, and the sandbox allows no directory to be created outside the home.
    let rules = [
        (&plan.writable, all),
        (&plan.readable, read),
        (&plan.devices, device),
    ];
    for (paths, access) in rules {
        for path in paths.iter().filter_map(open) {
            // A file gets the file rights of its directory's set; Landlock refuses directory
            // rights on a file.
            let access = if path.1 {
                access
            } else {
                access & AccessFs::from_file(WANTED)
            };
            ruleset = ruleset.add_rule(PathBeneath::new(path.0, access))?;
        }
    }
    for &port in &plan.connect {
        ruleset = ruleset.add_rule(NetPort::new(port, AccessNet::ConnectTcp))?;
    }
    for &port in &plan.bind {
        ruleset = ruleset.add_rule(NetPort::new(port, AccessNet::BindTcp))?;
    }
    ruleset.restrict_self()
}

/// An open handle on `path` and whether it is a directory, or `None` when it does not exist.
fn open(path: &PathBuf) -> Option<(PathFd, bool)> {
    let directory = std::fs::metadata(path).ok()?.is_dir();
    Some((PathFd::new(path).ok()?, directory))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_missing_abi_is_reported_once_and_a_current_kernel_misses_nothing() {
        assert!(gaps(ABI::V6).is_empty());
        assert!(gaps(ABI::V7).is_empty());
        let old = gaps(ABI::V3);
        assert_eq!(old.len(), 3, "{old:?}");
        assert!(old[0].starts_with("TCP ports are not restricted"));
        assert_eq!(gaps(ABI::V1).len(), 5);
    }
}
