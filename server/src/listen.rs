//! Accepting connections under limits: at most [`MAX_CONNECTIONS`] open at
//! once (past that the server stops accepting until one closes, and the
//! kernel's backlog holds the rest), and a connection that sends nothing
//! within [`FIRST_BYTES_WITHIN`] is closed (it must send its whole opening,
//! the HTTP/2 preface or a TLS ClientHello, by then), so idle sockets opened
//! by a slowloris-style client cannot pile up. Once a connection speaks, HTTP/2
//! keepalive pings (`server.rs`) drop it when its peer goes silent, and the
//! TLS handshake, when there is one, has its own deadline.
//!
//! tonic's own `TcpIncoming` has neither limit, hence this wrapper; it
//! keeps its socket options (no Nagle, TCP keepalive).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Most connections open at once (phones of every team, boards, the CLI).
pub const MAX_CONNECTIONS: usize = 16_384;
/// How long a new connection may stay silent before it is closed.
pub const FIRST_BYTES_WITHIN: Duration = Duration::from_secs(10);
/// How long an idle connection waits before TCP keepalive probes start.
pub const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
/// How long the acceptor waits after a failed `accept` (out of file
/// descriptors, say) before it tries again.
const ACCEPT_RETRY_AFTER: Duration = Duration::from_millis(100);

/// One accepted connection, holding its place under [`MAX_CONNECTIONS`].
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
}

/// The connections `listener` accepts, under the limits above. The
/// acceptor stops when the server stops reading the stream.
pub fn incoming(listener: TcpListener) -> ReceiverStream<io::Result<Connection>> {
    incoming_with(listener, MAX_CONNECTIONS, FIRST_BYTES_WITHIN)
}

/// [`incoming`] with other limits (tests use small ones).
pub fn incoming_with(
    listener: TcpListener,
    max_connections: usize,
    first_bytes_within: Duration,
) -> ReceiverStream<io::Result<Connection>> {
    let (sender, receiver) = mpsc::channel(64);
    let slots = Arc::new(Semaphore::new(max_connections));
    tokio::spawn(async move {
        loop {
            if slots.available_permits() == 0 {
                tracing::warn!(max_connections, "at the connection limit; accepting again when one closes");
            }
            let slot = tokio::select! {
                () = sender.closed() => return,
                slot = Arc::clone(&slots).acquire_owned() => match slot {
                    Ok(slot) => slot,
                    Err(_) => return,
                },
            };
            let accepted = tokio::select! {
                () = sender.closed() => return,
                accepted = listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed; retrying");
                    tokio::time::sleep(ACCEPT_RETRY_AFTER).await;
                    continue;
                }
            };
            let sender = sender.clone();
            tokio::spawn(async move {
                if let Err(error) = configure(&stream) {
                    tracing::debug!(%error, "setting socket options failed");
                }
                if opened(&stream, first_bytes_within).await {
                    let _ = sender.send(Ok(Connection { stream, _slot: slot })).await;
                } else {
                    tracing::debug!(
                        peer = ?stream.peer_addr().ok(),
                        "closed a connection that did not open within {} s",
                        first_bytes_within.as_secs()
                    );
                }
            });
        }
    });
    ReceiverStream::new(receiver)
}

/// Bytes a client sends at once when it opens: the HTTP/2 preface is 24,
/// and a TLS ClientHello is longer.
const OPENING_BYTES: usize = 24;
/// How long to wait before looking again at an opening that came in parts.
const LOOK_AGAIN_AFTER: Duration = Duration::from_millis(5);

/// True once the client has sent its opening ([`OPENING_BYTES`]) within
/// `within`; false when it went silent, closed or failed. Nothing is
/// consumed: the server reads the bytes again.
async fn opened(stream: &TcpStream, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    let mut first = [0u8; OPENING_BYTES];
    loop {
        match tokio::time::timeout_at(deadline, stream.peek(&mut first)).await {
            Ok(Ok(read)) if read >= OPENING_BYTES => return true,
            Ok(Ok(0) | Err(_)) | Err(_) => return false,
            // Part of it so far: a slow link, or a client that stalls after
            // a byte to hold the slot. Look again until the deadline.
            // (The deadline is checked here: a timeout polls a ready peek
            // before it looks at the clock.)
            Ok(Ok(_)) if tokio::time::Instant::now() >= deadline => return false,
            Ok(Ok(_)) => tokio::time::sleep(LOOK_AGAIN_AFTER).await,
        }
    }
}

fn configure(stream: &TcpStream) -> io::Result<()> {
    // Replies go out at once: with Nagle on, the last small frame of a
    // reply larger than a segment waits for the client's delayed ACK,
    // about 40 ms a call.
    stream.set_nodelay(true)?;
    socket2::SockRef::from(stream).set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE))
}

impl Connected for Connection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Connection {
    fn poll_read(self: Pin<&mut Self>, context: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(context, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(self: Pin<&mut Self>, context: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(context, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(context)
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(context)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(context, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use tokio::io::AsyncWriteExt;
    use tokio_stream::StreamExt;

    use super::*;

    #[tokio::test]
    async fn a_silent_connection_is_closed_and_a_full_house_waits() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut accepted = incoming_with(listener, 1, Duration::from_millis(200));

        // Silent: never handed to the server, and closed by it.
        let mut silent = TcpStream::connect(address).await.unwrap();
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(10), tokio::io::AsyncReadExt::read(&mut silent, &mut buf))
            .await
            .expect("the server closes a silent connection");
        assert_eq!(read.unwrap(), 0, "closed, not answered");

        // One that sends a byte and stalls is closed too.
        let mut stalling = TcpStream::connect(address).await.unwrap();
        stalling.write_all(b"P").await.unwrap();
        let read =
            tokio::time::timeout(Duration::from_secs(10), tokio::io::AsyncReadExt::read(&mut stalling, &mut buf))
                .await
                .expect("the server closes a connection that stalls in its opening");
        // Closed with its byte unread: the kernel answers with a reset.
        assert!(
            matches!(&read, Ok(0))
                || matches!(&read, Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset),
            "{read:?}"
        );

        // One that opens is handed over; a second waits for its slot.
        let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        let mut first = TcpStream::connect(address).await.unwrap();
        first.write_all(preface).await.unwrap();
        let _held = accepted.next().await.unwrap().unwrap();
        let mut second = TcpStream::connect(address).await.unwrap();
        second.write_all(preface).await.unwrap();
        let waiting = tokio::time::timeout(Duration::from_millis(300), accepted.next()).await;
        assert!(waiting.is_err(), "over the limit, a connection waits");
        drop(_held);
        let next = tokio::time::timeout(Duration::from_secs(10), accepted.next()).await;
        assert!(next.unwrap().unwrap().is_ok(), "and is accepted once a slot frees");
    }
}
