//! The flags every scenario shares, with the defaults the bench scripts and the docs use.

use std::path::PathBuf;
use std::time::Duration;

/// Benchmark settings.
#[derive(clap::Args)]
pub struct Settings {
    /// The d1-registry binary under test.
    #[arg(long, default_value = "target/release/d1-registry")]
    pub binary: PathBuf,
    /// Keep-alive connections of the load.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Seconds of warm-up before the timed runs.
    #[arg(long, default_value = "3", value_parser = seconds)]
    pub warmup: Duration,
    /// Seconds of each timed run.
    #[arg(long, default_value = "10", value_parser = seconds)]
    pub duration: Duration,
    /// Timed runs of each side.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Register card requests prepared for each kind of card run of the `cards` scenario.
    #[arg(long, default_value_t = 300_000)]
    pub cards: usize,
    /// The PostgreSQL database of the `postgres` scenario (it works in scratch schemas).
    #[arg(long, env = "D1_BENCH_DATABASE_URL")]
    pub database_url: Option<String>,
    /// The issuer's `--notification-batch-size` in the `cards` scenario.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub notification_batch_size: u16,
    /// Enrolments per batch in the `enrolments` scenario.
    #[arg(long, default_value_t = 2000)]
    pub enrolments: usize,
    /// Rounds of the `crash` scenario, each ended by a SIGKILL.
    #[arg(long, default_value_t = 10)]
    pub rounds: usize,
    /// The longest a `crash` round writes before its kill, in seconds.
    #[arg(long, default_value = "4", value_parser = seconds)]
    pub seconds: Duration,
    /// The sizes the `growth` scenario (consumer rows) and the `portal` scenario (cards)
    /// measure at, smallest first.
    #[arg(long, value_delimiter = ',', default_values_t = [100_000u64, 1_000_000])]
    pub sizes: Vec<u64>,
    /// Concurrent writers of the `crash` scenario.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
}

/// Whole seconds.
fn seconds(value: &str) -> Result<Duration, String> {
    value
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| "must be a whole number of seconds".into())
}
