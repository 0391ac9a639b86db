//! The benchmark suite: every headline figure of keyward beside its floor, measured in the same
//! run, printed as one table with the earlier issues' targets.
//!
//! Run with `cargo bench --bench suite` (needs `npm ci --prefix anvil` and `python3`). It starts its
//! own Anvil with the test tokens and drives the release binary like a host does. Rows, and the
//! floor each is shown beside:
//! - cold start, spawn to the `initialize` response: spawning `/bin/true`, and `cast chain-id` as
//!   a whole process (a CLI that makes one RPC call); then the time from stdin EOF to exit;
//! - `tools/list`: `ping` on the same stdio pipe. tools/list needs no chain, so its floor is not
//!   an RPC round trip but the protocol round trip itself (framing, JSON-RPC dispatch, the pipe
//!   both ways), which `ping` is with no work behind it;
//! - `wallet_balances` (ETH, one account), sequential: raw `eth_getBalance` to the same Anvil over
//!   a keep-alive connection;
//! - the same call with 8 in flight, from one rmcp client over stdio and from 8 over HTTP: 8 raw
//!   `eth_getBalance` requests in flight over a keep-alive pool;
//! - an ERC-20 balance (`wallet_balances` with one configured token): raw `eth_call balanceOf`,
//!   the same batch keyward sends, and `cast balance --erc20` as a whole process;
//! - server CPU per balances call: the raw client's own CPU (this thread) per round trip;
//! - an approved ETH transfer end to end (prepare, the scripted human's page visit and code, sign,
//!   broadcast, receipt): `cast send --private-key` as a whole process, and one `fsync` in the
//!   wallet home, since keyward makes every state change durable before it goes on (about 30
//!   fsyncs per transfer) and cast keeps no state;
//! - keystore and vault unlock at scrypt n=2^18, r=8, p=1: OpenSSL's scrypt (Python `hashlib`);
//! - peak RSS of the servers (no floor: the targets are absolute).
//!
//! `cargo bench --bench suite -- transfer unlock` runs only the parts named (see [`PARTS`]); the
//! RSS rows need every part.
//!
//! Keyward and its floor alternate call by call (or round by round), so noise from a shared
//! machine falls on both alike. Only machine time counts for the transfer: the wait for a fresh
//! TOTP step is left out (a code is good once, and keyward accepts one step either side of now, so
//! each wallet home gives three codes at once; the suite moves to a fresh copy of the home rather
//! than wait 30 s for the next step), and so is each home's first approval, which unlocks the vault
//! (scrypt, measured in its own row).
#![expect(clippy::print_stdout, reason = "a benchmark prints its table")]
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark stops on any failure"
)]

#[expect(dead_code, reason = "each benchmark uses a part of the shared helpers")]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::anvil::{Anvil, DEPLOYER, TEST_DOLLAR};
use common::driver::{self, Run};
use common::{
    CAST_KEY, Codes, Keyward, OpensslScrypt, RECIPIENT, RawRpc, Round, Series, balance_of,
    balances_batch, get_balance, home, keyward_binary, support, verdict,
};
use keyward::keystore::{Keystore, Label, UnlockedVault, Vault};
use keyward::secret::{PrivateKey, Secret};
use rmcp::ClientLifecycleMode;
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};

const COLD_STARTS: usize = 40;
/// Alternating calls per sequential row.
const CALLS: usize = 2000;
const LIST_CALLS: usize = 500;
/// `cast balance --erc20` processes, spread over the ERC-20 row's calls.
const CAST_BALANCES: usize = 20;
const IN_FLIGHT: usize = 8;
const IN_FLIGHT_ROUNDS: usize = 4;
const IN_FLIGHT_CALLS: usize = 500;
/// Measured transfers per wallet home: its three codes less the one the unlock uses.
const TRANSFERS_PER_HOME: usize = 2;
const TRANSFER_HOMES: usize = 5;
const UNLOCK_ROUNDS: usize = 7;

