//! The terminal approver's end: a unix socket in the state directory, mode 0600, on which
//! `keyward approve` lists pending requests and answers them.
//!
//! One JSON object per line each way. `{"op":"list"}` returns every pending request with its full
//! review; `{"op":"answer", "requests":[{"id":…, "digest":…}], "approve":true, "code":…,
//! "password":…}` answers them with one code; `{"op":"lock"}` locks the wallet, wiping its
//! decrypted secrets, and says whether it was unlocked (`keyward lock`). Only a process of the
//! same user can connect: the socket's mode says so, and the peer's uid is checked too.
//!
//! A line can hold the password and a code, so it is read into one buffer of fixed size that is
//! never reallocated and is zeroized when the session ends, and the two fields are taken from it as
//! raw JSON text and unescaped by keyward into zeroized strings of their final size. serde would
//! otherwise leave copies in memory no one zeroizes: an internally tagged enum buffers every string
//! field, and serde_json unescapes into a scratch buffer of its own.
//!
//! This module must never write a code or password anywhere: they go straight to the desk.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use alloy::primitives::B256;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use zeroize::{Zeroize, Zeroizing};

use super::{Answer, Desk};
use crate::secret::Secret;

pub const SOCKET: &str = "approve.sock";
/// The longest line accepted.
const MAX_LINE: u64 = 16 * 1024;

/// A command, parsed from one line.
#[derive(Debug)]
pub enum Command {
    List,
    Lock,
    Answer {
        requests: Vec<Chosen>,
        approve: bool,
        code: Zeroizing<String>,
        password: Option<Zeroizing<String>>,
    },
}

/// A line as written. The secret fields stay raw JSON text borrowed from the line buffer.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    op: Op,
    #[serde(default)]
    requests: Option<Vec<Chosen>>,
    #[serde(default)]
    approve: Option<bool>,
    #[serde(default, borrow)]
    code: Option<&'a RawValue>,
    #[serde(default, borrow)]
    password: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Op {
    List,
    Lock,
    Answer,
}

impl Command {
    /// Parses one line (without its newline).
    pub fn parse(line: &[u8]) -> Result<Self, &'static str> {
        let line: Line<'_> =
            serde_json::from_slice(line).map_err(|_| "not a command keyward understands")?;
        let only_op = line.requests.is_none()
            && line.approve.is_none()
            && line.code.is_none()
            && line.password.is_none();
        match line.op {
            Op::List if only_op => Ok(Self::List),
            Op::Lock if only_op => Ok(Self::Lock),
            Op::List | Op::Lock => Err("this command takes no other field"),
            Op::Answer => Ok(Self::Answer {
                requests: line.requests.ok_or("an answer needs `requests`")?,
                approve: line.approve.ok_or("an answer needs `approve`")?,
                code: match line.code {
                    Some(code) => json_string(code)?,
                    None => Zeroizing::new(String::new()),
                },
                password: line.password.map(json_string).transpose()?,
            }),
        }
    }
}

/// Unescapes a JSON string straight into a zeroized `String` of its final size (an escape is never
/// shorter than what it stands for, so the string is never reallocated).
fn json_string(raw: &RawValue) -> Result<Zeroizing<String>, &'static str> {
    const NOT_A_STRING: &str = "the code and the password are JSON strings";
    let inner = raw
        .get()
        .as_bytes()
        .strip_prefix(b"\"")
        .and_then(|t| t.strip_suffix(b"\""))
        .ok_or(NOT_A_STRING)?;
    let hex4 = |at: usize| -> Result<u32, &'static str> {
        let digits = inner.get(at..at + 4).ok_or(NOT_A_STRING)?;
        digits.iter().try_fold(0u32, |value, digit| {
            Ok(value * 16 + char::from(*digit).to_digit(16).ok_or(NOT_A_STRING)?)
        })
    };
    let mut out = Zeroizing::new(String::with_capacity(inner.len()));
    let mut at = 0;
    while at < inner.len() {
        let escape = inner[at..]
            .iter()
            .position(|b| *b == b'\\')
            .map_or(inner.len(), |offset| at + offset);
        out.push_str(std::str::from_utf8(&inner[at..escape]).map_err(|_| NOT_A_STRING)?);
        if escape == inner.len() {
            break;
        }
        let kind = *inner.get(escape + 1).ok_or(NOT_A_STRING)?;
        at = escape + 2;
        out.push(match kind {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let high = hex4(at)?;
                at += 4;
                let code = if (0xd800..0xdc00).contains(&high) {
                    let low = match inner.get(at..at + 2) {
                        Some(b"\\u") => hex4(at + 2)?,
                        _ => return Err(NOT_A_STRING),
                    };
                    at += 6;
                    if !(0xdc00..0xe000).contains(&low) {
                        return Err(NOT_A_STRING);
                    }
                    0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00)
                } else {
                    high
                };
                char::from_u32(code).ok_or(NOT_A_STRING)?
            }
            _ => return Err(NOT_A_STRING),
        });
    }
    Ok(out)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Chosen {
    pub id: String,
    pub digest: B256,
}

/// A pending request as the approver shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Listed {
    pub id: String,
    pub title: String,
    pub review: String,
    pub digest: B256,
    pub expires: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    #[serde(default)]
    pub requests: Vec<Listed>,
    #[serde(default)]
    pub locked: bool,
    /// For `lock`: the wallet was unlocked, and this command locked it.
    #[serde(default)]
    pub locked_now: bool,
    /// Per request: its id and either its new state or why it was not answered.
    #[serde(default)]
    pub results: Vec<(String, Result<String, String>)>,
    #[serde(default)]
    pub error: Option<String>,
}

