//! `top`'s table: which rows, in which order (sorted siblings, nested
//! containers indented under their parent), filtered by ID prefix, and
//! each frame as lines cut to the terminal's width.

use std::collections::HashMap;

use phobos_core::{ContainerId, ContainerState};
use phobos_runtime::top::Row;

use crate::commands::ps::label;
use crate::commands::stats::human_bytes;

/// The column a frame is sorted by (`-s`, or a key while it runs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SortKey {
    /// CPU % (key `c`).
    Cpu,
    /// Memory (key `m`).
    Mem,
    /// PIDs (key `p`).
    Pids,
    /// Container ID (key `i`).
    Id,
    /// Uptime (key `u`).
    Uptime,
    /// Network receive + send rate (key `n`).
    Net,
}

impl SortKey {
    pub fn from_key(key: u8) -> Option<Self> {
        Some(match key {
            b'c' | b'C' => Self::Cpu,
            b'm' | b'M' => Self::Mem,
            b'p' | b'P' => Self::Pids,
            b'i' | b'I' => Self::Id,
            b'u' | b'U' => Self::Uptime,
            b'n' | b'N' => Self::Net,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Cpu => "CPU",
            Self::Mem => "MEM",
            Self::Pids => "PIDS",
            Self::Id => "ID",
            Self::Uptime => "UPTIME",
            Self::Net => "NET",
        }
    }
}

/// How the table is shown.
#[derive(Clone, Debug)]
pub struct View {
    pub sort: SortKey,
    /// Reversed from the column's natural order (largest first for
    /// numbers, A to Z for IDs).
    pub reverse: bool,
    /// Only IDs starting with this (nested ones: their full ID).
    pub filter: String,
}

/// The rows to show, in order, each with its indentation depth.
pub fn arrange<'r>(rows: &'r [Row], view: &View) -> Vec<(&'r Row, usize)> {
    let shown: Vec<&Row> = rows
        .iter()
        .filter(|r| r.id.as_str().starts_with(view.filter.as_str()))
        .collect();
    let present: std::collections::HashSet<&ContainerId> = shown.iter().map(|r| &r.id).collect();
    let mut children: HashMap<Option<ContainerId>, Vec<&Row>> = HashMap::new();
    for row in &shown {
        // A container whose parent is filtered out stands on its own.
        let parent = row.id.parent().filter(|p| present.contains(p));
        children.entry(parent).or_default().push(row);
    }
    for siblings in children.values_mut() {
        siblings.sort_by(|a, b| compare(a, b, view));
    }
    let mut out = Vec::with_capacity(shown.len());
    let mut stack: Vec<(&Row, usize)> = children
        .get(&None)
        .map(|v| v.iter().rev().map(|r| (*r, 0)).collect())
        .unwrap_or_default();
    while let Some((row, depth)) = stack.pop() {
        out.push((row, depth));
        if let Some(kids) = children.get(&Some(row.id.clone())) {
            stack.extend(kids.iter().rev().map(|r| (*r, depth + 1)));
        }
    }
    out
}

fn compare(a: &Row, b: &Row, view: &View) -> std::cmp::Ordering {
    let num = |r: &Row| -> f64 {
        match view.sort {
            SortKey::Cpu => r.cpu_percent.unwrap_or(-1.0),
            SortKey::Mem => r.mem_bytes.map_or(-1.0, |v| v as f64),
            SortKey::Pids => r.pids.map_or(-1.0, |v| v as f64),
            SortKey::Uptime => r.uptime_secs,
            SortKey::Net => match (r.net_rx_rate, r.net_tx_rate) {
                (None, None) => -1.0,
                (rx, tx) => rx.unwrap_or(0.0) + tx.unwrap_or(0.0),
            },
            SortKey::Id => 0.0,
        }
    };
    let by_id = a.id.as_str().cmp(b.id.as_str());
    let natural = match view.sort {
        SortKey::Id => by_id,
        _ => num(b).total_cmp(&num(a)).then(by_id),
    };
    if view.reverse {
        natural.reverse()
    } else {
        natural
    }
}

