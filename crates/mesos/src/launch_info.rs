//! `LaunchInfo`: everything the init helper needs, merged from the isolators'
//! contributions (Mesos `ContainerLaunchInfo`, §3.4) and checkpointed as the
//! runtime directory's `launch_info` before the fork.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A namespace the launcher creates with `clone(2)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Namespace {
    Mount,
    Pid,
    Ipc,
    Uts,
    Net,
}

impl Namespace {
    pub fn clone_flag(self) -> libc::c_int {
        match self {
            Self::Mount => libc::CLONE_NEWNS,
            Self::Pid => libc::CLONE_NEWPID,
            Self::Ipc => libc::CLONE_NEWIPC,
            Self::Uts => libc::CLONE_NEWUTS,
            Self::Net => libc::CLONE_NEWNET,
        }
    }

    /// Its name under `/proc/<pid>/ns/`.
    pub fn proc_name(self) -> &'static str {
        match self {
            Self::Mount => "mnt",
            Self::Pid => "pid",
            Self::Ipc => "ipc",
            Self::Uts => "uts",
            Self::Net => "net",
        }
    }
}

/// A nested container's parent, whose namespaces init joins with setns(2)
/// before anything else (Mesos §3.9: network and UTS always; pid and ipc
/// when shared; mount when the child has no root filesystem of its own,
/// after which init unshares a mount namespace of its own again).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentJoin {
    /// The parent's init on the host (checked to still be it through the
    /// parent's init lock after its namespaces are opened).
    pub pid: i32,
    /// The parent's runtime directory (its init lock).
    pub runtime_dir: PathBuf,
    pub namespaces: Vec<Namespace>,
    /// After joining the parent's mount namespace, unshare a copy of its
    /// own (every nested container but a debug one).
    #[serde(default = "yes")]
    pub own_mount: bool,
}

fn yes() -> bool {
    true
}

/// A resolved user to switch to before exec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// A cgroup, by mount point and path below it, as init needs it to watch
/// for OOM kills without re-reading the mount table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupPath {
    pub mount: PathBuf,
    pub rel: PathBuf,
    /// cgroup2 (`true`) or a v1 hierarchy.
    pub unified: bool,
}

impl CgroupPath {
    pub fn from_cgroup(cg: &phobos_cgroups::Cgroup) -> Self {
        Self {
            mount: cg.mount().to_owned(),
            rel: cg.rel().to_owned(),
            unified: cg.version() == phobos_cgroups::Version::V2,
        }
    }

    pub fn cgroup(&self) -> phobos_cgroups::Cgroup {
        let version = if self.unified {
            phobos_cgroups::Version::V2
        } else {
            phobos_cgroups::Version::V1
        };
        phobos_cgroups::Cgroup::new(&self.mount, &self.rel, version)
    }
}

/// The OOM watch init keeps (`cgroups/mem`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OomWatch {
    /// The container's memory cgroup.
    pub cgroup: CgroupPath,
}

/// The disk watch init keeps (`disk/du` with enforcement on).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiskWatch {
    /// The directory measured (the sandbox).
    pub path: PathBuf,
    /// The limit in bytes.
    pub limit_bytes: u64,
    /// Seconds between measurements.
    pub interval_secs: f64,
}

/// `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` generated for a
/// container on its own network (`network/cni`), bound over the
/// container's files by init once the launcher released it (they are
/// written in ISOLATING).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcFiles {
    pub hosts: PathBuf,
    pub hostname: PathBuf,
    pub resolv_conf: PathBuf,
}

/// One isolator's contribution; merged into [`LaunchInfo`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Contribution {
    pub namespaces: Vec<Namespace>,
    pub mount_proc: bool,
    pub private_shm: bool,
    pub env: Vec<(String, String)>,
    pub oom_watch: Option<OomWatch>,
    pub disk_watch: Option<DiskWatch>,
    /// The hostname when the isolator decides it (`network/cni`: the
    /// container ID unless one was asked for).
    pub hostname: Option<String>,
    pub etc_files: Option<EtcFiles>,
    /// Capabilities, no_new_privs, rlimits, seccomp (the security
    /// isolators' parts of the container's hardening).
    pub hardening: Option<phobos_core::Hardening>,
}

/// The merged launch description the init helper executes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LaunchInfo {
    /// Namespaces to clone, de-duplicated, in a stable order.
    pub namespaces: Vec<Namespace>,
    /// Mount a fresh `/proc` for the new pid namespace.
    pub mount_proc: bool,
    /// Mount a private tmpfs on `/dev/shm` for the new ipc namespace.
    pub private_shm: bool,
    pub hostname: Option<String>,
    /// The argv to execute; `argv[0]` is looked up in the container's PATH.
    pub argv: Vec<String>,
    /// Init sends the command SIGKILL and SIGSTOP when a face asks it to
    /// (`init::forward_carrier`); an older init, without this, is sent
    /// them itself.
    #[serde(default)]
    pub forwards_kill_and_stop: bool,
    /// The file to execute instead of `argv[0]` (a Mesos command whose
    /// `value` is not its first argument), looked up the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// The command's whole environment (later entries win).
    pub env: Vec<(String, String)>,
    pub working_dir: PathBuf,
    pub user: Option<ResolvedUser>,
    /// Watch the memory cgroup for OOM kills (absent in older checkpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_watch: Option<OomWatch>,
    /// Measure the sandbox and enforce its disk limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_watch: Option<DiskWatch>,
    /// Generated `/etc` files to bind over the container's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etc_files: Option<EtcFiles>,
    /// Enter this root filesystem before the command starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<RootfsPlan>,
    /// What the command is confined by (`crate::security`).
    #[serde(default, skip_serializing_if = "phobos_core::Hardening::is_empty")]
    pub hardening: phobos_core::Hardening,
    /// A nested container's parent namespaces to join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_parent: Option<ParentJoin>,
    /// Give the command a terminal of its own; init sends its master to the
    /// launcher on [`crate::launcher::INIT_TTY_FD`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tty: Option<TtyLaunch>,
    /// The `logrotate` container logger: init pumps the command's stdout
    /// and stderr into rotated sandbox files (`crate::log_pump`); absent,
    /// the command writes the sandbox files itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logger: Option<LoggerLaunch>,
    /// No terminal, but a switchboard (a DEBUG container: Mesos gives every
    /// one an I/O switchboard): init makes the command's stdin, stdout and
    /// stderr pipes and sends their other ends on
    /// [`crate::launcher::INIT_TTY_FD`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pipes: bool,
}

