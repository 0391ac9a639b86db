//! Policy: the rules keyward enforces on every fund movement, whatever the model asks and
//! whatever the human approves.
//!
//! Networks, recipients, unlimited approvals and per-transaction limits are checked when a request
//! is prepared; the per-transaction and rolling 24-hour limits are checked again, against the
//! persisted spend ledger, at the moment of approval, so that two requests prepared under the cap
//! cannot be approved over it. Every refusal names the configuration key that refused.
//!
//! This module must never be loosened by a tool call: the address book and the limits change only
//! through the configuration file and the CLI.

pub mod address_book;
pub mod ledger;

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};

use crate::chain::units::{format_units, parse_units};
use crate::config::{Config, RecipientRule};
pub use address_book::AddressBook;
pub use ledger::SpendLedger;

/// Why the policy refused. The message names the rule and how to change it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "policy.allowed_networks does not include \"{network}\": fund movements on it are refused"
    )]
    Network { network: String },

    #[error(
        "policy.recipients is \"address_book_only\" and {address} is not in the address book; \
         its owner adds it with `keyward address-book add NAME ADDRESS`"
    )]
    NotInAddressBook { address: Address },

    #[error(
        "policy.unlimited_approvals is false: an UNLIMITED allowance is refused; ask for a \
         limited amount"
    )]
    UnlimitedApproval,

    #[error("{rule} caps {asset} at {limit} per transaction, and this moves {amount}")]
    PerTransaction {
        rule: String,
        asset: String,
        limit: String,
        amount: String,
    },

    #[error(
        "{rule} caps {asset} at {limit} per 24 hours; {spent} was already approved in the last \
         24 hours and this adds {amount}"
    )]
    Daily {
        rule: String,
        asset: String,
        limit: String,
        spent: String,
        amount: String,
    },

    #[error("policy.max_tool_calls_per_minute is {limit}: too many tool calls; wait a minute")]
    RateLimited { limit: u32 },
}

impl Refusal {
    /// The configuration key that refused, for the structured error and the audit log.
    pub fn rule(&self) -> String {
        match self {
            Self::Network { .. } => "policy.allowed_networks".into(),
            Self::NotInAddressBook { .. } => "policy.recipients".into(),
            Self::UnlimitedApproval => "policy.unlimited_approvals".into(),
            Self::PerTransaction { rule, .. } | Self::Daily { rule, .. } => rule.clone(),
            Self::RateLimited { .. } => "policy.max_tool_calls_per_minute".into(),
        }
    }
}

/// An amount of one asset a request moves or authorizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement<'a> {
    pub network: &'a str,
    /// `ETH` or a configured token symbol; `None` for an unconfigured token, which no limit names.
    pub asset: Option<&'a str>,
    pub amount: U256,
    pub decimals: u8,
}

pub fn check_network(config: &Config, network: &str) -> Result<(), Refusal> {
    match &config.policy.allowed_networks {
        Some(allowed) if !allowed.iter().any(|n| n == network) => Err(Refusal::Network {
            network: network.to_owned(),
        }),
        _ => Ok(()),
    }
}

pub fn check_counterparty(
    config: &Config,
    book: &AddressBook,
    own: &[Address],
    counterparty: Address,
) -> Result<(), Refusal> {
    match config.policy.recipients {
        RecipientRule::Any => Ok(()),
        RecipientRule::AddressBookOnly
            if book.name_of(counterparty).is_some() || own.contains(&counterparty) =>
        {
            Ok(())
        }
        RecipientRule::AddressBookOnly => Err(Refusal::NotInAddressBook {
            address: counterparty,
        }),
    }
}

pub fn check_unlimited(config: &Config, unlimited: bool) -> Result<(), Refusal> {
    if unlimited && !config.policy.unlimited_approvals {
        return Err(Refusal::UnlimitedApproval);
    }
    Ok(())
}

