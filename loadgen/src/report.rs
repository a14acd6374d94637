//! Output: the per-second progress line, the final summary (text and
//! JSON), HdrHistogram percentile files, and a self-contained HTML page.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::cluster::Plan;
use crate::config::{Acks, Workload};
use crate::stats::{CoreStats, Percentiles};
use crate::{Config, Error};

/// One second of the measurement, for the throughput- and
/// latency-over-time plots: a stall shows at the second it happened.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Second {
    /// Seconds since the measurement began, at the end of this interval.
    pub t: f64,
    pub msg_per_s: f64,
    pub mb_per_s: f64,
    pub consumed_per_s: f64,
    /// Publish latency (from the intended send time) of the records
    /// acknowledged in this interval, in microseconds; 0 when none were.
    pub publish_p99_us: u64,
    pub publish_p999_us: u64,
    pub publish_max_us: u64,
    /// End-to-end latency of the records consumed in this interval.
    pub e2e_p99_us: u64,
}

impl Second {
    pub fn of(t: f64, secs: f64, interval: &CoreStats) -> Second {
        let secs = secs.max(1e-9);
        let publish = Percentiles::of(&interval.publish_intended);
        Second {
            t,
            msg_per_s: interval.produced as f64 / secs,
            mb_per_s: interval.produced_bytes as f64 / secs / 1e6,
            consumed_per_s: interval.consumed as f64 / secs,
            publish_p99_us: publish.p99,
            publish_p999_us: publish.p999,
            publish_max_us: publish.max,
            e2e_p99_us: Percentiles::of(&interval.e2e).p99,
        }
    }
}

/// Throughput of one load generator core: what it produced, or for a
/// consumer-only core, what it consumed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CoreFigures {
    /// The core id, or null for an unpinned executor.
    pub core: Option<usize>,
    pub role: &'static str,
    pub records: u64,
    pub msg_per_s: f64,
    pub mb_per_s: f64,
    /// Share of the run the core's thread was on a CPU, in percent (from
    /// /proc): near 100 means the load generator may be the bottleneck.
    pub busy_pct: Option<f64>,
}

/// Schedule lateness p99 below which a busy generator kept its schedule.
const LATE_WARN_US: u64 = 1000;

/// Past this share of busy time, the summary warns that the load
/// generator itself may be the bottleneck.
pub const BUSY_WARN_PCT: f64 = 90.0;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BrokerFigures {
    pub node: i32,
    pub address: String,
    pub records: u64,
    pub msg_per_s: f64,
    pub mb_per_s: f64,
}

/// The latency histograms behind the summary's percentiles.
#[derive(Debug, Clone)]
pub struct Histograms {
    pub publish_intended: Histogram<u64>,
    pub publish_sent: Histogram<u64>,
    pub e2e: Histogram<u64>,
}

/// The result of one run. `records`, `msg_per_s` and `mb_per_s` are the
/// producers' (records acknowledged, payload bytes in 10^6) for produce and
/// e2e runs, and the consumers' (records fetched, record batch bytes) for
/// consume runs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub workload: Workload,
    pub bootstrap: String,
    pub topic: String,
    pub partitions: usize,
    pub rate: u64,
    pub record_size: usize,
    pub acks: Acks,
    pub records: u64,
    pub duration_s: f64,
    pub msg_per_s: f64,
    pub mb_per_s: f64,
    /// Records acknowledged that were produced in the warm-up (not in
    /// `records`); `records + warmup_records` is what the broker stored.
    pub warmup_records: u64,
    pub consumed_records: u64,
    pub consumed_mb_per_s: f64,
    pub per_core: Vec<CoreFigures>,
    pub per_broker: Vec<BrokerFigures>,
    /// From each record's intended send time (coordinated-omission
    /// corrected). With acks=0: until the request was written.
    pub publish_latency_us: Percentiles,
    /// From the time the request was written to the socket.
    pub publish_latency_from_send_us: Percentiles,
    /// How late loadgen itself handed batches over against its schedule
    /// (fixed rates only; all zero at --rate 0).
    pub schedule_lateness_us: Percentiles,
    pub e2e_latency_us: Percentiles,
    /// Failure events (error responses, disconnects, timeouts).
    pub errors: u64,
    pub failed_records: u64,
    pub error_kinds: BTreeMap<String, u64>,
    pub interrupted: bool,
    pub notes: Vec<String>,
    pub timeline: Vec<Second>,
    #[serde(skip)]
    pub histograms: Histograms,
}

