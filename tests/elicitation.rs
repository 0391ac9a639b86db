//! The approval channel follows the client: URL-mode elicitation in both protocol generations,
//! a form that only acknowledges, and nothing a client answers can approve. A scripted host plays
//! the MCP client and the human behind it; the human approves on the page, as in tests/funds.rs.

use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ClientCapabilities, ClientConfig, ElicitRequestParams,
    ElicitResult, ElicitationAction, InputRequest, InputResponses, ProgressNotificationParam,
};
use rmcp::service::{NotificationContext, RequestContext, RunningService};
use rmcp::{ClientHandler, ErrorData, RoleClient};
use serde_json::{Value, json};

use crate::funds::{Rig, cast_balance, human};
use crate::support::human::Human;
use crate::support::mcp::{Generation, Transport, ok, over_each_transport, tool_error};

const FRIEND: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const MAIN: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

/// What the human does when the host shows an elicitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    /// Opens the page (URL mode) and approves there with a code.
    ApproveOnPage,
    /// Declines in the host.
    Decline,
    /// Answers the form with this decision; with "continue" then approves on the page whose
    /// address the form's message gives.
    Form(&'static str, bool),
}

/// What the host saw.
#[derive(Debug, Default)]
struct Seen {
    elicitations: Vec<ElicitRequestParams>,
    progress: Vec<String>,
    /// What the page answered when the human's approval failed.
    failures: Vec<String>,
}

/// A scripted MCP host with the elicitation modes it advertises.
#[derive(Debug, Clone)]
struct Host {
    url: bool,
    form: bool,
    act: Act,
    seen: Arc<Mutex<Seen>>,
    /// The one human of a test, who remembers the codes already used.
    human: Arc<Mutex<Human>>,
}

impl Host {
    fn new(url: bool, form: bool, act: Act, human: &Arc<Mutex<Human>>) -> Self {
        Self {
            url,
            form,
            act,
            seen: Arc::default(),
            human: human.clone(),
        }
    }

    fn failures(&self) -> Vec<String> {
        self.seen.lock().unwrap().failures.clone()
    }

    fn elicitations(&self) -> Vec<ElicitRequestParams> {
        self.seen.lock().unwrap().elicitations.clone()
    }

    fn progress(&self) -> Vec<String> {
        self.seen.lock().unwrap().progress.clone()
    }
}

impl Host {
    /// The human behind the host approves on the page in the background, as in a browser. Like a
    /// person, and unlike a thread, they are slower than the server: they act once the host shows
    /// that the request awaits them (or after 10 s, which the progress assertions then catch).
    fn approve_on_page(&self, url: String) {
        let (human, seen) = (self.human.clone(), self.seen.clone());
        std::thread::spawn(move || {
            let shown = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while std::time::Instant::now() < shown
                && !seen
                    .lock()
                    .unwrap()
                    .progress
                    .iter()
                    .any(|line| line.contains("awaits the human"))
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let answered = human.lock().unwrap().answer(&url, "approve");
            if !answered.body.contains("Approved") {
                seen.lock().unwrap().failures.push(answered.body);
            }
        });
    }
}

