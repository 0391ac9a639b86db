//! The HTTP door: bearer tokens (401 and RFC 9728), Host and Origin (403), body and rate limits
//! (413, 429), sessions bound to their token, TLS off loopback, and no token in any log.
//!
//! The log test runs the real binary at trace level; the others bind the server in-process.

use std::path::Path;
use std::sync::Arc;

use keyward::http::tokens::TokenStore;
use serde_json::Value;

use crate::funds::human;
use crate::load::driver::HttpServer;
use crate::support::human::{Response, http};
use crate::support::keyward_command;
use crate::support::mcp::{ServerHome, config_text};

/// An `initialize` request body, as any ≤2025-11-25 client sends first.
const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"door-test","version":"1"}}}"#;

/// POSTs a JSON-RPC body to `url` as an MCP client would, with a token if given.
fn post(url: &str, token: Option<&str>, extra: &[(&str, &str)], body: &str) -> Response {
    let authorization = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    if let Some(value) = &authorization {
        headers.push(("Authorization", value));
    }
    headers.extend_from_slice(extra);
    http("POST", url, &headers, Some(body))
}

/// The first JSON-RPC message in a response, whether sent as JSON or as SSE events.
fn message(response: &Response) -> Value {
    let body = response.body.trim();
    if body.starts_with('{') {
        return serde_json::from_str(body).unwrap();
    }
    body.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .find(|data| data.starts_with('{'))
        .map(|data| serde_json::from_str(data).unwrap())
        .unwrap_or_else(|| panic!("no JSON-RPC message in {:?}", response.body))
}

fn assert_challenge(response: &Response, metadata: &str, invalid: bool) {
    assert_eq!(response.status, 401, "{}", response.body);
    let challenge = response.header("www-authenticate").unwrap();
    assert!(
        challenge.starts_with(&format!("Bearer resource_metadata=\"{metadata}\"")),
        "{challenge}"
    );
    assert_eq!(
        challenge.contains("error=\"invalid_token\""),
        invalid,
        "{challenge}"
    );
    assert!(
        response.body.contains("keyward token create"),
        "{}",
        response.body
    );
}

/// A home with the fixture wallet and extra lines in an `[http]` table, its token store, and
/// one token per name.
fn home_with_tokens(
    http_lines: &str,
    names: &[&str],
) -> (ServerHome, Arc<TokenStore>, Vec<String>) {
    let home = ServerHome::with_config(&format!(
        "{}\n[http]\n{http_lines}\n",
        config_text("http://127.0.0.1:9", 31337)
    ));
    let store = Arc::new(TokenStore::new(home.path()));
    let tokens = names
        .iter()
        .map(|name| store.create(name, 0).unwrap().to_string())
        .collect();
    (home, store, tokens)
}

/// Binds the home's server on `listen` and serves it in the background; returns its MCP URL.
async fn serve(home: &ServerHome, store: Arc<TokenStore>, listen: &str) -> String {
    let config = keyward::config::Config::load(&home.config_path()).unwrap();
    let bound = keyward::http::bind(home.server(), store, listen.parse().unwrap(), &config.http)
        .await
        .unwrap();
    let url = bound.url();
    tokio::spawn(bound.run(std::future::pending()));
    url
}

fn keyward(home: &Path, args: &[&str]) -> std::process::Output {
    keyward_command()
        .arg("--home")
        .arg(home)
        .args(args)
        .output()
        .unwrap()
}

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_keyward"))
}

fn create_token(home: &Path, name: &str) -> String {
    crate::load::driver::create_token(binary(), home, name)
}

