//! `phobos run`: launch a container, then (unless `-d`) show its output
//! live, forward signals to it, and exit with its exit code.

use std::os::fd::{AsFd, OwnedFd};

use anyhow::Context;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use phobos_config::Source;
use phobos_core::{CommandSpec, ContainerConfig, ContainerId, LauncherKind, Resources};
use phobos_mesos::isolator;

use crate::cli::{Global, RunArgs};
use crate::context;
use crate::docker_args;
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

pub fn run(global: &Global, args: RunArgs) -> anyhow::Result<u8> {
    if let Some(image) = docker_args::image(&args.docker)? {
        return super::run_docker::run(global, args, image);
    }
    if let Some(flag) = docker_args::any_docker_only(&args.docker) {
        return Err(usage(format!(
            "{flag} needs a Docker image (--docker-image IMAGE)"
        )));
    }
    let containerizer = context::containerizer(global)?;
    let config = build_config(global, &args, &containerizer)?;

    // Block forwarded signals before the launch so none is lost; init
    // inherits the mask and resets it for the command.
    let mut forwarded = SigSet::empty();
    if !args.detach {
        for sig in FORWARDED {
            forwarded.add(sig);
        }
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&forwarded), None)?;
    }
    let offsets = Follow::offsets(&config.sandbox);
    let stdin: Option<OwnedFd> = if args.interactive {
        Some(std::io::stdin().as_fd().try_clone_to_owned()?)
    } else {
        None
    };
    let launched = containerizer.launch(&config, stdin)?;
    if args.detach {
        println!("{}", config.id);
        return Ok(0);
    }
    let pidfd = match launched.pidfd {
        Some(fd) => fd,
        None => phobos_mesos::sys::pidfd_open(launched.pid)
            .context("failed to watch the container's init")?,
    };
    let mut follow = Follow::from_offsets(&config.sandbox, offsets)?;
    follow.run(Some(&pidfd), Some(Forward::new(forwarded, &pidfd)?))?;
    // Reap our child (init) before reading its verdict.
    // SAFETY: waitpid on our own child with a null status pointer.
    unsafe { libc::waitpid(launched.pid, std::ptr::null_mut(), 0) };
    let termination = containerizer.finalize(&launched.dir)?;
    Ok(termination.shell_exit_code().clamp(0, 255) as u8)
}

/// `--id`, validated as a Mesos ContainerID, or a random UUID.
pub(super) fn requested_id(id: Option<&str>) -> anyhow::Result<ContainerId> {
    match id {
        Some(id) => ContainerId::new(id).map_err(|e| usage(e.to_string())),
        None => Ok(ContainerId::random()),
    }
}

/// IDs are unique across both containerizers.
pub(super) fn ensure_new(global: &Global, id: &ContainerId) -> anyhow::Result<()> {
    let runtime = context::runtime_dir(global);
    if runtime.join("containers").join(id.as_str()).exists() || context::docker(global).owns(id) {
        return Err(usage(format!("container '{id}' already exists")));
    }
    Ok(())
}

/// Where a new container's sandbox goes.
pub(super) fn sandbox_of(global: &Global, id: &ContainerId) -> std::path::PathBuf {
    context::work_dir(global)
        .join("containers")
        .join(id.as_str())
}

/// `--env KEY=VALUE` pairs, in order.
pub(super) fn parse_env(pairs: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut env = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let (k, v) = pair
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| usage(format!("invalid --env '{pair}': expected KEY=VALUE")))?;
        env.push((k.to_owned(), v.to_owned()));
    }
    Ok(env)
}

fn build_config(
    global: &Global,
    args: &RunArgs,
    containerizer: &phobos_mesos::MesosContainerizer,
) -> anyhow::Result<ContainerConfig> {
    let id = requested_id(args.id.as_deref())?;
    let command =
        CommandSpec::argv(args.command.clone()).ok_or_else(|| usage("no command given"))?;
    let root = context::euid() == 0;
    let settings = context::settings(global);
    let configured = |key| !matches!(settings.source(key), Some(Source::Default) | None);
    // The flag, else the configuration file's launcher, else by privilege.
    // Only the flag is strict: a system-wide file saying "linux" must not
    // stop unprivileged users, who get the posix launcher as by default.
    let launcher_choice = args.launcher.as_deref().or(match settings.config.launcher {
        _ if !configured("launcher") => None,
        phobos_config::Launcher::Linux if root => Some("linux"),
        phobos_config::Launcher::Linux => None,
        phobos_config::Launcher::Posix => Some("posix"),
    });
    let launcher = match launcher_choice {
        Some("linux") if !root => {
            return Err(usage(format!(
                "the linux launcher needs root (running as uid {}); use --launcher posix",
                context::euid()
            )));
        }
        Some("linux") => LauncherKind::Linux,
        Some(_) => LauncherKind::Posix,
        None if root => LauncherKind::Linux,
        None => {
            eprintln!(
                "phobos: warning: not running as root; using the posix launcher (no namespaces, no cgroups)"
            );
            LauncherKind::Posix
        }
    };
    let mut resources = resource_args::apply(&args.resources, Resources::default())?;
    if let Some(disk) = &args.disk {
        resources.disk = Some(resource_args::disk(disk)?);
    }
    let isolator_flags = resource_args::flags(&args.flags, &settings.config)?;
    let isolation = match &args.isolation {
        Some(list) => {
            let names: Vec<String> = list.split(',').map(str::to_owned).collect();
            isolator::resolve_isolation(&names, launcher)?
        }
        None if configured("isolation") => {
            let names = &settings.config.isolation;
            isolator::resolve_isolation(names, launcher)
                .map_err(|e| settings.invalid("isolation", &names.join(","), e))?
        }
        None => {
            // --disk is measured by disk/du; add it to the defaults.
            let mut names = isolator::default_isolation_with(launcher, containerizer.hierarchies());
            if resources.disk.is_some() {
                names.push("disk/du".to_owned());
            }
            isolator::resolve_isolation(&names, launcher)?
        }
    };
    if !resources.is_empty()
        && !isolation
            .iter()
            .any(|n| n.starts_with("cgroups/") || n.starts_with("posix/") || n == "disk/du")
    {
        eprintln!(
            "phobos: warning: no resource isolator in --isolation; the requested resources are recorded but not enforced"
        );
    }
    if args.hostname.is_some() && launcher != LauncherKind::Linux {
        return Err(usage("--hostname needs the linux launcher"));
    }
    let env = parse_env(&args.env)?;
    ensure_new(global, &id)?;
    let sandbox = sandbox_of(global, &id);
    Ok(ContainerConfig {
        id,
        command,
        env,
        working_dir: args.workdir.clone(),
        user: args.user.clone(),
        hostname: args.hostname.clone(),
        isolation,
        launcher,
        sandbox,
        cgroups_root: global.cgroups_root.clone(),
        interactive: args.interactive,
        created_at: phobos_core::time::now_secs(),
        resources,
        isolator_flags,
        rootfs: None,
        volumes: vec![],
        sandbox_directory: None,
    })
}
