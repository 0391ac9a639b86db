//! Fund movements end to end against a real Anvil: the model asks, a scripted human reads the
//! approval page and approves with a TOTP code, cast checks what landed.

mod sandboxed;

use std::path::Path;

use serde_json::{Value, json};

use crate::support::anvil::{Anvil, TEST_DOLLAR};
use crate::support::foundry_tool;
use crate::support::human::{Human, http};
use crate::support::mcp::{
    Client, Endpoint, Generation, ServerHome, Transport, call, config_text, ok,
    over_each_transport, tool_error,
};

const FRIEND: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const MAIN: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

/// A fresh Anvil with the tokens, a home aimed at it, a server with its approval page, and a
/// client reaching the server over the rig's transport.
///
/// The server runs in this process, unless `KEYWARD_TEST_SERVER=sandboxed`: then it is the real
/// `keyward serve` binary, sandboxed as it is by default, reached over its stdin and stdout or
/// over HTTP. `scripts/test` runs the fund-movement and Ledger tests once that way.
pub(crate) struct Rig {
    pub(crate) anvil: Anvil,
    pub(crate) home: ServerHome,
    pub(crate) client: Client,
    /// Where the approval page of the running server listens.
    pub(crate) page: std::net::SocketAddr,
    transport: Transport,
    backend: Backend,
}

/// Where the rig's server runs.
enum Backend {
    InProcess {
        /// Kept so the server lives as long as the rig.
        _server: keyward::mcp::Server,
        endpoint: Endpoint,
    },
    Sandboxed(sandboxed::Server),
}

impl Rig {
    /// A rig whose clients talk over a duplex pipe, as over stdio.
    pub(crate) async fn start(policy: &str) -> Option<Self> {
        Self::start_on(Transport::Stdio, policy).await
    }

    /// A rig whose clients talk over `transport`, with these lines in the `[policy]` table.
    pub(crate) async fn start_on(transport: Transport, policy: &str) -> Option<Self> {
        Self::start_configured(transport, "", policy).await
    }

    /// As [`Rig::start`], with extra lines in the `[privacy]` table.
    pub(crate) async fn start_with_privacy(privacy: &str, policy: &str) -> Option<Self> {
        Self::start_configured(Transport::Stdio, privacy, policy).await
    }

    async fn start_configured(transport: Transport, privacy: &str, policy: &str) -> Option<Self> {
        let anvil = Anvil::start(None, 31337)?;
        anvil.deploy_tokens();
        let home = ServerHome::with_config(&format!(
            "{}\n[policy]\n{policy}\n",
            config_text(&anvil.url, 31337)
                .replace("[privacy]\n", &format!("[privacy]\n{privacy}\n"))
        ));
        let (backend, page, client) = serve(&home, transport).await;
        Some(Self {
            anvil,
            home,
            client,
            page,
            transport,
            backend,
        })
    }

    /// Starts a new server on the same home, without any shutdown step of the old one, as after a
    /// crash: new clients, a new HTTP listener when the rig speaks HTTP (the old one stops), and a
    /// new approval page (see [`Rig::on_current_page`]). In process, the old server's page, socket
    /// and sweeper tasks keep running: keyward offers no way to stop them. A sandboxed server is
    /// killed with SIGKILL first.
    pub(crate) async fn restart(&mut self) {
        if let Backend::Sandboxed(server) = &mut self.backend {
            server.kill().await;
        }
        let (backend, page, client) = serve(&self.home, self.transport).await;
        self.backend = backend;
        self.page = page;
        self.client = client;
    }

    /// Another MCP session with the same server over the rig's transport, from a client with its
    /// own handler.
    pub(crate) async fn connect<H: rmcp::ClientHandler>(
        &self,
        handler: H,
        generation: Generation,
    ) -> rmcp::service::RunningService<rmcp::RoleClient, H> {
        match &self.backend {
            Backend::InProcess { endpoint, .. } => endpoint.connect(handler, generation).await,
            Backend::Sandboxed(server) => server.connect(handler, generation).await,
        }
    }

    /// `url` on the running server's approval page: the same path on the page's current address.
    pub(crate) fn on_current_page(&self, url: &str) -> String {
        let path = &url[url.find("/approve/").expect("an approval page address")..];
        format!("http://{}{path}", self.page)
    }

    pub(crate) fn state_dir(&self) -> &Path {
        self.home.path()
    }

