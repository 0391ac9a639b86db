//! The MCP server's speed and footprint, each figure beside its floor measured in the same run.
//!
//! Run with `cargo bench --bench mcp` (needs `npm ci --prefix anvil`). It starts its own Anvil,
//! drives the release binary over stdio like a host would, and prints one table:
//! - cold start: process spawn to the `initialize` response, beside spawning `/bin/true`;
//! - `wallet_balances` round trips over stdio, beside raw JSON-RPC to the same Anvil over a
//!   keep-alive connection (`eth_getBalance` for ETH only; the same batch keyward sends when two
//!   tokens are configured), in alternating rounds;
//! - server CPU per call (all threads, from /proc/PID/task/*/schedstat);
//! - peak RSS (VmHWM), and the time from stdin EOF to exit;
//! - an approved ETH transfer end to end (prepare, the scripted human's page visit and code, sign,
//!   broadcast, receipt), beside `cast send --private-key` as a whole process, in alternating
//!   rounds. Only machine time counts: the wait for a fresh TOTP step (a code is good once, so a
//!   human gets about three per 30 s) is left out, and so is the one-time vault unlock.
#![expect(clippy::print_stdout, reason = "a benchmark prints its table")]
#![expect(clippy::unwrap_used, reason = "a benchmark stops on any failure")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const COLD_STARTS: usize = 40;
const TRANSFERS: usize = 9;
const RECIPIENT: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
/// Anvil's published test key for its account 1 (cast sends from it, keyward from account 0).
const CAST_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const FIXTURE_PASSWORD: &str = "keyward fixture password";
const FIXTURE_TOTP_SECRET: &[u8] = b"12345678901234567890";
const CALLS: usize = 2000;
const DEPLOYER: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
const TOKENS: [&str; 2] = [
    "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A minimal keep-alive HTTP/1.1 JSON-RPC client: the floor any RPC-backed tool pays.
struct RawRpc {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl RawRpc {
    fn connect(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    fn post(&mut self, body: &str) -> Value {
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
        serde_json::from_slice(&body).unwrap()
    }
}

/// Anvil on a port it picks, killed when dropped.
struct Anvil {
    child: Child,
    port: u16,
    _log: tempfile::TempDir,
}

impl Anvil {
    fn start() -> Self {
        let binary = repo().join("anvil/node_modules/.bin/anvil");
        assert!(
            binary.exists(),
            "anvil is not installed: run `npm ci --prefix anvil`"
        );
        let log_dir = tempfile::tempdir().unwrap();
        let log = log_dir.path().join("anvil.log");
        let child = Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", "0", "--silent"])
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // --silent still prints nothing, so find the port from the process's listening socket.
        let started = Instant::now();
        let port = loop {
            if let Some(port) = listening_port(child.id()) {
                break port;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "anvil did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Self {
            child,
            port,
            _log: log_dir,
        }
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The TCP port a process listens on, from /proc (sockets in state 0A, LISTEN).
fn listening_port(pid: u32) -> Option<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            target
                .strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(str::to_owned)
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(3) == Some(&"0A")
            && inodes
                .iter()
                .any(|inode| Some(&inode.as_str()) == fields.get(9)))
        .then(|| u16::from_str_radix(fields[1].rsplit(':').next()?, 16).ok())
        .flatten()
    })
}

/// keyward serve, spoken to over its stdio like a host does.
struct Keyward {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Keyward {
    fn spawn(home: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_keyward"))
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

    fn request(&mut self, method: &str, params: Value) -> Value {
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
        serde_json::from_str(&response).unwrap()
    }

    fn initialize(&mut self) -> Value {
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

    fn balances(&mut self) {
        self.call_balances(json!({"account": "main"}));
    }

    fn call_balances(&mut self, arguments: Value) -> Value {
        let response = self.request(
            "tools/call",
            json!({"name": "wallet_balances", "arguments": arguments}),
        );
        assert_eq!(response["result"]["isError"], false, "{response}");
        response
    }

    /// CPU time of every thread of the process, in nanoseconds.
    fn cpu_nanos(&self) -> u64 {
        std::fs::read_dir(format!("/proc/{}/task", self.child.id()))
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok())
            .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }

    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches(" kB").parse().ok())
            .unwrap()
    }

    /// Closes stdin and returns how long the process took to exit.
    fn close(mut self) -> Duration {
        let closed = Instant::now();
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status:?}");
        closed.elapsed()
    }
}

struct Series(Vec<Duration>);

impl Series {
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort();
        sorted[((sorted.len() - 1) as f64 * p).round() as usize]
    }
}