/// Where and how init's log pump writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggerLaunch {
    /// The sandbox on the host, opened by init before it changes its view
    /// of the filesystem.
    pub sandbox: PathBuf,
    pub rotation: phobos_core::LogRotation,
}

/// The command's terminal, as init allocates it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TtyLaunch {
    /// Its window size at start.
    pub size: phobos_core::WindowSize,
    /// Allocate from the container's private devpts (`/dev/pts/ptmx`, a
    /// container with its own root filesystem) rather than the host's
    /// `/dev/ptmx`.
    pub private_devpts: bool,
}

/// A container's own root filesystem and what init mounts into it
/// (reference images §3.2), besides the fixed set (/proc, /sys, /dev, the
/// masked and read-only paths) that `crate::rootfs` always provides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootfsPlan {
    /// The root filesystem directory on the host (absolute).
    pub root: PathBuf,
    /// Bind mounts, in order, after the fixed set: the /etc files, the
    /// sandbox, then the volumes.
    pub binds: Vec<Bind>,
    /// Device nodes made after the standard ones (`--device`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<phobos_core::DeviceNode>,
    /// The mount interface init uses (the classic one on Linux < 5.12).
    #[serde(default)]
    pub mount_api: phobos_core::mount_api::MountApi,
    /// The size of its `/dev/shm` in bytes; `None`: 64 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<u64>,
}

/// Where a bind mount's source is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BindSource {
    /// A host path chosen by Phobos or its caller (trusted).
    Host(PathBuf),
    /// A relative path beneath the container's sandbox (`sandbox` is the
    /// sandbox's host path), created as a directory when missing and
    /// resolved without following any symlink.
    Sandbox { sandbox: PathBuf, path: PathBuf },
}

/// One bind mount into the root filesystem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bind {
    pub source: BindSource,
    /// Absolute path inside the container, resolved beneath the root
    /// filesystem (symlinks in it stay inside).
    pub target: PathBuf,
    pub read_only: bool,
}

impl LaunchInfo {
    /// Adds one isolator's contribution (Mesos merges with `MergeFrom`:
    /// lists append, flags OR).
    pub fn merge(&mut self, c: Contribution) {
        for ns in c.namespaces {
            if !self.namespaces.contains(&ns) {
                self.namespaces.push(ns);
            }
        }
        self.mount_proc |= c.mount_proc;
        self.private_shm |= c.private_shm;
        self.env.extend(c.env);
        if c.oom_watch.is_some() {
            self.oom_watch = c.oom_watch;
        }
        if c.disk_watch.is_some() {
            self.disk_watch = c.disk_watch;
        }
        if self.hostname.is_none() {
            self.hostname = c.hostname;
        }
        if c.etc_files.is_some() {
            self.etc_files = c.etc_files;
        }
        if let Some(h) = c.hardening {
            let mine = &mut self.hardening;
            mine.capabilities = h.capabilities.or(mine.capabilities);
            mine.no_new_privileges |= h.no_new_privileges;
            mine.rlimits.extend(h.rlimits);
            mine.seccomp = h.seccomp.or(mine.seccomp.take());
        }
    }

    pub fn clone_flags(&self) -> libc::c_int {
        self.namespaces.iter().fold(0, |f, ns| f | ns.clone_flag())
    }

    pub fn has(&self, ns: Namespace) -> bool {
        self.namespaces.contains(&ns)
    }

    /// The namespaces init ends up in that are not the host's: its own and
    /// those it joined (what `phobos exec` must enter). A shared pid
    /// namespace is only its children's, not init's own, so it is left out.
    pub fn entered_namespaces(&self) -> Vec<Namespace> {
        let mut all = self.namespaces.clone();
        let joined = self.join_parent.iter().flat_map(|j| &j.namespaces);
        for ns in joined {
            if *ns != Namespace::Pid && !all.contains(ns) {
                all.push(*ns);
            }
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_dedups_namespaces_and_ors_flags() {
        let mut info = LaunchInfo::default();
        info.merge(Contribution {
            namespaces: vec![Namespace::Mount],
            ..Contribution::default()
        });
        info.merge(Contribution {
            namespaces: vec![Namespace::Mount, Namespace::Pid],
            mount_proc: true,
            env: vec![("A".into(), "1".into())],
            ..Contribution::default()
        });
        assert_eq!(info.namespaces, [Namespace::Mount, Namespace::Pid]);
        assert_eq!(info.clone_flags(), libc::CLONE_NEWNS | libc::CLONE_NEWPID);
        assert!(info.mount_proc && !info.private_shm);
        assert_eq!(info.env, [("A".to_string(), "1".to_string())]);
    }
}
