//! A JSON-RPC reverse proxy on loopback that stands between keyward and Anvil and misbehaves on
//! demand: the RPC URL in a test's config points at it, and it forwards to Anvil.
//!
//! A test sets a [`Rule`] while the server runs: which [`Fault`], for which JSON-RPC method (a
//! batch matches when any of its calls has that method), and for how many matching requests;
//! everything else passes through. The proxy records every `eth_sendRawTransaction` it forwarded
//! to Anvil, so "nothing is sent twice" is checked where the bytes leave, besides on the chain.
//!
//! It serves one request per connection (the recording forward proxy in front of it asks for
//! `Connection: close`), on 127.0.0.1 only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// What the proxy does to a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Forward and relay the answer untouched.
    PassThrough,
    /// Close the connection without forwarding or answering: the node never saw the request.
    Drop,
    /// Forward, then close without answering: the node acted, keyward never hears of it.
    DropAfterForward,
    /// Forward, then answer after this long.
    Delay(Duration),
    /// Forward, then send the headers and half of the body, and close.
    Truncate,
    /// Forward, then answer 200 with a body that is not JSON.
    NotJson,
    /// Forward, then answer with every JSON-RPC id moved by 1000.
    WrongIds,
    /// Forward, then answer with every result but `eth_chainId`'s replaced by a JSON object.
    WrongTypes,
    /// Forward, then answer `eth_chainId` with this chain id.
    ChainId(u64),
    /// Hold the connection open without forwarding, until [`FaultProxy::release`].
    Stall,
    /// Forward, then hold the answer back until [`FaultProxy::release`], and close without it.
    StallAfterForward,
}

/// When a fault applies.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) fault: Fault,
    /// Only batches with a call of this method; `None` for every request.
    pub(crate) method: Option<&'static str>,
    /// For this many matching requests, then pass-through; `None` for all of them.
    pub(crate) times: Option<u32>,
}

impl Rule {
    /// `fault` on every request.
    pub(crate) fn always(fault: Fault) -> Self {
        Self {
            fault,
            method: None,
            times: None,
        }
    }

    /// `fault` on the next request that calls `method`, once.
    pub(crate) fn once_on(method: &'static str, fault: Fault) -> Self {
        Self {
            fault,
            method: Some(method),
            times: Some(1),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    rule: Option<Rule>,
    /// Raw transactions (hex, as sent) forwarded to Anvil, in order.
    forwarded_raw: Vec<String>,
    /// Requests held open by a stall right now, and the releases asked for so far.
    stalled: usize,
    releases: u64,
    /// Requests that met a fault (not pass-through).
    faulted: usize,
}

#[derive(Debug)]
struct Shared {
    upstream: u16,
    state: Mutex<State>,
    changed: Condvar,
}

/// A running fault proxy. Its threads live as long as the test process.
#[derive(Debug, Clone)]
pub(crate) struct FaultProxy {
    shared: Arc<Shared>,
    /// The URL for `rpc_url`.
    pub(crate) url: String,
}

impl FaultProxy {
    /// A proxy in front of the Anvil on `upstream_port`, passing everything through.
    pub(crate) fn start(upstream_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            upstream: upstream_port,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let serving = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = serving.clone();
                std::thread::spawn(move || {
                    let _ = serve(&shared, stream);
                });
            }
        });
        Self { shared, url }
    }

    /// Applies `rule` from the next request on, replacing the one before.
    pub(crate) fn set(&self, rule: Rule) {
        self.shared.state.lock().unwrap().rule = Some(rule);
    }

    /// Back to pass-through.
    pub(crate) fn clear(&self) {
        self.shared.state.lock().unwrap().rule = None;
    }

    /// Ends every stall now: each held connection is closed without an answer.
    pub(crate) fn release(&self) {
        let mut state = self.shared.state.lock().unwrap();
        state.releases += 1;
        self.shared.changed.notify_all();
    }

    /// Waits until `count` requests are held by a stall; false after `timeout`.
    pub(crate) fn wait_stalled(&self, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.state.lock().unwrap();
        while state.stalled < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self.shared.changed.wait_timeout(state, left).unwrap().0;
        }
        true
    }

    /// Every raw transaction forwarded to Anvil so far, hex as sent.
    pub(crate) fn forwarded_raw(&self) -> Vec<String> {
        self.shared.state.lock().unwrap().forwarded_raw.clone()
    }

    /// How many requests met a fault so far.
    pub(crate) fn faulted(&self) -> usize {
        self.shared.state.lock().unwrap().faulted
    }
}

/// The fault for a request calling `methods`, counting it against the rule.
fn fault_for(shared: &Shared, methods: &[String]) -> Fault {
    let mut state = shared.state.lock().unwrap();
    let Some(rule) = state.rule.as_mut() else {
        return Fault::PassThrough;
    };
    if rule
        .method
        .is_some_and(|wanted| !methods.iter().any(|m| m == wanted))
    {
        return Fault::PassThrough;
    }
    let fault = rule.fault.clone();
    if let Some(times) = rule.times.as_mut() {
        *times -= 1;
        if *times == 0 {
            state.rule = None;
        }
    }
    if fault != Fault::PassThrough {
        state.faulted += 1;
    }
    fault
}

