//! The SQLite baseline: the service's consumers table (its migrations, applied here) and the
//! same single-row upsert the service does, with random UUIDv4 keys and a 1 KB blob, one
//! transaction per row, WAL and `synchronous=NORMAL` (not durable against a power cut, unlike
//! the service's default).

use std::time::{Duration, Instant};

use rand::RngCore;
use rusqlite::{params, Connection};

use crate::load::{Pace, RunStats};

/// The service's own schema, so the baseline writes the very table the service writes.
const MIGRATIONS: [&str; 3] = [
    include_str!("../../store/migrations/sqlite/0001_init.sql"),
    include_str!("../../store/migrations/sqlite/0002_cards.sql"),
    include_str!("../../store/migrations/sqlite/0003_trail_index.sql"),
];

const UPSERT: &str = "INSERT INTO consumers (issuer_id, consumer_id, state, pi_source, wrapped_key, pi, created_at, updated_at)
     VALUES ('BENCH00001', ?1, 'ACTIVE', 'STORED', ?2, ?3, ?4, ?4)
     ON CONFLICT (issuer_id, consumer_id) DO UPDATE SET pi = excluded.pi, updated_at = excluded.updated_at";

fn blob(len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    rand::thread_rng().fill_bytes(&mut b);
    b
}

/// A fresh database with the service's table, pre-filled, ready for timed runs.
pub struct Baseline {
    conn: Connection,
    key: Vec<u8>,
    pi: Vec<u8>,
    // Held so the database lives as long as the baseline.
    _dir: tempfile::TempDir,
}

impl Baseline {
    /// Creates the table and pre-fills it to `rows`.
    pub fn prepare(rows: u64) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("d1-baseline-").tempdir_in(
            std::env::var("BENCH_DIR")
                .map_or_else(|_| std::env::temp_dir(), std::path::PathBuf::from),
        )?;
        let conn = Connection::open(dir.path().join("baseline.db"))?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
        for migration in MIGRATIONS {
            conn.execute_batch(migration)?;
        }
        let key = blob(61);
        let pi = blob(1024);
        conn.execute_batch("BEGIN")?;
        for i in 0..rows {
            conn.prepare_cached(UPSERT)?.execute(params![
                uuid::Uuid::new_v4().to_string(),
                key,
                pi,
                i64::try_from(i)?
            ])?;
        }
        conn.execute_batch("COMMIT")?;
        Ok(Self {
            conn,
            key,
            pi,
            _dir: dir,
        })
    }

    /// Upserts fresh random keys, one transaction each, for `duration`.
    pub fn run(&self, duration: Duration) -> anyhow::Result<RunStats> {
        self.run_at(duration, None)
    }

    /// Upserts fresh random keys, one transaction each, for `duration`: as fast as they
    /// commit, or at `rate` a second on the load generator's schedule, each upsert's latency
    /// counted from its scheduled time ([`Pace::due_blocking`]).
    pub fn run_at(&self, duration: Duration, rate: Option<f64>) -> anyhow::Result<RunStats> {
        let started = Instant::now();
        let deadline = started + duration;
        let pace = Pace::of_worker(rate, 0, 1, started);
        let mut stats = RunStats::default();
        while let Some(due) = pace.due_blocking(stats.completed + 1, deadline) {
            self.upsert()?;
            stats
                .latencies_us
                .push(u32::try_from(due.elapsed().as_micros()).unwrap_or(u32::MAX));
            stats.completed += 1;
        }
        stats.elapsed = started.elapsed();
        Ok(stats)
    }

    /// Adds rows of fresh random keys, in one transaction, until the table holds `rows`.
    pub fn grow_to(&self, rows: u64) -> anyhow::Result<()> {
        let have: i64 = self
            .conn
            .query_row("SELECT count(*) FROM consumers", [], |r| r.get(0))?;
        self.conn.execute_batch("BEGIN")?;
        for _ in u64::try_from(have)?..rows {
            self.insert_one()?;
        }
        self.conn.execute_batch("COMMIT")?;
        Ok(())
    }

    fn upsert(&self) -> anyhow::Result<()> {
        self.conn.execute_batch("BEGIN")?;
        self.insert_one()?;
        self.conn.execute_batch("COMMIT")?;
        Ok(())
    }

    /// One upsert of a new random consumerId, inside the caller's transaction.
    fn insert_one(&self) -> anyhow::Result<()> {
        self.conn.prepare_cached(UPSERT)?.execute(params![
            uuid::Uuid::new_v4().to_string(),
            self.key,
            self.pi,
            0
        ])?;
        Ok(())
    }
}
