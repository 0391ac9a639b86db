//! Load on keyward's MCP over Streamable HTTP: a home aimed at a test Anvil, the real `keyward
//! serve --http` process, rmcp clients driven concurrently, a raw JSON-RPC floor, and the check
//! that a `wallet_balances` document holds exactly what the chain holds.
//!
//! Shared by the load test (tests/load.rs) and the HTTP benchmark (benches/http.rs), which
//! includes this file by path. It measures and checks; it never decides whether a figure is fast
//! enough: the test asserts correctness only, and the benchmark prints its figures beside floors.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, ProtocolVersion};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientLifecycleMode, ClientServiceExt, RoleClient};
use serde_json::{Value, json};

use crate::support::anvil::{TEST_DOLLAR, TEST_EIGHTEEN, fixtures};

pub(crate) type Client = RunningService<RoleClient, ()>;

/// The fixture wallet's accounts, which every balances document lists.
pub(crate) const ACCOUNTS: usize = 10;
/// The configured tokens, in configuration order.
const TOKENS: [&str; 2] = [TEST_DOLLAR, TEST_EIGHTEEN];
/// `balanceOf(address)`
const BALANCE_OF: &str = "70a08231";

/// Writes the fixture wallet and a config for network "anvil" at `rpc_url`, both test tokens with
/// their decimals (so each account costs keyward one five-call batch), connecting directly: the
/// tests' recording proxy opens a connection and a thread per request, which would be the
/// bottleneck under load. `requests_per_minute` replaces the per-token rate limit.
pub(crate) fn write_home(dir: &Path, rpc_url: &str, requests_per_minute: Option<u32>) {
    std::fs::copy(
        fixtures().join("anvil-wallet/vault.json"),
        dir.join("vault.json"),
    )
    .unwrap();
    let mut config = format!(
        "[approval]\nlisten = \"127.0.0.1:0\"\n\n[[networks]]\nname = \"anvil\"\nchain_id = 31337\nrpc_url = \"{rpc_url}\"\n"
    );
    for (address, decimals) in TOKENS.iter().zip([6, 18]) {
        config.push_str(&format!(
            "\n[[networks.tokens]]\naddress = \"{address}\"\ndecimals = {decimals}\n"
        ));
    }
    if let Some(limit) = requests_per_minute {
        config.push_str(&format!("\n[http]\nrequests_per_minute = {limit}\n"));
    }
    std::fs::write(dir.join("keyward.toml"), config).unwrap();
}

/// The wallet's addresses in account order, lower case, from the home's vault.
fn own_addresses(home: &Path) -> Vec<String> {
    let vault: Value =
        serde_json::from_slice(&std::fs::read(home.join("vault.json")).unwrap()).unwrap();
    vault["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|account| account["address"].as_str().unwrap().to_ascii_lowercase())
        .collect()
}

/// `count` new bearer tokens for `home`, made by `keyward token create` as a user would.
pub(crate) fn create_tokens(binary: &Path, home: &Path, prefix: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|n| create_token(binary, home, &format!("{prefix}-{n}")))
        .collect()
}

/// One new bearer token named `name`: what `keyward token create` prints alone on stdout.
pub(crate) fn create_token(binary: &Path, home: &Path, name: &str) -> String {
    let output = Command::new(binary)
        .arg("--home")
        .arg(home)
        .args(["token", "create", "--name", name])
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success(), "token create failed: {output:?}");
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(
        token.starts_with("kw_") && token.len() == 46,
        "not a token: {token}"
    );
    token
}

/// `keyward serve --http 127.0.0.1:0` as a child process, its stderr collected.
pub(crate) struct HttpServer {
    child: Child,
    stderr: Arc<Mutex<String>>,
    /// The MCP endpoint the server announced.
    pub(crate) url: String,
}

impl HttpServer {
    pub(crate) fn start(binary: &Path, home: &Path) -> Self {
        Self::start_logging(binary, home, "warn")
    }

    /// As [`HttpServer::start`], logging at `level` (`RUST_LOG`).
    pub(crate) fn start_logging(binary: &Path, home: &Path, level: &str) -> Self {
        let mut child = Command::new(binary)
            .arg("--home")
            .arg(home)
            .args(["serve", "--http", "127.0.0.1:0"])
            .env_clear()
            .env("RUST_LOG", level)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = String::new();
        let url = loop {
            let Some(Ok(line)) = lines.next() else {
                panic!("keyward serve --http exited without serving:\n{seen}");
            };
            seen.push_str(&line);
            seen.push('\n');
            if let Some((_, rest)) = line.split_once("MCP over HTTP at ") {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        // Keep reading, so a chatty server never blocks on a full pipe.
        let stderr = Arc::new(Mutex::new(seen));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut sink = sink.lock().unwrap();
                sink.push_str(&line);
                sink.push('\n');
            }
        });
        Self { child, stderr, url }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the server to exit (after a signal sent by pid).
    pub(crate) fn wait(&mut self) {
        let _ = self.child.wait();
    }

