//! `phobos ecp launch`: reads a `containerizer.Launch`, turns it into a
//! launch intent (see `translate` and `docker`), has the planner decide it
//! and the door launch it, and returns once the container is RUNNING (the
//! agent queues every other call for the container behind this one). The
//! container outlives this process; `wait`, `usage`, `update` and
//! `destroy` find it through the runtime directory.
//!
//! Afterwards, at most once per interval, terminated containers' state is
//! swept (see `phobos_mesos::sweep`): a `stat` on every other launch.

use anyhow::Context;
use phobos_proto::containerizer::Launch;
use phobos_runtime::{Launched, Planner};

use super::docker;
use super::translate::{self, Route, Settings};
use crate::cli::{EcpCall, Global};
use crate::context;
use crate::error::usage;

pub fn run(global: &Global) -> anyhow::Result<()> {
    let request: Launch = super::read_input()?;
    let id = super::container_id(&request.container_id)?;
    let span = super::container_span(EcpCall::Launch, &id);
    let _entered = span.enter();

    let door = context::door(global)?;
    let settings = door.settings();
    let env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let translated = translate::translate(
        id.clone(),
        &request,
        &env,
        &Settings {
            default_image: settings.config().default_container_image.clone(),
            mesos_images: settings
                .config()
                .image_providers
                .iter()
                .any(|p| p.eq_ignore_ascii_case("docker")),
            root: settings.is_root(),
        },
    )
    .map_err(|e| usage(format!("container {id}: {e}")))?;
    let (intent, executor, origin) = match translated.route {
        Route::Docker { image, origin } => {
            let (intent, executor) = docker::intent(&request, translated.intent, image)?;
            (intent, executor, Some(origin))
        }
        Route::Mesos => (translated.intent, None, None),
        Route::MesosImage { image, origin } => {
            let mut intent = translated.intent;
            intent.rootfs_image = Some(image);
            (intent, None, Some(origin))
        }
    };
    let host = door.host();
    let plan = Planner::new(settings, &host)
        .plan(intent)
        .map_err(|e| usage(format!("container {id}: {e}")))?;
    for warning in &plan.warnings {
        tracing::warn!("{warning}");
    }
    let spec = &plan.request.spec;
    tracing::info!(
        command = %spec.command.as_ref().map_or_else(|| "(the image's)".to_owned(), |c| c.display()),
        sandbox = %spec.sandbox.display(),
        origin = origin.unwrap_or("-"),
        command_task = executor.is_some(),
        "launch requested"
    );
    let launched = door
        .launch(&plan.request, None, |p| {
            tracing::info!(layer = ?p.id, status = %p.status, "pulling");
        })
        .with_context(|| format!("failed to launch container {id}"))?;
    match &launched {
        Launched::Process { pid, .. } => tracing::info!(pid, "running"),
        Launched::Engine { sandbox } => {
            tracing::info!("running");
            context::spawn_log_follower(global, &door, &id);
            if let Some(executor) = executor {
                docker::start_executor(global, &door, &executor, &id, sandbox)?;
            }
        }
    }

    match door.sweep_if_due() {
        Ok(removed) if !removed.is_empty() => {
            tracing::info!(count = removed.len(), "swept terminated containers");
        }
        Ok(_) => {}
        // The launch succeeded; a failed clean-up must not fail it.
        Err(e) => tracing::warn!(error = %e, "sweeping terminated containers failed"),
    }
    Ok(())
}
