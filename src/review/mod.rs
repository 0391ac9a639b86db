//! The review: what the human reads before approving a fund movement.
//!
//! It is rendered by keyward from the exact unsigned transaction and facts read from the chain,
//! never from text the model wrote. The same text goes to every channel (the approval page, the
//! terminal approver and the tool result), so the human can compare them line by line. Each
//! warning has a severity; a blocking one means keyward refuses the request whatever the human
//! says.
//!
//! This module must never take free text from the model: the only strings in a review are
//! keyward's own words, configured names, and text from the request shown as quoted data.
//! Text a third party chose (an unverified token's symbol, a revert reason) never enters the
//! title, the text or a warning: it travels beside them as [`ContractText`], sanitized by
//! [`crate::untrusted`], which the model receives as data fields and a human channel shows apart
//! from the review, quoted and marked untrusted.

use std::fmt::Write as _;

use alloy::primitives::{Address, U256};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::chain::tx::UnsignedTx;
use crate::chain::units::format_units;
use crate::untrusted::{UntrustedText, is_hidden};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warn,
    Critical,
}

impl Severity {
    fn tag(self) -> &'static str {
        match self {
            Self::Info => "INFO",
            Self::Warn => "WARN",
            Self::Critical => "CRITICAL",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    pub severity: Severity,
    pub text: String,
    /// keyward refuses the request: no approval can send it.
    pub blocks: bool,
}

/// A token as the review names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenView {
    pub address: Address,
    /// The configured symbol for a verified token, else the sanitized symbol the contract reports.
    pub symbol: UntrustedText,
    pub decimals: u8,
    /// Listed in keyward's configuration.
    pub verified: bool,
}

impl TokenView {
    /// How the review names the token: its configured symbol, or, when it is unverified, its
    /// address, since the symbol its contract claims is untrusted and stays out of the prose.
    fn name(&self) -> String {
        if self.verified {
            self.symbol.value.clone()
        } else {
            format!("unverified token {}", short(self.address))
        }
    }

    /// An amount of the token, in whole tokens: "250 TUSD", or "250 of unverified token
    /// 0x5FbD…0aa3".
    fn amount(&self, amount: U256) -> String {
        let whole = format_units(amount, self.decimals);
        if self.verified {
            format!("{whole} {}", self.name())
        } else {
            format!("{whole} of {}", self.name())
        }
    }
}

/// An address shortened for a title: `0x5FbD…0aa3`. Reviews show the full address too.
fn short(address: Address) -> String {
    let checksummed = address.to_checksum(None);
    format!("{}…{}", &checksummed[..6], &checksummed[38..])
}

/// An allowance as asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowance {
    Limited(U256),
    /// The largest uint256: the spender may take every token, now and later.
    Unlimited,
}

impl Allowance {
    pub fn from_amount(amount: U256) -> Self {
        if amount == U256::MAX {
            Self::Unlimited
        } else {
            Self::Limited(amount)
        }
    }

    pub fn amount(self) -> U256 {
        match self {
            Self::Limited(amount) => amount,
            Self::Unlimited => U256::MAX,
        }
    }
}

/// What the transaction does, decoded by keyward from the calldata it built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    EthTransfer,
    TokenTransfer {
        token: TokenView,
        recipient: Address,
        amount: U256,
    },
    TokenApproval {
        token: TokenView,
        spender: Address,
        allowance: Allowance,
    },
    /// A call to a contract, with what keyward could read of its calldata.
    ContractCall {
        reading: CallReading,
        /// `policy.blind_signing`: whether calldata keyward cannot read may be signed at all.
        blind_signing: bool,
    },
}

impl Action {
    /// The party that receives funds or spending power.
    pub fn counterparty(&self, tx: &UnsignedTx) -> Address {
        match self {
            Self::EthTransfer | Self::ContractCall { .. } => tx.to,
            Self::TokenTransfer { recipient, .. } => *recipient,
            Self::TokenApproval { spender, .. } => *spender,
        }
    }
}

/// The result of the `eth_call` simulation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Simulation {
    Succeeds,
    /// With the revert reason when the contract gave one (untrusted text).
    Reverts(Option<UntrustedText>),
}

/// What keyward knows about the counterparty and the sender, read from the chain, the address
/// book and past requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The sender's account label.
    pub from_label: String,
    /// The counterparty's account label or address-book name.
    pub counterparty_name: Option<String>,
    pub counterparty_is_contract: bool,
    /// keyward has never sent to, or approved, this address, and it is neither an account nor in
    /// the address book.
    pub first_time: bool,
    /// A known address (name, address) that shares the counterparty's first and last four hex
    /// digits without being it.
    pub look_alike: Option<(String, Address)>,
    pub simulation: Simulation,
    pub eth_balance: U256,
    /// The sender's balance of the token moved, for a token transfer.
    pub token_balance: Option<U256>,
}

