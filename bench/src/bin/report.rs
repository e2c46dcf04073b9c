//! The results writer: raw `RESULT` / `SKIP` lines in, a markdown table per group and an SVG chart out.
//!
//! Run (`bin/harness.rs` does this after the last round of `bench/run`):
//!
//! ```text
//! cargo run -p bench --release --bin report -- --raw target/bench-raw/RUN.txt \
//!     --md bench/results/DATE.md --svg bench/results/DATE.svg --command "bench/run --quick"
//! ```
//!
//! Each `(group, name, peer)` gets the median of its values over all rounds. The table of each group shows
//! the absolute medians (one column per peer, `ours` first) and `ours / peer` for every peer (below 1 means
//! the project is better: every metric but `ghz` is lower-is-better). The chart shows the same ratios on a
//! log scale; while the project has no number for a row yet, it shows each peer relative to the best peer
//! of that row instead, and says so.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use bench::median;
use bench::rows::{self, rank, COLUMNS, GROUPS, ROWS};
use plotters::prelude::*;

#[derive(Default)]
struct Cell {
    values: Vec<f64>,
    skip: Option<String>,
}

#[derive(Default)]
struct Row {
    metric: String,
    cells: BTreeMap<String, Cell>,
}

type Groups = BTreeMap<String, Vec<(String, Row)>>;

/// Column order: the project first, then the peers in the table's order, then any peer not listed.
fn col_rank(p: &str) -> usize {
    rank(COLUMNS.iter().map(|c| c.name), p)
}

/// Group order: the table's.
fn group_rank(g: &str) -> usize {
    rank(GROUPS.iter().map(|g| g.name), g)
}

fn fields(line: &str) -> BTreeMap<&str, &str> {
    line.split_whitespace()
        .skip(1)
        .filter_map(|kv| kv.split_once('='))
        .collect()
}

fn parse(text: &str) -> Groups {
    let mut groups: Groups = BTreeMap::new();
    for line in text.lines() {
        let is_result = line.starts_with("RESULT ");
        if !is_result && !line.starts_with("SKIP ") {
            continue;
        }
        let f = fields(line);
        let (Some(group), Some(name), Some(peer)) = (f.get("group"), f.get("name"), f.get("peer"))
        else {
            continue;
        };
        let rows = groups.entry(group.to_string()).or_default();
        let idx = match rows.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                rows.push((name.to_string(), Row::default()));
                rows.len() - 1
            }
        };
        let row = &mut rows[idx].1;
        let cell = row.cells.entry(peer.to_string()).or_default();
        if is_result {
            let metric = f
                .iter()
                .find(|(k, _)| !matches!(**k, "group" | "name" | "peer" | "n"));
            if let Some((k, v)) = metric {
                if let Ok(v) = v.parse::<f64>() {
                    cell.values.push(v);
                    row.metric = k.to_string();
                }
            }
        } else {
            cell.skip = Some(f.get("reason").unwrap_or(&"skipped").replace('_', " "));
        }
    }
    for rows in groups.values_mut() {
        rows.sort_by_key(|(name, _)| row_key(name));
    }
    groups
}

fn split_count(name: &str) -> (&str, u64) {
    if let Some((base, c)) = name.rsplit_once('_') {
        let (digits, mult) = match c.as_bytes().last() {
            Some(b'k') => (&c[..c.len() - 1], 1_000),
            Some(b'm') => (&c[..c.len() - 1], 1_000_000),
            _ => (c, 1),
        };
        if let Ok(v) = digits.parse::<u64>() {
            return (base, v * mult);
        }
    }
    (name, 0)
}

/// Numbers in `s` (with `k`/`m` multipliers), in order: `_c50_cpu` -> `[50]`.
fn numbers(s: &str) -> Vec<u64> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let mut v: u64 = s[start..i].parse().unwrap_or(0);
            match b.get(i) {
                Some(b'k') => v *= 1_000,
                Some(b'm') => v *= 1_000_000,
                _ => {}
            }
            out.push(v);
        } else {
            i += 1;
        }
    }
    out
}

fn row_key(name: &str) -> (usize, String, Vec<u64>, String) {
    // The row's base ("echo_64b" for "echo_64b_c50_cpu", "http_w" for "http_w2_c50": rows::row_of), else
    // the name minus its count suffix.
    // Base names in table order; a counted name (`spawn_join_100k`) sorts by base, then by count.
    let listed = rows::row_of(name).map(|r| r.base);
    let base = listed.unwrap_or_else(|| split_count(name).0);
    let rest = &name[base.len()..];
    (
        rank(ROWS.iter().map(|r| r.base), base),
        base.to_owned(),
        numbers(rest),
        rest.to_owned(),
    )
}

