//! One container's runtime directory: its checkpoints (written to a
//! temporary file and `rename(2)`d into place), its `flock(2)` locks, and
//! its removal (never through a mount or a symlink).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{ContainerId, ContainerState, StateRecord};

use super::at;
use super::files::{OpLock, json_bytes, open_lock_file, private_file};
use super::mounts::mounts_beneath;
use super::*;

/// One container's runtime directory.
#[derive(Clone, Debug)]
pub struct ContainerDir {
    pub(super) id: ContainerId,
    pub(super) path: PathBuf,
    /// The directory itself, when it was opened through
    /// [`super::Containers`]: its files are then looked up by their one
    /// name below it (`openat(2)`) instead of by `path` from `/`.
    pub(super) fd: Option<Arc<OwnedFd>>,
}

impl ContainerDir {
    pub fn id(&self) -> &ContainerId {
        &self.id
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Blocks until this process holds the operation lock.
    pub fn lock_op(&self) -> Result<OpLock, StoreError> {
        match self.reopen()? {
            Some(file) => OpLock::acquire_file(file, &self.path),
            None => OpLock::acquire(&self.path),
        }
    }

    /// The operation lock if nobody else holds it.
    pub fn try_lock_op(&self) -> Result<Option<OpLock>, StoreError> {
        match self.reopen()? {
            Some(file) => OpLock::try_acquire_file(file, &self.path),
            None => OpLock::try_acquire(&self.path),
        }
    }

    /// A new open file description of the directory (`openat(fd, ".")`:
    /// a `flock(2)` belongs to one), when it was opened by descriptor.
    fn reopen(&self) -> Result<Option<fs::File>, StoreError> {
        let Some(fd) = &self.fd else {
            return Ok(None);
        };
        at::open_dir(fd.as_raw_fd(), c".")
            .map(|fd| Some(fs::File::from(fd)))
            .map_err(io_err("open", &self.path))
    }

    /// Opens file `name` of the record for reading, never through a
    /// symlink: below the directory's descriptor when there is one.
    fn open_file(&self, name: &str) -> io::Result<fs::File> {
        match &self.fd {
            Some(fd) => {
                let c = at::c_name(name.as_ref())?;
                at::open(fd.as_raw_fd(), &c, libc::O_RDONLY).map(fs::File::from)
            }
            None => OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
                .open(self.file(name)),
        }
    }

    /// Whether the init helper (or the launcher that will hand it the lock)
    /// is alive: someone holds `init.lock` exclusively.
    pub fn init_alive(&self) -> Result<bool, StoreError> {
        let path = self.file(INIT_LOCK_FILE);
        let file = match self.open_file(INIT_LOCK_FILE) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err("open", &path)(e)),
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(false),
            Err(fs::TryLockError::WouldBlock) => Ok(true),
            Err(fs::TryLockError::Error(e)) => Err(io_err("lock", &path)(e)),
        }
    }

    /// Blocks (no polling) until the init helper has exited.
    pub fn wait_for_init_exit(&self) -> Result<(), StoreError> {
        let path = self.file(INIT_LOCK_FILE);
        let file = match open_lock_file(&path, false) {
            Ok(file) => file,
            Err(StoreError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        file.lock_shared().map_err(io_err("lock", &path))
    }

    pub fn exists(&self, name: &str) -> bool {
        match &self.fd {
            Some(fd) => at::c_name(name.as_ref())
                .and_then(|c| at::stat(fd.as_raw_fd(), &c, true))
                .is_ok(),
            None => self.file(name).exists(),
        }
    }

    /// Writes `bytes` to `name` atomically (temporary file, then rename).
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let target = self.file(name);
        let tmp = self.file(&format!(".{name}.{}", std::process::id()));
        let written = private_file()
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io_err("create", &tmp))
            .and_then(|mut file| file.write_all(bytes).map_err(io_err("write", &tmp)))
            .and_then(|()| fs::rename(&tmp, &target).map_err(io_err("rename into place", &target)));
        if written.is_err() {
            // A full filesystem must not leave the temporary behind.
            let _ = fs::remove_file(&tmp);
        }
        written
    }

    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StoreError> {
        let bytes = json_bytes(&self.file(name), value)?;
        self.write_atomic(name, &bytes)
    }

    /// Reads a checkpoint; `None` when the file does not exist.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.file(name);
        match self.open_file(name).and_then(|file| at::read_all(&file)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &path)(e)),
        }
    }

    pub fn read_json<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, StoreError> {
        let Some(bytes) = self.read(name)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StoreError::Corrupt {
                path: self.file(name),
                source,
            })
    }

    /// The current state. It is stored as the target of the `state`
    /// symlink (`"RUNNING 1795291261.07"`): replacing a symlink by rename is
    /// as atomic as replacing a file, but on ext4 replacing a regular file
    /// that has fresh data starts its writeback (`auto_da_alloc`), which
    /// stalled launches by milliseconds on a busy disk. A regular JSON
    /// `state` file (older runtime directories) is still read.
    pub fn state(&self) -> Result<Option<StateRecord>, StoreError> {
        let path = self.file(STATE_FILE);
        let target = match &self.fd {
            Some(fd) => {
                at::c_name(STATE_FILE.as_ref()).and_then(|c| at::readlink(fd.as_raw_fd(), &c))
            }
            None => fs::read_link(&path).map(|t| t.into_os_string().into_vec()),
        };
        match target {
            Ok(target) => {
                let text = String::from_utf8_lossy(&target);
                StateRecord::from_link(&text)
                    .map(Some)
                    .ok_or_else(|| StoreError::BadState {
                        path: path.clone(),
                        value: text.into_owned(),
                    })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self.read_json(STATE_FILE),
            Err(e) => Err(io_err("read", &path)(e)),
        }
    }

    pub fn set_state(&self, state: ContainerState) -> Result<StateRecord, StoreError> {
        let record = StateRecord::now(state);
        let tmp = self.file(&format!(".{STATE_FILE}.{}", std::process::id()));
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(record.to_link(), &tmp).map_err(io_err("create", &tmp))?;
        let target = self.file(STATE_FILE);
        if let Err(e) = fs::rename(&tmp, &target) {
            let _ = fs::remove_file(&tmp);
            return Err(io_err("rename into place", &target)(e));
        }
        Ok(record)
    }

    pub fn pid(&self) -> Result<Option<i32>, StoreError> {
        let Some(bytes) = self.read(PID_FILE)? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&bytes);
        text.trim()
            .parse()
            .map(Some)
            .map_err(|_| StoreError::BadPid {
                path: self.file(PID_FILE),
                value: text.trim().to_owned(),
            })
    }

    /// Records that a destroy was asked for, so a launch in another process
    /// stops at its next transition.
    pub fn mark_destroying(&self) -> Result<(), StoreError> {
        let path = self.file(DESTROYING_MARKER);
        private_file()
            .create(true)
            .truncate(false)
            .open(&path)
            .map(drop)
            .map_err(io_err("create", &path))
    }

    pub fn destroy_requested(&self) -> bool {
        self.exists(DESTROYING_MARKER)
    }

    /// Removes the temporaries (`.NAME.PID`) that writers killed between
    /// creating and renaming them left behind. Only for a caller that
    /// holds the operation lock while init is gone: nobody else writes then.
    pub fn remove_temporaries(&self) -> Result<(), StoreError> {
        let read = match fs::read_dir(&self.path) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err("list", &self.path)(e)),
        };
        for entry in read {
            let entry = entry.map_err(io_err("list", &self.path))?;
            if entry.file_name().as_bytes().starts_with(b".") {
                let path = entry.path();
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err("remove", &path)(e)),
                }
            }
        }
        Ok(())
    }

    /// Why this entry is not a usable container record (no or unreadable
    /// `config` or `state`), or `None` when it is one. Every published
    /// record has both: they are written before it becomes visible.
    pub fn malformed(&self) -> Option<String> {
        self.well_formed().err()
    }

    /// The config and state when both are present and readable (what
    /// [`ContainerDir::malformed`] checks), so a caller that goes on to
    /// use them reads each once; otherwise what is wrong.
    pub fn well_formed(&self) -> Result<(crate::ContainerConfig, StateRecord), String> {
        let config = match self.read_json::<crate::ContainerConfig>(CONFIG_FILE) {
            Ok(Some(config)) => config,
            Ok(None) => return Err(format!("{} is missing", self.file(CONFIG_FILE).display())),
            Err(e) => return Err(e.to_string()),
        };
        match self.state() {
            Ok(Some(state)) => Ok((config, state)),
            Ok(None) => Err(format!("{} is missing", self.file(STATE_FILE).display())),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Removes the sandbox when it lies under `work_dir` (a sandbox
    /// elsewhere, such as a Mesos agent's executor directory, belongs to
    /// whoever chose it), then the runtime directory: whatever is removed is
    /// removed whole, so a later container with this ID starts afresh.
    /// The sandbox of an entry with no readable config is the default one.
    pub fn remove_whole(&self, work_dir: &Path) -> Result<(), StoreError> {
        let sandbox = match self.read_json::<crate::ContainerConfig>(CONFIG_FILE) {
            Ok(Some(config)) => config.sandbox,
            _ => work_dir
                .join(CONTAINERS_DIR)
                .join(self.id.nested_path(CONTAINERS_DIR)),
        };
        // Beneath the work directory only, following no symlink on the way
        // (a symlinked `containers`) or inside, and refusing `..`.
        let beneath = sandbox.strip_prefix(work_dir).ok().filter(|rel| {
            !rel.components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        });
        if let Some(rel) = beneath {
            // Removing through a mount would delete whatever it shows (a
            // root filesystem, a volume): whoever mounted it unmounts it
            // first (the isolators' cleanup), or nothing is removed.
            if let Some(mount) = mounts_beneath(&sandbox)?.into_iter().next() {
                return Err(StoreError::MountedBeneath {
                    path: sandbox,
                    mount,
                });
            }
            crate::safe_fs::remove_beneath(work_dir, rel)?;
        }
        self.remove()
    }

    /// Removes the whole runtime directory.
    pub fn remove(&self) -> Result<(), StoreError> {
        match fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &self.path)(e)),
        }
    }
}
