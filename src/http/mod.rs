//! MCP over Streamable HTTP (`keyward serve --http ADDR`): the same server as on stdio, behind a
//! door that checks every request.
//!
//! In order, a request must:
//! 1. name one of the server's hosts in `Host`, and come from no browser or an allowed `Origin`
//!    (else 403: this is what stops DNS rebinding);
//! 2. carry a bearer token made by `keyward token create` (else 401, pointing to the RFC 9728
//!    metadata document);
//! 3. stay within its token's rate (else 429), and within the body limit (else 413).
//!
//! Off loopback the server speaks TLS only and needs at least one token; it refuses to start
//! otherwise. rmcp's `StreamableHttpService` serves both protocol generations behind the door,
//! each session or request getting a clone of the one [`Server`], so approvals, nonces and rate
//! limits are shared with every other client.
//!
//! This module must never log, store or echo a presented token.

mod access;
mod tls;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::config::HttpSettings;
use crate::mcp::Server;
use access::Access;
use tokens::{TokenError, TokenStore};

/// The path MCP is served on.
pub const MCP_PATH: &str = "/mcp";

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(
        "{0} is not a loopback address, and keyward serves MCP beyond this machine only over \
         TLS: set `http.tls_certificate` and `http.tls_key` in the configuration (PEM files), or \
         listen on 127.0.0.1"
    )]
    NeedsTls(SocketAddr),
    #[error(
        "no HTTP access token exists, and every HTTP client must present one: create one with \
         `keyward token create --name NAME`, then configure the MCP host to send it as the \
         header `Authorization: Bearer <token>`"
    )]
    NoTokens,
    #[error(
        "{0} listens on every interface, so keyward cannot tell which host names are its own: \
         list the names clients use in `http.allowed_hosts` (any other Host header is refused)"
    )]
    NeedsHosts(SocketAddr),
    #[error("cannot use the TLS files: {0}")]
    Tls(String),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tokens(#[from] TokenError),
}

/// A bound HTTP server, not yet serving.
#[derive(Debug)]
pub struct HttpServer {
    address: SocketAddr,
    scheme: &'static str,
    listener: Listener,
    router: Router,
    stop: tokio_util::sync::CancellationToken,
}

#[derive(Debug)]
enum Listener {
    Plain(tokio::net::TcpListener),
    Tls(tls::TlsListener),
}

/// Checks the settings, binds `listen` and builds the server; refuses, with the reason, what
/// would be unsafe to serve.
pub async fn bind(
    server: Server,
    tokens: Arc<TokenStore>,
    listen: SocketAddr,
    settings: &HttpSettings,
) -> Result<HttpServer, HttpError> {
    let loopback = listen.ip().is_loopback();
    if !loopback && settings.tls.is_none() {
        return Err(HttpError::NeedsTls(listen));
    }
    if tokens.count()? == 0 {
        return Err(HttpError::NoTokens);
    }
    if listen.ip().is_unspecified() && settings.allowed_hosts.is_empty() {
        return Err(HttpError::NeedsHosts(listen));
    }
    let tls = settings
        .tls
        .as_ref()
        .map(tls::acceptor)
        .transpose()
        .map_err(HttpError::Tls)?;
    let bound = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| HttpError::Bind {
            address: listen,
            source,
        })?;
    let address = bound.local_addr().map_err(|source| HttpError::Bind {
        address: listen,
        source,
    })?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let access = Arc::new(Access::new(address, scheme, settings, tokens));
    let stop = tokio_util::sync::CancellationToken::new();
    let router = router(server, access, settings, stop.clone());
    let listener = match tls {
        Some(acceptor) => Listener::Tls(tls::TlsListener::new(bound, acceptor)),
        None => Listener::Plain(bound),
    };
    Ok(HttpServer {
        address,
        scheme,
        listener,
        router,
        stop,
    })
}

impl HttpServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// The MCP endpoint's URL, as a client on this machine reaches it.
    pub fn url(&self) -> String {
        format!("{}://{}{MCP_PATH}", self.scheme, self.address)
    }

    /// Serves until `shutdown` resolves, then closes every session.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let stop = self.stop.clone();
        let shutdown = async move {
            shutdown.await;
            stop.cancel();
        };
        match self.listener {
            Listener::Plain(listener) => {
                axum::serve(listener, self.router)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
            Listener::Tls(listener) => {
                axum::serve(listener, self.router)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
        }
    }
}

fn router(
    server: Server,
    access: Arc<Access>,
    settings: &HttpSettings,
    stop: tokio_util::sync::CancellationToken,
) -> Router {
    // The door above checks Host and Origin, so rmcp's own loopback-only checks are turned off:
    // they would refuse a deployment's configured host names.
    // A stateless (2026-07-28) reply that is one message goes out as plain JSON rather than an
    // event stream; one that carries progress notes first still streams.
    let config = StreamableHttpServerConfig::default()
        .with_json_response(true)
        .disable_allowed_hosts()
        .disable_allowed_origins()
        .with_max_request_body_bytes(settings.max_body_bytes)
        .with_cancellation_token(stop);
    let mcp = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    Router::new()
        .route_service(MCP_PATH, mcp)
        .route_layer(axum::middleware::from_fn_with_state(
            access.clone(),
            access::authenticate,
        ))
        .route(access::METADATA_PATH, get(access::metadata))
        .route(
            &format!("{}{MCP_PATH}", access::METADATA_PATH),
            get(access::metadata),
        )
        .layer(axum::middleware::from_fn_with_state(
            access.clone(),
            access::check_host_and_origin,
        ))
        .with_state(access)
}