fn med(c: &Cell) -> Option<f64> {
    if c.values.is_empty() {
        None
    } else {
        Some(median(&mut c.values.clone()))
    }
}

fn fmt_num(v: f64) -> String {
    if v >= 1000.0 {
        format!("{v:.0}")
    } else if v >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn unit(metric: &str) -> &str {
    match metric {
        "ns_per_op" => "ns/op",
        "bytes_per_task" => "B/task",
        "maps" => "mappings",
        "ns_per_page" => "ns/page",
        "ghz" => "GHz",
        "us_per_req" => "us/req",
        "cpu_us_per_req" => "CPU us/req",
        "us_p50" => "us p50",
        "us_p99" => "us p99",
        "us_late" => "us late",
        "cpu_ns_per_timer" => "CPU ns/timer",
        m => m,
    }
}

/// Peer names in column order, without duplicates.
fn sorted_peers(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut peers: Vec<String> = names.collect();
    peers.sort_by_key(|p| (col_rank(p), p.clone()));
    peers.dedup();
    peers
}

/// Peers appearing in a group, in column order.
fn peers_of(rows: &[(String, Row)]) -> Vec<String> {
    sorted_peers(rows.iter().flat_map(|(_, r)| r.cells.keys().cloned()))
}

fn ordered_groups(groups: &Groups) -> Vec<&String> {
    let mut gs: Vec<&String> = groups.keys().collect();
    gs.sort_by_key(|g| (group_rank(g), (*g).clone()));
    gs
}

fn markdown(
    groups: &Groups,
    command: &str,
    date: &str,
    rounds: usize,
    machine: &str,
    svg: Option<&str>,
) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmark results, {date}\n");
    let _ = writeln!(
        md,
        "Command: `{command}` ({rounds} round(s); each cell is the median over rounds).  "
    );
    let _ = writeln!(md, "Machine: {machine}\n");
    let _ = writeln!(
        md,
        "Every metric except GHz is lower-is-better; `ours / peer` below 1 means this project wins. \
         \"not yet\": the project's side of that row is not written (see `bench/src/ours.rs`).\n"
    );
    if let Some(svg) = svg {
        let _ = writeln!(md, "![ratios]({svg})\n");
    }
    for g in ordered_groups(groups) {
        let rows = &groups[g];
        let peers = peers_of(rows);
        let others: Vec<&String> = peers.iter().filter(|p| *p != "ours").collect();
        // Ratio columns only once the project has a number in this group.
        let has_ours = rows
            .iter()
            .any(|(_, r)| r.cells.get("ours").and_then(med).is_some());
        let _ = writeln!(md, "## {g}\n");
        let mut head = String::from("| measurement | unit |");
        let mut sep = String::from("|---|---|");
        for p in &peers {
            let _ = write!(head, " {p} |");
            sep.push_str("---:|");
        }
        if has_ours {
            for p in &others {
                let _ = write!(head, " ours / {p} |");
                sep.push_str("---:|");
            }
        }
        let _ = writeln!(md, "{head}\n{sep}");
        let mut notes = Vec::new();
        for (name, row) in rows {
            let mut line = format!("| {name} | {} |", unit(&row.metric));
            for p in &peers {
                let cell = row.cells.get(p);
                let s = match cell.map(|c| (med(c), &c.skip)) {
                    Some((Some(v), _)) => fmt_num(v),
                    Some((None, Some(reason))) if reason == "not yet" => "not yet".into(),
                    Some((None, Some(reason))) => {
                        notes.push(format!("{name} / {p}: {reason}"));
                        "skipped".into()
                    }
                    _ => "—".into(),
                };
                let _ = write!(line, " {s} |");
            }
            if has_ours {
                let ours = row.cells.get("ours").and_then(med);
                // "not yet" only where the project said so; a row it does not have at all is "—".
                let ours_not_yet = row
                    .cells
                    .get("ours")
                    .is_some_and(|c| c.skip.as_deref() == Some("not yet"));
                for p in &others {
                    let peer = row.cells.get(*p).and_then(med);
                    let s = match (ours, peer) {
                        (Some(o), Some(v)) if v > 0.0 => format!("{:.2}x", o / v),
                        (None, Some(_)) if ours_not_yet => "not yet".into(),
                        _ => "—".into(),
                    };
                    let _ = write!(line, " {s} |");
                }
            }
            let _ = writeln!(md, "{line}");
        }
        for n in notes {
            let _ = writeln!(md, "\n- {n}");
        }
        md.push('\n');
    }
    let _ = writeln!(md, "## What the rows measure\n");
    // The legend: every row's doc, then the columns that need one (the table in bench/src/rows.rs).
    let rows = ROWS.iter().map(|r| (r.legend, r.doc));
    for (k, v) in rows.chain(COLUMNS.iter().map(|c| (c.name, c.doc))) {
        if !v.is_empty() {
            let _ = writeln!(md, "- `{k}`: {v}");
        }
    }
    let _ = writeln!(
        md,
        "\nSources: `bench/src/bin/peer_*.rs` (corosensei, may, tokio), `bench/peers/go/main.go`, \
         `bench/peers/python/peer.py` (greenlet, gevent), `bench/src/ours.rs` (this project), \
         `bench/src/bin/monkey_thread.rs` (the thread group)."
    );
    md
}

