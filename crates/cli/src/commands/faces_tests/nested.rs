//! Nested launches through every face: the same request from the CLI and
//! the agent, the planner's refusals of bad nested requests, and the agent
//! face's sharing options. Part of [`super`]'s tests.

use super::*;

/// A nested launch is the same request from the CLI and from a face that
/// fills the intent itself (the coming agent's LAUNCH_NESTED_CONTAINER):
/// the full ID, the sandbox in the parent's, the nesting, and isolators
/// without the namespaces the nesting decides.
#[test]
fn nested_requests_are_the_same_from_every_face() {
    let settings = settings("", 0);
    let from_cli = plan(
        &settings,
        cli(&[
            "--parent",
            "web.kid",
            "--id",
            "g",
            "--share-pid",
            "--isolation",
            "filesystem/linux,namespaces/pid,namespaces/uts,cgroups/cpu",
            "--",
            "sh",
            "-c",
            "echo hi",
        ]),
    );
    let from_agent = plan(
        &settings,
        LaunchIntent {
            id: Some(ContainerId::new("g").unwrap()),
            parent: Some(ContainerId::parse_path("web.kid").unwrap()),
            nesting: phobos_core::Nesting {
                share_pid: true,
                ..Default::default()
            },
            command: CommandSpec::argv(vec!["sh".into(), "-c".into(), "echo hi".into()]),
            isolation: Some(vec![
                "filesystem/linux".into(),
                "namespaces/pid".into(),
                "namespaces/uts".into(),
                "cgroups/cpu".into(),
            ]),
            ..LaunchIntent::default()
        },
    );
    assert_eq!(from_cli, from_agent);
    assert_eq!(from_cli.spec.id.as_str(), "web.kid.g");
    assert_eq!(
        from_cli.spec.sandbox,
        Path::new(WORK).join("containers/web/containers/kid/containers/g")
    );
    let Target::Mesos(m) = &from_cli.target else {
        panic!("nested containers are the Mesos containerizer's");
    };
    assert_eq!(m.isolation, ["filesystem/linux", "cgroups/cpu"]);
    let config = from_cli.config(0.0);
    assert_eq!(
        config.nesting,
        Some(phobos_core::Nesting {
            share_pid: true,
            ..Default::default()
        })
    );
    // Shared cgroups: the parent's isolators, none of its own.
    let shared = plan(
        &settings,
        cli(&["--parent", "web", "--share-cgroups", "--", "true"]),
    );
    let Target::Mesos(m) = &shared.target else {
        panic!("not a Mesos request");
    };
    assert!(m.isolation.iter().all(|n| !n.starts_with("cgroups/")));
    assert!(shared.spec.id.as_str().starts_with("web."));
}

