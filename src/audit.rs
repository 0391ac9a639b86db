//! The audit log: an append-only record of what happened to each request (prepared, approved,
//! signed, broadcast...), hash-chained so that `keyward audit verify` finds any edit, reordering,
//! removal or cut-off end.
//!
//! It must never hold a secret, and never start a new chain over a log that does not verify: a
//! broken log is reported and left exactly as it was found, as evidence.
//!
//! # Format
//!
//! `audit.jsonl` in the state directory (mode 0600) holds one JSON object per line:
//!
//! ```text
//! {"seq":0,"time":1767225600,"kind":"prepared","request":"r-1","detail":{...},"prev":"000…0","hash":"5f…"}
//! ```
//!
//! - `seq` counts from 0 and grows by exactly 1 a line; `time` is in Unix seconds.
//! - `hash` is the lowercase hex SHA-256 of the line's exact bytes without its hash field: the line
//!   as written, with the final `,"hash":"<64 hex>"` removed (so the bytes hashed end in `}`). The
//!   hash field is always last, so the hashed bytes are the bytes on disk and nothing is ever
//!   re-serialized to check them: JSON key order, number formats and escapes cannot make two
//!   readings disagree.
//! - `prev` is the previous entry's `hash` (64 zeros for the first entry). As that hash covers the
//!   previous line's every byte, each entry is bound to everything before it.
//!
//! `audit.head` records where the chain ends, `{"entries":N,"hash":"<hash of entry N-1>"}` (for an
//! empty log the 64 zeros the first entry chains to), rewritten atomically after every append. It
//! catches a cut-off end, which the chain alone cannot. An append writes the line first and the
//! head second, so after a crash in between the log may run past the head; that hides nothing and
//! the next append repairs it, so verification accepts it. A log shorter than its head, or an entry
//! that differs from the hash the head recorded, does not verify.
//!
//! The chain has no key: it catches an editor, a tool that trims the file, or a damaged disk, but
//! whoever can write the state directory can also recompute the whole chain and its head. Keeping a
//! copy of `audit.head` elsewhere makes even that detectable.
//!
//! Appends are serialized by an internal mutex within a process and by `flock` on `audit.lock`
//! across processes; each append re-reads the end of the log under that lock, so several
//! processes can share one log.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead as _, BufReader, Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::files::{self, FileError};

/// The log, in the state directory.
pub const LOG_FILE: &str = "audit.jsonl";
/// Where the chain ends, in the state directory.
pub const HEAD_FILE: &str = "audit.head";
const LOCK_FILE: &str = "audit.lock";

/// The longest line, newline excluded, that is written or read. Entries hold a few public facts;
/// the bound keeps a damaged or hostile file from being read into memory whole.
pub const MAX_LINE: usize = 64 * 1024;
/// `audit.head` holds one short object.
const HEAD_LIMIT: u64 = 1024;

/// What the first entry's `prev` holds, and the head of an empty log.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The hash field, which ends every line: `,"hash":"` + 64 hex digits + `"}`.
const HASH_FIELD: &[u8] = b",\"hash\":\"";
const HASH_SUFFIX_LEN: usize = HASH_FIELD.len() + GENESIS.len() + 2;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot {action} {}: {cause}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        cause: io::Error,
    },

    #[error(transparent)]
    File(#[from] FileError),

    /// A line of `audit.jsonl` (counted from 1) is not the entry the chain expects there.
    #[error("audit.jsonl line {line}: {problem}")]
    Broken { line: u64, problem: String },

    #[error(
        "audit.jsonl ends after {entries} entries but audit.head records {head_entries} \
         (the end of the log was cut off)"
    )]
    Truncated { entries: u64, head_entries: u64 },

    #[error(
        "audit.head is missing but audit.jsonl holds {entries} entries \
         (the head was deleted, so a cut-off end would go unnoticed)"
    )]
    HeadMissing { entries: u64 },

    #[error(
        "audit.head does not match line {line} of audit.jsonl (the log or its head was rewritten)"
    )]
    HeadMismatch { line: u64 },

    #[error("audit.head is not a valid audit head ({reason})")]
    HeadUnreadable { reason: String },

    /// Found when appending, which reads only the end of the log.
    #[error("the last line of audit.jsonl {problem}")]
    TailDamaged { problem: String },

    #[error(
        "the audit log in {} does not verify: {cause}; keyward adds nothing to a log that does not \
         verify: run `keyward audit verify` for details, keep a copy of audit.jsonl and audit.head \
         as evidence, then move both aside to start a new log",
        dir.display()
    )]
    Refused {
        dir: PathBuf,
        cause: Box<AuditError>,
    },

    #[error(
        "an audit entry of {bytes} bytes is over the {MAX_LINE}-byte limit; \
         record fewer or shorter details"
    )]
    EntryTooLarge { bytes: usize },

    #[error("an audit entry's detail must be a JSON object of public facts, not {found}")]
    DetailNotObject { found: &'static str },
}

