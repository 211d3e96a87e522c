//! Out-of-memory notification.
//!
//! * v1 (cgroup-v1/memory.rst §9 "OOM Control", §8 "Memory thresholds" for
//!   the mechanism): create an eventfd(2), open `memory.oom_control`, and
//!   write `"<event_fd> <oom_control_fd>"` to `cgroup.event_control`. The
//!   eventfd then becomes readable whenever the group hits OOM (its 8-byte
//!   counter counts the notifications). The registration lives until the
//!   eventfd is closed or the cgroup is removed; the `oom_control` fd is only
//!   needed during the write. `memory.oom_control` also reports `under_oom`
//!   and (Linux ≥ 4.13) the `oom_kill` counter. This is what Mesos's
//!   `cgroups::memory::oom::listen` does.
//! * v2 (cgroup-v2.rst "memory.events"): the `oom_kill` counter in
//!   `memory.events`; "a value change in this file generates a file modified
//!   event". kernfs delivers that event to poll(2) as well as to inotify:
//!   an open descriptor of the file polls `POLLPRI | POLLERR` once the file
//!   changed after its last read (`kernfs_generic_poll`), and reading it
//!   again from offset 0 re-arms it. We poll the descriptor itself rather
//!   than an inotify instance: inotify instances are limited per user
//!   (`fs.inotify.max_user_instances`, 128 by default, root included), so
//!   one per container's init would stop watching after the 128th
//!   container on a host; descriptors are limited only per process.
//!
//! * v2 with nested containers: `memory.events` is hierarchical, so a
//!   container's file also counts the OOM kills of its nested containers
//!   (`<container>/mesos/<child>`), which must not end the parent. Its own
//!   processes live in `<container>/leaf` (see [`crate::LEAF`]); their
//!   kills are counted in `memory.events.local` of the container when the
//!   leaf has no memory controller of its own (they are charged to the
//!   container), and in the leaf's `memory.events` when it has one.
//!   [`own_oom_kill_count`] adds the two; the watch still polls the
//!   container's `memory.events`, which the kernel notifies on any change
//!   below it.
//!
//! [`OomWatcher`] hides the difference behind one blocking `wait`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::eventfd::{EfdFlags, EventFd};
use phobos_core::time::millis_rounded_up;

use crate::cgroup::Cgroup;
use crate::error::Error;
use crate::hierarchy::Version;
use crate::stats::{FlatKeyed, MemoryEvents, memory_events, read_parsed};

/// v1 `memory.oom_control`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OomControl {
    /// `oom_kill_disable`: the kernel OOM killer is off for the group.
    pub oom_kill_disable: bool,
    /// `under_oom`: the group is out of memory right now (only stays 1 while
    /// the killer is disabled).
    pub under_oom: bool,
    /// `oom_kill`: processes killed by the OOM killer (Linux ≥ 4.13).
    pub oom_kill: Option<u64>,
}

/// Parses v1 `memory.oom_control`.
pub fn parse_oom_control(text: &str) -> Result<OomControl, crate::stats::ParseError> {
    let m = FlatKeyed::parse(text)?;
    Ok(OomControl {
        oom_kill_disable: m.require("oom_kill_disable")? != 0,
        under_oom: m.require("under_oom")? != 0,
        oom_kill: m.get("oom_kill"),
    })
}

/// Reads v1 `memory.oom_control` of `cg`.
pub fn read_oom_control(cg: &Cgroup) -> Result<OomControl, Error> {
    read_parsed(cg, "memory.oom_control", parse_oom_control)
}

/// The number of OOM kills in `cg`'s subtree so far: v1 `oom_kill` of
/// `memory.oom_control`, v2 `oom_kill` of `memory.events`.
pub fn oom_kill_count(cg: &Cgroup) -> Result<u64, Error> {
    match cg.version() {
        Version::V1 => read_oom_control(cg)?.oom_kill.ok_or(Error::Unsupported {
            path: cg.path().join("memory.oom_control"),
            what: "the oom_kill counter (Linux >= 4.13)",
        }),
        Version::V2 => Ok(memory_events(cg)?.oom_kill),
    }
}

