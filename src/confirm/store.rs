//! Pending requests, persisted: every fund movement from the moment it is prepared until it is
//! mined or has failed.
//!
//! The whole set lives in `requests.json` in the state directory and is rewritten atomically on
//! every state change, before the change takes effect anywhere else. That ordering is what makes
//! a crash safe: a request is marked `signed`, with its signed bytes, before those bytes are
//! broadcast, so after a restart keyward knows exactly which transaction may be on the network
//! and never signs a second one for the same request.
//!
//! This module must never hold a secret: the page token is stored only as its SHA-256.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use alloy::primitives::{Address, B256, U256};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::chain::tx::UnsignedTx;
use crate::files::{self, FileError};
use crate::policy::Movement;
use crate::review::Review;
use crate::signer::Message;

const FILE: &str = "requests.json";
const MAX_FILE: u64 = 64 << 20;
/// Finished requests are kept this long for `wallet_request_status`, then dropped.
const KEEP_FINISHED_SECONDS: u64 = 7 * 86_400;

/// pending → approved | rejected | expired; approved → signed → broadcast → mined | failed.
/// `failed` is also reached from `approved` or `signed` when keyward stops or the node refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    Approved,
    /// Approved, and waiting for the person to confirm on their Ledger.
    OnDevice,
    Rejected,
    Expired,
    Signed,
    Broadcast,
    Mined,
    Failed,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::OnDevice => "awaiting_device",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::Signed => "signed",
            Self::Broadcast => "broadcast",
            Self::Mined => "mined",
            Self::Failed => "failed",
        }
    }

    /// Nothing more will happen to the request.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Rejected | Self::Expired | Self::Mined | Self::Failed
        )
    }

    fn may_become(self, next: Self) -> bool {
        use State::*;
        matches!(
            (self, next),
            (Pending, Approved | Rejected | Expired)
                | (Approved, OnDevice | Signed | Failed)
                | (OnDevice, Signed | Failed)
                | (Signed, Broadcast | Failed)
                | (Broadcast, Mined | Failed)
        )
    }
}

/// What a request asks the key to sign.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signs {
    /// An EIP-1559 transaction, broadcast once signed.
    #[default]
    Transaction,
    /// An EIP-191 personal message; the signature is the result.
    Message,
    /// EIP-712 typed data (its JSON); the signature is the result.
    TypedData,
}

/// What a request spends, for the policy ledger: an asset and an amount in base units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spend {
    pub network: String,
    /// `ETH` or the configured token symbol.
    pub asset: String,
    pub base_units: String,
    pub decimals: u8,
}

impl Spend {
    pub fn new(network: &str, asset: &str, amount: U256, decimals: u8) -> Self {
        Self {
            network: network.to_owned(),
            asset: asset.to_owned(),
            base_units: amount.to_string(),
            decimals,
        }
    }

    /// The amount in base units; one that does not parse counts as the most there is, so it can
    /// only make a limit stricter.
    pub fn amount(&self) -> U256 {
        U256::from_str_radix(&self.base_units, 10).unwrap_or(U256::MAX)
    }

    pub fn movement(&self) -> Movement<'_> {
        Movement {
            network: &self.network,
            asset: Some(&self.asset),
            amount: self.amount(),
            decimals: self.decimals,
        }
    }

    /// One spend per asset and network: a request that moves one token twice (a Permit2 batch,
    /// a multicall) is held to that token's limits by its total.
    pub fn totals(spends: impl IntoIterator<Item = Spend>) -> Vec<Spend> {
        let mut totals: Vec<Spend> = Vec::new();
        for spend in spends {
            match totals
                .iter_mut()
                .find(|t| t.network == spend.network && t.asset == spend.asset)
            {
                Some(total) => {
                    total.base_units = total.amount().saturating_add(spend.amount()).to_string();
                }
                None => totals.push(spend),
            }
        }
        totals
    }
}

