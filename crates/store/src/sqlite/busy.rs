//! Waiting for a lock another connection holds, in short steps. SQLite's own busy timeout
//! sleeps 1, 2, 5, 10, 15, 20, 25… ms between its tries, so a writer kept out by a TRUNCATE
//! checkpoint for 3 ms comes back after 8, and one kept out for 30 ms after 53. These
//! handlers try again every [`STEP`], so a wait ends about when the lock is let go.

use std::time::Duration;

use rusqlite::Connection;

/// The sleep between two tries.
const STEP: Duration = Duration::from_micros(100);

/// The tries that take at least `wait`: each sleep lasts at least [`STEP`].
const fn tries(wait: Duration) -> i32 {
    (wait.as_micros() / STEP.as_micros()) as i32
}

fn wait_up_to<const TRIES: i32>(tried: i32) -> bool {
    if tried >= TRIES {
        return false;
    }
    std::thread::sleep(STEP);
    true
}

/// Waits up to 5 s: the writer's and the readers' patience, as the busy timeout was.
pub(super) fn wait_long(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_handler(Some(wait_up_to::<{ tries(Duration::from_secs(5)) }>))
}

/// Waits up to 100 ms: the TRUNCATE after a write that destroyed key material.
pub(super) fn wait_a_while(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_handler(Some(wait_up_to::<{ tries(Duration::from_millis(100)) }>))
}
