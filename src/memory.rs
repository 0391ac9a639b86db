//! Memory that holds secrets: locked pages for what stays decrypted, and a scrub of the stack after
//! the code that handled secrets.
//!
//! **Locked pages.** An unlocked vault keeps all of its decrypted material (the envelope key, the
//! BIP-39 entropy, the imported keys and the TOTP secret) in one [`LockedBuffer`], the only secret
//! storage that lives longer than one operation. The buffer is one heap allocation a page larger
//! than it needs, and only the page-aligned window inside it is used and locked (`mlock(2)` through
//! `region::lock`, whose guard unlocks on drop), so every locked page belongs to that buffer alone.
//! That matters because the kernel locks whole pages and does not count: `munlock` of a page that
//! two locked objects share unlocks it for both, so a design that locked each small secret where
//! it happened to be allocated would unlock a neighbour's page when one of them was dropped. With
//! whole pages of its own, a buffer's unlock touches nothing else. On drop the whole allocation is
//! zeroized, then unlocked, then freed: unlocked before it is freed, so a page is never unlocked
//! after another buffer got it.
//!
//! Where the system refuses (`RLIMIT_MEMLOCK` too low without `CAP_IPC_LOCK`, or no mlock at all),
//! keyward warns once per process, naming the error and never a secret, and goes on with the
//! buffer unlocked: the secrets are still zeroized on drop, but could reach swap.
//!
//! **What is not locked,** because it lives for one operation and is zeroized when it ends: the
//! password while scrypt runs (and scrypt's own work buffers, which hold no key); values built from
//! the buffer for one derivation, signature or code check (bip39's `Mnemonic`, the seed, BIP-32
//! nodes, the k256 signing key, totp-rs's `Totp`); a payload being encoded to be sealed again.
//!
//! **The stack.** Moving a value in Rust copies it and leaves the old stack slot as it was; no
//! destructor sees it. [`scrub_stack`] overwrites the stack below its caller, where the code that
//! just returned ran, and is called after every operation on the unlocked vault (unlock, deriving
//! a key, signing, checking a code).
//!
//! **What a lock leaves behind.** `tests/memory.rs` runs the server's unlock, approval, signing and
//! lock paths on random canary secrets in a child process, then reads that process's own memory
//! (`/proc/self/mem`) for every key, the seed, the entropy, the phrase (whole, every three words,
//! bip39's word indices), the TOTP secret, the password, the envelope key and their hex, base32,
//! scalar-limb and HMAC-pad forms. After `keyward lock` and after the idle timeout it finds none;
//! before the lock it finds the unlocked secrets, on an mlocked page. Before the fixes that test
//! drove, it found the envelope key, AES round keys and the phrase's word indices on the unlock
//! thread's stack, and the password in the approver socket's read buffers and serde's
//! intermediate strings. What it cannot rule out:
//!
//! - **The approval page's request.** A password (and a code) typed on the page arrives in an
//!   HTTP POST body that hyper reads into its connection buffer and frees without zeroizing;
//!   keyward only sees slices of it and cannot wipe it without unsafe code or an HTTP server of
//!   its own. The test finds that one copy after a page approval and an idle lock, until the
//!   allocator hands the memory out again. `keyward approve` (the socket, read into a zeroized
//!   buffer) and `--password-file` leave no copy; with either, the page carries only the
//!   single-use code.
//! - **Deeper stacks than the scrub.** [`scrub_stack`] clears 64 KiB below its caller; a
//!   dependency that one day used more stack for a secret would leave what lies below that.
//! - **Forms the test does not search for:** intermediate hash states (scrypt's PBKDF2, BIP-32's
//!   HMAC-SHA512 midstates) are derived from secrets without being them; the test searches the
//!   secrets and their encodings, and the HMAC pad forms, not every derived value.
//! - **Outside this process:** kernel socket and pipe buffers, the terminal of `keyward approve`,
//!   and the memory of the client that sent the password.
//!
//! This module must never print or log a secret, and never unlock pages it did not lock.

