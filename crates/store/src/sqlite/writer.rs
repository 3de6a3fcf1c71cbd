//! Group commit: one thread owns the SQLite write connection. Writes queue up while a commit
//! is being synced, and the next transaction takes all of them, so N concurrent writers pay
//! for one sync instead of N. Each job runs inside its own savepoint, so a job that fails
//! rolls back alone; a failed commit fails every job of its batch. A caller hears back only
//! after the commit that holds its write has returned.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::{StoreError, StoreResult};

/// The most jobs one transaction takes.
const MAX_BATCH: usize = 512;

type Completion = Box<dyn FnOnce(Result<(), String>) + Send>;
/// Runs a job on the open transaction, or, given `None`, fails it without running.
type Run = Box<dyn FnOnce(Option<&Connection>) -> Completion + Send>;

struct Job {
    run: Run,
    shreds: bool,
}

/// The handle to the writer thread.
pub(super) struct Writer {
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(super) fn start(conn: Connection) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("d1-sqlite-writer".into())
            .spawn(move || run(&conn, &receiver))?;
        Ok(Self {
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Runs `f` in the next group commit and returns its result once that commit is durable.
    /// `shreds` marks a write that destroys key material: the WAL is checkpointed after it.
    pub(super) async fn write<T, F>(&self, shreds: bool, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<StoreResult<T>>();
        let run = Box::new(move |conn: Option<&Connection>| -> Completion {
            let result = match conn {
                Some(conn) => in_savepoint(conn, f),
                None => Err(StoreError::Other(anyhow::anyhow!("no write transaction"))),
            };
            Box::new(move |committed: Result<(), String>| {
                let outcome = match committed {
                    Ok(()) => result,
                    Err(e) => Err(StoreError::Other(anyhow::anyhow!("commit failed: {e}"))),
                };
                let _ = reply.send(outcome);
            })
        });
        let sent = self
            .sender
            .lock()
            .map_err(|_| StoreError::Other(anyhow::anyhow!("writer lock poisoned")))?
            .as_ref()
            .map(|s| s.send(Job { run, shreds }).is_ok())
            .unwrap_or(false);
        if !sent {
            return Err(StoreError::Other(anyhow::anyhow!("the store is closed")));
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

fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    conn.execute_batch("SAVEPOINT job")
        .map_err(|e| StoreError::Other(e.into()))?;
    let result = f(conn);
    let end = if result.is_ok() {
        "RELEASE job"
    } else {
        "ROLLBACK TO job; RELEASE job"
    };
    conn.execute_batch(end)
        .map_err(|e| StoreError::Other(e.into()))?;
    result
}

fn run(conn: &Connection, receiver: &mpsc::Receiver<Job>) {
    let mut checkpoint_due = false;
    loop {
        let first = if checkpoint_due {
            match receiver.recv_timeout(Duration::from_millis(200)) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    checkpoint_due = !checkpoint(conn);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match receiver.recv() {
                Ok(job) => job,
                Err(_) => break,
            }
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        checkpoint_due |= batch.iter().any(|j| j.shreds);
        commit_batch(conn, batch);
        if checkpoint_due {
            checkpoint_due = !checkpoint(conn);
        }
    }
    if checkpoint_due {
        checkpoint(conn);
    }
}

fn commit_batch(conn: &Connection, batch: Vec<Job>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let message = e.to_string();
        tracing::error!(error = %message, "could not begin a write transaction");
        for job in batch {
            (job.run)(None)(Err(message.clone()));
        }
        return;
    }
    let completions: Vec<Completion> = batch.into_iter().map(|job| (job.run)(Some(conn))).collect();
    let committed = conn.execute_batch("COMMIT").map_err(|e| {
        let message = e.to_string();
        tracing::error!(error = %message, jobs = completions.len(), "group commit failed");
        let _ = conn.execute_batch("ROLLBACK");
        message
    });
    for completion in completions {
        completion(committed.clone());
    }
}

/// Truncates the WAL so that destroyed key material does not linger in it. Returns whether
/// the checkpoint completed (readers can hold it back; it is retried shortly).
fn checkpoint(conn: &Connection) -> bool {
    match conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
        row.get::<_, i64>(0)
    }) {
        Ok(busy) => busy == 0,
        Err(e) => {
            tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
            false
        }
    }
}
