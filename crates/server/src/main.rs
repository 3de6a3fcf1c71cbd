//! The `d1-registry` binary.

fn main() -> std::process::ExitCode {
    d1_registry::cli::main()
}
