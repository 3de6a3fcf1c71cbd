//! Several `d1-registry serve` processes on one PostgreSQL database, as a bank runs them
//! behind a load balancer: any node answers any request, and they agree.

use std::collections::HashMap;
use std::process::Child;
use std::sync::Arc;
use std::time::Duration;

use d1_crypto::ec::SigningKey;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::harness::{encrypt_to, fresh_place, future_exp, test_pan, Place, TestIssuer};
use crate::process::{bin, serve, serve_with, terminate};

pub(crate) const BANK: &str = "BANK000042";

/// Two nodes on one fresh schema, with an issuer and a card product onboarded.
pub(crate) struct Cluster {
    pub(crate) place: Arc<Place>,
    nodes: Vec<(Child, String)>,
    issuer: TestIssuer,
    client: reqwest::Client,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// Onboards the test issuer through the CLI with a fresh key under `kid`, and with
/// `product` the Visa product the card tests use.
async fn onboard(place: &Arc<Place>, kid: &'static str, product: bool) -> TestIssuer {
    let issuer = TestIssuer {
        id: BANK,
        key: SigningKey::generate().unwrap(),
        kid: kid.into(),
    };
    let public = place.dir.path().join("issuer-pub.pem");
    std::fs::write(&public, issuer.key.public_pem()).unwrap();
    let place = Arc::clone(place);
    blocking(move || {
        let public = public.to_str().unwrap();
        let add = [
            "issuer",
            "add",
            "--issuer-id",
            BANK,
            "--assertion-key",
            public,
        ];
        assert!(bin(&place, &[&add[..], &["--kid", kid]].concat())
            .status
            .success());
        if product {
            let product = [
                "product",
                "add",
                "--issuer-id",
                BANK,
                "--card-product-id",
                "visa-classic",
                "--scheme",
                "VISA",
                "--bin",
                "411111",
            ];
            assert!(bin(&place, &product).status.success());
        }
    })
    .await;
    issuer
}

impl Cluster {
    /// Starts both nodes at once on an empty database, so that they migrate it together.
    async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// [`Cluster::start`], each node with the environment variables `env`.
    pub(crate) async fn start_with(env: &[(&'static str, &'static str)]) -> Self {
        let place = fresh_place().await;
        // Every node must be given the same KEK; the first start would otherwise make one.
        d1_crypto::keyfile::create(&place.dir.path().join("kek.key")).unwrap();
        let starting: Vec<_> = (0..2)
            .map(|_| {
                let place = Arc::clone(&place);
                let env = env.to_vec();
                tokio::task::spawn_blocking(move || serve_with(&place, &env))
            })
            .collect();
        let mut nodes = Vec::new();
        for node in starting {
            nodes.push(node.await.unwrap());
        }
        let issuer = onboard(&place, "multinode-key", true).await;
        Self::of(place, nodes, issuer)
    }

    /// The cluster of the nodes given, already running on `place` with `issuer` onboarded.
    fn of(place: Arc<Place>, nodes: Vec<(Child, String)>, issuer: TestIssuer) -> Self {
        Self {
            place,
            nodes,
            issuer,
            client: reqwest::Client::new(),
        }
    }

    fn url(&self, node: usize, path: &str) -> String {
        format!("{}{path}", self.nodes[node % self.nodes.len()].1)
    }

    async fn exchange(&self, node: usize, assertion: &str) -> reqwest::Response {
        self.client
            .post(self.url(node, "/authz/v1/oauth2/token"))
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion),
            ])
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn token(&self, node: usize) -> String {
        let response = self.exchange(node, &self.issuer.assertion()).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// The CLI, on the same database.
    pub(crate) async fn cli(&self, args: &[&str]) -> String {
        let place = Arc::clone(&self.place);
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = bin(&place, &args);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        })
        .await
    }

    pub(crate) async fn request(
        &self,
        node: usize,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
        correlation: &str,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, self.url(node, path))
            .bearer_auth(token)
            .header("x-correlation-id", correlation);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub(crate) async fn stop(mut self) {
        for (node, _) in std::mem::take(&mut self.nodes) {
            assert_eq!(blocking(move || terminate(node)).await, Some(0));
        }
    }
}