fn ms(duration: Duration) -> String {
    format!("{:.3} ms", duration.as_secs_f64() * 1e3)
}

fn home(port: u16, tokens: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("fixtures/anvil-wallet/vault.json"),
        dir.path().join("vault.json"),
    )
    .unwrap();
    let mut config = format!(
        "[approval]\nlisten = \"127.0.0.1:0\"\n\n[[networks]]\nname = \"anvil\"\nchain_id = 31337\nrpc_url = \"http://127.0.0.1:{port}\"\n"
    );
    if tokens {
        for (token, decimals) in TOKENS.iter().zip([6, 18]) {
            config.push_str(&format!(
                "\n[[networks.tokens]]\naddress = \"{token}\"\ndecimals = {decimals}\n"
            ));
        }
    }
    std::fs::write(dir.path().join("keyward.toml"), config).unwrap();
    dir
}

fn deploy_tokens(rpc: &mut RawRpc) {
    for name in ["TestDollar", "TestEighteen"] {
        let fixture: Value = serde_json::from_slice(
            &std::fs::read(repo().join(format!("fixtures/contracts/{name}.json"))).unwrap(),
        )
        .unwrap();
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_sendTransaction", "params": [{"from": DEPLOYER, "data": fixture["bytecode"]}]});
        rpc.post(&body.to_string());
    }
    std::thread::sleep(Duration::from_millis(200));
}

/// Interleaves keyward's `wallet_balances` with a raw request; returns both series and the CPU
/// keyward used per call.
fn race(keyward: &mut Keyward, rpc: &mut RawRpc, raw_body: &str) -> (Series, Series, Duration) {
    for _ in 0..200 {
        keyward.balances();
        rpc.post(raw_body);
    }
    let cpu_before = keyward.cpu_nanos();
    let (mut ours, mut raw) = (Vec::with_capacity(CALLS), Vec::with_capacity(CALLS));
    for _ in 0..CALLS {
        let started = Instant::now();
        keyward.balances();
        ours.push(started.elapsed());
        let started = Instant::now();
        rpc.post(raw_body);
        raw.push(started.elapsed());
    }
    let cpu = Duration::from_nanos((keyward.cpu_nanos() - cpu_before) / CALLS as u64);
    (Series(ours), Series(raw), cpu)
}

