//! Confirmation: pending requests, the human's approval on a trusted channel, and what follows it.
//!
//! A prepared fund movement becomes a persisted [`store::Request`]. Only [`Desk::approve`], fed by
//! the approval page or the terminal approver with a TOTP code (and the password while the wallet
//! is locked), can turn it into an [`Approved`] transaction, and only an `Approved` value reaches
//! a [`Signer`](crate::signer::Signer). After signing, the desk records the signed bytes, then
//! broadcasts them and follows the transaction to its receipt, writing each step to the store and
//! the audit log before acting on it.
//!
//! This module must never accept a code or password from a tool call, and never sign a request
//! twice: the store's state machine is the single gate.

pub mod guard;
pub mod page;
pub mod socket;
pub mod store;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use alloy::primitives::B256;
use serde_json::json;

use crate::audit::{AuditLog, Kind};
use crate::chain::Chain;
use crate::chain::TxStatus;
use crate::chain::nonce::NonceBook;
use crate::chain::plan::{SendError, Sent};
use crate::chain::tx::UnsignedTx;
use crate::config::Config;
use crate::keystore::{AccountKind, KeystoreError, Vault};
use crate::policy::{self, Movement, Refusal, SpendLedger};
use crate::secret::Password;
use crate::signer::{Keyring, Message, Signer, SignerError};
use guard::{GuardError, TotpGuard, now};
use store::{Receipt, Request, Signs, Spend, State, Store, StoreError};

/// How often a broadcast transaction is checked for its receipt.
const RECEIPT_POLL: Duration = Duration::from_millis(200);
/// How long keyward follows a broadcast transaction before leaving it `broadcast`.
const RECEIPT_PATIENCE: Duration = Duration::from_secs(600);
/// A broadcast transaction the node does not know is sent again, as the same bytes, this often
/// (in receipt polls).
const RESEND_EVERY_POLLS: u32 = 10;

mod approved {
    use alloy::primitives::B256;

    /// A value the human approved, bound to the digest they approved. Only the confirmation module
    /// can make one, so holding one proves the approval happened.
    #[derive(Debug)]
    pub struct Approved<T> {
        value: T,
        digest: B256,
        request: String,
    }

    impl<T> Approved<T> {
        pub(in crate::confirm) fn new(value: T, digest: B256, request: String) -> Self {
            Self {
                value,
                digest,
                request,
            }
        }

        pub fn value(&self) -> &T {
            &self.value
        }

        /// The digest the human approved.
        pub fn digest(&self) -> B256 {
            self.digest
        }

        pub fn request(&self) -> &str {
            &self.request
        }
    }
}

pub use approved::Approved;

/// Why the wallet was locked, as the log and the audit log name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockReason {
    /// `keyward lock`, over the approver socket.
    Requested,
    /// Unused for `[approval] lock_after_seconds`.
    Idle,
    /// The MCP host closed stdin: the session is over.
    StdinClosed,
    /// The server is stopping (a signal, or an error).
    Shutdown,
}

impl LockReason {
    pub fn name(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Idle => "idle",
            Self::StdinClosed => "stdin_closed",
            Self::Shutdown => "shutdown",
        }
    }
}

/// The human's answer, as a trusted channel received it.
#[derive(Debug)]
pub struct Answer {
    pub approve: bool,
    /// The TOTP code typed by the human.
    pub code: Password,
    /// The vault password, when the wallet is locked.
    pub password: Option<Password>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error(transparent)]
    Store(#[from] StoreError),

    #[error("this request is {0} and can no longer be approved or rejected")]
    NotPending(&'static str),

    #[error("this request expired before it was approved; ask for a new one")]
    Expired,

    #[error("the wallet is locked: enter its password along with the code")]
    PasswordNeeded,

    #[error("wrong password; {left} more wrong attempts lock approvals")]
    WrongPassword { left: u32 },

    #[error(
        "no TOTP second factor is enrolled, and keyward approves nothing without one: run \
         `keyward totp enroll`"
    )]
    NoTotp,

    #[error(transparent)]
    Guard(#[from] GuardError),

    #[error("refused by policy: {0}")]
    Policy(Refusal),

    #[error("the wallet cannot be opened: {0}")]
    Wallet(#[from] KeystoreError),

    #[error(
        "the audit log cannot be written ({0}); keyward approves nothing it cannot record, so \
         nothing was approved: free disk space or make the state directory writable, then \
         approve again"
    )]
    Unrecorded(crate::audit::AuditError),

    #[error(
        "keyward could not record the approval ({0}), so nothing was approved or signed: free \
         disk space or make the state directory writable, then approve again"
    )]
    NotRecorded(String),

    #[error("keyward failed internally: {0}")]
    Internal(String),
}