fn serve(shared: &Shared, client: TcpStream) -> std::io::Result<()> {
    let mut client = client;
    let body = read_request(&client)?;
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let calls: Vec<&Value> = match &request {
        Value::Array(calls) => calls.iter().collect(),
        single => vec![single],
    };
    let methods: Vec<String> = calls
        .iter()
        .filter_map(|c| c["method"].as_str().map(str::to_owned))
        .collect();
    let fault = fault_for(shared, &methods);
    match fault {
        Fault::Drop => return Ok(()),
        Fault::Stall => {
            stall(shared);
            return Ok(());
        }
        _ => {}
    }
    let raws: Vec<String> = calls
        .iter()
        .filter(|c| c["method"] == "eth_sendRawTransaction")
        .filter_map(|c| c["params"][0].as_str().map(str::to_owned))
        .collect();
    let answer = forward(shared.upstream, &body)?;
    if !raws.is_empty() {
        shared.state.lock().unwrap().forwarded_raw.extend(raws);
    }
    let answer = match fault {
        Fault::DropAfterForward => return Ok(()),
        Fault::StallAfterForward => {
            stall(shared);
            return Ok(());
        }
        Fault::Delay(delay) => {
            std::thread::sleep(delay);
            answer
        }
        Fault::Truncate => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                answer.len()
            );
            client.write_all(head.as_bytes())?;
            client.write_all(&answer[..answer.len() / 2])?;
            return Ok(());
        }
        Fault::NotJson => b"<html>502 Bad Gateway</html>".to_vec(),
        Fault::WrongIds => rewrite(&answer, |response, _| {
            if let Some(id) = response["id"].as_u64() {
                response["id"] = json!(id + 1000);
            }
        }),
        Fault::WrongTypes => rewrite(&answer, |response, method| {
            if method != Some("eth_chainId") && response.get("result").is_some() {
                response["result"] = json!({ "unexpected": true });
            }
        }),
        Fault::ChainId(chain_id) => rewrite(&answer, |response, method| {
            if method == Some("eth_chainId") {
                response["result"] = json!(format!("0x{chain_id:x}"));
            }
        }),
        Fault::PassThrough | Fault::Drop | Fault::Stall => answer,
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        answer.len()
    );
    client.write_all(head.as_bytes())?;
    client.write_all(&answer)
}

/// Holds the calling connection until the next release.
fn stall(shared: &Shared) {
    let mut state = shared.state.lock().unwrap();
    let release = state.releases;
    state.stalled += 1;
    shared.changed.notify_all();
    while state.releases == release {
        state = shared.changed.wait(state).unwrap();
    }
    state.stalled -= 1;
}

/// Applies `change` to each response of a batch (or the single response), with the method of the
/// call it answers. Anvil answers a batch in order, so position gives the method.
fn rewrite(answer: &[u8], change: impl Fn(&mut Value, Option<&str>)) -> Vec<u8> {
    let Ok(mut value) = serde_json::from_slice::<Value>(answer) else {
        return answer.to_vec();
    };
    let methods = METHODS.with(|m| m.borrow().clone());
    match &mut value {
        Value::Array(responses) => {
            for (i, response) in responses.iter_mut().enumerate() {
                change(response, methods.get(i).map(String::as_str));
            }
        }
        single => change(single, methods.first().map(String::as_str)),
    }
    serde_json::to_vec(&value).unwrap()
}

thread_local! {
    /// The methods of the batch this connection's thread is answering, in order.
    static METHODS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Reads one HTTP request and returns its body.
fn read_request(client: &TcpStream) -> std::io::Result<Vec<u8>> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
        if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let methods = match &request {
        Value::Array(calls) => calls
            .iter()
            .map(|c| c["method"].as_str().unwrap_or_default().to_owned())
            .collect(),
        single => vec![single["method"].as_str().unwrap_or_default().to_owned()],
    };
    METHODS.with(|m| *m.borrow_mut() = methods);
    Ok(body)
}

/// POSTs `body` to Anvil and returns the answer's body.
fn forward(port: u16, body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut upstream = TcpStream::connect(("127.0.0.1", port))?;
    upstream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let head = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    upstream.write_all(head.as_bytes())?;
    upstream.write_all(body)?;
    let mut response = Vec::new();
    upstream.read_to_end(&mut response)?;
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("Anvil's answer has no header end"))?;
    let headers = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
    let body = response[end + 4..].to_vec();
    if headers.contains("transfer-encoding: chunked") {
        return Ok(dechunk(&body));
    }
    Ok(body)
}

fn dechunk(mut chunked: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(line_end) = chunked.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&chunked[..line_end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        body.extend_from_slice(&chunked[start..start + size]);
        chunked = &chunked[start + size + 2..];
    }
    body
}
