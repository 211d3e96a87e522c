//! The linux launcher: namespaces come from `clone(2)` flags, and every
//! process of a container lives in one *kill cgroup* `<cgroups_root>/<id>`,
//! so destroy can kill the whole tree with no escape. A nested container's
//! kill cgroup is inside its parent's, `<cgroups_root>/<parent>/mesos/<child>`
//! (Mesos's layout), so killing a parent's cgroup kills its nested ones too.
//!
//! Which hierarchy holds the kill cgroup:
//! - cgroup2 whenever it offers `cgroup.kill` (Linux ≥ 5.14; also on hybrid
//!   hosts, where cgroup2 is mounted at `unified`). Init is then created
//!   directly inside the cgroup with `clone3(CLONE_INTO_CGROUP)`: no
//!   migration, so no window in which it runs outside, and no write-lock of
//!   the global cgroup threadgroup rwsem, which on this kernel can wait for
//!   an RCU grace period (measured up to ~16 ms per launch). Destroy writes
//!   `cgroup.kill` (Documentation/admin-guide/cgroup-v2.rst).
//! - otherwise the v1 freezer hierarchy: init is moved in through
//!   `cgroup.procs` while it is blocked on its pipe, and destroy freezes,
//!   SIGKILLs every task, thaws and removes the cgroup, as Mesos does
//!   (Documentation/admin-guide/cgroup-v1/freezer-subsystem.rst).
//!
//! On cgroup2 the container's processes live in a leaf child of its
//! cgroup, `<cgroups_root>/<id>/leaf` (`phobos_cgroups::LEAF`, Mesos's
//! layout on v2): the limits, statistics, `memory.events`, `cgroup.kill`
//! and the freezer are the container cgroup's, which holds no process of
//! its own, so v2's no-internal-process rule lets it enable controllers for
//! its nested containers, `<id>/mesos/<child>` (their processes in
//! `<id>/mesos/<child>/leaf`). Containers launched before this layout keep
//! their processes in `<id>` itself; killing, statistics and removal work
//! on the subtree, so both layouts are destroyed and recovered alike.
//!
//! Recovery and destroy look in both hierarchies, so a host whose choice
//! changed (e.g. a kernel upgrade) leaves nothing behind.
//!
//! With the systemd driver (pure cgroup v2 only) a top-level container's
//! kill cgroup is its transient scope, `<slice>/phobos-<id>.scope`, which
//! systemd creates (see [`super::scope`]), its processes in the scope's
//! leaf, and its nested containers plain sub-cgroups of the delegated
//! scope, `phobos-<id>.scope/mesos/<child>`; destroy kills and removes it
//! as any other, then stops the unit. Each record keeps the driver it was
//! created with (`ContainerConfig::cgroups_driver`), so its cgroups are
//! found after the configured driver changes.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use phobos_cgroups::{Cgroup, Hierarchies, Version};
use phobos_core::{CgroupsDriver, ContainerId};

use super::{DESTROY_TIMEOUT, LaunchError};

/// Which hierarchy a launcher uses for its kill cgroups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillHierarchy {
    /// cgroup2 with `cgroup.kill`, else the v1 freezer.
    Auto,
    /// The v1 freezer even when cgroup2 could do it (tests, old habits).
    V1Freezer,
}

#[derive(Debug)]
pub struct LinuxLauncher {
    cgroups_root: PathBuf,
    /// Where new containers go.
    primary: Cgroup,
    /// Every root that may hold this launcher's cgroups (primary first).
    roots: Vec<Cgroup>,
    /// Who makes top-level cgroups.
    driver: CgroupsDriver,
    /// Spare v1 (freezer) directories renamed into place instead of made.
    spares: Option<std::sync::Arc<phobos_cgroups::spare::Spares>>,
}

impl LinuxLauncher {
    pub fn new(cgroups_root: &str) -> Result<Self, LaunchError> {
        Self::with_hierarchy(cgroups_root, KillHierarchy::Auto)
    }

    pub fn with_hierarchy(cgroups_root: &str, choice: KillHierarchy) -> Result<Self, LaunchError> {
        Self::from_hierarchies(cgroups_root, choice, &Hierarchies::detect()?)
    }

    /// A launcher over hierarchies the caller already detected.
    pub fn from_hierarchies(
        cgroups_root: &str,
        choice: KillHierarchy,
        hierarchies: &Hierarchies,
    ) -> Result<Self, LaunchError> {
        Self::with_driver(cgroups_root, choice, CgroupsDriver::Cgroupfs, hierarchies)
    }

