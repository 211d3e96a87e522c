//! Resolves the global options and the configuration file into the
//! effective settings, builds the containerizer and sets up logging.
//!
//! Layers, later wins: built-in defaults, the config file (see
//! `phobos_config::search`), then the command-line flags (`--runtime-dir`,
//! `--work-dir`, `--cgroups-root`, `--log-level` or their `PHOBOS_*`
//! environment variables), which are recorded with the provenance
//! "command line". After [`resolve`], `Global` carries the effective values,
//! so every subcommand reads them the same way.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use phobos_config::{Environment, LoadedConfig};
use phobos_core::Composing;
use phobos_docker::{DockerContainerizer, DockerSettings};
use phobos_mesos::{MesosContainerizer, StopPoint};

use crate::cli::Global;

pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// Loads the configuration and applies the global flags over it. A bad file
/// or flag value is a `ConfigError`, which exits 2 naming file, line and key.
pub fn resolve(global: &mut Global) -> anyhow::Result<()> {
    let env = Environment::from_process();
    let mut loaded = phobos_config::load(global.config.as_deref(), &env)?;
    // Directories must be absolute here as in the file (the same rule, the
    // same message): a relative one would name another place from every
    // other working directory, such as the one `phobos wait` runs in.
    if let Some(dir) = &global.runtime_dir {
        loaded.apply_override("runtime_dir", &dir.display().to_string())?;
    }
    if let Some(dir) = &global.work_dir {
        loaded.apply_override("work_dir", &dir.display().to_string())?;
    }
    if let Some(root) = &global.cgroups_root_flag {
        loaded.apply_override("cgroups_root", root)?;
    }
    if let Some(level) = &global.log_level {
        loaded.apply_override("log.level", level)?;
    }
    global.runtime_dir = Some(loaded.config.runtime_dir.clone());
    global.work_dir = Some(loaded.config.work_dir.clone());
    global.cgroups_root = loaded.config.cgroups_root.clone();
    global.settings = Some(Arc::new(loaded));
    Ok(())
}

/// The effective configuration (the defaults when [`resolve`] was not run).
pub fn settings(global: &Global) -> Arc<LoadedConfig> {
    match &global.settings {
        Some(settings) => Arc::clone(settings),
        None => Arc::new(LoadedConfig::defaults(&Environment::from_process())),
    }
}

/// The runtime directory (`runtime_dir`).
pub fn runtime_dir(global: &Global) -> PathBuf {
    match &global.runtime_dir {
        Some(dir) => dir.clone(),
        None => settings(global).config.runtime_dir.clone(),
    }
}

/// The sandbox root (`work_dir`).
pub fn work_dir(global: &Global) -> PathBuf {
    match &global.work_dir {
        Some(dir) => dir.clone(),
        None => settings(global).config.work_dir.clone(),
    }
}

/// The Docker containerizer over the same runtime directory, with the
/// `docker_*` settings.
pub fn docker(global: &Global) -> DockerContainerizer {
    let settings = settings(global);
    let config = &settings.config;
    DockerContainerizer::new(
        &runtime_dir(global),
        DockerSettings {
            socket: config.docker_socket.clone(),
            stop_timeout: config.docker_stop_timeout,
            kill_orphans: config.docker_kill_orphans,
            sandbox_directory: config.sandbox_directory.display().to_string(),
            cgroups_enable_cfs: config.cgroups_enable_cfs,
            remove_delay: config.docker_remove_delay,
        },
    )
}

/// Runs one Docker containerizer call to completion on a single-threaded
/// runtime (the CLI is synchronous; every call is one process's work).
pub fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    phobos_docker::block_on(future)
        .context("failed to start the async runtime for the Docker engine client")
}

/// Starts a detached `phobos logs --follow --into-sandbox ID` (its own
/// process group, stdio on /dev/null) that copies a detached Docker
/// container's output into its sandbox files while it runs, and exits when
/// the output ends. For a replaying record losing it loses nothing (`logs`,
/// `wait` and `destroy` copy the engine's whole log again). For an
/// appending one (ECP) the follower inherits an exclusive lock on the
/// record's `follower.lock`, taken here before it starts, so the end of the
/// container waits for it to drain the log before removing the container.
pub fn spawn_docker_log_follower(global: &Global, id: &phobos_core::ContainerId) {
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;

    let Ok(mut command) = phobos_command(global) else {
        tracing::warn!("cannot find the phobos binary to follow the container's logs");
        return;
    };
    command
        .args([
            "--log-level",
            "off",
            "logs",
            "--follow",
            "--into-sandbox",
            id.as_str(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let lock = follower_lock(global, id);
    if let Err(e) = command.spawn() {
        tracing::warn!(error = %e, "failed to start the log follower");
    }
    // Our copy closes here; the follower's inherited one keeps the lock.
    drop(lock);
}

/// `phobos` with this process's configuration and directories, for helper
/// processes that must find the same containers.
pub fn phobos_command(global: &Global) -> std::io::Result<std::process::Command> {
    let mut command = std::process::Command::new(std::env::current_exe()?);
    if let Some(config) = &global.config {
        command.arg("--config").arg(config);
    }
    command
        .arg("--runtime-dir")
        .arg(runtime_dir(global))
        .arg("--work-dir")
        .arg(work_dir(global));
    Ok(command)
}

/// The record's follower lock, locked and inheritable (no FD_CLOEXEC), or
/// `None` (with a warning) when it cannot be set up.
fn follower_lock(global: &Global, id: &phobos_core::ContainerId) -> Option<std::fs::File> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};

    let dir = docker(global).store().open(id)?;
    let path = dir.file(phobos_docker::containerizer::FOLLOWER_LOCK_FILE);
    let setup = || -> std::io::Result<std::fs::File> {
        let file = std::fs::File::create(&path)?;
        file.lock()?;
        fcntl(&file, FcntlArg::F_SETFD(FdFlag::empty())).map_err(std::io::Error::from)?;
        Ok(file)
    };
    match setup() {
        Ok(file) => Some(file),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "no follower lock");
            None
        }
    }
}

pub fn containerizer(global: &Global) -> anyhow::Result<MesosContainerizer> {
    let exe = std::env::current_exe()
        .map_err(|e| anyhow::anyhow!("cannot find the phobos binary to run as init: {e}"))?;
    // PHOBOS_STOP_AT freezes a launch at a given point so the crash-safety
    // tests can SIGKILL the launcher there; it is a testing aid only.
    let stop_at = std::env::var("PHOBOS_STOP_AT").ok().map(StopPoint);
    Ok(
        MesosContainerizer::new(&runtime_dir(global), &work_dir(global), &exe)
            .with_stop_point(stop_at),
    )
}

/// The composing containerizer (Mesos §5): the Docker containerizer for
/// the containers it holds a record of, the Mesos containerizer for the
/// rest (and for unknown IDs).
pub fn composing(global: &Global) -> anyhow::Result<Composing> {
    Ok(Composing::new(
        vec![Box::new(docker(global))],
        Box::new(containerizer(global)?),
    ))
}

/// Runs recovery; as root, the linux launcher's cgroup roots are scanned for
/// orphans too (only root can see and kill them).
pub fn recover(global: &Global) -> anyhow::Result<phobos_mesos::RecoverReport> {
    let launcher = if euid() == 0 {
        phobos_mesos::launcher::LinuxLauncher::new(&global.cgroups_root).ok()
    } else {
        None
    };
    Ok(containerizer(global)?.recover(launcher.as_ref())?)
}
