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
    /// `None`: the SQLite file in the data directory.
    database_url: Option<String>,
}

/// Another `serve` process on the same data directory and database.
pub struct Node {
    pub addr: String,
    child: Child,
}

fn command(binary: &Path, data: &Path, database_url: Option<&str>) -> Command {
    let mut command = Command::new(binary);
    command.arg("--data-dir").arg(data);
    if let Some(url) = database_url {
        command.arg("--database-url").arg(url);
    }
    command
}

fn run(
    binary: &Path,
    data: &Path,
    database_url: Option<&str>,
    args: &[&str],
) -> anyhow::Result<()> {
    let status = command(binary, data, database_url)
        .args(args)
        .status()
        .with_context(|| format!("running {}", binary.display()))?;
    if !status.success() {
        bail!("{} {:?} failed", binary.display(), args);
    }
    Ok(())
}

impl Service {
    /// Onboards the bench issuer and starts `serve` on a free port, on the database at
    /// `database_url` or else on SQLite in a fresh data directory.
    pub fn start(binary: &Path, database_url: Option<&str>) -> anyhow::Result<Self> {
        Self::start_with(binary, database_url, &[])
    }

    /// [`Self::start`] with settings for `serve` as `D1__SECTION__KEY` variables.
    pub fn start_with(
        binary: &Path,
        database_url: Option<&str>,
        env: &[(&str, String)],
    ) -> anyhow::Result<Self> {
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
            database_url,
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
        let log = dir.path().join("serve.log");
        let (addr, child) = spawn_serve(binary, &data, database_url, &log, env)?;
        Ok(Self {
            addr,
            binary: binary.to_path_buf(),
            child,
            dir,
            key,
            database_url: database_url.map(str::to_owned),
        })
    }

    /// Starts one more node on the same data directory (its KEK) and database.
    pub fn another_node(&self, n: usize) -> anyhow::Result<Node> {
        let (addr, child) = self.spawn_on_this_store(&format!("serve-{n}.log"))?;
        Ok(Node { addr, child })
    }

    /// A node on this service's data directory and database, logging to `log` in its directory.
    fn spawn_on_this_store(&self, log: &str) -> anyhow::Result<(String, Child)> {
        spawn_serve(
            &self.binary,
            &self.dir.path().join("data"),
            self.database_url.as_deref(),
            &self.dir.path().join(log),
            &[],
        )
    }

    /// Kills the node with SIGKILL, as a crash would: no shutdown, no flush.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Starts the node again on the same data and database, on a new port (`addr` changes);
    /// `n` names its log.
    pub fn restart(&mut self, n: usize) -> anyhow::Result<()> {
        let (addr, child) = self.spawn_on_this_store(&format!("serve-restart-{n}.log"))?;
        self.addr = addr;
        self.child = child;
        Ok(())
    }

    /// The SQLite file of a node that has no `--database-url`.
    pub fn sqlite_file(&self) -> PathBuf {
        self.dir.path().join("data/registry.db")
    }

    /// The binary under test.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Runs a CLI command on the service's data directory and database.
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<()> {
        run(
            &self.binary,
            &self.dir.path().join("data"),
            self.database_url.as_deref(),
            args,
        )
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
        run(
            &self.binary,
            &self.dir.path().join("data"),
            self.database_url.as_deref(),
            &args,
        )
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
        let (status, text) = crate::wire::request_once(
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

    /// The CPU time (user and system, all threads) the service process has used so far.
    pub fn cpu_time(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        // The fields after the parenthesised command name; utime and stime are the 12th and
        // 13th of them, in clock ticks, which Linux reports at 100 per second.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(Duration::from_millis(ticks * 10))
    }

    /// The service process's resident set size in bytes (`VmRSS`), and the part of it that is
    /// its own memory rather than pages of mapped files (`RssAnon`).
    pub fn rss_bytes(&self) -> Option<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let field = |name: &str| -> Option<u64> {
            let kib: u64 = status
                .lines()
                .find_map(|l| l.strip_prefix(name))?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()?;
            Some(kib * 1024)
        };
        Some((field("VmRSS:")?, field("RssAnon:")?))
    }

    /// What the service's data takes on disk, in bytes: the files of its data directory on
    /// SQLite, its schema's tables with their indexes and TOAST on PostgreSQL.
    pub async fn data_bytes(&self) -> anyhow::Result<u64> {
        let bytes = match &self.database_url {
            Some(url) => d1_scratch::connect(url)
                .await?
                .query_one(
                    "SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
                     JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = current_schema() AND c.relkind = 'r'",
                    &[],
                )
                .await?
                .try_get::<_, i64>(0)?,
            None => {
                let mut total = 0u64;
                for entry in std::fs::read_dir(self.dir.path().join("data"))? {
                    let meta = entry?.metadata()?;
                    if meta.is_file() {
                        total += meta.len();
                    }
                }
                return Ok(total);
            }
        };
        Ok(u64::try_from(bytes).unwrap_or(0))
    }

    /// How many consumer rows the service's database holds now.
    pub async fn consumer_rows(&self) -> anyhow::Result<u64> {
        let count = match &self.database_url {
            Some(url) => d1_scratch::connect(url)
                .await?
                .query_one("SELECT count(*) FROM consumers", &[])
                .await?
                .try_get::<_, i64>(0)?,
            None => rusqlite::Connection::open(self.dir.path().join("data/registry.db"))?
                .query_row("SELECT count(*) FROM consumers", [], |r| r.get::<_, i64>(0))?,
        };
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

/// Starts `serve` on a free port, logging to `log`, and waits until it is ready.
fn spawn_serve(
    binary: &Path,
    data: &Path,
    database_url: Option<&str>,
    log: &Path,
    env: &[(&str, String)],
) -> anyhow::Result<(String, Child)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = command(binary, data, database_url)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .args(["serve", "--listen", &addr])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .spawn()?;
    for _ in 0..100 {
        if std::net::TcpStream::connect(&addr).is_ok() {
            return Ok((addr, child));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    bail!("the service did not start (see {})", log.display())
}

fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

impl Drop for Node {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
