//! Which containerizer a `containerizer.Launch` goes to: its `ContainerInfo`,
//! a Mesos 0.19 `docker:///` image URL, or the default container image.

use phobos_proto::containerizer::Launch;
use phobos_proto::mesos::{self, container_info};

use super::{Settings, TranslateError};

/// The agent's `--default_container_image`, as it passes it to `launch`.
pub const DEFAULT_IMAGE_ENV: &str = "MESOS_DEFAULT_CONTAINER_IMAGE";

/// Which containerizer a launch goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// The Mesos containerizer (namespaces, cgroups, the init helper).
    Mesos,
    /// The Docker containerizer, with the image and where it was named.
    Docker { image: String, origin: &'static str },
    /// The Mesos containerizer with a root filesystem from a Docker image
    /// (`ContainerInfo` MESOS with an `Image` of type DOCKER, or the
    /// default image when `image_providers` has `docker`).
    MesosImage { image: String, origin: &'static str },
}

/// The ContainerInfo that applies: the task's, else the executor's.
pub(in crate::commands::ecp) fn container(
    launch: &Launch,
) -> Option<(&mesos::ContainerInfo, &'static str)> {
    let task = launch
        .task_info
        .as_ref()
        .and_then(|t| t.container.as_ref())
        .map(|c| (c, "TaskInfo.container"));
    let executor = launch
        .executor_info
        .as_ref()
        .and_then(|e| e.container.as_ref())
        .map(|c| (c, "ExecutorInfo.container"));
    task.or(executor)
}

/// The Mesos 0.19 `CommandInfo.container` of the task, else the executor.
fn legacy_container(
    launch: &Launch,
) -> Option<(&mesos::command_info::ContainerInfo, &'static str)> {
    let task = launch
        .task_info
        .as_ref()
        .and_then(|t| t.command.as_ref())
        .and_then(|c| c.container.as_ref())
        .map(|c| (c, "TaskInfo.command.container.image"));
    let executor = launch
        .executor_info
        .as_ref()
        .and_then(|e| e.command.container.as_ref())
        .map(|c| (c, "ExecutorInfo.command.container.image"));
    task.or(executor)
}

pub(super) fn route(
    launch: &Launch,
    env: &[(String, String)],
    settings: &Settings,
) -> Result<Route, TranslateError> {
    if let Some((info, origin)) = container(launch) {
        match info.r#type() {
            container_info::Type::Docker => {
                let image = info
                    .docker
                    .as_ref()
                    .map(|d| d.image.clone())
                    .filter(|i| !i.is_empty())
                    .ok_or(TranslateError::DockerWithoutImage { origin })?;
                return Ok(Route::Docker { image, origin });
            }
            container_info::Type::Mesos => {
                if let Some(image) = info.mesos.as_ref().and_then(|m| m.image.as_ref()) {
                    if image.r#type() == mesos::image::Type::Appc {
                        return Err(TranslateError::MesosImage {
                            origin,
                            kind: "appc",
                        });
                    }
                    let image = image
                        .docker
                        .as_ref()
                        .map(|d| d.name.clone())
                        .filter(|n| !n.is_empty())
                        .ok_or(TranslateError::ImageWithoutName { origin })?;
                    return Ok(Route::MesosImage { image, origin });
                }
                return Ok(Route::Mesos);
            }
        }
    }
    // `docker:///` alone means "the default image", as Deimos read it.
    if let Some((legacy, origin)) = legacy_container(launch)
        && let Some(image) = docker_url(&legacy.image, origin)?
    {
        return Ok(Route::Docker { image, origin });
    }
    let from_agent = env
        .iter()
        .find(|(k, _)| k == DEFAULT_IMAGE_ENV)
        .map(|(_, v)| (v.as_str(), "the agent's --default_container_image"));
    let from_config = settings
        .default_image
        .as_deref()
        .map(|v| (v, "default_container_image"));
    for (value, origin) in from_agent.into_iter().chain(from_config) {
        if value.is_empty() {
            continue;
        }
        let image = if value.contains("://") {
            docker_url(value, origin)?
        } else {
            Some(value.to_owned())
        };
        if let Some(image) = image {
            if settings.mesos_images {
                return Ok(Route::MesosImage { image, origin });
            }
            return Ok(Route::Docker { image, origin });
        }
    }
    Ok(Route::Mesos)
}

/// `docker:///name`, `docker://name` → `name`; `docker:///` → `None`
/// (meaning "the default image", as Deimos read it).
fn docker_url(url: &str, origin: &'static str) -> Result<Option<String>, TranslateError> {
    let rest = url
        .strip_prefix("docker://")
        .ok_or_else(|| TranslateError::BadImageUrl {
            url: url.to_owned(),
            origin,
        })?;
    let name = rest.strip_prefix('/').unwrap_or(rest);
    Ok(Some(name.to_owned()).filter(|n| !n.is_empty()))
}
