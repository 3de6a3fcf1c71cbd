//! `d1-bench`: drives a release build of d1-registry over HTTP on loopback and, in the same
//! run, measures the raw SQLite baseline the service is compared to (docs/benchmarks.md).
//!
//! Usage: `d1-bench registrations [--binary PATH] [--connections 32] [--warmup 3]
//! [--duration 10] [--runs 3]`. Run it with `bench/registrations.sh`, which builds both.

mod baseline;
mod load;
mod report;
mod service;

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
            _ => bail!("unknown flag {flag}"),
        }
    }
    Ok((scenario, settings))
}

fn main() -> anyhow::Result<()> {
    let (scenario, settings) = parse_args()?;
    if scenario != "registrations" {
        bail!("unknown scenario {scenario} (known: registrations)");
    }
    report::machine();
    let service = service::Service::start(&settings.binary)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let token = runtime.block_on(service.token())?;
    println!("\nservice: {} connections, {}s warm-up, {} runs of {}s; the load generator shares the machine's cores (one thread)",
        settings.connections, settings.warmup.as_secs(), settings.runs, settings.duration.as_secs());
    runtime.block_on(load::run(
        &service,
        &token,
        settings.connections,
        settings.warmup,
    ))?;
    let rows_before = service.consumer_rows()?;
    let mut runs = Vec::new();
    for i in 0..settings.runs {
        let stats = runtime.block_on(load::run(
            &service,
            &token,
            settings.connections,
            settings.duration,
        ))?;
        report::run_line("service", i + 1, &stats);
        runs.push(stats);
    }
    let service_summary = report::summarise(&runs);
    drop(service);

    println!("\nbaseline: raw single-row upsert on SQLite (WAL, synchronous=NORMAL, one transaction per row, 1 KB blob), table pre-filled to {rows_before} rows");
    let baseline_runs = baseline::run(rows_before, settings.duration, settings.runs)?;
    for (i, stats) in baseline_runs.iter().enumerate() {
        report::run_line("baseline", i + 1, stats);
    }
    let baseline_summary = report::summarise(&baseline_runs);
    report::verdict(&service_summary, &baseline_summary);
    Ok(())
}
