//! The "we do not store PI" model end to end, as the README walks it: the real binary as
//! `issuer-sim` and as `serve`, the issuer backend set with `issuer set-backend`, a card
//! enrolled in Click to Pay with PI fetched from the simulator. And a `serve` killed while an
//! enrolment is in flight finishes it after a restart, notifying once.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use d1_crypto::ec::SigningKey;
use serde_json::{json, Value};

use crate::harness::{encrypt_to, fresh_place_blocking, future_exp, test_pan, Place};
use crate::process::{bin, command, free_port};

const ISSUER: &str = "BANK000010";
const CANARY_EMAIL: &str = "sim.canary.k2p9@example.com";

fn sim(files: &Path, port: u16, latency_ms: u32) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_d1-registry"))
        .args([
            "issuer-sim",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--consumers",
        ])
        .arg(files.join("consumers.json"))
        .args(["--latency-ms", &latency_ms.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(&format!("http://127.0.0.1:{port}/sim/stats"));
    child
}

/// `serve` with a short job lease, so that on PostgreSQL too a killed node's job is taken
/// again soon after the restart.
fn serve(place: &Place, port: u16) -> Child {
    let child = command(place)
        .env("D1__JOBS__LEASE_SECS", "2")
        .env("D1__JOBS__POLL_INTERVAL_MS", "100")
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(&format!("http://127.0.0.1:{port}/readyz"));
    child
}

fn wait_ready(url: &str) {
    let client = reqwest::blocking::Client::new();
    for _ in 0..100 {
        if client.get(url).send().is_ok_and(|r| r.status() == 200) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{url} did not become ready");
}

fn stop(mut child: Child) -> String {
    let _ = child.kill();
    let _ = child.wait();
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    out
}

fn ok(place: &Place, args: &[&str]) -> String {
    let out = bin(place, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

struct Walk {
    http: reqwest::blocking::Client,
    url: String,
    token: String,
}

impl Walk {
    fn register_card(&self, card: &str, n: u64) {
        let jwks: Value = self
            .http
            .get(format!("{}/.well-known/jwks.json", self.url))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let exp = future_exp();
        let jwe = encrypt_to(
            &jwks["keys"][0],
            &json!({"pan": test_pan(n), "exp": exp}),
            "A256GCM",
        );
        let body = json!({"consumerId": "c1", "cardProductId": "gold", "encryptedData": jwe});
        let response = self
            .http
            .put(format!(
                "{}/banking/v2/issuers/{ISSUER}/cards/{card}",
                self.url
            ))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .unwrap();
        assert_eq!(response.status(), 204);
    }

    fn enrol(&self, card: &str) -> String {
        let response = self
            .http
            .post(format!(
                "{}/banking/v1/issuers/{ISSUER}/cards/{card}/operations:clickToPayEnrolment",
                self.url
            ))
            .bearer_auth(&self.token)
            .json(&json!({"billingAddress": {"line1": "2 quai de Conti", "city": "Paris", "countryCode": "FR"}}))
            .send()
            .unwrap();
        assert_eq!(response.status(), 202);
        let body: Value = response.json().unwrap();
        body["operationId"].as_str().unwrap().to_owned()
    }

    fn status(&self, id: &str) -> Option<Value> {
        let response = self
            .http
            .get(format!(
                "{}/banking/v1/issuers/{ISSUER}/operations/{id}",
                self.url
            ))
            .bearer_auth(&self.token)
            .send()
            .ok()?;
        response.json().ok()
    }

    fn finished(&self, id: &str) -> Value {
        for _ in 0..300 {
            if let Some(body) = self.status(id).filter(|b| b["status"] != "PENDING") {
                return body;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("operation {id} did not finish");
    }
}

fn sim_stats(port: u16) -> Value {
    reqwest::blocking::get(format!("http://127.0.0.1:{port}/sim/stats"))
        .unwrap()
        .json()
        .unwrap()
}

fn wait_for_notifications(port: u16, count: u64) {
    for _ in 0..200 {
        if sim_stats(port)["notifications"].as_u64() >= Some(count) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the simulator did not get {count} notifications");
}

#[test]
fn issuer_sim_serves_pi_for_an_enrolment_and_a_killed_node_finishes_it_after_a_restart() {
    let place = fresh_place_blocking();
    // The issuer's own files, apart from the registry's data directory.
    let bank = tempfile::tempdir().unwrap();
    let dir = bank.path();
    let key = SigningKey::generate().unwrap();
    std::fs::write(dir.join("issuer.pem"), key.to_pkcs8_pem().as_bytes()).unwrap();
    std::fs::write(dir.join("issuer-pub.pem"), key.public_pem()).unwrap();
    std::fs::write(dir.join("secret.txt"), "s3cret-value\n").unwrap();
    let consumers = json!({
        "issuerId": ISSUER, "clientId": "bank-client", "clientSecret": "s3cret-value",
        "consumers": {"c1": {
            "language": "fr-FR", "firstName": "Marie", "lastName": "Curie",
            "email": CANARY_EMAIL,
            "mobilePhoneNumber": {"countryCode": "+33", "phoneNumber": "698765432"}
        }}
    });
    std::fs::write(dir.join("consumers.json"), consumers.to_string()).unwrap();
    let pub_path = dir.join("issuer-pub.pem");
    ok(
        &place,
        &[
            "issuer",
            "add",
            "--issuer-id",
            ISSUER,
            "--assertion-key",
            pub_path.to_str().unwrap(),
            "--kid",
            "k1",
            "--click-to-pay",
        ],
    );
    ok(
        &place,
        &[
            "product",
            "add",
            "--issuer-id",
            ISSUER,
            "--card-product-id",
            "gold",
            "--scheme",
            "VISA",
            "--bin",
            "411111",
        ],
    );

    let sim_port = free_port();
    let mut simulator = sim(dir, sim_port, 5);
    let backend = format!("http://127.0.0.1:{sim_port}");
    let secret = dir.join("secret.txt");
    assert_eq!(
        bin(
            &place,
            &[
                "issuer",
                "set-backend",
                "--issuer-id",
                "BANK999999",
                "--url",
                &backend
            ]
        )
        .status
        .code(),
        Some(1),
        "an unknown issuer is refused"
    );
    assert_eq!(
        bin(
            &place,
            &[
                "issuer",
                "set-backend",
                "--issuer-id",
                ISSUER,
                "--url",
                "ftp://x"
            ]
        )
        .status
        .code(),
        Some(1),
        "a URL that is not http(s) is refused"
    );
    ok(
        &place,
        &[
            "issuer",
            "set-backend",
            "--issuer-id",
            ISSUER,
            "--url",
            &backend,
            "--client-id",
            "bank-client",
            "--client-secret-file",
            secret.to_str().unwrap(),
            "--send-card-id",
        ],
    );
    assert!(ok(&place, &["issuer", "list"]).contains(&format!("backend={backend}")));

    let port = free_port();
    let mut server = serve(&place, port);
    let url = format!("http://127.0.0.1:{port}");
    let key_path = dir.join("issuer.pem");
    let token = ok(
        &place,
        &[
            "token",
            "--issuer-id",
            ISSUER,
            "--key",
            key_path.to_str().unwrap(),
            "--kid",
            "k1",
            "--url",
            &url,
        ],
    )
    .trim()
    .to_owned();
    let walk = Walk {
        http: reqwest::blocking::Client::new(),
        url,
        token,
    };

    walk.register_card("card-1", 1);
    let first = walk.enrol("card-1");
    let done = walk.finished(&first);
    assert_eq!(done["status"], "SUCCESSFUL", "{done}");
    wait_for_notifications(sim_port, 1);
    assert_eq!(sim_stats(sim_port)["consumerRequests"], 1);
    let printed = stop(simulator);
    assert!(
        printed.contains(&format!("notification issuer={ISSUER} operationId={first} operation=CLICK_TO_PAY_ENROLMENT status=SUCCESSFUL cardId=card-1")),
        "{printed}"
    );
    assert!(
        !printed.contains(CANARY_EMAIL) && !printed.contains("Curie"),
        "the simulator prints no PI"
    );

    // A slow backend, and the node is killed while the enrolment waits for it.
    simulator = sim(dir, sim_port, 1500);
    walk.register_card("card-2", 2);
    let second = walk.enrol("card-2");
    std::thread::sleep(Duration::from_millis(500));
    server.kill().unwrap();
    server.wait().unwrap();
    server = serve(&place, port);
    let done = walk.finished(&second);
    assert_eq!(done["status"], "SUCCESSFUL", "{done}");
    wait_for_notifications(sim_port, 1);
    std::thread::sleep(Duration::from_millis(500));
    let _ = server.kill();
    let _ = server.wait();
    let printed = stop(simulator);
    let lines = printed.matches(&format!("operationId={second}")).count();
    assert_eq!(
        lines, 1,
        "the issuer hears of the enrolment once: {printed}"
    );
    assert!(
        place.holding_blocking(CANARY_EMAIL.as_bytes()).is_empty(),
        "fetched PI rests in clear"
    );
}
