//! The limit watches the init helper keeps while the command runs, so a
//! limitation is recorded even when no other phobos process is alive:
//!
//! * OOM (`cgroups/mem`): a `phobos_cgroups::oom::OomWatcher` on the
//!   container's memory cgroup — a v1 eventfd registered on
//!   `memory.oom_control` through `cgroup.event_control`, or v2
//!   `memory.events` itself (`POLLPRI` on a change) — polled together with init's signalfd (poll(2)).
//!   When the command is reaped, the `oom_kill` counter is compared once
//!   more, since the exit (SIGCHLD) and the OOM event race.
//! * disk (`disk/du` with enforcement): the sandbox is measured every
//!   `container_disk_watch_interval`, as the poll timeout.
//!
//! * the log pump (`crate::log_pump`, the `logrotate` logger): the
//!   command's stdout and stderr pipes, emptied into the sandbox's files as
//!   they fill.
//!
//! * init's own idle memory: once the command has run for
//!   [`SETTLE`], init hands back what its start left behind (see
//!   [`release_startup_memory`]): glibc's free heap (malloc_trim(3)) and
//!   the main stack's pages below the current frame (madvise(2)
//!   `MADV_DONTNEED`), which parsing the launch info and setting up the
//!   container dirtied and nothing uses again. A short command exits before
//!   this and never pays for it.
//!
//! A watch that cannot be set up is reported on init's stderr (the
//! sandbox's `stderr`) and skipped: the command still runs, as in Mesos when
//! the OOM listener fails.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signalfd::SignalFd;
use phobos_cgroups::Cgroup;
use phobos_cgroups::oom::{OomWatcher, own_oom_kill_count};
use phobos_core::time::millis_rounded_up;

use crate::isolator::{Limitation, disk_limitation, disk_usage, oom_limitation};
use crate::launch_info::{DiskWatch, LaunchInfo};

struct Oom {
    watcher: OomWatcher,
    cgroup: Cgroup,
    /// `oom_kill` when the watch started, where the kernel counts it.
    initial: Option<u64>,
}

struct Disk {
    watch: DiskWatch,
    interval: Duration,
    next: Instant,
}

/// The watches of one container.
pub(crate) struct Watches {
    oom: Option<Oom>,
    disk: Option<Disk>,
    /// The `logrotate` logger's pump, set by init once the command runs.
    pub(crate) pump: Option<crate::log_pump::Pump>,
    /// When init's start-up memory is released, until it is.
    settle: Option<Instant>,
}

/// How long the command runs before init releases its start-up memory.
pub(crate) const SETTLE: Duration = Duration::from_millis(100);

impl Watches {
    pub(crate) fn new(info: &LaunchInfo) -> Self {
        let oom = info.oom_watch.as_ref().and_then(|w| {
            let cgroup = w.cgroup.cgroup();
            match OomWatcher::new(&cgroup) {
                Ok(watcher) => Some(Oom {
                    initial: watcher.initial(),
                    watcher,
                    cgroup,
                }),
                Err(e) => {
                    eprintln!("phobos init: not watching for OOM: {e}");
                    None
                }
            }
        });
        let disk = info.disk_watch.as_ref().map(|w| {
            let interval = Duration::try_from_secs_f64(w.interval_secs)
                .unwrap_or(Duration::from_secs(15))
                .max(Duration::from_millis(10));
            Disk {
                watch: w.clone(),
                interval,
                next: Instant::now(),
            }
        });
        Self {
            oom,
            disk,
            pump: None,
            settle: Some(Instant::now() + SETTLE),
        }
    }

    /// Blocks until a signal is pending (`true`) or a watch needs a look
    /// (`false`: call [`Watches::check`]).
    pub(crate) fn wait_signal(&mut self, signals: &SignalFd) -> bool {
        let now = Instant::now();
        let due = [self.disk.as_ref().map(|d| d.next), self.settle]
            .into_iter()
            .flatten()
            .min();
        let timeout = poll_timeout(now, due);
        let sig_fd: BorrowedFd<'_> = signals.as_fd();
        let mut fds = vec![PollFd::new(sig_fd, PollFlags::POLLIN)];
        let watched = match &self.oom {
            Some(o) => {
                fds.push(PollFd::new(o.watcher.as_fd(), o.watcher.poll_flags()));
                2
            }
            None => 1,
        };
        let pipes: Vec<usize> = match &self.pump {
            Some(pump) => pump
                .fds()
                .map(|(i, fd)| {
                    fds.push(PollFd::new(fd, PollFlags::POLLIN));
                    i
                })
                .collect(),
            None => Vec::new(),
        };
        let ready = |f: &PollFd<'_>| f.revents().is_some_and(|r| !r.is_empty());
        // `true` only with a signal pending: the signalfd blocks. Output
        // alone (or a watch, or the timeout) means a look at the watches,
        // which costs next to nothing when none is due.
        let signalled = match poll(&mut fds, timeout) {
            Ok(0) => false,
            Ok(_) => ready(&fds[0]),
            // EINTR and friends: go round again through the signalfd.
            Err(_) => true,
        };
        let pumped: Vec<usize> = pipes
            .iter()
            .zip(&fds[watched..])
            .filter(|(_, f)| ready(f))
            .map(|(i, _)| *i)
            .collect();
        drop(fds);
        if let Some(pump) = &mut self.pump {
            for i in pumped {
                pump.ready(i);
            }
        }
        if self.settle.is_some_and(|at| Instant::now() >= at) {
            self.settle = None;
            release_startup_memory();
        }
        signalled
    }

