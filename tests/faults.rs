//! Fault injection against a real Anvil: an RPC proxy between keyward and the node that drops,
//! delays, truncates or garbles answers, switches the chain id or stalls; a reorg after the
//! broadcast; a read-only or full state directory; two humans approving one request at once; and
//! (in `faults/kill.rs`) the real binary killed at random points of a request's life.
//!
//! The invariants every test checks: nothing is sent twice (at the proxy, where the signed bytes
//! leave, and on the chain), no request is lost, the audit log verifies, and every error the model
//! or the human sees says what happened and what to do.

mod kill;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::funds::{cast_balance, human};
use crate::support::anvil::Anvil;
use crate::support::faultproxy::{Fault, FaultProxy, Rule};
use crate::support::human::{Human, http};
use crate::support::mcp::{
    Client, Endpoint, FIXTURE_PASSWORD, Generation, ServerHome, Transport, call, config_text, ok,
    tool_error,
};

pub(crate) const MAIN: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
pub(crate) const FRIEND: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
/// One RPC request may take this long in these tests, so a stall costs two seconds, not twenty.
pub(crate) const RPC_TIMEOUT_SECONDS: u64 = 2;
const WEI_PER_MILLI_ETH: u128 = 1_000_000_000_000_000;

/// The test config: network "anvil" reached through `proxy`, with a short RPC timeout.
pub(crate) fn faulty_config(proxy: &FaultProxy) -> String {
    config_text(&proxy.url, 31337).replace(
        "rpc_url = ",
        &format!("rpc_timeout_seconds = {RPC_TIMEOUT_SECONDS}\nrpc_url = "),
    )
}

/// A fresh Anvil with the tokens, a fault proxy in front of it, and an in-process server whose
/// RPC goes through the proxy.
struct FaultRig {
    anvil: Anvil,
    proxy: FaultProxy,
    home: ServerHome,
    client: Client,
    _endpoint: Endpoint,
    server: keyward::mcp::Server,
    person: Human,
}

impl FaultRig {
    async fn start() -> Option<Self> {
        let anvil = Anvil::start(None, 31337)?;
        anvil.deploy_tokens();
        let proxy = FaultProxy::start(anvil.port);
        let home = ServerHome::with_config(&faulty_config(&proxy));
        let server = home.server();
        server.start_approvals().await.unwrap();
        let endpoint = Endpoint::open(&home, &server, Transport::Stdio).await;
        let client = endpoint.connect((), Generation::Initialize).await;
        Some(Self {
            anvil,
            proxy,
            home,
            client,
            _endpoint: endpoint,
            server,
            person: Human::default(),
        })
    }

    fn state_dir(&self) -> &Path {
        self.home.path()
    }

    /// Prepares a transfer of `milli_eth` thousandths of an ETH from MAIN to FRIEND; returns the
    /// tool's result.
    async fn prepare(&self, milli_eth: u32) -> Value {
        ok(&call(
            &self.client,
            "wallet_transfer",
            json!({ "to": FRIEND, "amount": format!("0.{milli_eth:03}") }),
        )
        .await)
        .clone()
    }

    /// The human approves `prepared` on the page; returns the page's answer.
    async fn approve(&mut self, prepared: &Value) -> crate::support::human::Response {
        let url = prepared["approval_url"].as_str().unwrap().to_owned();
        let mut person = std::mem::take(&mut self.person);
        let (answered, person) = human(move || (person.answer(&url, "approve"), person)).await;
        self.person = person;
        answered
    }

    async fn status(&self, id: &str, wait: u64) -> Value {
        ok(&call(
            &self.client,
            "wallet_request_status",
            json!({ "request_id": id, "wait_seconds": wait }),
        )
        .await)
        .clone()
    }

    /// Waits until the request is final; panics after 30 s.
    async fn settle(&self, id: &str) -> Value {
        let started = Instant::now();
        loop {
            let status = self.status(id, 2).await;
            if ["mined", "failed", "rejected", "expired"]
                .contains(&status["state"].as_str().unwrap())
            {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "request {id} did not settle: {status}"
            );
        }
    }

    fn nonce(&self) -> u64 {
        nonce_of(&self.anvil, MAIN)
    }
}

