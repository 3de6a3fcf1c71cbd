//! `d1-registry issuer-sim` as the bench issuer's backend: it answers Get Consumer
//! Information from a file, and receives the card operation notifications.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::service::{Service, ISSUER};

const CLIENT_ID: &str = "bench";
const CLIENT_SECRET: &str = "bench-secret";

/// A running simulator; stopped when dropped.
pub struct Simulator {
    child: Child,
    pub url: String,
    _files: tempfile::TempDir,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Simulator {
    /// Starts the simulator on a free port for the bench issuer, knowing `consumers`
    /// (consumerId → consumerInfo) and answering each call after `latency_ms`.
    pub fn start(
        binary: &Path,
        consumers: serde_json::Map<String, Value>,
        latency_ms: u32,
    ) -> anyhow::Result<Self> {
        let files = tempfile::tempdir()?;
        let file = files.path().join("consumers.json");
        std::fs::write(
            &file,
            json!({"issuerId": ISSUER, "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET, "consumers": consumers}).to_string(),
        )?;
        std::fs::write(files.path().join("secret"), CLIENT_SECRET)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(binary)
            .args(["issuer-sim", "--listen", &addr, "--consumers"])
            .arg(&file)
            .args(["--latency-ms", &latency_ms.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .context("starting issuer-sim")?;
        for _ in 0..100 {
            if std::net::TcpStream::connect(&addr).is_ok() {
                return Ok(Self {
                    child,
                    url: format!("http://{addr}"),
                    _files: files,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("issuer-sim did not start")
    }

    /// Makes the simulator the bench issuer's backend, with its client credentials and
    /// `extra` flags of `issuer set-backend`.
    pub fn connect(&self, service: &Service, extra: &[&str]) -> anyhow::Result<()> {
        let secret = self._files.path().join("secret");
        let mut args = vec![
            "issuer",
            "set-backend",
            "--issuer-id",
            ISSUER,
            "--url",
            &self.url,
            "--client-id",
            CLIENT_ID,
            "--client-secret-file",
            secret.to_str().unwrap_or_default(),
        ];
        args.extend_from_slice(extra);
        service.cli(&args)
    }

    /// One counter of the simulator's `/sim/stats`.
    pub async fn stat(&self, http: &reqwest::Client, name: &str) -> anyhow::Result<u64> {
        let stats: Value = http
            .get(format!("{}/sim/stats", self.url))
            .send()
            .await?
            .json()
            .await?;
        stats[name]
            .as_u64()
            .with_context(|| format!("issuer-sim's stats have no {name}"))
    }
}
