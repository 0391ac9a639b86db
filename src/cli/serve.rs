//! `keyward serve`: the MCP server on stdin and stdout.
//!
//! stdout belongs to the MCP protocol from the first byte: everything else goes to stderr through
//! tracing. The server runs on a single-threaded runtime (one stdio stream needs no more) and exits
//! within a few milliseconds of stdin closing, abandoning any RPC request still in flight.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::config::Config;
use crate::home::Home;
use crate::mcp::Server;

/// How long shutdown waits for work still running when stdin closes.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(20);

pub(super) fn serve(home: &Home, config: Option<PathBuf>) -> Result<()> {
    let config_path = config.unwrap_or_else(|| home.config_dir().join("keyward.toml"));
    let config = Config::load(&config_path)?;
    let vault_path = home.vault_path();
    if !vault_path.exists() {
        tracing::warn!(
            "no wallet at {}: the wallet tools will say so until `keyward init` creates one",
            vault_path.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let served = runtime.block_on(async {
        let server = Server::new(config, vault_path)?;
        let checker = server.clone();
        tokio::spawn(async move { checker.check_networks().await });
        server.serve_stdio().await
    });
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    served
}
