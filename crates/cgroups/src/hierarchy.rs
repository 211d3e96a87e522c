//! Which cgroup hierarchies this host has, read from `/proc/self/mountinfo`.
//!
//! Linux offers two cgroup filesystems (cgroups(7)):
//!
//! * **cgroup v1** (`-t cgroup`): one hierarchy per mount, each holding the
//!   controllers named in its super options (`rw,cpu`, `rw,cpu,cpuacct`, or a
//!   controller-less named hierarchy such as `name=systemd`). Controllers are
//!   *discovered per controller*: never assume the usual `cpu,cpuacct`
//!   co-mount; some hosts (this project's CI) mount them separately.
//! * **cgroup v2** (`-t cgroup2`, Documentation/admin-guide/cgroup-v2.rst):
//!   one unified hierarchy; the controllers it can offer are listed in the
//!   root's `cgroup.controllers`. A controller bound to a v1 hierarchy is not
//!   available on v2 at the same time.
//!
//! Hosts are *legacy* (v1 only), *hybrid* (v1 plus a cgroup2 mount, usually
//! at `/sys/fs/cgroup/unified`, which may still hold controllers such as
//! hugetlb) or *unified* (v2 only). [`Hierarchies::locate`] answers, per
//! controller, where it lives on this host.
//!
//! A process's own cgroup for a controller comes from its
//! `/proc/<pid>/cgroup` ([`ProcCgroups`]): [`Hierarchies::process_cgroup`]
//! joins its path in the hierarchy that holds the controller to that
//! hierarchy's mount point, less the mount's root (a bind mount of a
//! subtree shows only paths below it).
//!
//! The mountinfo text is injected ([`Hierarchies::from_mountinfo`]), or the
//! proc and filesystem roots are ([`Hierarchies::detect_at`]), so that tests
//! can point mount points at fixture trees in temporary directories.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use crate::cgroup::{Cgroup, read_limited};
use crate::error::Error;
use crate::proc_cgroup::{ProcCgroups, ProcessCgroup};

/// cgroup version of one hierarchy.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Version {
    /// cgroup v1: a hierarchy per mounted controller set.
    V1,
    /// cgroup v2: the unified hierarchy.
    V2,
}

/// How the host mounts cgroups.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Layout {
    /// Only v1 hierarchies.
    Legacy,
    /// v1 hierarchies with controllers, plus a cgroup2 mount (often `unified`).
    Hybrid,
    /// Only cgroup2 (named v1 hierarchies without controllers may coexist).
    Unified,
}

/// A cgroup controller (subsystem), by its kernel name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Controller {
    /// `cpu`: shares/weight and CFS bandwidth.
    Cpu,
    /// `cpuacct`: v1 CPU accounting (core `cpu.stat` on v2).
    Cpuacct,
    /// `cpuset`: CPU and memory-node placement.
    Cpuset,
    /// `memory`: limits, statistics, OOM.
    Memory,
    /// `devices`: v1 device access lists (eBPF on v2, not handled here).
    Devices,
    /// `freezer`: v1 freezing (core `cgroup.freeze` on v2).
    Freezer,
    /// `blkio`: v1 block I/O.
    Blkio,
    /// `pids`: process-number limit.
    Pids,
    /// `hugetlb`: huge page limits.
    Hugetlb,
    /// `io`: v2 block I/O.
    Io,
    /// `net_cls`: v1 only; a class identifier (`net_cls.classid`) on the
    /// container's packets for traffic control and iptables.
    NetCls,
    /// `net_prio`: v1 only; per-interface socket priorities.
    NetPrio,
    /// `perf_event`: groups processes for `perf -G`; on cgroup2 it is
    /// implicit (every cgroup, not listed in `cgroup.controllers`).
    PerfEvent,
}

impl Controller {
    /// Every controller this crate knows.
    pub const ALL: [Controller; 13] = [
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Cpuset,
        Controller::Memory,
        Controller::Devices,
        Controller::Freezer,
        Controller::Blkio,
        Controller::Pids,
        Controller::Hugetlb,
        Controller::Io,
        Controller::NetCls,
        Controller::NetPrio,
        Controller::PerfEvent,
    ];

    /// The kernel's name for the controller.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Cpuacct => "cpuacct",
            Controller::Cpuset => "cpuset",
            Controller::Memory => "memory",
            Controller::Devices => "devices",
            Controller::Freezer => "freezer",
            Controller::Blkio => "blkio",
            Controller::Pids => "pids",
            Controller::Hugetlb => "hugetlb",
            Controller::Io => "io",
            Controller::NetCls => "net_cls",
            Controller::NetPrio => "net_prio",
            Controller::PerfEvent => "perf_event",
        }
    }

    /// The controller with this kernel name, if we know it.
    pub fn from_name(name: &str) -> Option<Self> {
        Controller::ALL.into_iter().find(|c| c.name() == name)
    }

    /// True for controllers that are enabled through `cgroup.subtree_control`
    /// on cgroup2. cpuacct and freezer are core features of every v2 cgroup
    /// (`cpu.stat`, `cgroup.freeze`); devices is eBPF there.
    pub fn is_v2_controller(self) -> bool {
        matches!(
            self,
            Controller::Cpu
                | Controller::Cpuset
                | Controller::Memory
                | Controller::Pids
                | Controller::Hugetlb
                | Controller::Io
        )
    }
}

