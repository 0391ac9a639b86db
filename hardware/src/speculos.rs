//! The Speculos emulator's raw APDU socket: the Ethereum app running under emulation, reached over
//! TCP. For tests and development; it never reaches a real device.
//!
//! The protocol: the request is a u32 big-endian length and the APDU; the reply is a u32
//! big-endian N, N data bytes, then the two status bytes (N excludes them). Every blocking read or
//! write lasts at most [`POLL`], and the [`Wait`] is checked between them.
//!
//! Speculos listens on every interface: run it where only loopback can reach it (the integration
//! test starts it in a private network namespace).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::thread;
use std::time::Duration;

use crate::error::TransportError;
use crate::transport::{Transport, Wait};

/// The longest a single blocking socket call lasts before the [`Wait`] is checked again.
const POLL: Duration = Duration::from_millis(100);
/// How often a caller blocked behind another exchange looks at its own [`Wait`].
const LOCK_POLL: Duration = Duration::from_millis(10);
/// The shortest timeout a socket accepts (zero means "block forever" to the OS, and std refuses it).
const MIN_SLICE: Duration = Duration::from_millis(1);
/// The longest reply data accepted. The Ethereum app answers at most a few hundred bytes; a larger
/// announced length means the stream is out of step, not that memory should be reserved for it.
const MAX_REPLY_DATA: usize = u16::MAX as usize;

/// A connection to Speculos's raw APDU port (`--apdu-port`, 9999 by default).
///
/// Exchanges from several threads take turns on the one connection. An exchange that fails or is
/// abandoned (timeout, cancel) closes the connection, because a reply arriving later would be read
/// as the answer to the next APDU; later exchanges then fail with
/// [`TransportError::Disconnected`] until a new transport is connected.
#[derive(Debug)]
pub struct SpeculosTransport {
    addr: SocketAddr,
    stream: Mutex<Option<TcpStream>>,
}

impl SpeculosTransport {
    /// Connects to Speculos at `addr`, trying again every [`POLL`] until it accepts or `wait`
    /// ends: Speculos takes a moment to start listening. Give `wait` a deadline; when it passes
    /// without a connection, the error is [`TransportError::Disconnected`] with the last reason.
    pub fn connect(addr: SocketAddr, wait: &Wait) -> Result<Self, TransportError> {
        let mut last_error = None;
        loop {
            if let Err(ended) = wait.check() {
                return Err(match (ended, last_error) {
                    (TransportError::TimedOut { .. }, Some(error)) => TransportError::Disconnected(
                        format!("cannot connect to Speculos at {addr}: {error}"),
                    ),
                    (ended, _) => ended,
                });
            }
            match TcpStream::connect_timeout(&addr, slice(wait)) {
                Ok(stream) => {
                    // One small request at a time: send it now rather than wait to coalesce.
                    stream
                        .set_nodelay(true)
                        .map_err(|error| io_lost(addr, &error))?;
                    return Ok(Self {
                        addr,
                        stream: Mutex::new(Some(stream)),
                    });
                }
                Err(error) => {
                    last_error = Some(error);
                    thread::sleep(slice(wait));
                }
            }
        }
    }

    /// The address this transport connected to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Transport for SpeculosTransport {
    fn exchange(&self, apdu: &[u8], wait: &Wait) -> Result<Vec<u8>, TransportError> {
        let length = u32::try_from(apdu.len()).map_err(|_| {
            TransportError::Malformed(format!(
                "keyward built a {}-byte command, longer than Speculos's protocol carries; \
                 nothing was sent",
                apdu.len()
            ))
        })?;
        let mut connection = lock_waiting(&self.stream, wait)?;
        let Some(stream) = connection.as_mut() else {
            return Err(TransportError::Disconnected(
                "an earlier exchange with Speculos did not finish, so its connection was closed; \
                 connect again"
                    .to_owned(),
            ));
        };
        let result = exchange_on(stream, self.addr, length, apdu, wait);
        if result.is_err() {
            // Out of step with Speculos from here on: drop the connection rather than misread.
            *connection = None;
        }
        result
    }
}

fn exchange_on(
    stream: &mut TcpStream,
    addr: SocketAddr,
    length: u32,
    apdu: &[u8],
    wait: &Wait,
) -> Result<Vec<u8>, TransportError> {
    let mut request = Vec::with_capacity(4 + apdu.len());
    request.extend_from_slice(&length.to_be_bytes());
    request.extend_from_slice(apdu);
    write_all_waiting(stream, addr, &request, wait)?;

    let mut header = [0u8; 4];
    read_exact_waiting(stream, addr, &mut header, wait)?;
    let data_len = usize::try_from(u32::from_be_bytes(header)).unwrap_or(usize::MAX);
    if data_len > MAX_REPLY_DATA {
        return Err(TransportError::Malformed(format!(
            "Speculos announced {data_len} bytes of reply data, more than any APDU reply"
        )));
    }
    let mut reply = vec![0u8; data_len + 2];
    read_exact_waiting(stream, addr, &mut reply, wait)?;
    Ok(reply)
}

