//! A handle on one cgroup: one directory in one hierarchy.
//!
//! Everything here is plain file I/O on cgroupfs (cgroups(7)):
//!
//! * membership: `cgroup.procs` (write a pid to move its process; read the
//!   pids of member processes); v1 `tasks`, where a single-threaded process
//!   moves itself by writing `0` without the kernel's global threadgroup
//!   lock;
//! * freezing: v1 `freezer.state` (`FROZEN`/`THAWED`, which reads `FREEZING`
//!   while in progress; Documentation/admin-guide/cgroup-v1/freezer-subsystem.rst),
//!   v2 `cgroup.freeze` confirmed by `frozen 1` in `cgroup.events`
//!   (Documentation/admin-guide/cgroup-v2.rst, "Core Interface Files");
//! * killing: v2 `cgroup.kill` (Linux ≥ 5.14) SIGKILLs the whole subtree
//!   atomically, and the kill waits for `populated 0` in `cgroup.events`
//!   by polling its descriptor for `POLLPRI` (kernfs raises it when the
//!   file changes after the descriptor's last read), not by sleeping and
//!   listing `cgroup.procs`; otherwise freeze → SIGKILL every pid → thaw, as Mesos's
//!   `cgroups::destroy` does, so that nothing can fork its way out between
//!   reading the pid list and signalling;
//! * removal: `rmdir`, which the kernel allows on a cgroup directory that
//!   still holds its control files but has no processes and no children.
//!
//! Paths are built from an injected mount point, so the file logic is tested
//! on fixture trees in temporary directories; the kernel behaviour is tested
//! by the `privileged_*` tests.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use phobos_core::time::millis_rounded_up;

use crate::error::Error;
use crate::hierarchy::{Controller, Version};

/// The child of a container's cgroup that holds the container's own
/// processes on cgroup2 (Mesos's name for it): cgroup v2's
/// no-internal-process rule lets a cgroup enable controllers for its
/// children only while it holds no process itself, so the processes live
/// in `<container>/leaf`, the limits stay on `<container>`, and nested
/// containers' cgroups, `<container>/mesos/<child>`, can get controllers of
/// their own.
pub const LEAF: &str = "leaf";

/// How long one freeze attempt may take before `kill_all` kills and thaws
/// and tries again (Mesos's `FREEZE_RETRY_INTERVAL`; works around kernel
/// bugs where a freeze never completes, MESOS-1689 / MESOS-1758).
pub const FREEZE_RETRY_INTERVAL: Duration = Duration::from_secs(10);

/// One cgroup directory in one hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cgroup {
    mount: PathBuf,
    rel: PathBuf,
    path: PathBuf,
    version: Version,
}