/// Bad nested requests: each refused with one line naming the value;
/// an unknown parent is a runtime failure (exit 1), the rest bad input.
#[test]
fn bad_nested_requests_are_refused_by_the_planner() {
    let settings = settings("", 0);
    let refuse = |args: &[&str]| {
        Planner::new(&settings, &FakeHost)
            .plan(cli(args))
            .unwrap_err()
    };
    let unknown = refuse(&["--parent", "nope", "--", "true"]);
    assert_eq!(
        unknown.to_string(),
        "parent container 'nope' does not exist"
    );
    assert!(!unknown.is_usage());
    let docker = refuse(&["--parent", "dock", "--", "true"]);
    assert!(
        docker.to_string().contains("'dock' is a Docker container"),
        "{docker}"
    );
    assert!(docker.is_usage());
    for (args, says) in [
        (
            &["--parent", "web", "--hostname", "h", "--", "true"][..],
            "a hostname",
        ),
        (
            &["--parent", "web", "--network", "phobos", "--", "true"][..],
            "a network",
        ),
        (
            &["--parent", "web", "--launcher", "posix", "--", "true"][..],
            "the posix launcher",
        ),
        (
            &["--parent", "web", "--docker-image", "busybox", "--", "true"][..],
            "nesting",
        ),
    ] {
        let e = refuse(args);
        assert!(e.to_string().contains(says), "{args:?}: {e}");
        assert!(e.is_usage(), "{args:?}");
    }
    // A debug container has no resources, root filesystem or isolators.
    for args in [
        &["--parent", "web", "--debug", "--cpus", "1", "--", "true"][..],
        &[
            "--parent",
            "web",
            "--debug",
            "--isolation",
            "cgroups/cpu",
            "--",
            "true",
        ][..],
    ] {
        let e = refuse(args);
        assert!(e.to_string().contains("a debug container"), "{args:?}: {e}");
    }
    let debug = Planner::new(&settings, &FakeHost)
        .plan(cli(&["--parent", "web", "--debug", "--", "true"]))
        .unwrap()
        .request;
    let Target::Mesos(m) = &debug.target else {
        panic!("not a Mesos request");
    };
    assert!(
        m.isolation
            .iter()
            .all(|n| n.starts_with("linux/") || n == "posix/rlimits")
    );
    // --share-* without --parent is a usage error at parse time; an ID
    // with a dot under a parent is not an ID.
    assert!(Cli::try_parse_from(["phobos", "run", "--share-pid", "--", "true"]).is_err());
    let cli = Cli::try_parse_from([
        "phobos", "run", "--parent", "web", "--id", "a.b", "--", "true",
    ])
    .unwrap();
    let Command::Run(args) = cli.command else {
        panic!("not a run");
    };
    let e = crate::commands::run::intent(&args).unwrap_err().to_string();
    assert!(e.contains("invalid container id 'a.b'"), "{e}");
}

/// [`FakeHost`] with every controller on cgroup2.
struct Cgroup2OnlyHost;

impl Host for Cgroup2OnlyHost {
    fn default_isolation(&self, launcher: LauncherKind) -> Vec<String> {
        FakeHost.default_isolation(launcher)
    }

    fn parent(&self, id: &ContainerId) -> Option<phobos_runtime::ParentFacts> {
        FakeHost.parent(id)
    }

    fn cgroup2_only(&self) -> bool {
        true
    }
}

/// On a cgroup2-only host a nested container cannot have controllers of
/// its own under its parent's populated cgroup: refused by the planner as
/// a runtime failure naming the rule and the way out; sharing the
/// parent's cgroups, or an isolation without cgroups isolators, plans.
#[test]
fn nested_cgroups_of_its_own_on_cgroup2_only_are_refused_by_the_planner() {
    let settings = settings("", 0);
    let planner = Planner::new(&settings, &Cgroup2OnlyHost);
    let e = planner
        .plan(cli(&["--parent", "web", "--id", "kid2", "--", "true"]))
        .unwrap_err();
    let line = e.to_string();
    assert!(!e.is_usage(), "{line}");
    assert!(!line.contains('\n'), "{line}");
    for says in [
        "'web.kid2'",
        "'web'",
        "no-internal-process rule",
        "--share-cgroups",
    ] {
        assert!(line.contains(says), "{says}: {line}");
    }
    let shared = planner
        .plan(cli(&["--parent", "web", "--share-cgroups", "--", "true"]))
        .unwrap();
    assert!(shared.request.spec.nesting.unwrap().share_cgroups);
    for isolation in ["filesystem/linux", "filesystem/linux,cgroups/devices"] {
        let args = ["--parent", "web", "--isolation", isolation, "--", "true"];
        assert!(planner.plan(cli(&args)).is_ok(), "{isolation}");
    }
    // A top-level container is not concerned.
    assert!(planner.plan(cli(&["--", "true"])).is_ok());
}

