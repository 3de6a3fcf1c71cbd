//! The writer's durability, poisoning and back-pressure, on a real file.

use super::*;
use crate::sqlite::db_file::DbFile;

fn completion(heard: &Arc<Mutex<Option<Outcome>>>) -> Completion {
    let heard = Arc::clone(heard);
    Completion {
        poisoned: false,
        finish: Box::new(move |outcome| {
            *heard.lock().unwrap() = Some(outcome);
        }),
    }
}

/// What one batch of one completion hears from a sync loop over `wal`.
fn heard_from_sync_loop(wal: &std::path::Path, failed: &AtomicBool) -> Option<Outcome> {
    let (sender, receiver) = mpsc::channel();
    let heard = Arc::new(Mutex::new(None));
    sender.send(vec![completion(&heard)]).unwrap();
    drop(sender);
    let syncs = AtomicU64::new(0);
    super::super::sync::tests::sync_loop_on(wal, &receiver, failed, &syncs);
    let outcome = heard.lock().unwrap().take();
    outcome
}

#[test]
fn a_failed_sync_answers_unknown_for_good_never_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("db-wal");
    std::fs::write(&wal, b"frames").unwrap();
    let failed = AtomicBool::new(false);
    assert!(matches!(
        heard_from_sync_loop(&wal, &failed),
        Some(Outcome::Durable)
    ));
    // fdatasync on a character device fails (EINVAL), as it does on a disk error.
    let null = std::path::Path::new("/dev/null");
    assert!(matches!(
        heard_from_sync_loop(null, &failed),
        Some(Outcome::Unknown)
    ));
    assert!(failed.load(Ordering::Acquire));
    // The real WAL would sync now, but nothing proves the earlier batch reached the disk.
    assert!(matches!(
        heard_from_sync_loop(&wal, &failed),
        Some(Outcome::Unknown)
    ));
}

#[test]
fn a_wal_that_cannot_be_opened_after_a_commit_is_an_unknown_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let failed = AtomicBool::new(false);
    let missing = dir.path().join("missing-wal");
    assert!(matches!(
        heard_from_sync_loop(&missing, &failed),
        Some(Outcome::Unknown)
    ));
    assert!(failed.load(Ordering::Acquire));
}

/// A writer on `path` with one table `t (n)`, syncing `wal`.
fn syncing_writer(path: &std::path::Path, wal: &str) -> Writer {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (n INTEGER)",
    )
    .unwrap();
    let db = DbFile::open(path).unwrap();
    let checkpointer = Checkpointer::start(path.to_path_buf(), db, Arc::default()).unwrap();
    Writer::start(conn, Some(wal.into()), checkpointer, Arc::default()).unwrap()
}

#[tokio::test]
async fn after_a_failed_sync_later_writes_are_not_made_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    // fdatasync on a character device fails (EINVAL), as it does on a disk error.
    let writer = syncing_writer(&path, "/dev/null");

    // The first batch is committed before its sync fails: its outcome is unknown.
    let first = writer.write(false, insert(1)).await;
    assert!(
        matches!(first, Err(StoreError::OutcomeUnknown)),
        "{first:?}"
    );
    assert!(writer.sync_failed());
    let second = writer.write(false, insert(2)).await;
    assert!(
        matches!(&second, Err(StoreError::Other(e)) if e.to_string().contains("not committed")),
        "{second:?}"
    );
    writer.close();
    assert_eq!(stored(&path), vec![1]);
}

#[tokio::test]
async fn a_synced_write_is_durable_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let writer = syncing_writer(&path, &format!("{}-wal", path.display()));
    let idle = writer.activity();
    assert_eq!((idle.transactions, idle.syncs), (0, 0));
    writer.write(false, insert(1)).await.unwrap();
    let activity = writer.activity();
    assert_eq!((activity.transactions, activity.syncs), (1, 1));
    writer.close();
    assert_eq!(stored(&path), vec![1]);
}

/// A writer on a fresh file with one table `t (n)`, and the file's path.
fn writer_on_table(dir: &std::path::Path, queue: usize) -> (Writer, PathBuf) {
    let path = dir.join("db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (n INTEGER)",
    )
    .unwrap();
    let db = DbFile::open(&path).unwrap();
    let checkpointer = Checkpointer::start(path.clone(), db, Arc::default()).unwrap();
    let writer = Writer::start_with(conn, None, checkpointer, queue, Arc::default()).unwrap();
    (writer, path)
}

fn insert(n: i64) -> impl FnOnce(&Connection) -> StoreResult<()> + Send + 'static {
    move |conn: &Connection| {
        conn.execute("INSERT INTO t (n) VALUES (?1)", [n])
            .map(|_| ())
            .map_err(|e| StoreError::Other(e.into()))
    }
}

/// A write that inserts `n` once `gate` opens, and says on `started` that the writer runs it.
fn held(
    n: i64,
    started: mpsc::Sender<()>,
    gate: mpsc::Receiver<()>,
) -> impl FnOnce(&Connection) -> StoreResult<()> + Send + 'static {
    move |conn: &Connection| {
        started.send(()).unwrap();
        gate.recv().unwrap();
        insert(n)(conn)
    }
}

fn stored(path: &std::path::Path) -> Vec<i64> {
    Connection::open(path)
        .unwrap()
        .prepare("SELECT n FROM t ORDER BY n")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn a_full_queue_refuses_a_write_at_once_and_writes_nothing_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, path) = writer_on_table(dir.path(), 1);
    let (started, running) = mpsc::channel();
    let (open, gate) = mpsc::channel();
    let mut first = Box::pin(writer.write(false, held(1, started, gate)));
    assert!(futures_util::poll!(&mut first).is_pending());
    running.recv().unwrap();
    // The writer is busy with the first write; the second fills the queue of one.
    let mut second = Box::pin(writer.write(false, insert(2)));
    assert!(futures_util::poll!(&mut second).is_pending());
    let third = writer.write(false, insert(3)).await;
    assert!(matches!(third, Err(StoreError::Overloaded)), "{third:?}");
    open.send(()).unwrap();
    first.await.unwrap();
    second.await.unwrap();
    writer.close();
    assert_eq!(stored(&path), vec![1, 2]);
}

#[tokio::test]
async fn a_queued_write_whose_caller_has_gone_is_not_made() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, path) = writer_on_table(dir.path(), 8);
    let (started, running) = mpsc::channel();
    let (open, gate) = mpsc::channel();
    let mut first = Box::pin(writer.write(false, held(1, started, gate)));
    assert!(futures_util::poll!(&mut first).is_pending());
    running.recv().unwrap();
    let mut abandoned = Box::pin(writer.write(false, insert(2)));
    assert!(futures_util::poll!(&mut abandoned).is_pending());
    // The caller stops waiting (its request was answered 503 TIMEOUT, say).
    drop(abandoned);
    open.send(()).unwrap();
    first.await.unwrap();
    writer.write(false, insert(3)).await.unwrap();
    writer.close();
    assert_eq!(stored(&path), vec![1, 3]);
}