/// The approval page address in a form's message.
fn page_in(message: &str) -> String {
    let start = message.find("http://").expect("the form names the page");
    message[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

impl ClientHandler for Host {
    fn get_info(&self) -> ClientConfig {
        let mut modes = serde_json::Map::new();
        if self.url {
            modes.insert("url".into(), json!({}));
        }
        if self.form {
            modes.insert("form".into(), json!({}));
        }
        let capabilities: ClientCapabilities =
            serde_json::from_value(json!({ "elicitation": modes })).unwrap();
        let mut info = ClientConfig::default();
        info.capabilities = capabilities;
        info
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        self.seen.lock().unwrap().elicitations.push(request.clone());
        Ok(match (self.act, request) {
            (Act::Decline, _) => ElicitResult::new(ElicitationAction::Decline),
            (Act::ApproveOnPage, ElicitRequestParams::UrlElicitationParams { url, .. }) => {
                self.approve_on_page(url);
                ElicitResult::new(ElicitationAction::Accept)
            }
            (
                Act::Form(decision, then_approve),
                ElicitRequestParams::FormElicitationParams { message, .. },
            ) => {
                if then_approve {
                    self.approve_on_page(page_in(&message));
                }
                ElicitResult::new(ElicitationAction::Accept)
                    .with_content(json!({ "decision": decision }))
            }
            (act, other) => panic!("{act:?} was not expected to meet {other:?}"),
        })
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        if let Some(message) = params.message {
            self.seen.lock().unwrap().progress.push(message);
        }
    }
}

fn transfer(amount: &str) -> CallToolRequestParams {
    let Value::Object(arguments) = json!({ "to": FRIEND, "amount": amount }) else {
        unreachable!()
    };
    CallToolRequestParams::new("wallet_transfer").with_arguments(arguments)
}

async fn call_once(
    client: &RunningService<RoleClient, Host>,
    params: CallToolRequestParams,
) -> CallToolResponse {
    client.call_tool_once(params).await.unwrap()
}

fn complete(response: CallToolResponse) -> rmcp::model::CallToolResult {
    match response {
        CallToolResponse::Complete(result) => result,
        other => panic!("expected a complete result, got {other:?}"),
    }
}

async fn url_elicitation_waits_for_the_human_on_the_page_and_reports_each_step_in_both_generations(
    transport: Transport,
) {
    let Some(rig) = Rig::start_on(transport, "approval_expiry_seconds = 60").await else {
        return;
    };
    let person = Arc::default();
    for (generation, amount, wei) in [
        (Generation::Initialize, "0.5", 500_000_000_000_000_000u128),
        (Generation::Discover, "0.25", 250_000_000_000_000_000u128),
    ] {
        let host = Host::new(true, true, Act::ApproveOnPage, &person);
        let client = rig.connect(host.clone(), generation).await;
        let before = cast_balance(&rig.anvil.url, FRIEND, None);
        // rmcp's high-level call shows the elicitation and, in 2026-07-28, retries with the
        // answer and the sealed state, as a host does.
        let result = client.call_tool(transfer(amount)).await.unwrap();
        assert_eq!(host.failures(), Vec::<String>::new());
        let done = ok(&result);
        assert_eq!(done["state"], "mined", "{generation:?}: {done}");
        assert!(done["hash"].as_str().unwrap().starts_with("0x"));
        assert!(done["approval_url"].is_null(), "{done}");
        assert_eq!(cast_balance(&rig.anvil.url, FRIEND, None) - before, wei);

        let elicitations = host.elicitations();
        assert_eq!(elicitations.len(), 1, "{generation:?}: {elicitations:?}");
        let ElicitRequestParams::UrlElicitationParams { url, message, .. } = &elicitations[0]
        else {
            panic!("a URL-capable host gets URL mode: {elicitations:?}")
        };
        assert!(url.starts_with("http://127.0.0.1:") && url.contains("/approve/"));
        assert!(
            message.contains(&format!("Send {amount} ETH on anvil")),
            "{message}"
        );
        assert!(message.contains("authenticator"), "{message}");

        // One line per state the call saw, from waiting to mined; steps that pass quicker than a
        // notification (approved, signed) may be folded into the next.
        let progress = host.progress();
        assert!(
            progress.first().unwrap().contains("awaits the human"),
            "{progress:?}"
        );
        assert!(
            progress.last().unwrap().contains("mined in block"),
            "{progress:?}"
        );
        assert!(
            progress
                .iter()
                .any(|line| line.contains(done["hash"].as_str().unwrap())),
            "the hash is reported before the receipt: {progress:?}"
        );
    }
}

async fn a_client_can_reject_but_never_approve_and_the_form_asks_for_no_secret(
    transport: Transport,
) {
    let Some(rig) = Rig::start_on(transport, "approval_expiry_seconds = 10").await else {
        return;
    };
    let nonce = rig.nonce(MAIN);
    let person = Arc::default();

    // Declined in a URL-capable host: rejected, nothing sent.
    let host = Host::new(true, false, Act::Decline, &person);
    let client = rig.connect(host.clone(), Generation::Initialize).await;
    let result = client.call_tool(transfer("1")).await.unwrap();
    assert_eq!(ok(&result)["state"], "rejected", "{result:?}");

    // A form-only host gets the whole review and a choice; "reject" rejects.
    for generation in [Generation::Initialize, Generation::Discover] {
        let host = Host::new(false, true, Act::Form("reject", false), &person);
        let client = rig.connect(host.clone(), generation).await;
        let result = client.call_tool(transfer("2")).await.unwrap();
        let rejected = ok(&result);
        assert_eq!(rejected["state"], "rejected", "{generation:?}: {rejected}");
        let elicitations = host.elicitations();
        let ElicitRequestParams::FormElicitationParams {
            message,
            requested_schema,
            ..
        } = &elicitations[0]
        else {
            panic!("a form-only host gets a form: {elicitations:?}")
        };
        assert!(
            message.starts_with(rejected["review"].as_str().unwrap()),
            "the form shows the review verbatim:\n{message}"
        );
        assert!(message.contains("does not approve"), "{message}");
        let schema = serde_json::to_value(requested_schema).unwrap();
        let fields: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        assert_eq!(
            fields,
            ["decision"],
            "the form asks for nothing else: {schema}"
        );
        assert!(!schema.to_string().contains("password") && !schema.to_string().contains("code\""));
    }

    // "I will approve it" in the form, but nobody types a code: the request expires unsent.
    let host = Host::new(false, true, Act::Form("continue", false), &person);
    let client = rig.connect(host.clone(), Generation::Initialize).await;
    let result = client.call_tool(transfer("3")).await.unwrap();
    assert_eq!(ok(&result)["state"], "expired", "{result:?}");

    // And with the code typed on the page, it goes through.
    let host = Host::new(false, true, Act::Form("continue", true), &person);
    let client = rig.connect(host.clone(), Generation::Discover).await;
    let result = client.call_tool(transfer("4")).await.unwrap();
    assert_eq!(host.failures(), Vec::<String>::new());
    assert_eq!(ok(&result)["state"], "mined", "{result:?}");
    assert_eq!(
        rig.nonce(MAIN),
        nonce + 1,
        "exactly one transaction was sent"
    );
}

async fn a_sealed_request_state_is_single_use_and_bound_to_the_call(transport: Transport) {
    let Some(rig) = Rig::start_on(transport, "").await else {
        return;
    };
    let nonce = rig.nonce(MAIN);
    let host = Host::new(true, false, Act::ApproveOnPage, &Arc::default());
    let client = rig.connect(host.clone(), Generation::Discover).await;

    let CallToolResponse::InputRequired(asked) = call_once(&client, transfer("0.75")).await else {
        panic!("a 2026-07-28 host with URL mode gets an InputRequiredResult")
    };
    let state = asked.request_state.clone().expect("a sealed state");
    let inputs = asked.input_requests.expect("an input request");
    let Some(InputRequest::Elicitation(elicit)) = inputs.get("approval") else {
        panic!("one elicitation named approval: {inputs:?}")
    };
    let ElicitRequestParams::UrlElicitationParams { url, .. } = &elicit.params else {
        panic!("URL mode")
    };
    let url = url.clone();
    human(move || {
        let answered = Human::default().answer(&url, "approve");
        assert!(answered.body.contains("Approved"), "{}", answered.body);
    })
    .await;
    let mut accepted = InputResponses::new();
    accepted.insert(
        "approval".into(),
        serde_json::to_value(ElicitResult::new(ElicitationAction::Accept)).unwrap(),
    );
    let retry = |params: CallToolRequestParams, state: &str| {
        params
            .with_input_responses(accepted.clone())
            .with_request_state(state.to_owned())
    };

    // Other arguments, another tool, or an altered state: refused, and nothing is consumed.
    let (kind, message) = tool_error(&complete(
        call_once(&client, retry(transfer("7"), &state)).await,
    ));
    assert_eq!(kind, "request_state", "{message}");
    let mut other_tool = retry(transfer("0.75"), &state);
    other_tool.name = "wallet_approve_token".into();
    let (kind, _) = tool_error(&complete(call_once(&client, other_tool).await));
    assert_eq!(kind, "request_state");
    let mut altered = state.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });
    let (kind, _) = tool_error(&complete(
        call_once(&client, retry(transfer("0.75"), &altered)).await,
    ));
    assert_eq!(kind, "request_state");

    // The real retry follows the request to its receipt.
    let done = complete(call_once(&client, retry(transfer("0.75"), &state)).await);
    let done = ok(&done).clone();
    assert_eq!(done["state"], "mined", "{done}");

    // Sending the same state again: refused, naming the request; no second transaction.
    let (kind, message) = tool_error(&complete(
        call_once(&client, retry(transfer("0.75"), &state)).await,
    ));
    assert_eq!(kind, "request_state");
    assert!(message.contains("already used"), "{message}");
    assert!(
        message.contains(done["request_id"].as_str().unwrap()),
        "{message}"
    );
    let polled = rig.status(done["request_id"].as_str().unwrap(), 1).await;
    assert_eq!(polled["state"], "mined");
    assert_eq!(polled["hash"], done["hash"]);
    assert_eq!(
        rig.nonce(MAIN),
        nonce + 1,
        "exactly one transaction was sent"
    );

    // A 2026-07-28 client without elicitation is told to wait, as before.
    let plain = rig.connect((), Generation::Discover).await;
    let CallToolResponse::Complete(result) = plain.call_tool_once(transfer("0.1")).await.unwrap()
    else {
        panic!("no elicitation, no InputRequiredResult")
    };
    assert_eq!(ok(&result)["state"], "awaiting_approval");
    assert!(ok(&result)["approval_url"].as_str().is_some());
}

over_each_transport!(
    url_elicitation_waits_for_the_human_on_the_page_and_reports_each_step_in_both_generations,
    a_client_can_reject_but_never_approve_and_the_form_asks_for_no_secret,
    a_sealed_request_state_is_single_use_and_bound_to_the_call,
);
