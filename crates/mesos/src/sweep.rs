//! Automatic clean-up of terminated containers' state (Deimos issue #1:
//! its state directory grew forever unless an operator ran `state --rm`).
//!
//! A sweep scans every container, so it must not run on every launch: the
//! time of the last sweep is the modification time of
//! `<runtime_dir>/last-sweep`, and a launch only `stat(2)`s that file until
//! the interval has passed. The sweep itself runs under an exclusive
//! non-blocking `flock(2)` on `<runtime_dir>/sweep.lock`, so when two
//! launches find the stamp stale at once, one sweeps and the other goes on.
//! Containers are removed only when their own operation lock is free
//! (see [`MesosContainerizer::remove_terminated`]), so a sweep never races
//! a wait or destroy of the same container.

use std::fs::{self, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use phobos_core::ContainerId;

use crate::containerizer::{ContainerizerError, MesosContainerizer};

/// The stamp whose mtime is the time of the last sweep.
pub const SWEEP_STAMP: &str = "last-sweep";
/// The lock serializing sweeps.
pub const SWEEP_LOCK: &str = "sweep.lock";

/// When sweeps happen and what they remove.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SweepPolicy {
    /// At most one sweep per interval.
    pub every: Duration,
    /// Only containers that terminated at least this long ago.
    pub older_than: Duration,
}

impl Default for SweepPolicy {
    /// Every 10 minutes, containers that ended an hour ago or more: long
    /// enough for an agent to have collected the termination.
    fn default() -> Self {
        Self {
            every: Duration::from_secs(600),
            older_than: Duration::from_secs(3600),
        }
    }
}

/// Errors of a sweep.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("failed to {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Containerizer(#[from] ContainerizerError),
}

impl MesosContainerizer {
    /// Sweeps terminated containers if the last sweep is older than
    /// `policy.every` and no other process is sweeping. Returns the removed
    /// IDs, or `None` when no sweep was due (the common case: one `stat`).
    pub fn sweep_if_due(
        &self,
        policy: SweepPolicy,
    ) -> Result<Option<Vec<ContainerId>>, SweepError> {
        let root = self.store().root().to_owned();
        let stamp = root.join(SWEEP_STAMP);
        if !is_due(&stamp, policy.every) {
            return Ok(None);
        }
        let lock_path = root.join(SWEEP_LOCK);
        // Neither file is opened through a symlink.
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(&lock_path)
            .map_err(io_err("open", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => return Err(io_err("lock", &lock_path)(e)),
        }
        // Another process may have swept between our stat and our lock.
        if !is_due(&stamp, policy.every) {
            return Ok(None);
        }
        OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(&stamp)
            .map_err(io_err("create", &stamp))?;
        let removed = self.remove_terminated(Some(policy.older_than))?;
        if !removed.is_empty() {
            tracing::info!(
                count = removed.len(),
                "removed the state of terminated containers"
            );
        }
        drop(lock);
        Ok(Some(removed))
    }
}

/// Whether the stamp is missing or older than `every`.
fn is_due(stamp: &Path, every: Duration) -> bool {
    match fs::metadata(stamp).and_then(|m| m.modified()) {
        Ok(at) => SystemTime::now()
            .duration_since(at)
            .is_ok_and(|age| age >= every),
        Err(_) => true,
    }
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SweepError {
    let path = path.to_owned();
    move |source| SweepError::Io { op, path, source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    #[test]
    fn a_fresh_stamp_is_not_due_and_a_missing_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let stamp = dir.path().join(SWEEP_STAMP);
        assert!(is_due(&stamp, Duration::from_secs(600)));
        File::create(&stamp).unwrap();
        assert!(!is_due(&stamp, Duration::from_secs(600)));
        assert!(is_due(&stamp, Duration::ZERO));
    }

    #[test]
    fn sweeps_once_per_interval_and_not_while_locked() {
        let runtime = tempfile::tempdir().unwrap();
        let work = tempfile::tempdir().unwrap();
        let c = MesosContainerizer::new(runtime.path(), work.path(), Path::new("/bin/false"));
        let policy = SweepPolicy {
            every: Duration::from_secs(600),
            older_than: Duration::ZERO,
        };
        // Someone else sweeping: we skip without waiting.
        let held = File::create(runtime.path().join(SWEEP_LOCK)).unwrap();
        held.lock().unwrap();
        assert_eq!(c.sweep_if_due(policy).unwrap(), None);
        drop(held);
        assert_eq!(c.sweep_if_due(policy).unwrap(), Some(vec![]));
        assert!(runtime.path().join(SWEEP_STAMP).exists());
        assert_eq!(c.sweep_if_due(policy).unwrap(), None);
    }
}