    /// A launcher with a cgroups driver. The systemd driver needs pure
    /// cgroup v2 (a unified host): on a v1 or hybrid host systemd keeps
    /// the controllers in v1 hierarchies, where a delegated scope is not
    /// one directory, so it is refused in one line. Its `cgroups_root` is
    /// the slice's cgroup (see [`super::scope::slice_path`]).
    pub fn with_driver(
        cgroups_root: &str,
        choice: KillHierarchy,
        driver: CgroupsDriver,
        hierarchies: &Hierarchies,
    ) -> Result<Self, LaunchError> {
        let mut launcher = if driver == CgroupsDriver::Systemd {
            if hierarchies.layout() != phobos_cgroups::Layout::Unified {
                let layout = match hierarchies.layout() {
                    phobos_cgroups::Layout::Hybrid => "hybrid",
                    _ => "cgroup v1 only",
                };
                return Err(LaunchError::SystemdLayout(format!(
                    "needs a pure cgroup v2 host, and this host is {layout} (cgroup v1 controllers are mounted); use cgroups_driver = \"cgroupfs\" here"
                )));
            }
            if !cgroups_root.ends_with(".slice") {
                return Err(LaunchError::SystemdLayout(format!(
                    "the cgroups root must be a slice's cgroup, not \"{cgroups_root}\""
                )));
            }
            Self::build(cgroups_root, choice, hierarchies)?
        } else {
            Self::build(cgroups_root, choice, hierarchies)?
        };
        launcher.driver = driver;
        Ok(launcher)
    }

    fn build(
        cgroups_root: &str,
        choice: KillHierarchy,
        hierarchies: &Hierarchies,
    ) -> Result<Self, LaunchError> {
        let euid = nix::unistd::geteuid().as_raw();
        if euid != 0 {
            return Err(LaunchError::NotRoot(euid));
        }
        let rel = PathBuf::from(cgroups_root);
        // cgroup.kill exists in every non-root cgroup2 directory of a kernel
        // that has it: probe our own root there, or, where it does not
        // exist yet, another directory of the mount (a launcher built to
        // recover or destroy must not create the root). The answer only
        // orders cgroup2 against a v1 freezer: with no freezer (a pure v2
        // host) cgroup2 is the one root either way, so nothing is probed;
        // the root is created for the probe only on a host with both and
        // no directory in the cgroup2 mount (a freshly booted pure v2
        // host without systemd has none, and `recover` there must leave
        // the mount as it found it).
        let has_freezer = hierarchies
            .v1_mount(phobos_cgroups::Controller::Freezer)
            .is_some();
        let unified_kills = match hierarchies.unified_mount() {
            Some(mount) if choice == KillHierarchy::Auto => {
                let root = Cgroup::new(mount, &rel, Version::V2);
                if root.exists() {
                    root.has_file("cgroup.kill")
                } else {
                    match first_child_dir(mount) {
                        Some(dir) => dir.join("cgroup.kill").exists(),
                        None if !has_freezer => false,
                        None => {
                            root.create()?;
                            root.has_file("cgroup.kill")
                        }
                    }
                }
            }
            _ => false,
        };
        let roots = kill_roots(hierarchies, &rel, choice, unified_kills);
        let primary = roots.first().cloned().ok_or(LaunchError::NoFreezer)?;
        Ok(Self {
            cgroups_root: rel,
            primary,
            roots,
            driver: CgroupsDriver::Cgroupfs,
            spares: None,
        })
    }

    /// Takes top-level kill cgroups on the v1 freezer from `spares` when
    /// it has them ready (cgroup2 refuses renames: made there).
    pub fn set_spares(&mut self, spares: Option<std::sync::Arc<phobos_cgroups::spare::Spares>>) {
        self.spares = spares;
    }

    /// The cgroups driver.
    pub fn driver(&self) -> CgroupsDriver {
        self.driver
    }

    /// With the systemd driver, starts a top-level container's scope.
    pub fn start_unit(
        &self,
        id: &ContainerId,
    ) -> Result<Option<super::scope::ScopeHold>, LaunchError> {
        if self.driver != CgroupsDriver::Systemd || id.is_nested() {
            return Ok(None);
        }
        let slice = self
            .cgroups_root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        super::scope::start(id, &slice).map(Some)
    }