/// What the frame's first line says besides the table.
pub struct Status<'a> {
    pub clock: &'a str,
    /// The filter being typed after `/`, if any.
    pub typing: Option<&'a str>,
}

/// One frame: a summary line, the column headers and the rows, at most
/// `height` lines (`None`: all) each at most `width` characters.
pub fn frame(
    rows: &[Row],
    view: &View,
    status: &Status<'_>,
    width: usize,
    height: Option<usize>,
) -> Vec<String> {
    let arranged = arrange(rows, view);
    let running = rows
        .iter()
        .filter(|r| r.state == ContainerState::Running)
        .count();
    let mut summary = format!(
        "phobos top - {}  {} containers, {} running  sort: {}{}",
        status.clock,
        rows.len(),
        running,
        view.sort.name(),
        if view.reverse { " (reversed)" } else { "" }
    );
    match status.typing {
        Some(text) => summary.push_str(&format!("  filter: {text}_")),
        None if !view.filter.is_empty() => {
            summary.push_str(&format!("  filter: {}", view.filter));
        }
        None => {}
    }
    let id_width = arranged
        .iter()
        .map(|(r, depth)| 2 * depth + r.id.as_str().chars().count())
        .max()
        .unwrap_or(2)
        .clamp(2, 40);
    let mut lines = vec![
        summary.trim_end().to_owned(),
        format!(
            "{:<id_width$}  {:<12}  {:>6}  {:>9}  {:>9}  {:>5}  {:>9}  {:>9}  {:>8}  COMMAND",
            "ID", "STATE", "CPU %", "MEM", "LIMIT", "PIDS", "RX/s", "TX/s", "UPTIME"
        ),
    ];
    let dash = || "-".to_owned();
    for (row, depth) in arranged {
        let id = format!("{}{}", "  ".repeat(depth), shown_id(row, depth));
        lines.push(format!(
            "{:<id_width$}  {:<12}  {:>6}  {:>9}  {:>9}  {:>5}  {:>9}  {:>9}  {:>8}  {}",
            cut(&id, id_width),
            cut(&label(row.state, row.termination.as_ref()), 12),
            row.cpu_percent.map_or_else(dash, |v| format!("{v:.1}")),
            row.mem_bytes.map_or_else(dash, human_bytes),
            row.mem_limit_bytes.map_or_else(dash, human_bytes),
            row.pids.map_or_else(dash, |v| v.to_string()),
            row.net_rx_rate.map_or_else(dash, rate),
            row.net_tx_rate.map_or_else(dash, rate),
            if row.state == ContainerState::Terminated {
                dash()
            } else {
                uptime(row.uptime_secs)
            },
            crate::commands::ps::one_line(&row.command),
        ));
    }
    if let Some(h) = height {
        lines.truncate(h.max(1));
    }
    lines.into_iter().map(|l| cut(&l, width)).collect()
}

/// A nested container shows its own part of the ID under its parent.
fn shown_id(row: &Row, depth: usize) -> &str {
    if depth > 0 {
        row.id.leaf()
    } else {
        row.id.as_str()
    }
}

fn rate(bytes_per_sec: f64) -> String {
    human_bytes(bytes_per_sec.max(0.0).round() as u64)
}

