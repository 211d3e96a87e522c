//! `phobos run`: parse the options into a launch intent, have the planner
//! decide it and the door launch it, then (unless `-d`) show its output
//! live, forward signals to it, and exit with its exit code.
//!
//! With `--docker-image IMAGE` (or `--image docker:///IMAGE`) the container
//! runs in an engine: in the foreground the engine's log stream is copied
//! into `<sandbox>/stdout|stderr` and onto this terminal, and forwarded
//! signals go through the engine. With `-d` a detached `phobos logs
//! --follow` fills the sandbox files while it runs; should it die, `phobos
//! logs` copies the engine's log into the files on demand, and whoever
//! records the container's end (`wait`, `destroy`, `recover`) copies it a
//! last time.

use std::os::fd::{AsFd, OwnedFd};

use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use phobos_core::{CommandSpec, ContainerId, LauncherKind, Operation, Resources};
use phobos_runtime::docker::{DockerLaunch, DockerNetwork};
use phobos_runtime::{LaunchIntent, Launched, Planner};

use crate::cli::{DockerArgs, Global, RunArgs};
use crate::context;
use crate::docker_args::{self, PullDisplay};
use crate::error::usage;
use crate::follow::{Follow, Forward};
use crate::resource_args;

/// Signals `phobos run` passes on to the container (docker's --sig-proxy).
pub(super) const FORWARDED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

