//! The PostgreSQL scenario: registrations on one node, its runs alternating with those of the
//! raw pooled single-row upsert on the same database; then the latency at half the one-node
//! peak, its runs alternating with the raw upsert's at the same rate; then two nodes taking
//! turns (the load generator alternates targets, as a round-robin balancer would). Each part
//! works in a scratch schema of its own.

use std::time::{Duration, Instant};

use anyhow::Context;
use d1_scratch as scratch;
use rand::RngCore;

use crate::load::{self, RunStats};
use crate::report;
use crate::service::Service;
use crate::settings::Settings;

/// Connections of the raw baseline: the service's default pool size per node.
const RAW_CLIENTS: usize = 16;

/// Concurrent upserting tasks of the raw baseline, as many as the load's connections (two per
/// connection, which pipelines them).
const RAW_TASKS: usize = 32;

const UPSERT: &str = "INSERT INTO consumers (issuer_id, consumer_id, state, pi_source, wrapped_key, pi, created_at, updated_at)
     VALUES ('BENCH00001', $1, 'ACTIVE', 'STORED', $2, $3, $4, $4)
     ON CONFLICT (issuer_id, consumer_id) DO UPDATE SET pi = excluded.pi, updated_at = excluded.updated_at";

pub fn schema(role: &str) -> String {
    format!("d1b_{role}_{}", uuid::Uuid::new_v4().simple())
}