impl Drop for Cluster {
    /// A failed test still takes its nodes down with it.
    fn drop(&mut self) {
        for (node, _) in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
    }
}

pub(crate) fn consumer_path(consumer: &str) -> String {
    format!("/banking/v2/issuers/{BANK}/consumers/{consumer}")
}

pub(crate) fn card_path(card: &str) -> String {
    format!("/banking/v2/issuers/{BANK}/cards/{card}")
}

pub(crate) async fn card_body(jwk: &Value, consumer: &str, pan: &str) -> Value {
    let jwe = encrypt_to(jwk, &json!({"pan": pan, "exp": future_exp()}), "A256GCM");
    json!({"consumerId": consumer, "cardProductId": "visa-classic", "encryptedData": jwe})
}

pub(crate) async fn newest_jwk(cluster: &Cluster) -> Value {
    let jwks: Value = serde_json::from_str(&cluster.cli(&["keys", "jwks"]).await).unwrap();
    jwks["keys"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_jtis_and_service_keys_are_shared_by_the_nodes() {
    let cluster = Cluster::start().await;

    let assertion = cluster.issuer.assertion();
    assert_eq!(cluster.exchange(0, &assertion).await.status(), 200);
    let replay = cluster.exchange(1, &assertion).await;
    assert_eq!(replay.status(), 400, "a jti used on node A is refused on B");
    let body: Value = replay.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");

    let token = cluster.token(0).await;
    let (status, _) = cluster
        .request(
            1,
            reqwest::Method::PUT,
            &consumer_path("shared-1"),
            &token,
            Some(&json!({"personalInformation": {"firstName": "Ann"}})),
            "c-1",
        )
        .await;
    assert_eq!(status, 204, "node B accepts node A's token");

    let old = newest_jwk(&cluster).await;
    let rotated = cluster.cli(&["keys", "rotate"]).await;
    let new = newest_jwk(&cluster).await;
    assert_eq!(new["kid"], rotated.trim());
    for node in 0..2 {
        let body = card_body(&new, "shared-1", &test_pan(u64::try_from(node).unwrap())).await;
        let (status, body) = cluster
            .request(
                node,
                reqwest::Method::PUT,
                &card_path(&format!("rotated-{node}")),
                &token,
                Some(&body),
                "c-2",
            )
            .await;
        assert_eq!(
            status, 204,
            "node {node} decrypts to the rotated key: {body}"
        );
    }

    let old_kid = old["kid"].as_str().unwrap();
    cluster.cli(&["keys", "retire", old_kid]).await;
    // The stated bound: nodes read the service keys again at least every 10 s.
    tokio::time::sleep(Duration::from_secs(11)).await;
    for node in 0..2 {
        let body = card_body(
            &old,
            "shared-1",
            &test_pan(10 + u64::try_from(node).unwrap()),
        )
        .await;
        let (status, body) = cluster
            .request(
                node,
                reqwest::Method::PUT,
                &card_path(&format!("retired-{node}")),
                &token,
                Some(&body),
                "c-3",
            )
            .await;
        assert_eq!(status, 400, "node {node} refuses a retired kid: {body}");
    }
    cluster.stop().await;
}

/// One acknowledged write, as the client saw it.
#[derive(Debug, Clone)]
struct Acked {
    kind: &'static str,
    /// The firstName sent, for writes that carry PI.
    first_name: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_spread_over_two_nodes_lose_nothing_and_read_the_same() {
    let cluster = Arc::new(Cluster::start().await);
    let token = cluster.token(0).await;
    let jwk = newest_jwk(&cluster).await;
    let consumers: Vec<String> = (0..10).map(|i| format!("mc-{i}")).collect();
    let workers: Vec<_> = (0..8u64)
        .map(|worker| {
            let (cluster, token, jwk, consumers) = (
                Arc::clone(&cluster),
                token.clone(),
                jwk.clone(),
                consumers.clone(),
            );
            tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(worker);
                let mut acked: Vec<(String, String, Acked)> = Vec::new();
                for step in 0..40u64 {
                    let n = worker * 1000 + step;
                    let node = usize::try_from(n % 2).unwrap();
                    let consumer = &consumers[rng.gen_range(0..consumers.len())];
                    let correlation = format!("w{worker}-s{step}");
                    let first = format!("V{n}");
                    let pi = json!({"personalInformation": {"firstName": first}});
                    let choice = rng.gen_range(0..10);
                    let (kind, method, path, body) = match choice {
                        0..=2 => (
                            "REGISTER",
                            reqwest::Method::PUT,
                            consumer_path(consumer),
                            Some(pi),
                        ),
                        3..=4 => (
                            "UPDATE",
                            reqwest::Method::POST,
                            consumer_path(consumer) + "/operations/update",
                            Some(pi),
                        ),
                        5 => (
                            "DELETE",
                            reqwest::Method::POST,
                            consumer_path(consumer) + "/operations/delete",
                            None,
                        ),
                        6..=7 => (
                            "CARD_REGISTER",
                            reqwest::Method::PUT,
                            card_path(&format!("card-{n}")),
                            Some(card_body(&jwk, consumer, &test_pan(n)).await),
                        ),
                        // Contested: every worker goes for the same few cardIds and PANs.
                        _ => {
                            let k = rng.gen_range(0..3u64);
                            (
                                "CONTESTED",
                                reqwest::Method::PUT,
                                card_path(&format!("contested-{k}")),
                                Some(card_body(&jwk, consumer, &test_pan(900_000 + k)).await),
                            )
                        }
                    };
                    let (status, answer) = cluster
                        .request(node, method, &path, &token, body.as_ref(), &correlation)
                        .await;
                    assert!(
                        [204, 400, 403, 404, 409].contains(&status),
                        "{kind} answered {status}: {answer}"
                    );
                    if status == 204 {
                        let first_name =
                            matches!(kind, "REGISTER" | "UPDATE").then(|| first.clone());
                        acked.push((consumer.clone(), correlation, Acked { kind, first_name }));
                    }
                }
                acked
            })
        })
        .collect();
    let mut acked: HashMap<String, (String, Acked)> = HashMap::new();
    for worker in workers {
        for (consumer, correlation, write) in worker.await.unwrap() {
            acked.insert(correlation, (consumer, write));
        }
    }
    assert!(acked.len() > 100, "enough writes were acknowledged");

    for consumer in &consumers {
        let trail = trail(&cluster, &token, consumer).await;
        let seen: std::collections::HashSet<(&str, &str)> = trail
            .iter()
            .map(|o| {
                (
                    o["correlationId"].as_str().unwrap_or(""),
                    o["operation"].as_str().unwrap(),
                )
            })
            .collect();
        // Every acknowledged write that changes something left its fact in the trail.
        for (correlation, (owner, write)) in &acked {
            if owner == consumer && matches!(write.kind, "REGISTER" | "UPDATE" | "CARD_REGISTER") {
                assert!(
                    seen.contains(&(correlation.as_str(), write.kind)),
                    "{correlation} on {consumer} was acknowledged but is not in the trail"
                );
            }
        }
        // The state is the one the newest fact says, with the PI of the newest write.
        let (status, view) = cluster
            .request(
                0,
                reqwest::Method::GET,
                &consumer_path(consumer),
                &token,
                None,
                "r",
            )
            .await;
        let last_life: Vec<&Value> = trail
            .iter()
            .take_while(|o| o["operation"] != "DELETE")
            .collect();
        let deleted = trail
            .iter()
            .find(|o| {
                matches!(
                    o["operation"].as_str(),
                    Some("REGISTER" | "UPDATE" | "DELETE")
                )
            })
            .is_some_and(|o| o["operation"] == "DELETE");
        if trail.is_empty() {
            assert_eq!(status, 404);
            continue;
        }
        assert_eq!(
            view["state"],
            if deleted { "DELETED" } else { "ACTIVE" },
            "{consumer}"
        );
        if !deleted {
            let newest_pi = last_life.iter().find_map(|o| {
                acked
                    .get(o["correlationId"].as_str()?)
                    .and_then(|(_, w)| w.first_name.clone())
            });
            assert_eq!(
                view["personalInformation"]["firstName"].as_str(),
                newest_pi.as_deref(),
                "{consumer}: the stored PI is the newest acknowledged one"
            );
        }
        // Both nodes answer every read the same way.
        for path in [
            consumer_path(consumer),
            consumer_path(consumer) + "/cards",
            consumer_path(consumer) + "/operations?limit=200",
        ] {
            let a = cluster
                .request(0, reqwest::Method::GET, &path, &token, None, "r")
                .await;
            let b = cluster
                .request(1, reqwest::Method::GET, &path, &token, None, "r")
                .await;
            assert_eq!(a, b, "{path}");
        }
    }

    let place = &cluster.place;
    assert_eq!(
        count(place, "SELECT count(*) FROM (SELECT 1 FROM consumers GROUP BY issuer_id, consumer_id HAVING count(*) > 1) d")
            .await,
        0,
        "one row, so at most one live consumer, per consumerId"
    );
    assert_eq!(
        count(place, "SELECT count(*) FROM (SELECT 1 FROM cards WHERE state <> 'DELETED' GROUP BY issuer_id, card_id HAVING count(*) > 1) d")
            .await,
        0,
        "a cardId is live at most once"
    );
    assert_eq!(
        count(place, "SELECT count(*) FROM (SELECT 1 FROM cards GROUP BY issuer_id, pan_mac HAVING count(*) > 1) d")
            .await,
        0,
        "a PAN is registered at most once"
    );
    assert_eq!(
        count(
            place,
            "SELECT count(*) FROM cards k JOIN consumers c ON c.id = k.consumer_ref
                 WHERE k.state <> 'DELETED'
                   AND (c.state = 'DELETED' OR k.consumer_generation <> c.generation)"
        )
        .await,
        0,
        "no delete cascade is half applied"
    );
    assert_eq!(
        count(
            place,
            "SELECT count(*) FROM cards k
                 WHERE k.state = 'DELETED' AND NOT EXISTS (
                     SELECT 1 FROM operations o
                     WHERE o.consumer_ref = k.consumer_ref AND o.card_id = k.card_id
                       AND o.operation = 'CARD_DELETE')"
        )
        .await,
        0,
        "every deleted card has its CARD_DELETE fact"
    );
    Arc::try_unwrap(cluster).ok().unwrap().stop().await;
}

/// The first column of the first row of a query returning a count.
pub(crate) async fn count(place: &Place, sql: &str) -> i64 {
    let client = d1_scratch::connect(&place.database_url).await.unwrap();
    client
        .query_one(sql, &[])
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
}

/// The whole trail of a consumer, newest first.
async fn trail(cluster: &Cluster, token: &str, consumer: &str) -> Vec<Value> {
    let path = consumer_path(consumer) + "/operations?limit=200";
    let (status, body) = cluster
        .request(1, reqwest::Method::GET, &path, token, None, "r")
        .await;
    if status == 404 {
        return Vec::new();
    }
    assert_eq!(status, 200);
    assert!(
        body.get("nextCursor").is_none_or(Value::is_null),
        "one page holds it"
    );
    body["operations"].as_array().unwrap().clone()
}

/// A TCP relay in front of PostgreSQL that a test can cut and restore: the database going
/// away and coming back, without stopping it for the other tests.
struct Relay {
    addr: std::net::SocketAddr,
    target: String,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Relay {
    async fn start(target: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut relay = Self {
            addr,
            target,
            task: None,
        };
        relay.serve(listener);
        relay
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let target = self.target.clone();
        self.task = Some(tokio::spawn(async move {
            // Dropping the set, when the relay is cut, closes every relayed connection.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                connections.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }

    /// Closes every connection and refuses new ones.
    async fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Accepts connections again, on the same address.
    async fn restore(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}

/// The host and port of a PostgreSQL URL reached over TCP.
fn host_port(url: &str) -> (String, u16) {
    let config: tokio_postgres::Config = url.parse().unwrap();
    let tokio_postgres::config::Host::Tcp(host) = &config.get_hosts()[0] else {
        panic!("the test database must be reached over TCP");
    };
    (
        host.clone(),
        config.get_ports().first().copied().unwrap_or(5432),
    )
}

/// `url` with its host and port replaced by `relay`.
fn through(url: &str, relay: &str) -> String {
    let (host, port) = host_port(url);
    let with_port = format!("@{host}:{port}");
    if url.contains(&with_port) {
        url.replacen(&with_port, &format!("@{relay}"), 1)
    } else {
        url.replacen(&format!("@{host}"), &format!("@{relay}"), 1)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_database_gives_503_and_500_then_the_node_recovers_by_itself() {
    let direct = fresh_place().await;
    let (host, port) = host_port(&direct.database_url);
    let mut relay = Relay::start(format!("{host}:{port}")).await;
    let place = Arc::new(Place {
        dir: tempfile::tempdir().unwrap(),
        database_url: through(&direct.database_url, &relay.addr.to_string()),
    });
    let issuer = onboard(&place, "outage-key", false).await;
    let serving = Arc::clone(&place);
    let (node, url) = blocking(move || serve(&serving)).await;
    let cluster = Cluster::of(place, vec![(node, url)], issuer);
    let token = cluster.token(0).await;
    let pi = json!({"personalInformation": {"firstName": "Before"}});
    let put = |consumer: &'static str| {
        let (cluster, token, pi) = (&cluster, &token, &pi);
        async move {
            cluster
                .request(
                    0,
                    reqwest::Method::PUT,
                    &consumer_path(consumer),
                    token,
                    Some(pi),
                    "o",
                )
                .await
        }
    };
    assert_eq!(put("before-outage").await.0, 204);

    relay.cut().await;
    let ready = cluster
        .client
        .get(cluster.url(0, "/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let started = std::time::Instant::now();
    let (status, body) = put("during-outage").await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["errorCode"], "INTERNAL_ERROR");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the answer does not hang"
    );
    let (status, body) = cluster
        .request(
            0,
            reqwest::Method::GET,
            &consumer_path("before-outage"),
            &token,
            None,
            "o",
        )
        .await;
    assert_eq!(
        (status, &body["errorCode"]),
        (500, &json!("INTERNAL_ERROR"))
    );

    relay.restore().await;
    let mut recovered = false;
    for _ in 0..50 {
        let ready = cluster
            .client
            .get(cluster.url(0, "/readyz"))
            .send()
            .await
            .unwrap();
        if ready.status() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        recovered,
        "the node is ready again once the database is back"
    );
    let (status, body) = cluster
        .request(
            0,
            reqwest::Method::GET,
            &consumer_path("before-outage"),
            &token,
            None,
            "o",
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["personalInformation"]["firstName"], "Before",
        "the acknowledged write is there"
    );
    assert_eq!(put("after-outage").await.0, 204);
    let (status, _) = cluster
        .request(
            0,
            reqwest::Method::GET,
            &consumer_path("during-outage"),
            &token,
            None,
            "o",
        )
        .await;
    assert_eq!(status, 404, "the refused write was not applied");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolments_spread_over_two_nodes_each_run_and_notify_once() {
    use crate::fake_backend::{Answer, FakeBackend, CLIENT_ID, CLIENT_SECRET};
    let cluster = Cluster::start().await;
    let fake = FakeBackend::start(Answer::Slow(
        Duration::from_millis(50),
        Box::new(Answer::Pi(json!({
            "language": "de-DE", "firstName": "Ada", "lastName": "Byron", "email": "ada@example.com",
            "mobilePhoneNumber": {"countryCode": "+49", "phoneNumber": "15112345678"},
            "residencyAddress": {"line1": "Unter den Linden 1", "city": "Berlin", "countryCode": "DE"}
        }))),
    ))
    .await;
    let secret = cluster.place.dir.path().join("backend-secret.txt");
    std::fs::write(&secret, CLIENT_SECRET).unwrap();
    cluster
        .cli(&["issuer", "set", "--issuer-id", BANK, "--click-to-pay", "on"])
        .await;
    cluster
        .cli(&[
            "issuer",
            "set-backend",
            "--issuer-id",
            BANK,
            "--url",
            &fake.url,
            "--client-id",
            CLIENT_ID,
            "--client-secret-file",
            secret.to_str().unwrap(),
        ])
        .await;
    let token = cluster.token(0).await;
    let jwk = newest_jwk(&cluster).await;
    for n in 0..20u64 {
        let body = card_body(&jwk, &format!("c{}", n % 10), &test_pan(n)).await;
        let (status, _) = cluster
            .request(
                n as usize,
                reqwest::Method::PUT,
                &card_path(&format!("card-{n}")),
                &token,
                Some(&body),
                "setup",
            )
            .await;
        assert_eq!(status, 204);
    }
    let enrolments = (0..20u64).map(|n| {
        let (cluster, token) = (&cluster, &token);
        async move {
            let path =
                format!("/banking/v1/issuers/{BANK}/cards/card-{n}/operations:clickToPayEnrolment");
            let (status, body) = cluster
                .request(
                    n as usize,
                    reqwest::Method::POST,
                    &path,
                    token,
                    None,
                    &format!("enrol-{n}"),
                )
                .await;
            assert_eq!(status, 202, "{body}");
            body["operationId"].as_str().unwrap().to_owned()
        }
    });
    let ids = futures_util::future::join_all(enrolments).await;
    for (n, id) in ids.iter().enumerate() {
        let path = format!("/banking/v1/issuers/{BANK}/operations/{id}");
        let mut status = Value::Null;
        for _ in 0..200 {
            let (_, body) = cluster
                .request(n + 1, reqwest::Method::GET, &path, &token, None, "poll")
                .await;
            status = body["status"].clone();
            if status != "PENDING" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(status, "SUCCESSFUL", "operation {id}");
    }
    // The cards' REGISTER items are notified too; the enrolments are counted apart.
    fake.wait_for_items(Some("CLICK_TO_PAY_ENROLMENT"), 20)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut notified: Vec<String> = fake
        .items(Some("CLICK_TO_PAY_ENROLMENT"))
        .iter()
        .map(|item| item["operationId"].as_str().unwrap().to_owned())
        .collect();
    notified.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(notified, expected, "each enrolment notified exactly once");
    assert!(
        fake.consumer_calls() <= 20,
        "at most one fetch per enrolment"
    );
    assert_eq!(
        count(&cluster.place, "SELECT count(*) FROM c2p_jobs").await,
        0
    );
    cluster.stop().await;
}

/// A database at schema version 2, as a release before the trail lost its foreign key left
/// it, is brought up to date by `migrate`: the trail's key goes, the cards' key stays.
#[tokio::test]
async fn a_schema_at_version_2_is_upgraded_and_the_trail_loses_only_its_own_key() {
    let place = fresh_place().await;
    let client = d1_scratch::connect(&place.database_url).await.unwrap();
    client
        .batch_execute(include_str!(
            "../../../store/migrations/postgres/0001_init.sql"
        ))
        .await
        .unwrap();
    client
        .batch_execute(include_str!(
            "../../../store/migrations/postgres/0002_click_to_pay.sql"
        ))
        .await
        .unwrap();
    client
        .batch_execute(
            "CREATE TABLE schema_migrations (
                 version    INTEGER PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             );
             INSERT INTO schema_migrations (version) VALUES (1), (2);",
        )
        .await
        .unwrap();
    let keys =
        "SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace \
                WHERE n.nspname = current_schema() AND c.conname = ";
    let trail_key = format!("{keys}'operations_consumer_ref_fkey'");
    let card_key = format!("{keys}'cards_consumer_ref_fkey'");
    assert_eq!(
        count(&place, &trail_key).await,
        1,
        "version 2 has the trail's key"
    );

    let migrated = blocking({
        let place = Arc::clone(&place);
        move || bin(&place, &["migrate"])
    })
    .await;
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let version = "SELECT max(version)::bigint FROM schema_migrations";
    let migrations = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../store/migrations/postgres"
    ))
    .unwrap()
    .count();
    assert_eq!(
        count(&place, version).await,
        i64::try_from(migrations).unwrap(),
        "every migration since is applied too"
    );
    assert_eq!(
        count(&place, &trail_key).await,
        0,
        "the trail's key is gone"
    );
    assert_eq!(count(&place, &card_key).await, 1, "the cards' key stays");
}

/// Created cards near their expiry are renewed by the service itself, once, whichever node
/// runs the renewal: one CARD_RENEW entry per card, `ongoingOperation: "RENEWAL"` on reads.
#[tokio::test]
async fn created_cards_near_expiry_are_renewed_once_across_nodes() {
    // A one-month product and a horizon of 62 days make every new card due at once.
    let cluster = Cluster::start_with(&[
        ("D1__CARDS__AUTO_RENEW_DAYS", "62"),
        ("D1__CARDS__AUTO_RENEW_INTERVAL_SECS", "1"),
    ])
    .await;
    cluster
        .cli(&[
            "product",
            "add",
            "--issuer-id",
            BANK,
            "--card-product-id",
            "monthly",
            "--scheme",
            "VISA",
            "--bin",
            "422222",
            "--validity-months",
            "1",
        ])
        .await;
    let token = cluster.token(0).await;
    let mut cards = Vec::new();
    for i in 0..6 {
        let consumer = format!("renew-{i}");
        let (status, _) = cluster
            .request(
                i,
                reqwest::Method::PUT,
                &consumer_path(&consumer),
                &token,
                Some(&json!({})),
                "c",
            )
            .await;
        assert_eq!(status, 204);
        let body = json!({"consumerId": consumer, "cardProductId": "monthly"});
        let path = format!("/banking/v2/issuers/{BANK}/cards");
        let (status, created) = cluster
            .request(i, reqwest::Method::POST, &path, &token, Some(&body), "c")
            .await;
        assert_eq!(status, 201, "{created}");
        cards.push((consumer, created["cardId"].as_str().unwrap().to_owned()));
    }
    // Two runs of each node at least.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (i, (consumer, card)) in cards.iter().enumerate() {
        let (_, read) = cluster
            .request(i, reqwest::Method::GET, &card_path(card), &token, None, "c")
            .await;
        assert_eq!(read["ongoingOperation"], "RENEWAL", "{read}");
        assert!(read["renewedExpiry"].is_string(), "{read}");
        let path = format!("{}/operations", consumer_path(consumer));
        let (_, trail) = cluster
            .request(i, reqwest::Method::GET, &path, &token, None, "c")
            .await;
        let renewals: Vec<&Value> = trail["operations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["operation"] == "CARD_RENEW")
            .collect();
        assert_eq!(renewals.len(), 1, "renewed once: {trail}");
        assert_eq!(renewals[0]["reasonCode"], "EXPIRY");
        assert_eq!(renewals[0]["cardId"], card.as_str());
    }
    cluster.stop().await;
}
