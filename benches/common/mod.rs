//! What the benchmarks share: the tests' Anvil and HTTP load driver, a lean keep-alive JSON-RPC
//! client (the floor of every RPC-backed figure), keyward spoken to over stdio as a host does, a
//! wallet home aimed at an Anvil, percentiles, and an approved transfer with the scripted human's
//! page visit and code.
//!
//! It measures; it never decides what is fast enough. Each bench prints its figures beside a floor
//! measured in the same run.

#[path = "../../tests/support/anvil.rs"]
pub(crate) mod anvil;
#[path = "../../tests/load/driver.rs"]
pub(crate) mod driver;

/// Where the shared test files look for the Anvil helper, as in the test binary.
pub(crate) mod support {
    pub(crate) use super::anvil;
}

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use rmcp::transport::TokioChildProcess;
use rmcp::{ClientLifecycleMode, ClientServiceExt};
use serde_json::{Value, json};

use anvil::DEPLOYER;

/// Anvil's account 2, the recipient of every benchmarked transfer.
pub(crate) const RECIPIENT: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
/// Anvil's published test key for its account 1 (cast sends from it, keyward from account 0).
pub(crate) const CAST_KEY: &str =
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
pub(crate) const FIXTURE_PASSWORD: &str = "keyward fixture password";
/// RFC 6238's published secret, enrolled in the fixture wallet.
pub(crate) const FIXTURE_TOTP_SECRET: &[u8] = b"12345678901234567890";

pub(crate) fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn keyward_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_keyward"))
}

/// Foundry's binaries, as the Anvil helper finds them (`npm ci --prefix anvil` installs them).
/// A benchmark cannot skip its floor, so a missing tool stops it with the way to install it.
pub(crate) fn foundry_tool(name: &str) -> Option<PathBuf> {
    let path = repo().join("anvil/node_modules/.bin").join(name);
    assert!(
        path.exists(),
        "{name} is not installed: run `npm ci --prefix anvil`"
    );
    Some(path)
}

/// A sample of durations.
#[derive(Debug, Clone, Default)]
pub(crate) struct Series(pub(crate) Vec<Duration>);

impl Series {
    pub(crate) fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort();
        sorted[((sorted.len() - 1) as f64 * p).round() as usize]
    }

    pub(crate) fn p50(&self) -> Duration {
        self.percentile(0.5)
    }

    /// Times `work` and keeps the duration.
    pub(crate) fn time<T>(&mut self, work: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let out = work();
        self.0.push(started.elapsed());
        out
    }
}

pub(crate) fn ms(duration: Duration) -> String {
    format!("{:.3} ms", duration.as_secs_f64() * 1e3)
}

pub(crate) fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// Adds `run`'s calls to `total`, as one more stretch of it.
pub(crate) fn extend_run(total: &mut driver::Run, run: driver::Run) {
    total.latencies.extend(run.latencies);
    total.errors.extend(run.errors);
    total.elapsed += run.elapsed;
}

/// CPU time of every thread of a live process, in nanoseconds.
pub(crate) fn process_cpu_nanos(pid: u32) -> u64 {
    driver::cpu_nanos(pid)
}

