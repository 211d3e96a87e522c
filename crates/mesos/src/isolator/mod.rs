//! Isolators: small plug-ins with the Mesos lifecycle (§3.6). Each one may
//! contribute namespaces, mounts, environment and watches in `prepare`, act
//! on the forked init's pid in `isolate`, resize in `update`, report usage
//! in `usage`, report a limit it saw hit in `limitation`, and undo its work
//! in `cleanup`.
//!
//! Isolators are created in the fixed order of the Mesos built-in table
//! (filesystem, then runtime: posix/*, cgroups/*, namespaces/*, then disk),
//! whatever order `--isolation` lists them in; cleanup runs in reverse.
//! Every `cgroups/*` name is served by one [`CgroupsIsolator`], as in Mesos.
//!
//! Isolators keep no state between calls: each phobos process builds them
//! from the container's checkpointed config ([`build`]), so update, usage
//! and cleanup work from a fresh process.
//!
//! Limitations (OOM, disk quota) need a watcher that outlives the command
//! line that launched the container; with no daemon, that watcher is the
//! container's init helper. An isolator asks for a watch through its
//! [`Contribution`] (`oom_watch`, `disk_watch` in the launch info); init
//! watches, kills the command on a limitation and writes the reason into
//! `status`, and teardown turns it into the termination.

mod cgroups;
mod disk;
mod filesystem;
mod namespaces;
mod network;
mod posix;
mod security;

use std::path::Path;
use std::sync::{Arc, OnceLock};

use phobos_cgroups::Hierarchies;
use phobos_core::{
    CgroupsDriver, ContainerConfig, ContainerId, ContainerNetwork, IsolatorFlags, LauncherKind,
    Reason, ResourceStatistics, Resources, UsageConfig,
};

use crate::launch_info::Contribution;

pub use cgroups::{CgroupsIsolator, Subsystem, oom_limitation, prepare_spare};
pub use disk::{DiskDu, disk_limitation, disk_usage};
pub use filesystem::{FilesystemLinux, FilesystemPosix};
pub use namespaces::{NamespacesIpc, NamespacesPid, NamespacesUts};
pub use network::{
    IpAddress, NetworkCni, NetworkStatus, hostname_of, net_root, net_settings, network_status,
    sweep_orphan_networks,
};
pub use posix::{
    PosixCpu, PosixMem, ProcStat, ProcTable, ProcessTreeUsage, parse_stat, process_tree_usage,
};
pub use security::SecurityIsolator;

/// Host facts that are the same for every container, read at most once
/// per cache: the cgroup hierarchies (from mountinfo) and a `/proc` process
/// table. Measuring many containers (`phobos stats`) shares one cache, so
/// the mount table and `/proc` are read once, not once per container. It
/// is `Sync`, so containers can be measured on several threads.
/// The v1 `tasks` files a process writes `0` to, to join its container's
/// cgroups by itself ([`Isolator::join_files`]).
#[derive(Debug, Default)]
pub struct JoinFiles {
    /// For any joiner, a `vfork`-style child that shares the face's memory
    /// included.
    pub any: Vec<std::fs::File>,
    /// For a joiner with memory of its own (an init spawner) only: a
    /// cpuset's attach rebinds the memory policy of the joining task's
    /// memory.
    pub own_memory: Vec<std::fs::File>,
}

impl JoinFiles {
    fn extend(&mut self, other: JoinFiles) {
        self.any.extend(other.any);
        self.own_memory.extend(other.own_memory);
    }

    /// Every isolator's files for container `id`.
    pub fn of(isolators: &[Box<dyn Isolator>], id: &ContainerId, own_memory: bool) -> Self {
        let mut all = Self::default();
        for isolator in isolators {
            all.extend(isolator.join_files(id, own_memory));
        }
        all
    }
}

