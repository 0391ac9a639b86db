//! How a filed request reaches the human: the channel is chosen from what the client said it can
//! do, and nothing a client says can approve a request.
//!
//! - **URL-mode elicitation.** Up to protocol 2025-11-25 the server asks the client, during the
//!   call, to open the approval page; 2026-07-28 forbids requests in the middle of a call, so the
//!   call returns an `InputRequiredResult` instead, with a sealed `requestState` that the retry
//!   must echo. The seal is bound to the tool and its exact arguments, expires with the request,
//!   and is accepted once: [`Seals`] keeps the consumed rounds.
//! - **Form-mode elicitation**, for clients without URL mode: the review and a non-secret choice
//!   between "I will approve it with my code" and "reject it now". The form never asks for the
//!   code or the password: those are typed only on the page or in the terminal approver.
//! - **No elicitation**: the tool returns `awaiting_approval` and the model polls
//!   `wallet_request_status`.
//!
//! A client's answer can only reject a request or make the call wait for the human. While it
//! waits, the call reports each step (approved, signed, broadcast, mined) as a progress
//! notification, and it stops waiting when the client cancels the call.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ConstTitle, ElicitRequest,
    ElicitRequestParams, ElicitResult, ElicitationAction, ElicitationSchema, EnumSchema,
    InputRequest, InputRequiredResult, JsonObject, PrimitiveSchemaDefinition,
    ProgressNotificationParam, RequestStateCodec, SealOptions, SingleSelectEnumSchema,
    TitledSingleSelectEnumSchema,
};
use rmcp::service::RequestContext;
use rmcp::{Peer, RoleServer};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Server;
use super::error::ToolError;
use crate::confirm::guard::now;
use crate::confirm::store::{Request, State, sha256_hex};

/// The key of keyward's one input request in an `InputRequiredResult`.
const INPUT_KEY: &str = "approval";

/// How often a waiting call says it is still waiting, so that clients which reset their timeout
/// on progress keep waiting too.
const HEARTBEAT: Duration = Duration::from_secs(10);

/// A request the tool filed, with the page token that only this call's result carries.
#[derive(Debug)]
pub(super) struct Filed {
    pub request: Request,
    pub token: String,
}

/// Which elicitation the client can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Url,
    Form,
    Poll,
}

fn channel(ctx: &RequestContext<RoleServer>) -> Channel {
    let Some(elicitation) = ctx.client_capabilities().and_then(|c| c.elicitation) else {
        return Channel::Poll;
    };
    match (&elicitation.url, &elicitation.form) {
        (Some(_), _) => Channel::Url,
        // An empty elicitation capability predates the modes and means form.
        (None, _) => Channel::Form,
    }
}

/// Whether the call speaks 2026-07-28 or later, where the server may not send requests mid-call.
fn modern(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.protocol_version()
        .is_some_and(|version| !version.has_initialize())
}

/// SHA-256 of a call's arguments as canonical JSON (serde_json's maps are sorted): what a sealed
/// retry must repeat exactly.
pub(super) fn arguments_sha256(arguments: Option<&JsonObject>) -> String {
    sha256_hex(
        serde_json::to_string(&arguments.cloned().unwrap_or_default())
            .unwrap_or_default()
            .as_bytes(),
    )
}

/// What a sealed `requestState` carries: the request and a random round id.
#[derive(Debug, Serialize, Deserialize)]
struct Sealed {
    request: String,
    round: String,
}

/// The HMAC key for `requestState` (random per process, so a state from an earlier run opens
/// nowhere) and the rounds already answered.
#[derive(Debug)]
pub(super) struct Seals {
    codec: RequestStateCodec,
    /// Round id → the Unix time after which its seal has expired anyway.
    used: Mutex<HashMap<String, u64>>,
}

/// Why a retry's `requestState` was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SealError {
    #[error(
        "the requestState does not belong to this call: it was altered, made for other \
         arguments or another tool, has expired, or comes from an earlier run of keyward. \
         Follow the request with wallet_request_status, or call the tool again for a new one"
    )]
    Invalid,
    #[error(
        "this requestState was already used, and each is good for one retry; follow request \
         {0} with wallet_request_status"
    )]
    Used(String),
}

