//! `keyward serve`: the MCP server on stdin and stdout, or over HTTP with `--http ADDR`, with the
//! approval page and the terminal approver's socket beside it.
//!
//! stdout belongs to the MCP protocol from the first byte: everything else goes to stderr through
//! tracing. The server runs on a single-threaded runtime (one stdio stream needs no more) and exits
//! within a few milliseconds of stdin closing, abandoning any RPC request still in flight; requests
//! in flight are persisted and picked up again by the next run.
//!
//! Over HTTP the server runs until a signal stops it; stdin means nothing to it. The line that
//! says where it listens goes to stderr, as a command's message, whatever the log level.
//!
//! Once it listens, and before it serves a single request, it sandboxes itself ([`crate::sandbox`])
//! unless told `--no-sandbox`.
//!
//! Before it exits, on stdin EOF, SIGTERM, SIGINT or SIGHUP, or after an error, it locks the wallet
//! explicitly, so the decrypted secrets are zeroized by keyward rather than left for the kernel to
//! reclaim.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::signal::unix::Signal;

use super::password::read_password_file;
use crate::config::Config;
use crate::confirm::LockReason;
use crate::home::Home;
use crate::http::tokens::TokenStore;
use crate::mcp::Server;

/// How long shutdown waits for work still running when stdin closes.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(20);
/// How long an HTTP server waits for its clients to finish when asked to stop.
const HTTP_SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

pub(super) fn serve(
    home: &Home,
    config: Option<PathBuf>,
    http: Option<SocketAddr>,
    password_file: Option<PathBuf>,
    sandbox: bool,
) -> Result<()> {
    let config_path = config.unwrap_or_else(|| home.config_dir().join("keyward.toml"));
    let config = Config::load(&config_path)?;
    // Landlock needs every directory it names to exist when the sandbox goes up.
    crate::files::create_private_dir(home.data_dir())?;
    let mut sandbox = sandbox.then(|| Sandbox::plan(home, &config_path, &config));
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
    let mut desk = None;
    let mut stopped = LockReason::Shutdown;
    let served = runtime.block_on(async {
        // Watch for signals before anything else opens: a SIGTERM that comes while the page is
        // starting must lock and exit, not kill the process with the default action.
        let mut signals = StopSignals::install();
        let settings = config.http.clone();
        let server = Server::new(config, home)?;
        desk = Some(server.desk().clone());
        if let Some(password) = password {
            server
                .desk()
                .unlock(&password)
                .context("the password file does not unlock the wallet")?;
        }
        let page = server
            .start_approvals()
            .await
            .context("cannot start the approval page")?;
        let bound = match http {
            Some(listen) => {
                let tokens = Arc::new(TokenStore::new(home.data_dir()));
                Some(crate::http::bind(server.clone(), tokens, listen, &settings).await?)
            }
            None => None,
        };
        match sandbox.as_mut() {
            Some(sandbox) => {
                let listening = bound.iter().map(|bound| bound.local_addr());
                sandbox.enter(std::iter::once(page).chain(listening).collect())?;
            }
            None => tracing::warn!(
                "the sandbox is off (--no-sandbox, unsafe): a compromised keyward could read any \
                 file you can and reach any host"
            ),
        }
        #[cfg(all(debug_assertions, target_os = "linux"))]
        crate::sandbox::run_probes();
        let checker = server.clone();
        tokio::spawn(async move { checker.check_networks().await });
        if let Some(bound) = bound {
            let _ = writeln!(
                std::io::stderr(),
                "keyward: MCP over HTTP at {} (approval page at http://{page}/)",
                bound.url()
            );
            let stopping = tokio_util::sync::CancellationToken::new();
            let shutdown = {
                let stopping = stopping.clone();
                async move {
                    let signal = signals.next().await;
                    tracing::info!("stopping on {signal}");
                    stopping.cancel();
                }
            };
            // Graceful shutdown closes every session; a client that holds its stream open past
            // the grace period is cut off.
            let deadline = async move {
                stopping.cancelled().await;
                tokio::time::sleep(HTTP_SHUTDOWN_GRACE).await;
            };
            tokio::select! {
                served = bound.run(shutdown) => served.context("the HTTP server failed")?,
                () = deadline => {}
            }
            return Ok(());
        }
        tokio::select! {
            served = server.serve_stdio() => {
                // The stdio session is over, cleanly or not: stdin closed or broke.
                stopped = LockReason::StdinClosed;
                served
            }
            signal = signals.next() => {
                tracing::info!("stopping on {signal}");
                Ok(())
            }
        }
    });
    if let Some(desk) = desk {
        desk.lock(stopped);
    }
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    served
}

/// The signals that ask the process to stop: SIGTERM (service managers), SIGINT (Ctrl-C) and
/// SIGHUP (the terminal went away). Installing them replaces the default action, which would end
/// the process without locking. A signal that cannot be watched is simply not waited for.
struct StopSignals {
    term: Option<Signal>,
    int: Option<Signal>,
    hup: Option<Signal>,
}

impl StopSignals {
    fn install() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        Self {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
            hup: signal(SignalKind::hangup()).ok(),
        }
    }

    /// Resolves with the name of the first stop signal to arrive.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            name = arrival(self.term.as_mut(), "SIGTERM") => name,
            name = arrival(self.int.as_mut(), "SIGINT") => name,
            name = arrival(self.hup.as_mut(), "SIGHUP") => name,
        }
    }
}

async fn arrival(signal: Option<&mut Signal>, name: &'static str) -> &'static str {
    match signal {
        Some(signal) => {
            signal.recv().await;
            name
        }
        None => std::future::pending().await,
    }
}

/// The sandbox, planned before start-up and entered once keyward listens.
#[cfg(target_os = "linux")]
struct Sandbox(crate::sandbox::Plan);

#[cfg(target_os = "linux")]
impl Sandbox {
    fn plan(home: &Home, config_path: &std::path::Path, config: &Config) -> Self {
        Self(crate::sandbox::Plan::for_server(
            home,
            config_path,
            config,
            &[],
        ))
    }

    fn enter(&mut self, listening: Vec<SocketAddr>) -> Result<()> {
        self.0.bind.extend(listening.iter().map(SocketAddr::port));
        crate::sandbox::apply(&self.0)?.log();
        Ok(())
    }
}

#[cfg(not(target_os = "linux"))]
struct Sandbox;

#[cfg(not(target_os = "linux"))]
impl Sandbox {
    fn plan(_: &Home, _: &std::path::Path, _: &Config) -> Self {
        Self
    }

    fn enter(&mut self, _: Vec<SocketAddr>) -> Result<()> {
        tracing::warn!("sandbox: keyward sandboxes itself on Linux only");
        Ok(())
    }
}
