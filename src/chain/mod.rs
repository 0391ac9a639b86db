//! Reading the chain: balances, token metadata, chain state and transaction status.
//!
//! Each question is one JSON-RPC batch (see [`rpc`]) whose first call checks the chain id. A
//! request carries at most one of the wallet's addresses: keyward does not batch accounts together,
//! so the RPC provider cannot link them from one request.

pub mod erc20;
pub mod nonce;
pub mod plan;
pub mod rpc;
pub mod tx;
pub mod units;

use alloy::primitives::{Address, B256, U256};
use serde_json::{Value, json};

use crate::config::{Network, RpcUrl};
use crate::privacy::egress::Egress;
use crate::untrusted::UntrustedText;
use rpc::{Call, CallError, Rpc, parse_bytes, parse_u64, parse_u256};

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error(
        "cannot reach the RPC of network \"{network}\" at {url}: {reason}; check that the node is running and rpc_url is right"
    )]
    Unreachable {
        network: String,
        url: RpcUrl,
        reason: &'static str,
    },

    #[error(
        "the RPC of network \"{network}\" at {url} failed the TLS check, so no request was sent \
         to it: {reason}"
    )]
    Untrusted {
        network: String,
        url: RpcUrl,
        reason: &'static str,
    },

    #[error(
        "the RPC of network \"{network}\" at {url} answered HTTP {status}; the next call tries \
         again: if it keeps failing, check the node and rpc_url"
    )]
    Http {
        network: String,
        url: RpcUrl,
        status: u16,
    },

    #[error(
        "the RPC of network \"{network}\" at {url} sent an unusable answer: {problem}; the next \
         call tries again: if it keeps happening, check that rpc_url points at an Ethereum \
         JSON-RPC node"
    )]
    BadResponse {
        network: String,
        url: RpcUrl,
        problem: &'static str,
    },

    #[error(
        "the RPC of network \"{network}\" at {url} serves chain id {got}, but the configuration \
         says {expected}; keyward will not use another chain's data: fix rpc_url or chain_id"
    )]
    WrongChain {
        network: String,
        url: RpcUrl,
        expected: u64,
        got: u64,
    },

    #[error("the RPC of network \"{network}\" returned error {code} for {method}")]
    Call {
        network: String,
        method: &'static str,
        code: i64,
        /// The node's message, third-party text.
        message: Box<UntrustedText>,
    },

    #[error("the HTTP client could not be set up")]
    Setup,

    #[error(
        "keyward did not send a request to the RPC of network \"{network}\" at {url}: {refusal}"
    )]
    Refused {
        network: String,
        url: RpcUrl,
        refusal: crate::privacy::egress::Refusal,
    },
}

/// Which block a read refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockTag {
    Latest,
    Number(u64),
}