/// OOM kills of `cg`'s own processes so far, not its nested containers':
/// v1 as [`oom_kill_count`] (a v1 memory cgroup counts only its own); v2
/// `oom_kill` of `memory.events.local` plus that of the leaf's
/// `memory.events` when the leaf is a memory cgroup. A kernel without
/// `memory.events.local` (before 5.2) counts the subtree.
pub fn own_oom_kill_count(cg: &Cgroup) -> Result<u64, Error> {
    if cg.version() == Version::V1 {
        return oom_kill_count(cg);
    }
    let local = match read_parsed(cg, "memory.events.local", MemoryEvents::parse) {
        Ok(events) => events.oom_kill,
        Err(e) if e.is_not_found() && cg.exists() => return oom_kill_count(cg),
        Err(e) => return Err(e),
    };
    let leaf = cg.leaf();
    let in_leaf = if leaf.has_file("memory.events") {
        match memory_events(&leaf) {
            Ok(events) => events.oom_kill,
            // The leaf went meanwhile (the container is being removed).
            Err(e) if e.is_not_found() => 0,
            Err(e) => return Err(e),
        }
    } else {
        0
    };
    Ok(local + in_leaf)
}

/// Registers an eventfd for OOM events on v1 memory cgroup `cg`. The
/// returned descriptor becomes readable (8 bytes, a counter) on OOM.
pub fn oom_eventfd_v1(cg: &Cgroup) -> Result<OwnedFd, Error> {
    register_v1(cg).map(|(efd, _)| efd)
}

/// [`oom_eventfd_v1`] that also reads `memory.oom_control` through the
/// descriptor it registers (one open for both), before registering.
fn register_v1(cg: &Cgroup) -> Result<(OwnedFd, OomControl), Error> {
    let control_path = cg.path().join("memory.oom_control");
    let control = File::open(&control_path).map_err(|source| Error::Read {
        path: control_path.clone(),
        source,
    })?;
    let mut text = String::new();
    // A few dozen bytes; the bound keeps a bogus file from growing it.
    (&control)
        .take(4096)
        .read_to_string(&mut text)
        .map_err(|source| Error::Read {
            path: control_path.clone(),
            source,
        })?;
    let state = parse_oom_control(&text).map_err(|e| Error::Parse {
        path: control_path.clone(),
        reason: e.to_string(),
    })?;
    let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC).map_err(|source| Error::Sys {
        path: control_path.clone(),
        call: "eventfd",
        source,
    })?;
    let registration = format!("{} {}", efd.as_raw_fd(), control.as_raw_fd());
    cg.write("cgroup.event_control", &registration)?;
    Ok((OwnedFd::from(efd), state))
}