impl Summary {
    /// Err when any record failed or any error was counted: the exit code
    /// of the command line tool.
    pub fn check(&self) -> Result<(), Error> {
        if self.failed_records > 0 || self.errors > 0 {
            return Err(Error::RecordsFailed(self.failed_records, self.errors));
        }
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
pub fn summarize(
    cfg: &Config,
    plan: &Plan,
    measured: Duration,
    interrupted: bool,
    all: &CoreStats,
    cores: &[(Option<usize>, bool, bool)],
    per_slot: &[CoreStats],
    busy: &[Option<f64>],
    timeline: Vec<Second>,
) -> Summary {
    let secs = measured.as_secs_f64().max(1e-9);
    let consume_only = cfg.workload == Workload::Consume;
    let (records, bytes) = if consume_only {
        (all.consumed, all.consumed_bytes)
    } else {
        (all.produced, all.produced_bytes)
    };
    let mut per_core = Vec::new();
    for ((&(core, produces, consumes), s), &busy_pct) in cores.iter().zip(per_slot).zip(busy) {
        let role = match (produces, consumes) {
            (true, true) => "produce+consume",
            (true, false) => "produce",
            _ => "consume",
        };
        // A core's figures are what it produced, or for a consumer-only
        // core, what it consumed.
        let (r, b) = if produces {
            (s.produced, s.produced_bytes)
        } else {
            (s.consumed, s.consumed_bytes)
        };
        per_core.push(CoreFigures {
            core,
            role,
            records: r,
            msg_per_s: r as f64 / secs,
            mb_per_s: b as f64 / secs / 1e6,
            busy_pct,
        });
    }
    let per_broker = all
        .per_node
        .iter()
        .map(|(&node, &(r, b))| BrokerFigures {
            node,
            address: plan.brokers.get(&node).cloned().unwrap_or_default(),
            records: r,
            msg_per_s: r as f64 / secs,
            mb_per_s: b as f64 / secs / 1e6,
        })
        .collect();
    let mut notes = Vec::new();
    if cfg.acks == Acks::None && cfg.produces() {
        notes.push(
            "acks=0: the broker sends no responses; publish latency is the time until the \
             request was written to the socket"
                .to_string(),
        );
    }
    if consume_only {
        notes.push("consume: MB/s counts record batch bytes fetched".to_string());
    }
    // At a fixed rate with precise wake-ups the generator's core is busy
    // while it waits out the last microseconds before each batch is due:
    // whether it kept its schedule is what its lateness says.
    let lateness = Percentiles::of(&all.schedule_lateness);
    let waits_busy = cfg.rate > 0 && cfg.precise_wake_us > 0 && cfg.produces();
    for c in &per_core {
        if let Some(busy) = c.busy_pct.filter(|&b| b >= BUSY_WARN_PCT) {
            let core = c.core.map_or("(unpinned)".to_string(), |c| c.to_string());
            if waits_busy && lateness.count > 0 && lateness.p99 < LATE_WARN_US {
                notes.push(format!(
                    "loadgen core {core} was {busy:.0}% busy, partly waiting out the moments \
                     before batches were due (--precise-wake-us); it kept its schedule \
                     (lateness p99 {} ms)",
                    ms(lateness.p99)
                ));
            } else {
                notes.push(format!(
                    "loadgen core {core} was {busy:.0}% busy: the load generator may be the \
                     bottleneck"
                ));
            }
        }
    }
    if cfg.rate == 0 && cfg.produces() {
        notes.push(
            "--rate 0: each record's intended time is when it was put in its batch".to_string(),
        );
    }
    Summary {
        workload: cfg.workload,
        bootstrap: cfg.bootstrap.clone(),
        topic: cfg.topic.clone(),
        partitions: plan.partitions(),
        rate: cfg.rate,
        record_size: cfg.record_size,
        acks: cfg.acks,
        records,
        duration_s: secs,
        msg_per_s: records as f64 / secs,
        mb_per_s: bytes as f64 / secs / 1e6,
        warmup_records: all.warmup_acked,
        consumed_records: all.consumed,
        consumed_mb_per_s: all.consumed_bytes as f64 / secs / 1e6,
        per_core,
        per_broker,
        publish_latency_us: Percentiles::of(&all.publish_intended),
        publish_latency_from_send_us: Percentiles::of(&all.publish_sent),
        schedule_lateness_us: Percentiles::of(&all.schedule_lateness),
        e2e_latency_us: Percentiles::of(&all.e2e),
        errors: all.error_events(),
        failed_records: all.failed_records,
        error_kinds: all.errors.clone(),
        interrupted,
        notes,
        timeline,
        histograms: Histograms {
            publish_intended: all.publish_intended.clone(),
            publish_sent: all.publish_sent.clone(),
            e2e: all.e2e.clone(),
        },
    }
}

fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

/// One progress line: this interval's rates, percentiles so far.
pub fn progress_line(
    cfg: &Config,
    elapsed: Duration,
    warmup: bool,
    secs: f64,
    interval: &CoreStats,
    so_far: &CoreStats,
) -> String {
    let secs = secs.max(1e-9);
    let mut line = format!(
        "{:>5.1}s{} ",
        elapsed.as_secs_f64(),
        if warmup { " warmup" } else { "" }
    );
    if cfg.produces() {
        let records = interval.produced + interval.warmup_acked;
        let _ = write!(
            line,
            " {:.0} records/s ({:.2} MB/s)",
            records as f64 / secs,
            (records * cfg.record_size as u64) as f64 / secs / 1e6
        );
        let p = Percentiles::of(&so_far.publish_intended);
        if p.count > 0 {
            let _ = write!(
                line,
                ", publish p50 {} p99 {} p99.9 {} ms",
                ms(p.p50),
                ms(p.p99),
                ms(p.p999)
            );
        }
    }
    if cfg.consumes() {
        let _ = write!(
            line,
            "{} consumed {:.0} records/s ({:.2} MB/s)",
            if cfg.produces() { ";" } else { "" },
            interval.consumed as f64 / secs,
            interval.consumed_bytes as f64 / secs / 1e6
        );
        let p = Percentiles::of(&so_far.e2e);
        if p.count > 0 {
            let _ = write!(
                line,
                ", e2e p50 {} p99 {} p99.9 {} ms",
                ms(p.p50),
                ms(p.p99),
                ms(p.p999)
            );
        }
    }
    let errors = so_far.error_events();
    if errors > 0 {
        let _ = write!(
            line,
            ", {errors} errors ({} records failed)",
            so_far.failed_records
        );
    }
    line
}

fn latency_row(out: &mut String, name: &str, p: &Percentiles) {
    if p.count == 0 {
        return;
    }
    let _ = writeln!(
        out,
        "  {name:<28} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        ms(p.p50),
        ms(p.p90),
        ms(p.p99),
        ms(p.p999),
        ms(p.p9999),
        ms(p.max)
    );
}

/// The final summary as text.
pub fn render_text(s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:?} {} topic {} ({} partitions): {} records in {:.2} s: {:.0} msg/s, {:.2} MB/s{}",
        s.workload,
        s.bootstrap,
        s.topic,
        s.partitions,
        s.records,
        s.duration_s,
        s.msg_per_s,
        s.mb_per_s,
        if s.interrupted { " (interrupted)" } else { "" }
    );
    if s.workload == Workload::E2e {
        let _ = writeln!(
            out,
            "consumed {} records ({:.2} MB/s of batches)",
            s.consumed_records, s.consumed_mb_per_s
        );
    }
    if s.warmup_records > 0 {
        let _ = writeln!(out, "warm-up: {} records acknowledged", s.warmup_records);
    }
    for c in &s.per_core {
        let core = c.core.map_or("unpinned".to_string(), |c| c.to_string());
        let busy = c
            .busy_pct
            .map_or(String::new(), |b| format!("  (core {b:.0}% busy)"));
        let _ = writeln!(
            out,
            "  core {core:<8} {:<16} {:>12.0} msg/s {:>10.2} MB/s{busy}",
            c.role, c.msg_per_s, c.mb_per_s
        );
    }
    if s.per_broker.len() > 1 {
        for b in &s.per_broker {
            let _ = writeln!(
                out,
                "  broker node {} ({}) {:>12.0} msg/s {:>10.2} MB/s",
                b.node, b.address, b.msg_per_s, b.mb_per_s
            );
        }
    }
    let _ = writeln!(
        out,
        "  latency (ms)                       p50       p90       p99     p99.9    p99.99       max"
    );
    latency_row(&mut out, "publish (from intended)", &s.publish_latency_us);
    latency_row(
        &mut out,
        "publish (from send)",
        &s.publish_latency_from_send_us,
    );
    latency_row(&mut out, "end-to-end", &s.e2e_latency_us);
    latency_row(
        &mut out,
        "loadgen lateness (schedule)",
        &s.schedule_lateness_us,
    );
    for n in &s.notes {
        let _ = writeln!(out, "  note: {n}");
    }
    if s.errors > 0 || s.failed_records > 0 {
        let _ = writeln!(
            out,
            "ERRORS: {} events, {} records failed: {:?}",
            s.errors, s.failed_records, s.error_kinds
        );
    } else {
        let _ = writeln!(out, "errors: 0");
    }
    out
}

