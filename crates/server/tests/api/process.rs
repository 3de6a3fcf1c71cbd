//! The real binary, as a new user runs it: CLI exit codes, `serve`, `token`, SIGTERM.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use d1_crypto::ec::SigningKey;
use serde_json::{json, Value};

fn bin(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_d1-registry"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("D1_DATABASE_URL")
        .output()
        .unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn config_example_and_bad_usage_have_their_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin(dir.path(), &["config", "example"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("[server]"));
    assert_eq!(
        bin(dir.path(), &["issuer", "frobnicate"]).status.code(),
        Some(2)
    );
    assert_eq!(
        bin(
            dir.path(),
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
    let dir = tempfile::tempdir().unwrap();
    assert!(bin(dir.path(), &["migrate"]).status.success());
    let kek = dir.path().join("kek.key");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&kek).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    std::fs::remove_file(&kek).unwrap();
    let out = bin(dir.path(), &["issuer", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!kek.exists(), "no new KEK is made against existing data");
    std::fs::write(&kek, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n").unwrap();
    let out = bin(dir.path(), &["issuer", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not match"));
}

#[test]
fn onboard_serve_get_a_token_register_and_drain_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let private = dir.path().join("issuer.pem");
    let public = dir.path().join("issuer-pub.pem");
    std::fs::write(&private, key.to_pkcs8_pem().as_bytes()).unwrap();
    std::fs::write(&public, key.public_pem()).unwrap();
    let data = dir.path().join("data");
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
        bin(&data, &add).status.success(),
        "issuer add works before any serve"
    );
    assert_eq!(
        bin(&data, &add).status.code(),
        Some(1),
        "adding it twice is refused"
    );
    let listed = String::from_utf8(bin(&data, &["issuer", "list"]).stdout).unwrap();
    assert!(listed.contains("BANK000009"));
    let jwks: Value = serde_json::from_slice(&bin(&data, &["keys", "jwks"]).stdout).unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    let first_kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    assert_eq!(
        bin(&data, &["keys", "retire", &first_kid]).status.code(),
        Some(1),
        "the last key stays"
    );
    let rotated = bin(&data, &["keys", "rotate"]);
    assert!(rotated.status.success());
    let new_kid = String::from_utf8(rotated.stdout).unwrap().trim().to_owned();
    let jwks: Value = serde_json::from_slice(&bin(&data, &["keys", "jwks"]).stdout).unwrap();
    assert_eq!(
        jwks["keys"][0]["kid"],
        new_kid.as_str(),
        "the newest key comes first"
    );
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    assert!(bin(&data, &["keys", "retire", &first_kid]).status.success());
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
    assert!(bin(&data, &product).status.success());
    assert_eq!(
        bin(&data, &product).status.code(),
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
    assert_eq!(bin(&data, &bad_bin).status.code(), Some(1));

    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut server = Command::new(env!("CARGO_BIN_EXE_d1-registry"))
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "serve",
            "--listen",
            &addr,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://{addr}");
    let client = reqwest::blocking::Client::new();
    let mut ready = false;
    for _ in 0..100 {
        if client
            .get(format!("{url}/readyz"))
            .send()
            .is_ok_and(|r| r.status() == 200)
        {
            ready = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(ready, "the server did not become ready");

    let out = bin(
        &data,
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

    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut status = None;
    for _ in 0..100 {
        if let Some(s) = server.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = status.unwrap_or_else(|| {
        let _ = server.kill();
        panic!("serve did not exit after SIGTERM");
    });
    assert_eq!(status.code(), Some(0));
}
