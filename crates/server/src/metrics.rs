//! A few counters, exposed in the Prometheus text format on `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Process-wide counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests_2xx: AtomicU64,
    requests_4xx: AtomicU64,
    requests_5xx: AtomicU64,
    lookalike_ids: AtomicU64,
    pan_ids_refused: AtomicU64,
    /// How long requests took, from routing to the answer's headers.
    durations: d1_store::timings::Histogram,
}

impl Metrics {
    /// Counts a finished request by status class.
    pub fn request(&self, status: u16) {
        let counter = match status {
            500.. => &self.requests_5xx,
            400.. => &self.requests_4xx,
            _ => &self.requests_2xx,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts how long a request took to answer.
    pub fn answered_in(&self, elapsed: std::time::Duration) {
        self.durations.record(elapsed);
    }

    /// Counts an identifier that looks like a phone number.
    pub fn lookalike(&self) {
        self.lookalike_ids.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an identifier refused because it is a PAN.
    pub fn pan_refused(&self) {
        self.pan_ids_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# TYPE d1_http_requests_total counter");
        for (class, counter) in [
            ("2xx", &self.requests_2xx),
            ("4xx", &self.requests_4xx),
            ("5xx", &self.requests_5xx),
        ] {
            let _ = writeln!(
                out,
                "d1_http_requests_total{{class=\"{class}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        histogram(&mut out, "d1_http_request_seconds", &self.durations);
        let _ = writeln!(out, "# TYPE d1_lookalike_identifiers_total counter");
        let _ = writeln!(
            out,
            "d1_lookalike_identifiers_total {}",
            self.lookalike_ids.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# TYPE d1_pan_identifiers_refused_total counter");
        let _ = writeln!(
            out,
            "d1_pan_identifiers_refused_total {}",
            self.pan_ids_refused.load(Ordering::Relaxed)
        );
        out
    }
}

/// How long the store's write steps took, as Prometheus histograms.
fn render_timings(timings: &d1_store::timings::WriteTimings) -> String {
    let mut out = String::new();
    for (name, h) in timings.named() {
        histogram(&mut out, name, h);
    }
    out
}

/// One histogram in the Prometheus text format.
fn histogram(out: &mut String, name: &str, histogram: &d1_store::timings::Histogram) {
    let _ = writeln!(out, "# TYPE {name} histogram");
    let mut cumulative = 0;
    for (i, count) in histogram.counts().iter().enumerate() {
        cumulative += count;
        match d1_store::timings::BOUNDS_SECONDS.get(i) {
            Some(bound) => writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}"),
            None => writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}"),
        }
        .ok();
    }
    let _ = writeln!(out, "{name}_sum {}", histogram.sum_seconds());
    let _ = writeln!(out, "{name}_count {cumulative}");
}

/// What the store has written since it was opened, in the Prometheus text format: an idle
/// node's figures stay still.
#[must_use]
pub fn render_writes(writes: &d1_store::WriteActivity) -> String {
    let timings = writes
        .timings
        .as_deref()
        .map(render_timings)
        .unwrap_or_default();
    timings
        + &format!(
            "# TYPE d1_store_write_transactions_total counter\n\
         d1_store_write_transactions_total {}\n\
         # TYPE d1_store_wal_syncs_total counter\n\
         d1_store_wal_syncs_total {}\n",
            writes.transactions, writes.syncs
        )
}
