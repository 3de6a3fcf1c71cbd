//! One stage of the growth scenario: what is measured at one table size, and how it prints.

use std::time::Duration;

use crate::load::RunStats;
use crate::report::percentile;

/// Latency and rate of the runs of one load.
#[derive(Debug, Clone, Copy, Default)]
pub struct Figures {
    /// Median rate of the runs, per second.
    pub rate: f64,
    pub min: f64,
    pub max: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub non_2xx: u64,
}

impl Figures {
    /// The figures of `runs` taken together, leaving out a run that had nothing left to send
    /// (its prepared requests ran out).
    pub fn of(runs: &[RunStats]) -> Self {
        let runs: Vec<&RunStats> = runs.iter().filter(|r| r.completed > 0).collect();
        let mut rates: Vec<f64> = runs.iter().map(|r| r.rate()).collect();
        rates.sort_by(f64::total_cmp);
        let mut all: Vec<u32> = runs
            .iter()
            .flat_map(|r| r.latencies_us.iter().copied())
            .collect();
        all.sort_unstable();
        let at = |p| percentile(&all, p).unwrap_or(0.0);
        Self {
            rate: rates.get(rates.len() / 2).copied().unwrap_or(0.0),
            min: rates.first().copied().unwrap_or(0.0),
            max: rates.last().copied().unwrap_or(0.0),
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            non_2xx: runs.iter().map(|r| r.non_2xx).sum(),
        }
    }

    /// One report line.
    pub fn line(&self, what: &str) -> String {
        format!(
            "  {what}: {:.0}/s (min {:.0}, max {:.0}), p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, non-2xx {}",
            self.rate, self.min, self.max, self.p50_ms, self.p99_ms, self.p999_ms, self.non_2xx
        )
    }
}

/// What was measured at one table size.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stage {
    /// The consumer rows when the stage began, and when it ended (its own registrations
    /// add rows).
    pub rows: (u64, u64),
    pub peak: Figures,
    pub paced: Figures,
    pub raw_paced: Figures,
    pub reads_peak: Figures,
    pub reads_paced: Figures,
    /// The service's resident set, and the part of it that is not mapped file pages.
    pub rss_bytes: (u64, u64),
    pub data_bytes: u64,
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

impl Stage {
    /// Prints the stage: `rate` is the registrations' paced rate, `read_rate` the reads'.
    pub fn print(&self, rate: f64, read_rate: f64) {
        println!(
            "\nat {} consumer rows ({} when the stage ended):",
            self.rows.0, self.rows.1
        );
        println!("{}", self.peak.line("registrations at their peak"));
        println!(
            "{}",
            self.paced
                .line(&format!("registrations paced at {rate:.0}/s"))
        );
        println!(
            "{}",
            self.raw_paced
                .line(&format!("raw upsert paced at {rate:.0}/s"))
        );
        println!("{}", self.reads_peak.line("get consumer at its peak"));
        println!(
            "{}",
            self.reads_paced
                .line(&format!("get consumer paced at {read_rate:.0}/s"))
        );
        println!(
            "  service RSS {:.1} MB (of which {:.1} MB its own memory, the rest mapped file pages: on SQLite, the database file), data {:.1} MB",
            mb(self.rss_bytes.0),
            mb(self.rss_bytes.1),
            mb(self.data_bytes)
        );
    }
}

/// The timed runs of two loads, taking turns, each printed as it ends.
pub async fn alternating<A, B>(
    runs: usize,
    duration: Duration,
    (a_name, mut a): (&str, A),
    (b_name, mut b): (&str, B),
) -> anyhow::Result<(Vec<RunStats>, Vec<RunStats>)>
where
    A: AsyncFnMut(Duration) -> anyhow::Result<RunStats>,
    B: AsyncFnMut(Duration) -> anyhow::Result<RunStats>,
{
    let (mut firsts, mut seconds) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let stats = a(duration).await?;
        crate::report::run_line(a_name, i + 1, &stats);
        firsts.push(stats);
        let stats = b(duration).await?;
        crate::report::run_line(b_name, i + 1, &stats);
        seconds.push(stats);
    }
    Ok((firsts, seconds))
}