/// Runs the scenario and prints its verdicts.
///
/// # Errors
/// If no database is given, or the service or database fails.
pub fn run(settings: &Settings) -> anyhow::Result<()> {
    let url = settings.database_url.clone().context(
        "give a PostgreSQL database the benchmark may create schemas in: --database-url URL \
         or D1_BENCH_DATABASE_URL",
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(scratch::drop_all(&url, "d1b_"))?;
    let service_url = runtime.block_on(scratch::create(&url, &schema("service")))?;
    let service = Service::start(&settings.binary, Some(&service_url))?;
    let token = runtime.block_on(service.token())?;
    println!(
        "\nservice on PostgreSQL (synchronous_commit on): {} connections, {}s warm-up, {} runs of {}s; the load generator, the nodes and PostgreSQL share the machine's cores",
        settings.connections,
        settings.warmup.as_secs(),
        settings.runs,
        settings.duration.as_secs()
    );
    let work = load::Work::Registrations;
    let go = |targets: &[String], duration| {
        runtime.block_on(load::run(
            targets,
            &token,
            settings.connections,
            duration,
            &work,
        ))
    };
    let one_node = [service.addr.clone()];
    go(&one_node, settings.warmup)?;

    // The baseline's runs alternate with the node's, on a table of the size the node's has
    // reached, so PostgreSQL's background work (checkpoints, autovacuum, writeback) falls on
    // both sides of the ratio rather than on one.
    let rows = runtime.block_on(service.consumer_rows())?;
    println!(
        "baseline: raw single-row upsert on the same PostgreSQL, {RAW_TASKS} tasks over {RAW_CLIENTS} pooled connections, one transaction per row, synchronous_commit on, 1 KB blob, random UUIDv4 keys, table pre-filled to {rows} rows, its runs alternating with the node's"
    );
    let baseline = runtime.block_on(RawBaseline::prepare(&url, rows))?;
    let (one_runs, raw_runs) = alternating(
        settings,
        ("one node", &mut |duration| go(&one_node, duration)),
        ("baseline", &mut |duration| {
            runtime.block_on(baseline.run(duration, None))
        }),
    )?;
    let (one, raw) = (report::summarise(&one_runs), report::summarise(&raw_runs));

    // Open loop at half the peak, after a warm-up at that rate: the first seconds after the
    // closed-loop runs still carry their backlog of writeback. The raw upserts' runs at the
    // same rate alternate with the node's: their p99 is the tail the machine's disk and
    // PostgreSQL give a single-row commit at that load, whatever runs above them.
    let half = one.median / 2.0;
    let mut paced_run = |duration| {
        runtime.block_on(load::run_at(
            &one_node,
            &token,
            settings.connections,
            duration,
            &load::Work::Registrations,
            half,
        ))
    };
    paced_run(settings.warmup)?;
    let (paced_runs, raw_paced_runs) = alternating(
        settings,
        ("one node at half its peak", &mut paced_run),
        ("baseline at the same rate", &mut |duration| {
            runtime.block_on(baseline.run(duration, Some(half)))
        }),
    )?;
    drop(baseline);
    let (paced, raw_paced) = (
        report::summarise(&paced_runs),
        report::summarise(&raw_paced_runs),
    );

    let second = service.another_node(2)?;
    let two_nodes = [service.addr.clone(), second.addr.clone()];
    let two = warmed_runs(settings, "two nodes", |duration| go(&two_nodes, duration))?;
    drop(second);
    drop(service);

    report::postgres_verdict(&one, &two, &paced, half, &raw, &raw_paced);
    report::postgres_pairs(&one_runs, &raw_runs);
    runtime.block_on(scratch::drop_all(&url, "d1b_"))?;
    Ok(())
}

/// A timed run of the given length.
type Run<'a> = &'a mut dyn FnMut(Duration) -> anyhow::Result<RunStats>;

/// The timed runs of two loads, taking turns, each reported as it ends.
fn alternating(
    settings: &Settings,
    (first_name, first): (&str, Run),
    (second_name, second): (&str, Run),
) -> anyhow::Result<(Vec<RunStats>, Vec<RunStats>)> {
    let (mut firsts, mut seconds) = (Vec::new(), Vec::new());
    for i in 0..settings.runs {
        let stats = first(settings.duration)?;
        report::run_line(first_name, i + 1, &stats);
        firsts.push(stats);
        let stats = second(settings.duration)?;
        report::run_line(second_name, i + 1, &stats);
        seconds.push(stats);
    }
    Ok((firsts, seconds))
}

/// A warm-up, then the timed runs, each reported as it ends; returns their summary.
fn warmed_runs(
    settings: &Settings,
    what: &str,
    mut run: impl FnMut(Duration) -> anyhow::Result<RunStats>,
) -> anyhow::Result<report::Summary> {
    run(settings.warmup)?;
    let mut runs = Vec::new();
    for i in 0..settings.runs {
        let stats = run(settings.duration)?;
        report::run_line(what, i + 1, &stats);
        runs.push(stats);
    }
    Ok(report::summarise(&runs))
}

fn blob(len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    rand::thread_rng().fill_bytes(&mut b);
    b
}

/// The raw rate: the service's own consumers table (its migrations, applied by opening a
/// store on a schema of its own), pre-filled, upserted by a pool of connections.
pub struct RawBaseline {
    clients: Vec<std::sync::Arc<(tokio_postgres::Client, tokio_postgres::Statement)>>,
    filler: tokio_postgres::Client,
    key: Vec<u8>,
    pi: Vec<u8>,
}

impl RawBaseline {
    /// Creates the schema and fills its table to `rows` rows.
    pub async fn prepare(url: &str, rows: u64) -> anyhow::Result<Self> {
        let raw_url = scratch::create(url, &schema("raw")).await?;
        let dir = tempfile::tempdir()?;
        drop(
            d1_store::open(d1_store::StoreOptions {
                database_url: raw_url.clone(),
                kek_file: dir.path().join("kek.key"),
                durability: d1_store::Durability::Full,
                read_connections: 1,
                pool: d1_store::postgres::PoolOptions::default(),
            })
            .await?,
        );
        let (key, pi) = (blob(61), blob(1024));
        let filler = scratch::connect(&raw_url).await?;
        let mut clients = Vec::new();
        for _ in 0..RAW_CLIENTS {
            let client = scratch::connect(&raw_url).await?;
            client.batch_execute("SET synchronous_commit = on").await?;
            let statement = client.prepare(UPSERT).await?;
            clients.push(std::sync::Arc::new((client, statement)));
        }
        let baseline = Self {
            clients,
            filler,
            key,
            pi,
        };
        baseline.grow_to(rows).await?;
        Ok(baseline)
    }

    /// Adds rows of fresh random keys until the table holds `rows`, and analyses it.
    pub async fn grow_to(&self, rows: u64) -> anyhow::Result<()> {
        let have: i64 = self
            .filler
            .query_one("SELECT count(*) FROM consumers", &[])
            .await?
            .try_get(0)?;
        let missing = i64::try_from(rows)?.saturating_sub(have);
        self.filler
            .execute(
                "INSERT INTO consumers (issuer_id, consumer_id, state, pi_source, wrapped_key, pi, created_at, updated_at)
                 SELECT 'BENCH00001', gen_random_uuid()::text, 'ACTIVE', 'STORED', $1, $2, 0, 0
                 FROM generate_series(1::bigint, $3::bigint)",
                &[&self.key, &self.pi, &missing],
            )
            .await?;
        self.filler.batch_execute("ANALYZE consumers").await?;
        Ok(())
    }

    /// One timed run: each task upserts a fresh random key, one transaction per row, as soon
    /// as the previous one is committed, or at its share of a total `rate` (upserts per second)
    /// paced and timed as the load generator's workers are.
    pub async fn run(&self, duration: Duration, rate: Option<f64>) -> anyhow::Result<RunStats> {
        let started = Instant::now();
        let deadline = started + duration;
        let tasks: Vec<_> = (0..RAW_TASKS)
            .map(|i| {
                let pair = std::sync::Arc::clone(&self.clients[i % RAW_CLIENTS]);
                let (key, pi) = (self.key.clone(), self.pi.clone());
                let pace = load::Pace::of_worker(rate, i, RAW_TASKS, started);
                tokio::spawn(async move {
                    let (client, statement) = &*pair;
                    let mut stats = RunStats::default();
                    while let Some(sent) = pace.due(stats.completed + 1, deadline).await {
                        let id = uuid::Uuid::new_v4().to_string();
                        client.execute(statement, &[&id, &key, &pi, &0i64]).await?;
                        stats.completed += 1;
                        stats
                            .latencies_us
                            .push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
                    }
                    anyhow::Ok(stats)
                })
            })
            .collect();
        let mut stats = RunStats::default();
        for task in tasks {
            let task = task.await??;
            stats.completed += task.completed;
            stats.latencies_us.extend(task.latencies_us);
        }
        stats.elapsed = started.elapsed();
        Ok(stats)
    }
}
