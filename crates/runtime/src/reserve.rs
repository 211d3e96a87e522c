//! Container IDs reserved atomically in one namespace for every
//! containerizer, across processes: `<runtime_dir>/ids/<key>`.
//!
//! Kernel mechanisms: `mkdir(2)` of a private hidden directory, `flock(2)`
//! on it, then `renameat2(2)` with `RENAME_NOREPLACE` onto the key, which
//! fails with `EEXIST` when the key is taken. Of N racing launches of one
//! ID, whatever their containerizers, exactly one rename succeeds. The
//! winner's directory is locked from the moment it appears until its
//! launch has written a record, so a reservation whose lock can be taken
//! and that no containerizer holds a record for is stale (its launcher was
//! killed, or its record was removed without releasing it) and is taken
//! over by the next launch of that ID.
//!
//! Keys are top-level IDs. A nested container (`parent.child`, which may
//! be longer than a file name can be) is not reserved here: only the Mesos
//! containerizer has nested containers, and it creates each one's record
//! atomically inside its parent's record, one directory per component.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
use phobos_core::ContainerId;

/// The sub-directory of the runtime directory holding reservations.
pub const IDS_SUBDIR: &str = "ids";

/// Prefix of a reservation being made (not yet visible under its key).
const TMP_PREFIX: &str = ".new-";

/// Why an ID could not be reserved.
#[derive(Debug, thiserror::Error)]
pub enum ReserveError {
    /// Another container holds the ID (or is being launched with it).
    #[error("container '{0}' already exists")]
    Taken(String),
    /// The reservation directory could not be written.
    #[error("failed to {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ReserveError + use<> {
    let path = path.to_owned();
    move |source| ReserveError::Io { op, path, source }
}

/// The reservation namespace of one runtime directory.
#[derive(Debug, Clone)]
pub struct IdRegistry {
    root: PathBuf,
}

/// A reservation in progress: locked, released on drop unless
/// [`Reservation::keep`] was called.
#[derive(Debug)]
pub struct Reservation {
    path: PathBuf,
    lock: Option<File>,
}

impl IdRegistry {
    /// The namespace under `<runtime_dir>/ids`.
    pub fn new(runtime_dir: &Path) -> Self {
        Self {
            root: runtime_dir.join(IDS_SUBDIR),
        }
    }

    /// The reservation key of a top-level container.
    pub fn key(id: &ContainerId) -> String {
        id.as_str().to_owned()
    }

    /// Where `key`'s reservation lives.
    pub fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// Reserves `key`. `has_record` says whether a containerizer holds a
    /// record of it; it decides whether an unlocked existing reservation is
    /// stale (taken over) or in use ([`ReserveError::Taken`]), and it turns
    /// away IDs whose records predate reservations.
    pub fn reserve(
        &self,
        key: &str,
        has_record: impl Fn() -> bool,
    ) -> Result<Reservation, ReserveError> {
        let target = self.path(key);
        // Every valid ID's temporary name fits in NAME_MAX.
        let tmp = self.root.join(phobos_core::store::temporary_name(
            TMP_PREFIX,
            key,
            uuid::Uuid::new_v4(),
        ));
        // The namespace directory goes when its last reservation does (a
        // refused launch leaves nothing), so it may vanish between its
        // creation and ours: try again.
        let mut attempts = 0;
        loop {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.root)
                .map_err(io_err("create", &self.root))?;
            match fs::DirBuilder::new().mode(0o700).create(&tmp) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 10 => attempts += 1,
                Err(e) => return Err(io_err("create", &tmp)(e)),
            }
        }
        let mut pending = Reservation {
            path: tmp.clone(),
            lock: None,
        };
        let lock = lock_dir(&tmp)?;
        pending.lock = Some(lock);
        match renameat2(
            AT_FDCWD,
            &tmp,
            AT_FDCWD,
            &target,
            RenameFlags::RENAME_NOREPLACE,
        ) {
            Ok(()) => {
                pending.path = target;
                if has_record() {
                    // A record from before reservations existed.
                    return Err(ReserveError::Taken(key.to_owned()));
                }
                Ok(pending)
            }
            Err(Errno::EEXIST) => {
                drop(pending);
                self.take_over(key, &target, has_record)
            }
            Err(e) => Err(ReserveError::Io {
                op: "rename into place",
                path: target,
                source: e.into(),
            }),
        }
    }

    /// An existing reservation is ours if nobody holds its lock, it is
    /// still the directory at `target` once locked, and no record uses it.
    fn take_over(
        &self,
        key: &str,
        target: &Path,
        has_record: impl Fn() -> bool,
    ) -> Result<Reservation, ReserveError> {
        let taken = || ReserveError::Taken(key.to_owned());
        let file = match File::open(target) {
            Ok(file) => file,
            // Released meanwhile: the ID is in flux; the racer that
            // released it or a newer one has it.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(taken()),
            Err(e) => return Err(io_err("open", target)(e)),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(taken()),
            Err(fs::TryLockError::Error(e)) => return Err(io_err("lock", target)(e)),
        }
        // Locked: is it still linked at `target` (not released and
        // replaced while we waited for the lock)?
        let held = file.metadata().map_err(io_err("stat", target))?;
        let linked = match fs::symlink_metadata(target) {
            Ok(m) => m.dev() == held.dev() && m.ino() == held.ino(),
            Err(_) => false,
        };
        if !linked || has_record() {
            return Err(taken());
        }
        tracing::info!(key, "taking over a stale ID reservation");
        Ok(Reservation {
            path: target.to_owned(),
            lock: Some(file),
        })
    }

    /// Releases `key` (its container's record was removed).
    pub fn release(&self, key: &str) -> Result<(), ReserveError> {
        let path = self.path(key);
        match fs::remove_dir(&path) {
            Ok(()) => {
                // And the namespace when it was the last one.
                let _ = fs::remove_dir(&self.root);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &path)(e)),
        }
    }

    /// Removes reservations nobody holds a lock on and no record uses,
    /// and half-made ones of killed launches; returns their keys.
    pub fn sweep(&self, has_record: impl Fn(&str) -> bool) -> Result<Vec<String>, ReserveError> {
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("read", &self.root)(e)),
        };
        let mut removed = Vec::new();
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let path = entry.path();
            // Only directories we made; never follow anything else.
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Ok(file) = File::open(&path) else {
                continue;
            };
            if file.try_lock().is_err() {
                continue;
            }
            let pending = name.starts_with(TMP_PREFIX);
            if !pending && has_record(&name) {
                continue;
            }
            if fs::remove_dir(&path).is_ok() && !pending {
                removed.push(name);
            }
        }
        Ok(removed)
    }
}