/// The parts of the suite, which `cargo bench --bench suite -- PART...` runs alone.
const PARTS: [&str; 5] = ["start", "sequential", "in-flight", "transfer", "unlock"];

fn main() {
    let chosen: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    if let Some(unknown) = chosen.iter().find(|arg| !PARTS.contains(&arg.as_str())) {
        panic!("no part of the suite is called {unknown:?}; the parts are {PARTS:?}");
    }
    let runs = |part: &str| chosen.is_empty() || chosen.iter().any(|arg| arg == part);
    let anvil = Anvil::start(None, 31337).unwrap();
    anvil.deploy_tokens();
    let mut table = Table::default();
    if runs("start") {
        cold_start(&anvil, &mut table);
    }
    let read_rss = runs("sequential").then(|| sequential(&anvil, &mut table));
    let flight_rss = runs("in-flight").then(|| in_flight(&anvil, &mut table));
    let transfer_rss = runs("transfer").then(|| transfers(&anvil, &mut table));
    if runs("unlock") {
        unlock(&mut table);
    }
    if let (Some(read_rss), Some(flight_rss), Some(transfer_rss)) =
        (read_rss, flight_rss, transfer_rss)
    {
        rss_rows(&mut table, read_rss, flight_rss, transfer_rss);
    }
    println!();
    println!(
        "keyward benchmark suite: release build, local Anvil, {} cores",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    table.print();
    anvil.stop();
}

/// Peak RSS of the servers the other parts ran.
fn rss_rows(
    table: &mut Table,
    read_rss: [u64; 2],
    (stdio_rss, http_rss): (u64, u64),
    transfer_rss: (u64, u64),
) {
    let worst_read = read_rss.iter().chain([&stdio_rss]).max().unwrap();
    table.row(
        "peak RSS (VmHWM), stdio, reads",
        format!(
            "{} (ETH), {} (token), {} (8 in flight)",
            mib(read_rss[0]),
            mib(read_rss[1]),
            mib(stdio_rss)
        ),
        "-",
        "-",
        target("<= 20 MiB", *worst_read <= 20 * 1024),
    );
    table.row(
        "peak RSS (VmHWM), HTTP, 8 clients",
        mib(http_rss),
        "-",
        "-",
        target("<= 40 MiB", http_rss <= 40 * 1024),
    );
    table.row(
        "peak RSS, stdio, unlocked and signing",
        format!(
            "{} peak, {} after",
            mib(transfer_rss.0),
            mib(transfer_rss.1)
        ),
        "scrypt n=2^18 r=8 itself: 256 MiB",
        "-",
        "none (reads only: above)".to_owned(),
    );
}

/// Cold start and exit, beside spawning a process at all and a CLI that makes one RPC call.
fn cold_start(anvil: &Anvil, table: &mut Table) {
    let home = home(&anvil.url, &[], "");
    let cast = common::foundry_tool("cast").unwrap();
    let empty = tempfile::tempdir().unwrap();
    let (mut starts, mut spawns) = (Series::default(), Series::default());
    let (mut casts, mut exits) = (Series::default(), Series::default());
    for _ in 0..COLD_STARTS {
        spawns.time(|| Command::new("/bin/true").status().unwrap());
        let (mut keyward, response) = starts.time(|| {
            let mut keyward = Keyward::spawn(home.path());
            let response = keyward.initialize();
            (keyward, response)
        });
        assert_eq!(response["result"]["serverInfo"]["name"], "keyward");
        keyward.request("ping", json!({}));
        exits.0.push(keyward.close());
        let output = casts.time(|| {
            Command::new(&cast)
                .current_dir(empty.path())
                .args(["chain-id", "--rpc-url", &anvil.url])
                .output()
                .unwrap()
        });
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "31337");
    }
    table.row(
        "cold start to initialize response",
        pair(&starts),
        format!("/bin/true: {}", pair(&spawns)),
        difference(&starts, &spawns),
        target("p50 <= 25 ms", starts.p50() <= Duration::from_millis(25)),
    );
    table.more(
        format!("cast chain-id (process): {}", pair(&casts)),
        ratio(&starts, &casts),
    );
    table.row(
        "stdin EOF to exit (p50 / max)",
        format!("{} / {}", show(exits.p50()), show(exits.percentile(1.0))),
        "-",
        "-",
        target(
            "max <= 100 ms",
            exits.percentile(1.0) <= Duration::from_millis(100),
        ),
    );
}