#[derive(Debug, Default)]
pub struct HostCache {
    procs: OnceLock<ProcTable>,
    /// Shared with every cgroups isolator built on this cache (one copy
    /// of the mount table, not one per container measured).
    hierarchies: OnceLock<Result<Arc<Hierarchies>, String>>,
    /// The runtime directory, for isolators that keep state there
    /// (`network/cni`).
    runtime_dir: Option<std::path::PathBuf>,
    /// Spare cgroup directories that launches rename into place (a
    /// long-running face's; see `phobos_cgroups::spare`).
    spares: Option<std::sync::Arc<phobos_cgroups::spare::Spares>>,
    /// The open parent directories of the containers' cgroups (their
    /// cgroups roots), below which `usage` reads the control files.
    cgroup_parents: phobos_cgroups::files::ParentDirs,
}

impl HostCache {
    /// A cache whose hierarchies are already known (the process table is
    /// still scanned on first use, so it is never stale).
    pub fn with_hierarchies(hierarchies: Hierarchies) -> Self {
        let cache = Self::default();
        let _ = cache.hierarchies.set(Ok(Arc::new(hierarchies)));
        cache
    }

    /// The same cache, naming the runtime directory.
    pub fn with_runtime_dir(mut self, runtime_dir: &std::path::Path) -> Self {
        self.runtime_dir = Some(runtime_dir.to_owned());
        self
    }

    /// The same cache, with spare cgroup directories for launches.
    pub fn with_spares(
        mut self,
        spares: Option<std::sync::Arc<phobos_cgroups::spare::Spares>>,
    ) -> Self {
        self.spares = spares;
        self
    }

    /// The process table, scanned on first use.
    pub fn procs(&self) -> &ProcTable {
        self.procs.get_or_init(ProcTable::scan)
    }

    /// The host's cgroup hierarchies, detected on first use.
    pub fn hierarchies(&self) -> Result<&Hierarchies, IsolatorError> {
        self.shared_hierarchies().map(|h| &**h)
    }

    fn shared_hierarchies(&self) -> Result<&Arc<Hierarchies>, IsolatorError> {
        self.hierarchies
            .get_or_init(|| {
                Hierarchies::detect()
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|reason| IsolatorError::Unavailable {
                isolator: "cgroups",
                reason: reason.clone(),
            })
    }
}

/// What a `usage` call may use besides the container ID. One context
/// measures many containers in turn (its `pid` set for each): its reader
/// keeps one buffer for every control file and reads them below the
/// host cache's open cgroup parent directories.
pub struct UsageContext<'a> {
    /// The init helper's pid, when known.
    pub pid: Option<i32>,
    pub host: &'a HostCache,
    /// Reads cgroup control files (see `phobos_cgroups::files`).
    pub cgroup_files: std::cell::RefCell<phobos_cgroups::files::Reader<'a>>,
}

impl<'a> UsageContext<'a> {
    /// A context on `host`, with no pid yet.
    pub fn new(host: &'a HostCache) -> Self {
        UsageContext {
            pid: None,
            host,
            cgroup_files: std::cell::RefCell::new(phobos_cgroups::files::Reader::new(Some(
                &host.cgroup_parents,
            ))),
        }
    }
}

/// Errors from choosing or running isolators.
#[derive(Debug, thiserror::Error)]
pub enum IsolatorError {
    #[error("unknown or unsupported isolator '{0}'")]
    Unknown(String),
    #[error("isolator '{0}' is listed twice")]
    Duplicate(String),
    #[error("only one filesystem isolator may be used, got '{0}' and '{1}'")]
    TwoFilesystems(String, String),
    #[error("isolator '{isolator}' requires '{requires}'")]
    Requires {
        isolator: &'static str,
        requires: &'static str,
    },
    #[error("isolator '{isolator}' needs the linux launcher, not '{launcher}'")]
    NeedsLinuxLauncher {
        isolator: &'static str,
        launcher: &'static str,
    },
    #[error("isolator '{isolator}' is not available on this host: {reason}")]
    Unavailable {
        isolator: &'static str,
        reason: String,
    },
    #[error("isolator '{isolator}' failed for container {id}: {message}")]
    Failed {
        isolator: &'static str,
        id: ContainerId,
        message: String,
    },
}

