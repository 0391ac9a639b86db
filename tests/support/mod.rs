//! Shared test support: a scratch home, the keyward binary, a pseudo-terminal, outside tools.

pub(crate) mod anvil;
pub(crate) mod canary;
pub(crate) mod faultproxy;
pub(crate) mod human;
pub(crate) mod mcp;
pub(crate) mod proxy;
pub(crate) mod pty;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub(crate) use pty::Session;

/// A strong password that passes keyward's strength check.
pub(crate) const PASSWORD: &str = "orchid velvet canyon seventeen";

/// A scratch directory used as `--home`, plus a separate directory for the test's own input files
/// (password files), which the canary scan must not count as keyward's output.
pub(crate) struct Scratch {
    pub(crate) home: PathBuf,
    pub(crate) inputs: PathBuf,
    _root: tempfile::TempDir,
}

impl Scratch {
    pub(crate) fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("home");
        let inputs = root.path().join("inputs");
        fs::create_dir_all(&inputs).unwrap();
        Self {
            home,
            inputs,
            _root: root,
        }
    }

    pub(crate) fn vault(&self) -> PathBuf {
        self.home.join("vault.json")
    }

    /// Writes a password file with the given mode.
    pub(crate) fn password_file(&self, name: &str, password: &str, mode: u32) -> PathBuf {
        let path = self.inputs.join(name);
        fs::write(&path, format!("{password}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    /// `keyward --home HOME ARGS...`, with a clean environment.
    pub(crate) fn keyward(&self, args: &[&str]) -> Command {
        let mut command = keyward_command();
        command.arg("--home").arg(&self.home).args(args);
        command
    }

    /// Runs keyward without a terminal and with stdin closed.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        run_detached(self.keyward(args))
    }

    /// Runs keyward with a pseudo-terminal as its controlling terminal.
    pub(crate) fn session(&self, args: &[&str], stdin: pty::Stdin) -> Session {
        Session::spawn(self.keyward(args), stdin)
    }

    /// Every file under the home directory, with its bytes.
    pub(crate) fn home_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        files_under(&self.home)
    }
}

/// Every regular file under `dir`, with its bytes.
pub(crate) fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    collect_files(dir, &mut found);
    found
}

fn collect_files(dir: &Path, found: &mut Vec<(PathBuf, Vec<u8>)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_files(&path, found);
        } else if path.is_file() {
            // Not a socket such as a running server's approve.sock, which cannot be read.
            found.push((path.clone(), fs::read(&path).unwrap()));
        }
    }
}

/// The keyward binary with an environment that cannot leak in settings from the developer's
/// shell, logging everything at trace level.
pub(crate) fn keyward_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyward"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent-keyward-test-home")
        .env("RUST_LOG", "trace")
        .env("LANG", "C.UTF-8");
    command
}

/// Runs a command in its own session (so it has no controlling terminal) with stdin closed.
pub(crate) fn run_detached(mut command: Command) -> Output {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // `setsid` leaves the child without a controlling terminal even when the test runner has one.
    let mut detached = Command::new("setsid");
    detached
        .arg("--wait")
        .arg(command.get_program())
        .args(command.get_args());
    detached.env_clear();
    for (key, value) in command.get_envs() {
        if let Some(value) = value {
            detached.env(key, value);
        }
    }
    detached
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

/// What a finished command printed, for assertions with readable failures.
pub(crate) trait OutputExt {
    fn stdout_text(&self) -> String;
    fn stderr_text(&self) -> String;
    /// Exited 0.
    fn assert_success(&self) -> &Self;
    /// Exited 1 with a clear error (no panic, no signal) whose text contains `expected`.
    fn assert_error(&self, expected: &str) -> &Self;
}

impl OutputExt for Output {
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    fn assert_success(&self) -> &Self {
        assert!(
            self.status.success(),
            "expected success, got {:?}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout_text(),
            self.stderr_text()
        );
        self
    }

    fn assert_error(&self, expected: &str) -> &Self {
        let stderr = self.stderr_text();
        assert_eq!(
            self.status.code(),
            Some(1),
            "expected exit code 1, got {:?}\nstderr:\n{stderr}",
            self.status
        );
        assert_no_panic(&stderr);
        let error_line = stderr
            .lines()
            .find(|line| line.starts_with("error: "))
            .unwrap_or_else(|| panic!("no `error:` line in stderr:\n{stderr}"));
        assert!(
            error_line.contains(expected),
            "error line does not contain {expected:?}:\n{error_line}"
        );
        self
    }
}

pub(crate) fn assert_no_panic(stderr: &str) {
    assert!(
        !stderr.contains("panicked") && !stderr.contains("internal error"),
        "keyward panicked:\n{stderr}"
    );
}

/// The shared test vectors folder, or `None` (with the reason printed) when it is absent.
pub(crate) fn shared_vectors() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!(
            "skipped: {} is absent; these vectors live outside the repository",
            dir.display()
        );
        None
    }
}

/// A Foundry tool from `anvil/node_modules` (see [`required_tool`]).
pub(crate) fn foundry_tool(name: &str) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("anvil/node_modules");
    required_tool(
        name,
        &[
            root.join(format!("@foundry-rs/{name}-linux-amd64/bin/{name}")),
            root.join(format!("@foundry-rs/{name}-linux-arm64/bin/{name}")),
            root.join(format!(".bin/{name}")),
        ],
        "run `npm ci --prefix anvil` (the test command does this)",
    )
}

/// The first of `candidates` that exists. When none does the test is skipped with the reason
/// printed, unless `KEYWARD_REQUIRE_TOOLS=1` (set by the CI command), in which case it fails.
pub(crate) fn required_tool(what: &str, candidates: &[PathBuf], how: &str) -> Option<PathBuf> {
    if let Some(found) = candidates.iter().find(|path| path.is_file()) {
        return Some(found.clone());
    }
    let reason = format!("{what} is not installed: {how}");
    if std::env::var_os("KEYWARD_REQUIRE_TOOLS").is_some_and(|v| v == "1") {
        panic!("{reason}");
    }
    println!("skipped: {reason}");
    None
}
pub(crate) mod authproxy;
