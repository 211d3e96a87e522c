//! `phobos ecp launch`: reads a `containerizer.Launch`, launches the
//! executor and returns once the container is RUNNING (the agent queues
//! every other call for the container behind this one). The init helper
//! outlives this process; `wait`, `usage`, `update` and `destroy` find the
//! container through the runtime directory.
//!
//! Afterwards, at most once per interval, terminated containers' state is
//! swept (see `phobos_mesos::sweep`): a `stat` on every other launch.

use anyhow::Context;
use phobos_core::{IsolatorFlags, LauncherKind};
use phobos_mesos::{SweepPolicy, isolator};
use phobos_proto::containerizer::Launch;

use super::docker;
use super::translate::{self, Route, Settings};
use crate::cli::{EcpCall, Global};
use crate::context;
use crate::error::usage;
use phobos_config::Containerizer;

pub fn run(global: &Global) -> anyhow::Result<()> {
    let request: Launch = super::read_input()?;
    let id = super::container_id(&request.container_id)?;
    let span = super::container_span(EcpCall::Launch, &id);
    let _entered = span.enter();

    let settings = context::settings(global);
    let config = &settings.config;
    let root = context::euid() == 0;
    let launcher = match config.launcher {
        phobos_config::Launcher::Linux if root => LauncherKind::Linux,
        phobos_config::Launcher::Linux => {
            tracing::warn!("not running as root: using the posix launcher");
            LauncherKind::Posix
        }
        phobos_config::Launcher::Posix => LauncherKind::Posix,
    };
    let containerizer = context::containerizer(global)?;
    let isolation = match settings.source("isolation") {
        Some(phobos_config::Source::Default) | None => isolator::resolve_isolation(
            &isolator::default_isolation_with(launcher, containerizer.hierarchies()),
            launcher,
        )?,
        Some(_) => isolator::resolve_isolation(&config.isolation, launcher)
            .map_err(|e| settings.invalid("isolation", &config.isolation.join(","), e))?,
    };
    let env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let plan = translate::translate(
        id.clone(),
        &request,
        &env,
        &Settings {
            launcher,
            isolation,
            cgroups_root: global.cgroups_root.clone(),
            isolator_flags: IsolatorFlags {
                cgroups_enable_cfs: config.cgroups_enable_cfs,
                cgroups_limit_swap: config.cgroups_limit_swap,
                container_disk_watch_interval_secs: config
                    .container_disk_watch_interval
                    .as_secs_f64(),
                enforce_container_disk_quota: config.enforce_container_disk_quota,
            },
            default_image: config.default_container_image.clone(),
            root,
            fallback_sandbox: containerizer.sandbox_path(&id),
            now: phobos_core::time::now_secs(),
        },
    )
    .map_err(|e| usage(format!("container {id}: {e}")))?;

    let docker = context::docker(global);
    if containerizer.store().open(&id).is_some() || docker.owns(&id) {
        return Err(usage(format!("container {id} already exists")));
    }
    if let Route::Docker { image, origin } = plan.route {
        if !config.containerizers.contains(&Containerizer::Docker) {
            return Err(usage(format!(
                "container {id}: image {image:?} (from {origin}) needs the Docker \
                 containerizer, which is not in `containerizers`; nothing was launched"
            )));
        }
        return docker::launch(global, &docker, &request, plan.config, image, origin);
    }
    if containerizer.store().open(&id).is_some() {
        return Err(usage(format!("container {id} already exists")));
    }
    tracing::info!(
        command = %plan.config.command.display(),
        sandbox = %plan.config.sandbox.display(),
        launcher = plan.config.launcher.name(),
        "launch requested"
    );
    let launched = containerizer
        .launch(&plan.config, None)
        .with_context(|| format!("failed to launch container {id}"))?;
    tracing::info!(pid = launched.pid, "running");

    match containerizer.sweep_if_due(SweepPolicy::default()) {
        Ok(Some(removed)) if !removed.is_empty() => {
            tracing::info!(count = removed.len(), "swept terminated containers");
        }
        Ok(_) => {}
        // The launch succeeded; a failed clean-up must not fail it.
        Err(e) => tracing::warn!(error = %e, "sweeping terminated containers failed"),
    }
    Ok(())
}
