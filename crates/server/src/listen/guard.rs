//! A thin wrapper on a connection's byte stream, under hyper.
//!
//! It does three things hyper cannot be asked to do. It tells the connection's [`ConnClock`]
//! when a request head starts and ends and when bytes move, for the header and idle timeouts.
//! It answers a head that is too long (414 or 431) with a D1 body itself: hyper answers
//! its own parse errors with an empty body before any service runs, and raising hyper's
//! limits until our service sees such a head would let each connection buffer megabytes.
//! So the wrapper counts the head's bytes and lines as they are read, below hyper's own limits,
//! and on a breach writes the answer, closes, and shows hyper the end of the stream. The
//! scan costs a pass over the head's bytes; it stops at the head's end and starts again when
//! an answer is written (pipelined heads read together with a body fall to hyper's limits).
//! And it replaces hyper's own empty 400, written for a head it cannot parse (a bad
//! `Content-Length`, an unknown `Transfer-Encoding`, a malformed header line), with the same
//! answer in a D1 body (contract section 3: no answer leaves in the framework's format).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::limits::ConnClock;
use super::refusal::{is_hypers_400, render, Refusal, MAX_HEAD, MAX_HEADERS, MAX_REQUEST_LINE};

const PREFIX: usize = 256;
/// The most bytes read and dropped after a refusal before the connection is closed.
const DRAIN: usize = 4 * 1024 * 1024;

/// Where the scan is.
#[derive(Debug)]
struct Scan {
    in_head: bool,
    started: bool,
    len: usize,
    lines: usize,
    line_len: usize,
    last: u8,
    prefix: Vec<u8>,
}

impl Scan {
    fn new() -> Self {
        Self {
            in_head: true,
            started: false,
            len: 0,
            lines: 0,
            line_len: 0,
            last: 0,
            prefix: Vec::new(),
        }
    }

    fn feed(&mut self, bytes: &[u8], clock: &ConnClock) -> Result<(), Refusal> {
        for &b in bytes {
            if !self.in_head {
                return Ok(());
            }
            if !self.started {
                if b == b'\r' || b == b'\n' {
                    continue;
                }
                self.started = true;
                clock.head_started();
            }
            self.len += 1;
            if self.lines == 0 && self.prefix.len() < PREFIX {
                self.prefix.push(b);
            }
            if b == b'\n' {
                let blank = self.line_len == 0 || (self.line_len == 1 && self.last == b'\r');
                if blank {
                    // The request line is kept for an answer to a head hyper cannot parse.
                    *self = Self {
                        in_head: false,
                        prefix: std::mem::take(&mut self.prefix),
                        ..Self::new()
                    };
                    clock.head_done();
                    continue;
                }
                self.lines += 1;
                self.line_len = 0;
                if self.lines > MAX_HEADERS + 1 {
                    return Err(Refusal::HeadersTooLarge);
                }
            } else {
                self.line_len += 1;
                if self.lines == 0 && self.line_len > MAX_REQUEST_LINE {
                    return Err(Refusal::UriTooLong);
                }
            }
            self.last = b;
            if self.len > MAX_HEAD {
                return Err(Refusal::HeadersTooLarge);
            }
        }
        Ok(())
    }

    /// An answer is being written: the next byte read starts a head.
    fn answered(&mut self) {
        if !self.in_head {
            *self = Self::new();
        }
    }
}

/// The stream hyper reads and writes.
pub struct Guarded<IO> {
    inner: IO,
    clock: Arc<ConnClock>,
    scan: Scan,
    /// The refusal being written, and how much of it is out.
    answer: Option<(Vec<u8>, usize)>,
    /// Bytes read and dropped after the answer.
    drained: usize,
}

