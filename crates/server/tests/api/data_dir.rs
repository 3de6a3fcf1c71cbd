//! A wrong data directory is refused (contract section 10): a command that only reads finds
//! no store and creates nothing; a command that writes says in one line that it creates one.

use std::process::{Command, Output};

use crate::harness::{fresh_place_blocking, on_postgres};
use crate::process::{bin, command};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_command_that_only_reads_finds_no_store_and_creates_nothing() {
    let place = fresh_place_blocking();
    for args in [&["issuer", "list"][..], &["keys", "jwks"]] {
        let out = bin(&place, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let said = stderr(&out);
        assert_eq!(said.lines().count(), 1, "one line: {said}");
        assert!(said.contains("no store"), "{said}");
        assert!(out.stdout.is_empty());
        assert!(
            entries(place.dir.path()).is_empty(),
            "{args:?} created {:?}",
            entries(place.dir.path())
        );
    }
    if on_postgres() {
        return;
    }
    // A mistyped directory that does not exist is not made either.
    let mistyped = place.dir.path().join("dta");
    let out = Command::new(env!("CARGO_BIN_EXE_d1-registry"))
        .arg("--data-dir")
        .arg(&mistyped)
        .args(["issuer", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("dta"), "{}", stderr(&out));
    assert!(!mistyped.exists());
}

#[test]
fn a_command_that_writes_says_once_that_it_creates_a_store_and_a_kek() {
    let place = fresh_place_blocking();
    let out = bin(&place, &["migrate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stderr(&out);
    assert_eq!(said.lines().count(), 1, "one line: {said}");
    assert!(
        said.contains("creating a new store and a new KEK"),
        "{said}"
    );
    assert!(place.dir.path().join("kek.key").exists());

    // Now there is a store: nothing more is said, and the reads work on it.
    let out = bin(&place, &["migrate"]);
    assert!(out.status.success());
    assert_eq!(stderr(&out), "");
    let out = bin(&place, &["issuer", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = bin(&place, &["keys", "jwks"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"kty\""));
}

#[test]
fn serve_on_an_empty_directory_says_it_creates_a_store() {
    let place = fresh_place_blocking();
    // A port in use, so serve stops after opening the store.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let mut server = command(&place)
        .args(["serve", "--listen", &listen])
        .env("D1__LOG__LEVEL", "off")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = server.wait().unwrap();
    let mut said = String::new();
    std::io::Read::read_to_string(&mut server.stderr.take().unwrap(), &mut said).unwrap();
    assert!(!status.success());
    assert!(
        said.contains("creating a new store and a new KEK"),
        "{said}"
    );
}
