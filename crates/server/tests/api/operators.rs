//! The portal's operators from the command line (contract section 11): `operator add|set|
//! list|disable` through the real binary, each change in the audit trail, and `audit list`.

use std::process::Output;

use d1_crypto::ec::SigningKey;
use serde_json::Value;

use crate::harness::{fresh_place_blocking, on_postgres, Place};
use crate::process::bin;

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// A text the database holds, read behind the service's back.
fn stored(place: &Place, column: &str, username: &str) -> String {
    let sql = if on_postgres() {
        format!("SELECT convert_to({column}::text, 'UTF8') FROM operators WHERE username = '{username}'")
    } else {
        format!("SELECT CAST({column} AS BLOB) FROM operators WHERE username = '{username}'")
    };
    let bytes = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(place.bytes(&sql));
    String::from_utf8(bytes).unwrap()
}

fn sessions_of(place: &Place, username: &str) -> String {
    let sql = if on_postgres() {
        format!("SELECT convert_to(COUNT(*)::text, 'UTF8') FROM operator_sessions WHERE username = '{username}'")
    } else {
        format!(
            "SELECT CAST(COUNT(*) AS BLOB) FROM operator_sessions WHERE username = '{username}'"
        )
    };
    let bytes = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(place.bytes(&sql));
    String::from_utf8(bytes).unwrap()
}

fn add_session(place: &Place, id: &str, username: &str) {
    let sql = if on_postgres() {
        format!("INSERT INTO operator_sessions VALUES ('\\x{id}', '{username}', 'c', 0, 0)")
    } else {
        format!("INSERT INTO operator_sessions VALUES (x'{id}', '{username}', 'c', 0, 0)")
    };
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(place.execute(&sql));
}

/// A place with the issuers BANK000001 and BANK000002 onboarded through the CLI.
fn place_with_issuers() -> std::sync::Arc<Place> {
    let place = fresh_place_blocking();
    let key = SigningKey::generate().unwrap();
    let public = place.dir.path().join("pub.pem");
    std::fs::write(&public, key.public_pem()).unwrap();
    for (id, kid) in [("BANK000001", "i1"), ("BANK000002", "i2")] {
        let args = [
            "issuer",
            "add",
            "--issuer-id",
            id,
            "--assertion-key",
            public.to_str().unwrap(),
            "--kid",
            kid,
        ];
        assert!(bin(&place, &args).status.success());
    }
    place
}

