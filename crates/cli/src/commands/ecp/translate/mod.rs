//! From a `containerizer.Launch` to what we launch (reference §1.2-1.5).
//!
//! - Route: `ContainerInfo` of type DOCKER (the task's, else the
//!   executor's), a Mesos 0.19 `CommandInfo.container.image` URL such as
//!   `docker:///busybox`, or — for tasks without either — the agent's
//!   `--default_container_image` (`MESOS_DEFAULT_CONTAINER_IMAGE`) or our
//!   `default_container_image` go to the Docker containerizer; everything
//!   else to the Mesos containerizer. This is decided before anything is
//!   written, so a refused launch leaves nothing behind.
//! - Command: the executor's `CommandInfo` (for a command task that is the
//!   agent's command executor, which runs the task's command itself and
//!   reports its status), with Mesos's `shell`/`value`/`arguments` meaning.
//! - Environment: what the agent gave this process (its own environment
//!   plus the executor's `MESOS_*` variables) without our own `PHOBOS_*`
//!   settings, then the executor's `CommandInfo.environment`.
//! - Sandbox: `Launch.directory`; user: `Launch.user`, else the command's.
//! - Resources: the task's and the executor's together (Deimos used one or
//!   the other), as the agent sizes a container for both.

mod route;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use phobos_core::{CommandSpec, ContainerId, Resources};
use phobos_proto::containerizer::Launch;
use phobos_runtime::LaunchIntent;
use phobos_runtime::mesos_proto::{BadPortMapping, docker_command_spec, fetch_uri, networks};
pub use phobos_runtime::mesos_proto::{command_spec, resources as from_mesos};

pub use route::Route;
pub(super) use route::container;
use route::route;

/// Why a Launch cannot be launched.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TranslateError {
    #[error("Launch has neither executor_info nor task_info.command: nothing to run")]
    NoCommand,
    #[error("the {0} command is empty")]
    EmptyCommand(&'static str),
    #[error("{origin} is type DOCKER but has no docker.image")]
    DockerWithoutImage { origin: &'static str },
    #[error("image URL {url:?} ({origin}) is not a docker:/// URL")]
    BadImageUrl { url: String, origin: &'static str },
    #[error(
        "{origin} names an {kind} image; the Mesos containerizer provisions Docker images only"
    )]
    MesosImage {
        origin: &'static str,
        kind: &'static str,
    },
    #[error("{origin} is an Image of type DOCKER without docker.name")]
    ImageWithoutName { origin: &'static str },
    #[error("Launch.directory {0:?} is not an absolute path")]
    RelativeSandbox(String),
    #[error(transparent)]
    BadLinuxInfo(#[from] phobos_runtime::mesos_proto::BadLinuxInfo),
    #[error(transparent)]
    BadPortMapping(#[from] BadPortMapping),
}

/// What `translate` needs besides the message.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Our `default_container_image`.
    pub default_image: Option<String>,
    /// `image_providers` has `docker`: the default image is a Mesos
    /// container's root filesystem, not a Docker container (Deimos).
    pub mesos_images: bool,
    /// Whether we can switch users (we are root).
    pub root: bool,
}

/// The route and the planner's input.
#[derive(Clone, Debug)]
pub struct Translated {
    pub route: Route,
    /// Everything but the Docker part, which `docker::launch_info` adds.
    pub intent: LaunchIntent,
}

/// Translates `launch`, given the environment this process received.
pub fn translate(
    id: ContainerId,
    launch: &Launch,
    env: &[(String, String)],
    settings: &Settings,
) -> Result<Translated, TranslateError> {
    let route = route(launch, env, settings)?;
    let (command_info, which) = match (&launch.executor_info, &launch.task_info) {
        (Some(executor), _) => (&executor.command, "executor"),
        (None, Some(task)) => match &task.command {
            Some(command) => (command, "task"),
            None => return Err(TranslateError::NoCommand),
        },
        (None, None) => return Err(TranslateError::NoCommand),
    };
    // The Docker containerizer reads a command as Mesos's does (value
    // and arguments after the image's ENTRYPOINT), the Mesos one as an
    // `execvp`.
    let spec = match &route {
        Route::Docker { .. } => docker_command_spec(command_info),
        _ => command_spec(command_info),
    };
    let command = match (spec, &route) {
        (Some(command), _) => command,
        // An image brings its own command: merged at PROVISIONING as
        // Mesos's docker/runtime does (shell=true with no value fails).
        (None, Route::MesosImage { .. }) => CommandSpec {
            shell: command_info.shell.unwrap_or(true),
            value: String::new(),
            arguments: command_info.arguments.clone(),
        },
        (None, _) => return Err(TranslateError::EmptyCommand(which)),
    };

    // Named networks of a Mesos container, with or without an image (a
    // Docker container's are the engine's, see `docker::launch_info`).
    let networks = match (&route, container(launch)) {
        (Route::Mesos | Route::MesosImage { .. }, Some((c, origin))) => networks(c, origin)?,
        _ => Vec::new(),
    };
    // The agent's `LIBPROCESS_IP` is an address of the host: on a CNI
    // network the isolator's `0.0.0.0` replaces it, as in Mesos, where
    // the isolator's environment comes after the agent's.
    let mut vars: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| !k.starts_with("PHOBOS_") && k != "RUST_LOG")
        .filter(|(k, _)| networks.is_empty() || k != "LIBPROCESS_IP")
        .cloned()
        .collect();
    if let Some(environment) = &command_info.environment {
        vars.extend(
            environment
                .variables
                .iter()
                .map(|v| (v.name.clone(), v.value.clone())),
        );
    }

    let sandbox = match launch.directory.as_deref().filter(|d| !d.is_empty()) {
        Some(dir) if dir.starts_with('/') => Some(PathBuf::from(dir)),
        Some(dir) => return Err(TranslateError::RelativeSandbox(dir.to_owned())),
        None => None,
    };
    let user = launch
        .user
        .clone()
        .filter(|u| !u.is_empty())
        .or_else(|| command_info.user.clone().filter(|u| !u.is_empty()));
    // Without root we cannot switch users; the agent runs us as the user
    // it would have switched to anyway in that case. A Docker container
    // runs as its image says, as under Mesos's Docker containerizer.
    let user = user.filter(|_| settings.root && !matches!(route, Route::Docker { .. }));
    let hostname = container(launch)
        .and_then(|(c, _)| c.hostname.clone())
        .filter(|h| !h.is_empty());

    // Hardening of a Mesos container (`LinuxInfo`, `RLimitInfo`); a Docker
    // container's is the engine's.
    let security = match (&route, container(launch)) {
        (Route::Mesos | Route::MesosImage { .. }, Some((c, origin))) => {
            phobos_runtime::mesos_proto::linux_security(c, origin)?
        }
        _ => Default::default(),
    };

    let fetch = command_info.uris.iter().map(fetch_uri).collect();
    Ok(Translated {
        route,
        intent: LaunchIntent {
            id: Some(id),
            command: Some(command),
            env: vars,
            user,
            hostname,
            sandbox,
            resources: resources(launch),
            // Fetched by the Mesos containerizer in FETCHING, by the
            // Docker one into the sandbox before the container is created.
            fetch,
            networks,
            security,
            ..LaunchIntent::default()
        },
    })
}

/// The task's and the executor's resources together.
fn resources(launch: &Launch) -> Resources {
    let task = launch.task_info.iter().flat_map(|t| &t.resources);
    let executor = launch.executor_info.iter().flat_map(|e| &e.resources);
    from_mesos(task.chain(executor))
}
