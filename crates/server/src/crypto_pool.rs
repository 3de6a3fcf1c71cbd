//! The threads that run request-path public-key crypto (a card's JWE key agreement), off the
//! async workers.
//!
//! One thread per core, each at a lower scheduling priority than the rest of the service.
//! A key agreement costs about as much CPU as a whole consumer registration. At the same
//! priority, under card load the single SQLite writer thread was runnable but waiting for a
//! core 27% of the time; ten `nice` steps below, 17-19%, and the card p99 fell from 22-26 ms
//! to 14-19 ms. The decrypts still get the whole CPU when it is free.
//!
//! The queue is bounded: when it is full a request is refused at once with 503 `OVERLOADED`
//! rather than waiting behind work it would time out on. A queued job whose caller has gone
//! is skipped.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::error::ApiError;

/// How much lower the pool's threads run than the thread that starts the pool, in `nice` steps.
const NICENESS_STEPS: i32 = 10;

/// The lowest priority Linux has.
const MAX_NICE: i32 = 19;

/// Jobs that may wait per pool thread. A key agreement takes about 0.1 ms of a core, so a
/// full queue is a few tens of milliseconds of work: far more than a steady load keeps
/// waiting, far less than the request timeout.
pub const QUEUE_PER_THREAD: usize = 128;

type Job = Box<dyn FnOnce() + Send>;

/// The pool. Its threads end when it is dropped and their queue is empty.
pub struct CryptoPool {
    jobs: SyncSender<Job>,
}

/// Why the pool did not run a job.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// Its queue is full: the service is overloaded.
    #[error("the crypto thread pool's queue is full")]
    Full,
    /// Its threads are gone, or the job panicked.
    #[error("the crypto thread pool is unavailable")]
    Gone,
}

impl From<PoolError> for ApiError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Full => Self::overloaded(),
            PoolError::Gone => Self::internal(&e),
        }
    }
}

impl CryptoPool {
    /// Starts `threads` threads (at least one), with room for `queue` waiting jobs (at
    /// least one).
    ///
    /// # Errors
    /// If no thread can be started.
    pub fn start(threads: usize, queue: usize) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::sync_channel::<Job>(queue.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        let niceness = (own_niceness() + NICENESS_STEPS).min(MAX_NICE);
        for i in 0..threads.max(1) {
            let receiver = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(format!("d1-crypto-{i}"))
                .spawn(move || work(&receiver, niceness))?;
        }
        Ok(Self { jobs: sender })
    }

    /// Runs `f` on a pool thread and waits for its result.
    ///
    /// # Errors
    /// [`PoolError::Full`] at once if the queue is full, [`PoolError::Gone`] if the pool
    /// cannot run it.
    pub async fn run<T, F>(&self, f: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (sender, receiver) = oneshot::channel();
        let job: Job = Box::new(move || {
            // A caller that has gone (its request timed out or was dropped while queued) needs
            // no result: under overload the pool does not spend a core on answers nobody reads.
            if !sender.is_closed() {
                let _ = sender.send(f());
            }
        });
        self.jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => PoolError::Full,
            TrySendError::Disconnected(_) => PoolError::Gone,
        })?;
        receiver.await.map_err(|_| PoolError::Gone)
    }
}

fn work(receiver: &Mutex<Receiver<Job>>, niceness: i32) {
    set_niceness(niceness);
    loop {
        // The lock is held only while waiting for the next job, never while running one.
        let job = match receiver.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        match job {
            // A panicking job drops its result sender, so its caller hears `Gone`; the
            // thread stays for the next job.
            Ok(job) => drop(std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))),
            Err(_) => return,
        }
    }
}

// On Linux, PRIO_PROCESS with a thread id reads and sets that thread's nice value alone.
// Raising one's own niceness needs no privilege.
#[cfg(target_os = "linux")]
fn own_niceness() -> i32 {
    rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap_or(0)
}

