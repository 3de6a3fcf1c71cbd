//! The "we do not store PI" model end to end, as the README walks it: the real binary as
//! `issuer-sim` and as `serve`, the issuer backend set with `issuer set-backend`, a card
//! enrolled in Click to Pay with PI fetched from the simulator, the card operations' items as
//! the simulator received them (`GET /sim/notifications`). And a `serve` killed while an
//! enrolment is in flight finishes it after a restart, notifying once; one killed with a card
//! operation's notification still undelivered delivers it after the restart.

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
    sim_failing(files, port, latency_ms, 0.0)
}

/// The simulator answering `fail_rate` of its calls with 500.
fn sim_failing(files: &Path, port: u16, latency_ms: u32, fail_rate: f64) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_d1-registry"))
        .args([
            "issuer-sim",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--consumers",
        ])
        .arg(files.join("consumers.json"))
        .args(["--latency-ms", &latency_ms.to_string()])
        .args(["--fail-rate", &fail_rate.to_string()])
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

/// Writes the bank's files (its key, the simulator's consumers and client secret) to `dir`
/// and onboards it with a product, as the README does.
fn onboard(place: &Place, dir: &Path) {
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
        place,
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
        place,
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
}

struct Walk {
    http: reqwest::blocking::Client,
    url: String,
    token: String,
}

impl Walk {
    /// A walk on the service at `url`, with a token of the bank whose files are in `dir`.
    fn new(place: &Place, dir: &Path, url: String) -> Self {
        let key_path = dir.join("issuer.pem");
        let token = ok(
            place,
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
        Self {
            http: reqwest::blocking::Client::new(),
            url,
            token,
        }
    }

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
            .header("x-correlation-id", format!("reg-{card}"))
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
            .header("x-correlation-id", format!("enrol-{card}"))
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

/// The notification calls the simulator received, as `GET /sim/notifications` serves them.
fn sim_calls(port: u16) -> Vec<Value> {
    let received: Value =
        reqwest::blocking::get(format!("http://127.0.0.1:{port}/sim/notifications"))
            .unwrap()
            .json()
            .unwrap();
    received["calls"].as_array().unwrap().clone()
}

/// The calls carrying an item of `operation` for `card`.
fn calls_of(port: u16, operation: &str, card: &str) -> Vec<Value> {
    sim_calls(port)
        .into_iter()
        .filter(|call| {
            call["envelope"]["operations"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["operation"] == operation && i["cardId"] == card)
        })
        .collect()
}

/// Waits for a call carrying an item of `operation` for `card`; the first such call.
fn wait_for_item(port: u16, operation: &str, card: &str) -> Value {
    for _ in 0..200 {
        if let Some(call) = calls_of(port, operation, card).into_iter().next() {
            return call;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "the simulator got no {operation} of {card}: {:?}",
        sim_calls(port)
    );
}

#[test]
fn issuer_sim_serves_pi_for_an_enrolment_and_a_killed_node_finishes_it_after_a_restart() {
    let place = fresh_place_blocking();
    // The issuer's own files, apart from the registry's data directory.
    let bank = tempfile::tempdir().unwrap();
    let dir = bank.path();
    onboard(&place, dir);

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
    let walk = Walk::new(&place, dir, url);

    walk.register_card("card-1", 1);
    let first = walk.enrol("card-1");
    let done = walk.finished(&first);
    assert_eq!(done["status"], "SUCCESSFUL", "{done}");
    let enrolled = wait_for_item(sim_port, "CLICK_TO_PAY_ENROLMENT", "card-1");
    assert_eq!(
        enrolled["envelope"]["operations"][0]["operationId"],
        first.as_str()
    );
    assert_eq!(enrolled["correlationId"], "enrol-card-1");
    let registered = wait_for_item(sim_port, "REGISTER", "card-1");
    assert_eq!(registered["issuerId"], ISSUER);
    assert_eq!(registered["correlationId"], "reg-card-1");
    let item = &registered["envelope"]["operations"][0];
    assert_eq!(item["consumerId"], "c1");
    assert_eq!(item["status"], "SUCCESSFUL");
    let registered_id = item["operationId"].as_str().unwrap().to_owned();
    assert_eq!(sim_stats(sim_port)["consumerRequests"], 1);
    let printed = stop(simulator);
    assert!(
        printed.contains(&format!("notification issuer={ISSUER} operationId={first} operation=CLICK_TO_PAY_ENROLMENT status=SUCCESSFUL cardId=card-1")),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("notification issuer={ISSUER} operationId={registered_id} operation=REGISTER status=SUCCESSFUL cardId=card-1")),
        "one line per item: {printed}"
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
    wait_for_item(sim_port, "CLICK_TO_PAY_ENROLMENT", "card-2");
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

#[test]
fn a_card_operation_not_yet_notified_when_serve_is_killed_is_notified_after_the_restart() {
    let place = fresh_place_blocking();
    let bank = tempfile::tempdir().unwrap();
    let dir = bank.path();
    onboard(&place, dir);
    let sim_port = free_port();
    // A backend that refuses every call, so the item is committed and waits undelivered.
    let refusing = sim_failing(dir, sim_port, 0, 1.0);
    let secret = dir.join("secret.txt");
    let backend = format!("http://127.0.0.1:{sim_port}");
    let set = ok(
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
            "--card-notifications",
            "all",
            "--notification-batch-size",
            "5",
        ],
    );
    assert!(set.contains("batch size 5"), "{set}");
    assert!(ok(&place, &["issuer", "list"]).contains(&format!(
        "backend={backend} card_notifications=all notification_batch_size=5"
    )));
    let base = [
        "issuer",
        "set-backend",
        "--issuer-id",
        ISSUER,
        "--url",
        &backend,
    ];
    for bad in [
        &["--notification-batch-size", "0"][..],
        &["--notification-batch-size", "101"],
        &["--notification-batch-size", "many"],
        &["--card-notifications", "some"],
    ] {
        let args: Vec<&str> = base.iter().chain(bad).copied().collect();
        assert_eq!(
            bin(&place, &args).status.code(),
            Some(2),
            "{bad:?} is bad usage"
        );
    }
    assert!(
        ok(&place, &["issuer", "list"]).contains("notification_batch_size=5"),
        "a refused set-backend changes nothing"
    );
    let port = free_port();
    let mut server = serve(&place, port);
    let walk = Walk::new(&place, dir, format!("http://127.0.0.1:{port}"));
    walk.register_card("card-9", 9);
    for _ in 0..50 {
        if sim_stats(sim_port)["injectedFailures"].as_u64() >= Some(1) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        sim_stats(sim_port)["injectedFailures"].as_u64() >= Some(1),
        "delivery was tried"
    );
    assert!(sim_calls(sim_port).is_empty());
    // SIGKILL: no shutdown of any kind.
    server.kill().unwrap();
    server.wait().unwrap();
    let _ = stop(refusing);

    let simulator = sim(dir, sim_port, 0);
    let mut server = serve(&place, port);
    let call = wait_for_item(sim_port, "REGISTER", "card-9");
    assert_eq!(call["correlationId"], "reg-card-9");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(calls_of(sim_port, "REGISTER", "card-9").len(), 1);
    let _ = server.kill();
    let _ = server.wait();
    let printed = stop(simulator);
    assert!(
        printed.contains("operation=REGISTER status=SUCCESSFUL cardId=card-9"),
        "{printed}"
    );
}
