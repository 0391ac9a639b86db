//! Nonce reservation: each prepared transaction of an account gets its own nonce, consecutive and
//! never shared, even when many are prepared at once.
//!
//! The chain's pending nonce is the floor; above it keyward hands out the next unreserved number.
//! A request that ends without being sent (rejected, expired, refused) gives its nonce back, and
//! the next request takes the lowest one given back, so the account's sequence has no gap for
//! long. After a failed broadcast the account is resynchronized from the chain.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use alloy::primitives::Address;

#[derive(Debug, Default)]
struct Account {
    /// The next never-reserved nonce.
    next: u64,
    /// Reserved once, then given back.
    released: BTreeSet<u64>,
    /// Reserved and not given back.
    held: BTreeSet<u64>,
}

#[derive(Debug, Default)]
pub struct NonceBook {
    accounts: Mutex<HashMap<(u64, Address), Account>>,
}

impl NonceBook {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(u64, Address), Account>> {
        self.accounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reserves a nonce for `address` on `chain_id`, given the chain's pending nonce.
    pub fn reserve(&self, chain_id: u64, address: Address, chain_pending: u64) -> u64 {
        let mut accounts = self.lock();
        let account = accounts.entry((chain_id, address)).or_default();
        // Nonces below the chain's are used up, by keyward or by another wallet.
        account.released = account.released.split_off(&chain_pending);
        account.held.retain(|n| *n >= chain_pending);
        account.next = account.next.max(chain_pending);
        let nonce = account.released.pop_first().unwrap_or_else(|| {
            let nonce = account.next;
            account.next += 1;
            nonce
        });
        account.held.insert(nonce);
        nonce
    }

    /// Marks `nonce` as reserved, for requests restored after a restart.
    pub fn hold(&self, chain_id: u64, address: Address, nonce: u64) {
        let mut accounts = self.lock();
        let account = accounts.entry((chain_id, address)).or_default();
        account.held.insert(nonce);
        account.released.remove(&nonce);
        account.next = account.next.max(nonce + 1);
    }

    /// Gives back a nonce whose transaction will never be sent.
    pub fn release(&self, chain_id: u64, address: Address, nonce: u64) {
        let mut accounts = self.lock();
        if let Some(account) = accounts.get_mut(&(chain_id, address))
            && account.held.remove(&nonce)
        {
            account.released.insert(nonce);
        }
    }

    /// Marks `nonce` as spent on the chain: it is neither held nor reusable.
    pub fn spent(&self, chain_id: u64, address: Address, nonce: u64) {
        let mut accounts = self.lock();
        if let Some(account) = accounts.get_mut(&(chain_id, address)) {
            account.held.remove(&nonce);
        }
    }

    /// Whether keyward has handed out nonces from `chain_pending` on that it neither holds nor
    /// got back: used, as far as keyward knows, though the chain does not count them.
    pub fn ahead_of(&self, chain_id: u64, address: Address, chain_pending: u64) -> bool {
        let accounts = self.lock();
        accounts.get(&(chain_id, address)).is_some_and(|account| {
            (chain_pending..account.next)
                .any(|n| !account.held.contains(&n) && !account.released.contains(&n))
        })
    }

    /// Takes the chain's word that nonces from `chain_pending` on are unused: those keyward does
    /// not hold become free again. For after a reorg dropped mined transactions.
    pub fn rewind(&self, chain_id: u64, address: Address, chain_pending: u64) {
        let mut accounts = self.lock();
        if let Some(account) = accounts.get_mut(&(chain_id, address)) {
            for n in chain_pending..account.next {
                if !account.held.contains(&n) {
                    account.released.insert(n);
                }
            }
        }
    }

    /// Forgets what keyward believed about the account beyond what is still held, so the next
    /// reservation starts from the chain's pending nonce. For after a failed broadcast.
    pub fn resync(&self, chain_id: u64, address: Address) {
        let mut accounts = self.lock();
        if let Some(account) = accounts.get_mut(&(chain_id, address)) {
            account.released.clear();
            account.next = account.held.last().map_or(0, |n| n + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Address = Address::repeat_byte(1);

    #[test]
    fn concurrent_reservations_are_distinct_and_consecutive() {
        let book = std::sync::Arc::new(NonceBook::default());
        let threads: Vec<_> = (0..20)
            .map(|_| {
                let book = book.clone();
                std::thread::spawn(move || book.reserve(1, A, 5))
            })
            .collect();
        let mut nonces: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        nonces.sort_unstable();
        assert_eq!(nonces, (5..25).collect::<Vec<_>>());
    }

    #[test]
    fn released_nonces_are_reused_lowest_first_and_the_chain_is_the_floor() {
        let book = NonceBook::default();
        assert_eq!(book.reserve(1, A, 0), 0);
        assert_eq!(book.reserve(1, A, 0), 1);
        assert_eq!(book.reserve(1, A, 0), 2);
        book.release(1, A, 1);
        book.release(1, A, 0);
        assert_eq!(book.reserve(1, A, 0), 0);
        assert_eq!(book.reserve(1, A, 0), 1);
        assert_eq!(book.reserve(1, A, 0), 3);
        // Another wallet used nonces up to 9.
        assert_eq!(book.reserve(1, A, 10), 10);
        // Other chains and accounts are separate.
        assert_eq!(book.reserve(2, A, 0), 0);
    }

    #[test]
    fn nonces_a_reorg_dropped_are_handed_out_again() {
        let book = NonceBook::default();
        for _ in 0..4 {
            book.reserve(1, A, 0);
        }
        book.spent(1, A, 0);
        book.spent(1, A, 1);
        book.spent(1, A, 2);
        // Nonce 3 waits for its approval; a reorg dropped 1 and 2.
        assert!(!book.ahead_of(1, A, 3));
        assert!(book.ahead_of(1, A, 1));
        book.rewind(1, A, 1);
        assert!(!book.ahead_of(1, A, 1));
        assert_eq!(book.reserve(1, A, 1), 1);
        assert_eq!(book.reserve(1, A, 1), 2);
        assert_eq!(book.reserve(1, A, 1), 4);
    }

    #[test]
    fn resync_starts_again_from_the_chain() {
        let book = NonceBook::default();
        for _ in 0..3 {
            book.reserve(1, A, 0);
        }
        book.release(1, A, 2);
        book.spent(1, A, 0);
        book.spent(1, A, 1);
        book.resync(1, A);
        // Nonce 1 failed to broadcast, so the chain still says 1.
        assert_eq!(book.reserve(1, A, 1), 1);
    }
}
