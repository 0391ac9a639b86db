//! MCP over Streamable HTTP under load, each figure beside its floor measured in the same run.
//!
//! Run with `cargo bench --bench http` (needs `npm ci --prefix anvil`). It starts its own Anvil
//! with the test tokens, serves one wallet home with `keyward serve --http` (release build) and
//! another over stdio, and prints one table of `wallet_balances` calls for all ten accounts and
//! both tokens (ten RPC batches per call):
//! - 16 concurrent rmcp clients over HTTP, each with its own token, half of each protocol
//!   generation: p50, p99, calls/s and server CPU per call, beside the same reads sent straight
//!   to Anvil by 16 concurrent callers;
//! - one client calling sequentially over HTTP, beside the same client over stdio and the raw
//!   reads, also sequential;
//! - the HTTP server's peak RSS (VmHWM) against the 40 MiB target, beside the stdio server's.
//!
//! The series run in alternating rounds (the order reversed every other round), so a noisy
//! machine slows every row alike. Clients and callers share one single-threaded runtime, like the
//! server's. The rate limit is raised in this home's configuration: the sequential client alone
//! makes more calls than a token's default 600 a minute.
#![expect(clippy::print_stdout, reason = "a benchmark prints its table")]
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark stops on any failure"
)]

#[expect(dead_code, reason = "each benchmark uses a part of the shared helpers")]
mod common;

use std::path::Path;

use common::driver::{self, Expected, HttpServer, RawBalances, Run};
use common::{connect_stdio, support};
use rmcp::ClientLifecycleMode;

const CLIENTS: usize = 16;
const ROUNDS: usize = 4;
/// Per round: 2,000 concurrent calls over HTTP in all, as in the acceptance test.
const LOAD_CALLS: usize = 500;
const SEQUENTIAL_CALLS: usize = 200;
const RSS_TARGET_KIB: u64 = 40 * 1024;

/// The series of one row: its calls, and the server CPU they took (when there is a server).
#[derive(Default)]
struct Row {
    run: Run,
    server_cpu_nanos: u64,
}

impl Row {
    fn add(&mut self, run: Run, server_cpu_nanos: u64) {
        common::extend_run(&mut self.run, run);
        self.server_cpu_nanos += server_cpu_nanos;
    }

    fn print(&self, name: &str, server: bool) {
        let cpu = if server {
            format!(
                "{:.0} us",
                self.server_cpu_nanos as f64 / self.run.latencies.len() as f64 / 1e3
            )
        } else {
            "-".to_owned()
        };
        println!(
            "{:<56} {:>6} {:>10} {:>10} {:>9.0} {:>12}",
            name,
            self.run.latencies.len(),
            driver::ms(self.run.percentile(0.5)),
            driver::ms(self.run.percentile(0.99)),
            self.run.calls_per_second(),
            cpu
        );
    }
}

/// Which series a step of a round measures.
#[derive(Clone, Copy)]
enum Series {
    HttpLoad,
    RawLoad,
    HttpSequential,
    StdioSequential,
    RawSequential,
}

const ORDER: [Series; 5] = [
    Series::HttpLoad,
    Series::RawLoad,
    Series::HttpSequential,
    Series::StdioSequential,
    Series::RawSequential,
];

