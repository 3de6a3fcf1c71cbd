//! Group commit: one thread owns the SQLite write connection. Writes queue up while a batch
//! is being written, and the next transaction takes all of them, so N concurrent writers pay
//! for one commit and one sync instead of N.
//!
//! Durability: with `Durability::Full` a caller hears back only after the WAL frames holding
//! its write are synced to disk (`fdatasync`), which is what `synchronous=FULL` guarantees.
//! The sync runs on a second thread, so the writer builds the next batch while the previous
//! one is being synced; one sync covers every batch committed before it started. A committed
//! write is visible to readers slightly before it is acknowledged, never the other way round.
//! With `Durability::Normal` a caller hears back at commit (safe against a crash of the
//! process, not of the machine).
//!
//! A job that fails before changing anything (the usual case: a refusal, or sealed data that
//! does not open) fails alone. A job that fails after a partial write poisons its batch: the
//! transaction is rolled back and every job in it fails, so no half-applied use case is ever
//! committed. Savepoints per job would isolate better, but they cost a statement journal on
//! every write; measured, they were the largest single cost of the writer.
//!
//! What a caller hears is what is on disk: an error of [`Outcome::NotWritten`] only for a
//! write that is not there, [`StoreError::OutcomeUnknown`] for one that was committed but
//! could not be made durable (a failed sync, a failed `COMMIT`). After the latter the node
//! refuses every write it has not begun until a restart, and `/readyz` says so.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::checkpointer::Checkpointer;
use super::sync::Syncer;
use crate::timings::WriteTimings;
use crate::{StoreError, StoreResult, WriteActivity};

/// The most jobs one transaction takes.
const MAX_BATCH: usize = 512;

/// Writes waiting for the writer, beyond which a write is refused at once
/// ([`StoreError::Overloaded`]) rather than queued behind seconds of work: eight full
/// batches, about half a second of writes at the measured peak.
const QUEUE: usize = 8 * MAX_BATCH;

/// How a batch ended, as its callers hear it.
#[derive(Clone, Debug)]
pub(super) enum Outcome {
    /// Committed, and durable as the durability asks.
    Durable,
    /// Not written: rolled back, or refused before it began.
    NotWritten(String),
    /// Committed, or perhaps committed, but not known to be durable.
    Unknown,
}

/// What a job leaves for after the commit: whether it wrote partially before failing, and how
/// to answer its caller once the commit's (and sync's) outcome is known.
pub(super) struct Completion {
    pub(super) poisoned: bool,
    pub(super) finish: Box<dyn FnOnce(Outcome) + Send>,
}

/// Runs a job on the open transaction, or, given `None`, fails it without running.
type Run = Box<dyn FnOnce(Option<&Connection>) -> Completion + Send>;

struct Job {
    run: Run,
    shreds: bool,
}

/// The state the writer and sync threads share with the handle.
#[derive(Default)]
struct Shared {
    /// Set for good once a write's durability is unknown (see [`super::sync`]).
    failed: Arc<AtomicBool>,
    transactions: AtomicU64,
    syncs: Arc<AtomicU64>,
    timings: Arc<WriteTimings>,
}

/// The handle to the writer thread.
pub(super) struct Writer {
    sender: Mutex<Option<SyncSender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    shared: Arc<Shared>,
}

impl Writer {
    /// Starts the writer thread on `conn`, which must not checkpoint by itself: `checkpointer`
    /// does. With `sync_wal`, acknowledgements wait for an `fdatasync` of that WAL file (the
    /// connection itself must not sync on commit).
    pub(super) fn start(
        conn: Connection,
        sync_wal: Option<PathBuf>,
        checkpointer: Checkpointer,
        timings: Arc<WriteTimings>,
    ) -> std::io::Result<Self> {
        Self::start_with(conn, sync_wal, checkpointer, QUEUE, timings)
    }

    fn start_with(
        conn: Connection,
        sync_wal: Option<PathBuf>,
        checkpointer: Checkpointer,
        queue: usize,
        timings: Arc<WriteTimings>,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::sync_channel::<Job>(queue);
        let shared = Arc::new(Shared {
            timings,
            ..Shared::default()
        });
        let syncer = sync_wal
            .map(|wal| {
                let failed = Arc::clone(&shared.failed);
                Syncer::start(
                    wal,
                    failed,
                    Arc::clone(&shared.syncs),
                    Arc::clone(&shared.timings),
                )
            })
            .transpose()?;
        let state = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("d1-sqlite-writer".into())
            .spawn(move || {
                run(&conn, &receiver, syncer.as_ref(), &state, &checkpointer);
                // The syncer goes first, answering what it holds; dropping the checkpointer
                // after the last commit runs the final checkpoint. The connection is closed
                // before it, since the checkpointer holds the database file's descriptor
                // (see `DbFile`).
                drop(syncer);
                drop(conn);
                drop(checkpointer);
            })?;
        Ok(Self {
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
            shared,
        })
    }

    /// Whether a write's durability is unknown, after which no write is acknowledged until a
    /// restart.
    pub(super) fn sync_failed(&self) -> bool {
        self.shared.failed.load(Ordering::Acquire)
    }

