//! The open(2) and flock(2) primitives of the runtime store: checkpoint
//! and lock files opened owner-only with `O_NOFOLLOW`, directory locks,
//! and serialized checkpoints.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::Serialize;

use super::{StoreError, io_err};

pub(super) fn json_bytes<T: Serialize>(path: &Path, value: &T) -> Result<Vec<u8>, StoreError> {
    // Compact: records are read back by every `ps`, `stats` and `recover`
    // over thousands of containers, where whitespace is parse time.
    let mut bytes = serde_json::to_vec(value).map_err(|source| StoreError::Corrupt {
        path: path.to_owned(),
        source,
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

pub(super) fn cstring(path: &Path) -> Result<CString, StoreError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| StoreError::Io {
        op: "use",
        path: path.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"),
    })
}

/// Options for a checkpoint file: private to the owner (the command line
/// and environment are in them) and never opened through a symlink.
pub(super) fn private_file() -> OpenOptions {
    let mut options = OpenOptions::new();
    options
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW);
    options
}

pub(super) fn open_lock_file(path: &Path, create: bool) -> Result<File, StoreError> {
    OpenOptions::new()
        .read(true)
        .write(create)
        .create(create)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
        .map_err(io_err("open", path))
}

/// A container directory, for its `flock(2)`; not through a symlink.
pub(super) fn open_dir(dir: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_DIRECTORY)
        .open(dir)
        .map_err(io_err("open", dir))
}

/// An exclusive `flock(2)` on a container directory, released on drop or
/// when the holding process dies.
#[derive(Debug)]
pub struct OpLock {
    _file: File,
}

impl OpLock {
    /// Blocks until the lock is ours.
    pub(super) fn acquire(dir: &Path) -> Result<Self, StoreError> {
        let file = open_dir(dir)?;
        file.lock().map_err(io_err("lock", dir))?;
        Ok(Self { _file: file })
    }

    /// The lock if nobody holds it.
    pub(super) fn try_acquire(dir: &Path) -> Result<Option<Self>, StoreError> {
        Self::try_acquire_file(open_dir(dir)?, dir)
    }

    /// [`Self::acquire`] on an open directory (`dir` names it in errors).
    pub(super) fn acquire_file(file: File, dir: &Path) -> Result<Self, StoreError> {
        file.lock().map_err(io_err("lock", dir))?;
        Ok(Self { _file: file })
    }

    /// [`Self::try_acquire`] on an open directory.
    pub(super) fn try_acquire_file(file: File, dir: &Path) -> Result<Option<Self>, StoreError> {
        match file.try_lock() {
            Ok(()) => Ok(Some(Self { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(io_err("lock", dir)(e)),
        }
    }
}