fn main() {
    let anvil = support::anvil::Anvil::start(None, 31337).unwrap();
    anvil.deploy_tokens();
    let binary = Path::new(env!("CARGO_BIN_EXE_keyward"));
    let (http_home, stdio_home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for home in [&http_home, &stdio_home] {
        driver::write_home(home.path(), &anvil.url, Some(1_000_000));
    }
    let tokens = driver::create_tokens(binary, http_home.path(), "bench", CLIENTS + 1);
    let server = HttpServer::start(binary, http_home.path());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (rows, stdio_rss) = runtime.block_on(async {
        let raw = RawBalances::new(&anvil.url, http_home.path());
        let expected = Expected::read(&raw, http_home.path()).await;
        let mut clients = Vec::new();
        for (n, token) in tokens[..CLIENTS].iter().enumerate() {
            clients.push(
                driver::connect_http(&server.url, token, driver::lifecycle(n))
                    .await
                    .unwrap(),
            );
        }
        let sequential = driver::connect_http(
            &server.url,
            &tokens[CLIENTS],
            ClientLifecycleMode::Initialize,
        )
        .await
        .unwrap();
        let (stdio, stdio_pid) = connect_stdio(stdio_home.path()).await;

        let expected = &expected;
        let checked = |client| driver::checked_balances(client, expected);
        let raw_read = || async { raw.read().await.map(drop) };
        let measure = |series: Series| {
            let (clients, sequential, stdio) = (&clients, &sequential, &stdio);
            async move {
                match series {
                    Series::HttpLoad => {
                        Run::concurrent(CLIENTS, LOAD_CALLS, |n| checked(&clients[n])).await
                    }
                    Series::RawLoad => Run::concurrent(CLIENTS, LOAD_CALLS, |_| raw_read()).await,
                    Series::HttpSequential => {
                        Run::concurrent(1, SEQUENTIAL_CALLS, |_| checked(sequential)).await
                    }
                    Series::StdioSequential => {
                        Run::concurrent(1, SEQUENTIAL_CALLS, |_| checked(stdio)).await
                    }
                    Series::RawSequential => {
                        Run::concurrent(1, SEQUENTIAL_CALLS, |_| raw_read()).await
                    }
                }
            }
        };
        // Warm-up: connections, pools and the servers' first unlock-free reads.
        for series in ORDER {
            let warm = measure(series).await;
            assert!(warm.errors.is_empty(), "{:?}", &warm.errors[..1]);
        }

        let mut rows: Vec<Row> = ORDER.iter().map(|_| Row::default()).collect();
        for round in 0..ROUNDS {
            let mut order: Vec<usize> = (0..ORDER.len()).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for index in order {
                let series = ORDER[index];
                let pid = match series {
                    Series::HttpLoad | Series::HttpSequential => Some(server.pid()),
                    Series::StdioSequential => Some(stdio_pid),
                    Series::RawLoad | Series::RawSequential => None,
                };
                let cpu_before = pid.map_or(0, driver::cpu_nanos);
                let run = measure(series).await;
                let cpu = pid.map_or(0, |pid| driver::cpu_nanos(pid) - cpu_before);
                rows[index].add(run, cpu);
            }
        }
        let stdio_rss = driver::peak_rss_kib(stdio_pid);
        for client in clients {
            client.cancel().await.unwrap();
        }
        sequential.cancel().await.unwrap();
        stdio.cancel().await.unwrap();
        (rows, stdio_rss)
    });
    let http_rss = driver::peak_rss_kib(server.pid());
    let (status, stderr) = server.stop();
    assert!(status.success(), "{status:?}\n{stderr}");

    println!();
    println!(
        "keyward MCP over Streamable HTTP, release build, against a local Anvil: wallet_balances for \
         {} accounts and 2 tokens (one RPC batch per account), {ROUNDS} alternating rounds",
        driver::ACCOUNTS
    );
    println!(
        "{:<56} {:>6} {:>10} {:>10} {:>9} {:>12}",
        "", "calls", "p50", "p99", "calls/s", "server CPU"
    );
    let names = [
        (
            "HTTP, 16 concurrent clients (8 initialize, 8 discover)",
            true,
        ),
        (
            "  floor: the same reads straight to Anvil, 16 at once",
            false,
        ),
        ("HTTP, one client, sequential", true),
        ("  floor: stdio, one client, sequential", true),
        (
            "  floor: the same reads straight to Anvil, sequential",
            false,
        ),
    ];
    for (row, (name, server)) in rows.iter().zip(names) {
        row.print(name, server);
    }
    let errors: usize = rows.iter().map(|row| row.run.errors.len()).sum();
    println!(
        "peak RSS (VmHWM): HTTP server {:.1} MiB, target <= 40 MiB ({}); stdio server {:.1} MiB",
        http_rss as f64 / 1024.0,
        if http_rss <= RSS_TARGET_KIB {
            "met"
        } else {
            "MISSED"
        },
        stdio_rss as f64 / 1024.0
    );
    println!("errors: {errors} (every answer checked against the chain's balances)");
    if let Some(first) = rows.iter().find_map(|row| row.run.errors.first()) {
        println!("  first: {first}");
    }
    anvil.stop();
}
