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

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::checkpointer::Checkpointer;
use crate::{StoreError, StoreResult};

/// The most jobs one transaction takes.
const MAX_BATCH: usize = 512;

/// Writes waiting for the writer, beyond which a write is refused at once
/// ([`StoreError::Overloaded`]) rather than queued behind seconds of work: eight full
/// batches, about half a second of writes at the measured peak.
const QUEUE: usize = 8 * MAX_BATCH;

/// What a job leaves for after the commit: whether it wrote partially before failing, and how
/// to answer its caller once the commit's (and sync's) outcome is known.
struct Completion {
    poisoned: bool,
    finish: Box<dyn FnOnce(Result<(), String>) + Send>,
}

/// Runs a job on the open transaction, or, given `None`, fails it without running.
type Run = Box<dyn FnOnce(Option<&Connection>) -> Completion + Send>;

struct Job {
    run: Run,
    shreds: bool,
}

/// The handle to the writer thread.
pub(super) struct Writer {
    sender: Mutex<Option<SyncSender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Set for good once a WAL sync has failed (see [`sync_loop`]).
    sync_failed: Arc<AtomicBool>,
}

impl Writer {
    /// Starts the writer thread on `conn`, which must not checkpoint by itself: `checkpointer`
    /// does. With `sync_wal`, acknowledgements wait for an `fdatasync` of that WAL file (the
    /// connection itself must not sync on commit).
    pub(super) fn start(
        conn: Connection,
        sync_wal: Option<PathBuf>,
        checkpointer: Checkpointer,
    ) -> std::io::Result<Self> {
        Self::start_with(conn, sync_wal, checkpointer, QUEUE)
    }

    fn start_with(
        conn: Connection,
        sync_wal: Option<PathBuf>,
        checkpointer: Checkpointer,
        queue: usize,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::sync_channel::<Job>(queue);
        let sync_failed = Arc::new(AtomicBool::new(false));
        let failed = Arc::clone(&sync_failed);
        let thread = std::thread::Builder::new()
            .name("d1-sqlite-writer".into())
            .spawn(move || {
                let syncer = sync_wal.map(|wal| Syncer::start(wal, failed)).transpose();
                match syncer {
                    Ok(syncer) => run(&conn, &receiver, syncer.as_ref(), &checkpointer),
                    Err(e) => tracing::error!(error = %e, "could not start the WAL sync thread"),
                }
                // Dropping the checkpointer here, after the last commit, runs the final checkpoint.
            })?;
        Ok(Self {
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
            sync_failed,
        })
    }

    /// Whether a WAL sync has failed, after which no write is acknowledged until a restart.
    pub(super) fn sync_failed(&self) -> bool {
        self.sync_failed.load(Ordering::Acquire)
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
            let finish = Box::new(move |durable: Result<(), String>| {
                // The job that poisoned its batch hears its own error; the others hear why
                // their write was not made durable.
                let outcome = match durable {
                    Err(e) if !poisoned => Err(StoreError::Other(anyhow::anyhow!(
                        "write not committed: {e}"
                    ))),
                    _ => result,
                };
                let _ = reply.send(outcome);
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
        answer
            .await
            .map_err(|_| StoreError::Other(anyhow::anyhow!("the writer stopped")))?
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

/// What every write hears once a WAL sync has failed.
const AFTER_A_FAILED_SYNC: &str = "an earlier WAL sync failed; the service must be restarted";

/// The thread that makes committed batches durable and then answers their callers.
struct Syncer {
    sender: Option<Sender<Vec<Completion>>>,
    thread: Option<JoinHandle<()>>,
    failed: Arc<AtomicBool>,
}

impl Syncer {
    fn start(wal: PathBuf, failed: Arc<AtomicBool>) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel::<Vec<Completion>>();
        let shared = Arc::clone(&failed);
        let thread = std::thread::Builder::new()
            .name("d1-sqlite-sync".into())
            .spawn(move || sync_loop(&wal, &receiver, &shared))?;
        Ok(Self {
            sender: Some(sender),
            thread: Some(thread),
            failed,
        })
    }

    /// Whether a sync has failed (see [`sync_loop`]).
    fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Hands over a committed batch; if the sync thread is gone, the batch fails.
    fn submit(&self, completions: Vec<Completion>) {
        if let Some(sender) = &self.sender {
            if let Err(mpsc::SendError(completions)) = sender.send(completions) {
                finish_all(completions, &Err("the sync thread stopped".to_owned()));
            }
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.sender.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Once an `fdatasync` has failed, every later sync fails too. After a failed `fdatasync` the
/// kernel may have dropped the dirty pages and cleared the error, so a later success would not
/// prove that the WAL holds what it was given; only a restart, which reads the WAL back, does.
fn sync_loop(wal: &std::path::Path, receiver: &Receiver<Vec<Completion>>, failed: &AtomicBool) {
    while let Ok(mut pending) = receiver.recv() {
        while let Ok(more) = receiver.try_recv() {
            pending.extend(more);
        }
        let synced = if failed.load(Ordering::Acquire) {
            Err(AFTER_A_FAILED_SYNC.to_owned())
        } else {
            sync(wal, failed)
        };
        finish_all(pending, &synced);
    }
}

fn sync(wal: &std::path::Path, failed: &AtomicBool) -> Result<(), String> {
    // Opened for each sync: the file a path names is the one SQLite writes now. Failing to
    // open it loses nothing, so only a failed sync is for good.
    let file = std::fs::File::open(wal).map_err(|e| {
        tracing::error!(error = %e, "opening the WAL to sync it failed");
        format!("sync failed: {e}")
    })?;
    file.sync_data().map_err(|e| {
        failed.store(true, Ordering::Release);
        tracing::error!(error = %e, "syncing the WAL failed; writes fail and /readyz answers 503 until a restart");
        format!("sync failed: {e}")
    })
}

fn finish_all(completions: Vec<Completion>, outcome: &Result<(), String>) {
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
        if syncer.is_some_and(Syncer::failed) {
            // Refused before it is written: an answer of 500 then means the write is not there.
            let refused: Vec<Completion> = batch.into_iter().map(|job| (job.run)(None)).collect();
            finish_all(refused, &Err(AFTER_A_FAILED_SYNC.to_owned()));
            continue;
        }
        let shreds = batch.iter().any(|j| j.shreds);
        let (completions, committed) = commit_batch(conn, batch);
        match (syncer, committed) {
            (Some(syncer), Ok(())) => syncer.submit(completions),
            (_, outcome) => finish_all(completions, &outcome),
        }
        if shreds {
            checkpointer.shred();
        }
    }
}

fn commit_batch(conn: &Connection, batch: Vec<Job>) -> (Vec<Completion>, Result<(), String>) {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        let message = e.to_string();
        tracing::error!(error = %message, "could not begin a write transaction");
        return (
            batch.into_iter().map(|job| (job.run)(None)).collect(),
            Err(message),
        );
    }
    let completions: Vec<Completion> = batch.into_iter().map(|job| (job.run)(Some(conn))).collect();
    let committed = if completions.iter().any(|c| c.poisoned) {
        let _ = exec(conn, "ROLLBACK");
        tracing::error!(
            jobs = completions.len(),
            "a job failed after a partial write; its batch was rolled back"
        );
        Err("the batch was rolled back".to_owned())
    } else {
        exec(conn, "COMMIT").map_err(|e| {
            let message = e.to_string();
            tracing::error!(error = %message, jobs = completions.len(), "group commit failed");
            let _ = exec(conn, "ROLLBACK");
            message
        })
    };
    (completions, committed)
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