/// CPU time of the calling thread, in nanoseconds.
pub(crate) fn thread_cpu_nanos() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|stat| stat.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// A minimal keep-alive HTTP/1.1 JSON-RPC client: the floor any RPC-backed tool pays.
pub(crate) struct RawRpc {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl RawRpc {
    pub(crate) fn connect(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    pub(crate) fn post(&mut self, body: &str) -> Value {
        write!(
            self.writer,
            "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        let answer: Value = serde_json::from_slice(&body).unwrap();
        assert!(
            answer.get("error").is_none() && !answer.is_null(),
            "{answer}"
        );
        answer
    }
}

/// `eth_getBalance` of `owner` at the latest block, as one JSON-RPC request.
pub(crate) fn get_balance(owner: &str) -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance", "params": [owner.to_lowercase(), "latest"]}).to_string()
}

/// `balanceOf(owner)` on `token` at the latest block, as a JSON-RPC request with `id`.
pub(crate) fn balance_of(token: &str, owner: &str, id: u64) -> Value {
    let owner = owner.to_lowercase().replace("0x", "");
    json!({"jsonrpc": "2.0", "id": id, "method": "eth_call", "params": [{"to": token.to_lowercase(), "data": format!("0x70a08231000000000000000000000000{owner}")}, "latest"]})
}

/// The batch keyward sends for one account's balances with `tokens` configured: chain id, block
/// number, ETH balance, then each token's `balanceOf`.
pub(crate) fn balances_batch(tokens: &[&str]) -> String {
    let mut batch = vec![
        json!({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "eth_blockNumber", "params": []}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "eth_getBalance", "params": [DEPLOYER.to_lowercase(), "latest"]}),
    ];
    for (token, id) in tokens.iter().zip(4..) {
        batch.push(balance_of(token, DEPLOYER, id));
    }
    Value::Array(batch).to_string()
}

/// A wallet home: the fixture vault (ten Anvil accounts, TOTP enrolled) and a config for network
/// "anvil" at `rpc_url` with `tokens` (address, decimals) and any `extra` TOML.
pub(crate) fn home(rpc_url: &str, tokens: &[(&str, u8)], extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("fixtures/anvil-wallet/vault.json"),
        dir.path().join("vault.json"),
    )
    .unwrap();
    let mut config = format!(
        "[approval]\nlisten = \"127.0.0.1:0\"\n\n[[networks]]\nname = \"anvil\"\nchain_id = 31337\nrpc_url = \"{rpc_url}\"\n"
    );
    for (token, decimals) in tokens {
        config.push_str(&format!(
            "\n[[networks.tokens]]\naddress = \"{token}\"\ndecimals = {decimals}\n"
        ));
    }
    config.push_str(extra);
    std::fs::write(dir.path().join("keyward.toml"), config).unwrap();
    dir
}

/// keyward serve, spoken to over its stdio like a host does, one request at a time.
pub(crate) struct Keyward {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Keyward {
    pub(crate) fn spawn(home: &Path) -> Self {
        let mut child = Command::new(keyward_binary())
            .arg("--home")
            .arg(home)
            .arg("serve")
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self {
            stdin: child.stdin.take(),
            stdout: BufReader::new(child.stdout.take().unwrap()),
            child,
            next_id: 1,
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends one request and reads its response line; returns the response and its length.
    pub(crate) fn request_sized(&mut self, method: &str, params: Value) -> (Value, usize) {
        let id = self.next_id;
        self.next_id += 1;
        let line =
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
        let mut response = String::new();
        self.stdout.read_line(&mut response).unwrap();
        let value: Value = serde_json::from_str(&response).unwrap();
        assert_eq!(value["id"], id, "{value}");
        (value, response.len())
    }

    pub(crate) fn request(&mut self, method: &str, params: Value) -> Value {
        self.request_sized(method, params).0
    }

    pub(crate) fn initialize(&mut self) -> Value {
        let response = self.request(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}),
        );
        let stdin = self.stdin.as_mut().unwrap();
        stdin
            .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n")
            .unwrap();
        response
    }

    /// `wallet_balances` with `arguments`; stops the bench on a tool error.
    pub(crate) fn call_balances(&mut self, arguments: Value) -> Value {
        let response = self.request(
            "tools/call",
            json!({"name": "wallet_balances", "arguments": arguments}),
        );
        assert_eq!(response["result"]["isError"], false, "{response}");
        response
    }

    /// CPU time of every thread of the server, in nanoseconds.
    pub(crate) fn cpu_nanos(&self) -> u64 {
        process_cpu_nanos(self.pid())
    }

    pub(crate) fn peak_rss_kib(&self) -> u64 {
        driver::peak_rss_kib(self.pid())
    }

    /// Closes stdin and returns how long the process took to exit.
    pub(crate) fn close(mut self) -> Duration {
        let closed = Instant::now();
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status:?}");
        closed.elapsed()
    }
}

/// keyward serve over stdio with an rmcp client, as an MCP host runs it; returns the client and
/// the server's pid.
pub(crate) async fn connect_stdio(home: &Path) -> (driver::Client, u32) {
    let mut command = tokio::process::Command::new(keyward_binary());
    command
        .arg("--home")
        .arg(home)
        .arg("serve")
        .env_clear()
        .env("RUST_LOG", "warn");
    let (transport, _) = TokioChildProcess::builder(command)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = transport.id().unwrap();
    let client = ().serve_with_lifecycle(transport, ClientLifecycleMode::Initialize).await.unwrap();
    (client, pid)
}

/// The fixture wallet's authenticator, used once per step as keyward requires.
#[derive(Default)]
pub(crate) struct Codes {
    last_step: Option<u64>,
}