/// Checks every movement of one request against the limits.
pub fn check_all_limits(
    config: &Config,
    ledger: &SpendLedger,
    movements: &[Movement<'_>],
    now: u64,
) -> Result<(), Refusal> {
    movements
        .iter()
        .try_for_each(|movement| check_limits(config, ledger, movement, now))
}

/// Checks the per-transaction and 24-hour limits for `movement`, given what the ledger holds.
pub fn check_limits(
    config: &Config,
    ledger: &SpendLedger,
    movement: &Movement<'_>,
    now: u64,
) -> Result<(), Refusal> {
    let Some(asset) = movement.asset else {
        return Ok(());
    };
    let shown = |value: U256| format!("{} {asset}", format_units(value, movement.decimals));
    for (index, limit) in config.policy.limits.iter().enumerate() {
        if limit.asset != asset
            || limit
                .network
                .as_deref()
                .is_some_and(|n| n != movement.network)
        {
            continue;
        }
        // The configuration checked these are decimals; more precision than the asset has is
        // rounded down, which only makes the limit stricter.
        let cap = |text: &str| {
            let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
            let fraction: String = fraction.chars().take(movement.decimals.into()).collect();
            let text = if fraction.is_empty() {
                whole.to_owned()
            } else {
                format!("{whole}.{fraction}")
            };
            parse_units(&text, movement.decimals).unwrap_or(U256::ZERO)
        };
        if let Some(per_transaction) = &limit.per_transaction {
            let cap = cap(per_transaction);
            if movement.amount > cap {
                return Err(Refusal::PerTransaction {
                    rule: format!("policy.limits[{index}].per_transaction"),
                    asset: asset.to_owned(),
                    limit: shown(cap),
                    amount: shown(movement.amount),
                });
            }
        }
        if let Some(per_24h) = &limit.per_24h {
            let cap = cap(per_24h);
            let spent =
                ledger.spent_since(asset, limit.network.as_deref(), now.saturating_sub(86_400));
            if spent.saturating_add(movement.amount) > cap {
                return Err(Refusal::Daily {
                    rule: format!("policy.limits[{index}].per_24h"),
                    asset: asset.to_owned(),
                    limit: shown(cap),
                    spent: shown(spent),
                    amount: shown(movement.amount),
                });
            }
        }
    }
    Ok(())
}

/// A sliding one-minute window over tool calls.
#[derive(Debug)]
pub struct RateLimiter {
    limit: u32,
    calls: Mutex<VecDeque<Instant>>,
}

impl RateLimiter {
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            calls: Mutex::new(VecDeque::new()),
        }
    }

    pub fn admit(&self) -> Result<(), Refusal> {
        let now = Instant::now();
        let mut calls = self
            .calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while calls
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            calls.pop_front();
        }
        if calls.len() >= self.limit as usize {
            return Err(Refusal::RateLimited { limit: self.limit });
        }
        calls.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(policy: &str) -> Config {
        Config::parse(
            &format!(
                "[[networks]]\nname = \"anvil\"\nchain_id = 31337\nrpc_url = \"http://127.0.0.1:8545\"\n\
                 [[networks.tokens]]\naddress = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"\n\
                 symbol = \"TUSD\"\ndecimals = 6\n[policy]\n{policy}"
            ),
            "test.toml",
        )
        .unwrap()
    }

    fn eth(amount: &str) -> Movement<'static> {
        Movement {
            network: "anvil",
            asset: Some("ETH"),
            amount: parse_units(amount, 18).unwrap(),
            decimals: 18,
        }
    }

    #[test]
    fn limits_name_the_rule_that_refused() {
        let config = config(
            "[[policy.limits]]\nasset = \"ETH\"\nper_transaction = \"1\"\nper_24h = \"2\"\n",
        );
        let dir = tempfile::tempdir().unwrap();
        let ledger = SpendLedger::open(dir.path()).unwrap();
        assert!(check_limits(&config, &ledger, &eth("1"), 1000).is_ok());
        let refusal = check_limits(&config, &ledger, &eth("1.5"), 1000).unwrap_err();
        assert_eq!(refusal.rule(), "policy.limits[0].per_transaction");
        assert!(refusal.to_string().contains("1 ETH per transaction"));

        ledger.record(&[eth("1")], "r1", 1000).unwrap();
        ledger.record(&[eth("0.5")], "r2", 2000).unwrap();
        let refusal = check_limits(&config, &ledger, &eth("0.6"), 3000).unwrap_err();
        assert_eq!(refusal.rule(), "policy.limits[0].per_24h");
        assert!(refusal.to_string().contains("1.5 ETH was already approved"));
        assert!(check_limits(&config, &ledger, &eth("0.5"), 3000).is_ok());
        // A day later the first spend has rolled out of the window.
        assert!(check_limits(&config, &ledger, &eth("0.6"), 1000 + 86_400).is_ok());
        // The ledger survives a restart.
        let ledger = SpendLedger::open(dir.path()).unwrap();
        assert!(check_limits(&config, &ledger, &eth("0.6"), 3000).is_err());
    }

    #[test]
    fn unlimited_approvals_and_unlisted_recipients_are_refused_by_default_rules() {
        let config_default = config("");
        assert_eq!(
            check_unlimited(&config_default, true),
            Err(Refusal::UnlimitedApproval)
        );
        assert!(check_unlimited(&config("unlimited_approvals = true\n"), true).is_ok());
        let strict = config("recipients = \"address_book_only\"\n");
        let book = AddressBook::default();
        let stranger = Address::repeat_byte(9);
        assert!(check_counterparty(&config_default, &book, &[], stranger).is_ok());
        assert_eq!(
            check_counterparty(&strict, &book, &[], stranger)
                .unwrap_err()
                .rule(),
            "policy.recipients"
        );
        assert!(check_counterparty(&strict, &book, &[stranger], stranger).is_ok());
    }

    #[test]
    fn networks_outside_the_allowed_list_are_refused() {
        let config = config("allowed_networks = []\n");
        assert!(config.policy.allowed_networks.is_some());
        assert!(check_network(&config, "anvil").is_err());
    }

    #[test]
    fn the_rate_limiter_counts_calls_in_a_minute() {
        let limiter = RateLimiter::new(3);
        for _ in 0..3 {
            limiter.admit().unwrap();
        }
        assert_eq!(limiter.admit(), Err(Refusal::RateLimited { limit: 3 }));
    }
}
