//! The API integration suite again, on PostgreSQL: the same test files, each test on a fresh
//! schema of the database `D1_TEST_DATABASE_URL` names, plus the tests that need several
//! nodes on one database. Without that variable this suite is skipped and says so.

#[cfg(pg_suite)]
#[path = "api/abuse.rs"]
mod abuse;
#[cfg(pg_suite)]
#[path = "api/aggregators.rs"]
mod aggregators;
#[cfg(pg_suite)]
#[path = "api/bad_input.rs"]
mod bad_input;
#[cfg(pg_suite)]
#[path = "api/bodies.rs"]
mod bodies;
#[cfg(pg_suite)]
#[path = "api/card_encrypt.rs"]
mod card_encrypt;
#[cfg(pg_suite)]
#[path = "api/cards.rs"]
mod cards;
#[cfg(pg_suite)]
#[path = "api/clicktopay.rs"]
mod clicktopay;
#[cfg(pg_suite)]
#[path = "api/consumers.rs"]
mod consumers;
#[cfg(pg_suite)]
#[path = "api/data_dir.rs"]
mod data_dir;
#[cfg(pg_suite)]
#[path = "api/exhaustion.rs"]
mod exhaustion;
#[cfg(pg_suite)]
#[path = "api/fake_backend.rs"]
mod fake_backend;
#[cfg(pg_suite)]
#[path = "api/harness.rs"]
mod harness;
#[cfg(pg_suite)]
#[path = "api/issuer_sim.rs"]
mod issuer_sim;
#[cfg(pg_suite)]
#[path = "api/lifecycle.rs"]
mod lifecycle;
#[cfg(pg_suite)]
#[path = "api/mtls.rs"]
mod mtls;
#[cfg(pg_suite)]
#[path = "api/multinode.rs"]
mod multinode;
#[cfg(pg_suite)]
#[path = "api/multinode_lifecycle.rs"]
mod multinode_lifecycle;
#[cfg(pg_suite)]
#[path = "api/notifications.rs"]
mod notifications;
#[cfg(pg_suite)]
#[path = "api/operators.rs"]
mod operators;
#[cfg(pg_suite)]
#[path = "api/portal.rs"]
mod portal;
#[cfg(pg_suite)]
#[path = "api/privacy.rs"]
mod privacy;
#[cfg(pg_suite)]
#[path = "api/process.rs"]
mod process;
#[cfg(pg_suite)]
#[path = "api/restart.rs"]
mod restart;
#[cfg(pg_suite)]
#[path = "api/routing.rs"]
mod routing;
#[cfg(pg_suite)]
#[path = "api/token.rs"]
mod token;
#[cfg(pg_suite)]
#[path = "api/v1.rs"]
mod v1;
#[cfg(pg_suite)]
#[path = "api/v1_trail.rs"]
mod v1_trail;

#[cfg(not(pg_suite))]
#[test]
fn postgres_api_suite_skipped_because_d1_test_database_url_is_not_set() {
    eprintln!("PostgreSQL API suite skipped: D1_TEST_DATABASE_URL is not set");
}
