//! MCP test harness: a home with the fixture wallet and a config aimed at a test Anvil, and rmcp
//! clients talking to keyward in-process over a duplex pipe or Streamable HTTP, or to the real
//! binary over stdio.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use keyward::config::Config;
use keyward::mcp::Server;
use rmcp::model::{CallToolRequestParams, CallToolResult, ProtocolVersion};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{IntoTransport, StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, ClientLifecycleMode, ClientServiceExt, RoleClient, ServiceExt};
use serde_json::Value;
use zeroize::Zeroizing;

use super::anvil::{TEST_DOLLAR, TEST_EIGHTEEN, fixtures};

/// The fixture wallet's password (fixtures/anvil-wallet/vault.json holds Anvil's public test
/// mnemonic with its ten accounts; nothing in it is secret).
pub(crate) const FIXTURE_PASSWORD: &str = "keyward fixture password";
/// The fixture wallet's TOTP secret: RFC 6238's published SHA-1 test secret.
pub(crate) const FIXTURE_TOTP_SECRET: &[u8] = b"12345678901234567890";

pub(crate) type Client = RunningService<RoleClient, ()>;

/// Which protocol generation a client speaks.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Generation {
    /// Up to 2025-11-25, starting with `initialize`.
    Initialize,
    /// 2026-07-28, starting with `server/discover`.
    Discover,
}

/// How a client reaches the server: the two transports an MCP host uses, both in-process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// One duplex pipe per client, as a host talks to `keyward serve` over stdio.
    Stdio,
    /// Streamable HTTP on a loopback listener with a bearer token, as `keyward serve --http`.
    Http,
}

/// Emits every listed `async fn NAME(transport: Transport)` as two tests,
/// `over_stdio::NAME` and `over_http::NAME`, so one body covers both transports.
macro_rules! over_each_transport {
    ($($test:ident),+ $(,)?) => {
        mod over_stdio {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($crate::support::mcp::Transport::Stdio).await;
                }
            )+
        }
        mod over_http {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($crate::support::mcp::Transport::Http).await;
                }
            )+
        }
    };
}
pub(crate) use over_each_transport;

/// keyward's tools in the order `tools/list` gives them, as every client must see them.
pub(crate) const TOOL_NAMES: [&str; 12] = [
    "wallet_accounts",
    "wallet_balances",
    "wallet_token_info",
    "wallet_chain_info",
    "wallet_transaction_status",
    "wallet_transfer",
    "wallet_approve_token",
    "wallet_revoke_approval",
    "wallet_sign_message",
    "wallet_sign_typed_data",
    "wallet_contract_call",
    "wallet_request_status",
];

/// A keyward home for server tests.
pub(crate) struct ServerHome {
    pub(crate) dir: tempfile::TempDir,
    /// The HTTP bearer token, created on first use and kept across restarts, as a host keeps it.
    http_token: OnceLock<Zeroizing<String>>,
}

impl ServerHome {
    /// The fixture wallet and a config for network "anvil" at `rpc_url` with chain id 31337 and the
    /// two plain test tokens configured (the hostile one is not).
    pub(crate) fn new(rpc_url: &str) -> Self {
        Self::with_config(&config_text(rpc_url, 31337))
    }

