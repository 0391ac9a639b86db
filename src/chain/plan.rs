//! Planning a transaction: the facts its review and fees are built from, read in one batch.
//!
//! The batch asks for the sender's pending nonce, the latest base fee, the suggested priority
//! fee, a gas estimate, an `eth_call` simulation, the sender's balances and whether the
//! counterparty holds code. The batch carries the sender's address and the counterparty's, and no
//! other account of the wallet.

use alloy::primitives::{Address, U256};
use serde_json::{Value, json};

use super::rpc::{Call, CallError, parse_u64, parse_u256};
use super::{BlockTag, Chain, ChainError, erc20, eth_call, hex_data};

/// Gas limits get this margin over the estimate (in percent), because state can change between
/// the estimate and inclusion. A plain transfer to an account without code costs exactly 21000.
const GAS_MARGIN_PERCENT: u64 = 20;
const PLAIN_TRANSFER_GAS: u64 = 21_000;
/// What a reverting transaction is shown with, since the node cannot estimate it.
const FALLBACK_GAS: u64 = 100_000;

/// The transaction to plan, before its nonce and fees are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub from: Address,
    pub to: Address,
    pub value: U256,
    pub input: Vec<u8>,
    /// Who receives funds or spending power: `to`, or the recipient or spender in the calldata.
    pub counterparty: Address,
    /// The token whose balance the sender needs, for a token transfer.
    pub token: Option<Address>,
}

/// What the chain said about a draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// The sender's next nonce, counting transactions in the node's pool.
    pub pending_nonce: u64,
    pub max_priority_fee_per_gas: u128,
    pub max_fee_per_gas: u128,
    pub gas_limit: u64,
    /// `Err` with the revert data when the simulation reverts.
    pub simulation: Result<(), Option<Vec<u8>>>,
    pub eth_balance: U256,
    pub token_balance: Option<U256>,
    pub counterparty_is_contract: bool,
}

/// What the node did with a signed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    Accepted,
    /// The node refused it; the message is third-party text.
    Refused(CallError),
}