impl AuditError {
    /// Whether the log itself is damaged or was changed outside keyward, as opposed to an I/O
    /// failure or a caller's mistake.
    pub fn is_broken_log(&self) -> bool {
        match self {
            Self::Broken { .. }
            | Self::Truncated { .. }
            | Self::HeadMissing { .. }
            | Self::HeadMismatch { .. }
            | Self::HeadUnreadable { .. }
            | Self::TailDamaged { .. }
            | Self::Refused { .. } => true,
            Self::Io { .. }
            | Self::File(_)
            | Self::EntryTooLarge { .. }
            | Self::DetailNotObject { .. } => false,
        }
    }
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> AuditError + 'a {
    move |cause| AuditError::Io {
        action,
        path: path.to_owned(),
        cause,
    }
}

/// Wraps a broken-log error with the advice to verify, so that a caller about to append learns
/// why nothing was written; other errors pass through.
fn refuse(dir: &Path, err: AuditError) -> AuditError {
    if err.is_broken_log() {
        AuditError::Refused {
            dir: dir.to_owned(),
            cause: Box::new(err),
        }
    } else {
        err
    }
}

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Prepared,
    Approved,
    Rejected,
    Expired,
    Signed,
    Broadcast,
    Mined,
    Failed,
    PolicyDenied,
    TotpFailed,
    Lockout,
    Unlock,
    Lock,
    ServerStarted,
    AddressBookChanged,
    /// An HTTP access token was created or revoked (its name only).
    TokensChanged,
    /// The outbound guard refused a request (a host not allowed, or a secret in it).
    EgressRefused,
}

/// An entry without its hash: what is serialized and hashed. The field order is the order on disk.
#[derive(Serialize)]
struct Body<'a> {
    seq: u64,
    time: u64,
    kind: Kind,
    request: Option<&'a str>,
    detail: &'a Value,
    prev: &'a str,
}

/// An entry as read back. Every field is typed, and no other field is allowed, so a line keyward
/// did not write is refused even when its hash was recomputed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    seq: u64,
    #[serde(rename = "time")]
    _time: u64,
    #[serde(rename = "kind")]
    _kind: Kind,
    #[serde(rename = "request")]
    _request: Option<String>,
    #[serde(rename = "detail")]
    _detail: Map<String, Value>,
    prev: String,
    hash: String,
}

/// Where a chain ends: how many entries it has and the hash of the last one (or [`GENESIS`]).
/// This is the content of `audit.head`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Head {
    entries: u64,
    hash: String,
}

impl Head {
    fn empty() -> Self {
        Self {
            entries: 0,
            hash: GENESIS.to_owned(),
        }
    }
}

/// What a successful verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub entries: u64,
    /// The last entry's hash, `None` for an empty log.
    pub last_hash: Option<String>,
}

/// An open audit log, ready to append to. Cheap to share between threads by reference.
#[derive(Debug)]
pub struct AuditLog {
    dir: PathBuf,
    /// The end of the chain as this handle last saw it: the log may only have grown since.
    seen: Mutex<Head>,
}

impl AuditLog {
    /// Opens the log in `state_dir`, creating the directory (mode 0700) and the log (mode 0600)
    /// if missing. An existing log is verified in full first; one that does not verify is refused
    /// with [`AuditError::Refused`], and nothing is written.
    pub fn open(state_dir: &Path) -> Result<Self, AuditError> {
        files::create_private_dir(state_dir)?;
        let _lock = lock(state_dir, Lock::Exclusive)?;
        let (summary, head_on_disk) = check(state_dir).map_err(|err| refuse(state_dir, err))?;

        let log_path = state_dir.join(LOG_FILE);
        let created = match OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(&log_path)
        {
            Ok(_) => true,
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => false,
            Err(err) => return Err(io_error("create", &log_path)(err)),
        };
        let head = Head {
            entries: summary.entries,
            hash: summary.last_hash.unwrap_or_else(|| GENESIS.to_owned()),
        };
        // Writing the head also makes a newly created log's directory entry durable, and repairs a
        // head that an interrupted append left one entry behind.
        if created || head_on_disk.as_ref() != Some(&head) {
            write_head(state_dir, &head)?;
        }
        Ok(Self {
            dir: state_dir.to_owned(),
            seen: Mutex::new(head),
        })
    }