/// The agent face itself (`phobos_agent::translate`): a nested launch's
/// `LinuxInfo` sharing options (`share_pid_namespace`, `ipc_mode`,
/// `share_cgroups`, Mesos's default true) are the CLI's `--share-pid`,
/// `--share-ipc` and `--share-cgroups`; a session is the CLI's `--debug`;
/// `tty_info` is `-t`'s terminal.
#[test]
fn agent_linux_info_sharing_is_the_clis_share_flags() {
    use mesos::linux_info::IpcMode;
    use phobos_agent::translate::{Class, launch_intent};
    let settings = settings("", 0);
    let agent = |value: &str, linux: Option<mesos::LinuxInfo>, class: Class| {
        let launch = phobos_proto::agent::call::LaunchContainer {
            container_id: mesos::ContainerId {
                value: value.into(),
                parent: Some(Box::new(mesos::ContainerId {
                    value: "web".into(),
                    parent: None,
                })),
            },
            command: Some(CommandInfo {
                shell: Some(false),
                value: Some("sh".into()),
                arguments: vec!["sh".into(), "-c".into(), "echo hi".into()],
                ..Default::default()
            }),
            container: Some(ContainerInfo {
                r#type: container_info::Type::Mesos as i32,
                linux_info: linux,
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = ContainerId::parse_path(format!("web.{value}")).unwrap();
        plan(&settings, launch_intent(&id, &launch, true, class).unwrap())
    };
    let linux = |pid: Option<bool>, ipc: Option<IpcMode>, cgroups: Option<bool>| {
        Some(mesos::LinuxInfo {
            share_pid_namespace: pid,
            ipc_mode: ipc.map(|m| m as i32),
            share_cgroups: cgroups,
            ..Default::default()
        })
    };
    let cases: [(&[&str], Option<mesos::LinuxInfo>); 5] = [
        (&["--share-cgroups"], None),
        (
            &["--share-pid", "--share-cgroups"],
            linux(Some(true), None, None),
        ),
        (
            &["--share-ipc"],
            linux(None, Some(IpcMode::ShareParent), Some(false)),
        ),
        (&[], linux(Some(false), Some(IpcMode::Private), Some(false))),
        (
            &["--share-pid", "--share-ipc", "--share-cgroups"],
            linux(Some(true), Some(IpcMode::ShareParent), Some(true)),
        ),
    ];
    for (flags, info) in cases {
        let mut args = vec!["--parent", "web", "--id", "g"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--", "sh", "-c", "echo hi"]);
        let from_cli = plan(&settings, cli(&args));
        let from_agent = agent("g", info.clone(), Class::Default);
        assert_eq!(from_cli, from_agent, "{flags:?} vs {info:?}");
    }
    // A session is Mesos's DEBUG class: the CLI's --debug.
    let from_cli = plan(
        &settings,
        cli(&[
            "--parent", "web", "--id", "s", "--debug", "--", "sh", "-c", "echo hi",
        ]),
    );
    assert_eq!(from_cli, agent("s", None, Class::Session));
    assert_eq!(from_cli.config(0.0).nesting.map(|n| n.debug), Some(true));
    // A session must share its parent's cgroups.
    let launch = phobos_proto::agent::call::LaunchContainer {
        container_id: mesos::ContainerId {
            value: "s".into(),
            parent: Some(Box::new(mesos::ContainerId {
                value: "web".into(),
                parent: None,
            })),
        },
        command: Some(CommandInfo {
            value: Some("true".into()),
            ..Default::default()
        }),
        container: Some(ContainerInfo {
            r#type: container_info::Type::Mesos as i32,
            linux_info: linux(None, None, Some(false)),
            ..Default::default()
        }),
        ..Default::default()
    };
    let id = ContainerId::parse_path("web.s").unwrap();
    assert!(launch_intent(&id, &launch, true, Class::Session).is_err());
    // `tty_info` is a terminal with the given window size.
    let mut tty = launch.clone();
    tty.container = Some(ContainerInfo {
        r#type: container_info::Type::Mesos as i32,
        tty_info: Some(mesos::TtyInfo {
            window_size: Some(mesos::tty_info::WindowSize {
                rows: 30,
                columns: 100,
            }),
        }),
        ..Default::default()
    });
    let intent = launch_intent(&id, &tty, true, Class::Default).unwrap();
    assert_eq!(
        intent.tty,
        Some(phobos_core::TtyInfo {
            window_size: Some(phobos_core::WindowSize {
                rows: 30,
                columns: 100
            }),
            wait_for_client: false,
        })
    );
}
