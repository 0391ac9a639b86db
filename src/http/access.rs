//! The door in front of `/mcp`: Host and Origin allowlists, bearer tokens, a rate per token, and
//! sessions bound to the token that opened them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::tokens::TokenStore;
use crate::config::{HttpSettings, normalize_origin};
use crate::privacy::guard::{Fingerprints, Registration, SecretKind, guard};

/// RFC 9728's well-known path; the resource's own path is appended for `/mcp`.
pub(super) const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";
const SESSION_HEADER: &str = "mcp-session-id";
/// Sessions remembered per token; rmcp closes idle ones after five minutes.
const MAX_SESSIONS: usize = 4096;
const SESSION_MEMORY: Duration = Duration::from_secs(3600);

#[derive(Debug)]
pub(super) struct Access {
    /// Lower-case host names and IP literals (without brackets) this server answers to.
    hosts: Vec<String>,
    /// Origins allowed besides the server's own, normalized.
    cross_origins: Vec<String>,
    scheme: &'static str,
    tokens: Arc<TokenStore>,
    rate: Rate,
    /// Each token seen, registered with the outbound and log guard for the server's lifetime.
    watched: Mutex<HashMap<String, Registration>>,
    /// Which token opened each session: another token may not use it.
    sessions: Mutex<HashMap<String, (String, Instant)>>,
}

