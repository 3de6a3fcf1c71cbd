//! The growth scenario's ratios, each beside its target (issue "A flat latency tail").

use super::stage::{Figures, Stage};

/// One ratio and whether it meets its target.
fn ratio(what: &str, value: f64, target: &str, met: bool) {
    let mark = if met { "met" } else { "NOT met" };
    println!("  {what}: {value:.2}x (target {target}: {mark})");
}

/// Prints the table of stages and the ratios of the last stage to the first, and of the
/// service to the raw upsert; `postgres` picks the targets of that backend.
pub fn print(
    stages: &[Stage],
    rate: f64,
    read_rate: f64,
    cards: &[(&'static str, Figures, Figures)],
    postgres: bool,
) {
    println!(
        "\n| rows | peak/s | p99 peak | paced p50 | paced p99 | paced p99.9 | raw p99 | get p99 | RSS MB (own) | data MB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for s in stages {
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} ({:.1}) | {:.1} |",
            s.rows.0,
            s.peak.rate,
            s.peak.p99_ms,
            s.paced.p50_ms,
            s.paced.p99_ms,
            s.paced.p999_ms,
            s.raw_paced.p99_ms,
            s.reads_paced.p99_ms,
            s.rss_bytes.0 as f64 / 1e6,
            s.rss_bytes.1 as f64 / 1e6,
            s.data_bytes as f64 / 1e6
        );
    }
    let (Some(first), Some(last)) = (stages.first(), stages.last()) else {
        return;
    };
    let (small, large) = (first.rows.0, last.rows.0);
    println!("\nratios (registrations paced at {rate:.0}/s, get consumer at {read_rate:.0}/s):");
    if postgres {
        for s in stages {
            let r = s.paced.p99_ms / s.raw_paced.p99_ms;
            ratio(
                &format!("paced p99 / raw pooled commit p99 at {} rows", s.rows.0),
                r,
                "<= 1.5x",
                r <= 1.5,
            );
        }
    } else {
        let r = last.paced.p99_ms / first.paced.p99_ms;
        ratio(
            &format!("paced p99 at {large} rows / at {small}"),
            r,
            "<= 1.5x",
            r <= 1.5,
        );
        let r = last.paced.p99_ms / last.raw_paced.p99_ms;
        ratio(
            &format!("paced p99 / raw upsert p99 at {large} rows"),
            r,
            "<= 3x",
            r <= 3.0,
        );
    }
    let r = last.peak.rate / first.peak.rate;
    ratio(
        &format!("peak at {large} rows / at {small}"),
        r,
        ">= 0.8x",
        r >= 0.8,
    );
    let r = last.rss_bytes.0 as f64 / first.rss_bytes.0 as f64;
    ratio(
        &format!("RSS at {large} rows / at {small}"),
        r,
        "<= 1.25x",
        r <= 1.25,
    );
    let r = last.rss_bytes.1 as f64 / first.rss_bytes.1 as f64;
    println!("  the service's own memory (RssAnon) at {large} rows / at {small}: {r:.2}x");
    let r = last.reads_paced.p99_ms / first.reads_paced.p99_ms;
    ratio(
        &format!("get consumer paced p99 at {large} rows / at {small}"),
        r,
        "<= 1.5x",
        r <= 1.5,
    );
    for (name, card, registrations) in cards {
        println!("{}", card.line(name));
        println!("{}", registrations.line("registrations in turns with them"));
        let r = card.rate / registrations.rate;
        let target = match *name {
            "life-cycle operations" => Some(0.8),
            "cards for registered consumers" => Some(0.5),
            _ => None,
        };
        match target {
            Some(t) => ratio(
                &format!("{name} / registrations after {large} rows"),
                r,
                &format!(">= {t}x"),
                r >= t,
            ),
            None => println!("  {name} / registrations after {large} rows: {r:.2}x"),
        }
    }
}
