//! The fund-movement tools: parse, plan, review, check the policy, and file a pending request.
//!
//! Nothing here moves funds. The tools leave a request waiting for the human on a trusted channel
//! and say where; the confirmation desk does the rest once the human approves with a code.

use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use rmcp::RoleServer;
use rmcp::model::JsonObject;
use rmcp::service::RequestContext;
use serde_json::{Value, json};

use super::Server;
use super::approval::{Filed, arguments_sha256};
use super::args::{ArgError, Arguments, invalid};
use super::error::ToolError;
use super::output::{ReceiptEntry, RequestOutput, WarningEntry};
use super::tools;
use crate::audit::Kind;
use crate::chain::erc20;
use crate::chain::plan::Draft;
use crate::chain::tx::UnsignedTx;
use crate::chain::units::parse_units;
use crate::config::Network;
use crate::confirm::guard::now;
use crate::confirm::random_hex;
use crate::confirm::store::{Request, Signs, Spend, State, sha256_hex};
use crate::keystore::find_account;
use crate::policy::{self, AddressBook};
use crate::review::{self, Action, Allowance, Facts, ReviewInput, Simulation, TokenView};
use crate::untrusted::{Note, UntrustedText};

/// The longest a status call waits for a change.
const MAX_WAIT_SECONDS: u64 = 60;

/// A request about to be filed: what it signs, for whom, and the review the human will read.
pub(super) struct Filing<'a> {
    pub kind: &'a str,
    pub signs: Signs,
    pub network: String,
    pub account: usize,
    pub from: Address,
    pub counterparty: Address,
    /// Hex of the exact bytes the digest covers.
    pub payload: String,
    pub digest: B256,
    pub review: review::Review,
    /// What it spends, one entry per asset (see [`Spend::totals`]).
    pub spends: Vec<Spend>,
}

/// What the tool asked for, resolved against the configuration.
enum Asset {
    Eth,
    Token(TokenView),
}

impl Server {
    pub(super) async fn transfer(
        &self,
        arguments: Option<&JsonObject>,
    ) -> Result<Filed, ToolError> {
        let args = Arguments::parse(arguments, tools::TRANSFER_ARGS)?;
        let (network, _) = self.network(args.network()?)?;
        let to = args.address("to")?;
        let amount_text = args.amount("amount")?;
        let asset = self
            .asset(network, args.string("asset", 42)?.unwrap_or("ETH"))
            .await?;
        let (decimals, symbol) = match &asset {
            Asset::Eth => (18, Some("ETH".to_owned())),
            Asset::Token(token) => (
                token.decimals,
                token.verified.then(|| token.symbol.value.clone()),
            ),
        };
        let amount = parse_units(&amount_text, decimals)
            .map_err(|problem| invalid("amount", &problem.to_string()))?;
        if amount.is_zero() {
            return Err(invalid("amount", "must be more than zero").into());
        }
        let (action, draft_to, value, input, token) = match asset {
            Asset::Eth => (Action::EthTransfer, to, amount, Vec::new(), None),
            Asset::Token(token) => {
                let address = token.address;
                (
                    Action::TokenTransfer {
                        token,
                        recipient: to,
                        amount,
                    },
                    address,
                    U256::ZERO,
                    erc20::transfer(to, amount),
                    Some(address),
                )
            }
        };
        let spend = symbol.map(|asset| Spend::new(&network.name, &asset, amount, decimals));
        self.prepare(
            &args,
            "transfer",
            network,
            action,
            Draft {
                from: Address::ZERO,
                to: draft_to,
                value,
                input,
                counterparty: to,
                token,
            },
            spend.into_iter().collect(),
        )
        .await
    }