impl<IO> Guarded<IO> {
    /// Wraps a connection's stream.
    pub fn new(inner: IO, clock: Arc<ConnClock>) -> Self {
        Self {
            inner,
            clock,
            scan: Scan::new(),
            answer: None,
            drained: 0,
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Guarded<IO> {
    /// Writes what is left of the refusal, if any.
    fn poll_refusal(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some((bytes, written)) = &mut self.answer {
            while *written < bytes.len() {
                match ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..])) {
                    Ok(0) | Err(_) => {
                        *written = bytes.len();
                    }
                    Ok(n) => *written += n,
                }
            }
        }
        Poll::Ready(())
    }

    /// Takes hyper's own answer to a head it could not parse, `bytes`, and puts the refusal
    /// in a D1 body in its place; whether it did.
    fn replace_hypers_400(&mut self, bytes: &[u8]) -> bool {
        if self.answer.is_some() || !is_hypers_400(bytes) {
            return false;
        }
        tracing::info!(refusal = ?Refusal::Unparsable, "request head refused");
        self.answer = Some((render(Refusal::Unparsable, &self.scan.prefix), 0));
        true
    }

    /// Writes the refusal, then closes; `Ready` means the stream is over for hyper.
    fn poll_answer(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.answer.is_some() {
            ready!(self.poll_refusal(cx));
            let _ = ready!(Pin::new(&mut self.inner).poll_shutdown(cx));
            // Read what the client is still sending before closing: a close with unread
            // bytes resets the connection, and the reset can destroy the answer before the
            // client reads it. Bounded by DRAIN bytes here and by the header timeout.
            let mut scratch = [0u8; 4096];
            while self.drained < DRAIN {
                let mut buf = ReadBuf::new(&mut scratch);
                match ready!(Pin::new(&mut self.inner).poll_read(cx, &mut buf)) {
                    Ok(()) if !buf.filled().is_empty() => self.drained += buf.filled().len(),
                    _ => break,
                }
            }
            self.drained = DRAIN;
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for Guarded<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.answer.is_some() {
            return this.poll_answer(cx);
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let read = &buf.filled()[before..];
        if read.is_empty() {
            return Poll::Ready(Ok(()));
        }
        this.clock.touch();
        match this.scan.feed(read, &this.clock) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(refusal) => {
                buf.set_filled(before);
                tracing::info!(refusal = ?refusal, "request head refused");
                this.answer = Some((render(refusal, &this.scan.prefix), 0));
                this.poll_answer(cx)
            }
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Guarded<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.clock.touch();
        if this.answer.is_some() || this.replace_hypers_400(buf) {
            // hyper's bytes give way to the refusal, written on flush or shutdown.
            return Poll::Ready(Ok(buf.len()));
        }
        this.scan.answered();
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.clock.touch();
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &b[..]);
        if this.answer.is_some() || this.replace_hypers_400(first) {
            return Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()));
        }
        this.scan.answered();
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_refusal(cx));
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.answer.is_some() {
            // As after our own refusals: written, closed, and what the client still sends read.
            return this.poll_answer(cx);
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(bytes: &[u8]) -> Result<(), Refusal> {
        let clock = ConnClock::start();
        Scan::new().feed(bytes, &clock)
    }

    #[test]
    fn ordinary_heads_pass_and_the_body_is_not_scanned() {
        let mut head = b"GET /readyz HTTP/1.1\r\nhost: x\r\n\r\n".to_vec();
        head.extend(std::iter::repeat_n(b'\n', 1000));
        assert_eq!(scan(&head), Ok(()));
    }

    #[test]
    fn a_long_request_line_is_414_and_many_headers_431() {
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_REQUEST_LINE));
        assert_eq!(scan(long.as_bytes()), Err(Refusal::UriTooLong));
        let many = format!("GET / HTTP/1.1\r\n{}", "a: b\r\n".repeat(MAX_HEADERS + 1));
        assert_eq!(scan(many.as_bytes()), Err(Refusal::HeadersTooLarge));
        let big = format!("GET / HTTP/1.1\r\nx: {}", "a".repeat(MAX_HEAD));
        assert_eq!(scan(big.as_bytes()), Err(Refusal::HeadersTooLarge));
    }
}
