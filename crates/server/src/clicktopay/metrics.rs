//! Counters of Click to Pay's background work, appended to `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Enrolments, PI fetches and notifications, since the process started.
#[derive(Debug, Default)]
pub struct C2pMetrics {
    pub enrolments_successful: AtomicU64,
    pub enrolments_failed: AtomicU64,
    /// Get Consumer Information answered from the client (a call, or a shared call).
    pub pi_fetches: AtomicU64,
    pub pi_fetch_failures: AtomicU64,
    pub pi_cache_hits: AtomicU64,
    pub notifications_delivered: AtomicU64,
    pub notification_attempts_failed: AtomicU64,
    pub notifications_dead: AtomicU64,
}

impl C2pMetrics {
    /// Adds one to `counter`.
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n` to `counter`.
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        let rows = [
            (
                "d1_click_to_pay_enrolments_total{status=\"SUCCESSFUL\"}",
                &self.enrolments_successful,
            ),
            (
                "d1_click_to_pay_enrolments_total{status=\"FAILED\"}",
                &self.enrolments_failed,
            ),
            ("d1_pi_fetches_total{outcome=\"ok\"}", &self.pi_fetches),
            (
                "d1_pi_fetches_total{outcome=\"failed\"}",
                &self.pi_fetch_failures,
            ),
            (
                "d1_pi_fetches_total{outcome=\"cached\"}",
                &self.pi_cache_hits,
            ),
            (
                "d1_notifications_total{outcome=\"delivered\"}",
                &self.notifications_delivered,
            ),
            (
                "d1_notifications_total{outcome=\"attempt_failed\"}",
                &self.notification_attempts_failed,
            ),
            (
                "d1_notifications_total{outcome=\"dead\"}",
                &self.notifications_dead,
            ),
        ];
        let mut last_family = "";
        for (name, counter) in rows {
            let family = name.split('{').next().unwrap_or(name);
            if family != last_family {
                let _ = writeln!(out, "# TYPE {family} counter");
                last_family = family;
            }
            let _ = writeln!(out, "{name} {}", counter.load(Ordering::Relaxed));
        }
        out
    }
}
