//! The real binary out of file descriptors: what it answers to a write is what is on disk. A
//! 500 means "not written", a 204 "written"; the writes come on a connection opened before
//! the descriptors ran out, while idle connections hold every other descriptor.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use d1_crypto::ec::SigningKey;

use crate::harness::{fresh_place_blocking, on_postgres};
use crate::process::{bin, serve, terminate};

const ISSUER: &str = "BANK000017";

/// One HTTP/1.1 connection, kept open, read by hand so that no client opens another.
struct Connection {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Connection {
    fn open(addr: &str) -> std::io::Result<Self> {
        let writer = TcpStream::connect(addr)?;
        writer.set_read_timeout(Some(Duration::from_millis(700)))?;
        let reader = BufReader::new(writer.try_clone()?);
        Ok(Self { writer, reader })
    }

    /// Sends one request and returns the status of its answer; an error if none came.
    fn send(&mut self, method: &str, path: &str, token: &str, body: &str) -> std::io::Result<u16> {
        write!(
            self.writer,
            "{method} {path} HTTP/1.1\r\nhost: d1\r\nauthorization: Bearer {token}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("no status line: {line:?}")))?;
        let mut length = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            if line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok(status)
    }
}

fn onboard(place: &crate::harness::Place) -> std::path::PathBuf {
    let key = SigningKey::generate().unwrap();
    let private = place.dir.path().join("issuer.pem");
    let public = place.dir.path().join("issuer-pub.pem");
    std::fs::write(&private, key.to_pkcs8_pem().as_bytes()).unwrap();
    std::fs::write(&public, key.public_pem()).unwrap();
    let public = public.to_str().unwrap();
    let add = [
        "issuer",
        "add",
        "--issuer-id",
        ISSUER,
        "--assertion-key",
        public,
        "--kid",
        "fd-key",
    ];
    assert!(bin(place, &add).status.success());
    private
}

/// The server, killed if the test fails before it is stopped.
struct Running(Option<std::process::Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut server) = self.0.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

fn open_descriptors(pid: u32) -> u64 {
    let count = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    u64::try_from(count).unwrap()
}

#[test]
fn out_of_descriptors_a_500_means_not_written_and_a_204_written() {
    let place = fresh_place_blocking();
    let private = onboard(&place);
    let (server, url) = serve(&place);
    let mut server = Running(Some(server));
    let child = server.0.as_ref().unwrap();
    let args = [
        "token",
        "--issuer-id",
        ISSUER,
        "--key",
        private.to_str().unwrap(),
        "--kid",
        "fd-key",
        "--url",
        &url,
    ];
    let out = bin(&place, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let addr = url.trim_start_matches("http://").to_owned();
    let consumer = |name: &str| format!("/banking/v2/issuers/{ISSUER}/consumers/{name}");

    let mut early = Connection::open(&addr).unwrap();
    assert_eq!(
        early
            .send("PUT", &consumer("warm-up"), &token, "{}")
            .unwrap(),
        204
    );

    // A few descriptors more than the server holds now, soft and hard alike, so that it
    // cannot raise its own limit back.
    let limit = open_descriptors(child.id()) + 12;
    let pid = rustix::process::Pid::from_child(child);
    let rlimit = rustix::process::Rlimit {
        current: Some(limit),
        maximum: Some(limit),
    };
    rustix::process::prlimit(Some(pid), rustix::process::Resource::Nofile, rlimit).unwrap();

    // Idle connections until the server accepts no more.
    let mut idle = Vec::new();
    let mut exhausted = false;
    for _ in 0..200 {
        let mut c = Connection::open(&addr).unwrap();
        let served = c.send("GET", "/healthz", "-", "").is_ok();
        idle.push(c);
        if !served {
            exhausted = true;
            break;
        }
    }
    assert!(
        exhausted,
        "the server kept accepting past {limit} descriptors"
    );

    let mut answers = Vec::new();
    for i in 0..12 {
        let name = format!("no-fd-{i}");
        let status = early.send("PUT", &consumer(&name), &token, "{}").ok();
        answers.push((name, status));
        if status.is_none() {
            // An answer that came late would be read as the next one's.
            break;
        }
    }

    drop(idle);
    drop(early);
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    for (name, status) in &answers {
        let read = client
            .get(format!("{url}{}", consumer(name)))
            .bearer_auth(&token)
            .send()
            .unwrap()
            .status();
        match status {
            Some(204) => assert_eq!(read, 200, "{name} was acknowledged but is not there"),
            Some(500) => assert_eq!(read, 404, "{name} was answered 500 but is there"),
            // 503 TIMEOUT, or no answer: the outcome is unknown, either is true.
            Some(503) | None => {}
            other => panic!("{name}: answered {other:?}"),
        }
    }
    if !on_postgres() {
        // SQLite's writer and syncer need no new descriptor: every write goes through.
        assert!(answers.iter().all(|(_, s)| *s == Some(204)), "{answers:?}");
    }
    assert_eq!(terminate(server.0.take().unwrap()), Some(0));
}
