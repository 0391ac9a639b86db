//! Load over Streamable HTTP (issue 8): the real `keyward serve --http` on a fresh Anvil, sixteen
//! rmcp clients at once, half of each protocol generation, 2,000 `wallet_balances` calls.
//!
//! Every client has its own token, as separate MCP hosts would: the rate limit is per token, so
//! this is the realistic setup, and it runs under the default limit (600 a minute, which no
//! client here comes near: 125 calls each). A shared token would hit that limit by design.
//!
//! The test asserts only what a user relies on: no call fails and every answer holds exactly the
//! chain's balances. It prints p50, p99, calls/s, the server's CPU per call and its peak RSS for
//! information, never asserting them: this is a debug build on a shared machine. `cargo bench
//! --bench http` measures the release build against its floors.

pub(crate) mod driver;

use std::path::Path;

use crate::support::anvil::Anvil;
use driver::{Expected, HttpServer, RawBalances, Run};

const CLIENTS: usize = 16;
const CALLS: usize = 2000;

#[tokio::test]
async fn sixteen_http_clients_make_2000_balance_calls_without_an_error() {
    let Some(anvil) = Anvil::start(None, 31337) else {
        return;
    };
    anvil.deploy_tokens();
    let binary = Path::new(env!("CARGO_BIN_EXE_keyward"));
    let home = tempfile::tempdir().unwrap();
    driver::write_home(home.path(), &anvil.url, None);
    let tokens = driver::create_tokens(binary, home.path(), "load", CLIENTS);
    let expected = Expected::read(&RawBalances::new(&anvil.url, home.path()), home.path()).await;
    let server = HttpServer::start(binary, home.path());

    let connecting = tokens
        .iter()
        .enumerate()
        .map(|(n, token)| driver::connect_http(&server.url, token, driver::lifecycle(n)));
    let clients: Vec<driver::Client> = futures::future::join_all(connecting)
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    let cpu_before = driver::cpu_nanos(server.pid());
    let run = Run::concurrent(CLIENTS, CALLS, |n| {
        driver::checked_balances(&clients[n], &expected)
    })
    .await;
    let cpu_per_call = (driver::cpu_nanos(server.pid()) - cpu_before) / CALLS as u64;
    let peak_rss = driver::peak_rss_kib(server.pid());
    println!(
        "{CALLS} wallet_balances calls from {CLIENTS} HTTP clients (debug build): p50 {}, p99 {}, \
         {:.0} calls/s, server CPU {:.0} us/call, server peak RSS {:.1} MiB, {} errors",
        driver::ms(run.percentile(0.5)),
        driver::ms(run.percentile(0.99)),
        run.calls_per_second(),
        cpu_per_call as f64 / 1e3,
        peak_rss as f64 / 1024.0,
        run.errors.len()
    );
    assert_eq!(run.latencies.len(), CALLS);
    assert!(
        run.errors.is_empty(),
        "{} of {CALLS} calls failed; the first: {}",
        run.errors.len(),
        run.errors
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );

    for client in clients {
        client.cancel().await.unwrap();
    }
    let (status, stderr) = server.stop();
    assert!(status.success(), "{status:?}\n{stderr}");
    crate::support::assert_no_panic(&stderr);
    anvil.stop();
}
