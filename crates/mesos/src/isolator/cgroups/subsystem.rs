//! The `cgroups/*` subsystems and the controllers each one needs, given
//! where the host mounts them (cgroups(7)).

use phobos_cgroups::{Controller, Hierarchies, Version};

/// One `cgroups/<name>` subsystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subsystem {
    /// `cgroups/cpu`: the cpu and cpuacct controllers.
    Cpu,
    /// `cgroups/mem`: the memory controller.
    Mem,
    /// `cgroups/pids`: the pids controller.
    Pids,
    /// `cgroups/blkio`: blkio (v1) or io (v2).
    Blkio,
    /// `cgroups/devices`: the v1 devices controller, or on cgroup2 a device
    /// eBPF program (`crate::security::devices`, `phobos_cgroups::device_bpf`).
    Devices,
    /// `cgroups/cpuset`: membership of a cpuset cgroup; on v1 a new one
    /// inherits its parent's `cpuset.cpus` and `cpuset.mems` (it is empty,
    /// so unusable, otherwise), on cgroup2 the controller is enabled and
    /// the effective sets are the parent's. Mesos sets no values either.
    Cpuset,
    /// `cgroups/hugetlb`: membership of a hugetlb cgroup (Mesos defines no
    /// huge page resource, so no limit is written), on v1 or on cgroup2
    /// where the container's other controllers are; a hybrid host's
    /// hugetlb on `/sys/fs/cgroup/unified` beside v1 resource controllers
    /// is left alone (its cgroup2 tree is systemd's).
    Hugetlb,
    /// `cgroups/net_cls`: membership of a v1 net_cls cgroup (cgroup2 has
    /// none), and with `cgroups_net_cls_primary_handle` a classid of its
    /// own (`super::net_cls`).
    NetCls,
    /// `cgroups/net_prio`: membership of a v1 net_prio cgroup (cgroup2 has
    /// none); Mesos writes no `net_prio.ifpriomap` either.
    NetPrio,
    /// `cgroups/perf_event`: membership of a perf_event cgroup, so that
    /// `perf stat -G <cgroup>` counts the container. On cgroup2 every
    /// cgroup is one (the controller is implicit), so nothing more is made;
    /// a hybrid host's perf_event on its cgroup2 tree (systemd's) beside v1
    /// resource controllers is left alone, as hugetlb is.
    PerfEvent,
}

impl Subsystem {
    /// Every resource subsystem (`cgroups/all` loads these and
    /// [`Subsystem::Devices`]).
    pub const ALL: [Subsystem; 9] = [
        Subsystem::Cpu,
        Subsystem::Mem,
        Subsystem::Pids,
        Subsystem::Blkio,
        Subsystem::Cpuset,
        Subsystem::Hugetlb,
        Subsystem::NetCls,
        Subsystem::NetPrio,
        Subsystem::PerfEvent,
    ];

    /// The subsystem for the part after `cgroups/`.
    pub fn from_isolator(name: &str) -> Option<Self> {
        match name {
            "cpu" => Some(Subsystem::Cpu),
            "mem" => Some(Subsystem::Mem),
            "pids" => Some(Subsystem::Pids),
            "blkio" => Some(Subsystem::Blkio),
            "devices" => Some(Subsystem::Devices),
            "cpuset" => Some(Subsystem::Cpuset),
            "hugetlb" => Some(Subsystem::Hugetlb),
            "net_cls" => Some(Subsystem::NetCls),
            "net_prio" => Some(Subsystem::NetPrio),
            "perf_event" => Some(Subsystem::PerfEvent),
            _ => None,
        }
    }

