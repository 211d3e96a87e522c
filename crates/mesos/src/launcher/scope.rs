//! The systemd cgroup driver (`cgroups_driver = "systemd"`): a top-level
//! container's cgroup is the transient scope `phobos-<id>.scope` that
//! systemd makes in the slice `cgroups_root` names, with `Delegate=yes`
//! (see `phobos_systemd`). Everything inside it, the limits, nested
//! containers' cgroups, `cgroup.kill`, is still Phobos's, written through
//! the cgroup filesystem, as runc's and crun's systemd drivers do.
//!
//! A scope must be started with a process in it. Init should still be
//! born in its cgroup (`clone3(CLONE_INTO_CGROUP)`, no migration), so the
//! scope is started around a *placeholder*: a child of the launcher that
//! only waits (and dies with the launcher, `PR_SET_PDEATHSIG`). Once init
//! has been cloned into the scope's cgroup the placeholder is killed and
//! reaped, before init is released, so it never counts against the
//! container's `pids.max` when the command runs. Should the launcher die
//! in between, the placeholder dies with it, the scope empties and
//! systemd stops and forgets it (`CollectMode=inactive-or-failed`).
//! (runc instead starts the scope with init's pid and lets systemd move
//! it; crun starts it with its own pid. Neither keeps CLONE_INTO_CGROUP
//! and the launcher's own cgroup unchanged.)

use std::path::PathBuf;
use std::time::Duration;

use phobos_core::ContainerId;
use phobos_systemd::{ScopeError, Systemd};

use super::LaunchError;

/// How long a call to systemd (and the job it starts) may take; generous
/// for a loaded host or an emulated one.
pub const SYSTEMD_TIMEOUT: Duration = Duration::from_secs(60);

/// The cgroup directory of the slice `cgroups_root` names, relative to the
/// cgroup2 mount: `phobos` and `phobos.slice` give `phobos.slice`;
/// `a-b.slice` gives `a.slice/a-b.slice` (systemd's slice hierarchy).
pub fn slice_path(cgroups_root: &str) -> Result<PathBuf, String> {
    let slice = if cgroups_root.ends_with(".slice") {
        cgroups_root.to_owned()
    } else {
        format!("{cgroups_root}.slice")
    };
    let stem = &slice[..slice.len() - ".slice".len()];
    let valid = !stem.is_empty()
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':'))
        && stem.split('-').all(|part| !part.is_empty());
    if !valid {
        return Err(format!(
            "with cgroups_driver = \"systemd\" the cgroups root names a systemd slice such as \"phobos.slice\" (letters, digits, '_', ':', '-' between parts), not \"{cgroups_root}\""
        ));
    }
    let mut path = PathBuf::new();
    let parts: Vec<&str> = stem.split('-').collect();
    for i in 0..parts.len() {
        path.push(format!("{}.slice", parts[..=i].join("-")));
    }
    Ok(path)
}

/// The cgroup directory name of a top-level container's scope.
pub fn scope_dir(id: &ContainerId) -> String {
    // IDs too long for a unit name are refused at launch (`start`); the
    // name here is used for lookups, where such a scope cannot exist.
    phobos_systemd::scope_name(id.as_str()).unwrap_or_else(|_| {
        format!(
            "{}{}{}",
            phobos_systemd::scope::SCOPE_PREFIX,
            id.as_str(),
            phobos_systemd::scope::SCOPE_SUFFIX
        )
    })
}

/// A started scope's placeholder: killed and reaped when dropped.
#[derive(Debug)]
pub struct ScopeHold {
    placeholder: libc::pid_t,
}

impl Drop for ScopeHold {
    fn drop(&mut self) {
        // SAFETY: kill(2) and waitpid(2) on our own child, which nothing
        // else reaps (it is not the init the containerizer waits for).
        unsafe {
            libc::kill(self.placeholder, libc::SIGKILL);
            libc::waitpid(self.placeholder, std::ptr::null_mut(), 0);
        }
    }
}

/// Starts container `id`'s scope in `slice` (a unit name) around a
/// placeholder; the scope's cgroup exists when this returns.
pub fn start(id: &ContainerId, slice: &str) -> Result<ScopeHold, LaunchError> {
    let unit = phobos_systemd::scope_name(id.as_str()).map_err(systemd_err)?;
    let hold = ScopeHold {
        placeholder: spawn_placeholder()?,
    };
    let mut systemd = Systemd::connect(SYSTEMD_TIMEOUT).map_err(|source| {
        systemd_err(ScopeError::Bus {
            unit: unit.clone(),
            source,
        })
    })?;
    systemd
        .start_scope(
            &unit,
            slice,
            &format!("Phobos container {id}"),
            &[hold.placeholder as u32],
        )
        .map_err(systemd_err)?;
    Ok(hold)
}

/// Stops container `id`'s scope if systemd still has it.
pub fn stop(id: &ContainerId) -> Result<(), LaunchError> {
    // An ID too long for a unit name never had a scope.
    let Ok(unit) = phobos_systemd::scope_name(id.as_str()) else {
        return Ok(());
    };
    let mut systemd = Systemd::connect(SYSTEMD_TIMEOUT).map_err(|source| {
        systemd_err(ScopeError::Bus {
            unit: unit.clone(),
            source,
        })
    })?;
    systemd.stop_unit(&unit).map_err(systemd_err)
}

fn systemd_err(e: ScopeError) -> LaunchError {
    LaunchError::Systemd(e)
}

/// Forks a child that waits for SIGKILL, holding no descriptor.
fn spawn_placeholder() -> Result<libc::pid_t, LaunchError> {
    // SAFETY: getpid(2) cannot fail.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the child calls only async-signal-safe functions (prctl,
    // getppid, close_range via syscall, pause, _exit) before it dies.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(LaunchError::Sys {
            op: "fork the systemd scope's placeholder",
            source: std::io::Error::last_os_error(),
        }),
        0 => {
            // SAFETY: see above; nothing here allocates or takes a lock.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                if libc::getppid() != parent {
                    libc::_exit(0);
                }
                libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
                loop {
                    libc::pause();
                }
            }
        }
        pid => Ok(pid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_map_to_systemd_paths_and_bad_ones_are_named() {
        assert_eq!(slice_path("phobos").unwrap(), PathBuf::from("phobos.slice"));
        assert_eq!(
            slice_path("phobos.slice").unwrap(),
            PathBuf::from("phobos.slice")
        );
        assert_eq!(
            slice_path("a-b-c.slice").unwrap(),
            PathBuf::from("a.slice/a-b.slice/a-b-c.slice")
        );
        for bad in ["a/b", "-a", "a--b", ".slice", "a.b", "a-", "é"] {
            let e = slice_path(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }
}
