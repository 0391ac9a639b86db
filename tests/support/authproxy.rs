//! A loopback HTTP/1.1 reverse proxy that adds `Authorization: Bearer <token>` to every request
//! and forwards it to keyward unchanged: method, target, every header as received (`Host` and
//! `Origin` included, names in their original case), and the body streamed both ways, so
//! server-sent events reach the client as keyward sends them.
//!
//! It exists for clients that cannot send a header, such as the MCP conformance CLI, while keyward
//! always requires a token. It must add nothing but that header: a check the conformance suite
//! makes on Host or Origin has to reach keyward's own door.
//!
//! Each client connection gets its own connection to keyward, kept alive across the client's
//! requests and opened again if keyward closed it in between; when the client goes away, so does
//! the connection to keyward, which then sees the disconnect as it would without the proxy. If
//! keyward cannot be reached, the client's connection is closed without an answer.

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, oneshot};

type BoxError = Box<dyn Error + Send + Sync>;

/// A running proxy; dropping it stops accepting and closes every connection.
#[derive(Debug)]
pub(crate) struct AuthProxy {
    address: SocketAddr,
    forwarded: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AuthProxy {
    /// Starts a proxy on 127.0.0.1 (any free port) in front of `upstream`, on a thread of its own
    /// so it serves whatever runtime, if any, the test uses.
    pub(crate) fn start(upstream: SocketAddr, token: &str) -> Self {
        let bearer = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap();
        let forwarded = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = oneshot::channel();
        let counter = forwarded.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).unwrap();
                tokio::select! {
                    () = accept(listener, upstream, bearer, counter) => {}
                    _ = stopped => {}
                }
            });
            // Dropping the runtime here ends every connection still open.
        });
        Self {
            address,
            forwarded,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/mcp` through the proxy.
    pub(crate) fn mcp_url(&self) -> String {
        format!("http://{}/mcp", self.address)
    }

    /// How many requests have been forwarded so far.
    pub(crate) fn forwarded(&self) -> usize {
        self.forwarded.load(Ordering::Relaxed)
    }
}

impl Drop for AuthProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept(
    listener: TcpListener,
    upstream: SocketAddr,
    bearer: HeaderValue,
    forwarded: Arc<AtomicUsize>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let bearer = bearer.clone();
        let forwarded = forwarded.clone();
        tokio::spawn(async move {
            // One connection to keyward per client connection, opened at the first request.
            let to_keyward: Arc<Mutex<Option<SendRequest<Incoming>>>> = Arc::default();
            let service = service_fn(move |request| {
                forward(
                    request,
                    upstream,
                    bearer.clone(),
                    to_keyward.clone(),
                    forwarded.clone(),
                )
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .preserve_header_case(true)
                .serve_connection(TokioIo::new(client), service)
                .await;
        });
    }
}

async fn forward(
    mut request: Request<Incoming>,
    upstream: SocketAddr,
    bearer: HeaderValue,
    to_keyward: Arc<Mutex<Option<SendRequest<Incoming>>>>,
    forwarded: Arc<AtomicUsize>,
) -> Result<Response<Incoming>, BoxError> {
    request.headers_mut().insert(AUTHORIZATION, bearer);
    // HTTP/1.1 answers one request at a time on a connection, so holding the lock until the
    // answer's head arrives costs nothing.
    let mut slot = to_keyward.lock().await;
    let open = match slot.as_mut() {
        Some(sender) => sender.ready().await.is_ok(),
        None => false,
    };
    if !open {
        *slot = Some(connect(upstream).await?);
    }
    let sender = slot.as_mut().unwrap();
    let response = sender.send_request(request).await?;
    forwarded.fetch_add(1, Ordering::Relaxed);
    Ok(response)
}

async fn connect(upstream: SocketAddr) -> Result<SendRequest<Incoming>, BoxError> {
    let stream = TcpStream::connect(upstream).await?;
    let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
        .preserve_header_case(true)
        .handshake(TokioIo::new(stream))
        .await?;
    tokio::spawn(connection);
    sender.ready().await?;
    Ok(sender)
}