/// Reads `spends`, or the single `spend` (or null) requests were filed with before batches.
fn one_or_many<'de, D: serde::Deserializer<'de>>(from: D) -> Result<Vec<Spend>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<Spend>),
        One(Option<Spend>),
    }
    Ok(match OneOrMany::deserialize(from)? {
        OneOrMany::Many(spends) => spends,
        OneOrMany::One(spend) => spend.into_iter().collect(),
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub block: u64,
    pub succeeded: bool,
    pub gas_used: String,
}

/// One fund movement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub id: String,
    /// `transfer`, `approve`, `revoke` or `message`.
    pub kind: String,
    /// A transaction, or a message whose signature is the result.
    #[serde(default)]
    pub signs: Signs,
    pub created: u64,
    pub expires: u64,
    pub network: String,
    /// The account's position in the vault, and its address.
    pub account: usize,
    pub from: Address,
    /// The counterparty (recipient or spender), for first-time and address-book checks.
    pub counterparty: Address,
    /// The exact bytes whose digest the human approves, hex: the EIP-1559 signing payload, or
    /// the message.
    pub payload: String,
    /// What the key signs: keccak256 of the transaction payload, or the message's EIP-191 hash.
    pub digest: B256,
    pub review: Review,
    /// What it spends, one entry per asset, held to the policy limits at filing and approval.
    #[serde(default, alias = "spend", deserialize_with = "one_or_many")]
    pub spends: Vec<Spend>,
    /// SHA-256 of the approval page token, hex.
    pub token_sha256: String,
    /// The approval form's CSRF token. Not a credential on its own.
    pub csrf: String,
    /// SHA-256 of the tool call's arguments, which a sealed 2026-07-28 retry must repeat.
    pub arguments_sha256: String,
    pub state: State,
    /// Why the request was refused or failed, in keyward's words.
    #[serde(default)]
    pub reason: Option<String>,
    /// What the node said when it refused the broadcast: third-party text, kept out of `reason`.
    #[serde(default)]
    pub node_message: Option<crate::untrusted::UntrustedText>,
    /// The signed transaction, hex, once signed.
    #[serde(default)]
    pub raw: Option<String>,
    #[serde(default)]
    pub hash: Option<B256>,
    #[serde(default)]
    pub receipt: Option<Receipt>,
    /// A message's signature, r ‖ s ‖ v as hex, once signed.
    #[serde(default)]
    pub signature: Option<String>,
    pub updated: u64,
}

impl Request {
    /// The unsigned transaction, decoded from the persisted payload and checked against the
    /// digest: what is signed is exactly what was reviewed.
    pub fn unsigned(&self) -> Result<UnsignedTx, StoreError> {
        if self.signs != Signs::Transaction {
            return Err(self.corrupt("it signs a message, not a transaction"));
        }
        let payload = hex::decode(&self.payload).map_err(|_| self.corrupt("payload is not hex"))?;
        let tx = UnsignedTx::decode_payload(&payload)
            .map_err(|_| self.corrupt("payload is not an EIP-1559 transaction"))?;
        if tx.signing_hash() != self.digest {
            return Err(self.corrupt("payload does not match its digest"));
        }
        Ok(tx)
    }

    /// The message, decoded from the persisted payload and checked against the digest.
    pub fn message(&self) -> Result<Message, StoreError> {
        let message = match self.signs {
            Signs::Transaction => return Err(self.corrupt("it signs a transaction, not a message")),
            Signs::Message => Message::Personal(
                hex::decode(&self.payload).map_err(|_| self.corrupt("payload is not hex"))?,
            ),
            Signs::TypedData => {
                let json = hex::decode(&self.payload)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .ok_or_else(|| self.corrupt("payload is not hex of UTF-8 JSON"))?;
                let data = crate::eip712::parse(&json)
                    .map_err(|_| self.corrupt("payload is not valid typed data"))?;
                Message::Typed(Box::new(data))
            }
        };
        if message.signing_hash() != self.digest {
            return Err(self.corrupt("payload does not match its digest"));
        }
        Ok(message)
    }

    /// Nothing more will happen to it: a final state, or a message that has been signed.
    pub fn is_finished(&self) -> bool {
        self.state.is_final() || (self.state == State::Signed && self.signs != Signs::Transaction)
    }

    fn corrupt(&self, problem: &str) -> StoreError {
        StoreError::Corrupt(format!("request {}: {problem}", self.id))
    }

