//! The writer's durability, poisoning and back-pressure, on a real file.

use super::*;

fn completion(outcome: &Arc<Mutex<Option<Result<(), String>>>>) -> Completion {
    let outcome = Arc::clone(outcome);
    Completion {
        poisoned: false,
        finish: Box::new(move |result| {
            *outcome.lock().unwrap() = Some(result);
        }),
    }
}

#[test]
fn after_a_failed_sync_no_later_write_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("db-wal");
    std::fs::write(&wal, b"frames").unwrap();
    let failed = AtomicBool::new(false);

    // A missing file fails the sync but loses nothing, so later syncs go on.
    assert!(sync(&dir.path().join("missing"), &failed).is_err());
    assert!(!failed.load(Ordering::Acquire));
    assert!(sync(&wal, &failed).is_ok());

    // fdatasync on a character device fails (EINVAL), as it does on a disk error.
    assert!(sync(std::path::Path::new("/dev/null"), &failed).is_err());
    assert!(failed.load(Ordering::Acquire));

    // The real WAL would sync now, but the batch is still refused.
    let (sender, receiver) = mpsc::channel();
    let outcome = Arc::new(Mutex::new(None));
    sender.send(vec![completion(&outcome)]).unwrap();
    drop(sender);
    sync_loop(&wal, &receiver, &failed);
    let outcome = outcome.lock().unwrap().take();
    assert!(matches!(outcome, Some(Err(e)) if e.contains("restarted")));
}

#[tokio::test]
async fn after_a_failed_sync_later_writes_are_not_made_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (n INTEGER)",
    )
    .unwrap();
    let checkpointer = Checkpointer::start(path.clone()).unwrap();
    // fdatasync on a character device fails (EINVAL), as it does on a disk error.
    let writer = Writer::start(conn, Some("/dev/null".into()), checkpointer).unwrap();
    let insert = |n: i64| {
        move |conn: &Connection| {
            conn.execute("INSERT INTO t (n) VALUES (?1)", [n])
                .map(|_| ())
                .map_err(|e| StoreError::Other(e.into()))
        }
    };

    // The first batch is committed before its sync fails; it cannot be taken back.
    assert!(writer.write(false, insert(1)).await.is_err());
    assert!(writer.sync_failed());
    assert!(writer.write(false, insert(2)).await.is_err());
    writer.close();
    let rows: Vec<i64> = Connection::open(&path)
        .unwrap()
        .prepare("SELECT n FROM t")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows, vec![1]);
}

/// A writer on a fresh file with one table `t (n)`, and the file's path.
fn writer_on_table(dir: &std::path::Path, queue: usize) -> (Writer, PathBuf) {
    let path = dir.join("db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (n INTEGER)",
    )
    .unwrap();
    let checkpointer = Checkpointer::start(path.clone()).unwrap();
    let writer = Writer::start_with(conn, None, checkpointer, queue).unwrap();
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