/// Poll with a short, growing sleep until `done` says yes or `deadline`
/// passes. Returns whether it was done.
fn poll_until(
    deadline: Instant,
    mut done: impl FnMut() -> Result<bool, Error>,
) -> Result<bool, Error> {
    let mut pause = Duration::from_millis(1);
    loop {
        if done()? {
            return Ok(true);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

impl Cgroup {
    /// The cgroup `rel` of the hierarchy mounted at `mount`. Only the normal
    /// components of `rel` are kept: a leading `/`, `.` and `..` are dropped,
    /// so the handle can never point outside `mount`.
    pub fn new(mount: &Path, rel: &Path, version: Version) -> Self {
        let rel: PathBuf = rel
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        Cgroup {
            mount: mount.to_path_buf(),
            path: mount.join(&rel),
            rel,
            version,
        }
    }

    /// The cgroup's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The hierarchy's mount point.
    pub fn mount(&self) -> &Path {
        &self.mount
    }

    /// v1 or v2.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The path relative to the mount point.
    pub fn rel(&self) -> &Path {
        &self.rel
    }

    /// The child cgroup `name` (which may itself be a relative path).
    pub fn child(&self, name: impl AsRef<Path>) -> Cgroup {
        Cgroup::new(&self.mount, &self.rel.join(name), self.version)
    }

    /// The child holding the cgroup's own processes on cgroup2
    /// (see [`LEAF`]).
    pub fn leaf(&self) -> Cgroup {
        self.child(LEAF)
    }

    /// The pids of the processes in this cgroup itself and in its
    /// [`LEAF`], not in other descendants (nested containers): a
    /// container's own processes in either layout.
    pub fn own_procs(&self) -> Result<Vec<i32>, Error> {
        let mut pids = Vec::new();
        for dir in [self.path.clone(), self.path.join(LEAF)] {
            let file = dir.join("cgroup.procs");
            match fs::read_to_string(&file) {
                Ok(text) => pids.extend(parse_pids(&text, &file)?),
                Err(e) if e.kind() == io::ErrorKind::NotFound && dir != self.path => {}
                Err(source) => return Err(Error::Read { path: file, source }),
            }
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Whether the directory exists.
    pub fn exists(&self) -> bool {
        self.path.is_dir()
    }

    /// Whether control file `file` exists in this cgroup.
    pub fn has_file(&self, file: &str) -> bool {
        self.path.join(file).exists()
    }

    /// `mkdir -p`, with no controller to enable. See [`Cgroup::create_with`].
    pub fn create(&self) -> Result<(), Error> {
        self.create_with(&[])
    }

    /// Creates the cgroup and any missing ancestors.
    ///
    /// * v2: every ancestor from the mount point down to the parent gets
    ///   `controllers` enabled in its `cgroup.subtree_control`, so the new
    ///   cgroup has their interface files. Controllers that are core on v2
    ///   (cpuacct, freezer) or not v2 controllers are ignored; one that an
    ///   ancestor does not offer is [`Error::ControllerUnavailable`].
    /// * v1: `controllers` names the controllers attached to the hierarchy.
    ///   A new cpuset cgroup starts with empty `cpuset.cpus` and
    ///   `cpuset.mems`, in which no process may run; in a hierarchy with
    ///   cpuset they are copied from the parent, level by level. With no
    ///   controller named ([`Cgroup::create`]) the hierarchy is unknown and
    ///   each new directory is probed for those files.
    ///
    /// The common case, a parent that exists (a container under its
    /// cgroups root), is one `mkdir`; the ancestors are walked only when
    /// it fails with `ENOENT`, or on v2 when controllers are to be enabled.
    pub fn create_with(&self, controllers: &[Controller]) -> Result<(), Error> {
        self.make(controllers).map(|_| ())
    }

    /// [`Cgroup::create_with`] that says whether this call made the
    /// cgroup's own directory (`false`: it existed already).
    pub fn create_new_with(&self, controllers: &[Controller]) -> Result<bool, Error> {
        self.make(controllers)
    }

    fn make(&self, controllers: &[Controller]) -> Result<bool, Error> {
        let wanted: Vec<Controller> = controllers
            .iter()
            .copied()
            .filter(|c| c.is_v2_controller())
            .collect();
        // v1: copy cpuset's files where the hierarchy has cpuset, or may.
        let cpuset = self.version == Version::V1
            && (controllers.is_empty() || controllers.contains(&Controller::Cpuset));
        let needs_walk = self.version == Version::V2 && !wanted.is_empty();
        if !needs_walk
            && let Some(parent) = self
                .path
                .parent()
                .filter(|_| !self.rel.as_os_str().is_empty())
        {
            match fs::create_dir(&self.path) {
                Ok(()) => {
                    if cpuset {
                        inherit_cpuset(parent, &self.path)?;
                    }
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && self.path.is_dir() => {
                    return Ok(false);
                }
                // A missing ancestor: the walk below makes it.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(Error::Create {
                        path: self.path.clone(),
                        source,
                    });
                }
            }
        }
        let mut dir = self.mount.clone();
        let components: Vec<_> = self.rel.components().collect();
        let mut made = false;
        for component in &components {
            if self.version == Version::V2 && !wanted.is_empty() {
                enable_controllers(&dir, &wanted)?;
            }
            let parent = dir.clone();
            dir.push(component);
            made = match fs::create_dir(&dir) {
                Ok(()) => {
                    if cpuset {
                        inherit_cpuset(&parent, &dir)?;
                    }
                    true
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => false,
                Err(source) => return Err(Error::Create { path: dir, source }),
            };
        }
        if components.is_empty() && !self.mount.is_dir() {
            return Err(Error::Create {
                path: self.mount.clone(),
                source: io::Error::from(io::ErrorKind::NotFound),
            });
        }
        Ok(made)
    }

    /// Moves process `pid` (all its threads) into this cgroup.
    pub fn add_process(&self, pid: i32) -> Result<(), Error> {
        self.write("cgroup.procs", &pid.to_string())
    }

    /// This v1 cgroup's `tasks`, opened for a single-threaded process to
    /// join by itself: writing `0` there moves the writing thread, the
    /// one case where the kernel skips the global threadgroup lock
    /// (`cgroup_procs_write_start`). Any other move (a pid, or
    /// `cgroup.procs`) takes that lock for writing, which waits for a
    /// whole RCU grace period (~8 ms here) when no move ran in the last
    /// one: the cost of a launch after a quiet moment on a v1 host.
    pub fn open_tasks_to_join(&self) -> Result<fs::File, Error> {
        let path = self.path.join("tasks");
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|source| Error::Write {
                path,
                value: "0".to_owned(),
                source,
            })
    }

    /// The pids of processes in this cgroup and all its descendants, sorted
    /// and without duplicates.
    pub fn procs(&self) -> Result<Vec<i32>, Error> {
        let mut pids = Vec::new();
        for dir in std::iter::once(self.path.clone()).chain(self.descendant_dirs()?) {
            let file = dir.join("cgroup.procs");
            let text = match fs::read_to_string(&file) {
                Ok(text) => text,
                // A descendant removed while we walk has no processes.
                Err(e) if e.kind() == io::ErrorKind::NotFound && dir != self.path => continue,
                Err(source) => return Err(Error::Read { path: file, source }),
            };
            pids.extend(parse_pids(&text, &file)?);
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Whether any process is in this cgroup or a descendant: one read of
    /// `cgroup.events` (`populated`) on v2, the process lists on v1. A
    /// cgroup removed meanwhile is not populated.
    pub fn is_populated(&self) -> Result<bool, Error> {
        if self.version == Version::V2 {
            match self.read("cgroup.events") {
                Ok(events) => {
                    if let Some(populated) = event_value(&events, "populated") {
                        return Ok(populated != 0);
                    }
                }
                Err(e) if e.is_not_found() => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        match self.procs() {
            Ok(pids) => Ok(!pids.is_empty()),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Names of the child cgroups, sorted.
    pub fn children(&self) -> Result<Vec<String>, Error> {
        let mut names = Vec::new();
        for entry in list_dir(&self.path)? {
            if entry.1 {
                names.push(entry.0);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Every descendant directory, parents before children.
    fn descendant_dirs(&self) -> Result<Vec<PathBuf>, Error> {
        let mut out = Vec::new();
        let mut stack = vec![self.path.clone()];
        while let Some(dir) = stack.pop() {
            let entries = match list_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.is_not_found() && dir != self.path => continue,
                Err(e) => return Err(e),
            };
            let mut subdirs: Vec<PathBuf> = entries
                .into_iter()
                .filter(|(_, is_dir)| *is_dir)
                .map(|(name, _)| dir.join(name))
                .collect();
            subdirs.sort();
            for sub in subdirs.into_iter().rev() {
                out.push(sub.clone());
                stack.push(sub);
            }
        }
        // `out` is in pre-order except for ordering among siblings' subtrees,
        // which does not matter; keep parents before their children.
        out.sort_by_key(|p| p.components().count());
        Ok(out)
    }

    /// Freezes every process of this cgroup and its descendants, and waits
    /// (at most `timeout`) until the kernel reports the cgroup frozen.
    ///
    /// v1 writes `FROZEN` to `freezer.state` until it reads `FROZEN` (it
    /// reads `FREEZING` while some task has not stopped yet; rewriting
    /// `FROZEN` retries the freeze). v2 writes `1` to `cgroup.freeze` and
    /// waits for `frozen 1` in `cgroup.events`.
    pub fn freeze(&self, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        let done = match self.version {
            Version::V1 => {
                self.require("freezer.state", "the v1 freezer (freezer.state)")?;
                poll_until(deadline, || {
                    self.write("freezer.state", "FROZEN")?;
                    Ok(self.read("freezer.state")?.trim() == "FROZEN")
                })?
            }
            Version::V2 => {
                self.require("cgroup.freeze", "the cgroup2 freezer (cgroup.freeze)")?;
                self.write("cgroup.freeze", "1")?;
                poll_until(deadline, || {
                    Ok(event_value(&self.read("cgroup.events")?, "frozen") == Some(1))
                })?
            }
        };
        if done {
            Ok(())
        } else {
            Err(Error::Timeout {
                path: self.path.clone(),
                what: "the cgroup to freeze",
                timeout,
            })
        }
    }

    /// Lets the processes run again (v1 `THAWED`, v2 `cgroup.freeze` `0`).
    pub fn thaw(&self) -> Result<(), Error> {
        match self.version {
            Version::V1 => self.write("freezer.state", "THAWED"),
            Version::V2 => self.write("cgroup.freeze", "0"),
        }
    }

    /// Whether the freezer reports the cgroup frozen.
    pub fn is_frozen(&self) -> Result<bool, Error> {
        match self.version {
            Version::V1 => Ok(self.read("freezer.state")?.trim() == "FROZEN"),
            Version::V2 => Ok(event_value(&self.read("cgroup.events")?, "frozen") == Some(1)),
        }
    }

    fn require(&self, file: &str, what: &'static str) -> Result<(), Error> {
        if self.has_file(file) {
            Ok(())
        } else if !self.exists() {
            Err(Error::Read {
                path: self.path.join(file),
                source: io::Error::from(io::ErrorKind::NotFound),
            })
        } else {
            Err(Error::Unsupported {
                path: self.path.clone(),
                what,
            })
        }
    }

    /// Kills every process in this cgroup and its descendants so that none
    /// can escape by forking, then waits (at most `timeout` in all) until
    /// the cgroup has no processes. A missing cgroup is already empty.
    ///
    /// * v2 with `cgroup.kill`: write `1` (the kernel SIGKILLs the subtree).
    /// * a freezer is available (v1 `freezer.state`, v2 `cgroup.freeze`):
    ///   freeze → SIGKILL every pid → thaw, Mesos's order. A freeze that does
    ///   not finish within [`FREEZE_RETRY_INTERVAL`] is answered with kill →
    ///   thaw → freeze again, until `timeout`.
    /// * otherwise (a v1 hierarchy without the freezer): SIGKILL every pid,
    ///   again and again until empty.
    ///
    /// Processes that are zombies of the caller may still be listed by some
    /// kernels until reaped; the caller that owns them must reap them, or
    /// this waits until `timeout`.
    pub fn kill_all(&self, timeout: Duration) -> Result<(), Error> {
        self.kill_all_inner(timeout, true)
    }

    /// [`Cgroup::kill_all`] without `cgroup.kill`: always freeze → SIGKILL →
    /// thaw when a freezer is available (for kernels or tests where the
    /// freezer path is wanted on cgroup2 too).
    pub fn kill_all_by_freezing(&self, timeout: Duration) -> Result<(), Error> {
        self.kill_all_inner(timeout, false)
    }

    fn kill_all_inner(&self, timeout: Duration, use_cgroup_kill: bool) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        // The common case (the command and init have exited) needs no
        // freeze, kill or listing round.
        if !self.exists() || !self.is_populated()? {
            return Ok(());
        }
        let freezer = match self.version {
            Version::V1 => "freezer.state",
            Version::V2 => "cgroup.freeze",
        };
        if use_cgroup_kill && self.version == Version::V2 && self.has_file("cgroup.kill") {
            // Opened before the kill, so the change to `populated 0`
            // cannot slip between the kill and the first read.
            let events = self.open_events()?;
            self.write("cgroup.kill", "1")?;
            return match self.wait_unpopulated(events.as_ref(), deadline)? {
                true => Ok(()),
                false => Err(Error::Timeout {
                    path: self.path.clone(),
                    what: "every process to exit",
                    timeout,
                }),
            };
        } else if self.has_file(freezer) {
            self.freeze_kill_thaw(deadline, timeout)?;
        } else {
            self.kill_listed()?;
        }
        let empty = poll_until(deadline, || {
            // A SIGKILL is harmless to a dying process, and without a
            // freezer it catches children forked since the last round.
            self.kill_listed()?;
            Ok(self.procs()?.is_empty())
        })?;
        if empty {
            Ok(())
        } else {
            Err(Error::Timeout {
                path: self.path.clone(),
                what: "every process to exit",
                timeout,
            })
        }
    }

    /// `cgroup.events`, open for [`Cgroup::wait_unpopulated`]; `None` when
    /// the cgroup is gone already.
    fn open_events(&self) -> Result<Option<fs::File>, Error> {
        let path = self.path.join("cgroup.events");
        match fs::File::open(&path) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Read { path, source }),
        }
    }

    /// Waits until `populated 0` in v2 `cgroup.events` (read through
    /// `events`, polled for `POLLPRI` in between) or `deadline`; whether
    /// the cgroup emptied. Each poll is cut at 50 ms, after which an empty
    /// `cgroup.procs` counts too (what the other kill paths wait for), so
    /// a missed wake only costs time.
    fn wait_unpopulated(
        &self,
        events: Option<&fs::File>,
        deadline: Instant,
    ) -> Result<bool, Error> {
        use std::io::{Seek, SeekFrom};
        use std::os::fd::AsFd;
        let Some(mut file) = events else {
            return Ok(true);
        };
        let path = self.path.join("cgroup.events");
        let read_err = |source| Error::Read {
            path: path.clone(),
            source,
        };
        loop {
            let mut text = String::new();
            file.seek(SeekFrom::Start(0)).map_err(read_err)?;
            match file.take(4096).read_to_string(&mut text) {
                Ok(_) => {}
                // The cgroup was removed meanwhile: nothing is left in it.
                Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return Ok(true),
                Err(e) => return Err(read_err(e)),
            }
            if event_value(&text, "populated") == Some(0) {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            let slice = (deadline - now).min(Duration::from_millis(50));
            let timeout =
                PollTimeout::try_from(millis_rounded_up(slice)).unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLPRI)];
            match poll(&mut fds, timeout) {
                // No change within the slice: its own process list, as
                // the other kill paths check it, may say it is empty.
                Ok(0) => {
                    if self.procs()?.is_empty() {
                        return Ok(true);
                    }
                }
                Ok(_) | Err(Errno::EINTR) => {}
                Err(source) => {
                    return Err(Error::Sys {
                        path: path.clone(),
                        call: "poll",
                        source,
                    });
                }
            }
        }
    }

    fn freeze_kill_thaw(&self, deadline: Instant, timeout: Duration) -> Result<(), Error> {
        loop {
            let now = Instant::now();
            let slice = FREEZE_RETRY_INTERVAL.min(deadline.saturating_duration_since(now));
            match self.freeze(slice) {
                Ok(()) => {
                    self.kill_listed()?;
                    return self.thaw();
                }
                Err(Error::Timeout { .. }) => {
                    // Kill what we can see, thaw, and try again.
                    self.kill_listed()?;
                    self.thaw()?;
                    if Instant::now() >= deadline {
                        return Err(Error::Timeout {
                            path: self.path.clone(),
                            what: "the cgroup to freeze",
                            timeout,
                        });
                    }
                }
                Err(e) => {
                    let _ = self.thaw();
                    return Err(e);
                }
            }
        }
    }

    /// SIGKILLs every listed pid; a process that is already gone is fine.
    fn kill_listed(&self) -> Result<(), Error> {
        let pids = match self.procs() {
            Ok(pids) => pids,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        };
        for pid in pids {
            match kill(Pid::from_raw(pid), Signal::SIGKILL) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(source) => {
                    return Err(Error::Kill {
                        path: self.path.clone(),
                        pid,
                        source,
                    });
                }
            }
        }
        Ok(())
    }

    /// Removes this cgroup and its descendants, deepest first, retrying a
    /// busy cgroup (its last processes are still exiting) until `timeout`.
    /// A cgroup that does not exist is removed already.
    pub fn remove(&self, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        // The common case: an emptied container cgroup (with its leaf on
        // v2) goes with one rmdir each, without listing it.
        if self.remove_if_empty()? {
            return Ok(());
        }
        let mut dirs = self.descendant_dirs()?;
        dirs.reverse();
        dirs.push(self.path.clone());
        for dir in dirs {
            let mut result = Ok(());
            let removed = poll_until(deadline, || match fs::remove_dir(&dir) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    result = Err(e);
                    Ok(false)
                }
                Err(source) => Err(Error::Remove {
                    path: dir.clone(),
                    source,
                }),
            })?;
            if !removed {
                return Err(Error::Remove {
                    path: dir,
                    source: result
                        .err()
                        .unwrap_or_else(|| io::Error::from_raw_os_error(libc::EBUSY)),
                });
            }
        }
        Ok(())
    }

    /// Removes the cgroup if nothing is in it, without listing it: on
    /// cgroup2 its [`LEAF`] first, then the cgroup itself, one `rmdir`
    /// each. `true` when it is gone (or never was); `false` when the
    /// kernel keeps it (`EBUSY`: it still has processes or other child
    /// cgroups; `ENOTEMPTY` from a plain directory), in which case it is
    /// unchanged apart from an empty leaf.
    pub fn remove_if_empty(&self) -> Result<bool, Error> {
        let mut dirs = Vec::with_capacity(2);
        if self.version == Version::V2 {
            dirs.push(self.path.join(LEAF));
        }
        dirs.push(self.path.clone());
        for dir in dirs {
            match fs::remove_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY) | Some(libc::ENOTEMPTY)) => {
                    return Ok(false);
                }
                Err(source) => return Err(Error::Remove { path: dir, source }),
            }
        }
        Ok(true)
    }

    /// The contents of control file `file`.
    pub fn read(&self, file: &str) -> Result<String, Error> {
        let path = self.path.join(file);
        fs::read_to_string(&path).map_err(|source| Error::Read { path, source })
    }

    /// Writes `value` to control file `file` in one `write(2)`. The file must
    /// exist (cgroupfs never creates control files on write).
    pub fn write(&self, file: &str, value: &str) -> Result<(), Error> {
        write_file(&self.path.join(file), value)
    }
}

/// Reads a whole text file of at most `limit` bytes; a longer one is
/// [`Error::TooLarge`], so a file's contents never decide how much we
/// allocate.
pub(crate) fn read_limited(path: &Path, limit: u64) -> Result<String, Error> {
    let read_error = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = fs::File::open(path).map_err(read_error)?;
    // cgroupfs and proc report no size, so start from a page rather than
    // growing from a few bytes a read(2) at a time.
    let mut text = String::with_capacity(usize::try_from(limit.min(4096)).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_string(&mut text)
        .map_err(read_error)?;
    if u64::try_from(text.len()).map_or(true, |len| len > limit) {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(text)
}

/// Writes `value` to an existing file in one `write(2)`.
pub(crate) fn write_file(path: &Path, value: &str) -> Result<(), Error> {
    let result = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    result.map_err(|source| Error::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    })
}

/// `(name, is_dir)` for each entry of `dir`.
fn list_dir(dir: &Path) -> Result<Vec<(String, bool)>, Error> {
    let list_err = |source| Error::List {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(list_err)? {
        let entry = entry.map_err(list_err)?;
        let is_dir = entry.file_type().map_err(list_err)?.is_dir();
        out.push((entry.file_name().to_string_lossy().into_owned(), is_dir));
    }
    Ok(out)
}

/// Parses `cgroup.procs`: one decimal pid per line.
pub(crate) fn parse_pids(text: &str, file: &Path) -> Result<Vec<i32>, Error> {
    text.split_whitespace()
        .map(|word| match word.parse::<i32>() {
            Ok(pid) if pid > 0 => Ok(pid),
            _ => Err(Error::Parse {
                path: file.to_path_buf(),
                reason: format!("{word:?} is not a pid"),
            }),
        })
        .collect()
}

/// The value of `key` in a flat-keyed file such as `cgroup.events`
/// (`populated 1\nfrozen 0\n`).
pub(crate) fn event_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        if words.next() == Some(key) {
            words.next().and_then(|v| v.parse().ok())
        } else {
            None
        }
    })
}