    pub(crate) async fn status(&self, id: &str, wait: u64) -> Value {
        ok(&call(
            &self.client,
            "wallet_request_status",
            json!({ "request_id": id, "wait_seconds": wait }),
        )
        .await)
        .clone()
    }

    /// Polls until the request reaches a final state.
    pub(crate) async fn settle(&self, id: &str) -> Value {
        let mut status = Value::Null;
        for _ in 0..20 {
            status = self.status(id, 5).await;
            if settled(&status) {
                return status;
            }
        }
        panic!("request {id} did not settle: {status}");
    }

    pub(crate) fn nonce(&self, address: &str) -> u64 {
        let value = self
            .anvil
            .rpc("eth_getTransactionCount", json!([address, "latest"]));
        u64::from_str_radix(value.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    }
}

async fn serve(home: &ServerHome, transport: Transport) -> (Backend, std::net::SocketAddr, Client) {
    if sandboxed::wanted() {
        let (server, client) = sandboxed::Server::start(home, transport).await;
        let page = server.page;
        return (Backend::Sandboxed(server), page, client);
    }
    let server = home.server();
    let page = server.start_approvals().await.unwrap();
    let endpoint = Endpoint::open(home, &server, transport).await;
    let client = endpoint.connect((), Generation::Initialize).await;
    let backend = Backend::InProcess {
        _server: server,
        endpoint,
    };
    (backend, page, client)
}

/// Runs blocking human actions off the async runtime, which serves the page.
pub(crate) async fn human<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.unwrap()
}

/// An exact balance read by cast, the independent check.
pub(crate) fn cast_balance(rpc: &str, address: &str, token: Option<&str>) -> u128 {
    let cast = foundry_tool("cast").expect("cast is installed with anvil");
    let empty = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(cast);
    command.current_dir(empty.path());
    match token {
        None => command.args(["balance", address, "--rpc-url", rpc]),
        Some(token) => command.args([
            "call",
            token,
            "balanceOf(address)(uint256)",
            address,
            "--rpc-url",
            rpc,
        ]),
    };
    let output = command.output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    text.split_whitespace().next().unwrap().parse().unwrap()
}

async fn eth_and_erc20_transfers_land_exactly_after_the_human_approves_on_the_page(
    transport: Transport,
) {
    let Some(rig) = Rig::start_on(transport, "").await else {
        return;
    };
    let before = cast_balance(&rig.anvil.url, FRIEND, None);
    let result = call(
        &rig.client,
        "wallet_transfer",
        json!({ "to": FRIEND, "amount": "1.25", "from": "main" }),
    )
    .await;
    let prepared = ok(&result).clone();
    assert_eq!(prepared["state"], "awaiting_approval");
    let url = prepared["approval_url"].as_str().unwrap().to_owned();
    let id = prepared["request_id"].as_str().unwrap().to_owned();

    // The page shows exactly the review the tool returned: recipient, amount, fees, chain.
    let page = {
        let url = url.clone();
        human(move || http("GET", &url, &[], None)).await
    };
    assert_eq!(page.status, 200);
    let review = page.review();
    assert_eq!(review, prepared["review"].as_str().unwrap());
    for expected in [
        "Send 1.25 ETH on anvil",
        "anvil, chain id 31337",
        "0x7099 7970 C518 12dc 3A01 0C7d 01b5 0e0d 17dc 79C8",
        "1250000000000000000 wei",
        "Max fee",
        "Max total",
        "Gas limit    21000",
    ] {
        assert!(
            review.contains(expected),
            "{expected:?} missing from\n{review}"
        );
    }
    assert!(
        page.input("password").is_some(),
        "the locked wallet asks for its password"
    );

    let mut person = Human::default();
    let (answered, person) = {
        let url = url.clone();
        human(move || {
            let answered = person.answer(&url, "approve");
            (answered, person)
        })
        .await
    };
    assert_eq!(answered.status, 200);
    assert!(answered.body.contains("Approved"), "{}", answered.body);
    let settled = rig.settle(&id).await;
    assert_eq!(settled["state"], "mined", "{settled}");
    assert_eq!(
        cast_balance(&rig.anvil.url, FRIEND, None) - before,
        1_250_000_000_000_000_000
    );

    // An ERC-20 transfer; the wallet is unlocked now, so only a code is asked for.
    let token_before = cast_balance(&rig.anvil.url, FRIEND, Some(TEST_DOLLAR));
    let prepared = ok(&call(
        &rig.client,
        "wallet_transfer",
        json!({ "to": FRIEND, "amount": "12.5", "asset": "TUSD" }),
    )
    .await)
    .clone();
    let review = prepared["review"].as_str().unwrap();
    assert!(review.contains("Send 12.5 TUSD on anvil"), "{review}");
    assert!(
        review.contains("12500000 base units, 6 decimals"),
        "{review}"
    );
    let url = prepared["approval_url"].as_str().unwrap().to_owned();
    let id = prepared["request_id"].as_str().unwrap().to_owned();
    let mut person = person;
    let answered = human(move || {
        let page = http("GET", &url, &[], None);
        assert!(page.input("password").is_none());
        person.answer(&url, "approve")
    })
    .await;
    assert!(answered.body.contains("Approved"), "{}", answered.body);
    assert_eq!(rig.settle(&id).await["state"], "mined");
    assert_eq!(
        cast_balance(&rig.anvil.url, FRIEND, Some(TEST_DOLLAR)) - token_before,
        12_500_000
    );
    let summary = keyward::audit::verify(rig.state_dir()).unwrap();
    assert!(summary.entries >= 10, "{summary:?}");
}