impl Chain {
    pub async fn plan(&self, draft: &Draft) -> Result<Planned, ChainError> {
        let call_object = json!({
            "from": hex_data(draft.from.as_slice()),
            "to": hex_data(draft.to.as_slice()),
            "value": format!("{:#x}", draft.value),
            "data": hex_data(&draft.input),
        });
        let latest = BlockTag::Latest.param();
        let mut calls = vec![
            Call::new(
                "eth_getTransactionCount",
                json!([hex_data(draft.from.as_slice()), "pending"]),
            ),
            Call::new("eth_getBlockByNumber", json!(["latest", false])),
            Call::new("eth_maxPriorityFeePerGas", json!([])),
            Call::new("eth_estimateGas", json!([call_object])),
            Call::new("eth_call", json!([call_object, latest])),
            Call::new(
                "eth_getBalance",
                json!([hex_data(draft.from.as_slice()), latest]),
            ),
            Call::new(
                "eth_getCode",
                json!([hex_data(draft.counterparty.as_slice()), latest]),
            ),
        ];
        if let Some(token) = draft.token {
            calls.push(eth_call(token, &erc20::balance_of(draft.from), &latest));
        }
        let mut results = self.rpc.batch(&calls).await?.into_iter();
        let nonce = self.value_next(&mut results, "eth_getTransactionCount")?;
        let pending_nonce =
            parse_u64(&nonce).ok_or_else(|| self.malformed("the nonce is not a number"))?;
        let block = self.value_next(&mut results, "eth_getBlockByNumber")?;
        let base_fee = match block.get("baseFeePerGas") {
            None | Some(Value::Null) => {
                return Err(self.malformed(
                    "the latest block has no base fee; keyward sends only EIP-1559 transactions",
                ));
            }
            Some(fee) => {
                parse_u256(fee).ok_or_else(|| self.malformed("the base fee is not a number"))?
            }
        };
        let priority = self.value_next(&mut results, "eth_maxPriorityFeePerGas")?;
        let priority = parse_u256(&priority)
            .ok_or_else(|| self.malformed("the priority fee is not a number"))?;
        let estimate = results.next();
        let simulation = match results.next() {
            Some(Ok(_)) => Ok(()),
            Some(Err(error)) => Err(error.data),
            None => return Err(self.malformed("eth_call was not answered")),
        };
        let eth_balance = self.value_next(&mut results, "eth_getBalance")?;
        let eth_balance = parse_u256(&eth_balance)
            .ok_or_else(|| self.malformed("the balance is not a number"))?;
        let code = self.value_next(&mut results, "eth_getCode")?;
        let counterparty_is_contract = code.as_str().is_some_and(|c| c.len() > 2);
        let token_balance = match draft.token {
            Some(_) => {
                let value = self.value_next(&mut results, "eth_call")?;
                super::rpc::parse_bytes(&value)
                    .as_deref()
                    .and_then(erc20::decode_uint)
            }
            None => None,
        };

        let gas_limit = match estimate {
            Some(Ok(value)) => {
                let estimate = parse_u64(&value)
                    .ok_or_else(|| self.malformed("the gas estimate is not a number"))?;
                if estimate == PLAIN_TRANSFER_GAS && draft.input.is_empty() {
                    estimate
                } else {
                    estimate.saturating_add(estimate * GAS_MARGIN_PERCENT / 100)
                }
            }
            // The node cannot estimate a call that fails; the simulation says why.
            Some(Err(_)) => FALLBACK_GAS,
            None => return Err(self.malformed("eth_estimateGas was not answered")),
        };
        let to_u128 = |value: U256, what: &'static str| {
            u128::try_from(value).map_err(|_| self.malformed(what))
        };
        let max_priority_fee_per_gas = to_u128(priority, "the priority fee is absurdly high")?;
        // Twice the base fee absorbs six full blocks of base-fee rises before the transaction
        // stops being includable; unused fee is never charged.
        let max_fee_per_gas = to_u128(
            base_fee.saturating_mul(U256::from(2u8)),
            "the base fee is absurdly high",
        )?
        .saturating_add(max_priority_fee_per_gas);
        Ok(Planned {
            pending_nonce,
            max_priority_fee_per_gas,
            max_fee_per_gas,
            gas_limit,
            simulation,
            eth_balance,
            token_balance,
            counterparty_is_contract,
        })
    }

    /// The account's next nonce, counting transactions in the node's pool.
    pub async fn pending_nonce(&self, address: Address) -> Result<u64, ChainError> {
        let calls = [Call::new(
            "eth_getTransactionCount",
            json!([hex_data(address.as_slice()), "pending"]),
        )];
        let mut results = self.rpc.batch(&calls).await?.into_iter();
        let nonce = self.value_next(&mut results, "eth_getTransactionCount")?;
        parse_u64(&nonce).ok_or_else(|| self.malformed("the nonce is not a number"))
    }

    /// Sends a signed transaction once, after checking the chain id in a round trip of its own:
    /// a batch carries the chain id check and the transaction together, and the node acts on the
    /// transaction whatever keyward makes of the chain id afterwards.
    pub async fn send_raw(&self, raw: &[u8]) -> Result<Sent, SendError> {
        self.check().await.map_err(SendError::NotSent)?;
        let calls = [Call::new("eth_sendRawTransaction", json!([hex_data(raw)]))];
        let mut results = self
            .rpc
            .batch_once(&calls)
            .await
            .map_err(SendError::Unknown)?
            .into_iter();
        Ok(match results.next() {
            Some(Ok(_)) => Sent::Accepted,
            Some(Err(error)) => Sent::Refused(error),
            None => {
                return Err(SendError::Unknown(
                    self.malformed("eth_sendRawTransaction was not answered"),
                ));
            }
        })
    }
}

/// Why a signed transaction's broadcast failed, and whether the node may have it.
#[derive(Debug)]
pub enum SendError {
    /// Nothing left keyward: the RPC was down or served another chain before the send.
    NotSent(ChainError),
    /// The transaction went out but no usable answer came back: the node may have it, so the
    /// caller asks by hash.
    Unknown(ChainError),
}
