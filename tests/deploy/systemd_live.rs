//! `config/systemd/keyward.service` run for real: a `systemd --user` manager, started by
//! `systemd-user.sh` in a private mount namespace because this machine's PID 1 is not systemd,
//! starts the unit on a home holding the fixture wallet, and the test checks from outside that
//! keyward serves MCP over HTTP from the chain, was unlocked by the credential, answers the
//! approver socket, and cannot see what the unit hides.
//!
//! Standing in for PID 1 takes root (mounts, control groups, another uid); elsewhere the test
//! prints why it skips.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use keyward::http::tokens::TokenStore;
use serde_json::Value;

use super::{repo, unit_file};
use crate::support::anvil::{Anvil, DEPLOYER, fixtures};
use crate::support::human::http;
use crate::support::mcp::{FIXTURE_PASSWORD, config_text};
use crate::support::required_tool;

const SCRIPT: &str = include_str!("systemd-user.sh");
/// Where the script mounts the user's home inside its namespace.
const HOME: &str = "/home/keyward-test";

/// The manager and its unit, stopped (by the script) when stdin closes.
struct UserManager {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl UserManager {
    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    }

    fn ask(&mut self, command: &str) -> String {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{command}").unwrap();
        stdin.flush().unwrap();
        self.line()
    }
}

impl Drop for UserManager {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

fn write_private(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn chown_tree(path: &Path, uid: u32) {
    chown(path, Some(uid), Some(uid)).unwrap();
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid);
        }
    }
}

/// POSTs one JSON-RPC message to the MCP endpoint, returning the status, the session id and the
/// first JSON-RPC message of the answer (JSON or SSE).
fn mcp(url: &str, token: &str, session: Option<&str>, body: &str) -> (u16, Option<String>, Value) {
    let authorization = format!("Bearer {token}");
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("Authorization", authorization.as_str()),
    ];
    if let Some(session) = session {
        headers.push(("Mcp-Session-Id", session));
        headers.push(("MCP-Protocol-Version", "2025-06-18"));
    }
    let response = http("POST", url, &headers, Some(body));
    let message = response
        .body
        .lines()
        .map(|line| line.strip_prefix("data:").unwrap_or(line).trim())
        .find(|data| data.starts_with('{'))
        .map(|data| serde_json::from_str(data).unwrap())
        .unwrap_or(Value::Null);
    let session = response.header("mcp-session-id").map(str::to_owned);
    (response.status, session, message)
}

/// Mount options of the mount at exactly `target` in a process's mountinfo (the last one wins,
/// as the last mounted covers the others).
fn mount_options(mountinfo: &str, target: &str) -> Option<String> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.get(4) == Some(&target)).then(|| fields[5].to_owned())
        })
        .next_back()
}