async fn the_review_refuses_the_zero_address_and_policy_refusals_name_their_rule(
    transport: Transport,
) {
    let Some(rig) = Rig::start_on(
        transport,
        "[[policy.limits]]\nasset = \"ETH\"\nper_transaction = \"1\"\n",
    )
    .await
    else {
        return;
    };
    let (kind, message) = tool_error(
        &call(
            &rig.client,
            "wallet_transfer",
            json!({ "to": "0x0000000000000000000000000000000000000000", "amount": "0.1" }),
        )
        .await,
    );
    assert_eq!(kind, "refused");
    assert!(message.contains("zero address"), "{message}");
    let (kind, message) = tool_error(
        &call(
            &rig.client,
            "wallet_transfer",
            json!({ "to": FRIEND, "amount": "1.5" }),
        )
        .await,
    );
    assert_eq!(kind, "refused");
    assert!(
        message.contains("policy.limits[0].per_transaction"),
        "{message}"
    );
    let (kind, message) = tool_error(
        &call(
            &rig.client,
            "wallet_approve_token",
            json!({ "token": "TUSD", "spender": FRIEND, "amount": "unlimited" }),
        )
        .await,
    );
    assert_eq!(kind, "refused");
    assert!(message.contains("policy.unlimited_approvals"), "{message}");
    assert_eq!(
        rig.nonce(MAIN),
        3,
        "only the three token deployments were sent"
    );
}

#[tokio::test]
async fn the_approval_page_refuses_wrong_tokens_missing_csrf_and_foreign_hosts() {
    let Some(rig) = Rig::start("").await else {
        return;
    };
    let prepared = ok(&call(
        &rig.client,
        "wallet_transfer",
        json!({ "to": FRIEND, "amount": "0.01" }),
    )
    .await)
    .clone();
    let url = prepared["approval_url"].as_str().unwrap().to_owned();
    let responses = human(move || {
        let origin = url.split("/approve/").next().unwrap().to_owned();
        let authority = origin.trim_start_matches("http://").to_owned();
        let page = http("GET", &url, &[], None);
        let wrong = format!("{origin}/approve/{}", "0".repeat(64));
        vec![
            ("page", page.clone()),
            ("wrong token", http("GET", &wrong, &[], None)),
            (
                "wrong token post",
                http("POST", &wrong, &[], Some("decision=approve")),
            ),
            (
                "no csrf",
                http(
                    "POST",
                    &url,
                    &[("Origin", &origin)],
                    Some("code=123456&decision=approve"),
                ),
            ),
            (
                "wrong csrf",
                http(
                    "POST",
                    &url,
                    &[("Origin", &origin)],
                    Some("csrf=00&code=123456&decision=approve"),
                ),
            ),
            (
                "foreign host",
                http("GET", &url, &[("Host", "evil.example:80")], None),
            ),
            (
                "rebinding host",
                http(
                    "GET",
                    &url,
                    &[(
                        "Host",
                        &format!("evil.example:{}", authority.split(':').nth(1).unwrap()),
                    )],
                    None,
                ),
            ),
            (
                "foreign origin",
                http(
                    "POST",
                    &url,
                    &[("Origin", "http://evil.example")],
                    Some(&format!(
                        "csrf={}&code=123456&decision=approve",
                        page.input("csrf").unwrap()
                    )),
                ),
            ),
            ("elsewhere", http("GET", &format!("{origin}/"), &[], None)),
        ]
    })
    .await;
    let status = |name: &str| {
        responses
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, r)| r.status)
            .unwrap()
    };
    assert_eq!(status("page"), 200);
    assert_eq!(status("wrong token"), 404);
    assert_eq!(status("wrong token post"), 404);
    assert_eq!(status("no csrf"), 403);
    assert_eq!(status("wrong csrf"), 403);
    assert_eq!(status("foreign host"), 403);
    assert_eq!(status("rebinding host"), 403);
    assert_eq!(status("foreign origin"), 403);
    assert_eq!(status("elsewhere"), 404);
    for (name, response) in &responses {
        assert_eq!(response.header("cache-control"), Some("no-store"), "{name}");
        let csp = response.header("content-security-policy").unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{name}: {csp}");
        assert!(csp.contains("default-src 'none'"), "{name}: {csp}");
        assert_eq!(
            response.header("referrer-policy"),
            Some("no-referrer"),
            "{name}"
        );
    }
    let page = &responses[0].1;
    assert!(!page.body.contains("<script"), "the page needs no script");
    assert_eq!(
        rig.status(prepared["request_id"].as_str().unwrap(), 0)
            .await["state"],
        "awaiting_approval"
    );
}

