//! The service under test: a release binary in a fresh data directory, one issuer onboarded.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use d1_crypto::ec::SigningKey;

pub const ISSUER: &str = "BENCH00001";
const KID: &str = "bench-key";

pub struct Service {
    pub addr: String,
    binary: PathBuf,
    child: Child,
    dir: tempfile::TempDir,
    key: SigningKey,
}

fn run(binary: &Path, data: &Path, args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(binary)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .status()
        .with_context(|| format!("running {}", binary.display()))?;
    if !status.success() {
        bail!("{} {:?} failed", binary.display(), args);
    }
    Ok(())
}

impl Service {
    /// Onboards the bench issuer and starts `serve` on a free port.
    pub fn start(binary: &Path) -> anyhow::Result<Self> {
        if !binary.exists() {
            bail!(
                "{} not found: run `cargo build --release` first (bench/registrations.sh does)",
                binary.display()
            );
        }
        let dir = tempfile::Builder::new().prefix("d1-bench-").tempdir_in(
            std::env::var("BENCH_DIR").map_or_else(|_| std::env::temp_dir(), PathBuf::from),
        )?;
        let data = dir.path().join("data");
        let key = SigningKey::generate()?;
        let public = dir.path().join("issuer-pub.pem");
        std::fs::write(&public, key.public_pem())?;
        run(
            binary,
            &data,
            &[
                "issuer",
                "add",
                "--issuer-id",
                ISSUER,
                "--assertion-key",
                public.to_str().unwrap_or_default(),
                "--kid",
                KID,
            ],
        )?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(dir.path().join("serve.log"))?;
        let child = Command::new(binary)
            .arg("--data-dir")
            .arg(&data)
            .args(["serve", "--listen", &addr])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        let service = Self {
            addr,
            binary: binary.to_path_buf(),
            child,
            dir,
            key,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(&service.addr).is_ok() {
                return Ok(service);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("the service did not start")
    }

    /// Configures a card product for the bench issuer, through the CLI.
    pub fn add_product(&self, id: &str, scheme: &str, bin: &str) -> anyhow::Result<()> {
        let args = [
            "product",
            "add",
            "--issuer-id",
            ISSUER,
            "--card-product-id",
            id,
            "--scheme",
            scheme,
            "--bin",
            bin,
        ];
        run(&self.binary, &self.dir.path().join("data"), &args)
    }

    /// An access token, through the real token endpoint.
    pub async fn token(&self) -> anyhow::Result<String> {
        let now = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs(),
        )?;
        let assertion = d1_crypto::jwt::sign_assertion(
            &self.key,
            KID,
            ISSUER,
            None,
            &uuid::Uuid::new_v4().to_string(),
            now,
        )?;
        let body = format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}");
        let (status, text) = crate::load::request_once(
            &self.addr,
            "POST",
            "/authz/v1/oauth2/token",
            "application/x-www-form-urlencoded",
            body,
        )
        .await?;
        if status != 200 {
            bail!("token endpoint answered {status}: {text}");
        }
        let value: serde_json::Value = serde_json::from_str(&text)?;
        Ok(value["access_token"]
            .as_str()
            .context("no access_token")?
            .to_owned())
    }

    /// How many consumer rows the service's database holds now.
    pub fn consumer_rows(&self) -> anyhow::Result<u64> {
        let conn = rusqlite::Connection::open(self.dir.path().join("data/registry.db"))?;
        Ok(conn
            .query_row("SELECT count(*) FROM consumers", [], |r| r.get::<_, i64>(0))
            .map(|n| u64::try_from(n).unwrap_or(0))?)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}
