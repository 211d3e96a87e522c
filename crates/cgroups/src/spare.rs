//! Spare cgroup directories: made ahead of time, renamed into place.
//!
//! Making a cgroup directory (`mkdir(2)` on cgroupfs) allocates the
//! controllers' per-cgroup state in the kernel (a memory cgroup's is the
//! largest), and on v1 a cpuset directory starts empty and is filled from
//! its parent. A long-running face (the agent) keeps a few empty
//! directories per parent ready, named [`SPARE_PREFIX`]`<pid>.<n>`, and a
//! launch renames one into place (`rename(2)` of a cgroup directory within
//! its parent: kernfs's `cgroup_rename`), which is one system call instead
//! of the making. [`Spares::refill`] makes new ones off the launch's path.
//!
//! Only cgroup v1 hierarchies: the kernel refuses `rename(2)` on the
//! default (v2) hierarchy with `EPERM` ("not a proper migration",
//! kernel/cgroup/cgroup.c), so a v2 directory is always made by `mkdir`.
//! A rename across parents fails with `EIO`, onto an existing name with
//! `EEXIST`: a spare never replaces a cgroup.
//!
//! A container ID never holds a `.`, so a spare's name can never be a
//! container's; they carry no container mark either, so nothing takes
//! them for a container. [`Spares::drain`] removes a pool's spares when
//! its process ends, and [`sweep`] removes every spare under a parent
//! (recovery: a process killed with its pool leaves them behind).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cgroup::Cgroup;
use crate::error::Error;
use crate::hierarchy::Version;

/// The start of every spare directory's name.
pub const SPARE_PREFIX: &str = "spare.";

/// Whether a cgroup directory named `name` is a spare.
pub fn is_spare(name: &str) -> bool {
    name.starts_with(SPARE_PREFIX)
}

/// Writes what every container's directory of a hierarchy gets the same
/// way into a spare when it is made (off the launch's path); returns
/// whether it wrote anything (a spare of another hierarchy: `false`).
pub type Preparer = fn(&Cgroup) -> Result<bool, Error>;

/// Spare directories per parent cgroup, for one process.
#[derive(Debug)]
pub struct Spares {
    per_parent: usize,
    pid: u32,
    next: AtomicU64,
    pools: Mutex<HashMap<PathBuf, Pool>>,
    preparer: Option<Preparer>,
    /// The spares the preparer wrote into, by path.
    prepared: Mutex<HashSet<PathBuf>>,
}

#[derive(Debug)]
struct Pool {
    parent: Cgroup,
    free: Vec<Cgroup>,
}

impl Spares {
    /// A pool that keeps `per_parent` spares under every parent it has
    /// been asked for.
    pub fn new(per_parent: usize) -> Self {
        Self {
            per_parent,
            pid: std::process::id(),
            next: AtomicU64::new(0),
            pools: Mutex::new(HashMap::new()),
            preparer: None,
            prepared: Mutex::new(HashSet::new()),
        }
    }

    /// Has [`Self::refill`] run `preparer` on every spare it makes;
    /// [`Self::take_prepared`] then says whether the spare it took was
    /// prepared.
    pub fn with_preparer(mut self, preparer: Preparer) -> Self {
        self.preparer = Some(preparer);
        self
    }

