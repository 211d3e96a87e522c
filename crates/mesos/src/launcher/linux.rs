//! The linux launcher: namespaces come from `clone(2)` flags; every process
//! of a container lives in a freezer cgroup `<cgroups_root>/<id>` (the v1
//! freezer hierarchy, or cgroup2 on pure-v2 hosts), so destroy can freeze
//! and kill the whole tree with no escape (Documentation/admin-guide/
//! cgroup-v1/freezer-subsystem.rst, cgroup-v2.rst `cgroup.kill`).

use std::path::{Path, PathBuf};

use phobos_cgroups::{Cgroup, Hierarchies};
use phobos_core::ContainerId;

use super::{DESTROY_TIMEOUT, LaunchError};

#[derive(Debug)]
pub struct LinuxLauncher {
    hierarchies: Hierarchies,
    cgroups_root: PathBuf,
}

impl LinuxLauncher {
    pub fn new(cgroups_root: &str) -> Result<Self, LaunchError> {
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        if euid != 0 {
            return Err(LaunchError::NotRoot(euid));
        }
        let hierarchies = Hierarchies::detect()?;
        let cgroups_root = PathBuf::from(cgroups_root);
        if hierarchies.freezer_cgroup(&cgroups_root).is_none() {
            return Err(LaunchError::NoFreezer);
        }
        Ok(Self {
            hierarchies,
            cgroups_root,
        })
    }

    pub fn hierarchies(&self) -> &Hierarchies {
        &self.hierarchies
    }

    fn freezer(&self, rel: &Path) -> Result<Cgroup, LaunchError> {
        self.hierarchies
            .freezer_cgroup(rel)
            .ok_or(LaunchError::NoFreezer)
    }

    fn container_cgroup(&self, id: &ContainerId) -> Result<Cgroup, LaunchError> {
        self.freezer(&self.cgroups_root.join(id.as_str()))
    }

    pub fn prepare(&self, id: &ContainerId) -> Result<(), LaunchError> {
        self.container_cgroup(id)?.create()?;
        Ok(())
    }

    pub fn adopt(&self, id: &ContainerId, pid: i32) -> Result<(), LaunchError> {
        self.container_cgroup(id)?.add_process(pid)?;
        Ok(())
    }

    pub fn destroy(&self, id: &ContainerId, init_pid: Option<i32>) -> Result<(), LaunchError> {
        let cgroup = self.container_cgroup(id)?;
        if cgroup.exists() {
            cgroup.kill_all(DESTROY_TIMEOUT)?;
            cgroup.remove(DESTROY_TIMEOUT)?;
        }
        // An init forked but never adopted (the launcher died in between)
        // exits on its own when its pipe closes; killing it only hurries it.
        if let Some(pidfd) = init_pid.and_then(|pid| crate::sys::pidfd_open(pid).ok()) {
            let _ = crate::sys::pidfd_send_signal(&pidfd, libc::SIGKILL);
        }
        Ok(())
    }

    /// Names of the container cgroups under the root: the launcher's view of
    /// which containers exist, for orphan detection in recovery.
    pub fn known(&self) -> Result<Vec<String>, LaunchError> {
        let root = self.freezer(&self.cgroups_root)?;
        if !root.exists() {
            return Ok(Vec::new());
        }
        Ok(root.children()?)
    }

    /// Kills and removes the cgroup of an ID that has no runtime directory.
    pub fn destroy_orphan(&self, name: &str) -> Result<(), LaunchError> {
        let cgroup = self.freezer(&self.cgroups_root.join(name))?;
        cgroup.kill_all(DESTROY_TIMEOUT)?;
        cgroup.remove(DESTROY_TIMEOUT)?;
        Ok(())
    }
}
