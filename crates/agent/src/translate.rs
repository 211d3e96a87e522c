//! `LAUNCH_CONTAINER` → the planner's [`LaunchIntent`] (reference §7.2),
//! with the Mesos meanings the external containerizer face uses too
//! ([`phobos_runtime::mesos_proto`]): `CommandInfo` (shell/value/arguments,
//! environment, user, URIs to fetch), the `resources` list and the `limits`
//! map, and a `ContainerInfo` of type MESOS (a Docker image as the root
//! filesystem, volumes, hostname, named networks).
//!
//! As in Mesos, a `ContainerInfo` of type DOCKER is not supported for a
//! standalone container ("The provided ContainerInfo is not supported").

use std::path::PathBuf;

use phobos_core::{CommandSpec, ContainerId, Limit, Nesting, Resources, Volume};
use phobos_proto::agent::call::LaunchContainer;
use phobos_proto::mesos::{self, container_info, volume};
use phobos_runtime::LaunchIntent;
use phobos_runtime::mesos_proto;

/// Why a `LAUNCH_CONTAINER` cannot be planned (answered with 400).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TranslateError {
    #[error("The provided ContainerInfo is not supported: type DOCKER for a standalone container")]
    DockerNotSupported,
    #[error("container {0}: nothing to run (no command and no image)")]
    NoCommand(String),
    #[error(
        "container.mesos.image: type {0} is not supported; the Mesos containerizer provisions Docker images only"
    )]
    ImageType(String),
    #[error("container.mesos.image is type DOCKER without docker.name")]
    ImageWithoutName,
    #[error("container.volumes[{index}]: {problem}")]
    Volume { index: usize, problem: String },
    #[error("limits[{name:?}]: {value} is not a valid limit")]
    Limit { name: String, value: f64 },
    #[error(transparent)]
    PortMapping(#[from] mesos_proto::BadPortMapping),
    #[error(transparent)]
    LinuxInfo(#[from] mesos_proto::BadLinuxInfo),
    #[error(
        "container.tty_info.window_size: {rows}x{columns} is not a window size (1 to 65535 each)"
    )]
    WindowSize { rows: u32, columns: u32 },
    #[error(
        "container.linux_info.share_cgroups: a session's container shares its parent's cgroups (it must not be false)"
    )]
    SessionOwnCgroups,
}

/// Which call a launch came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// LAUNCH_CONTAINER and LAUNCH_NESTED_CONTAINER: Mesos's DEFAULT class.
    Default,
    /// LAUNCH_NESTED_CONTAINER_SESSION: Mesos's DEBUG class (the parent's
    /// namespaces, cgroups, environment and working directory; not
    /// counted; destroyed by recovery), its terminal's output held for
    /// the session's stream (Mesos's `wait_for_connection`).
    Session,
}

