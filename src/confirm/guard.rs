//! The TOTP guard: single-use codes, a failure counter and a lockout that survive a restart.
//!
//! The state (last accepted time step, failures in a row, lockout end) is written to
//! `totp-guard.json` in the state directory before a verdict is returned, so a code cannot be
//! replayed and a lockout cannot be cleared by restarting keyward. If the state cannot be
//! written, the guard refuses: it fails closed.
//!
//! This module must never log or return a code or the TOTP secret.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::files::{self, FileError};
use crate::totp::TotpSecret;

const FILE: &str = "totp-guard.json";
/// Wrong codes (or passwords) in a row before approvals lock.
pub const MAX_FAILURES: u32 = 5;
/// The first lockout; each further one doubles, up to a day.
const FIRST_LOCKOUT_SECONDS: u64 = 300;
const MAX_LOCKOUT_SECONDS: u64 = 86_400;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct GuardState {
    /// The last time step a code was accepted at; only later steps are accepted.
    last_step: Option<u64>,
    failures: u32,
    /// Unix time until which approvals are locked.
    locked_until: u64,
    /// Lockouts since the last accepted code, for the back-off.
    lockouts: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error(
        "approvals are locked after {MAX_FAILURES} wrong codes or passwords; try again in \
         {seconds} seconds"
    )]
    Locked { seconds: u64 },

    #[error("wrong code; {left} more wrong attempts lock approvals")]
    WrongCode { left: u32 },

    #[error(
        "this code was already used; wait for the next one in your authenticator app \
         (codes are single use)"
    )]
    Reused,

    #[error(
        "wrong code; approvals are now locked for {seconds} seconds after {MAX_FAILURES} \
         wrong attempts"
    )]
    LockedNow { seconds: u64 },

    #[error("the approval state in {} is unreadable: {problem}; approvals stay refused until it is fixed", .path.display())]
    Corrupt { path: PathBuf, problem: String },

    #[error(
        "the approval state cannot be read or written ({0}), so no approval can be accepted: free \
         disk space or make the state directory writable, then try again"
    )]
    File(#[from] FileError),
}

/// What a failed attempt led to, for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Counted { left: u32 },
    LockedOut { seconds: u64 },
}

#[derive(Debug)]
pub struct TotpGuard {
    path: PathBuf,
    state: Mutex<GuardState>,
}

