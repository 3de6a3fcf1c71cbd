//! WAL checkpoints, off the commit path. The write connection never checkpoints by itself
//! (`wal_autocheckpoint = 0`); this thread, on its own connection, copies committed frames
//! into the database file while the writer goes on appending, so a checkpoint's I/O and
//! syncs never stall a group commit.
//!
//! - Every few milliseconds: a PASSIVE checkpoint (waits for nobody).
//! - When the WAL has grown past a bound and is fully copied: a RESTART checkpoint, so the
//!   next commit writes the WAL from its start again instead of growing it forever.
//! - After a write that destroyed key material: a TRUNCATE checkpoint, retried until it
//!   completes, so the destroyed key does not linger in the WAL.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

const PERIOD: Duration = Duration::from_millis(1000);
/// WAL frames (pages) past which the WAL is restarted once fully copied: 64 MiB of 4 KiB pages.
const RESTART_FRAMES: i64 = 16_384;

#[derive(Default)]
struct Signals {
    stop: AtomicBool,
    shred: AtomicBool,
    wake: (Mutex<bool>, Condvar),
}

/// The handle to the checkpoint thread.
pub(super) struct Checkpointer {
    signals: Arc<Signals>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path`.
    pub(super) fn start(path: PathBuf) -> std::io::Result<Self> {
        let signals = Arc::new(Signals::default());
        let shared = Arc::clone(&signals);
        let thread = std::thread::Builder::new()
            .name("d1-sqlite-ckpt".into())
            .spawn(move || {
                match Connection::open(&path)
                    .and_then(|c| c.busy_timeout(Duration::from_secs(5)).map(|()| c))
                {
                    Ok(conn) => run(&conn, &shared),
                    Err(e) => {
                        tracing::error!(error = %e, "the checkpoint connection could not be opened")
                    }
                }
            })?;
        Ok(Self {
            signals,
            thread: Some(thread),
        })
    }

    /// Asks for a TRUNCATE checkpoint: key material was destroyed.
    pub(super) fn shred(&self) {
        self.signals.shred.store(true, Ordering::Release);
        let (lock, condvar) = &self.signals.wake;
        if let Ok(mut woken) = lock.lock() {
            *woken = true;
            condvar.notify_one();
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

fn checkpoint(conn: &Connection, mode: &str) -> Option<(bool, i64, i64)> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        Ok((r.get::<_, i64>(0)? != 0, r.get(1)?, r.get(2)?))
    })
    .map_err(|e| tracing::warn!(error = %e, mode, "WAL checkpoint failed"))
    .ok()
}

fn run(conn: &Connection, signals: &Signals) {
    loop {
        let (lock, condvar) = &signals.wake;
        if let Ok(guard) = lock.lock() {
            if let Ok((mut woken, _)) = condvar.wait_timeout_while(guard, PERIOD, |woken| !*woken) {
                *woken = false;
            }
        }
        let stopping = signals.stop.load(Ordering::Acquire);
        if signals.shred.swap(false, Ordering::AcqRel) || stopping {
            let done = checkpoint(conn, "TRUNCATE").is_some_and(|(busy, _, _)| !busy);
            if !done && !stopping {
                // Readers held it back: try again on the next round.
                signals.shred.store(true, Ordering::Release);
            }
        } else if let Some((_, frames, copied)) = checkpoint(conn, "PASSIVE") {
            if frames > RESTART_FRAMES && frames == copied {
                checkpoint(conn, "RESTART");
            }
        }
        if stopping {
            return;
        }
    }
}
