//! Schema migrations for PostgreSQL, applied under an advisory lock so that nodes starting
//! together migrate one at a time; the others find the work done.

use deadpool_postgres::Object;

/// The migrations, in order; the version is the position, from 1.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_init.sql"),
    include_str!("../../migrations/postgres/0002_click_to_pay.sql"),
    include_str!("../../migrations/postgres/0003_trail_without_foreign_key.sql"),
    include_str!("../../migrations/postgres/0004_card_life_cycle.sql"),
    include_str!("../../migrations/postgres/0005_card_notifications.sql"),
    include_str!("../../migrations/postgres/0006_auto_renewal.sql"),
    include_str!("../../migrations/postgres/0007_issuer_client_certs.sql"),
    include_str!("../../migrations/postgres/0008_aggregators.sql"),
    include_str!("../../migrations/postgres/0009_operator_portal.sql"),
    include_str!("../../migrations/postgres/0010_notifications_fillfactor.sql"),
];

/// The advisory lock key: "d1-registry" in ASCII, so it does not clash with other services
/// sharing the database.
const LOCK: i64 = 0x6431_7265_6769_7374;

/// Brings the schema up to date.
///
/// # Errors
/// If a migration fails; it is rolled back whole and the lock released.
pub(super) async fn run(client: &mut Object) -> anyhow::Result<()> {
    // "relation already exists, skipping" and the like are not news worth a log line.
    client
        .batch_execute("SET client_min_messages = warning")
        .await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK])
        .await?;
    let outcome = apply(client).await;
    // The lock also goes with the session if the connection drops first.
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK])
        .await?;
    client.batch_execute("RESET client_min_messages").await?;
    outcome
}

async fn apply(client: &mut Object) -> anyhow::Result<()> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    INTEGER PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await?;
    let current: i32 = client
        .query_one(
            "SELECT COALESCE(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await?
        .try_get(0)?;
    let known = i32::try_from(MIGRATIONS.len())?;
    anyhow::ensure!(
        current <= known,
        "the database schema (version {current}) is newer than this binary (version {known})"
    );
    for (version, sql) in (1..).zip(MIGRATIONS).skip(usize::try_from(current)?) {
        let t = client.transaction().await?;
        t.batch_execute(sql).await?;
        t.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&version],
        )
        .await?;
        t.commit().await?;
        tracing::info!(version, "PostgreSQL migration applied");
    }
    Ok(())
}
