//! Nested containers (reference §3.9, §3.12; images §8.5): a container
//! whose ID has a parent (`parent.child`), launched inside a running
//! container.
//!
//! - Record: `<runtime_dir>/containers/<parent>/containers/<child>`,
//!   created atomically inside the parent's (`phobos_core::store`).
//! - Namespaces: its own mount namespace; the parent's network and UTS
//!   namespaces, always; a pid and an ipc namespace of its own unless it
//!   shares the parent's. Init joins the parent's with setns(2) on
//!   `/proc/<parent init>/ns/*` before anything else; without a root
//!   filesystem of its own it first joins the parent's mount namespace
//!   (so it sees the parent's files) and unshares a copy of it.
//! - Cgroups: its own nested inside the parent's
//!   (`<root>/<parent>/mesos/<child>`), or, with `share_cgroups`, only a
//!   kill cgroup there and the parent's resource cgroups.
//! - Sandbox: `<parent sandbox>/containers/<child>`, created beneath the
//!   top-level container's sandbox (or the work directory) without
//!   following any symlink: the parent's command controls its own sandbox
//!   and could plant a symlink there.
//! - Lifetime: the launch holds the parent's operation lock, so a parent
//!   cannot be destroyed half-way through; destroying (or finalizing) a
//!   container destroys its nested containers first, depth-first.

use std::path::PathBuf;

use phobos_core::store::{CONFIG_FILE, LAUNCH_INFO_FILE, OpLock};
use phobos_core::{ContainerConfig, ContainerDir, ContainerId, ContainerState, RuntimeStore};

use crate::containerizer::ContainerizerError;
use crate::launch_info::{LaunchInfo, Namespace, ParentJoin};

type Result<T, E = ContainerizerError> = std::result::Result<T, E>;

/// A nested container's parent, checked running and held (its operation
/// lock) for the whole launch.
pub(crate) struct ParentHold {
    pub id: ContainerId,
    pub dir: ContainerDir,
    pub config: ContainerConfig,
    /// The parent's init on the host.
    pub pid: i32,
    /// What the parent's command got (a debug container inherits it).
    pub info: LaunchInfo,
    _op: OpLock,
}

impl ParentHold {
    /// The held parent of `id`; `None` for a top-level container.
    pub fn take(store: &RuntimeStore, id: &ContainerId) -> Result<Option<Self>> {
        let Some(parent) = id.parent() else {
            return Ok(None);
        };
        let dir = store
            .open(&parent)
            .ok_or_else(|| phobos_core::StoreError::NoParent(parent.clone()))?;
        let op = dir.lock_op()?;
        let not_running = || ContainerizerError::ParentNotRunning(parent.clone());
        let running = matches!(dir.state()?.map(|r| r.state), Some(ContainerState::Running));
        if !running || dir.destroy_requested() || !dir.init_alive()? {
            return Err(not_running());
        }
        let pid = dir.pid()?.ok_or_else(not_running)?;
        let config: ContainerConfig = dir
            .read_json(CONFIG_FILE)?
            .ok_or_else(|| ContainerizerError::NoConfig(parent.clone()))?;
        let info: LaunchInfo = dir
            .read_json(LAUNCH_INFO_FILE)?
            .ok_or_else(|| ContainerizerError::NoConfig(parent.clone()))?;
        Ok(Some(Self {
            id: parent,
            dir,
            config,
            pid,
            info,
            _op: op,
        }))
    }

    /// The child's config as launched: without a root filesystem of its
    /// own, its sandbox is seen where the parent sees it,
    /// `<parent's sandbox in the container>/containers/<child>`. A debug
    /// container shares the parent's cgroups.
    pub fn child_config(&self, config: &ContainerConfig) -> ContainerConfig {
        let mut config = config.clone();
        if let Some(n) = config.nesting.as_mut().filter(|n| n.debug) {
            n.share_pid = true;
            n.share_ipc = true;
            n.share_cgroups = true;
        }
        if config.rootfs.is_none() && config.image.is_none() {
            let inside = self
                .config
                .sandbox_in_container()
                .join("containers")
                .join(config.id.leaf());
            config.sandbox_directory = Some(inside);
        }
        config
    }

    /// Sets the namespaces of the child's launch: its own mount namespace,
    /// pid and ipc unless shared, and the parent's to join. A debug
    /// container joins all of the parent's and runs with its environment
    /// (its own entries win), working directory and user unless given.
    pub fn apply(&self, config: &ContainerConfig, info: &mut LaunchInfo) {
        let nesting = config.nesting.unwrap_or_default();
        if nesting.debug {
            let mut env = self.info.env.clone();
            env.extend(config.env.iter().cloned());
            info.env = crate::containerizer::merge_env(env);
            if config.working_dir.is_none() {
                info.working_dir = self.info.working_dir.clone();
            }
            if config.user.is_none() {
                info.user = self.info.user.clone();
            }
            info.namespaces = Vec::new();
            info.mount_proc = false;
            info.private_shm = false;
            info.join_parent = Some(ParentJoin {
                pid: self.pid,
                runtime_dir: self.dir.path().to_owned(),
                namespaces: vec![
                    Namespace::Net,
                    Namespace::Uts,
                    Namespace::Ipc,
                    Namespace::Pid,
                    Namespace::Mount,
                ],
                own_mount: false,
            });
            return;
        }
        let mut own = vec![Namespace::Mount];
        let mut join = vec![Namespace::Net, Namespace::Uts];
        if nesting.share_pid {
            join.push(Namespace::Pid);
        } else {
            own.push(Namespace::Pid);
        }
        if nesting.share_ipc {
            join.push(Namespace::Ipc);
        } else {
            own.push(Namespace::Ipc);
        }
        // Without a root filesystem of its own it sees the parent's.
        if config.rootfs.is_none() {
            join.push(Namespace::Mount);
        }
        info.namespaces = own;
        info.mount_proc = !nesting.share_pid;
        info.private_shm = !nesting.share_ipc;
        info.join_parent = Some(ParentJoin {
            pid: self.pid,
            runtime_dir: self.dir.path().to_owned(),
            namespaces: join,
            own_mount: true,
        });
    }
}

/// Where a container's sandbox is created beneath, following no symlink
/// from there on: the work directory for Phobos's own sandboxes; for a
/// nested container under a sandbox chosen by someone else (a Mesos
/// agent's), its top-level ancestor's sandbox. `None`: a top-level sandbox
/// chosen by its caller, used as given.
pub(crate) fn sandbox_base(
    store: &RuntimeStore,
    work_dir: &std::path::Path,
    config: &ContainerConfig,
) -> Option<PathBuf> {
    let under_work_dir = config
        .sandbox
        .strip_prefix(work_dir)
        .is_ok_and(|rel| rel.components().next().is_some());
    if under_work_dir {
        return Some(work_dir.to_owned());
    }
    if !config.id.is_nested() {
        return None;
    }
    let root = store.open(&config.id.root())?;
    let root_config: ContainerConfig = root.read_json(CONFIG_FILE).ok()??;
    config
        .sandbox
        .starts_with(&root_config.sandbox)
        .then_some(root_config.sandbox)
}
