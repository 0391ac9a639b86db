//! A recording HTTP proxy on loopback, which every test server's outbound traffic goes through
//! (`privacy.proxy` in [`super::mcp::config_text`]), and the privacy checks run on what it saw.
//!
//! It is a plain HTTP/1.1 forward proxy: it reads each request (absolute-form target), records
//! the host, port and body, forwards it to the target with `Connection: close`, and relays the
//! answer byte for byte, marked `Connection: close`. When the target cannot be reached it closes
//! the client's connection without an answer, so keyward sees an unreachable RPC just as it would
//! without the proxy.
//!
//! Each test runs in its own process under nextest, so the record is the test's own.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use serde_json::Value;

/// One request keyward sent out.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) body: Vec<u8>,
}

struct Proxy {
    url: String,
    seen: Mutex<Vec<Recorded>>,
}

static PROXY: LazyLock<Proxy> = LazyLock::new(|| {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = relay(stream);
            });
        }
    });
    Proxy {
        url,
        seen: Mutex::new(Vec::new()),
    }
});

/// The proxy's URL, for `privacy.proxy`.
pub(crate) fn url() -> &'static str {
    &PROXY.url
}

/// Every request recorded so far in this test process.
pub(crate) fn recorded() -> Vec<Recorded> {
    PROXY.seen.lock().unwrap().clone()
}

fn relay(client: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let mut headers = Vec::new();
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            if header == "\r\n" || header.is_empty() {
                break;
            }
            let lower = header.to_ascii_lowercase();
            if let Some(value) = lower.strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
            if !lower.starts_with("connection:") && !lower.starts_with("proxy-") {
                headers.push(header);
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        let url = url::Url::parse(target).map_err(std::io::Error::other)?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let port = url.port_or_known_default().unwrap_or(80);
        PROXY.seen.lock().unwrap().push(Recorded {
            host: host.clone(),
            port,
            body: body.clone(),
        });
        // An unreachable target: close without an answer, as the target itself would.
        let address = format!("{host}:{port}");
        let Ok(mut upstream) = TcpStream::connect(&address) else {
            return Ok(());
        };
        upstream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut path = url.path().to_owned();
        if let Some(query) = url.query() {
            path.push('?');
            path.push_str(query);
        }
        let mut request = format!("{method} {path} HTTP/1.1\r\n").into_bytes();
        for header in &headers {
            request.extend_from_slice(header.as_bytes());
        }
        request.extend_from_slice(b"Connection: close\r\n\r\n");
        request.extend_from_slice(&body);
        upstream.write_all(&request)?;
        let mut response = Vec::new();
        upstream.read_to_end(&mut response)?;
        if response.is_empty() {
            return Ok(());
        }
        client.write_all(&mark_close(response))
    }
}

/// The response with `Connection: close` among its headers, so the client does not reuse the
/// connection this proxy is about to close.
fn mark_close(response: Vec<u8>) -> Vec<u8> {
    let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
        return response;
    };
    let head = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
    if head.contains("\r\nconnection: close") {
        return response;
    }
    let mut marked = response[..end].to_vec();
    marked.extend_from_slice(b"\r\nConnection: close");
    marked.extend_from_slice(&response[end..]);
    marked
}

/// What a test home's recorded traffic must satisfy: every request went to a host its config
/// names, carried no secret of its wallet, and, unless `batch_own_addresses` is on, at most one
/// of the wallet's own addresses. The one exception is a transaction between two of the wallet's
/// own accounts: its plan and broadcast name both, as the transaction itself will on chain.
pub(crate) fn violations(
    allowed_hosts: &[String],
    own: &[String],
    secrets: &super::canary::Canaries,
    batching: bool,
) -> Vec<String> {
    let mut found = Vec::new();
    for (i, request) in recorded().iter().enumerate() {
        if !allowed_hosts.contains(&request.host) {
            found.push(format!(
                "request {i} went to {}:{}",
                request.host, request.port
            ));
        }
        if let Some(what) = secrets.find(&request.body) {
            found.push(format!("request {i} carried {what}"));
        }
        let body = String::from_utf8_lossy(&request.body).to_ascii_lowercase();
        let present: Vec<&String> = own.iter().filter(|a| body.contains(a.as_str())).collect();
        if present.len() > 1 && !batching && !one_transaction_names_all(&request.body, &present) {
            found.push(format!(
                "request {i} carried {} of the wallet's addresses: {body}",
                present.len()
            ));
        }
    }
    found
}

fn one_transaction_names_all(body: &[u8], present: &[&String]) -> bool {
    let Ok(Value::Array(calls)) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    calls.iter().any(|call| {
        matches!(
            call["method"].as_str(),
            Some("eth_estimateGas" | "eth_call" | "eth_createAccessList")
        ) && {
            let params = call["params"].to_string().to_ascii_lowercase();
            present.iter().all(|a| params.contains(a.as_str()))
        }
    })
}