    /// Whether init is born in its cgroup (cgroup2) rather than moved there.
    pub fn clones_into_cgroup(&self) -> bool {
        self.primary.version() == Version::V2
    }

    /// The kill cgroup of a container in the primary hierarchy.
    pub fn cgroup(&self, id: &ContainerId) -> Cgroup {
        self.primary.child(cgroup_rel(self.driver, id))
    }

    /// The cgroup the container's processes live in: on cgroup2 the leaf
    /// of its kill cgroup, on the v1 freezer the kill cgroup itself.
    pub fn process_cgroup(&self, id: &ContainerId) -> Cgroup {
        let cgroup = self.cgroup(id);
        match cgroup.version() {
            Version::V2 => cgroup.leaf(),
            Version::V1 => cgroup,
        }
    }

    /// Creates the container's kill cgroup (and on cgroup2 its leaf);
    /// returns a directory fd of the leaf for `CLONE_INTO_CGROUP` when
    /// init can be born there.
    pub fn prepare(&self, id: &ContainerId) -> Result<Option<OwnedFd>, LaunchError> {
        let cgroup = self.cgroup(id);
        let spare = !id.is_nested()
            && self.driver == CgroupsDriver::Cgroupfs
            && self.spares.as_ref().is_some_and(|s| s.take(&cgroup));
        if !spare {
            cgroup.create()?;
        }
        mark(&cgroup, id.leaf());
        let home = self.process_cgroup(id);
        if home != cgroup {
            home.create()?;
        }
        if !self.clones_into_cgroup() {
            return Ok(None);
        }
        let dir = File::open(home.path()).map_err(|source| LaunchError::Sys {
            op: "open the container's cgroup",
            source,
        })?;
        Ok(Some(dir.into()))
    }

    /// Moves init into its cgroup unless it was born there.
    pub fn adopt(&self, id: &ContainerId, pid: i32, born_inside: bool) -> Result<(), LaunchError> {
        if !born_inside {
            self.process_cgroup(id).add_process(pid)?;
        }
        Ok(())
    }

    pub fn destroy(&self, id: &ContainerId, init_pid: Option<i32>) -> Result<(), LaunchError> {
        self.destroy_named(&cgroup_rel(self.driver, id))?;
        if self.driver == CgroupsDriver::Systemd && !id.is_nested() {
            super::scope::stop(id)?;
        }
        // An init forked but never adopted (the launcher died in between)
        // exits on its own when its pipe closes; killing it only hurries it.
        if let Some(pidfd) = init_pid.and_then(|pid| crate::sys::pidfd_open(pid).ok()) {
            let _ = crate::sys::pidfd_send_signal(&pidfd, libc::SIGKILL);
        }
        Ok(())
    }

    /// [`Self::destroy`] that leaves the emptied kill cgroups in place:
    /// every process of the container is killed and gone when it returns,
    /// and [`Self::remove_killed`] removes the cgroups later (the agent's
    /// WAIT answers in between). With the systemd driver, a plain
    /// [`Self::destroy`] (its scope is stopped with its cgroup).
    pub fn kill(&self, id: &ContainerId, init_pid: Option<i32>) -> Result<(), LaunchError> {
        if self.driver == CgroupsDriver::Systemd {
            return self.destroy(id, init_pid);
        }
        let name = cgroup_rel(self.driver, id);
        for root in &self.roots {
            let cgroup = root.child(&name);
            if cgroup.exists() {
                cgroup.kill_all(DESTROY_TIMEOUT)?;
            }
        }
        if let Some(pidfd) = init_pid.and_then(|pid| crate::sys::pidfd_open(pid).ok()) {
            let _ = crate::sys::pidfd_send_signal(&pidfd, libc::SIGKILL);
        }
        Ok(())
    }

    /// Removes the kill cgroups [`Self::kill`] emptied (idempotent: a
    /// cgroup already gone is fine; one that holds a process again is
    /// killed first).
    pub fn remove_killed(&self, id: &ContainerId) -> Result<(), LaunchError> {
        if self.driver == CgroupsDriver::Systemd {
            return Ok(());
        }
        self.destroy_named(&cgroup_rel(self.driver, id))
    }

