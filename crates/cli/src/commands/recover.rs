//! `phobos recover`: re-adopts live containers and destroys orphans (cgroups
//! or runtime directories with no live init, half-launched containers).

use crate::cli::Global;
use crate::context;

pub fn run(global: &Global, json: bool) -> anyhow::Result<u8> {
    let door = context::door(global)?;
    let recovery = door.recover()?;
    let errors = recovery.errors();
    if json {
        println!("{}", serde_json::to_string_pretty(&recovery)?);
    } else {
        let report = &recovery.mesos;
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
            println!(
                "destroyed orphan cgroup {}/{name}",
                door.settings().cgroups_root()
            );
        }
        for path in &report.abandoned {
            println!("removed abandoned launch {}", path.display());
        }
        for (id, why) in &report.malformed {
            println!("removed malformed entry {id} ({why})");
        }
        for id in &report.busy {
            println!("skipped {id}: another phobos process is working on it");
        }
        if let Some(d) = &recovery.docker {
            for id in &d.recovered {
                println!("recovered {id} (docker)");
            }
            for id in &d.finalized {
                println!("recorded the termination of {id} (docker)");
            }
            for name in &d.orphans_killed {
                println!("stopped and removed orphan docker container {name}");
            }
        }
        for key in &recovery.released_ids {
            println!("released the ID of an unfinished launch {key}");
        }
    }
    for e in &errors {
        eprintln!("phobos: recover: {e}");
    }
    Ok(if errors.is_empty() { 0 } else { 1 })
}
