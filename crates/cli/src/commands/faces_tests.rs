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

mod nested;
mod routed;

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
    // Mesos's Docker containerizer runs `value` and then `arguments` after
    // the image's ENTRYPOINT, so the CLI's argv is `arguments` alone there.
    let mut request = launch("d1", Some(container));
    if let Some(executor) = &mut request.executor_info {
        executor.command.value = None;
    }
    let mut from_ecp = plan(&s, ecp(&request));
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
    // A resource the CLI would refuse as it parses it, from the others.
    let negative = vec![scalar("cpus", -1.0)];
    let mut from_agent = agent("r", None);
    from_agent.resources = phobos_runtime::mesos_proto::resources(&negative);
    let mut request = launch("r", None);
    if let Some(executor) = &mut request.executor_info {
        executor.resources = negative;
    }
    let message = refuse(from_agent);
    assert_eq!(
        message,
        "invalid value '-1' for resource cpus: must be greater than 0"
    );
    assert_eq!(refuse(ecp(&request)), message);
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