/// Sequential calls: tools/list beside ping, and wallet_balances (ETH, then one token) beside the
/// raw RPC it needs; server CPU per call beside the raw client's. Returns the servers' peak RSS.
fn sequential(anvil: &Anvil, table: &mut Table) -> [u64; 2] {
    let mut rpc = RawRpc::connect(anvil.port);

    let eth_home = home(&anvil.url, &[], "");
    let mut keyward = Keyward::spawn(eth_home.path());
    keyward.initialize();
    let (mut list, mut ping, mut size) = (Series::default(), Series::default(), 0);
    for _ in 0..LIST_CALLS {
        let (response, bytes) = list.time(|| keyward.request_sized("tools/list", json!({})));
        assert!(response["result"]["tools"].as_array().unwrap().len() > 10);
        size = bytes;
        ping.time(|| keyward.request("ping", json!({})));
    }
    table.row(
        format!("tools/list round trip ({} KB)", size / 1000),
        pair(&list),
        format!("ping, same pipe: {}", pair(&ping)),
        difference(&list, &ping),
        "none set".to_owned(),
    );

    let balance = get_balance(DEPLOYER);
    let eth = race(&mut keyward, &mut rpc, &[&balance], 0, &anvil.url);
    let eth_rss = keyward.peak_rss_kib();
    keyward.close();
    let margin = eth.ours.p50().saturating_sub(eth.floors[0].p50());
    table.row(
        "wallet_balances ETH, sequential",
        pair(&eth.ours),
        format!("raw eth_getBalance: {}", pair(&eth.floors[0])),
        difference(&eth.ours, &eth.floors[0]),
        target(
            "p50 <= floor + 0.3 ms",
            margin <= Duration::from_micros(300),
        ),
    );

    let token_home = home(&anvil.url, &[(TEST_DOLLAR, 6)], "");
    let mut keyward = Keyward::spawn(token_home.path());
    keyward.initialize();
    check_token_balance(&mut keyward, &mut rpc);
    let call = balance_of(TEST_DOLLAR, DEPLOYER, 1).to_string();
    let batch = balances_batch(&[TEST_DOLLAR]);
    let token = race(
        &mut keyward,
        &mut rpc,
        &[&call, &batch],
        CAST_BALANCES,
        &anvil.url,
    );
    let token_rss = keyward.peak_rss_kib();
    keyward.close();
    let margin = token.ours.p50().saturating_sub(token.floors[0].p50());
    table.row(
        "ERC-20 balance (wallet_balances, 1 token)",
        pair(&token.ours),
        format!("raw eth_call balanceOf: {}", pair(&token.floors[0])),
        difference(&token.ours, &token.floors[0]),
        target(
            "p50 <= floor + 0.3 ms",
            margin <= Duration::from_micros(300),
        ),
    );
    table.more(
        format!("raw, keyward's batch of 4: {}", pair(&token.floors[1])),
        difference(&token.ours, &token.floors[1]),
    );
    table.more(
        format!("cast balance --erc20 (process): {}", pair(&token.cast)),
        ratio(&token.ours, &token.cast),
    );
    let worst = eth.server_cpu.max(token.server_cpu);
    table.row(
        "server CPU per wallet_balances call",
        format!(
            "{} (ETH), {} (token)",
            micros(eth.server_cpu),
            micros(token.server_cpu)
        ),
        format!(
            "raw client CPU per round trip: {} (ETH), {} (batch)",
            micros(eth.floor_cpu[0]),
            micros(token.floor_cpu[1])
        ),
        format!(
            "+{}, +{}",
            micros(eth.server_cpu.saturating_sub(eth.floor_cpu[0])),
            micros(token.server_cpu.saturating_sub(token.floor_cpu[1]))
        ),
        target("<= 150 us", worst <= Duration::from_micros(150)),
    );
    [eth_rss, token_rss]
}

