//! The browser suite: the operator portal driven in a real headless Chromium (Debian's
//! `chromium` and `chromium-driver`) through WebDriver, on a fresh SQLite database per test.
//! Without chromium or chromedriver on the machine, every test says it was skipped and passes.
//! `browser_postgres` runs the same files on PostgreSQL.

#[path = "browser/case.rs"]
mod case;
#[path = "browser/driver.rs"]
mod driver;
// The API suite's harness, of which these tests use a part.
#[allow(dead_code)]
#[path = "api/harness.rs"]
mod harness;
#[path = "browser/portal.rs"]
mod portal;