impl Seals {
    pub(super) fn new() -> Result<Self, String> {
        let mut key = zeroize::Zeroizing::new(vec![0u8; 32]);
        getrandom::fill(&mut key).map_err(|err| err.to_string())?;
        let codec = RequestStateCodec::try_new(key.to_vec()).map_err(|err| err.to_string())?;
        Ok(Self {
            codec,
            used: Mutex::new(HashMap::new()),
        })
    }

    fn seal(&self, tool: &str, arguments: &str, request: &Request) -> Result<String, String> {
        let bound = format!("{tool}\n{arguments}");
        let ttl = request.expires.saturating_sub(now()).max(1);
        let sealed = Sealed {
            request: request.id.clone(),
            round: crate::confirm::random_hex(16)?,
        };
        self.codec
            .seal_json_with(
                &sealed,
                &SealOptions::new()
                    .associated_data(bound.as_bytes())
                    .ttl(Duration::from_secs(ttl)),
            )
            .map_err(|err| err.to_string())
    }

    fn open(&self, tool: &str, arguments: &str, state: &str) -> Result<Sealed, SealError> {
        let bound = format!("{tool}\n{arguments}");
        self.codec
            .open_json_with(state, bound.as_bytes())
            .map_err(|_| SealError::Invalid)
    }

    /// Marks a round answered; false if it already was.
    fn consume(&self, sealed: &Sealed, expires: u64) -> bool {
        let mut used = self
            .used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = now();
        used.retain(|_, until| *until >= now);
        used.insert(sealed.round.clone(), expires).is_none()
    }
}

/// The form a client without URL mode shows: a choice, never a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Decision {
    /// The human will approve with a code on the page or in the terminal.
    Continue,
    Reject,
}

fn acknowledgement_schema() -> ElicitationSchema {
    let mut choice = TitledSingleSelectEnumSchema::new(vec![
        ConstTitle::new(
            "continue",
            "I will approve it with my authenticator code on the approval page or in the terminal",
        ),
        ConstTitle::new("reject", "Reject it now"),
    ]);
    choice.title = Some("Your decision".into());
    let decision =
        PrimitiveSchemaDefinition::Enum(EnumSchema::Single(SingleSelectEnumSchema::Titled(choice)));
    ElicitationSchema::new(BTreeMap::from([("decision".to_owned(), decision)]))
        .with_required(vec!["decision".to_owned()])
}

impl Server {
    /// Hands a filed request to the human by the best channel the client has, and answers the
    /// tool call.
    pub(super) async fn deliver(
        &self,
        tool: &str,
        arguments: Option<&JsonObject>,
        filed: Filed,
        ctx: &RequestContext<RoleServer>,
    ) -> CallToolResponse {
        let Filed { request, token } = filed;
        let url = self.desk().approval_url(&token);
        let channel = match url {
            Some(_) => channel(ctx),
            // Without a page, only the terminal approver is left.
            None => Channel::Poll,
        };
        let pending = |request: &Request| self.answer(request, Some(&token));
        if channel == Channel::Poll {
            return pending(&request);
        }
        let elicitation = self.elicitation(channel, &request, url.as_deref().unwrap_or_default());
        if modern(ctx) {
            let arguments = arguments_sha256(arguments);
            return match self.inner.seals.seal(tool, &arguments, &request) {
                Ok(state) => {
                    let mut inputs = BTreeMap::new();
                    inputs.insert(
                        INPUT_KEY.to_owned(),
                        InputRequest::Elicitation(ElicitRequest::new(elicitation)),
                    );
                    InputRequiredResult::new(Some(inputs), Some(state)).into()
                }
                Err(problem) => {
                    tracing::error!("sealing a request state failed: {problem}");
                    pending(&request)
                }
            };
        }
        let timeout = Duration::from_secs(request.expires.saturating_sub(now()).max(1));
        let asked = tokio::select! {
            () = ctx.ct.cancelled() => return pending(&request),
            asked = ctx.peer.create_elicitation_with_timeout(elicitation, Some(timeout)) => asked,
        };
        match asked {
            Ok(reply) => self.act_on(&request, channel, reply, ctx).await,
            Err(err) => {
                // Fail closed: the request stays pending, approvable on the page or terminal.
                tracing::info!(request = request.id, "the client did not elicit: {err}");
                pending(&request)
            }
        }
    }

