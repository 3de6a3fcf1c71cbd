//! The browser suite again, on PostgreSQL: the same test files, each test on a fresh schema of
//! the database `D1_TEST_DATABASE_URL` names. Without that variable this suite is skipped and
//! says so; without chromium or chromedriver each of its tests does.

#[cfg(pg_suite)]
#[path = "browser/case.rs"]
mod case;
#[cfg(pg_suite)]
#[path = "browser/driver.rs"]
mod driver;
#[cfg(pg_suite)]
#[allow(dead_code)]
#[path = "api/harness.rs"]
mod harness;
#[cfg(pg_suite)]
#[path = "browser/portal.rs"]
mod portal;

#[cfg(not(pg_suite))]
#[test]
fn postgres_browser_suite_skipped_because_d1_test_database_url_is_not_set() {
    eprintln!("PostgreSQL browser suite skipped: D1_TEST_DATABASE_URL is not set");
}