impl Codes {
    /// A code keyward has not seen, waiting (outside any timing) for a new step when needed.
    pub(crate) fn fresh(&mut self) -> String {
        let totp = keyward::totp::from_bytes(FIXTURE_TOTP_SECRET).unwrap();
        loop {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let current = now / 30;
            if let Some(step) =
                (current - 1..=current + 1).find(|s| self.last_step.is_none_or(|l| *s > l))
            {
                self.last_step = Some(step);
                return totp.expose_secret().generate(step * 30).to_string();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// One approved transfer's machine time, by phase.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Round {
    pub(crate) prepare: Duration,
    pub(crate) approve: Duration,
    pub(crate) settle: Duration,
}

impl Round {
    pub(crate) fn total(&self) -> Duration {
        self.prepare + self.approve + self.settle
    }
}

impl Keyward {
    /// One transfer of 0.001 ETH: prepare, the human's page visit with a code, then the wait for
    /// the receipt. The wait for `codes` to offer a fresh step is outside every timing.
    pub(crate) fn transfer(&mut self, codes: &mut Codes) -> Round {
        let started = Instant::now();
        let response = self.request(
            "tools/call",
            json!({"name": "wallet_transfer", "arguments": {"to": RECIPIENT, "amount": "0.001"}}),
        );
        let prepare = started.elapsed();
        let prepared = &response["result"]["structuredContent"];
        assert_eq!(prepared["state"], "awaiting_approval", "{response}");
        let url = prepared["approval_url"].as_str().unwrap().to_owned();
        let id = prepared["request_id"].as_str().unwrap().to_owned();

        let code = codes.fresh();
        let started = Instant::now();
        let page = http("GET", &url, None);
        let mut form = format!(
            "csrf={}&digest={}&code={code}&decision=approve",
            input(&page, "csrf"),
            input(&page, "digest")
        );
        if page.contains("name=\"password\"") {
            form.push_str(&format!("&password={}", FIXTURE_PASSWORD.replace(' ', "+")));
        }
        let answered = http("POST", &url, Some(&form));
        assert!(answered.contains("Approved"), "{answered}");
        let approve = started.elapsed();

        let started = Instant::now();
        let response = self.request(
            "tools/call",
            json!({"name": "wallet_request_status", "arguments": {"request_id": id, "wait_seconds": 60}}),
        );
        let settle = started.elapsed();
        let state = &response["result"]["structuredContent"]["state"];
        assert_eq!(state, "mined", "{response}");
        Round {
            prepare,
            approve,
            settle,
        }
    }
}

/// A hidden input's value on the page (hex tokens, so no unescaping is needed).
fn input(page: &str, name: &str) -> String {
    let at = page.find(&format!("name=\"{name}\"")).unwrap();
    let tag = &page[page[..at].rfind('<').unwrap()..at + page[at..].find('>').unwrap()];
    tag.split("value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

/// One HTTP/1.1 request to the loopback approval page; returns the body.
fn http(method: &str, url: &str, form: Option<&str>) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_at(rest.find('/').unwrap());
    let mut stream = TcpStream::connect(authority).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nOrigin: http://{authority}\r\nConnection: close\r\n"
    );
    if let Some(form) = form {
        request.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ));
    } else {
        request.push_str("\r\n");
    }
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// Times `hashlib.scrypt(n=2^18, r=8, p=1, dklen=32)` (OpenSSL's scrypt) once per line read on
/// stdin, in one long-lived Python process, so interpreter start-up is never counted.
const OPENSSL_SCRYPT: &str = r#"
import hashlib, os, sys, time
password, salt = b"bench password", os.urandom(32)
for _ in sys.stdin:
    start = time.perf_counter()
    hashlib.scrypt(password, salt=salt, n=2**18, r=8, p=1, maxmem=2**30, dklen=32)
    print(time.perf_counter() - start, flush=True)
"#;

/// OpenSSL's scrypt at keyward's parameters, through Python's `hashlib`.
pub(crate) struct OpensslScrypt {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl OpensslScrypt {
    pub(crate) fn start() -> Self {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(OPENSSL_SCRYPT)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the OpenSSL floor needs python3 (with hashlib.scrypt) on PATH");
        let out = BufReader::new(child.stdout.take().unwrap());
        Self { child, out }
    }

    /// One derivation's time, as Python measured it.
    pub(crate) fn derive(&mut self) -> Duration {
        writeln!(self.child.stdin.as_mut().unwrap(), "go").unwrap();
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        Duration::from_secs_f64(line.trim().parse().expect("python printed a duration"))
    }
}

impl Drop for OpensslScrypt {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}
