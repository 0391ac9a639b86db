//! `keyward serve`: the MCP server on stdin and stdout, with the approval page and the terminal
//! approver's socket beside it.
//!
//! stdout belongs to the MCP protocol from the first byte: everything else goes to stderr through
//! tracing. The server runs on a single-threaded runtime (one stdio stream needs no more) and exits
//! within a few milliseconds of stdin closing, abandoning any RPC request still in flight; requests
//! in flight are persisted and picked up again by the next run.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::password::read_password_file;
use crate::config::Config;
use crate::home::Home;
use crate::mcp::Server;

/// How long shutdown waits for work still running when stdin closes.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(20);

pub(super) fn serve(
    home: &Home,
    config: Option<PathBuf>,
    password_file: Option<PathBuf>,
) -> Result<()> {
    let config_path = config.unwrap_or_else(|| home.config_dir().join("keyward.toml"));
    let config = Config::load(&config_path)?;
    crate::privacy::logs::reveal_addresses(config.log.reveal_addresses);
    let vault_path = home.vault_path();
    if !vault_path.exists() {
        tracing::warn!(
            "no wallet at {}: the wallet tools will say so until `keyward init` creates one",
            vault_path.display()
        );
    }
    // One server per home: two would each hold pending requests and nonces the other cannot see.
    crate::files::create_private_dir(home.state_dir())?;
    let lock_path = home.state_dir().join("serve.lock");
    let _serving = match crate::files::FileLock::try_exclusive(&lock_path) {
        Ok(lock) => lock,
        Err(crate::files::FileError::Busy(_)) => bail!(
            "another `keyward serve` is already running for this wallet ({} is locked): one \
             wallet home serves one MCP host at a time; close the other host's keyward, or give \
             this one its own --home",
            lock_path.display()
        ),
        Err(err) => return Err(err.into()),
    };
    let password = password_file
        .as_deref()
        .map(read_password_file)
        .transpose()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let served = runtime.block_on(async {
        let server = Server::new(config, home)?;
        if let Some(password) = password {
            server
                .desk()
                .unlock(&password)
                .context("the password file does not unlock the wallet")?;
        }
        server
            .start_approvals()
            .await
            .context("cannot start the approval page")?;
        let checker = server.clone();
        tokio::spawn(async move { checker.check_networks().await });
        server.serve_stdio().await
    });
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    served
}
