//! `phobos recover`: re-adopts live containers and destroys orphans (cgroups
//! or runtime directories with no live init, half-launched containers).

use phobos_config::Containerizer;
use phobos_docker::DockerRecoverReport;

use crate::cli::Global;
use crate::context;

pub fn run(global: &Global, json: bool) -> anyhow::Result<u8> {
    let report = context::recover(global)?;
    let docker = recover_docker(global)?;
    let docker_acted = docker.as_ref().is_some_and(|d| {
        !(d.recovered.is_empty()
            && d.finalized.is_empty()
            && d.orphans_killed.is_empty()
            && d.errors.is_empty())
    });
    if json {
        if docker_acted {
            let mut value = serde_json::to_value(&report)?;
            if let Some(map) = value.as_object_mut() {
                map.insert("docker".to_owned(), serde_json::to_value(&docker)?);
            }
            println!("{}", serde_json::to_string_pretty(&value)?);
        } else {
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
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
        for (id, why) in &report.malformed {
            println!("removed malformed entry {id} ({why})");
        }
        for id in &report.busy {
            println!("skipped {id}: another phobos process is working on it");
        }
    }
    let docker_errors = docker.as_ref().map_or(&[][..], |d| &d.errors[..]);
    if let (false, Some(d)) = (json, &docker) {
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
    for e in report.errors.iter().chain(docker_errors) {
        eprintln!("phobos: recover: {e}");
    }
    Ok(if report.errors.is_empty() && docker_errors.is_empty() {
        0
    } else {
        1
    })
}

/// The Docker containerizer's recovery: always when it has records, and
/// when it is enabled (`containerizers`) and an engine socket exists, to
/// find orphans whose records were lost. No engine and no records is not
/// an error.
fn recover_docker(global: &Global) -> anyhow::Result<Option<DockerRecoverReport>> {
    let docker = context::docker(global);
    let has_records = !docker.store().list()?.is_empty();
    let settings = context::settings(global);
    let enabled = settings
        .config
        .containerizers
        .contains(&Containerizer::Docker);
    if !(has_records || (enabled && docker.settings().socket.exists())) {
        return Ok(None);
    }
    match context::block_on(docker.recover())? {
        Ok(report) => Ok(Some(report)),
        Err(e) if has_records => Ok(Some(DockerRecoverReport {
            errors: vec![format!("docker: {e}")],
            ..DockerRecoverReport::default()
        })),
        Err(e) => {
            tracing::warn!(error = %e, "skipping docker recovery");
            Ok(None)
        }
    }
}