#[tokio::test]
async fn no_wrong_or_revoked_token_gets_in_and_no_token_reaches_the_log_or_the_disk() {
    let (home, _, _) = home_with_tokens("", &[]);
    let alpha = create_token(home.path(), "alpha");
    let beta = create_token(home.path(), "beta");
    let gamma = create_token(home.path(), "gamma");
    let wrong = format!("kw_{}", "A".repeat(43));
    let listed = keyward(home.path(), &["token", "list", "--json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["tokens"].as_array().unwrap().len(), 3);

    let server = HttpServer::start_logging(binary(), home.path(), "trace");
    let url = server.url.clone();
    let metadata = url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp");

    let tokens = [alpha, beta, gamma, wrong];
    let (held, home_path) = (tokens.clone(), home.path().to_owned());
    human(move || {
        let [alpha, beta, gamma, wrong] = &held;
        assert_challenge(&post(&url, None, &[], INITIALIZE), &metadata, false);
        assert_challenge(&post(&url, Some(wrong), &[], INITIALIZE), &metadata, true);
        assert_challenge(
            &post(
                &url,
                None,
                &[("Authorization", "Basic YWxwaGE6YmV0YQ==")],
                INITIALIZE,
            ),
            &metadata,
            true,
        );

        // The metadata document the challenge points to (RFC 9728).
        let document = http("GET", &metadata, &[], None);
        assert_eq!(document.status, 200);
        let document: Value = serde_json::from_str(&document.body).unwrap();
        assert_eq!(document["resource"], url.as_str());
        assert_eq!(
            document["bearer_methods_supported"],
            serde_json::json!(["header"])
        );

        let opened = post(&url, Some(alpha), &[], INITIALIZE);
        assert_eq!(opened.status, 200, "{}", opened.body);
        assert_eq!(message(&opened)["result"]["serverInfo"]["name"], "keyward");

        // Revoked from another process: refused from the next request on; the others still work.
        let output = keyward(&home_path, &["token", "revoke", "alpha"]);
        assert!(output.status.success(), "{output:?}");
        assert_challenge(&post(&url, Some(alpha), &[], INITIALIZE), &metadata, true);
        let output = keyward(&home_path, &["token", "revoke", "alpha"]);
        assert!(!output.status.success());
        assert!(String::from_utf8_lossy(&output.stderr).contains("no token is named `alpha`"));

        // A session belongs to the token that opened it.
        let opened = post(&url, Some(gamma), &[], INITIALIZE);
        assert_eq!(opened.status, 200, "{}", opened.body);
        let session = opened.header("mcp-session-id").unwrap().to_owned();
        let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
        let headers = [
            ("Mcp-Session-Id", session.as_str()),
            ("MCP-Protocol-Version", "2025-11-25"),
        ];
        let stolen = post(&url, Some(beta), &headers, list);
        assert_eq!(stolen.status, 404, "{}", stolen.body);
        let own = post(&url, Some(gamma), &headers, list);
        assert_eq!(own.status, 200, "{}", own.body);
        assert_eq!(
            message(&own)["result"]["tools"].as_array().unwrap().len(),
            12
        );
    })
    .await;

    let (_, log) = human(move || server.stop()).await;
    // Who may reach the wallet is in the audit log, by token name; the chain verifies.
    let audit = std::fs::read_to_string(home.path().join(keyward::audit::LOG_FILE)).unwrap();
    let changes: Vec<Value> = audit
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|entry| entry["kind"] == "tokens_changed")
        .map(|entry| entry["detail"].clone())
        .collect();
    assert_eq!(
        changes,
        [
            serde_json::json!({ "created": "alpha" }),
            serde_json::json!({ "created": "beta" }),
            serde_json::json!({ "created": "gamma" }),
            serde_json::json!({ "revoked": "alpha" }),
        ]
    );
    assert!(keyward(home.path(), &["audit", "verify"]).status.success());
    assert!(log.len() > 10_000, "trace logging ran: {} bytes", log.len());
    let mut searched = vec![("the stderr log".to_owned(), log.into_bytes())];
    for (file, bytes) in crate::support::files_under(home.path()) {
        searched.push((file.display().to_string(), bytes));
    }
    for (name, token) in ["alpha", "beta", "gamma", "wrong"].iter().zip(&tokens) {
        // The random part is what must not leak; `kw_` alone is no secret.
        let needle = &token.as_bytes()[3..];
        for (place, bytes) in &searched {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "the {name} token appears in {place}"
            );
        }
    }
    println!(
        "4 tokens searched in {} files and {} bytes of trace log: none found",
        searched.len() - 1,
        searched[0].1.len()
    );
}

