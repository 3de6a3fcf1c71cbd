//! Compiles the PostgreSQL copy of the store suite (and the store's own PostgreSQL tests) only
//! when a database is given for them, so that a machine without PostgreSQL runs the SQLite
//! suite and is told the other was skipped.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(pg_suite)");
    println!("cargo::rerun-if-env-changed=D1_TEST_DATABASE_URL");
    if std::env::var_os("D1_TEST_DATABASE_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=pg_suite");
    }
}
