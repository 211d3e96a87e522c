//! Tests of the `containerizer.Launch` translation, message in, intent out.

use phobos_proto::mesos::{
    CommandInfo, ContainerInfo, Environment, ExecutorId, ExecutorInfo, SlaveId, TaskId, TaskInfo,
    environment,
};

use phobos_proto::mesos::{self, container_info};

use super::route::DEFAULT_IMAGE_ENV;
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
        ["sh", "-c", "./my-executor --flag"]
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
    // Its named networks are joined, as a plain Mesos container's; there
    // the agent's LIBPROCESS_IP (a host address) gives way to the network
    // isolator's, the command's own is kept.
    let mut networked = e.clone();
    if let Some(c) = networked.container.as_mut() {
        c.network_infos = vec![mesos::NetworkInfo {
            name: Some("phobos".into()),
            ..Default::default()
        }];
    }
    networked.command.environment = Some(mesos::Environment {
        variables: vec![mesos::environment::Variable {
            name: "FROM_TASK".into(),
            value: "1".into(),
        }],
    });
    let agent_env = [
        ("LIBPROCESS_IP".to_owned(), "192.0.2.7".to_owned()),
        (
            "MESOS_AGENT_ENDPOINT".to_owned(),
            "192.0.2.7:5051".to_owned(),
        ),
    ];
    let intent = translate(id(), &launch(networked.clone()), &agent_env, &settings())
        .unwrap()
        .intent;
    assert_eq!(intent.networks.len(), 1);
    assert!(
        !intent.env.iter().any(|(k, _)| k == "LIBPROCESS_IP"),
        "{:?}",
        intent.env
    );
    assert!(intent.env.iter().any(|(k, _)| k == "MESOS_AGENT_ENDPOINT"));
    assert!(
        intent
            .env
            .contains(&("FROM_TASK".to_owned(), "1".to_owned()))
    );
    if let Some(environment) = networked.command.environment.as_mut() {
        environment.variables[0].name = "LIBPROCESS_IP".into();
    }
    let intent = translate(id(), &launch(networked), &agent_env, &settings())
        .unwrap()
        .intent;
    let own: Vec<_> = intent
        .env
        .iter()
        .filter(|(k, _)| k == "LIBPROCESS_IP")
        .collect();
    assert_eq!(own, [&("LIBPROCESS_IP".to_owned(), "1".to_owned())]);
    let intent = translate(id(), &launch(e.clone()), &agent_env, &settings())
        .unwrap()
        .intent;
    assert!(intent.networks.is_empty());
    assert!(intent.env.contains(&agent_env[0]));
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
fn a_docker_containers_command_is_read_as_mesoss_docker_containerizer_reads_it() {
    let docker = ContainerInfo {
        r#type: container_info::Type::Docker as i32,
        docker: Some(container_info::DockerInfo {
            image: "busybox:1".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let command = |value: Option<&str>, arguments: &[&str]| {
        let mut e = executor(CommandInfo {
            shell: Some(false),
            value: value.map(Into::into),
            arguments: arguments.iter().map(|a| a.to_string()).collect(),
            ..Default::default()
        });
        e.container = Some(docker.clone());
        translate(id(), &launch(e), &[], &settings())
            .unwrap()
            .intent
            .command
            .unwrap()
            .exec_argv()
    };
    // `value`, then `arguments`, after the image's ENTRYPOINT.
    assert_eq!(
        command(Some("/bin/echo"), &["a", "b"]),
        ["/bin/echo", "a", "b"]
    );
    // `arguments` alone (Marathon's `args`).
    assert_eq!(command(None, &["--port", "80"]), ["--port", "80"]);
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
