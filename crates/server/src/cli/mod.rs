//! The command line of the one binary, `d1-registry`: [`main`] parses it ([`args`]) and
//! hands each subcommand to the file that owns it.
//!
//! Exit codes: 0 on success, 1 on a refused request (one line on stderr), 2 on bad usage.

mod aggregator;
mod args;
mod backend;
mod card;
mod certs;
mod issuer;
mod keys;
mod operator;
mod product;
mod refuse;
mod token;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use crate::bootstrap;
use crate::config::{self, Config, Overrides};
use crate::telemetry;
pub use args::Cli;
use args::{CardCommand, Command, ConfigCommand};
use refuse::{refuse, Refused};

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
    if let Command::Card(CardCommand::Encrypt {
        pan,
        exp,
        url,
        jwks,
    }) = &cli.command
    {
        return exit(card::run(pan, exp, url, jwks.as_deref()));
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
    exit(result)
}

/// The exit code of a command's result: a failure is said on stderr, a refusal in one line.
fn exit(result: anyhow::Result<()>) -> ExitCode {
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

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve { listen, tls } => {
            let opened = bootstrap::open(&config).await?;
            let listen = listen.unwrap_or_else(|| config.server.listen.clone());
            crate::serve::run(config, opened, &listen, tls.files()).await
        }
        Command::Issuer(cmd) => issuer::run(cmd, &config).await,
        Command::Aggregator(cmd) => aggregator::run(cmd, &config).await,
        Command::Operator(cmd) => operator::run(cmd, &config).await,
        Command::Audit(cmd) => operator::run_audit(cmd, &config).await,
        Command::Token {
            issuer_id,
            key,
            kid,
            url,
            tls,
        } => token::run(&issuer_id, &key, &kid, &url, &tls).await,
        Command::Keys(cmd) => keys::run(cmd, &config).await,
        Command::Product(cmd) => product::run(cmd, &config).await,
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
        Command::Card(_) => Err(refuse("card encrypt runs on its own")),
    }
}
