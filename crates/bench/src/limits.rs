//! The `limits` scenario: Register consumer at ten times the issuer's configured rate limit
//! (`limits.issuer_requests_per_second`, with a burst of the same size), on a fixed schedule,
//! to show what the limit costs the requests it lets through: the share answered 429 against
//! 2xx, and the p99 latency of the 2xx.

use crate::load;
use crate::report::percentile;
use crate::service::Service;
use crate::settings::Settings;

/// The configured rate of the bench issuer, requests per second.
const RATE: u32 = 100;
/// How many times the configured rate the load offers.
const OVER: u32 = 10;

/// Runs the scenario and prints one line per run and a summary.
pub fn run(settings: &Settings) -> anyhow::Result<()> {
    let env = [
        ("D1__LIMITS__ISSUER_REQUESTS_PER_SECOND", RATE.to_string()),
        ("D1__LIMITS__ISSUER_BURST", RATE.to_string()),
    ];
    let service = Service::start_with(&settings.binary, None, &env)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let token = runtime.block_on(service.token())?;
    let offered = f64::from(RATE * OVER);
    println!(
        "\nlimits: issuer rate {RATE}/s, burst {RATE}; Register consumer offered at {offered}/s \
         over {} connections, {}s warm-up, {} runs of {}s",
        settings.connections,
        settings.warmup.as_secs(),
        settings.runs,
        settings.duration.as_secs()
    );
    let targets = [service.addr.clone()];
    let at = |duration| {
        runtime.block_on(load::run_at(
            &targets,
            &token,
            settings.connections,
            duration,
            &load::Work::Registrations,
            offered,
        ))
    };
    at(settings.warmup)?;
    let mut all_ok = Vec::new();
    let (mut answered, mut limited, mut ok, mut seconds) = (0u64, 0u64, 0u64, 0.0);
    for i in 0..settings.runs {
        let stats = at(settings.duration)?;
        let passed = stats.completed - stats.non_2xx;
        let mut sorted = stats.ok_latencies_us.clone();
        sorted.sort_unstable();
        println!(
            "  run {}: {} answered ({:.0}/s), 2xx {} ({:.1}/s), 429 {}, other {}; p99 of the 2xx {:.2} ms",
            i + 1,
            stats.completed,
            stats.rate(),
            passed,
            passed as f64 / stats.elapsed.as_secs_f64(),
            stats.rate_limited,
            stats.non_2xx - stats.rate_limited,
            percentile(&sorted, 0.99).unwrap_or(f64::NAN)
        );
        answered += stats.completed;
        limited += stats.rate_limited;
        ok += passed;
        seconds += stats.elapsed.as_secs_f64();
        all_ok.extend(stats.ok_latencies_us);
    }
    all_ok.sort_unstable();
    let share = |n: u64| 100.0 * n as f64 / answered.max(1) as f64;
    println!(
        "limits: of {answered} answers, {:.1}% 429 and {:.1}% 2xx ({:.1} 2xx/s against the \
         configured {RATE}/s); p50 of the 2xx {:.2} ms, p99 {:.2} ms",
        share(limited),
        share(ok),
        ok as f64 / seconds.max(f64::MIN_POSITIVE),
        percentile(&all_ok, 0.50).unwrap_or(f64::NAN),
        percentile(&all_ok, 0.99).unwrap_or(f64::NAN)
    );
    Ok(())
}