/// Everything a review is made from.
#[derive(Debug, Clone)]
pub struct ReviewInput<'a> {
    pub network: &'a str,
    pub tx: &'a UnsignedTx,
    pub from: Address,
    pub action: &'a Action,
    pub facts: &'a Facts,
}

/// A rendered review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub title: String,
    pub text: String,
    pub warnings: Vec<Warning>,
    /// Third-party text the review refers to but does not contain.
    #[serde(default)]
    pub contract_text: ContractText,
}

impl Review {
    /// The first blocking warning, if keyward must refuse the request.
    pub fn refusal(&self) -> Option<&Warning> {
        self.warnings.iter().find(|w| w.blocks)
    }

    /// The review as a human channel without its own place for [`ContractText`] shows it: the
    /// text, then the contract's words apart from it (see [`ContractText::for_human`]).
    pub fn for_human(&self) -> String {
        match self.contract_text.for_human() {
            Some(quoted) => format!("{}\n{quoted}", self.text),
            None => self.text.clone(),
        }
    }
}

/// Text a contract chose that a review refers to: sanitized and flagged, and never part of the
/// review's prose. The model receives it as these fields; a human reads it apart from the
/// review, quoted, under a heading that says whose words these are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ContractText {
    /// The symbol an unverified token's contract claims for itself.
    pub token_symbol: Option<UntrustedText>,
    /// The reason the contract gave when the simulation reverted.
    pub revert_reason: Option<UntrustedText>,
}

impl ContractText {
    /// Each string on its own line, quoted and escaped, with what was noticed about it, under a
    /// heading; `None` when there is nothing.
    pub fn for_human(&self) -> Option<String> {
        let quoted: Vec<(&str, &UntrustedText)> = [
            ("Symbol", &self.token_symbol),
            ("Reason", &self.revert_reason),
        ]
        .into_iter()
        .filter_map(|(label, text)| text.as_ref().map(|text| (label, text)))
        .collect();
        if quoted.is_empty() {
            return None;
        }
        let mut text = Text(String::new());
        let _ = writeln!(
            text.0,
            "Untrusted text from the contract: its words, not keyward's\n{}",
            "-".repeat(64)
        );
        for (label, untrusted) in quoted {
            text.line(label, format!("\"{}\"", escape(&untrusted.value)));
            if !untrusted.notes.is_empty() {
                let notes: Vec<&str> = untrusted.notes.iter().map(|note| note.name()).collect();
                text.more(format!(
                    "{}: {}",
                    if untrusted.suspicious {
                        "SUSPICIOUS"
                    } else {
                        "noted"
                    },
                    notes.join(", ")
                ));
            }
        }
        Some(text.0)
    }
}

const LABEL_WIDTH: usize = 13;

struct Text(String);

impl Text {
    fn line(&mut self, label: &str, value: impl AsRef<str>) {
        let _ = writeln!(self.0, "{label:<LABEL_WIDTH$}{}", value.as_ref());
    }

    fn more(&mut self, value: impl AsRef<str>) {
        self.line("", value);
    }
}

/// A checksummed address in groups of four hex digits, easier to compare by eye:
/// `0xf39F d6e5 1aad 88F6 F4ce 6aB8 8272 79cf fFb9 2266`.
pub fn grouped(address: Address) -> String {
    let checksummed = address.to_checksum(None);
    let digits = &checksummed[2..];
    let groups: Vec<&str> = (0..10).map(|i| &digits[i * 4..i * 4 + 4]).collect();
    format!("0x{}", groups.join(" "))
}

/// Whether two different addresses share their first and last four hex digits, the parts a
/// hurried reader checks.
pub fn looks_alike(a: Address, b: Address) -> bool {
    a != b && a[..2] == b[..2] && a[18..] == b[18..]
}