    /// The transactions committed and the WAL syncs made so far.
    pub(super) fn activity(&self) -> WriteActivity {
        WriteActivity {
            transactions: self.shared.transactions.load(Ordering::Relaxed),
            syncs: self.shared.syncs.load(Ordering::Relaxed),
            timings: None,
        }
    }
    /// Runs `f` in the next group commit and returns its result once that commit is durable.
    /// `shreds` marks a write that destroys key material: the WAL is truncated after it.
    pub(super) async fn write<T, F>(&self, shreds: bool, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<StoreResult<T>>();
        let run: Run = Box::new(move |conn: Option<&Connection>| {
            let (result, poisoned) = match conn {
                // The caller has gone (answered 503 TIMEOUT, say): its write is not made.
                Some(_) if reply.is_closed() => (
                    Err(StoreError::Other(anyhow::anyhow!("the caller has gone"))),
                    false,
                ),
                Some(conn) => {
                    let before = conn.total_changes();
                    let result = f(conn);
                    let poisoned = result.is_err() && conn.total_changes() != before;
                    (result, poisoned)
                }
                None => (
                    Err(StoreError::Other(anyhow::anyhow!("no write transaction"))),
                    false,
                ),
            };
            let finish = Box::new(move |outcome: Outcome| {
                let answer = match outcome {
                    Outcome::Durable => result,
                    // The job that poisoned its batch hears its own error; the others hear
                    // why their write was not made.
                    Outcome::NotWritten(_) if poisoned => result,
                    Outcome::NotWritten(e) => Err(StoreError::Other(anyhow::anyhow!(
                        "write not committed: {e}"
                    ))),
                    // Even a job that wrote nothing may have read what is not durable.
                    Outcome::Unknown => Err(StoreError::OutcomeUnknown),
                };
                let _ = reply.send(answer);
            });
            Completion { poisoned, finish }
        });
        let queued = self
            .sender
            .lock()
            .map_err(|_| StoreError::Other(anyhow::anyhow!("writer lock poisoned")))?
            .as_ref()
            .map(|s| s.try_send(Job { run, shreds }));
        match queued {
            Some(Ok(())) => {}
            Some(Err(TrySendError::Full(_))) => return Err(StoreError::Overloaded),
            Some(Err(TrySendError::Disconnected(_))) | None => {
                return Err(StoreError::Other(anyhow::anyhow!("the store is closed")))
            }
        }
        // Dropped unanswered, the write may have been committed by a thread that then died.
        answer.await.map_err(|_| StoreError::OutcomeUnknown)?
    }

    /// Stops accepting writes, lets the queued ones commit, and waits for the thread.
    pub(super) fn close(&self) {
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
        if let Some(thread) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = thread.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.close();
    }
}

/// What every write hears once a write's durability is unknown.
const AFTER_A_FAILED_SYNC: &str =
    "an earlier write could not be made durable; the service must be restarted";

pub(super) fn finish_all(completions: Vec<Completion>, outcome: &Outcome) {
    for completion in completions {
        (completion.finish)(outcome.clone());
    }
}

fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn run(
    conn: &Connection,
    receiver: &Receiver<Job>,
    syncer: Option<&Syncer>,
    shared: &Shared,
    checkpointer: &Checkpointer,
) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if shared.failed.load(Ordering::Acquire) {
            // Refused before it is written: an answer of 500 then means the write is not there.
            let refused: Vec<Completion> = batch.into_iter().map(|job| (job.run)(None)).collect();
            finish_all(
                refused,
                &Outcome::NotWritten(AFTER_A_FAILED_SYNC.to_owned()),
            );
            continue;
        }
        let shreds = batch.iter().any(|j| j.shreds);
        let (completions, outcome) = commit_batch(conn, batch, &shared.timings);
        match outcome {
            // Committed: durable now, or once the syncer has synced it.
            Outcome::Durable => {
                shared.transactions.fetch_add(1, Ordering::Relaxed);
                match syncer {
                    Some(syncer) => syncer.submit(completions),
                    None => finish_all(completions, &Outcome::Durable),
                }
            }
            Outcome::Unknown => {
                shared.failed.store(true, Ordering::Release);
                finish_all(completions, &Outcome::Unknown);
            }
            not_written => finish_all(completions, &not_written),
        }
        if shreds {
            checkpointer.shred();
        }
        checkpointer.take_restart(conn);
    }
}

fn commit_batch(
    conn: &Connection,
    batch: Vec<Job>,
    timings: &WriteTimings,
) -> (Vec<Completion>, Outcome) {
    let began = Instant::now();
    let begun = exec(conn, "BEGIN IMMEDIATE");
    timings.begin.record(began.elapsed());
    if let Err(e) = begun {
        let message = e.to_string();
        tracing::error!(error = %message, "could not begin a write transaction");
        return (
            batch.into_iter().map(|job| (job.run)(None)).collect(),
            Outcome::NotWritten(message),
        );
    }
    let completions: Vec<Completion> = batch.into_iter().map(|job| (job.run)(Some(conn))).collect();
    let outcome = if completions.iter().any(|c| c.poisoned) {
        let _ = exec(conn, "ROLLBACK");
        tracing::error!(
            jobs = completions.len(),
            "a job failed after a partial write; its batch was rolled back"
        );
        Outcome::NotWritten("the batch was rolled back".to_owned())
    } else {
        let committed = exec(conn, "COMMIT");
        timings.commit.record(began.elapsed());
        match committed {
            Ok(()) => Outcome::Durable,
            Err(e) => failed_commit(conn, &e, completions.len()),
        }
    };
    (completions, outcome)
}

/// A `COMMIT` that failed. Busy, it did not begin to write and the batch is rolled back.
/// Otherwise (an I/O error, the disk full) SQLite may have written the commit frame before
/// the error, where a restart's recovery would find it: the batch's outcome is unknown.
fn failed_commit(conn: &Connection, e: &rusqlite::Error, jobs: usize) -> Outcome {
    let busy = matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    );
    let _ = exec(conn, "ROLLBACK");
    if busy {
        tracing::error!(error = %e, jobs, "group commit failed; its batch was rolled back");
        Outcome::NotWritten(e.to_string())
    } else {
        tracing::error!(error = %e, jobs, "group commit failed; its batch may be on disk, so writes are refused and /readyz answers 503 until a restart");
        Outcome::Unknown
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
