//! Running a use case as one transaction, again when it lost a race to another node.

use std::time::Duration;

use deadpool_postgres::{Pool, Transaction};
use futures_util::future::BoxFuture;
use tokio_postgres::error::SqlState;

use super::error::{pg, pool_error, Contended, PgError};
use super::pg::Pg;
use crate::vault::Vault;
use crate::{StoreError, StoreResult};

/// One use case: runs inside the transaction given, with its command and the time.
pub(crate) type Work<C, T> =
    for<'t> fn(&'t Pg<'t, Transaction<'t>>, &'t Vault, &'t C, i64) -> BoxFuture<'t, StoreResult<T>>;

/// How often a use case that keeps losing races is tried before it fails.
const ATTEMPTS: u32 = 8;

/// Whether a failed attempt lost a race and is worth running again.
fn lost_race(e: &StoreError) -> bool {
    let StoreError::Other(e) = e else {
        return false;
    };
    if e.downcast_ref::<Contended>().is_some() {
        return true;
    }
    e.downcast_ref::<PgError>()
        .and_then(|e| e.code.as_ref())
        .is_some_and(|code| {
            [
                SqlState::T_R_SERIALIZATION_FAILURE,
                SqlState::T_R_DEADLOCK_DETECTED,
                SqlState::UNIQUE_VIOLATION,
            ]
            .contains(code)
        })
}

/// A `COMMIT` that PostgreSQL refused (a serialization failure, a deferred check) was not
/// made; one whose answer never came (the connection dropped) may have been.
fn failed_commit(e: tokio_postgres::Error) -> StoreError {
    if e.as_db_error().is_some() {
        pg(e)
    } else {
        tracing::error!(error = %e, "the answer to a COMMIT was lost; its outcome is unknown");
        StoreError::OutcomeUnknown
    }
}

/// Runs `work` in a transaction and commits it; runs it again from the start, up to
/// [`ATTEMPTS`] times with a short jittered pause, when it lost a race.
pub(super) async fn run<C: Sync, T: Send>(
    pool: &Pool,
    vault: &Vault,
    ctx: &C,
    work: Work<C, T>,
    now: fn() -> i64,
) -> StoreResult<T> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut client = pool.get().await.map_err(pool_error)?;
        let outcome = async {
            let t = client.transaction().await.map_err(pg)?;
            let value = work(&Pg::new(&t), vault, ctx, now()).await?;
            t.commit().await.map_err(failed_commit)?;
            Ok(value)
        }
        .await;
        match outcome {
            Err(e) if attempt < ATTEMPTS && lost_race(&e) => {
                drop(client);
                let [jitter] = d1_crypto::random_bytes::<1>().unwrap_or([0]);
                let pause = u64::from(attempt) * 2 + u64::from(jitter % 8);
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            other => return other,
        }
    }
}