    /// Whether `token` opens this request's approval page. Constant time.
    pub fn token_matches(&self, token: &str) -> bool {
        let hashed = sha256_hex(token.as_bytes());
        bool::from(hashed.as_bytes().ct_eq(self.token_sha256.as_bytes()))
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no request has id \"{0}\"; wallet_request_status lists the ones keyward knows")]
    Unknown(String),

    #[error("request {id} is {state}, so it cannot become {next}")]
    WrongState {
        id: String,
        state: &'static str,
        next: &'static str,
    },

    #[error(
        "the request file is damaged ({0}); keyward will not guess which transactions were sent: \
         restore requests.json from a backup or move it away to start empty"
    )]
    Corrupt(String),

    #[error(transparent)]
    File(#[from] FileError),
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    requests: BTreeMap<String, Request>,
}

#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    saved: Mutex<Saved>,
}

impl Store {
    pub fn open(state_dir: &Path) -> Result<Self, StoreError> {
        let path = state_dir.join(FILE);
        let saved = match files::read_optional(&path, MAX_FILE)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|err| StoreError::Corrupt(format!("{FILE}: {err}")))?,
            None => Saved::default(),
        };
        Ok(Self {
            path,
            saved: Mutex::new(saved),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Saved> {
        self.saved
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self, saved: &Saved) -> Result<(), StoreError> {
        let bytes =
            serde_json::to_vec_pretty(saved).map_err(|err| StoreError::Corrupt(err.to_string()))?;
        files::write_atomic(&self.path, &bytes)?;
        Ok(())
    }

    /// Adds a new request, persisted before this returns.
    pub fn insert(&self, request: Request, now: u64) -> Result<(), StoreError> {
        let mut saved = self.lock();
        saved
            .requests
            .retain(|_, r| !(r.is_finished() && r.updated + KEEP_FINISHED_SECONDS < now));
        let id = request.id.clone();
        saved.requests.insert(id.clone(), request);
        if let Err(err) = self.write(&saved) {
            // Not persisted means not created.
            saved.requests.remove(&id);
            return Err(err);
        }
        Ok(())
    }

    pub fn get(&self, id: &str) -> Result<Request, StoreError> {
        self.lock()
            .requests
            .get(id)
            .cloned()
            .ok_or_else(|| StoreError::Unknown(id.chars().take(40).collect()))
    }

    pub fn all(&self) -> Vec<Request> {
        self.lock().requests.values().cloned().collect()
    }

    /// The request whose page token is `token`.
    pub fn by_token(&self, token: &str) -> Option<Request> {
        self.lock()
            .requests
            .values()
            .find(|r| r.token_matches(token))
            .cloned()
    }

    /// Moves a request to `next`, applying `update` to it, and persists the change. Fails, changing
    /// nothing, when the state machine does not allow the move: this is the one check that stops a
    /// request from being approved twice or signed twice.
    pub fn transition(
        &self,
        id: &str,
        next: State,
        now: u64,
        update: impl FnOnce(&mut Request),
    ) -> Result<Request, StoreError> {
        let mut saved = self.lock();
        let request = saved
            .requests
            .get(id)
            .ok_or_else(|| StoreError::Unknown(id.chars().take(40).collect()))?;
        if !request.state.may_become(next) {
            return Err(StoreError::WrongState {
                id: id.to_owned(),
                state: request.state.name(),
                next: next.name(),
            });
        }
        let mut changed = request.clone();
        changed.state = next;
        changed.updated = now;
        update(&mut changed);
        let previous = saved.requests.insert(id.to_owned(), changed.clone());
        if let Err(err) = self.write(&saved) {
            if let Some(previous) = previous {
                saved.requests.insert(id.to_owned(), previous);
            }
            return Err(err);
        }
        Ok(changed)
    }

    /// Pending requests past their expiry, marked expired. Returns them.
    pub fn expire(&self, now: u64) -> Result<Vec<Request>, StoreError> {
        let due: Vec<String> = self
            .lock()
            .requests
            .values()
            .filter(|r| r.state == State::Pending && r.expires <= now)
            .map(|r| r.id.clone())
            .collect();
        let mut expired = Vec::new();
        for id in due {
            match self.transition(&id, State::Expired, now, |r| {
                r.reason = Some("nobody approved it before it expired".into());
            }) {
                Ok(request) => expired.push(request),
                // Approved or rejected in the meantime.
                Err(StoreError::WrongState { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(expired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::Review;
    use alloy::primitives::U256;

    fn request(id: &str, now: u64) -> Request {
        let tx = UnsignedTx {
            chain_id: 31337,
            nonce: 0,
            max_priority_fee_per_gas: 1,
            max_fee_per_gas: 2,
            gas_limit: 21_000,
            to: Address::repeat_byte(1),
            value: U256::from(5u64),
            input: Vec::new(),
        };
        Request {
            id: id.into(),
            kind: "transfer".into(),
            signs: Signs::Transaction,
            created: now,
            expires: now + 60,
            network: "anvil".into(),
            account: 0,
            from: Address::repeat_byte(2),
            counterparty: Address::repeat_byte(1),
            payload: hex::encode(tx.signing_payload()),
            digest: tx.signing_hash(),
            review: Review {
                title: "t".into(),
                text: "t".into(),
                warnings: Vec::new(),
                contract_text: Default::default(),
            },
            spends: Vec::new(),
            token_sha256: sha256_hex(b"token"),
            csrf: "csrf".into(),
            arguments_sha256: String::new(),
            state: State::Pending,
            reason: None,
            node_message: None,
            raw: None,
            hash: None,
            receipt: None,
            signature: None,
            updated: now,
        }
    }

    #[test]
    fn the_state_machine_allows_each_step_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.insert(request("a", 100), 100).unwrap();
        store.transition("a", State::Approved, 101, |_| {}).unwrap();
        assert!(matches!(
            store.transition("a", State::Approved, 102, |_| {}),
            Err(StoreError::WrongState { .. })
        ));
        assert!(matches!(
            store.transition("a", State::Expired, 102, |_| {}),
            Err(StoreError::WrongState { .. })
        ));
        store.transition("a", State::Signed, 103, |_| {}).unwrap();
        store
            .transition("a", State::Broadcast, 104, |_| {})
            .unwrap();
        store.transition("a", State::Mined, 105, |_| {}).unwrap();
        assert!(store.transition("a", State::Signed, 106, |_| {}).is_err());
        // Persisted: a restart sees the same.
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.get("a").unwrap().state, State::Mined);
        assert!(store.get("a").unwrap().unsigned().is_ok());
    }

    #[test]
    fn expiry_touches_only_pending_requests_past_their_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.insert(request("a", 100), 100).unwrap();
        store.insert(request("b", 100), 100).unwrap();
        store.insert(request("c", 130), 130).unwrap();
        store.transition("b", State::Approved, 120, |_| {}).unwrap();
        let expired = store.expire(165).unwrap();
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].id, "a");
        assert_eq!(store.get("c").unwrap().state, State::Pending);
    }

    #[test]
    fn tokens_match_by_hash_and_a_tampered_payload_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.insert(request("a", 100), 100).unwrap();
        assert_eq!(store.by_token("token").unwrap().id, "a");
        assert!(store.by_token("tokem").is_none());
        let mut tampered = request("b", 100);
        tampered.payload.replace_range(4..6, "ff");
        assert!(tampered.unsigned().is_err());
    }

    #[test]
    fn requests_filed_with_a_single_spend_still_load() {
        let spend = Spend::new("anvil", "TUSD", U256::from(5), 6);
        let mut request = request("r1", 1000);
        request.spends = vec![spend.clone()];
        let now = serde_json::to_value(&request).unwrap();
        assert_eq!(now["spends"][0]["base_units"], "5");
        let mut before = now.clone();
        let object = before.as_object_mut().unwrap();
        object.remove("spends");
        object.insert("spend".into(), serde_json::to_value(&spend).unwrap());
        let loaded: Request = serde_json::from_value(before.clone()).unwrap();
        assert_eq!(loaded.spends, vec![spend.clone()]);
        before["spend"] = serde_json::Value::Null;
        let loaded: Request = serde_json::from_value(before).unwrap();
        assert!(loaded.spends.is_empty());
    }

    #[test]
    fn spends_of_one_asset_add_up() {
        let totals = Spend::totals([
            Spend::new("anvil", "TUSD", U256::from(5), 6),
            Spend::new("anvil", "ETH", U256::from(1), 18),
            Spend::new("anvil", "TUSD", U256::from(7), 6),
            Spend::new("other", "TUSD", U256::from(1), 6),
        ]);
        assert_eq!(
            totals,
            vec![
                Spend::new("anvil", "TUSD", U256::from(12), 6),
                Spend::new("anvil", "ETH", U256::from(1), 18),
                Spend::new("other", "TUSD", U256::from(1), 6),
            ]
        );
    }
}
