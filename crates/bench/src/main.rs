//! `d1-bench`: drives a release build of d1-registry over HTTP on loopback and, in the same
//! run, measures the raw database baseline the service is compared to (docs/benchmarks.md).
//!
//! Usage: `d1-bench registrations|cards|postgres|enrolments [--binary PATH] [--connections 32]
//! [--warmup 3] [--duration 10] [--runs 3] [--cards 150000] [--enrolments 2000]
//! [--database-url URL]`. Run it with `bench/registrations.sh`, `bench/cards.sh`,
//! `bench/postgres.sh` or `bench/enrolments.sh`, which build both.

mod baseline;
mod cards;
mod enrolments;
mod load;
mod postgres;
mod report;
mod service;
mod wire;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

/// Benchmark settings.
pub struct Settings {
    pub binary: PathBuf,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub runs: usize,
    /// Register card requests prepared for each kind of card run of the `cards` scenario.
    pub cards: usize,
    /// The PostgreSQL database of the `postgres` scenario (it works in scratch schemas).
    pub database_url: Option<String>,
    /// Enrolments per batch in the `enrolments` scenario.
    pub enrolments: usize,
}

fn parse_args() -> anyhow::Result<(String, Settings)> {
    let mut args = std::env::args().skip(1);
    let scenario = args.next().unwrap_or_else(|| "registrations".into());
    let mut settings = Settings {
        binary: PathBuf::from("target/release/d1-registry"),
        connections: 32,
        warmup: Duration::from_secs(3),
        duration: Duration::from_secs(10),
        runs: 3,
        cards: 150_000,
        database_url: std::env::var("D1_BENCH_DATABASE_URL").ok(),
        enrolments: 2000,
    };
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--binary" => settings.binary = PathBuf::from(value),
            "--connections" => settings.connections = value.parse()?,
            "--warmup" => settings.warmup = Duration::from_secs(value.parse()?),
            "--duration" => settings.duration = Duration::from_secs(value.parse()?),
            "--runs" => settings.runs = value.parse()?,
            "--cards" => settings.cards = value.parse()?,
            "--database-url" => settings.database_url = Some(value),
            "--enrolments" => settings.enrolments = value.parse()?,
            _ => bail!("unknown flag {flag}"),
        }
    }
    Ok((scenario, settings))
}

fn main() -> anyhow::Result<()> {
    let (scenario, settings) = parse_args()?;
    if scenario == "postgres" {
        report::machine();
        return postgres::run(&settings);
    }
    if scenario == "enrolments" {
        report::machine();
        // Enrolments run on SQLite unless --database-url is given explicitly.
        let settings = Settings {
            database_url: None,
            ..settings
        };
        return enrolments::run(&settings);
    }
    if scenario != "registrations" && scenario != "cards" {
        bail!("unknown scenario {scenario} (known: registrations, cards, postgres, enrolments)");
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
    let cards = (scenario == "cards")
        .then(|| runtime.block_on(cards::prepare(&service, settings.cards)))
        .transpose()?;
    let kinds = match cards {
        Some(cards) => {
            let consumers = load::Work::Prepared(std::sync::Arc::new(cards.consumers));
            let stats = run(&consumers, Duration::from_secs(24 * 3600))?;
            if stats.non_2xx > 0 {
                bail!(
                    "{} of the cards' consumers were not registered",
                    stats.non_2xx
                );
            }
            println!(
                "registered the {} consumers of the cards for registered consumers in {:.1}s",
                stats.completed,
                stats.elapsed.as_secs_f64()
            );
            cards.kinds
        }
        None => Vec::new(),
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
    let baseline = (scenario == "registrations")
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
        return Ok(());
    }
    let other_summary = report::summarise(&other_runs);
    drop(service);
    report::verdict(&service_summary, &other_summary, &runs, &other_runs);
    Ok(())
}