#[tokio::test]
async fn foreign_hosts_and_origins_get_403_before_any_token_is_asked_for() {
    let (home, store, tokens) = home_with_tokens(
        r#"allowed_origins = ["https://app.example.com"]"#,
        &["laptop"],
    );
    let url = serve(&home, store, "127.0.0.1:0").await;
    let token = tokens[0].clone();
    human(move || {
        let authority = url.trim_start_matches("http://").trim_end_matches("/mcp");
        let port = authority.rsplit(':').next().unwrap();
        let evil_host = format!("evil.example.com:{port}");
        for token in [None, Some(token.as_str())] {
            let refused = post(&url, token, &[("Host", &evil_host)], INITIALIZE);
            assert_eq!(refused.status, 403, "{}", refused.body);
            assert!(
                refused.body.contains("http.allowed_hosts"),
                "{}",
                refused.body
            );
            let refused = post(
                &url,
                token,
                &[("Origin", "http://evil.example.com")],
                INITIALIZE,
            );
            assert_eq!(refused.status, 403, "{}", refused.body);
            assert!(
                refused.body.contains("http.allowed_origins"),
                "{}",
                refused.body
            );
            let refused = post(&url, token, &[("Origin", "null")], INITIALIZE);
            assert_eq!(refused.status, 403, "{}", refused.body);
        }
        let metadata = url.replace("/mcp", "/.well-known/oauth-protected-resource");
        assert_eq!(
            http("GET", &metadata, &[("Host", &evil_host)], None).status,
            403
        );
        assert_eq!(http("GET", &metadata, &[], None).status, 200);

        // The server's own origin passes the door and meets the token check.
        let own = format!("http://localhost:{port}");
        assert_eq!(
            post(&url, None, &[("Origin", &own)], INITIALIZE).status,
            401
        );
        let opened = post(&url, Some(&token), &[("Origin", &own)], INITIALIZE);
        assert_eq!(opened.status, 200, "{}", opened.body);
        assert_eq!(opened.header("access-control-allow-origin"), None);

        // A configured web origin gets CORS: the preflight, then the request.
        let preflight = http(
            "OPTIONS",
            &url,
            &[
                ("Origin", "https://app.example.com"),
                ("Access-Control-Request-Method", "POST"),
            ],
            None,
        );
        assert_eq!(preflight.status, 204);
        assert_eq!(
            preflight.header("access-control-allow-origin"),
            Some("https://app.example.com")
        );
        assert!(
            preflight
                .header("access-control-allow-headers")
                .unwrap()
                .contains("authorization")
        );
        let cross = post(
            &url,
            Some(&token),
            &[("Origin", "https://app.example.com")],
            INITIALIZE,
        );
        assert_eq!(cross.status, 200, "{}", cross.body);
        assert_eq!(
            cross.header("access-control-allow-origin"),
            Some("https://app.example.com")
        );
    })
    .await;
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413_and_each_token_has_its_own_rate() {
    let (home, store, tokens) = home_with_tokens(
        "max_body_bytes = 4096\nrequests_per_minute = 3",
        &["one", "two"],
    );
    let url = serve(&home, store, "127.0.0.1:0").await;
    human(move || {
        let padding = "x".repeat(5000);
        let large = INITIALIZE.replace("door-test", &padding);
        let refused = post(&url, Some(&tokens[1]), &[], &large);
        assert_eq!(refused.status, 413, "{}", refused.body);

        // "two" used one request above; "one" has all three.
        for _ in 0..3 {
            assert_eq!(post(&url, Some(&tokens[0]), &[], INITIALIZE).status, 200);
        }
        let limited = post(&url, Some(&tokens[0]), &[], INITIALIZE);
        assert_eq!(limited.status, 429, "{}", limited.body);
        let wait: u64 = limited.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=20).contains(&wait), "{wait}");
        assert!(
            limited.body.contains("more than 3 requests in a minute"),
            "{}",
            limited.body
        );
        assert_eq!(post(&url, Some(&tokens[1]), &[], INITIALIZE).status, 200);
    })
    .await;
}