impl IsolatorError {
    /// Whether the error is about the request (an isolator list that cannot
    /// work here: exit 2, nothing changed) rather than an isolator failing
    /// while it ran (exit 1).
    pub fn is_usage(&self) -> bool {
        !matches!(self, Self::Failed { .. })
    }
}

/// A limit a container hit (Mesos `ContainerLimitation`): the containerizer
/// ends the container with `TASK_FAILED` and this reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limitation {
    pub reason: Reason,
    pub message: String,
    /// Names of the resources whose limit was hit (`mem`, `disk`).
    pub resources: Vec<String>,
}

/// The Mesos isolator lifecycle. Every method has a default so an isolator
/// only implements what it needs.
pub trait Isolator: std::fmt::Debug {
    fn name(&self) -> &'static str;

    /// Whether this isolator needs namespaces, and so the linux launcher.
    fn needs_linux_launcher(&self) -> bool {
        false
    }

    /// Before the fork: what the container needs from the launch.
    fn prepare(&self, _config: &ContainerConfig) -> Result<Option<Contribution>, IsolatorError> {
        Ok(None)
    }

    /// After `prepare`, before the fork: membership files (v1 `tasks`) a
    /// single-threaded init, or the process it is cloned from, may join by
    /// itself (`phobos_cgroups::Cgroup::open_tasks_to_join`); those only a
    /// joiner with memory of its own may join too when `own_memory`. Best
    /// effort: what cannot be opened here, or joined there, `isolate`
    /// still does.
    fn join_files(&self, _id: &ContainerId, _own_memory: bool) -> JoinFiles {
        JoinFiles::default()
    }

    /// After the fork, while init is blocked on its pipe.
    fn isolate(&self, _id: &ContainerId, _pid: i32) -> Result<(), IsolatorError> {
        Ok(())
    }

    /// Applies new requests and limits to a running container. `force`
    /// allows lowering a memory hard limit (see `cgroups/mem`).
    fn update(
        &self,
        _id: &ContainerId,
        _resources: &Resources,
        _force: bool,
    ) -> Result<(), IsolatorError> {
        Ok(())
    }

    /// This isolator's part of the container's statistics. The timestamp
    /// and the requests/limits are set by the caller.
    fn usage(
        &self,
        _id: &ContainerId,
        _ctx: &UsageContext<'_>,
    ) -> Result<Option<ResourceStatistics>, IsolatorError> {
        Ok(None)
    }

    /// A limit the container hit, judged after the fact (for example from
    /// the cgroup's OOM-kill counter) when init could not record it.
    fn limitation(&self, _id: &ContainerId) -> Result<Option<Limitation>, IsolatorError> {
        Ok(None)
    }

    /// After every process of the container is gone. Must tolerate
    /// containers it never prepared.
    fn cleanup(&self, _id: &ContainerId) -> Result<(), IsolatorError> {
        Ok(())
    }
}

/// The built-in isolator table, in Mesos creation order.
const BUILT_IN: &[&str] = &[
    "filesystem/posix",
    "filesystem/linux",
    "posix/cpu",
    "posix/mem",
    "posix/rlimits",
    "cgroups/all",
    "cgroups/cpu",
    "cgroups/mem",
    "cgroups/pids",
    "cgroups/blkio",
    "cgroups/devices",
    "cgroups/cpuset",
    "cgroups/hugetlb",
    "cgroups/net_cls",
    "cgroups/net_prio",
    "cgroups/perf_event",
    "namespaces/pid",
    "namespaces/ipc",
    "namespaces/uts",
    "network/cni",
    "linux/capabilities",
    "linux/nnp",
    "linux/seccomp",
    "disk/du",
];

/// Whether isolator `name` needs namespaces (so the linux launcher).
fn needs_linux_launcher(name: &str) -> bool {
    name == "filesystem/linux" || name.starts_with("namespaces/") || name == "network/cni"
}

/// Mesos's deprecated aliases (§3.1 step 2) that still parse.
fn expand_alias(name: &str) -> &'static [&'static str] {
    match name {
        "posix/disk" => &["disk/du"],
        "cgroups" => &["cgroups/cpu", "cgroups/mem"],
        "process" => &["posix/cpu", "posix/mem"],
        _ => &[],
    }
}

