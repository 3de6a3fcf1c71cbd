//! Printing: the machine, each run, the median with min and max, and the ratio.

use crate::load::RunStats;

pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub non_2xx: u64,
    /// The median of the runs' service CPU time per request, in microseconds.
    pub cpu_us: Option<f64>,
}

pub fn machine() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    println!("machine: {cores} cores, {cpu}");
}

pub fn percentile(sorted: &[u32], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    Some(f64::from(sorted[index]) / 1000.0)
}

pub fn run_line(what: &str, n: usize, stats: &RunStats) {
    let mut sorted = stats.latencies_us.clone();
    sorted.sort_unstable();
    let latency = match (percentile(&sorted, 0.5), percentile(&sorted, 0.99)) {
        (Some(p50), Some(p99)) => format!(
            ", p50 {p50:.2} ms, p99 {p99:.2} ms, non-2xx {}",
            stats.non_2xx
        ),
        _ => String::new(),
    };
    let cpu = stats.cpu_per_request_us().map_or_else(String::new, |us| {
        format!(", service CPU {us:.0} µs/request")
    });
    println!(
        "  {what} run {n}: {:.0}/s ({} in {:.1}s){latency}{cpu}",
        stats.rate(),
        stats.completed,
        stats.elapsed.as_secs_f64()
    );
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

pub fn summarise(runs: &[RunStats]) -> Summary {
    let mut rates: Vec<f64> = runs.iter().map(RunStats::rate).collect();
    rates.sort_by(f64::total_cmp);
    let mut all: Vec<u32> = runs
        .iter()
        .flat_map(|r| r.latencies_us.iter().copied())
        .collect();
    all.sort_unstable();
    Summary {
        median: rates.get(rates.len() / 2).copied().unwrap_or(0.0),
        min: rates.first().copied().unwrap_or(0.0),
        max: rates.last().copied().unwrap_or(0.0),
        p50_ms: percentile(&all, 0.5),
        p99_ms: percentile(&all, 0.99),
        non_2xx: runs.iter().map(|r| r.non_2xx).sum(),
        cpu_us: median(
            runs.iter()
                .filter_map(RunStats::cpu_per_request_us)
                .collect(),
        ),
    }
}

pub fn verdict(
    service: &Summary,
    baseline: &Summary,
    service_runs: &[RunStats],
    baseline_runs: &[RunStats],
) {
    println!("\nregistrations/s: median {:.0} (min {:.0}, max {:.0}), p50 {:.2} ms, p99 {:.2} ms, non-2xx {}{}",
        service.median, service.min, service.max, service.p50_ms.unwrap_or(0.0), service.p99_ms.unwrap_or(0.0), service.non_2xx, cpu_note(service));
    println!(
        "baseline upserts/s: median {:.0} (min {:.0}, max {:.0})",
        baseline.median, baseline.min, baseline.max
    );
    let (listed, pair_median) = pair_ratios(service_runs, baseline_runs);
    println!(
        "ratio service/baseline: {:.2}x (target >= 1.0x; the service syncs every acknowledged write, the baseline does not); run by run {listed}, median {pair_median:.2}x",
        service.median / baseline.median,
    );
}

/// The ratios of alternating runs, listed, and their median.
fn pair_ratios(top: &[RunStats], bottom: &[RunStats]) -> (String, f64) {
    let pairs: Vec<f64> = top
        .iter()
        .zip(bottom)
        .map(|(t, b)| t.rate() / b.rate())
        .collect();
    let listed: Vec<String> = pairs.iter().map(|r| format!("{r:.2}")).collect();
    (listed.join(", "), median(pairs).unwrap_or(0.0))
}

fn cpu_note(summary: &Summary) -> String {
    summary
        .cpu_us
        .map_or_else(String::new, |us| format!(", service CPU {us:.0} µs each"))
}

/// The one-node runs against the baseline runs they alternated with.
pub fn postgres_pairs(one_runs: &[RunStats], raw_runs: &[RunStats]) {
    let (listed, pair_median) = pair_ratios(one_runs, raw_runs);
    println!("one node/baseline run by run: {listed}, median {pair_median:.2}x");
}

/// One kind of card run against the registration runs it alternated with; `ratio` says what
/// its ratio is.
pub fn cards_verdict(
    kind: &str,
    ratio: &str,
    cards: &Summary,
    registrations: &Summary,
    card_runs: &[RunStats],
    registration_runs: &[RunStats],
) {
    println!(
        "\n{kind}/s: median {:.0} (min {:.0}, max {:.0}), p50 {:.2} ms, p99 {:.2} ms, non-2xx {}{}",
        cards.median,
        cards.min,
        cards.max,
        cards.p50_ms.unwrap_or(0.0),
        cards.p99_ms.unwrap_or(0.0),
        cards.non_2xx,
        cpu_note(cards)
    );
    println!(
        "registrations/s in the same run: median {:.0} (min {:.0}, max {:.0}){}",
        registrations.median,
        registrations.min,
        registrations.max,
        cpu_note(registrations)
    );
    let (listed, pair_median) = pair_ratios(card_runs, registration_runs);
    println!(
        "ratio {kind}/registrations: {:.2}x ({ratio}); run by run {listed}, median {pair_median:.2}x",
        cards.median / registrations.median
    );
}

/// The PostgreSQL scenario's figures: the node's at its peak, on two nodes and at half its
/// peak, and the raw upsert's at its peak and at that same half-peak rate.
pub fn postgres_verdict(
    one: &Summary,
    two: &Summary,
    paced: &Summary,
    half: f64,
    raw: &Summary,
    raw_paced: &Summary,
) {
    let latency = |s: &Summary| {
        format!(
            "p50 {:.2} ms, p99 {:.2} ms",
            s.p50_ms.unwrap_or(0.0),
            s.p99_ms.unwrap_or(0.0)
        )
    };
    let line = |what: &str, s: &Summary| {
        println!(
            "{what}: median {:.0}/s (min {:.0}, max {:.0}), {}, non-2xx {}",
            s.median,
            s.min,
            s.max,
            latency(s),
            s.non_2xx
        );
    };
    println!();
    line("one node", one);
    line("two nodes, round-robin", two);
    println!(
        "one node at {half:.0}/s (half its peak): achieved {:.0}/s, {} (target p99 <= 10 ms), non-2xx {}",
        paced.median,
        latency(paced),
        paced.non_2xx
    );
    println!(
        "baseline raw pooled upserts/s: median {:.0} (min {:.0}, max {:.0}), {}",
        raw.median,
        raw.min,
        raw.max,
        latency(raw)
    );
    println!(
        "ratio one node/baseline: {:.2}x (target >= 0.8x); two nodes/baseline: {:.2}x",
        one.median / raw.median,
        two.median / raw.median
    );
    println!(
        "baseline raw pooled upserts at {half:.0}/s: achieved {:.0}/s, {}",
        raw_paced.median,
        latency(raw_paced)
    );
}

/// What the issuer backend received, once the outbox has drained (no new call for 2 s, or
/// 2 minutes at most).
pub async fn notifications(sim: &crate::sim::Simulator) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let started = std::time::Instant::now();
    let mut seen = sim.stat(&http, "notifications").await?;
    while started.elapsed() < std::time::Duration::from_secs(120) {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let now = sim.stat(&http, "notifications").await?;
        if now == seen {
            break;
        }
        seen = now;
    }
    let stats: serde_json::Value = http
        .get(format!("{}/sim/stats", sim.url))
        .send()
        .await?
        .json()
        .await?;
    println!(
        "
issuer-sim received, after the runs: {stats}"
    );
    Ok(())
}