/// Where requests wait for the human, shared by the MCP server, the approval page and the
/// terminal approver.
#[derive(Debug)]
pub struct Desk {
    pub config: Arc<Config>,
    chains: Arc<Vec<Chain>>,
    vault_path: PathBuf,
    pub data_dir: PathBuf,
    pub store: Store,
    guard: TotpGuard,
    pub ledger: SpendLedger,
    pub audit: AuditLog,
    keyring: Keyring,
    /// The Ledger, for accounts of kind `ledger`.
    hardware: Arc<crate::signer::ledger::Ledger>,
    pub nonces: NonceBook,
    /// One approval at a time: two humans answering at once are served in turn.
    approving: tokio::sync::Mutex<()>,
    /// Bumped on every state change; waiters watch it.
    changes: tokio::sync::watch::Sender<u64>,
    /// The approval page's origin once it listens, e.g. `http://127.0.0.1:7423`.
    page_origin: OnceLock<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Guard(#[from] GuardError),
    #[error(transparent)]
    Ledger(#[from] policy::ledger::LedgerError),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    #[error(transparent)]
    File(#[from] crate::files::FileError),
    #[error(transparent)]
    Device(#[from] keyward_hardware::DeviceError),
    #[error(
        "the audit log cannot be written ({0}); keyward files no fund movement it cannot record: \
         free disk space or make the state directory writable, then ask again"
    )]
    Unrecorded(crate::audit::AuditError),
    #[error(
        "keyward could not record the request ({0}), so nothing was filed: free disk space or \
         make the state directory writable, then ask again"
    )]
    NotFiled(StoreError),
}

impl Desk {
    pub fn open(
        config: Arc<Config>,
        chains: Arc<Vec<Chain>>,
        vault_path: PathBuf,
        data_dir: PathBuf,
        state_dir: PathBuf,
    ) -> Result<Arc<Self>, DeskError> {
        crate::files::create_private_dir(&state_dir)?;
        let hardware = Arc::new(crate::signer::ledger::Ledger::new(&config.ledger)?);
        let keyring = Keyring::new(config.approval.lock_after);
        let desk = Arc::new(Self {
            config,
            chains,
            vault_path,
            data_dir,
            store: Store::open(&state_dir)?,
            guard: TotpGuard::open(&state_dir)?,
            ledger: SpendLedger::open(&state_dir)?,
            audit: AuditLog::open(&state_dir)?,
            keyring,
            hardware,
            nonces: NonceBook::default(),
            approving: tokio::sync::Mutex::new(()),
            changes: tokio::sync::watch::channel(0).0,
            page_origin: OnceLock::new(),
        });
        Ok(desk)
    }

    pub fn set_page_origin(&self, origin: String) {
        let _ = self.page_origin.set(origin);
    }

    pub fn page_origin(&self) -> Option<&str> {
        self.page_origin.get().map(String::as_str)
    }

    /// The approval page's address for a request, given its token.
    pub fn approval_url(&self, token: &str) -> Option<String> {
        self.page_origin()
            .map(|origin| format!("{origin}/approve/{token}"))
    }

    pub fn chain(&self, network: &str) -> Option<&Chain> {
        self.config
            .network_index(Some(network))
            .and_then(|index| self.chains.get(index))
    }

    fn vault(&self) -> Result<Vault, KeystoreError> {
        Vault::load(&self.vault_path)
    }

