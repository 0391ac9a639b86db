//! The MCP face of keyward: the tools an assistant calls, served over stdio.
//!
//! Each call is parsed into validated arguments ([`args`]), answered from the vault's public
//! account list or the chain, and returned as structured output ([`output`]). Every failure
//! becomes a tool error through the one exhaustive match in [`error`]; nothing else formats an
//! internal error for the client.
//!
//! This module must never hold or return a secret: the read-only tools need no unlocked vault,
//! and no argument carries a password or code.

mod approval;
pub(crate) mod args;
mod calls;
mod error;
mod funds;
mod output;
mod signatures;
mod stdio;
pub(crate) mod tools;
mod tools_hash;

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use alloy::primitives::{Address, U256};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, GetPromptRequestParams,
    GetPromptResponse, Implementation, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde::Serialize;
use serde_json::Value;

use crate::chain::units::format_units;
use crate::chain::{Chain, ChainError, TokenReadError, TxStatus};
use crate::config::{Config, ModelView, Network};
use crate::confirm::{Desk, DeskError};
use crate::home::Home;
use crate::keystore::{KeystoreError, Vault, find_account};
use crate::policy::RateLimiter;
use crate::privacy::egress::Egress;
use crate::privacy::mask::Masker;
use crate::untrusted::{Note, UntrustedText, skeleton};
use approval::{Filed, Seals};
use args::Arguments;
use error::ToolError;
use output::*;
pub use tools_hash::tools_hash;

const INSTRUCTIONS: &str = "keyward holds an Ethereum wallet. Its read-only tools report the \
wallet's accounts, balances, token metadata, chain state and transaction status. Text read from \
the chain, such as token names and symbols and revert reasons, is returned in fields marked untrusted. Transfers and \
token approvals are filed as requests that only the wallet's owner can approve, on keyward's \
approval page or in its terminal approver, with a code from an authenticator app; \
wallet_request_status follows a request.";

/// The instructions, ending with the tools-hash, so that whoever reads them (or a host that shows
/// them) can compare it with the one `keyward tools-hash` prints and the README lists.
static INSTRUCTIONS_WITH_HASH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{INSTRUCTIONS} The tools-hash of this tool list (the SHA-256 of its canonical JSON, as \
         `keyward tools-hash` prints it) is {}.",
        tools_hash()
    )
});

/// `serverInfo.description`: what keyward is, and the tools-hash, where a client that shows the
/// server's identity shows it.
static SERVER_DESCRIPTION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "An Ethereum wallet an AI assistant can use but never own; tools-hash {}",
        tools_hash()
    )
});

/// keyward's MCP server. Cheap to clone: the state is shared.
#[derive(Debug, Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Arc<Config>,
    vault: VaultFile,
    /// One per configured network, in configuration order.
    chains: Arc<Vec<Chain>>,
    desk: Arc<Desk>,
    rate: RateLimiter,
    /// The key and consumed set for 2026-07-28 `requestState` values.
    seals: Seals,
    /// `privacy.model_view = "masked"`: what shortens addresses in every result.
    masker: Option<Masker>,
}

/// What a tool call produced: a plain result, or a request for the human.
enum Reply {
    Done(Value),
    Filed(Box<Filed>),
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Desk(#[from] DeskError),
    #[error(transparent)]
    Egress(#[from] crate::privacy::egress::SetupError),
    #[error("the operating system's random source failed: {0}")]
    Random(String),
}

/// vault.json, parsed once and parsed again only when the file changes, so that a call costs a
/// `stat` rather than a read and parse. keyward replaces the file by rename, which changes its
/// inode, so an `account add` from the CLI shows up on the next call.
#[derive(Debug)]
struct VaultFile {
    path: PathBuf,
    cached: std::sync::Mutex<Option<(FileStamp, Arc<Vault>)>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    inode: u64,
    length: u64,
    modified: Option<std::time::SystemTime>,
}

impl VaultFile {
    fn load(&self) -> Result<Arc<Vault>, KeystoreError> {
        use std::os::unix::fs::MetadataExt;
        let metadata = match std::fs::metadata(&self.path) {
            Ok(metadata) => metadata,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeystoreError::NoWallet(self.path.clone()));
            }
            // Let the loader report the error with its usual wording.
            Err(_) => return Vault::load(&self.path).map(Arc::new),
        };
        let stamp = FileStamp {
            inode: metadata.ino(),
            length: metadata.len(),
            modified: metadata.modified().ok(),
        };
        let mut cached = self
            .cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((seen, vault)) = cached.as_ref()
            && *seen == stamp
        {
            return Ok(Arc::clone(vault));
        }
        let vault = Arc::new(Vault::load(&self.path)?);
        *cached = Some((stamp, Arc::clone(&vault)));
        Ok(vault)
    }
}