#[cfg(target_os = "linux")]
fn set_niceness(niceness: i32) {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), niceness) {
        tracing::debug!(error = %e, "could not lower the crypto thread's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn own_niceness() -> i32 {
    0
}

#[cfg(not(target_os = "linux"))]
fn set_niceness(_: i32) {}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;

    #[tokio::test]
    async fn runs_jobs_on_its_threads_and_returns_their_results() {
        let pool = CryptoPool::start(2, 16).unwrap();
        let results = futures_util::future::join_all((0..8u32).map(|i| {
            pool.run(move || {
                let name = std::thread::current().name().map(str::to_owned);
                (i * 2, name)
            })
        }))
        .await;
        for (i, result) in results.into_iter().enumerate() {
            let (doubled, name) = result.unwrap();
            assert_eq!(doubled, u32::try_from(i).unwrap() * 2);
            assert!(name.unwrap().starts_with("d1-crypto-"));
        }
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn its_threads_run_below_the_thread_that_started_it() {
        let ours = own_niceness();
        let pool = CryptoPool::start(1, 16).unwrap();
        let theirs = pool.run(own_niceness).await.unwrap();
        assert_eq!(theirs, (ours + NICENESS_STEPS).min(MAX_NICE));
        assert!(ours == MAX_NICE || theirs > ours);
    }

    #[tokio::test]
    async fn a_job_whose_caller_has_gone_is_not_run() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let pool = Arc::new(CryptoPool::start(1, 16).unwrap());
        let (started, running) = oneshot::channel::<()>();
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        let busy = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move {
                pool.run(move || {
                    started.send(()).unwrap();
                    blocked.recv().unwrap();
                })
                .await
            }
        });
        running.await.unwrap();
        // The one thread is busy, so this job waits in the queue until its caller gives up.
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let abandoned = pool.run(move || flag.store(true, Ordering::SeqCst));
        let waited = tokio::time::timeout(std::time::Duration::from_millis(50), abandoned).await;
        assert!(waited.is_err());
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        // Queued behind the abandoned job, so that one has been taken by now.
        assert_eq!(pool.run(|| 1).await.unwrap(), 1);
        assert!(!ran.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_with_overloaded_and_serves_again_once_drained() {
        let pool = CryptoPool::start(1, 2).unwrap();
        let (started, running) = oneshot::channel::<()>();
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        let busy = pool.run(move || {
            started.send(()).unwrap();
            blocked.recv().unwrap();
        });
        let rest = async {
            running.await.unwrap();
            // The thread is busy; two jobs fill the queue, and a third is refused at once.
            let mut one = Box::pin(pool.run(|| 1u8));
            let mut two = Box::pin(pool.run(|| 2u8));
            assert!(futures_util::poll!(&mut one).is_pending());
            assert!(futures_util::poll!(&mut two).is_pending());
            let refused = pool.run(|| 3u8).await.unwrap_err();
            release.send(()).unwrap();
            (one.await.unwrap(), two.await.unwrap(), refused)
        };
        let (busy, (one, two, refused)) = futures_util::future::join(busy, rest).await;
        busy.unwrap();
        assert_eq!((one, two), (1, 2));
        assert_eq!(refused, PoolError::Full);
        assert_eq!(pool.run(|| 7).await.unwrap(), 7);

        let answer = ApiError::from(refused).into_response();
        assert_eq!(answer.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert!(answer
            .headers()
            .contains_key(axum::http::header::RETRY_AFTER));
        let body = axum::body::to_bytes(answer.into_body(), 1024)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["errorCode"], "OVERLOADED");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
    }

    #[tokio::test]
    async fn a_panicking_job_answers_pool_gone_and_the_pool_keeps_serving() {
        let pool = CryptoPool::start(1, 16).unwrap();
        let failed = pool.run(|| -> u8 { panic!("boom") }).await;
        assert!(failed.is_err());
        assert_eq!(pool.run(|| 7).await.unwrap(), 7);
    }
}
