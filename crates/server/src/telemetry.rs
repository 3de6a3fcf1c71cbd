//! Logging. Human-readable lines by default, JSON with `--log-format json`. Every request
//! runs in a span carrying its request id, its correlation id and the matched route (never
//! the raw path). Personal data, tokens and keys are never given to a log macro.

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber, writing to standard error.
pub fn init(format: LogFormat, level: &str) {
    use std::io::IsTerminal;
    init_with_writer(
        format,
        level,
        std::io::stderr,
        std::io::stderr().is_terminal(),
    );
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