fn io_err(what: &Path, e: std::io::Error) -> Error {
    Error::Io(format!("write {}", what.display()), e.to_string())
}

pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::Io("encode JSON".into(), e.to_string()))?;
    std::fs::write(path, text + "\n").map_err(|e| io_err(path, e))
}

/// A percentile distribution in HdrHistogram's text (.hgrm) format, values
/// in milliseconds, readable by HdrHistogram's plotter.
pub fn hgrm(h: &Histogram<u64>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    if h.is_empty() {
        return out;
    }
    // TotalCount is cumulative, as HdrHistogram's own output has it.
    let mut total = 0u64;
    for v in h.iter_quantiles(5) {
        total += v.count_since_last_iteration();
        let q = v.quantile_iterated_to();
        let value = h.highest_equivalent(v.value_iterated_to()) as f64 / 1000.0;
        if q < 1.0 {
            let _ = writeln!(
                out,
                "{:>12.3} {:>14.12} {:>10} {:>14.2}",
                value,
                q,
                total,
                1.0 / (1.0 - q)
            );
        } else {
            let _ = writeln!(out, "{value:>12.3} {q:>14.12} {total:>10}");
        }
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
        h.mean() / 1000.0,
        h.stdev() / 1000.0
    );
    let _ = writeln!(
        out,
        "#[Max     = {:>12.3}, Total count    = {:>12}]",
        h.max() as f64 / 1000.0,
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        h.distinct_values()
    );
    out
}

