//! `phobos ps`: every container with its state, pid, start time, CPU and
//! memory use, address (the first of its own networks) and command.
//!
//! CPU % is the lifetime average, as ps(1) computes it: (user + system CPU
//! seconds) / seconds since the container started × 100 (so 2 busy cores
//! show 200 %). MEM is the resident set (`mem_rss_bytes`). Both come from
//! the container's isolators; `-` when none measures them.

use std::collections::HashMap;
use std::io::{BufWriter, Write};

use phobos_core::{ContainerState, ResourceStatistics, Termination};

use crate::cli::Global;
use crate::context;

pub fn run(global: &Global, json: bool, quiet: bool) -> anyhow::Result<u8> {
    let door = context::door(global)?;
    let containers = door.list()?;
    // One buffered writer for the whole listing: a line-buffered stdout
    // would write(2) once per row, thousands of times.
    let mut out = BufWriter::with_capacity(1 << 16, crate::output::stdout());
    if quiet {
        print_ids(&mut out, containers.iter().map(|c| c.id().as_str()))?;
        return Ok(0);
    }
    if json {
        serde_json::to_writer_pretty(&mut out, &containers)?;
        writeln!(out)?;
        out.flush()?;
        return Ok(0);
    }
    let running: Vec<_> = containers
        .iter()
        .filter(|c| c.state() == ContainerState::Running)
        .map(|c| c.id().clone())
        .collect();
    let usage: HashMap<_, ResourceStatistics> = door
        .usage_of(&running)
        .into_iter()
        .filter_map(|(id, r)| Some((id, r.ok()??)))
        .collect();
    print_header(&mut out)?;
    for c in &containers {
        print_row(
            &mut out,
            &Row {
                id: c.id().as_str(),
                label: label(c.state(), c.termination()),
                pid: c.pid(),
                started_at: c.started_at(),
                address: c.address(),
                command: c.command(),
                stats: usage.get(c.id()),
            },
        )?;
    }
    out.flush()?;
    Ok(0)
}

/// `ps -q`: the IDs alone, one a line, in the listing's order.
pub(crate) fn print_ids<'a>(
    out: &mut impl Write,
    ids: impl Iterator<Item = &'a str>,
) -> std::io::Result<()> {
    for id in ids {
        writeln!(out, "{id}")?;
    }
    out.flush()
}

/// One row of the table, from the door's summary or the agent's.
pub(crate) struct Row<'a> {
    pub id: &'a str,
    pub label: String,
    pub pid: Option<i32>,
    pub started_at: f64,
    pub address: Option<&'a str>,
    pub command: String,
    pub stats: Option<&'a ResourceStatistics>,
}

pub(crate) fn print_header(out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<36}  {:<12}  {:>7}  {:>6}  {:>9}  {:<20}  {:<15}  COMMAND",
        "ID", "STATE", "PID", "CPU %", "MEM", "STARTED", "ADDRESS"
    )
}

pub(crate) fn print_row(out: &mut impl Write, row: &Row<'_>) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<36}  {:<12}  {:>7}  {:>6}  {:>9}  {:<20}  {:<15}  {}",
        row.id,
        row.label,
        row.pid.map_or_else(|| "-".to_owned(), |p| p.to_string()),
        row.stats
            .and_then(|s| cpu_percent(s, row.started_at))
            .map_or_else(|| "-".to_owned(), |p| format!("{p:.1}")),
        row.stats
            .and_then(|s| s.mem_rss_bytes.or(s.mem_total_bytes))
            .map_or_else(|| "-".to_owned(), super::stats::human_bytes),
        phobos_core::time::rfc3339(row.started_at),
        row.address.unwrap_or("-"),
        one_line(&row.command)
    )
}

/// `text` on one table row: control characters (a newline in a command)
/// shown as escapes, the rest as it is.
pub(crate) fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Lifetime CPU use in percent of one CPU.
fn cpu_percent(s: &ResourceStatistics, started_at: f64) -> Option<f64> {
    let busy = s.cpus_user_time_secs? + s.cpus_system_time_secs?;
    let wall = s.timestamp - started_at;
    (wall > 0.0).then(|| 100.0 * busy / wall)
}

/// A state for listings, with how a TERMINATED container ended:
/// `EXITED(7)`, `KILLED(9)`, or `FAILED`.
pub fn label(state: ContainerState, termination: Option<&Termination>) -> String {
    match (state, termination) {
        (ContainerState::Terminated, Some(t)) => match t.status {
            Some(s) if s.exit_code().is_some() => format!("EXITED({})", s.shell_exit_code()),
            Some(s) => format!("KILLED({})", s.signal().unwrap_or(0)),
            None => "FAILED".to_owned(),
        },
        (state, _) => state.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rows_stay_on_one_line() {
        assert_eq!(
            super::one_line("sh -c 'echo \"\nb\"'"),
            "sh -c 'echo \"\\nb\"'"
        );
        assert_eq!(super::one_line("a\tb\u{1b}[2J"), "a\\tb\\u{1b}[2J");
        assert_eq!(super::one_line("héllo"), "héllo");
    }
}
