//! The real `keyward serve`, killed with SIGKILL at a point of a transfer's life chosen from a
//! seeded RNG, twenty runs: after prepare, while the approval is being answered, after the
//! approval, between signing and the broadcast (the proxy holds `eth_sendRawTransaction` before
//! the node sees it), after the node took the transaction but before keyward heard back, and
//! after the broadcast before the receipt. After each kill a new server starts on the same home,
//! and the run checks: the transfer happened at most once on the chain and only with the bytes
//! signed before the kill, the request is still there with a clear fate, the audit log verifies,
//! and a new transfer lands with the next nonce.
//!
//! The seed is printed; `KEYWARD_FAULT_SEED=N` replays a run sequence.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{FRIEND, MAIN, assert_audit_complete, faulty_config, nonce_of, raw_hash, tx_nonce};
use crate::support::anvil::Anvil;
use crate::support::faultproxy::{Fault, FaultProxy, Rule};
use crate::support::human::{Human, approve_all_on_socket, http};
use crate::support::mcp::{Client, FIXTURE_PASSWORD, ServerHome, call, ok, serve_child};

const RUNS: u64 = 20;

/// Where a run kills the server.
#[derive(Debug, Clone, Copy)]
enum Point {
    /// The request is filed and waits for the human.
    AfterPrepare,
    /// This long after the human's answer was sent, maybe before it was read (the first answer
    /// also unlocks the wallet, which takes a while).
    DuringApproval { after_ms: u64 },
    /// This long after the page said "Approved": signing, recording, sending, following.
    AfterApproval { after_ms: u64 },
    /// Signed and recorded; the proxy holds `eth_sendRawTransaction` before the node sees it.
    BeforeBroadcast,
    /// The node took the transaction; the proxy holds its answer back.
    AfterNodeTookIt,
    /// Broadcast; the proxy holds the first receipt query.
    BeforeReceipt,
}

/// splitmix64: enough randomness to spread kills over the state machine, and replayable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn point(&mut self) -> Point {
        match self.below(6) {
            0 => Point::AfterPrepare,
            1 => Point::DuringApproval {
                after_ms: self.below(800),
            },
            2 => Point::AfterApproval {
                after_ms: self.below(40),
            },
            3 => Point::BeforeBroadcast,
            4 => Point::AfterNodeTookIt,
            _ => Point::BeforeReceipt,
        }
    }
}

/// A `keyward serve` child over stdio, with its pid.
pub(super) struct Child {
    pub(super) client: Client,
    pub(super) pid: u32,
}

impl Child {
    /// Starts the server on `home` once no earlier one holds the wallet's lock.
    pub(super) async fn start(home: &ServerHome) -> Self {
        Self::start_with(home, false).await
    }

    /// As [`Child::start`]; with `ignore_file_size_signal`, the server starts with SIGXFSZ
    /// ignored (an ignored signal survives exec), so a write past `RLIMIT_FSIZE` fails with
    /// EFBIG, as on a full disk, instead of killing it.
    pub(super) async fn start_with(home: &ServerHome, ignore_file_size_signal: bool) -> Self {
        let command = if ignore_file_size_signal {
            let mut command = tokio::process::Command::new("bash");
            command
                .arg("-c")
                .arg("trap '' XFSZ; exec \"$0\" \"$@\"")
                .arg(env!("CARGO_BIN_EXE_keyward"));
            command
        } else {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_keyward"))
        };
        let (client, pid) = serve_child(home.path(), command).await;
        Self { client, pid }
    }

    pub(super) fn kill(&self) {
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(self.pid as i32).unwrap(),
            rustix::process::Signal::KILL,
        )
        .unwrap();
    }

    pub(super) async fn status(&self, id: &str, wait: u64) -> Value {
        ok(&call(
            &self.client,
            "wallet_request_status",
            json!({ "request_id": id, "wait_seconds": wait }),
        )
        .await)
        .clone()
    }
}

/// Kills `pid` from a blocking thread.
fn kill_pid(pid: u32) {
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
}