    fn prepared(&self) -> std::sync::MutexGuard<'_, HashSet<PathBuf>> {
        self.prepared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn pools(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Pool>> {
        self.pools
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes `target` by renaming a spare of its parent into place.
    /// `false` when none could be used (none ready yet, a v2 hierarchy, a
    /// spare removed by someone else, `target` exists): the caller makes
    /// the directory itself. Either way, the parent is remembered so that
    /// [`Self::refill`] keeps spares there from now on.
    pub fn take(&self, target: &Cgroup) -> bool {
        self.take_prepared(target).is_some()
    }

    /// [`Self::take`] that says whether the spare renamed into place was
    /// written by the preparer: `None` when none was taken, `Some(true)`
    /// for a prepared one.
    pub fn take_prepared(&self, target: &Cgroup) -> Option<bool> {
        if target.version() != Version::V1 {
            return None;
        }
        let parent_rel = target.rel().parent()?;
        let parent = Cgroup::new(target.mount(), parent_rel, Version::V1);
        loop {
            let spare = {
                let mut pools = self.pools();
                let pool = pools
                    .entry(parent.path().to_path_buf())
                    .or_insert_with(|| Pool {
                        parent: parent.clone(),
                        free: Vec::new(),
                    });
                pool.free.pop()?
            };
            match fs::rename(spare.path(), target.path()) {
                Ok(()) => return Some(self.prepared().remove(spare.path())),
                // kernfs answers EEXIST; another filesystem (the tests'
                // fixture trees) ENOTEMPTY for a directory that holds files.
                Err(e)
                    if e.kind() == io::ErrorKind::AlreadyExists
                        || e.raw_os_error() == Some(libc::ENOTEMPTY) =>
                {
                    // Someone else's cgroup: the caller reports it. The
                    // spare stays a spare.
                    self.give_back(&parent, spare);
                    return None;
                }
                // Swept meanwhile (recovery removes every spare): try the
                // next one.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(_) => {
                    let _ = fs::remove_dir(spare.path());
                    return None;
                }
            }
        }
    }

    fn give_back(&self, parent: &Cgroup, spare: Cgroup) {
        if let Some(pool) = self.pools().get_mut(parent.path()) {
            pool.free.push(spare);
        }
    }

    /// Makes spares until every known parent has its number; returns how
    /// many were made. Slow (a `mkdir` each): run it off a launch's path.
    pub fn refill(&self) -> Result<usize, Error> {
        let wanted: Vec<(Cgroup, usize)> = self
            .pools()
            .values()
            .filter(|p| p.free.len() < self.per_parent)
            .map(|p| (p.parent.clone(), self.per_parent - p.free.len()))
            .collect();
        let mut made = 0;
        for (parent, missing) in wanted {
            for _ in 0..missing {
                let n = self.next.fetch_add(1, Ordering::Relaxed);
                let spare = parent.child(format!("{SPARE_PREFIX}{}.{n}", self.pid));
                spare.create()?;
                made += 1;
                // A spare the preparer failed on is removed, not offered.
                match self.preparer.map(|prepare| prepare(&spare)) {
                    Some(Ok(true)) => {
                        self.prepared().insert(spare.path().to_path_buf());
                    }
                    Some(Err(e)) => {
                        let _ = fs::remove_dir(spare.path());
                        return Err(e);
                    }
                    _ => {}
                }
                match self.pools().get_mut(parent.path()) {
                    Some(pool) => pool.free.push(spare),
                    None => {
                        let _ = fs::remove_dir(spare.path());
                    }
                }
            }
        }
        Ok(made)
    }

    /// Spares ready now, over every parent.
    pub fn ready(&self) -> usize {
        self.pools().values().map(|p| p.free.len()).sum()
    }

    /// Removes every spare of this pool (at the end of its process).
    pub fn drain(&self) -> Vec<Error> {
        let spares: Vec<Cgroup> = self
            .pools()
            .values_mut()
            .flat_map(|p| std::mem::take(&mut p.free))
            .collect();
        spares
            .into_iter()
            .filter_map(|s| remove(&s).err())
            .collect()
    }
}

impl Drop for Spares {
    /// Spares left by a failed removal are swept by the next recovery.
    fn drop(&mut self) {
        let _ = self.drain();
    }
}

fn remove(spare: &Cgroup) -> Result<(), Error> {
    match fs::remove_dir(spare.path()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Remove {
            path: spare.path().to_path_buf(),
            source,
        }),
    }
}