    pub(crate) fn with_config(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            fixtures().join("anvil-wallet/vault.json"),
            dir.path().join("vault.json"),
        )
        .unwrap();
        std::fs::write(dir.path().join("keyward.toml"), config).unwrap();
        Self {
            dir,
            http_token: OnceLock::new(),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The wallet's addresses, lower case without 0x. A test may have removed or replaced the
    /// wallet; then no address of it is known.
    pub(crate) fn own_addresses(&self) -> Vec<String> {
        let vault: Value = std::fs::read(self.path().join("vault.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        vault["accounts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| Some(a["address"].as_str()?.get(2..)?.to_ascii_lowercase()))
            .collect()
    }

    /// What the recording proxy saw that breaks a privacy rule for this home (see
    /// [`super::proxy::violations`]).
    pub(crate) fn privacy_violations(&self) -> Vec<String> {
        let Ok(config) = Config::load(&self.config_path()) else {
            return Vec::new();
        };
        let hosts: Vec<String> = config
            .networks()
            .iter()
            .map(|n| n.rpc_url.host().to_owned())
            .collect();
        super::proxy::violations(
            &hosts,
            &self.own_addresses(),
            &fixture_secrets(),
            config.privacy.batch_own_addresses,
        )
    }

    pub(crate) fn config_path(&self) -> PathBuf {
        self.dir.path().join("keyward.toml")
    }

    pub(crate) fn server(&self) -> Server {
        let config = Config::load(&self.config_path()).unwrap();
        let home = keyward::home::Home::single(self.dir.path()).unwrap();
        Server::new(config, &home).unwrap()
    }

    /// An rmcp client connected to an in-process server over a duplex pipe.
    pub(crate) async fn in_process(&self, generation: Generation) -> Client {
        let (server_io, client_io) = tokio::io::duplex(1 << 20);
        let server = self.server();
        tokio::spawn(async move {
            if let Ok(running) = server.serve(server_io).await {
                let _ = running.waiting().await;
            }
        });
        connect(client_io, generation).await
    }

    /// The bearer token HTTP clients of this home present, created in its token file on first use.
    pub(crate) fn http_token(&self) -> &str {
        self.http_token.get_or_init(|| {
            keyward::http::tokens::TokenStore::new(self.path())
                .create("test", 0)
                .unwrap()
        })
    }

    /// An rmcp client connected to the real keyward binary over stdio.
    pub(crate) async fn child_process(&self, generation: Generation) -> Client {
        let command = tokio::process::Command::new(env!("CARGO_BIN_EXE_keyward"));
        connect_child(serve_transport(self.path(), command), generation).await
    }
}

/// Checks the recorded traffic when the test is done with the home (unless it already failed).
impl Drop for ServerHome {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let violations = self.privacy_violations();
        assert!(
            violations.is_empty(),
            "outbound traffic broke a privacy rule:\n{}",
            violations.join("\n")
        );
    }
}

/// The fixture wallet's secrets, in every encoding: the phrase, the ten keys, the password and the
/// TOTP secret.
pub(crate) fn fixture_secrets() -> super::canary::Canaries {
    let mut secrets = super::canary::Canaries::new();
    secrets.phrase("fixture phrase", ANVIL_PHRASE);
    let mnemonic = keyward::hd::parse_phrase(ANVIL_PHRASE).unwrap();
    for index in 0..10 {
        let key = mnemonic.account_key(index).unwrap();
        secrets.bytes(&format!("fixture key {index}"), key.expose_secret());
    }
    secrets.text("fixture password", FIXTURE_PASSWORD);
    secrets.bytes("fixture TOTP secret", FIXTURE_TOTP_SECRET);
    secrets
}

/// Anvil's published test mnemonic, which the fixture wallet holds.
pub(crate) const ANVIL_PHRASE: &str = "test test test test test test test test test test test junk";

/// Where clients of one in-process server connect: a fresh duplex pipe per client, or the
/// server's HTTP listener. Dropping it stops the listener and ends its sessions.
pub(crate) struct Endpoint {
    server: Server,
    http: Option<HttpListener>,
}

struct HttpListener {
    url: String,
    token: String,
    /// Dropping this ends the listener's shutdown future.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Endpoint {
    /// Opens `server` to clients over `transport`; for HTTP, binds a loopback listener that
    /// accepts the home's token under the home's `[http]` settings.
    pub(crate) async fn open(home: &ServerHome, server: &Server, transport: Transport) -> Self {
        let http = match transport {
            Transport::Stdio => None,
            Transport::Http => {
                let token = home.http_token().to_owned();
                let tokens =
                    std::sync::Arc::new(keyward::http::tokens::TokenStore::new(home.path()));
                let config = Config::load(&home.config_path()).unwrap();
                let bound = keyward::http::bind(
                    server.clone(),
                    tokens,
                    "127.0.0.1:0".parse().unwrap(),
                    &config.http,
                )
                .await
                .unwrap();
                let url = bound.url();
                let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
                tokio::spawn(bound.run(async move {
                    let _ = stopped.await;
                }));
                Some(HttpListener {
                    url,
                    token,
                    _stop: stop,
                })
            }
        };
        Self {
            server: server.clone(),
            http,
        }
    }

    /// A new client session with `handler`, speaking `generation`.
    pub(crate) async fn connect<H: ClientHandler>(
        &self,
        handler: H,
        generation: Generation,
    ) -> RunningService<RoleClient, H> {
        match &self.http {
            None => {
                let (server_io, client_io) = tokio::io::duplex(1 << 20);
                let server = self.server.clone();
                tokio::spawn(async move {
                    if let Ok(running) = server.serve(server_io).await {
                        let _ = running.waiting().await;
                    }
                });
                connect_with(handler, client_io, generation).await
            }
            Some(http) => {
                // The client's TLS stack wants a process-wide provider even for plain http://;
                // keyward's own RPC client installs the same one.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let transport = StreamableHttpClientTransport::from_config(
                    StreamableHttpClientTransportConfig::with_uri(http.url.as_str())
                        .auth_header(http.token.as_str()),
                );
                connect_with(handler, transport, generation).await
            }
        }
    }
}

