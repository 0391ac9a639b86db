//! The privacy filter's cost, each beside the path without it, measured in the same run.
//!
//! Run with `cargo bench --bench privacy` (needs `npm ci --prefix anvil`); `-- guard` prints the
//! outbound guard's rows alone. The headline figures (cold start, balances, transfer, unlock, RSS)
//! are in `cargo bench --bench suite`; this is the deeper look at what the privacy filter costs:
//! - the masked model view on `wallet_balances` for all ten accounts and two tokens, one server
//!   with `model_view = "full"` and one with `"masked"`, in alternating calls;
//! - the outbound guard's check per request (allowlist and secret fingerprints of an unlocked
//!   ten-account vault), beside the same check with nothing registered, beside serializing the
//!   request, which every request pays anyway, and beside a raw RPC round trip.
#![expect(clippy::print_stdout, reason = "a benchmark prints its table")]
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark stops on any failure"
)]

#[expect(dead_code, reason = "each benchmark uses a part of the shared helpers")]
mod common;

use std::time::{Duration, Instant};

use common::anvil::{TEST_DOLLAR, TEST_EIGHTEEN};
use common::{
    FIXTURE_PASSWORD, FIXTURE_TOTP_SECRET, Keyward, RawRpc, Series, balances_batch, home, ms,
    support,
};
use serde_json::{Value, json};

fn main() {
    let anvil = support::anvil::Anvil::start(None, 31337).unwrap();
    anvil.deploy_tokens();
    let mut rpc = RawRpc::connect(anvil.port);
    let batch = balances_batch(&[TEST_DOLLAR, TEST_EIGHTEEN]);
    let raw = Series(
        (0..500)
            .map(|_| {
                let started = Instant::now();
                rpc.post(&batch);
                started.elapsed()
            })
            .collect(),
    );
    // `cargo bench --bench privacy -- guard`: the outbound guard's rows alone.
    if !std::env::args().any(|arg| arg == "guard") {
        let token_home = home(&anvil.url, &[(TEST_DOLLAR, 6), (TEST_EIGHTEEN, 18)], "");
        masked_view_rows(&token_home);
    }
    guard_rows(&raw, &batch);
    anvil.stop();
}

/// The masked view: a full and a masked server, alternating calls for every account.
fn masked_view_rows(token_home: &tempfile::TempDir) {
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
}

fn guard_rows(raw: &Series, batch: &str) {
    use keyward::privacy::egress::Egress;
    use keyward::privacy::guard::{Fingerprints, SecretKind, guard};
    const CHECKED_BYTES: u32 = 20_000_000;
    let egress = Egress::build(["127.0.0.1".to_owned()], None, false).unwrap();
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
