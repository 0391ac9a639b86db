//! `wallet_contract_call`: a call to any contract, filed as a transaction request like a
//! transfer. The review shows the decoded function and arguments, or the raw calldata with a
//! blind-signing warning when keyward cannot read it.

use alloy::primitives::{Address, U256};
use rmcp::model::JsonObject;

use super::Server;
use super::approval::Filed;
use super::args::{ArgError, Arguments, invalid};
use super::error::ToolError;
use super::tools;
use crate::abi::{Decoded, Function, decode_known};
use crate::audit::Kind;
use crate::chain::plan::Draft;
use crate::chain::units::parse_units;
use crate::confirm::store::Spend;
use crate::policy;
use crate::review::{Action, CallReading};

impl Server {
    pub(super) async fn contract_call(
        &self,
        arguments: Option<&JsonObject>,
    ) -> Result<Filed, ToolError> {
        let args = Arguments::parse(arguments, tools::CONTRACT_CALL_ARGS)?;
        let (network, _) = self.network(args.network()?)?;
        let to = args.address("to")?;
        let value = match args.get("value") {
            None => U256::ZERO,
            Some(_) => parse_units(&args.amount("value")?, 18)
                .map_err(|problem| invalid("value", &problem.to_string()))?,
        };
        let (input, reading) = match (
            args.string("function", 4096)?,
            args.string("data", 16 * 1024)?,
        ) {
            (Some(signature), None) => {
                let function = Function::parse(signature)
                    .map_err(|err| invalid("function", &err.to_string()))?;
                let values = args
                    .get("args")
                    .cloned()
                    .unwrap_or(serde_json::Value::Array(Vec::new()));
                let input = function
                    .encode(&values)
                    .map_err(|err| invalid("args", &err.to_string()))?;
                let call = function
                    .decode(&input)
                    .map_err(|_| ToolError::Internal("calldata keyward encoded did not decode"))?;
                // A function keyward knows reads as keyward knows it: its own names, and the
                // calls a multicall or Safe transaction carries decoded instead of shown as bytes.
                let reading = match decode_known(&input) {
                    Decoded::Known(known) if known.call.signature == call.signature => {
                        CallReading::Known(Decoded::Known(known))
                    }
                    _ => CallReading::Given(call),
                };
                (input, reading)
            }
            (None, Some(data)) => {
                if args.get("args").is_some() {
                    return Err(invalid("args", "goes with function, not with data").into());
                }
                let digits = data
                    .strip_prefix("0x")
                    .ok_or_else(|| invalid("data", "must start with 0x"))?;
                let input = hex::decode(digits).map_err(|_| {
                    invalid(
                        "data",
                        "must be an even number of hexadecimal digits after 0x",
                    )
                })?;
                let reading = CallReading::Known(decode_known(&input));
                (input, reading)
            }
            (Some(_), Some(_)) => {
                return Err(invalid("data", "cannot be given together with function").into());
            }
            (None, None) => return Err(ArgError::Missing { name: "function" }.into()),
        };
        if reading.is_blind() && !self.inner.config.policy.blind_signing {
            self.desk().log(
                Kind::PolicyDenied,
                None,
                serde_json::json!({ "rule": "policy.blind_signing", "at": "prepare" }),
            );
            let selector = input
                .first_chunk::<4>()
                .map_or_else(|| "none".to_owned(), |s| format!("0x{}", hex::encode(s)));
            return Err(ToolError::Refused {
                rule: "policy.blind_signing".into(),
                message: format!(
                    "refused by policy: keyward cannot decode this calldata (selector {selector}, \
                     {} bytes), so no review could say what it does, and blind signing is off; \
                     give the function signature and arguments instead",
                    input.len()
                ),
                review: None,
            });
        }
        policy::check_unlimited(&self.inner.config, reading.grants_unlimited())
            .map_err(|refusal| self.refuse(refusal))?;
        // What the call moves, for the limits and the recipient rule: a configured token's
        // transfer, approve or increaseAllowance (alone or in its multicall) spends that token,
        // to its recipient or spender.
        let token = network
            .tokens
            .iter()
            .find(|t| t.address == to)
            .and_then(|t| Some((t.symbol.clone()?, t.decimals?)));
        let movements = reading.token_movements();
        if !movements.is_empty() && !value.is_zero() {
            return Err(invalid(
                "value",
                "must be 0 for a token transfer or approval: send ETH in its own request",
            )
            .into());
        }
        let spends = match &token {
            Some((symbol, decimals)) => Spend::totals(
                movements
                    .iter()
                    .filter(|(_, amount)| !amount.is_zero() && *amount != U256::MAX)
                    .map(|(_, amount)| Spend::new(&network.name, symbol, *amount, *decimals)),
            ),
            None if !value.is_zero() => vec![Spend::new(&network.name, "ETH", value, 18)],
            None => Vec::new(),
        };
        // The recipient rule applies to every recipient or spender as well as the contract.
        if !movements.is_empty() {
            let book = policy::AddressBook::load(&self.desk().data_dir)
                .map_err(|err| ToolError::Unavailable(err.to_string()))?;
            let own: Vec<Address> = self.vault()?.accounts().iter().map(|a| a.address).collect();
            for (party, _) in &movements {
                policy::check_counterparty(&self.inner.config, &book, &own, *party)
                    .map_err(|refusal| self.refuse(refusal))?;
            }
        }
        self.prepare(
            &args,
            "contract_call",
            network,
            Action::ContractCall {
                reading,
                blind_signing: self.inner.config.policy.blind_signing,
            },
            Draft {
                from: Address::ZERO,
                to,
                value,
                input,
                counterparty: to,
                token: None,
            },
            spends,
        )
        .await
    }
}