async fn prepare(client: &Client) -> (String, String) {
    let prepared = ok(&call(
        client,
        "wallet_transfer",
        json!({ "to": FRIEND, "amount": "0.01" }),
    )
    .await)
    .clone();
    (
        prepared["request_id"].as_str().unwrap().to_owned(),
        prepared["approval_url"].as_str().unwrap().to_owned(),
    )
}

async fn codes_are_single_use_skew_limited_and_five_failures_lock_even_across_a_restart(
    transport: Transport,
) {
    use crate::support::human::{code_at, unix_now};
    let Some(mut rig) = Rig::start_on(transport, "").await else {
        return;
    };
    // The checks below name codes by their step relative to `now`, and the server judges them by
    // its own clock: start early in a 30-second step, so that clock is still in the same step
    // when the last of them arrives (a step boundary in between made this test flaky).
    let into_step = unix_now() % 30;
    if into_step > 10 {
        tokio::time::sleep(std::time::Duration::from_secs(31 - into_step)).await;
    }
    // Approve one with the current code.
    let (first, url) = prepare(&rig.client).await;
    let now = unix_now();
    let used = code_at(now);
    let answered = {
        let (url, used) = (url.clone(), used.clone());
        human(move || {
            let page = http("GET", &url, &[], None);
            Human::default().submit(&url, &page, &used, "approve")
        })
        .await
    };
    assert!(answered.body.contains("Approved"), "{}", answered.body);
    assert_eq!(rig.settle(&first).await["state"], "mined");

    // The same code, an earlier one, and one two steps ahead are all refused.
    let (second, url) = prepare(&rig.client).await;
    for (code, expected) in [
        (used.clone(), "already used"),
        (code_at(now - 30), "already used"),
        (code_at(now + 60), "wrong code"),
    ] {
        let url = url.clone();
        let answered = human(move || {
            let page = http("GET", &url, &[], None);
            Human::default().submit(&url, &page, &code, "approve")
        })
        .await;
        assert!(
            answered.body.to_lowercase().contains(expected),
            "{expected}: {}",
            answered.body
        );
    }
    // Two more wrong codes make five failures: approvals lock.
    for _ in 0..2 {
        let url = url.clone();
        let answered = human(move || {
            let page = http("GET", &url, &[], None);
            Human::default().submit(&url, &page, "000000", "approve")
        })
        .await;
        assert!(answered.status == 200);
    }
    let url_again = url.clone();
    let locked = human(move || {
        let page = http("GET", &url_again, &[], None);
        Human::default().submit(&url_again, &page, &code_at(unix_now() + 30), "approve")
    })
    .await;
    assert!(locked.body.contains("locked"), "{}", locked.body);

    // A restart does not clear the lockout: even the right, unused code is refused, by the new
    // server's page.
    rig.restart().await;
    let fresh = code_at(unix_now() + 30);
    let url_again = rig.on_current_page(&url);
    assert_ne!(url_again, url, "the new server's page has its own address");
    let locked = human(move || {
        let page = http("GET", &url_again, &[], None);
        Human::default().submit(&url_again, &page, &fresh, "approve")
    })
    .await;
    assert!(locked.body.contains("locked"), "{}", locked.body);
    assert_eq!(rig.status(&second, 0).await["state"], "awaiting_approval");
    let log = std::fs::read_to_string(rig.state_dir().join("audit.jsonl")).unwrap();
    assert!(log.contains("\"kind\":\"lockout\""));
    assert!(log.contains("\"kind\":\"totp_failed\""));
    assert!(!log.contains(&used), "no code is written to the audit log");
    keyward::audit::verify(rig.state_dir()).unwrap();
}