/// POSTs the approval form, and gives up quietly when the server dies under it.
fn post_approval(url: &str, form: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_at(rest.find('/').unwrap());
    let origin = format!("http://{authority}");
    let Ok(mut stream) = std::net::TcpStream::connect(authority) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nOrigin: {origin}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// Approves every pending request through the terminal approver's socket with `code`.
fn approve_on_socket(home: &std::path::Path, code: &str) -> Value {
    let (listed, answer) = approve_all_on_socket(home, code);
    assert!(
        !listed["requests"].as_array().unwrap().is_empty(),
        "nothing pending: {listed}"
    );
    answer
}

/// Follows a request on the restarted server until it is final, or pending with nothing under
/// way; mines a block now and then in case a transaction waits in the pool.
async fn fate(child: &Child, anvil: &Anvil, id: &str) -> Value {
    let started = Instant::now();
    loop {
        let status = child.status(id, 1).await;
        let state = status["state"].as_str().unwrap();
        if [
            "mined",
            "failed",
            "rejected",
            "expired",
            "awaiting_approval",
        ]
        .contains(&state)
        {
            return status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "request {id} stayed {state} after the restart: {status}"
        );
        anvil.rpc("evm_mine", json!([]));
    }
}

#[tokio::test]
async fn a_server_killed_at_random_points_twenty_times_never_sends_twice_nor_loses_a_request() {
    let Some(anvil) = Anvil::start(None, 31337) else {
        return;
    };
    let seed = std::env::var("KEYWARD_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("KEYWARD_FAULT_SEED={seed}");
    let mut rng = Rng(seed);
    let proxy = FaultProxy::start(anvil.port);
    let suite = Instant::now();
    for run in 0..RUNS {
        let point = rng.point();
        let started = Instant::now();
        // A home of its own per run: its TOTP guard has seen no code yet.
        let home = ServerHome::with_config(&faulty_config(&proxy));
        let mut person = Human::default();
        let nonce_before = nonce_of(&anvil, MAIN);
        let forwarded_before = proxy.forwarded_raw().len();

        let child = Child::start(&home).await;
        let amount = format!("0.{:03}", run + 1);
        let prepared = ok(&call(
            &child.client,
            "wallet_transfer",
            json!({ "to": FRIEND, "amount": amount }),
        )
        .await)
        .clone();
        let id = prepared["request_id"].as_str().unwrap().to_owned();
        let url = prepared["approval_url"].as_str().unwrap().to_owned();
        let hold = match point {
            Point::BeforeBroadcast => Some(Rule::once_on("eth_sendRawTransaction", Fault::Stall)),
            Point::AfterNodeTookIt => Some(Rule::once_on(
                "eth_sendRawTransaction",
                Fault::StallAfterForward,
            )),
            Point::BeforeReceipt => Some(Rule::once_on("eth_getTransactionReceipt", Fault::Stall)),
            _ => None,
        };
        if let Some(rule) = hold {
            proxy.set(rule);
        }
        let pid = child.pid;
        match point {
            Point::AfterPrepare => child.kill(),
            Point::DuringApproval { after_ms } => {
                let page = {
                    let url = url.clone();
                    crate::funds::human(move || http("GET", &url, &[], None)).await
                };
                let code = person.fresh_code();
                let form = approval_form(&page, &code);
                let poster = {
                    let url = url.clone();
                    std::thread::spawn(move || post_approval(&url, &form))
                };
                tokio::time::sleep(Duration::from_millis(after_ms)).await;
                child.kill();
                let _ = poster.join();
            }
            Point::AfterApproval { after_ms } => {
                let (answered, back) = crate::funds::human({
                    let url = url.clone();
                    let mut person = std::mem::take(&mut person);
                    move || {
                        let answered = person.answer(&url, "approve");
                        std::thread::sleep(Duration::from_millis(after_ms));
                        kill_pid(pid);
                        (answered, person)
                    }
                })
                .await;
                person = back;
                assert!(
                    answered.body.contains("Approved."),
                    "run {run}: {}",
                    answered.body
                );
            }
            Point::BeforeBroadcast | Point::AfterNodeTookIt | Point::BeforeReceipt => {
                let (answered, back) = {
                    let url = url.clone();
                    let mut person = std::mem::take(&mut person);
                    crate::funds::human(move || (person.answer(&url, "approve"), person)).await
                };
                person = back;
                assert!(
                    answered.body.contains("Approved."),
                    "run {run}: {}",
                    answered.body
                );
                let stalled = {
                    let proxy = proxy.clone();
                    crate::funds::human(move || proxy.wait_stalled(1, Duration::from_secs(20)))
                        .await
                };
                assert!(stalled, "run {run}: the server never reached {point:?}");
                child.kill();
            }
        }
        proxy.clear();
        proxy.release();
        drop(child);

        // A new server on the same home picks up where the old one died.
        let child = Child::start(&home).await;
        let mut settled = fate(&child, &anvil, &id).await;
        if settled["state"] == "awaiting_approval" {
            // Filed before the kill and never answered: it survived, and can still be approved.
            let code = person.fresh_code();
            let home_dir = home.path().to_owned();
            let reply = crate::funds::human(move || approve_on_socket(&home_dir, &code)).await;
            assert!(reply["error"].is_null(), "run {run}: {reply}");
            settled = fate(&child, &anvil, &id).await;
        }
        let state = settled["state"].as_str().unwrap().to_owned();
        let sent: Vec<String> = proxy.forwarded_raw()[forwarded_before..].to_vec();
        let hashes: std::collections::BTreeSet<String> = sent.iter().map(|r| raw_hash(r)).collect();
        assert!(
            hashes.len() <= 1,
            "run {run}: two different transactions were sent: {hashes:?}"
        );
        match state.as_str() {
            "mined" => {
                assert_eq!(
                    nonce_of(&anvil, MAIN),
                    nonce_before + 1,
                    "run {run}: sent once"
                );
                assert_eq!(
                    hashes.iter().next().map(String::as_str),
                    settled["hash"].as_str(),
                    "run {run}: what landed is what was signed"
                );
                assert_eq!(tx_nonce(&anvil, &settled["hash"]), nonce_before);
            }
            "failed" => {
                assert_eq!(
                    nonce_of(&anvil, MAIN),
                    nonce_before,
                    "run {run}: nothing sent"
                );
                let reason = settled["reason"].as_str().unwrap();
                assert!(
                    reason.contains("nothing was sent") && reason.contains("ask again"),
                    "run {run}: {reason}"
                );
            }
            other => panic!("run {run} ({point:?}): the request ended {other}: {settled}"),
        }

        // A new transfer on the restarted server lands with the next nonce.
        let next = ok(&call(
            &child.client,
            "wallet_transfer",
            json!({ "to": FRIEND, "amount": "0.0001" }),
        )
        .await)
        .clone();
        let next_id = next["request_id"].as_str().unwrap().to_owned();
        let code = person.fresh_code();
        let home_dir = home.path().to_owned();
        let reply = crate::funds::human(move || approve_on_socket(&home_dir, &code)).await;
        assert!(reply["error"].is_null(), "run {run}: {reply}");
        let landed = fate(&child, &anvil, &next_id).await;
        assert_eq!(landed["state"], "mined", "run {run}: {landed}");
        let expected = nonce_before + u64::from(state == "mined");
        assert_eq!(tx_nonce(&anvil, &landed["hash"]), expected, "run {run}");
        child.client.cancel().await.unwrap();
        assert_audit_complete(home.path());
        println!(
            "run {run:2}: killed {point:?}; after restart {state}; next transfer nonce {expected}; \
             {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    println!(
        "{RUNS} runs in {:.1} s (KEYWARD_FAULT_SEED={seed})",
        suite.elapsed().as_secs_f64()
    );
}

/// The page's form, filled in with `code` and the wallet's password, as the page asks for it.
fn approval_form(page: &crate::support::human::Response, code: &str) -> String {
    let mut form = format!(
        "csrf={}&digest={}&code={code}&decision=approve",
        page.input("csrf").unwrap(),
        page.input("digest").unwrap_or_default(),
    );
    if page.input("password").is_some() {
        form.push_str("&password=");
        form.push_str(&FIXTURE_PASSWORD.replace(' ', "+"));
    }
    form
}
