//! `phobos recover`: re-adopts live containers and destroys orphans (cgroups
//! or runtime directories with no live init, half-launched containers).

use crate::cli::Global;
use crate::context;

pub fn run(global: &Global, json: bool) -> anyhow::Result<u8> {
    let report = context::recover(global)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for id in &report.recovered {
            println!("recovered {id}");
        }
        for id in &report.finalized {
            println!("recorded the termination of {id}");
        }
        for id in &report.destroyed {
            println!("destroyed {id} (interrupted launch)");
        }
        for name in &report.orphan_cgroups {
            println!("destroyed orphan cgroup {}/{name}", global.cgroups_root);
        }
        for path in &report.abandoned {
            println!("removed abandoned launch {}", path.display());
        }
        for id in &report.busy {
            println!("skipped {id}: another phobos process is working on it");
        }
    }
    for e in &report.errors {
        eprintln!("phobos: recover: {e}");
    }
    Ok(if report.errors.is_empty() { 0 } else { 1 })
}