    /// The Ledger path of the request's account, if its key lives on a Ledger.
    fn ledger_path(&self, request: &Request) -> Result<Option<String>, SignerError> {
        let vault = self.vault()?;
        let account = vault
            .accounts()
            .get(request.account)
            .filter(|a| a.address == request.from)
            .ok_or(SignerError::Key(KeystoreError::UnknownAccount))?;
        Ok(match &account.kind {
            AccountKind::Ledger { path } => Some(path.clone()),
            AccountKind::Hd { .. } | AccountKind::Imported => None,
        })
    }

    /// Whether the request's account lives on a Ledger.
    pub fn on_ledger(&self, request: &Request) -> bool {
        matches!(self.ledger_path(request), Ok(Some(_)))
    }

    /// Runs `job` with the request's signer: the unlocked vault's key, or the Ledger. A Ledger
    /// request moves to `awaiting_device` first, and the device is driven off the runtime, since
    /// the person may take minutes to confirm.
    async fn sign<T: Send + 'static>(
        self: &Arc<Self>,
        request: &Request,
        job: impl FnOnce(&dyn Signer) -> Result<T, SignerError> + Send + 'static,
    ) -> Result<T, SignerError> {
        match self.ledger_path(request)? {
            None => {
                let signed = self
                    .keyring
                    .signer(request.account, request.from)
                    .and_then(|signer| job(&signer));
                // The key was dropped (zeroized); what signing copied onto the stack goes now.
                crate::memory::scrub_stack();
                signed
            }
            Some(path) => {
                let signer = self.hardware.signer(&path, request.from)?;
                self.store
                    .transition(&request.id, State::OnDevice, now(), |_| {})
                    .map_err(|err| {
                        tracing::error!("a request could not move to awaiting_device: {err}");
                        SignerError::Unsupported(
                            "keyward could not record that it waits for the Ledger; nothing was \
                             signed",
                        )
                    })?;
                self.changed();
                tokio::task::spawn_blocking(move || job(&signer))
                    .await
                    .unwrap_or_else(|_| {
                        Err(SignerError::Unsupported(
                            "the Ledger signer stopped unexpectedly; nothing was signed",
                        ))
                    })
            }
        }
    }

    pub fn is_unlocked(&self) -> bool {
        self.keyring.is_unlocked()
    }

    /// Locks the wallet now, dropping and zeroizing its decrypted secrets, and records why.
    /// Returns whether it was unlocked; locking a locked wallet records nothing.
    pub fn lock(&self, reason: LockReason) -> bool {
        let was_unlocked = self.keyring.lock();
        if was_unlocked {
            self.locked(reason);
        }
        was_unlocked
    }

    fn locked(&self, reason: LockReason) {
        tracing::info!("wallet locked ({})", reason.name());
        self.log(Kind::Lock, None, json!({ "reason": reason.name() }));
    }

    /// Unlocks the wallet from a password given out of band (a 0600 password file).
    pub fn unlock(&self, password: &Password) -> Result<(), KeystoreError> {
        self.keyring.unlock(&self.vault()?, password)?;
        self.log(Kind::Unlock, None, json!({ "channel": "password_file" }));
        Ok(())
    }

    /// A receiver that changes whenever any request changes.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    /// Writes an audit entry. The audit log is the record of last resort: if it cannot be
    /// written, the failure is logged on stderr and the action it records still stands, since
    /// it has already been persisted in the request store.
    pub fn log(&self, kind: Kind, request: Option<&str>, detail: serde_json::Value) {
        if let Err(err) = self.audit.record(kind, request, detail) {
            tracing::error!("the audit log could not be written: {err}");
        }
    }

    /// Persists a new pending request, its audit entry first: a request the audit log cannot
    /// record is not filed.
    pub fn file(&self, request: Request) -> Result<Request, DeskError> {
        let now = now();
        self.audit
            .record(
                Kind::Prepared,
                Some(&request.id),
                json!({
                    "kind": request.kind,
                    "network": request.network,
                    "from": request.from,
                    "counterparty": request.counterparty,
                    "digest": request.digest,
                    "title": request.review.title,
                    "expires": request.expires,
                }),
            )
            .map_err(DeskError::Unrecorded)?;
        if let Err(err) = self.store.insert(request.clone(), now) {
            self.log(
                Kind::Failed,
                Some(&request.id),
                json!({ "reason": "the request could not be recorded, so it was not filed" }),
            );
            return Err(DeskError::NotFiled(err));
        }
        self.changed();
        Ok(request)
    }

    /// Expires overdue requests and locks an idle wallet. Called periodically and before reads.
    pub fn sweep(&self) {
        match self.store.expire(now()) {
            Ok(expired) => {
                for request in &expired {
                    self.release_nonce(request);
                    self.log(Kind::Expired, Some(&request.id), json!({}));
                }
                if !expired.is_empty() {
                    self.changed();
                }
            }
            Err(err) => tracing::error!("expiring requests failed: {err}"),
        }
        if self.keyring.lock_if_idle() {
            self.locked(LockReason::Idle);
        }
    }

    /// A signed transaction that was not sent gives its nonce back, and the account starts
    /// again from the chain, so the next transaction takes that nonce and leaves no gap.
    fn give_back_nonce(&self, request: &Request) {
        self.release_nonce(request);
        if let Ok(tx) = request.unsigned() {
            self.nonces.resync(tx.chain_id, request.from);
        }
    }

    fn release_nonce(&self, request: &Request) {
        if let Ok(tx) = request.unsigned() {
            self.nonces.release(tx.chain_id, request.from, tx.nonce);
        }
    }

    /// The human's answer to one or more requests, from a trusted channel. Each id comes with
    /// the digest the human was shown, when the channel knows it; a mismatch refuses that
    /// request. One code covers the whole list, since the human read every review before typing
    /// it. A wrong code or password fails the whole answer; per-request problems (a request no
    /// longer pending, a policy refusal) come back per request.
    pub async fn answer(
        self: &Arc<Self>,
        requests: &[(String, Option<B256>)],
        answer: Answer,
    ) -> Result<Vec<(String, Result<Request, ApprovalError>)>, ApprovalError> {
        let _turn = self.approving.lock().await;
        self.sweep();
        let now = now();
        let mut current = Vec::with_capacity(requests.len());
        for (id, shown) in requests {
            let request = self.store.get(id)?;
            match request.state {
                State::Pending => {}
                State::Expired => return Err(ApprovalError::Expired),
                other => return Err(ApprovalError::NotPending(other.name())),
            }
            if shown.is_some_and(|digest| digest != request.digest) {
                return Err(ApprovalError::Internal(
                    "the request shown is not the request stored".into(),
                ));
            }
            current.push(request);
        }
        if !answer.approve {
            let results = current
                .into_iter()
                .map(|request| {
                    let outcome = self.reject_one(&request.id, "human", now);
                    (request.id, outcome)
                })
                .collect();
            self.changed();
            return Ok(results);
        }

        let first = current.first().map(|r| r.id.clone()).unwrap_or_default();
        self.guard.check_open(now)?;
        if !self.keyring.is_unlocked() {
            let Some(password) = answer.password else {
                return Err(ApprovalError::PasswordNeeded);
            };
            let vault = self.vault()?;
            let desk = self.clone();
            let unlocked =
                tokio::task::spawn_blocking(move || desk.keyring.unlock(&vault, &password))
                    .await
                    .map_err(|err| ApprovalError::Internal(err.to_string()))?;
            match unlocked {
                Ok(()) => self.log(Kind::Unlock, Some(&first), json!({ "channel": "approval" })),
                Err(KeystoreError::WrongPassword(_)) => {
                    let failure = self.guard.fail(now)?;
                    return Err(self.failed_attempt(&first, "password", failure));
                }
                Err(err) => return Err(err.into()),
            }
        }
        let verdict = self
            .keyring
            .with_totp(|totp| {
                totp.map(|secret| self.guard.verify(secret, answer.code.expose_secret(), now))
            })
            .ok_or(ApprovalError::PasswordNeeded)?
            .ok_or(ApprovalError::NoTotp)?;
        match verdict {
            Ok(_step) => {}
            Err(GuardError::LockedNow { seconds }) => {
                return Err(self.failed_attempt(
                    &first,
                    "code",
                    guard::Failure::LockedOut { seconds },
                ));
            }
            Err(err @ (GuardError::WrongCode { .. } | GuardError::Reused)) => {
                let what = if matches!(err, GuardError::Reused) {
                    "reused_code"
                } else {
                    "code"
                };
                self.log(Kind::TotpFailed, Some(&first), json!({ "what": what }));
                return Err(err.into());
            }
            Err(err) => return Err(err.into()),
        }

        let mut results = Vec::new();
        for request in current {
            let id = request.id.clone();
            results.push((id, self.approve_one(request, now)));
        }
        self.changed();
        Ok(results)
    }

    /// Rejects a pending request on the word of the human as an MCP client relayed it (a declined
    /// elicitation). No code is needed: a rejection never moves funds.
    pub fn reject(&self, id: &str, by: &str) -> Result<Request, ApprovalError> {
        match self.store.get(id)?.state {
            State::Pending => {}
            State::Expired => return Err(ApprovalError::Expired),
            other => return Err(ApprovalError::NotPending(other.name())),
        }
        let outcome = self.reject_one(id, by, now());
        self.changed();
        outcome
    }

    fn reject_one(&self, id: &str, by: &str, now: u64) -> Result<Request, ApprovalError> {
        self.log(Kind::Rejected, Some(id), json!({ "by": by }));
        let rejected = self.store.transition(id, State::Rejected, now, |r| {
            r.reason = Some("the human rejected it".into());
        })?;
        self.release_nonce(&rejected);
        Ok(rejected)
    }

    /// Approves one request whose code was accepted: policy limits again, the spend ledger, the
    /// state change, then dispatch.
    fn approve_one(self: &Arc<Self>, request: Request, now: u64) -> Result<Request, ApprovalError> {
        let id = request.id.as_str();
        // The limits again, now that earlier requests may have been approved.
        let movements: Vec<Movement<'_>> = request.spends.iter().map(Spend::movement).collect();
        if !movements.is_empty()
            && let Err(refusal) =
                policy::check_all_limits(&self.config, &self.ledger, &movements, now)
        {
            self.log(
                Kind::PolicyDenied,
                Some(id),
                json!({ "rule": refusal.rule(), "at": "approval" }),
            );
            self.store.transition(id, State::Rejected, now, |r| {
                r.reason = Some(format!("refused by policy: {refusal}"));
            })?;
            self.release_nonce(&request);
            return Err(ApprovalError::Policy(refusal));
        }
        // What will be signed, decoded and checked against its digest before anything is
        // recorded.
        let payload = if request.signs == Signs::Transaction {
            Ok(request.unsigned()?)
        } else {
            Err(request.message()?)
        };
        // The audit entry first: an approval the audit log cannot record does not happen.
        self.audit
            .record(
                Kind::Approved,
                Some(id),
                json!({ "digest": request.digest }),
            )
            .map_err(ApprovalError::Unrecorded)?;
        let approved_request = self
            .record_approval(&request, &movements, now)
            .inspect_err(|_| {
                self.log(
                    Kind::Failed,
                    Some(id),
                    json!({
                        "reason": "the approval could not be recorded; nothing was signed",
                        "state": request.state.name(),
                    }),
                );
            })?;
        let desk = self.clone();
        match payload {
            Ok(tx) => {
                let approved = Approved::new(tx, request.digest, request.id.clone());
                tokio::spawn(async move { desk.dispatch(approved).await });
            }
            Err(message) => {
                let approved = Approved::new(message, request.digest, request.id.clone());
                tokio::spawn(desk.sign_message(approved));
            }
        }
        Ok(approved_request)
    }

    /// Records an approval whose audit entry is written: the spend ledger, the counterparty, and
    /// the request's new state. Nothing is signed unless all of them hold.
    fn record_approval(
        &self,
        request: &Request,
        movements: &[Movement<'_>],
        now: u64,
    ) -> Result<Request, ApprovalError> {
        let id = request.id.as_str();
        let unwritable =
            |err: policy::ledger::LedgerError| ApprovalError::NotRecorded(err.to_string());
        if !movements.is_empty() {
            self.ledger.record(movements, id, now).map_err(unwritable)?;
        }
        if !request.counterparty.is_zero() {
            self.ledger
                .remember(&request.network, request.counterparty)
                .map_err(unwritable)?;
        }
        self.store
            .transition(id, State::Approved, now, |_| {})
            .map_err(|err| match err {
                StoreError::File(_) => ApprovalError::NotRecorded(err.to_string()),
                other => ApprovalError::Store(other),
            })
    }

    fn failed_attempt(&self, id: &str, what: &str, failure: guard::Failure) -> ApprovalError {
        self.log(Kind::TotpFailed, Some(id), json!({ "what": what }));
        match failure {
            guard::Failure::Counted { left } => {
                if what == "password" {
                    ApprovalError::WrongPassword { left }
                } else {
                    ApprovalError::Guard(GuardError::WrongCode { left })
                }
            }
            guard::Failure::LockedOut { seconds } => {
                self.log(Kind::Lockout, Some(id), json!({ "seconds": seconds }));
                ApprovalError::Guard(GuardError::LockedNow { seconds })
            }
        }
    }

    /// Signs an approved message and records the signature, which is the request's result.
    async fn sign_message(self: Arc<Self>, approved: Approved<Message>) {
        let id = approved.request().to_owned();
        let Ok(request) = self.store.get(&id) else {
            return;
        };
        let signature = self
            .sign(&request, move |signer| signer.sign_message(&approved))
            .await;
        match signature {
            Ok(signature) => {
                let recorded = self.store.transition(&id, State::Signed, now(), |r| {
                    r.signature = Some(format!("0x{}", hex::encode(signature)));
                });
                match recorded {
                    Ok(_) => {
                        self.log(Kind::Signed, Some(&id), json!({ "digest": request.digest }));
                        self.changed();
                    }
                    Err(err) => {
                        tracing::error!("a signature could not be recorded: {err}");
                        self.fail(&request, "keyward could not record the signature");
                    }
                }
            }
            Err(err) => self.fail(&request, &format!("not signed: {err}")),
        }
    }

    /// Signs, records, broadcasts and follows an approved transaction.
    async fn dispatch(self: Arc<Self>, approved: Approved<UnsignedTx>) {
        let id = approved.request().to_owned();
        let Ok(request) = self.store.get(&id) else {
            return;
        };
        let signed = self
            .sign(&request, move |signer| signer.sign_transaction(&approved))
            .await;
        let signed = match signed {
            Ok(signed) => signed,
            Err(err) => {
                self.fail(&request, &format!("not signed: {err}"));
                return;
            }
        };
        // Not recorded means not sent: without its audit entry and its place in the store, the
        // signed bytes are dropped here.
        if let Err(err) = self
            .audit
            .record(Kind::Signed, Some(&id), json!({ "hash": signed.hash }))
        {
            tracing::error!("a signed transaction could not be audited: {err}");
            self.fail(
                &request,
                &format!(
                    "the audit log cannot be written ({err}), so keyward did not send the signed \
                     transaction and nothing was sent: make the state directory writable, then \
                     ask again"
                ),
            );
            return;
        }
        let recorded = self.store.transition(&id, State::Signed, now(), |r| {
            r.raw = Some(hex::encode(&signed.raw));
            r.hash = Some(signed.hash);
        });
        let request = match recorded {
            Ok(request) => request,
            Err(err) => {
                tracing::error!("a signed transaction could not be recorded: {err}");
                self.fail(
                    &request,
                    "keyward could not record the signed transaction, so it did not send it and \
                     nothing was sent: make the state directory writable, then ask again",
                );
                return;
            }
        };
        self.changed();
        self.broadcast(request, signed.raw, signed.hash).await;
    }

    async fn broadcast(&self, request: Request, raw: Vec<u8>, hash: B256) {
        let id = request.id.clone();
        let Some(chain) = self.chain(&request.network) else {
            self.fail(
                &request,
                "its network is no longer configured, so nothing was sent: ask again",
            );
            return;
        };
        let outcome = match chain.send_raw(&raw).await {
            Ok(Sent::Accepted) => Ok(()),
            Err(SendError::NotSent(err)) => {
                self.fail_with(
                    &request,
                    &format!(
                        "{err}; the signed transaction was not sent, so nothing was sent: ask again"
                    ),
                    None,
                );
                self.give_back_nonce(&request);
                return;
            }
            // The node's words stay out of keyward's: they travel as their own untrusted field.
            Ok(Sent::Refused(error)) => Err((
                format!(
                    "the node refused the transaction (error {}); what it said is in node_message",
                    error.code
                ),
                Some(error.message),
            )),
            Err(SendError::Unknown(err)) => Err((err.to_string(), None)),
        };
        let mut uncertain = None;
        if let Err((problem, node_message)) = outcome {
            // The node may have taken it anyway (a lost answer, or a duplicate): ask by hash.
            match chain.transaction_status(hash).await {
                Ok(TxStatus::Pending | TxStatus::Mined { .. }) => {}
                Ok(TxStatus::Unknown) => {
                    self.fail_with(
                        &request,
                        &format!(
                            "{problem}; the node does not know the transaction, so nothing was \
                             sent: ask again"
                        ),
                        node_message,
                    );
                    self.give_back_nonce(&request);
                    return;
                }
                // Whether it went out is unknown. Failing it would invite a second transfer;
                // following it, and sending the same bytes again, can only ever land this one.
                Err(err) => {
                    uncertain = Some(format!(
                        "keyward sent the transaction but got no usable answer ({problem}), and \
                         could not ask the node about it ({err}); it may be on the network: \
                         keyward keeps checking and sends the same signed bytes again, which can \
                         never make a second transaction, so do not ask for this transfer again"
                    ));
                }
            }
        }
        self.log(Kind::Broadcast, Some(&id), json!({ "hash": hash }));
        match self.store.transition(&id, State::Broadcast, now(), |r| {
            r.reason = uncertain;
        }) {
            Ok(_) => self.changed(),
            Err(err) => tracing::error!("recording the broadcast failed: {err}"),
        }
        self.follow(&request, chain, hash).await;
    }

    /// Polls for the receipt. A transaction the node does not know (an answer lost before the
    /// node took it, a node restarted, a transaction dropped from the pool) is sent again as the
    /// same signed bytes, which can only ever land as this one transaction.
    async fn follow(&self, request: &Request, chain: &Chain, hash: B256) {
        let raw = request.raw.as_deref().and_then(|raw| hex::decode(raw).ok());
        let started = tokio::time::Instant::now();
        let mut polls: u32 = 0;
        while started.elapsed() < RECEIPT_PATIENCE {
            match chain.transaction_status(hash).await {
                Ok(TxStatus::Mined {
                    block,
                    succeeded,
                    gas_used,
                }) => {
                    self.mined(request, hash, block, succeeded, gas_used.to_string());
                    return;
                }
                Ok(TxStatus::Unknown) if polls % RESEND_EVERY_POLLS == RESEND_EVERY_POLLS - 1 => {
                    if let Some(raw) = &raw
                        && let Ok(Sent::Accepted) = chain.send_raw(raw).await
                    {
                        tracing::info!("a broadcast transaction the node lost was sent again");
                        self.log(
                            Kind::Broadcast,
                            Some(&request.id),
                            json!({ "hash": hash, "again": true }),
                        );
                    }
                }
                _ => {}
            }
            polls = polls.wrapping_add(1);
            tokio::time::sleep(RECEIPT_POLL).await;
        }
    }

    fn mined(&self, request: &Request, hash: B256, block: u64, succeeded: bool, gas_used: String) {
        let receipt = Receipt {
            block,
            succeeded,
            gas_used,
        };
        let (state, reason) = if succeeded {
            (State::Mined, None)
        } else {
            (
                State::Failed,
                Some(format!(
                    "mined in block {block}, but the transaction reverted"
                )),
            )
        };
        if let Ok(tx) = request.unsigned() {
            self.nonces.spent(tx.chain_id, request.from, tx.nonce);
        }
        let kind = if succeeded { Kind::Mined } else { Kind::Failed };
        self.log(
            kind,
            Some(&request.id),
            json!({ "hash": hash, "block": block, "succeeded": succeeded }),
        );
        match self.store.transition(&request.id, state, now(), |r| {
            r.receipt = Some(receipt);
            r.reason = reason;
        }) {
            Ok(_) => self.changed(),
            Err(err) => tracing::error!("recording the receipt failed: {err}"),
        }
    }

    fn fail(&self, request: &Request, reason: &str) {
        self.fail_with(request, reason, None);
    }

    /// Fails a request with a reason in keyward's words and, apart, what the node said.
    fn fail_with(
        &self,
        request: &Request,
        reason: &str,
        node_message: Option<crate::untrusted::UntrustedText>,
    ) {
        self.log(Kind::Failed, Some(&request.id), json!({ "reason": reason }));
        match self
            .store
            .transition(&request.id, State::Failed, now(), |r| {
                r.reason = Some(reason.to_owned());
                r.node_message = node_message;
            }) {
            Ok(failed) => {
                if failed.raw.is_none() {
                    self.release_nonce(&failed);
                }
                self.changed();
            }
            Err(err) => tracing::error!("recording a failure failed: {err}"),
        }
    }

    /// Picks up after a restart: holds the nonces of pending requests, fails approved requests
    /// that were never signed, and finishes signed or broadcast ones without signing anything
    /// again.
    pub async fn recover(self: &Arc<Self>) {
        for request in self.store.all() {
            match request.state {
                State::Pending => {
                    if let Ok(tx) = request.unsigned() {
                        self.nonces.hold(tx.chain_id, request.from, tx.nonce);
                    }
                }
                State::Approved | State::OnDevice => self.fail(
                    &request,
                    "keyward stopped after the approval and before signing; nothing was signed, \
                     so nothing was sent: ask again",
                ),
                // A signed message is finished: its signature is the result.
                State::Signed if request.signs != Signs::Transaction => {}
                State::Signed => {
                    let raw = request.raw.as_deref().and_then(|raw| hex::decode(raw).ok());
                    match (raw, request.hash) {
                        (Some(raw), Some(hash)) => {
                            let desk = self.clone();
                            tokio::spawn(async move {
                                // The same signed bytes, so at most one transaction exists.
                                desk.broadcast(request, raw, hash).await;
                            });
                        }
                        _ => self.fail(&request, "its signed bytes were lost; nothing was sent"),
                    }
                }
                State::Broadcast => {
                    if let Some(hash) = request.hash {
                        let desk = self.clone();
                        tokio::spawn(async move {
                            if let Some(chain) = desk.chain(&request.network) {
                                desk.follow(&request, chain, hash).await;
                            }
                        });
                    }
                }
                _ => {}
            }
        }
        self.log(Kind::ServerStarted, None, json!({}));
    }

    /// Waits until request `id` changes state or `timeout` passes; returns it as it is then.
    pub async fn wait(&self, id: &str, timeout: Duration) -> Result<Request, StoreError> {
        let mut changes = self.subscribe();
        let start = self.store.get(id)?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let current = self.store.get(id)?;
            if current.state != start.state || current.is_finished() {
                return Ok(current);
            }
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                return self.store.get(id);
            }
        }
    }
}

/// `n` random bytes as lowercase hex, from the OS.
pub fn random_hex(n: usize) -> Result<String, String> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|err| err.to_string())?;
    Ok(hex::encode(bytes))
}
