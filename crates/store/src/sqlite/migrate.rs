//! Embedded SQLite migrations, tracked in `PRAGMA user_version`.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_cards.sql"),
    include_str!("../../migrations/sqlite/0003_trail_index.sql"),
    include_str!("../../migrations/sqlite/0004_click_to_pay.sql"),
    include_str!("../../migrations/sqlite/0005_card_life_cycle.sql"),
    include_str!("../../migrations/sqlite/0006_card_notifications.sql"),
    include_str!("../../migrations/sqlite/0007_auto_renewal.sql"),
    include_str!("../../migrations/sqlite/0008_issuer_client_certs.sql"),
    include_str!("../../migrations/sqlite/0009_aggregators.sql"),
    include_str!("../../migrations/sqlite/0010_operator_portal.sql"),
];

/// Applies every migration the database has not seen, each in its own transaction. Safe when
/// several processes start at once: the version is read again under the write lock.
pub(super) fn run(conn: &Connection) -> rusqlite::Result<()> {
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let version = i64::try_from(index + 1).unwrap_or(i64::MAX);
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if current >= version {
            conn.execute_batch("COMMIT")?;
            continue;
        }
        match conn
            .execute_batch(sql)
            .and_then(|()| conn.execute_batch(&format!("PRAGMA user_version = {version}")))
        {
            Ok(()) => conn.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
    Ok(())
}
