//! cgroups for Phobos: v1, v2 and hybrid hosts.
//!
//! * [`Hierarchies`] reads the mount table (`/proc/self/mountinfo`, see
//!   proc(5) and cgroups(7)) and says, per controller, which hierarchy holds
//!   it on this host: a v1 hierarchy, or cgroup2. With a process's
//!   `/proc/<pid>/cgroup` ([`ProcCgroups`]) it finds that process's cgroup
//!   directory per controller ([`Hierarchies::process_cgroup`]).
//! * [`Cgroup`] is a handle on one cgroup directory: create (enabling v2
//!   controllers on the way), join, list, freeze/thaw, kill everything
//!   (`cgroup.kill`, or freeze → SIGKILL → thaw as Mesos does), remove.
//! * [`device_bpf`] restricts device access on cgroup2 with a generated
//!   `BPF_PROG_TYPE_CGROUP_DEVICE` program (bpf(2)).
//! * [`cpu`] and [`memory`] compute Mesos's limits and write them for v1 or
//!   v2; [`stats`] parses the statistics files, read by [`files::Reader`]
//!   below open parent directories when many are read; [`oom`] waits for
//!   OOM kills.
//!
//! Observed on the project host (Linux 6.18, hybrid): a SIGKILLed process
//! that is still a zombie of its parent is not listed in `cgroup.procs`
//! (v1 freezer or cgroup2) and its cgroup can already be removed; older
//! kernels list such zombies, so callers that own the processes reap them
//! while [`Cgroup::kill_all`] waits. Every cgroup2 child has `cgroup.kill`
//! and `cgroup.freeze` here; the cgroup2 root offers only `hugetlb`.
//!
//! All kernel access is file I/O under an injected mount point, so the logic
//! is unit-tested on fixture trees; tests named `privileged_*` drive the real
//! kernel as root.

mod cgroup;
pub mod cpu;
pub mod device_bpf;
mod error;
pub mod files;
mod hierarchy;
mod kill_many;
mod mark;
pub mod memory;
pub mod oom;
pub mod perf;
mod proc_cgroup;
pub mod spare;
pub mod stats;

pub use cgroup::{Cgroup, FREEZE_RETRY_INTERVAL, LEAF};
pub use error::Error;
pub use hierarchy::{Controller, Hierarchies, Layout, MOUNTINFO, V1Hierarchy, Version};
pub use kill_many::{Emptying, wait_all as wait_all_emptied};
pub use mark::{CONTAINER_MARK, OWNER_MARK};
pub use proc_cgroup::{ProcCgroupLine, ProcCgroups, ProcessCgroup};
