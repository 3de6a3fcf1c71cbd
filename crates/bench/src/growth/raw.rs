//! The raw baseline of the growth scenario, on the service's backend: the single-row SQLite
//! upsert on a file of its own, or the pooled PostgreSQL upsert in a schema of its own, grown
//! to the service's table size before each stage.

use std::time::Duration;

use crate::baseline::Baseline;
use crate::load::RunStats;
use crate::postgres::RawBaseline;

/// The baseline the service's paced runs are compared with.
pub enum Raw {
    Sqlite(Baseline),
    Postgres(RawBaseline),
}

impl Raw {
    /// An empty baseline table on the service's backend: PostgreSQL at `database_url`, else
    /// SQLite.
    pub async fn prepare(database_url: Option<&str>) -> anyhow::Result<Self> {
        Ok(match database_url {
            Some(url) => Self::Postgres(RawBaseline::prepare(url, 0).await?),
            None => Self::Sqlite(Baseline::prepare(0)?),
        })
    }

    /// What it is, for the report.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => {
                "raw single-row upsert on SQLite (WAL, synchronous=NORMAL, one transaction per row, 1 KB blob, one connection)"
            }
            Self::Postgres(_) => {
                "raw single-row upsert on the same PostgreSQL (32 tasks over 16 pooled connections, one transaction per row, synchronous_commit on, 1 KB blob)"
            }
        }
    }

    /// Fills the table with random keys until it holds `rows`.
    pub async fn grow_to(&self, rows: u64) -> anyhow::Result<()> {
        match self {
            Self::Sqlite(b) => b.grow_to(rows),
            Self::Postgres(b) => b.grow_to(rows).await,
        }
    }

    /// One timed run at `rate` upserts a second.
    pub async fn run_at(&self, duration: Duration, rate: f64) -> anyhow::Result<RunStats> {
        match self {
            Self::Sqlite(b) => b.run_at(duration, Some(rate)),
            Self::Postgres(b) => b.run(duration, Some(rate)).await,
        }
    }
}