/// Whether this process can manage cgroups (it runs as root).
fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The default `--isolation` for a launcher. As root the linux launcher
/// also gets `cgroups/cpu,cgroups/mem,cgroups/pids` (Mesos's default when
/// cgroups are available), each only if the host has its controllers, so
/// a host without, say, the pids controller still launches.
pub fn default_isolation(launcher: LauncherKind) -> Vec<String> {
    default_isolation_with(launcher, Hierarchies::detect().ok().as_ref())
}

/// [`default_isolation`] for already detected hierarchies.
pub fn default_isolation_with(
    launcher: LauncherKind,
    hierarchies: Option<&Hierarchies>,
) -> Vec<String> {
    let mut names: Vec<&str> = match launcher {
        LauncherKind::Linux => vec!["filesystem/linux"],
        LauncherKind::Posix => vec!["filesystem/posix"],
    };
    names.push("posix/rlimits");
    if launcher == LauncherKind::Linux
        && is_root()
        && let Some(h) = hierarchies
    {
        use phobos_cgroups::Controller as C;
        for (name, controllers) in [
            ("cgroups/cpu", &[C::Cpu, C::Cpuacct][..]),
            ("cgroups/mem", &[C::Memory][..]),
            ("cgroups/pids", &[C::Pids][..]),
        ] {
            if controllers.iter().all(|c| h.locate(*c).is_some()) {
                names.push(name);
            }
        }
        // The v1 controller, or a device eBPF program on cgroup2.
        if h.locate(C::Devices).is_some() || h.unified_mount().is_some() {
            names.push("cgroups/devices");
        }
    }
    if launcher == LauncherKind::Linux {
        names.extend(["namespaces/pid", "namespaces/ipc", "namespaces/uts"]);
        if is_root() {
            names.extend(["linux/capabilities", "linux/seccomp"]);
        }
    }
    names.into_iter().map(str::to_owned).collect()
}

/// Parses and validates an isolation list, returning the canonical names in
/// creation order (a filesystem isolator is added when none was named;
/// other `cgroups/*` names are dropped when `cgroups/all` is given).
pub fn resolve_isolation(
    names: &[String],
    launcher: LauncherKind,
) -> Result<Vec<String>, IsolatorError> {
    let mut seen: Vec<&str> = Vec::new();
    for raw in names {
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let expanded = expand_alias(raw);
        let list: Vec<&str> = if expanded.is_empty() {
            vec![raw]
        } else {
            expanded.to_vec()
        };
        for name in list {
            let Some(known) = BUILT_IN.iter().copied().find(|n| *n == name) else {
                return Err(IsolatorError::Unknown(raw.to_owned()));
            };
            if seen.contains(&known) {
                return Err(IsolatorError::Duplicate(known.to_owned()));
            }
            seen.push(known);
        }
    }
    if seen.contains(&"cgroups/all") {
        seen.retain(|n| !n.starts_with("cgroups/") || *n == "cgroups/all");
    }
    let filesystems: Vec<&str> = seen
        .iter()
        .copied()
        .filter(|n| n.starts_with("filesystem/"))
        .collect();
    match filesystems.as_slice() {
        [] => seen.push("filesystem/posix"),
        [_] => {}
        [a, b, ..] => return Err(IsolatorError::TwoFilesystems(a.to_string(), b.to_string())),
    }
    let has_linux_fs = seen.contains(&"filesystem/linux");
    for ns in ["namespaces/pid", "namespaces/ipc"] {
        if seen.contains(&ns) && !has_linux_fs {
            return Err(IsolatorError::Requires {
                isolator: if ns == "namespaces/pid" {
                    "namespaces/pid"
                } else {
                    "namespaces/ipc"
                },
                requires: "filesystem/linux",
            });
        }
    }
    let ordered: Vec<&'static str> = BUILT_IN
        .iter()
        .copied()
        .filter(|n| seen.contains(n))
        .collect();
    if launcher != LauncherKind::Linux
        && let Some(name) = ordered.iter().find(|n| needs_linux_launcher(n))
    {
        return Err(IsolatorError::NeedsLinuxLauncher {
            isolator: name,
            launcher: launcher.name(),
        });
    }
    Ok(ordered.into_iter().map(str::to_owned).collect())
}

