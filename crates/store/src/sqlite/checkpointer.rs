//! WAL checkpoints, off the commit path. The write connection never checkpoints by itself
//! (`wal_autocheckpoint = 0`); this thread, on its own connection, copies committed frames
//! into the database file while the writer goes on appending, so a checkpoint's I/O and
//! syncs never stall a group commit.
//!
//! - Every 30 ms: a PASSIVE checkpoint (waits for nobody, takes no write lock), then a sync
//!   of the database file ([`DbFile`]) if it copied frames.
//! - When the WAL has grown past a bound: PASSIVE rounds until little is left to copy, then
//!   the writer is asked to copy that little itself, between two batches
//!   ([`Checkpointer::take_restart`]). With every frame copied, SQLite starts the WAL again
//!   from its beginning at the next commit, so the WAL is overwritten in place instead of
//!   growing forever.
//! - After a write that destroyed key material: a TRUNCATE checkpoint, retried until it
//!   completes, so the destroyed key does not linger in the WAL.
//!
//! Why not a RESTART checkpoint here: it takes the write lock and keeps it while it copies,
//! syncs the database file and waits for readers. Measured at 300,000 consumers, it kept the
//! writer out for 32-128 ms about once a second, and that was the whole of the growing p99
//! (docs/benchmarks.md, "What stalled the tail").

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::busy;
use super::db_file::DbFile;
use crate::timings::WriteTimings;

/// How often a PASSIVE checkpoint runs. Each one is followed by a sync of the database file
/// that flushes every page it copied, and the WAL's syncs queue behind it on the disk. At a
/// million consumers, 100 ms apart, each took 32-64 ms, and the paced p99 was 29 ms; 30 ms
/// apart, 8-16 ms each and 11 ms (docs/benchmarks.md, "The database file synced after every
/// checkpoint").
const PERIOD: Duration = Duration::from_millis(30);
/// WAL frames (pages) past which the WAL is to start again: 64 MiB of 4 KiB pages.
const RESTART_FRAMES: i64 = 16_384;
/// Frames left to copy that the writer may copy itself between two batches: 1 MiB.
const FEW_FRAMES: i64 = 256;
/// PASSIVE rounds at most before the writer is asked; each copies what the writer appended
/// during the one before, so two or three usually leave few frames.
const CATCH_UP_ROUNDS: usize = 4;

#[derive(Default)]
struct Signals {
    stop: AtomicBool,
    shred: AtomicBool,
    /// Set when the writer should copy the last frames itself.
    restart: AtomicBool,
    wake: (Mutex<bool>, Condvar),
}