impl Access {
    pub(super) fn new(
        address: SocketAddr,
        scheme: &'static str,
        settings: &HttpSettings,
        tokens: Arc<TokenStore>,
    ) -> Self {
        let mut hosts = settings.allowed_hosts.clone();
        if address.ip().is_loopback() {
            hosts.extend(["localhost", "127.0.0.1", "::1"].map(String::from));
        } else if !address.ip().is_unspecified() {
            hosts.push(address.ip().to_string());
        }
        Self {
            hosts,
            cross_origins: settings.allowed_origins.clone(),
            scheme,
            tokens,
            rate: Rate::new(settings.requests_per_minute),
            watched: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a `Host` header names this server.
    fn is_own_host(&self, value: &str) -> bool {
        let Ok(authority) = value.parse::<axum::http::uri::Authority>() else {
            return false;
        };
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        !authority.as_str().contains('@') && self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// Whether `origin` is this server's own (its scheme and one of its hosts, on any port, as
    /// the Host check) or a configured one.
    fn origin_allowed(&self, origin: &str) -> OriginKind {
        let Some(normalized) = normalize_origin(origin) else {
            return OriginKind::Refused;
        };
        if self.cross_origins.contains(&normalized) {
            return OriginKind::Cross;
        }
        let own = url::Url::parse(&normalized).ok().is_some_and(|url| {
            url.scheme() == self.scheme
                && url.host_str().is_some_and(|host| {
                    let host = host.trim_start_matches('[').trim_end_matches(']');
                    self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
                })
        });
        if own {
            OriginKind::Own
        } else {
            OriginKind::Refused
        }
    }

    fn base_url(&self, host: &str) -> String {
        format!("{}://{host}", self.scheme)
    }

    /// Registers a token with the guard the first time it is accepted, so that no log line and
    /// no outbound request can carry it from then on.
    fn watch(&self, name: &str, token: &str) {
        let mut watched = self.watched.lock().unwrap_or_else(PoisonError::into_inner);
        if !watched.contains_key(name) {
            let mut fingerprints = Fingerprints::new();
            fingerprints.text(SecretKind::AccessToken, token);
            watched.insert(name.to_owned(), guard().register(fingerprints));
        }
    }

    /// Whether `session` may be used with the token `name`: sessions opened by another token are
    /// not, and look as unknown as they would to a stranger.
    fn session_allowed(&self, session: &str, name: &str) -> bool {
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        sessions.get(session).is_none_or(|(owner, _)| owner == name)
    }

    fn remember_session(&self, session: &str, name: &str) {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if sessions.len() >= MAX_SESSIONS {
            sessions.retain(|_, (_, since)| since.elapsed() < SESSION_MEMORY);
        }
        if sessions.len() < MAX_SESSIONS {
            sessions.insert(session.to_owned(), (name.to_owned(), Instant::now()));
        }
    }

    fn forget_session(&self, session: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(session);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OriginKind {
    Own,
    Cross,
    Refused,
}

/// The outer layer, on every path: Host, then Origin, then CORS for configured origins.
pub(super) async fn check_host_and_origin(
    State(access): State<Arc<Access>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .filter(|host| access.is_own_host(host));
    let Some(host) = host else {
        tracing::info!("refused an HTTP request naming a host that is not this server's");
        return refuse(
            StatusCode::FORBIDDEN,
            "forbidden_host",
            "the Host header does not name this keyward server; if clients reach it by another \
             name, add that name to `http.allowed_hosts` in the configuration",
        );
    };
    let host = host.to_owned();
    let mut cross = None;
    if let Some(origin) = headers.get(header::ORIGIN) {
        let text = origin.to_str().unwrap_or_default();
        match access.origin_allowed(text) {
            OriginKind::Own => {}
            OriginKind::Cross => cross = Some(origin.clone()),
            OriginKind::Refused => {
                tracing::info!("refused an HTTP request from a browser origin not allowed");
                return refuse(
                    StatusCode::FORBIDDEN,
                    "forbidden_origin",
                    "requests from this browser origin are not allowed; to allow a web client, \
                     add its origin to `http.allowed_origins` in the configuration",
                );
            }
        }
    }
    if let Some(origin) = cross {
        if request.method() == Method::OPTIONS {
            let mut response = StatusCode::NO_CONTENT.into_response();
            cors(response.headers_mut(), origin);
            let headers = response.headers_mut();
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, DELETE"),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(
                    "authorization, content-type, accept, last-event-id, mcp-session-id, \
                     mcp-protocol-version",
                ),
            );
            headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
            return response;
        }
        let mut response = next.run(with_host(request, host)).await;
        cors(response.headers_mut(), origin);
        return response;
    }
    next.run(with_host(request, host)).await
}

/// The host the request named, checked, for the layers inside.
#[derive(Debug, Clone)]
struct CheckedHost(String);

fn with_host(mut request: Request, host: String) -> Request {
    request.extensions_mut().insert(CheckedHost(host));
    request
}

fn checked_host(request: &Request) -> String {
    request
        .extensions()
        .get::<CheckedHost>()
        .map(|h| h.0.clone())
        .unwrap_or_default()
}

fn cors(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("mcp-session-id, www-authenticate, retry-after"),
    );
}

/// The inner layer, on `/mcp` only: the bearer token, its rate, and its sessions.
pub(super) async fn authenticate(
    State(access): State<Arc<Access>>,
    mut request: Request,
    next: Next,
) -> Response {
    let host = checked_host(&request);
    let presented = bearer(request.headers());
    let name = match &presented {
        Bearer::Missing => return unauthorized(&access, &host, false),
        Bearer::Malformed => return unauthorized(&access, &host, true),
        Bearer::Token(token) => match access.tokens.verify(token) {
            Ok(Some(name)) => {
                access.watch(&name, token);
                name
            }
            Ok(None) => {
                tracing::info!("refused an HTTP request with a token that is not valid");
                return unauthorized(&access, &host, true);
            }
            Err(err) => {
                tracing::error!("cannot read the HTTP tokens: {err}");
                return refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "tokens_unreadable",
                    "the server cannot read its token file; its log says why",
                );
            }
        },
    };
    drop(presented);
    // Nothing past this point needs the token; rmcp hands request headers to handlers.
    request.headers_mut().remove(header::AUTHORIZATION);
    if let Err(wait) = access.rate.admit(&name) {
        let mut response = refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            &format!(
                "this token has made more than {} requests in a minute; wait {} s and try again",
                access.rate.per_minute,
                wait.as_secs().max(1)
            ),
        );
        if let Ok(value) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let session = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(session) = &session
        && !access.session_allowed(session, &name)
    {
        tracing::info!(token = %name, "refused a session opened with another token");
        return refuse(
            StatusCode::NOT_FOUND,
            "unknown_session",
            "no such session; start a new one",
        );
    }
    let closing = request.method() == Method::DELETE;
    let response = next.run(request).await;
    match &session {
        Some(session) if closing && response.status().is_success() => {
            access.forget_session(session);
        }
        Some(_) => {}
        None => {
            if let Some(opened) = response
                .headers()
                .get(SESSION_HEADER)
                .and_then(|v| v.to_str().ok())
            {
                access.remember_session(opened, &name);
            }
        }
    }
    response
}

enum Bearer {
    Missing,
    Malformed,
    Token(zeroize::Zeroizing<String>),
}

fn bearer(headers: &HeaderMap) -> Bearer {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return if headers.contains_key(header::AUTHORIZATION) {
            Bearer::Malformed
        } else {
            Bearer::Missing
        };
    };
    let Ok(text) = value.to_str() else {
        return Bearer::Malformed;
    };
    match text.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Bearer::Token(zeroize::Zeroizing::new(token.trim().to_owned()))
        }
        _ => Bearer::Malformed,
    }
}

