//! `GET /`: a small self-contained status page (no scripts, no external
//! assets): health, per-shard load, topics, partitions with their shard
//! and high watermark, consumer groups with their lag. It refreshes itself
//! every five seconds. Lists are cut at the same caps as the metrics.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use super::exposition::Caps;
use super::gather::BrokerView;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 .4em}\
table{border-collapse:collapse}td,th{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:right}\
td:first-child,th:first-child{text-align:left}th{background:#f4f4f4}\
.ok{color:#0a0}.bad{color:#c00}.note{color:#777;font-size:.9em}\
.bar{display:inline-block;height:.7em;background:#4a90d9;vertical-align:middle}";

fn table(out: &mut String, headers: &[&str], rows: &[Vec<String>]) {
    out.push_str("<table><tr>");
    for h in headers {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            // Cells are escaped by the caller (some hold markup).
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

fn cut_note(out: &mut String, shown: usize, total: usize, what: &str) {
    if total > shown {
        let _ = write!(
            out,
            "<p class=note>{shown} of {total} {what} shown (shardlog.metrics.max.*)</p>"
        );
    }
}

/// The page for `view`.
pub fn render(view: &BrokerView, caps: Caps) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html><head><meta charset=utf-8>\
         <meta http-equiv=refresh content=5><title>shardlog node {}</title>\
         <style>{STYLE}</style></head><body>",
        view.node_id
    );
    let _ = write!(out, "<h1>shardlog node {}</h1>", view.node_id);
    match &view.unhealthy {
        None => out.push_str("<p class=ok id=health>healthy</p>"),
        Some(why) => {
            let _ = write!(out, "<p class=bad id=health>unhealthy: {}</p>", escape(why));
        }
    }
    let shards: Vec<_> = view.shards.iter().flatten().collect();

    out.push_str("<h2>Shards</h2>");
    let rows: Vec<Vec<String>> = view
        .shards
        .iter()
        .enumerate()
        .map(|(i, s)| match s {
            None => vec![i.to_string(), "<span class=bad>no answer</span>".into()],
            Some(s) => {
                let pct = (s.busy_ratio * 100.0).clamp(0.0, 100.0);
                vec![
                    i.to_string(),
                    if s.serving {
                        "<span class=ok>serving</span>".into()
                    } else {
                        "<span class=bad>not serving</span>".into()
                    },
                    format!(
                        "{pct:.1}% <span class=bar style=\"width:{:.0}px\"></span>",
                        pct
                    ),
                    s.connections.to_string(),
                    s.partitions.len().to_string(),
                    format!(
                        "{} / {}",
                        bytes(s.request_memory_bytes),
                        bytes(s.request_memory_limit)
                    ),
                ]
            }
        })
        .collect();
    table(
        &mut out,
        &[
            "shard",
            "state",
            "busy",
            "connections",
            "partitions",
            "request memory",
        ],
        &rows,
    );

    let mut partitions: Vec<_> = shards.iter().flat_map(|s| &s.partitions).collect();
    partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    let mut topics: BTreeMap<&str, (usize, u64, u64, u64)> = BTreeMap::new();
    for p in &partitions {
        let t = topics.entry(&p.topic).or_default();
        t.0 += 1;
        t.1 += p.messages_in;
        t.2 += p.bytes_in;
        t.3 += p.bytes_out;
    }
    out.push_str("<h2>Topics</h2>");
    let rows: Vec<Vec<String>> = topics
        .iter()
        .take(caps.topics)
        .map(|(t, v)| {
            vec![
                escape(t),
                v.0.to_string(),
                v.1.to_string(),
                bytes(v.2),
                bytes(v.3),
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            "topic",
            "partitions here",
            "records in",
            "bytes in",
            "bytes out",
        ],
        &rows,
    );
    cut_note(&mut out, rows.len(), topics.len(), "topics");

    out.push_str("<h2>Partitions</h2>");
    let rows: Vec<Vec<String>> = partitions
        .iter()
        .take(caps.partitions)
        .map(|p| {
            vec![
                escape(&p.topic),
                p.partition.to_string(),
                p.shard.to_string(),
                p.log_start_offset.to_string(),
                p.high_watermark.to_string(),
                bytes(p.size_bytes),
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            "topic",
            "partition",
            "shard",
            "log start",
            "high watermark",
            "size",
        ],
        &rows,
    );
    cut_note(&mut out, rows.len(), partitions.len(), "partitions");

    let hw: HashMap<(&str, i32), i64> = partitions
        .iter()
        .map(|p| ((p.topic.as_str(), p.partition), p.high_watermark))
        .collect();
    let mut groups: Vec<_> = shards.iter().flat_map(|s| &s.groups).collect();
    groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    out.push_str("<h2>Consumer groups</h2>");
    let rows: Vec<Vec<String>> = groups
        .iter()
        .take(caps.groups)
        .map(|g| {
            let lags: Vec<String> = g
                .offsets
                .iter()
                .map(|(t, p, o)| match hw.get(&(t.as_str(), *p)) {
                    Some(h) => format!("{}-{p}: {}", escape(t), (h - o).max(0)),
                    None => format!("{}-{p}: committed {o}", escape(t)),
                })
                .collect();
            let total: i64 = g
                .offsets
                .iter()
                .filter_map(|(t, p, o)| hw.get(&(t.as_str(), *p)).map(|h| (h - o).max(0)))
                .sum();
            vec![
                escape(&g.group_id),
                g.state.to_string(),
                g.members.to_string(),
                total.to_string(),
                lags.join("<br>"),
            ]
        })
        .collect();
    table(
        &mut out,
        &["group", "state", "members", "lag", "lag by partition"],
        &rows,
    );
    cut_note(&mut out, rows.len(), groups.len(), "groups");
    out.push_str(
        "<p class=note>Metrics for Prometheus: <a href=\"/metrics\">/metrics</a>; \
         health: <a href=\"/health\">/health</a>.</p></body></html>\n",
    );
    out
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves text from clients (topic and group names) cannot inject
    // markup.
    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<script>\"x\"&'y'</script>"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;"
        );
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
    }
}