/// Listens on `approve.sock` in `state_dir`, replacing a stale socket from a previous run.
pub fn bind(state_dir: &Path) -> std::io::Result<(UnixListener, PathBuf)> {
    let path = state_dir.join(SOCKET);
    match std::fs::remove_file(&path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
        _ => {}
    }
    let listener = UnixListener::bind(&path)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok((listener, path))
}

pub async fn serve(desk: Arc<Desk>, listener: UnixListener) {
    let me = rustix::process::geteuid().as_raw();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        if stream.peer_cred().map(|cred| cred.uid()).ok() != Some(me) {
            continue;
        }
        let desk = desk.clone();
        tokio::spawn(async move {
            if let Err(err) = session(desk, stream).await {
                tracing::debug!("approver session ended: {err}");
            }
        });
    }
}

async fn session(desk: Arc<Desk>, stream: UnixStream) -> std::io::Result<()> {
    let (mut read, mut write) = stream.into_split();
    // One buffer for the session: filled in place by the socket, never reallocated, and zeroized
    // on every way out of this function.
    let mut buffer = Zeroizing::new(vec![0u8; MAX_LINE as usize]);
    let mut filled = 0;
    let mut total = 0u64;
    loop {
        let Some(end) = buffer[..filled].iter().position(|b| *b == b'\n') else {
            if filled == buffer.len() || total > MAX_LINE * 64 {
                return Ok(());
            }
            let read = read.read(&mut buffer[filled..]).await?;
            if read == 0 {
                return Ok(());
            }
            filled += read;
            total += read as u64;
            continue;
        };
        let reply = match Command::parse(&buffer[..end]) {
            Ok(command) => handle(&desk, command).await,
            Err(problem) => Reply {
                error: Some(problem.into()),
                ..empty()
            },
        };
        // Drop the line: move what follows it to the front and zero the rest.
        buffer.copy_within(end + 1..filled, 0);
        filled -= end + 1;
        buffer[filled..].zeroize();
        let mut out = serde_json::to_vec(&reply).unwrap_or_default();
        out.push(b'\n');
        write.write_all(&out).await?;
    }
}

fn empty() -> Reply {
    Reply {
        requests: Vec::new(),
        locked: false,
        locked_now: false,
        results: Vec::new(),
        error: None,
    }
}

async fn handle(desk: &Arc<Desk>, command: Command) -> Reply {
    desk.sweep();
    match command {
        Command::List => Reply {
            requests: desk
                .store
                .all()
                .into_iter()
                .filter(|r| r.state == super::State::Pending)
                .map(|r| Listed {
                    id: r.id,
                    review: r.review.for_human(),
                    title: r.review.title,
                    digest: r.digest,
                    expires: r.expires,
                })
                .collect(),
            locked: !desk.is_unlocked(),
            ..empty()
        },
        Command::Lock => Reply {
            locked_now: desk.lock(super::LockReason::Requested),
            locked: true,
            ..empty()
        },
        Command::Answer {
            requests,
            approve,
            code,
            password,
        } => {
            let chosen: Vec<(String, Option<B256>)> = requests
                .into_iter()
                .map(|c| (c.id, Some(c.digest)))
                .collect();
            let answer = Answer {
                approve,
                code: Secret::new(code.to_string()),
                password: password.map(|p| Secret::new(p.to_string())),
            };
            match desk.answer(&chosen, answer).await {
                Ok(results) => Reply {
                    results: results
                        .into_iter()
                        .map(|(id, outcome)| {
                            (
                                id,
                                outcome
                                    .map(|r| r.state.name().to_owned())
                                    .map_err(|e| e.to_string()),
                            )
                        })
                        .collect(),
                    ..empty()
                },
                Err(err) => Reply {
                    error: Some(err.to_string()),
                    ..empty()
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(line: &str) -> (Zeroizing<String>, Option<Zeroizing<String>>) {
        match Command::parse(line.as_bytes()) {
            Ok(Command::Answer { code, password, .. }) => (code, password),
            other => panic!("{line} => {other:?}"),
        }
    }

    #[test]
    fn commands_parse_strictly() {
        assert!(matches!(
            Command::parse(br#"{"op":"list"}"#),
            Ok(Command::List)
        ));
        assert!(matches!(
            Command::parse(br#"{"op":"lock"}"#),
            Ok(Command::Lock)
        ));
        for bad in [
            r#"{"op":"lock","password":"x"}"#,
            r#"{"op":"list","surprise":1}"#,
            r#"{"op":"answer","approve":true}"#,
            r#"{"op":"answer","requests":[],"approve":true,"code":123456}"#,
            r#"{"op":"unlock"}"#,
            "not json",
        ] {
            assert!(Command::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_are_unescaped_as_json_says() {
        let line = |password: &str| {
            format!(
                r#"{{"op":"answer","requests":[],"approve":true,"code":"123 456","password":{}}}"#,
                serde_json::to_string(password).unwrap()
            )
        };
        for password in [
            "plain password",
            r#"quote " backslash \ slash /"#,
            "tab\tnewline\n\u{1}\u{7f}",
            "naïve 密码 😀 \u{2028}",
            "",
        ] {
            let (code, parsed) = answer(&line(password));
            assert_eq!(code.as_str(), "123 456");
            assert_eq!(parsed.unwrap().as_str(), password);
        }
        let (_, escaped) = answer(
            r#"{"op":"answer","requests":[],"approve":false,"password":"\u00e9\ud83d\ude00\/"}"#,
        );
        assert_eq!(escaped.unwrap().as_str(), "é😀/");
        for bad in [r#""\ud83d""#, r#""\ud83dx""#, r#""\ude00""#] {
            // serde_json may refuse these itself; if it lets one through, keyward must.
            if let Ok(raw) = RawValue::from_string(bad.to_owned()) {
                assert!(json_string(&raw).is_err(), "{bad}");
            }
        }
    }
}
