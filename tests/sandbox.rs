//! keyward's own sandbox, seen from outside: the real `keyward serve`, with the debug build's
//! probe (`KEYWARD_SANDBOX_PROBE`) making the attempts a compromised keyward would make once the
//! sandbox is up. Files outside the home and unlisted ports are refused with a logged error while
//! the server goes on serving; `execve` ends the process with SIGSYS. The same probes with
//! `--no-sandbox` succeed, so the probes themselves are real. An `https` RPC is trusted through
//! the authorities loaded before the sandbox, which then opens no certificate file; a configuration
//! of plain-HTTP nodes needs no authorities at all.
//!
//! The fund-movement and Ledger suites run against the sandboxed binary too: `scripts/test` runs
//! them once with `KEYWARD_TEST_SERVER=sandboxed` (tests/funds/sandboxed.rs).

use std::io::Read as _;
use std::net::TcpListener;
use std::os::unix::process::ExitStatusExt as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use tokio::io::AsyncBufReadExt as _;

use crate::support::anvil::Anvil;
use crate::support::mcp::{
    Client, Generation, ServerHome, as_serve, call, config_text, connect_with, ok, tool_error,
    wait_until_no_server,
};

/// A canary standing in for `~/.ssh`: a private key file outside keyward's home.
const CANARY: &str = "keyward sandbox canary: not a real key";

/// A loopback port nobody configured, counting the connections that reach it.
struct Unlisted {
    port: u16,
    reached: Arc<AtomicUsize>,
}

impl Unlisted {
    fn open() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let reached = Arc::new(AtomicUsize::new(0));
        let counter = reached.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stream.is_ok() {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        Self { port, reached }
    }
}

/// `keyward serve` over stdio on `home` with these probes, and what it logged up to the last
/// probe's line; `extra` goes after `serve` (e.g. `--no-sandbox`).
async fn serve_probing(home: &ServerHome, probes: &[String], extra: &[&str]) -> (Client, String) {
    serve_probing_with(home, probes, extra, &[]).await
}

/// [`serve_probing`] with these environment variables added to the clean environment.
async fn serve_probing_with(
    home: &ServerHome,
    probes: &[String],
    extra: &[&str],
    environment: &[(&str, &std::path::Path)],
) -> (Client, String) {
    // A server just cancelled may still hold the wallet's lock.
    wait_until_no_server(home.path()).await;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_keyward"));
    as_serve(&mut command, home.path(), "info")
        .args(extra)
        .envs(environment.iter().copied())
        .env("KEYWARD_SANDBOX_PROBE", probes.join(","));
    let (transport, stderr) = rmcp::transport::TokioChildProcess::builder(command)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(stderr.unwrap()).lines();
    let mut log = String::new();
    let mut answered = 0;
    while answered < probes.len() {
        let Ok(Some(line)) = lines.next_line().await else {
            panic!("keyward serve exited before all probes answered:\n{log}");
        };
        answered += usize::from(line.contains("sandbox probe") && !line.contains("Ledgers"));
        log.push_str(&line);
        log.push('\n');
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (
        connect_with((), transport, Generation::Initialize).await,
        log,
    )
}

fn outcome<'a>(log: &'a str, probe: &str) -> &'a str {
    log.lines()
        .find_map(|line| line.split_once(&format!("sandbox probe {probe}: ")))
        .map(|(_, outcome)| outcome)
        .unwrap_or_else(|| panic!("no outcome for probe {probe}:\n{log}"))
}