/// Writes one .hgrm file per non-empty latency into `dir`.
pub fn write_hgrm(dir: &Path, s: &Summary) -> Result<Vec<std::path::PathBuf>, Error> {
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let mut written = Vec::new();
    for (name, h) in [
        ("publish-from-intended", &s.histograms.publish_intended),
        ("publish-from-send", &s.histograms.publish_sent),
        ("end-to-end", &s.histograms.e2e),
    ] {
        if h.is_empty() {
            continue;
        }
        let path = dir.join(format!("{name}.hgrm"));
        std::fs::write(&path, hgrm(h)).map_err(|e| io_err(&path, e))?;
        written.push(path);
    }
    Ok(written)
}

/// Points (x = -log10(1 - percentile), y = latency in ms) of a latency
/// by percentile curve, up to 99.999%.
fn percentile_curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut pts = Vec::new();
    let mut x = 0.0f64;
    while x <= 5.0 + 1e-9 {
        let q = 1.0 - 10f64.powf(-x);
        pts.push((
            x,
            h.highest_equivalent(h.value_at_quantile(q)) as f64 / 1000.0,
        ));
        x += 0.05;
    }
    pts
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

const COLORS: [&str; 3] = ["#1f77b4", "#d62728", "#2ca02c"];

/// The smallest 1, 2, 2.5 or 5 times a power of ten at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let base = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * base)
        .find(|&c| c >= v)
        .unwrap_or(10.0 * base)
}