/// The intent of `launch` for container `id` (a full ID: a nested one is
/// launched under its parent); `root`: whether this process may switch
/// users.
///
/// A nested container shares its parent's cgroups unless
/// `LinuxInfo.share_cgroups` is false (Mesos's default), and has its own
/// pid and ipc namespaces unless `share_pid_namespace` or `ipc_mode:
/// SHARE_PARENT` asks to share them (the CLI's `--share-cgroups`,
/// `--share-pid`, `--share-ipc`). A top-level container's `LinuxInfo`
/// (capabilities, seccomp, namespaces) and `RLimitInfo` mean what they
/// mean to the external containerizer. `ContainerInfo.tty_info` gives the
/// command a terminal held by a switchboard.
pub fn launch_intent(
    id: &ContainerId,
    launch: &LaunchContainer,
    root: bool,
    class: Class,
) -> Result<LaunchIntent, TranslateError> {
    let (own, parent) = match id.parent() {
        Some(parent) => (
            ContainerId::new(id.leaf()).map_err(|_| TranslateError::NoCommand(id.to_string()))?,
            Some(parent),
        ),
        None => (id.clone(), None),
    };
    let mut intent = LaunchIntent {
        id: Some(own),
        nesting: Nesting {
            share_cgroups: parent.is_some(),
            ..Nesting::default()
        },
        parent,
        resources: resources(launch)?,
        ..LaunchIntent::default()
    };
    if let Some(container) = &launch.container {
        match container.r#type() {
            container_info::Type::Docker => return Err(TranslateError::DockerNotSupported),
            container_info::Type::Mesos => {}
        }
        if let Some(image) = container.mesos.as_ref().and_then(|m| m.image.as_ref()) {
            if image.r#type() != mesos::image::Type::Docker {
                return Err(TranslateError::ImageType(
                    image.r#type().as_str_name().to_owned(),
                ));
            }
            let name = image
                .docker
                .as_ref()
                .map(|d| d.name.clone())
                .filter(|n| !n.is_empty())
                .ok_or(TranslateError::ImageWithoutName)?;
            intent.rootfs_image = Some(name);
        }
        intent.hostname = container.hostname.clone().filter(|h| !h.is_empty());
        intent.networks = mesos_proto::networks(container, "container")?;
        intent.volumes = volumes(&container.volumes)?;
        intent.security = mesos_proto::linux_security(container, "container")?;
        if let Some(tty) = &container.tty_info {
            intent.tty = Some(tty_info(tty, class)?);
        }
        if intent.parent.is_some() {
            // A nested container's sharing is the nesting's, as the CLI's
            // --share-* flags say it.
            let security = &mut intent.security;
            intent.nesting = Nesting {
                share_pid: std::mem::take(&mut security.share_pid_namespace),
                share_ipc: security.share_ipc_namespace.take() == Some(true),
                share_cgroups: container
                    .linux_info
                    .as_ref()
                    .is_none_or(|l| l.share_cgroups()),
                debug: false,
                session: false,
            };
        } else if container.linux_info.as_ref().and_then(|l| l.share_cgroups) == Some(true) {
            // Mesos: a container without a parent has no cgroups to share
            // (`false`, its own, is what it has anyway).
            return Err(mesos_proto::BadLinuxInfo {
                origin: "container",
                field: "linux_info.share_cgroups",
                problem: "a container without a parent cannot set it to true".to_owned(),
            }
            .into());
        }
    }
    if class == Class::Session {
        let own_cgroups = launch
            .container
            .as_ref()
            .and_then(|c| c.linux_info.as_ref())
            .is_some_and(|l| !l.share_cgroups());
        if own_cgroups {
            return Err(TranslateError::SessionOwnCgroups);
        }
        // DEBUG shares everything; the flags would only repeat it.
        intent.nesting = Nesting {
            debug: true,
            session: true,
            ..Nesting::default()
        };
    }
    let command = launch.command.as_ref();
    intent.command = match command.and_then(mesos_proto::command_spec) {
        Some(spec) => Some(spec),
        // An image brings its own command, merged at PROVISIONING.
        None if intent.rootfs_image.is_some() => Some(CommandSpec {
            shell: command.and_then(|c| c.shell).unwrap_or(true),
            value: String::new(),
            arguments: command.map(|c| c.arguments.clone()).unwrap_or_default(),
        }),
        None => return Err(TranslateError::NoCommand(id.to_string())),
    };
    if let Some(command) = command {
        intent.env = mesos_proto::environment(command);
        intent.fetch = command.uris.iter().map(mesos_proto::fetch_uri).collect();
        // Mesos switches to `command.user` only when it may.
        intent.user = command.user.clone().filter(|u| !u.is_empty() && root);
    }
    Ok(intent)
}

/// `TTYInfo`: the window size if given (Mesos applies it only on the first
/// resize; Phobos opens the terminal with it, as `run -t` does).
fn tty_info(tty: &mesos::TtyInfo, class: Class) -> Result<phobos_core::TtyInfo, TranslateError> {
    let window_size = match &tty.window_size {
        None => None,
        Some(w) => {
            let size = |v: u32| u16::try_from(v).ok().filter(|v| *v > 0);
            match (size(w.rows), size(w.columns)) {
                (Some(rows), Some(columns)) => Some(phobos_core::WindowSize { rows, columns }),
                _ => {
                    return Err(TranslateError::WindowSize {
                        rows: w.rows,
                        columns: w.columns,
                    });
                }
            }
        }
    };
    Ok(phobos_core::TtyInfo {
        window_size,
        wait_for_client: class == Class::Session,
    })
}

/// The `resources` list with the `limits` map (an infinite value is "no
/// limit"; a negative or NaN one is refused).
fn resources(launch: &LaunchContainer) -> Result<Resources, TranslateError> {
    let mut limits = Vec::new();
    for (name, scalar) in &launch.limits {
        let value = scalar.value;
        let limit = if value == f64::INFINITY {
            Limit::Infinite
        } else if value.is_finite() && value >= 0.0 {
            Limit::Finite(value)
        } else {
            return Err(TranslateError::Limit {
                name: name.clone(),
                value,
            });
        };
        limits.push((name.as_str(), limit));
    }
    let requests = mesos_proto::resources(&launch.resources);
    let with_limits = Resources::from_mesos(requests.requests(), limits);
    Ok(with_limits)
}