pub fn run(
    global: &Global,
    args: RunArgs,
    early: Option<phobos_runtime::EarlySpawner>,
) -> anyhow::Result<u8> {
    if args.tty && !args.detach {
        crate::terminal::require_terminal("-t")?;
    }
    let mut intent = intent(&args)?;
    if args.tty {
        intent.tty = Some(phobos_core::TtyInfo {
            window_size: crate::terminal::caller_size(),
            // The foreground client connects right after the launch; the
            // command's first output waits for it.
            wait_for_client: !args.detach,
        });
    }
    let mut door = context::door(global)?;
    // A plain launch's init is cloned by a spawner started now (or
    // first thing in `main`), whose exec and start-up overlap the
    // planning and preparing below.
    if !args.tty
        && args.rootfs.is_none()
        && args.parent.is_none()
        && args.docker.docker_image.is_none()
        && args.docker.image.is_none()
    {
        door.start_init_spawner(early);
    } else {
        // Not a plain launch after all: ended now, not at the run's end.
        drop(early);
    }
    {
        use super::image::fetch_progress::FetchProgress;
        use super::image::progress::Mode;
        if let Some(display) = FetchProgress::for_mode(Mode::for_stderr(args.quiet)) {
            door.show_fetches(std::sync::Arc::new(display));
        }
    }
    let host = door.host();
    let plan = Planner::new(door.settings(), &host).plan(intent)?;
    for warning in &plan.warnings {
        errln!("phobos: warning: {warning}");
    }
    let request = plan.request;
    let id = request.id().clone();

    // Block forwarded signals before the launch so none is lost; init
    // inherits the mask and resets it for the command, and every thread
    // inherits it, so only the forwarding thread receives them.
    let mut forwarded = SigSet::empty();
    if !args.detach {
        for sig in FORWARDED {
            forwarded.add(sig);
        }
        let mut blocked = forwarded;
        if args.tty {
            blocked = crate::terminal::with_sigwinch(blocked);
        }
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&blocked), None)?;
    }
    // Only a foreground run shows output, and only `--rm` asks whether
    // the ID was taken: `-d` looks up neither (each is a path walk into a
    // directory with an entry per container).
    let offsets = match args.detach {
        true => [0, 0],
        false => Follow::offsets(&request.spec.sandbox),
    };
    let stdin: Option<OwnedFd> = if args.interactive {
        Some(std::io::stdin().as_fd().try_clone_to_owned()?)
    } else {
        None
    };
    let mut display = match &request.target {
        phobos_runtime::Target::Docker(d) if !args.quiet => Some(PullDisplay::new(&d.image)),
        phobos_runtime::Target::Docker(_) => None,
        phobos_runtime::Target::Mesos(_) => {
            if request.spec.rootfs_image.is_some() {
                use super::image::progress::{Mode, PullProgress};
                door.show_image_pulls(std::sync::Arc::new(PullProgress::new(Mode::for_stderr(
                    args.quiet,
                ))));
            }
            None
        }
    };
    let existed = args.rm && door.exists(&id);
    let launched = door.launch(&request, stdin, |p| {
        if let Some(display) = display.as_mut() {
            display.update(p);
        }
    });
    if let Some(display) = display.as_mut() {
        display.finish();
    }
    let launched = match launched {
        Ok(launched) => launched,
        Err(e) => {
            // `--rm` forgets a launch that failed (in FETCHING, say) as it
            // forgets one that ended: its FAILED record and its sandbox.
            // Never another launch's container of the same ID.
            if args.rm
                && !existed
                && !matches!(e, phobos_runtime::RuntimeError::AlreadyExists(_))
                && let Err(rm) = door.remove_if_terminated(&id)
            {
                tracing::warn!(container = %id, error = %rm, "cannot remove the failed launch");
            }
            return Err(anyhow::Error::new(e).context(crate::error::NeverStarted));
        }
    };
    if args.detach {
        if let Launched::Engine { .. } = launched {
            context::spawn_log_follower(global, &door, &id);
        }
        outln!("{id}");
        return Ok(0);
    }
    let termination = match &launched {
        Launched::Process {
            pidfd,
            tty: Some(switchboard),
            ..
        } => {
            let pidfd = match pidfd {
                Some(fd) => fd.try_clone()?,
                None => phobos_runtime::sys::pidfd_open(launched_pid(&launched))?,
            };
            crate::terminal::forward_signals(forwarded, pidfd);
            let end = crate::terminal::attach(switchboard, args.interactive, true)?;
            if end == phobos_runtime::terminal::terminal::End::Detached {
                crate::terminal::detached(&id);
                return Ok(0);
            }
            door.finish(&launched)?.ok_or_else(|| super::unknown(&id))?
        }
        Launched::Process { pidfd, sandbox, .. } => {
            let pidfd = match pidfd {
                Some(fd) => fd.try_clone()?,
                None => phobos_runtime::sys::pidfd_open(launched_pid(&launched))?,
            };
            let mut follow = Follow::from_offsets(sandbox, offsets)?;
            follow.run(Some(&pidfd), Some(Forward::new(forwarded, &pidfd)?))?;
            door.finish(&launched)?.ok_or_else(|| super::unknown(&id))?
        }
        Launched::Engine { .. } => {
            forward_through_door(global, forwarded, &id);
            door.follow_engine(&id, true, true)?;
            let outcome = door.apply(&id, Operation::Wait)?;
            super::ended(outcome.ok_or_else(|| super::unknown(&id))?)?
        }
    };
    report_limitation(&id, &termination);
    if args.rm {
        door.remove_if_terminated(&id)?;
    }
    Ok(termination.shell_exit_code().clamp(0, 255) as u8)
}

/// A container ended by a limit (OOM, disk) says so in one line on
/// stderr; its exit code (137 for an OOM kill) alone would not.
fn report_limitation(id: &ContainerId, termination: &phobos_core::Termination) {
    if let Some(line) = termination.limitation_line() {
        errln!("phobos: container {id} was ended by a limit: {line}");
    }
}

fn launched_pid(launched: &Launched) -> i32 {
    match launched {
        Launched::Process { pid, .. } => *pid,
        Launched::Engine { .. } => 0,
    }
}

/// Sends each forwarded signal to the container through the door, from a
/// thread of its own (the only one that does not block them).
fn forward_through_door(global: &Global, forwarded: SigSet, id: &ContainerId) {
    let global = global.clone();
    let id = id.clone();
    std::thread::spawn(move || {
        let Ok(door) = context::door(&global) else {
            return;
        };
        while let Ok(sig) = forwarded.wait() {
            let kill = Operation::Kill { signal: sig as i32 };
            if let Err(e) = door.apply(&id, kill) {
                errln!("phobos: failed to forward {sig}: {e}");
            }
        }
    });
}