#[test]
fn the_user_unit_serves_unlocked_and_sandboxed_under_a_real_user_manager() {
    if !rustix::process::geteuid().is_root() {
        println!(
            "skipped: standing in for systemd as PID 1 (mounts, control groups, a second uid) \
             takes root; config/systemd/README.md says how to run the unit yourself"
        );
        return;
    }
    let how = "install Debian's systemd package (the test command does)";
    let Some(_) = required_tool("systemd", &[PathBuf::from("/lib/systemd/systemd")], how) else {
        return;
    };
    let Some(_) = required_tool(
        "unshare and setpriv (util-linux)",
        &[
            PathBuf::from("/usr/bin/unshare"),
            PathBuf::from("/usr/bin/setpriv"),
        ],
        "install Debian's util-linux package",
    ) else {
        return;
    };
    let Some(anvil) = Anvil::shared() else {
        return;
    };

    // A uid of its own, with no passwd entry: nothing else on the machine owns its files.
    let uid = 50_000 + std::process::id() % 10_000;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let scratch = tempfile::tempdir().unwrap();
    let home = scratch.path().join("home");
    let data = home.join(".local/share/keyward");
    let state = home.join(".local/state/keyward");
    write_private(
        &home.join(".config/keyward/keyward.toml"),
        config_text(&anvil.url, 31337).as_bytes(),
    );
    write_private(
        &home.join(".config/credstore/keyward-password"),
        format!("{FIXTURE_PASSWORD}\n").as_bytes(),
    );
    write_private(
        &data.join("vault.json"),
        &std::fs::read(fixtures().join("anvil-wallet/vault.json")).unwrap(),
    );
    let token = TokenStore::new(&data).create("deploy-test", 0).unwrap();
    let token = token.as_str();
    std::fs::create_dir_all(&state).unwrap();
    write_private(
        &home.join(".ssh/id_ed25519"),
        b"a canary keyward must not see\n",
    );
    write_private(&home.join(".cargo/bin/keyward"), b"");
    let units = home.join(".config/systemd/user");
    write_private(
        &units.join("keyward.service"),
        &std::fs::read(unit_file()).unwrap(),
    );
    // The only change for the test: a free port, and the log in a file (no journald here).
    write_private(
        &units.join("keyward.service.d/test.conf"),
        format!(
            "[Service]\nEnvironment=KEYWARD_HTTP_ADDR=127.0.0.1:{port}\n\
             StandardOutput=append:{HOME}/work/service.log\n\
             StandardError=append:{HOME}/work/service.log\n"
        )
        .as_bytes(),
    );
    std::fs::create_dir_all(home.join("work")).unwrap();
    chown_tree(&home, uid);

    let mut child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "bash", "-c"])
        .arg(SCRIPT)
        .arg("systemd-user")
        .arg(uid.to_string())
        .arg(&home)
        .arg(env!("CARGO_BIN_EXE_keyward"))
        .arg(home.join("work"))
        .arg(format!("keyward-test-{}", std::process::id()))
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut manager = UserManager {
        stdin: child.stdin.take(),
        stdout: BufReader::new(child.stdout.take().unwrap()),
        child,
    };
    let service_log = || std::fs::read_to_string(home.join("work/service.log")).unwrap_or_default();
    let first = manager.line();
    if let Some(reason) = first.strip_prefix("skip: ") {
        println!("skipped: this machine cannot host a systemd user manager: {reason}");
        return;
    }
    let pid: u32 = first
        .strip_prefix("pid: ")
        .and_then(|pid| pid.parse().ok())
        .filter(|&pid| pid != 0)
        .unwrap_or_else(|| panic!("the unit did not start: {first}\n{}", service_log()));

    // keyward answers over HTTP once it has unlocked the vault (scrypt) and bound its port.
    let url = format!("http://127.0.0.1:{port}/mcp");
    let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"deploy-test","version":"1"}}}"#;
    let started = Instant::now();
    let (status, session, answer) = loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break mcp(&url, token, None, initialize);
        }
        if started.elapsed() > Duration::from_secs(60) {
            eprintln!("{}", manager.ask("status"));
            panic!("keyward did not listen within 60 s:\n{}", service_log());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["result"]["serverInfo"]["name"], "keyward",
        "{answer}"
    );
    let session = session.expect("a session id");
    mcp(
        &url,
        token,
        Some(&session),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    // The balances come from Anvil: the RPC is reachable from inside the sandbox.
    let (_, _, balances) = mcp(
        &url,
        token,
        Some(&session),
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"wallet_balances","arguments":{}}}"#,
    );
    let result = &balances["result"];
    assert_eq!(result["isError"], false, "{balances}\n{}", service_log());
    let content: Value = match &result["structuredContent"] {
        Value::Null => {
            serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap()
        }
        structured => structured.clone(),
    };
    let first_account = &content["accounts"][0];
    assert_eq!(first_account["address"], DEPLOYER, "{balances}");
    assert!(first_account["eth"]["base_units"].is_string(), "{balances}");

    // What the process is: no privileges, a seccomp filter, and a view of the file system with
    // only keyward's paths in it.
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let status = std::fs::read_to_string(proc.join("status")).unwrap();
    for line in ["NoNewPrivs:\t1", "Seccomp:\t2", "CapEff:\t0000000000000000"] {
        assert!(status.lines().any(|l| l == line), "{line} in:\n{status}");
    }
    let root = proc.join("root");
    let inside = |path: &str| root.join(path.trim_start_matches('/'));
    for hidden in [
        format!("{HOME}/.ssh"),
        format!("{HOME}/.config/credstore"),
        format!("{HOME}/.config/systemd"),
        "/run/keyward-test-canary".to_owned(),
    ] {
        assert!(!inside(&hidden).exists(), "keyward can see {hidden}");
    }
    for visible in [
        format!("{HOME}/.local/share/keyward/vault.json"),
        format!("{HOME}/.config/keyward/keyward.toml"),
        "/run/systemd/resolve/stub-resolv.conf".to_owned(),
    ] {
        assert!(inside(&visible).exists(), "keyward cannot see {visible}");
    }
    let mountinfo = std::fs::read_to_string(proc.join("mountinfo")).unwrap();
    for (target, mode) in [
        ("/".to_owned(), "ro"),
        (format!("{HOME}/.config/keyward"), "ro"),
        (format!("{HOME}/.local/share/keyward"), "ro"),
        (format!("{HOME}/.cargo/bin/keyward"), "ro"),
        (format!("{HOME}/.local/state/keyward"), "rw"),
    ] {
        let options = mount_options(&mountinfo, &target)
            .unwrap_or_else(|| panic!("no mount at {target}:\n{mountinfo}"));
        assert!(
            options.split(',').next() == Some(mode),
            "{target} is mounted {options}, not {mode}"
        );
    }

    // The approver socket in the state directory answers the user's `keyward lock`, and the
    // wallet was unlocked: by the credential, as nothing else could have.
    let lock = manager.ask("lock");
    assert!(
        lock.contains("decrypted secrets were wiped"),
        "{lock}\n{}",
        service_log()
    );
    assert!(state.join("approve.sock").exists());
    let written: Vec<String> = std::fs::read_dir(&state)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    println!(
        "keyward.service under systemd --user (uid {uid}, pid {pid}): MCP over HTTP on \
         127.0.0.1:{port}, unlocked from the credential, balances read from Anvil, `keyward \
         lock` answered; hidden: ~/.ssh, ~/.config/credstore, /run; read-only: /, config, data, \
         binary; writable: the state directory, which now holds {written:?}"
    );
}