    /// The state directory this log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one entry and makes it durable before returning.
    ///
    /// `detail` must be a JSON object of public facts only (addresses, amounts, chain ids,
    /// transaction hashes, reasons): the log is readable by anyone the user shows it to, and
    /// callers never pass keys, phrases, passwords, TOTP secrets or codes, or approval tokens.
    /// `request` is the id of the pending request the entry belongs to, if any.
    ///
    /// Safe to call from several threads and several processes at once. Refused, without writing
    /// anything, when the end of the log is not what this handle or `audit.head` last recorded.
    pub fn record(
        &self,
        kind: Kind,
        request: Option<&str>,
        detail: Value,
    ) -> Result<(), AuditError> {
        if !detail.is_object() {
            return Err(AuditError::DetailNotObject {
                found: json_type(&detail),
            });
        }
        // The mutex orders this process's appends; the flock orders them against other processes.
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let _lock = lock(&self.dir, Lock::Exclusive)?;

        let log_path = self.dir.join(LOG_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&log_path)
            .map_err(io_error("open", &log_path))?;
        let tail = read_tail(&mut file, &log_path).map_err(|err| refuse(&self.dir, err))?;
        let head = read_head(&self.dir).map_err(|err| refuse(&self.dir, err))?;
        check_tail(&tail, head.as_ref(), &seen).map_err(|err| refuse(&self.dir, err))?;

        let (line, hash) = encode(&Body {
            seq: tail.entries,
            time: unix_now(),
            kind,
            request,
            detail: &detail,
            prev: &tail.hash,
        })?;
        // One write to an O_APPEND file, under the lock: the line lands whole at the end, or
        // (a full disk, a file size limit) part of it is cut off again, so a failed append never
        // leaves a damaged last line that would stop every later one.
        let end = file
            .metadata()
            .map_err(io_error("inspect", &log_path))?
            .len();
        let appended = match file.write(&line) {
            Ok(written) if written == line.len() => file.sync_data(),
            Ok(written) => Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("only {written} of {} bytes were written", line.len()),
            )),
            Err(err) => Err(err),
        };
        if let Err(err) = appended {
            let _ = file.set_len(end);
            return Err(io_error("append to", &log_path)(err));
        }

        let next = Head {
            entries: tail.entries + 1,
            hash,
        };
        write_head(&self.dir, &next)?;
        *seen = next;
        Ok(())
    }
}

/// Verifies the whole log in `state_dir`: every line is an entry, `seq` counts up from 0 by one,
/// each `prev` is the previous `hash`, each `hash` matches its line, and the log reaches the entry
/// `audit.head` records. A directory without a log verifies as empty. Reads only; waits for an
/// append in progress to finish, so a running server's log can be checked.
pub fn verify(state_dir: &Path) -> Result<Summary, AuditError> {
    let _lock = lock(state_dir, Lock::Shared)?;
    check(state_dir).map(|(summary, _)| summary)
}

