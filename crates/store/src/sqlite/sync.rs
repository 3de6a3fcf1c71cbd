//! The WAL sync thread: it makes committed batches durable (`fdatasync` of the WAL) and then
//! answers their callers, while the writer builds the next batch.
//!
//! The WAL file stays open here from the start, so a sync needs no new file descriptor: a
//! process out of descriptors still syncs, and a committed batch is never answered as if it
//! were not written. Before each sync the kept file is checked against the one the path names
//! (`fstat` against `stat`, device and inode, which take no descriptor either). SQLite keeps
//! one WAL file while any connection is open (a TRUNCATE or RESTART checkpoint and the
//! journal size limit cut it in place), so they differ only if something replaced the file;
//! then it is opened again.
//!
//! Any failure here comes after the commit, when the batch may already be on disk: its
//! callers hear [`Outcome::Unknown`], never "not written", and the node stops acknowledging
//! writes for good (see [`sync_loop`]).

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use super::writer::{finish_all, Completion, Outcome};
use crate::timings::WriteTimings;

/// The thread that makes committed batches durable and then answers their callers.
pub(super) struct Syncer {
    sender: Option<Sender<Vec<Completion>>>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    /// Starts syncing the WAL at `wal`; `failed` is set for good once a sync has failed, and
    /// `syncs` counts the syncs made.
    pub(super) fn start(
        wal: PathBuf,
        failed: Arc<AtomicBool>,
        syncs: Arc<AtomicU64>,
        timings: Arc<WriteTimings>,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel::<Vec<Completion>>();
        // Opened now, while descriptors are to be had; if it cannot be, the first sync tries.
        let mut wal = Wal::new(wal);
        if let Err(e) = wal.live() {
            tracing::warn!(error = %e, "the WAL could not be opened for syncing yet");
        }
        let thread = std::thread::Builder::new()
            .name("d1-sqlite-sync".into())
            .spawn(move || sync_loop(&mut wal, &receiver, &failed, &syncs, &timings))?;
        Ok(Self {
            sender: Some(sender),
            thread: Some(thread),
        })
    }

    /// Hands over a committed batch. If the sync thread is gone, nobody can say whether the
    /// batch is durable.
    pub(super) fn submit(&self, completions: Vec<Completion>) {
        if let Some(sender) = &self.sender {
            if let Err(mpsc::SendError(completions)) = sender.send(completions) {
                tracing::error!("the WAL sync thread stopped; a committed batch is not synced");
                finish_all(completions, &Outcome::Unknown);
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

/// The WAL file, kept open.
struct Wal {
    path: PathBuf,
    file: Option<File>,
}

impl Wal {
    fn new(path: PathBuf) -> Self {
        Self { path, file: None }
    }

    /// The open file that the path names now, opened again only if it is another one.
    fn live(&mut self) -> std::io::Result<&File> {
        let named = std::fs::metadata(&self.path)?;
        let same = |file: &File| {
            file.metadata()
                .is_ok_and(|m| m.dev() == named.dev() && m.ino() == named.ino())
        };
        if !self.file.as_ref().is_some_and(same) {
            self.file = None;
            self.file = Some(File::open(&self.path)?);
            tracing::debug!(path = %self.path.display(), "WAL opened for syncing");
        }
        self.file
            .as_ref()
            .ok_or_else(|| std::io::Error::other("the WAL is not open"))
    }
}

/// Once a sync has failed, no later one is tried, and every batch after it hears
/// [`Outcome::Unknown`]: it was committed, but after a failed `fdatasync` the kernel may have
/// dropped the dirty pages and cleared the error, so a later success would not prove that the
/// WAL holds what it was given; only a restart, which reads the WAL back, does. The writer
/// sees the flag too and refuses every write it has not begun.
fn sync_loop(
    wal: &mut Wal,
    receiver: &Receiver<Vec<Completion>>,
    failed: &AtomicBool,
    syncs: &AtomicU64,
    timings: &WriteTimings,
) {
    while let Ok(mut pending) = receiver.recv() {
        while let Ok(more) = receiver.try_recv() {
            pending.extend(more);
        }
        let outcome = if failed.load(Ordering::Acquire) {
            Outcome::Unknown
        } else if let Err(e) = sync(wal, syncs, timings) {
            failed.store(true, Ordering::Release);
            tracing::error!(error = %e, "syncing the WAL failed; committed writes are answered as of unknown outcome, later writes are refused and /readyz answers 503 until a restart");
            Outcome::Unknown
        } else {
            Outcome::Durable
        };
        finish_all(pending, &outcome);
    }
}

fn sync(wal: &mut Wal, syncs: &AtomicU64, timings: &WriteTimings) -> std::io::Result<()> {
    let file = wal.live()?;
    syncs.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let synced = file.sync_data();
    timings.wal_sync.record(started.elapsed());
    synced
}

/// The path of the WAL of the database at `path`.
pub(super) fn wal_path(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}-wal", path.display()))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// [`sync_loop`] on a WAL at `path`, for the writer's tests.
    pub(in crate::sqlite) fn sync_loop_on(
        path: &Path,
        receiver: &Receiver<Vec<Completion>>,
        failed: &AtomicBool,
        syncs: &AtomicU64,
    ) {
        sync_loop(
            &mut Wal::new(path.to_path_buf()),
            receiver,
            failed,
            syncs,
            &WriteTimings::default(),
        );
    }

    fn inode(file: &File) -> u64 {
        file.metadata().unwrap().ino()
    }

    #[test]
    fn the_kept_wal_is_the_file_the_path_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db-wal");
        std::fs::write(&path, b"frames").unwrap();
        let mut wal = Wal::new(path.clone());
        let first = inode(wal.live().unwrap());

        // Cut in place, as a TRUNCATE checkpoint does: the same file stays.
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        assert_eq!(inode(wal.live().unwrap()), first);

        // Replaced by another file: that one is opened.
        let other = dir.path().join("other");
        std::fs::write(&other, b"new frames").unwrap();
        std::fs::rename(&other, &path).unwrap();
        let now = inode(wal.live().unwrap());
        assert_ne!(now, first);
        assert_eq!(now, std::fs::metadata(&path).unwrap().ino());

        // Gone: there is nothing to sync that a restart would read.
        std::fs::remove_file(&path).unwrap();
        assert!(wal.live().is_err());
    }
}