    pub(super) async fn approve_token(
        &self,
        arguments: Option<&JsonObject>,
        revoke: bool,
    ) -> Result<Filed, ToolError> {
        let allowed = if revoke {
            tools::REVOKE_ARGS
        } else {
            tools::APPROVE_ARGS
        };
        let args = Arguments::parse(arguments, allowed)?;
        let (network, _) = self.network(args.network()?)?;
        let spender = args.address("spender")?;
        let token_text = args
            .string("token", 42)?
            .ok_or(ArgError::Missing { name: "token" })?;
        let Asset::Token(token) = self.asset(network, token_text).await? else {
            return Err(invalid("token", "must be a token, not ETH").into());
        };
        let allowance = if revoke {
            Allowance::Limited(U256::ZERO)
        } else {
            let text = args.amount("amount")?;
            if text.eq_ignore_ascii_case("unlimited") {
                Allowance::Unlimited
            } else {
                Allowance::from_amount(
                    parse_units(&text, token.decimals)
                        .map_err(|problem| invalid("amount", &problem.to_string()))?,
                )
            }
        };
        policy::check_unlimited(&self.inner.config, allowance == Allowance::Unlimited)
            .map_err(|refusal| self.refuse(refusal))?;
        // An allowance is spending power: limited ones count against the asset's limits.
        let spend =
            match allowance {
                Allowance::Limited(amount) if !amount.is_zero() && token.verified => Some(
                    Spend::new(&network.name, &token.symbol.value, amount, token.decimals),
                ),
                _ => None,
            };
        let address = token.address;
        self.prepare(
            &args,
            if revoke { "revoke" } else { "approve" },
            network,
            Action::TokenApproval {
                token,
                spender,
                allowance,
            },
            Draft {
                from: Address::ZERO,
                to: address,
                value: U256::ZERO,
                input: erc20::approve(spender, allowance.amount()),
                counterparty: spender,
                token: None,
            },
            spend.into_iter().collect(),
        )
        .await
    }

    /// The vault and the position of the account `from` names: the first account by default.
    pub(super) fn sender(
        &self,
        args: &Arguments<'_>,
    ) -> Result<(std::sync::Arc<crate::keystore::Vault>, usize), ToolError> {
        let vault = self.vault()?;
        let position = match args.selector("from")? {
            Some(selector) => {
                find_account(vault.accounts(), &selector).map_err(|_| ToolError::UnknownAccount)?
            }
            None => 0,
        };
        Ok((vault, position))
    }

    /// A policy refusal at filing time: audited, and returned to the model naming its rule.
    pub(super) fn refuse(&self, refusal: policy::Refusal) -> ToolError {
        self.desk().log(
            Kind::PolicyDenied,
            None,
            json!({ "rule": refusal.rule(), "at": "prepare" }),
        );
        ToolError::Refused {
            rule: refusal.rule(),
            message: format!("refused by policy: {refusal}"),
            review: None,
        }
    }

