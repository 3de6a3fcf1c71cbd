//! What a client can hold open, against the real binary with small settings: a slowloris or
//! silent connection is closed after the header timeout, an idle keep-alive connection after
//! the idle timeout, a connection over the cap at once while the others are served; and a head
//! too long is answered 414 or 431 with a D1 body.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::fresh_place_blocking;
use crate::process::{serve_with, terminate};

const SMALL: &[(&str, &str)] = &[
    ("D1__SERVER__HEADER_TIMEOUT_MS", "800"),
    ("D1__SERVER__IDLE_TIMEOUT_MS", "1500"),
    ("D1__SERVER__MAX_CONNECTIONS", "4"),
];

fn connect(url: &str) -> TcpStream {
    let stream = TcpStream::connect(url.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// How long until the server closes the connection (a read sees the end or a reset).
fn closed_after(stream: &mut TcpStream, started: Instant) -> Duration {
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return started.elapsed(),
            Ok(_) => {}
        }
    }
}

/// One request on a kept-alive connection; the response head and body.
fn ask(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /readyz HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("ready\"}") {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "the connection was closed instead of answered");
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(got).unwrap()
}

#[test]
fn slowloris_and_silent_connections_are_closed_after_the_header_timeout() {
    let place = fresh_place_blocking();
    let (server, url) = serve_with(&place, SMALL);
    let started = Instant::now();
    let mut silent = connect(&url);
    let mut slow = connect(&url);
    let writer = std::thread::spawn(move || {
        let head = b"GET /readyz HTTP/1.1\r\nhost: x\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaa";
        for b in head {
            if slow.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        closed_after(&mut slow, started)
    });
    let silent_for = closed_after(&mut silent, started);
    let slow_for = writer.join().unwrap();
    for (what, took) in [("silent", silent_for), ("slowloris", slow_for)] {
        assert!(
            took >= Duration::from_millis(700) && took < Duration::from_secs(4),
            "a {what} connection was closed after {took:?}, not after the 800 ms header timeout"
        );
    }
    assert_eq!(terminate(server), Some(0));
}

#[test]
fn an_idle_keep_alive_connection_is_closed_and_a_busy_one_is_not() {
    let place = fresh_place_blocking();
    let (server, url) = serve_with(&place, SMALL);
    let mut busy = connect(&url);
    let mut idle = connect(&url);
    assert!(ask(&mut idle).starts_with("HTTP/1.1 200"));
    let answered = Instant::now();
    // The busy one asks every 400 ms for three seconds, twice the idle timeout.
    for _ in 0..8 {
        assert!(ask(&mut busy).starts_with("HTTP/1.1 200"));
        std::thread::sleep(Duration::from_millis(400));
    }
    let idle_for = closed_after(&mut idle, answered);
    assert!(
        idle_for >= Duration::from_millis(1400) && idle_for < Duration::from_secs(5),
        "closed after {idle_for:?}, not after the 1500 ms idle timeout"
    );
    assert!(ask(&mut busy).starts_with("HTTP/1.1 200"));
    assert_eq!(terminate(server), Some(0));
}

#[test]
fn a_connection_over_the_cap_is_closed_at_once_while_the_others_are_served() {
    let place = fresh_place_blocking();
    let (server, url) = serve_with(&place, SMALL);
    // Let the readiness probe's connection go.
    std::thread::sleep(Duration::from_millis(300));
    let mut held: Vec<TcpStream> = (0..4).map(|_| connect(&url)).collect();
    for stream in &mut held {
        assert!(ask(stream).starts_with("HTTP/1.1 200"));
    }
    let started = Instant::now();
    let mut over = connect(&url);
    let _ = over.write_all(b"GET /readyz HTTP/1.1\r\nhost: x\r\n\r\n");
    let refused_in = closed_after(&mut over, started);
    assert!(
        refused_in < Duration::from_millis(500),
        "the fifth connection was held {refused_in:?}"
    );
    for stream in &mut held {
        assert!(
            ask(stream).starts_with("HTTP/1.1 200"),
            "the others are still served"
        );
    }
    assert_eq!(terminate(server), Some(0));
}

/// Sends `head` from another thread (the server may stop reading) and reads the answer.
fn answer_to(url: &str, head: Vec<u8>) -> (u16, String, Value) {
    let mut stream = connect(url);
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&head);
    });
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got);
    let _ = sender.join();
    let text = String::from_utf8(got).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a whole answer");
    let status = head[9..12].parse().unwrap();
    (
        status,
        head.to_ascii_lowercase(),
        serde_json::from_str(body).unwrap(),
    )
}

#[test]
fn a_head_too_long_is_answered_414_or_431_in_the_d1_body() {
    let place = fresh_place_blocking();
    let (server, url) = serve_with(&place, &[]);
    let consumer = "c".repeat(100_000);
    let params: String = (0..10_000).map(|i| format!("p{i}=1&")).collect();
    let many: String = (0..10_000).map(|i| format!("x-h{i}: v\r\n")).collect();
    let big = format!("x-big: {}\r\n", "a".repeat(1_000_000));
    let cases = [
        (
            format!("GET /banking/v2/issuers/BANK000001/consumers/{consumer} HTTP/1.1\r\nhost: x\r\n\r\n"),
            414,
            "URI_TOO_LONG",
        ),
        (
            format!("GET /readyz?{params} HTTP/1.1\r\nhost: x\r\n\r\n"),
            414,
            "URI_TOO_LONG",
        ),
        (
            format!("GET /readyz HTTP/1.1\r\nhost: x\r\n{many}\r\n"),
            431,
            "HEADERS_TOO_LARGE",
        ),
        (
            format!("GET /readyz HTTP/1.1\r\nhost: x\r\n{big}\r\n"),
            431,
            "HEADERS_TOO_LARGE",
        ),
    ];
    for (request, status, code) in cases {
        let (got, head, body) = answer_to(&url, request.into_bytes());
        assert_eq!(got, status);
        assert!(head.contains("content-type: application/json"), "{head}");
        assert_eq!(body["errorCode"], code);
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    // Under /banking/v1 the v1 body, on the token endpoint the RFC 6749 shape.
    let v1 = format!(
        "PUT /banking/v1/issuers/BANK000001/consumers/{consumer} HTTP/1.1\r\nhost: x\r\n\r\n"
    );
    let (_, _, body) = answer_to(&url, v1.into_bytes());
    assert!(body["error"]
        .as_str()
        .unwrap()
        .starts_with("URI_TOO_LONG: "));
    assert!(body.get("errorCode").is_none());
    let token = format!("POST /authz/v1/oauth2/token?{params} HTTP/1.1\r\nhost: x\r\n\r\n");
    let (_, _, body) = answer_to(&url, token.into_bytes());
    assert_eq!(body["error"], "invalid_request");
    // The server still serves.
    assert!(ask(&mut connect(&url)).starts_with("HTTP/1.1 200"));
    assert_eq!(terminate(server), Some(0));
}
