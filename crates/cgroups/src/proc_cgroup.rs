//! Which cgroups a process is in, read from `/proc/<pid>/cgroup`.
//!
//! The kernel writes one line per hierarchy (cgroups(7), "/proc/[pid]/cgroup"):
//!
//! * `hierarchy-ID:controller-list:cgroup-path` for a v1 hierarchy, e.g.
//!   `4:memory:/docker/abc`, `3:cpu,cpuacct:/x`, or a named hierarchy
//!   without controllers (`1:name=systemd:/user.slice`);
//! * `0::cgroup-path` for the unified (v2) hierarchy.
//!
//! The path is relative to the root of the hierarchy (as seen from the
//! reader's cgroup namespace) and may itself contain `:`.
//! [`Hierarchies::process_cgroup`](crate::Hierarchies::process_cgroup) turns
//! it into the directory under the hierarchy's mount point.
//!
//! The proc root is injected ([`ProcCgroups::read`]) so that tests read
//! fixture trees.

use std::path::Path;

use crate::cgroup::{Cgroup, read_limited};
use crate::error::Error;
use crate::hierarchy::Controller;

/// The most we read of `/proc/<pid>/cgroup`: one line per hierarchy (at most
/// 16 v1 hierarchies plus the unified one), each path at most `PATH_MAX`.
const PROC_CGROUP_LIMIT: u64 = 1 << 20;

/// One line of `/proc/<pid>/cgroup`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcCgroupLine {
    /// The hierarchy id; 0 for the unified hierarchy.
    pub hierarchy_id: u32,
    /// The controllers bound to the hierarchy, as the kernel names them
    /// (`cpu`, `cpuacct`, `name=systemd` for a named hierarchy); empty for
    /// the unified hierarchy.
    pub controllers: Vec<String>,
    /// The cgroup path relative to the hierarchy's root; `/` is the root.
    pub path: String,
}

/// The parsed `/proc/<pid>/cgroup` of one process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcCgroups {
    lines: Vec<ProcCgroupLine>,
}

impl ProcCgroups {
    /// Parses the text of `/proc/<pid>/cgroup`. Lines that are not
    /// `<id>:<controllers>:<path>` with a numeric id are skipped.
    pub fn parse(text: &str) -> Self {
        let lines = text
            .lines()
            .filter_map(|line| {
                let mut fields = line.splitn(3, ':');
                let hierarchy_id = fields.next()?.parse().ok()?;
                let controllers = fields.next()?;
                let path = fields.next()?;
                Some(ProcCgroupLine {
                    hierarchy_id,
                    controllers: controllers
                        .split(',')
                        .filter(|name| !name.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    path: path.to_owned(),
                })
            })
            .collect();
        ProcCgroups { lines }
    }

    /// Reads and parses `<proc_root>/<pid>/cgroup` (`proc_root` is normally
    /// `/proc`).
    pub fn read(proc_root: &Path, pid: u32) -> Result<Self, Error> {
        let path = proc_root.join(pid.to_string()).join("cgroup");
        Ok(Self::parse(&read_limited(&path, PROC_CGROUP_LIMIT)?))
    }

    /// Every line, in file order.
    pub fn lines(&self) -> &[ProcCgroupLine] {
        &self.lines
    }

    /// The process's path in the v1 hierarchy that carries `controller`.
    pub fn v1_path(&self, controller: Controller) -> Option<&str> {
        self.lines
            .iter()
            .find(|line| line.controllers.iter().any(|c| c == controller.name()))
            .map(|line| line.path.as_str())
    }

    /// The process's path in the unified hierarchy (the `0::` line).
    pub fn unified_path(&self) -> Option<&str> {
        self.lines
            .iter()
            .find(|line| line.hierarchy_id == 0 && line.controllers.is_empty())
            .map(|line| line.path.as_str())
    }
}

/// A process's cgroup for one controller, found by
/// [`Hierarchies::process_cgroup`](crate::Hierarchies::process_cgroup).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessCgroup {
    /// The cgroup directory holding the controller's files.
    pub cgroup: Cgroup,
    /// The process's path in the hierarchy as `/proc/<pid>/cgroup` gives
    /// it, before the mount's root is taken off.
    pub path: String,
}

impl ProcessCgroup {
    /// Whether the process is in the hierarchy's root cgroup, as processes
    /// outside any container are (and a container's are while it is being
    /// destroyed).
    pub fn is_root(&self) -> bool {
        self.path == "/"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_v1_named_and_unified_lines() {
        let procs = ProcCgroups::parse(
            "4:memory:/a\n3:cpu,cpuacct:/b:c\n1:name=systemd:/s\n0::/d\ngarbage\nx:cpu:/e\n",
        );
        let lines = procs.lines();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[1].controllers, ["cpu", "cpuacct"]);
        assert_eq!(lines[1].path, "/b:c");
        assert_eq!(lines[2].controllers, ["name=systemd"]);
        assert_eq!(lines[3].hierarchy_id, 0);
        assert!(lines[3].controllers.is_empty());
        assert_eq!(procs.v1_path(Controller::Memory), Some("/a"));
        assert_eq!(procs.v1_path(Controller::Cpuacct), Some("/b:c"));
        assert_eq!(procs.v1_path(Controller::Pids), None);
        assert_eq!(procs.unified_path(), Some("/d"));
        assert_eq!(ProcCgroups::parse("4:memory:/a\n").unified_path(), None);
    }

    #[test]
    fn read_names_the_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = ProcCgroups::read(dir.path(), 7).unwrap_err();
        assert!(e.is_not_found(), "{e}");
        assert!(e.to_string().contains("7/cgroup"), "{e}");
    }

    #[test]
    fn read_refuses_an_oversized_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("7")).unwrap();
        let line = "0::/a\n";
        let too_long = line.repeat(usize::try_from(PROC_CGROUP_LIMIT).unwrap() / line.len() + 1);
        std::fs::write(dir.path().join("7/cgroup"), too_long).unwrap();
        let e = ProcCgroups::read(dir.path(), 7).unwrap_err();
        assert!(matches!(e, Error::TooLarge { .. }), "{e}");
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC*") {
            let procs = ProcCgroups::parse(&text);
            let _ = procs.v1_path(Controller::Cpu);
            let _ = procs.unified_path();
        }
    }
}
