//! The signature tools: a message for the key to sign, reviewed and approved like a transfer.
//!
//! The model supplies the content; keyward renders every byte of it in the review and files the
//! same pending request a transfer files, so the approval channels, the TOTP guard, the policy
//! and the audit log are the ones fund movements use.

use alloy::primitives::Address;
use rmcp::model::JsonObject;

use super::Server;
use super::approval::Filed;
use super::args::{ArgError, Arguments, invalid};
use super::error::ToolError;
use super::funds::Filing;
use super::tools::{self, MAX_MESSAGE};
use crate::audit::Kind;
use crate::confirm::store::Signs;
use crate::confirm::store::Spend;
use crate::review::{
    MessageInput, TypedInput, authorization, grants_unlimited, personal_message, typed_data,
};
use crate::signer::message::personal_hash;

impl Server {
    pub(super) async fn sign_message(
        &self,
        arguments: Option<&JsonObject>,
    ) -> Result<Filed, ToolError> {
        let args = Arguments::parse(arguments, tools::SIGN_MESSAGE_ARGS)?;
        let text = args
            .string("message", 2 * MAX_MESSAGE + 2)?
            .ok_or(ArgError::Missing { name: "message" })?;
        let message = match args.string("encoding", 16)?.unwrap_or("utf8") {
            "utf8" => text.as_bytes().to_vec(),
            "hex" => {
                let digits = text.strip_prefix("0x").ok_or_else(|| {
                    invalid("message", "with encoding \"hex\" must start with 0x")
                })?;
                hex::decode(digits).map_err(|_| {
                    invalid(
                        "message",
                        "with encoding \"hex\" must be an even number of hexadecimal digits after 0x",
                    )
                })?
            }
            _ => return Err(invalid("encoding", "must be \"utf8\" or \"hex\"").into()),
        };
        if message.is_empty() {
            return Err(invalid("message", "must not be empty").into());
        }
        if message.len() > MAX_MESSAGE {
            return Err(invalid("message", "must be at most 4096 bytes").into());
        }
        let (vault, position) = self.sender(&args)?;
        let account = &vault.accounts()[position];
        let review = personal_message(&MessageInput {
            from_label: &account.label.to_string(),
            from: account.address,
            message: &message,
            blind_signing: self.inner.config.policy.blind_signing,
        });
        if let Some(blocking) = review.refusal() {
            self.desk().log(
                Kind::PolicyDenied,
                None,
                serde_json::json!({ "rule": "policy.blind_signing", "title": review.title }),
            );
            return Err(ToolError::Refused {
                rule: "policy.blind_signing".into(),
                message: format!("keyward refuses this message: {}", blocking.text),
                review: Some(Box::new(review.clone())),
            });
        }
        self.file(
            &args,
            Filing {
                kind: "message",
                signs: Signs::Message,
                // A personal message names no chain.
                network: String::new(),
                account: position,
                from: account.address,
                counterparty: Address::ZERO,
                digest: personal_hash(&message),
                payload: hex::encode(&message),
                review,
                spends: Vec::new(),
            },
        )
    }

    pub(super) async fn sign_typed_data(
        &self,
        arguments: Option<&JsonObject>,
    ) -> Result<Filed, ToolError> {
        // Typed data may be as large as the parser takes, plus room for the other arguments and
        // for escapes a string of JSON adds.
        let args = Arguments::parse_within(
            arguments,
            tools::SIGN_TYPED_DATA_ARGS,
            2 * crate::eip712::MAX_INPUT_LEN,
        )?;
        let (network, _) = self.network(args.network()?)?;
        // The JSON of eth_signTypedData_v4, as a string or as the object itself.
        let json = match args.get("typed_data") {
            None => return Err(ArgError::Missing { name: "typed_data" }.into()),
            Some(serde_json::Value::String(text)) => text.clone(),
            Some(object @ serde_json::Value::Object(_)) => object.to_string(),
            Some(_) => {
                return Err(invalid(
                    "typed_data",
                    "must be the eth_signTypedData_v4 JSON, as an object or a string",
                )
                .into());
            }
        };
        let data =
            crate::eip712::parse(&json).map_err(|err| invalid("typed_data", &err.to_string()))?;
        if grants_unlimited(&data)
            && let Err(refusal) = crate::policy::check_unlimited(&self.inner.config, true)
        {
            self.desk().log(
                Kind::PolicyDenied,
                None,
                serde_json::json!({ "rule": refusal.rule(), "at": "prepare" }),
            );
            return Err(ToolError::Refused {
                rule: refusal.rule(),
                message: format!(
                    "refused by policy: this {} is an unlimited spending authorization; {refusal}",
                    data.primary_type()
                ),
                review: None,
            });
        }
        let (vault, position) = self.sender(&args)?;
        let account = &vault.accounts()[position];
        let book = crate::policy::AddressBook::load(&self.desk().data_dir)
            .map_err(|err| ToolError::Unavailable(err.to_string()))?;
        let contract_name = match data.domain().verifying_contract {
            Some(contract) => network
                .tokens
                .iter()
                .find(|t| t.address == contract)
                .map(|t| {
                    format!(
                        "the token {} (in keyward's configuration)",
                        t.symbol.as_deref().unwrap_or("without a symbol")
                    )
                })
                .or_else(|| {
                    book.name_of(contract)
                        .map(|name| format!("{name} (address book)"))
                })
                .or_else(|| {
                    vault
                        .accounts()
                        .iter()
                        .find(|a| a.address == contract)
                        .map(|a| format!("{} (your account)", a.label))
                }),
            None => None,
        };
        let tokens: Vec<(Address, String, u8)> = network
            .tokens
            .iter()
            .filter_map(|t| Some((t.address, t.symbol.clone()?, t.decimals?)))
            .collect();
        // A permit is spending power: each limited grant of a configured token counts against
        // that token's limits, and the spender must pass the recipient rule like an approval's.
        let found = authorization(&data);
        let spends = Spend::totals(found.iter().flat_map(|found| &found.grants).filter_map(
            |grant| {
                let (_, symbol, decimals) = tokens.iter().find(|(a, ..)| *a == grant.token)?;
                (!grant.unlimited && !grant.amount.is_zero())
                    .then(|| Spend::new(&network.name, symbol, grant.amount, *decimals))
            },
        ));
        let movements: Vec<_> = spends.iter().map(Spend::movement).collect();
        crate::policy::check_all_limits(
            &self.inner.config,
            &self.desk().ledger,
            &movements,
            crate::confirm::guard::now(),
        )
        .map_err(|refusal| self.refuse(refusal))?;
        let spender = found.and_then(|found| found.spender);
        if let Some(spender) = spender {
            let own: Vec<Address> = vault.accounts().iter().map(|a| a.address).collect();
            crate::policy::check_counterparty(&self.inner.config, &book, &own, spender)
                .map_err(|refusal| self.refuse(refusal))?;
        }
        let review = typed_data(&TypedInput {
            from_label: &account.label.to_string(),
            from: account.address,
            data: &data,
            network: &network.name,
            chain_id: network.chain_id,
            contract_name,
            tokens: &tokens,
        });
        self.file(
            &args,
            Filing {
                kind: "typed_data",
                signs: Signs::TypedData,
                network: network.name.clone(),
                account: position,
                from: account.address,
                counterparty: spender.unwrap_or(Address::ZERO),
                digest: data.signing_hash(),
                payload: hex::encode(json.as_bytes()),
                review,
                spends,
            },
        )
    }
}
