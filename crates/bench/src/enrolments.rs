//! The `enrolments` scenario: Click to Pay enrolments end to end, from the 202 to the operation
//! being SUCCESSFUL, against `d1-registry issuer-sim` answering with 5 ms latency.
//!
//! Each run enrols `--enrolments` cards twice: once for consumers whose PI is stored (the
//! baseline: no outbound call) and once for consumers registered implicitly by their card,
//! whose PI is fetched from the simulator. The figure is the ratio of the two rates, and the
//! outbound calls per enrolment read from the simulator's counters. Then N concurrent
//! enrolments of one consumer's cards show what single-flight makes of them.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};

use crate::seal::Recipient;
use crate::service::{Service, ISSUER};
use crate::settings::Settings;

const PRODUCT: &str = "bench-c2p";
/// Concurrent requests of the client, as in the other scenarios.
const CONCURRENCY: usize = 32;

fn pi(n: usize) -> Value {
    json!({
        "language": "en-GB", "firstName": format!("Bench{n}"), "lastName": "Enrolment",
        "email": format!("enrol{n}@example.com"),
        "mobilePhoneNumber": {"countryCode": "+44", "phoneNumber": "7700900123"},
        "residencyAddress": {"line1": "1 Bench Street", "city": "London", "countryCode": "GB"}
    })
}