#[tokio::test]
async fn files_outside_the_home_and_unlisted_ports_are_refused_and_the_server_serves_on() {
    let Some(anvil) = Anvil::start(None, 31337) else {
        return;
    };
    let home = ServerHome::new(&anvil.url);
    let outside = tempfile::tempdir().unwrap();
    let key = outside.path().join("id_ed25519");
    std::fs::write(&key, CANARY).unwrap();
    let unlisted = Unlisted::open();
    let anvil_port = anvil
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let probes = vec![
        format!("read:{}", key.display()),
        format!("connect:127.0.0.1:{}", unlisted.port),
        format!("read:{}", home.config_path().display()),
        format!("connect:127.0.0.1:{anvil_port}"),
        // What a Ledger over USB needs: HID enumeration through libudev and /sys.
        "hid:".to_owned(),
    ];

    let (client, log) = serve_probing(&home, &probes, &[]).await;
    println!(
        "{}",
        log.lines()
            .filter(|l| l.contains("sandbox"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        outcome(&log, &probes[0]).contains("Permission denied"),
        "the file outside the home was readable:\n{log}"
    );
    assert!(
        outcome(&log, &probes[1]).contains("Permission denied"),
        "the unlisted port was reachable:\n{log}"
    );
    assert_eq!(outcome(&log, &probes[2]), "allowed", "{log}");
    assert_eq!(outcome(&log, &probes[3]), "allowed", "{log}");
    assert_eq!(outcome(&log, "hid:"), "allowed", "{log}");
    assert!(!log.contains(CANARY));
    assert_eq!(unlisted.reached.load(Ordering::SeqCst), 0);
    // The refusals cost nothing else: the server reads the chain and answers.
    let balances = ok(&call(&client, "wallet_balances", json!({ "account": 0 })).await).clone();
    assert!(balances.to_string().contains("ETH"), "{balances}");
    client.cancel().await.unwrap();

    // The same attempts without the sandbox succeed: the probes are real.
    let (client, log) = serve_probing(&home, &probes, &["--no-sandbox"]).await;
    assert!(
        log.contains("the sandbox is off (--no-sandbox, unsafe)"),
        "{log}"
    );
    assert_eq!(outcome(&log, &probes[0]), "allowed", "{log}");
    assert_eq!(outcome(&log, &probes[1]), "allowed", "{log}");
    // The listener's thread counts the connection a moment after the probe made it.
    let started = std::time::Instant::now();
    while unlisted.reached.load(Ordering::SeqCst) == 0 && started.elapsed().as_secs() < 10 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(unlisted.reached.load(Ordering::SeqCst), 1);
    client.cancel().await.unwrap();
}

/// Anvil behind TLS: a terminator on a loopback port, with a self-signed certificate for
/// 127.0.0.1, forwarding each connection to `anvil_port`. Counts the completed handshakes.
async fn tls_in_front_of(anvil_port: u16, dir: &std::path::Path) -> (u16, Arc<AtomicUsize>) {
    let issued = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    std::fs::write(dir.join("cert.pem"), issued.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), issued.signing_key.serialize_pem()).unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(issued.signing_key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![issued.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handshakes = Arc::new(AtomicUsize::new(0));
    let counter = handshakes.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, counter) = (acceptor.clone(), counter.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let mut node = tokio::net::TcpStream::connect(("127.0.0.1", anvil_port))
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut node).await;
            });
        }
    });
    (port, handshakes)
}

#[tokio::test]
async fn an_https_rpc_is_trusted_through_authorities_loaded_before_the_sandbox_and_no_file_after() {
    let Some(anvil) = Anvil::start(None, 31337) else {
        return;
    };
    let anvil_port: u16 = anvil
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let certs = tempfile::tempdir().unwrap();
    let (port, handshakes) = tls_in_front_of(anvil_port, certs.path()).await;
    let home = direct_home(&format!("https://127.0.0.1:{port}"));
    let cert = certs.path().join("cert.pem");
    // The authority's file, read when the HTTP client was built, is closed to the sandboxed
    // process: the sandbox opens no certificate file.
    let probes = vec![format!("read:{}", cert.display())];

    let (client, log) = serve_probing_with(&home, &probes, &[], &[("SSL_CERT_FILE", &cert)]).await;
    assert!(log.contains("sandbox on:"), "{log}");
    assert!(
        outcome(&log, &probes[0]).contains("Permission denied"),
        "the certificate file was readable inside the sandbox:\n{log}"
    );
    let balances = ok(&call(&client, "wallet_balances", json!({ "account": 0 })).await).clone();
    assert!(balances.to_string().contains("ETH"), "{balances}");
    assert!(handshakes.load(Ordering::SeqCst) > 0, "no TLS handshake");
    client.cancel().await.unwrap();

    // The control: without the certificate file the same server cannot trust the node, so the
    // balance above was read over verified TLS, not around it. The error says what to do.
    let reached = handshakes.load(Ordering::SeqCst);
    let message = balance_refusal(&home, &[]).await;
    assert!(
        message.contains("not signed by an authority this machine trusts"),
        "{message}"
    );
    assert!(message.contains("SSL_CERT_FILE"), "{message}");
    assert_eq!(
        handshakes.load(Ordering::SeqCst),
        reached,
        "a handshake completed with an untrusted certificate"
    );

    // By a name the certificate does not carry, resolved inside the sandbox through /etc/hosts:
    // trusted, but for another host.
    let named = direct_home(&format!("https://localhost:{port}"));
    let message = balance_refusal(&named, &[("SSL_CERT_FILE", &cert)]).await;
    assert!(message.contains("for another host name"), "{message}");

    // https to a port that speaks plain HTTP (Anvil's own): no TLS at all.
    let plain = direct_home(&format!("https://127.0.0.1:{anvil_port}"));
    let message = balance_refusal(&plain, &[]).await;
    assert!(message.contains("the TLS handshake failed"), "{message}");
}