/// The one balance keyward and the raw call both read agree.
fn check_token_balance(keyward: &mut Keyward, rpc: &mut RawRpc) {
    let response = keyward.call_balances(json!({"account": "main"}));
    let listed = &response["result"]["structuredContent"]["accounts"][0]["tokens"][0];
    let raw = rpc.post(&balance_of(TEST_DOLLAR, DEPLOYER, 1).to_string());
    let chain =
        u128::from_str_radix(raw["result"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(
        listed["balance"]["base_units"],
        chain.to_string(),
        "{response}"
    );
}

/// A sequential race: keyward's series, each floor's series, the cast process series, and CPU.
struct Race {
    ours: Series,
    floors: Vec<Series>,
    cast: Series,
    server_cpu: Duration,
    floor_cpu: Vec<Duration>,
}

/// Alternates `wallet_balances` for account 0 with each raw body, [`CALLS`] times, and runs
/// `cast balance --erc20` `casts` times spread over them.
fn race(
    keyward: &mut Keyward,
    rpc: &mut RawRpc,
    raw: &[&str],
    casts: usize,
    rpc_url: &str,
) -> Race {
    let arguments = json!({"account": "main"});
    for _ in 0..200 {
        keyward.call_balances(arguments.clone());
        for body in raw {
            rpc.post(body);
        }
    }
    let mut race = Race {
        ours: Series::default(),
        floors: vec![Series::default(); raw.len()],
        cast: Series::default(),
        server_cpu: Duration::ZERO,
        floor_cpu: vec![Duration::ZERO; raw.len()],
    };
    let cast = common::foundry_tool("cast").unwrap();
    let empty = tempfile::tempdir().unwrap();
    let mut floor_cpu = vec![0u64; raw.len()];
    let server_before = keyward.cpu_nanos();
    for call in 0..CALLS {
        race.ours.time(|| keyward.call_balances(arguments.clone()));
        for (n, body) in raw.iter().enumerate() {
            let cpu = common::thread_cpu_nanos();
            race.floors[n].time(|| rpc.post(body));
            floor_cpu[n] += common::thread_cpu_nanos() - cpu;
        }
        if casts > 0 && call % (CALLS / casts) == 0 {
            let output = race.cast.time(|| {
                Command::new(&cast)
                    .current_dir(empty.path())
                    .args(["balance", "--erc20", TEST_DOLLAR, DEPLOYER])
                    .args(["--rpc-url", rpc_url])
                    .output()
                    .unwrap()
            });
            assert!(output.status.success(), "{output:?}");
        }
    }
    race.server_cpu = Duration::from_nanos((keyward.cpu_nanos() - server_before) / CALLS as u64);
    race.floor_cpu = floor_cpu
        .into_iter()
        .map(|nanos| Duration::from_nanos(nanos / CALLS as u64))
        .collect();
    race
}

/// 8 calls in flight over stdio (one rmcp client) and over HTTP (8 rmcp clients), beside 8 raw
/// requests in flight, in alternating rounds. Returns the stdio and HTTP servers' peak RSS.
fn in_flight(anvil: &Anvil, table: &mut Table) -> (u64, u64) {
    let stdio_home = home(&anvil.url, &[], "");
    let http_home = home(&anvil.url, &[], "\n[http]\nrequests_per_minute = 1000000\n");
    let tokens = driver::create_tokens(keyward_binary(), http_home.path(), "suite", IN_FLIGHT);
    let server = driver::HttpServer::start(keyward_binary(), http_home.path());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (runs, cpu, stdio_rss) = runtime.block_on(async {
        let (stdio, stdio_pid) = common::connect_stdio(stdio_home.path()).await;
        let mut clients = Vec::new();
        for token in &tokens {
            clients.push(
                driver::connect_http(&server.url, token, ClientLifecycleMode::Initialize)
                    .await
                    .unwrap(),
            );
        }
        let http = reqwest::Client::new();
        let body = get_balance(DEPLOYER);
        let arguments = json!({"account": "main"}).as_object().unwrap().clone();
        let balances = |client| checked_balances(client, arguments.clone());
        let raw = || async {
            let bytes = http
                .post(&anvil.url)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .map_err(|err| err.to_string())?
                .bytes()
                .await
                .map_err(|err| err.to_string())?;
            let answer: Value = serde_json::from_slice(&bytes).map_err(|err| err.to_string())?;
            answer
                .get("result")
                .map(drop)
                .ok_or_else(|| answer.to_string())
        };
        let measure = |series: usize, calls: usize| {
            let (stdio, clients) = (&stdio, &clients);
            async move {
                match series {
                    0 => Run::concurrent(IN_FLIGHT, calls, |_| balances(stdio)).await,
                    1 => Run::concurrent(IN_FLIGHT, calls, |n| balances(&clients[n])).await,
                    _ => Run::concurrent(IN_FLIGHT, calls, |_| raw()).await,
                }
            }
        };
        let pids = [Some(stdio_pid), Some(server.pid()), None];
        for series in 0..3 {
            let warm = measure(series, 100).await;
            assert!(warm.errors.is_empty(), "{:?}", &warm.errors[..1]);
        }
        let mut runs: [Run; 3] = Default::default();
        let mut cpu = [0u64; 3];
        for round in 0..IN_FLIGHT_ROUNDS {
            let mut order = [0, 1, 2];
            if round % 2 == 1 {
                order.reverse();
            }
            for series in order {
                let before = pids[series].map_or(0, common::process_cpu_nanos);
                let run = measure(series, IN_FLIGHT_CALLS).await;
                cpu[series] +=
                    pids[series].map_or(0, |pid| common::process_cpu_nanos(pid) - before);
                assert!(run.errors.is_empty(), "{:?}", &run.errors[..1]);
                common::extend_run(&mut runs[series], run);
            }
        }
        let stdio_rss = driver::peak_rss_kib(stdio_pid);
        for client in clients {
            client.cancel().await.unwrap();
        }
        stdio.cancel().await.unwrap();
        (runs, cpu, stdio_rss)
    });
    let http_rss = driver::peak_rss_kib(server.pid());
    let (status, stderr) = server.stop();
    assert!(status.success(), "{status:?}\n{stderr}");

    let calls = IN_FLIGHT_ROUNDS * IN_FLIGHT_CALLS;
    let figures = |run: &Run, cpu: u64| {
        let mut text = format!("{}, {:.0}/s", run_pair(run), run.calls_per_second());
        if cpu > 0 {
            text.push_str(&format!(
                ", CPU {:.0} us/call",
                cpu as f64 / calls as f64 / 1e3
            ));
        }
        text
    };
    let versus = |run: &Run| {
        format!(
            "+{}, {:.0}% of floor's rate",
            show(run.percentile(0.5).saturating_sub(runs[2].percentile(0.5))),
            run.calls_per_second() / runs[2].calls_per_second() * 100.0
        )
    };
    table.row(
        "wallet_balances ETH, 8 in flight, stdio",
        figures(&runs[0], cpu[0]),
        format!("8 raw eth_getBalance in flight: {}", figures(&runs[2], 0)),
        versus(&runs[0]),
        "none set".to_owned(),
    );
    table.row(
        "  the same over HTTP, 8 clients",
        figures(&runs[1], cpu[1]),
        "(the same)",
        versus(&runs[1]),
        "none set".to_owned(),
    );
    (stdio_rss, http_rss)
}

/// `wallet_balances` through an rmcp client; an error says why.
async fn checked_balances(
    client: &driver::Client,
    arguments: serde_json::Map<String, Value>,
) -> Result<(), String> {
    let request = CallToolRequestParams::new("wallet_balances").with_arguments(arguments);
    let result = client
        .call_tool(request)
        .await
        .map_err(|err| err.to_string())?;
    match result.is_error {
        Some(false) => Ok(()),
        _ => Err(format!("tool error: {:?}", result.content)),
    }
}

/// Approved transfers alternating with `cast send`; returns the last server's peak and current
/// RSS (it unlocked the vault and signed).
fn transfers(anvil: &Anvil, table: &mut Table) -> (u64, u64) {
    let cast = common::foundry_tool("cast").unwrap();
    let empty = tempfile::tempdir().unwrap();
    let cast_send = || {
        let started = Instant::now();
        let output = Command::new(&cast)
            .current_dir(empty.path())
            .args(["send", "--private-key", CAST_KEY, "--rpc-url", &anvil.url])
            .args([RECIPIENT, "--value", "1"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        started.elapsed()
    };
    cast_send();
    let (mut rounds, mut casts) = (Vec::<Round>::new(), Series::default());
    let mut fsyncs = Series::default();
    let mut rss = (0, 0);
    for _ in 0..TRANSFER_HOMES {
        let home = home(&anvil.url, &[], "");
        let mut keyward = Keyward::spawn(home.path());
        keyward.initialize();
        let mut codes = Codes::default();
        // The home's first approval also unlocks the vault (scrypt), which cast never does.
        keyward.transfer(&mut codes);
        for _ in 0..TRANSFERS_PER_HOME {
            rounds.push(keyward.transfer(&mut codes));
            casts.0.push(cast_send());
            for _ in 0..5 {
                fsyncs.time(|| durable_write(home.path()));
            }
        }
        rss = (
            keyward.peak_rss_kib(),
            driver::memory_kib(keyward.pid(), "VmRSS"),
        );
        keyward.close();
    }
    let phase = |pick: fn(&Round) -> Duration| Series(rounds.iter().map(pick).collect());
    let total = phase(Round::total);
    let ratio_p50 = total.p50().as_secs_f64() / casts.p50().as_secs_f64();
    table.row(
        format!("approved ETH transfer, end to end ({})", rounds.len()),
        format!(
            "{} / {} max",
            show(total.p50()),
            show(total.percentile(1.0))
        ),
        format!(
            "cast send (process): {} / {} max",
            show(casts.p50()),
            show(casts.percentile(1.0))
        ),
        format!("{ratio_p50:.2}x"),
        target("p50 <= 1.5x cast", ratio_p50 <= 1.5),
    );
    table.more(
        format!("one fsync in the wallet home: {}", pair(&fsyncs)),
        format!(
            "{:.0} fsyncs' worth",
            total.p50().as_secs_f64() / fsyncs.p50().as_secs_f64()
        ),
    );
    table.row(
        "  prepare, approve, sign+receipt (p50)",
        format!(
            "{}, {}, {}",
            show(phase(|r| r.prepare).p50()),
            show(phase(|r| r.approve).p50()),
            show(phase(|r| r.settle).p50())
        ),
        "",
        "",
        String::new(),
    );
    rss
}

/// What keyward pays for each durable state change (request states, nonces, limits, the code's
/// step, the audit log): a small write and `fsync` on the home's file system.
fn durable_write(dir: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(dir.join("fsync-probe")).unwrap();
    file.write_all(&[b'x'; 300]).unwrap();
    file.sync_all().unwrap();
}

/// Keystore and vault unlock beside OpenSSL's scrypt, in alternating rounds.
fn unlock(table: &mut Table) {
    let password = Secret::new("bench password".to_owned());
    let key = PrivateKey::from_bytes(&[0x42; 32]).unwrap();
    let keystore = Keystore::parse(&Keystore::encrypt(&key, &password).unwrap()).unwrap();
    let phrase =
        keyward::hd::parse_phrase("test test test test test test test test test test test junk")
            .unwrap();
    let vault_file = UnlockedVault::create(phrase, &password, Label::new("main").unwrap())
        .unwrap()
        .to_file_bytes()
        .unwrap();
    let vault = Vault::parse(&vault_file).unwrap();
    let mut openssl = OpensslScrypt::start();
    let (mut keystores, mut vaults, mut floor) =
        (Series::default(), Series::default(), Series::default());
    for _ in 0..UNLOCK_ROUNDS {
        let decrypted = keystores.time(|| keystore.decrypt(&password).unwrap());
        assert_eq!(decrypted.address(), key.address());
        drop(vaults.time(|| vault.unlock(&password).unwrap()));
        floor.0.push(openssl.derive());
    }
    let median_ratio = |series: &Series| series.p50().as_secs_f64() / floor.p50().as_secs_f64();
    let spread = |series: &Series| {
        format!(
            "{} ({}-{})",
            show(series.p50()),
            show(series.percentile(0.0)),
            show(series.percentile(1.0))
        )
    };
    table.row(
        format!("keystore unlock, scrypt 2^18/8/1 ({UNLOCK_ROUNDS})"),
        spread(&keystores),
        format!("OpenSSL scrypt (Python hashlib): {}", spread(&floor)),
        format!("{:.2}x", median_ratio(&keystores)),
        target("median <= 1.2x", median_ratio(&keystores) <= 1.2),
    );
    table.row(
        "  vault unlock (scrypt, then the MAC)",
        spread(&vaults),
        "(the same)",
        format!("{:.2}x", median_ratio(&vaults)),
        target("median <= 1.2x", median_ratio(&vaults) <= 1.2),
    );
}

/// The one table: a row per figure, with its floor(s), the comparison and the target.
#[derive(Default)]
struct Table {
    lines: Vec<[String; 5]>,
}

impl Table {
    fn row(
        &mut self,
        name: impl Into<String>,
        ours: impl Into<String>,
        floor: impl Into<String>,
        versus: impl Into<String>,
        target: String,
    ) {
        self.lines.push([
            name.into(),
            ours.into(),
            floor.into(),
            versus.into(),
            target,
        ]);
    }

    /// Another floor for the row above.
    fn more(&mut self, floor: String, versus: String) {
        self.row("", "", floor, versus, String::new());
    }

    fn print(&self) {
        let header = [
            "",
            "keyward (p50 / p99)",
            "floor, same run",
            "keyward vs floor",
            "target",
        ]
        .map(str::to_owned);
        let widths: Vec<usize> = (0..5)
            .map(|column| {
                self.lines
                    .iter()
                    .chain([&header])
                    .map(|line| line[column].chars().count())
                    .max()
                    .unwrap()
            })
            .collect();
        for line in [&header].into_iter().chain(&self.lines) {
            let text: Vec<String> = line
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            println!("{}", text.join("  ").trim_end());
        }
    }
}

fn target(rule: &str, met: bool) -> String {
    format!("{rule}: {}", verdict(met))
}

/// A duration in a unit that suits it.
fn show(duration: Duration) -> String {
    let millis = duration.as_secs_f64() * 1e3;
    match millis {
        m if m < 1.0 => format!("{m:.3} ms"),
        m if m < 100.0 => format!("{m:.2} ms"),
        m if m < 1000.0 => format!("{m:.0} ms"),
        m => format!("{:.3} s", m / 1e3),
    }
}

fn pair(series: &Series) -> String {
    format!("{} / {}", show(series.p50()), show(series.percentile(0.99)))
}

fn run_pair(run: &Run) -> String {
    format!(
        "{} / {}",
        show(run.percentile(0.5)),
        show(run.percentile(0.99))
    )
}

fn difference(ours: &Series, floor: &Series) -> String {
    let (ours, floor) = (ours.p50(), floor.p50());
    if ours >= floor {
        format!("+{}", show(ours - floor))
    } else {
        format!("-{}", show(floor - ours))
    }
}

fn ratio(ours: &Series, floor: &Series) -> String {
    format!(
        "{:.2}x",
        ours.p50().as_secs_f64() / floor.p50().as_secs_f64()
    )
}

fn micros(duration: Duration) -> String {
    format!("{:.0} us", duration.as_secs_f64() * 1e6)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
