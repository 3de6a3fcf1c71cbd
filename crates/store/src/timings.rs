//! How long the steps of the write path take, as histograms for `/metrics`: a tail that grows
//! with the database shows here as the step whose upper buckets fill (docs/benchmarks.md,
//! "What stalled the tail").

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The upper bounds of the buckets, in seconds; a last bucket takes everything above.
pub const BOUNDS_SECONDS: [f64; 13] = [
    0.000_25, 0.000_5, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024,
];

/// A histogram of durations, updated without a lock.
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BOUNDS_SECONDS.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    /// Counts one duration.
    pub fn record(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = BOUNDS_SECONDS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(BOUNDS_SECONDS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// The count of each bucket (not cumulative), the last one above every bound.
    pub fn counts(&self) -> Vec<u64> {
        self.counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }

    /// The sum of every duration counted, in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
    }
}

/// The write path's steps on SQLite.
#[derive(Debug, Default)]
pub struct WriteTimings {
    /// A group commit, from `BEGIN IMMEDIATE` to the end of its `COMMIT`.
    pub commit: Histogram,
    /// `BEGIN IMMEDIATE` alone: long only while another connection holds the write lock (a
    /// RESTART or TRUNCATE checkpoint).
    pub begin: Histogram,
    /// The `fdatasync` of the WAL that makes committed batches durable.
    pub wal_sync: Histogram,
    /// A checkpoint that copied frames into the database file, its sync of that file
    /// included.
    pub checkpoint: Histogram,
    /// The writer's own copy of the WAL's last frames before the WAL starts again, while no
    /// batch commits: the part of checkpointing that requests wait for.
    pub wal_restart: Histogram,
}

impl WriteTimings {
    /// Each histogram with its metric name.
    pub fn named(&self) -> [(&'static str, &Histogram); 5] {
        [
            ("d1_sqlite_commit_seconds", &self.commit),
            ("d1_sqlite_begin_seconds", &self.begin),
            ("d1_sqlite_wal_sync_seconds", &self.wal_sync),
            ("d1_sqlite_checkpoint_seconds", &self.checkpoint),
            ("d1_sqlite_wal_restart_seconds", &self.wal_restart),
        ]
    }
}
