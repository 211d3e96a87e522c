//! Killing many cgroups at once and waiting for all of them together.
//!
//! [`Cgroup::kill_all`] kills one cgroup and waits for it to empty before
//! returning, so destroying N containers one after another waits N times
//! for the kernel to end their processes. Here the kill is split: for each
//! cgroup [`Cgroup::start_kill`] opens its v2 `cgroup.events`, writes `1`
//! to `cgroup.kill` (the kernel SIGKILLs the whole subtree) and returns at
//! once; [`wait_all`] then waits for every one of them in a single
//! `poll(2)` loop over all the `cgroup.events` descriptors (`POLLPRI`:
//! kernfs raises it when the file changes after the descriptor's last
//! read) until each reads `populated 0`
//! (Documentation/admin-guide/cgroup-v2.rst, "Core Interface Files").
//!
//! A cgroup without `cgroup.kill` (the v1 freezer, an older kernel) is
//! killed and waited for by [`Cgroup::kill_all`] within `start_kill`, so
//! the result is the same everywhere: after [`wait_all`], no process is
//! left in any of the cgroups.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use phobos_core::time::millis_rounded_up;

use crate::cgroup::{Cgroup, event_value};
use crate::error::Error;
use crate::hierarchy::Version;

/// A cgroup killed by [`Cgroup::start_kill`] whose processes may still be
/// exiting.
#[derive(Debug)]
pub struct Emptying {
    cgroup: Cgroup,
    /// Its `cgroup.events`, opened before the kill so that the change to
    /// `populated 0` cannot slip between the kill and the first read.
    events: fs::File,
}

impl Emptying {
    /// The cgroup being emptied.
    pub fn cgroup(&self) -> &Cgroup {
        &self.cgroup
    }

    /// Whether the cgroup is empty now: one read of `cgroup.events`. A
    /// cgroup removed meanwhile (`ENODEV`) is empty.
    fn is_empty(&mut self) -> Result<bool, Error> {
        let path = self.cgroup.path().join("cgroup.events");
        let read_err = |source| Error::Read {
            path: path.clone(),
            source,
        };
        let mut text = String::new();
        self.events.seek(SeekFrom::Start(0)).map_err(read_err)?;
        match (&self.events).take(4096).read_to_string(&mut text) {
            Ok(_) => Ok(event_value(&text, "populated") == Some(0)),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(true),
            Err(e) => Err(read_err(e)),
        }
    }
}

impl Cgroup {
    /// Starts killing every process of this cgroup and its descendants
    /// without waiting for them to exit: on cgroup2 with `cgroup.kill`,
    /// writes it and returns the [`Emptying`] to wait on with
    /// [`wait_all`]. Elsewhere kills and waits as [`Cgroup::kill_all`]
    /// does (at most `timeout`). `None` when nothing is left to wait for
    /// (the cgroup is gone, was empty, or was emptied here).
    pub fn start_kill(&self, timeout: Duration) -> Result<Option<Emptying>, Error> {
        if !self.exists() || !self.is_populated()? {
            return Ok(None);
        }
        if self.version() != Version::V2 || !self.has_file("cgroup.kill") {
            self.kill_all(timeout)?;
            return Ok(None);
        }
        let path = self.path().join("cgroup.events");
        let events = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(Error::Read { path, source }),
        };
        self.write("cgroup.kill", "1")?;
        Ok(Some(Emptying {
            cgroup: self.clone(),
            events,
        }))
    }
}

/// Waits until every cgroup of `emptying` is empty, with one `poll(2)` over
/// all their `cgroup.events`, or until `timeout` has passed. Each poll is
/// cut at 50 ms, after which every cgroup not yet seen empty is read again
/// and an empty `cgroup.procs` counts too (as [`Cgroup::kill_all`] checks),
/// so a missed wake only costs time. Returns the cgroups that failed,
/// each with its index in `emptying`: those still holding processes at
/// the time-out ([`Error::Timeout`] naming the cgroup), or whose
/// `cgroup.events` could not be read; empty when every one emptied.
pub fn wait_all(emptying: Vec<Emptying>, timeout: Duration) -> Vec<(usize, Error)> {
    let deadline = Instant::now() + timeout;
    let mut failed = Vec::new();
    let mut left: Vec<(usize, Emptying)> = Vec::with_capacity(emptying.len());
    for (i, mut e) in emptying.into_iter().enumerate() {
        match e.is_empty() {
            Ok(true) => {}
            Ok(false) => left.push((i, e)),
            Err(err) => failed.push((i, err)),
        }
    }
    while !left.is_empty() {
        let now = Instant::now();
        if now >= deadline {
            failed.extend(left.into_iter().map(|(i, e)| {
                let path = e.cgroup.path().to_path_buf();
                (
                    i,
                    Error::Timeout {
                        path,
                        what: "every process to exit",
                        timeout,
                    },
                )
            }));
            break;
        }
        let slice = (deadline - now).min(Duration::from_millis(50));
        let poll_timeout =
            PollTimeout::try_from(millis_rounded_up(slice)).unwrap_or(PollTimeout::MAX);
        let mut fds: Vec<PollFd> = left
            .iter()
            .map(|(_, e)| PollFd::new(e.events.as_fd(), PollFlags::POLLPRI))
            .collect();
        // Which to read again: those the kernel flagged, or all of them
        // when the slice passed with no flag (a missed wake costs time only).
        let (ready, timed_out): (Vec<bool>, bool) = match poll(&mut fds, poll_timeout) {
            Ok(0) => (vec![true; left.len()], true),
            Ok(_) => (
                fds.iter()
                    .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
                    .collect(),
                false,
            ),
            Err(Errno::EINTR) => (vec![false; left.len()], false),
            Err(source) => {
                failed.extend(left.into_iter().map(|(i, e)| {
                    let path = e.cgroup.path().join("cgroup.events");
                    (
                        i,
                        Error::Sys {
                            path,
                            call: "poll",
                            source,
                        },
                    )
                }));
                break;
            }
        };
        drop(fds);
        let mut still = Vec::with_capacity(left.len());
        for ((i, mut e), check) in left.into_iter().zip(ready) {
            if !check {
                still.push((i, e));
                continue;
            }
            let empty = match e.is_empty() {
                Ok(false) if timed_out => procs_empty(&e.cgroup),
                other => other,
            };
            match empty {
                Ok(true) => {}
                Ok(false) => still.push((i, e)),
                Err(err) => failed.push((i, err)),
            }
        }
        left = still;
    }
    failed
}

/// Whether the cgroup's own process lists are empty (a cgroup gone is).
fn procs_empty(cgroup: &Cgroup) -> Result<bool, Error> {
    match cgroup.procs() {
        Ok(pids) => Ok(pids.is_empty()),
        Err(e) if e.is_not_found() => Ok(true),
        Err(e) => Err(e),
    }
}
