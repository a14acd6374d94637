//! `loadgen sweep`: the highest rate whose p99 latency holds a bound, found
//! the way OpenMessaging Benchmark's rate controller does it, in short
//! trials: double the rate while the bound holds, then bisect between the
//! last rate that held and the first that did not.
//!
//! A trial holds when its p99 (publish latency from the intended send
//! time, or end-to-end latency with `--latency e2e`) is within the bound,
//! it reached 95% of the asked rate, and no record failed.

use crate::report::{self, Summary};
use crate::{Config, Error, Workload};

/// The share of the asked rate a trial must reach to hold.
const RATE_REACHED_MIN: f64 = 0.95;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LatencyKind {
    Publish,
    E2e,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SweepArgs {
    /// The workload of each trial (produce or e2e).
    #[arg(long, value_enum, default_value = "produce")]
    pub workload: Workload,
    /// The p99 bound, in milliseconds.
    #[arg(long)]
    pub p99_ms: f64,
    /// Which latency the bound applies to.
    #[arg(long, value_enum, default_value = "publish")]
    pub latency: LatencyKind,
    /// First rate tried, records/s.
    #[arg(long, default_value_t = 10_000)]
    pub start_rate: u64,
    /// Never try more than this, records/s.
    #[arg(long, default_value_t = 100_000_000)]
    pub max_rate: u64,
    /// Bisection steps after the doubling.
    #[arg(long, default_value_t = 6)]
    pub steps: u32,
    /// Each trial's --warmup and --duration apply.
    #[command(flatten)]
    pub config: Config,
}

/// One trial of a sweep.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Trial {
    pub rate: u64,
    pub msg_per_s: f64,
    pub p99_us: u64,
    pub failed_records: u64,
    pub held: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SweepResult {
    pub p99_bound_ms: f64,
    pub latency: LatencyKind,
    /// The highest rate that held (0 if none did).
    pub best_rate: u64,
    pub best_msg_per_s: f64,
    pub trials: Vec<Trial>,
}

/// Whether a trial's summary holds the bound.
pub fn holds(s: &Summary, rate: u64, p99_bound_us: u64, latency: LatencyKind) -> (bool, u64) {
    let p99 = match latency {
        LatencyKind::Publish => s.publish_latency_us.p99,
        LatencyKind::E2e => s.e2e_latency_us.p99,
    };
    let reached = s.msg_per_s >= rate as f64 * RATE_REACHED_MIN;
    let ok = p99 <= p99_bound_us && reached && s.failed_records == 0 && s.records > 0;
    (ok, p99)
}

/// The next rate to try, given the best that held and the lowest that did
/// not (0: none yet); None when the search is over.
pub fn next_rate(good: u64, bad: u64, max_rate: u64, steps_left: u32) -> Option<u64> {
    if bad == 0 {
        let next = if good == 0 {
            return None;
        } else {
            good.saturating_mul(2)
        };
        return (next <= max_rate && next > good).then_some(next);
    }
    if steps_left == 0 {
        return None;
    }
    let mid = good + (bad - good) / 2;
    (mid > good && mid < bad && (bad - good) * 100 > bad).then_some(mid)
}

pub fn sweep(args: &SweepArgs) -> Result<SweepResult, Error> {
    if args.workload == Workload::Consume {
        return Err(Error::Config("sweep needs a producing workload".into()));
    }
    if args.p99_ms <= 0.0 || args.start_rate == 0 {
        return Err(Error::Config(
            "--p99-ms and --start-rate must be positive".into(),
        ));
    }
    let bound_us = (args.p99_ms * 1000.0) as u64;
    let mut base = args.config.clone();
    base.workload = args.workload;
    let (json, hgrm, html) = (base.json.take(), base.hgrm.take(), base.html.take());
    let _ = (hgrm, html);
    base.quiet = true;
    let mut trials = Vec::new();
    let (mut good, mut bad) = (0u64, 0u64);
    let mut best: Option<Summary> = None;
    let mut rate = args.start_rate.min(args.max_rate);
    let mut steps_left = args.steps;
    loop {
        let mut cfg = base.clone();
        cfg.rate = rate;
        let s = crate::run(&cfg)?;
        let (held, p99) = holds(&s, rate, bound_us, args.latency);
        println!(
            "rate {rate:>10}/s: {:>12.0} msg/s, p99 {:>9.3} ms, failed {} -> {}",
            s.msg_per_s,
            p99 as f64 / 1000.0,
            s.failed_records,
            if held { "holds" } else { "exceeds" }
        );
        trials.push(Trial {
            rate,
            msg_per_s: s.msg_per_s,
            p99_us: p99,
            failed_records: s.failed_records,
            held,
        });
        if held {
            good = rate;
            best = Some(s);
        } else {
            bad = rate;
        }
        if bad != 0 && good != 0 {
            steps_left = steps_left.saturating_sub(u32::from(trials.len() > 1));
        }
        let interrupted = cfg
            .stop
            .as_ref()
            .is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed));
        let next = if interrupted {
            None
        } else if good == 0 {
            // Nothing held yet: halve until something does.
            let half = rate / 2;
            (half > 0 && trials.len() < 20).then_some(half)
        } else {
            next_rate(good, bad, args.max_rate, steps_left)
        };
        match next {
            Some(r) => rate = r,
            None => break,
        }
    }
    let result = SweepResult {
        p99_bound_ms: args.p99_ms,
        latency: args.latency,
        best_rate: good,
        best_msg_per_s: best.as_ref().map_or(0.0, |s| s.msg_per_s),
        trials,
    };
    println!(
        "highest rate holding p99 <= {} ms: {} records/s",
        args.p99_ms, result.best_rate
    );
    if let Some(s) = &best {
        print!("{}", report::render_text(s));
    }
    if let Some(path) = json {
        report::write_json(&path, &result)?;
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves the controller doubles until a failure, then bisects to within
    // 1% or the step budget, and stops at the maximum rate.
    #[test]
    fn doubles_then_bisects() {
        assert_eq!(next_rate(1000, 0, 1_000_000, 6), Some(2000));
        assert_eq!(next_rate(800_000, 0, 1_000_000, 6), None);
        assert_eq!(next_rate(1000, 2000, 1_000_000, 6), Some(1500));
        assert_eq!(next_rate(1000, 2000, 1_000_000, 0), None);
        assert_eq!(next_rate(1000, 1005, 1_000_000, 6), None);
        // A simulated broker that holds up to 37,000/s.
        let (mut good, mut bad, mut rate, mut steps) = (0, 0, 10_000u64, 8u32);
        let mut tried = 0;
        loop {
            tried += 1;
            if rate <= 37_000 {
                good = rate
            } else {
                bad = rate
            }
            if bad != 0 {
                steps -= 1
            }
            match next_rate(good, bad, 10_000_000, steps) {
                Some(r) => rate = r,
                None => break,
            }
        }
        assert!(good <= 37_000 && good > 36_000, "{good} after {tried}");
    }
}
