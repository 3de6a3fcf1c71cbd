//! Typed, layered configuration: defaults, then an optional TOML file, then `D1__SECTION__KEY`
//! environment variables, then the global command-line flags (`--data-dir`, `--database-url`,
//! `--log-format`, each with its `D1_…` variable).

use std::path::{Path, PathBuf};

use anyhow::Context;
use d1_store::Durability;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// How long an issuer's settings and products are trusted before they are read again. CLI
/// changes to an existing issuer reach a running server within this; a new one is seen at once.
pub const ISSUER_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// Where logs go and how they look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Human,
    /// One JSON object per event.
    Json,
}

/// `[server]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: String,
    /// The service's public base URL; also an accepted `aud` of assertions.
    pub public_url: String,
    /// A request running longer is answered 503 `TIMEOUT`.
    pub request_timeout_ms: u64,
    /// Larger bodies are answered 413 `PAYLOAD_TOO_LARGE`.
    pub body_limit_bytes: usize,
    /// The same for the v1 Register consumer with cards, whose 100 cards need more room.
    pub batch_body_limit_bytes: usize,
    /// How long SIGTERM waits for in-flight requests.
    pub shutdown_grace_ms: u64,
    /// A request head (the first from the connection's start) not complete within this
    /// closes the connection.
    pub header_timeout_ms: u64,
    /// A keep-alive connection with nothing sent for this long is closed.
    pub idle_timeout_ms: u64,
    /// Open connections at most; one more is closed as soon as it is accepted.
    pub max_connections: usize,
    /// A header in which a TLS-terminating proxy passes the client certificate (URL-encoded
    /// PEM); off when unset.
    pub client_cert_header: Option<String>,
    /// The proxies (addresses or CIDRs) whose `client_cert_header` is trusted.
    pub trusted_proxies: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            request_timeout_ms: 10_000,
            body_limit_bytes: 64 * 1024,
            batch_body_limit_bytes: 256 * 1024,
            shutdown_grace_ms: 30_000,
            header_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            max_connections: 4096,
            client_cert_header: None,
            trusted_proxies: Vec::new(),
        }
    }
}

/// `[database]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `full`: a write is acknowledged after it is synced to disk; `normal`: after it is
    /// written, synced at checkpoints (survives a process crash, not a power cut).
    pub durability: Durability,
    /// SQLite read connections kept open.
    pub read_connections: usize,
    /// PostgreSQL connections per node.
    pub pool_size: usize,
    /// PostgreSQL cancels a statement running longer than this.
    pub statement_timeout_ms: u64,
    /// How long a request waits for a PostgreSQL connection (or for one to be made).
    pub connect_timeout_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            durability: Durability::Full,
            read_connections: 4,
            pool_size: 16,
            statement_timeout_ms: 5_000,
            connect_timeout_ms: 2_000,
        }
    }
}

/// `[auth]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Accepted `aud` values of assertions, besides `server.public_url`.
    pub audiences: Vec<String>,
    /// How long a verified access token, and an issuer key, is trusted without a new check.
    /// A removed issuer key stops working within twice this.
    pub cache_ttl_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            audiences: vec!["https://api.d1.thalescloud.io".into()],
            cache_ttl_secs: 30,
        }
    }
}

/// `[issuer_backend]`: how the registry calls issuer backends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IssuerBackendConfig {
    pub connect_timeout_ms: u64,
    /// One attempt, whole call.
    pub timeout_ms: u64,
    /// Retries after the first attempt, on 5xx, timeouts and connection failures.
    pub retries: u32,
    /// The first retry's pause ceiling; doubled for each next one, full jitter.
    pub backoff_ms: u64,
    /// Consecutive failed calls that open an issuer's circuit.
    pub breaker_failures: u32,
    /// How long an open circuit refuses calls before one probe goes through.
    pub breaker_open_secs: u64,
}

impl Default for IssuerBackendConfig {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 2_000,
            timeout_ms: 5_000,
            retries: 2,
            backoff_ms: 200,
            breaker_failures: 5,
            breaker_open_secs: 30,
        }
    }
}

impl IssuerBackendConfig {
    /// The outbound client's options.
    #[must_use]
    pub fn client_options(&self) -> d1_issuer_client::ClientOptions {
        use std::time::Duration;
        d1_issuer_client::ClientOptions {
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            timeout: Duration::from_millis(self.timeout_ms),
            retries: self.retries,
            backoff: Duration::from_millis(self.backoff_ms),
            breaker_failures: self.breaker_failures,
            breaker_open_for: Duration::from_secs(self.breaker_open_secs),
        }
    }
}

