//! The command line's grammar: every subcommand and flag of `d1-registry`, as clap reads
//! them, and the conversions of their values into the store's and the domain's types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use d1_domain::LookalikePolicy;
use d1_store::PiStorage;

use crate::config::LogFormat;

/// d1-registry: end-user registration, wire-compatible with the Thales D1 banking API.
#[derive(Debug, Parser)]
#[command(name = "d1-registry", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Args)]
pub(crate) struct Global {
    /// Where the SQLite database and the KEK file live.
    #[arg(long, global = true, env = "D1_DATA_DIR", default_value = "./data")]
    pub(crate) data_dir: PathBuf,
    /// Database URL; default: the SQLite file in the data directory.
    #[arg(long, global = true, env = "D1_DATABASE_URL")]
    pub(crate) database_url: Option<String>,
    /// A TOML configuration file (see `config example`).
    #[arg(long, global = true, env = "D1_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// The key-encryption key file; default: kek.key in the data directory.
    #[arg(long, global = true, env = "D1_KEK_FILE")]
    pub(crate) kek_file: Option<PathBuf>,
    /// Log output format.
    #[arg(long, global = true, env = "D1_LOG_FORMAT", value_enum)]
    pub(crate) log_format: Option<LogFormat>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the HTTP service.
    Serve {
        /// Address to listen on (default: server.listen, 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<String>,
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Onboard and manage issuers.
    #[command(subcommand)]
    Issuer(IssuerCommand),
    /// Onboard aggregators: parties that sign assertions for several issuers.
    #[command(subcommand)]
    Aggregator(AggregatorCommand),
    /// The operators of the portal.
    #[command(subcommand)]
    Operator(super::operator::OperatorCommand),
    /// The operator audit trail.
    #[command(subcommand)]
    Audit(super::operator::AuditCommand),
    /// Sign an assertion with an issuer's private key, exchange it, print the access token.
    Token {
        #[arg(long)]
        issuer_id: String,
        /// The issuer's private key, PEM (SEC1 or PKCS#8).
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        kid: String,
        /// The service's base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        #[command(flatten)]
        tls: super::token::TokenTls,
    },
    /// Card products of an issuer.
    #[command(subcommand)]
    Product(ProductCommand),
    /// Card data, for trying the card calls out.
    #[command(subcommand)]
    Card(CardCommand),
    /// The service's own keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Simulate an issuer backend: its OAuth token, Get Consumer Information from a JSON
    /// file, and the notifications it receives (printed one line each, without PI).
    IssuerSim {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9090")]
        listen: String,
        /// {"issuerId", "clientId", "clientSecret", "consumers": {"<consumerId>": {…}}}
        #[arg(long)]
        consumers: PathBuf,
        /// Delay added to every answer.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// Share of calls answered 500, 0.0 to 1.0.
        #[arg(long, default_value_t = 0.0, value_parser = share)]
        fail_rate: f64,
    },
}

/// `serve`'s TLS flags (contract section 4); without them the service speaks plain HTTP.
#[derive(Debug, Args)]
pub(crate) struct TlsArgs {
    /// Terminate TLS 1.2/1.3 with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Require a client certificate chaining to this CA (PEM) on every connection.
    #[arg(long, requires = "tls_cert")]
    pub(crate) client_ca: Option<PathBuf>,
}

impl TlsArgs {
    /// The files, when TLS is asked for.
    pub(crate) fn files(self) -> Option<crate::listen::tls::TlsFiles> {
        Some(crate::listen::tls::TlsFiles {
            cert: self.tls_cert?,
            key: self.tls_key?,
            client_ca: self.client_ca,
        })
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Storage {
    Allowed,
    Forbidden,
}

impl From<Storage> for PiStorage {
    fn from(s: Storage) -> Self {
        match s {
            Storage::Allowed => Self::Allowed,
            Storage::Forbidden => Self::Forbidden,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum OnOff {
    On,
    Off,
}

/// `--card-notifications`: which card operations the issuer backend is notified of.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Notifications {
    /// Every card operation.
    All,
    /// Only Click to Pay enrolments.
    ClickToPay,
    /// None.
    Off,
}

impl From<Notifications> for d1_store::CardNotifications {
    fn from(n: Notifications) -> Self {
        match n {
            Notifications::All => Self::All,
            Notifications::ClickToPay => Self::ClickToPay,
            Notifications::Off => Self::Off,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Policy {
    Warn,
    Refuse,
}

impl From<Policy> for LookalikePolicy {
    fn from(p: Policy) -> Self {
        match p {
            Policy::Warn => Self::Warn,
            Policy::Refuse => Self::Refuse,
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum IssuerCommand {
    /// Onboard an issuer with its first assertion key. Fails if the issuer exists.
    Add {
        #[arg(long)]
        issuer_id: String,
        /// The issuer's P-256 public key, PEM or JWK.
        #[arg(long)]
        assertion_key: PathBuf,
        #[arg(long)]
        kid: String,
        #[arg(long, value_enum, default_value = "allowed")]
        pi_storage: Storage,
        /// Enable Click to Pay (its PI fields become mandatory).
        #[arg(long)]
        click_to_pay: bool,
        #[arg(long, value_enum, default_value = "warn")]
        lookalike_policy: Policy,
        #[command(flatten)]
        client_certs: super::certs::CertArgs,
        /// Refuse an assertion without `jti` (`invalid_grant`), so none can be replayed.
        #[arg(long, value_enum, default_value = "off")]
        require_jti: OnOff,
    },
    /// Change an issuer's settings or keys.
    Set {
        #[arg(long)]
        issuer_id: String,
        #[arg(long, value_enum)]
        pi_storage: Option<Storage>,
        #[arg(long, value_enum)]
        click_to_pay: Option<OnOff>,
        /// Add an assertion key (PEM or JWK); needs --kid.
        #[arg(long, requires = "kid")]
        add_key: Option<PathBuf>,
        #[arg(long, requires = "add_key")]
        kid: Option<String>,
        /// Remove the assertion key with this kid.
        #[arg(long)]
        remove_key: Option<String>,
        /// Replace the client certificate bindings with the ones given.
        #[command(flatten)]
        client_certs: super::certs::CertArgs,
        /// Remove every client certificate binding: any valid certificate is accepted.
        #[arg(long, conflicts_with_all = ["subjects", "sans"])]
        unbind_client_certs: bool,
        #[arg(long, value_enum)]
        lookalike_policy: Option<Policy>,
        /// Refuse an assertion without `jti` (`invalid_grant`).
        #[arg(long, value_enum)]
        require_jti: Option<OnOff>,
    },
    /// Set where the issuer's backend is, for Get Consumer Information and notifications.
    SetBackend {
        #[arg(long)]
        issuer_id: String,
        /// The backend's base URL (http:// or https://).
        #[arg(long)]
        url: String,
        /// OAuth client id for the backend's /oauth2/token; needs --client-secret-file.
        #[arg(long, requires = "client_secret_file")]
        client_id: Option<String>,
        /// A file holding the client secret (kept encrypted in the database).
        #[arg(long, requires = "client_id")]
        client_secret_file: Option<PathBuf>,
        /// Send ?cardId= on Get Consumer Information.
        #[arg(long)]
        send_card_id: bool,
        /// Seconds fetched PI may be cached in memory (0: off).
        #[arg(long, default_value_t = 0)]
        pi_cache_ttl: u32,
        /// Which card operations are notified to the backend.
        #[arg(long, value_enum, default_value_t = Notifications::All)]
        card_notifications: Notifications,
        /// The most card operations one notification call carries (1 to 100).
        #[arg(long, default_value_t = d1_store::DEFAULT_NOTIFICATION_BATCH_SIZE,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(d1_store::MAX_NOTIFICATION_BATCH_SIZE)))]
        notification_batch_size: u32,
    },
    /// List the issuers.
    List,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AggregatorCommand {
    /// Onboard an aggregator with its assertion key and the issuers it signs for. Its id
    /// follows the issuerId rule and cannot be an issuer's.
    Add {
        #[arg(long)]
        aggregator_id: String,
        /// The aggregator's P-256 public key, PEM or JWK.
        #[arg(long)]
        assertion_key: PathBuf,
        #[arg(long)]
        kid: String,
        /// The issuers its tokens act for, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        issuers: Vec<String>,
        /// Refuse an assertion without `jti` (`invalid_grant`).
        #[arg(long, value_enum, default_value = "off")]
        require_jti: OnOff,
    },
    /// List the aggregators.
    List,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Print the public JWK set issuers encrypt card data to.
    Jwks,
    /// Add a new JWE key; issuers encrypt to it, the previous ones keep decrypting until retired.
    Rotate,
    /// Stop accepting a JWE key. The last active key cannot be retired.
    Retire {
        /// The kid to retire.
        kid: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
#[value(rename_all = "UPPER")]
pub(crate) enum SchemeArg {
    Visa,
    Mastercard,
    Amex,
    Discover,
}

impl From<SchemeArg> for d1_domain::card::Scheme {
    fn from(s: SchemeArg) -> Self {
        match s {
            SchemeArg::Visa => Self::Visa,
            SchemeArg::Mastercard => Self::Mastercard,
            SchemeArg::Amex => Self::Amex,
            SchemeArg::Discover => Self::Discover,
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProductCommand {
    /// Configure a card product: its scheme, BIN (6 to 8 digits) and card validity.
    Add {
        #[arg(long)]
        issuer_id: String,
        #[arg(long)]
        card_product_id: String,
        #[arg(long, value_enum)]
        scheme: SchemeArg,
        #[arg(long)]
        bin: String,
        #[arg(long, default_value_t = 36)]
        validity_months: u32,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum CardCommand {
    /// Print the compact JWE of {"pan", "exp"} for the first key of the service's JWK set,
    /// as Register card's `encryptedData` takes it. Use test card numbers only: a command
    /// line can be seen by other users of the machine.
    Encrypt {
        /// 12 to 19 digits passing the Luhn check.
        #[arg(long)]
        pan: String,
        /// The expiry month, MMYY, not already past.
        #[arg(long)]
        exp: String,
        /// The service's base URL; its keys are read from URL/.well-known/jwks.json.
        #[arg(long, default_value = "http://127.0.0.1:8080", conflicts_with = "jwks")]
        url: String,
        /// A JWK set file (as `keys jwks` prints it), read instead of asking the service.
        #[arg(long)]
        jwks: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print a commented example configuration.
    Example,
}

/// A share from 0.0 to 1.0 (`--fail-rate`); anything else is bad usage.
fn share(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err("must be a number from 0.0 to 1.0".into()),
    }
}