/// The handle to the checkpoint thread.
pub(super) struct Checkpointer {
    signals: Arc<Signals>,
    thread: Option<JoinHandle<()>>,
    timings: Arc<WriteTimings>,
    /// Kept until the thread is joined, and the writer drops its connection first (see
    /// [`DbFile`]).
    _db: Arc<DbFile>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path`, syncing it through `db`.
    pub(super) fn start(
        path: PathBuf,
        db: Arc<DbFile>,
        timings: Arc<WriteTimings>,
    ) -> std::io::Result<Self> {
        let signals = Arc::new(Signals::default());
        let shared = Arc::clone(&signals);
        let measured = Arc::clone(&timings);
        let synced = Arc::clone(&db);
        let thread = std::thread::Builder::new()
            .name("d1-sqlite-ckpt".into())
            .spawn(move || {
                match Connection::open(&path).and_then(|c| busy::wait_long(&c).map(|()| c)) {
                    Ok(conn) => run(&conn, &synced, &shared, &measured),
                    Err(e) => {
                        tracing::error!(error = %e, "the checkpoint connection could not be opened")
                    }
                }
            })?;
        Ok(Self {
            signals,
            thread: Some(thread),
            timings,
            _db: db,
        })
    }

    /// Asks for a TRUNCATE checkpoint: key material was destroyed.
    pub(super) fn shred(&self) {
        self.signals.shred.store(true, Ordering::Release);
        self.wake();
    }

    fn wake(&self) {
        let (lock, condvar) = &self.signals.wake;
        if let Ok(mut woken) = lock.lock() {
            *woken = true;
            condvar.notify_one();
        }
    }

    /// Called by the writer between two batches, on its own connection: if the checkpoint
    /// thread has caught up with a long WAL, copies the few frames left (a PASSIVE checkpoint
    /// that no other writer can outrun), after which the next commit starts the WAL again.
    pub(super) fn take_restart(&self, writer: &Connection) {
        if self.signals.restart.swap(false, Ordering::AcqRel) {
            let started = Instant::now();
            checkpoint(writer, "PASSIVE", &self.timings, -1);
            self.timings.wal_restart.record(started.elapsed());
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.signals.stop.store(true, Ordering::Release);
        self.shred();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One checkpoint: whether it was held back (busy), the WAL's frames, and how many of them
/// are now in the database file. One that copied frames (more than `copied_before`) is timed.
fn checkpoint(
    conn: &Connection,
    mode: &str,
    timings: &WriteTimings,
    copied_before: i64,
) -> Option<(bool, i64, i64)> {
    let started = Instant::now();
    let result = unmeasured(conn, mode);
    if result.is_some_and(|(_, _, copied)| copied != copied_before) {
        timings.checkpoint.record(started.elapsed());
    }
    result
}

/// [`checkpoint`] without its timing; a failure is logged and is `None`.
fn unmeasured(conn: &Connection, mode: &str) -> Option<(bool, i64, i64)> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        Ok((r.get::<_, i64>(0)? != 0, r.get(1)?, r.get(2)?))
    })
    .map_err(|e| tracing::warn!(error = %e, mode, "WAL checkpoint failed"))
    .ok()
}

/// A PASSIVE checkpoint, then, if it copied frames, a sync of the database file: SQLite syncs
/// it only after copying the WAL's last frame, which a checkpoint beside a busy writer never
/// does. Timed as one step; `None` if either failed.
fn passive(
    conn: &Connection,
    db: &DbFile,
    timings: &WriteTimings,
    copied_before: i64,
) -> Option<(i64, i64)> {
    let started = Instant::now();
    let (_, frames, copied) = unmeasured(conn, "PASSIVE")?;
    if copied != copied_before {
        if let Err(e) = db.sync() {
            // SQLite's own next sync of the file hears of the failure too, so no WAL restart
            // counts on pages this one lost.
            tracing::error!(error = %e, "syncing the database file after a checkpoint failed");
            return None;
        }
        timings.checkpoint.record(started.elapsed());
    }
    Some((frames, copied))
}

fn run(conn: &Connection, db: &DbFile, signals: &Signals, timings: &WriteTimings) {
    let mut copied = 0;
    loop {
        let (lock, condvar) = &signals.wake;
        if let Ok(guard) = lock.lock() {
            if let Ok((mut woken, _)) = condvar.wait_timeout_while(guard, PERIOD, |woken| !*woken) {
                *woken = false;
            }
        }
        let stopping = signals.stop.load(Ordering::Acquire);
        if signals.shred.swap(false, Ordering::AcqRel) || stopping {
            // At the end nobody writes any more, so the last checkpoint may wait as long as
            // it must; a TRUNCATE holds the write lock while it waits for readers.
            let wait = if stopping {
                busy::wait_long
            } else {
                busy::wait_a_while
            };
            let _ = wait(conn);
            let done = checkpoint(conn, "TRUNCATE", timings, -1).is_some_and(|(busy, _, _)| !busy);
            let _ = busy::wait_long(conn);
            copied = 0;
            if !done && !stopping {
                // Readers held it back: try again on the next round.
                signals.shred.store(true, Ordering::Release);
            }
        } else if let Some((frames, now)) = passive(conn, db, timings, copied) {
            copied = now;
            if frames > RESTART_FRAMES && catch_up(conn, db, timings, &mut copied) {
                signals.restart.store(true, Ordering::Release);
            }
        }
        if stopping {
            return;
        }
    }
}

/// PASSIVE rounds until few frames are left to copy; whether that happened.
fn catch_up(conn: &Connection, db: &DbFile, timings: &WriteTimings, copied: &mut i64) -> bool {
    for _ in 0..CATCH_UP_ROUNDS {
        match passive(conn, db, timings, *copied) {
            Some((frames, now)) => {
                *copied = now;
                if frames - now <= FEW_FRAMES {
                    return true;
                }
            }
            None => return false,
        }
    }
    false
}
