//! The rig's server as the real `keyward serve` binary, sandboxed as it is by default: over its
//! stdin and stdout, or over HTTP with the home's token.

use std::sync::{Arc, Mutex};

use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient};
use tokio::io::AsyncBufReadExt as _;

use crate::load::driver::HttpServer;
use crate::support::mcp::{
    Client, Generation, ServerHome, Transport, as_serve, connect_with, wait_until_no_server,
};

/// Whether this run wants the rig's server sandboxed (`KEYWARD_TEST_SERVER=sandboxed`).
pub(super) fn wanted() -> bool {
    std::env::var("KEYWARD_TEST_SERVER").is_ok_and(|value| value == "sandboxed")
}

pub(super) struct Server {
    /// Where the approval page listens.
    pub(super) page: std::net::SocketAddr,
    process: Process,
}

enum Process {
    /// The MCP client owns the child; killing goes by pid.
    Stdio {
        pid: u32,
        stderr: Arc<Mutex<String>>,
    },
    Http {
        server: HttpServer,
        token: String,
    },
}

impl Server {
    /// Starts `keyward serve` on `home` and connects the first client. Checks that the sandbox is
    /// on, from the server's own log.
    pub(super) async fn start(home: &ServerHome, transport: Transport) -> (Self, Client) {
        let binary = std::path::Path::new(env!("CARGO_BIN_EXE_keyward"));
        wait_until_no_server(home.path()).await;
        match transport {
            Transport::Http => {
                let token = home.http_token().to_owned();
                let server = HttpServer::start_logging(binary, home.path(), "info");
                let log = server.stderr();
                let server = Self {
                    page: announced_page(&log),
                    process: Process::Http { server, token },
                };
                assert_sandboxed(&log);
                let client = server.connect((), Generation::Initialize).await;
                (server, client)
            }
            Transport::Stdio => {
                let mut command = tokio::process::Command::new(binary);
                as_serve(&mut command, home.path(), "info");
                let (transport, stderr) = TokioChildProcess::builder(command)
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                let pid = transport.id().unwrap();
                let mut lines = tokio::io::BufReader::new(stderr.unwrap()).lines();
                let mut log = String::new();
                // The sandbox goes up after the page is bound and before the first request.
                while !log.contains("sandbox on:") {
                    let Ok(Some(line)) = lines.next_line().await else {
                        panic!("keyward serve exited before its sandbox was up:\n{log}");
                    };
                    log.push_str(&line);
                    log.push('\n');
                }
                assert_sandboxed(&log);
                let page = announced_page(&log);
                let stderr = Arc::new(Mutex::new(log));
                let sink = stderr.clone();
                // Keep reading, so the server never blocks on a full pipe.
                tokio::spawn(async move {
                    while let Ok(Some(line)) = lines.next_line().await {
                        let mut sink = sink.lock().unwrap();
                        sink.push_str(&line);
                        sink.push('\n');
                    }
                });
                let client = connect_with((), transport, Generation::Initialize).await;
                let server = Self {
                    page,
                    process: Process::Stdio { pid, stderr },
                };
                (server, client)
            }
        }
    }

    /// Another client. Over stdio a server has exactly one.
    pub(super) async fn connect<H: ClientHandler>(
        &self,
        handler: H,
        generation: Generation,
    ) -> RunningService<RoleClient, H> {
        match &self.process {
            Process::Http { server, token } => {
                let _ = rustls::crypto::ring::default_provider().install_default();
                let transport = StreamableHttpClientTransport::from_config(
                    StreamableHttpClientTransportConfig::with_uri(server.url.as_str())
                        .auth_header(token.as_str()),
                );
                connect_with(handler, transport, generation).await
            }
            Process::Stdio { .. } => {
                panic!("a keyward serve over stdio has one client; this test needs HTTP")
            }
        }
    }

    /// Kills the server with SIGKILL, as a crash, and waits until its wallet lock is free.
    pub(super) async fn kill(&mut self) {
        let pid = match &self.process {
            Process::Stdio { pid, .. } => *pid,
            Process::Http { server, .. } => server.pid(),
        };
        if let Some(pid) = rustix::process::Pid::from_raw(pid.cast_signed()) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        if let Process::Http { server, .. } = &mut self.process {
            server.wait();
        }
    }
}

/// A sandboxed server that died of a forbidden system call says so in the test's failure.
impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = match &self.process {
                Process::Stdio { stderr, .. } => stderr.lock().unwrap().clone(),
                Process::Http { server, .. } => server.stderr(),
            };
            println!("the sandboxed keyward serve logged:\n{log}");
        }
    }
}

fn announced_page(log: &str) -> std::net::SocketAddr {
    let (_, rest) = log
        .split_once("approval page at http://")
        .unwrap_or_else(|| panic!("the server did not announce its approval page:\n{log}"));
    rest.split('/').next().unwrap().parse().unwrap()
}

fn assert_sandboxed(log: &str) {
    let line = log
        .lines()
        .find(|line| line.contains("sandbox on:"))
        .unwrap_or_else(|| panic!("the server did not report its sandbox:\n{log}"));
    for layer in [
        "rlimits",
        "no_new_privs",
        "Landlock",
        "TCP connect only",
        "seccomp",
    ] {
        assert!(line.contains(layer), "the sandbox lacks {layer}: {line}");
    }
}
