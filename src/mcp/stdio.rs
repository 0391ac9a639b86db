//! stdin and stdout as readiness-driven async streams.
//!
//! tokio's own `stdin()` and `stdout()` do every read and write on a blocking helper thread, which
//! costs two thread handoffs per message. MCP hosts give a server a pipe (Python, Rust) or a
//! socket (Node-based hosts) on each of stdin and stdout, and both can be driven by epoll
//! directly. Each of the two is used that way when it is a pipe or a socket; anything else (a
//! terminal, a file) falls back to tokio's blocking stdio, which works with everything.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use rustix::fs::FileType;
use tokio::io::{AsyncRead, AsyncWrite, BufWriter, ReadBuf};
use tokio::net::UnixStream;
use tokio::net::unix::pipe;

/// What stdin turned out to be.
#[derive(Debug)]
pub(crate) enum Input {
    Pipe(pipe::Receiver),
    Socket(UnixStream),
    Blocking(tokio::io::Stdin),
}

/// What stdout turned out to be.
#[derive(Debug)]
pub(crate) enum Output {
    Pipe(pipe::Sender),
    Socket(UnixStream),
    Blocking(tokio::io::Stdout),
}

/// stdin and a buffered stdout, for rmcp's stream transport. Must run inside the runtime.
pub(crate) fn stdio() -> (Input, BufWriter<Output>) {
    let input = match duplicate(io::stdin().as_fd()) {
        Some((FileType::Fifo, fd)) => pipe::Receiver::from_owned_fd(fd).ok().map(Input::Pipe),
        Some((FileType::Socket, fd)) => unix_stream(fd).map(Input::Socket),
        _ => None,
    }
    .unwrap_or_else(|| Input::Blocking(tokio::io::stdin()));
    let output = match duplicate(io::stdout().as_fd()) {
        Some((FileType::Fifo, fd)) => pipe::Sender::from_owned_fd(fd).ok().map(Output::Pipe),
        Some((FileType::Socket, fd)) => unix_stream(fd).map(Output::Socket),
        _ => None,
    }
    .unwrap_or_else(|| Output::Blocking(tokio::io::stdout()));
    tracing::debug!(
        input = kind(&input),
        output = output_kind(&output),
        "stdio streams"
    );
    (input, BufWriter::with_capacity(64 * 1024, output))
}

fn duplicate(fd: std::os::fd::BorrowedFd<'_>) -> Option<(FileType, OwnedFd)> {
    let kind = FileType::from_raw_mode(rustix::fs::fstat(fd).ok()?.st_mode);
    Some((kind, fd.try_clone_to_owned().ok()?))
}

fn unix_stream(fd: OwnedFd) -> Option<UnixStream> {
    let stream = std::os::unix::net::UnixStream::from(fd);
    stream.set_nonblocking(true).ok()?;
    UnixStream::from_std(stream).ok()
}

fn kind(input: &Input) -> &'static str {
    match input {
        Input::Pipe(_) => "pipe",
        Input::Socket(_) => "socket",
        Input::Blocking(_) => "blocking",
    }
}

fn output_kind(output: &Output) -> &'static str {
    match output {
        Output::Pipe(_) => "pipe",
        Output::Socket(_) => "socket",
        Output::Blocking(_) => "blocking",
    }
}

impl AsyncRead for Input {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Pipe(pipe) => Pin::new(pipe).poll_read(cx, buf),
            Self::Socket(socket) => Pin::new(socket).poll_read(cx, buf),
            Self::Blocking(stdin) => Pin::new(stdin).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Output {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Pipe(pipe) => Pin::new(pipe).poll_write(cx, buf),
            Self::Socket(socket) => Pin::new(socket).poll_write(cx, buf),
            Self::Blocking(stdout) => Pin::new(stdout).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Pipe(pipe) => Pin::new(pipe).poll_flush(cx),
            Self::Socket(socket) => Pin::new(socket).poll_flush(cx),
            Self::Blocking(stdout) => Pin::new(stdout).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Pipe(pipe) => Pin::new(pipe).poll_shutdown(cx),
            Self::Socket(socket) => Pin::new(socket).poll_shutdown(cx),
            Self::Blocking(stdout) => Pin::new(stdout).poll_shutdown(cx),
        }
    }
}