async fn approving_twice_or_polling_after_mining_never_sends_a_second_transaction(
    transport: Transport,
) {
    let Some(rig) = Rig::start_on(transport, "").await else {
        return;
    };
    let nonce_before = rig.nonce(MAIN);
    let prepared = ok(&call(
        &rig.client,
        "wallet_transfer",
        json!({ "to": FRIEND, "amount": "0.5" }),
    )
    .await)
    .clone();
    let id = prepared["request_id"].as_str().unwrap().to_owned();
    let url = prepared["approval_url"].as_str().unwrap().to_owned();
    let (first, page) = {
        let url = url.clone();
        human(move || {
            let page = http("GET", &url, &[], None);
            let mut person = Human::default();
            (person.answer(&url, "approve"), page)
        })
        .await
    };
    assert!(first.body.contains("Approved"), "{}", first.body);
    // The same form again, with a new code, as a second human (or a replayed post) would send it.
    let again = human(move || {
        let mut person = Human::default();
        let _ = person.fresh_code();
        let code = person.fresh_code();
        Human::default().submit(&url, &page, &code, "approve")
    })
    .await;
    assert!(
        again.body.contains("can no longer be approved"),
        "{}",
        again.body
    );
    assert_eq!(rig.settle(&id).await["state"], "mined");
    for _ in 0..5 {
        assert_eq!(rig.status(&id, 0).await["state"], "mined");
    }
    assert_eq!(rig.nonce(MAIN), nonce_before + 1, "exactly one transaction");
}

async fn a_daily_cap_refuses_at_approval_even_with_a_valid_code(transport: Transport) {
    let Some(rig) = Rig::start_on(
        transport,
        "[[policy.limits]]\nasset = \"ETH\"\nper_transaction = \"1.5\"\nper_24h = \"2\"\n",
    )
    .await
    else {
        return;
    };
    let nonce_before = rig.nonce(MAIN);
    let mut prepared = Vec::new();
    for _ in 0..2 {
        let result = ok(&call(
            &rig.client,
            "wallet_transfer",
            json!({ "to": FRIEND, "amount": "1.2" }),
        )
        .await)
        .clone();
        prepared.push((
            result["request_id"].as_str().unwrap().to_owned(),
            result["approval_url"].as_str().unwrap().to_owned(),
        ));
    }
    let urls: Vec<String> = prepared.iter().map(|(_, url)| url.clone()).collect();
    let answers = human(move || {
        let mut person = Human::default();
        urls.iter()
            .map(|url| person.answer(url, "approve"))
            .collect::<Vec<_>>()
    })
    .await;
    assert!(answers[0].body.contains("Approved"), "{}", answers[0].body);
    assert!(
        answers[1].body.contains("policy.limits[0].per_24h"),
        "{}",
        answers[1].body
    );
    assert_eq!(rig.settle(&prepared[0].0).await["state"], "mined");
    let refused = rig.status(&prepared[1].0, 0).await;
    assert_eq!(refused["state"], "rejected");
    assert!(refused["reason"].as_str().unwrap().contains("per_24h"));
    // And a third request is refused at once, before any human is asked.
    let (kind, message) = tool_error(
        &call(
            &rig.client,
            "wallet_transfer",
            json!({ "to": FRIEND, "amount": "1" }),
        )
        .await,
    );
    assert_eq!(kind, "refused");
    assert!(message.contains("policy.limits[0].per_24h"), "{message}");
    assert_eq!(rig.nonce(MAIN), nonce_before + 1);
}