pub fn build(input: &ReviewInput<'_>) -> Review {
    let ReviewInput {
        network,
        tx,
        from,
        action,
        facts,
    } = input;
    let mut warnings = Vec::new();
    let mut warn = |severity, blocks, text: String| {
        warnings.push(Warning {
            severity,
            text,
            blocks,
        });
    };
    let eth = |wei: U256| format!("{} ETH", format_units(wei, 18));
    let counterparty = action.counterparty(tx);

    let title = match action {
        Action::EthTransfer => format!("Send {} on {network}", eth(tx.value)),
        Action::TokenTransfer { token, amount, .. } => {
            format!("Send {} on {network}", token.amount(*amount))
        }
        Action::TokenApproval {
            token, allowance, ..
        } => match allowance {
            Allowance::Limited(amount) if amount.is_zero() => {
                format!("Revoke the {} allowance on {network}", token.name())
            }
            Allowance::Limited(amount) => {
                format!("Allow spending of {} on {network}", token.amount(*amount))
            }
            Allowance::Unlimited => {
                format!("Allow spending of UNLIMITED {} on {network}", token.name())
            }
        },
        Action::ContractCall { reading, .. } => match reading.name() {
            Some(name) => format!("Call {} on {network}", escape(name)),
            None => format!("Call an unknown function on {network}"),
        },
    };

    let mut text = Text(String::new());
    let _ = writeln!(text.0, "{title}\n{}", "-".repeat(64));
    text.line("Network", format!("{network}, chain id {}", tx.chain_id));
    text.line("From", &facts.from_label);
    text.more(grouped(*from));

    let party_role = match action {
        Action::TokenApproval { .. } => "Spender",
        Action::ContractCall { .. } => "Contract",
        _ => "To",
    };
    text.line(
        party_role,
        facts
            .counterparty_name
            .as_deref()
            .unwrap_or("(no name: not an account or in the address book)"),
    );
    text.more(grouped(counterparty));
    let mut about = vec![if facts.counterparty_is_contract {
        "a contract"
    } else {
        "not a contract"
    }];
    if facts.first_time {
        about.push("never used by this wallet before");
    }
    text.more(about.join(", "));

    match action {
        Action::EthTransfer => {
            text.line("Amount", eth(tx.value));
            text.more(format!("{} wei", tx.value));
        }
        // Its value and calldata follow below.
        Action::ContractCall { .. } => {}
        Action::TokenTransfer { token, amount, .. } => {
            token_lines(&mut text, token);
            text.line("Amount", token.amount(*amount));
            text.more(format!("{amount} base units, {} decimals", token.decimals));
        }
        Action::TokenApproval {
            token, allowance, ..
        } => {
            token_lines(&mut text, token);
            match allowance {
                Allowance::Unlimited => {
                    text.line("Allowance", "UNLIMITED");
                    text.more("the spender may take all of this token, now and later");
                }
                Allowance::Limited(amount) => {
                    text.line("Allowance", token.amount(*amount));
                    text.more(format!("{amount} base units, {} decimals", token.decimals));
                }
            }
        }
    }
    match action {
        Action::EthTransfer => {}
        Action::ContractCall { reading, .. } => {
            text.line("ETH sent", eth(tx.value));
            if !tx.value.is_zero() {
                text.more(format!("{} wei", tx.value));
            }
            call::call_lines(&mut text, reading, &tx.input);
            text.more(format!("{} bytes of calldata", tx.input.len()));
        }
        Action::TokenTransfer { .. } | Action::TokenApproval { .. } => {
            text.line("ETH sent", eth(tx.value));
            let call = match action {
                Action::TokenTransfer { .. } => "transfer(address,uint256)",
                _ => "approve(address,uint256)",
            };
            text.line("Call", format!("{call}, {} bytes", tx.input.len()));
        }
    }
    text.line("Nonce", tx.nonce.to_string());
    text.line("Gas limit", tx.gas_limit.to_string());
    text.line(
        "Max fee",
        format!(
            "{} gwei per gas, priority fee {} gwei",
            format_units(U256::from(tx.max_fee_per_gas), 9),
            format_units(U256::from(tx.max_priority_fee_per_gas), 9)
        ),
    );
    let max_gas_cost = U256::from(tx.gas_limit).saturating_mul(U256::from(tx.max_fee_per_gas));
    text.line("Max gas cost", eth(max_gas_cost));
    text.line(
        "Max total",
        format!("{} (value and gas)", eth(tx.max_cost())),
    );
    text.line(
        "Simulation",
        match &facts.simulation {
            Simulation::Succeeds => "succeeds".to_owned(),
            Simulation::Reverts(None) => "REVERTS, without a reason".to_owned(),
            Simulation::Reverts(Some(_)) => {
                "REVERTS, with a reason in the contract's own words (shown apart, untrusted)"
                    .to_owned()
            }
        },
    );
    text.line("Digest", format!("{}", tx.signing_hash()));

    // Warnings, worst first.
    if counterparty == Address::ZERO {
        warn(
            Severity::Critical,
            true,
            "the recipient is the zero address: whatever is sent there is lost for good".into(),
        );
    }
    if let Simulation::Reverts(_) = facts.simulation {
        warn(
            Severity::Critical,
            true,
            "the simulation reverts: sent now, the transaction would fail and still cost gas"
                .into(),
        );
    }
    if tx.max_cost() > facts.eth_balance {
        warn(
            Severity::Critical,
            true,
            format!(
                "insufficient ETH: the account holds {}, and this may cost up to {}",
                eth(facts.eth_balance),
                eth(tx.max_cost())
            ),
        );
    }
    if let (Action::TokenTransfer { token, amount, .. }, Some(balance)) =
        (action, facts.token_balance)
        && *amount > balance
    {
        warn(
            Severity::Critical,
            true,
            format!(
                "insufficient {}: the account holds {}",
                token.name(),
                format_units(balance, token.decimals)
            ),
        );
    }
    if let Some((name, known)) = &facts.look_alike {
        warn(
            Severity::Critical,
            false,
            format!(
                "the address looks like \"{name}\" ({}) but is a different address: \
                 compare every digit",
                grouped(*known)
            ),
        );
    }
    if let Action::TokenApproval {
        allowance: Allowance::Unlimited,
        ..
    } = action
    {
        warn(
            Severity::Critical,
            false,
            "UNLIMITED allowance: the spender can take every token of this kind the account \
             ever holds, until the allowance is revoked"
                .into(),
        );
    }
    match action {
        Action::TokenTransfer { token, .. } | Action::TokenApproval { token, .. }
            if !token.verified =>
        {
            let mut text = "the token is not in keyward's configuration: the symbol it claims is \
                            the contract's own word"
                .to_owned();
            if token.symbol.suspicious {
                text.push_str(", and it looks suspicious");
            }
            warn(Severity::Warn, false, text);
        }
        _ => {}
    }
    let contract_recipient = match action {
        Action::EthTransfer => Some("make sure it is meant to receive ETH"),
        Action::TokenTransfer { .. } => {
            Some("tokens sent to a contract that does not expect them are often lost")
        }
        Action::TokenApproval { .. } | Action::ContractCall { .. } => None,
    };
    if let Some(risk) = contract_recipient.filter(|_| facts.counterparty_is_contract) {
        warn(
            Severity::Warn,
            false,
            format!("the recipient is a contract: {risk}"),
        );
    }
    if let Action::ContractCall {
        reading,
        blind_signing,
    } = action
    {
        for found in call::call_warnings(reading, *blind_signing) {
            warn(found.severity, found.blocks, found.text);
        }
    }
    if facts.first_time {
        warn(
            Severity::Warn,
            false,
            "first time this wallet deals with this address: check it against a trusted source"
                .into(),
        );
    }
    let mut review = finish(title, text, warnings);
    review.contract_text = ContractText {
        token_symbol: match action {
            Action::TokenTransfer { token, .. } | Action::TokenApproval { token, .. }
                if !token.verified =>
            {
                Some(token.symbol.clone())
            }
            _ => None,
        },
        revert_reason: match &facts.simulation {
            Simulation::Reverts(reason) => reason.clone(),
            Simulation::Succeeds => None,
        },
    };
    review
}