/// Opens and locks a directory we just created.
fn lock_dir(path: &Path) -> Result<File, ReserveError> {
    let file = File::open(path).map_err(io_err("open", path))?;
    file.lock().map_err(io_err("lock", path))?;
    Ok(file)
}

impl Reservation {
    /// Keeps the reservation: the container now has a record, which holds
    /// the ID until it is removed (and the reservation released with it).
    pub fn keep(mut self) {
        self.lock = None;
        self.path = PathBuf::new();
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.path.as_os_str().is_empty() {
            return;
        }
        // Removed while still locked, so no take-over can see it free.
        if let Err(e) = fs::remove_dir(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "failed to release an ID reservation");
        }
        self.lock = None;
        // The namespace directory too, when this was its last entry.
        if let Some(root) = self.path.parent() {
            let _ = fs::remove_dir(root);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Barrier};

    use super::*;

    #[test]
    fn one_of_many_racing_threads_wins() {
        let dir = tempfile::tempdir().unwrap();
        let registry = IdRegistry::new(dir.path());
        for round in 0..20 {
            let key = format!("k{round}");
            let barrier = Arc::new(Barrier::new(8));
            // What the containerizers' records would say: the winner's
            // record exists before it keeps the reservation.
            let recorded = Arc::new(AtomicBool::new(false));
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    let registry = registry.clone();
                    let barrier = barrier.clone();
                    let key = key.clone();
                    let recorded = recorded.clone();
                    std::thread::spawn(move || {
                        barrier.wait();
                        match registry.reserve(&key, || recorded.load(Ordering::SeqCst)) {
                            Ok(r) => {
                                // Hold it like a launch in progress would.
                                std::thread::sleep(std::time::Duration::from_millis(20));
                                recorded.store(true, Ordering::SeqCst);
                                r.keep();
                                true
                            }
                            Err(ReserveError::Taken(k)) => {
                                assert_eq!(k, key);
                                false
                            }
                            Err(e) => panic!("{e}"),
                        }
                    })
                })
                .collect();
            let wins: Vec<bool> = threads.into_iter().map(|t| t.join().unwrap()).collect();
            assert_eq!(wins.iter().filter(|w| **w).count(), 1, "round {round}");
        }
        // Nothing half-made is left.
        let names: Vec<_> = fs::read_dir(dir.path().join(IDS_SUBDIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 20);
        assert!(names.iter().all(|n| !n.starts_with(TMP_PREFIX)));
    }

    #[test]
    fn a_failed_launch_releases_and_a_record_keeps() {
        let dir = tempfile::tempdir().unwrap();
        let registry = IdRegistry::new(dir.path());
        drop(registry.reserve("a", || false).unwrap());
        assert!(!registry.path("a").exists());
        // A refused launch leaves nothing, not even the namespace.
        assert!(!dir.path().join(IDS_SUBDIR).exists());
        registry.reserve("a", || false).unwrap().keep();
        assert!(registry.path("a").is_dir());
        // Kept with a record: taken.
        assert!(matches!(
            registry.reserve("a", || true),
            Err(ReserveError::Taken(_))
        ));
        // Kept, but the record is gone (removed without a release): stale.
        registry.reserve("a", || false).unwrap().keep();
        registry.release("a").unwrap();
        assert!(!registry.path("a").exists());
        registry.release("a").unwrap();
    }

    #[test]
    fn a_record_without_a_reservation_still_takes_the_id() {
        let dir = tempfile::tempdir().unwrap();
        let registry = IdRegistry::new(dir.path());
        assert!(matches!(
            registry.reserve("old", || true),
            Err(ReserveError::Taken(_))
        ));
        assert!(!registry.path("old").exists());
    }

    #[test]
    fn a_held_reservation_is_not_taken_over_or_swept() {
        let dir = tempfile::tempdir().unwrap();
        let registry = IdRegistry::new(dir.path());
        let held = registry.reserve("h", || false).unwrap();
        assert!(matches!(
            registry.reserve("h", || false),
            Err(ReserveError::Taken(_))
        ));
        assert!(registry.sweep(|_| false).unwrap().is_empty());
        held.keep();
        assert_eq!(registry.sweep(|_| true).unwrap(), Vec::<String>::new());
        assert_eq!(registry.sweep(|_| false).unwrap(), ["h"]);
    }
}