    /// The retry of a 2026-07-28 call that returned `InputRequiredResult`.
    pub(super) async fn resume(
        &self,
        params: &CallToolRequestParams,
        state: &str,
        ctx: &RequestContext<RoleServer>,
    ) -> CallToolResponse {
        let arguments = arguments_sha256(params.arguments.as_ref());
        let refused = |err: SealError| -> CallToolResponse {
            self.desk().log(
                crate::audit::Kind::PolicyDenied,
                None,
                json!({ "rule": "request_state", "reason": err.to_string() }),
            );
            ToolError::RequestState(err).into_result().into()
        };
        let sealed = match self.inner.seals.open(&params.name, &arguments, state) {
            Ok(sealed) => sealed,
            Err(err) => return refused(err),
        };
        let Ok(request) = self.desk().store.get(&sealed.request) else {
            return ToolError::UnknownRequest.into_result().into();
        };
        if request.arguments_sha256 != arguments {
            return refused(SealError::Invalid);
        }
        if !self.inner.seals.consume(&sealed, request.expires) {
            return refused(SealError::Used(request.id));
        }
        let reply = params
            .input_responses
            .as_ref()
            .and_then(|responses| responses.get(INPUT_KEY))
            .and_then(|reply| serde_json::from_value::<ElicitResult>(reply.clone()).ok());
        let Some(reply) = reply else {
            // No answer from the human through the client: the request waits for the page.
            return self.answer(&request, None);
        };
        let channel = if reply.content.is_some() {
            Channel::Form
        } else {
            Channel::Url
        };
        self.act_on(&request, channel, reply, ctx).await
    }

    /// What the human told the client: reject, wait for the code, or nothing.
    async fn act_on(
        &self,
        request: &Request,
        channel: Channel,
        reply: ElicitResult,
        ctx: &RequestContext<RoleServer>,
    ) -> CallToolResponse {
        let decision = match (reply.action, channel) {
            (ElicitationAction::Decline, _) => Some(Decision::Reject),
            (ElicitationAction::Accept, Channel::Form) => reply
                .content
                .and_then(|content| content.get("decision").cloned())
                .and_then(|decision| serde_json::from_value(decision).ok()),
            (ElicitationAction::Accept, _) => Some(Decision::Continue),
            // Dismissed: no decision, the request stays pending.
            _ => None,
        };
        match decision {
            Some(Decision::Reject) => {
                let request = match self.desk().reject(&request.id, "human, in the MCP client") {
                    Ok(rejected) => rejected,
                    // Approved or expired meanwhile: report it as it is.
                    Err(_) => self
                        .desk()
                        .store
                        .get(&request.id)
                        .unwrap_or(request.clone()),
                };
                self.answer(&request, None)
            }
            Some(Decision::Continue) => match self.follow(&request.id, ctx, None).await {
                Ok(request) => self.answer(&request, None),
                Err(err) => err.into_result().into(),
            },
            None => self.answer(request, None),
        }
    }

    fn elicitation(&self, channel: Channel, request: &Request, url: &str) -> ElicitRequestParams {
        match channel {
            Channel::Form => ElicitRequestParams::FormElicitationParams {
                meta: None,
                message: self.masked_text(format!(
                    "{}\n\nThis form does not approve anything. To approve, open {url} or run \
                     `keyward approve {}`, and enter a code from your authenticator app.",
                    request.review.text, request.id
                )),
                requested_schema: acknowledgement_schema(),
            },
            Channel::Url | Channel::Poll => ElicitRequestParams::UrlElicitationParams {
                meta: None,
                message: self.masked_text(format!(
                    "keyward asks you to review and approve: {}. The page shows exactly what \
                     will be signed; approving takes a code from your authenticator app. \
                     Nothing is sent until you do.",
                    request.review.title
                )),
                url: url.to_owned(),
                elicitation_id: request.id.clone(),
            },
        }
    }