impl Server {
    /// A server for the wallet in `home`, with its requests and audit log in the home's state
    /// directory.
    pub fn new(config: Config, home: &Home) -> Result<Self, ServerError> {
        let http = Egress::new(&config)?;
        let masker = (config.privacy.model_view == ModelView::Masked).then(|| {
            // Configured token contracts are public and are what the model names tokens by.
            Masker::new(
                config
                    .networks()
                    .iter()
                    .flat_map(|n| n.tokens.iter().map(|t| t.address)),
            )
        });
        let config = Arc::new(config);
        let chains: Arc<Vec<Chain>> = Arc::new(
            config
                .networks()
                .iter()
                .map(|network| Chain::new(http.clone(), network))
                .collect(),
        );
        let vault_path = home.vault_path();
        let desk = Desk::open(
            config.clone(),
            chains.clone(),
            vault_path.clone(),
            home.data_dir().to_owned(),
            home.state_dir().to_owned(),
        )?;
        // Weak: the desk owns the chains, which own this client.
        let audit = Arc::downgrade(&desk);
        http.on_refusal(move |refusal| {
            if let Some(desk) = audit.upgrade() {
                desk.log(
                    crate::audit::Kind::EgressRefused,
                    None,
                    serde_json::json!({ "refused": refusal.to_string() }),
                );
            }
        });
        Ok(Self {
            inner: Arc::new(Inner {
                rate: RateLimiter::new(config.policy.max_tool_calls_per_minute),
                config,
                vault: VaultFile {
                    path: vault_path,
                    cached: std::sync::Mutex::new(None),
                },
                chains,
                desk,
                seals: Seals::new().map_err(ServerError::Random)?,
                masker,
            }),
        })
    }

    /// The confirmation desk this server files requests with.
    pub fn desk(&self) -> &Arc<Desk> {
        &self.inner.desk
    }

