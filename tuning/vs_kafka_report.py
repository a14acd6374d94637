#!/usr/bin/env python3
"""Assembles tuning/vs-kafka.sh's runs into DIR/vs-kafka.json and
DIR/vs-kafka.html: per workload, both brokers' throughput, publish and
end-to-end latency percentiles, broker CPU seconds and peak RSS, and the
ratios; the page draws both brokers' latency-by-percentile curves on one
chart per workload. With several rounds (DIR/runs/1, DIR/runs/2, ...) every
figure is the median over the rounds, ratios are taken between the medians,
and each workload also lists every round's throughput, p99.9 and ratios.

Usage: vs_kafka_report.py DIR "WORKLOAD ..."
"""

import html
import json
import math
import os
import re
import sys

PERCENTILES = [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9),
               ("p9999", 99.99), ("max", 100.0)]
BROKERS = ["shardlog", "kafka"]
DESCRIPTIONS = {
    "p100-max": "100-byte records, acks=1, as fast as possible (--rate 0)",
    "p100-1m": "100-byte records, acks=1, 1,000,000 msg/s",
    "p100-kafka-rate": "100-byte records, acks=1, at the highest rate Kafka held with its "
                       "publish p99 within the bound (loadgen sweep against Kafka first)",
    "p1k-max": "1 KiB records, acks=1, as fast as possible",
    "ack-written": "1 KiB at 100,000 msg/s, acknowledged once written, not synced: "
                   "shardlog acks=1 vs Kafka acks=all with its defaults (page cache)",
    "ack-durable": "1 KiB at 100,000 msg/s, acknowledged once on stable storage: "
                   "shardlog acks=all vs Kafka acks=all with log.flush.interval.messages=1",
    "consume": "1 KiB records written first (warm-up + duration at full speed), then "
               "consumed from the earliest offset; MB/s over the seconds until caught up",
    "e2e-100k": "1 KiB at 100,000 msg/s produced and consumed at once",
}


