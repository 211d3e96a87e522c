//! Resolves global options into the containerizer and sets up logging.

use std::path::PathBuf;

use phobos_mesos::{MesosContainerizer, StopPoint};

use crate::cli::Global;

pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// Default directories: Mesos's as root; per-user ones otherwise.
pub fn runtime_dir(global: &Global) -> PathBuf {
    if let Some(dir) = &global.runtime_dir {
        return dir.clone();
    }
    if euid() == 0 {
        return PathBuf::from("/run/phobos");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) => PathBuf::from(dir).join("phobos"),
        None => PathBuf::from(format!("/tmp/phobos-{}/run", euid())),
    }
}

pub fn work_dir(global: &Global) -> PathBuf {
    if let Some(dir) = &global.work_dir {
        return dir.clone();
    }
    if euid() == 0 {
        return PathBuf::from("/var/lib/phobos");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/share/phobos"),
        None => PathBuf::from(format!("/tmp/phobos-{}/work", euid())),
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

pub fn init_logging(global: &Global) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&global.log_level))
        .unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