    /// Resolves `ETH`, a configured symbol, or a token address.
    async fn asset(&self, network: &Network, text: &str) -> Result<Asset, ToolError> {
        if text.eq_ignore_ascii_case("ETH") {
            return Ok(Asset::Eth);
        }
        if let Some(token) = network.tokens.iter().find(|t| {
            t.symbol
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case(text))
        }) {
            return self
                .token_view(network, token.address)
                .await
                .map(Asset::Token);
        }
        if text.starts_with("0x") {
            let address =
                crate::config::parse_address(text).map_err(|problem| invalid("asset", &problem))?;
            return self.token_view(network, address).await.map(Asset::Token);
        }
        Err(ToolError::Argument(ArgError::Invalid {
            name: "asset",
            problem: format!(
                "must be ETH, a token symbol configured for network \"{}\" ({}), or a token \
                 address",
                network.name,
                network
                    .tokens
                    .iter()
                    .filter_map(|t| t.symbol.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }))
    }

    async fn token_view(
        &self,
        network: &Network,
        address: Address,
    ) -> Result<TokenView, ToolError> {
        let configured = network.tokens.iter().find(|t| t.address == address);
        if let Some(token) = configured
            && let (Some(symbol), Some(decimals)) = (&token.symbol, token.decimals)
        {
            return Ok(TokenView {
                address,
                symbol: UntrustedText::new(symbol),
                decimals,
                verified: true,
            });
        }
        let (_, chain) = self.network(Some(&network.name))?;
        let metadata = chain
            .token_metadata(address, crate::chain::BlockTag::Latest)
            .await?;
        let decimals = configured
            .and_then(|t| t.decimals)
            .or(metadata.decimals.ok())
            .ok_or_else(|| {
                invalid(
                    "token",
                    "names a contract that does not report its decimals, so no amount can be \
                     shown exactly",
                )
            })?;
        let symbol = match configured.and_then(|t| t.symbol.clone()) {
            Some(symbol) => UntrustedText::new(&symbol),
            None => {
                let mut claimed = metadata.symbol.unwrap_or_else(|_| UntrustedText::new("?"));
                if super::imitates_configured_symbol(network, address, &claimed) {
                    claimed.flag(Note::ImitatesConfiguredToken);
                }
                claimed
            }
        };
        Ok(TokenView {
            address,
            symbol,
            decimals,
            verified: configured.is_some(),
        })
    }

    pub(super) async fn prepare(
        &self,
        args: &Arguments<'_>,
        kind: &str,
        network: &Network,
        action: Action,
        mut draft: Draft,
        spends: Vec<Spend>,
    ) -> Result<Filed, ToolError> {
        let desk = self.desk();
        let config = &self.inner.config;
        let (vault, position) = self.sender(args)?;
        let account = &vault.accounts()[position];
        draft.from = account.address;
        let refuse = |refusal| self.refuse(refusal);
        policy::check_network(config, &network.name).map_err(refuse)?;
        let book = AddressBook::load(&desk.data_dir)
            .map_err(|err| ToolError::Unavailable(err.to_string()))?;
        let own: Vec<Address> = vault.accounts().iter().map(|a| a.address).collect();
        policy::check_counterparty(config, &book, &own, draft.counterparty).map_err(refuse)?;
        let movements: Vec<_> = spends.iter().map(Spend::movement).collect();
        policy::check_all_limits(config, &desk.ledger, &movements, now()).map_err(refuse)?;

        let (_, chain) = self.network(Some(&network.name))?;
        let planned = chain.plan(&draft).await?;
        let mut pending_nonce = planned.pending_nonce;
        if desk
            .nonces
            .ahead_of(network.chain_id, draft.from, pending_nonce)
        {
            // keyward remembers nonces as used that the chain does not count: a reorg dropped
            // mined transactions, or the read raced one being mined. A second read tells them
            // apart; the chain's word then frees the nonces, so no gap blocks the account.
            pending_nonce = chain.pending_nonce(draft.from).await?;
            desk.nonces
                .rewind(network.chain_id, draft.from, pending_nonce);
        }
        let nonce = desk
            .nonces
            .reserve(network.chain_id, draft.from, pending_nonce);
        let tx = UnsignedTx {
            chain_id: network.chain_id,
            nonce,
            max_priority_fee_per_gas: planned.max_priority_fee_per_gas,
            max_fee_per_gas: planned.max_fee_per_gas,
            gas_limit: planned.gas_limit,
            to: draft.to,
            value: draft.value,
            input: draft.input.clone(),
        };
        let counterparty = draft.counterparty;
        let counterparty_name = book.name_of(counterparty).map(str::to_owned).or_else(|| {
            vault
                .accounts()
                .iter()
                .find(|a| a.address == counterparty)
                .map(|a| format!("{} (your account)", a.label))
        });
        let known = counterparty_name.is_some() || desk.ledger.knows(&network.name, counterparty);
        let look_alike = book
            .entries
            .iter()
            .map(|e| (e.name.clone(), e.address))
            .chain(
                vault
                    .accounts()
                    .iter()
                    .map(|a| (a.label.to_string(), a.address)),
            )
            .find(|(_, address)| review::looks_alike(counterparty, *address));
        let facts = Facts {
            from_label: account.label.to_string(),
            counterparty_name,
            counterparty_is_contract: planned.counterparty_is_contract,
            first_time: !known,
            look_alike,
            simulation: match &planned.simulation {
                Ok(()) => Simulation::Succeeds,
                Err(data) => Simulation::Reverts(
                    data.as_deref()
                        .and_then(erc20::decode_revert_reason)
                        .map(UntrustedText::from_bytes),
                ),
            },
            eth_balance: planned.eth_balance,
            token_balance: planned.token_balance,
        };
        let review = review::build(&ReviewInput {
            network: &network.name,
            tx: &tx,
            from: draft.from,
            action: &action,
            facts: &facts,
        });
        if let Some(blocking) = review.refusal() {
            desk.nonces.release(network.chain_id, draft.from, nonce);
            desk.log(
                Kind::PolicyDenied,
                None,
                json!({ "rule": "review", "reason": blocking.text, "title": review.title }),
            );
            return Err(ToolError::Refused {
                rule: "review".into(),
                message: format!("keyward refuses this transaction: {}", blocking.text),
                review: Some(Box::new(review)),
            });
        }

        self.file(
            args,
            Filing {
                kind,
                signs: Signs::Transaction,
                network: network.name.clone(),
                account: position,
                from: draft.from,
                counterparty,
                payload: hex::encode(tx.signing_payload()),
                digest: tx.signing_hash(),
                review,
                spends,
            },
        )
        .inspect_err(|_| desk.nonces.release(network.chain_id, draft.from, nonce))
    }

    /// Files a pending request for the human, with a fresh page token, id and CSRF token.
    pub(super) fn file(
        &self,
        args: &Arguments<'_>,
        filing: Filing<'_>,
    ) -> Result<Filed, ToolError> {
        let token = random_hex(32).map_err(ToolError::Unavailable)?;
        let id = format!("req-{}", random_hex(8).map_err(ToolError::Unavailable)?);
        let created = now();
        let request = Request {
            id,
            kind: filing.kind.to_owned(),
            signs: filing.signs,
            created,
            expires: created + self.inner.config.policy.approval_expiry_seconds,
            network: filing.network,
            account: filing.account,
            from: filing.from,
            counterparty: filing.counterparty,
            payload: filing.payload,
            digest: filing.digest,
            review: filing.review,
            spends: filing.spends,
            token_sha256: sha256_hex(token.as_bytes()),
            csrf: random_hex(16).map_err(ToolError::Unavailable)?,
            arguments_sha256: arguments_sha256(args.raw()),
            state: State::Pending,
            reason: None,
            node_message: None,
            raw: None,
            hash: None,
            receipt: None,
            signature: None,
            updated: created,
        };
        let request = self
            .desk()
            .file(request)
            .map_err(|err| ToolError::Unavailable(err.to_string()))?;
        Ok(Filed { request, token })
    }

    pub(super) async fn request_status(
        &self,
        arguments: Option<&JsonObject>,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<Value, ToolError> {
        let args = Arguments::parse(arguments, tools::REQUEST_STATUS_ARGS)?;
        let id = args
            .string("request_id", 40)?
            .ok_or(ArgError::Missing { name: "request_id" })?;
        let wait = args.bounded("wait_seconds", MAX_WAIT_SECONDS)?.unwrap_or(0);
        let desk = self.desk();
        desk.sweep();
        let request = if wait > 0 {
            self.follow(id, ctx, Some(Duration::from_secs(wait)))
                .await?
        } else {
            desk.store.get(id).map_err(|_| ToolError::UnknownRequest)?
        };
        super::to_value(self.request_output(&request, None))
    }

    pub(super) fn request_output(&self, request: &Request, token: Option<&str>) -> RequestOutput {
        let desk = self.desk();
        let pending = request.state == State::Pending;
        RequestOutput {
            request_id: request.id.clone(),
            state: state_name(request.state),
            approval_url: token
                .filter(|_| pending)
                .and_then(|token| desk.approval_url(token)),
            approve_in_terminal: pending.then(|| format!("keyward approve {}", request.id)),
            expires_at: request.expires,
            network: request.network.clone(),
            title: request.review.title.clone(),
            review: request.review.text.clone(),
            warnings: request
                .review
                .warnings
                .iter()
                .map(|w| WarningEntry {
                    severity: match w.severity {
                        review::Severity::Info => "info",
                        review::Severity::Warn => "warn",
                        review::Severity::Critical => "critical",
                    },
                    text: w.text.clone(),
                    blocks: w.blocks,
                })
                .collect(),
            contract_text: request.review.contract_text.clone(),
            digest: request.digest.to_string(),
            reason: request.reason.clone(),
            node_message: request.node_message.clone(),
            hash: request.hash.map(|hash| hash.to_string()),
            receipt: request.receipt.as_ref().map(|r| ReceiptEntry {
                block: r.block,
                succeeded: r.succeeded,
                gas_used: r.gas_used.clone(),
            }),
            signature: request.signature.clone(),
        }
    }
}

/// The state as the model sees it: a pending request is awaiting the human.
pub(super) fn state_name(state: State) -> &'static str {
    match state {
        State::Pending => "awaiting_approval",
        other => other.name(),
    }
}
