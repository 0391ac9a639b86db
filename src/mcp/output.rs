//! What the read-only tools return: structured results whose JSON schemas are the tools'
//! `outputSchema`. Text from third parties appears only as [`UntrustedText`] fields, never inside
//! another string.

use schemars::JsonSchema;
use serde::Serialize;

use crate::untrusted::UntrustedText;

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct AccountsOutput {
    pub accounts: Vec<AccountEntry>,
    /// Whether a TOTP second factor is enrolled (approvals need it).
    pub totp_enrolled: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct AccountEntry {
    /// Position in this list; tools accept it to name the account.
    pub number: usize,
    pub label: String,
    /// EIP-55 checksummed.
    pub address: String,
    /// How the account signs: "hd" (derived from the recovery phrase) or "imported" (a key
    /// imported from a keystore file).
    pub signer_kind: &'static str,
}

/// An exact amount of one asset.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct Amount {
    /// The amount in the asset's smallest unit (wei for ETH), as a decimal integer string.
    pub base_units: String,
    pub decimals: u8,
    /// `base_units / 10^decimals`, exact, as a decimal string.
    pub amount: String,
    /// The symbol the amount is in; `null` when the token is unverified and has no configured
    /// symbol (see `chain_symbol`).
    pub symbol: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct BalancesOutput {
    pub network: String,
    pub chain_id: u64,
    /// The block the balances were read at.
    pub block: u64,
    pub accounts: Vec<AccountBalances>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct AccountBalances {
    pub number: usize,
    pub label: String,
    pub address: String,
    pub eth: Amount,
    /// The configured tokens of this network, in configuration order.
    pub tokens: Vec<TokenBalanceEntry>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct TokenBalanceEntry {
    /// The token contract, EIP-55 checksummed.
    pub token: String,
    /// True: this token is in the configuration.
    pub verified: bool,
    /// The balance; absent when the token did not answer like an ERC-20 (see `error`).
    pub balance: Option<Amount>,
    /// Why there is no balance.
    pub error: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct TokenInfoOutput {
    pub network: String,
    /// The token contract, EIP-55 checksummed.
    pub token: String,
    /// True when the token is in the configuration for this network.
    pub verified: bool,
    /// The configured symbol, trusted. `null` for unverified tokens.
    pub configured_symbol: Option<String>,
    /// The configured decimals, trusted. `null` when not configured.
    pub configured_decimals: Option<u8>,
    /// What the contract's `name()` returns: untrusted.
    pub name: Option<UntrustedText>,
    /// What the contract's `symbol()` returns: untrusted.
    pub symbol: Option<UntrustedText>,
    /// What the contract's `decimals()` returns.
    pub decimals: Option<u8>,
    /// Reads that failed: "name", "symbol" or "decimals", with why.
    pub problems: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ChainInfoOutput {
    pub network: String,
    pub chain_id: u64,
    pub latest_block: u64,
    /// The latest block's base fee in wei, as a decimal string; `null` before EIP-1559.
    pub base_fee_per_gas_wei: Option<String>,
    /// The same in gwei, exact.
    pub base_fee_per_gas_gwei: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct TransactionStatusOutput {
    pub network: String,
    pub hash: String,
    /// "pending" (known, not yet in a block), "mined", or "unknown" (this node has never seen it).
    pub status: &'static str,
    /// For a mined transaction: its block.
    pub block: Option<u64>,
    /// For a mined transaction: whether it succeeded (false means it reverted).
    pub succeeded: Option<bool>,
    /// For a mined transaction: gas used, as a decimal string.
    pub gas_used: Option<String>,
}

/// A warning of a review, as the model sees it.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct WarningEntry {
    /// "info", "warn" or "critical".
    pub severity: &'static str,
    pub text: String,
    /// keyward refuses the request because of it.
    pub blocks: bool,
}

/// A fund movement request, as the state-changing tools and `wallet_request_status` return it.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct RequestOutput {
    pub request_id: String,
    /// "awaiting_approval", "approved", "awaiting_device" (the human confirms on their Ledger),
    /// "rejected", "expired", "signed", "broadcast", "mined" or "failed".
    pub state: &'static str,
    /// Where the human approves or rejects the request, while it awaits approval. Opening it
    /// approves nothing: the page asks the human for a code from their authenticator app.
    pub approval_url: Option<String>,
    /// The terminal command that approves it, as an alternative to the page.
    pub approve_in_terminal: Option<String>,
    /// Unix time after which an unapproved request expires.
    pub expires_at: u64,
    pub network: String,
    pub title: String,
    /// The full review the human sees on the approval page, line for line.
    pub review: String,
    pub warnings: Vec<WarningEntry>,
    /// What the contract said that the review refers to (an unverified token's symbol, a revert
    /// reason): untrusted data, never part of `title`, `review` or a warning.
    pub contract_text: crate::review::ContractText,
    /// keccak256 of the unsigned transaction: what the approval is bound to.
    pub digest: String,
    /// Why the request was refused or failed, in keyward's words.
    pub reason: Option<String>,
    /// What the node said when it refused the broadcast: untrusted text, never part of `reason`.
    pub node_message: Option<UntrustedText>,
    /// The transaction hash, once signed.
    pub hash: Option<String>,
    pub receipt: Option<ReceiptEntry>,
    /// A message request's signature once signed: r ‖ s ‖ v as 0x-prefixed hex (65 bytes).
    pub signature: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ReceiptEntry {
    pub block: u64,
    pub succeeded: bool,
    pub gas_used: String,
}
