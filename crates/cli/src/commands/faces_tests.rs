//! The planner's promise to the faces: the CLI's `run`, the ECP's `launch`
//! and any other face (here a fake agent that fills the intent by hand)
//! that ask for the same container get the same `LaunchRequest`, decided
//! with the same settings. Fake settings and host: nothing is launched.

use std::path::{Path, PathBuf};

use clap::Parser;
use phobos_core::{CommandSpec, ContainerId, LauncherKind, Resources};
use phobos_proto::containerizer::Launch;
use phobos_proto::mesos::{
    self, CommandInfo, ContainerInfo, ExecutorId, ExecutorInfo, container_info,
};
use phobos_runtime::docker::{DockerLaunch, DockerNetwork};
use phobos_runtime::{Host, LaunchIntent, LaunchRequest, Planner, Settings, Target};

use super::ecp::{docker, translate};
use crate::cli::{Cli, Command};

const WORK: &str = "/srv/phobos-work";

/// A host whose default isolation is fixed, whatever this machine has.
struct FakeHost;

impl Host for FakeHost {
    fn default_isolation(&self, launcher: LauncherKind) -> Vec<String> {
        match launcher {
            LauncherKind::Linux => vec!["filesystem/linux".into(), "cgroups/cpu".into()],
            LauncherKind::Posix => vec!["filesystem/posix".into()],
        }
    }

    /// `web` (and `web.kid`) are Mesos containers, `dock` a Docker one.
    fn parent(&self, id: &ContainerId) -> Option<phobos_runtime::ParentFacts> {
        let sandbox = match id.as_str() {
            "web" => PathBuf::from(format!("{WORK}/containers/web")),
            "web.kid" => PathBuf::from(format!("{WORK}/containers/web/containers/kid")),
            "dock" => PathBuf::new(),
            _ => return None,
        };
        Some(phobos_runtime::ParentFacts {
            sandbox,
            docker: id.as_str() == "dock",
            processes_in_own_cgroup: false,
            cgroups: None,
        })
    }
}

fn settings(file: &str, euid: u32) -> Settings {
    let env = phobos_config::Environment {
        uid: euid,
        home: None,
        xdg_runtime_dir: None,
        phobos_config: None,
        system_config: PathBuf::from("/nonexistent"),
    };
    let text = format!("work_dir = \"{WORK}\"\nruntime_dir = \"/run/phobos-test\"\n{file}");
    let loaded = phobos_config::parse_str(&text, Path::new("/etc/phobos.toml"), &env).unwrap();
    Settings::from_loaded(loaded, euid)
}

fn plan(settings: &Settings, intent: LaunchIntent) -> LaunchRequest {
    Planner::new(settings, &FakeHost)
        .plan(intent)
        .unwrap()
        .request
}

/// The CLI face: `phobos run ARGS…`.
fn cli(args: &[&str]) -> LaunchIntent {
    let cli = Cli::try_parse_from(["phobos", "run"].iter().chain(args)).unwrap();
    let Command::Run(args) = cli.command else {
        panic!("not a run");
    };
    super::run::intent(&args).unwrap()
}

/// The ECP face: a `containerizer.Launch` as an agent sends it.
fn ecp(launch: &Launch) -> LaunchIntent {
    let id = ContainerId::new(launch.container_id.value.clone()).unwrap();
    let translated = translate::translate(
        id,
        launch,
        &[],
        &translate::Settings {
            default_image: None,
            mesos_images: false,
            root: true,
        },
    )
    .unwrap();
    match translated.route {
        translate::Route::Mesos => translated.intent,
        translate::Route::MesosImage { image, .. } => LaunchIntent {
            rootfs_image: Some(image),
            ..translated.intent
        },
        translate::Route::Docker { image, .. } => {
            docker::intent(launch, translated.intent, image).unwrap().0
        }
    }
}

fn scalar(name: &str, value: f64) -> mesos::Resource {
    mesos::Resource {
        name: name.into(),
        r#type: mesos::value::Type::Scalar as i32,
        scalar: Some(mesos::value::Scalar { value }),
        ..Default::default()
    }
}

fn launch(id: &str, container: Option<ContainerInfo>) -> Launch {
    Launch {
        container_id: mesos::ContainerId {
            value: id.into(),
            parent: None,
        },
        executor_info: Some(ExecutorInfo {
            executor_id: ExecutorId { value: "e".into() },
            command: CommandInfo {
                shell: Some(false),
                value: Some("sh".into()),
                arguments: vec!["sh".into(), "-c".into(), "echo hi".into()],
                ..Default::default()
            },
            resources: vec![scalar("cpus", 0.5), scalar("mem", 64.0)],
            container,
            ..Default::default()
        }),
        directory: Some(format!("{WORK}/containers/{id}")),
        user: Some("nobody".into()),
        ..Default::default()
    }
}