/// 401 with the RFC 6750 challenge and RFC 9728's pointer to the metadata document.
fn unauthorized(access: &Access, host: &str, invalid: bool) -> Response {
    let metadata = format!(
        "{}{METADATA_PATH}{}",
        access.base_url(host),
        super::MCP_PATH
    );
    let (challenge, message) = if invalid {
        (
            format!(
                "Bearer resource_metadata=\"{metadata}\", error=\"invalid_token\", \
                 error_description=\"the token is not one of this server's\""
            ),
            "the bearer token is not one of this server's tokens (it may have been revoked); \
             create one with `keyward token create --name NAME` and configure the MCP host to \
             send it as `Authorization: Bearer <token>`",
        )
    } else {
        (
            format!("Bearer resource_metadata=\"{metadata}\""),
            "this keyward server needs a bearer token: create one with `keyward token create \
             --name NAME` on the wallet's machine and configure the MCP host to send it as \
             `Authorization: Bearer <token>`",
        )
    };
    let mut response = refuse(StatusCode::UNAUTHORIZED, "unauthorized", message);
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// RFC 9728 protected-resource metadata. keyward has no authorization server: tokens are made
/// by `keyward token create`, so the document names none.
pub(super) async fn metadata(State(access): State<Arc<Access>>, request: Request) -> Response {
    let host = checked_host(&request);
    let body = json!({
        "resource": format!("{}{}", access.base_url(&host), super::MCP_PATH),
        "resource_name": "keyward wallet (MCP)",
        "bearer_methods_supported": ["header"],
        "resource_documentation": "https://github.com/keyward/keyward#mcp-over-http",
    });
    json_response(StatusCode::OK, &body, "max-age=300")
}

fn refuse(status: StatusCode, kind: &str, message: &str) -> Response {
    json_response(
        status,
        &json!({ "error": kind, "message": message }),
        "no-store",
    )
}

fn json_response(status: StatusCode, body: &serde_json::Value, cache: &'static str) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

/// A token bucket per token: `per_minute` requests at once, refilled evenly over a minute.
#[derive(Debug)]
struct Rate {
    per_minute: u32,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Rate {
    fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `name`'s bucket, or says how long until one is free.
    fn admit(&self, name: &str) -> Result<(), Duration> {
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let (level, last) = buckets.entry(name.to_owned()).or_insert((capacity, now));
        *level = (*level + now.duration_since(*last).as_secs_f64() * per_second).min(capacity);
        *last = now;
        if *level >= 1.0 {
            *level -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *level) / per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(address: &str, settings: HttpSettings) -> Access {
        let dir = tempfile::tempdir().unwrap();
        Access::new(
            address.parse().unwrap(),
            "http",
            &settings,
            Arc::new(TokenStore::new(dir.path())),
        )
    }

    #[test]
    fn loopback_answers_to_its_loopback_names_on_any_port_and_to_nothing_else() {
        let access = access("127.0.0.1:8645", HttpSettings::default());
        for host in [
            "127.0.0.1:8645",
            "localhost:8645",
            "LOCALHOST",
            "[::1]:8645",
        ] {
            assert!(access.is_own_host(host), "{host}");
        }
        for host in [
            "evil.example.com",
            "evil.example.com:8645",
            "127.0.0.1.evil.example.com",
            "user@127.0.0.1",
            "",
        ] {
            assert!(!access.is_own_host(host), "{host}");
        }
    }

    #[test]
    fn origins_are_the_servers_own_or_configured_and_nothing_else() {
        let settings = HttpSettings {
            allowed_origins: vec!["https://app.example.com".into()],
            ..HttpSettings::default()
        };
        let access = access("127.0.0.1:8645", settings);
        assert_eq!(
            access.origin_allowed("http://127.0.0.1:8645"),
            OriginKind::Own
        );
        assert_eq!(
            access.origin_allowed("http://localhost:8645"),
            OriginKind::Own
        );
        assert_eq!(access.origin_allowed("http://[::1]:8645"), OriginKind::Own);
        // Any port, as for Host: a page needs the token to do anything.
        assert_eq!(
            access.origin_allowed("http://localhost:9999"),
            OriginKind::Own
        );
        assert_eq!(
            access.origin_allowed("https://app.example.com:443"),
            OriginKind::Cross
        );
        for refused in [
            "http://evil.example.com",
            "http://localhost.evil.example.com:8645",
            "https://127.0.0.1:8645",
            "null",
            "http://127.0.0.1:8645/path",
        ] {
            assert_eq!(
                access.origin_allowed(refused),
                OriginKind::Refused,
                "{refused}"
            );
        }
    }

    #[test]
    fn the_bearer_header_is_read_strictly() {
        let parse = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append(header::AUTHORIZATION, value.parse().unwrap());
            }
            match bearer(&headers) {
                Bearer::Missing => "missing".to_owned(),
                Bearer::Malformed => "malformed".to_owned(),
                Bearer::Token(token) => token.to_string(),
            }
        };
        assert_eq!(parse(&[]), "missing");
        assert_eq!(parse(&["Bearer kw_abc"]), "kw_abc");
        assert_eq!(parse(&["bearer kw_abc"]), "kw_abc");
        assert_eq!(parse(&["Basic a2V5"]), "malformed");
        assert_eq!(parse(&["Bearer "]), "malformed");
        assert_eq!(parse(&["Bearer a", "Bearer b"]), "malformed");
    }

    #[test]
    fn each_token_has_its_own_bucket_and_is_told_how_long_to_wait() {
        let rate = Rate::new(3);
        for _ in 0..3 {
            rate.admit("a").unwrap();
        }
        let wait = rate.admit("a").unwrap_err();
        assert!(
            wait > Duration::from_secs(15) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        rate.admit("b").unwrap();
    }
}
