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

use std::path::PathBuf;

use phobos_core::{CommandSpec, ContainerId, Resources};
use phobos_proto::containerizer::Launch;
use phobos_proto::mesos::{self, container_info};
use phobos_runtime::LaunchIntent;
use phobos_runtime::mesos_proto::{BadPortMapping, fetch_uri, networks};
pub use phobos_runtime::mesos_proto::{command_spec, resources as from_mesos};

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
    let command = match (command_spec(command_info), &route) {
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

    let mut vars: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| !k.starts_with("PHOBOS_") && k != "RUST_LOG")
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
    // Named networks of a Mesos container (a Docker container's are the
    // engine's, see `docker::launch_info`).
    let networks = match (&route, container(launch)) {
        (Route::Mesos, Some((c, origin))) => networks(c, origin)?,
        _ => Vec::new(),
    };

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

/// The ContainerInfo that applies: the task's, else the executor's.
pub(super) fn container(launch: &Launch) -> Option<(&mesos::ContainerInfo, &'static str)> {
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

fn route(
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

#[cfg(test)]
mod tests {
    use phobos_proto::mesos::{
        CommandInfo, ContainerInfo, Environment, ExecutorId, ExecutorInfo, SlaveId, TaskId,
        TaskInfo, environment,
    };

    use super::*;

    fn settings() -> Settings {
        Settings {
            default_image: None,
            mesos_images: false,
            root: true,
        }
    }

    fn executor(command: CommandInfo) -> ExecutorInfo {
        ExecutorInfo {
            executor_id: ExecutorId { value: "e1".into() },
            command,
            ..Default::default()
        }
    }

    fn shell(value: &str) -> CommandInfo {
        CommandInfo {
            value: Some(value.into()),
            ..Default::default()
        }
    }

    fn launch(executor_info: ExecutorInfo) -> Launch {
        Launch {
            container_id: mesos::ContainerId {
                value: "c1".into(),
                parent: None,
            },
            executor_info: Some(executor_info),
            directory: Some("/agent/sandbox".into()),
            user: Some("nobody".into()),
            ..Default::default()
        }
    }

    fn id() -> ContainerId {
        ContainerId::new("c1").unwrap()
    }

    #[test]
    fn command_uris_become_uris_to_fetch_with_mesos_defaults() {
        let mut command = shell("./run.sh");
        command.uris = vec![
            crate_uri("http://h/app.tgz", None, None),
            crate_uri("/srv/run.sh", Some(true), Some(false)),
        ];
        let plan = translate(id(), &launch(executor(command)), &[], &settings()).unwrap();
        let fetch = plan.intent.fetch;
        assert_eq!(fetch.len(), 2);
        assert_eq!(fetch[0], phobos_runtime::FetchUri::new("http://h/app.tgz"));
        assert!(fetch[1].executable && !fetch[1].extract);
    }

    fn crate_uri(
        value: &str,
        executable: Option<bool>,
        extract: Option<bool>,
    ) -> phobos_proto::mesos::command_info::Uri {
        phobos_proto::mesos::command_info::Uri {
            value: value.into(),
            executable,
            extract,
            ..Default::default()
        }
    }

    #[test]
    fn an_executor_runs_its_command_in_the_agent_sandbox_with_its_environment() {
        let mut command = shell("./my-executor --flag");
        command.environment = Some(Environment {
            variables: vec![environment::Variable {
                name: "FOO".into(),
                value: "bar".into(),
            }],
        });
        let env = vec![
            ("MESOS_DIRECTORY".to_owned(), "/agent/sandbox".to_owned()),
            ("PHOBOS_RUNTIME_DIR".to_owned(), "/x".to_owned()),
            ("FOO".to_owned(), "agent".to_owned()),
        ];
        let plan = translate(id(), &launch(executor(command)), &env, &settings()).unwrap();
        assert_eq!(plan.route, Route::Mesos);
        let c = plan.intent;
        assert_eq!(
            c.command.unwrap().exec_argv(),
            ["/bin/sh", "-c", "./my-executor --flag"]
        );
        assert_eq!(c.sandbox, Some(PathBuf::from("/agent/sandbox")));
        assert_eq!(c.user.as_deref(), Some("nobody"));
        // Ours are dropped; the command's environment comes last and wins.
        assert_eq!(
            c.env,
            [
                ("MESOS_DIRECTORY".to_owned(), "/agent/sandbox".to_owned()),
                ("FOO".to_owned(), "agent".to_owned()),
                ("FOO".to_owned(), "bar".to_owned()),
            ]
        );
    }

    fn scalar(name: &str, value: f64) -> mesos::Resource {
        mesos::Resource {
            name: name.into(),
            r#type: mesos::value::Type::Scalar as i32,
            scalar: Some(mesos::value::Scalar { value }),
            ..Default::default()
        }
    }

    #[test]
    fn task_and_executor_resources_add_up() {
        let mut e = executor(shell("true"));
        e.resources = vec![scalar("cpus", 0.1), scalar("mem", 32.0)];
        let mut l = launch(e);
        l.task_info = Some(TaskInfo {
            name: "t".into(),
            task_id: TaskId { value: "t1".into() },
            slave_id: SlaveId { value: "s1".into() },
            resources: vec![
                scalar("cpus", 1.0),
                scalar("mem", 128.0),
                scalar("disk", 10.0),
                mesos::Resource {
                    name: "ports".into(),
                    r#type: mesos::value::Type::Ranges as i32,
                    ..Default::default()
                },
            ],
            ..Default::default()
        });
        let r = translate(id(), &l, &[], &settings())
            .unwrap()
            .intent
            .resources;
        assert_eq!(r.cpus, Some(1.1));
        assert_eq!(r.mem, Some(160.0));
        assert_eq!(r.disk, Some(10.0));
        assert_eq!(r.cpus_limit, None);
    }

    #[test]
    fn argv_commands_keep_their_arguments() {
        let command = CommandInfo {
            shell: Some(false),
            value: Some("/bin/echo".into()),
            arguments: vec!["echo".into(), "a b".into()],
            ..Default::default()
        };
        let plan = translate(id(), &launch(executor(command)), &[], &settings()).unwrap();
        assert_eq!(plan.intent.command.unwrap().exec_argv(), ["echo", "a b"]);
    }

    #[test]
    fn mesos_containers_with_a_docker_image_get_a_root_filesystem() {
        let mut e = executor(CommandInfo {
            shell: Some(false),
            ..Default::default()
        });
        e.container = Some(ContainerInfo {
            r#type: container_info::Type::Mesos as i32,
            mesos: Some(container_info::MesosInfo {
                image: Some(mesos::Image {
                    r#type: mesos::image::Type::Docker as i32,
                    docker: Some(mesos::image::Docker {
                        name: "busybox:1".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        });
        let plan = translate(id(), &launch(e.clone()), &[], &settings()).unwrap();
        assert_eq!(
            plan.route,
            Route::MesosImage {
                image: "busybox:1".into(),
                origin: "ExecutorInfo.container"
            }
        );
        // No value, shell=false: the image's own command, merged later.
        let command = plan.intent.command.unwrap();
        assert!(!command.shell && command.value.is_empty());
        // The default image is a Mesos image when image_providers says so.
        let with_images = Settings {
            default_image: Some("debian:12".into()),
            mesos_images: true,
            root: true,
        };
        let plan = translate(id(), &launch(executor(shell("true"))), &[], &with_images).unwrap();
        assert!(matches!(plan.route, Route::MesosImage { ref image, .. } if image == "debian:12"));
        // appc images are refused with one line.
        if let Some(c) = e.container.as_mut()
            && let Some(m) = c.mesos.as_mut()
            && let Some(i) = m.image.as_mut()
        {
            i.r#type = mesos::image::Type::Appc as i32;
        }
        let err = translate(id(), &launch(e), &[], &settings()).unwrap_err();
        assert!(err.to_string().contains("Docker images only"), "{err}");
    }

    #[test]
    fn docker_containers_and_images_route_to_docker() {
        let mut e = executor(shell("true"));
        e.container = Some(ContainerInfo {
            r#type: container_info::Type::Docker as i32,
            docker: Some(container_info::DockerInfo {
                image: "busybox:1".into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        let plan = translate(id(), &launch(e), &[], &settings()).unwrap();
        assert_eq!(
            plan.route,
            Route::Docker {
                image: "busybox:1".into(),
                origin: "ExecutorInfo.container"
            }
        );

        // Mesos 0.19: the image URL in the task's command.
        let mut l = launch(executor(shell("true")));
        let mut task_command = shell("sleep 1");
        task_command.container = Some(mesos::command_info::ContainerInfo {
            image: "docker:///registry.int:5000/app:2".into(),
            options: vec![],
        });
        l.task_info = Some(TaskInfo {
            name: "t".into(),
            task_id: TaskId { value: "t1".into() },
            slave_id: SlaveId { value: "s1".into() },
            command: Some(task_command),
            ..Default::default()
        });
        let plan = translate(id(), &l, &[], &settings()).unwrap();
        assert_eq!(
            plan.route,
            Route::Docker {
                image: "registry.int:5000/app:2".into(),
                origin: "TaskInfo.command.container.image"
            }
        );
    }

    #[test]
    fn the_default_image_applies_only_without_a_container() {
        let env = vec![(DEFAULT_IMAGE_ENV.to_owned(), "docker:///ubuntu".to_owned())];
        let plan = translate(id(), &launch(executor(shell("true"))), &env, &settings()).unwrap();
        assert_eq!(
            plan.route,
            Route::Docker {
                image: "ubuntu".into(),
                origin: "the agent's --default_container_image"
            }
        );
        let mut s = settings();
        s.default_image = Some("debian:12".into());
        let plan = translate(id(), &launch(executor(shell("true"))), &[], &s).unwrap();
        assert!(matches!(plan.route, Route::Docker { ref image, .. } if image == "debian:12"));

        let mut e = executor(shell("true"));
        e.container = Some(ContainerInfo {
            r#type: container_info::Type::Mesos as i32,
            ..Default::default()
        });
        let plan = translate(id(), &launch(e), &env, &s).unwrap();
        assert_eq!(plan.route, Route::Mesos);
    }

    #[test]
    fn bad_launches_are_refused_with_a_reason() {
        let err = translate(id(), &launch(executor(shell("  "))), &[], &settings()).unwrap_err();
        assert_eq!(err, TranslateError::EmptyCommand("executor"));
        let mut l = launch(executor(shell("true")));
        l.executor_info = None;
        assert_eq!(
            translate(id(), &l, &[], &settings()).unwrap_err(),
            TranslateError::NoCommand
        );
        let mut l = launch(executor(shell("true")));
        l.directory = Some("relative".into());
        assert!(matches!(
            translate(id(), &l, &[], &settings()),
            Err(TranslateError::RelativeSandbox(_))
        ));
        let env = vec![(DEFAULT_IMAGE_ENV.to_owned(), "http://x/y".to_owned())];
        assert!(matches!(
            translate(id(), &launch(executor(shell("true"))), &env, &settings()),
            Err(TranslateError::BadImageUrl { .. })
        ));
    }

    fn mesos_container(linux: mesos::LinuxInfo, rlimits: mesos::RLimitInfo) -> Launch {
        let mut e = executor(shell("true"));
        e.container = Some(mesos::ContainerInfo {
            r#type: container_info::Type::Mesos as i32,
            linux_info: Some(linux),
            rlimit_info: Some(rlimits),
            ..Default::default()
        });
        launch(e)
    }

    #[test]
    fn linux_info_and_rlimit_info_become_the_security_intent() {
        use mesos::capability_info::Capability;
        use mesos::r_limit_info::{RLimit, r_limit::Type};
        let caps = |list: &[Capability]| mesos::CapabilityInfo {
            capabilities: list.iter().map(|c| *c as i32).collect(),
        };
        let linux = mesos::LinuxInfo {
            effective_capabilities: Some(caps(&[Capability::NetRaw, Capability::Chown])),
            bounding_capabilities: Some(caps(&[
                Capability::NetRaw,
                Capability::Chown,
                Capability::Kill,
            ])),
            share_pid_namespace: Some(true),
            seccomp: Some(mesos::SeccompInfo {
                profile_name: None,
                unconfined: Some(true),
            }),
            ipc_mode: Some(mesos::linux_info::IpcMode::ShareParent as i32),
            ..Default::default()
        };
        let rlimits = mesos::RLimitInfo {
            rlimits: vec![
                RLimit {
                    r#type: Some(Type::RlmtNofile as i32),
                    soft: Some(77),
                    hard: Some(88),
                },
                RLimit {
                    r#type: Some(Type::RlmtCore as i32),
                    soft: None,
                    hard: None,
                },
            ],
        };
        let plan = translate(id(), &mesos_container(linux, rlimits), &[], &settings()).unwrap();
        let sec = plan.intent.security;
        assert_eq!(
            sec.effective_capabilities,
            Some(vec!["NET_RAW".to_owned(), "CHOWN".to_owned()])
        );
        assert_eq!(sec.bounding_capabilities.as_ref().map(Vec::len), Some(3));
        assert!(sec.share_pid_namespace);
        assert_eq!(sec.share_ipc_namespace, Some(true));
        assert_eq!(sec.security_opts, ["seccomp=unconfined"]);
        assert_eq!(sec.ulimits, ["RLMT_NOFILE=77:88", "RLMT_CORE=unlimited"]);
        // Each one parses as the planner will parse it.
        for u in &sec.ulimits {
            phobos_mesos::security::rlimits::parse_ulimit(u).unwrap();
        }
    }

    #[test]
    fn contradictory_linux_info_is_refused_with_the_field() {
        use mesos::r_limit_info::{RLimit, r_limit::Type};
        let both = mesos::LinuxInfo {
            seccomp: Some(mesos::SeccompInfo {
                profile_name: Some("p.json".into()),
                unconfined: Some(true),
            }),
            ..Default::default()
        };
        let err = translate(
            id(),
            &mesos_container(both, Default::default()),
            &[],
            &settings(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "ExecutorInfo.container.linux_info.seccomp: profile_name and unconfined are both set"
        );
        let half = mesos::RLimitInfo {
            rlimits: vec![RLimit {
                r#type: Some(Type::RlmtNofile as i32),
                soft: Some(1),
                hard: None,
            }],
        };
        let err = translate(
            id(),
            &mesos_container(Default::default(), half),
            &[],
            &settings(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("RLMT_NOFILE sets only one"),
            "{err}"
        );
        let unknown = mesos::LinuxInfo {
            effective_capabilities: Some(mesos::CapabilityInfo {
                capabilities: vec![4242],
            }),
            ..Default::default()
        };
        let err = translate(
            id(),
            &mesos_container(unknown, Default::default()),
            &[],
            &settings(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown capability 4242"), "{err}");
    }

    #[test]
    fn shm_size_is_in_mb_and_needs_a_private_ipc_namespace() {
        let scalar = |value| Some(mesos::value::Scalar { value });
        let private = mesos::LinuxInfo {
            ipc_mode: Some(mesos::linux_info::IpcMode::Private as i32),
            shm_size: scalar(32.0),
            ..Default::default()
        };
        let plan = translate(
            id(),
            &mesos_container(private.clone(), Default::default()),
            &[],
            &settings(),
        )
        .unwrap();
        assert_eq!(plan.intent.security.shm_size, Some(32 << 20));
        assert_eq!(plan.intent.security.share_ipc_namespace, Some(false));
        for (ipc_mode, value, problem) in [
            (None, 32.0, "32 MB needs ipc_mode PRIVATE"),
            (
                Some(mesos::linux_info::IpcMode::ShareParent as i32),
                32.0,
                "32 MB needs ipc_mode PRIVATE",
            ),
            (private.ipc_mode, 0.0, "0 MB is not a size"),
            (private.ipc_mode, f64::NAN, "NaN MB is not a size"),
        ] {
            let linux = mesos::LinuxInfo {
                ipc_mode,
                shm_size: scalar(value),
                ..Default::default()
            };
            let err = translate(
                id(),
                &mesos_container(linux, Default::default()),
                &[],
                &settings(),
            )
            .unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("ExecutorInfo.container.linux_info.shm_size: {problem}")
                    .replace(" is not a size", " is not a size from 1 MB to 1 TB"),
                "{ipc_mode:?} {value}"
            );
        }
    }

    #[test]
    fn without_root_the_user_is_not_switched() {
        let mut s = settings();
        s.root = false;
        let plan = translate(id(), &launch(executor(shell("true"))), &[], &s).unwrap();
        assert_eq!(plan.intent.user, None);
    }

    proptest::proptest! {
        /// Whatever the agent sends, translation answers without panicking,
        /// and a Mesos route always carries a non-empty command.
        #[test]
        fn never_panics_on_any_launch(
            value in proptest::option::of(".{0,40}"),
            shell in proptest::option::of(proptest::bool::ANY),
            arguments in proptest::collection::vec(".{0,10}", 0..4),
            directory in proptest::option::of(".{0,20}"),
            user in proptest::option::of(".{0,10}"),
            container_type in proptest::option::of(-2i32..5),
            image in ".{0,20}",
            legacy in proptest::option::of(".{0,20}"),
            default_image in proptest::option::of(".{0,20}"),
            names in proptest::collection::vec(".{0,8}", 0..4),
        ) {
            let mut command = CommandInfo {
                value,
                shell,
                arguments,
                user,
                ..Default::default()
            };
            command.container = legacy.map(|image| mesos::command_info::ContainerInfo {
                image,
                options: vec![],
            });
            let mut e = executor(command);
            e.container = container_type.map(|t| ContainerInfo {
                r#type: t,
                docker: Some(container_info::DockerInfo {
                    image: image.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            });
            e.resources = names.iter().map(|n| scalar(n, 1.0)).collect();
            let mut l = launch(e);
            l.directory = directory;
            let mut s = settings();
            s.default_image = default_image;
            if let Ok(plan) = translate(id(), &l, &[], &s)
                && plan.route == Route::Mesos
            {
                let command = plan.intent.command.as_ref().map(|c| c.value.trim().to_owned());
                proptest::prop_assert!(command.is_some_and(|c| !c.is_empty()));
                proptest::prop_assert!(plan.intent.sandbox.is_none_or(|s| s.is_absolute()));
            }
        }
    }
}
