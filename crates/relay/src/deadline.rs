//! A write deadline on a socket: a write that makes no progress for the
//! given time fails with `TimedOut`, which ends the connection. It holds
//! for every connection, plain HTTP (a client that asks for the app's files
//! and never reads them) and WebSocket alike, below the sessions' own
//! per-frame deadline.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// `T` with a deadline on stalled writes.
#[derive(Debug)]
pub struct WriteDeadline<T> {
    inner: T,
    timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteDeadline<T> {
    /// Wraps `inner`; a write pending for `timeout` without progress fails.
    pub fn new(inner: T, timeout: Duration) -> Self {
        WriteDeadline { inner, timeout, stalled: None }
    }

    /// Turns a pending write into an error once it has been pending too
    /// long; any completed write (or flush) re-arms the deadline.
    fn check<R>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        match poll {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let sleep = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the client took nothing for {} ms", timeout.as_millis()),
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.check(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.check(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.check(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.check(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    async fn a_write_nobody_takes_fails_after_the_deadline_and_one_taken_does_not() {
        // A 1 KiB pipe: the second KiB waits for a reader.
        let (client, mut server) = tokio::io::duplex(1024);
        let mut stream = WriteDeadline::new(client, Duration::from_secs(5));
        stream.write_all(&[1; 1024]).await.expect("fits in the pipe");
        let reader = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(4)).await;
            let mut buf = vec![0; 4096];
            tokio::io::AsyncReadExt::read(&mut server, &mut buf).await.expect("read");
            server
        });
        // Taken after 4 s: within the deadline.
        stream.write_all(&[2; 1024]).await.expect("taken in time");
        let _server = reader.await.expect("reader");
        // Nobody reads any more: fails after 5 s.
        let err = stream.write_all(&[3; 1024]).await.expect_err("stalled");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
