//! `phobos run --docker-image IMAGE [-- COMMAND…]`: the same run, in a
//! Docker container launched by the Docker containerizer.
//!
//! In the foreground the engine's log stream is copied into
//! `<sandbox>/stdout|stderr` and onto this terminal, forwarded signals are
//! sent to the container through the engine, and the exit code is the
//! container's. With `-d` the ID is printed once the container runs and a
//! detached `phobos logs --follow` fills the sandbox files while it runs;
//! should it die, `phobos logs` copies the engine's log into the files on
//! demand, and whoever records the container's end (`wait`, `destroy`,
//! `recover`) copies it a last time before removing the container.

use anyhow::Context;
use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
use phobos_core::{CommandSpec, ContainerConfig, LauncherKind, Resources};
use phobos_docker::{DockerCommand, DockerLaunch};

use super::run::{FORWARDED, parse_env};
use crate::cli::{Global, RunArgs};
use crate::context;
use crate::docker_args::{self, PullDisplay};
use crate::error::usage;
use crate::resource_args;

pub fn run(global: &Global, args: RunArgs, image: String) -> anyhow::Result<u8> {
    let (config, launch) = build(global, &args, image)?;
    let docker = context::docker(global);
    let id = config.id.clone();

    let mut forwarded = SigSet::empty();
    if !args.detach {
        for sig in FORWARDED {
            forwarded.add(sig);
        }
        // Blocked before any thread exists, so every thread inherits it and
        // only the forwarding thread below receives them.
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&forwarded), None)?;
    }
    let mut display = PullDisplay::new(&launch.image);
    let launched = context::block_on(docker.launch(&config, &launch, |p| display.update(p)))?;
    display.finish();
    launched.with_context(|| format!("failed to launch container {id}"))?;
    if args.detach {
        context::spawn_docker_log_follower(global, &id);
        println!("{id}");
        return Ok(0);
    }
    {
        let docker = docker.clone();
        let id = id.clone();
        std::thread::spawn(move || {
            while let Ok(sig) = forwarded.wait() {
                match context::block_on(docker.kill(&id, sig as i32)) {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => eprintln!("phobos: failed to forward {sig}: {e}"),
                    Err(e) => eprintln!("phobos: failed to forward {sig}: {e}"),
                }
            }
        });
    }
    let termination = context::block_on(async {
        docker.follow(&id, true, true).await?;
        docker.wait(&id).await
    })??
    .ok_or_else(|| super::unknown(&id))?;
    Ok(termination.shell_exit_code().clamp(0, 255) as u8)
}

/// The container's config and its Docker part; every option is checked
/// before anything is created.
fn build(
    global: &Global,
    args: &RunArgs,
    image: String,
) -> anyhow::Result<(ContainerConfig, DockerLaunch)> {
    let not_docker = [
        (args.isolation.is_some(), "--isolation"),
        (args.launcher.is_some(), "--launcher"),
        (args.interactive, "--interactive"),
        (args.disk.is_some(), "--disk"),
        (args.flags.cgroups_limit_swap, "--cgroups-limit-swap"),
        (
            args.flags.enforce_container_disk_quota,
            "--enforce-container-disk-quota",
        ),
    ];
    if let Some((_, flag)) = not_docker.iter().find(|(given, _)| *given) {
        return Err(usage(format!("{flag} does not apply to Docker containers")));
    }
    let id = super::run::requested_id(args.id.as_deref())?;
    super::run::ensure_new(global, &id)?;
    let resources = resource_args::apply(&args.resources, Resources::default())?;
    let isolator_flags = resource_args::flags(&args.flags, &context::settings(global).config)?;
    let env = parse_env(&args.env)?;
    let mut parameters = Vec::new();
    if let Some(user) = &args.user {
        parameters.push(("user".to_owned(), user.clone()));
    }
    if let Some(pids) = resources.pids_limit {
        parameters.push(("pids-limit".to_owned(), pids.to_string()));
    }
    for p in &args.docker.docker_param {
        parameters.push(docker_args::parameter(p)?);
    }
    let port_mappings = args
        .docker
        .publish
        .iter()
        .map(|p| docker_args::port(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let volumes = args
        .docker
        .volume
        .iter()
        .map(|v| docker_args::volume(v))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (command, docker_command) = match CommandSpec::argv(args.command.clone()) {
        Some(command) => (command, None),
        // No command: the image's ENTRYPOINT and CMD run.
        None => (
            CommandSpec {
                shell: false,
                value: String::new(),
                arguments: Vec::new(),
            },
            Some(DockerCommand::image_default()),
        ),
    };
    let sandbox = super::run::sandbox_of(global, &id);
    let config = ContainerConfig {
        id,
        command,
        env,
        working_dir: args.workdir.clone(),
        user: args.user.clone(),
        hostname: args.hostname.clone(),
        isolation: Vec::new(),
        launcher: LauncherKind::Linux,
        sandbox,
        cgroups_root: global.cgroups_root.clone(),
        interactive: false,
        created_at: phobos_core::time::now_secs(),
        resources,
        isolator_flags,
        rootfs: None,
        volumes: vec![],
        sandbox_directory: None,
    };
    let launch = DockerLaunch {
        image,
        command: docker_command,
        network: docker_args::network(args.docker.network.as_deref())?,
        port_mappings,
        offered_ports: docker_args::all_ports(),
        volumes,
        parameters,
        privileged: args.docker.privileged,
        force_pull: args.docker.force_pull,
        append_logs: false,
        stop_grace: None,
    };
    // The engine-free checks (ports on the host network, hostname, bad
    // parameters …) fail here, before the engine is contacted.
    phobos_docker::create_request(&context::docker(global).spec(&config, &launch), 0)
        .map_err(|e| usage(e.to_string()))?;
    Ok((config, launch))
}