    /// Everything the server wrote to stderr so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Stops the server with SIGTERM, as a service manager would; returns how it exited and
    /// everything it wrote to stderr.
    pub(crate) fn stop(mut self) -> (ExitStatus, String) {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let status = self.child.wait().unwrap();
        // The reader thread ends at EOF; give it a moment to store the last lines.
        std::thread::sleep(Duration::from_millis(50));
        let stderr = self.stderr.lock().unwrap().clone();
        (status, stderr)
    }
}

/// A server a test did not stop (it failed first) is killed, not left running.
impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Peak resident memory (VmHWM) of a live process, in KiB.
pub(crate) fn peak_rss_kib(pid: u32) -> u64 {
    memory_kib(pid, "VmHWM")
}

/// One memory figure of a live process's /proc status (`VmHWM`, `VmRSS`, ...), in KiB.
pub(crate) fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches(" kB").parse().ok())
        .unwrap()
}

/// CPU time of every thread of a live process, in nanoseconds.
pub(crate) fn cpu_nanos(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The protocol generation of client number `n`: even clients start with `initialize`
/// (2025-11-25 and earlier), odd ones with `server/discover` (2026-07-28), so a load is half
/// each.
pub(crate) fn lifecycle(n: usize) -> ClientLifecycleMode {
    if n.is_multiple_of(2) {
        ClientLifecycleMode::Initialize
    } else {
        ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        }
    }
}

/// An rmcp client over Streamable HTTP presenting `token`.
pub(crate) async fn connect_http(
    url: &str,
    token: &str,
    lifecycle: ClientLifecycleMode,
) -> Result<Client, String> {
    install_crypto();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(token.to_owned()),
    );
    ().serve_with_lifecycle(transport, lifecycle)
        .await
        .map_err(|err| format!("cannot connect to {url}: {err}"))
}

/// reqwest is built without a default TLS provider; plain http:// still needs one chosen.
fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// One `wallet_balances` call for every account, checked against what the chain holds.
pub(crate) async fn checked_balances(client: &Client, expected: &Expected) -> Result<(), String> {
    expected.check(&balances(client).await?)
}

/// `wallet_balances` for every account: the structured document, or why there is none.
async fn balances(client: &Client) -> Result<Value, String> {
    let result = client
        .call_tool(CallToolRequestParams::new("wallet_balances".to_owned()))
        .await
        .map_err(|err| format!("protocol error: {err}"))?;
    if result.is_error != Some(false) {
        return Err(format!("tool error: {:?}", result.content));
    }
    result
        .structured_content
        .ok_or_else(|| "no structured content".to_owned())
}

/// The same reads keyward makes for one `wallet_balances` call, sent straight to Anvil: one batch
/// per account (chain id, block number, ETH balance, both token balances), all at once over a
/// keep-alive pool. The floor any RPC-backed implementation pays.
pub(crate) struct RawBalances {
    http: reqwest::Client,
    rpc_url: String,
    batches: Vec<String>,
}

impl RawBalances {
    /// The batches for the accounts of the wallet in `home`.
    pub(crate) fn new(rpc_url: &str, home: &Path) -> Self {
        install_crypto();
        let batches = own_addresses(home)
            .iter()
            .map(|owner| {
                let data = format!("0x{BALANCE_OF}{:0>64}", owner.trim_start_matches("0x"));
                let call = |id: u64, token: &str| json!({"jsonrpc": "2.0", "id": id, "method": "eth_call", "params": [{"to": token.to_ascii_lowercase(), "data": data}, "latest"]});
                json!([
                    {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                    {"jsonrpc": "2.0", "id": 2, "method": "eth_blockNumber", "params": []},
                    {"jsonrpc": "2.0", "id": 3, "method": "eth_getBalance", "params": [owner, "latest"]},
                    call(4, TOKENS[0]),
                    call(5, TOKENS[1]),
                ])
                .to_string()
            })
            .collect();
        Self {
            http: reqwest::Client::builder().build().unwrap(),
            rpc_url: rpc_url.to_owned(),
            batches,
        }
    }

    /// Every account's batch, concurrently; each answer's results ordered by id.
    pub(crate) async fn read(&self) -> Result<Vec<Vec<Value>>, String> {
        let reads = self.batches.iter().map(|batch| async move {
            let response = self
                .http
                .post(&self.rpc_url)
                .header("content-type", "application/json")
                .body(batch.clone())
                .send()
                .await
                .map_err(|err| format!("rpc: {err}"))?;
            let body = response
                .bytes()
                .await
                .map_err(|err| format!("rpc: {err}"))?;
            let answers: Vec<Value> =
                serde_json::from_slice(&body).map_err(|err| format!("rpc answer: {err}"))?;
            (1..=5)
                .map(|id| {
                    let answer = answers
                        .iter()
                        .find(|answer| answer["id"] == id)
                        .ok_or_else(|| format!("rpc answer {id} is missing"))?;
                    answer
                        .get("result")
                        .cloned()
                        .ok_or_else(|| format!("rpc error: {answer}"))
                })
                .collect::<Result<Vec<Value>, String>>()
        });
        futures::future::join_all(reads).await.into_iter().collect()
    }
}

/// What a correct balances document says, read from the chain itself.
#[derive(Debug)]
pub(crate) struct Expected {
    /// Per account: address (lower case), ETH and each token in base units, in decimal.
    accounts: Vec<(String, String, Vec<String>)>,
}

impl Expected {
    pub(crate) async fn read(raw: &RawBalances, home: &Path) -> Self {
        let answers = raw.read().await.unwrap();
        let accounts = own_addresses(home)
            .into_iter()
            .zip(answers)
            .map(|(address, answer)| {
                let tokens = answer[3..].iter().map(decimal).collect();
                (address, decimal(&answer[2]), tokens)
            })
            .collect::<Vec<_>>();
        assert_eq!(accounts.len(), ACCOUNTS);
        Self { accounts }
    }