/// One bar of the chart: row label, peer, ratio.
struct Bar {
    row: String,
    peer: String,
    ratio: f64,
}

/// The ratios to chart, and whether they are `ours / peer` (true) or `peer / best peer` (false).
fn ratios(groups: &Groups) -> (Vec<Bar>, bool) {
    let any_ours = groups
        .values()
        .flatten()
        .any(|(_, r)| r.cells.get("ours").and_then(med).is_some());
    let mut bars = Vec::new();
    for g in ordered_groups(groups) {
        if g == "calibration" {
            continue;
        }
        for (name, row) in &groups[g] {
            let label = format!("{g}/{name}");
            let peers: Vec<(String, f64)> = sorted_peers(row.cells.keys().cloned())
                .into_iter()
                .filter(|p| p != "ours")
                .filter_map(|p| row.cells.get(&p).and_then(med).map(|v| (p, v)))
                .filter(|(_, v)| *v > 0.0)
                .collect();
            if any_ours {
                if let Some(o) = row.cells.get("ours").and_then(med) {
                    for (p, v) in peers {
                        bars.push(Bar {
                            row: label.clone(),
                            peer: p,
                            ratio: o / v,
                        });
                    }
                }
            } else if peers.len() >= 2 {
                let best = peers.iter().map(|(_, v)| *v).fold(f64::INFINITY, f64::min);
                for (p, v) in peers {
                    bars.push(Bar {
                        row: label.clone(),
                        peer: p,
                        ratio: v / best,
                    });
                }
            }
        }
    }
    (bars, any_ours)
}

fn color(peer: &str) -> RGBColor {
    match peer {
        "corosensei" => RGBColor(0x4e, 0x79, 0xa7),
        "py-greenlet" => RGBColor(0xf2, 0x8e, 0x2b),
        "py-gevent" => RGBColor(0xe1, 0x57, 0x59),
        "go" => RGBColor(0x76, 0xb7, 0xb2),
        "may" => RGBColor(0x59, 0xa1, 0x4f),
        "tokio" => RGBColor(0xb0, 0x7a, 0xa1),
        "ours-monkey" => RGBColor(0xed, 0xc9, 0x48),
        "ours-hyper" => RGBColor(0xff, 0x9d, 0xa7),
        "ours-raw" => RGBColor(0xba, 0xb0, 0xac),
        _ => RGBColor(0x9c, 0x75, 0x5f),
    }
}