impl BlockTag {
    fn param(self) -> Value {
        match self {
            Self::Latest => json!("latest"),
            Self::Number(number) => json!(format!("0x{number:x}")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainInfo {
    pub chain_id: u64,
    pub latest_block: u64,
    /// Absent before EIP-1559.
    pub base_fee_per_gas: Option<U256>,
}

/// An account's balances at one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balances {
    pub block: u64,
    pub eth: U256,
    /// One entry per requested token, in order.
    pub tokens: Vec<Result<TokenBalance, TokenReadError>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBalance {
    pub token: Address,
    pub balance: U256,
    /// Read from the chain when the configuration gives none.
    pub decimals: Option<u8>,
}

/// A token that did not answer a read the way an ERC-20 does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenReadError {
    /// The call reverted or the node refused it.
    Failed,
    /// The answer is not what an ERC-20 returns.
    Malformed,
}

/// What a token contract says about itself. Every string is untrusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenMetadata {
    pub name: Result<UntrustedText, TokenReadError>,
    pub symbol: Result<UntrustedText, TokenReadError>,
    pub decimals: Result<u8, TokenReadError>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxStatus {
    /// The node knows the transaction but it is not in a block yet.
    Pending,
    Mined {
        block: u64,
        succeeded: bool,
        gas_used: U256,
    },
    /// The node does not know this hash.
    Unknown,
}

/// One configured network's chain.
#[derive(Debug)]
pub struct Chain {
    rpc: Rpc,
}

impl Chain {
    pub fn new(http: Egress, network: &Network) -> Self {
        Self {
            rpc: Rpc::new(http, network),
        }
    }

    pub fn network(&self) -> &str {
        self.rpc.network()
    }

    /// Checks that the RPC answers with the configured chain id.
    pub async fn check(&self) -> Result<(), ChainError> {
        self.rpc.batch(&[]).await.map(|_| ())
    }

    pub async fn info(&self) -> Result<ChainInfo, ChainError> {
        let results = self
            .rpc
            .batch(&[Call::new("eth_getBlockByNumber", json!(["latest", false]))])
            .await?;
        let block = self.value_next(&mut results.into_iter(), "eth_getBlockByNumber")?;
        let latest_block = block
            .get("number")
            .and_then(parse_u64)
            .ok_or_else(|| self.malformed("the latest block has no number"))?;
        let base_fee_per_gas = match block.get("baseFeePerGas") {
            None | Some(Value::Null) => None,
            Some(fee) => Some(
                parse_u256(fee).ok_or_else(|| self.malformed("baseFeePerGas is not a number"))?,
            ),
        };
        Ok(ChainInfo {
            chain_id: self.rpc.chain_id(),
            latest_block,
            base_fee_per_gas,
        })
    }

    /// The ETH and token balances of `owner`, in one batch.
    pub async fn balances(
        &self,
        owner: Address,
        tokens: &[(Address, Option<u8>)],
        block: BlockTag,
    ) -> Result<Balances, ChainError> {
        let mut all = self.balances_of(&[owner], tokens, block).await?;
        all.pop()
            .ok_or_else(|| self.malformed("a balance is missing"))
    }

    /// The balances of several owners in ONE batch, which tells the RPC provider that these
    /// addresses belong together. Only for `privacy.batch_own_addresses = true`.
    pub async fn balances_of(
        &self,
        owners: &[Address],
        tokens: &[(Address, Option<u8>)],
        block: BlockTag,
    ) -> Result<Vec<Balances>, ChainError> {
        let tag = block.param();
        let mut calls = vec![Call::new("eth_blockNumber", json!([]))];
        for owner in owners {
            calls.push(Call::new(
                "eth_getBalance",
                json!([hex_data(owner.as_slice()), tag]),
            ));
            for (token, _) in tokens {
                calls.push(eth_call(*token, &erc20::balance_of(*owner), &tag));
            }
        }
        for (token, decimals) in tokens {
            if decimals.is_none() {
                calls.push(eth_call(*token, &erc20::DECIMALS, &tag));
            }
        }
        let mut results = self.rpc.batch(&calls).await?.into_iter();
        let latest = self.value_next(&mut results, "eth_blockNumber")?;
        let latest =
            parse_u64(&latest).ok_or_else(|| self.malformed("eth_blockNumber is not a number"))?;
        let mut read = Vec::with_capacity(owners.len());
        for _ in owners {
            let eth = self.value_next(&mut results, "eth_getBalance")?;
            let eth =
                parse_u256(&eth).ok_or_else(|| self.malformed("eth_getBalance is not a number"))?;
            let raw: Vec<_> = results.by_ref().take(tokens.len()).collect();
            read.push((eth, raw));
        }
        let decimals: Vec<Result<Option<u8>, TokenReadError>> = tokens
            .iter()
            .map(|(_, configured)| match configured {
                Some(decimals) => Ok(Some(*decimals)),
                None => token_read(
                    results.next().unwrap_or(Err(missing())),
                    erc20::decode_decimals,
                )
                .map(Some),
            })
            .collect();
        let block = match block {
            BlockTag::Latest => latest,
            BlockTag::Number(number) => number,
        };
        Ok(read
            .into_iter()
            .map(|(eth, raw)| Balances {
                block,
                eth,
                tokens: tokens
                    .iter()
                    .zip(raw)
                    .zip(&decimals)
                    .map(|(((token, _), raw), decimals)| {
                        let balance = token_read(raw, erc20::decode_uint)?;
                        Ok(TokenBalance {
                            token: *token,
                            balance,
                            decimals: (*decimals)?,
                        })
                    })
                    .collect(),
            })
            .collect())
    }

    /// A token's name, symbol and decimals, read in one batch.
    pub async fn token_metadata(
        &self,
        token: Address,
        block: BlockTag,
    ) -> Result<TokenMetadata, ChainError> {
        let tag = block.param();
        let calls = [
            eth_call(token, &erc20::NAME, &tag),
            eth_call(token, &erc20::SYMBOL, &tag),
            eth_call(token, &erc20::DECIMALS, &tag),
        ];
        let mut results = self.rpc.batch(&calls).await?.into_iter();
        let mut next = || results.next().unwrap_or(Err(missing()));
        let text = |data: &[u8]| erc20::decode_string(data).map(UntrustedText::from_bytes);
        Ok(TokenMetadata {
            name: token_read(next(), text),
            symbol: token_read(next(), text),
            decimals: token_read(next(), erc20::decode_decimals),
        })
    }

    pub async fn transaction_status(&self, hash: B256) -> Result<TxStatus, ChainError> {
        let calls = [
            Call::new(
                "eth_getTransactionReceipt",
                json!([hex_data(hash.as_slice())]),
            ),
            Call::new(
                "eth_getTransactionByHash",
                json!([hex_data(hash.as_slice())]),
            ),
        ];
        let results = self.rpc.batch(&calls).await?;
        let mut results = results.into_iter();
        let receipt = self.value_next(&mut results, "eth_getTransactionReceipt")?;
        let transaction = self.value_next(&mut results, "eth_getTransactionByHash")?;
        if !receipt.is_null() {
            let field = |name: &str| receipt.get(name);
            return Ok(TxStatus::Mined {
                block: field("blockNumber")
                    .and_then(parse_u64)
                    .ok_or_else(|| self.malformed("the receipt has no block number"))?,
                succeeded: field("status").and_then(parse_u64) == Some(1),
                gas_used: field("gasUsed")
                    .and_then(parse_u256)
                    .ok_or_else(|| self.malformed("the receipt has no gas used"))?,
            });
        }
        Ok(if transaction.is_null() {
            TxStatus::Unknown
        } else {
            TxStatus::Pending
        })
    }

    fn value_next(
        &self,
        results: &mut impl Iterator<Item = Result<Value, CallError>>,
        method: &'static str,
    ) -> Result<Value, ChainError> {
        match results.next() {
            Some(Ok(value)) => Ok(value),
            Some(Err(error)) => Err(ChainError::Call {
                network: self.rpc.network().to_owned(),
                method,
                code: error.code,
                message: Box::new(error.message),
            }),
            None => Err(self.malformed("a call was not answered")),
        }
    }

    fn malformed(&self, problem: &'static str) -> ChainError {
        self.rpc.bad_response(problem)
    }
}

fn eth_call(to: Address, data: &[u8], tag: &Value) -> Call {
    Call::new(
        "eth_call",
        json!([{"to": hex_data(to.as_slice()), "data": hex_data(data)}, tag]),
    )
}

/// Bytes as JSON-RPC data: `0x` and lowercase hex.
fn hex_data(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn missing() -> CallError {
    CallError {
        code: 0,
        message: UntrustedText::new(""),
        data: None,
    }
}

/// Decodes a token call's result; a reverted call and an undecodable answer are told apart.
fn token_read<T>(
    result: Result<Value, CallError>,
    decode: impl FnOnce(&[u8]) -> Option<T>,
) -> Result<T, TokenReadError> {
    let value = result.map_err(|_| TokenReadError::Failed)?;
    let bytes = parse_bytes(&value).ok_or(TokenReadError::Malformed)?;
    decode(&bytes).ok_or(TokenReadError::Malformed)
}