/// `d1-registry issuer-sim`, stopped when dropped.
pub(crate) struct Simulator {
    child: Child,
    pub(crate) url: String,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Simulator {
    pub(crate) fn start(binary: &Path, file: &Path, latency_ms: u32) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(binary)
            .args(["issuer-sim", "--listen", &addr, "--consumers"])
            .arg(file)
            .args(["--latency-ms", &latency_ms.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .context("starting issuer-sim")?;
        for _ in 0..100 {
            if std::net::TcpStream::connect(&addr).is_ok() {
                return Ok(Self {
                    child,
                    url: format!("http://{addr}"),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("issuer-sim did not start")
    }

    async fn consumer_requests(&self, http: &reqwest::Client) -> anyhow::Result<u64> {
        let stats: Value = http
            .get(format!("{}/sim/stats", self.url))
            .send()
            .await?
            .json()
            .await?;
        stats["consumerRequests"]
            .as_u64()
            .context("no consumerRequests")
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    recipient: Recipient,
}

impl Client {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            bail!("{path} answered {status}: {}", response.text().await?);
        }
        Ok(response.json().await.unwrap_or(Value::Null))
    }

    fn card_body(&self, consumer: &str, n: usize) -> anyhow::Result<Value> {
        let mut digits = format!("{n:09}")
            .into_bytes()
            .into_iter()
            .rev()
            .map(|d| d - b'0')
            .collect::<Vec<_>>()
            .into_iter();
        let pan = d1_domain::card::Pan::allocate("5100001", 16, &mut || digits.next().unwrap_or(0));
        let exp = format!(
            "12{:02}",
            (time::OffsetDateTime::now_utc().year() + 3) % 100
        );
        let plain = json!({"pan": pan.digits(), "exp": exp}).to_string();
        let jwe = self.recipient.seal(&plain)?;
        Ok(json!({"consumerId": consumer, "cardProductId": PRODUCT, "encryptedData": jwe}))
    }

    /// Registers the cards `(consumer, cardId, n)`, `CONCURRENCY` at a time.
    async fn register_cards(&self, cards: &[(String, String, usize)]) -> anyhow::Result<()> {
        let results: Vec<anyhow::Result<Value>> = stream::iter(cards)
            .map(|(consumer, card, n)| async move {
                let body = self.card_body(consumer, *n)?;
                self.send(
                    reqwest::Method::PUT,
                    &format!("/banking/v2/issuers/{ISSUER}/cards/{card}"),
                    body,
                )
                .await
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        results.into_iter().try_for_each(|r| r.map(|_| ()))
    }

    async fn finished_enrolments(&self) -> anyhow::Result<u64> {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await?
            .text()
            .await?;
        Ok(text
            .lines()
            .filter(|l| l.starts_with("d1_click_to_pay_enrolments_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum())
    }

    /// Enrols every card, `CONCURRENCY` requests at a time, and waits until all have finished.
    /// Returns the elapsed time and how many failed.
    async fn enrol_all(&self, cards: &[String]) -> anyhow::Result<Duration> {
        let before = self.finished_enrolments().await?;
        let started = Instant::now();
        let accepted: Vec<anyhow::Result<Value>> = stream::iter(cards)
            .map(|card| async move {
                let path = format!(
                    "/banking/v1/issuers/{ISSUER}/cards/{card}/operations:clickToPayEnrolment"
                );
                self.send(reqwest::Method::POST, &path, json!({})).await
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for a in accepted {
            a?;
        }
        let target = before + cards.len() as u64;
        loop {
            if self.finished_enrolments().await? >= target {
                return Ok(started.elapsed());
            }
            if started.elapsed() > Duration::from_secs(600) {
                bail!("enrolments did not finish within 10 minutes");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Runs the scenario.
pub fn run(settings: &Settings) -> anyhow::Result<()> {
    let count = settings.enrolments;
    let runs = settings.runs;
    let service = Service::start(&settings.binary, settings.database_url.as_deref())?;
    let files = tempfile::tempdir()?;
    let consumers: serde_json::Map<String, Value> = (0..runs * count + 1)
        .map(|n| (format!("iss-{n}"), pi(n)))
        .collect();
    let file = files.path().join("consumers.json");
    std::fs::write(
        &file,
        json!({"issuerId": ISSUER, "clientId": "bench", "clientSecret": "bench-secret", "consumers": consumers}).to_string(),
    )?;
    std::fs::write(files.path().join("secret"), "bench-secret")?;
    let sim = Simulator::start(&settings.binary, &file, 5)?;
    service.cli(&[
        "issuer",
        "set",
        "--issuer-id",
        ISSUER,
        "--click-to-pay",
        "on",
    ])?;
    let secret = files.path().join("secret");
    service.cli(&[
        "issuer",
        "set-backend",
        "--issuer-id",
        ISSUER,
        "--url",
        &sim.url,
        "--client-id",
        "bench",
        "--client-secret-file",
        secret.to_str().unwrap_or_default(),
    ])?;
    service.add_product(PRODUCT, "MASTERCARD", "510000")?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let http = reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY).build()?;
        let base = format!("http://{}", service.addr);
        let jwks: Value = http.get(format!("{base}/.well-known/jwks.json")).send().await?.json().await?;
        let recipient = Recipient::from_jwks(&jwks)?;
        let client = Client { http: http.clone(), base, token: service.token().await?, recipient };
        println!(
            "\nClick to Pay enrolments end to end (202 to SUCCESSFUL), {count} per batch, {CONCURRENCY} concurrent requests, issuer-sim with 5 ms latency; the client and the simulator share the machine's cores"
        );
        let mut ratios = Vec::new();
        let mut pan = 0;
        for run in 0..runs {
            // Baseline: consumers with stored PI, registered first.
            let stored: Vec<(String, String, usize)> = (0..count)
                .map(|i| {
                    pan += 1;
                    (format!("st-{run}-{i}"), format!("st-card-{run}-{i}"), pan)
                })
                .collect();
            for (consumer, _, n) in &stored {
                client
                    .send(reqwest::Method::PUT, &format!("/banking/v2/issuers/{ISSUER}/consumers/{consumer}"), json!({"personalInformation": pi(*n)}))
                    .await?;
            }
            client.register_cards(&stored).await?;
            let fetched: Vec<(String, String, usize)> = (0..count)
                .map(|i| {
                    pan += 1;
                    (format!("iss-{}", run * count + i), format!("iss-card-{run}-{i}"), pan)
                })
                .collect();
            client.register_cards(&fetched).await?;

            let calls_before = sim.consumer_requests(&http).await?;
            let cards: Vec<String> = stored.iter().map(|c| c.1.clone()).collect();
            let baseline = client.enrol_all(&cards).await?;
            let calls_stored = sim.consumer_requests(&http).await? - calls_before;
            let cards: Vec<String> = fetched.iter().map(|c| c.1.clone()).collect();
            let issuer = client.enrol_all(&cards).await?;
            let calls_fetched = sim.consumer_requests(&http).await? - calls_before - calls_stored;
            let (b, i) = (count as f64 / baseline.as_secs_f64(), count as f64 / issuer.as_secs_f64());
            println!(
                "  run {}: stored PI {b:.0}/s ({calls_stored} outbound calls), PI from the issuer backend {i:.0}/s ({:.2} Get Consumer Information calls per enrolment), ratio {:.2}",
                run + 1,
                calls_fetched as f64 / count as f64,
                i / b
            );
            ratios.push(i / b);
        }
        ratios.sort_by(f64::total_cmp);
        println!(
            "  ratio PI-from-issuer / stored-PI: median {:.2} (min {:.2}, max {:.2})",
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1]
        );

        // Single-flight: N concurrent enrolments of one consumer's cards.
        let n = CONCURRENCY;
        let one = format!("iss-{}", runs * count);
        let cards: Vec<(String, String, usize)> = (0..n)
            .map(|i| {
                pan += 1;
                (one.clone(), format!("one-card-{i}"), pan)
            })
            .collect();
        client.register_cards(&cards).await?;
        let before = sim.consumer_requests(&http).await?;
        let ids: Vec<String> = cards.iter().map(|c| c.1.clone()).collect();
        client.enrol_all(&ids).await?;
        let calls = sim.consumer_requests(&http).await? - before;
        println!("\nsingle-flight: {n} concurrent enrolments of one consumer's cards made {calls} Get Consumer Information call(s)");
        anyhow::Ok(())
    })
}