async fn connect(io: tokio::io::DuplexStream, generation: Generation) -> Client {
    connect_with((), io, generation).await
}

/// A client with `handler` over `transport` (a duplex pipe, a child process, an HTTP client),
/// speaking `generation`.
pub(crate) async fn connect_with<H, T, E, A>(
    handler: H,
    transport: T,
    generation: Generation,
) -> RunningService<RoleClient, H>
where
    H: ClientHandler,
    T: IntoTransport<RoleClient, E, A> + Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    match generation {
        Generation::Initialize => handler.serve(transport).await.unwrap(),
        Generation::Discover => handler
            .serve_with_lifecycle(
                transport,
                ClientLifecycleMode::Discover {
                    preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                },
            )
            .await
            .unwrap(),
    }
}

async fn connect_child(transport: TokioChildProcess, generation: Generation) -> Client {
    connect_with((), transport, generation).await
}

/// A config text for one network.
pub(crate) fn config_text(rpc_url: &str, chain_id: u64) -> String {
    format!(
        r#"
[[networks]]
name = "anvil"
chain_id = {chain_id}
rpc_url = "{rpc_url}"

[[networks.tokens]]
address = "{TEST_DOLLAR}"
symbol = "TUSD"
decimals = 6

[[networks.tokens]]
address = "{TEST_EIGHTEEN}"
symbol = "T18"

[approval]
listen = "127.0.0.1:0"

[privacy]
proxy = "{proxy}"
"#,
        proxy = super::proxy::url()
    )
}

/// Calls a tool; `arguments` must be a JSON object.
pub(crate) async fn call(client: &Client, name: &str, arguments: Value) -> CallToolResult {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new(name.to_owned()).with_arguments(arguments))
        .await
        .unwrap_or_else(|err| panic!("{name} failed at the protocol level: {err}"))
}

/// The structured content of a successful call.
pub(crate) fn ok(result: &CallToolResult) -> &Value {
    assert_eq!(result.is_error, Some(false), "expected success: {result:?}");
    result.structured_content.as_ref().unwrap()
}

/// The error message of a failed call, checking the shape of an error result.
pub(crate) fn tool_error(result: &CallToolResult) -> (String, String) {
    assert_eq!(
        result.is_error,
        Some(true),
        "expected a tool error: {result:?}"
    );
    let error = &result.structured_content.as_ref().unwrap()["error"];
    let text = result.content[0].as_text().unwrap().text.clone();
    assert_eq!(error["message"], text.as_str());
    (error["kind"].as_str().unwrap().to_owned(), text)
}

/// `keyward serve` on `home` as an MCP child over stdio, with its pid (for kill -9), a clean
/// environment and warnings only. `command` runs it: the binary itself, or a wrapper that execs
/// it. Waits first until no earlier server (one just killed, or still exiting after its stdin
/// closed) holds the wallet's lock.
pub(crate) async fn serve_child(home: &Path, command: tokio::process::Command) -> (Client, u32) {
    wait_until_no_server(home).await;
    let transport = serve_transport(home, command);
    let pid = transport.id().unwrap();
    (().serve(transport).await.unwrap(), pid)
}

/// Waits until no server (one just killed, or still exiting) holds the wallet's lock in `home`.
pub(crate) async fn wait_until_no_server(home: &Path) {
    let lock = home.join("serve.lock");
    let started = std::time::Instant::now();
    while let Err(keyward::files::FileError::Busy(_)) =
        keyward::files::FileLock::try_exclusive(&lock)
    {
        assert!(
            started.elapsed().as_secs() < 20,
            "the previous server never let go of the wallet's lock"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Makes `command` (the binary, or a wrapper that execs it) `keyward --home HOME serve`, with a
/// clean environment (PATH only) and `RUST_LOG=level`; the caller may add arguments after `serve`.
pub(crate) fn as_serve<'a>(
    command: &'a mut tokio::process::Command,
    home: &Path,
    level: &str,
) -> &'a mut tokio::process::Command {
    command
        .arg("--home")
        .arg(home)
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", level)
}

/// `command` (the binary, or a wrapper that execs it) started as `keyward serve` on `home` over
/// stdio, with a clean environment and warnings only.
fn serve_transport(home: &Path, mut command: tokio::process::Command) -> TokioChildProcess {
    as_serve(&mut command, home, "warn");
    let (transport, _stderr) = TokioChildProcess::builder(command)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    transport
}
