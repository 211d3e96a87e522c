//! Builds this process's settings once from the global options and the
//! configuration file (see `phobos_runtime::Settings`: flag > file >
//! default), and the door every subcommand goes through.
//!
//! The flags are `--runtime-dir`, `--work-dir`, `--cgroups-root`,
//! `--log-level` or their `PHOBOS_*` environment variables, recorded with
//! the provenance "command line". After [`resolve`], `Global` carries the
//! settings, so every subcommand reads them the same way.

use std::sync::Arc;

use phobos_config::Environment;
use phobos_runtime::{Door, Flags, Settings};

use crate::cli::Global;

/// Loads the configuration and applies the global flags over it. A bad file
/// or flag value is a `ConfigError`, which exits 2 naming file, line and key.
pub fn resolve(global: &mut Global) -> anyhow::Result<()> {
    // Directories must be absolute here as in the file (the same rule, the
    // same message): a relative one would name another place from every
    // other working directory, such as the one `phobos wait` runs in.
    let flags = Flags {
        config: global.config.clone(),
        runtime_dir: global.runtime_dir.clone(),
        work_dir: global.work_dir.clone(),
        cgroups_root: global.cgroups_root_flag.clone(),
        log_level: global.log_level.clone(),
    };
    let mut settings = Settings::load(&flags, &Environment::from_process())?;
    // The init helper is this binary. PHOBOS_STOP_AT freezes a launch at a
    // given point so the crash-safety tests can SIGKILL the launcher there;
    // it is a testing aid only.
    if let Ok(exe) = std::env::current_exe() {
        settings = settings.with_init(exe, std::env::var("PHOBOS_STOP_AT").ok());
    }
    global.runtime_dir = Some(settings.runtime_dir().to_owned());
    global.work_dir = Some(settings.work_dir().to_owned());
    global.settings = Some(Arc::new(settings));
    Ok(())
}

/// The effective settings (the defaults when [`resolve`] was not run).
pub fn settings(global: &Global) -> Arc<Settings> {
    match &global.settings {
        Some(settings) => Arc::clone(settings),
        None => Arc::new(Settings::defaults()),
    }
}

/// The composing containerizer: the one door to every container.
pub fn door(global: &Global) -> anyhow::Result<Door> {
    Ok(Door::new(settings(global))?)
}

/// Starts a detached `phobos logs --follow --into-sandbox ID` (its own
/// process group, stdio on /dev/null) that copies a detached engine
/// container's output into its sandbox files while it runs, and exits when
/// the output ends. For a replaying record losing it loses nothing (`logs`,
/// `wait` and `destroy` copy the engine's whole log again). For an
/// appending one (ECP) the follower inherits an exclusive lock on the
/// record's `follower.lock`, taken here before it starts, so the end of the
/// container waits for it to drain the log before removing the container.
pub fn spawn_log_follower(global: &Global, door: &Door, id: &phobos_core::ContainerId) {
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
    let lock = door.follower_lock(id);
    if let Err(e) = command.spawn() {
        tracing::warn!(error = %e, "failed to start the log follower");
    }
    // Our copy closes here; the follower's inherited one keeps the lock.
    drop(lock);
}

/// `phobos` with this process's configuration and directories, for helper
/// processes that must find the same containers.
pub fn phobos_command(global: &Global) -> std::io::Result<std::process::Command> {
    let settings = settings(global);
    let mut command = std::process::Command::new(std::env::current_exe()?);
    // Helpers act on the directories themselves, never through an agent.
    command.env_remove(crate::cli::AGENT_ENV);
    if let Some(config) = &global.config {
        command.arg("--config").arg(config);
    }
    command
        .arg("--runtime-dir")
        .arg(settings.runtime_dir())
        .arg("--work-dir")
        .arg(settings.work_dir());
    Ok(command)
}
