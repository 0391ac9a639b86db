//! Locking the wallet: `keyward lock` over the approver socket, and the server locking itself when
//! stdin closes or it is told to stop. (The idle timeout and what a lock leaves in memory:
//! `memory.rs`.)

use std::io::Read as _;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::mcp::{FIXTURE_PASSWORD, ServerHome, config_text};
use crate::support::{OutputExt, Scratch, keyward_command, run_detached};

/// A `keyward serve` child unlocked from a password file, with stdin held open, logging at info.
struct Serving {
    child: Child,
    home: ServerHome,
}

impl Serving {
    fn start() -> Self {
        // Nothing listens on the discard port: the server warns that its RPC is down and serves on.
        let home = ServerHome::with_config(&config_text("http://127.0.0.1:9", 31337));
        let password = home.path().join("password");
        std::fs::write(&password, format!("{FIXTURE_PASSWORD}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();
        let child = keyward_command()
            .env("RUST_LOG", "info")
            .arg("--home")
            .arg(home.path())
            .arg("serve")
            .arg("--password-file")
            .arg(&password)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let serving = Self { child, home };
        serving.wait_for_socket();
        serving
    }

    fn wait_for_socket(&self) {
        let socket = self.home.path().join("approve.sock");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "keyward serve did not open {}",
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn lock(&self) -> std::process::Output {
        let mut command = keyward_command();
        command.arg("--home").arg(self.home.path()).arg("lock");
        run_detached(command)
    }

    /// Waits for the server to exit and returns its stderr and its home.
    fn finish(mut self) -> (String, ServerHome) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "keyward serve did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (stderr, self.home)
    }
}

/// The `reason` of every `lock` entry in the home's audit log, in order.
fn lock_reasons(home: &Path) -> Vec<String> {
    std::fs::read_to_string(home.join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|entry| entry["kind"] == "lock")
        .map(|entry| entry["detail"]["reason"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn keyward_lock_without_a_server_says_nothing_runs() {
    let scratch = Scratch::new();
    scratch
        .run(&["lock"])
        .assert_error("no keyward serve is running for this wallet");
}

#[test]
fn keyward_lock_locks_the_running_server_then_reports_it_was_already_locked() {
    let serving = Serving::start();
    let first = serving.lock();
    first.assert_success();
    assert!(
        first.stdout_text().starts_with("Locked: "),
        "{}",
        first.stdout_text()
    );
    let second = serving.lock();
    second.assert_success();
    assert_eq!(second.stdout_text(), "The wallet was already locked.\n");
    assert_eq!(lock_reasons(serving.home.path()), ["requested"]);

    // Already locked: closing stdin adds no second entry.
    let mut serving = serving;
    drop(serving.child.stdin.take());
    let (stderr, home) = serving.finish();
    assert!(stderr.contains("wallet locked (requested)"), "{stderr}");
    assert!(!stderr.contains("wallet locked (stdin_closed)"), "{stderr}");
    assert_eq!(lock_reasons(home.path()), ["requested"]);
}

#[test]
fn closing_stdin_locks_the_wallet_before_the_server_exits() {
    let mut serving = Serving::start();
    drop(serving.child.stdin.take());
    let (stderr, home) = serving.finish();
    assert!(stderr.contains("wallet locked (stdin_closed)"), "{stderr}");
    assert_eq!(lock_reasons(home.path()), ["stdin_closed"]);
}

#[test]
fn sigterm_locks_the_wallet_before_the_server_exits() {
    let serving = Serving::start();
    let pid = rustix::process::Pid::from_child(&serving.child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let (stderr, home) = serving.finish();
    assert!(stderr.contains("stopping on SIGTERM"), "{stderr}");
    assert!(stderr.contains("wallet locked (shutdown)"), "{stderr}");
    assert_eq!(lock_reasons(home.path()), ["shutdown"]);
}
