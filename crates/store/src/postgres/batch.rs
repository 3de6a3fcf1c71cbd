//! Group commit for new registrations ([`super::group`]): registrations of unseen
//! consumerIds arriving together are written by one statement and one commit. Each answer
//! says whether the consumer was created; anything else (an existing consumerId, a second
//! registration of one consumerId in the same batch, a failed batch) answers "not created",
//! and the caller goes the ordinary way, one transaction for its request.

use deadpool_postgres::Object;

use super::group::{answer_by_operation, distinct, query, Group, Job};
use crate::vault::FreshConsumer;
use crate::RegisterConsumer;

/// A new registration, as the batch statement takes it.
struct New {
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
}

/// The queue of new registrations and its dispatcher.
pub(super) struct Registrations {
    group: Group<New>,
}

impl Registrations {
    /// Starts the dispatcher on the runtime the store was opened on.
    pub(super) fn start(pool: deadpool_postgres::Pool) -> Self {
        Self {
            group: Group::start(
                pool,
                |client, batch| async move { write(&client, batch).await },
            ),
        }
    }

    /// Creates the consumer if its consumerId was never seen, with its REGISTER fact; false
    /// when it did not (the caller then registers it in a transaction of its own).
    pub(super) async fn create(
        &self,
        cmd: &RegisterConsumer,
        fresh: &FreshConsumer,
        at: i64,
    ) -> bool {
        let trail = &cmd.trail;
        self.group
            .submit(New {
                issuer_id: cmd.issuer_id.as_str().to_owned(),
                consumer_id: cmd.consumer_id.as_str().to_owned(),
                pi_source: if cmd.pi.is_some() { "STORED" } else { "ISSUER" },
                wrapped_key: fresh.wrapped_key.clone(),
                pi: fresh.sealed_pi.clone(),
                at,
                operation_id: crate::rules::trail::operation_uuid(),
                correlation_id: trail.correlation_id.as_ref().map(|c| c.as_str().to_owned()),
                user_id: trail.user_id.as_ref().map(|u| u.as_str().to_owned()),
                aggregator_id: trail.aggregator_id.as_ref().map(|a| a.as_str().to_owned()),
            })
            .await
            .unwrap_or(false)
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
async fn write(client: &Object, mut batch: Vec<Job<New>>) {
    // Rows in key order, so that two batches never wait on each other's keys in a cycle.
    batch.sort_by(|a, b| {
        let key = |j: &Job<New>| (j.payload.issuer_id.clone(), j.payload.consumer_id.clone());
        key(a).cmp(&key(b))
    });
    let unique = distinct(batch, |a, b| {
        (&a.issuer_id, &a.consumer_id) == (&b.issuer_id, &b.consumer_id)
    });
    if unique.is_empty() {
        return;
    }
    let jobs: Vec<&New> = unique.iter().map(|j| &j.payload).collect();
    let column = |f: fn(&New) -> String| jobs.iter().map(|j| f(j)).collect::<Vec<_>>();
    let issuers = column(|j| j.issuer_id.clone());
    let consumers = column(|j| j.consumer_id.clone());
    let sources = column(|j| j.pi_source.to_owned());
    let keys: Vec<&[u8]> = jobs.iter().map(|j| j.wrapped_key.as_slice()).collect();
    let pis: Vec<Option<&[u8]>> = jobs.iter().map(|j| j.pi.as_deref()).collect();
    let ats: Vec<i64> = jobs.iter().map(|j| j.at).collect();
    let operations: Vec<uuid::Uuid> = jobs.iter().map(|j| j.operation_id).collect();
    let correlations: Vec<Option<&str>> =
        jobs.iter().map(|j| j.correlation_id.as_deref()).collect();
    let users: Vec<Option<&str>> = jobs.iter().map(|j| j.user_id.as_deref()).collect();
    let aggregators: Vec<Option<&str>> = jobs.iter().map(|j| j.aggregator_id.as_deref()).collect();
    let written = query(
        client,
        INSERT,
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
    answer_by_operation(unique, written, |c| c.operation_id, "registrations");
}

#[cfg(all(test, pg_suite))]
mod tests {
    use super::*;

    fn job(consumer: &str) -> (Job<New>, tokio::sync::oneshot::Receiver<bool>) {
        Job::new(New {
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
        })
    }

    #[tokio::test]
    async fn a_registration_whose_caller_has_gone_is_not_written() {
        let (store, _dir) = super::super::scratch("d1t_batch_").await;
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