async fn twenty_concurrent_transfers_from_one_account_get_consecutive_nonces_and_all_land(
    transport: Transport,
) {
    let Some(rig) = Rig::start_on(transport, "").await else {
        return;
    };
    let nonce_before = rig.nonce(MAIN);
    let client = &rig.client;
    let calls = (0..20).map(|i| async move {
        let result = call(
            client,
            "wallet_transfer",
            json!({ "to": FRIEND, "amount": format!("0.00{}", i + 1) }),
        )
        .await;
        ok(&result)["request_id"].as_str().unwrap().to_owned()
    });
    let ids = futures::future::join_all(calls).await;
    // The terminal approver's socket: list everything pending and approve it with one code.
    let home = rig.state_dir().to_owned();
    let (listed, replies) = human(move || {
        crate::support::human::approve_all_on_socket(&home, &Human::default().fresh_code())
    })
    .await;
    assert_eq!(listed["requests"].as_array().unwrap().len(), 20, "{listed}");
    assert_eq!(listed["locked"], true);
    assert!(replies["error"].is_null(), "{replies}");
    // Wait for all of them first, so a request that does not settle is reported beside the
    // others' states (a failed one leaves a nonce gap the later ones wait behind).
    let mut statuses = Vec::new();
    for _ in 0..120 {
        statuses = Vec::new();
        for id in &ids {
            statuses.push(rig.status(id, 0).await);
        }
        if statuses.iter().all(settled) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let unsettled = statuses.iter().filter(|s| !settled(s)).count();
    assert_eq!(unsettled, 0, "{unsettled} did not settle: {statuses:#?}");
    let mut nonces = Vec::new();
    for id in &ids {
        let settled = rig.settle(id).await;
        assert_eq!(settled["state"], "mined", "{settled}");
        let transaction = rig
            .anvil
            .rpc("eth_getTransactionByHash", json!([settled["hash"]]));
        nonces.push(
            u64::from_str_radix(
                transaction["nonce"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("0x"),
                16,
            )
            .unwrap(),
        );
    }
    nonces.sort_unstable();
    assert_eq!(
        nonces,
        (nonce_before..nonce_before + 20).collect::<Vec<_>>()
    );
    assert_eq!(rig.nonce(MAIN), nonce_before + 20);
}

async fn without_a_human_no_call_moves_funds_and_every_request_expires(transport: Transport) {
    let Some(rig) = Rig::start_on(transport, "approval_expiry_seconds = 10").await else {
        return;
    };
    let accounts = ["0", "1", "main", "account-2"];
    let recipients = [
        FRIEND,
        "0x000000000000000000000000000000000000dEaD",
        TEST_DOLLAR,
    ];
    let nonces_before: Vec<u64> = (0..3)
        .map(|i| {
            rig.nonce(
                rig.anvil.rpc("eth_accounts", json!([]))[i]
                    .as_str()
                    .unwrap(),
            )
        })
        .collect();
    let mut calls = Vec::new();
    for from in accounts {
        for to in recipients {
            for (amount, asset) in [
                ("0.001", "ETH"),
                ("1", "TUSD"),
                ("0.5", "T18"),
                ("2", TEST_DOLLAR),
            ] {
                calls.push((
                    "wallet_transfer",
                    json!({ "from": from, "to": to, "amount": amount, "asset": asset }),
                ));
            }
            calls.push((
                "wallet_approve_token",
                json!({ "from": from, "token": "TUSD", "spender": to, "amount": "5" }),
            ));
            calls.push((
                "wallet_revoke_approval",
                json!({ "from": from, "token": "T18", "spender": to }),
            ));
        }
        calls.push((
            "wallet_sign_message",
            json!({ "from": from, "message": format!("log in as {from}") }),
        ));
        calls.push((
            "wallet_sign_message",
            json!({ "from": from, "message": "0xdeadbeef", "encoding": "hex" }),
        ));
    }
    // And calls that try to smuggle an approval in: none of these arguments exist.
    for sneaky in [
        json!({ "to": FRIEND, "amount": "1", "approved": true }),
        json!({ "to": FRIEND, "amount": "1", "code": "123456" }),
        json!({ "to": FRIEND, "amount": "1", "password": "keyward fixture password" }),
        json!({ "to": FRIEND, "amount": "1", "confirm": "yes" }),
    ] {
        calls.push(("wallet_transfer", sneaky));
    }
    let mut ids = Vec::new();
    let mut refused = 0;
    for (tool, arguments) in calls {
        let result = call(&rig.client, tool, arguments).await;
        if result.is_error == Some(true) {
            refused += 1;
        } else {
            let value = ok(&result);
            assert_eq!(value["state"], "awaiting_approval");
            ids.push(value["request_id"].as_str().unwrap().to_owned());
        }
    }
    println!(
        "{} requests awaiting a human, {refused} refused outright",
        ids.len()
    );
    assert!(ids.len() >= 60, "most calls should file a request");
    tokio::time::sleep(std::time::Duration::from_secs(11)).await;
    for id in &ids {
        let status = rig.status(id, 0).await;
        assert_eq!(status["state"], "expired", "{id}");
        assert!(
            status["signature"].is_null() && status["hash"].is_null(),
            "{status}"
        );
    }
    let nonces_after: Vec<u64> = (0..3)
        .map(|i| {
            rig.nonce(
                rig.anvil.rpc("eth_accounts", json!([]))[i]
                    .as_str()
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(nonces_before, nonces_after, "no transaction was sent");
    let log = std::fs::read_to_string(rig.state_dir().join("audit.jsonl")).unwrap();
    for kind in ["approved", "signed", "broadcast", "mined"] {
        assert!(
            !log.contains(&format!("\"kind\":\"{kind}\"")),
            "{kind} in the audit log"
        );
    }
    keyward::audit::verify(rig.state_dir()).unwrap();
}

/// keyward serve as a child process, with its pid, for kill -9.
async fn child(home: &ServerHome) -> (Client, u32) {
    crate::support::mcp::serve_child(
        home.path(),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_keyward")),
    )
    .await
}

#[tokio::test]
async fn a_server_killed_between_approval_and_broadcast_sends_once_or_fails_with_a_reason() {
    let Some(anvil) = Anvil::start(None, 31337) else {
        return;
    };
    anvil.deploy_tokens();
    let home = ServerHome::with_config(&config_text(&anvil.url, 31337));
    let mut person = Human::default();
    for (run, delay_ms) in [0u64, 5, 40].into_iter().enumerate() {
        let nonce_before = {
            let value = anvil.rpc("eth_getTransactionCount", json!([MAIN, "latest"]));
            u64::from_str_radix(value.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
        };
        // Blocks stop being mined, so a broadcast transaction stays in the pool across the crash.
        anvil.rpc("evm_setAutomine", json!([false]));
        let (client, pid) = child(&home).await;
        let prepared = ok(&call(
            &client,
            "wallet_transfer",
            json!({ "to": FRIEND, "amount": "0.1" }),
        )
        .await)
        .clone();
        let id = prepared["request_id"].as_str().unwrap().to_owned();
        let url = prepared["approval_url"].as_str().unwrap().to_owned();
        let (answered, back) = human(move || {
            let answered = person.answer(&url, "approve");
            std::thread::sleep(std::time::Duration::from_millis(delay_ms));
            rustix::process::kill_process(
                rustix::process::Pid::from_raw(pid as i32).unwrap(),
                rustix::process::Signal::KILL,
            )
            .unwrap();
            (answered, person)
        })
        .await;
        person = back;
        assert!(
            answered.body.contains("Approved"),
            "run {run}: {}",
            answered.body
        );
        drop(client);
        anvil.rpc("evm_setAutomine", json!([true]));
        anvil.rpc("evm_mine", json!([]));

        let (client, _pid) = child(&home).await;
        let mut settled = Value::Null;
        for _ in 0..40 {
            settled = ok(&call(
                &client,
                "wallet_request_status",
                json!({ "request_id": id, "wait_seconds": 2 }),
            )
            .await)
            .clone();
            if ["mined", "failed"].contains(&settled["state"].as_str().unwrap()) {
                break;
            }
            anvil.rpc("evm_mine", json!([]));
        }
        let value = anvil.rpc("eth_getTransactionCount", json!([MAIN, "latest"]));
        let nonce_after =
            u64::from_str_radix(value.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
        match settled["state"].as_str().unwrap() {
            "mined" => assert_eq!(
                nonce_after,
                nonce_before + 1,
                "run {run}: sent exactly once"
            ),
            "failed" => {
                assert_eq!(nonce_after, nonce_before, "run {run}: nothing sent");
                assert!(
                    settled["reason"]
                        .as_str()
                        .unwrap()
                        .contains("nothing was sent"),
                    "run {run}: {settled}"
                );
            }
            other => panic!("run {run}: the request ended {other}: {settled}"),
        }
        println!("run {run} (kill after {delay_ms} ms): {}", settled["state"]);
        keyward::audit::verify(home.path()).unwrap();
        client.cancel().await.unwrap();
    }
}

#[test]
fn a_second_server_for_the_same_wallet_refuses_to_start_and_says_why() {
    let home = ServerHome::new("http://127.0.0.1:9");
    let mut first = std::process::Command::new(env!("CARGO_BIN_EXE_keyward"))
        .arg("--home")
        .arg(home.path())
        .arg("serve")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let socket = home.path().join("approve.sock");
    let started = std::time::Instant::now();
    while !socket.exists() {
        assert!(
            started.elapsed().as_secs() < 20,
            "the first server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_keyward"))
        .arg("--home")
        .arg(home.path())
        .arg("serve")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("another `keyward serve` is already running"),
        "{stderr}"
    );
    assert!(
        socket.exists(),
        "the second server left the first one's socket alone"
    );
    drop(first.stdin.take());
    first.wait().unwrap();
}

#[tokio::test]
async fn the_terminal_approver_shows_the_review_and_reads_password_and_code_with_echo_off() {
    use crate::support::pty::{Session, Stdin};
    let Some(rig) = Rig::start("").await else {
        return;
    };
    let before = cast_balance(&rig.anvil.url, FRIEND, None);
    let prepared = ok(&call(
        &rig.client,
        "wallet_transfer",
        json!({ "to": FRIEND, "amount": "0.5" }),
    )
    .await)
    .clone();
    let id = prepared["request_id"].as_str().unwrap().to_owned();
    let review = prepared["review"].as_str().unwrap().to_owned();
    let home = rig.state_dir().to_owned();

    // A wrong code first: refused with a clear message, and nothing approved.
    let (finished, mut person) = {
        let (home, id) = (home.clone(), id.clone());
        human(move || {
            let mut command = crate::support::keyward_command();
            command.arg("--home").arg(&home).args(["approve", &id]);
            let mut session = Session::spawn(command, Stdin::Terminal);
            session.expect("Its password (hidden): ");
            session.type_line(crate::support::mcp::FIXTURE_PASSWORD);
            session.expect("(hidden): ");
            let mut person = Human::default();
            let right = person.fresh_code();
            let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
            session.type_line(&wrong);
            (session.finish(), person)
        })
        .await
    };
    assert!(!finished.output.status.success());
    let stderr = String::from_utf8_lossy(&finished.output.stderr).into_owned();
    assert!(stderr.contains("wrong"), "{stderr}");
    assert_eq!(rig.status(&id, 0).await["state"], "awaiting_approval");

    // Then the right one: the terminal shows the whole review, the secrets are never echoed.
    let (finished, code) = {
        let (home, id) = (home.clone(), id.clone());
        human(move || {
            let mut command = crate::support::keyward_command();
            command.arg("--home").arg(&home).args(["approve", &id]);
            let mut session = Session::spawn(command, Stdin::Terminal);
            session.expect("(hidden): ");
            let code = person.fresh_code();
            session.type_line(&code);
            (session.finish(), code)
        })
        .await
    };
    let stdout = String::from_utf8_lossy(&finished.output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&finished.output.stderr).into_owned();
    assert!(finished.output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("{id}: ")), "{stdout}");
    let shown = finished.transcript.replace("\r\n", "\n");
    assert!(
        shown.contains(&review),
        "the terminal shows the review verbatim:\n{shown}"
    );
    for secret in [code.as_str(), crate::support::mcp::FIXTURE_PASSWORD] {
        for (what, text) in [
            ("terminal", &shown),
            ("stdout", &stdout),
            ("stderr", &stderr),
        ] {
            assert!(!text.contains(secret), "a secret was echoed on {what}");
        }
    }
    assert_eq!(rig.settle(&id).await["state"], "mined");
    assert_eq!(
        cast_balance(&rig.anvil.url, FRIEND, None) - before,
        500_000_000_000_000_000
    );
}

over_each_transport!(
    eth_and_erc20_transfers_land_exactly_after_the_human_approves_on_the_page,
    the_review_refuses_the_zero_address_and_policy_refusals_name_their_rule,
    codes_are_single_use_skew_limited_and_five_failures_lock_even_across_a_restart,
    approving_twice_or_polling_after_mining_never_sends_a_second_transaction,
    a_daily_cap_refuses_at_approval_even_with_a_valid_code,
    twenty_concurrent_transfers_from_one_account_get_consecutive_nonces_and_all_land,
    without_a_human_no_call_moves_funds_and_every_request_expires,
);

/// Whether a request is finished: a signed message is, and a signed transaction once it is mined,
/// failed, rejected or expired.
fn settled(status: &Value) -> bool {
    ["mined", "failed", "rejected", "expired"].contains(&status["state"].as_str().unwrap_or(""))
        || !status["signature"].is_null()
}
