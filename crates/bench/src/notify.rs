//! Card operation notifications during the cards scenario (contract section 9a: the card
//! registration rates are measured with notifications on): the bench issuer's backend is an
//! `issuer-sim` taking every card operation, one item per call (the default), and the
//! report says how many of the run's card operations it received and how soon.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::enrolments::Simulator;
use crate::service::{Service, ISSUER};

/// The simulator and the files it reads.
pub struct Receiver {
    sim: Simulator,
    _files: tempfile::TempDir,
}

impl Receiver {
    /// Starts the simulator and sets it as the bench issuer's backend, every card operation
    /// notified.
    pub fn start(service: &Service, binary: &std::path::Path) -> anyhow::Result<Self> {
        let files = tempfile::tempdir()?;
        let file = files.path().join("consumers.json");
        let consumers = json!({"issuerId": ISSUER, "clientId": "bench",
                               "clientSecret": "bench-secret", "consumers": {}});
        std::fs::write(&file, consumers.to_string())?;
        let secret = files.path().join("secret");
        std::fs::write(&secret, "bench-secret")?;
        let sim = Simulator::start(binary, &file, 0)?;
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
            "--card-notifications",
            "all",
        ])?;
        Ok(Self { sim, _files: files })
    }

    /// Items received so far.
    pub async fn items(&self, http: &reqwest::Client) -> anyhow::Result<u64> {
        let stats: Value = http
            .get(format!("{}/sim/stats", self.sim.url))
            .send()
            .await?
            .json()
            .await?;
        Ok(stats["notificationItems"].as_u64().unwrap_or(0))
    }

    /// Waits up to `patience` for `expected` items, and says how many came and how soon.
    pub async fn report(&self, expected: u64, patience: Duration) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let start = Instant::now();
        let mut received = self.items(&http).await?;
        while received < expected && start.elapsed() < patience {
            tokio::time::sleep(Duration::from_millis(100)).await;
            received = self.items(&http).await?;
        }
        println!(
            "notifications: issuer-sim received {received} items for {expected} card operations, the last {:.1}s after the load ended",
            start.elapsed().as_secs_f64()
        );
        Ok(())
    }
}
