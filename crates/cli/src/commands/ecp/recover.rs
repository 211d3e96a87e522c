//! `phobos ecp recover`: re-adopts live containers, records the
//! terminations of those that ended while nobody watched, and destroys
//! half-launched containers and orphan cgroups (reference §1.7: the agent
//! then calls `containers` and destroys what it does not know). Progress
//! is logged; any failure makes the call fail so the agent does not start
//! on a state it cannot trust.

use crate::cli::Global;
use crate::context;

pub fn run(global: &Global) -> anyhow::Result<()> {
    let recovery = context::door(global)?.recover()?;
    let report = &recovery.mesos;
    for id in &report.recovered {
        tracing::info!(container_id = %id, "recovered");
    }
    for id in &report.finalized {
        tracing::info!(container_id = %id, "recorded the termination of a container that ended");
    }
    for id in &report.destroyed {
        tracing::info!(container_id = %id, "destroyed an interrupted launch");
    }
    for name in &report.orphan_cgroups {
        tracing::info!(cgroup = %name, "destroyed an orphan cgroup");
    }
    for id in &report.busy {
        tracing::info!(container_id = %id, "skipped: another phobos process is working on it");
    }
    if let Some(d) = &recovery.docker {
        for id in &d.recovered {
            tracing::info!(container_id = %id, "recovered a docker container");
        }
        for id in &d.finalized {
            tracing::info!(container_id = %id, "recorded the termination of a docker container");
        }
        for name in &d.orphans_killed {
            tracing::info!(name = %name, "stopped and removed an orphan docker container");
        }
    }
    for key in &recovery.released_ids {
        tracing::info!(container_id = %key, "released the ID of an unfinished launch");
    }
    let errors = recovery.errors();
    if errors.is_empty() {
        return Ok(());
    }
    anyhow::bail!("recover: {}", errors.join("; "))
}