fn chart(groups: &Groups, path: &PathBuf, date: &str) -> Result<(), Box<dyn std::error::Error>> {
    let (bars, ours) = ratios(groups);
    let mut rows: Vec<String> = Vec::new();
    for b in &bars {
        if !rows.contains(&b.row) {
            rows.push(b.row.clone());
        }
    }
    let peers = sorted_peers(bars.iter().map(|b| b.peer.clone()));
    let width = (260 + 70 * rows.len().max(1)) as u32;
    let root = SVGBackend::new(path, (width.max(800), 620)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = if ours {
        format!("ours / peer, median over rounds ({date}); below 1 = this project wins")
    } else {
        format!("peer / best peer per row ({date}; lower is better); the project's own numbers: not yet")
    };
    let (lo, hi) = bars.iter().fold((1.0f64, 1.0f64), |(lo, hi), b| {
        (lo.min(b.ratio), hi.max(b.ratio))
    });
    let lo = 10f64.powf(lo.log10().floor()).min(0.5);
    let hi = 10f64.powf(hi.log10().ceil()).max(2.0);
    let nrows = rows.len().max(1) as f64;
    let mut c = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(170)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..nrows, (lo..hi).log_scale())?;
    c.configure_mesh()
        .disable_x_mesh()
        .disable_x_axis()
        .y_desc("ratio (log)")
        .y_label_formatter(&|v| format!("{v}"))
        .draw()?;
    // The 1.0 line: parity.
    c.draw_series(std::iter::once(PathElement::new(
        vec![(0.0, 1.0), (nrows, 1.0)],
        BLACK.stroke_width(1),
    )))?;
    let slot = 0.8 / peers.len().max(1) as f64;
    for (ri, row) in rows.iter().enumerate() {
        for b in bars.iter().filter(|b| &b.row == row) {
            let pi = peers
                .iter()
                .position(|p| *p == b.peer)
                .unwrap_or(peers.len()) as f64;
            let x0 = ri as f64 + 0.1 + pi * slot;
            // Ratios to ours grow from parity (1.0); peer-vs-best bars grow from the bottom so the best
            // peer (exactly 1.0) still shows.
            let base = if ours { 1.0 } else { lo };
            c.draw_series(std::iter::once(Rectangle::new(
                [(x0, base), (x0 + slot * 0.9, b.ratio)],
                color(&b.peer).filled(),
            )))?;
        }
        let style =
            TextStyle::from(("sans-serif", 12).into_font()).transform(FontTransform::Rotate90);
        let (px, py) = c.backend_coord(&(ri as f64 + 0.5, lo));
        root.draw(&Text::new(row.clone(), (px - 6, py + 8), style))?;
    }
    for (i, p) in peers.iter().enumerate() {
        let (x, y) = (width.max(800) as i32 - 150, 50 + 18 * i as i32);
        root.draw(&Rectangle::new(
            [(x, y), (x + 12, y + 12)],
            color(p).filled(),
        ))?;
        root.draw(&Text::new(p.clone(), (x + 18, y), ("sans-serif", 13)))?;
    }
    root.present()?;
    Ok(())
}

fn main() {
    let mut raw = Vec::new();
    let (mut md_path, mut svg_path) = (None, None);
    let mut command = String::from("bench/run");
    let mut date = String::from("unknown date");
    let mut machine = String::from("unknown");
    let mut rounds = 1usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--raw" => raw.push(PathBuf::from(val())),
            "--md" => md_path = Some(PathBuf::from(val())),
            "--svg" => svg_path = Some(PathBuf::from(val())),
            "--command" => command = val(),
            "--date" => date = val(),
            "--machine" => machine = val(),
            "--rounds" => rounds = val().parse().expect("--rounds takes a count"),
            other => panic!("unknown option {other:?} (known: --raw F, --md F, --svg F, --command C, --date D, --machine M, --rounds N)"),
        }
    }
    let mut text = String::new();
    for p in &raw {
        text.push_str(
            &std::fs::read_to_string(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display())),
        );
        text.push('\n');
    }
    let groups = parse(&text);
    let svg_name = svg_path
        .as_ref()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned());
    if let Some(p) = &svg_path {
        if let Err(e) = chart(&groups, p, &date) {
            eprintln!("report: chart {} failed: {e}", p.display());
        }
    }
    let md = markdown(
        &groups,
        &command,
        &date,
        rounds,
        &machine,
        svg_name.as_deref(),
    );
    match &md_path {
        Some(p) => {
            std::fs::write(p, &md).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
            print!("{md}");
        }
        None => print!("{md}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &str = "\
RESULT group=switch name=roundtrip peer=corosensei ns_per_op=2.000 n=10
RESULT group=switch name=roundtrip peer=corosensei ns_per_op=4.000 n=10
RESULT group=switch name=roundtrip peer=corosensei ns_per_op=3.000 n=10
RESULT group=switch name=roundtrip peer=ours ns_per_op=6.000 n=10
SKIP group=switch name=create_run_finish peer=ours reason=not_yet
RESULT group=switch name=create_run_finish peer=corosensei ns_per_op=10.000 n=10
noise line
";

    #[test]
    fn medians_and_ratios() {
        let g = parse(RAW);
        let md = markdown(&g, "x", "d", 3, "m", None);
        assert!(
            md.contains("| roundtrip | ns/op | 6.00 | 3.00 | 2.00x |"),
            "{md}"
        );
        assert!(
            md.contains("| create_run_finish | ns/op | not yet | 10.00 | not yet |"),
            "{md}"
        );
        let (bars, ours) = ratios(&g);
        assert!(ours);
        assert_eq!(bars.len(), 1);
        assert!((bars[0].ratio - 2.0).abs() < 1e-9);
    }
}