/// Enables `wanted` in `dir`'s `cgroup.subtree_control` where not enabled
/// yet, after checking `dir`'s `cgroup.controllers` offers them.
fn enable_controllers(dir: &Path, wanted: &[Controller]) -> Result<(), Error> {
    let read = |file: &str| {
        let path = dir.join(file);
        fs::read_to_string(&path).map_err(|source| Error::Read { path, source })
    };
    let enabled = read("cgroup.subtree_control")?;
    let missing: Vec<Controller> = wanted
        .iter()
        .copied()
        .filter(|c| !enabled.split_whitespace().any(|n| n == c.name()))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let offered = read("cgroup.controllers")?;
    for c in &missing {
        if !offered.split_whitespace().any(|n| n == c.name()) {
            return Err(Error::ControllerUnavailable {
                path: dir.to_path_buf(),
                controller: c.name(),
            });
        }
    }
    let value = missing
        .iter()
        .map(|c| format!("+{}", c.name()))
        .collect::<Vec<_>>()
        .join(" ");
    match write_file(&dir.join("cgroup.subtree_control"), &value) {
        // The only EBUSY of subtree_control: the cgroup has processes of
        // its own (the root cgroup is exempt and never says so).
        Err(Error::Write { source, .. }) if source.raw_os_error() == Some(libc::EBUSY) => {
            Err(Error::InternalProcesses {
                path: dir.to_path_buf(),
                controllers: value,
            })
        }
        other => other,
    }
}

/// A new v1 cpuset cgroup has empty `cpuset.cpus`/`cpuset.mems`; copy them
/// from the parent so processes may join it. A directory without them is
/// not in a cpuset hierarchy and is left alone.
fn inherit_cpuset(parent: &Path, dir: &Path) -> Result<(), Error> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let own = dir.join(file);
        let Ok(current) = fs::read_to_string(&own) else {
            // Not a cpuset hierarchy.
            continue;
        };
        if !current.trim().is_empty() {
            continue;
        }
        let from = parent.join(file);
        let value =
            fs::read_to_string(&from).map_err(|source| Error::Read { path: from, source })?;
        let value = value.trim();
        if !value.is_empty() {
            write_file(&own, value)?;
        }
    }
    Ok(())
}