    /// Starts killing every process of the container (init, the command
    /// and all they forked: its whole kill cgroup, nested containers
    /// included) without waiting for them to exit; what to wait on with
    /// `phobos_cgroups::wait_all_emptied`. [`Self::destroy`] then finds
    /// the cgroups empty and only removes them.
    pub fn start_kill(
        &self,
        id: &ContainerId,
    ) -> Result<Vec<phobos_cgroups::Emptying>, LaunchError> {
        let name = cgroup_rel(self.driver, id);
        let mut emptying = Vec::new();
        for root in &self.roots {
            emptying.extend(root.child(&name).start_kill(DESTROY_TIMEOUT)?);
        }
        Ok(emptying)
    }

    fn destroy_named(&self, name: &Path) -> Result<(), LaunchError> {
        for root in &self.roots {
            let cgroup = root.child(name);
            if cgroup.exists() {
                cgroup.kill_all(DESTROY_TIMEOUT)?;
                cgroup.remove(DESTROY_TIMEOUT)?;
            }
        }
        Ok(())
    }

    /// Names of the container cgroups under the root in every hierarchy:
    /// the launcher's view of which containers exist, for orphan detection.
    /// Only children marked as container cgroups count (see
    /// `phobos_cgroups::CONTAINER_MARK`): another instance's root nested
    /// under ours, or a cgroup someone else made, is not ours to destroy.
    pub fn known(&self) -> Result<Vec<String>, LaunchError> {
        self.known_below(Path::new(""), |_| false)
    }

