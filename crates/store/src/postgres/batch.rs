//! Group commit for new registrations. Registrations of unseen consumerIds arriving together
//! are written by one statement and one commit: PostgreSQL's cost per transaction (a round
//! trip, a commit record, a WAL flush) is then paid once per batch, not once per request.
//!
//! A dispatcher takes a pooled connection first and only then drains what has queued, so the
//! batches grow exactly when the database is the bottleneck. Each answer says whether the
//! consumer was created; anything else (an existing consumerId, a second registration of one
//! consumerId in the same batch, a failed batch) answers "not created", and the caller goes
//! the ordinary way, one transaction for its request.

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot};

use super::error::pg;
use crate::vault::FreshConsumer;
use crate::RegisterConsumer;

/// The most registrations one statement writes.
const MAX_BATCH: usize = 64;

/// Queued registrations, beyond which callers wait to queue theirs.
const QUEUE: usize = 4096;

/// Batches written at once. Fewer, larger batches cost the database less than many small
/// ones; a few in flight keep the commits' waits for the WAL flush overlapping.
const WRITERS: usize = 2;

struct Job {
    issuer_id: String,
    consumer_id: String,
    pi_source: &'static str,
    wrapped_key: Vec<u8>,
    pi: Option<Vec<u8>>,
    at: i64,
    operation_id: uuid::Uuid,
    correlation_id: Option<String>,
    user_id: Option<String>,
    aggregator_id: Option<String>,
    created: oneshot::Sender<bool>,
}

/// The queue of new registrations and its dispatcher.
pub(super) struct Registrations {
    queue: mpsc::Sender<Job>,
}

impl Registrations {
    /// Starts the dispatcher on the runtime the store was opened on.
    pub(super) fn start(pool: Pool) -> Self {
        let (queue, jobs) = mpsc::channel(QUEUE);
        tokio::spawn(dispatch(pool, jobs));
        Self { queue }
    }

    /// Creates the consumer if its consumerId was never seen, with its REGISTER fact; false
    /// when it did not (the caller then registers it in a transaction of its own).
    pub(super) async fn create(
        &self,
        cmd: &RegisterConsumer,
        fresh: &FreshConsumer,
        at: i64,
    ) -> bool {
        let (created, answer) = oneshot::channel();
        let job = Job {
            issuer_id: cmd.issuer_id.as_str().to_owned(),
            consumer_id: cmd.consumer_id.as_str().to_owned(),
            pi_source: if cmd.pi.is_some() { "STORED" } else { "ISSUER" },
            wrapped_key: fresh.wrapped_key.clone(),
            pi: fresh.sealed_pi.clone(),
            at,
            operation_id: uuid::Uuid::now_v7(),
            correlation_id: cmd
                .trail
                .correlation_id
                .as_ref()
                .map(|c| c.as_str().to_owned()),
            user_id: cmd.trail.user_id.as_ref().map(|u| u.as_str().to_owned()),
            aggregator_id: cmd
                .trail
                .aggregator_id
                .as_ref()
                .map(|a| a.as_str().to_owned()),
            created,
        };
        if self.queue.send(job).await.is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
    }
}

async fn dispatch(pool: Pool, mut jobs: mpsc::Receiver<Job>) {
    let writers = std::sync::Arc::new(tokio::sync::Semaphore::new(WRITERS));
    while let Some(first) = jobs.recv().await {
        let Ok(writer) = std::sync::Arc::clone(&writers).acquire_owned().await else {
            return;
        };
        let Ok(client) = pool.get().await else {
            // No connection: the caller's own transaction reports the failure.
            let _ = first.created.send(false);
            continue;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        tokio::spawn(async move {
            write(&client, batch).await;
            drop(writer);
        });
    }
}

const INSERT: &str = "WITH input AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bytea[],
                              $6::bigint[], $7::uuid[], $8::text[], $9::text[], $10::text[])
             AS t(issuer_id, consumer_id, pi_source, wrapped_key, pi, at, operation_id,
                  correlation_id, user_id, aggregator_id)
     ), new AS (
         INSERT INTO consumers (issuer_id, consumer_id, state, pi_source, wrapped_key, pi,
                                created_at, updated_at)
         SELECT issuer_id, consumer_id, 'ACTIVE', pi_source, wrapped_key, pi, at, at
         FROM input ORDER BY issuer_id, consumer_id
         ON CONFLICT (issuer_id, consumer_id) DO NOTHING
         RETURNING id, issuer_id, consumer_id
     )
     INSERT INTO operations (consumer_ref, operation_id, operation, status, start_time, end_time,
                             correlation_id, user_id, aggregator_id)
     SELECT new.id, input.operation_id, 'REGISTER', 'SUCCESSFUL', input.at, input.at,
            input.correlation_id, input.user_id, input.aggregator_id
     FROM new JOIN input USING (issuer_id, consumer_id)
     RETURNING operation_id";