/// `ContainerInfo.volumes` with a host path (image and Docker volumes are
/// not supported and refused, not ignored).
fn volumes(list: &[mesos::Volume]) -> Result<Vec<Volume>, TranslateError> {
    list.iter()
        .enumerate()
        .map(|(index, v)| {
            let bad = |problem: &str| TranslateError::Volume {
                index,
                problem: problem.to_owned(),
            };
            if v.image.is_some() || v.source.is_some() {
                return Err(bad("only host path volumes are supported"));
            }
            let host = v
                .host_path
                .as_deref()
                .filter(|h| !h.is_empty())
                .ok_or_else(|| bad("host_path is required"))?;
            if v.container_path.is_empty() {
                return Err(bad("container_path is empty"));
            }
            Ok(Volume {
                host_path: PathBuf::from(host),
                container_path: PathBuf::from(&v.container_path),
                read_only: v.mode() == volume::Mode::Ro,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> ContainerId {
        ContainerId::new("c1").unwrap()
    }

    fn launch(command: &str) -> LaunchContainer {
        LaunchContainer {
            container_id: mesos::ContainerId {
                value: "c1".into(),
                parent: None,
            },
            command: Some(mesos::CommandInfo {
                value: Some(command.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_shell_command_with_resources_and_limits() {
        let mut l = launch("sleep 1");
        l.resources.push(mesos::Resource {
            name: "cpus".into(),
            r#type: mesos::value::Type::Scalar as i32,
            scalar: Some(mesos::value::Scalar { value: 0.5 }),
            ..Default::default()
        });
        l.limits.insert(
            "cpus".into(),
            mesos::value::Scalar {
                value: f64::INFINITY,
            },
        );
        let intent = launch_intent(&id(), &l, true, Class::Default).unwrap();
        assert_eq!(intent.command.unwrap().value, "sleep 1");
        assert_eq!(intent.resources.cpus, Some(0.5));
        assert_eq!(intent.resources.cpus_limit, Some(Limit::Infinite));
    }

    #[test]
    fn refusals_name_the_problem() {
        let mut l = launch("true");
        l.limits
            .insert("mem".into(), mesos::value::Scalar { value: -1.0 });
        assert!(matches!(
            launch_intent(&id(), &l, true, Class::Default),
            Err(TranslateError::Limit { .. })
        ));
        let mut l = launch("true");
        l.container = Some(mesos::ContainerInfo {
            r#type: container_info::Type::Docker as i32,
            ..Default::default()
        });
        assert_eq!(
            launch_intent(&id(), &l, true, Class::Default),
            Err(TranslateError::DockerNotSupported)
        );
        assert!(matches!(
            launch_intent(&id(), &launch(" "), true, Class::Default),
            Err(TranslateError::NoCommand(_))
        ));
    }

    #[test]
    fn the_user_is_switched_only_as_root() {
        let mut l = launch("id");
        l.command.as_mut().unwrap().user = Some("nobody".into());
        assert_eq!(
            launch_intent(&id(), &l, true, Class::Default)
                .unwrap()
                .user
                .as_deref(),
            Some("nobody")
        );
        assert_eq!(
            launch_intent(&id(), &l, false, Class::Default)
                .unwrap()
                .user,
            None
        );
    }

    #[test]
    fn share_cgroups_true_is_refused_for_a_top_level_container_as_mesos_does() {
        let with = |share: bool| {
            let mut l = launch("true");
            l.container = Some(mesos::ContainerInfo {
                r#type: container_info::Type::Mesos as i32,
                linux_info: Some(mesos::LinuxInfo {
                    share_cgroups: Some(share),
                    ..Default::default()
                }),
                ..Default::default()
            });
            l
        };
        let err = launch_intent(&id(), &with(true), true, Class::Default).unwrap_err();
        assert_eq!(
            err.to_string(),
            "container.linux_info.share_cgroups: a container without a parent cannot set it to true"
        );
        // False is what a top-level container has anyway.
        let top = launch_intent(&id(), &with(false), true, Class::Default).unwrap();
        assert_eq!(top.nesting, Nesting::default());
        let nested = ContainerId::parse_path("par.kid").unwrap();
        let i = launch_intent(&nested, &with(false), true, Class::Default).unwrap();
        assert!(!i.nesting.share_cgroups);
        let i = launch_intent(&nested, &with(true), true, Class::Default).unwrap();
        assert!(i.nesting.share_cgroups);
    }
}