def load(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def percentiles(p):
    if not p:
        return None
    return {k: p.get(k) for k, _ in PERCENTILES}


def broker_figures(run_dir, name, broker):
    s = load(os.path.join(run_dir, f"{name}-{broker}.json"))
    b = load(os.path.join(run_dir, f"{name}-{broker}.broker.json"), {})
    client = load(os.path.join(run_dir, f"{name}-{broker}.client.json"), {})
    if s is None:
        return None
    consumed = s.get("consumed_mb_per_s", 0) or 0
    msg_per_s = s.get("msg_per_s")
    if name == "consume":
        active = active_consumed_mb_per_s(s, consumed)
        if consumed and msg_per_s:
            msg_per_s *= active / consumed
        consumed = active
    return {
        "msg_per_s": msg_per_s,
        "mb_per_s": consumed if name == "consume" else s.get("mb_per_s"),
        "consumed_mb_per_s": consumed,
        "records": s.get("records"),
        "failed_records": s.get("failed_records"),
        "publish_latency_us": percentiles(s.get("publish_latency_us")),
        "e2e_latency_us": percentiles(s.get("e2e_latency_us")),
        "broker_cpu_s": b.get("cpu_s"),
        "broker_peak_rss_kb": b.get("peak_rss_kb"),
        "loadgen_cpu_s": client.get("client_cpu_s"),
        "loadgen_wall_s": client.get("client_wall_s"),
        "loadgen": {k: s.get(k) for k in ("workload", "rate", "record_size", "acks",
                                          "partitions", "duration_s")},
    }


def active_consumed_mb_per_s(s, overall_mb_per_s):
    """A consumer that reads the whole backlog before the run ends would be
    averaged over its idle seconds: its rate over the whole seconds while
    it was still reading instead (the last, partial one left out)."""
    rates = [t.get("consumed_per_s", 0) or 0 for t in s.get("timeline") or []]
    while rates and rates[-1] == 0:
        rates.pop()
    active = rates[:-1] if len(rates) > 1 else rates
    duration = s.get("duration_s") or 0
    records = s.get("consumed_records") or 0
    if not active or not duration or not records:
        return overall_mb_per_s
    overall_records_per_s = records / duration
    return overall_mb_per_s * (sum(active) / len(active)) / overall_records_per_s


def median(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    if len(values) % 2:
        return values[mid]
    return (values[mid - 1] + values[mid]) / 2


def median_figures(rounds):
    """Per key, the median of the rounds' numbers (dicts key by key); other
    values as the first round has them."""
    present = [r for r in rounds if r is not None]
    if not present:
        return None
    first = present[0]
    if isinstance(first, dict):
        return {k: median_figures([r.get(k) for r in present if isinstance(r, dict)])
                for k in first}
    if isinstance(first, (int, float)) and not isinstance(first, bool):
        return median([r for r in present if isinstance(r, (int, float))])
    return first


def round_dirs(out_dir):
    runs = os.path.join(out_dir, "runs")
    rounds = sorted((d for d in os.listdir(runs) if d.isdigit()), key=int) if os.path.isdir(runs) else []
    return [os.path.join(runs, d) for d in rounds] or [runs]


def ratios(s, k):
    r = {}
    if s and k:
        r["msg_per_s"] = ratio(s["msg_per_s"], k["msg_per_s"])
        r["mb_per_s"] = ratio(s["mb_per_s"], k["mb_per_s"])
        r["consumed_mb_per_s"] = ratio(s["consumed_mb_per_s"], k["consumed_mb_per_s"])
        for key in ("publish_latency_us", "e2e_latency_us"):
            if s[key] and k[key]:
                r[key] = {p: ratio(k[key][p], s[key][p]) for p, _ in PERCENTILES}
        r["broker_cpu_s"] = ratio(k["broker_cpu_s"], s["broker_cpu_s"])
        r["broker_peak_rss_kb"] = ratio(k["broker_peak_rss_kb"], s["broker_peak_rss_kb"])
    return r


def round_summary(s, k):
    """The few figures listed per round, to show the spread."""
    def pick(f):
        if not f:
            return None
        return {"msg_per_s": f.get("msg_per_s"), "mb_per_s": f.get("mb_per_s"),
                "publish_p999_us": (f.get("publish_latency_us") or {}).get("p999")}
    r = ratios(s, k)
    return {"shardlog": pick(s), "kafka": pick(k), "mb_per_s_ratio": r.get("mb_per_s"),
            "publish_p999_ratio": (r.get("publish_latency_us") or {}).get("p999")}


def ratio(a, b):
    if a is None or b is None or not b:
        return None
    return round(a / b, 3)


def perf_tool_lines(run_dir, broker):
    out = {}
    for tool in ("producer", "consumer"):
        path = os.path.join(run_dir, f"perf-tools-{tool}-{broker}.txt")
        try:
            lines = [l for l in open(path).read().splitlines() if l.strip()]
        except OSError:
            continue
        if tool == "producer":
            final = [l for l in lines if "records sent" in l and "99.9th" in l]
            out["producer"] = final[-1] if final else (lines[-1] if lines else "")
        else:
            out["consumer"] = "\n".join(lines[-2:])
        b = load(os.path.join(run_dir, f"perf-tools-{tool}-{broker}.broker.json"), {})
        out[f"{tool}_broker_cpu_s"] = b.get("cpu_s")
        client = load(os.path.join(run_dir, f"perf-tools-{tool}-{broker}.client.json"), {})
        out[f"{tool}_tool_cpu_s"] = client.get("client_cpu_s")
        out[f"{tool}_tool_wall_s"] = client.get("client_wall_s")
    return out


def producer_rate(line):
    m = re.search(r"([\d.]+) records/sec", line or "")
    return float(m.group(1)) if m else None


def svg_curves(name, figures, key):
    """Latency (log scale) by percentile (log of 1/(1-p)), both brokers."""
    w, h, left, bottom, top, right = 520, 260, 60, 40, 10, 90
    series = []
    for broker, colour in (("shardlog", "#1f77b4"), ("kafka", "#d62728")):
        f = figures.get(broker)
        p = f and f.get(key)
        if not p:
            continue
        pts = [(pct, p.get(k)) for k, pct in PERCENTILES if p.get(k)]
        if pts:
            series.append((broker, colour, pts))
    if not series:
        return ""
    xs = lambda pct: math.log10(1.0 / (1.0 - min(pct, 99.999) / 100.0))
    values = [v for _, _, pts in series for _, v in pts]
    lo, hi = math.log10(max(min(values), 1)), math.log10(max(values) * 1.2)
    if hi - lo < 1e-9:
        hi = lo + 1
    xmax = xs(99.999)

    def px(pct):
        return left + (w - left - right) * xs(pct) / xmax

    def py(v):
        return h - bottom - (h - bottom - top) * (math.log10(max(v, 1)) - lo) / (hi - lo)

    parts = [f'<svg width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg" '
             f'font-family="sans-serif" font-size="11">']
    parts.append(f'<line x1="{left}" y1="{h-bottom}" x2="{w-right}" y2="{h-bottom}" stroke="#888"/>')
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h-bottom}" stroke="#888"/>')
    for k, pct in PERCENTILES:
        x = px(pct)
        parts.append(f'<text x="{x:.1f}" y="{h-bottom+14}" text-anchor="middle">{html.escape(k)}</text>')
    decade = math.floor(lo)
    while decade <= hi:
        if decade >= lo:
            y = py(10 ** decade)
            label = f"{10**decade/1000:g} ms" if decade >= 3 else f"{10**decade:g} us"
            parts.append(f'<text x="{left-4}" y="{y+4:.1f}" text-anchor="end">{label}</text>')
            parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{w-right}" y2="{y:.1f}" stroke="#eee"/>')
        decade += 1
    for i, (broker, colour, pts) in enumerate(series):
        path = " ".join(f"{px(pct):.1f},{py(v):.1f}" for pct, v in pts)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        for pct, v in pts:
            parts.append(f'<circle cx="{px(pct):.1f}" cy="{py(v):.1f}" r="2.5" fill="{colour}"/>')
        parts.append(f'<text x="{w-right+8}" y="{top+14+16*i}" fill="{colour}">{broker}</text>')
    parts.append(f'<text x="{left}" y="{h-6}">{html.escape(name)}: {html.escape(key)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def fmt(v, digits=0):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}"


def main():
    out_dir, workloads = sys.argv[1], sys.argv[2].split()
    dirs = round_dirs(out_dir)
    run_dir = dirs[0]
    report = {
        "rounds": len(dirs),
        "baseline": load(os.path.join(out_dir, "baseline.json"), {}),
        "kafka_server_properties": _read(os.path.join(out_dir, "kafka-server.properties")),
        "kafka_command": _read(os.path.join(out_dir, "kafka-command")),
        "ratios": "shardlog / kafka for throughput; kafka / shardlog for latency, CPU and RSS "
                  "(above 1: shardlog ahead); with several rounds, between the medians",
        "workloads": {},
    }
    for name in workloads:
        if name == "perf-tools":
            tools = {b: perf_tool_lines(dirs[0], b) for b in BROKERS}
            tools["producer_records_per_s_ratio"] = ratio(
                producer_rate(tools["shardlog"].get("producer")),
                producer_rate(tools["kafka"].get("producer")))
            tools["producer_records_per_s_ratio_by_round"] = [ratio(
                producer_rate(perf_tool_lines(d, "shardlog").get("producer")),
                producer_rate(perf_tool_lines(d, "kafka").get("producer"))) for d in dirs]
            report["perf_tools"] = tools
            continue
        by_round = [{b: broker_figures(d, name, b) for b in BROKERS} for d in dirs]
        s = median_figures([f["shardlog"] for f in by_round])
        k = median_figures([f["kafka"] for f in by_round])
        report["workloads"][name] = {
            "description": DESCRIPTIONS.get(name, ""),
            "shardlog": s,
            "kafka": k,
            "ratio": ratios(s, k),
            "rounds": [round_summary(f["shardlog"], f["kafka"]) for f in by_round],
        }
    sweep = load(os.path.join(run_dir, "p100-kafka-rate-sweep.json"))
    if sweep and "p100-kafka-rate" in report["workloads"]:
        report["workloads"]["p100-kafka-rate"]["kafka_sweep"] = {
            k: sweep.get(k) for k in ("best_rate", "best_msg_per_s", "trials")}
    with open(os.path.join(out_dir, "vs-kafka.json"), "w") as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(out_dir, "vs-kafka.html"), "w") as f:
        f.write(page(report))


def _read(path):
    try:
        return open(path).read()
    except OSError:
        return None


def with_range(value, workload, key):
    """A ratio, and its range over the rounds when there are several."""
    if value is None:
        return "-"
    seen = [r.get(key) for r in workload.get("rounds") or [] if r.get(key) is not None]
    if len(seen) < 2:
        return f"{value}"
    return f"{value} ({min(seen)}&ndash;{max(seen)})"


def page(report):
    rows = []
    charts = []
    for name, w in report["workloads"].items():
        s, k, r = w["shardlog"] or {}, w["kafka"] or {}, w["ratio"]
        pub_s, pub_k = s.get("publish_latency_us") or {}, k.get("publish_latency_us") or {}
        consume = name == "consume"
        thr = "consumed_mb_per_s" if consume else "mb_per_s"
        rows.append(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
            "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>".format(
                html.escape(name), fmt(s.get("msg_per_s")), fmt(k.get("msg_per_s")),
                fmt(s.get(thr), 1), fmt(k.get(thr), 1),
                with_range(r.get(thr), w, "mb_per_s_ratio"),
                fmt(pub_s.get("p99")), fmt(pub_k.get("p99")),
                fmt(pub_s.get("p999")), fmt(pub_k.get("p999")),
                with_range((r.get("publish_latency_us") or {}).get("p999"), w,
                           "publish_p999_ratio"),
                f'{fmt(s.get("broker_cpu_s"), 2)} / {fmt(k.get("broker_cpu_s"), 2)}',
                f'{fmt((s.get("broker_peak_rss_kb") or 0) // 1024)} / '
                f'{fmt((k.get("broker_peak_rss_kb") or 0) // 1024)}'))
        charts.append(f"<h3>{html.escape(name)}</h3><p>{html.escape(w['description'])}</p>")
        charts.append(svg_curves(name, w, "publish_latency_us"))
        if (s.get("e2e_latency_us") or {}).get("p50"):
            charts.append(svg_curves(name, w, "e2e_latency_us"))
    tools = report.get("perf_tools")
    tool_html = ""
    if tools:
        tool_html = "<h2>Kafka's perf tools (100-byte records)</h2>" + "".join(
            f"<h3>{b}</h3><pre>{html.escape(str(tools.get(b, {}).get('producer', '')))}\n"
            f"{html.escape(str(tools.get(b, {}).get('consumer', '')))}\n"
            f"tool CPU / wall s: producer {tools.get(b, {}).get('producer_tool_cpu_s')} / "
            f"{tools.get(b, {}).get('producer_tool_wall_s')}, consumer "
            f"{tools.get(b, {}).get('consumer_tool_cpu_s')} / "
            f"{tools.get(b, {}).get('consumer_tool_wall_s')}; broker CPU s: producer "
            f"{tools.get(b, {}).get('producer_broker_cpu_s')}, consumer "
            f"{tools.get(b, {}).get('consumer_broker_cpu_s')}</pre>" for b in BROKERS)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>shardlog vs Apache Kafka</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "td,th{padding:2px 8px;text-align:right}td:first-child{text-align:left}"
        "table{border-collapse:collapse}tr:nth-child(even){background:#f4f4f4}</style></head><body>"
        "<h1>shardlog vs Apache Kafka</h1>"
        f"<p>{html.escape(report['ratios'])}. Latencies in microseconds, publish latency "
        f"from the intended send time. Rounds: {report.get('rounds', 1)} (figures are medians; "
        "ratios show their range over the rounds in brackets).</p>"
        "<table><tr><th>workload</th><th>msg/s shardlog</th><th>msg/s Kafka</th>"
        "<th>MB/s shardlog</th><th>MB/s Kafka</th><th>ratio</th><th>p99 shardlog</th>"
        "<th>p99 Kafka</th><th>p99.9 shardlog</th><th>p99.9 Kafka</th><th>p99.9 ratio</th>"
        "<th>broker CPU s</th><th>peak RSS MiB</th></tr>"
        + "".join(rows) + "</table>" + "".join(charts) + tool_html
        + "<h2>Kafka's settings</h2><pre>" + html.escape(report.get("kafka_server_properties") or "")
        + "\n" + html.escape(report.get("kafka_command") or "") + "</pre>"
        "<h2>Baselines</h2><pre>" + html.escape(json.dumps(report.get("baseline"), indent=2))
        + "</pre></body></html>\n")


if __name__ == "__main__":
    main()