/// An SVG line chart; `log_y` puts the y axis on a log scale; the legend
/// goes at the top left, or the bottom left with `legend_low`.
fn svg_chart(
    title: &str,
    series: &[(&str, Vec<(f64, f64)>)],
    x_ticks: &[(f64, String)],
    y_label: &str,
    log_y: bool,
    legend_low: bool,
) -> String {
    let (w, h, left, right, top, bottom) = (760.0, 360.0, 70.0, 20.0, 30.0, 40.0);
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.1.iter().copied()).collect();
    let mut svg = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif' font-size='12'>\
         <text x='{}' y='18' text-anchor='middle' font-size='14'>{}</text>",
        w / 2.0,
        esc(title)
    );
    if all.is_empty() {
        svg.push_str("<text x='100' y='100'>no data</text></svg>");
        return svg;
    }
    // The axis spans the data and the ticks.
    let xs = || all.iter().map(|p| p.0).chain(x_ticks.iter().map(|t| t.0));
    let x_min = xs().fold(f64::INFINITY, f64::min);
    let x_max = xs().fold(f64::NEG_INFINITY, f64::max).max(x_min + 1e-9);
    let fy = |v: f64| if log_y { v.max(1e-3).log10() } else { v };
    let y_min_raw = all.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let y_max_raw = all.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let (y_min, y_max) = if log_y {
        (
            fy(y_min_raw).floor(),
            fy(y_max_raw).ceil().max(fy(y_min_raw).floor() + 1.0),
        )
    } else {
        (0.0, nice_ceiling(y_max_raw * 1.05))
    };
    let px = |x: f64| left + (x - x_min) / (x_max - x_min) * (w - left - right);
    let py = |y: f64| h - bottom - (fy(y) - y_min) / (y_max - y_min) * (h - top - bottom);
    let _ = write!(
        svg,
        "<rect x='{left}' y='{top}' width='{}' height='{}' fill='none' stroke='#999'/>",
        w - left - right,
        h - top - bottom
    );
    for (x, label) in x_ticks {
        let _ = write!(
            svg,
            "<line x1='{0}' x2='{0}' y1='{top}' y2='{1}' stroke='#eee'/><text x='{0}' y='{2}' text-anchor='middle'>{3}</text>",
            px(*x),
            h - bottom,
            h - bottom + 16.0,
            esc(label)
        );
    }
    let y_ticks: Vec<f64> = if log_y {
        (y_min as i32..=y_max as i32)
            .map(|e| 10f64.powi(e))
            .collect()
    } else {
        (0..=4).map(|i| y_max * f64::from(i) / 4.0).collect()
    };
    for y in y_ticks {
        let _ = write!(
            svg,
            "<line x1='{left}' x2='{0}' y1='{1}' y2='{1}' stroke='#eee'/><text x='{2}' y='{3}' text-anchor='end'>{4}</text>",
            w - right,
            py(y),
            left - 4.0,
            py(y) + 4.0,
            if y >= 100.0 || y == 0.0 {
                format!("{y:.0}")
            } else {
                format!("{y}")
            }
        );
    }
    let _ = write!(
        svg,
        "<text x='14' y='{0}' transform='rotate(-90 14 {0})' text-anchor='middle'>{1}</text>",
        h / 2.0,
        esc(y_label)
    );
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = pts
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = write!(
            svg,
            "<polyline fill='none' stroke='{color}' stroke-width='2' points='{}'/>\
             <text x='{}' y='{}' fill='{color}'>{}</text>",
            path.join(" "),
            left + 10.0,
            if legend_low {
                h - bottom - 10.0 - 16.0 * (series.len() - 1 - i) as f64
            } else {
                top + 16.0 + 16.0 * i as f64
            },
            esc(name)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// One self-contained HTML page: the summary, latency by percentile (log
/// scales) and throughput over time.
pub fn render_html(s: &Summary) -> String {
    let mut latency = Vec::new();
    for (name, h) in [
        ("publish (from intended)", &s.histograms.publish_intended),
        ("publish (from send)", &s.histograms.publish_sent),
        ("end-to-end", &s.histograms.e2e),
    ] {
        let curve = percentile_curve(h);
        if !curve.is_empty() {
            latency.push((name, curve));
        }
    }
    let ticks: Vec<(f64, String)> = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
        .iter()
        .enumerate()
        .map(|(i, l)| (i as f64, l.to_string()))
        .collect();
    let latency_svg = svg_chart(
        "Latency by percentile",
        &latency,
        &ticks,
        "latency (ms, log scale)",
        true,
        false,
    );
    let mut throughput = vec![(
        "produced msg/s",
        s.timeline
            .iter()
            .map(|p| (p.t, p.msg_per_s))
            .collect::<Vec<_>>(),
    )];
    if s.timeline.iter().any(|p| p.consumed_per_s > 0.0) {
        throughput.push((
            "consumed msg/s",
            s.timeline.iter().map(|p| (p.t, p.consumed_per_s)).collect(),
        ));
    }
    let last = s.timeline.last().map_or(1.0, |p| p.t).max(1.0);
    let step = nice_ceiling(last / 5.0).max(1.0);
    let t_ticks: Vec<(f64, String)> = (0..)
        .map(|i| f64::from(i) * step)
        .take_while(|&t| t <= last + 1e-9)
        .map(|t| (t, format!("{t}s")))
        .collect();
    let throughput_svg = svg_chart(
        "Throughput over time",
        &throughput,
        &t_ticks,
        "msg/s",
        false,
        true,
    );
    let over_time: Vec<(&str, Vec<(f64, f64)>)> = [
        (
            "publish p99",
            (|p: &Second| p.publish_p99_us) as fn(&Second) -> u64,
        ),
        ("publish p99.9", |p: &Second| p.publish_p999_us),
        ("publish max", |p: &Second| p.publish_max_us),
        ("end-to-end p99", |p: &Second| p.e2e_p99_us),
    ]
    .into_iter()
    .map(|(name, value)| {
        let points = s
            .timeline
            .iter()
            .filter(|p| value(p) > 0)
            .map(|p| (p.t, value(p) as f64 / 1000.0))
            .collect::<Vec<_>>();
        (name, points)
    })
    .filter(|(_, points)| !points.is_empty())
    .collect();
    let latency_time_svg = if over_time.is_empty() {
        String::new()
    } else {
        svg_chart(
            "Latency over time (each second's acknowledged records)",
            &over_time,
            &t_ticks,
            "latency (ms, log scale)",
            true,
            true,
        )
    };
    let json = serde_json::to_string_pretty(s).unwrap_or_default();
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>loadgen {topic}</title>\
         <style>body{{font-family:sans-serif;margin:2em}}pre{{background:#f6f6f6;padding:1em}}</style></head>\
         <body><h1>loadgen: {workload:?} on {bootstrap}</h1><pre>{text}</pre>{latency_svg}<br>{throughput_svg}<br>{latency_time_svg}\
         <details><summary>JSON summary</summary><pre>{json}</pre></details></body></html>\n",
        topic = esc(&s.topic),
        workload = s.workload,
        bootstrap = esc(&s.bootstrap),
        text = esc(&render_text(s)),
        json = esc(&json),
    )
}

/// `loadgen compare`'s page: both brokers side by side, a table of every
/// round, the medians and the ratios B/A, and each broker's latency by
/// percentile over all its rounds on one chart (publish, and end-to-end
/// when measured).
pub fn render_compare_html(
    result: &crate::compare::CompareResult,
    workload: Workload,
    hists: [&Histograms; 2],
) -> String {
    let names = [format!("A {}", result.a), format!("B {}", result.b)];
    let ticks: Vec<(f64, String)> = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
        .iter()
        .enumerate()
        .map(|(i, l)| (i as f64, l.to_string()))
        .collect();
    let chart = |title: &str, pick: fn(&Histograms) -> &Histogram<u64>| {
        let series: Vec<(&str, Vec<(f64, f64)>)> = names
            .iter()
            .zip(hists)
            .map(|(n, h)| (n.as_str(), percentile_curve(pick(h))))
            .filter(|(_, c)| !c.is_empty())
            .collect();
        if series.is_empty() {
            String::new()
        } else {
            svg_chart(
                title,
                &series,
                &ticks,
                "latency (ms, log scale)",
                true,
                false,
            )
        }
    };
    let publish = chart("Publish latency by percentile (from intended send)", |h| {
        &h.publish_intended
    });
    let e2e = chart("End-to-end latency by percentile", |h| &h.e2e);
    let mut rows = String::new();
    let row = |rows: &mut String, label: &str, f: &crate::compare::Figures, digits: usize| {
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{:.d$}</td><td>{:.d$}</td><td>{:.d$}</td><td>{:.d$}</td>\
             <td>{:.d$}</td><td>{:.d$}</td><td>{:.0}</td></tr>",
            esc(label),
            f.msg_per_s,
            f.mb_per_s,
            f.publish_p50_us / 1000.0,
            f.publish_p99_us / 1000.0,
            f.publish_p999_us / 1000.0,
            f.e2e_p99_us / 1000.0,
            f.failed_records,
            d = digits
        );
    };
    for (i, (a, b)) in result.runs_a.iter().zip(&result.runs_b).enumerate() {
        row(&mut rows, &format!("round {} A", i + 1), a, 2);
        row(&mut rows, &format!("round {} B", i + 1), b, 2);
    }
    row(&mut rows, "median A", &result.median_a, 2);
    row(&mut rows, "median B", &result.median_b, 2);
    row(&mut rows, "B / A", &result.ratio_b_over_a, 3);
    let json = serde_json::to_string_pretty(result).unwrap_or_default();
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>loadgen compare</title>\
         <style>body{{font-family:sans-serif;margin:2em}}pre{{background:#f6f6f6;padding:1em}}\
         td,th{{padding:2px 8px;text-align:right}}td:first-child{{text-align:left}}</style></head>\
         <body><h1>loadgen compare: {workload:?}, A {a} vs B {b}</h1>\
         <p>Rounds alternate A, B, A, B; medians per field; latencies in ms.</p>\
         <table><tr><th></th><th>msg/s</th><th>MB/s</th><th>publish p50</th><th>p99</th>\
         <th>p99.9</th><th>e2e p99</th><th>failed</th></tr>{rows}</table>{publish}<br>{e2e}\
         <details><summary>JSON</summary><pre>{json}</pre></details></body></html>\n",
        a = esc(&result.a),
        b = esc(&result.b),
        json = esc(&json),
    )
}

/// Writes whatever outputs `cfg` asks for.
pub fn write_outputs(cfg: &Config, s: &Summary) -> Result<(), Error> {
    if let Some(path) = &cfg.json {
        write_json(path, s)?;
    }
    if let Some(dir) = &cfg.hgrm {
        write_hgrm(dir, s)?;
    }
    if let Some(path) = &cfg.html {
        std::fs::write(path, render_html(s)).map_err(|e| io_err(path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::new_histogram;

    // Proves the .hgrm output has the header, monotonic percentiles ending
    // at 1.0, values in milliseconds and the summary footer.
    #[test]
    fn hgrm_format() {
        let mut h = new_histogram();
        for v in 1..=1000u64 {
            h.record(v * 10).unwrap();
        }
        let text = hgrm(&h);
        assert!(text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)"));
        let rows: Vec<(f64, f64)> = text
            .lines()
            .skip(2)
            .take_while(|l| !l.starts_with('#'))
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f[0].parse().unwrap(), f[1].parse().unwrap())
            })
            .collect();
        assert!(rows.len() > 20);
        assert!(rows
            .windows(2)
            .all(|w| w[0].1 <= w[1].1 && w[0].0 <= w[1].0));
        assert_eq!(rows.last().unwrap().1, 1.0);
        assert!(
            (rows.last().unwrap().0 - 10.0).abs() < 0.02,
            "{:?}",
            rows.last()
        );
        let max_line = text.lines().find(|l| l.starts_with("#[Max")).unwrap();
        let max: f64 = max_line
            .split_once("=")
            .unwrap()
            .1
            .split(',')
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!((max - 10.0).abs() < 0.02, "{max_line}");
        assert!(text.contains("Total count    =         1000"));
    }

    // Proves the HTML page is self-contained (no external scripts or
    // styles) and holds both charts.
    #[test]
    fn html_is_self_contained() {
        let mut h = new_histogram();
        h.record_n(500, 100).unwrap();
        let s = Summary {
            workload: Workload::Produce,
            bootstrap: "127.0.0.1:9092".into(),
            topic: "t<x>".into(),
            partitions: 1,
            rate: 0,
            record_size: 100,
            acks: Acks::All,
            records: 100,
            duration_s: 1.0,
            msg_per_s: 100.0,
            mb_per_s: 0.01,
            warmup_records: 0,
            consumed_records: 0,
            consumed_mb_per_s: 0.0,
            per_core: Vec::new(),
            per_broker: Vec::new(),
            publish_latency_us: Percentiles::of(&h),
            publish_latency_from_send_us: Percentiles::of(&h),
            schedule_lateness_us: Percentiles::default(),
            e2e_latency_us: Percentiles::default(),
            errors: 0,
            failed_records: 0,
            error_kinds: BTreeMap::new(),
            interrupted: false,
            notes: Vec::new(),
            timeline: vec![Second {
                t: 1.0,
                msg_per_s: 100.0,
                mb_per_s: 0.01,
                consumed_per_s: 0.0,
                publish_p99_us: 900,
                publish_p999_us: 1500,
                publish_max_us: 2000,
                e2e_p99_us: 0,
            }],
            histograms: Histograms {
                publish_intended: h.clone(),
                publish_sent: h,
                e2e: new_histogram(),
            },
        };
        let html = render_html(&s);
        assert!(html.contains("Latency by percentile"));
        assert!(html.contains("Throughput over time"));
        // Each second's p99, p99.9 and max; no end-to-end line with nothing consumed.
        assert!(html.contains("Latency over time"));
        assert!(html.contains("publish p99.9") && html.contains("publish max"));
        assert!(!html.contains("end-to-end p99"));
        assert_eq!(html.matches("<svg").count(), 3);
        assert!(!html.contains("<script"));
        assert!(!html.contains("http://") || html.contains("http://www.w3.org/2000/svg"));
        assert!(html.contains("t&lt;x&gt;"));
    }

    // Proves the compare page shows both brokers' curves on one publish
    // chart (no e2e chart when nothing was consumed), every round, the
    // medians and the ratios.
    #[test]
    fn compare_page_shows_both_brokers() {
        use crate::compare::{CompareResult, Figures};
        let hist = |v: u64| {
            let mut h = new_histogram();
            h.record_n(v, 100).unwrap();
            Histograms {
                publish_intended: h.clone(),
                publish_sent: h,
                e2e: new_histogram(),
            }
        };
        let (a, b) = (hist(500), hist(2000));
        let f = |m: f64| Figures {
            msg_per_s: m,
            ..Default::default()
        };
        let result = CompareResult {
            a: "127.0.0.1:9092".into(),
            b: "127.0.0.1:19092".into(),
            runs_a: vec![f(100.0), f(300.0)],
            runs_b: vec![f(50.0), f(70.0)],
            median_a: f(200.0),
            median_b: f(60.0),
            ratio_b_over_a: f(0.3),
        };
        let html = render_compare_html(&result, Workload::Produce, [&a, &b]);
        assert_eq!(html.matches("<svg").count(), 1, "publish chart only");
        assert_eq!(html.matches("<polyline").count(), 2, "one curve per broker");
        assert!(html.contains("A 127.0.0.1:9092") && html.contains("B 127.0.0.1:19092"));
        for label in ["round 1 A", "round 2 B", "median A", "median B", "B / A"] {
            assert!(html.contains(label), "{label}");
        }
        assert!(html.contains("<td>0.300</td>"), "ratio row");
        assert!(!html.contains("<script"));
    }
}
