//! The command line: `loadgen produce|consume|e2e|sweep|compare [OPTIONS]`.
//!
//! Exit codes: 0 when every record succeeded, 1 when any record failed or
//! an error was counted, 2 when the run could not start or finish (bad
//! options, no broker, output files not written).

use std::ffi::OsString;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::compare::CompareArgs;
use crate::report;
use crate::sweep::SweepArgs;
use crate::{Config, Error, Workload};

#[derive(Parser)]
#[command(
    name = "loadgen",
    version,
    about = "Open-loop load generator for Kafka-compatible brokers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Produce records: publish latency and producer throughput.
    Produce(Config),
    /// Consume records: fetch throughput.
    Consume(Config),
    /// Produce and consume together: publish and end-to-end latency.
    E2e(Config),
    /// Find the highest rate whose p99 latency stays within a bound.
    Sweep(SweepArgs),
    /// Run one workload alternately against two brokers and print ratios.
    Compare(CompareArgs),
}

/// Runs the command line `args` (program name first); returns the exit
/// code. Setting `stop` ends the run early, as Ctrl-C does (the binary
/// sets it on SIGINT and SIGTERM).
pub fn main_with_args<I, T>(args: I, stop: Arc<AtomicBool>) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let outcome = match cli.command {
        Command::Produce(c) => single(c, Workload::Produce, stop),
        Command::Consume(c) => single(c, Workload::Consume, stop),
        Command::E2e(c) => single(c, Workload::E2e, stop),
        Command::Sweep(mut s) => {
            s.config.stop = Some(stop);
            crate::sweep::sweep(&s).map(|_| ())
        }
        Command::Compare(mut c) => {
            c.config.stop = Some(stop);
            crate::compare::compare(&c).and_then(|r| r.check())
        }
    };
    match outcome {
        Ok(()) => 0,
        Err(e @ Error::RecordsFailed(..)) => {
            eprintln!("loadgen: {e}");
            1
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            2
        }
    }
}

fn single(mut cfg: Config, workload: Workload, stop: Arc<AtomicBool>) -> Result<(), Error> {
    cfg.workload = workload;
    cfg.stop = Some(stop);
    let summary = crate::run(&cfg)?;
    print!("{}", report::render_text(&summary));
    report::write_outputs(&cfg, &summary)?;
    summary.check()
}