impl TotpGuard {
    pub fn open(state_dir: &Path) -> Result<Self, GuardError> {
        let path = state_dir.join(FILE);
        let state = match files::read_optional(&path, 4096)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|err| GuardError::Corrupt {
                path: path.clone(),
                problem: format!("not the JSON keyward writes ({err})"),
            })?,
            None => GuardState::default(),
        };
        Ok(Self {
            path,
            state: Mutex::new(state),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GuardState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn save(&self, state: &GuardState) -> Result<(), GuardError> {
        let bytes = serde_json::to_vec(state).map_err(|err| GuardError::Corrupt {
            path: self.path.clone(),
            problem: err.to_string(),
        })?;
        files::write_atomic(&self.path, &bytes)?;
        Ok(())
    }

    /// Refuses while approvals are locked.
    pub fn check_open(&self, now: u64) -> Result<(), GuardError> {
        let state = self.lock();
        if state.locked_until > now {
            return Err(GuardError::Locked {
                seconds: state.locked_until - now,
            });
        }
        Ok(())
    }

    /// Counts a wrong code or password, locking approvals at the limit.
    pub fn fail(&self, now: u64) -> Result<Failure, GuardError> {
        let mut state = self.lock();
        let mut next = state.clone();
        next.failures += 1;
        let outcome = if next.failures >= MAX_FAILURES {
            let seconds = FIRST_LOCKOUT_SECONDS
                .saturating_mul(1 << next.lockouts.min(16))
                .min(MAX_LOCKOUT_SECONDS);
            next.failures = 0;
            next.lockouts += 1;
            next.locked_until = now + seconds;
            Failure::LockedOut { seconds }
        } else {
            Failure::Counted {
                left: MAX_FAILURES - next.failures,
            }
        };
        self.save(&next)?;
        *state = next;
        Ok(outcome)
    }

    /// Checks `code` against the secret at `now`. A code is accepted once: its time step must be
    /// later than the last accepted one, which is persisted before this returns `Ok`.
    pub fn verify(&self, secret: &TotpSecret, code: &str, now: u64) -> Result<u64, GuardError> {
        let mut state = self.lock();
        if state.locked_until > now {
            return Err(GuardError::Locked {
                seconds: state.locked_until - now,
            });
        }
        let matched = secret.verify(code, now);
        let fresh = matched.filter(|step| state.last_step.is_none_or(|last| *step > last));
        match fresh {
            Some(step) => {
                let next = GuardState {
                    last_step: Some(step),
                    failures: 0,
                    locked_until: 0,
                    lockouts: 0,
                };
                self.save(&next)?;
                *state = next;
                Ok(step)
            }
            None => {
                drop(state);
                let reused = matched.is_some();
                match self.fail(now)? {
                    Failure::LockedOut { seconds } => Err(GuardError::LockedNow { seconds }),
                    Failure::Counted { .. } if reused => Err(GuardError::Reused),
                    Failure::Counted { left } => Err(GuardError::WrongCode { left }),
                }
            }
        }
    }
}

/// The current unix time in seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> TotpSecret {
        crate::totp::from_bytes(b"12345678901234567890").unwrap()
    }

    fn code(at: u64) -> String {
        secret().expose_secret().generate(at).to_string()
    }

    #[test]
    fn a_code_is_single_use_and_earlier_steps_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let guard = TotpGuard::open(dir.path()).unwrap();
        let now = 1_800_000_000;
        assert!(guard.verify(&secret(), &code(now), now).is_ok());
        assert!(matches!(
            guard.verify(&secret(), &code(now), now),
            Err(GuardError::Reused)
        ));
        // The previous step's code is still within the skew window, but not after the used one.
        assert!(matches!(
            guard.verify(&secret(), &code(now - 30), now),
            Err(GuardError::Reused)
        ));
        // A restart remembers the used step.
        let guard = TotpGuard::open(dir.path()).unwrap();
        assert!(matches!(
            guard.verify(&secret(), &code(now), now + 1),
            Err(GuardError::Reused)
        ));
        assert!(guard.verify(&secret(), &code(now + 30), now + 30).is_ok());
    }

    #[test]
    fn a_code_two_steps_off_is_refused_and_one_step_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let guard = TotpGuard::open(dir.path()).unwrap();
        let now = 1_800_000_000;
        assert!(matches!(
            guard.verify(&secret(), &code(now - 60), now),
            Err(GuardError::WrongCode { .. })
        ));
        assert!(matches!(
            guard.verify(&secret(), &code(now + 60), now),
            Err(GuardError::WrongCode { .. })
        ));
        assert!(guard.verify(&secret(), &code(now + 30), now).is_ok());
    }

    #[test]
    fn five_failures_lock_even_the_right_code_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let guard = TotpGuard::open(dir.path()).unwrap();
        let now = 1_800_000_000;
        for left in (1..MAX_FAILURES).rev() {
            assert!(matches!(
                guard.verify(&secret(), "000000", now),
                Err(GuardError::WrongCode { left: l }) if l == left
            ));
        }
        assert!(matches!(
            guard.verify(&secret(), "000000", now),
            Err(GuardError::LockedNow { seconds: 300 })
        ));
        assert!(matches!(
            guard.verify(&secret(), &code(now), now),
            Err(GuardError::Locked { .. })
        ));
        let guard = TotpGuard::open(dir.path()).unwrap();
        assert!(matches!(
            guard.verify(&secret(), &code(now + 120), now + 120),
            Err(GuardError::Locked { seconds: 180 })
        ));
        // After the back-off the right code works again.
        let later = now + 301;
        assert!(guard.verify(&secret(), &code(later), later).is_ok());
    }

    #[test]
    fn repeated_lockouts_back_off_longer() {
        let dir = tempfile::tempdir().unwrap();
        let guard = TotpGuard::open(dir.path()).unwrap();
        let mut now = 1_800_000_000;
        let mut lockouts = Vec::new();
        for _ in 0..3 {
            for _ in 0..MAX_FAILURES {
                if let Ok(Failure::LockedOut { seconds }) = guard.fail(now) {
                    lockouts.push(seconds);
                    now += seconds;
                }
            }
        }
        assert_eq!(lockouts, [300, 600, 1200]);
    }

    #[test]
    fn a_corrupt_state_file_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), b"{not json").unwrap();
        assert!(matches!(
            TotpGuard::open(dir.path()),
            Err(GuardError::Corrupt { .. })
        ));
    }
}
