//! The `loadgen` command; see loadgen/README.md.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

fn main() -> std::process::ExitCode {
    // Ctrl-C (and SIGTERM) end the run early: it drains, then prints and
    // writes what ran.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
            eprintln!("loadgen: cannot handle signal {sig}: {e}");
        }
    }
    std::process::ExitCode::from(loadgen::cli::main_with_args(std::env::args_os(), stop))
}