use std::fmt;
use std::sync::Once;

use zeroize::Zeroize;

/// How much stack [`scrub_stack`] overwrites. Unlocking, deriving and signing run well within it
/// (their deepest secret-holding frames measured within 16 KiB of the caller in a debug build).
pub const SCRUB_STACK_BYTES: usize = 64 * 1024;

/// A fixed-size, zero-initialized byte buffer for secrets, on pages of its own that are locked in
/// RAM where the system allows. Zeroized on drop; `[REDACTED]` in `Debug`.
pub struct LockedBuffer {
    // Declared before `storage`, so it is dropped first: the pages are unlocked before they are
    // freed, never after another allocation may have got them.
    lock: Option<region::LockGuard>,
    storage: Box<[u8]>,
    start: usize,
    len: usize,
}

static WARNED: Once = Once::new();

impl LockedBuffer {
    /// A buffer of `len` zero bytes, locked in RAM if the system allows it.
    pub fn new(len: usize) -> Self {
        let page = region::page::size();
        let window = len.div_ceil(page) * page;
        let storage = if window == 0 {
            Box::default()
        } else {
            vec![0u8; window + page].into_boxed_slice()
        };
        let start = if window == 0 {
            0
        } else {
            storage.as_ptr().align_offset(page)
        };
        let lock = if window == 0 {
            None
        } else {
            match region::lock(storage[start..].as_ptr(), window) {
                Ok(guard) => Some(guard),
                Err(err) => {
                    WARNED.call_once(|| {
                        tracing::warn!(
                            "cannot lock the wallet's secret memory in RAM ({err}); the unlocked \
                             wallet's secrets could be written to swap. Raise the locked-memory \
                             limit (`ulimit -l`, or LimitMEMLOCK= for a systemd service) to at \
                             least 64 KiB, or use encrypted swap"
                        );
                    });
                    None
                }
            }
        };
        Self {
            lock,
            storage,
            start,
            len,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the buffer's pages are locked in RAM.
    pub fn is_locked(&self) -> bool {
        self.lock.is_some()
    }

    /// The bytes.
    ///
    /// # Security
    /// The returned slice is the secret itself: read it only on the path that needs it.
    pub fn expose_secret(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }

    /// The bytes, to write the secret in place.
    ///
    /// # Security
    /// Write secrets straight into it (decrypt in place, derive into it): a secret built elsewhere
    /// and copied in leaves its first copy behind.
    pub fn expose_secret_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + self.len]
    }
}

impl Drop for LockedBuffer {
    fn drop(&mut self) {
        self.storage.zeroize();
    }
}

impl fmt::Debug for LockedBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LockedBuffer([REDACTED], {} bytes, {})",
            self.len,
            if self.is_locked() {
                "locked"
            } else {
                "not locked"
            }
        )
    }
}

