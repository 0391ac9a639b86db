//! The seccomp layer: the system calls keyward makes, and nothing else.
//!
//! Two filters. The first answers `clone3` with `ENOSYS`, so that new threads are made with
//! `clone` (glibc falls back by itself), whose flags a filter can read. The second allows the calls
//! below, some only with certain arguments, and ends the process with SIGSYS on any other call: a
//! kill, not an error, because code that makes a call keyward never makes is not keyward's code.
//! The kernel logs each kill (an audit record of type 1326, `SECCOMP`, with the call's number).
//!
//! The list holds what Rust's std, tokio, hyper, rustls, glibc (with its resolver) and hidapi call
//! on Linux. Every test that starts the real binary runs under it, and `scripts/test` runs the
//! fund-movement and Ledger suites against it too: a call missing here ends the server and fails
//! them.

use std::collections::BTreeMap;

use seccompiler::{
    BackendError, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

use super::{Report, SandboxError};

/// Calls allowed with any arguments.
const ALLOWED: &[libc::c_long] = &[
    // Files, in keyward's own directories (Landlock decides which).
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_preadv,
    libc::SYS_pwritev,
    libc::SYS_close,
    libc::SYS_close_range,
    libc::SYS_openat,
    libc::SYS_fstat,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_lseek,
    libc::SYS_fsync,
    libc::SYS_fdatasync,
    libc::SYS_ftruncate,
    libc::SYS_renameat,
    libc::SYS_renameat2,
    libc::SYS_unlinkat,
    libc::SYS_mkdirat,
    libc::SYS_fchmod,
    libc::SYS_fchmodat,
    libc::SYS_flock,
    libc::SYS_fcntl,
    libc::SYS_dup,
    libc::SYS_dup3,
    libc::SYS_getdents64,
    libc::SYS_readlinkat,
    libc::SYS_faccessat,
    libc::SYS_faccessat2,
    libc::SYS_getcwd,
    libc::SYS_statfs,
    libc::SYS_fstatfs,
    // Memory, including mlock for decrypted secrets.
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mprotect,
    libc::SYS_mremap,
    libc::SYS_madvise,
    libc::SYS_mlock,
    libc::SYS_mlock2,
    libc::SYS_munlock,
    libc::SYS_brk,
    libc::SYS_membarrier,
    // The event loop.
    libc::SYS_epoll_create1,
    libc::SYS_epoll_ctl,
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_pwait2,
    libc::SYS_eventfd2,
    libc::SYS_ppoll,
    libc::SYS_pselect6,
    libc::SYS_pipe2,
    // Sockets (Landlock decides which TCP ports).
    libc::SYS_socketpair,
    libc::SYS_connect,
    libc::SYS_accept4,
    libc::SYS_bind,
    libc::SYS_listen,
    libc::SYS_getsockname,
    libc::SYS_getpeername,
    libc::SYS_setsockopt,
    libc::SYS_getsockopt,
    libc::SYS_sendto,
    libc::SYS_recvfrom,
    libc::SYS_sendmsg,
    libc::SYS_recvmsg,
    libc::SYS_sendmmsg,
    libc::SYS_recvmmsg,
    libc::SYS_shutdown,
    // Threads (clone is below), time, signals, identity.
    libc::SYS_clone3,
    libc::SYS_futex,
    libc::SYS_set_robust_list,
    libc::SYS_get_robust_list,
    libc::SYS_rseq,
    libc::SYS_set_tid_address,
    libc::SYS_sched_yield,
    libc::SYS_sched_getaffinity,
    libc::SYS_getcpu,
    libc::SYS_gettid,
    libc::SYS_getpid,
    libc::SYS_getppid,
    libc::SYS_tgkill,
    libc::SYS_exit,
    libc::SYS_exit_group,
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    libc::SYS_sigaltstack,
    libc::SYS_restart_syscall,
    libc::SYS_nanosleep,
    libc::SYS_clock_nanosleep,
    libc::SYS_clock_gettime,
    libc::SYS_clock_getres,
    libc::SYS_gettimeofday,
    libc::SYS_getrandom,
    libc::SYS_uname,
    libc::SYS_sysinfo,
    libc::SYS_getuid,
    libc::SYS_geteuid,
    libc::SYS_getgid,
    libc::SYS_getegid,
    libc::SYS_getresuid,
    libc::SYS_getresgid,
];

/// The older calls that x86-64 still has beside their `*at` forms, which glibc and Rust's std
/// make there.
#[cfg(target_arch = "x86_64")]
const ALLOWED_LEGACY: &[libc::c_long] = &[
    libc::SYS_open,
    libc::SYS_stat,
    libc::SYS_lstat,
    libc::SYS_access,
    libc::SYS_rename,
    libc::SYS_unlink,
    libc::SYS_mkdir,
    libc::SYS_rmdir,
    libc::SYS_chmod,
    libc::SYS_readlink,
    libc::SYS_pipe,
    libc::SYS_dup2,
    libc::SYS_poll,
    libc::SYS_select,
    libc::SYS_epoll_wait,
    libc::SYS_accept,
    libc::SYS_getrlimit,
    libc::SYS_time,
];
#[cfg(not(target_arch = "x86_64"))]
const ALLOWED_LEGACY: &[libc::c_long] = &[];

/// Socket families: Unix (the approver's socket), IPv4 and IPv6, and netlink (glibc's resolver
/// asks the kernel which address families are configured).
const SOCKET_FAMILIES: &[libc::c_int] = &[
    libc::AF_UNIX,
    libc::AF_INET,
    libc::AF_INET6,
    libc::AF_NETLINK,
];

/// `prctl` operations: naming a thread, and reading names.
const PRCTL_OPTIONS: &[libc::c_int] = &[libc::PR_SET_NAME, libc::PR_GET_NAME];

/// `ioctl` requests never allowed, on any file: pushing input into a terminal, or a console's
/// private operations (the classic way out of a terminal sandbox).
const IOCTL_DENIED: &[libc::c_ulong] = &[libc::TIOCSTI, libc::TIOCLINUX];

pub(super) fn apply(report: &mut Report) -> Result<(), SandboxError> {
    let Ok(arch) = TargetArch::try_from(std::env::consts::ARCH) else {
        report.missing.push(format!(
            "seccomp has no system call list for {}: keyward can make any system call",
            std::env::consts::ARCH
        ));
        return Ok(());
    };
    let rules = rules().map_err(|err| failed(&err))?;
    let allowed = rules.len();
    let (no_clone3, allowlist) = filters(arch, rules).map_err(|err| failed(&err))?;
    for filter in [&no_clone3, &allowlist] {
        seccompiler::apply_filter(filter).map_err(|err| failed(&err))?;
    }
    report.applied.push(format!(
        "seccomp: {allowed} system calls allowed, any other ends keyward with SIGSYS"
    ));
    Ok(())
}

fn failed(err: &dyn std::fmt::Display) -> SandboxError {
    SandboxError::Failed(format!("seccomp: {err}"))
}

/// The allowlist: each call allowed with any arguments, or only with the arguments its rules name.
pub fn rules() -> Result<BTreeMap<i64, Vec<SeccompRule>>, BackendError> {
    use SeccompCmpArgLen::{Dword, Qword};
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = ALLOWED
        .iter()
        .chain(ALLOWED_LEGACY)
        .map(|&call| (call, Vec::new()))
        .collect();
    // Threads only: a new process (fork, or a clone without CLONE_THREAD) is refused.
    let thread = libc::CLONE_THREAD as u64;
    let clone = SeccompCondition::new(0, Qword, SeccompCmpOp::MaskedEq(thread), thread)?;
    rules.insert(libc::SYS_clone, vec![SeccompRule::new(vec![clone])?]);
    let families = SOCKET_FAMILIES.iter().map(|family| family.unsigned_abs());
    rules.insert(libc::SYS_socket, first_argument_one_of(families)?);
    let options = PRCTL_OPTIONS.iter().map(|option| option.unsigned_abs());
    rules.insert(libc::SYS_prctl, first_argument_one_of(options)?);
    // Reading limits only: the new-limit pointer must be null.
    let read_only = SeccompCondition::new(2, Qword, SeccompCmpOp::Eq, 0)?;
    rules.insert(
        libc::SYS_prlimit64,
        vec![SeccompRule::new(vec![read_only])?],
    );
    let requests = IOCTL_DENIED
        .iter()
        .map(|&request| SeccompCondition::new(1, Dword, SeccompCmpOp::Ne, request))
        .collect::<Result<_, _>>()?;
    rules.insert(libc::SYS_ioctl, vec![SeccompRule::new(requests)?]);
    Ok(rules)
}

/// Rules that match when the first argument, a 32-bit int, is one of `values`.
fn first_argument_one_of(
    values: impl Iterator<Item = u32>,
) -> Result<Vec<SeccompRule>, BackendError> {
    values
        .map(|value| {
            let equal =
                SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, value.into())?;
            SeccompRule::new(vec![equal])
        })
        .collect()
}

