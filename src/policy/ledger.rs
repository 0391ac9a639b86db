//! The spend ledger: what was approved, when, per asset, for the rolling 24-hour limits.
//!
//! A spend is recorded at approval, before the transaction is signed, so a crash between the two
//! can only over-count. The ledger also remembers every counterparty keyward has sent to or
//! approved, for the first-time-recipient warning. It is persisted in `spend-ledger.json` in the
//! state directory; entries older than a day are pruned, counterparties are kept.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use alloy::primitives::{Address, U256};
use serde::{Deserialize, Serialize};

use super::Movement;
use crate::files::{self, FileError};

const FILE: &str = "spend-ledger.json";
const MAX_FILE: u64 = 16 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    time: u64,
    network: String,
    asset: String,
    base_units: U256,
    request: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    spends: Vec<Entry>,
    /// "network:0xaddress" of every counterparty of an approved request.
    counterparties: BTreeSet<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(
        "the spend ledger {} is damaged ({problem}); keyward will not guess what was spent: \
         restore it from a backup, or move it away to start the 24-hour limits from zero",
        .path.display()
    )]
    Corrupt { path: PathBuf, problem: String },

    #[error(transparent)]
    File(#[from] FileError),
}

#[derive(Debug)]
pub struct SpendLedger {
    path: PathBuf,
    saved: Mutex<Saved>,
}

fn counterparty_key(network: &str, address: Address) -> String {
    format!("{network}:{address:#x}")
}

impl SpendLedger {
    pub fn open(state_dir: &Path) -> Result<Self, LedgerError> {
        let path = state_dir.join(FILE);
        let saved = match files::read_optional(&path, MAX_FILE)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|err| LedgerError::Corrupt {
                path: path.clone(),
                problem: err.to_string(),
            })?,
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

    /// The total of `asset` approved since `since`, on `network` or on every network.
    pub fn spent_since(&self, asset: &str, network: Option<&str>, since: u64) -> U256 {
        self.lock()
            .spends
            .iter()
            .filter(|e| {
                e.asset == asset && e.time > since && network.is_none_or(|n| n == e.network)
            })
            .fold(U256::ZERO, |sum, e| sum.saturating_add(e.base_units))
    }

    /// Records what one request spends, persisted in one write before this returns. Movements of
    /// an unconfigured token (no asset) are not recorded: no limit names them.
    pub fn record(
        &self,
        movements: &[Movement<'_>],
        request: &str,
        now: u64,
    ) -> Result<(), LedgerError> {
        let mut saved = self.lock();
        let keep_after = now.saturating_sub(86_400);
        let mut spends: Vec<Entry> = saved
            .spends
            .iter()
            .filter(|e| e.time > keep_after)
            .cloned()
            .collect();
        spends.extend(movements.iter().filter_map(|movement| {
            Some(Entry {
                time: now,
                network: movement.network.to_owned(),
                asset: movement.asset?.to_owned(),
                base_units: movement.amount,
                request: request.to_owned(),
            })
        }));
        let next = Saved {
            spends,
            counterparties: saved.counterparties.clone(),
        };
        self.write(&next)?;
        *saved = next;
        Ok(())
    }

    /// Whether keyward has dealt with `address` on `network` before.
    pub fn knows(&self, network: &str, address: Address) -> bool {
        self.lock()
            .counterparties
            .contains(&counterparty_key(network, address))
    }

    pub fn remember(&self, network: &str, address: Address) -> Result<(), LedgerError> {
        let mut saved = self.lock();
        let key = counterparty_key(network, address);
        if saved.counterparties.contains(&key) {
            return Ok(());
        }
        let mut counterparties = saved.counterparties.clone();
        counterparties.insert(key);
        let next = Saved {
            spends: saved.spends.clone(),
            counterparties,
        };
        self.write(&next)?;
        *saved = next;
        Ok(())
    }

    fn write(&self, saved: &Saved) -> Result<(), LedgerError> {
        let bytes = serde_json::to_vec(saved).map_err(|err| LedgerError::Corrupt {
            path: self.path.clone(),
            problem: err.to_string(),
        })?;
        files::write_atomic(&self.path, &bytes)?;
        Ok(())
    }
}