/// [`verify`] without the lock, for callers that hold it. Also returns the head as read.
fn check(dir: &Path) -> Result<(Summary, Option<Head>), AuditError> {
    // The head first: an append writes the line before the head, so a head read before the log
    // never runs past it.
    let head = read_head(dir)?;
    let log_path = dir.join(LOG_FILE);
    let file = match File::open(&log_path) {
        Ok(file) => Some(file),
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(err) => return Err(io_error("read", &log_path)(err)),
    };

    let mut end = Head::empty();
    let mut hash_at_head = None;
    if let Some(file) = file {
        let mut reader = BufReader::new(file);
        let mut bytes = Vec::new();
        loop {
            bytes.clear();
            let read = (&mut reader)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut bytes)
                .map_err(io_error("read", &log_path))?;
            if read == 0 {
                break;
            }
            let line = end.entries + 1;
            let broken = |problem: String| AuditError::Broken { line, problem };
            if bytes.pop() != Some(b'\n') {
                return Err(broken(if read > MAX_LINE {
                    format!("the line is longer than {MAX_LINE} bytes, so keyward did not write it")
                } else {
                    "the line is incomplete: it does not end in a newline (an append was \
                     interrupted, or the file was cut mid-line)"
                        .to_owned()
                }));
            }
            let entry = parse_line(&bytes).map_err(broken)?;
            if entry.seq != end.entries {
                return Err(broken(format!(
                    "the entry is numbered {} where {} was expected \
                     (lines were removed, inserted or reordered)",
                    entry.seq, end.entries
                )));
            }
            if entry.prev != end.hash {
                return Err(broken(if line == 1 {
                    "prev is not the start of a chain (lines were removed from the start)"
                        .to_owned()
                } else {
                    format!(
                        "prev does not match line {} (lines were reordered, removed or inserted)",
                        line - 1
                    )
                }));
            }
            end = Head {
                entries: line,
                hash: entry.hash,
            };
            if head.as_ref().is_some_and(|head| head.entries == line) {
                hash_at_head = Some(end.hash.clone());
            }
        }
    }

    match &head {
        None if end.entries > 0 => {
            return Err(AuditError::HeadMissing {
                entries: end.entries,
            });
        }
        None => {}
        Some(head) if head.entries > end.entries => {
            return Err(AuditError::Truncated {
                entries: end.entries,
                head_entries: head.entries,
            });
        }
        Some(head) if head.entries == 0 && head.hash != GENESIS => {
            return Err(AuditError::HeadUnreadable {
                reason: "it records no entries but a hash other than the chain's start".to_owned(),
            });
        }
        Some(head) if head.entries > 0 && hash_at_head.as_deref() != Some(head.hash.as_str()) => {
            return Err(AuditError::HeadMismatch { line: head.entries });
        }
        Some(_) => {}
    }
    let summary = Summary {
        entries: end.entries,
        last_hash: (end.entries > 0).then_some(end.hash),
    };
    Ok((summary, head))
}

/// Checks one line (without its newline) on its own: it is an entry, and its hash matches its
/// bytes. The problem is returned as text for [`AuditError::Broken`].
fn parse_line(line: &[u8]) -> Result<Entry, String> {
    let entry: Entry = serde_json::from_slice(line).map_err(|err| {
        // serde_json appends "at line 1 column N", which reads as a line of the log.
        let message = err.to_string();
        let reason = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(reason, _)| reason);
        format!(
            "not an audit entry ({reason}, at column {}): something other than keyward wrote it",
            err.column()
        )
    })?;
    let body_len = line.len().saturating_sub(HASH_SUFFIX_LEN);
    let (body, suffix) = line.split_at(body_len);
    let expected_suffix = [HASH_FIELD, entry.hash.as_bytes(), b"\"}"].concat();
    if suffix != expected_suffix.as_slice() {
        return Err(
            "the hash field is not 64 hex digits at the end of the line (the line was edited)"
                .to_owned(),
        );
    }
    let mut hasher = Sha256::new();
    hasher.update(body);
    hasher.update(b"}");
    if hex::encode(hasher.finalize()) != entry.hash {
        return Err("the entry's hash does not match its content (the line was edited)".to_owned());
    }
    Ok(entry)
}

/// Serializes an entry to its line, newline included, and returns the line and its hash.
fn encode(body: &Body<'_>) -> Result<(Vec<u8>, String), AuditError> {
    #[expect(
        clippy::expect_used,
        reason = "a struct of integers, strings, a unit enum and a serde_json::Value (whose map \
                  keys are always strings) always serializes"
    )]
    let mut line = serde_json::to_vec(body).expect("an audit entry serializes");
    let hash = hex::encode(Sha256::digest(&line));
    // Replace the closing brace with the hash field, which is then the last field of the line.
    line.pop();
    line.extend_from_slice(HASH_FIELD);
    line.extend_from_slice(hash.as_bytes());
    line.extend_from_slice(b"\"}");
    if line.len() > MAX_LINE {
        return Err(AuditError::EntryTooLarge { bytes: line.len() });
    }
    line.push(b'\n');
    Ok((line, hash))
}

