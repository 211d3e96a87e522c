//! `phobos stats`: a container's `ResourceStatistics` (Mesos field names and
//! meanings, §8), or those of every running container in one call.

use std::io::{BufWriter, Write};

use phobos_core::{Operation, ResourceStatistics};
use serde::Serialize;

use crate::cli::Global;
use crate::context;

/// One entry of the all-containers listing (the shape of the v1 API's
/// `GET_CONTAINERS`: an ID and its statistics).
#[derive(Serialize)]
struct Entry<'a> {
    container_id: &'a str,
    resource_statistics: &'a ResourceStatistics,
}

pub fn run(global: &Global, id: Option<&str>, json: bool) -> anyhow::Result<u8> {
    if let Some(text) = id {
        let id = super::parse_id(text)?;
        let stats = super::statistics(super::apply_known(global, &id, Operation::Usage)?)?;
        if json {
            outln!("{}", serde_json::to_string(&stats)?);
        } else {
            print_table(&[(id.to_string(), stats)])?;
        }
        return Ok(0);
    }
    let door = context::door(global)?;
    let all = door.usage_all()?;
    let mut rows = Vec::with_capacity(all.len());
    for (id, result) in all {
        match result {
            Ok(Some(stats)) => rows.push((id.to_string(), stats)),
            // Gone or ended since it was listed: not running any more.
            Ok(None) => {}
            Err(e) => errln!("phobos: container {id}: {e}"),
        }
    }
    if json {
        let entries: Vec<Entry<'_>> = rows
            .iter()
            .map(|(id, s)| Entry {
                container_id: id,
                resource_statistics: s,
            })
            .collect();
        let mut out = BufWriter::with_capacity(1 << 16, crate::output::stdout());
        serde_json::to_writer(&mut out, &entries)?;
        writeln!(out)?;
        out.flush()?;
    } else {
        print_table(&rows)?;
    }
    Ok(0)
}

/// The table, through one buffered writer (one write(2) per 64 KiB, not
/// one per row).
fn print_table(rows: &[(String, ResourceStatistics)]) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 16, crate::output::stdout());
    writeln!(
        out,
        "{:<36}  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}  {:>6}  {:>10}  {:>10}  {:>10}  {:>10}",
        "ID",
        "USER (s)",
        "SYSTEM (s)",
        "RSS",
        "MEM",
        "MEM LIMIT",
        "PROCS",
        "NET RX",
        "NET TX",
        "DISK",
        "DISK LIMIT"
    )?;
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    for (id, s) in rows {
        writeln!(
            out,
            "{:<36}  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}  {:>6}  {:>10}  {:>10}  {:>10}  {:>10}",
            id,
            opt(s.cpus_user_time_secs.map(|v| format!("{v:.2}"))),
            opt(s.cpus_system_time_secs.map(|v| format!("{v:.2}"))),
            opt(s.mem_rss_bytes.map(human_bytes)),
            opt(s.mem_total_bytes.map(human_bytes)),
            opt(s.mem_limit_bytes.map(human_bytes)),
            opt(s.processes.map(|v| v.to_string())),
            opt(s.net_rx_bytes.map(human_bytes)),
            opt(s.net_tx_bytes.map(human_bytes)),
            opt(s.disk_used_bytes.map(human_bytes)),
            opt(s.disk_limit_bytes.map(human_bytes)),
        )?;
    }
    out.flush()
}

/// `12.5MiB`-style sizes for tables.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b}B")
    } else {
        format!("{v:.1}{}", UNITS[unit])
    }
}
