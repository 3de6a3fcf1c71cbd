//! A lean HTTP/1.1 keep-alive client for the load. Requests are written as prepared bytes, and
//! only the status line and `Content-Length` of an answer are parsed. The load generator shares
//! the machine's cores with the service it measures, so the less of them it takes, the closer
//! the figure is to what the service alone can do.

use std::io::Write;

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One keep-alive connection to the service.
pub struct Connection {
    stream: TcpStream,
    /// Bytes read and not yet consumed.
    buf: Vec<u8>,
}

/// An answer: its status and its body.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Connection {
    pub async fn open(addr: &str) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends one request (as built by [`request`]) and reads its whole answer.
    pub async fn exchange(&mut self, request: &[u8]) -> anyhow::Result<Answer> {
        self.stream.write_all(request).await?;
        let head_end = loop {
            if let Some(end) = find_head_end(&self.buf) {
                break end;
            }
            self.fill().await?;
        };
        let (status, length) = parse_head(&self.buf[..head_end])?;
        let total = head_end + length;
        while self.buf.len() < total {
            self.fill().await?;
        }
        let body = self.buf[head_end..total].to_vec();
        self.buf.drain(..total);
        Ok(Answer { status, body })
    }

    async fn fill(&mut self) -> anyhow::Result<()> {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("the service closed the connection");
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

/// Where the head ends (just past the blank line), if it is all there.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// The status and body length of a response head. Chunked bodies are not expected from the
/// service and are refused rather than misread.
fn parse_head(head: &[u8]) -> anyhow::Result<(u16, usize)> {
    let text = std::str::from_utf8(head).context("response head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let mut length = 0;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse().context("bad content-length")?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            bail!("chunked responses are not supported by the load client");
        }
    }
    Ok((status, length))
}

/// Writes a whole HTTP/1.1 request into `out` (cleared first).
pub fn request(
    out: &mut Vec<u8>,
    method: &str,
    path: &str,
    host: &str,
    authorization: Option<&str>,
    content_type: &str,
    body: &[u8],
) {
    out.clear();
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "{method} {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n",
        body.len()
    );
    if let Some(authorization) = authorization {
        let _ = write!(out, "authorization: {authorization}\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// One request on a fresh connection (for the token and set-up calls).
pub async fn request_once(
    addr: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: String,
) -> anyhow::Result<(u16, String)> {
    let mut connection = Connection::open(addr).await?;
    let mut bytes = Vec::new();
    request(
        &mut bytes,
        method,
        path,
        addr,
        None,
        content_type,
        body.as_bytes(),
    );
    let answer = connection.exchange(&bytes).await?;
    Ok((
        answer.status,
        String::from_utf8_lossy(&answer.body).into_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_length() {
        let head = b"HTTP/1.1 201 Created\r\nContent-Length: 17\r\nx-a: b\r\n\r\n";
        assert_eq!(find_head_end(head), Some(head.len()));
        assert_eq!(parse_head(head).unwrap(), (201, 17));
        let head = b"HTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(parse_head(head).unwrap(), (204, 0));
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").is_err());
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }
}