/// The account's nonce on the chain (transactions mined).
pub(crate) fn nonce_of(anvil: &Anvil, address: &str) -> u64 {
    let value = anvil.rpc("eth_getTransactionCount", json!([address, "latest"]));
    u64::from_str_radix(value.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

/// The nonce of a transaction on the chain, by hash.
pub(crate) fn tx_nonce(anvil: &Anvil, hash: &Value) -> u64 {
    let transaction = anvil.rpc("eth_getTransactionByHash", json!([hash]));
    assert!(!transaction.is_null(), "{hash} is not on the chain");
    u64::from_str_radix(
        transaction["nonce"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap()
}

/// The hash of raw transaction bytes given as `0x…` hex.
pub(crate) fn raw_hash(raw: &str) -> String {
    let bytes = hex::decode(raw.trim_start_matches("0x")).unwrap();
    format!("{:#x}", alloy::primitives::keccak256(bytes))
}

/// The audit log verifies, and every request in the store has the audit entries its state says
/// it went through: no request is lost, and no step went unrecorded.
pub(crate) fn assert_audit_complete(state_dir: &Path) {
    keyward::audit::verify(state_dir).unwrap();
    let log = std::fs::read_to_string(state_dir.join("audit.jsonl")).unwrap();
    let entries: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let requests: Value =
        serde_json::from_slice(&std::fs::read(state_dir.join("requests.json")).unwrap()).unwrap();
    for (id, request) in requests["requests"].as_object().unwrap() {
        let kinds: Vec<&str> = entries
            .iter()
            .filter(|e| e["request"] == id.as_str())
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        let expected: &[&str] = match request["state"].as_str().unwrap() {
            "pending" => &["prepared"],
            "approved" => &["prepared", "approved"],
            "signed" => &["prepared", "approved", "signed"],
            "broadcast" => &["prepared", "approved", "signed", "broadcast"],
            "mined" => &["prepared", "approved", "signed", "broadcast", "mined"],
            "rejected" => &["prepared", "rejected"],
            "expired" => &["prepared", "expired"],
            "failed" => &["prepared", "failed"],
            other => panic!("request {id} is in state {other}"),
        };
        for kind in expected {
            assert!(
                kinds.contains(kind),
                "request {id} ({}) has no `{kind}` audit entry; it has {kinds:?}",
                request["state"]
            );
        }
    }
}

/// Every RPC fault on a read is a tool error whose kind and words say what happened, and the
/// next call after the fault works.
#[tokio::test]
async fn rpc_faults_on_reads_are_clear_tool_errors_and_the_next_call_works() {
    let Some(rig) = FaultRig::start().await else {
        return;
    };
    let balances = || call(&rig.client, "wallet_balances", json!({ "account": "main" }));
    let at = format!("at {}", rig.proxy.url);
    let cases: [(Fault, &str, &[&str]); 7] = [
        (
            Fault::Drop,
            "rpc_unreachable",
            &["cannot reach the RPC", "check that the node is running"],
        ),
        (
            Fault::Truncate,
            "rpc_unreachable",
            &["its answer was cut off"],
        ),
        (
            Fault::NotJson,
            "rpc_bad_response",
            &[
                "sent an unusable answer: the response is not JSON",
                "rpc_url",
            ],
        ),
        (
            Fault::WrongIds,
            "rpc_bad_response",
            &["a response answers a request that was not sent"],
        ),
        (Fault::WrongTypes, "rpc_bad_response", &["is not a number"]),
        (
            Fault::ChainId(1),
            "wrong_chain",
            &[
                "serves chain id 1, but the configuration says 31337",
                "fix rpc_url or chain_id",
            ],
        ),
        (
            Fault::Stall,
            "rpc_unreachable",
            &["did not answer within rpc_timeout_seconds"],
        ),
    ];
    for (fault, kind, words) in cases {
        rig.proxy.set(Rule::always(fault.clone()));
        let started = Instant::now();
        let result = balances().await;
        let took = started.elapsed();
        let (got_kind, text) = tool_error(&result);
        assert_eq!(got_kind, kind, "{fault:?}: {text}");
        assert!(
            text.contains(&at),
            "{fault:?}: the error names the RPC: {text}"
        );
        for word in words {
            assert!(text.contains(word), "{fault:?}: {text}");
        }
        println!("{fault:?}: {kind} after {took:?}: {text}");
        if fault == Fault::Stall {
            // Bounded by rpc_timeout_seconds, not by the node.
            assert!(
                took < Duration::from_secs(RPC_TIMEOUT_SECONDS * 3),
                "{took:?}"
            );
            rig.proxy.release();
        }
        rig.proxy.clear();
        let balances = ok(&balances().await).clone();
        assert!(
            balances["eth"].is_string() || balances.is_object(),
            "{balances}"
        );
    }

    // A slow answer within the timeout is only slow.
    rig.proxy
        .set(Rule::always(Fault::Delay(Duration::from_millis(300))));
    ok(&balances().await);

    // A fault while planning a transfer files nothing and reserves nothing. (A read that fails
    // in transport is retried once, so the fault here is one that is not.)
    let nonce = rig.nonce();
    rig.proxy
        .set(Rule::once_on("eth_getTransactionCount", Fault::NotJson));
    let (kind, text) = tool_error(
        &call(
            &rig.client,
            "wallet_transfer",
            json!({ "to": FRIEND, "amount": "0.001" }),
        )
        .await,
    );
    assert_eq!(kind, "rpc_bad_response", "{text}");
    let prepared = rig.prepare(1).await;
    assert_eq!(
        prepared["review"]
            .as_str()
            .unwrap()
            .lines()
            .find(|l| l.trim_start().starts_with("Nonce"))
            .map(|l| l.split_whitespace().last().unwrap().to_owned()),
        Some(nonce.to_string()),
        "the failed plan reserved a nonce: {prepared}"
    );
    assert!(rig.proxy.forwarded_raw().is_empty());
    assert_audit_complete(rig.state_dir());
}

/// The answer to `eth_sendRawTransaction` is lost or unusable after the node took the
/// transaction: keyward finds it by hash, reports it mined, and sends nothing again.
async fn sent_but_unanswered(fault: Fault) {
    let Some(mut rig) = FaultRig::start().await else {
        return;
    };
    let nonce = rig.nonce();
    let before = cast_balance(&rig.anvil.url, FRIEND, None);
    let prepared = rig.prepare(7).await;
    let id = prepared["request_id"].as_str().unwrap().to_owned();
    rig.proxy
        .set(Rule::once_on("eth_sendRawTransaction", fault.clone()));
    let answered = rig.approve(&prepared).await;
    assert!(answered.body.contains("Approved"), "{}", answered.body);
    if matches!(fault, Fault::StallAfterForward) {
        let proxy = rig.proxy.clone();
        assert!(human(move || proxy.wait_stalled(1, Duration::from_secs(10))).await);
    }
    let settled = rig.settle(&id).await;
    rig.proxy.release();
    assert_eq!(rig.proxy.faulted(), 1, "{fault:?} was applied");
    assert_eq!(settled["state"], "mined", "{fault:?}: {settled}");
    let sent = rig.proxy.forwarded_raw();
    assert_eq!(sent.len(), 1, "{fault:?}: sent {sent:?}");
    assert_eq!(raw_hash(&sent[0]), settled["hash"].as_str().unwrap());
    assert_eq!(rig.nonce(), nonce + 1, "{fault:?}: one transaction");
    assert_eq!(
        cast_balance(&rig.anvil.url, FRIEND, None) - before,
        7 * WEI_PER_MILLI_ETH
    );
    assert_audit_complete(rig.state_dir());
    println!("{fault:?}: mined once, {settled}");
}

/// The broadcast never reached the node: the request fails saying nothing was sent, and the next
/// transfer takes the same nonce, so the two can never both land.
async fn never_reached(fault: Fault) {
    let Some(mut rig) = FaultRig::start().await else {
        return;
    };
    let nonce = rig.nonce();
    let prepared = rig.prepare(3).await;
    let id = prepared["request_id"].as_str().unwrap().to_owned();
    rig.proxy
        .set(Rule::once_on("eth_sendRawTransaction", fault.clone()));
    let answered = rig.approve(&prepared).await;
    assert!(answered.body.contains("Approved"), "{}", answered.body);
    let settled = rig.settle(&id).await;
    rig.proxy.release();
    assert_eq!(rig.proxy.faulted(), 1, "{fault:?} was applied");
    assert_eq!(settled["state"], "failed", "{fault:?}: {settled}");
    let reason = settled["reason"].as_str().unwrap();
    assert!(
        reason.contains("nothing was sent") && reason.contains("ask again"),
        "{fault:?}: {reason}"
    );
    assert!(rig.proxy.forwarded_raw().is_empty());
    assert_eq!(rig.nonce(), nonce);

    // The page says the same to the human.
    let url = prepared["approval_url"].as_str().unwrap().to_owned();
    let page = human(move || http("GET", &url, &[], None)).await;
    assert!(page.body.contains("nothing was sent"), "{}", page.body);

    let again = rig.prepare(3).await;
    let again_id = again["request_id"].as_str().unwrap().to_owned();
    rig.approve(&again).await;
    let landed = rig.settle(&again_id).await;
    assert_eq!(landed["state"], "mined", "{landed}");
    assert_eq!(tx_nonce(&rig.anvil, &landed["hash"]), nonce);
    assert_eq!(rig.proxy.forwarded_raw().len(), 1);
    assert_audit_complete(rig.state_dir());
    println!("{fault:?}: {reason}");
}

mod broadcast_answer_lost {
    use super::*;

    #[tokio::test]
    async fn dropped_after_the_node_took_it() {
        sent_but_unanswered(Fault::DropAfterForward).await;
    }

    #[tokio::test]
    async fn stalled_after_the_node_took_it() {
        sent_but_unanswered(Fault::StallAfterForward).await;
    }

    #[tokio::test]
    async fn truncated() {
        sent_but_unanswered(Fault::Truncate).await;
    }

    #[tokio::test]
    async fn not_json() {
        sent_but_unanswered(Fault::NotJson).await;
    }

    #[tokio::test]
    async fn wrong_ids() {
        sent_but_unanswered(Fault::WrongIds).await;
    }
}

mod broadcast_never_reached {
    use super::*;

    #[tokio::test]
    async fn dropped() {
        never_reached(Fault::Drop).await;
    }

    #[tokio::test]
    async fn stalled() {
        never_reached(Fault::Stall).await;
    }
}

/// An RPC that switches chains is refused at every step: at prepare, and after the approval
/// before anything is sent.
#[tokio::test]
async fn a_switched_chain_id_stops_a_transfer_before_anything_is_sent() {
    let Some(mut rig) = FaultRig::start().await else {
        return;
    };
    let nonce = rig.nonce();
    rig.proxy.set(Rule::always(Fault::ChainId(1)));
    let (kind, text) = tool_error(
        &call(
            &rig.client,
            "wallet_transfer",
            json!({ "to": FRIEND, "amount": "0.001" }),
        )
        .await,
    );
    assert_eq!(kind, "wrong_chain", "{text}");
    assert!(
        text.contains("serves chain id 1, but the configuration says 31337"),
        "{text}"
    );
    rig.proxy.clear();

    let prepared = rig.prepare(2).await;
    let id = prepared["request_id"].as_str().unwrap().to_owned();
    // The node behind the RPC changes chains between the approval and the broadcast.
    rig.proxy.set(Rule::always(Fault::ChainId(1)));
    rig.approve(&prepared).await;
    let settled = rig.settle(&id).await;
    rig.proxy.clear();
    assert_eq!(settled["state"], "failed", "{settled}");
    let reason = settled["reason"].as_str().unwrap();
    assert!(
        reason.contains("serves chain id 1") && reason.contains("nothing was sent"),
        "{reason}"
    );
    assert!(
        rig.proxy.forwarded_raw().is_empty(),
        "sent on a wrong chain"
    );
    assert_eq!(rig.nonce(), nonce);

    // Back on the right chain, the next transfer takes the same nonce.
    let again = rig.prepare(2).await;
    let again_id = again["request_id"].as_str().unwrap().to_owned();
    rig.approve(&again).await;
    let landed = rig.settle(&again_id).await;
    assert_eq!(landed["state"], "mined", "{landed}");
    assert_eq!(tx_nonce(&rig.anvil, &landed["hash"]), nonce);
    assert_audit_complete(rig.state_dir());
}

/// A reorg drops the block with keyward's transaction: the chain's answer is reported as it is,
/// nothing is sent again behind the human's back, and the next transfer takes the freed nonce
/// instead of leaving a gap no transaction can fill.
#[tokio::test]
async fn a_reorg_after_the_broadcast_sends_nothing_again_and_the_next_nonce_fills_the_gap() {
    let Some(mut rig) = FaultRig::start().await else {
        return;
    };
    rig.anvil.rpc("anvil_mine", json!([3]));
    let nonce = rig.nonce();
    let prepared = rig.prepare(5).await;
    let id = prepared["request_id"].as_str().unwrap().to_owned();
    rig.approve(&prepared).await;
    let mined = rig.settle(&id).await;
    assert_eq!(mined["state"], "mined", "{mined}");
    let hash = mined["hash"].clone();

    rig.anvil.rpc("anvil_reorg", json!([1, []]));
    assert_eq!(rig.nonce(), nonce, "the reorg dropped the transaction");
    let looked_up = ok(&call(
        &rig.client,
        "wallet_transaction_status",
        json!({ "hash": hash }),
    )
    .await)
    .clone();
    assert_eq!(looked_up["status"], "unknown", "{looked_up}");
    println!(
        "after the reorg: transaction {looked_up}, request {}",
        rig.status(&id, 0).await
    );

    // Nothing goes out again on its own.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(rig.proxy.forwarded_raw().len(), 1);
    assert_eq!(rig.nonce(), nonce);

    // The next transfer takes the nonce the reorg freed.
    let again = rig.prepare(5).await;
    let again_id = again["request_id"].as_str().unwrap().to_owned();
    rig.approve(&again).await;
    let landed = rig.settle(&again_id).await;
    assert_eq!(landed["state"], "mined", "{landed}");
    assert_eq!(tx_nonce(&rig.anvil, &landed["hash"]), nonce);
    assert_eq!(rig.nonce(), nonce + 1);
    assert_audit_complete(rig.state_dir());
}

/// Makes `path` unwritable for keyward and undoes it on drop. The tests run as root in CI, and
/// root ignores permission bits, so there it sets the immutable attribute (`chattr +i`), which
/// binds root too; elsewhere it drops the write bits. `None` (with the reason printed) when
/// neither works here.
struct ReadOnly {
    path: std::path::PathBuf,
    immutable: bool,
    mode: u32,
}

impl ReadOnly {
    fn make(path: &Path) -> Option<Self> {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        if rustix::process::geteuid().is_root() {
            let status = std::process::Command::new("chattr")
                .arg("+i")
                .arg(path)
                .stderr(std::process::Stdio::null())
                .status();
            if !status.is_ok_and(|s| s.success()) {
                println!(
                    "skipped: running as root, which ignores permission bits, and `chattr +i` \
                     does not work on {} (no chattr, or a file system without the attribute)",
                    path.display()
                );
                return None;
            }
            return Some(Self {
                path: path.to_owned(),
                immutable: true,
                mode,
            });
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & !0o222)).unwrap();
        Some(Self {
            path: path.to_owned(),
            immutable: false,
            mode,
        })
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        if self.immutable {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(&self.path)
                .status();
        } else {
            let _ =
                std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(self.mode));
        }
    }
}

/// A state directory that cannot be written refuses new transfers and approvals with an error
/// that says so, and an audit log that cannot be written stops a fund movement before it is
/// filed or signed: no step goes unrecorded.
#[tokio::test]
async fn an_unwritable_state_directory_or_audit_log_refuses_fund_movements_and_loses_no_entry() {
    let Some(mut rig) = FaultRig::start().await else {
        return;
    };
    let nonce = rig.nonce();
    let pending = rig.prepare(4).await;
    let pending_id = pending["request_id"].as_str().unwrap().to_owned();

    // The whole state directory read-only.
    {
        let Some(_read_only) = ReadOnly::make(rig.state_dir()) else {
            return;
        };
        let (kind, text) = tool_error(
            &call(
                &rig.client,
                "wallet_transfer",
                json!({ "to": FRIEND, "amount": "0.004" }),
            )
            .await,
        );
        assert_eq!(kind, "unavailable", "{text}");
        assert!(
            text.contains("requests.json") || text.contains("cannot"),
            "{text}"
        );
        println!("read-only state directory, prepare: {text}");
        let answered = rig.approve(&pending).await;
        assert!(!answered.body.contains("Approved."), "{}", answered.body);
        println!(
            "read-only state directory, approval page: {}",
            message_of(&answered.body)
        );
        assert_eq!(
            rig.status(&pending_id, 0).await["state"],
            "awaiting_approval"
        );
    }

    // Only the audit log read-only: nothing may move without its record.
    {
        let Some(_read_only) = ReadOnly::make(&rig.state_dir().join("audit.jsonl")) else {
            return;
        };
        let (kind, text) = tool_error(
            &call(
                &rig.client,
                "wallet_transfer",
                json!({ "to": FRIEND, "amount": "0.004" }),
            )
            .await,
        );
        assert_eq!(kind, "unavailable", "{text}");
        assert!(text.contains("audit log"), "{text}");
        println!("read-only audit log, prepare: {text}");
        let answered = rig.approve(&pending).await;
        assert!(!answered.body.contains("Approved."), "{}", answered.body);
        assert!(
            message_of(&answered.body).contains("audit log"),
            "{}",
            answered.body
        );
        println!(
            "read-only audit log, approval page: {}",
            message_of(&answered.body)
        );
        assert_eq!(
            rig.status(&pending_id, 0).await["state"],
            "awaiting_approval"
        );
    }
    assert!(rig.proxy.forwarded_raw().is_empty());
    assert_eq!(rig.nonce(), nonce);

    // Writable again: the same request is approved and lands once.
    let answered = rig.approve(&pending).await;
    assert!(answered.body.contains("Approved."), "{}", answered.body);
    let settled = rig.settle(&pending_id).await;
    assert_eq!(settled["state"], "mined", "{settled}");
    assert_eq!(rig.proxy.forwarded_raw().len(), 1);
    assert_eq!(rig.nonce(), nonce + 1);
    assert_audit_complete(rig.state_dir());
}

/// The message the approval page shows after a POST.
pub(crate) fn message_of(body: &str) -> String {
    body.split("id=\"message\">")
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .unwrap_or("(no message)")
        .to_owned()
}

/// Two humans answer one request at the same moment, on the page twice or on the page and in
/// the terminal approver: exactly one approval wins, one transaction is sent, and the other
/// human is told the request was already answered.
#[tokio::test]
async fn two_humans_approving_one_request_at_once_send_one_transaction() {
    let Some(rig) = FaultRig::start().await else {
        return;
    };
    let nonce = rig.nonce();
    // Slow answers from the node widen the window in which both approvals are in flight.
    rig.proxy
        .set(Rule::always(Fault::Delay(Duration::from_millis(20))));
    let first_step = crate::support::human::unix_now() / 30 - 1;
    for (round, rival) in ["page", "terminal"].into_iter().enumerate() {
        let prepared = rig.prepare(6).await;
        let id = prepared["request_id"].as_str().unwrap().to_owned();
        let digest = prepared["digest"].as_str().unwrap().to_owned();
        let url = prepared["approval_url"].as_str().unwrap().to_owned();
        // Both type the same, valid code: the one on their authenticator.
        let code = crate::support::human::code_at((first_step + round as u64) * 30);
        let page = {
            let url = url.clone();
            human(move || http("GET", &url, &[], None)).await
        };
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let first = {
            let (url, page, code, barrier) =
                (url.clone(), page.clone(), code.clone(), barrier.clone());
            tokio::task::spawn_blocking(move || {
                barrier.wait();
                let answer = Human::default().submit(&url, &page, &code, "approve");
                message_of(&answer.body)
            })
        };
        let second = {
            let socket = rig.state_dir().join("approve.sock");
            let (id, digest, code, barrier) =
                (id.clone(), digest.clone(), code.clone(), barrier.clone());
            let rival_url = url.clone();
            let rival_page = page.clone();
            tokio::task::spawn_blocking(move || {
                if rival == "page" {
                    barrier.wait();
                    let answer = Human::default().submit(&rival_url, &rival_page, &code, "approve");
                    return message_of(&answer.body);
                }
                use std::io::{BufRead, BufReader, Write};
                let stream = std::os::unix::net::UnixStream::connect(&socket).unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                let line = json!({
                    "op": "answer",
                    "requests": [{ "id": id, "digest": digest }],
                    "approve": true,
                    "code": code,
                    "password": FIXTURE_PASSWORD,
                });
                barrier.wait();
                writeln!(writer, "{line}").unwrap();
                let mut reply = String::new();
                reader.read_line(&mut reply).unwrap();
                reply
            })
        };
        let (first, second) = (first.await.unwrap(), second.await.unwrap());
        println!("round {round}: page: {first} / {rival}: {}", second.trim());
        let settled = rig.settle(&id).await;
        assert_eq!(settled["state"], "mined", "{settled}");
        let wins = [&first, &second]
            .iter()
            .filter(|m| {
                m.contains("Approved.")
                    || m.contains("\"approved\"")
                    || m.contains("\"state\":\"approved\"")
            })
            .count();
        assert_eq!(wins, 1, "round {round}: {first} / {second}");
        let loser = if first.contains("Approved.") {
            &second
        } else {
            &first
        };
        assert!(
            loser.contains("can no longer be approved or rejected"),
            "round {round}: the other human is told: {loser}"
        );
        assert_eq!(rig.proxy.forwarded_raw().len(), round + 1);
        assert_eq!(rig.nonce(), nonce + round as u64 + 1);
    }
    // The server is still serving.
    ok(&call(&rig.client, "wallet_accounts", json!({})).await);
    drop(rig.server);
    assert_audit_complete(rig.home.path());
}

/// Sets the soft `RLIMIT_FSIZE` of a running process with the `prlimit` tool (`None` for no
/// limit). Only the soft limit, so an unprivileged test can lift it again.
fn limit_file_size(pid: u32, bytes: Option<u64>) -> bool {
    let limit = bytes.map_or("unlimited".to_owned(), |b| b.to_string());
    std::process::Command::new("prlimit")
        .arg("--pid")
        .arg(pid.to_string())
        .arg(format!("--fsize={limit}:"))
        .status()
        .is_ok_and(|s| s.success())
}

/// A full disk, made with `RLIMIT_FSIZE` on the real server (a write past the limit fails with
/// EFBIG, part-way, as writes fail on a full disk): the approval is refused with a message that
/// says why and what to do, nothing is signed or sent, the cut-off audit entry does not damage
/// the log, and once there is room again the same request is approved and lands once.
#[tokio::test]
async fn a_full_disk_refuses_the_approval_and_the_request_lands_once_there_is_room() {
    let Some(anvil) = Anvil::start(None, 31337) else {
        return;
    };
    if crate::support::required_tool(
        "prlimit",
        &[std::path::PathBuf::from("/usr/bin/prlimit")],
        "install util-linux",
    )
    .is_none()
    {
        return;
    }
    let proxy = FaultProxy::start(anvil.port);
    let home = ServerHome::with_config(&faulty_config(&proxy));
    let child = kill::Child::start_with(&home, true).await;
    let nonce = nonce_of(&anvil, MAIN);
    let prepared = ok(&call(
        &child.client,
        "wallet_transfer",
        json!({ "to": FRIEND, "amount": "0.009" }),
    )
    .await)
    .clone();
    let id = prepared["request_id"].as_str().unwrap().to_owned();
    let url = prepared["approval_url"].as_str().unwrap().to_owned();

    // Room for part of the next audit entry: the append that does not fit is cut back off.
    let audit_len = std::fs::metadata(home.path().join("audit.jsonl"))
        .unwrap()
        .len();
    assert!(
        limit_file_size(child.pid, Some(audit_len + 40)),
        "prlimit failed"
    );
    let mut person = Human::default();
    let (answered, back) = {
        let url = url.clone();
        human(move || (person.answer(&url, "approve"), person)).await
    };
    person = back;
    let message = message_of(&answered.body);
    println!("full disk, approval page: {message}");
    assert!(!message.contains("Approved."), "{message}");
    assert!(
        message.contains("audit log cannot be written") && message.contains("free disk space"),
        "{message}"
    );
    let (kind, text) = tool_error(
        &call(
            &child.client,
            "wallet_transfer",
            json!({ "to": FRIEND, "amount": "0.009" }),
        )
        .await,
    );
    println!("full disk, prepare: {kind}: {text}");
    assert_eq!(kind, "unavailable", "{text}");
    assert!(text.contains("free disk space"), "{text}");
    assert_eq!(child.status(&id, 0).await["state"], "awaiting_approval");
    assert!(proxy.forwarded_raw().is_empty());

    assert!(limit_file_size(child.pid, None), "prlimit failed");
    let answered = human(move || person.answer(&url, "approve")).await;
    assert!(answered.body.contains("Approved."), "{}", answered.body);
    let started = Instant::now();
    let settled = loop {
        let status = child.status(&id, 2).await;
        if ["mined", "failed"].contains(&status["state"].as_str().unwrap()) {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{status}");
    };
    assert_eq!(settled["state"], "mined", "{settled}");
    assert_eq!(proxy.forwarded_raw().len(), 1);
    assert_eq!(nonce_of(&anvil, MAIN), nonce + 1);
    child.client.cancel().await.unwrap();
    assert_audit_complete(home.path());
}
