//! The growth scenario (docs/benchmarks.md, "Growth"): a fresh store filled over HTTP with
//! consumers with PI under random consumerIds, durability full, and measured on the way at
//! each of `--sizes`: registrations at their peak (the fill's last `--runs` one-second windows
//! before the size, so that measuring the peak does not itself grow the table far past it),
//! then paced at half the first stage's peak in turns with the raw upsert at the same rate on
//! a table of the same size, then Get consumer at its peak and paced at half the first
//! stage's read peak; the service's RSS and its data's size. After the last stage, the card
//! runs in turns with registrations. Runs on SQLite, or on PostgreSQL with `--database-url`.

mod raw;
mod stage;
mod timings;
mod verdict;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use d1_scratch as scratch;

use crate::load::{self, Prepared, RunStats, Work};
use crate::service::{Service, ISSUER};
use crate::settings::Settings;
use crate::{cards, report};
use raw::Raw;
use stage::{alternating, Figures, Stage};

/// Consumers registered under known ids first, the ones Get consumer reads at random.
const READ_IDS: usize = 20_000;
/// The length of each closed-loop window that fills the store between stages.
const FILL_RUN: Duration = Duration::from_secs(1);

/// Runs the scenario and prints its figures and verdicts.
///
/// # Errors
/// If the service or the database fails, or a stage sees a non-2xx answer.
pub fn run(settings: &Settings) -> anyhow::Result<()> {
    if settings.sizes.is_empty() || settings.sizes.windows(2).any(|w| w[0] >= w[1]) {
        bail!("--sizes must be one or more table sizes, each larger than the one before");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(growth(settings))
}

/// The load generator's view of the service under test.
struct Target<'a> {
    service: &'a Service,
    addr: [String; 1],
    token: String,
    connections: usize,
}

impl Target<'_> {
    async fn closed(&self, work: &Work, duration: Duration) -> anyhow::Result<RunStats> {
        load::run(&self.addr, &self.token, self.connections, duration, work).await
    }

    async fn paced(&self, work: &Work, duration: Duration, rate: f64) -> anyhow::Result<RunStats> {
        load::run_at(
            &self.addr,
            &self.token,
            self.connections,
            duration,
            work,
            rate,
        )
        .await
    }
}

async fn growth(settings: &Settings) -> anyhow::Result<()> {
    report::machine();
    let service_url = match &settings.database_url {
        Some(url) => {
            scratch::drop_all(url, "d1b_").await?;
            Some(scratch::create(url, &crate::postgres::schema("service")).await?)
        }
        None => None,
    };
    let service = Service::start(&settings.binary, service_url.as_deref())?;
    let target = Target {
        service: &service,
        addr: [service.addr.clone()],
        token: service.token().await?,
        connections: settings.connections,
    };
    let raw = Raw::prepare(settings.database_url.as_deref()).await?;
    println!(
        "\ngrowth on {}, durability full: {} connections, {}s warm-up, {} runs of {}s per load and stage; the load generator shares the machine's cores (one thread)\nbaseline: {}, grown to the service's table size before each stage, its paced runs alternating with the service's",
        if service_url.is_some() { "PostgreSQL" } else { "SQLite" },
        settings.connections,
        settings.warmup.as_secs(),
        settings.runs,
        settings.duration.as_secs(),
        raw.describe(),
    );
    let reads = register_read_ids(&target).await?;
    let registrations = Work::Registrations;
    let mut stages: Vec<Stage> = Vec::new();
    let (mut rate, mut read_rate) = (0.0, 0.0);
    for &size in &settings.sizes {
        let peak = fill(&target, size, settings.runs).await?;
        let rows = service.consumer_rows().await?;
        raw.grow_to(rows).await?;
        let mut stage = Stage {
            rows: (rows, 0),
            peak: Figures::of(&peak),
            ..Stage::default()
        };
        if stages.is_empty() {
            rate = stage.peak.rate / 2.0;
        }
        target.paced(&registrations, settings.warmup, rate).await?;
        let mut paced_timings = Vec::new();
        let (paced, raw_paced) = alternating(
            settings.runs,
            settings.duration,
            ("registrations paced", async |d| {
                let before = timings::Timings::read(&service.addr).await?;
                let stats = target.paced(&registrations, d, rate).await?;
                paced_timings.push((before, timings::Timings::read(&service.addr).await?));
                Ok(stats)
            }),
            ("raw upsert paced", async |d| raw.run_at(d, rate).await),
        )
        .await?;
        (stage.paced, stage.raw_paced) = (Figures::of(&paced), Figures::of(&raw_paced));
        for (i, (before, after)) in paced_timings.iter().enumerate() {
            after.print_since(before, &format!("paced registrations run {}", i + 1));
        }
        target.closed(&reads, settings.warmup).await?;
        stage.reads_peak = Figures::of(
            &timed(settings, "get consumer at its peak", async |d| {
                target.closed(&reads, d).await
            })
            .await?,
        );
        if stages.is_empty() {
            read_rate = stage.reads_peak.rate / 2.0;
        }
        target.paced(&reads, settings.warmup, read_rate).await?;
        stage.reads_paced = Figures::of(
            &timed(settings, "get consumer paced", async |d| {
                target.paced(&reads, d, read_rate).await
            })
            .await?,
        );
        stage.rss_bytes = service.rss_bytes().unwrap_or_default();
        stage.data_bytes = service.data_bytes().await?;
        stage.rows.1 = service.consumer_rows().await?;
        stage.print(rate, read_rate);
        for figures in [
            &stage.peak,
            &stage.paced,
            &stage.reads_peak,
            &stage.reads_paced,
        ] {
            if figures.non_2xx > 0 {
                bail!(
                    "{} requests of the stage were not answered 2xx",
                    figures.non_2xx
                );
            }
        }
        stages.push(stage);
    }
    let cards = card_runs(settings, &target).await?;
    verdict::print(&stages, rate, read_rate, &cards, service_url.is_some());
    drop(service);
    if let Some(url) = &settings.database_url {
        scratch::drop_all(url, "d1b_").await?;
    }
    Ok(())
}