/// The next blocking call's timeout: [`POLL`], or less when the wait ends sooner.
fn slice(wait: &Wait) -> Duration {
    wait.remaining()
        .map_or(POLL, |remaining| remaining.min(POLL))
        .max(MIN_SLICE)
}

fn is_timeout(error: &std::io::Error) -> bool {
    matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

fn io_lost(addr: SocketAddr, error: &std::io::Error) -> TransportError {
    TransportError::Disconnected(format!("Speculos at {addr}: {error}"))
}

fn write_all_waiting(
    stream: &mut TcpStream,
    addr: SocketAddr,
    mut bytes: &[u8],
    wait: &Wait,
) -> Result<(), TransportError> {
    while !bytes.is_empty() {
        wait.check()?;
        stream
            .set_write_timeout(Some(slice(wait)))
            .map_err(|error| io_lost(addr, &error))?;
        match stream.write(bytes) {
            Ok(0) => {
                return Err(TransportError::Disconnected(format!(
                    "Speculos at {addr} stopped accepting data"
                )));
            }
            Ok(written) => bytes = &bytes[written..],
            Err(error) if is_timeout(&error) || error.kind() == ErrorKind::Interrupted => {}
            Err(error) => return Err(io_lost(addr, &error)),
        }
    }
    Ok(())
}

fn read_exact_waiting(
    stream: &mut TcpStream,
    addr: SocketAddr,
    buffer: &mut [u8],
    wait: &Wait,
) -> Result<(), TransportError> {
    let mut filled = 0;
    while filled < buffer.len() {
        wait.check()?;
        stream
            .set_read_timeout(Some(slice(wait)))
            .map_err(|error| io_lost(addr, &error))?;
        match stream.read(&mut buffer[filled..]) {
            Ok(0) => {
                return Err(TransportError::Disconnected(format!(
                    "Speculos at {addr} closed the connection {filled} bytes into a {}-byte read",
                    buffer.len()
                )));
            }
            Ok(read) => filled += read,
            Err(error) if is_timeout(&error) || error.kind() == ErrorKind::Interrupted => {}
            Err(error) => return Err(io_lost(addr, &error)),
        }
    }
    Ok(())
}

/// Takes the connection lock without blocking past `wait`.
fn lock_waiting<'a>(
    mutex: &'a Mutex<Option<TcpStream>>,
    wait: &Wait,
) -> Result<MutexGuard<'a, Option<TcpStream>>, TransportError> {
    loop {
        match mutex.try_lock() {
            Ok(guard) => return Ok(guard),
            // A thread panicked mid-exchange and left the stream out of step: close it.
            Err(TryLockError::Poisoned(poisoned)) => {
                let mut guard = poisoned.into_inner();
                *guard = None;
                mutex.clear_poison();
                return Ok(guard);
            }
            Err(TryLockError::WouldBlock) => {
                wait.check()?;
                thread::sleep(LOCK_POLL);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Shutdown, TcpListener};
    use std::sync::Arc;
    use std::sync::mpsc;
    use std::thread::JoinHandle;
    use std::time::Instant;

    use super::*;

    /// What the in-test server does with each request it reads.
    #[derive(Clone)]
    enum Answer {
        /// Writes these bytes as separate writes, pausing between them.
        Pieces(Vec<Vec<u8>>),
        /// Writes these bytes, then closes the connection.
        ThenClose(Vec<u8>),
        /// Never answers; holds the connection open until the test ends.
        Silence,
    }

    /// A one-connection Speculos stand-in on 127.0.0.1. It reads `u32 BE length ‖ APDU`
    /// requests, sends each APDU to the test, and answers as told.
    struct Server {
        addr: SocketAddr,
        requests: mpsc::Receiver<Vec<u8>>,
        handle: JoinHandle<()>,
        stop: mpsc::Sender<()>,
    }

    impl Server {
        fn start(answers: Vec<Answer>) -> std::io::Result<Self> {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let addr = listener.local_addr()?;
            let (request_tx, requests) = mpsc::channel();
            let (stop, stop_rx) = mpsc::channel::<()>();
            let handle = thread::spawn(move || {
                let Ok((mut stream, _)) = listener.accept() else {
                    return;
                };
                for answer in answers {
                    let mut length = [0u8; 4];
                    if stream.read_exact(&mut length).is_err() {
                        return;
                    }
                    let mut apdu = vec![0u8; u32::from_be_bytes(length) as usize];
                    if stream.read_exact(&mut apdu).is_err() {
                        return;
                    }
                    let _ = request_tx.send(apdu);
                    match answer {
                        Answer::Pieces(pieces) => {
                            for piece in pieces {
                                if stream
                                    .write_all(&piece)
                                    .and_then(|()| stream.flush())
                                    .is_err()
                                {
                                    return;
                                }
                                thread::sleep(Duration::from_millis(30));
                            }
                        }
                        Answer::ThenClose(bytes) => {
                            let _ = stream.write_all(&bytes);
                            let _ = stream.shutdown(Shutdown::Both);
                            return;
                        }
                        Answer::Silence => {
                            let _ = stop_rx.recv();
                            return;
                        }
                    }
                }
                let _ = stop_rx.recv();
            });
            Ok(Self {
                addr,
                requests,
                handle,
                stop,
            })
        }

        fn finish(self) -> Vec<Vec<u8>> {
            let _ = self.stop.send(());
            let _ = self.handle.join();
            self.requests.try_iter().collect()
        }
    }

    fn short_wait() -> Wait {
        Wait::new(Some(Duration::from_secs(5)))
    }

    /// `u32 BE N ‖ data ‖ SW`.
    fn speculos_reply(data: &[u8], sw: [u8; 2]) -> Vec<u8> {
        let mut reply = (data.len() as u32).to_be_bytes().to_vec();
        reply.extend_from_slice(data);
        reply.extend_from_slice(&sw);
        reply
    }

    const APP_CONFIGURATION: [u8; 5] = [0xE0, 0x06, 0x00, 0x00, 0x00];

    #[test]
    fn an_exchange_sends_length_then_apdu_and_returns_data_then_status() -> std::io::Result<()> {
        let server = Server::start(vec![
            Answer::Pieces(vec![speculos_reply(
                &[0x01, 0x01, 0x09, 0x11],
                [0x90, 0x00],
            )]),
            Answer::Pieces(vec![speculos_reply(&[], [0x69, 0x85])]),
        ])?;
        let transport = SpeculosTransport::connect(server.addr, &short_wait());
        let transport = transport.map_err(std::io::Error::other)?;
        assert_eq!(transport.addr(), server.addr);
        assert_eq!(
            transport.exchange(&APP_CONFIGURATION, &short_wait()),
            Ok(vec![0x01, 0x01, 0x09, 0x11, 0x90, 0x00])
        );
        // A status word other than 9000 is a reply like any other at this layer.
        assert_eq!(
            transport.exchange(&[0xE0, 0x04, 0x00, 0x00, 0x00], &short_wait()),
            Ok(vec![0x69, 0x85])
        );
        assert_eq!(
            server.finish(),
            vec![
                APP_CONFIGURATION.to_vec(),
                vec![0xE0, 0x04, 0x00, 0x00, 0x00]
            ]
        );
        Ok(())
    }

    #[test]
    fn a_reply_split_across_several_writes_is_put_back_together() -> std::io::Result<()> {
        let data: Vec<u8> = (0..107).collect();
        let whole = speculos_reply(&data, [0x90, 0x00]);
        // Cut inside the length, inside the data, and between the data and the status word.
        let pieces = vec![
            whole[..2].to_vec(),
            whole[2..5].to_vec(),
            whole[5..60].to_vec(),
            whole[60..4 + 107].to_vec(),
            whole[4 + 107..].to_vec(),
        ];
        let server = Server::start(vec![Answer::Pieces(pieces)])?;
        let transport = SpeculosTransport::connect(server.addr, &short_wait());
        let transport = transport.map_err(std::io::Error::other)?;
        let mut expected = data.clone();
        expected.extend_from_slice(&[0x90, 0x00]);
        assert_eq!(
            transport.exchange(&APP_CONFIGURATION, &short_wait()),
            Ok(expected)
        );
        server.finish();
        Ok(())
    }

    #[test]
    fn a_server_that_closes_mid_reply_is_disconnected_and_stays_so() -> std::io::Result<()> {
        let whole = speculos_reply(&[0xAB; 40], [0x90, 0x00]);
        let server = Server::start(vec![Answer::ThenClose(whole[..20].to_vec())])?;
        let transport = SpeculosTransport::connect(server.addr, &short_wait());
        let transport = transport.map_err(std::io::Error::other)?;
        match transport.exchange(&APP_CONFIGURATION, &short_wait()) {
            Err(TransportError::Disconnected(message)) => {
                assert!(
                    message.contains("closed the connection 16 bytes"),
                    "{message}"
                );
            }
            other => panic!("expected Disconnected, got {other:?}"),
        }
        match transport.exchange(&APP_CONFIGURATION, &short_wait()) {
            Err(TransportError::Disconnected(message)) => {
                assert!(message.contains("connect again"), "{message}");
            }
            other => panic!("expected Disconnected, got {other:?}"),
        }
        server.finish();
        Ok(())
    }

    #[test]
    fn a_silent_server_times_out_and_the_connection_is_not_reused() -> std::io::Result<()> {
        let server = Server::start(vec![Answer::Silence])?;
        let transport = SpeculosTransport::connect(server.addr, &short_wait());
        let transport = transport.map_err(std::io::Error::other)?;
        let started = Instant::now();
        let wait = Wait::new(Some(Duration::from_millis(300)));
        assert_eq!(
            transport.exchange(&APP_CONFIGURATION, &wait),
            Err(TransportError::TimedOut { seconds: 0 })
        );
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_millis(550), "{took:?}");
        // A late reply would now be misread: the connection was closed instead.
        assert!(matches!(
            transport.exchange(&APP_CONFIGURATION, &short_wait()),
            Err(TransportError::Disconnected(_))
        ));
        server.finish();
        Ok(())
    }

    #[test]
    fn a_cancel_ends_a_silent_exchange_within_a_poll() -> std::io::Result<()> {
        let server = Server::start(vec![Answer::Silence])?;
        let transport = SpeculosTransport::connect(server.addr, &short_wait());
        let transport = Arc::new(transport.map_err(std::io::Error::other)?);
        let wait = Wait::new(None);
        let canceller = wait.clone();
        let handle = thread::spawn(move || {
            thread::sleep(Duration::from_millis(200));
            canceller.cancel();
            Instant::now()
        });
        let result = transport.exchange(&APP_CONFIGURATION, &wait);
        let ended = Instant::now();
        assert_eq!(result, Err(TransportError::Cancelled));
        match handle.join() {
            Ok(cancelled_at) => {
                let lag = ended.saturating_duration_since(cancelled_at);
                assert!(lag < POLL + Duration::from_millis(100), "{lag:?}");
            }
            Err(_) => panic!("the cancelling thread panicked"),
        }
        server.finish();
        Ok(())
    }

    #[test]
    fn an_absurd_announced_length_is_malformed() -> std::io::Result<()> {
        let server = Server::start(vec![Answer::Pieces(vec![u32::MAX.to_be_bytes().to_vec()])])?;
        let transport = SpeculosTransport::connect(server.addr, &short_wait());
        let transport = transport.map_err(std::io::Error::other)?;
        assert!(matches!(
            transport.exchange(&APP_CONFIGURATION, &short_wait()),
            Err(TransportError::Malformed(message)) if message.contains("4294967295 bytes")
        ));
        server.finish();
        Ok(())
    }

    #[test]
    fn connecting_where_nothing_listens_ends_with_the_reason() -> std::io::Result<()> {
        // Bind to learn a free port, then free it: nothing listens there now.
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let started = Instant::now();
        match SpeculosTransport::connect(addr, &Wait::new(Some(Duration::from_millis(300)))) {
            Err(TransportError::Disconnected(message)) => {
                assert!(message.contains("cannot connect to Speculos"), "{message}");
                assert!(message.contains(&addr.to_string()), "{message}");
            }
            other => panic!("expected Disconnected, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_millis(550));

        let cancelled = Wait::new(None);
        cancelled.cancel();
        assert!(matches!(
            SpeculosTransport::connect(addr, &cancelled),
            Err(TransportError::Cancelled)
        ));
        Ok(())
    }

    #[test]
    fn connecting_waits_for_a_server_that_starts_late() -> std::io::Result<()> {
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let late = thread::spawn(move || {
            thread::sleep(Duration::from_millis(250));
            let listener = TcpListener::bind(addr)?;
            let (mut stream, _) = listener.accept()?;
            let mut request = [0u8; 9];
            stream.read_exact(&mut request)?;
            stream.write_all(&speculos_reply(&[], [0x90, 0x00]))
        });
        let transport = SpeculosTransport::connect(addr, &short_wait());
        let transport = transport.map_err(std::io::Error::other)?;
        assert_eq!(
            transport.exchange(&APP_CONFIGURATION, &short_wait()),
            Ok(vec![0x90, 0x00])
        );
        late.join()
            .map_err(|_| std::io::Error::other("the late server panicked"))??;
        Ok(())
    }
}