/// What building a container's isolators reads from its checkpointed
/// config: borrowed from the whole [`ContainerConfig`], or from the
/// fields measuring reads ([`UsageConfig`]), so that `stats` builds them
/// without parsing the rest of each config.
#[derive(Clone, Copy, Debug)]
pub struct Spec<'a> {
    pub id: &'a ContainerId,
    pub isolation: &'a [String],
    pub sandbox: &'a Path,
    pub cgroups_root: &'a str,
    pub cgroups_driver: CgroupsDriver,
    pub hostname: Option<&'a str>,
    pub resources: &'a Resources,
    pub isolator_flags: &'a IsolatorFlags,
    pub network: &'a ContainerNetwork,
}

impl<'a> From<&'a ContainerConfig> for Spec<'a> {
    fn from(c: &'a ContainerConfig) -> Self {
        Spec {
            id: &c.id,
            isolation: &c.isolation,
            sandbox: &c.sandbox,
            cgroups_root: &c.cgroups_root,
            cgroups_driver: c.cgroups_driver,
            hostname: c.hostname.as_deref(),
            resources: &c.resources,
            isolator_flags: &c.isolator_flags,
            network: &c.network,
        }
    }
}

impl<'a> From<&'a UsageConfig> for Spec<'a> {
    fn from(c: &'a UsageConfig) -> Self {
        Spec {
            id: &c.id,
            isolation: &c.isolation,
            sandbox: &c.sandbox,
            cgroups_root: &c.cgroups_root,
            cgroups_driver: c.cgroups_driver,
            hostname: c.hostname.as_deref(),
            resources: &c.resources,
            isolator_flags: &c.isolator_flags,
            network: &c.network,
        }
    }
}

/// Whether isolators `isolation` measure the process tree under the
/// container's init (`posix/cpu`, `posix/mem`), and so need its pid.
pub fn measures_process_tree(isolation: &[String]) -> bool {
    isolation
        .iter()
        .any(|n| n == "posix/cpu" || n == "posix/mem")
}

/// Instantiates the container's (already resolved) isolators from its
/// checkpointed config. All `cgroups/*` names become one isolator, placed
/// where the first of them is.
pub fn build(config: &ContainerConfig) -> Result<Vec<Box<dyn Isolator>>, IsolatorError> {
    build_with(config, &HostCache::default())
}