/// Removes every spare directly under `parent` (whoever made it; a
/// process that still uses them makes its next directories itself).
/// Returns the names removed and the errors.
pub fn sweep(parent: &Cgroup) -> (Vec<String>, Vec<Error>) {
    let mut removed = Vec::new();
    let mut errors = Vec::new();
    let names = match parent.children() {
        Ok(names) => names,
        Err(e) if e.is_not_found() => return (removed, errors),
        Err(e) => return (removed, vec![e]),
    };
    for name in names.into_iter().filter(|n| is_spare(n)) {
        match remove(&parent.child(&name)) {
            Ok(()) => removed.push(name),
            Err(e) => errors.push(e),
        }
    }
    (removed, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spare_names_are_never_container_ids() {
        assert!(is_spare("spare.12.0"));
        assert!(!is_spare("spare"));
        assert!(!is_spare("c1"));
        // The same rule as ContainerId: no '.' in an ID.
        assert!(SPARE_PREFIX.contains('.'));
    }

    #[test]
    fn take_without_spares_leaves_the_making_to_the_caller() {
        let dir = tempfile::tempdir().unwrap();
        let spares = Spares::new(2);
        let target = Cgroup::new(dir.path(), std::path::Path::new("root/c1"), Version::V1);
        assert!(!spares.take(&target));
        assert!(!target.exists());
        // A v2 directory is never taken from the pool.
        let v2 = Cgroup::new(dir.path(), std::path::Path::new("root/c2"), Version::V2);
        assert!(!spares.take(&v2));
    }

    #[test]
    fn a_prepared_spare_is_taken_as_prepared() {
        fn mark(cg: &Cgroup) -> Result<bool, Error> {
            let wanted = cg.rel().starts_with("dev");
            if wanted {
                std::fs::write(cg.path().join("prepared"), "").unwrap();
            }
            Ok(wanted)
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("dev")).unwrap();
        std::fs::create_dir(dir.path().join("mem")).unwrap();
        let spares = Spares::new(1).with_preparer(mark);
        let dev = Cgroup::new(dir.path(), std::path::Path::new("dev/c1"), Version::V1);
        let mem = Cgroup::new(dir.path(), std::path::Path::new("mem/c1"), Version::V1);
        assert_eq!(spares.take_prepared(&dev), None);
        assert_eq!(spares.take_prepared(&mem), None);
        assert_eq!(spares.refill().unwrap(), 2);
        assert_eq!(spares.take_prepared(&dev), Some(true));
        assert!(dev.path().join("prepared").exists());
        assert_eq!(spares.take_prepared(&mem), Some(false));
        assert!(!mem.path().join("prepared").exists());
        // Made again by the next refill, prepared again.
        assert_eq!(spares.refill().unwrap(), 2);
        let dev2 = Cgroup::new(dir.path(), std::path::Path::new("dev/c2"), Version::V1);
        assert_eq!(spares.take_prepared(&dev2), Some(true));
    }

    #[test]
    fn refill_take_drain_and_sweep_on_a_fixture_tree() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("root")).unwrap();
        let spares = Spares::new(2);
        let c1 = Cgroup::new(dir.path(), std::path::Path::new("root/c1"), Version::V1);
        assert!(!spares.take(&c1), "no spare before the first refill");
        assert_eq!(spares.refill().unwrap(), 2);
        assert_eq!(spares.ready(), 2);
        assert!(spares.take(&c1));
        assert!(c1.exists());
        assert_eq!(spares.ready(), 1);
        // An existing target is never replaced; the spare stays.
        let c1_again = Cgroup::new(dir.path(), std::path::Path::new("root/c1"), Version::V1);
        std::fs::write(c1.path().join("kept"), "").unwrap();
        assert!(!spares.take(&c1_again));
        assert!(c1.path().join("kept").exists());
        assert_eq!(spares.ready(), 1);
        // A spare removed behind the pool's back is skipped.
        let root = Cgroup::new(dir.path(), std::path::Path::new("root"), Version::V1);
        let (swept, errors) = sweep(&root);
        assert_eq!((swept.len(), errors.len()), (1, 0));
        let c2 = Cgroup::new(dir.path(), std::path::Path::new("root/c2"), Version::V1);
        assert!(!spares.take(&c2));
        assert_eq!(spares.refill().unwrap(), 2);
        assert!(spares.drain().is_empty());
        let mut left: Vec<_> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["c1"]);
    }
}