    pub fn isolator_name(self) -> &'static str {
        match self {
            Subsystem::Cpu => "cgroups/cpu",
            Subsystem::Mem => "cgroups/mem",
            Subsystem::Pids => "cgroups/pids",
            Subsystem::Blkio => "cgroups/blkio",
            Subsystem::Devices => "cgroups/devices",
            Subsystem::Cpuset => "cgroups/cpuset",
            Subsystem::Hugetlb => "cgroups/hugetlb",
            Subsystem::NetCls => "cgroups/net_cls",
            Subsystem::NetPrio => "cgroups/net_prio",
            Subsystem::PerfEvent => "cgroups/perf_event",
        }
    }

    /// The controllers this subsystem needs, given where they live.
    pub(super) fn controllers(self, h: &Hierarchies) -> Vec<Controller> {
        match self {
            Subsystem::Cpu => vec![Controller::Cpu, Controller::Cpuacct],
            Subsystem::Mem => vec![Controller::Memory],
            Subsystem::Pids => vec![Controller::Pids],
            Subsystem::Blkio => {
                if h.locate(Controller::Blkio).is_some() {
                    vec![Controller::Blkio]
                } else {
                    vec![Controller::Io]
                }
            }
            // Only v1 has a devices controller; on cgroup2 it is a program
            // attached to the container's cgroup (see `CgroupsIsolator::cgroups`).
            Subsystem::Devices => match h.locate(Controller::Devices) {
                Some(_) => vec![Controller::Devices],
                None => Vec::new(),
            },
            Subsystem::Cpuset => vec![Controller::Cpuset],
            Subsystem::Hugetlb => {
                let v2 = |c| h.locate(c).map(|l| l.0) == Some(Version::V2);
                if v2(Controller::Hugetlb) && !v2(Controller::Memory) {
                    Vec::new()
                } else {
                    vec![Controller::Hugetlb]
                }
            }
            Subsystem::NetCls => vec![Controller::NetCls],
            Subsystem::NetPrio => vec![Controller::NetPrio],
            // On cgroup2 the container's own cgroup is its perf_event one.
            Subsystem::PerfEvent => match h.locate(Controller::PerfEvent) {
                Some((Version::V2, _)) => Vec::new(),
                _ => vec![Controller::PerfEvent],
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isolator::CgroupsIsolator;
    use phobos_core::IsolatorFlags;

    /// A hybrid host: memory and cpuset on v1, hugetlb on cgroup2.
    fn hybrid() -> (tempfile::TempDir, Hierarchies) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        std::fs::create_dir(dir.path().join("unified")).unwrap();
        std::fs::write(dir.path().join("unified/cgroup.controllers"), "hugetlb\n").unwrap();
        let mountinfo = format!(
            "30 25 0:26 / {d}/memory rw shared:5 - cgroup cgroup rw,memory\n\
             31 25 0:27 / {d}/cpuset rw shared:6 - cgroup cgroup rw,cpuset\n\
             32 25 0:28 / {d}/unified rw shared:7 - cgroup2 cgroup2 rw\n"
        );
        (dir, Hierarchies::from_mountinfo(&mountinfo).unwrap())
    }

    #[test]
    fn hugetlb_on_a_hybrid_hosts_cgroup2_is_left_alone() {
        let (_dir, h) = hybrid();
        assert_eq!(Subsystem::Cpuset.controllers(&h), [Controller::Cpuset]);
        assert!(Subsystem::Hugetlb.controllers(&h).is_empty());
        let all = CgroupsIsolator::with_hierarchies(
            h.clone(),
            "r",
            &Subsystem::ALL,
            true,
            IsolatorFlags::default(),
        )
        .unwrap();
        assert_eq!(all.subsystems(), [Subsystem::Mem, Subsystem::Cpuset]);
        let err = CgroupsIsolator::with_hierarchies(
            h,
            "r",
            &[Subsystem::Hugetlb],
            false,
            IsolatorFlags::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("cgroups/hugetlb"), "{err}");
        assert!(err.to_string().contains("hybrid"), "{err}");
        assert_eq!(Subsystem::from_isolator("cpuset"), Some(Subsystem::Cpuset));
        assert_eq!(Subsystem::Hugetlb.isolator_name(), "cgroups/hugetlb");
    }
}