/// Appends the warnings, most severe first, and makes the review.
fn finish(title: String, mut text: Text, mut warnings: Vec<Warning>) -> Review {
    warnings.sort_by_key(|w| std::cmp::Reverse(w.severity));

    text.0.push('\n');
    if warnings.is_empty() {
        text.0.push_str("No warnings.\n");
    } else {
        text.0.push_str("Warnings\n");
        for warning in &warnings {
            let refused = if warning.blocks {
                " (keyward refuses this)"
            } else {
                ""
            };
            let _ = writeln!(
                text.0,
                "  {:<9}{}{refused}",
                warning.severity.tag(),
                warning.text
            );
        }
    }
    Review {
        title,
        text: text.0,
        warnings,
        contract_text: ContractText::default(),
    }
}

fn token_lines(text: &mut Text, token: &TokenView) {
    if token.verified {
        text.line(
            "Token",
            format!("{} (in keyward's configuration)", token.name()),
        );
        text.more(grouped(token.address));
    } else {
        text.line("Token", "unverified: not in keyward's configuration");
        text.more(grouped(token.address));
        text.more("its claimed symbol is the contract's own word (shown apart, untrusted)");
    }
}

/// How the review writes an invisible or control character: `\u{202e}`.
fn escape_hidden(c: char) -> String {
    format!("\\u{{{:04x}}}", u32::from(c))
}

/// Third-party text as the review shows it: quotes, backslashes, line breaks and invisible
/// characters escaped, so that it cannot pass for review text or end a quoted value.
fn escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if is_hidden(c) => out.push_str(&escape_hidden(c)),
            c => out.push(c),
        }
    }
    out
}

/// A Unix time as `YYYY-MM-DD HH:MM:SS UTC`, for a human (Howard Hinnant's civil-from-days).
pub fn utc(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let seconds = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        seconds / 3_600,
        seconds % 3_600 / 60,
        seconds % 60
    )
}

mod call;
mod message;
mod typed;
pub use call::CallReading;
pub use message::{MessageInput, personal_message};
pub use typed::{Authorization, Grant, TypedInput, authorization, grants_unlimited, typed_data};

#[cfg(test)]
mod tests;
