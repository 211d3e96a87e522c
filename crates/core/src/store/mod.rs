//! The runtime directory, the truth about every container (DESIGN.md
//! "On disk"):
//!
//! ```text
//! <runtime_dir>/containers/<id>/
//!     config       ContainerConfig (JSON)
//!     launch_info  what the isolators contributed (JSON)
//!     state        current state and when it was entered (JSON)
//!     pid          the init helper's pid (decimal)
//!     status       the command's wait status, written by init (JSON)
//!     termination  the final Termination (JSON)
//!     destroying   marker: a destroy was requested
//!     init.lock    held (flock LOCK_EX) by the init helper while it lives
//! ```
//!
//! Two `flock(2)` locks coordinate processes that never talk to each other:
//! the *operation lock* on the container directory itself serializes launch,
//! destroy and finalization; the *init lock* on `init.lock` is taken by the
//! launcher before the directory becomes visible and handed to the init
//! helper, so a blocking shared lock on it returns exactly when init is gone.
//! Checkpoints are written to a temporary file and `rename(2)`d into place.

mod at;
mod container;
mod containers;
mod files;
mod mounts;
#[cfg(test)]
mod tests;

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::{ContainerId, ContainerState, StateRecord};

pub use container::ContainerDir;
pub use containers::{Containers, Listing};
pub use files::OpLock;
use files::{cstring, json_bytes, open_lock_file, private_file};

pub const CONFIG_FILE: &str = "config";
pub const LAUNCH_INFO_FILE: &str = "launch_info";
pub const STATE_FILE: &str = "state";
pub const PID_FILE: &str = "pid";
pub const STATUS_FILE: &str = "status";
pub const TERMINATION_FILE: &str = "termination";
pub const DESTROYING_MARKER: &str = "destroying";
pub const INIT_LOCK_FILE: &str = "init.lock";
const CONTAINERS_DIR: &str = "containers";
const TMP_PREFIX: &str = ".tmp-";

/// Errors of the runtime store; each names the path involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("corrupt checkpoint {}: {source}", path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("corrupt checkpoint {}: '{value}' is not a pid", path.display())]
    BadPid { path: PathBuf, value: String },
    #[error("corrupt checkpoint {}: '{value}' is not a state", path.display())]
    BadState { path: PathBuf, value: String },
    #[error("container '{0}' already exists")]
    AlreadyExists(ContainerId),
    #[error("parent container '{0}' does not exist")]
    NoParent(ContainerId),
    #[error("refusing to remove {}: {} is mounted beneath it", path.display(), mount.display())]
    MountedBeneath { path: PathBuf, mount: PathBuf },
    #[error(transparent)]
    Unsafe(#[from] crate::SafeFsError),
}

pub(super) fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// The `<runtime_dir>` root.
#[derive(Clone, Debug)]
pub struct RuntimeStore {
    root: PathBuf,
}

