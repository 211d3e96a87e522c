//! `phobos ecp recover`: re-adopts live containers, records the
//! terminations of those that ended while nobody watched, and destroys
//! half-launched containers and orphan cgroups (reference §1.7: the agent
//! then calls `containers` and destroys what it does not know). Progress
//! is logged; any failure makes the call fail so the agent does not start
//! on a state it cannot trust.

use crate::cli::Global;
use crate::context;

pub fn run(global: &Global) -> anyhow::Result<()> {
    let report = context::recover(global)?;
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
    let mut errors = report.errors;
    let docker = context::docker(global);
    let has_records = !docker.store().list()?.is_empty();
    let enabled = context::settings(global)
        .config
        .containerizers
        .contains(&phobos_config::Containerizer::Docker);
    if has_records || (enabled && docker.settings().socket.exists()) {
        match context::block_on(docker.recover())? {
            Ok(d) => {
                for id in &d.recovered {
                    tracing::info!(container_id = %id, "recovered a docker container");
                }
                for id in &d.finalized {
                    tracing::info!(container_id = %id, "recorded the termination of a docker container");
                }
                for name in &d.orphans_killed {
                    tracing::info!(name = %name, "stopped and removed an orphan docker container");
                }
                errors.extend(d.errors);
            }
            Err(e) if has_records => errors.push(format!("docker: {e}")),
            Err(e) => tracing::warn!(error = %e, "skipping docker recovery"),
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    anyhow::bail!("recover: {}", errors.join("; "))
}
