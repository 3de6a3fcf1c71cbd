//! The shared store suite again, on PostgreSQL: each test gets a fresh schema in the
//! database `D1_TEST_DATABASE_URL` names. Without it, this suite is skipped and says so.

#[cfg(pg_suite)]
#[path = "store.rs"]
mod suite;

#[cfg(not(pg_suite))]
#[test]
fn postgres_store_suite_skipped_because_d1_test_database_url_is_not_set() {
    eprintln!("PostgreSQL store suite skipped: D1_TEST_DATABASE_URL is not set");
}