/// Reads the last entry of the log without reading the rest: at most one line and two newlines.
fn read_tail(file: &mut File, path: &Path) -> Result<Head, AuditError> {
    let len = file.metadata().map_err(io_error("inspect", path))?.len();
    if len == 0 {
        return Ok(Head::empty());
    }
    let window = len.min(MAX_LINE as u64 + 2);
    let mut bytes = vec![0; window as usize];
    file.seek(SeekFrom::Start(len - window))
        .and_then(|_| file.read_exact(&mut bytes))
        .map_err(io_error("read", path))?;
    let damaged = |problem: String| AuditError::TailDamaged { problem };
    if bytes.pop() != Some(b'\n') {
        return Err(damaged(
            "is incomplete: it does not end in a newline (an append was interrupted, or \
             something other than keyward wrote to the log)"
                .to_owned(),
        ));
    }
    let start = match bytes.iter().rposition(|&byte| byte == b'\n') {
        Some(newline) => newline + 1,
        None if window == len => 0,
        None => {
            return Err(damaged(format!(
                "is longer than {MAX_LINE} bytes, so keyward did not write it"
            )));
        }
    };
    let entry = parse_line(&bytes[start..]).map_err(|problem| damaged(format!("is {problem}")))?;
    let entries = entry
        .seq
        .checked_add(1)
        .ok_or_else(|| damaged("is numbered past the largest sequence number".to_owned()))?;
    Ok(Head {
        entries,
        hash: entry.hash,
    })
}

/// Before an append: the end of the log must be at or past what `audit.head` and this handle
/// last recorded, and the same entry where they overlap.
fn check_tail(tail: &Head, head: Option<&Head>, seen: &Head) -> Result<(), AuditError> {
    match head {
        None if tail.entries > 0 => {
            return Err(AuditError::HeadMissing {
                entries: tail.entries,
            });
        }
        None => {}
        Some(head) if head.entries > tail.entries => {
            return Err(AuditError::Truncated {
                entries: tail.entries,
                head_entries: head.entries,
            });
        }
        Some(head) if head.entries == tail.entries && head.hash != tail.hash => {
            return Err(AuditError::HeadMismatch { line: head.entries });
        }
        Some(_) => {}
    }
    if seen.entries > tail.entries {
        return Err(AuditError::Truncated {
            entries: tail.entries,
            head_entries: seen.entries,
        });
    }
    if seen.entries == tail.entries && seen.hash != tail.hash {
        return Err(AuditError::Broken {
            line: tail.entries,
            problem: "the last entry changed after keyward wrote it (the line was edited)"
                .to_owned(),
        });
    }
    Ok(())
}

/// Reads `audit.head`; `None` when there is none.
fn read_head(dir: &Path) -> Result<Option<Head>, AuditError> {
    let path = dir.join(HEAD_FILE);
    let bytes = match files::read_limited(&path, HEAD_LIMIT) {
        Ok(bytes) => bytes,
        Err(FileError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(FileError::TooLarge { .. }) => {
            return Err(AuditError::HeadUnreadable {
                reason: format!("it is larger than {HEAD_LIMIT} bytes"),
            });
        }
        Err(err) => return Err(err.into()),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|err| AuditError::HeadUnreadable {
            reason: err.to_string(),
        })
}

fn write_head(dir: &Path, head: &Head) -> Result<(), AuditError> {
    #[expect(
        clippy::expect_used,
        reason = "a struct of an integer and a string always serializes"
    )]
    let mut bytes = serde_json::to_vec(head).expect("an audit head serializes");
    bytes.push(b'\n');
    files::write_atomic(&dir.join(HEAD_FILE), &bytes)?;
    Ok(())
}

#[derive(Clone, Copy)]
enum Lock {
    /// For appending: creates the lock file if needed.
    Exclusive,
    /// For reading: a missing lock file (or directory) means no append ever ran, so no lock.
    Shared,
}

