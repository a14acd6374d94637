//! `loadgen compare`: the same workload run alternately against two
//! bootstrap addresses (A, B, A, B, ...), so drift on the host hits both
//! alike; reports the medians and the ratios B/A.

use crate::report::{self, Histograms, Summary};
use crate::{Config, Error, Workload};

#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// The workload (produce, consume or e2e).
    #[arg(long, value_enum, default_value = "produce")]
    pub workload: Workload,
    /// The second broker, HOST:PORT (the first is --bootstrap).
    #[arg(long)]
    pub other: String,
    /// Runs against each broker.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    #[command(flatten)]
    pub config: Config,
}

/// The figures compared.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Figures {
    pub msg_per_s: f64,
    pub mb_per_s: f64,
    pub publish_p50_us: f64,
    pub publish_p99_us: f64,
    pub publish_p999_us: f64,
    pub e2e_p99_us: f64,
    pub failed_records: f64,
}

impl Figures {
    pub fn of(s: &Summary) -> Figures {
        Figures {
            msg_per_s: s.msg_per_s,
            mb_per_s: s.mb_per_s,
            publish_p50_us: s.publish_latency_us.p50 as f64,
            publish_p99_us: s.publish_latency_us.p99 as f64,
            publish_p999_us: s.publish_latency_us.p999 as f64,
            e2e_p99_us: s.e2e_latency_us.p99 as f64,
            failed_records: s.failed_records as f64,
        }
    }

    /// Field by field median of `runs`.
    pub fn median(runs: &[Figures]) -> Figures {
        let med = |f: fn(&Figures) -> f64| {
            let mut v: Vec<f64> = runs.iter().map(f).collect();
            v.sort_by(|a, b| a.total_cmp(b));
            match v.len() {
                0 => 0.0,
                n if n % 2 == 1 => v[n / 2],
                n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
            }
        };
        Figures {
            msg_per_s: med(|f| f.msg_per_s),
            mb_per_s: med(|f| f.mb_per_s),
            publish_p50_us: med(|f| f.publish_p50_us),
            publish_p99_us: med(|f| f.publish_p99_us),
            publish_p999_us: med(|f| f.publish_p999_us),
            e2e_p99_us: med(|f| f.e2e_p99_us),
            failed_records: med(|f| f.failed_records),
        }
    }