    /// Whether `document` lists every account with exactly the chain's balances.
    pub(crate) fn check(&self, document: &Value) -> Result<(), String> {
        let wrong = |what: String| Err(format!("{what} in {document}"));
        if document["network"] != "anvil" || document["chain_id"] != 31337 {
            return wrong("wrong network".into());
        }
        let Some(accounts) = document["accounts"].as_array() else {
            return wrong("no accounts".into());
        };
        if accounts.len() != self.accounts.len() {
            return wrong(format!("{} accounts", accounts.len()));
        }
        for (n, (account, (address, eth, tokens))) in
            accounts.iter().zip(&self.accounts).enumerate()
        {
            let listed = account["address"].as_str().unwrap_or_default();
            if account["number"] != n || listed.to_ascii_lowercase() != *address {
                return wrong(format!("account {n} is not {address}"));
            }
            if account["eth"]["base_units"] != eth.as_str() {
                return wrong(format!(
                    "account {n} has the wrong ETH balance (chain: {eth})"
                ));
            }
            let entries = account["tokens"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            if entries.len() != TOKENS.len() {
                return wrong(format!("account {n} lists {} tokens", entries.len()));
            }
            for ((entry, token), balance) in entries.iter().zip(TOKENS).zip(tokens) {
                if entry["token"] != token
                    || entry["verified"] != true
                    || entry["balance"]["base_units"] != balance.as_str()
                {
                    return wrong(format!("account {n} has the wrong {token} balance"));
                }
            }
        }
        Ok(())
    }
}

/// A hex quantity or 32-byte word as a decimal string (test balances fit in 128 bits).
fn decimal(hex: &Value) -> String {
    let digits = hex.as_str().unwrap().trim_start_matches("0x");
    let digits = digits.trim_start_matches('0');
    u128::from_str_radix(if digits.is_empty() { "0" } else { digits }, 16)
        .unwrap()
        .to_string()
}

/// Latencies and failures of a run of calls.
#[derive(Debug, Default)]
pub(crate) struct Run {
    pub(crate) latencies: Vec<Duration>,
    pub(crate) errors: Vec<String>,
    /// Wall time from the first call's start to the last call's end.
    pub(crate) elapsed: Duration,
}

impl Run {
    /// `calls` calls shared out among `workers` concurrent workers; `call(worker)` makes one.
    pub(crate) async fn concurrent<F, Fut>(workers: usize, calls: usize, call: F) -> Self
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        let call = &call;
        let started = Instant::now();
        let runs = (0..workers).map(|worker| async move {
            let share = calls / workers + usize::from(worker < calls % workers);
            let mut run = Run::default();
            for _ in 0..share {
                let started = Instant::now();
                let outcome = call(worker).await;
                run.latencies.push(started.elapsed());
                if let Err(err) = outcome {
                    run.errors.push(format!("worker {worker}: {err}"));
                }
            }
            run
        });
        let mut total = Run::default();
        for run in futures::future::join_all(runs).await {
            total.latencies.extend(run.latencies);
            total.errors.extend(run.errors);
        }
        total.elapsed = started.elapsed();
        total
    }

    pub(crate) fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        sorted[((sorted.len() - 1) as f64 * p).round() as usize]
    }

    pub(crate) fn calls_per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

pub(crate) fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1e3)
}