#[tokio::test]
async fn plain_http_nodes_need_no_certificate_authorities_and_https_says_what_is_missing() {
    let Some(anvil) = Anvil::start(None, 31337) else {
        return;
    };
    // SSL_CERT_FILE naming a missing file stands for a machine without CA certificates.
    let none = std::path::Path::new("/nonexistent/keyward-test/ca.pem");
    let home = ServerHome::new(&anvil.url);
    let probe = [format!("read:{}", home.config_path().display())];
    let (client, log) = serve_probing_with(&home, &probe, &[], &[("SSL_CERT_FILE", none)]).await;
    assert!(log.contains("sandbox on:"), "{log}");
    let balances = ok(&call(&client, "wallet_balances", json!({ "account": 0 })).await).clone();
    assert!(balances.to_string().contains("ETH"), "{balances}");
    client.cancel().await.unwrap();

    let https = direct_home("https://127.0.0.1:9");
    wait_until_no_server(https.path()).await;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_keyward"));
    let refused = as_serve(&mut command, https.path(), "warn")
        .env("SSL_CERT_FILE", none)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    println!("{said}");
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(refused.stdout.is_empty(), "stdout belongs to MCP");
    assert!(
        said.contains("https, but no trusted certificate authorities could be loaded")
            && said.contains("SSL_CERT_FILE"),
        "{said}"
    );
}

/// A home whose server reaches `rpc_url` directly: the tests' recording proxy speaks plain HTTP
/// only, without CONNECT.
fn direct_home(rpc_url: &str) -> ServerHome {
    let config = config_text(rpc_url, 31337);
    ServerHome::with_config(config.split_once("\n[privacy]").unwrap().0)
}

/// The sandboxed server on `home`, with `environment`, refuses a balance call for its TLS: the
/// error's message.
async fn balance_refusal(home: &ServerHome, environment: &[(&str, &std::path::Path)]) -> String {
    // One probe, so that the log is read up to the sandbox's line.
    let probe = [format!("read:{}", home.config_path().display())];
    let (client, log) = serve_probing_with(home, &probe, &[], environment).await;
    assert!(log.contains("sandbox on:"), "{log}");
    let (kind, message) =
        tool_error(&call(&client, "wallet_balances", json!({ "account": 0 })).await);
    println!("{}: {kind}: {message}", home.config_path().display());
    assert_eq!(kind, "rpc_untrusted", "{message}");
    client.cancel().await.unwrap();
    message
}

#[test]
fn execve_ends_the_sandboxed_server_with_sigsys_and_the_kernel_logs_it() {
    let home = ServerHome::new("http://127.0.0.1:9");
    let run = |extra: &[&str]| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keyward"))
            .arg("--home")
            .arg(home.path())
            .arg("serve")
            .args(extra)
            .env_clear()
            .env("RUST_LOG", "info")
            .env("KEYWARD_SANDBOX_PROBE", "exec:/bin/true")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut log = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut log)
            .unwrap();
        (child.wait().unwrap(), pid, log)
    };

    let (status, pid, log) = run(&[]);
    assert_eq!(
        status.signal(),
        Some(libc::SIGSYS),
        "execve did not end the server with SIGSYS ({status:?}):\n{log}"
    );
    assert!(log.contains("sandbox on:"), "{log}");
    assert!(
        !log.contains("sandbox probe exec"),
        "execve returned:\n{log}"
    );
    match std::process::Command::new("dmesg").output() {
        Ok(output) if output.status.success() => {
            let kernel = String::from_utf8_lossy(&output.stdout);
            let record = kernel
                .lines()
                .find(|line| line.contains("type=1326") && line.contains(&format!("pid={pid} ")));
            match record {
                Some(record) => {
                    assert!(record.contains("syscall=59"), "{record}");
                    println!("the kernel logged: {}", record.trim());
                }
                None => println!(
                    "the kernel log has no seccomp record for pid {pid} (auditing may be off, or \
                     the record went to auditd)"
                ),
            }
        }
        _ => println!("skipped reading the kernel's seccomp record: dmesg cannot be read here"),
    }

    // Without the sandbox the same probe really runs /bin/true in keyward's place.
    let (status, _, log) = run(&["--no-sandbox"]);
    assert!(status.success(), "{status:?}:\n{log}");
}