/// Overwrites [`SCRUB_STACK_BYTES`] of the stack below the caller's frame with zeros: the frames
/// of the functions the caller has just returned from, where moved secrets may still sit.
///
/// Call it right after an operation that handled secrets returned, from the function that called
/// it. It cannot reach the caller's own live frame or those above it.
#[inline(never)]
pub fn scrub_stack() {
    let mut area = [0u8; SCRUB_STACK_BYTES];
    // Volatile writes: the compiler may not drop them as dead stores.
    area.zeroize();
    std::hint::black_box(&mut area);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_page_aligned_inside_the_allocation_and_starts_zeroed() {
        let page = region::page::size();
        for len in [1, 31, page - 1, page, page + 1, 3 * page + 7] {
            let mut buffer = LockedBuffer::new(len);
            assert_eq!(buffer.len(), len);
            assert_eq!(buffer.expose_secret().as_ptr() as usize % page, 0, "{len}");
            assert!(buffer.expose_secret().iter().all(|b| *b == 0));
            buffer.expose_secret_mut().fill(0xa5);
            assert!(buffer.expose_secret().iter().all(|b| *b == 0xa5));
            assert!(!format!("{buffer:?}").contains("a5"));
        }
        let empty = LockedBuffer::new(0);
        assert!(empty.is_empty() && !empty.is_locked());
    }

    /// Root, or a locked-memory limit of a few pages (the usual 8 MiB, or even the old 64 KiB),
    /// lets a small buffer be locked; this is what keyward gets on a normal system.
    #[test]
    fn a_small_buffer_is_locked_where_the_limit_allows() {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Memlock);
        let root = rustix::process::geteuid().is_root();
        if !root && limit.current.is_some_and(|bytes| bytes < 64 * 1024) {
            return;
        }
        assert!(LockedBuffer::new(100).is_locked());
    }

    /// Runs this test binary again as a child with a locked-memory limit of zero (and, when it
    /// runs as root, without CAP_IPC_LOCK, which would ignore the limit): buffers still work,
    /// unlocked, and the warning is printed once, not once per buffer.
    #[test]
    fn when_locking_is_refused_it_warns_once_and_goes_on() {
        const CHILD: &str = "KEYWARD_TEST_MLOCK_CHILD";
        if std::env::var_os(CHILD).is_some() {
            let zero = rustix::process::Rlimit {
                current: Some(0),
                maximum: Some(0),
            };
            rustix::process::setrlimit(rustix::process::Resource::Memlock, zero).unwrap();
            let mut caps = rustix::thread::capabilities(None).unwrap();
            caps.effective
                .remove(rustix::thread::CapabilitySet::IPC_LOCK);
            caps.permitted
                .remove(rustix::thread::CapabilitySet::IPC_LOCK);
            rustix::thread::set_capabilities(None, caps).unwrap();
            let _ = tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .try_init();
            let mut first = LockedBuffer::new(64);
            let second = LockedBuffer::new(64);
            first.expose_secret_mut()[0] = 1;
            assert!(!first.is_locked() && !second.is_locked());
            assert_eq!(first.expose_secret()[0], 1);
            return;
        }
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "memory::tests::when_locking_is_refused_it_warns_once_and_goes_on",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert_eq!(
            stderr
                .matches("cannot lock the wallet's secret memory in RAM")
                .count(),
            1,
            "{stderr}"
        );
        assert!(stderr.contains("ulimit -l"), "{stderr}");
    }

    const PATTERN: [u8; 64] = [0xa5; 64];

    /// Leaves `PATTERN` in a dead frame 32 KiB below the caller and returns its address.
    #[inline(never)]
    fn leave_pattern_deep() -> u64 {
        let mut padding = [0u8; 32 * 1024];
        std::hint::black_box(&mut padding);
        leave_pattern()
    }

    #[inline(never)]
    fn leave_pattern() -> u64 {
        let mut local = PATTERN;
        std::hint::black_box(&mut local);
        local.as_ptr() as u64
    }

    /// Reads this process's memory at `address`, from another thread, as a plain file read.
    fn read_own(address: u64) -> [u8; 64] {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    use std::os::unix::fs::FileExt as _;
                    let mut bytes = [0u8; 64];
                    std::fs::File::open("/proc/self/mem")
                        .unwrap()
                        .read_exact_at(&mut bytes, address)
                        .unwrap();
                    bytes
                })
                .join()
                .unwrap()
        })
    }

    #[test]
    fn scrubbing_the_stack_erases_what_returned_functions_left() {
        let address = leave_pattern_deep();
        assert_eq!(
            read_own(address),
            PATTERN,
            "the pattern should still be on the stack: without it this test proves nothing"
        );
        let address = leave_pattern_deep();
        scrub_stack();
        assert_ne!(read_own(address), PATTERN);
    }
}
