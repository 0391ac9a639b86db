//! keyward's own sandbox for `keyward serve` on Linux, applied once start-up is done: the config
//! is read, the vault's lock is held, and the approval page, the approver's socket and the HTTP
//! listener are bound. From then on a compromised keyward can do little beyond serving the wallet.
//!
//! Four layers, each applied as far as the running kernel allows; every layer the kernel lacks is
//! reported once in the log, and keyward carries on without it:
//! - **rlimits** ([`limits`]): no core dumps, a cap on address space and on open files;
//! - **no_new_privs**: no set-uid or file capability can raise privileges again;
//! - **Landlock** ([`landlock`]): files only under keyward's own directories and what DNS, TLS and
//!   HID need, read-only where writing is never needed; TCP connections only to the configured RPC,
//!   proxy and Speculos ports, TCP binds only to the ports already bound; no signals or abstract
//!   sockets outside the process;
//! - **seccomp** ([`seccomp`]): only the system calls keyward makes. Any other, `execve` and
//!   `ptrace` among them, ends the process with SIGSYS at once; the kernel logs it (an audit record
//!   of type 1326, `SECCOMP`, naming the call's number).
//!
//! A denied file or port fails with `EACCES`, like any other permission error: the request that
//! met it gets a clear error, is logged, and every other request carries on.
//!
//! Landlock restricts only the thread that applies it and the threads it starts later (until the
//! kernel's ABI 8 can restrict all threads at once), so [`apply`] refuses to run while keyward has
//! more than one thread.

pub mod landlock;
pub mod limits;
pub mod seccomp;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::config::{Config, LedgerTransport};
use crate::home::Home;

/// What the sandboxed server may still reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Directories keyward reads and writes: its data and state directories.
    pub writable: Vec<PathBuf>,
    /// Files and directories keyward only reads: its config, and what DNS and TLS need.
    pub readable: Vec<PathBuf>,
    /// Device files beneath these directories may be opened for reading, writing and ioctl: `/dev`
    /// for a Ledger over USB HID, whose node appears anew each time its app opens.
    pub devices: Vec<PathBuf>,
    /// TCP ports keyward may connect to.
    pub connect: Vec<u16>,
    /// TCP ports keyward may bind: those it has bound already.
    pub bind: Vec<u16>,
}

/// Files a resolver reads to turn a host name into addresses (glibc's NSS), and the libraries it
/// loads for that.
const RESOLVER_FILES: &[&str] = &[
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/ld.so.cache",
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
];

/// What HID enumeration reads (hidapi's hidraw backend goes through libudev).
const HID_FILES: &[&str] = &["/sys", "/run/udev"];

impl Plan {
    /// The plan for `keyward serve` with this home and config, once it listens on `bound`.
    pub fn for_server(
        home: &Home,
        config_path: &Path,
        config: &Config,
        bound: &[SocketAddr],
    ) -> Self {
        let mut plan = Self {
            writable: vec![home.data_dir().to_owned(), home.state_dir().to_owned()],
            readable: vec![home.config_dir().to_owned(), config_path.to_owned()],
            bind: bound.iter().map(SocketAddr::port).collect(),
            ..Self::default()
        };
        let mut urls: Vec<&url::Url> = config
            .networks()
            .iter()
            .map(|network| network.rpc_url.expose_url())
            .collect();
        urls.extend(config.privacy.proxy.as_ref());
        let mut names = false;
        for url in urls {
            plan.connect.extend(url.port_or_known_default());
            names |= matches!(url.host(), Some(url::Host::Domain(_)));
        }
        match &config.ledger.transport {
            LedgerTransport::Speculos(address) => plan.connect.push(address.port()),
            LedgerTransport::Hid if cfg!(feature = "hid") => {
                plan.devices.push("/dev".into());
                plan.readable.extend(HID_FILES.iter().map(PathBuf::from));
            }
            LedgerTransport::Hid | LedgerTransport::Emulator(_) => {}
        }
        if names {
            // A resolver falls back to TCP for long answers.
            plan.connect.push(53);
            plan.readable
                .extend(RESOLVER_FILES.iter().map(PathBuf::from));
        }
        // No certificate files: the HTTP client loads the trusted authorities when it is built,
        // before the sandbox (privacy::egress).
        // With --home, data, config and state are one directory.
        plan.writable.dedup();
        plan.readable.retain(|path| !plan.writable.contains(path));
        plan.connect.sort_unstable();
        plan.connect.dedup();
        plan.bind.sort_unstable();
        plan.bind.dedup();
        plan
    }
}

/// How far the sandbox got on this kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The layers in force, in words, for the log.
    pub applied: Vec<String>,
    /// What this kernel lacks, each in a sentence that says what stays open.
    pub missing: Vec<String>,
}