    fn answer(&self, request: &Request, token: Option<&str>) -> CallToolResponse {
        let output = self.request_output(request, token);
        match super::to_value(output) {
            Ok(value) => CallToolResult::structured(value).into(),
            Err(err) => err.into_result().into(),
        }
    }

    /// Waits until the request is final, or `limit` passes, reporting each state it passes
    /// through as a progress notification. Stops early, with the request as it is, when the client
    /// cancels the call.
    pub(super) async fn follow(
        &self,
        id: &str,
        ctx: &RequestContext<RoleServer>,
        limit: Option<Duration>,
    ) -> Result<Request, ToolError> {
        let desk = self.desk();
        let deadline = limit.map(|limit| tokio::time::Instant::now() + limit);
        let mut progress = Progress::new(ctx);
        let mut request = desk.store.get(id).map_err(|_| ToolError::UnknownRequest)?;
        progress
            .send(self.masked_text(step_message(&request)))
            .await;
        loop {
            let now = tokio::time::Instant::now();
            if request.is_finished() || deadline.is_some_and(|deadline| now >= deadline) {
                return Ok(request);
            }
            let wait = deadline.map_or(HEARTBEAT, |deadline| {
                HEARTBEAT.min(deadline.saturating_duration_since(now))
            });
            let next = tokio::select! {
                () = ctx.ct.cancelled() => return Ok(request),
                next = desk.wait(id, wait) => next.map_err(|_| ToolError::UnknownRequest)?,
            };
            // A new state, or the same one again as a heartbeat.
            progress.send(self.masked_text(step_message(&next))).await;
            request = next;
        }
    }
}

/// Progress notifications for one call, if the client asked for them.
struct Progress {
    peer: Peer<RoleServer>,
    token: Option<rmcp::model::ProgressToken>,
    sent: u32,
}

impl Progress {
    fn new(ctx: &RequestContext<RoleServer>) -> Self {
        Self {
            peer: ctx.peer.clone(),
            token: ctx.meta.get_progress_token(),
            sent: 0,
        }
    }

    async fn send(&mut self, message: String) {
        let Some(token) = &self.token else { return };
        self.sent += 1;
        let mut param = ProgressNotificationParam::new(token.clone(), f64::from(self.sent));
        param.message = Some(message);
        if let Err(err) = self.peer.notify_progress(param).await {
            tracing::debug!("a progress notification was not delivered: {err}");
        }
    }
}

/// The progress line for a request's state.
fn step_message(request: &Request) -> String {
    let hash = request
        .hash
        .map(|hash| hash.to_string())
        .unwrap_or_default();
    match request.state {
        State::Pending => format!(
            "request {} awaits the human's approval on the approval page or in the terminal",
            request.id
        ),
        State::Approved => "approved by the human; signing".to_owned(),
        State::OnDevice => {
            "approved by the human; waiting for them to confirm on their Ledger".to_owned()
        }
        State::Signed => format!("signed as {hash}; broadcasting"),
        State::Broadcast => format!("broadcast as {hash}; waiting for the receipt"),
        State::Mined => match &request.receipt {
            Some(receipt) if receipt.succeeded => format!("mined in block {}", receipt.block),
            Some(receipt) => format!("mined in block {} but reverted", receipt.block),
            None => "mined".to_owned(),
        },
        State::Failed => format!(
            "failed: {}",
            request.reason.as_deref().unwrap_or("no reason recorded")
        ),
        State::Rejected => "rejected".to_owned(),
        State::Expired => "expired without approval".to_owned(),
    }
}
