//! Group commit on PostgreSQL: requests of one kind that arrive together are written (or
//! read) by one statement, so that PostgreSQL's cost per statement and per transaction (a
//! round trip, a plan's locks, a commit record, a WAL flush) is paid once per batch, not once
//! per request. New registrations ([`super::batch`]), new cards ([`super::card_batch`]) and
//! the reads of those cards' consumers ([`super::consumer_reads`]) go this way.
//!
//! A dispatcher takes a pooled connection first and only then drains what has queued, so the
//! batches grow exactly when the database is the bottleneck. A job that is not done (a
//! conflict, a failed batch, no connection) gets no answer or "not written", and its caller
//! goes the ordinary way, one transaction of the shared use case for its request, which
//! gives the exact answer.

use std::future::Future;
use std::sync::Arc;

use deadpool_postgres::{Object, Pool};
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::error::pg;

/// The most jobs one statement writes.
pub(super) const MAX_BATCH: usize = 64;

/// Queued jobs, beyond which a caller does not queue its job and goes the ordinary way, whose
/// wait for a pooled connection is bounded (then 503 `OVERLOADED`).
const QUEUE: usize = 4096;

/// Batches written at once. Fewer, larger batches cost the database less than many small
/// ones; a few in flight keep the commits' waits for the WAL flush overlapping.
const WRITERS: usize = 2;

/// A queued job: its payload and where its answer `A` goes (for a write, whether it was
/// written). A job dropped unanswered reads as not done.
pub(super) struct Job<T, A = bool> {
    pub(super) payload: T,
    answer: oneshot::Sender<A>,
}

impl<T, A> Job<T, A> {
    /// A job of `payload` and the receiver of its answer.
    pub(super) fn new(payload: T) -> (Self, oneshot::Receiver<A>) {
        let (answer, receiver) = oneshot::channel();
        (Self { payload, answer }, receiver)
    }

    /// Answers the caller.
    pub(super) fn answer(self, answer: A) {
        let _ = self.answer.send(answer);
    }

    /// Whether the caller has stopped waiting (answered 503 `TIMEOUT`, say): such a job is
    /// not done.
    pub(super) fn gone(&self) -> bool {
        self.answer.is_closed()
    }
}

/// The queue of one kind of job and its dispatcher.
pub(super) struct Group<T, A = bool> {
    queue: mpsc::Sender<Job<T, A>>,
}

impl<T: Send + 'static, A: Send + 'static> Group<T, A> {
    /// Starts the dispatcher on the runtime the store was opened on; `write` writes one batch
    /// on a pooled connection and answers every job of it.
    pub(super) fn start<W, F>(pool: Pool, write: W) -> Self
    where
        W: Fn(Object, Vec<Job<T, A>>) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let (queue, jobs) = mpsc::channel(QUEUE);
        tokio::spawn(dispatch(pool, jobs, write));
        Self { queue }
    }

    /// Queues `payload` and waits for its batch's answer; `None` if it gave none, or if the
    /// queue is full.
    pub(super) async fn submit(&self, payload: T) -> Option<A> {
        let (job, answer) = Job::new(payload);
        self.queue.try_send(job).ok()?;
        answer.await.ok()
    }
}

async fn dispatch<T, A, W, F>(pool: Pool, mut jobs: mpsc::Receiver<Job<T, A>>, write: W)
where
    T: Send + 'static,
    A: Send + 'static,
    W: Fn(Object, Vec<Job<T, A>>) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let writers = Arc::new(Semaphore::new(WRITERS));
    while let Some(first) = jobs.recv().await {
        let Ok(writer) = Arc::clone(&writers).acquire_owned().await else {
            return;
        };
        let Ok(client) = pool.get().await else {
            // No connection: unanswered, the caller's own transaction reports the failure.
            drop(first);
            continue;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let written = write(client, batch);
        tokio::spawn(async move {
            written.await;
            drop(writer);
        });
    }
}

/// The jobs of a batch that a statement can write together: the first of any that `clash`
/// (the same key). The others are dropped unanswered, "not written", since a statement writes
/// each key once and the join of its new rows back to the input must pair each row with one
/// job; so are jobs whose caller has gone.
pub(super) fn distinct<T, A>(
    batch: Vec<Job<T, A>>,
    clash: impl Fn(&T, &T) -> bool,
) -> Vec<Job<T, A>> {
    let mut unique: Vec<Job<T, A>> = Vec::with_capacity(batch.len());
    for job in batch {
        if !job.gone() && !unique.iter().any(|j| clash(&j.payload, &job.payload)) {
            unique.push(job);
        }
    }
    unique
}

/// Runs a batch statement on `client`, prepared once per connection.
pub(super) async fn query(
    client: &Object,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> crate::StoreResult<Vec<tokio_postgres::Row>> {
    let statement = client.prepare_cached(sql).await.map_err(pg)?;
    client.query(&statement, params).await.map_err(pg)
}

/// Answers each job of a batch written by a statement whose rows carry, first, the operation
/// id of each job written: written if its id (`id`) is among them. A failed statement answers
/// "not written" to every job, and each is tried alone.
pub(super) fn answer_by_operation<T>(
    jobs: Vec<Job<T>>,
    written: crate::StoreResult<Vec<tokio_postgres::Row>>,
    id: impl Fn(&T) -> uuid::Uuid,
    kind: &'static str,
) {
    let done: std::collections::HashSet<uuid::Uuid> = match written {
        Ok(rows) => rows
            .iter()
            .filter_map(|r| r.try_get::<_, uuid::Uuid>(0).ok())
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, batch = kind, "a batch failed; its requests run alone");
            std::collections::HashSet::new()
        }
    };
    for job in jobs {
        let written = done.contains(&id(&job.payload));
        job.answer(written);
    }
}