/// The two filters, compiled: `clone3` refused with `ENOSYS`, then the allowlist of `rules`.
pub fn filters(
    arch: TargetArch,
    rules: BTreeMap<i64, Vec<SeccompRule>>,
) -> Result<(BpfProgram, BpfProgram), BackendError> {
    let errno = SeccompAction::Errno(libc::ENOSYS.unsigned_abs());
    let no_clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        errno,
        arch,
    )?
    .try_into()?;
    let allowlist = SeccompFilter::new(
        rules,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        arch,
    )?
    .try_into()?;
    Ok((no_clone3, allowlist))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filters_compile_for_every_architecture_keyward_lists_calls_for() {
        for arch in [TargetArch::x86_64, TargetArch::aarch64] {
            let (no_clone3, allowlist) = filters(arch, rules().unwrap()).unwrap();
            assert!(!no_clone3.is_empty());
            assert!(allowlist.len() > ALLOWED.len(), "{arch:?}");
        }
    }

    #[test]
    fn nothing_that_starts_programs_or_reads_other_processes_is_listed() {
        for call in [
            libc::SYS_execve,
            libc::SYS_execveat,
            libc::SYS_ptrace,
            libc::SYS_process_vm_readv,
            libc::SYS_process_vm_writev,
            libc::SYS_kill,
            libc::SYS_mount,
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_bpf,
            libc::SYS_userfaultfd,
        ] {
            assert!(
                !ALLOWED.contains(&call) && !ALLOWED_LEGACY.contains(&call),
                "{call}"
            );
        }
    }
}
