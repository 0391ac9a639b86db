//! One APDU out, one reply back. A transport knows framing, not the Ethereum app.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::TransportError;

/// How long a transport may wait for the device (and the person in front of it), and a switch
/// that ends the wait early. Clones share the switch.
#[derive(Debug, Clone)]
pub struct Wait {
    deadline: Option<Instant>,
    timeout: Option<Duration>,
    cancelled: Arc<AtomicBool>,
}

impl Wait {
    /// A wait of at most `timeout`, or without a time limit.
    pub fn new(timeout: Option<Duration>) -> Self {
        Self {
            deadline: timeout.map(|t| Instant::now() + t),
            timeout,
            cancelled: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Ends the wait: the exchange in progress returns [`TransportError::Cancelled`] as soon as
    /// its transport next looks.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    /// `Err` once the wait is cancelled or past its deadline. Transports call this between short
    /// blocking reads.
    pub fn check(&self) -> Result<(), TransportError> {
        if self.cancelled.load(Ordering::SeqCst) {
            return Err(TransportError::Cancelled);
        }
        match (self.deadline, self.timeout) {
            (Some(deadline), Some(timeout)) if Instant::now() >= deadline => {
                Err(TransportError::TimedOut {
                    seconds: timeout.as_secs(),
                })
            }
            _ => Ok(()),
        }
    }

    /// The time left, if there is a deadline; zero once it has passed.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }
}

/// A link to a device running the Ethereum app. `exchange` blocks: call it off the async
/// runtime (`spawn_blocking`). It must return within a short poll interval of `wait` ending.
pub trait Transport: Send + Sync + fmt::Debug {
    /// Sends one APDU and returns the reply: its data followed by the two status bytes.
    fn exchange(&self, apdu: &[u8], wait: &Wait) -> Result<Vec<u8>, TransportError>;
}

impl<T: Transport + ?Sized> Transport for Arc<T> {
    fn exchange(&self, apdu: &[u8], wait: &Wait) -> Result<Vec<u8>, TransportError> {
        (**self).exchange(apdu, wait)
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn exchange(&self, apdu: &[u8], wait: &Wait) -> Result<Vec<u8>, TransportError> {
        (**self).exchange(apdu, wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_ends_when_cancelled_or_past_its_deadline() {
        let wait = Wait::new(None);
        assert_eq!(wait.check(), Ok(()));
        assert_eq!(wait.remaining(), None);
        wait.clone().cancel();
        assert_eq!(wait.check(), Err(TransportError::Cancelled));

        let short = Wait::new(Some(Duration::ZERO));
        assert_eq!(short.check(), Err(TransportError::TimedOut { seconds: 0 }));
        assert_eq!(short.remaining(), Some(Duration::ZERO));
        assert_eq!(Wait::new(Some(Duration::from_secs(60))).check(), Ok(()));
    }
}