fn main() {
    let anvil = Anvil::start();
    let mut rpc = RawRpc::connect(anvil.port);
    deploy_tokens(&mut rpc);
    // `cargo bench --bench mcp -- guard`: the outbound guard's rows alone.
    if std::env::args().any(|arg| arg == "guard") {
        let batch = balances_batch();
        let raw = Series(
            (0..500)
                .map(|_| {
                    let started = Instant::now();
                    rpc.post(&batch);
                    started.elapsed()
                })
                .collect(),
        );
        guard_rows(&raw, &batch);
        return;
    }
    let eth_home = home(anvil.port, false);
    let token_home = home(anvil.port, true);

    // Cold start and EOF, beside the cost of spawning a process at all.
    let (mut starts, mut spawns, mut exits) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..COLD_STARTS {
        let started = Instant::now();
        Command::new("/bin/true").status().unwrap();
        spawns.push(started.elapsed());
        let started = Instant::now();
        let mut keyward = Keyward::spawn(eth_home.path());
        let response = keyward.initialize();
        starts.push(started.elapsed());
        assert_eq!(response["result"]["serverInfo"]["name"], "keyward");
        exits.push(keyward.close());
    }
    let (starts, spawns, exits) = (Series(starts), Series(spawns), Series(exits));

    let mut keyward = Keyward::spawn(eth_home.path());
    keyward.initialize();
    let balance = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance", "params": [DEPLOYER.to_lowercase(), "latest"]}).to_string();
    let (eth_ours, eth_raw, eth_cpu) = race(&mut keyward, &mut rpc, &balance);
    let eth_rss = keyward.peak_rss_kib();
    keyward.close();

    let mut keyward = Keyward::spawn(token_home.path());
    keyward.initialize();
    let batch = balances_batch();
    let (token_ours, token_raw, token_cpu) = race(&mut keyward, &mut rpc, &batch);
    let token_rss = keyward.peak_rss_kib();
    keyward.close();

    let transfers = transfer_rounds(&anvil, eth_home.path());

    println!();
    println!(
        "keyward MCP server over stdio, release build, against a local Anvil ({CALLS} alternating calls per row)"
    );
    println!(
        "{:<46} {:>11} {:>11}   {:<34} target",
        "", "p50", "p99", "floor (same run), p50 / p99"
    );
    let row = |name: &str, ours: &Series, floor: &Series, target: String| {
        println!(
            "{:<46} {:>11} {:>11}   {:<34} {}",
            name,
            ms(ours.percentile(0.5)),
            ms(ours.percentile(0.99)),
            format!(
                "{} / {}",
                ms(floor.percentile(0.5)),
                ms(floor.percentile(0.99))
            ),
            target
        );
    };
    row(
        "cold start to initialize response",
        &starts,
        &spawns,
        format!(
            "<= 25 ms ({})",
            verdict(starts.percentile(0.5) <= Duration::from_millis(25))
        ),
    );
    let eth_margin = eth_ours
        .percentile(0.5)
        .saturating_sub(eth_raw.percentile(0.5));
    row(
        "wallet_balances, ETH only (vs eth_getBalance)",
        &eth_ours,
        &eth_raw,
        format!(
            "p50 <= floor + 0.3 ms: +{} ({})",
            ms(eth_margin),
            verdict(eth_margin <= Duration::from_micros(300))
        ),
    );
    let token_margin = token_ours
        .percentile(0.5)
        .saturating_sub(token_raw.percentile(0.5));
    row(
        "wallet_balances, ETH + 2 tokens (vs same batch)",
        &token_ours,
        &token_raw,
        format!(
            "p50 <= floor + 0.3 ms: +{} ({})",
            ms(token_margin),
            verdict(token_margin <= Duration::from_micros(300))
        ),
    );
    println!(
        "stdin EOF to exit: p50 {}, p99 {}, max {}; target within 100 ms ({})",
        ms(exits.percentile(0.5)),
        ms(exits.percentile(0.99)),
        ms(exits.percentile(1.0)),
        verdict(exits.percentile(1.0) <= Duration::from_millis(100))
    );
    println!(
        "server CPU per wallet_balances call: {:.0} us (ETH only), {:.0} us (with tokens); target <= 150 us ({})",
        eth_cpu.as_secs_f64() * 1e6,
        token_cpu.as_secs_f64() * 1e6,
        verdict(eth_cpu.max(token_cpu) <= Duration::from_micros(150))
    );
    println!(
        "peak RSS: {:.1} MiB (ETH only), {:.1} MiB (with tokens); target <= 20 MiB ({})",
        eth_rss as f64 / 1024.0,
        token_rss as f64 / 1024.0,
        verdict(eth_rss.max(token_rss) <= 20 * 1024)
    );
    transfers.print();
    privacy_rows(&token_home, &token_raw, &batch);
    drop(anvil);
}

/// The privacy filter's cost, each beside the path without it in the same run:
/// - the masked model view on `wallet_balances` for all ten accounts and two tokens, one server
///   with `model_view = "full"` and one with `"masked"`, in alternating calls;
/// - the outbound guard's check per request (allowlist and secret fingerprints of an unlocked
///   ten-account vault), beside the same check with nothing registered and beside serializing
///   the request, which every request pays anyway.
fn privacy_rows(token_home: &tempfile::TempDir, raw: &Series, batch: &str) {
    const ROUNDS: usize = 500;
    let masked_home = tempfile::tempdir().unwrap();
    for file in ["vault.json", "keyward.toml"] {
        std::fs::copy(token_home.path().join(file), masked_home.path().join(file)).unwrap();
    }
    let mut config = std::fs::read_to_string(masked_home.path().join("keyward.toml")).unwrap();
    config.push_str("\n[privacy]\nmodel_view = \"masked\"\n");
    std::fs::write(masked_home.path().join("keyward.toml"), config).unwrap();
    let mut full = Keyward::spawn(token_home.path());
    let mut masked = Keyward::spawn(masked_home.path());
    full.initialize();
    masked.initialize();
    let sample = masked.call_balances(json!({}));
    let text = sample.to_string().to_ascii_lowercase();
    assert!(
        text.contains("0x7099…79c8") && !text.contains("70997970c518"),
        "the masked view is not masking: {sample}"
    );
    for _ in 0..50 {
        full.call_balances(json!({}));
        masked.call_balances(json!({}));
    }
    let (full_cpu, masked_cpu) = (full.cpu_nanos(), masked.cpu_nanos());
    let (mut full_times, mut masked_times) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let started = Instant::now();
        full.call_balances(json!({}));
        full_times.push(started.elapsed());
        let started = Instant::now();
        masked.call_balances(json!({}));
        masked_times.push(started.elapsed());
    }
    let full_cpu = (full.cpu_nanos() - full_cpu) / ROUNDS as u64;
    let masked_cpu = (masked.cpu_nanos() - masked_cpu) / ROUNDS as u64;
    full.close();
    masked.close();
    let (full_times, masked_times) = (Series(full_times), Series(masked_times));
    println!();
    println!(
        "privacy filter, {ROUNDS} alternating wallet_balances calls for all ten accounts and two tokens"
    );
    for (name, series, cpu) in [
        ("model_view = \"full\"", &full_times, full_cpu),
        ("model_view = \"masked\"", &masked_times, masked_cpu),
    ] {
        println!(
            "  {:<44} p50 {:>11}  p99 {:>11}  server CPU {:>6.0} us/call",
            name,
            ms(series.percentile(0.5)),
            ms(series.percentile(0.99)),
            cpu as f64 / 1e3
        );
    }
    println!(
        "  masked view overhead: p50 {:+.3} ms, server CPU {:+.0} us per call",
        (masked_times.percentile(0.5).as_secs_f64() - full_times.percentile(0.5).as_secs_f64())
            * 1e3,
        (masked_cpu as f64 - full_cpu as f64) / 1e3
    );
    guard_rows(raw, batch);
}