/// The planner's input from `phobos run`'s options; every value is checked
/// here or by the planner before anything is created.
pub(crate) fn intent(args: &RunArgs) -> anyhow::Result<LaunchIntent> {
    let id = args
        .id
        .as_deref()
        .map(|id| ContainerId::new(id).map_err(|e| usage(e.to_string())))
        .transpose()?;
    let parent = args
        .parent
        .as_deref()
        .map(|p| ContainerId::parse_path(p).map_err(|e| usage(format!("--parent: {e}"))))
        .transpose()?;
    let docker = docker(&args.docker, args)?;
    let rootfs_image = docker_args::mesos_image(&args.docker);
    let command = CommandSpec::argv(args.command.clone());
    if command.is_none() && docker.is_none() && rootfs_image.is_none() {
        return Err(usage("no command given"));
    }
    let launcher = match args.launcher.as_deref() {
        None => None,
        Some("linux") => Some(LauncherKind::Linux),
        Some(_) => Some(LauncherKind::Posix),
    };
    let container_logger = match args.container_logger.as_deref() {
        None => None,
        Some("sandbox") => Some(phobos_config::ContainerLogger::Sandbox),
        Some("logrotate") => Some(phobos_config::ContainerLogger::Logrotate),
        Some(other) => {
            return Err(usage(format!(
                "invalid --container-logger {other:?}: expected \"logrotate\" or \"sandbox\""
            )));
        }
    };
    let mut resources = resource_args::apply(&args.resources, Resources::default())?;
    if let Some(disk) = &args.disk {
        resources.disk = Some(resource_args::disk(disk)?);
    }
    // The Docker containerizer takes --network and -p in its own terms.
    let (networks, publish) = if docker.is_some() {
        (Vec::new(), Vec::new())
    } else {
        let networks = args
            .docker
            .network
            .iter()
            .map(|name| {
                if name.is_empty() {
                    return Err(usage("--network needs a value"));
                }
                Ok(phobos_runtime::NetworkInfo {
                    name: name.clone(),
                    port_mappings: Vec::new(),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let publish = args
            .docker
            .publish
            .iter()
            .map(|p| docker_args::publish(p))
            .collect::<anyhow::Result<Vec<_>>>()?;
        (networks, publish)
    };
    // With a root filesystem, volumes are the Mesos containerizer's (a
    // relative HOST is a sandbox path); otherwise Docker's.
    let parse_volume = match args.rootfs.is_some() || rootfs_image.is_some() {
        true => docker_args::mesos_volume,
        false => docker_args::volume,
    };
    let volumes = args
        .docker
        .volume
        .iter()
        .map(|v| parse_volume(v))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let rootfs = match &args.rootfs {
        Some(dir) => Some(
            std::path::absolute(dir)
                .ok()
                .filter(|p| p.is_dir())
                .ok_or_else(|| {
                    usage(format!(
                        "invalid --rootfs '{}': not a directory",
                        dir.display()
                    ))
                })?,
        ),
        None => None,
    };
    let fetch = args
        .fetch
        .iter()
        .map(|spec| {
            let mut uri = phobos_fetch::parse_spec(spec).map_err(|e| usage(e.to_string()))?;
            // A relative path is the caller's, as for --rootfs.
            if phobos_fetch::scheme(&uri.value).ok() == Some(phobos_fetch::Scheme::Local)
                && !uri.value.contains("://")
                && !uri.value.starts_with('/')
            {
                let abs = std::path::absolute(&uri.value)
                    .map_err(|e| usage(format!("--fetch {spec:?}: {e}")))?;
                uri.value = abs.display().to_string();
            }
            Ok(uri)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(LaunchIntent {
        id,
        command,
        env: parse_env(&args.env)?,
        working_dir: args.workdir.clone(),
        user: args.user.clone(),
        hostname: args.hostname.clone(),
        resources,
        interactive: args.interactive,
        launcher,
        container_logger,
        isolation: args
            .isolation
            .as_ref()
            .map(|list| list.split(',').map(str::to_owned).collect()),
        flags: resource_args::flags(&args.flags)?,
        networks,
        publish,
        docker,
        // Only an image gives the form of the command a meaning.
        command_line: rootfs_image.is_some(),
        rootfs_image,
        rootfs,
        volumes,
        fetch,
        security: phobos_runtime::SecurityIntent {
            cap_add: args.security.cap_add.clone(),
            cap_drop: args.security.cap_drop.clone(),
            no_new_privileges: args.security.no_new_privileges,
            ulimits: args.security.ulimit.clone(),
            security_opts: args.security.security_opt.clone(),
            devices: args.security.device.clone(),
            shm_size: args.security.shm_size,
            ..Default::default()
        },
        parent,
        nesting: phobos_core::Nesting {
            share_pid: args.share_pid,
            share_ipc: args.share_ipc,
            share_cgroups: args.share_cgroups,
            debug: args.debug,
            session: false,
        },
        ..LaunchIntent::default()
    })
}

/// The Docker part of `phobos run`, when an image is given; Docker-only
/// options without one, and Mesos-only ones with one, are usage errors
/// naming the option.
fn docker(args: &DockerArgs, run: &RunArgs) -> anyhow::Result<Option<DockerLaunch>> {
    let Some(image) = docker_args::image(args)? else {
        let own_root = run.rootfs.is_some() || docker_args::mesos_image(args).is_some();
        if let Some(flag) = docker_args::any_docker_only(args, own_root) {
            let or_rootfs = if flag == "--volume" {
                " or a root filesystem (--image REF or --rootfs DIR)"
            } else {
                ""
            };
            return Err(usage(format!(
                "{flag} needs a Docker image (--docker-image IMAGE){or_rootfs}"
            )));
        }
        return Ok(None);
    };
    let not_docker = [
        (run.isolation.is_some(), "--isolation"),
        (run.launcher.is_some(), "--launcher"),
        (run.interactive, "--interactive"),
        (run.tty, "--tty"),
        (run.disk.is_some(), "--disk"),
        (run.rootfs.is_some(), "--rootfs"),
        (run.flags.cgroups_limit_swap, "--cgroups-limit-swap"),
        (
            run.flags.enforce_container_disk_quota,
            "--enforce-container-disk-quota",
        ),
    ];
    if let Some((_, flag)) = not_docker.iter().find(|(given, _)| *given) {
        return Err(usage(format!("{flag} does not apply to Docker containers")));
    }
    Ok(Some(DockerLaunch {
        image,
        network: match args.network.as_slice() {
            [] => docker_args::network(None)?,
            [one] => docker_args::network(Some(one))?,
            _ => return Err(usage("a Docker container joins one --network")),
        },
        port_mappings: args
            .publish
            .iter()
            .map(|p| docker_args::port(p))
            .collect::<anyhow::Result<Vec<_>>>()?,
        offered_ports: docker_args::all_ports(),
        parameters: args
            .docker_param
            .iter()
            .map(|p| docker_args::parameter(p))
            .collect::<anyhow::Result<Vec<_>>>()?,
        privileged: args.privileged,
        force_pull: args.force_pull,
        ..DockerLaunch {
            network: DockerNetwork::Host,
            ..DockerLaunch::default()
        }
    }))
}

/// `--env KEY=VALUE` pairs, in order; a bare `KEY` passes this process's
/// value through (left out when unset), as Docker's `-e KEY` does.
pub(super) fn parse_env(pairs: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut env = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let lookup = |key: &str| std::env::var_os(key).map(|v| v.to_string_lossy().into_owned());
        if let Some(kv) = phobos_core::input::parse_env_arg(pair, lookup)? {
            env.push(kv);
        }
    }
    Ok(env)
}
