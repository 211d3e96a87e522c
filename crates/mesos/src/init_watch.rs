//! The limit watches the init helper keeps while the command runs, so a
//! limitation is recorded even when no other phobos process is alive:
//!
//! * OOM (`cgroups/mem`): a `phobos_cgroups::oom::OomWatcher` on the
//!   container's memory cgroup — a v1 eventfd registered on
//!   `memory.oom_control` through `cgroup.event_control`, or inotify on v2
//!   `memory.events` — polled together with init's signalfd (poll(2)).
//!   When the command is reaped, the `oom_kill` counter is compared once
//!   more, since the exit (SIGCHLD) and the OOM event race.
//! * disk (`disk/du` with enforcement): the sandbox is measured every
//!   `container_disk_watch_interval`, as the poll timeout.
//!
//! A watch that cannot be set up is reported on init's stderr (the
//! sandbox's `stderr`) and skipped: the command still runs, as in Mesos when
//! the OOM listener fails.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signalfd::SignalFd;
use phobos_cgroups::Cgroup;
use phobos_cgroups::oom::{OomWatcher, oom_kill_count};

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
}

impl Watches {
    pub(crate) fn new(info: &LaunchInfo) -> Self {
        let oom = info.oom_watch.as_ref().and_then(|w| {
            let cgroup = w.cgroup.cgroup();
            let initial = oom_kill_count(&cgroup).ok();
            match OomWatcher::new(&cgroup) {
                Ok(watcher) => Some(Oom {
                    watcher,
                    cgroup,
                    initial,
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
        Self { oom, disk }
    }

    /// Blocks until a signal is pending (`true`) or a watch needs a look
    /// (`false`: call [`Watches::check`]).
    pub(crate) fn wait_signal(&mut self, signals: &SignalFd) -> bool {
        let timeout = match &self.disk {
            Some(d) => {
                let left = d.next.saturating_duration_since(Instant::now());
                PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        };
        let sig_fd: BorrowedFd<'_> = signals.as_fd();
        let mut fds = vec![PollFd::new(sig_fd, PollFlags::POLLIN)];
        if let Some(o) = &self.oom {
            fds.push(PollFd::new(o.watcher.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Ok(0) => false,
            Ok(_) => {
                let ready = |f: &PollFd<'_>| f.revents().is_some_and(|r| !r.is_empty());
                ready(&fds[0]) || !fds[1..].iter().any(ready)
            }
            // EINTR and friends: go round again through the signalfd.
            Err(_) => true,
        }
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
        let counted = match (o.initial, oom_kill_count(&o.cgroup).ok()) {
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