/// Reads v2 `memory.events` again through its open descriptor, from the
/// start (which also re-arms the descriptor's `POLLPRI`).
fn read_events(mut file: &File, path: &std::path::Path) -> Result<MemoryEvents, Error> {
    let read_err = |source| Error::Read {
        path: path.to_owned(),
        source,
    };
    file.seek(SeekFrom::Start(0)).map_err(read_err)?;
    let mut text = String::new();
    // memory.events is a few hundred bytes; the bound keeps a bogus file
    // from growing the buffer.
    file.take(64 * 1024)
        .read_to_string(&mut text)
        .map_err(read_err)?;
    MemoryEvents::parse(&text).map_err(|e| Error::Parse {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

enum Source {
    /// v1 eventfd registered on `memory.oom_control`.
    Event(OwnedFd),
    /// v2 `memory.events`, open: polls `POLLPRI` after a change.
    Events(File),
}

/// Waits for OOM kills in one memory cgroup.
pub struct OomWatcher {
    cgroup: Cgroup,
    source: Source,
    /// OOM kills seen so far (v2; v1 when the counter exists).
    seen: u64,
    /// [`own_oom_kill_count`] when the watch started; `None` where the
    /// kernel keeps no counter (v1 before Linux 4.13).
    initial: Option<u64>,
}

impl OomWatcher {
    /// Starts watching memory cgroup `cg`. Kills that happened before are
    /// not reported.
    pub fn new(cg: &Cgroup) -> Result<Self, Error> {
        let (source, initial) = match cg.version() {
            Version::V1 => {
                let (efd, state) = register_v1(cg)?;
                (Source::Event(efd), state.oom_kill)
            }
            Version::V2 => {
                let path = cg.path().join("memory.events");
                let file = File::open(&path).map_err(|source| Error::Read {
                    path: path.clone(),
                    source,
                })?;
                // Reading through the descriptor arms its POLLPRI for the
                // next change, so no change after this read is missed.
                read_events(&file, &path)?;
                (Source::Events(file), Some(own_oom_kill_count(cg)?))
            }
        };
        Ok(OomWatcher {
            cgroup: cg.clone(),
            source,
            seen: initial.unwrap_or(0),
            initial,
        })
    }

    /// The container's own OOM kill count when the watch started (read
    /// with the watch's own descriptor on v1), for comparing after the
    /// command ends; `None` where the kernel keeps no counter.
    pub fn initial(&self) -> Option<u64> {
        self.initial
    }

    /// The cgroup watched.
    pub fn cgroup(&self) -> &Cgroup {
        &self.cgroup
    }

    /// OOM kills counted so far (since before the watch started).
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Blocks until an OOM happens (`Ok(true)`) or `timeout` passes
    /// (`Ok(false)`); `None` waits forever. v1 reports every OOM event of
    /// the group; v2 reports an increase of [`own_oom_kill_count`].
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<bool, Error> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Source::Events(file) = &self.source {
                // The counter first: a change since the last read counts
                // even when its POLLPRI was consumed by another poller.
                // Re-read to re-arm; the count is the container's own.
                let path = self.cgroup.path().join("memory.events");
                read_events(file, &path)?;
                let now = own_oom_kill_count(&self.cgroup)?;
                if now > self.seen {
                    self.seen = now;
                    return Ok(true);
                }
            }
            let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if !self.poll_readable(remaining)? {
                return Ok(false);
            }
            if let Source::Event(fd) = &self.source {
                let mut buf = [0u8; 8];
                // The fd is blocking and readable, so read returns the
                // counter at once.
                nix::unistd::read(fd, &mut buf).map_err(|source| self.sys("read", source))?;
                if let Ok(Some(n)) = read_oom_control(&self.cgroup).map(|c| c.oom_kill) {
                    self.seen = n;
                }
                return Ok(true);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
        }
    }

    /// The events to poll [`OomWatcher::as_fd`] for: `POLLIN` on the v1
    /// eventfd, `POLLPRI` on v2's `memory.events` (kernfs reports every
    /// cgroup file readable at all times; a change shows as `POLLPRI`).
    pub fn poll_flags(&self) -> PollFlags {
        match self.source {
            Source::Event(_) => PollFlags::POLLIN,
            Source::Events(_) => PollFlags::POLLPRI,
        }
    }

    fn sys(&self, call: &'static str, source: Errno) -> Error {
        let file = match self.source {
            Source::Event(_) => "memory.oom_control",
            Source::Events(_) => "memory.events",
        };
        Error::Sys {
            path: self.cgroup.path().join(file),
            call,
            source,
        }
    }

    fn poll_readable(&self, timeout: Option<Duration>) -> Result<bool, Error> {
        let timeout = match timeout {
            None => PollTimeout::NONE,
            Some(t) => PollTimeout::try_from(millis_rounded_up(t)).unwrap_or(PollTimeout::MAX),
        };
        let mut fds = [PollFd::new(self.as_fd(), self.poll_flags())];
        loop {
            match poll(&mut fds, timeout) {
                Ok(0) => return Ok(false),
                Ok(_) => return Ok(true),
                Err(Errno::EINTR) => continue,
                Err(source) => return Err(self.sys("poll", source)),
            }
        }
    }
}

impl AsFd for OomWatcher {
    /// A descriptor that polls [`OomWatcher::poll_flags`] when something
    /// may have happened (for callers multiplexing with poll or epoll);
    /// call [`OomWatcher::wait`] with a zero timeout to find out.
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.source {
            Source::Event(fd) => fd.as_fd(),
            Source::Events(file) => file.as_fd(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn oom_control_parses() {
        let c = parse_oom_control("oom_kill_disable 0\nunder_oom 1\noom_kill 3\n").unwrap();
        assert_eq!(
            c,
            OomControl {
                oom_kill_disable: false,
                under_oom: true,
                oom_kill: Some(3)
            }
        );
        let old = parse_oom_control("oom_kill_disable 1\nunder_oom 0\n").unwrap();
        assert_eq!(old.oom_kill, None);
        assert!(old.oom_kill_disable);
        assert!(parse_oom_control("under_oom 0\n").is_err());
    }

    #[test]
    fn oom_kill_count_on_fixtures() {
        let dir = tempfile::tempdir().unwrap();
        let v1 = Cgroup::new(dir.path(), Path::new("v1"), Version::V1);
        std::fs::create_dir(v1.path()).unwrap();
        std::fs::write(
            v1.path().join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        assert_eq!(oom_kill_count(&v1).unwrap(), 2);
        std::fs::write(
            v1.path().join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\n",
        )
        .unwrap();
        assert!(matches!(
            oom_kill_count(&v1),
            Err(Error::Unsupported { .. })
        ));
        let v2 = Cgroup::new(dir.path(), Path::new("v2"), Version::V2);
        std::fs::create_dir(v2.path()).unwrap();
        std::fs::write(
            v2.path().join("memory.events"),
            "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n",
        )
        .unwrap();
        assert_eq!(oom_kill_count(&v2).unwrap(), 1);
    }

    #[test]
    fn v2_watcher_sees_a_counter_increase_on_a_fixture() {
        // The watcher re-reads the counter on every wait, so the v2 logic
        // can be exercised on a regular file standing in for memory.events
        // (a regular file never polls POLLPRI: each wait times out).
        let dir = tempfile::tempdir().unwrap();
        let cg = Cgroup::new(dir.path(), Path::new("c"), Version::V2);
        std::fs::create_dir(cg.path()).unwrap();
        let events = cg.path().join("memory.events");
        std::fs::write(&events, "oom 0\noom_kill 0\n").unwrap();
        let mut w = OomWatcher::new(&cg).unwrap();
        assert!(!w.wait(Some(Duration::from_millis(20))).unwrap());
        // A change that is not an OOM kill does not count.
        std::fs::write(&events, "oom 1\noom_kill 0\n").unwrap();
        assert!(!w.wait(Some(Duration::from_millis(50))).unwrap());
        std::fs::write(&events, "oom 1\noom_kill 1\n").unwrap();
        assert!(w.wait(Some(Duration::from_secs(5))).unwrap());
        assert_eq!(w.seen(), 1);
    }

    #[test]
    fn watcher_on_a_missing_cgroup_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let cg = Cgroup::new(dir.path(), Path::new("gone"), Version::V2);
        assert!(OomWatcher::new(&cg).is_err());
        let cg = Cgroup::new(dir.path(), Path::new("gone"), Version::V1);
        let e = oom_eventfd_v1(&cg).unwrap_err();
        assert!(e.to_string().contains("memory.oom_control"), "{e}");
    }
}
