//! The terminal approver's end: a unix socket in the state directory, mode 0600, on which
//! `keyward approve` lists pending requests and answers them.
//!
//! One JSON object per line each way. `{"op":"list"}` returns every pending request with its full
//! review; `{"op":"answer", "requests":[{"id":…, "digest":…}], "approve":true, "code":…,
//! "password":…}` answers them with one code; `{"op":"lock"}` locks the wallet, wiping its
//! decrypted secrets, and says whether it was unlocked (`keyward lock`). Only a process of the
//! same user can connect: the socket's mode says so, and the peer's uid is checked too.
//!
//! This module must never write a code or password anywhere: they go straight to the desk.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use alloy::primitives::B256;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use zeroize::Zeroizing;

use super::{Answer, Desk};
use crate::secret::Secret;

pub const SOCKET: &str = "approve.sock";
/// The longest line accepted.
const MAX_LINE: u64 = 16 * 1024;

#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    List,
    Lock,
    Answer {
        requests: Vec<Chosen>,
        approve: bool,
        #[serde(default)]
        code: Zeroizing<String>,
        #[serde(default)]
        password: Option<Zeroizing<String>>,
    },
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
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read.take(MAX_LINE * 64));
    let mut line = Zeroizing::new(String::new());
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let reply = match serde_json::from_str::<Command>(&line) {
            Ok(command) => handle(&desk, command).await,
            Err(_) => Reply {
                error: Some("not a command keyward understands".into()),
                ..empty()
            },
        };
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
                    title: r.review.title,
                    review: r.review.text,
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
