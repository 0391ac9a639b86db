//! `keyward lock`: locks the running server's wallet now, over the approver socket. The server
//! drops the unlocked vault, which wipes the decrypted secrets from its memory; the next approval
//! asks for the password again.

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::approve::Connection;
use super::say;
use crate::confirm::socket::SOCKET;
use crate::home::Home;

pub(super) fn lock(home: &Home) -> Result<()> {
    let path = home.state_dir().join(SOCKET);
    let mut connection = Connection::open(&path).with_context(|| {
        format!(
            "no keyward serve is running for this wallet (nothing answers at {}), so nothing is \
             unlocked: the wallet is only ever unlocked inside a running server",
            path.display()
        )
    })?;
    let reply = connection.send(&json!({ "op": "lock" }))?;
    if let Some(error) = reply.error {
        bail!("the server did not lock the wallet: {error}");
    }
    if !reply.locked {
        bail!("the server did not confirm that the wallet is locked");
    }
    say(if reply.locked_now {
        "Locked: the wallet's decrypted secrets were wiped from the server's memory. The next \
         approval asks for the password again."
    } else {
        "The wallet was already locked."
    })
}