impl RuntimeStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn containers_dir(&self) -> PathBuf {
        self.root.join(CONTAINERS_DIR)
    }

    /// `<root>/containers/<id>`; a nested container's directory is in
    /// its parent's: `<root>/containers/<parent>/containers/<child>`.
    fn container_path(&self, id: &ContainerId) -> PathBuf {
        self.containers_dir().join(id.nested_path(CONTAINERS_DIR))
    }

    /// The directory of a known container, or `None` if there is none (a
    /// symlink in its place is not followed: it is no container).
    pub fn open(&self, id: &ContainerId) -> Option<ContainerDir> {
        let path = self.container_path(id);
        let real_dir = fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        real_dir.then(|| ContainerDir {
            id: id.clone(),
            path,
            fd: None,
        })
    }

    /// Starts creating a container: a hidden directory, already holding the
    /// operation lock and the init lock, that becomes `<id>` on
    /// [`NewContainer::publish`]. Fails early when the ID is taken.
    pub fn create(&self, id: &ContainerId) -> Result<NewContainer, StoreError> {
        if fs::symlink_metadata(self.container_path(id)).is_ok() {
            return Err(StoreError::AlreadyExists(id.clone()));
        }
        // `containers` is made (or opened) without following a symlink in
        // its place; each container's directory is private (0700). A nested
        // container's goes into its parent's record, which must exist.
        let root = crate::SafeDir::create_trusted(&self.root, 0o755)?;
        let parent = match id.parent() {
            Some(parent) => {
                if self.open(&parent).is_none() {
                    return Err(StoreError::NoParent(parent));
                }
                let rel = Path::new(CONTAINERS_DIR)
                    .join(parent.nested_path(CONTAINERS_DIR))
                    .join(CONTAINERS_DIR);
                root.create_dir_all(&rel, 0o755)?
            }
            None => root.create_dir_all(CONTAINERS_DIR, 0o755)?,
        };
        let name = creation_name(id, uuid::Uuid::new_v4());
        let tmp = parent.create_dir(&name, 0o700)?.path().to_owned();
        let guard = TmpDirGuard(Some(tmp.clone()));
        let op_lock = OpLock::acquire(&tmp)?;
        let init_lock = open_lock_file(&tmp.join(INIT_LOCK_FILE), true)?;
        init_lock
            .lock()
            .map_err(io_err("lock", &tmp.join(INIT_LOCK_FILE)))?;
        Ok(NewContainer {
            dir: ContainerDir {
                id: id.clone(),
                path: tmp,
                fd: None,
            },
            final_path: self.container_path(id),
            op_lock,
            init_lock,
            guard,
        })
    }

    /// IDs of all containers with a runtime directory, nested ones
    /// included, sorted (a parent before its children).
    pub fn list(&self) -> Result<Vec<ContainerId>, StoreError> {
        Ok(self.containers()?.list()?.ids)
    }

    /// The IDs of the containers nested directly in `id`, sorted.
    pub fn children(&self, id: &ContainerId) -> Result<Vec<ContainerId>, StoreError> {
        let dir = self.container_path(id).join(CONTAINERS_DIR);
        if !fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
            return Ok(Vec::new());
        }
        let mut ids: Vec<ContainerId> = entries_of(&dir)?
            .into_iter()
            .filter_map(|name| ContainerId::new(name).ok())
            .filter_map(|leaf| id.child(&leaf).ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Removes terminated containers (ended at least `older_than` ago) that
    /// no other process holds, with their sandbox when it lies under
    /// `work_dir` (a sandbox elsewhere, such as a Mesos agent's executor
    /// directory, belongs to whoever chose it). Returns their IDs.
    pub fn remove_terminated(
        &self,
        older_than: Option<std::time::Duration>,
        work_dir: &Path,
    ) -> Result<Vec<ContainerId>, StoreError> {
        let mut removed = Vec::new();
        for id in self.list()? {
            if self.remove_if_terminated(&id, older_than, work_dir)? {
                removed.push(id);
            }
        }
        Ok(removed)
    }

    /// [`Self::remove_terminated`] for one container: true when it was
    /// terminated (long enough ago), unheld, and is now gone.
    pub fn remove_if_terminated(
        &self,
        id: &ContainerId,
        older_than: Option<std::time::Duration>,
        work_dir: &Path,
    ) -> Result<bool, StoreError> {
        let Some(dir) = self.open(id) else {
            return Ok(false);
        };
        let Some(op) = dir.try_lock_op()? else {
            return Ok(false);
        };
        self.remove_held(&dir, &op, older_than, work_dir)
    }

    /// [`Self::remove_if_terminated`] for a container whose operation lock
    /// the caller holds (`_op`), so that it can first finish what a
    /// recorded termination left to free.
    pub fn remove_held(
        &self,
        dir: &ContainerDir,
        _op: &OpLock,
        older_than: Option<std::time::Duration>,
        work_dir: &Path,
    ) -> Result<bool, StoreError> {
        let now = crate::time::now_secs();
        // A malformed entry whose init (if it ever had one) is gone is
        // removed whatever its age: nothing can ever read it.
        let malformed = dir.malformed().is_some() && !dir.init_alive()?;
        if !malformed {
            if !dir.exists(TERMINATION_FILE) {
                return Ok(false);
            }
            let ended = dir.state()?.map_or(0.0, |r| r.since);
            if older_than.is_some_and(|age| now - ended < age.as_secs_f64()) {
                return Ok(false);
            }
        }
        dir.remove_whole(work_dir)?;
        Ok(true)
    }

    /// Hidden directories of launches that never published, whose creator is
    /// gone (their operation lock is free). Recovery removes them.
    pub fn abandoned_creations(&self) -> Result<Vec<PathBuf>, StoreError> {
        Self::abandoned_of(&self.containers()?.list()?)
    }

    /// [`Self::abandoned_creations`] among those `listing` found (top-level
    /// ones and those of nested launches in every record).
    pub fn abandoned_of(listing: &Listing) -> Result<Vec<PathBuf>, StoreError> {
        let mut out = Vec::new();
        for path in listing.creations() {
            match OpLock::try_acquire(path) {
                Ok(Some(_)) => out.push(path.clone()),
                Ok(None) => {}
                // Published or removed by its creator since the listing.
                Err(StoreError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

/// The names in directory `dir` (none when it does not exist).
fn entries_of(dir: &Path) -> Result<Vec<String>, StoreError> {
    let read = match fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("list", dir)(e)),
    };
    let mut names = Vec::new();
    for entry in read {
        let entry = entry.map_err(io_err("list", dir))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

/// The hidden name a container is created under (see [`temporary_name`]).
fn creation_name(id: &ContainerId, unique: uuid::Uuid) -> String {
    temporary_name(TMP_PREFIX, id.leaf(), unique)
}

/// A hidden temporary name for `key` that always fits in `NAME_MAX`:
/// `prefix`, a UUID (what makes it unique), then as much of `key` as fits
/// (only for people reading the directory: nothing parses it), so that
/// every valid ID, up to Mesos's 242 bytes, can be created.
pub fn temporary_name(prefix: &str, key: &str, unique: uuid::Uuid) -> String {
    const NAME_MAX: usize = 255;
    let mut name = format!("{prefix}{}-", unique.simple());
    let mut room = NAME_MAX.saturating_sub(name.len());
    for c in key.chars() {
        if c.len_utf8() > room {
            break;
        }
        room -= c.len_utf8();
        name.push(c);
    }
    name
}

/// Removes an unpublished creation directory if the launch gives up early.
struct TmpDirGuard(Option<PathBuf>);

impl Drop for TmpDirGuard {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_dir_all(path);
        }
    }
}

/// A container being created: not yet visible under its ID.
pub struct NewContainer {
    dir: ContainerDir,
    final_path: PathBuf,
    op_lock: OpLock,
    init_lock: File,
    guard: TmpDirGuard,
}

impl NewContainer {
    pub fn dir(&self) -> &ContainerDir {
        &self.dir
    }

    /// Writes a checkpoint into the unpublished directory. Nobody can see it
    /// yet and `publish` is the atomic step, so a plain write suffices.
    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StoreError> {
        let path = self.dir.file(name);
        let bytes = json_bytes(&path, value)?;
        let mut file = private_file()
            .create_new(true)
            .open(&path)
            .map_err(io_err("create", &path))?;
        file.write_all(&bytes).map_err(io_err("write", &path))
    }

    /// Records the first state, like [`ContainerDir::set_state`].
    pub fn set_state(&self, state: ContainerState) -> Result<StateRecord, StoreError> {
        let record = StateRecord::now(state);
        let path = self.dir.file(STATE_FILE);
        std::os::unix::fs::symlink(record.to_link(), &path).map_err(io_err("create", &path))?;
        Ok(record)
    }

    /// Makes the container visible under its ID with `rename(2)` and
    /// `RENAME_NOREPLACE`, so two launches of one ID cannot both win.
    /// Returns the directory, the held operation lock and the held init lock.
    pub fn publish(mut self) -> Result<(ContainerDir, OpLock, File), StoreError> {
        let from = cstring(&self.dir.path)?;
        let to = cstring(&self.final_path)?;
        // SAFETY: both pointers are valid NUL-terminated strings that outlive
        // the call; AT_FDCWD makes the paths relative to the cwd as usual.
        let rc = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                from.as_ptr(),
                libc::AT_FDCWD,
                to.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if rc != 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EEXIST) {
                return Err(StoreError::AlreadyExists(self.dir.id.clone()));
            }
            return Err(io_err("rename into place", &self.final_path)(err));
        }
        self.guard.0 = None;
        self.dir.path = self.final_path.clone();
        Ok((self.dir, self.op_lock, self.init_lock))
    }
}