#[test]
fn off_loopback_the_server_needs_tls_tokens_and_host_names_and_says_why() {
    let refusal = |config_lines: &str, listen: &str, token: bool| {
        let (home, _, _) = home_with_tokens(config_lines, if token { &["t"] } else { &[] });
        let output = keyward(home.path(), &["serve", "--http", listen]);
        assert!(!output.status.success());
        String::from_utf8(output.stderr).unwrap()
    };
    let said = refusal("", "0.0.0.0:0", true);
    assert!(
        said.contains("0.0.0.0:0 is not a loopback address") && said.contains("only over TLS"),
        "{said}"
    );
    let said = refusal("", "127.0.0.1:0", false);
    assert!(
        said.contains("no HTTP access token exists") && said.contains("keyward token create"),
        "{said}"
    );

    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = write_certificate(certs.path());
    let tls = format!(
        "tls_certificate = \"{}\"\ntls_key = \"{}\"",
        cert.display(),
        key.display()
    );
    let said = refusal(&tls, "0.0.0.0:0", true);
    assert!(
        said.contains("listens on every interface") && said.contains("http.allowed_hosts"),
        "{said}"
    );
    let broken = format!(
        "tls_certificate = \"{}\"\ntls_key = \"{}\"",
        key.display(),
        key.display()
    );
    let said = refusal(
        &format!("{broken}\nallowed_hosts = [\"localhost\"]"),
        "0.0.0.0:0",
        true,
    );
    assert!(
        said.contains("cannot use the TLS files") && said.contains("holds no PEM certificate"),
        "{said}"
    );
    let said = refusal("tls_key = \"key.pem\"", "127.0.0.1:0", true);
    assert!(
        said.contains("`http.tls_certificate` and `http.tls_key` go together"),
        "{said}"
    );
    let said = refusal(
        "allowed_hosts = [\"https://wallet.example.com\"]",
        "127.0.0.1:0",
        true,
    );
    assert!(said.contains("http.allowed_hosts[0]"), "{said}");
}

/// A self-signed certificate for `localhost`, as PEM files in `dir`.
fn write_certificate(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let issued = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, issued.cert.pem()).unwrap();
    std::fs::write(&key, issued.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

#[tokio::test]
async fn off_loopback_mcp_is_served_over_tls_to_a_client_that_trusts_the_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = write_certificate(certs.path());
    let (home, store, tokens) = home_with_tokens(
        &format!(
            "tls_certificate = \"{}\"\ntls_key = \"{}\"\nallowed_hosts = [\"localhost\"]",
            cert.display(),
            key.display()
        ),
        &["remote"],
    );
    let url = serve(&home, store, "0.0.0.0:0").await;
    let port = url.rsplit(':').next().unwrap().trim_end_matches("/mcp");
    assert!(url.starts_with("https://"), "{url}");
    let url = format!("https://localhost:{port}/mcp");

    let _ = rustls::crypto::ring::default_provider().install_default();
    let root = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(root)
        .no_proxy()
        .build()
        .unwrap();
    let response = client
        .post(&url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .bearer_auth(&tokens[0])
        .body(INITIALIZE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.contains("\"name\":\"keyward\""), "{body}");

    // Without a token over TLS: the same 401, pointing to the https metadata URL.
    let response = client.post(&url).body(INITIALIZE).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains(&format!(
            "https://localhost:{port}/.well-known/oauth-protected-resource/mcp"
        )),
        "{challenge}"
    );

    // A client that does not trust the certificate gets no connection at all; plain HTTP on the
    // TLS port gets no MCP.
    let untrusting = reqwest::Client::builder().no_proxy().build().unwrap();
    assert!(untrusting.post(&url).body(INITIALIZE).send().await.is_err());
    let plain = format!("http://localhost:{port}/mcp");
    let plain =
        human(move || std::panic::catch_unwind(|| post(&plain, None, &[], INITIALIZE).status).ok())
            .await;
    assert_ne!(plain, Some(200));
    assert_ne!(plain, Some(401));
}
