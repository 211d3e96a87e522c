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

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{ContainerId, ContainerState, StateRecord};

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

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
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
        let mut ids = Vec::new();
        for name in entries_of(&self.containers_dir())? {
            if let Ok(id) = ContainerId::new(name) {
                self.collect_nested(&id, &mut ids)?;
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// The nested containers of `id`, at any depth, with their own.
    fn collect_nested(
        &self,
        id: &ContainerId,
        out: &mut Vec<ContainerId>,
    ) -> Result<(), StoreError> {
        let dir = self.container_path(id).join(CONTAINERS_DIR);
        // Only a real directory of the record, never a symlink.
        if !fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
            return Ok(());
        }
        for name in entries_of(&dir)? {
            let child = ContainerId::new(name)
                .ok()
                .and_then(|leaf| id.child(&leaf).ok());
            if let Some(child) = child {
                self.collect_nested(&child, out)?;
                out.push(child);
            }
        }
        Ok(())
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
        let now = crate::time::now_secs();
        let Some(dir) = self.open(id) else {
            return Ok(false);
        };
        let Some(_op) = dir.try_lock_op()? else {
            return Ok(false);
        };
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
        let mut out = Vec::new();
        // Top-level ones and those of nested launches in every record.
        let mut dirs = vec![self.containers_dir()];
        for id in self.list()? {
            let dir = self.container_path(&id).join(CONTAINERS_DIR);
            if fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
                dirs.push(dir);
            }
        }
        for dir in dirs {
            for name in entries_of(&dir)? {
                if !name.starts_with(TMP_PREFIX) {
                    continue;
                }
                let path = dir.join(&name);
                if OpLock::try_acquire(&path)?.is_some() {
                    out.push(path);
                }
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

/// Mount points at or beneath `path`, from `/proc/self/mountinfo`.
fn mounts_beneath(path: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let info = Path::new("/proc/self/mountinfo");
    let text = fs::read_to_string(info).map_err(io_err("read", info))?;
    Ok(mount_points(&text)
        .filter(|m| m.starts_with(path))
        .collect())
}

/// The mount points (field 5) of a mountinfo text, with the kernel's octal
/// escapes (`\040` for a space, ...) undone.
fn mount_points(mountinfo: &str) -> impl Iterator<Item = PathBuf> + '_ {
    mountinfo.lines().filter_map(|line| {
        let field = line.split(' ').nth(4)?;
        let raw = field.as_bytes();
        let mut out = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            let octal = raw.get(i + 1..i + 4).filter(|d| {
                raw[i] == b'\\'
                    && (b'0'..=b'3').contains(&d[0])
                    && d[1..].iter().all(|b| (b'0'..=b'7').contains(b))
            });
            match octal {
                Some(d) => {
                    out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                    i += 4;
                }
                None => {
                    out.push(raw[i]);
                    i += 1;
                }
            }
        }
        Some(PathBuf::from(std::ffi::OsString::from_vec(out)))
    })
}

fn json_bytes<T: Serialize>(path: &Path, value: &T) -> Result<Vec<u8>, StoreError> {
    // Compact: records are read back by every `ps`, `stats` and `recover`
    // over thousands of containers, where whitespace is parse time.
    let mut bytes = serde_json::to_vec(value).map_err(|source| StoreError::Corrupt {
        path: path.to_owned(),
        source,
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn cstring(path: &Path) -> Result<CString, StoreError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| StoreError::Io {
        op: "use",
        path: path.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"),
    })
}

/// Options for a checkpoint file: private to the owner (the command line
/// and environment are in them) and never opened through a symlink.
fn private_file() -> OpenOptions {
    let mut options = OpenOptions::new();
    options
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW);
    options
}

fn open_lock_file(path: &Path, create: bool) -> Result<File, StoreError> {
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
fn open_dir(dir: &Path) -> Result<File, StoreError> {
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
    fn acquire(dir: &Path) -> Result<Self, StoreError> {
        let file = open_dir(dir)?;
        file.lock().map_err(io_err("lock", dir))?;
        Ok(Self { _file: file })
    }

    /// The lock if nobody holds it.
    fn try_acquire(dir: &Path) -> Result<Option<Self>, StoreError> {
        let file = open_dir(dir)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(io_err("lock", dir)(e)),
        }
    }
}

/// One container's runtime directory.
#[derive(Clone, Debug)]
pub struct ContainerDir {
    id: ContainerId,
    path: PathBuf,
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
        OpLock::acquire(&self.path)
    }

    /// The operation lock if nobody else holds it.
    pub fn try_lock_op(&self) -> Result<Option<OpLock>, StoreError> {
        OpLock::try_acquire(&self.path)
    }

    /// Whether the init helper (or the launcher that will hand it the lock)
    /// is alive: someone holds `init.lock` exclusively.
    pub fn init_alive(&self) -> Result<bool, StoreError> {
        let path = self.file(INIT_LOCK_FILE);
        let file = match open_lock_file(&path, false) {
            Ok(file) => file,
            Err(StoreError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(false);
            }
            Err(e) => return Err(e),
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
        self.file(name).exists()
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
        let read = || -> io::Result<Vec<u8>> {
            let mut file = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
                .open(&path)?;
            let mut bytes = Vec::new();
            io::Read::read_to_end(&mut file, &mut bytes)?;
            Ok(bytes)
        };
        match read() {
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
        match fs::read_link(&path) {
            Ok(target) => {
                let text = target.to_string_lossy();
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
        match self.read_json::<crate::ContainerConfig>(CONFIG_FILE) {
            Ok(Some(_)) => {}
            Ok(None) => return Some(format!("{} is missing", self.file(CONFIG_FILE).display())),
            Err(e) => return Some(e.to_string()),
        }
        match self.state() {
            Ok(Some(_)) => None,
            Ok(None) => Some(format!("{} is missing", self.file(STATE_FILE).display())),
            Err(e) => Some(e.to_string()),
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

#[cfg(test)]
mod tests {
    #[test]
    fn every_valid_id_gets_a_creation_name_that_fits() {
        let unique = uuid::Uuid::new_v4();
        for id in [
            "a".to_owned(),
            "x".repeat(crate::id::MAX_CONTAINER_ID_LENGTH),
            "é".repeat(crate::id::MAX_CONTAINER_ID_LENGTH / 2),
        ] {
            let id = ContainerId::new(id).unwrap();
            let name = creation_name(&id, unique);
            assert!(name.len() <= 255, "{} bytes", name.len());
            assert!(name.starts_with(TMP_PREFIX));
            assert!(name.contains(&unique.simple().to_string()));
        }
        let short = creation_name(&ContainerId::new("web").unwrap(), unique);
        assert!(short.ends_with("-web"), "{short}");
    }

    use super::*;
    use crate::WaitStatus;
    use crate::termination::Termination;

    fn store() -> (tempfile::TempDir, RuntimeStore) {
        let tmp = tempfile::tempdir().unwrap();
        let store = RuntimeStore::new(tmp.path());
        (tmp, store)
    }

    fn id(s: &str) -> ContainerId {
        ContainerId::new(s).unwrap()
    }

    #[test]
    fn creation_is_invisible_until_published() {
        let (_tmp, store) = store();
        let new = store.create(&id("a")).unwrap();
        assert!(store.open(&id("a")).is_none());
        assert!(store.list().unwrap().is_empty());
        new.dir().write_json(CONFIG_FILE, &"x").unwrap();
        let (dir, _op, _init) = new.publish().unwrap();
        assert_eq!(store.list().unwrap(), vec![id("a")]);
        assert_eq!(dir.read_json::<String>(CONFIG_FILE).unwrap().unwrap(), "x");
    }

    #[test]
    fn duplicate_ids_are_refused_and_leave_the_first_alone() {
        let (_tmp, store) = store();
        let (dir, _op, _init) = store.create(&id("a")).unwrap().publish().unwrap();
        dir.write_atomic("marker", b"first").unwrap();
        assert!(matches!(
            store.create(&id("a")),
            Err(StoreError::AlreadyExists(_))
        ));
        // A race past the early check is caught by RENAME_NOREPLACE.
        fs::remove_dir_all(dir.path()).unwrap();
        let racing = store.create(&id("a")).unwrap();
        let (dir, _op, _init) = store.create(&id("a")).unwrap().publish().unwrap();
        dir.write_atomic("marker", b"winner").unwrap();
        assert!(matches!(
            racing.publish(),
            Err(StoreError::AlreadyExists(_))
        ));
        assert_eq!(dir.read("marker").unwrap().unwrap(), b"winner");
        let leftovers: Vec<_> = fs::read_dir(store.containers_dir()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "the losing creation was not cleaned up");
    }

    #[test]
    fn mount_points_are_unescaped() {
        let text = "22 1 0:21 / /proc rw - proc proc rw\n\
                    90 30 0:50 / /w/containers/a\\040b rw - tmpfs tmpfs rw\n";
        let points: Vec<PathBuf> = mount_points(text).collect();
        assert_eq!(
            points,
            [PathBuf::from("/proc"), PathBuf::from("/w/containers/a b")]
        );
        // Not an escape the kernel writes: kept as it is, no overflow.
        let odd: Vec<PathBuf> = mount_points("1 1 0:1 / /x\\777 rw").collect();
        assert_eq!(odd, [PathBuf::from("/x\\777")]);
    }

    #[test]
    fn privileged_remove_whole_never_removes_through_a_mount() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            println!("skipping privileged_remove_whole_never_removes_through_a_mount: needs root");
            return;
        }
        let (_tmp, store) = store();
        let work = tempfile::tempdir().unwrap();
        let (dir, _op, _init) = store.create(&id("a")).unwrap().publish().unwrap();
        let mounted = work.path().join("containers/a/rootfs");
        fs::create_dir_all(&mounted).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "tmpfs"])
            .arg(&mounted)
            .status()
            .unwrap();
        assert!(status.success());
        fs::write(mounted.join("precious"), "x").unwrap();
        let err = dir.remove_whole(work.path()).unwrap_err();
        let kept = mounted.join("precious").exists();
        let c = CString::new(mounted.as_os_str().as_bytes()).unwrap();
        // SAFETY: umount2 of the tmpfs mounted above.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        assert!(matches!(err, StoreError::MountedBeneath { .. }), "{err}");
        assert!(kept, "a file behind the mount was removed");
        assert!(dir.path().exists(), "the record went without its sandbox");
        dir.remove_whole(work.path()).unwrap();
        assert!(!dir.path().exists());
    }

    #[test]
    fn remove_whole_takes_the_sandbox_and_leaves_other_dirs() {
        let (_tmp, store) = store();
        let work = tempfile::tempdir().unwrap();
        let (dir, _op, _init) = store.create(&id("a")).unwrap().publish().unwrap();
        let sandbox = work.path().join("containers/a");
        fs::create_dir_all(sandbox.join("sub")).unwrap();
        fs::write(sandbox.join("sub/f"), "x").unwrap();
        // A symlinked sandbox is removed as a link, its target kept.
        let (dir_b, _op_b, _init_b) = store.create(&id("b")).unwrap().publish().unwrap();
        let target = tempfile::tempdir().unwrap();
        fs::write(target.path().join("keep"), "x").unwrap();
        std::os::unix::fs::symlink(target.path(), work.path().join("containers/b")).unwrap();
        dir.remove_whole(work.path()).unwrap();
        dir_b.remove_whole(work.path()).unwrap();
        assert!(!sandbox.exists() && !dir.path().exists());
        assert!(fs::symlink_metadata(work.path().join("containers/b")).is_err());
        assert!(target.path().join("keep").exists());
        assert!(!dir_b.path().exists());
    }

    #[test]
    fn dropped_creation_leaves_nothing() {
        let (_tmp, store) = store();
        drop(store.create(&id("a")).unwrap());
        assert_eq!(fs::read_dir(store.containers_dir()).unwrap().count(), 0);
    }

    #[test]
    fn init_lock_tracks_its_holder() {
        let (_tmp, store) = store();
        let (dir, _op, init_lock) = store.create(&id("a")).unwrap().publish().unwrap();
        assert!(dir.init_alive().unwrap());
        drop(init_lock);
        assert!(!dir.init_alive().unwrap());
        dir.wait_for_init_exit().unwrap();
    }

    #[test]
    fn operation_lock_excludes_others() {
        let (_tmp, store) = store();
        let (dir, op, _init) = store.create(&id("a")).unwrap().publish().unwrap();
        assert!(dir.try_lock_op().unwrap().is_none());
        drop(op);
        assert!(dir.try_lock_op().unwrap().is_some());
    }

    #[test]
    fn abandoned_creations_are_found_only_when_unlocked() {
        let (_tmp, store) = store();
        let live = store.create(&id("a")).unwrap();
        assert!(store.abandoned_creations().unwrap().is_empty());
        // Simulate a creator that died: keep the directory, drop the locks.
        let path = live.dir().path().to_owned();
        std::mem::forget(live.guard);
        drop(live.op_lock);
        assert_eq!(store.abandoned_creations().unwrap(), vec![path]);
    }

    #[test]
    fn checkpoints_round_trip_and_report_corruption() {
        let (_tmp, store) = store();
        let (dir, _op, _init) = store.create(&id("a")).unwrap().publish().unwrap();
        let t = Termination::from_exit(WaitStatus::exited(3));
        dir.write_json(TERMINATION_FILE, &t).unwrap();
        assert_eq!(
            dir.read_json::<Termination>(TERMINATION_FILE).unwrap(),
            Some(t)
        );
        assert_eq!(dir.read_json::<Termination>("missing").unwrap(), None);
        dir.write_atomic(PID_FILE, b"12x\n").unwrap();
        let err = dir.pid().unwrap_err().to_string();
        assert!(err.contains("'12x' is not a pid"), "{err}");
        // An older runtime dir's JSON state file is still read, and a
        // corrupt one is reported.
        dir.write_atomic(STATE_FILE, b"{").unwrap();
        assert!(matches!(dir.state(), Err(StoreError::Corrupt { .. })));
        let legacy = StateRecord::now(ContainerState::Fetching);
        dir.write_json(STATE_FILE, &legacy).unwrap();
        assert_eq!(dir.state().unwrap(), Some(legacy));
        let r = dir.set_state(ContainerState::Running).unwrap();
        assert_eq!(dir.state().unwrap(), Some(r));
        assert!(
            fs::symlink_metadata(dir.file(STATE_FILE))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        fs::remove_file(dir.file(STATE_FILE)).unwrap();
        std::os::unix::fs::symlink("RUNNING soon", dir.file(STATE_FILE)).unwrap();
        let err = dir.state().unwrap_err().to_string();
        assert!(err.contains("'RUNNING soon' is not a state"), "{err}");
    }
}
