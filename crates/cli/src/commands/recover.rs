//! `phobos recover`: re-adopts live containers and destroys orphans (cgroups
//! or runtime directories with no live init, half-launched containers).

use std::io::{BufWriter, Write};

use crate::cli::Global;
use crate::context;

pub fn run(global: &Global, json: bool) -> anyhow::Result<u8> {
    let door = context::door(global)?;
    let recovery = door.recover()?;
    let errors = recovery.errors();
    // One buffered writer: a line-buffered stdout would write(2) once per
    // recovered container, thousands of times.
    let mut out = BufWriter::with_capacity(1 << 16, crate::output::stdout());
    if json {
        serde_json::to_writer_pretty(&mut out, &recovery)?;
        writeln!(out)?;
    } else {
        let report = &recovery.mesos;
        for id in &report.recovered {
            writeln!(out, "recovered {id}")?;
        }
        for id in &report.finalized {
            writeln!(out, "recorded the termination of {id}")?;
        }
        for id in &report.destroyed {
            writeln!(out, "destroyed {id} (interrupted launch)")?;
        }
        for name in &report.orphan_cgroups {
            writeln!(
                out,
                "destroyed orphan cgroup {}/{name}",
                door.settings().cgroups_root()
            )?;
        }
        for path in &report.abandoned {
            writeln!(out, "removed abandoned launch {}", path.display())?;
        }
        for (id, why) in &report.malformed {
            writeln!(out, "removed malformed entry {id} ({why})")?;
        }
        for id in &report.busy {
            writeln!(out, "skipped {id}: another phobos process is working on it")?;
        }
        if let Some(d) = &recovery.docker {
            for id in &d.recovered {
                writeln!(out, "recovered {id} (docker)")?;
            }
            for id in &d.finalized {
                writeln!(out, "recorded the termination of {id} (docker)")?;
            }
            for name in &d.orphans_killed {
                writeln!(out, "stopped and removed orphan docker container {name}")?;
            }
        }
        for key in &recovery.released_ids {
            writeln!(out, "released the ID of an unfinished launch {key}")?;
        }
    }
    out.flush()?;
    for e in &errors {
        errln!("phobos: recover: {e}");
    }
    Ok(if errors.is_empty() { 0 } else { 1 })
}