impl fmt::Display for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One mounted v1 hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V1Hierarchy {
    /// Where it is mounted.
    pub mount: PathBuf,
    /// The cgroup at the mount's root (`/` unless this is a bind mount of a
    /// subtree, as inside some containers).
    pub root: PathBuf,
    /// The controllers we know that are attached to it.
    pub controllers: Vec<Controller>,
    /// Every subsystem name in its super options, including ones we do not
    /// model (`rdma`, `misc`, …).
    pub subsystems: Vec<String>,
    /// `name=` of a named hierarchy (`systemd`).
    pub name: Option<String>,
    /// The `major:minor` of the superblock; identifies the hierarchy.
    device: String,
}

/// The cgroup hierarchies of a host.
#[derive(Clone, Debug)]
pub struct Hierarchies {
    source: PathBuf,
    v1: Vec<V1Hierarchy>,
    unified: Option<UnifiedMount>,
    /// Controllers listed in the cgroup2 root's `cgroup.controllers`.
    unified_controllers: Vec<String>,
    /// Why `cgroup.controllers` could not be read, if it could not.
    unified_controllers_error: Option<String>,
}

/// The cgroup2 mount.
#[derive(Clone, Debug)]
struct UnifiedMount {
    /// Where it is mounted.
    mount: PathBuf,
    /// The cgroup at the mount's root (`/` unless a subtree is bound).
    root: PathBuf,
}

/// Where the kernel puts the current process's mount table.
pub const MOUNTINFO: &str = "/proc/self/mountinfo";

/// Where proc is normally mounted.
const PROC: &str = "/proc";

/// The most we read of mountinfo: hosts running many containers have
/// thousands of mounts, at a few hundred bytes a line.
const MOUNTINFO_LIMIT: u64 = 64 << 20;

/// `mount_point` of mountinfo as a path under `fs_root`.
fn under_root(fs_root: &Path, mount_point: &str) -> PathBuf {
    let mount_point = Path::new(mount_point);
    let relative = mount_point.strip_prefix("/").unwrap_or(mount_point);
    if relative.as_os_str().is_empty() {
        fs_root.to_path_buf()
    } else {
        fs_root.join(relative)
    }
}

/// Options of a v1 super block that are not subsystem names.
fn is_v1_option(opt: &str) -> bool {
    matches!(
        opt,
        "rw" | "ro" | "noprefix" | "xattr" | "clone_children" | "cpuset_v2_mode" | "none" | "all"
    ) || opt.starts_with("release_agent=")
        || opt.starts_with("name=")
}

/// Undo mountinfo's octal escapes (`\040` for a space, etc.).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The parts of one mountinfo line we use.
struct MountLine<'a> {
    device: &'a str,
    root: String,
    mount_point: String,
    fs_type: &'a str,
    super_options: &'a str,
}

fn parse_line(line: &str) -> Result<MountLine<'_>, String> {
    let (before, after) = line
        .split_once(" - ")
        .ok_or_else(|| "no \" - \" separator".to_string())?;
    let fields: Vec<&str> = before.split_whitespace().collect();
    if fields.len() < 6 {
        return Err(format!(
            "{} fields before the separator, expected at least 6",
            fields.len()
        ));
    }
    // The kernel puts one space between fields and escapes spaces inside
    // them, so a mount with an empty source reads `tmpfs  rw`: split on each
    // space, not on runs of them.
    let mut after = after.split(' ');
    let (Some(fs_type), Some(_source), Some(super_options)) =
        (after.next(), after.next(), after.next())
    else {
        return Err("fewer than 3 fields after the separator".to_string());
    };
    Ok(MountLine {
        device: fields[2],
        root: unescape(fields[3]),
        mount_point: unescape(fields[4]),
        fs_type,
        super_options,
    })
}

impl Hierarchies {
    /// Reads `/proc/self/mountinfo` and the cgroup2 root's controllers.
    pub fn detect() -> Result<Self, Error> {
        Self::detect_at(Path::new(PROC), Path::new("/"))
    }

