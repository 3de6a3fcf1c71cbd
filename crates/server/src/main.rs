//! The `d1-registry` binary.

/// A request allocates and frees many small buffers (headers, JSON, sealed fields); mimalloc
/// serves those with less contention and overhead than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    d1_registry::cli::main()
}
