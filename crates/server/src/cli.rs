//! The command line of the one binary, `d1-registry`.
//!
//! Exit codes: 0 on success, 1 on a refused request (one line on stderr), 2 on bad usage.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use d1_crypto::ec::{PublicKey, SigningKey};
use d1_domain::{IssuerId, Kid, LookalikePolicy};
use d1_store::{IssuerChange, NewIssuer, PiStorage, StoreError};

use crate::bootstrap;
use crate::config::{self, Config, LogFormat, Overrides};
use crate::routes::token::{JWT_BEARER, TOKEN_PATH};
use crate::telemetry;

/// d1-registry: end-user registration, wire-compatible with the Thales D1 banking API.
#[derive(Debug, Parser)]
#[command(name = "d1-registry", version, about)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Global {
    /// Where the SQLite database and the KEK file live.
    #[arg(long, global = true, env = "D1_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// Database URL; default: the SQLite file in the data directory.
    #[arg(long, global = true, env = "D1_DATABASE_URL")]
    database_url: Option<String>,
    /// A TOML configuration file (see `config example`).
    #[arg(long, global = true, env = "D1_CONFIG")]
    config: Option<PathBuf>,
    /// The key-encryption key file; default: kek.key in the data directory.
    #[arg(long, global = true, env = "D1_KEK_FILE")]
    kek_file: Option<PathBuf>,
    /// Log output format.
    #[arg(long, global = true, env = "D1_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service.
    Serve {
        /// Address to listen on (default: server.listen, 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Onboard and manage issuers.
    #[command(subcommand)]
    Issuer(IssuerCommand),
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
    },
    /// Card products of an issuer.
    #[command(subcommand)]
    Product(ProductCommand),
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

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Storage {
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
enum OnOff {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Policy {
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
enum IssuerCommand {
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
        #[arg(long, value_enum)]
        lookalike_policy: Option<Policy>,
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
    },
    /// List the issuers.
    List,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
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
enum SchemeArg {
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
enum ProductCommand {
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
enum ConfigCommand {
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

/// A refusal: printed as one line, exit code 1.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// A refusal of the command (exit code 1) with its one-line reason.
pub(crate) fn refuse(message: impl Into<String>) -> anyhow::Error {
    Refused(message.into()).into()
}

/// Parses the command line and runs it.
#[must_use]
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Config(ConfigCommand::Example) = cli.command {
        print!("{}", config::EXAMPLE);
        return ExitCode::SUCCESS;
    }
    if let Command::IssuerSim {
        listen,
        consumers,
        latency_ms,
        fail_rate,
    } = &cli.command
    {
        let behaviour = crate::sim::Behaviour {
            latency: std::time::Duration::from_millis(*latency_ms),
            fail_rate: *fail_rate,
        };
        let ran = tokio::runtime::Runtime::new()
            .context("starting the runtime")
            .and_then(|rt| rt.block_on(crate::sim::run(listen, consumers, behaviour)));
        return match ran {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("d1-registry: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    let overrides = Overrides {
        data_dir: cli.global.data_dir.clone(),
        database_url: cli.global.database_url.clone(),
        config_file: cli.global.config.clone(),
        kek_file: cli.global.kek_file.clone(),
        log_format: cli.global.log_format,
    };
    let result = Config::load(&overrides).and_then(|config| {
        let level = if matches!(cli.command, Command::Serve { .. }) {
            config.log.level.clone()
        } else {
            "warn".into()
        };
        let _flush_on_exit = telemetry::init(config.log.format, &level);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the runtime")?;
        runtime.block_on(run(cli.command, config))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if e.downcast_ref::<Refused>().is_some() {
                eprintln!("d1-registry: {e}");
            } else {
                eprintln!("d1-registry: {e:#}");
            }
            ExitCode::from(1)
        }
    }
}

fn read_public_key(path: &PathBuf) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let key = PublicKey::parse(&text).map_err(|e| refuse(format!("{}: {e}", path.display())))?;
    serde_json::to_string(&key.to_jwk(None, None, None)).context("encoding the key")
}

fn parse_issuer(id: &str) -> anyhow::Result<IssuerId> {
    IssuerId::parse(id).map_err(|_| refuse("--issuer-id must be exactly 10 letters or digits"))
}

fn parse_kid(kid: &str) -> anyhow::Result<String> {
    Kid::parse(kid)
        .map(|k| k.as_str().to_owned())
        .map_err(|_| refuse("--kid must be 1 to 128 visible ASCII characters"))
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve { listen } => {
            let opened = bootstrap::open(&config).await?;
            let listen = listen.unwrap_or_else(|| config.server.listen.clone());
            crate::serve::run(config, opened, &listen).await
        }
        Command::Issuer(cmd) => issuer(cmd, &config).await,
        Command::Token {
            issuer_id,
            key,
            kid,
            url,
        } => token(&issuer_id, &key, &kid, &url).await,
        Command::Keys(cmd) => keys(cmd, &config).await,
        Command::Product(ProductCommand::Add {
            issuer_id,
            card_product_id,
            scheme,
            bin,
            validity_months,
        }) => {
            let issuer_id = parse_issuer(&issuer_id)?;
            let card_product_id = d1_domain::card::CardProductId::parse(&card_product_id)
                .map_err(|_| refuse("--card-product-id must be 1 to 48 letters, digits, _ or -"))?;
            if !(6..=8).contains(&bin.len()) || !bin.bytes().all(|b| b.is_ascii_digit()) {
                return Err(refuse("--bin must be 6 to 8 digits"));
            }
            if !(1..=240).contains(&validity_months) {
                return Err(refuse("--validity-months must be 1 to 240"));
            }
            let opened = bootstrap::open(&config).await?;
            if opened.store.issuer(&issuer_id).await?.is_none() {
                return Err(refuse(format!("issuer {issuer_id} is not onboarded")));
            }
            let product = d1_store::ProductRecord {
                issuer_id: issuer_id.clone(),
                card_product_id: card_product_id.clone(),
                scheme: scheme.into(),
                bin,
                validity_months,
            };
            match opened.store.add_product(product).await {
                Ok(()) => {
                    println!(
                        "product {} added for issuer {issuer_id}",
                        card_product_id.as_str()
                    );
                    Ok(())
                }
                Err(StoreError::Conflict(why)) => Err(refuse(format!("product not added: {why}"))),
                Err(e) => Err(e.into()),
            }
        }
        Command::Migrate => {
            bootstrap::open(&config).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::Config(ConfigCommand::Example) => {
            print!("{}", config::EXAMPLE);
            Ok(())
        }
        Command::IssuerSim { .. } => Err(refuse("issuer-sim runs on its own")),
    }
}

async fn keys(cmd: KeysCommand, config: &Config) -> anyhow::Result<()> {
    let opened = bootstrap::open(config).await?;
    match cmd {
        KeysCommand::Jwks => println!("{}", serde_json::to_string_pretty(&opened.keyring.jwks())?),
        KeysCommand::Rotate => println!("{}", opened.keyring.rotate(opened.store.as_ref()).await?),
        KeysCommand::Retire { kid } => {
            let is_enc = opened
                .keyring
                .jwks()
                .keys
                .iter()
                .any(|k| k.kid.as_deref() == Some(kid.as_str()));
            if !is_enc {
                return Err(refuse(format!("{kid} is not an active JWE key")));
            }
            match opened.store.retire_service_key(&kid).await {
                Ok(()) => println!("{kid} retired"),
                Err(StoreError::Conflict(why)) => return Err(refuse(why)),
                Err(StoreError::NotFound) => {
                    return Err(refuse(format!("{kid} is not an active key")))
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

async fn issuer(cmd: IssuerCommand, config: &Config) -> anyhow::Result<()> {
    match cmd {
        IssuerCommand::Add {
            issuer_id,
            assertion_key,
            kid,
            pi_storage,
            click_to_pay,
            lookalike_policy,
        } => {
            let issuer_id = parse_issuer(&issuer_id)?;
            let kid = parse_kid(&kid)?;
            let public_jwk = read_public_key(&assertion_key)?;
            let opened = bootstrap::open(config).await?;
            let new = NewIssuer {
                issuer_id: issuer_id.clone(),
                pi_storage: pi_storage.into(),
                click_to_pay,
                lookalike_policy: lookalike_policy.into(),
                kid: kid.clone(),
                public_jwk,
            };
            match opened.store.add_issuer(new).await {
                Ok(()) => {
                    println!("issuer {issuer_id} added with key {kid}");
                    Ok(())
                }
                Err(StoreError::Conflict(why)) => {
                    Err(refuse(format!("issuer {issuer_id} not added: {why}")))
                }
                Err(e) => Err(e.into()),
            }
        }
        IssuerCommand::Set {
            issuer_id,
            pi_storage,
            click_to_pay,
            add_key,
            kid,
            remove_key,
            lookalike_policy,
        } => {
            let issuer_id = parse_issuer(&issuer_id)?;
            let add_key = match (add_key, kid) {
                (Some(path), Some(kid)) => Some((parse_kid(&kid)?, read_public_key(&path)?)),
                _ => None,
            };
            let change = IssuerChange {
                pi_storage: pi_storage.map(Into::into),
                click_to_pay: click_to_pay.map(|v| matches!(v, OnOff::On)),
                lookalike_policy: lookalike_policy.map(Into::into),
                add_key,
                remove_kid: remove_key,
            };
            let opened = bootstrap::open(config).await?;
            match opened.store.change_issuer(issuer_id.clone(), change).await {
                Ok(()) => {
                    println!("issuer {issuer_id} updated");
                    Ok(())
                }
                Err(StoreError::NotFound) => Err(refuse(format!(
                    "issuer {issuer_id} or its key was not found"
                ))),
                Err(StoreError::Conflict(why)) => {
                    Err(refuse(format!("issuer {issuer_id} not updated: {why}")))
                }
                Err(e) => Err(e.into()),
            }
        }
        IssuerCommand::SetBackend {
            issuer_id,
            url,
            client_id,
            client_secret_file,
            send_card_id,
            pi_cache_ttl,
        } => {
            let issuer_id = parse_issuer(&issuer_id)?;
            let backend = crate::backend_cli::Backend {
                url,
                client_id,
                client_secret_file,
                send_card_id,
                pi_cache_ttl,
            };
            crate::backend_cli::set_backend(config, issuer_id, backend).await
        }
        IssuerCommand::List => {
            let opened = bootstrap::open(config).await?;
            for i in opened.store.issuers().await? {
                let backend = opened
                    .store
                    .issuer_backend(&i.issuer_id)
                    .await?
                    .map_or_else(|| "-".to_owned(), |b| b.url);
                println!(
                    "{} pi_storage={} click_to_pay={} lookalike_policy={} kids={} backend={backend}",
                    i.issuer_id,
                    i.pi_storage.as_str(),
                    if i.click_to_pay { "on" } else { "off" },
                    i.lookalike_policy.as_str(),
                    i.kids.join(",")
                );
            }
            Ok(())
        }
    }
}

async fn token(issuer_id: &str, key_path: &PathBuf, kid: &str, url: &str) -> anyhow::Result<()> {
    let issuer_id = parse_issuer(issuer_id)?;
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(key_path)
            .with_context(|| format!("reading {}", key_path.display()))?,
    );
    let key =
        SigningKey::from_pem(&text).map_err(|e| refuse(format!("{}: {e}", key_path.display())))?;
    let jti = uuid::Uuid::new_v4().to_string();
    let assertion = d1_crypto::jwt::sign_assertion(
        &key,
        kid,
        issuer_id.as_str(),
        None,
        &jti,
        crate::clock::now_secs(),
    )
    .map_err(|e| refuse(e.to_string()))?;
    let endpoint = format!("{}{TOKEN_PATH}", url.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .post(&endpoint)
        .form(&[
            ("grant_type", JWT_BEARER),
            ("assertion", assertion.as_str()),
        ])
        .send()
        .await
        .map_err(|e| refuse(format!("could not reach {endpoint}: {}", e.without_url())))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|_| refuse(format!("{endpoint} answered {status} without JSON")))?;
    match body.get("access_token").and_then(|t| t.as_str()) {
        Some(token) if status.is_success() => {
            println!("{token}");
            Ok(())
        }
        _ => Err(refuse(format!(
            "token refused ({status}): {} {}",
            body.get("error").and_then(|v| v.as_str()).unwrap_or("?"),
            body.get("error_description")
                .and_then(|v| v.as_str())
                .unwrap_or("")
        ))),
    }
}