    /// [`Self::known`] less the names `claimed` says yes to, which are
    /// left out before their mark is read: `recover` with thousands of
    /// live containers reads no mark of a cgroup whose record it listed.
    pub fn known_unclaimed(
        &self,
        claimed: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, LaunchError> {
        self.known_below(Path::new(""), claimed)
    }

    /// Names of the nested container cgroups of `parent` (in every
    /// hierarchy), as [`Self::known`] for the top level.
    pub fn known_nested(&self, parent: &ContainerId) -> Result<Vec<String>, LaunchError> {
        self.known_below(
            &cgroup_rel(self.driver, parent).join(NESTED_CGROUPS_DIR),
            |_| false,
        )
    }

    fn known_below(
        &self,
        rel: &Path,
        claimed: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, LaunchError> {
        let mut names = Vec::new();
        for root in &self.roots {
            let dir = root.child(rel);
            if dir.exists() {
                for child in dir.children()? {
                    // Scopes are named after the container; the mark is
                    // its ID.
                    let name =
                        if self.driver == CgroupsDriver::Systemd && rel.as_os_str().is_empty() {
                            match phobos_systemd::scope_id(&child) {
                                Some(id) => id,
                                None => continue,
                            }
                        } else {
                            child.clone()
                        };
                    if claimed(&name) {
                        continue;
                    }
                    if dir.child(&child).is_container(&name) {
                        names.push(name);
                    } else {
                        tracing::debug!(cgroup = %dir.child(&child).path().display(), "not a container cgroup; left alone");
                    }
                }
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Kills and removes the cgroups of an ID that has no runtime directory.
    pub fn destroy_orphan(&self, name: &str) -> Result<(), LaunchError> {
        match ContainerId::new(name) {
            Ok(id) if self.driver == CgroupsDriver::Systemd => self.destroy(&id, None),
            _ => self.destroy_named(Path::new(name)),
        }
    }

    /// Kills and removes the cgroups of nested container `name` of
    /// `parent` that has no runtime directory.
    pub fn destroy_nested_orphan(
        &self,
        parent: &ContainerId,
        name: &str,
    ) -> Result<(), LaunchError> {
        self.destroy_named(
            &cgroup_rel(self.driver, parent)
                .join(NESTED_CGROUPS_DIR)
                .join(name),
        )
    }

    pub fn cgroups_root(&self) -> &Path {
        &self.cgroups_root
    }

    /// The cgroups root in the hierarchy new containers go to (the one
    /// whose owner mark a launch checks).
    pub fn root_cgroup(&self) -> &Cgroup {
        &self.primary
    }
}

/// The sub-directory of a container's cgroup holding its nested
/// containers' cgroups (Mesos's name for it).
pub const NESTED_CGROUPS_DIR: &str = "mesos";

/// A container's cgroup below a cgroups root: `<id>`, or for a nested one
/// `<parent>/mesos/<child>` (one directory per component); with the
/// systemd driver the top-level part is the scope, `phobos-<id>.scope`.
pub fn cgroup_rel(driver: CgroupsDriver, id: &ContainerId) -> PathBuf {
    match driver {
        CgroupsDriver::Cgroupfs => id.nested_path(NESTED_CGROUPS_DIR),
        CgroupsDriver::Systemd => {
            let mut path = PathBuf::from(super::scope::scope_dir(&id.root()));
            if id.is_nested() {
                let below = id.nested_path(NESTED_CGROUPS_DIR);
                path.extend(below.components().skip(1));
            }
            path
        }
    }
}

/// Marks a container's cgroup as such, so recovery can tell it from a
/// cgroup that is not ours. Best effort: a hierarchy that keeps no extended
/// attributes only loses orphan clean-up for this container.
pub(crate) fn mark(cgroup: &Cgroup, name: &str) {
    if let Err(e) = cgroup.mark_container(name) {
        let level_debug = matches!(e.raw_os_error(), Some(libc::ENOTSUP));
        if level_debug {
            tracing::debug!(cgroup = %cgroup.path().display(), error = %e, "cannot mark the container cgroup");
        } else {
            tracing::warn!(cgroup = %cgroup.path().display(), error = %e, "cannot mark the container cgroup; recover will not treat it as an orphan");
        }
    }
}

/// The hierarchies that may hold kill cgroups, the one for new containers
/// first: cgroup2 when it has `cgroup.kill`, the v1 freezer, and cgroup2
/// (freezing through `cgroup.freeze`) on a pure-v2 host without it.
fn kill_roots(
    hierarchies: &Hierarchies,
    rel: &Path,
    choice: KillHierarchy,
    unified_kills: bool,
) -> Vec<Cgroup> {
    let unified = hierarchies
        .unified_mount()
        .map(|mount| Cgroup::new(mount, rel, Version::V2));
    let v1_freezer = hierarchies
        .v1_mount(phobos_cgroups::Controller::Freezer)
        .map(|mount| Cgroup::new(mount, rel, Version::V1));
    let mut roots = Vec::new();
    if unified_kills && choice == KillHierarchy::Auto {
        roots.extend(unified.clone());
        roots.extend(v1_freezer);
    } else {
        roots.extend(v1_freezer);
        roots.extend(unified.filter(|_| choice == KillHierarchy::Auto));
    }
    roots
}

/// A directory directly under `mount`, if there is one (not followed
/// through a symlink: cgroupfs has none).
fn first_child_dir(mount: &Path) -> Option<PathBuf> {
    std::fs::read_dir(mount)
        .ok()?
        .flatten()
        .find(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const LEGACY: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
";
    const UNIFIED: &str = "30 23 0:27 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw\n";

    fn paths(mountinfo: &str, choice: KillHierarchy, kills: bool) -> Vec<String> {
        let h = Hierarchies::from_mountinfo(mountinfo).unwrap();
        kill_roots(&h, Path::new("phobos"), choice, kills)
            .iter()
            .map(|c| c.path().display().to_string())
            .collect()
    }

    #[test]
    fn hybrid_prefers_cgroup2_with_cgroup_kill_and_keeps_the_freezer_for_recovery() {
        assert_eq!(
            paths(HYBRID, KillHierarchy::Auto, true),
            [
                "/sys/fs/cgroup/unified/phobos",
                "/sys/fs/cgroup/freezer/phobos"
            ]
        );
        assert_eq!(
            paths(HYBRID, KillHierarchy::Auto, false),
            [
                "/sys/fs/cgroup/freezer/phobos",
                "/sys/fs/cgroup/unified/phobos"
            ]
        );
        assert_eq!(
            paths(HYBRID, KillHierarchy::V1Freezer, true),
            ["/sys/fs/cgroup/freezer/phobos"]
        );
    }

    #[test]
    fn legacy_uses_the_v1_freezer_and_unified_uses_cgroup2() {
        assert_eq!(
            paths(LEGACY, KillHierarchy::Auto, false),
            ["/sys/fs/cgroup/freezer/phobos"]
        );
        assert_eq!(
            paths(UNIFIED, KillHierarchy::Auto, true),
            ["/sys/fs/cgroup/phobos"]
        );
        // Old pure-v2 kernels still freeze through cgroup.freeze. The same
        // one root either way: `build` probes nothing there (and so never
        // creates the root of a fresh mount to probe it).
        assert_eq!(
            paths(UNIFIED, KillHierarchy::Auto, false),
            ["/sys/fs/cgroup/phobos"]
        );
    }
}
