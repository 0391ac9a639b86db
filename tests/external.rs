//! keyward as outside programs see it: the official MCP Python SDK as an independent client, the
//! host snippets in config/hosts (each parsed, then really launched), and the committed contract
//! bytecode checked against its Solidity source.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::anvil::Anvil;
use crate::support::mcp::ServerHome;
use crate::support::required_tool;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The pinned MCP Python SDK, or `None` (with the reason printed) when `scripts/test` has not
/// installed it here.
pub(crate) fn python_sdk() -> Option<PathBuf> {
    required_tool(
        "the MCP Python SDK",
        &[repo().join("target/python-venv/bin/python")],
        "scripts/test creates target/python-venv with `pip install mcp==2.3.0`",
    )
}

/// Runs `tests/clients/SCRIPT` with `python` and `arguments`, then the real binary serving `home`
/// over stdio as the last arguments; returns the JSON report the script prints.
pub(crate) fn python_client(
    python: &Path,
    script: &str,
    arguments: &[&str],
    home: &ServerHome,
) -> Value {
    let output = Command::new(python)
        .arg(repo().join("tests/clients").join(script))
        .args(arguments)
        .arg(env!("CARGO_BIN_EXE_keyward"))
        .arg("--home")
        .arg(home.path())
        .arg("serve")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the Python client {script} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn the_official_python_sdk_drives_the_real_binary_in_both_generations() {
    let Some(python) = python_sdk() else {
        return;
    };
    let Some(anvil) = Anvil::shared() else { return };
    let home = ServerHome::new(&anvil.url);
    let report = python_client(&python, "python_sdk.py", &[], &home);
    assert_eq!(report["sdk_version"], "2.3.0");
    for (mode, version) in [("legacy", "2025-11-25"), ("auto", "2026-07-28")] {
        let seen = &report[mode];
        assert_eq!(seen["protocol_version"], version, "{mode}");
        assert_eq!(seen["server"], "keyward", "{mode}");
        assert_eq!(seen["version"], env!("CARGO_PKG_VERSION"), "{mode}");
        assert_eq!(seen["tools"].as_array().unwrap().len(), 12, "{mode}");
        // The six tools that ask the key to sign are the only ones not read-only.
        assert_eq!(
            seen["read_only"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| **r == false)
                .count(),
            6,
            "{mode}"
        );
        assert_eq!(seen["accounts"]["accounts"][0]["label"], "main", "{mode}");
        assert_eq!(seen["balances_is_error"], false, "{mode}: {seen}");
        assert_eq!(
            seen["balances"]["accounts"][0]["tokens"][0]["balance"]["amount"], "1234.567",
            "{mode}"
        );
        assert_eq!(seen["bad_is_error"], true, "{mode}");
        assert_eq!(
            seen["bad_text"], "argument \"block\" must not be negative",
            "{mode}"
        );
    }
}

#[test]
fn the_python_sdk_as_a_host_with_elicitation_takes_the_human_to_the_page_in_both_generations() {
    let Some(python) = python_sdk() else {
        return;
    };
    // Its own chain, as funds move.
    let Some(anvil) = Anvil::start(None, 31337) else {
        return;
    };
    const FRIEND: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    let before = crate::funds::cast_balance(&anvil.url, FRIEND, None);
    let home = ServerHome::new(&anvil.url);
    let report = python_client(&python, "python_approve.py", &[FRIEND], &home);
    for (mode, version) in [("legacy", "2025-11-25"), ("auto", "2026-07-28")] {
        let seen = &report[mode];
        assert_eq!(seen["protocol_version"], version, "{mode}");
        assert_eq!(seen["modes"], serde_json::json!(["url"]), "{mode}: {seen}");
        assert!(
            seen["answers"][0].as_str().unwrap().contains("Approved"),
            "{mode}: {seen}"
        );
        assert_eq!(seen["is_error"], false, "{mode}: {seen}");
        assert_eq!(seen["result"]["state"], "mined", "{mode}: {seen}");
        let progress: Vec<&str> = seen["progress"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            progress
                .last()
                .is_some_and(|line| line.contains("mined in block")),
            "{mode}: {progress:?}"
        );
    }
    assert_eq!(
        crate::funds::cast_balance(&anvil.url, FRIEND, None) - before,
        187_500_000_000_000_000,
        "0.125 + 0.0625 ETH, each sent once"
    );
}

/// The command line a host snippet launches, with its placeholders filled in.
fn launch_line(host: &str, binary: &Path, home: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("config/hosts").join(host)).unwrap();
    let text = text
        .replace("/ABSOLUTE/PATH/TO/keyward-home", home.to_str().unwrap())
        .replace("/ABSOLUTE/PATH/TO/keyward", binary.to_str().unwrap());
    if host.ends_with(".sh") {
        let words: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(&words[..4], ["claude", "mcp", "add", "keyward"], "{host}");
        let separator = words
            .iter()
            .position(|w| *w == "--")
            .expect("`--` before the command");
        return words[separator + 1..]
            .iter()
            .map(|w| (*w).to_owned())
            .collect();
    }
    let snippet: Value = serde_json::from_str(&text).unwrap();
    let servers = if host == "vscode.json" {
        &snippet["servers"]
    } else {
        &snippet["mcpServers"]
    };
    let entry = &servers["keyward"];
    assert!(entry.is_object(), "{host} has no keyward entry");
    if host != "claude-desktop.json" {
        assert_eq!(entry["type"], "stdio", "{host}");
    }
    let mut line = vec![entry["command"].as_str().unwrap().to_owned()];
    line.extend(
        entry["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned()),
    );
    line
}

#[test]
fn every_host_snippet_has_its_hosts_shape_and_launches_a_working_server() {
    let home = ServerHome::new("http://127.0.0.1:9");
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_keyward"));
    for host in [
        "claude-desktop.json",
        "cursor.json",
        "vscode.json",
        "claude-code.sh",
    ] {
        let line = launch_line(host, &binary, home.path());
        assert!(line.contains(&"serve".to_owned()), "{host}: {line:?}");
        let mut child = Command::new(&line[0])
            .args(&line[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        writeln!(
            stdin,
            r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{{}},"clientInfo":{{"name":"{host}","version":"0"}}}}}}"#
        )
        .unwrap();
        let mut response = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut response)
            .unwrap();
        drop(stdin);
        let response: Value =
            serde_json::from_str(&response).unwrap_or_else(|_| panic!("{host}: {response}"));
        assert_eq!(
            response["result"]["serverInfo"]["name"], "keyward",
            "{host}"
        );
        assert!(child.wait().unwrap().success(), "{host}");
    }
}

#[test]
fn the_committed_contract_bytecode_matches_its_solidity_source() {
    let Some(_) = required_tool(
        "solc (npm)",
        &[repo().join("anvil/node_modules/solc/package.json")],
        "run `npm ci --prefix anvil` (scripts/test does)",
    ) else {
        return;
    };
    let output = Command::new("node")
        .arg(repo().join("anvil/build-contracts.mjs"))
        .arg("--check")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