/// [`build`] with host facts shared between containers, from the whole
/// config or the part of it measuring reads.
pub fn build_with<'a>(
    config: impl Into<Spec<'a>>,
    host: &HostCache,
) -> Result<Vec<Box<dyn Isolator>>, IsolatorError> {
    let config: Spec<'a> = config.into();
    let mut out: Vec<Box<dyn Isolator>> = Vec::new();
    let mut subsystems: Vec<Subsystem> = Vec::new();
    let mut cgroups_at = None;
    for name in config.isolation {
        if let Some(sub) = name.strip_prefix("cgroups/") {
            cgroups_at.get_or_insert(out.len());
            match sub {
                "all" => subsystems.extend(Subsystem::ALL.into_iter().chain([Subsystem::Devices])),
                other => subsystems.push(
                    Subsystem::from_isolator(other)
                        .ok_or_else(|| IsolatorError::Unknown(name.clone()))?,
                ),
            }
            continue;
        }
        out.push(match name.as_str() {
            "filesystem/posix" => Box::new(FilesystemPosix),
            "filesystem/linux" => Box::new(FilesystemLinux),
            "posix/cpu" => Box::new(PosixCpu),
            "posix/mem" => Box::new(PosixMem),
            "namespaces/pid" => Box::new(NamespacesPid),
            "namespaces/ipc" => Box::new(NamespacesIpc),
            "namespaces/uts" => Box::new(NamespacesUts),
            "network/cni" => Box::new(NetworkCni::new(&config, host.runtime_dir.as_deref())?),
            "disk/du" => Box::new(DiskDu::new(&config)),
            "linux/capabilities" => Box::new(SecurityIsolator::Capabilities),
            "linux/seccomp" => Box::new(SecurityIsolator::Seccomp),
            "linux/nnp" => Box::new(SecurityIsolator::NoNewPrivs),
            "posix/rlimits" => Box::new(SecurityIsolator::RLimits),
            other => return Err(IsolatorError::Unknown(other.to_owned())),
        });
    }
    if let Some(at) = cgroups_at {
        let all = config.isolation.iter().any(|n| n == "cgroups/all");
        let isolator =
            CgroupsIsolator::for_config(host.shared_hierarchies()?, &config, &subsystems, all)?
                .with_spares(host.spares.clone());
        out.insert(at, Box::new(isolator));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &str) -> Vec<String> {
        list.split(',').map(str::to_owned).collect()
    }

    #[test]
    fn orders_like_mesos_and_adds_a_filesystem() {
        let got = resolve_isolation(
            &names("namespaces/ipc,namespaces/pid,filesystem/linux"),
            LauncherKind::Linux,
        )
        .unwrap();
        assert_eq!(
            got,
            ["filesystem/linux", "namespaces/pid", "namespaces/ipc"]
        );
        let got = resolve_isolation(&names(""), LauncherKind::Posix).unwrap();
        assert_eq!(got, ["filesystem/posix"]);
    }

    #[test]
    fn rejects_bad_lists_with_the_name() {
        let err = resolve_isolation(&names("cgroups/bogus"), LauncherKind::Linux).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown or unsupported isolator 'cgroups/bogus'"
        );
        assert!(matches!(
            resolve_isolation(&names("namespaces/pid,namespaces/pid"), LauncherKind::Linux),
            Err(IsolatorError::Duplicate(_))
        ));
        assert!(matches!(
            resolve_isolation(
                &names("filesystem/posix,filesystem/linux"),
                LauncherKind::Linux
            ),
            Err(IsolatorError::TwoFilesystems(..))
        ));
        assert!(matches!(
            resolve_isolation(&names("namespaces/pid"), LauncherKind::Linux),
            Err(IsolatorError::Requires { .. })
        ));
        let err = resolve_isolation(&names("filesystem/linux"), LauncherKind::Posix).unwrap_err();
        assert_eq!(
            err.to_string(),
            "isolator 'filesystem/linux' needs the linux launcher, not 'posix'"
        );
    }

    #[test]
    fn resource_isolators_take_their_place_in_mesos_order() {
        let got = resolve_isolation(
            &names("disk/du,namespaces/pid,cgroups/mem,filesystem/linux,cgroups/cpu,posix/cpu"),
            LauncherKind::Linux,
        )
        .unwrap();
        assert_eq!(
            got,
            [
                "filesystem/linux",
                "posix/cpu",
                "cgroups/cpu",
                "cgroups/mem",
                "namespaces/pid",
                "disk/du"
            ]
        );
        // cgroups/all swallows the single subsystems; aliases expand.
        let got =
            resolve_isolation(&names("cgroups/pids,cgroups/all"), LauncherKind::Posix).unwrap();
        assert_eq!(got, ["filesystem/posix", "cgroups/all"]);
        let got = resolve_isolation(&names("process,posix/disk"), LauncherKind::Posix).unwrap();
        assert_eq!(
            got,
            ["filesystem/posix", "posix/cpu", "posix/mem", "disk/du"]
        );
        assert!(matches!(
            resolve_isolation(&names("cgroups,cgroups/mem"), LauncherKind::Linux),
            Err(IsolatorError::Duplicate(_))
        ));
    }

    #[test]
    fn defaults_are_valid_for_their_launcher() {
        for l in [LauncherKind::Linux, LauncherKind::Posix] {
            let d = default_isolation(l);
            assert_eq!(resolve_isolation(&d, l).unwrap(), d);
        }
    }
}