/// Takes `audit.lock`, waiting for the holder; released when the returned file is dropped.
fn lock(dir: &Path, kind: Lock) -> Result<Option<File>, AuditError> {
    let path = dir.join(LOCK_FILE);
    let opened = match kind {
        Lock::Exclusive => OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path),
        Lock::Shared => File::open(&path),
    };
    let file = match opened {
        Ok(file) => file,
        Err(err) if matches!(kind, Lock::Shared) && err.kind() == io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(err) => return Err(io_error("open the lock file", &path)(err)),
    };
    let operation = match kind {
        Lock::Exclusive => rustix::fs::FlockOperation::LockExclusive,
        Lock::Shared => rustix::fs::FlockOperation::LockShared,
    };
    loop {
        match rustix::fs::flock(&file, operation) {
            Ok(()) => return Ok(Some(file)),
            Err(rustix::io::Errno::INTR) => {}
            Err(err) => return Err(io_error("lock", &path)(err.into())),
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::fs;
    use std::os::unix::fs::PermissionsExt as _;

    fn record_n(log: &AuditLog, from: u64, count: u64) {
        for i in from..from + count {
            log.record(
                Kind::Prepared,
                Some(&format!("req-{i}")),
                json!({"amount": format!("{i}.5 ETH"), "to": "0x00000000000000000000000000000000000000aa"}),
            )
            .unwrap();
        }
    }

    fn ten_entries() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        record_n(&log, 0, 10);
        dir
    }

    fn lines(dir: &Path) -> Vec<String> {
        fs::read_to_string(dir.join(LOG_FILE))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn write_lines(dir: &Path, lines: &[String]) {
        let mut text = lines.join("\n");
        if !lines.is_empty() {
            text.push('\n');
        }
        fs::write(dir.join(LOG_FILE), text).unwrap();
    }

    fn broken_line(err: &AuditError) -> u64 {
        match err {
            AuditError::Broken { line, .. } => *line,
            other => panic!("expected a broken line, got: {other}"),
        }
    }

    #[test]
    fn ten_entries_verify_as_ten() {
        let dir = ten_entries();
        let summary = verify(dir.path()).unwrap();
        assert_eq!(summary.entries, 10);
        let last: Value = serde_json::from_str(&lines(dir.path())[9]).unwrap();
        assert_eq!(summary.last_hash.as_deref(), last["hash"].as_str());
        assert_eq!(last["seq"], 9);
        assert_eq!(last["kind"], "prepared");
        assert_eq!(last["request"], "req-9");
    }

    #[test]
    fn the_hash_covers_the_line_as_written_without_its_hash_field() {
        let dir = ten_entries();
        let mut prev = GENESIS.to_owned();
        for line in lines(dir.path()) {
            let entry: Value = serde_json::from_str(&line).unwrap();
            let hash = entry["hash"].as_str().unwrap();
            let without = line.replace(&format!(",\"hash\":\"{hash}\""), "");
            assert_eq!(hex::encode(Sha256::digest(without.as_bytes())), hash);
            assert_eq!(entry["prev"], prev.as_str());
            prev = hash.to_owned();
        }
    }

    #[test]
    fn an_edited_detail_is_reported_at_its_line() {
        let dir = ten_entries();
        let mut log = lines(dir.path());
        log[3] = log[3].replace("3.5 ETH", "9.5 ETH");
        write_lines(dir.path(), &log);
        let err = verify(dir.path()).unwrap_err();
        assert_eq!(broken_line(&err), 4);
        assert_eq!(
            err.to_string(),
            "audit.jsonl line 4: the entry's hash does not match its content (the line was edited)"
        );
    }

    #[test]
    fn swapped_lines_are_reported() {
        let dir = ten_entries();
        let mut log = lines(dir.path());
        log.swap(2, 3);
        write_lines(dir.path(), &log);
        let err = verify(dir.path()).unwrap_err();
        assert_eq!(broken_line(&err), 3);
        assert!(err.to_string().contains("reordered"), "{err}");
    }

    #[test]
    fn a_deleted_middle_line_is_reported() {
        let dir = ten_entries();
        let mut log = lines(dir.path());
        log.remove(4);
        write_lines(dir.path(), &log);
        let err = verify(dir.path()).unwrap_err();
        assert_eq!(broken_line(&err), 5);
        assert!(err.to_string().contains("removed"), "{err}");
    }

    #[test]
    fn a_deleted_first_line_is_reported() {
        let dir = ten_entries();
        let mut log = lines(dir.path());
        log.remove(0);
        write_lines(dir.path(), &log);
        assert_eq!(broken_line(&verify(dir.path()).unwrap_err()), 1);
    }

    #[test]
    fn a_renumbered_entry_with_a_valid_hash_but_wrong_prev_is_reported() {
        let dir = ten_entries();
        let mut log = lines(dir.path());
        let detail = json!({"forged": true});
        let (forged, _) = encode(&Body {
            seq: 4,
            time: 0,
            kind: Kind::Approved,
            request: None,
            detail: &detail,
            prev: GENESIS,
        })
        .unwrap();
        log[4] = String::from_utf8(forged).unwrap().trim_end().to_owned();
        write_lines(dir.path(), &log);
        let err = verify(dir.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "audit.jsonl line 5: prev does not match line 4 \
             (lines were reordered, removed or inserted)"
        );
    }

    #[test]
    fn a_cut_off_end_is_caught_by_the_head() {
        let dir = ten_entries();
        let log = lines(dir.path());
        write_lines(dir.path(), &log[..8]);
        let err = verify(dir.path()).unwrap_err();
        assert!(
            matches!(
                err,
                AuditError::Truncated {
                    entries: 8,
                    head_entries: 10
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("cut off"), "{err}");
    }

    #[test]
    fn an_emptied_or_deleted_log_is_caught_by_the_head() {
        let dir = ten_entries();
        write_lines(dir.path(), &[]);
        assert!(matches!(
            verify(dir.path()),
            Err(AuditError::Truncated { entries: 0, .. })
        ));
        fs::remove_file(dir.path().join(LOG_FILE)).unwrap();
        assert!(matches!(
            verify(dir.path()),
            Err(AuditError::Truncated { entries: 0, .. })
        ));
    }

    #[test]
    fn appended_garbage_is_reported() {
        let dir = ten_entries();
        let path = dir.path().join(LOG_FILE);
        let original = fs::read(&path).unwrap();

        fs::write(&path, [original.as_slice(), b"{\"seq\":10}\n"].concat()).unwrap();
        let err = verify(dir.path()).unwrap_err();
        assert_eq!(broken_line(&err), 11);
        assert!(err.to_string().contains("not an audit entry"), "{err}");

        fs::write(&path, [original.as_slice(), b"garbage"].concat()).unwrap();
        let err = verify(dir.path()).unwrap_err();
        assert_eq!(broken_line(&err), 11);
        assert!(err.to_string().contains("incomplete"), "{err}");
    }

    #[test]
    fn an_overlong_line_is_refused_without_reading_it_whole() {
        let dir = ten_entries();
        let path = dir.path().join(LOG_FILE);
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend(std::iter::repeat_n(b'x', MAX_LINE * 4));
        bytes.push(b'\n');
        fs::write(&path, bytes).unwrap();
        let err = verify(dir.path()).unwrap_err();
        assert_eq!(broken_line(&err), 11);
        assert!(err.to_string().contains("longer than 65536 bytes"), "{err}");
    }

    #[test]
    fn an_entry_over_the_line_limit_is_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        let err = log
            .record(Kind::Failed, None, json!({"reason": "x".repeat(MAX_LINE)}))
            .unwrap_err();
        assert!(matches!(err, AuditError::EntryTooLarge { .. }), "{err}");
        assert_eq!(verify(dir.path()).unwrap().entries, 0);
        record_n(&log, 0, 1);
        assert_eq!(verify(dir.path()).unwrap().entries, 1);
    }

    #[test]
    fn a_detail_that_is_not_an_object_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        let err = log.record(Kind::Lock, None, json!("a string")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "an audit entry's detail must be a JSON object of public facts, not a string"
        );
    }

    #[test]
    fn a_missing_head_is_reported() {
        let dir = ten_entries();
        fs::remove_file(dir.path().join(HEAD_FILE)).unwrap();
        assert!(matches!(
            verify(dir.path()),
            Err(AuditError::HeadMissing { entries: 10 })
        ));
    }

    #[test]
    fn a_head_that_names_another_entry_is_reported() {
        let dir = ten_entries();
        let head = Head {
            entries: 5,
            hash: GENESIS.to_owned(),
        };
        write_head(dir.path(), &head).unwrap();
        assert!(matches!(
            verify(dir.path()),
            Err(AuditError::HeadMismatch { line: 5 })
        ));
    }

    #[test]
    fn a_head_left_behind_by_an_interrupted_append_is_accepted_and_repaired() {
        let dir = ten_entries();
        let head_path = dir.path().join(HEAD_FILE);
        let behind = fs::read(&head_path).unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        record_n(&log, 10, 1);
        // As if the process died between appending entry 11 and updating the head.
        fs::write(&head_path, &behind).unwrap();
        assert_eq!(verify(dir.path()).unwrap().entries, 11);

        drop(log);
        let log = AuditLog::open(dir.path()).unwrap();
        let head: Head = serde_json::from_slice(&fs::read(&head_path).unwrap()).unwrap();
        assert_eq!(head.entries, 11);
        record_n(&log, 11, 1);
        assert_eq!(verify(dir.path()).unwrap().entries, 12);
    }

    #[test]
    fn a_missing_log_verifies_as_empty_without_creating_anything() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let summary = verify(&state).unwrap();
        assert_eq!(
            summary,
            Summary {
                entries: 0,
                last_hash: None
            }
        );
        assert!(!state.exists());
    }

    #[test]
    fn open_creates_owner_only_files_in_a_private_directory() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let log = AuditLog::open(&state).unwrap();
        record_n(&log, 0, 1);
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(&state.join(LOG_FILE)), 0o600);
        assert_eq!(mode(&state.join(HEAD_FILE)), 0o600);
        assert_eq!(mode(&state.join(LOCK_FILE)), 0o600);
    }

    #[test]
    fn reopening_continues_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let first = AuditLog::open(dir.path()).unwrap();
        record_n(&first, 0, 3);
        drop(first);
        let second = AuditLog::open(dir.path()).unwrap();
        record_n(&second, 3, 4);
        let summary = verify(dir.path()).unwrap();
        assert_eq!(summary.entries, 7);
        let fourth: Value = serde_json::from_str(&lines(dir.path())[3]).unwrap();
        let third: Value = serde_json::from_str(&lines(dir.path())[2]).unwrap();
        assert_eq!(fourth["prev"], third["hash"]);
    }

    #[test]
    fn two_handles_on_one_directory_append_concurrently() {
        let dir = tempfile::tempdir().unwrap();
        // Two handles stand for two processes: each has its own lock file descriptor and its own
        // idea of where the chain ends.
        let one = AuditLog::open(dir.path()).unwrap();
        let two = AuditLog::open(dir.path()).unwrap();
        std::thread::scope(|scope| {
            for (log, request) in [(&one, "one"), (&two, "two")] {
                scope.spawn(move || {
                    for i in 0..50 {
                        log.record(Kind::Signed, Some(request), json!({"i": i}))
                            .unwrap();
                    }
                });
            }
        });
        assert_eq!(verify(dir.path()).unwrap().entries, 100);
        let log = lines(dir.path());
        for request in ["one", "two"] {
            let count = log
                .iter()
                .filter(|line| line.contains(&format!("\"request\":\"{request}\"")))
                .count();
            assert_eq!(count, 50);
        }
    }

    #[test]
    fn one_handle_is_safe_to_share_between_threads() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| record_n(&log, 0, 25));
            }
        });
        assert_eq!(verify(dir.path()).unwrap().entries, 100);
    }

    #[test]
    fn open_refuses_a_broken_log_and_points_to_verify() {
        let dir = ten_entries();
        let mut log = lines(dir.path());
        log[6] = log[6].replace("6.5 ETH", "0.5 ETH");
        write_lines(dir.path(), &log);
        let before = fs::read(dir.path().join(LOG_FILE)).unwrap();
        let head_before = fs::read(dir.path().join(HEAD_FILE)).unwrap();

        let err = AuditLog::open(dir.path()).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("run `keyward audit verify`"), "{message}");
        assert!(message.contains("audit.jsonl line 7"), "{message}");
        assert!(err.is_broken_log());
        // The evidence is left exactly as it was.
        assert_eq!(fs::read(dir.path().join(LOG_FILE)).unwrap(), before);
        assert_eq!(fs::read(dir.path().join(HEAD_FILE)).unwrap(), head_before);
    }

    #[test]
    fn an_open_log_refuses_to_append_after_its_end_was_edited() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        record_n(&log, 0, 3);
        let mut text = lines(dir.path());
        text[2] = text[2].replace("2.5 ETH", "7.5 ETH");
        write_lines(dir.path(), &text);
        let err = log.record(Kind::Mined, None, json!({})).unwrap_err();
        assert!(err.to_string().contains("keyward audit verify"), "{err}");
        assert_eq!(lines(dir.path()).len(), 3);
    }

    #[test]
    fn an_open_log_refuses_to_append_after_its_end_was_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        record_n(&log, 0, 3);
        write_lines(dir.path(), &lines(dir.path())[..2]);
        // The head agrees with the cut log, as if both were rolled back together.
        let line: Value = serde_json::from_str(&lines(dir.path())[1]).unwrap();
        let head = Head {
            entries: 2,
            hash: line["hash"].as_str().unwrap().to_owned(),
        };
        write_head(dir.path(), &head).unwrap();
        let err = log.record(Kind::Mined, None, json!({})).unwrap_err();
        assert!(err.to_string().contains("cut off"), "{err}");
    }

    #[test]
    fn every_kind_is_written_in_snake_case() {
        assert_eq!(
            serde_json::to_value(Kind::PolicyDenied).unwrap(),
            "policy_denied"
        );
        assert_eq!(
            serde_json::to_value(Kind::AddressBookChanged).unwrap(),
            "address_book_changed"
        );
        assert_eq!(
            serde_json::from_value::<Kind>(json!("totp_failed")).unwrap(),
            Kind::TotpFailed
        );
    }
}
