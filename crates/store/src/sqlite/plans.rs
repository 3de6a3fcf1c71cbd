//! Query plans that a statement's cost depends on, checked on SQLite's own planner with the
//! real migrations: a statement that reads more than it needs still gives the right answer,
//! so only its plan shows the regression.

use rusqlite::Connection;

/// The plan SQLite chooses for `text`, one line per step; the parameters are bound to NULL,
/// as the plan does not depend on them.
fn plan(conn: &Connection, text: &str) -> String {
    let mut stmt = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {text}"))
        .expect("the statement prepares");
    let nulls = std::iter::repeat_n(rusqlite::types::Null, stmt.parameter_count());
    let steps = stmt
        .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
        .expect("the plan is read")
        .map(|step| step.expect("a plan step"))
        .collect::<Vec<_>>();
    steps.join("\n")
}

#[test]
fn the_notification_claim_walks_the_due_index_and_sorts_nothing() {
    let conn = Connection::open_in_memory().expect("an in-memory database");
    super::migrate::run(&conn).expect("the migrations apply");
    let claim = plan(&conn, crate::sql::notify::CLAIM.text);
    // Sorting would read every due item, however few the claim takes.
    assert!(claim.contains("USING INDEX notifications_due"), "{claim}");
    assert!(!claim.contains("TEMP B-TREE"), "{claim}");
}
