//! The `loadgen` command; see loadgen/README.md.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(loadgen::cli::main_with_args(std::env::args_os()))
}
