//! Creating a container's sandbox, the one host directory a container's
//! command writes to (its `stdout`, `stderr` and fetched files), for both
//! containerizers.
//!
//! Phobos's own sandboxes are `<work_dir>/containers/<id>`. Whoever can
//! write under the work directory's `containers` (a parent container, once
//! sandboxes nest, or anyone who planted a symlink there) must not be able
//! to point a new sandbox somewhere else, nor hand a new container an old
//! sandbox with someone else's files in it. So an own sandbox is made with
//! `mkdirat(2)` beneath the work directory's descriptor, following no
//! symlink on the way ([`crate::safe_fs`]), and must not exist yet: a
//! directory, file or symlink already there was put there by someone else
//! and is refused. A sandbox chosen by a Mesos agent (outside the work
//! directory, the agent's executor directory) is used as given.
//!
//! The functions take the directory a sandbox is made beneath as `base`:
//! the work directory, or for a nested container the top-level container's
//! sandbox that holds it.

use std::path::{Path, PathBuf};

use crate::safe_fs::{SafeDir, SafeFsError};

/// Why a sandbox cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "the sandbox {} already exists and was not created for this container; remove it or use another --id",
        .0.display()
    )]
    Exists(PathBuf),
    #[error("failed to prepare the sandbox: {0}")]
    Unsafe(#[from] SafeFsError),
}

/// A sandbox made (or, for an agent's, opened) for a new container.
#[derive(Debug)]
pub struct Sandbox {
    /// The sandbox directory, opened without following symlinks.
    pub dir: SafeDir,
    /// Whether this call made the directory (always, for Phobos's own).
    pub created: bool,
}

/// `sandbox` relative to `work_dir` when it is Phobos's own: strictly
/// beneath the work directory; `None` for an agent's sandbox.
pub fn own_relative<'a>(work_dir: &Path, sandbox: &'a Path) -> Option<&'a Path> {
    sandbox
        .strip_prefix(work_dir)
        .ok()
        .filter(|rel| rel.components().next().is_some())
}

/// Checks, before anything is written, that Phobos's own sandbox does not
/// exist yet and that no symlink leads to where it will be. An agent's
/// sandbox passes.
pub fn check_new(work_dir: &Path, sandbox: &Path) -> Result<(), SandboxError> {
    let Some(rel) = own_relative(work_dir, sandbox) else {
        return Ok(());
    };
    let root = match SafeDir::open_trusted(work_dir) {
        Ok(root) => root,
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let parent = match rel.parent().map(|p| root.open_dir(p)) {
        Some(Ok(parent)) => parent,
        Some(Err(e)) if e.is_not_found() => return Ok(()),
        Some(Err(e)) => return Err(e.into()),
        None => root,
    };
    match parent.open_dir(rel.file_name().unwrap_or_default()) {
        Err(e) if e.is_not_found() => Ok(()),
        _ => Err(SandboxError::Exists(sandbox.to_owned())),
    }
}

/// Makes the sandbox: Phobos's own with exactly `mode`, its missing parents
/// 0755 beneath `work_dir` (made 0755 if missing), following no symlink
/// and failing with [`SandboxError::Exists`] if anything is already there;
/// an agent's is created if missing (like `mkdir -p`, the path is the
/// agent's) and opened.
pub fn create(work_dir: &Path, sandbox: &Path, mode: u32) -> Result<Sandbox, SandboxError> {
    let Some(rel) = own_relative(work_dir, sandbox) else {
        let created = std::fs::symlink_metadata(sandbox).is_err();
        let dir = SafeDir::create_trusted(sandbox, 0o755)?;
        return Ok(Sandbox { dir, created });
    };
    let root = SafeDir::create_trusted(work_dir, 0o755)?;
    let parent = match rel.parent() {
        Some(p) if p.components().next().is_some() => root.create_dir_all(p, 0o755)?,
        _ => root,
    };
    let dir = parent
        .create_dir(rel.file_name().unwrap_or_default(), mode)
        .map_err(|e| {
            if e.is_already_exists() {
                SandboxError::Exists(sandbox.to_owned())
            } else {
                e.into()
            }
        })?;
    Ok(Sandbox { dir, created: true })
}

/// Removes a sandbox [`create`] made (a failed launch's): Phobos's own
/// beneath `work_dir` without following symlinks, an agent's by path.
pub fn remove(work_dir: &Path, sandbox: &Path) -> Result<(), SafeFsError> {
    match own_relative(work_dir, sandbox) {
        Some(rel) => crate::safe_fs::remove_beneath(work_dir, rel),
        None => match std::fs::remove_dir_all(sandbox) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(SafeFsError::Io {
                op: "remove",
                path: sandbox.to_owned(),
                source: e,
            }),
            _ => Ok(()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    #[test]
    fn own_sandboxes_are_made_fresh_beneath_the_work_dir_only() {
        let (work, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let sandbox = work.path().join("containers/a");
        check_new(work.path(), &sandbox).unwrap();
        let made = create(work.path(), &sandbox, 0o700).unwrap();
        assert!(made.created);
        let mode = std::fs::metadata(&sandbox).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        // A second time, it is someone else's.
        assert!(matches!(
            check_new(work.path(), &sandbox),
            Err(SandboxError::Exists(_))
        ));
        assert!(matches!(
            create(work.path(), &sandbox, 0o700),
            Err(SandboxError::Exists(_))
        ));
        // A symlink where the sandbox goes is refused, not followed.
        let planted = work.path().join("containers/b");
        symlink(outside.path(), &planted).unwrap();
        assert!(matches!(
            check_new(work.path(), &planted),
            Err(SandboxError::Exists(_))
        ));
        assert!(matches!(
            create(work.path(), &planted, 0o700),
            Err(SandboxError::Exists(_))
        ));
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        // So is a symlinked `containers` directory.
        let other = tempfile::tempdir().unwrap();
        symlink(outside.path(), other.path().join("containers")).unwrap();
        let through = other.path().join("containers/c");
        let err = check_new(other.path(), &through).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        let err = create(other.path(), &through, 0o700)
            .unwrap_err()
            .to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        // Removal goes beneath the work directory.
        remove(work.path(), &sandbox).unwrap();
        assert!(!sandbox.exists());
    }

    #[test]
    fn an_agents_sandbox_is_used_as_given() {
        let (work, agent) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let existing = create(work.path(), agent.path(), 0o700).unwrap();
        assert!(!existing.created);
        let fresh = agent.path().join("executor/run");
        check_new(work.path(), &fresh).unwrap();
        assert!(create(work.path(), &fresh, 0o700).unwrap().created);
        remove(work.path(), &fresh).unwrap();
        assert!(!fresh.exists());
    }
}
