//! `d1-bench`: drives a release build of d1-registry over HTTP on loopback and, in the same
//! run, measures the raw database baseline the service is compared to (docs/benchmarks.md).
//!
//! Usage: `d1-bench registrations|cards|postgres|enrolments|hostile|limits|crash|growth|portal [--binary PATH] [--connections 32]
//! [--warmup 3] [--duration 10] [--runs 3] [--cards 300000] [--enrolments 2000]
//! [--database-url URL] [--rounds 10 --seconds 4 --clients 16] [--sizes 100000,1000000]` (`d1-bench --help` says more). Run it with `bench/registrations.sh`, `bench/cards.sh`,
//! `bench/postgres.sh` or `bench/enrolments.sh`, which build both.

mod baseline;
mod cards;
mod crash;
mod enrolments;
mod growth;
mod hostile;
mod limits;
mod load;
mod portal;
mod postgres;
mod report;
mod seal;
mod service;
mod settings;
mod sim;
mod wire;

use std::time::Duration;

use anyhow::bail;
use clap::{Parser, ValueEnum};

use settings::Settings;

/// d1-bench: load benchmark of d1-registry against a raw database baseline, measured in one run.
#[derive(Parser)]
#[command(name = "d1-bench", version, about)]
struct Cli {
    /// What to measure.
    #[arg(value_enum, default_value_t = Scenario::Registrations)]
    scenario: Scenario,
    #[command(flatten)]
    settings: Settings,
}

/// The scenarios, each described in docs/benchmarks.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Register consumer with PI, against the raw SQLite upsert.
    Registrations,
    /// Register card, for registered consumers and with the consumer registered inline.
    Cards,
    /// Registrations on PostgreSQL, one node against the raw pooled upsert, then two nodes.
    Postgres,
    /// Click to Pay enrolments end to end, against an issuer simulator.
    Enrolments,
    /// Registrations with thousands of idle and slowloris connections open, against without.
    Hostile,
    /// Registrations at 10× the configured per-issuer rate limit: the share answered 429.
    Limits,
    /// Crash safety: writers, a SIGKILL each round, everything acknowledged read back.
    Crash,
    /// A fresh store filled to 1,000,000 consumers, measured at each of `--sizes`.
    Growth,
    /// The operator portal's search by PAN and consumer page, at two card counts (`--sizes`).
    Portal,
}

fn main() -> anyhow::Result<()> {
    let Cli { scenario, settings } = Cli::parse();
    if scenario == Scenario::Postgres {
        report::machine();
        return postgres::run(&settings);
    }
    if scenario == Scenario::Hostile {
        report::machine();
        return hostile::run(&settings);
    }
    if scenario == Scenario::Limits {
        report::machine();
        return limits::run(&settings);
    }
    if scenario == Scenario::Growth {
        return growth::run(&settings);
    }
    if scenario == Scenario::Portal {
        return portal::run(&settings);
    }
    if scenario == Scenario::Crash {
        return crash::run(&settings);
    }
    if scenario == Scenario::Enrolments {
        report::machine();
        // Enrolments run on SQLite unless --database-url is given explicitly.
        let settings = Settings {
            database_url: None,
            ..settings
        };
        return enrolments::run(&settings);
    }
    report::machine();
    let service = service::Service::start(&settings.binary, None)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let token = runtime.block_on(service.token())?;
    println!(
        "\nservice: {} connections, {}s warm-up, {} runs of {}s; the load generator shares the machine's cores (one thread)",
        settings.connections,
        settings.warmup.as_secs(),
        settings.runs,
        settings.duration.as_secs()
    );
    let registrations = load::Work::Registrations;
    let targets = [service.addr.clone()];
    let run = |work: &load::Work, duration| {
        let cpu_before = service.cpu_time();
        let mut stats = runtime.block_on(load::run(
            &targets,
            &token,
            settings.connections,
            duration,
            work,
        ))?;
        stats.service_cpu = service
            .cpu_time()
            .zip(cpu_before)
            .map(|(after, before)| after.saturating_sub(before));
        anyhow::Ok(stats)
    };
    let cards = (scenario == Scenario::Cards)
        .then(|| {
            runtime.block_on(cards::prepare(
                &service,
                settings.cards,
                settings.notification_batch_size,
            ))
        })
        .transpose()?;
    let (kinds, sim) = match cards {
        Some(cards) => {
            for (what, requests) in cards.before {
                let stats = run(
                    &load::Work::Prepared(std::sync::Arc::new(requests)),
                    Duration::from_secs(24 * 3600),
                )?;
                if stats.non_2xx > 0 {
                    bail!("{} of the {what} were not registered", stats.non_2xx);
                }
                println!(
                    "registered the {} {what} in {:.1}s",
                    stats.completed,
                    stats.elapsed.as_secs_f64()
                );
            }
            println!(
                "notifications: every card operation, to issuer-sim, in batches of up to {}",
                settings.notification_batch_size
            );
            (cards.kinds, Some(cards.sim))
        }
        None => (Vec::new(), None),
    };
    let card_work =
        |kind: &cards::Kind| load::Work::Prepared(std::sync::Arc::clone(&kind.requests));
    run(&registrations, settings.warmup)?;
    for kind in &kinds {
        run(&card_work(kind), settings.warmup)?;
    }
    let rows_before = runtime.block_on(service.consumer_rows())?;
    // The baseline's runs, and the cards', alternate with the registrations', so a slow spell
    // of a shared machine falls on both sides of a ratio rather than on one.
    let baseline = (scenario == Scenario::Registrations)
        .then(|| baseline::Baseline::prepare(rows_before))
        .transpose()?;
    if baseline.is_some() {
        println!(
            "baseline: raw single-row upsert on SQLite (WAL, synchronous=NORMAL, one transaction per row, 1 KB blob), table pre-filled to {rows_before} rows, its runs alternating with the service's"
        );
    }
    let mut runs = Vec::new();
    let mut other_runs = Vec::new();
    let mut card_runs = vec![Vec::new(); kinds.len()];
    for i in 0..settings.runs {
        let stats = run(&registrations, settings.duration)?;
        report::run_line("registrations", i + 1, &stats);
        runs.push(stats);
        if let Some(baseline) = &baseline {
            let stats = baseline.run(settings.duration)?;
            report::run_line("baseline", i + 1, &stats);
            other_runs.push(stats);
        }
        for (kind, kind_runs) in kinds.iter().zip(&mut card_runs) {
            let stats = run(&card_work(kind), settings.duration)?;
            report::run_line(kind.name, i + 1, &stats);
            kind_runs.push(stats);
        }
    }
    let service_summary = report::summarise(&runs);
    if !kinds.is_empty() {
        for (kind, kind_runs) in kinds.iter().zip(&card_runs) {
            if kind.requests.left() == 0 {
                println!(
                    "  ({}: the prepared JWEs ran out; pass --cards N for more)",
                    kind.name
                );
            }
            report::cards_verdict(
                kind.name,
                kind.ratio,
                &report::summarise(kind_runs),
                &service_summary,
                kind_runs,
                &runs,
            );
        }
        if let Some(sim) = &sim {
            runtime.block_on(report::notifications(sim))?;
        }
        return Ok(());
    }
    let other_summary = report::summarise(&other_runs);
    drop(service);
    report::verdict(&service_summary, &other_summary, &runs, &other_runs);
    Ok(())
}
