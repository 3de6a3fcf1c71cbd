//! The real binary, as a new user runs it: CLI exit codes, `serve`, `token`, SIGTERM.

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use d1_crypto::ec::SigningKey;
use serde_json::{json, Value};

use crate::harness::{fresh_place_blocking, Place};

/// The binary with the place's data directory and database.
pub fn command(place: &Place) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_d1-registry"));
    command
        .arg("--data-dir")
        .arg(place.dir.path())
        .arg("--database-url")
        .arg(&place.database_url);
    command
}

pub fn bin(place: &Place, args: &[&str]) -> Output {
    command(place).args(args).output().unwrap()
}

/// Starts `serve` on a free port; returns the process and its base URL once it is ready.
pub fn serve(place: &Place) -> (Child, String) {
    serve_with(place, &[])
}

/// [`serve`] with the environment variables `env` (settings such as `D1__CARDS__…`).
pub fn serve_with(place: &Place, env: &[(&str, &str)]) -> (Child, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut server = command(place)
        .envs(env.iter().copied())
        .args(["serve", "--listen", &addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://{addr}");
    let client = reqwest::blocking::Client::new();
    for _ in 0..100 {
        if client
            .get(format!("{url}/readyz"))
            .send()
            .is_ok_and(|r| r.status() == 200)
        {
            return (server, url);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = server.kill();
    let _ = server.wait();
    panic!("the server did not become ready");
}

/// Sends SIGTERM and returns the exit code.
pub fn terminate(mut server: Child) -> Option<i32> {
    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    for _ in 0..100 {
        if let Some(s) = server.try_wait().unwrap() {
            return s.code();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = server.kill();
    panic!("serve did not exit after SIGTERM");
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn config_example_and_bad_usage_have_their_exit_codes() {
    let place = fresh_place_blocking();
    let out = bin(&place, &["config", "example"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("[server]"));
    assert_eq!(
        bin(&place, &["issuer", "frobnicate"]).status.code(),
        Some(2)
    );
    assert_eq!(
        bin(
            &place,
            &[
                "issuer",
                "add",
                "--issuer-id",
                "short",
                "--assertion-key",
                "x",
                "--kid",
                "k"
            ]
        )
        .status
        .code(),
        Some(1)
    );
}

#[test]
fn a_kek_that_does_not_match_the_database_refuses_to_start() {
    let place = fresh_place_blocking();
    assert!(bin(&place, &["migrate"]).status.success());
    let kek = place.dir.path().join("kek.key");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&kek).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    std::fs::remove_file(&kek).unwrap();
    let out = bin(&place, &["issuer", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!kek.exists(), "no new KEK is made against existing data");
    std::fs::write(&kek, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n").unwrap();
    let out = bin(&place, &["issuer", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not match"));
}

#[test]
fn onboard_serve_get_a_token_register_and_drain_on_sigterm() {
    let place = fresh_place_blocking();
    let key = SigningKey::generate().unwrap();
    let private = place.dir.path().join("issuer.pem");
    let public = place.dir.path().join("issuer-pub.pem");
    std::fs::write(&private, key.to_pkcs8_pem().as_bytes()).unwrap();
    std::fs::write(&public, key.public_pem()).unwrap();
    let add = [
        "issuer",
        "add",
        "--issuer-id",
        "BANK000009",
        "--assertion-key",
        public.to_str().unwrap(),
        "--kid",
        "cli-key",
    ];
    assert!(
        bin(&place, &add).status.success(),
        "issuer add works before any serve"
    );
    assert_eq!(
        bin(&place, &add).status.code(),
        Some(1),
        "adding it twice is refused"
    );
    let listed = String::from_utf8(bin(&place, &["issuer", "list"]).stdout).unwrap();
    assert!(listed.contains("BANK000009"));
    let jwks: Value = serde_json::from_slice(&bin(&place, &["keys", "jwks"]).stdout).unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    let first_kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    assert_eq!(
        bin(&place, &["keys", "retire", &first_kid]).status.code(),
        Some(1),
        "the last key stays"
    );
    let rotated = bin(&place, &["keys", "rotate"]);
    assert!(rotated.status.success());
    let new_kid = String::from_utf8(rotated.stdout).unwrap().trim().to_owned();
    let jwks: Value = serde_json::from_slice(&bin(&place, &["keys", "jwks"]).stdout).unwrap();
    assert_eq!(
        jwks["keys"][0]["kid"],
        new_kid.as_str(),
        "the newest key comes first"
    );
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    assert!(bin(&place, &["keys", "retire", &first_kid])
        .status
        .success());
    let product = [
        "product",
        "add",
        "--issuer-id",
        "BANK000009",
        "--card-product-id",
        "gold",
        "--scheme",
        "VISA",
        "--bin",
        "411111",
    ];
    assert!(bin(&place, &product).status.success());
    assert_eq!(
        bin(&place, &product).status.code(),
        Some(1),
        "a product is added once"
    );
    let bad_bin = [
        "product",
        "add",
        "--issuer-id",
        "BANK000009",
        "--card-product-id",
        "x",
        "--scheme",
        "VISA",
        "--bin",
        "41",
    ];
    assert_eq!(bin(&place, &bad_bin).status.code(), Some(1));

    let (server, url) = serve(&place);
    let client = reqwest::blocking::Client::new();

    let out = bin(
        &place,
        &[
            "token",
            "--issuer-id",
            "BANK000009",
            "--key",
            private.to_str().unwrap(),
            "--kid",
            "cli-key",
            "--url",
            &url,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let response = client
        .put(format!(
            "{url}/banking/v2/issuers/BANK000009/consumers/cli-1"
        ))
        .bearer_auth(&token)
        .json(&json!({"personalInformation": {"firstName": "Ann"}}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 204);

    assert_eq!(terminate(server), Some(0));
}
