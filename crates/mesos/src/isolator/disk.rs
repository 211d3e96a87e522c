//! `disk/du` (Mesos `posix/disk.cpp`): the sandbox's size on disk, as
//! `du -s` counts it (allocated 512-byte blocks from lstat(2), each inode
//! once), reported as `disk_used_bytes` next to `disk_limit_bytes`.
//!
//! Mesos re-measures every `--container_disk_watch_interval` in the agent
//! and, with `--enforce_container_disk_quota`, destroys a container over its
//! `disk` with `REASON_CONTAINER_LIMITATION_DISK`. Phobos has no agent
//! process that outlives `phobos run -d`, so the watcher is the container's
//! own init helper: this isolator puts a [`DiskWatch`] in the launch info,
//! and init measures the sandbox at that interval (between reaping and
//! forwarding signals), kills the command when it is over the limit and
//! records the limitation in `status`. `phobos stats` measures on demand.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use phobos_core::{ContainerConfig, ContainerId, Reason, ResourceStatistics};

use super::{Isolator, IsolatorError, Limitation, UsageContext};
use crate::launch_info::{Contribution, DiskWatch};

/// Bytes allocated to `path` and everything below it, each inode counted
/// once, symlinks not followed. Entries that vanish during the walk are
/// skipped; an unreadable `path` itself is an error.
pub fn disk_usage(path: &Path) -> io::Result<u64> {
    // The measured directory itself may be named through a link (init
    // measures a sandbox it pinned as /proc/self/fd/N before entering a
    // root filesystem); nothing beneath it is followed.
    let meta = fs::metadata(path)?;
    let mut seen = HashSet::new();
    let mut total = 0u64;
    let mut stack = vec![(path.to_owned(), meta)];
    while let Some((p, m)) = stack.pop() {
        if m.nlink() > 1 && !seen.insert((m.dev(), m.ino())) {
            continue;
        }
        total = total.saturating_add(m.blocks().saturating_mul(512));
        if m.is_dir() {
            let Ok(entries) = fs::read_dir(&p) else {
                continue;
            };
            for entry in entries.flatten() {
                if let Ok(em) = entry.metadata() {
                    stack.push((entry.path(), em));
                }
            }
        }
    }
    Ok(total)
}

/// The disk limitation's message and resources (Mesos's wording).
pub fn disk_limitation(used: u64, limit: u64) -> Limitation {
    Limitation {
        reason: Reason::ContainerLimitationDisk,
        message: format!("Disk usage ({used} bytes) exceeds quota ({limit} bytes)"),
        resources: vec!["disk".into()],
    }
}

#[derive(Debug)]
pub struct DiskDu {
    sandbox: PathBuf,
    limit: Option<u64>,
    enforce: bool,
    interval_secs: f64,
}

impl DiskDu {
    pub fn new(config: &super::Spec<'_>) -> Self {
        Self {
            sandbox: config.sandbox.to_owned(),
            limit: config.resources.disk_bytes(),
            enforce: config.isolator_flags.enforce_container_disk_quota,
            interval_secs: config.isolator_flags.container_disk_watch_interval_secs,
        }
    }
}

impl Isolator for DiskDu {
    fn name(&self) -> &'static str {
        "disk/du"
    }

    fn prepare(&self, _config: &ContainerConfig) -> Result<Option<Contribution>, IsolatorError> {
        let disk_watch = match (self.enforce, self.limit) {
            (true, Some(limit_bytes)) => Some(DiskWatch {
                path: self.sandbox.clone(),
                limit_bytes,
                interval_secs: self.interval_secs,
            }),
            _ => None,
        };
        Ok(Some(Contribution {
            disk_watch,
            ..Contribution::default()
        }))
    }

    fn usage(
        &self,
        id: &ContainerId,
        _ctx: &UsageContext<'_>,
    ) -> Result<Option<ResourceStatistics>, IsolatorError> {
        let used = disk_usage(&self.sandbox).map_err(|e| IsolatorError::Failed {
            isolator: "disk/du",
            id: id.clone(),
            message: format!("failed to measure {}: {e}", self.sandbox.display()),
        })?;
        Ok(Some(ResourceStatistics {
            disk_used_bytes: Some(used),
            disk_limit_bytes: self.limit,
            ..ResourceStatistics::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_allocated_blocks_once_per_inode() {
        let dir = tempfile::tempdir().unwrap();
        let empty = disk_usage(dir.path()).unwrap();
        let data = vec![1u8; 256 * 1024];
        fs::write(dir.path().join("a"), &data).unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::hard_link(dir.path().join("a"), dir.path().join("sub/b")).unwrap();
        std::os::unix::fs::symlink("/usr", dir.path().join("link")).unwrap();
        let used = disk_usage(dir.path()).unwrap();
        assert!(used >= empty + 256 * 1024, "{used}");
        assert!(
            used < empty + 2 * 256 * 1024,
            "hard link counted twice: {used}"
        );
        assert!(disk_usage(&dir.path().join("missing")).is_err());
        let l = disk_limitation(10, 5);
        assert_eq!(l.reason, Reason::ContainerLimitationDisk);
        assert_eq!(l.resources, ["disk"]);
    }
}