    /// Starts what approvals need: the approval page on the configured loopback address, the
    /// terminal approver's socket, the sweeper that expires requests, and the recovery of requests
    /// a previous run left unfinished. Returns the page's address.
    pub async fn start_approvals(&self) -> std::io::Result<std::net::SocketAddr> {
        let desk = self.inner.desk.clone();
        desk.recover().await;
        let (address, page) =
            crate::confirm::page::bind(desk.clone(), self.inner.config.approval.listen).await?;
        tokio::spawn(async move {
            if let Err(err) = page.await {
                tracing::error!("the approval page stopped: {err}");
            }
        });
        let (listener, _) = crate::confirm::socket::bind(desk.audit.dir())?;
        tokio::spawn(crate::confirm::socket::serve(desk.clone(), listener));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                ticks.tick().await;
                desk.sweep();
            }
        });
        tracing::info!("approval page at http://{address}/");
        Ok(address)
    }

    /// Checks each network's RPC and chain id once, logging the outcome. Never fails: a node that
    /// is down now may be up by the first call, and every call checks again.
    pub async fn check_networks(&self) {
        for chain in self.inner.chains.iter() {
            match chain.check().await {
                Ok(()) => tracing::info!(
                    network = chain.network(),
                    "RPC answers with the configured chain id"
                ),
                Err(err) => tracing::warn!(network = chain.network(), "{err}"),
            }
        }
    }

    /// Serves MCP on stdin and stdout until the client closes stdin.
    pub async fn serve_stdio(self) -> anyhow::Result<()> {
        let running = self.serve(stdio::stdio()).await?;
        let reason = running.waiting().await?;
        tracing::info!(?reason, "MCP session ended");
        Ok(())
    }

    fn network(&self, name: Option<&str>) -> Result<(&Network, &Chain), ToolError> {
        let config = &self.inner.config;
        let index = config
            .network_index(name)
            .ok_or_else(|| ToolError::UnknownNetwork {
                name: name.unwrap_or_default().to_owned(),
                known: config.networks().iter().map(|n| n.name.clone()).collect(),
            })?;
        Ok((&config.networks()[index], &self.inner.chains[index]))
    }

    fn vault(&self) -> Result<Arc<Vault>, ToolError> {
        self.inner.vault.load().map_err(ToolError::Wallet)
    }

    async fn call(
        &self,
        name: &str,
        arguments: Option<&rmcp::model::JsonObject>,
        ctx: &RequestContext<RoleServer>,
    ) -> Option<Result<Reply, ToolError>> {
        let done = |value: Result<Value, ToolError>| value.map(Reply::Done);
        let filed = |filed: Result<Filed, ToolError>| filed.map(|f| Reply::Filed(Box::new(f)));
        Some(match name {
            tools::ACCOUNTS => done(self.accounts(arguments)),
            tools::BALANCES => done(self.balances(arguments).await),
            tools::TOKEN_INFO => done(self.token_info(arguments).await),
            tools::CHAIN_INFO => done(self.chain_info(arguments).await),
            tools::TRANSACTION_STATUS => done(self.transaction_status(arguments).await),
            tools::TRANSFER => filed(self.limited(self.transfer(arguments)).await),
            tools::APPROVE_TOKEN => filed(self.limited(self.approve_token(arguments, false)).await),
            tools::REVOKE_APPROVAL => {
                filed(self.limited(self.approve_token(arguments, true)).await)
            }
            tools::SIGN_MESSAGE => filed(self.limited(self.sign_message(arguments)).await),
            tools::SIGN_TYPED_DATA => filed(self.limited(self.sign_typed_data(arguments)).await),
            tools::CONTRACT_CALL => filed(self.limited(self.contract_call(arguments)).await),
            tools::REQUEST_STATUS => done(self.request_status(arguments, ctx).await),
            _ => return None,
        })
    }

    /// Runs a fund-movement tool under the tool-call rate limit.
    async fn limited<T>(
        &self,
        call: impl Future<Output = Result<T, ToolError>>,
    ) -> Result<T, ToolError> {
        if let Err(refusal) = self.inner.rate.admit() {
            return Err(ToolError::Refused {
                rule: refusal.rule(),
                message: refusal.to_string(),
                review: None,
            });
        }
        call.await
    }

    fn accounts(&self, arguments: Option<&rmcp::model::JsonObject>) -> Result<Value, ToolError> {
        Arguments::parse(arguments, tools::ACCOUNTS_ARGS)?;
        let vault = self.vault()?;
        let accounts = vault
            .accounts()
            .iter()
            .enumerate()
            .map(|(number, account)| AccountEntry {
                number,
                label: account.label.to_string(),
                address: account.address.to_checksum(None),
                signer_kind: account.kind.name(),
            })
            .collect();
        to_value(AccountsOutput {
            accounts,
            totp_enrolled: vault.totp_enrolled(),
        })
    }

    async fn balances(
        &self,
        arguments: Option<&rmcp::model::JsonObject>,
    ) -> Result<Value, ToolError> {
        let args = Arguments::parse(arguments, tools::BALANCES_ARGS)?;
        let (network, chain) = self.network(args.network()?)?;
        let selector = args.account()?;
        let block = args.block()?;
        let vault = self.vault()?;
        let chosen: Vec<usize> = match &selector {
            Some(selector) => vec![
                find_account(vault.accounts(), selector).map_err(|_| ToolError::UnknownAccount)?,
            ],
            None => (0..vault.accounts().len()).collect(),
        };
        let tokens: Vec<(Address, Option<u8>)> = network
            .tokens
            .iter()
            .map(|t| (t.address, t.decimals))
            .collect();
        // One request per account, so that no request links two of the wallet's addresses,
        // unless the configuration trades that for one round trip.
        let results: Vec<Result<_, ChainError>> =
            if self.inner.config.privacy.batch_own_addresses && chosen.len() > 1 {
                let owners: Vec<Address> = chosen
                    .iter()
                    .map(|&number| vault.accounts()[number].address)
                    .collect();
                chain
                    .balances_of(&owners, &tokens, block)
                    .await?
                    .into_iter()
                    .map(Ok)
                    .collect()
            } else {
                let reads = chosen.iter().map(|&number| {
                    chain.balances(vault.accounts()[number].address, &tokens, block)
                });
                futures::future::join_all(reads).await
            };
        let mut accounts = Vec::with_capacity(chosen.len());
        let mut read_at = 0;
        for (&number, result) in chosen.iter().zip(results) {
            let balances = result?;
            read_at = read_at.max(balances.block);
            let account = &vault.accounts()[number];
            let tokens = network
                .tokens
                .iter()
                .zip(balances.tokens)
                .map(|(configured, read)| {
                    let (balance, error) = match read {
                        Ok(read) => match read.decimals {
                            Some(decimals) => (
                                Some(amount(read.balance, decimals, configured.symbol.clone())),
                                None,
                            ),
                            None => (None, Some("the token's decimals are unknown".to_owned())),
                        },
                        Err(err) => (None, Some(token_problem("balanceOf", err))),
                    };
                    TokenBalanceEntry {
                        token: configured.address.to_checksum(None),
                        verified: true,
                        balance,
                        error,
                    }
                })
                .collect();
            accounts.push(AccountBalances {
                number,
                label: account.label.to_string(),
                address: account.address.to_checksum(None),
                eth: amount(balances.eth, 18, Some("ETH".to_owned())),
                tokens,
            });
        }
        to_value(BalancesOutput {
            network: network.name.clone(),
            chain_id: network.chain_id,
            block: read_at,
            accounts,
        })
    }

    async fn token_info(
        &self,
        arguments: Option<&rmcp::model::JsonObject>,
    ) -> Result<Value, ToolError> {
        let args = Arguments::parse(arguments, tools::TOKEN_INFO_ARGS)?;
        let token = args.address("token")?;
        let (network, chain) = self.network(args.network()?)?;
        let block = args.block()?;
        let metadata = chain.token_metadata(token, block).await?;
        let configured = network.tokens.iter().find(|t| t.address == token);
        let mut problems = Vec::new();
        let mut text = |field: &str, read: Result<UntrustedText, TokenReadError>| match read {
            Ok(text) => Some(text),
            Err(err) => {
                problems.push(format!(
                    "{field}: {}",
                    token_problem(&format!("{field}()"), err)
                ));
                None
            }
        };
        let name = text("name", metadata.name);
        let mut symbol = text("symbol", metadata.symbol);
        if let Some(symbol) = &mut symbol
            && imitates_configured_symbol(network, token, symbol)
        {
            symbol.flag(Note::ImitatesConfiguredToken);
        }
        let decimals = match metadata.decimals {
            Ok(decimals) => Some(decimals),
            Err(err) => {
                problems.push(format!("decimals: {}", token_problem("decimals()", err)));
                None
            }
        };
        to_value(TokenInfoOutput {
            network: network.name.clone(),
            token: token.to_checksum(None),
            verified: configured.is_some(),
            configured_symbol: configured.and_then(|t| t.symbol.clone()),
            configured_decimals: configured.and_then(|t| t.decimals),
            name,
            symbol,
            decimals,
            problems,
        })
    }

    async fn chain_info(
        &self,
        arguments: Option<&rmcp::model::JsonObject>,
    ) -> Result<Value, ToolError> {
        let args = Arguments::parse(arguments, tools::CHAIN_INFO_ARGS)?;
        let (network, chain) = self.network(args.network()?)?;
        let info = chain.info().await?;
        to_value(ChainInfoOutput {
            network: network.name.clone(),
            chain_id: info.chain_id,
            latest_block: info.latest_block,
            base_fee_per_gas_wei: info.base_fee_per_gas.map(|fee| fee.to_string()),
            base_fee_per_gas_gwei: info.base_fee_per_gas.map(|fee| format_units(fee, 9)),
        })
    }

    async fn transaction_status(
        &self,
        arguments: Option<&rmcp::model::JsonObject>,
    ) -> Result<Value, ToolError> {
        let args = Arguments::parse(arguments, tools::TRANSACTION_STATUS_ARGS)?;
        let hash = args.hash("hash")?;
        let (network, chain) = self.network(args.network()?)?;
        let (status, block, succeeded, gas_used) = match chain.transaction_status(hash).await? {
            TxStatus::Pending => ("pending", None, None, None),
            TxStatus::Unknown => ("unknown", None, None, None),
            TxStatus::Mined {
                block,
                succeeded,
                gas_used,
            } => (
                "mined",
                Some(block),
                Some(succeeded),
                Some(gas_used.to_string()),
            ),
        };
        to_value(TransactionStatusOutput {
            network: network.name.clone(),
            hash: format!("{hash:#x}"),
            status,
            block,
            succeeded,
            gas_used,
        })
    }
}