    /// b / a per field (0 where a is 0).
    pub fn ratio(b: &Figures, a: &Figures) -> Figures {
        let r = |x: f64, y: f64| if y == 0.0 { 0.0 } else { x / y };
        Figures {
            msg_per_s: r(b.msg_per_s, a.msg_per_s),
            mb_per_s: r(b.mb_per_s, a.mb_per_s),
            publish_p50_us: r(b.publish_p50_us, a.publish_p50_us),
            publish_p99_us: r(b.publish_p99_us, a.publish_p99_us),
            publish_p999_us: r(b.publish_p999_us, a.publish_p999_us),
            e2e_p99_us: r(b.e2e_p99_us, a.e2e_p99_us),
            failed_records: r(b.failed_records, a.failed_records),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CompareResult {
    pub a: String,
    pub b: String,
    pub runs_a: Vec<Figures>,
    pub runs_b: Vec<Figures>,
    pub median_a: Figures,
    pub median_b: Figures,
    /// median_b / median_a.
    pub ratio_b_over_a: Figures,
}

impl CompareResult {
    pub fn check(&self) -> Result<(), Error> {
        let failed: f64 = self
            .runs_a
            .iter()
            .chain(&self.runs_b)
            .map(|f| f.failed_records)
            .sum();
        if failed > 0.0 {
            return Err(Error::RecordsFailed(failed as u64, 0));
        }
        Ok(())
    }
}

pub fn compare(args: &CompareArgs) -> Result<CompareResult, Error> {
    if args.rounds == 0 {
        return Err(Error::Config("--rounds must be at least 1".into()));
    }
    let mut base: Config = args.config.clone();
    base.workload = args.workload;
    // Per-run histogram and HTML files would overwrite each other: compare
    // writes its own JSON and one side-by-side page.
    let json = base.json.take();
    let html = base.html.take();
    base.hgrm = None;
    base.quiet = true;
    let (mut runs_a, mut runs_b) = (Vec::new(), Vec::new());
    // Each broker's latencies over all its rounds, for the page's curves.
    let (mut hist_a, mut hist_b): (Option<Histograms>, Option<Histograms>) = (None, None);
    'rounds: for round in 1..=args.rounds {
        for (name, addr) in [("A", &args.config.bootstrap), ("B", &args.other)] {
            let mut cfg = base.clone();
            cfg.bootstrap = addr.clone();
            let s = crate::run(&cfg)?;
            let f = Figures::of(&s);
            println!(
                "round {round} {name} {addr}: {:.0} msg/s, {:.2} MB/s, publish p50 {:.3} p99 {:.3} ms, e2e p99 {:.3} ms, failed {}",
                f.msg_per_s,
                f.mb_per_s,
                f.publish_p50_us / 1000.0,
                f.publish_p99_us / 1000.0,
                f.e2e_p99_us / 1000.0,
                s.failed_records
            );
            let (runs, hist) = if name == "A" {
                (&mut runs_a, &mut hist_a)
            } else {
                (&mut runs_b, &mut hist_b)
            };
            runs.push(f);
            merge_histograms(hist, &s.histograms);
            if s.interrupted {
                break 'rounds;
            }
        }
    }
    let (median_a, median_b) = (Figures::median(&runs_a), Figures::median(&runs_b));
    let ratio = Figures::ratio(&median_b, &median_a);
    println!(
        "median B/A: msg/s x{:.3}, MB/s x{:.3}, publish p50 x{:.3}, p99 x{:.3}, p99.9 x{:.3}, e2e p99 x{:.3}",
        ratio.msg_per_s,
        ratio.mb_per_s,
        ratio.publish_p50_us,
        ratio.publish_p99_us,
        ratio.publish_p999_us,
        ratio.e2e_p99_us
    );
    let result = CompareResult {
        a: args.config.bootstrap.clone(),
        b: args.other.clone(),
        runs_a,
        runs_b,
        median_a,
        median_b,
        ratio_b_over_a: ratio,
    };
    if let Some(path) = json {
        report::write_json(&path, &result)?;
    }
    if let (Some(path), Some(a), Some(b)) = (html, &hist_a, &hist_b) {
        let page = report::render_compare_html(&result, args.workload, [a, b]);
        std::fs::write(&path, page)
            .map_err(|e| Error::Config(format!("writing {}: {e}", path.display())))?;
    }
    Ok(result)
}

/// Adds one run's histograms to a broker's running totals.
fn merge_histograms(total: &mut Option<Histograms>, run: &Histograms) {
    match total {
        None => *total = Some(run.clone()),
        Some(t) => {
            // Same bounds and precision in every run: adding cannot fail.
            let _ = t.publish_intended.add(&run.publish_intended);
            let _ = t.publish_sent.add(&run.publish_sent);
            let _ = t.e2e.add(&run.e2e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves medians are taken per field (odd and even counts) and ratios
    // are B over A.
    #[test]
    fn medians_and_ratios() {
        let f = |m: f64, p99: f64| Figures {
            msg_per_s: m,
            publish_p99_us: p99,
            ..Default::default()
        };
        let a = Figures::median(&[f(100.0, 9.0), f(300.0, 1.0), f(200.0, 5.0)]);
        assert_eq!((a.msg_per_s, a.publish_p99_us), (200.0, 5.0));
        let b = Figures::median(&[f(400.0, 2.0), f(600.0, 4.0)]);
        assert_eq!((b.msg_per_s, b.publish_p99_us), (500.0, 3.0));
        let r = Figures::ratio(&b, &a);
        assert_eq!((r.msg_per_s, r.publish_p99_us, r.mb_per_s), (2.5, 0.6, 0.0));
    }
}