impl Report {
    /// Writes the report to the log: one line for what is on, one warning per missing layer.
    pub fn log(&self) {
        tracing::info!("sandbox on: {}", self.applied.join("; "));
        for missing in &self.missing {
            tracing::warn!("sandbox: {missing}");
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "cannot sandbox keyward: it already runs {0} threads, and Landlock would restrict only \
         one of them; this is a bug in keyward, please report it (or run with --no-sandbox, which \
         is unsafe)"
    )]
    Threads(usize),
    #[error("cannot sandbox keyward: {0}; run with --no-sandbox to go on without it (unsafe)")]
    Failed(String),
}

/// Applies every layer to this process, for good. Must be called while keyward has one thread.
pub fn apply(plan: &Plan) -> Result<Report, SandboxError> {
    let threads = thread_count();
    if threads > 1 {
        return Err(SandboxError::Threads(threads));
    }
    let mut report = Report {
        applied: Vec::new(),
        missing: Vec::new(),
    };
    limits::apply(&mut report)?;
    landlock::apply(plan, &mut report)?;
    seccomp::apply(&mut report)?;
    Ok(report)
}

/// How many threads this process runs, from `/proc/self/task`; 1 when that cannot be read (then
/// nothing else can tell either, and keyward starts no thread before the sandbox).
fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(1, |tasks| tasks.count())
}

/// A debug-build hook for the sandbox's own tests: `KEYWARD_SANDBOX_PROBE` lists attempts that a
/// compromised keyward might make (`read:PATH`, `connect:ADDRESS`, `exec:PATH`), or that the Ledger
/// transport makes (`hid:` lists the HID devices), separated by commas,, which the server makes once it is sandboxed, logging each outcome. Release builds have
/// no such hook.
#[cfg(debug_assertions)]
pub fn run_probes() {
    let Some(probes) = std::env::var_os("KEYWARD_SANDBOX_PROBE") else {
        return;
    };
    for probe in probes.to_string_lossy().split(',') {
        let outcome = match probe.split_once(':') {
            Some(("read", path)) => std::fs::read(path).map(|_| ()),
            Some(("connect", address)) => std::net::TcpStream::connect(address).map(|_| ()),
            #[cfg(feature = "hid")]
            Some(("hid", _)) => keyward_hardware::hid::list_devices()
                .map(|devices| tracing::warn!("sandbox probe hid: {} Ledgers", devices.len()))
                .map_err(|err| std::io::Error::other(err.to_string())),
            Some(("exec", path)) => {
                use std::os::unix::process::CommandExt as _;
                Err(std::process::Command::new(path).exec())
            }
            _ => Err(std::io::Error::other("unknown probe")),
        };
        match outcome {
            Ok(()) => tracing::warn!("sandbox probe {probe}: allowed"),
            Err(err) => tracing::warn!("sandbox probe {probe}: refused ({err})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(config: &str) -> Plan {
        let home = Home::single(Path::new("/home/user/.keyward")).unwrap();
        let config = Config::parse(config, "keyward.toml").unwrap();
        let bound = ["127.0.0.1:8787".parse().unwrap()];
        Plan::for_server(&home, Path::new("/etc/keyward.toml"), &config, &bound)
    }

    #[test]
    fn a_loopback_node_by_address_needs_its_port_and_nothing_of_dns_or_tls() {
        let plan = plan(
            "[[networks]]\nname = \"local\"\nchain_id = 31337\nrpc_url = \"http://127.0.0.1:8545\"\n\
             [ledger]\ntransport = \"emulator\"\n",
        );
        assert_eq!(plan.writable, [PathBuf::from("/home/user/.keyward")]);
        assert_eq!(plan.readable, [PathBuf::from("/etc/keyward.toml")]);
        assert!(plan.devices.is_empty());
        assert_eq!(plan.connect, [8545]);
        assert_eq!(plan.bind, [8787]);
    }

    #[test]
    fn a_named_https_node_a_proxy_and_speculos_each_add_what_they_need() {
        let plan = plan(
            "[[networks]]\nname = \"main\"\nchain_id = 1\nrpc_url = \"https://rpc.example.org\"\n\
             [privacy]\nproxy = \"http://127.0.0.1:3128\"\n\
             [ledger]\ntransport = \"speculos\"\nspeculos_address = \"127.0.0.1:9999\"\n",
        );
        assert_eq!(plan.connect, [53, 443, 3128, 9999]);
        assert!(plan.readable.contains(&PathBuf::from("/etc/resolv.conf")));
        assert!(
            !plan
                .readable
                .iter()
                .any(|path| path.starts_with("/etc/ssl"))
        );
        assert!(plan.devices.is_empty());
    }

    #[test]
    fn a_ledger_over_hid_opens_device_files_and_what_enumeration_reads() {
        let plan = plan(
            "[[networks]]\nname = \"local\"\nchain_id = 31337\nrpc_url = \"http://127.0.0.1:8545\"\n",
        );
        if cfg!(feature = "hid") {
            assert_eq!(plan.devices, [PathBuf::from("/dev")]);
            assert!(plan.readable.contains(&PathBuf::from("/sys")));
        } else {
            assert!(plan.devices.is_empty());
        }
    }
}