impl ServerHandler for Server {
    #[expect(
        deprecated,
        reason = "logging is deprecated from 2026-07-28 but 2025-11-25 clients may set a level"
    )]
    fn get_info(&self) -> ServerConfig {
        // Prompts and resources are declared, and empty, because many hosts list them whatever
        // the capabilities say; a declared empty list answers them truthfully. Logging is
        // declared so hosts may set a level; keyward's own log goes to stderr, never to the host.
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_prompts()
            .enable_resources()
            .enable_logging()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(
                Implementation::new("keyward", env!("CARGO_PKG_VERSION"))
                    .with_description(SERVER_DESCRIPTION.as_str()),
            )
            .with_instructions(INSTRUCTIONS_WITH_HASH.as_str())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools::TOOLS.clone()))
    }

    #[expect(
        deprecated,
        reason = "logging is deprecated from 2026-07-28 but 2025-11-25 clients may set a level"
    )]
    async fn set_level(
        &self,
        _request: rmcp::model::SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        // keyward sends no log notifications at any level, so every level is honoured.
        Ok(())
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        Err(ErrorData::invalid_params(
            "keyward offers no prompts; its tools are listed by tools/list",
            Some(serde_json::json!({ "name": request.name })),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        // SEP-2164: an unknown resource is invalid params, naming the URI.
        Err(ErrorData::invalid_params(
            "keyward offers no resources; its tools are listed by tools/list",
            Some(serde_json::json!({ "uri": request.uri })),
        ))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools::TOOLS.iter().find(|tool| tool.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let started = Instant::now();
        let name = request.name.as_ref();
        if let Some(state) = &request.request_state {
            if !tools::FUND_TOOLS.contains(&name) {
                return Err(ErrorData::invalid_params(
                    "requestState is only for retrying keyward's fund-movement tools",
                    None,
                ));
            }
            return Ok(self.masked(self.resume(&request, state, &context).await));
        }
        let Some(outcome) = self.call(name, request.arguments.as_ref(), &context).await else {
            return Err(ErrorData::invalid_params(
                format!(
                    "unknown tool; keyward's tools are {}",
                    tools::TOOLS
                        .iter()
                        .map(|t| t.name.as_ref())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None,
            ));
        };
        let result = match outcome {
            Ok(Reply::Done(value)) => CallToolResult::structured(value).into(),
            Ok(Reply::Filed(filed)) => {
                self.deliver(name, request.arguments.as_ref(), *filed, &context)
                    .await
            }
            Err(err) => {
                tracing::debug!(tool = name, ?err, "tool call failed");
                err.into_result().into()
            }
        };
        let result = self.masked(result);
        tracing::debug!(
            tool = name,
            micros = started.elapsed().as_micros() as u64,
            "tool call"
        );
        Ok(result)
    }
}

impl Server {
    /// The response as the model may see it: with `privacy.model_view = "masked"`, every address
    /// but a configured token's is shortened, in the structured result, its text and any
    /// elicitation.
    fn masked(&self, response: CallToolResponse) -> CallToolResponse {
        let Some(masker) = &self.inner.masker else {
            return response;
        };
        match response {
            CallToolResponse::Complete(mut result) => {
                if let Some(value) = &mut result.structured_content {
                    masker.json(value);
                }
                for block in &mut result.content {
                    if let rmcp::model::ContentBlock::Text(content) = block
                        && let std::borrow::Cow::Owned(masked) = masker.text(&content.text)
                    {
                        content.text = masked;
                    }
                }
                CallToolResponse::Complete(result)
            }
            // An input request is built from already masked text (see `approval`), and its
            // request state is opaque.
            other => other,
        }
    }

    /// `text` as the model may see it (see [`Server::masked`]).
    fn masked_text(&self, text: String) -> String {
        match &self.inner.masker {
            Some(masker) => match masker.text(&text) {
                std::borrow::Cow::Owned(masked) => masked,
                std::borrow::Cow::Borrowed(_) => text,
            },
            None => text,
        }
    }
}

fn amount(base_units: U256, decimals: u8, symbol: Option<String>) -> Amount {
    Amount {
        base_units: base_units.to_string(),
        decimals,
        amount: format_units(base_units, decimals),
        symbol,
    }
}

fn token_problem(call: &str, err: TokenReadError) -> String {
    match err {
        TokenReadError::Failed => format!("the contract reverted or refused {call}"),
        TokenReadError::Malformed => {
            format!("the contract's answer to {call} is not what an ERC-20 returns")
        }
    }
}

/// Whether `symbol`, read from `token`, looks like ETH or like a configured token at another address.
fn imitates_configured_symbol(network: &Network, token: Address, symbol: &UntrustedText) -> bool {
    let seen = symbol.skeleton();
    !seen.is_empty()
        && (seen == "ETH"
            || network.tokens.iter().any(|configured| {
                configured.address != token
                    && configured
                        .symbol
                        .as_deref()
                        .is_some_and(|s| skeleton(s) == seen)
            }))
}

fn to_value(output: impl Serialize) -> Result<Value, ToolError> {
    // Serializing these plain structs cannot fail; a failure would be a bug, reported as such.
    serde_json::to_value(output)
        .map_err(|_| ToolError::Internal("a result could not be serialized"))
}
