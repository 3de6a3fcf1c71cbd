//! Grouped reads of consumers, for the group commit of new cards ([`super::card_batch`]):
//! the consumers of cards arriving together are read by one statement ([`super::group`]),
//! as PostgreSQL's cost is in the statements, and a card read its consumer alone in one of
//! its own.

use d1_domain::{ConsumerId, IssuerId};
use deadpool_postgres::{Object, Pool};

use super::group::{distinct, Group, Job};
use super::Pg;
use crate::db::{params, Db, Sql};
use crate::rows::ConsumerRow;
use crate::rules::consumers;

/// The consumers of a JSON array of `[issuerId, consumerId]` pairs, as
/// [`crate::sql::consumers::FIND`] reads one, with the pair after its columns.
const FIND_MANY: Sql = Sql {
    table: "consumers",
    text: "SELECT c.id, c.state, c.pi_source, c.wrapped_key, c.pi, c.created_at, c.updated_at,
                  c.generation, c.issuer_id, c.consumer_id
           FROM consumers c
           JOIN (SELECT e ->> 0 AS issuer_id, e ->> 1 AS consumer_id
                 FROM json_array_elements(CAST(CAST($1 AS TEXT) AS JSON)) AS e) AS wanted
             ON c.issuer_id = wanted.issuer_id AND c.consumer_id = wanted.consumer_id",
};

/// Who is read: an issuer's consumerId.
type Wanted = (String, String);

/// The queue of consumers to read and its dispatcher.
pub(super) struct ConsumerReads {
    group: Group<Wanted, Option<ConsumerRow>>,
}

impl ConsumerReads {
    /// Starts the dispatcher on the runtime the store was opened on.
    pub(super) fn start(pool: Pool) -> Self {
        Self {
            group: Group::start(
                pool,
                |client, batch| async move { read(&client, batch).await },
            ),
        }
    }

    /// The consumer, if registered; `None` if the read failed, and the caller goes the
    /// ordinary way.
    pub(super) async fn find(
        &self,
        issuer: &IssuerId,
        consumer: &ConsumerId,
    ) -> Option<Option<ConsumerRow>> {
        let wanted = (issuer.as_str().to_owned(), consumer.as_str().to_owned());
        self.group.submit(wanted).await
    }
}

/// Reads one batch and answers each of its jobs; a failed read answers none.
async fn read(client: &Object, batch: Vec<Job<Wanted, Option<ConsumerRow>>>) {
    // A repeated consumer goes unanswered: it is read the ordinary way.
    let jobs = distinct(batch, |a, b| a == b);
    if jobs.is_empty() {
        return;
    }
    let wanted: Vec<&Wanted> = jobs.iter().map(|j| &j.payload).collect();
    let Ok(json) = serde_json::to_string(&wanted) else {
        return;
    };
    let rows = match Pg::new(client).query(&FIND_MANY, params![&json]).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "a grouped read of consumers failed; each is read alone");
            return;
        }
    };
    let mut found = std::collections::HashMap::with_capacity(rows.len());
    for mut row in rows {
        let decoded = (|| {
            let wanted = (row.text(8)?, row.text(9)?);
            Ok::<_, crate::StoreError>((wanted, consumers::consumer_row(row)?))
        })();
        // A row that does not decode leaves the whole batch unanswered, to be read the
        // ordinary way, which reports it.
        let Ok((wanted, consumer)) = decoded else {
            return;
        };
        found.insert(wanted, consumer);
    }
    for job in jobs {
        let consumer = found.remove(&job.payload);
        job.answer(consumer);
    }
}
