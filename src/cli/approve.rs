//! `keyward approve`: the terminal approver. It talks to the running `keyward serve` over its
//! 0600 unix socket, prints each pending request's full review, and reads the TOTP code (and the
//! password, when the wallet is locked) from the terminal with echo off.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::say;
use super::terminal::Terminal;
use crate::confirm::socket::{Chosen, Reply, SOCKET};
use crate::home::Home;

pub(super) fn approve(home: &Home, id: Option<&str>, all: bool, reject: bool) -> Result<()> {
    let path = home.state_dir().join(SOCKET);
    let mut connection = Connection::open(&path).with_context(|| {
        format!(
            "cannot reach a running keyward serve at {}: approvals happen while the MCP host \
             runs keyward",
            path.display()
        )
    })?;
    let listed = connection.send(&json!({ "op": "list" }))?;
    let chosen: Vec<_> = listed
        .requests
        .iter()
        .filter(|r| all || id.is_none_or(|id| r.id == id))
        .collect();
    if chosen.is_empty() {
        match id {
            Some(id) => bail!("request {id} is not waiting for approval"),
            None => return say("No request is waiting for approval."),
        }
    }
    if id.is_none() && !all && chosen.len() > 1 {
        let ids: Vec<&str> = chosen.iter().map(|r| r.id.as_str()).collect();
        bail!(
            "{} requests are waiting ({}): name one, or pass --all to answer them together",
            chosen.len(),
            ids.join(", ")
        );
    }
    let mut tty = Terminal::open("keyward approve")?;
    for request in &chosen {
        tty.say(&format!("\nRequest {}\n{}\n", request.id, request.review))?;
    }
    let verb = if reject { "Reject" } else { "Approve" };
    let answer = if reject {
        json!({
            "op": "answer",
            "requests": chosen.iter().map(|r| Chosen { id: r.id.clone(), digest: r.digest }).collect::<Vec<_>>(),
            "approve": false,
        })
    } else {
        let password = if listed.locked {
            Some(tty.read_secret("The wallet is locked. Its password (hidden): ")?)
        } else {
            None
        };
        let code = tty.read_secret(&format!(
            "{verb} {} request(s) with the code from your authenticator app (hidden): ",
            chosen.len()
        ))?;
        json!({
            "op": "answer",
            "requests": chosen.iter().map(|r| Chosen { id: r.id.clone(), digest: r.digest }).collect::<Vec<_>>(),
            "approve": true,
            "code": code.expose_secret(),
            "password": password.as_ref().map(|p| p.expose_secret().as_str()),
        })
    };
    let reply = connection.send(&answer)?;
    if let Some(error) = reply.error {
        bail!("{error}");
    }
    let mut failed = false;
    for (id, outcome) in reply.results {
        match outcome {
            Ok(state) => say(&format!("{id}: {state}"))?,
            Err(problem) => {
                failed = true;
                say(&format!("{id}: not approved: {problem}"))?;
            }
        }
    }
    if failed {
        bail!("some requests were not approved");
    }
    Ok(())
}

/// A connection to the running server's approver socket.
pub(super) struct Connection {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Connection {
    pub(super) fn open(path: &Path) -> std::io::Result<Self> {
        let stream = UnixStream::connect(path)?;
        Ok(Self {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    pub(super) fn send(&mut self, command: &serde_json::Value) -> Result<Reply> {
        let mut line = serde_json::to_vec(command)?;
        line.push(b'\n');
        self.writer.write_all(&line)?;
        zeroize::Zeroize::zeroize(&mut line);
        let mut reply = String::new();
        self.reader.read_line(&mut reply)?;
        serde_json::from_str(&reply)
            .context("keyward serve sent an answer this keyward cannot read")
    }
}
