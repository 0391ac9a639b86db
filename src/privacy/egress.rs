//! The one outbound HTTP client. Every request keyward sends to a third party (today: the RPC
//! endpoints) leaves through [`Egress::post_json`], which refuses it unless
//!
//! - its host is on the allowlist, built from the configuration's RPC URLs, and
//! - neither its URL nor its body carries a secret the keyring holds at that moment
//!   ([`super::guard`]).
//!
//! A refusal is logged with the host only, and reported to the audit log through the hook the
//! server installs. keyward sends nothing else: no telemetry, no update check, no redirect
//! (following one could reach a host the configuration never named), and no proxy but the one
//! configured as `privacy.proxy` (the `HTTP_PROXY` family of environment variables is ignored).
//!
//! This module must never log a URL's path or query, or a body.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::guard::{SecretKind, guard};
use crate::config::Config;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The longest any request may take; each request names its own, shorter or equal, timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// Why a request was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{host} is not one of the configured RPC hosts")]
    Host { host: String },
    #[error("the request to {host} carried {}", kind.describe())]
    Secret { host: String, kind: SecretKind },
}

/// What a send can fail with.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error("keyward refused to send it: {0}")]
    Refused(Refusal),
    #[error("the HTTP request failed")]
    Transport(#[source] reqwest::Error),
}

type Hook = Box<dyn Fn(&Refusal) + Send + Sync>;

/// The outbound client. Cheap to clone.
#[derive(Clone)]
pub struct Egress {
    client: reqwest::Client,
    allowed: Arc<HashSet<String>>,
    on_refusal: Arc<OnceLock<Hook>>,
}

impl std::fmt::Debug for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Egress")
            .field("allowed", &self.allowed)
            .finish_non_exhaustive()
    }
}

/// The client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "an RPC or proxy URL in the configuration is https, but no trusted certificate \
         authorities could be loaded: install the system's CA certificates (the ca-certificates \
         package on Debian), or set SSL_CERT_FILE to a PEM file of the authorities to trust"
    )]
    NoAuthorities,
    #[error("privacy.proxy is not a proxy URL the HTTP client accepts: use http://host:port")]
    Proxy,
    #[error("the HTTP client could not be set up")]
    Client,
}

impl Egress {
    /// A client for the configuration's RPC hosts, through its proxy if it names one.
    pub fn new(config: &Config) -> Result<Self, SetupError> {
        let https = config
            .networks()
            .iter()
            .map(|network| network.rpc_url.expose_url())
            .chain(config.privacy.proxy.as_ref())
            .any(|url| url.scheme() == "https");
        Self::build(
            config
                .networks()
                .iter()
                .map(|network| network.rpc_url.host().to_owned()),
            config.privacy.proxy.as_ref(),
            https,
        )
    }

    /// A client for exactly `hosts`. The system's trusted certificate authorities are loaded
    /// only when some URL is `https`, and then here, once, before the sandbox: a configuration
    /// of plain-HTTP nodes runs on a machine without any, and the sandbox need not open them.
    pub fn build(
        hosts: impl IntoIterator<Item = String>,
        proxy: Option<&url::Url>,
        https: bool,
    ) -> Result<Self, SetupError> {
        // rustls needs a process-wide crypto provider; installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("keyward/", env!("CARGO_PKG_VERSION")))
            .no_proxy();
        if !https {
            builder = builder.tls_certs_only([]);
        }
        if let Some(proxy) = proxy {
            builder =
                builder.proxy(reqwest::Proxy::all(proxy.as_str()).map_err(|_| SetupError::Proxy)?);
        }
        let client = builder.build().map_err(|err| {
            // The one TLS failure building can meet: no authorities to load.
            let tls = std::iter::successors(std::error::Error::source(&err), |e| e.source())
                .any(|e| e.is::<rustls::Error>());
            if https && tls {
                SetupError::NoAuthorities
            } else {
                SetupError::Client
            }
        })?;
        Ok(Self {
            client,
            allowed: Arc::new(hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect()),
            on_refusal: Arc::new(OnceLock::new()),
        })
    }

    /// Calls `hook` for every refused request (the server writes an audit entry). Set once.
    pub fn on_refusal(&self, hook: impl Fn(&Refusal) + Send + Sync + 'static) {
        let _ = self.on_refusal.set(Box::new(hook));
    }

    /// Checks a request before it leaves: the host against the allowlist, the URL and the body
    /// against the secrets held now.
    pub fn check(&self, url: &url::Url, body: &[u8]) -> Result<(), Refusal> {
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        if !self.allowed.contains(&host) {
            return Err(Refusal::Host { host });
        }
        if let Some(kind) = guard()
            .find(url.as_str().as_bytes())
            .or_else(|| guard().find(body))
        {
            return Err(Refusal::Secret { host, kind });
        }
        Ok(())
    }

    /// POSTs a JSON body to `url`, once it passes [`Egress::check`], giving up after `timeout`.
    pub async fn post_json(
        &self,
        url: &url::Url,
        body: bytes::Bytes,
        timeout: Duration,
    ) -> Result<reqwest::Response, EgressError> {
        if let Err(refusal) = self.check(url, &body) {
            match &refusal {
                Refusal::Host { host } => {
                    tracing::warn!(host = %host, "outbound request refused: host not allowed");
                }
                Refusal::Secret { host, kind } => tracing::error!(
                    host = %host,
                    secret = kind.describe(),
                    "outbound request refused: it carried a secret"
                ),
            }
            if let Some(hook) = self.on_refusal.get() {
                hook(&refusal);
            }
            return Err(EgressError::Refused(refusal));
        }
        self.client
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .timeout(timeout)
            .send()
            .await
            .map_err(EgressError::Transport)
    }
}

#[cfg(test)]
mod tests {
    use super::super::guard::Fingerprints;
    use super::*;

    #[test]
    fn only_allowed_hosts_pass() {
        let egress = Egress::build(["rpc.example".to_owned()], None, true).unwrap();
        let ok: url::Url = "https://RPC.example/v3/x".parse().unwrap();
        let other: url::Url = "https://telemetry.example/".parse().unwrap();
        assert_eq!(egress.check(&ok, b"{}"), Ok(()));
        assert_eq!(
            egress.check(&other, b"{}"),
            Err(Refusal::Host {
                host: "telemetry.example".into()
            })
        );
    }

    #[tokio::test]
    async fn a_body_with_a_held_secret_is_refused_before_any_connection() {
        // Port 9 on loopback: nothing listens, so only a refusal can answer quickly and exactly.
        let egress = Egress::build(["127.0.0.1".to_owned()], None, false).unwrap();
        let refused = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = refused.clone();
        egress.on_refusal(move |refusal| seen.lock().unwrap().push(refusal.clone()));
        let key = [0x5au8; 32];
        let mut set = Fingerprints::new();
        set.hex(SecretKind::PrivateKey, &key);
        let _held = guard().register(set);
        let url: url::Url = "http://127.0.0.1:9/".parse().unwrap();
        let body = format!(r#"{{"params":["0x{}"]}}"#, hex::encode(key));
        let err = egress
            .post_json(&url, body.into(), Duration::from_secs(5))
            .await
            .unwrap_err();
        let expected = Refusal::Secret {
            host: "127.0.0.1".into(),
            kind: SecretKind::PrivateKey,
        };
        assert!(
            matches!(&err, EgressError::Refused(r) if *r == expected),
            "{err:?}"
        );
        assert_eq!(*refused.lock().unwrap(), vec![expected]);
        assert!(!err.to_string().contains("5a5a5a"));
    }
}