fn guard_rows(raw: &Series, batch: &str) {
    use keyward::privacy::egress::Egress;
    use keyward::privacy::guard::{Fingerprints, SecretKind, guard};
    const CHECKED_BYTES: u32 = 20_000_000;
    let egress = Egress::build(["127.0.0.1".to_owned()], None).unwrap();
    let url: url::Url = "http://127.0.0.1:8545/".parse().unwrap();
    let raw_tx = json!([{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, {"jsonrpc": "2.0", "id": 2, "method": "eth_sendRawTransaction", "params": [format!("0x02f8{}", "ab".repeat(110))]}]).to_string();
    let large = format!("[{{\"params\":[\"0x{}\"]}}]", "cd".repeat(50_000));
    let bodies = [
        ("balances batch", batch.to_owned()),
        ("raw transaction", raw_tx),
        ("100 KB call", large),
    ];
    let time = |body: &[u8]| {
        // About 20 MB checked per series, at least 50 checks.
        let checks = (CHECKED_BYTES / body.len() as u32).clamp(50, 20_000);
        let started = Instant::now();
        for _ in 0..checks {
            assert!(egress.check(&url, std::hint::black_box(body)).is_ok());
        }
        started.elapsed() / checks
    };
    let unguarded: Vec<Duration> = bodies.iter().map(|(_, b)| time(b.as_bytes())).collect();
    let phrase = "test test test test test test test test test test test junk";
    let mnemonic = keyward::hd::parse_phrase(phrase).unwrap();
    let mut set = Fingerprints::new();
    for index in 0..10 {
        set.hex(
            SecretKind::PrivateKey,
            mnemonic.account_key(index).unwrap().expose_secret(),
        );
    }
    set.words(SecretKind::RecoveryPhrase, phrase.split(' '));
    set.hex(
        SecretKind::RecoveryPhrase,
        mnemonic.seed("").expose_secret(),
    );
    set.text(SecretKind::Password, FIXTURE_PASSWORD);
    set.hex(SecretKind::TotpSecret, FIXTURE_TOTP_SECRET);
    set.text(SecretKind::TotpSecret, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    let _held = guard().register(set);
    let guarded: Vec<Duration> = bodies.iter().map(|(_, b)| time(b.as_bytes())).collect();
    println!(
        "outbound guard per request (unlocked ten-account vault: 10 keys, phrase, seed, password, TOTP)"
    );
    for (((name, body), off), on) in bodies.iter().zip(&unguarded).zip(&guarded) {
        let value: Value = serde_json::from_str(body).unwrap();
        let started = Instant::now();
        for _ in 0..200 {
            std::hint::black_box(serde_json::to_vec(&value).unwrap());
        }
        let serialize = started.elapsed() / 200;
        println!(
            "  {:<18} {:>7} B  guarded {:>9.1} us  unguarded {:>7.1} us  serializing it {:>7.1} us",
            name,
            body.len(),
            on.as_secs_f64() * 1e6,
            off.as_secs_f64() * 1e6,
            serialize.as_secs_f64() * 1e6
        );
    }
    println!(
        "  guard on the balances batch: {:.1} us, {:.2}% of a raw RPC round trip ({} p50)",
        guarded[0].as_secs_f64() * 1e6,
        guarded[0].as_secs_f64() / raw.percentile(0.5).as_secs_f64() * 100.0,
        ms(raw.percentile(0.5))
    );
}

/// The batch keyward sends for one account's balances with two tokens configured.
fn balances_batch() -> String {
    let owner = DEPLOYER.to_lowercase().replace("0x", "");
    let call = |token: &str, id: u64| json!({"jsonrpc": "2.0", "id": id, "method": "eth_call", "params": [{"to": token.to_lowercase(), "data": format!("0x70a08231000000000000000000000000{owner}")}, "latest"]});
    json!([
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_blockNumber", "params": []},
        {"jsonrpc": "2.0", "id": 3, "method": "eth_getBalance", "params": [DEPLOYER.to_lowercase(), "latest"]},
        call(TOKENS[0], 4),
        call(TOKENS[1], 5),
    ])
    .to_string()
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// One approved transfer's machine time, by phase.
struct Round {
    prepare: Duration,
    approve: Duration,
    settle: Duration,
}

struct Transfers {
    rounds: Vec<Round>,
    cast: Series,
}

impl Transfers {
    fn print(&self) {
        let phase = |pick: fn(&Round) -> Duration| Series(self.rounds.iter().map(pick).collect());
        let total = phase(|r| r.prepare + r.approve + r.settle);
        println!();
        println!(
            "approved ETH transfer end to end, {} alternating rounds (machine time; the wait for a \
             fresh TOTP step is not counted)",
            self.rounds.len()
        );
        for (name, series) in [
            ("prepare (tools/call wallet_transfer)", phase(|r| r.prepare)),
            ("approve (page GET + POST with code)", phase(|r| r.approve)),
            (
                "sign, broadcast, receipt (status wait)",
                phase(|r| r.settle),
            ),
        ] {
            println!(
                "  {:<44} p50 {:>11}  max {:>11}",
                name,
                ms(series.percentile(0.5)),
                ms(series.percentile(1.0))
            );
        }
        let ratio = total.percentile(0.5).as_secs_f64() / self.cast.percentile(0.5).as_secs_f64();
        println!(
            "  {:<44} p50 {:>11}  max {:>11}",
            "keyward total",
            ms(total.percentile(0.5)),
            ms(total.percentile(1.0))
        );
        println!(
            "  {:<44} p50 {:>11}  max {:>11}",
            "floor: cast send --private-key (process)",
            ms(self.cast.percentile(0.5)),
            ms(self.cast.percentile(1.0))
        );
        println!(
            "  keyward / cast at p50: {ratio:.2}x; target <= 1.5x ({})",
            verdict(ratio <= 1.5)
        );
    }
}

/// Alternates keyward transfers, approved on the page by a scripted human, with `cast send`.
fn transfer_rounds(anvil: &Anvil, home: &Path) -> Transfers {
    let cast = repo().join("anvil/node_modules/.bin/cast");
    let empty = tempfile::tempdir().unwrap();
    let rpc_url = format!("http://127.0.0.1:{}", anvil.port);
    let cast_send = || {
        let started = Instant::now();
        let output = Command::new(&cast)
            .current_dir(empty.path())
            .args(["send", "--private-key", CAST_KEY, "--rpc-url", &rpc_url])
            .args([RECIPIENT, "--value", "1"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        started.elapsed()
    };
    let mut keyward = Keyward::spawn(home);
    keyward.initialize();
    let mut totp = Codes::default();
    // Warm-up: the first approval also unlocks the vault (scrypt), which cast never does.
    keyward.transfer(&mut totp);
    cast_send();
    let (mut rounds, mut casts) = (Vec::new(), Vec::new());
    for _ in 0..TRANSFERS {
        rounds.push(keyward.transfer(&mut totp));
        casts.push(cast_send());
    }
    keyward.close();
    Transfers {
        rounds,
        cast: Series(casts),
    }
}

/// The fixture wallet's authenticator, used once per step as keyward requires.
#[derive(Default)]
struct Codes {
    last_step: Option<u64>,
}

impl Codes {
    /// A code keyward has not seen, waiting (outside any timing) for a new step when needed.
    fn fresh(&mut self) -> String {
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

impl Keyward {
    /// One transfer: prepare, the human's page visit with a code, then the wait for the receipt.
    fn transfer(&mut self, codes: &mut Codes) -> Round {
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