    /// Looks at every watch; returns the first limitation hit.
    pub(crate) fn check(&mut self) -> Option<Limitation> {
        if let Some(o) = &mut self.oom
            && matches!(o.watcher.wait(Some(Duration::ZERO)), Ok(true))
        {
            return Some(oom_limitation(&o.cgroup));
        }
        if let Some(d) = &mut self.disk
            && Instant::now() >= d.next
        {
            d.next = Instant::now() + d.interval;
            match disk_usage(&d.watch.path) {
                Ok(used) if used > d.watch.limit_bytes => {
                    return Some(disk_limitation(used, d.watch.limit_bytes));
                }
                Ok(_) => {}
                Err(e) => eprintln!(
                    "phobos init: failed to measure {}: {e}",
                    d.watch.path.display()
                ),
            }
        }
        None
    }

    /// After the command was reaped: an OOM kill the event has not been
    /// read for yet (the exit and the notification race).
    pub(crate) fn final_oom(&mut self) -> Option<Limitation> {
        let o = self.oom.as_mut()?;
        let counted = match (o.initial, own_oom_kill_count(&o.cgroup).ok()) {
            (Some(before), Some(now)) => now > before,
            _ => false,
        };
        if counted || matches!(o.watcher.wait(Some(Duration::ZERO)), Ok(true)) {
            Some(oom_limitation(&o.cgroup))
        } else {
            None
        }
    }
}

/// How far below the current frame the main stack is handed back: the
/// kernel keeps `stack_guard_gap` (1 MiB by default) unmapped below the
/// stack, so this range holds nothing but the stack's own dead pages.
const STACK_RELEASE: usize = 256 * 1024;
/// Left alone just below the current frame: the x86-64 red zone and the
/// frames the poll loop itself goes on to use.
const STACK_KEEP: usize = 16 * 1024;

/// poll(2)'s timeout until `due` (none: wait for a descriptor or a
/// signal), rounded up to whole milliseconds so the wait never ends before
/// `due` (rounded down, the loop spun with a zero timeout, once per
/// container for [`SETTLE`], and at every disk check).
fn poll_timeout(now: Instant, due: Option<Instant>) -> PollTimeout {
    let Some(at) = due else {
        return PollTimeout::NONE;
    };
    let ms = millis_rounded_up(at.saturating_duration_since(now));
    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
}

