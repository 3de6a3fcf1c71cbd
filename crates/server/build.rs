//! Compiles the PostgreSQL copy of the API suite only when a database is given for it, so
//! that a machine without PostgreSQL runs the plain suite and is told the other was skipped.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(pg_suite)");
    println!("cargo::rerun-if-env-changed=D1_TEST_DATABASE_URL");
    if std::env::var_os("D1_TEST_DATABASE_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=pg_suite");
    }
}
