//! A circuit breaker per issuer: after `failures` consecutive failed calls it opens and
//! refuses calls for `open_for`; then one probe goes through, and its outcome closes the
//! circuit again or reopens it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
    probing: bool,
}

/// The breakers of every issuer.
pub(crate) struct Breakers {
    failures: u32,
    open_for: Duration,
    states: Mutex<HashMap<String, State>>,
}

/// What the breaker says about a call about to be made.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Permit {
    /// Closed: go ahead.
    Call,
    /// Half open: this call is the probe.
    Probe,
    /// Open: do not call.
    Refused,
}

impl Breakers {
    pub(crate) fn new(failures: u32, open_for: Duration) -> Self {
        Self {
            failures: failures.max(1),
            open_for,
            states: Mutex::new(HashMap::new()),
        }
    }

    /// Asks to call `issuer`'s backend.
    pub(crate) fn permit(&self, issuer: &str) -> Permit {
        let Ok(mut states) = self.states.lock() else {
            return Permit::Call;
        };
        let state = states.entry(issuer.to_owned()).or_default();
        match state.open_until {
            None => Permit::Call,
            Some(until) if Instant::now() < until || state.probing => Permit::Refused,
            Some(_) => {
                state.probing = true;
                Permit::Probe
            }
        }
    }

    /// A call answered as the backend meant it to (2xx, 403, 404, even invalid content).
    pub(crate) fn succeeded(&self, issuer: &str) {
        if let Ok(mut states) = self.states.lock() {
            if let Some(state) = states.get_mut(issuer) {
                if state.open_until.is_some() {
                    tracing::info!(issuer_id = issuer, "issuer backend circuit closed");
                }
                *state = State::default();
            }
        }
    }

    /// A call failed (timeout, unreachable, 5xx after retries).
    pub(crate) fn failed(&self, issuer: &str) {
        let Ok(mut states) = self.states.lock() else {
            return;
        };
        let state = states.entry(issuer.to_owned()).or_default();
        state.failures = state.failures.saturating_add(1);
        if state.probing || state.failures >= self.failures {
            if state.open_until.is_none() || state.probing {
                tracing::warn!(issuer_id = issuer, "issuer backend circuit opened");
            }
            state.open_until = Some(Instant::now() + self.open_for);
            state.probing = false;
        }
    }

    /// Whether `issuer`'s circuit is open now.
    pub(crate) fn is_open(&self, issuer: &str) -> bool {
        self.states.lock().is_ok_and(|states| {
            states
                .get(issuer)
                .and_then(|s| s.open_until)
                .is_some_and(|until| Instant::now() < until)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_lets_one_probe_through_later() {
        let b = Breakers::new(2, Duration::from_millis(30));
        assert_eq!(b.permit("i"), Permit::Call);
        b.failed("i");
        assert_eq!(b.permit("i"), Permit::Call);
        b.failed("i");
        assert_eq!(b.permit("i"), Permit::Refused);
        assert!(b.is_open("i"));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(b.permit("i"), Permit::Probe);
        assert_eq!(b.permit("i"), Permit::Refused, "one probe at a time");
        b.succeeded("i");
        assert_eq!(b.permit("i"), Permit::Call);
        assert!(!b.is_open("i"));
    }

    #[test]
    fn a_failed_probe_reopens_and_other_issuers_are_unaffected() {
        let b = Breakers::new(1, Duration::from_millis(20));
        b.failed("i");
        assert_eq!(b.permit("j"), Permit::Call);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(b.permit("i"), Permit::Probe);
        b.failed("i");
        assert_eq!(b.permit("i"), Permit::Refused);
    }
}