/// The fake third face: an agent filling the intent itself.
fn agent(id: &str, docker: Option<DockerLaunch>) -> LaunchIntent {
    LaunchIntent {
        id: Some(ContainerId::new(id).unwrap()),
        command: CommandSpec::argv(vec!["sh".into(), "-c".into(), "echo hi".into()]),
        user: Some("nobody".into()),
        resources: Resources {
            cpus: Some(0.5),
            mem: Some(64.0),
            ..Resources::default()
        },
        docker,
        ..LaunchIntent::default()
    }
}

#[test]
fn three_faces_one_mesos_request() {
    for (file, euid) in [
        ("", 0),
        ("", 1000),
        ("launcher = \"posix\"\ncgroups_enable_cfs = true\n", 0),
        ("isolation = \"posix/cpu,posix/mem\"\n", 0),
    ] {
        let s = settings(file, euid);
        let from_cli = plan(
            &s,
            cli(&[
                "--id", "c1", "--user", "nobody", "--cpus", "0.5", "--mem", "64", "--", "sh", "-c",
                "echo hi",
            ]),
        );
        let from_ecp = plan(&s, ecp(&launch("c1", None)));
        let from_agent = plan(&s, agent("c1", None));
        assert_eq!(from_cli, from_ecp, "{file} as {euid}");
        assert_eq!(from_cli, from_agent, "{file} as {euid}");
        assert_eq!(
            from_cli.spec.sandbox,
            PathBuf::from(format!("{WORK}/containers/c1"))
        );
        let Target::Mesos(m) = &from_cli.target else {
            panic!("not a Mesos launch");
        };
        // The one place decided the launcher and the isolation for all.
        let expected = s.launcher(None).unwrap().kind;
        assert_eq!(m.launcher, expected, "{file} as {euid}");
        assert_eq!(
            from_cli.spec.isolator_flags.cgroups_enable_cfs,
            file.contains("cfs")
        );
    }
}