/// Writes one batch and answers each of its jobs.
async fn write(client: &deadpool_postgres::Object, mut batch: Vec<Job>) {
    // A caller that has gone (answered 503 TIMEOUT, say) does not have its consumer created.
    batch.retain(|job| !job.created.is_closed());
    if batch.is_empty() {
        return;
    }
    // Rows in key order, so that two batches never wait on each other's keys in a cycle; one
    // job per consumerId, so that the join below pairs each new row with one job.
    batch.sort_by(|a, b| (&a.issuer_id, &a.consumer_id).cmp(&(&b.issuer_id, &b.consumer_id)));
    let (mut unique, mut repeated) = (Vec::with_capacity(batch.len()), Vec::new());
    for job in batch {
        let last = unique.last().map(|j: &Job| (&j.issuer_id, &j.consumer_id));
        if last == Some((&job.issuer_id, &job.consumer_id)) {
            repeated.push(job);
        } else {
            unique.push(job);
        }
    }
    for job in repeated {
        let _ = job.created.send(false);
    }
    let column = |f: fn(&Job) -> String| unique.iter().map(f).collect::<Vec<_>>();
    let issuers = column(|j| j.issuer_id.clone());
    let consumers = column(|j| j.consumer_id.clone());
    let sources = column(|j| j.pi_source.to_owned());
    let keys: Vec<&[u8]> = unique.iter().map(|j| j.wrapped_key.as_slice()).collect();
    let pis: Vec<Option<&[u8]>> = unique.iter().map(|j| j.pi.as_deref()).collect();
    let ats: Vec<i64> = unique.iter().map(|j| j.at).collect();
    let operations: Vec<uuid::Uuid> = unique.iter().map(|j| j.operation_id).collect();
    let correlations: Vec<Option<&str>> =
        unique.iter().map(|j| j.correlation_id.as_deref()).collect();
    let users: Vec<Option<&str>> = unique.iter().map(|j| j.user_id.as_deref()).collect();
    let aggregators: Vec<Option<&str>> =
        unique.iter().map(|j| j.aggregator_id.as_deref()).collect();
    let written = insert(
        client,
        &[
            &issuers,
            &consumers,
            &sources,
            &keys,
            &pis,
            &ats,
            &operations,
            &correlations,
            &users,
            &aggregators,
        ],
    )
    .await;
    let created: std::collections::HashSet<uuid::Uuid> = match written {
        Ok(rows) => rows
            .iter()
            .filter_map(|r| r.try_get::<_, uuid::Uuid>(0).ok())
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "a batch of registrations failed; each is tried alone");
            std::collections::HashSet::new()
        }
    };
    for job in unique {
        let _ = job.created.send(created.contains(&job.operation_id));
    }
}

async fn insert(
    client: &deadpool_postgres::Object,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> crate::StoreResult<Vec<tokio_postgres::Row>> {
    let statement = client.prepare_cached(INSERT).await.map_err(pg)?;
    client.query(&statement, params).await.map_err(pg)
}

#[cfg(all(test, pg_suite))]
mod tests {
    use super::*;

    fn job(consumer: &str) -> (Job, oneshot::Receiver<bool>) {
        let (created, answer) = oneshot::channel();
        let job = Job {
            issuer_id: "BANK000001".to_owned(),
            consumer_id: consumer.to_owned(),
            pi_source: "ISSUER",
            wrapped_key: vec![1, 2, 3],
            pi: None,
            at: 1,
            operation_id: uuid::Uuid::now_v7(),
            correlation_id: None,
            user_id: None,
            aggregator_id: None,
            created,
        };
        (job, answer)
    }

    #[tokio::test]
    async fn a_registration_whose_caller_has_gone_is_not_written() {
        let base = std::env::var("D1_TEST_DATABASE_URL").unwrap();
        let url = d1_scratch::fresh(&base, "d1t_batch_").await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let options = crate::StoreOptions {
            database_url: url.clone(),
            kek_file: dir.path().join("kek.key"),
            durability: crate::Durability::Full,
            read_connections: 1,
            pool: super::super::PoolOptions::default(),
        };
        let store = super::super::Postgres::open(&url, &options).await.unwrap();
        let client = store.pool.get().await.unwrap();
        let (gone, answer) = job("gone");
        drop(answer);
        let (waiting, answer) = job("waiting");
        write(&client, vec![gone, waiting]).await;
        assert!(answer.await.unwrap());
        let ids: Vec<String> = client
            .query("SELECT consumer_id FROM consumers", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get(0).unwrap())
            .collect();
        assert_eq!(ids, vec!["waiting".to_owned()]);
    }
}
