//! What the Mesos containerizer checks in a launch request before it
//! creates anything, so bad input from any face (CLI or ECP) is refused
//! the same way (exit 2, nothing on disk) instead of failing inside the
//! container and leaving a FAILED record: the hostname (the kernel's
//! sethostname(2) limit and RFC 1123), the environment, the working
//! directory (on the host's root filesystem), and a pids limit that leaves room for the container's init.

use std::path::{Path, PathBuf};

use phobos_core::ContainerConfig;
use phobos_core::input::{InvalidEnv, InvalidHostname, validate_env, validate_hostname};

/// The fewest processes a Mesos container runs: its init (pid 1 in the
/// container) and the command, which init starts with clone(2).
pub const MIN_PIDS_LIMIT: u64 = 2;

/// A launch request refused before anything was created.
#[derive(Debug, thiserror::Error)]
pub enum InvalidLaunch {
    #[error(transparent)]
    Hostname(#[from] InvalidHostname),
    #[error(transparent)]
    Env(#[from] InvalidEnv),
    #[error("invalid working directory '{}': {reason}", path.display())]
    WorkingDir { path: PathBuf, reason: String },
    #[error(
        "invalid --pids-limit {0}: a Mesos container needs at least {MIN_PIDS_LIMIT} processes (its init and the command)"
    )]
    PidsLimit(u64),
}

/// Checks `config` (its `isolation` already resolved).
pub fn check(config: &ContainerConfig) -> Result<(), InvalidLaunch> {
    if let Some(name) = &config.hostname {
        validate_hostname(name)?;
    }
    for (key, value) in &config.env {
        validate_env(key, value)?;
    }
    // With an image's root filesystem the directory is the image's to
    // have: the container finds out.
    if let Some(dir) = &config.working_dir
        && config.rootfs.is_none()
        && config.image.is_none()
    {
        check_working_dir(dir)?;
    }
    if let Some(limit) = config.resources.pids_limit {
        check_pids_limit(limit, &config.isolation)?;
    }
    Ok(())
}

/// A pids limit below [`MIN_PIDS_LIMIT`] would stop init from starting the
/// command at all (clone(2) fails with EAGAIN); it matters only where an
/// isolator of `isolation` enforces it.
pub fn check_pids_limit(limit: u64, isolation: &[String]) -> Result<(), InvalidLaunch> {
    let enforced = isolation
        .iter()
        .any(|n| n == "cgroups/pids" || n == "cgroups/all");
    if enforced && limit < MIN_PIDS_LIMIT {
        return Err(InvalidLaunch::PidsLimit(limit));
    }
    Ok(())
}

/// An absolute working directory must be a directory on the host: Mesos
/// containers run on the host's root filesystem (no images yet), so
/// what is missing here is missing in the container. A relative one is
/// taken from the sandbox, which does not exist yet.
fn check_working_dir(dir: &Path) -> Result<(), InvalidLaunch> {
    if !dir.is_absolute() {
        return Ok(());
    }
    let fail = |reason: String| InvalidLaunch::WorkingDir {
        path: dir.to_owned(),
        reason,
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(fail("not a directory".to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(fail("no such directory".to_owned()))
        }
        Err(e) => Err(fail(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ContainerConfig {
        serde_json::from_value(serde_json::json!({
            "id": "c",
            "command": {"shell": false, "value": "true", "arguments": ["true"]},
            "isolation": [],
            "launcher": "posix",
            "sandbox": "/tmp/sandbox",
            "cgroups_root": "phobos",
            "created_at": 0.0
        }))
        .unwrap()
    }

    #[test]
    fn good_requests_pass() {
        let mut c = config();
        c.hostname = Some("web-1".into());
        c.env = vec![("A".into(), "b=c".into())];
        c.working_dir = Some("/".into());
        c.resources.pids_limit = Some(2);
        c.isolation = vec!["cgroups/pids".into()];
        check(&c).unwrap();
        c.working_dir = Some("relative/in/the/sandbox".into());
        check(&c).unwrap();
    }

    #[test]
    fn bad_requests_name_the_value() {
        let mut c = config();
        c.hostname = Some("a b".into());
        assert!(matches!(check(&c), Err(InvalidLaunch::Hostname(_))));
        let mut c = config();
        c.env = vec![("A\nB".into(), "1".into())];
        assert!(matches!(check(&c), Err(InvalidLaunch::Env(_))));
        let mut c = config();
        c.working_dir = Some("/nonexistent-phobos".into());
        assert_eq!(
            check(&c).unwrap_err().to_string(),
            "invalid working directory '/nonexistent-phobos': no such directory"
        );
        c.working_dir = Some("/etc/passwd".into());
        assert!(
            check(&c)
                .unwrap_err()
                .to_string()
                .ends_with("not a directory")
        );
        // Inside an image's root filesystem: the container's to find out.
        c.rootfs = Some("/some/rootfs".into());
        c.working_dir = Some("/nonexistent-phobos".into());
        check(&c).unwrap();
        let mut c = config();
        c.resources.pids_limit = Some(1);
        assert!(check(&c).is_ok(), "not enforced: nothing to refuse");
        for isolator in ["cgroups/pids", "cgroups/all"] {
            c.isolation = vec![isolator.into()];
            assert!(
                check(&c)
                    .unwrap_err()
                    .to_string()
                    .starts_with("invalid --pids-limit 1: a Mesos container needs at least 2")
            );
        }
    }
}
