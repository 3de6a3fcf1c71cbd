//! The database file's own descriptor, through which the checkpoint thread syncs what its
//! checkpoints copied.
//!
//! A PASSIVE checkpoint syncs the database file only when it has copied the WAL's last
//! frame, and under a steady load it never has: the writer appends while it copies. The
//! copied pages then stayed dirty in the kernel's page cache until the writer's own copy of
//! the last frames before a WAL restart, whose sync flushed all of them on the writer's thread
//! while every request waited: 13-34 ms a restart, about three times a second at the peak
//! (docs/benchmarks.md, "The database file synced after every checkpoint").
//!
//! The descriptor stays open while any connection to the file is: on Linux, closing any
//! descriptor of a file drops every POSIX lock the process holds on it, SQLite's included.
//! So each owner of connections (the checkpointer, the read pool) keeps an [`Arc`] of it and
//! drops it after its connections.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

/// The database file, open for syncing.
pub(super) struct DbFile(File);

impl DbFile {
    /// Opens the database file at `path`, which must exist.
    pub(super) fn open(path: &Path) -> std::io::Result<Arc<Self>> {
        File::open(path).map(|file| Arc::new(Self(file)))
    }

    /// Makes every page written to the file so far durable (`fdatasync`).
    pub(super) fn sync(&self) -> std::io::Result<()> {
        self.0.sync_data()
    }
}