fn password_file(place: &Place, name: &str, text: &str) -> String {
    let path = place.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn operator_add_prints_a_one_time_password_once_or_takes_one_from_a_file() {
    let place = place_with_issuers();
    let out = bin(
        &place,
        &[
            "operator",
            "add",
            "--username",
            "ann",
            "--role",
            "cci",
            "--issuers",
            "BANK000001",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let one_time = stdout(&out).trim().to_owned();
    assert!(one_time.len() >= 20, "{one_time}");
    assert!(
        one_time.chars().all(|c| c.is_ascii_alphanumeric()),
        "{one_time}"
    );
    let hash = stored(&place, "password_hash", "ann");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(d1_registry::operators::verify_password(&one_time, &hash));
    assert!(!stderr(&out).contains(&one_time), "printed once, on stdout");

    let canary = "canary-Password-7731";
    let file = password_file(&place, "pw", &format!("{canary}\n"));
    let out = bin(
        &place,
        &[
            "operator",
            "add",
            "--username",
            "bob.admin@bank",
            "--role",
            "admin",
            "--issuers",
            "all",
            "--password-file",
            &file,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains(canary) && !stderr(&out).contains(canary));
    let hash = stored(&place, "password_hash", "bob.admin@bank");
    assert!(
        d1_registry::operators::verify_password(canary, &hash),
        "newline stripped"
    );

    let listed = bin(&place, &["operator", "list"]);
    assert!(listed.status.success());
    let listed = stdout(&listed);
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        [
            "ann role=cci issuers=BANK000001 state=active must_change_password=yes",
            "bob.admin@bank role=admin issuers=all state=active must_change_password=no",
        ]
    );
    let json = stdout(&bin(&place, &["operator", "list", "--json"]));
    for text in [&listed, &json] {
        assert!(!text.contains(canary) && !text.contains(&one_time) && !text.contains("argon2"));
    }
    let first: Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(first["username"], "ann");
    assert_eq!(first["mustChangePassword"], true);
}

#[test]
fn operator_add_refuses_unknown_issuers_bad_names_short_passwords_and_taken_names() {
    let place = place_with_issuers();
    let add = |username: &str, issuers: &str, extra: &[&str]| {
        let mut args = vec![
            "operator",
            "add",
            "--username",
            username,
            "--role",
            "manager",
            "--issuers",
            issuers,
        ];
        args.extend_from_slice(extra);
        bin(&place, &args)
    };
    let unknown = add("ann", "BANK000001,BANK000009", &[]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("BANK000009 is not onboarded"),
        "{}",
        stderr(&unknown)
    );
    assert!(
        stdout(&unknown).is_empty(),
        "no password printed for a refused add"
    );
    assert_eq!(add("a b", "all", &[]).status.code(), Some(1));
    assert_eq!(add(&"x".repeat(65), "all", &[]).status.code(), Some(1));
    assert_eq!(add("ann", "nope", &[]).status.code(), Some(2));
    let short = password_file(&place, "short", "elevenchars\n");
    let refused = add("ann", "all", &["--password-file", &short]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(!stderr(&refused).contains("elevenchars"));
    assert!(add("ann", "all", &[]).status.success());
    let taken = add("ann", "all", &[]);
    assert_eq!(taken.status.code(), Some(1));
    assert!(
        stderr(&taken).contains("already exists"),
        "{}",
        stderr(&taken)
    );
    assert!(stdout(&taken).is_empty());
    let listed = stdout(&bin(&place, &["operator", "list"]));
    assert_eq!(listed.lines().count(), 1, "{listed}");
}

#[test]
fn operator_set_and_disable_change_the_operator_and_end_its_sessions() {
    let place = place_with_issuers();
    let args = [
        "operator",
        "add",
        "--username",
        "ann",
        "--role",
        "cci",
        "--issuers",
        "all",
    ];
    assert!(bin(&place, &args).status.success());
    add_session(&place, "01", "ann");
    let set = |extra: &[&str]| {
        let mut args = vec!["operator", "set", "--username", "ann"];
        args.extend_from_slice(extra);
        bin(&place, &args)
    };
    assert_eq!(set(&[]).status.code(), Some(2), "one change at least");
    let out = set(&["--role", "manager", "--issuers", "BANK000002"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        sessions_of(&place, "ann"),
        "1",
        "a role change keeps the sessions"
    );
    assert_eq!(set(&["--issuers", "BANK000007"]).status.code(), Some(1));
    let file = password_file(&place, "pw", "a brand new password\n");
    assert!(set(&["--password-file", &file]).status.success());
    assert_eq!(
        sessions_of(&place, "ann"),
        "0",
        "a new password ends the sessions"
    );
    let hash = stored(&place, "password_hash", "ann");
    assert!(d1_registry::operators::verify_password(
        "a brand new password",
        &hash
    ));
    let listed = stdout(&bin(&place, &["operator", "list"]));
    assert_eq!(
        listed.trim(),
        "ann role=manager issuers=BANK000002 state=active must_change_password=no"
    );
    let ghost = bin(
        &place,
        &["operator", "set", "--username", "ghost", "--role", "cci"],
    );
    assert_eq!(ghost.status.code(), Some(1));

    add_session(&place, "02", "ann");
    assert!(bin(&place, &["operator", "disable", "--username", "ann"])
        .status
        .success());
    assert_eq!(sessions_of(&place, "ann"), "0");
    let listed = stdout(&bin(&place, &["operator", "list"]));
    assert!(listed.contains("state=disabled"), "{listed}");
    let ghost = bin(&place, &["operator", "disable", "--username", "ghost"]);
    assert_eq!(ghost.status.code(), Some(1));
}

#[test]
fn audit_list_prints_json_lines_newest_first_filtered_and_limited() {
    let place = place_with_issuers();
    let empty = fresh_place_blocking();
    assert_eq!(
        bin(&empty, &["audit", "list"]).status.code(),
        Some(1),
        "no store: none made"
    );
    let at = d1_domain::clock::rfc3339(d1_store::now_ms() - 1_000);
    for name in ["ann", "bob"] {
        let args = [
            "operator",
            "add",
            "--username",
            name,
            "--role",
            "cci",
            "--issuers",
            "all",
        ];
        assert!(bin(&place, &args).status.success());
    }
    place_audit(&place, "ann", 4_102_444_800_000, "search");
    let lines = |args: &[&str]| -> Vec<Value> {
        let out = bin(&place, args);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let all = lines(&["audit", "list"]);
    let actions: Vec<&str> = all.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["search", "operator.add:bob", "operator.add:ann"]);
    assert_eq!(
        all[0],
        serde_json::json!({"at": "2100-01-01T00:00:00.000Z", "operator": "ann",
                           "action": "search", "issuerId": "BANK000001", "cardId": "k1",
                           "outcome": "ok"})
    );
    assert_eq!(all[1]["operator"], "cli");
    assert_eq!(all[1]["outcome"], "ok");
    assert!(
        all[1].get("issuerId").is_none(),
        "absent fields are left out"
    );
    let cli = lines(&["audit", "list", "--operator", "cli"]);
    assert_eq!(cli.len(), 2);
    assert_eq!(lines(&["audit", "list", "--limit", "1"]).len(), 1);
    let since = lines(&["audit", "list", "--since", "2099-12-31T00:00:00Z"]);
    assert_eq!(since.len(), 1);
    assert_eq!(since[0]["action"], "search");
    assert_eq!(
        lines(&["audit", "list", "--since", &at, "--operator", "cli"]).len(),
        2
    );
    assert_eq!(
        bin(&place, &["audit", "list", "--since", "yesterday"])
            .status
            .code(),
        Some(2)
    );
}

fn place_audit(place: &Place, operator: &str, at: i64, action: &str) {
    let sql = format!(
        "INSERT INTO operator_audit (at, operator, action, issuer_id, card_id, outcome)
         VALUES ({at}, '{operator}', '{action}', 'BANK000001', 'k1', 'ok')"
    );
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(place.execute(&sql));
}