#[test]
fn three_faces_one_docker_request() {
    let s = settings("", 0);
    let from_cli = plan(
        &s,
        cli(&[
            "--id",
            "d1",
            "--docker-image",
            "busybox:local",
            "--network",
            "bridge",
            "--cpus",
            "0.5",
            "--mem",
            "64",
            "--",
            "sh",
            "-c",
            "echo hi",
        ]),
    );
    let container = ContainerInfo {
        r#type: container_info::Type::Docker as i32,
        docker: Some(container_info::DockerInfo {
            image: "busybox:local".into(),
            network: Some(container_info::docker_info::Network::Bridge as i32),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut from_ecp = plan(&s, ecp(&launch("d1", Some(container))));
    let docker = DockerLaunch {
        image: "busybox:local".into(),
        network: DockerNetwork::Bridge,
        offered_ports: crate::docker_args::all_ports(),
        ..DockerLaunch::default()
    };
    let mut agent_intent = agent("d1", Some(docker));
    // A CLI user is `docker run --user`; an agent's framework user is not
    // (Mesos's Docker containerizer runs the image's user).
    agent_intent.user = None;
    let mut from_cli_no_user = from_cli.clone();
    if let Target::Docker(d) = &mut from_cli_no_user.target {
        d.parameters.retain(|(k, _)| k != "user");
    }
    from_cli_no_user.spec.user = None;
    let from_agent = plan(&s, agent_intent);
    assert_eq!(from_cli_no_user, from_agent);
    // The ECP's own facts: output appended (the agent writes the sandbox
    // files too) and only the offered ports may be published.
    if let Target::Docker(d) = &mut from_ecp.target {
        assert!(d.append_logs);
        assert!(d.offered_ports.is_empty());
        d.append_logs = false;
        d.offered_ports = crate::docker_args::all_ports();
    }
    assert_eq!(from_ecp, from_agent);
}

#[test]
fn a_refusal_is_the_same_for_every_face() {
    let user = settings("", 1000);
    let refuse = |intent| {
        Planner::new(&user, &FakeHost)
            .plan(intent)
            .unwrap_err()
            .to_string()
    };
    let mut cli_intent = cli(&["--id", "h", "--hostname", "box", "--", "true"]);
    let mut agent_intent = agent("h", None);
    agent_intent.hostname = Some("box".into());
    assert_eq!(refuse(cli_intent.clone()), refuse(agent_intent));
    cli_intent.hostname = None;
    cli_intent.launcher = Some(LauncherKind::Linux);
    assert!(refuse(cli_intent).contains("needs root"));
    let off = settings("containerizers = \"mesos\"\n", 0);
    let err = Planner::new(&off, &FakeHost)
        .plan(cli(&["--docker-image", "busybox:local", "--", "true"]))
        .unwrap_err();
    assert!(err.to_string().contains("containerizers"), "{err}");
}

#[test]
fn three_faces_one_network_request() {
    use phobos_runtime::network::{ContainerNetwork, NetworkInfo, PortMapping};
    let s = settings("", 0);
    let from_cli = plan(
        &s,
        cli(&[
            "--id",
            "n1",
            "--user",
            "nobody",
            "--cpus",
            "0.5",
            "--mem",
            "64",
            "--network",
            "phobos",
            "-p",
            "8080:80",
            "--",
            "sh",
            "-c",
            "echo hi",
        ]),
    );
    let container = ContainerInfo {
        r#type: container_info::Type::Mesos as i32,
        network_infos: vec![mesos::NetworkInfo {
            name: Some("phobos".into()),
            port_mappings: vec![mesos::network_info::PortMapping {
                host_port: 8080,
                container_port: 80,
                protocol: Some("TCP".into()),
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let from_ecp = plan(&s, ecp(&launch("n1", Some(container))));
    let mapping: PortMapping = "8080:80".parse().unwrap();
    let mut agent_intent = agent("n1", None);
    agent_intent.networks = vec![NetworkInfo {
        name: "phobos".into(),
        port_mappings: vec![mapping],
    }];
    let from_agent = plan(&s, agent_intent);
    assert_eq!(from_cli, from_ecp);
    assert_eq!(from_cli, from_agent);
    assert_eq!(
        from_cli.spec.network,
        ContainerNetwork::Cni {
            networks: vec![NetworkInfo {
                name: "phobos".into(),
                port_mappings: vec![mapping],
            }]
        }
    );
    let Target::Mesos(m) = &from_cli.target else {
        panic!("not a Mesos launch");
    };
    assert!(
        m.isolation.iter().any(|n| n == "network/cni"),
        "{:?}",
        m.isolation
    );
}

#[test]
fn network_mistakes_are_refused_before_anything_exists() {
    let s = settings("", 0);
    for (args, want) in [
        (
            &["--network", "nope", "--", "true"][..],
            "unknown network 'nope' (networks found: phobos)",
        ),
        (&["-p", "80:80", "--", "true"][..], "not 'host'"),
        (
            &["--network", "none", "-p", "80:80", "--", "true"][..],
            "not 'none'",
        ),
        (
            &["--network", "host", "--network", "phobos", "--", "true"][..],
            "network 'host' cannot be combined",
        ),
        (
            &["--network", "phobos", "--launcher", "posix", "--", "true"][..],
            "needs the linux launcher",
        ),
    ] {
        let err = Planner::new(&s, &FakeHost).plan(cli(args)).unwrap_err();
        assert!(err.to_string().contains(want), "{args:?}: {err}");
    }
    let cli = Cli::try_parse_from(["phobos", "run", "-p", "80", "--", "true"]).unwrap();
    let Command::Run(args) = cli.command else {
        panic!("not a run");
    };
    let err = super::run::intent(&args).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid --publish '80': expected HOST:CONTAINER[/tcp|/udp|/sctp]"
    );
}

#[test]
fn ecp_linux_info_and_rlimit_info_reach_the_plan() {
    use mesos::capability_info::Capability;
    use mesos::r_limit_info::{RLimit, r_limit::Type};
    let s = settings(
        "isolation = \"filesystem/linux,namespaces/pid,namespaces/ipc,linux/capabilities,posix/rlimits\"\n",
        0,
    );
    let caps = |list: &[Capability]| mesos::CapabilityInfo {
        capabilities: list.iter().map(|c| *c as i32).collect(),
    };
    let container = |share: bool| ContainerInfo {
        r#type: container_info::Type::Mesos as i32,
        linux_info: Some(mesos::LinuxInfo {
            effective_capabilities: Some(caps(&[Capability::NetRaw])),
            bounding_capabilities: Some(caps(&[Capability::NetRaw, Capability::Kill])),
            share_pid_namespace: Some(share),
            ipc_mode: Some(if share {
                mesos::linux_info::IpcMode::ShareParent
            } else {
                mesos::linux_info::IpcMode::Private
            } as i32),
            ..Default::default()
        }),
        rlimit_info: Some(mesos::RLimitInfo {
            rlimits: vec![RLimit {
                r#type: Some(Type::RlmtNofile as i32),
                soft: Some(77),
                hard: Some(88),
            }],
        }),
        ..Default::default()
    };
    let req = plan(&s, ecp(&launch("l1", Some(container(true)))));
    let Target::Mesos(m) = &req.target else {
        panic!("not a Mesos launch");
    };
    assert!(
        !m.isolation
            .iter()
            .any(|n| n == "namespaces/pid" || n == "namespaces/ipc"),
        "shared namespaces: {:?}",
        m.isolation
    );
    let sets = m.hardening.capabilities.as_ref().unwrap();
    assert_eq!(sets.effective, 1 << 13, "NET_RAW");
    assert_eq!(sets.bounding, (1 << 13) | (1 << 5), "NET_RAW and KILL");
    assert_eq!(
        m.hardening.rlimits,
        [phobos_core::RLimit {
            kind: "nofile".into(),
            soft: Some(77),
            hard: Some(88)
        }]
    );
    let req = plan(&s, ecp(&launch("l2", Some(container(false)))));
    let Target::Mesos(m) = &req.target else {
        panic!("not a Mesos launch");
    };
    assert!(m.isolation.iter().any(|n| n == "namespaces/pid"));
    assert!(m.isolation.iter().any(|n| n == "namespaces/ipc"));
    // A bounding set beyond the operator's is refused before anything exists.
    let bounded = settings(
        "isolation = \"filesystem/linux,linux/capabilities\"\nbounding_capabilities = [\"NET_RAW\"]\n",
        0,
    );
    let err = Planner::new(&bounded, &FakeHost)
        .plan(ecp(&launch("l3", Some(container(true)))))
        .unwrap_err();
    assert!(err.to_string().contains("KILL"), "{err}");
}

#[test]
fn every_face_puts_the_sandbox_at_the_configured_sandbox_directory() {
    let image_container = ContainerInfo {
        r#type: container_info::Type::Mesos as i32,
        mesos: Some(container_info::MesosInfo {
            image: Some(mesos::Image {
                r#type: mesos::image::Type::Docker as i32,
                docker: Some(mesos::image::Docker {
                    name: "busybox:local".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }),
        ..Default::default()
    };
    for (file, expected) in [
        ("", "/mnt/mesos/sandbox"),
        ("sandbox_directory = \"/sandbox\"\n", "/sandbox"),
    ] {
        let s = settings(file, 0);
        let faces = [
            (
                "cli --image",
                cli(&["--id", "c1", "--image", "busybox:local", "--", "true"]),
            ),
            (
                "cli --rootfs",
                cli(&["--id", "c1", "--rootfs", "/", "--", "true"]),
            ),
            ("ecp", ecp(&launch("c1", Some(image_container.clone())))),
            (
                "agent",
                LaunchIntent {
                    rootfs_image: Some("busybox:local".into()),
                    ..agent("c1", None)
                },
            ),
        ];
        for (face, intent) in faces {
            let config = plan(&s, intent).config(0.0);
            assert_eq!(
                config.sandbox_directory.as_deref(),
                Some(Path::new(expected)),
                "{face} with {file:?}"
            );
            assert_eq!(config.sandbox_in_container(), Path::new(expected), "{face}");
        }
        // On the host's root filesystem the sandbox is where it is.
        let config = plan(&s, cli(&["--id", "c1", "--", "true"])).config(0.0);
        assert_eq!(config.sandbox_directory, None);
        assert_eq!(
            config.sandbox_in_container(),
            PathBuf::from(format!("{WORK}/containers/c1"))
        );
    }
}

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
    let e = super::run::intent(&args).unwrap_err().to_string();
    assert!(e.contains("invalid container id 'a.b'"), "{e}");
}

/// [`FakeHost`] with every controller on cgroup2, where `web` was launched
/// before the leaf layout (its processes in its own cgroup) when
/// `old_parent`.
struct Cgroup2OnlyHost {
    old_parent: bool,
}

impl Host for Cgroup2OnlyHost {
    fn default_isolation(&self, launcher: LauncherKind) -> Vec<String> {
        FakeHost.default_isolation(launcher)
    }

    fn parent(&self, id: &ContainerId) -> Option<phobos_runtime::ParentFacts> {
        FakeHost.parent(id).map(|mut facts| {
            facts.processes_in_own_cgroup = self.old_parent;
            facts
        })
    }

    fn cgroup2_only(&self) -> bool {
        true
    }
}

/// On a cgroup2-only host a nested container gets controllers of its own
/// under a parent whose processes are in its leaf; under a parent
/// launched before the leaf layout (processes in its own cgroup) it is
/// refused by the planner as a runtime failure naming the rule and the
/// ways out; sharing the parent's cgroups, or an isolation without
/// cgroups isolators, plans.
#[test]
fn nested_cgroups_of_its_own_on_cgroup2_only_are_refused_by_the_planner() {
    let settings = settings("", 0);
    let planner = Planner::new(&settings, &Cgroup2OnlyHost { old_parent: false });
    let own = planner
        .plan(cli(&[
            "--parent", "web", "--id", "kid2", "--mem", "32", "--", "true",
        ]))
        .unwrap();
    assert!(!own.request.spec.nesting.unwrap().share_cgroups);
    let host = Cgroup2OnlyHost { old_parent: true };
    let planner = Planner::new(&settings, &host);
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
        "leaf",
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
