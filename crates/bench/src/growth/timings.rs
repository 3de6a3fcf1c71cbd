//! The service's write-path histograms (`d1_sqlite_*_seconds` on `/metrics`), read before and
//! after a load, so that a tail can be set beside the step that made it: how long each group
//! commit, `BEGIN`, WAL sync and checkpoint took while the load ran.

use std::collections::BTreeMap;

use crate::wire::request_once;

/// Cumulative bucket counts by histogram name, bounds in seconds (`+Inf` as infinity).
#[derive(Debug, Default, Clone)]
pub struct Timings(BTreeMap<String, Vec<(f64, u64)>>);

impl Timings {
    /// Reads the histograms the service at `addr` exposes now (none on PostgreSQL).
    pub async fn read(addr: &str) -> anyhow::Result<Self> {
        let (_, text) = request_once(addr, "GET", "/metrics", "text/plain", String::new()).await?;
        let mut histograms: BTreeMap<String, Vec<(f64, u64)>> = BTreeMap::new();
        for line in text.lines() {
            let Some((name, rest)) = line.split_once("_bucket{le=\"") else {
                continue;
            };
            let Some((bound, count)) = rest.split_once("\"} ") else {
                continue;
            };
            let bound = if bound == "+Inf" {
                f64::INFINITY
            } else {
                bound.parse()?
            };
            histograms
                .entry(name.to_owned())
                .or_default()
                .push((bound, count.trim().parse()?));
        }
        Ok(Self(histograms))
    }

    /// Prints, for each histogram, how many of the steps made since `before` fell in each
    /// bucket (only the buckets that are not empty).
    pub fn print_since(&self, before: &Self, during: &str) {
        if self.0.is_empty() {
            return;
        }
        println!("  write steps during {during} (count by duration):");
        for (name, buckets) in &self.0 {
            let earlier = before.0.get(name);
            let mut previous = 0;
            let mut cells = Vec::new();
            for (i, &(bound, cumulative)) in buckets.iter().enumerate() {
                let was = earlier.and_then(|b| b.get(i)).map_or(0, |&(_, c)| c);
                let now = cumulative.saturating_sub(was);
                let count = now.saturating_sub(previous);
                previous = now;
                if count > 0 {
                    let label = if bound.is_infinite() {
                        "more".to_owned()
                    } else {
                        format!("<={}ms", bound * 1000.0)
                    };
                    cells.push(format!("{label} {count}"));
                }
            }
            let short = name
                .trim_start_matches("d1_sqlite_")
                .trim_start_matches("d1_")
                .trim_end_matches("_seconds");
            println!("    {short}: {}", cells.join(", "));
        }
    }
}