/// `[jobs]`: Click to Pay enrolments and notifications, run in the background.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Jobs run at once by one node.
    pub concurrency: u32,
    /// How often a node looks for work it was not woken for (other nodes' jobs, retries).
    pub poll_interval_ms: u64,
    /// How long a claimed job or notification is reserved; a node that dies holding one
    /// delays it by this much (on SQLite a restart releases it at once).
    pub lease_secs: u64,
    /// A notification not delivered within this is marked DEAD.
    pub notification_max_age_hours: u64,
    /// The longest pause between two attempts of one notification.
    pub notification_max_backoff_secs: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            concurrency: 32,
            poll_interval_ms: 500,
            lease_secs: 60,
            notification_max_age_hours: 24,
            notification_max_backoff_secs: 300,
        }
    }
}

/// `[cards]`: the card life cycle.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CardsConfig {
    /// Created cards expiring within this many days are renewed automatically; 0 is off.
    pub auto_renew_days: u32,
    /// How often one node looks for created cards to renew.
    pub auto_renew_interval_secs: u64,
}

impl Default for CardsConfig {
    fn default() -> Self {
        Self {
            auto_renew_days: 30,
            auto_renew_interval_secs: 3600,
        }
    }
}

/// `[limits]`: rate limits, per node (contract section 10). A rate of 0 is off.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// API requests per second per issuer (a token bucket); 0 is off, the default.
    pub issuer_requests_per_second: u32,
    /// The bucket's size: requests an issuer may make at once; 0 is the per-second rate.
    pub issuer_burst: u32,
    /// Token requests per minute from one client address.
    pub token_requests_per_minute_per_address: u32,
    /// Token requests per minute with the keys of one issuer (or aggregator).
    pub token_requests_per_minute_per_issuer: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            issuer_requests_per_second: 0,
            issuer_burst: 0,
            token_requests_per_minute_per_address: 600,
            token_requests_per_minute_per_issuer: 120,
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter, such as `info` or `d1_registry=debug`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            level: "info".into(),
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    pub issuer_backend: IssuerBackendConfig,
    pub jobs: JobsConfig,
    pub cards: CardsConfig,
    pub limits: LimitsConfig,
    pub log: LogConfig,
    /// `[portal]`: the operator portal.
    pub portal: crate::portal::PortalConfig,
    /// Resolved from the global flags, never read from the file.
    #[serde(skip)]
    pub paths: Paths,
}

/// Where data lives, from the global flags.
#[derive(Debug, Clone, Default)]
pub struct Paths {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub kek_file: PathBuf,
}

/// The global flags that feed the configuration.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub config_file: Option<PathBuf>,
    pub kek_file: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
}

impl Config {
    /// Loads the layers in order.
    ///
    /// # Errors
    /// An unreadable or invalid file or variable, named.
    pub fn load(overrides: &Overrides) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Self::default()));
        if let Some(file) = &overrides.config_file {
            anyhow::ensure!(
                file.exists(),
                "config file {} does not exist",
                file.display()
            );
            figment = figment.merge(Toml::file(file));
        }
        figment = figment.merge(Env::prefixed("D1__").split("__"));
        let mut config: Self = figment.extract().context("reading the configuration")?;
        if let Some(format) = overrides.log_format {
            config.log.format = format;
        }
        config.paths = Paths::resolve(overrides);
        Ok(config)
    }

    /// Every accepted assertion audience.
    #[must_use]
    pub fn audiences(&self) -> Vec<String> {
        let mut all = vec![self.server.public_url.clone()];
        all.extend(self.auth.audiences.iter().cloned());
        all
    }
}

impl Paths {
    fn resolve(o: &Overrides) -> Self {
        let db = o
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", o.data_dir.join("registry.db").display()));
        Self {
            data_dir: o.data_dir.clone(),
            database_url: db,
            kek_file: o
                .kek_file
                .clone()
                .unwrap_or_else(|| o.data_dir.join("kek.key")),
        }
    }

    /// Creates the data directory, readable by its owner only.
    ///
    /// # Errors
    /// If it cannot be created.
    pub fn ensure_data_dir(&self) -> anyhow::Result<()> {
        create_private_dir(&self.data_dir)
    }
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(())
}

/// The commented example printed by `d1-registry config example`.
pub const EXAMPLE: &str = include_str!("config/example.toml");

#[cfg(test)]
mod tests;