/// Hands back the memory init's start-up dirtied and will not use again:
/// glibc's free heap pages, and the main stack below the current frame.
/// Init is single-threaded and all its signals are blocked (they arrive
/// through the signalfd), so nothing runs on the stack below this frame
/// while it is zapped; a later deeper call faults in fresh zero pages.
#[inline(never)]
fn release_startup_memory() {
    // SAFETY: malloc_trim(3) only returns free memory to the kernel.
    unsafe { libc::malloc_trim(0) };
    let marker = 0u8;
    let here = std::ptr::addr_of!(marker) as usize;
    let page = 4096;
    let end = here.saturating_sub(STACK_KEEP) & !(page - 1);
    let start = end.saturating_sub(STACK_RELEASE);
    // SAFETY: [start, end) lies below the live part of this thread's
    // stack (by STACK_KEEP) and above the next mapping (the guard gap), so
    // it holds only dead stack pages or nothing; MADV_DONTNEED there drops
    // pages no one reads before writing. Unmapped parts make the call
    // report ENOMEM, which is expected and ignored.
    unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch_info::{CgroupPath, OomWatch};
    use phobos_core::Reason;
    use std::path::Path;

    const EVENTS: &str = "low 0\nhigh 0\nmax 3\noom 0\noom_kill 0\n";

    #[test]
    fn poll_timeout_rounds_up_so_the_wait_never_ends_before_it_is_due() {
        let now = Instant::now();
        let ms = |d: Duration| poll_timeout(now, Some(now + d));
        assert_eq!(
            ms(Duration::from_micros(3_500)),
            PollTimeout::try_from(4u32).unwrap()
        );
        assert_eq!(
            ms(Duration::from_micros(200)),
            PollTimeout::try_from(1u32).unwrap()
        );
        assert_eq!(
            ms(Duration::from_millis(100)),
            PollTimeout::try_from(100u32).unwrap()
        );
        assert_eq!(ms(Duration::ZERO), PollTimeout::ZERO);
        // Already due: no wait.
        assert_eq!(
            poll_timeout(now + Duration::from_millis(5), Some(now)),
            PollTimeout::ZERO
        );
        assert_eq!(poll_timeout(now, None), PollTimeout::NONE);
        // Longer than poll(2) can wait (i32::MAX ms): the longest it can.
        assert_eq!(ms(Duration::from_secs(30 * 86_400)), PollTimeout::MAX);
    }

    /// A v2 memory cgroup in a temporary directory: the watcher re-reads
    /// `memory.events` on every check, so plain files stand in for cgroupfs.
    fn v2_memory_cgroup(dir: &Path) -> CgroupPath {
        let cg = dir.join("phobos/c1");
        std::fs::create_dir_all(&cg).unwrap();
        for (f, v) in [
            ("memory.events", EVENTS),
            ("memory.max", "33554432\n"),
            ("memory.peak", "33554432\n"),
            ("memory.current", "1000\n"),
            ("memory.stat", "anon 1000\nfile 0\n"),
        ] {
            std::fs::write(cg.join(f), v).unwrap();
        }
        CgroupPath {
            mount: dir.to_owned(),
            rel: "phobos/c1".into(),
            unified: true,
        }
    }

    fn info(oom: Option<CgroupPath>, disk: Option<DiskWatch>) -> LaunchInfo {
        LaunchInfo {
            oom_watch: oom.map(|cgroup| OomWatch { cgroup }),
            disk_watch: disk,
            ..LaunchInfo::default()
        }
    }

    #[test]
    fn v2_oom_kill_becomes_a_memory_limitation() {
        let dir = tempfile::tempdir().unwrap();
        let path = v2_memory_cgroup(dir.path());
        let mut w = Watches::new(&info(Some(path.clone()), None));
        assert!(w.oom.is_some());
        assert_eq!(w.check(), None);
        assert_eq!(w.final_oom(), None);
        let events = path.mount.join(&path.rel).join("memory.events");
        std::fs::write(&events, EVENTS.replace("oom_kill 0", "oom_kill 1")).unwrap();
        let l = w.check().expect("an OOM kill was counted");
        assert_eq!(l.reason, Reason::ContainerLimitationMemory);
        assert_eq!(l.resources, ["mem"]);
        assert!(
            l.message.starts_with(
                "Memory limit exceeded: Requested: 33554432 bytes Maximum Used: 33554432 bytes"
            ),
            "{}",
            l.message
        );
        assert!(l.message.contains("MEMORY STATISTICS: \nanon 1000"));
    }

    #[test]
    fn v2_final_check_sees_a_kill_whose_event_was_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = v2_memory_cgroup(dir.path());
        let mut w = Watches::new(&info(Some(path.clone()), None));
        let events = path.mount.join(&path.rel).join("memory.events");
        std::fs::write(&events, EVENTS.replace("oom_kill 0", "oom_kill 2")).unwrap();
        let l = w.final_oom().expect("the counter grew");
        assert_eq!(l.reason, Reason::ContainerLimitationMemory);
    }

    #[test]
    fn a_missing_cgroup_only_skips_the_watch() {
        let dir = tempfile::tempdir().unwrap();
        let path = CgroupPath {
            mount: dir.path().to_owned(),
            rel: "nope".into(),
            unified: true,
        };
        let mut w = Watches::new(&info(Some(path), None));
        assert!(w.oom.is_none());
        assert_eq!(w.check(), None);
        assert_eq!(w.final_oom(), None);
    }

    #[test]
    fn disk_over_the_limit_becomes_a_disk_limitation() {
        let dir = tempfile::tempdir().unwrap();
        let watch = DiskWatch {
            path: dir.path().to_owned(),
            limit_bytes: 64 * 1024,
            interval_secs: 0.01,
        };
        let mut w = Watches::new(&info(None, Some(watch)));
        assert_eq!(w.check(), None);
        std::fs::write(dir.path().join("f"), vec![7u8; 256 * 1024]).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let l = w.check().expect("over the limit");
        assert_eq!(l.reason, Reason::ContainerLimitationDisk);
        assert!(
            l.message.ends_with("exceeds quota (65536 bytes)"),
            "{}",
            l.message
        );
    }
}