    /// Reads `<proc_root>/self/mountinfo`, taking every mount point in it as
    /// a path under `fs_root` (normally `/proc` and `/`; a fixture tree in
    /// tests), and the cgroup2 root's controllers.
    pub fn detect_at(proc_root: &Path, fs_root: &Path) -> Result<Self, Error> {
        let source = proc_root.join("self").join("mountinfo");
        let text = read_limited(&source, MOUNTINFO_LIMIT)?;
        Self::parse(&text, source, fs_root)
    }

    /// Builds from injected mountinfo text. Mount points may be anywhere (a
    /// temporary directory in tests); the cgroup2 mount's `cgroup.controllers`
    /// is read from the filesystem.
    pub fn from_mountinfo(text: &str) -> Result<Self, Error> {
        Self::parse(text, PathBuf::from("<mountinfo>"), Path::new("/"))
    }

    fn parse(text: &str, source: PathBuf, fs_root: &Path) -> Result<Self, Error> {
        let mut v1: Vec<V1Hierarchy> = Vec::new();
        let mut unified: Option<UnifiedMount> = None;
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let m = parse_line(line).map_err(|reason| Error::Mountinfo {
                path: source.clone(),
                line: index + 1,
                reason,
            })?;
            match m.fs_type {
                "cgroup" => {
                    let opts: Vec<&str> = m.super_options.split(',').collect();
                    let subsystems: Vec<String> = opts
                        .iter()
                        .filter(|o| !is_v1_option(o))
                        .map(|o| o.to_string())
                        .collect();
                    let name = opts
                        .iter()
                        .find_map(|o| o.strip_prefix("name="))
                        .map(str::to_string);
                    let controllers = subsystems
                        .iter()
                        .filter_map(|s| Controller::from_name(s))
                        .collect();
                    let hierarchy = V1Hierarchy {
                        mount: under_root(fs_root, &m.mount_point),
                        root: PathBuf::from(&m.root),
                        controllers,
                        subsystems,
                        name,
                        device: m.device.to_string(),
                    };
                    // The same hierarchy can be mounted (bound) more than
                    // once; keep one mount, preferring the one of its root.
                    match v1.iter_mut().find(|h| h.device == hierarchy.device) {
                        Some(existing) => {
                            if existing.root != Path::new("/") && hierarchy.root == Path::new("/") {
                                *existing = hierarchy;
                            }
                        }
                        None => v1.push(hierarchy),
                    }
                }
                "cgroup2" => {
                    // Keep one mount, preferring the one of its root.
                    let at_root = |u: &UnifiedMount| u.root == Path::new("/");
                    let mount = UnifiedMount {
                        mount: under_root(fs_root, &m.mount_point),
                        root: PathBuf::from(&m.root),
                    };
                    if unified
                        .as_ref()
                        .is_none_or(|u| !at_root(u) && at_root(&mount))
                    {
                        unified = Some(mount);
                    }
                }
                _ => {}
            }
        }
        if v1.is_empty() && unified.is_none() {
            return Err(Error::NotMounted { path: source });
        }
        let (unified_controllers, unified_controllers_error) = match &unified {
            Some(UnifiedMount { mount, .. }) => {
                let file = mount.join("cgroup.controllers");
                match fs::read_to_string(&file) {
                    Ok(text) => (text.split_whitespace().map(str::to_string).collect(), None),
                    Err(e) => (
                        Vec::new(),
                        Some(format!("cannot read {}: {e}", file.display())),
                    ),
                }
            }
            None => (Vec::new(), None),
        };
        Ok(Hierarchies {
            source,
            v1,
            unified,
            unified_controllers,
            unified_controllers_error,
        })
    }

    /// Legacy, hybrid or unified.
    pub fn layout(&self) -> Layout {
        let v1_controllers = self.v1.iter().any(|h| !h.subsystems.is_empty());
        match (v1_controllers, self.unified.is_some()) {
            (true, true) => Layout::Hybrid,
            (false, true) => Layout::Unified,
            _ => Layout::Legacy,
        }
    }

    /// Every mounted v1 hierarchy.
    pub fn v1_hierarchies(&self) -> &[V1Hierarchy] {
        &self.v1
    }

    /// The v1 hierarchy holding controller `c`.
    pub fn v1_mount(&self, c: Controller) -> Option<&Path> {
        self.v1_hierarchy(c).map(|h| h.mount.as_path())
    }

    fn v1_hierarchy(&self, c: Controller) -> Option<&V1Hierarchy> {
        self.v1.iter().find(|h| h.controllers.contains(&c))
    }

    /// The named v1 hierarchy `name=<name>` (e.g. `systemd`).
    pub fn v1_named(&self, name: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|h| h.name.as_deref() == Some(name))
            .map(|h| h.mount.as_path())
    }

    /// The cgroup2 mount.
    pub fn unified_mount(&self) -> Option<&Path> {
        self.unified.as_ref().map(|u| u.mount.as_path())
    }

    /// Controller names the cgroup2 root offers (its `cgroup.controllers`).
    pub fn unified_controllers(&self) -> &[String] {
        &self.unified_controllers
    }

    fn unified_offers(&self, c: Controller) -> bool {
        if self.unified.is_none() {
            return false;
        }
        match c {
            // Core features of every non-root v2 cgroup.
            Controller::Cpuacct | Controller::Freezer => true,
            // Implicit on cgroup2: every cgroup, never in cgroup.controllers.
            Controller::PerfEvent => true,
            Controller::Devices | Controller::Blkio => false,
            Controller::NetCls | Controller::NetPrio => false,
            _ => self.unified_controllers.iter().any(|n| n == c.name()),
        }
    }

    /// Where controller `c` lives on this host: a v1 hierarchy if it has
    /// one, else cgroup2 if its `cgroup.controllers` lists it (cpuacct and
    /// freezer are core features of cgroup2: `cpu.stat`, `cgroup.freeze`).
    /// `None` when neither; [`Hierarchies::missing_reason`] says why.
    pub fn locate(&self, c: Controller) -> Option<(Version, &Path)> {
        self.home(c).map(|(version, mount, _)| (version, mount))
    }

    /// [`Hierarchies::locate`], with the cgroup at the mount's root.
    fn home(&self, c: Controller) -> Option<(Version, &Path, &Path)> {
        if let Some(h) = self.v1_hierarchy(c) {
            return Some((Version::V1, &h.mount, &h.root));
        }
        if self.unified_offers(c) {
            return self
                .unified
                .as_ref()
                .map(|u| (Version::V2, u.mount.as_path(), u.root.as_path()));
        }
        None
    }

    /// The cgroup of controller `c` that the process whose
    /// `/proc/<pid>/cgroup` is `procs` belongs to: its path in the hierarchy
    /// [`Hierarchies::locate`] gives for `c`, below that hierarchy's mount.
    /// `None` when the host has no home for `c`, the process is in no
    /// cgroup of that hierarchy, or its cgroup is outside the mounted
    /// subtree.
    pub fn process_cgroup(&self, procs: &ProcCgroups, c: Controller) -> Option<ProcessCgroup> {
        let (version, mount, root) = self.home(c)?;
        let path = match version {
            Version::V1 => procs.v1_path(c)?,
            Version::V2 => procs.unified_path()?,
        };
        let below_root = Path::new(path).strip_prefix(root).ok()?;
        Some(ProcessCgroup {
            cgroup: Cgroup::new(mount, below_root, version),
            path: path.to_owned(),
        })
    }

    /// Why [`Hierarchies::locate`] finds no home for `c`; `None` if it does.
    pub fn missing_reason(&self, c: Controller) -> Option<String> {
        if self.locate(c).is_some() {
            return None;
        }
        let v1 = "no cgroup v1 hierarchy has it attached";
        let reason = match self.unified_mount() {
            None => format!("{c}: {v1} and no cgroup2 filesystem is mounted"),
            Some(mount) => match c {
                Controller::Devices => format!(
                    "devices: {v1}, and on cgroup2 device control is an eBPF program, \
                     not a controller"
                ),
                Controller::Blkio => format!("blkio: {v1}; on cgroup2 use the io controller"),
                Controller::NetCls | Controller::NetPrio => {
                    format!("{c}: {v1}, and cgroup2 has no {c} controller")
                }
                _ => match &self.unified_controllers_error {
                    Some(e) => format!("{c}: {v1}, and {e}"),
                    None => format!(
                        "{c}: {v1}, and {} does not list it in cgroup.controllers \
                         (it offers: {})",
                        mount.display(),
                        if self.unified_controllers.is_empty() {
                            "nothing".to_string()
                        } else {
                            self.unified_controllers.join(" ")
                        }
                    ),
                },
            },
        };
        Some(reason)
    }

    /// A handle on the cgroup `rel` of controller `c`, wherever it lives.
    pub fn cgroup(&self, c: Controller, rel: &Path) -> Option<Cgroup> {
        self.locate(c)
            .map(|(version, mount)| Cgroup::new(mount, rel, version))
    }

    /// The cgroup that freezes and kills a container named `rel` (e.g.
    /// `phobos/<id>`): the v1 freezer hierarchy when mounted, else cgroup2
    /// (`cgroup.freeze` / `cgroup.kill`).
    pub fn freezer_cgroup(&self, rel: &Path) -> Option<Cgroup> {
        if let Some(mount) = self.v1_mount(Controller::Freezer) {
            return Some(Cgroup::new(mount, rel, Version::V1));
        }
        self.unified_mount()
            .map(|mount| Cgroup::new(mount, rel, Version::V2))
    }

    /// Where the mountinfo came from (for messages).
    pub fn source(&self) -> &Path {
        &self.source
    }
}
