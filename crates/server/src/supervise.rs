//! Supervision of the background tasks (the Click to Pay job worker, the notification
//! outbox): a task that fails — returns an error, ends on its own, or panics — is logged in
//! one line and started again after a short pause, until the service stops.
//!
//! The log line names the task and how it ended, never a panic's payload: a panic message
//! may quote a value, and no personal data goes to the log.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// The pauses between restarts: doubling from `first` up to `max`. A run that lasted
/// `healthy` or longer starts the doubling over.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    pub healthy: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            first: Duration::from_millis(100),
            max: Duration::from_secs(5),
            healthy: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The pause after `failures` failures in a row (1-based).
    fn pause(&self, failures: u32) -> Duration {
        self.first
            .saturating_mul(1 << failures.saturating_sub(1).min(16))
            .min(self.max)
    }
}

/// Runs the task `start` makes until `stop` turns true, starting it again whenever it fails.
/// Each run is a tokio task of its own, so a panic ends that run only.
pub async fn supervise<F, Fut>(
    name: &'static str,
    mut stop: watch::Receiver<bool>,
    backoff: Backoff,
    mut start: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let mut failures = 0u32;
    loop {
        if *stop.borrow() {
            return;
        }
        let started = Instant::now();
        let ended = tokio::spawn(start()).await;
        if *stop.borrow() {
            return;
        }
        failures = if started.elapsed() >= backoff.healthy {
            1
        } else {
            failures.saturating_add(1)
        };
        let pause = backoff.pause(failures);
        let pause_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX);
        match ended {
            Ok(Ok(())) => {
                tracing::error!(
                    task = name,
                    restart_in_ms = pause_ms,
                    "background task ended on its own; restarting"
                );
            }
            Ok(Err(e)) => {
                tracing::error!(task = name, error = %e, restart_in_ms = pause_ms, "background task failed; restarting");
            }
            Err(e) if e.is_panic() => {
                tracing::error!(
                    task = name,
                    restart_in_ms = pause_ms,
                    "background task panicked; restarting"
                );
            }
            Err(_) => {
                tracing::error!(
                    task = name,
                    restart_in_ms = pause_ms,
                    "background task was cancelled; restarting"
                );
            }
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Mutex};

    /// The log lines written while a test runs.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn quick() -> Backoff {
        Backoff {
            first: Duration::from_millis(1),
            max: Duration::from_millis(4),
            healthy: Duration::from_secs(60),
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_task_that_panics_or_fails_is_logged_and_restarted_until_stop() {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let (stop, stopped) = watch::channel(false);
        let runs = Arc::new(AtomicU32::new(0));
        let (up, mut third) = tokio::sync::mpsc::channel::<()>(1);
        let supervisor = tokio::spawn(supervise("test-task", stopped.clone(), quick(), {
            let runs = Arc::clone(&runs);
            move || {
                let (run, up, mut stopped) = (
                    runs.fetch_add(1, Ordering::SeqCst),
                    up.clone(),
                    stopped.clone(),
                );
                async move {
                    match run {
                        0 => panic!("the secret value 4111111111111111"),
                        1 => anyhow::bail!("the store failed"),
                        _ => {
                            up.send(()).await?;
                            let _ = stopped.wait_for(|s| *s).await;
                            Ok(())
                        }
                    }
                }
            }
        }));
        tokio::time::timeout(Duration::from_secs(5), third.recv())
            .await
            .expect("restarted twice")
            .expect("the task runs");
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), supervisor)
            .await
            .expect("the supervisor ends on stop")
            .unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 3, "not restarted after stop");
        let log = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let restarts: Vec<&str> = log.lines().filter(|l| l.contains("restarting")).collect();
        assert_eq!(restarts.len(), 2, "{log}");
        assert!(restarts[0].contains("panicked") && restarts[0].contains("test-task"));
        assert!(restarts[1].contains("the store failed") && restarts[1].contains("test-task"));
        assert!(
            !log.contains("4111111111111111"),
            "a panic's payload is not logged"
        );
    }

    #[test]
    fn the_pause_doubles_up_to_its_ceiling() {
        let b = Backoff::default();
        assert_eq!(b.pause(1), Duration::from_millis(100));
        assert_eq!(b.pause(2), Duration::from_millis(200));
        assert_eq!(b.pause(10), Duration::from_secs(5));
        assert_eq!(b.pause(u32::MAX), Duration::from_secs(5));
    }
}
