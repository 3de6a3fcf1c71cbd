//! Logging. Human-readable lines by default, JSON with `--log-format json`. Every request
//! runs in a span carrying its request id, its correlation id and the matched route (never
//! the raw path). Personal data, tokens and keys are never given to a log macro.
//!
//! Lines are handed to a background thread that writes them in batches, so a request never
//! waits on a write to standard error. Nothing is dropped: when the queue is full, logging
//! waits.

use std::io::{BufWriter, IsTerminal};

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber, writing to standard error. Keep the guard until exit: it
/// flushes what is queued when dropped.
pub fn init(format: LogFormat, level: &str) -> WorkerGuard {
    let ansi = std::io::stderr().is_terminal();
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .finish(BufWriter::new(std::io::stderr()));
    init_with_writer(format, level, writer, ansi);
    quiet_panics();
    guard
}

/// Replaces Rust's default panic message, which prints the panic's payload (it may hold a
/// value being handled) to standard error, with one log line naming only where it happened.
/// A panicking task is then restarted by its supervisor, or answered 500 by its route.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map_or_else(String::new, |l| format!("{}:{}", l.file(), l.line()));
        tracing::error!(location = %location, "panic (its message is not logged)");
    }));
}

/// Installs the global subscriber with a given writer (tests capture logs this way). A
/// second call is ignored.
pub fn init_with_writer<W>(format: LogFormat, level: &str, writer: W, ansi: bool)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false)
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}