/// The timed runs of one load, each printed as it ends.
async fn timed(
    settings: &Settings,
    what: &str,
    mut run: impl AsyncFnMut(Duration) -> anyhow::Result<RunStats>,
) -> anyhow::Result<Vec<RunStats>> {
    let mut runs = Vec::new();
    for i in 0..settings.runs {
        let stats = run(settings.duration).await?;
        report::run_line(what, i + 1, &stats);
        runs.push(stats);
    }
    Ok(runs)
}

/// Registers the consumers Get consumer reads, and returns that load.
async fn register_read_ids(target: &Target<'_>) -> anyhow::Result<Work> {
    let ids: Vec<String> = (0..READ_IDS)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let requests = ids
        .iter()
        .enumerate()
        .map(|(n, id)| {
            let mut body = Vec::new();
            load::write_pi_body(&mut body, n as u64);
            (
                format!("/banking/v2/issuers/{ISSUER}/consumers/{id}"),
                String::from_utf8(body).unwrap_or_default(),
            )
        })
        .collect();
    let stats = target
        .closed(
            &Work::Prepared(Arc::new(Prepared::new(requests))),
            Duration::from_secs(3600),
        )
        .await?;
    if stats.non_2xx > 0 {
        bail!(
            "{} of the consumers to read were not registered",
            stats.non_2xx
        );
    }
    Ok(Work::Reads(Arc::new(ids)))
}

/// Registers consumers as fast as they are answered until the store holds `size`, in windows
/// of [`FILL_RUN`], and for at least `windows` of them; returns the last `windows`, the peak
/// just before `size`.
async fn fill(target: &Target<'_>, size: u64, windows: usize) -> anyhow::Result<Vec<RunStats>> {
    let started = Instant::now();
    let mut rows = target.service.consumer_rows().await?;
    let from = rows;
    let mut last = std::collections::VecDeque::new();
    // At least `windows` of them, so a size the store already holds still has its peak.
    while rows < size || last.len() < windows {
        let stats = target.closed(&Work::Registrations, FILL_RUN).await?;
        if stats.non_2xx > 0 {
            bail!(
                "{} registrations of the fill were not answered 2xx",
                stats.non_2xx
            );
        }
        rows += stats.completed;
        last.push_back(stats);
        if last.len() > windows {
            last.pop_front();
        }
    }
    println!(
        "\nfilled from {from} to {rows} consumer rows in {:.0}s; the peak is its last {} windows of {}s",
        started.elapsed().as_secs_f64(),
        last.len(),
        FILL_RUN.as_secs()
    );
    for (i, stats) in last.iter().enumerate() {
        report::run_line("registrations at their peak", i + 1, stats);
    }
    Ok(last.into())
}

/// After the last stage: each kind of card run in turns with registrations, as the `cards`
/// scenario runs them; returns each kind's name with the figures of its runs and of the
/// registrations it alternated with.
async fn card_runs(
    settings: &Settings,
    target: &Target<'_>,
) -> anyhow::Result<Vec<(&'static str, Figures, Figures)>> {
    let prepared = cards::prepare(
        target.service,
        settings.cards,
        settings.notification_batch_size,
    )
    .await?;
    for (what, requests) in prepared.before {
        let stats = target
            .closed(
                &Work::Prepared(Arc::new(requests)),
                Duration::from_secs(24 * 3600),
            )
            .await?;
        if stats.non_2xx > 0 {
            bail!("{} of the {what} were not registered", stats.non_2xx);
        }
    }
    let mut figures = Vec::new();
    for kind in &prepared.kinds {
        let work = Work::Prepared(Arc::clone(&kind.requests));
        target.closed(&work, settings.warmup).await?;
        let (card_runs, registration_runs) = alternating(
            settings.runs,
            settings.duration,
            (kind.name, async |d| target.closed(&work, d).await),
            ("registrations", async |d| {
                target.closed(&Work::Registrations, d).await
            }),
        )
        .await?;
        figures.push((
            kind.name,
            Figures::of(&card_runs),
            Figures::of(&registration_runs),
        ));
    }
    drop(prepared.sim);
    Ok(figures)
}