/// `3d04h`, `5h07m`, `12m30s`, `42s`.
pub fn uptime(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d{h:02}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// `text` cut to `width` characters.
fn cut(text: &str, width: usize) -> String {
    match text.char_indices().nth(width) {
        Some((at, _)) => text[..at].to_owned(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phobos_runtime::top::Kind;

    fn row(id: &str, cpu: Option<f64>, mem: Option<u64>) -> Row {
        Row {
            id: ContainerId::parse_path(id).unwrap(),
            kind: Kind::Mesos,
            state: ContainerState::Running,
            termination: None,
            cpu_percent: cpu,
            mem_bytes: mem,
            mem_limit_bytes: None,
            pids: None,
            net_rx_rate: None,
            net_tx_rate: None,
            uptime_secs: 5.0,
            command: "sleep 1".to_owned(),
        }
    }

    fn order(rows: &[Row], view: &View) -> Vec<(String, usize)> {
        arrange(rows, view)
            .into_iter()
            .map(|(r, d)| (r.id.to_string(), d))
            .collect()
    }

    fn view(sort: SortKey) -> View {
        View {
            sort,
            reverse: false,
            filter: String::new(),
        }
    }

    #[test]
    fn sorts_siblings_and_keeps_children_under_their_parent() {
        let rows = [
            row("a", Some(1.0), Some(10)),
            row("a.x", Some(50.0), Some(1)),
            row("a.y", Some(70.0), Some(5)),
            row("b", Some(90.0), Some(2)),
            row("a-z", None, None),
        ];
        let got = order(&rows, &view(SortKey::Cpu));
        let want = [("b", 0), ("a", 0), ("a.y", 1), ("a.x", 1), ("a-z", 0)];
        assert_eq!(got, want.map(|(i, d)| (i.to_owned(), d)));
        let mut v = view(SortKey::Id);
        assert_eq!(
            order(&rows, &v)
                .iter()
                .map(|(i, _)| i.as_str())
                .collect::<Vec<_>>(),
            ["a", "a.x", "a.y", "a-z", "b"]
        );
        v.reverse = true;
        assert_eq!(
            order(&rows, &v)
                .iter()
                .map(|(i, _)| i.as_str())
                .collect::<Vec<_>>(),
            ["b", "a-z", "a", "a.y", "a.x"]
        );
        assert_eq!(order(&rows, &view(SortKey::Mem))[0].0, "a");
    }

    #[test]
    fn filters_by_prefix_and_orphans_stand_alone() {
        let rows = [
            row("a", None, None),
            row("a.x", None, None),
            row("b", None, None),
        ];
        let mut v = view(SortKey::Id);
        v.filter = "a.".to_owned();
        assert_eq!(order(&rows, &v), [("a.x".to_owned(), 0)]);
        v.filter = "a".to_owned();
        assert_eq!(order(&rows, &v).len(), 2);
        v.filter = "zzz".to_owned();
        assert!(order(&rows, &v).is_empty());
    }

    #[test]
    fn frames_fit_the_terminal() {
        let rows = [row("a", Some(12.345), Some(2048)), row("a.x", None, None)];
        let status = Status {
            clock: "12:00:00",
            typing: Some("a"),
        };
        let lines = frame(&rows, &view(SortKey::Cpu), &status, 200, None);
        assert!(lines[0].contains("2 containers, 2 running"), "{lines:?}");
        assert!(lines[0].contains("filter: a_"), "{lines:?}");
        assert!(lines[1].starts_with("ID"));
        assert!(
            lines[2].starts_with("a  ") && lines[2].contains("12.3"),
            "{lines:?}"
        );
        assert!(lines[2].contains("2.0KiB"), "{lines:?}");
        assert!(lines[3].starts_with("  x "), "{lines:?}");
        let small = frame(&rows, &view(SortKey::Cpu), &status, 10, Some(2));
        assert_eq!(small.len(), 2);
        assert!(small.iter().all(|l| l.chars().count() <= 10));
    }

    #[test]
    fn uptimes_read_like_top() {
        assert_eq!(uptime(42.9), "42s");
        assert_eq!(uptime(750.0), "12m30s");
        assert_eq!(uptime(5.0 * 3600.0 + 420.0), "5h07m");
        assert_eq!(uptime(3.0 * 86_400.0 + 4.0 * 3600.0), "3d04h");
        assert_eq!(uptime(-1.0), "0s");
    }
}
