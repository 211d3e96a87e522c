//! Creating and opening files and directories beneath a trusted directory
//! without ever following a symbolic link or leaving it through `..`.
//!
//! Sandboxes, runtime directories and unpacked layers are directories whose
//! contents someone else may control (a container's user, an image, a
//! parent container). A path joined under them and handed to `open(2)` or
//! `chown(2)` follows whatever symlinks that someone planted, so every
//! access here starts at a directory *file descriptor* the caller trusts
//! ([`SafeDir`]) and resolves a relative path beneath it:
//!
//! - with `openat2(2)` and `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` (Linux
//!   5.6+), where the kernel refuses any symlink (`ELOOP`) and any escape
//!   (`EXDEV`) anywhere in the path, atomically;
//! - on kernels without `openat2` (`ENOSYS`), one `openat(2)` per component
//!   with `O_NOFOLLOW | O_DIRECTORY`, after `..` and absolute paths were
//!   refused up front, which gives the same guarantee one step at a time.
//!
//! Directories are made with `mkdirat(2)` relative to the parent's
//! descriptor and then opened with the same rules, so a directory swapped
//! for a symlink between the two calls is refused, never followed. Every
//! descriptor is `O_CLOEXEC`. Files opened for appending or reading must be
//! regular files (opened `O_NONBLOCK` first, so a planted FIFO can neither
//! block nor be used).

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Errors of [`SafeDir`] operations; each names the full path involved.
#[derive(Debug, thiserror::Error)]
pub enum SafeFsError {
    /// The path is not one this module will resolve (a symlink on the way,
    /// `..`, an absolute path, or a file of the wrong type).
    #[error("refusing {}: {reason}", path.display())]
    Refused { path: PathBuf, reason: String },
    #[error("failed to {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl SafeFsError {
    /// The I/O error kind, for callers that treat "missing" or "exists"
    /// specially; `None` for a refusal.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            Self::Io { source, .. } => Some(source.kind()),
            Self::Refused { .. } => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.io_kind() == Some(io::ErrorKind::NotFound)
    }

    pub fn is_already_exists(&self) -> bool {
        self.io_kind() == Some(io::ErrorKind::AlreadyExists)
    }

    /// The full path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Refused { path, .. } | Self::Io { path, .. } => path,
        }
    }
}

impl From<SafeFsError> for io::Error {
    fn from(e: SafeFsError) -> Self {
        let kind = e.io_kind().unwrap_or(io::ErrorKind::PermissionDenied);
        io::Error::new(kind, e.to_string())
    }
}

type Result<T> = std::result::Result<T, SafeFsError>;

/// An open directory that paths are resolved beneath. Its own path is only
/// kept for messages; every operation goes through the descriptor.
#[derive(Debug)]
pub struct SafeDir {
    file: File,
    path: PathBuf,
}

impl SafeDir {
    /// Opens a directory the caller trusts by its path (symlinks in *this*
    /// path are followed: it comes from the administrator, not from a
    /// container).
    pub fn open_trusted(path: &Path) -> Result<Self> {
        let c = cstring(path)?;
        // SAFETY: `c` is a valid NUL-terminated path; the returned fd, if
        // any, is owned by us from here on.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io_error(
                "open",
                path.to_owned(),
                io::Error::last_os_error(),
            ));
        }
        Ok(Self {
            // SAFETY: `fd` was just returned by open(2) and nothing else owns it.
            file: unsafe { File::from_raw_fd(fd) },
            path: path.to_owned(),
        })
    }

    /// Creates (like `mkdir -p`, following symlinks: the path is trusted)
    /// and opens a trusted directory; new directories get `mode`.
    pub fn create_trusted(path: &Path, mode: u32) -> Result<Self> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(path)
            .map_err(|e| io_error("create", path.to_owned(), e))?;
        Self::open_trusted(path)
    }

    /// A directory descriptor handed over by another process (an
    /// inherited descriptor); `path` only names it in messages. Anything
    /// but a directory is refused.
    pub fn from_fd(fd: std::os::fd::OwnedFd, path: &Path) -> Result<Self> {
        let file = File::from(fd);
        match file.metadata() {
            Ok(m) if m.is_dir() => Ok(Self {
                file,
                path: path.to_owned(),
            }),
            Ok(_) => Err(io_error(
                "open",
                path.to_owned(),
                io::Error::from_raw_os_error(libc::ENOTDIR),
            )),
            Err(e) => Err(io_error("open", path.to_owned(), e)),
        }
    }

    /// The directory's path (for messages and for handing to other tools).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory as a [`File`] (for `fstat`, `flock`, `fchown`).
    pub fn as_file(&self) -> &File {
        &self.file
    }

    /// The directory's descriptor, to hand to another process.
    pub fn into_file(self) -> File {
        self.file
    }

    /// A second handle on the same directory.
    pub fn try_clone(&self) -> Result<Self> {
        Ok(Self {
            file: self
                .file
                .try_clone()
                .map_err(|e| io_error("duplicate", self.path.clone(), e))?,
            path: self.path.clone(),
        })
    }

    /// Opens the directory `rel` beneath this one.
    pub fn open_dir(&self, rel: impl AsRef<Path>) -> Result<Self> {
        let rel = rel.as_ref();
        let fd = self.resolve(rel, libc::O_RDONLY | libc::O_DIRECTORY, 0, "open")?;
        Ok(self.child(rel, fd))
    }

    /// Creates the directory `rel` (its parent must exist) with exactly
    /// `mode` (not masked by the umask) and opens it. Fails with
    /// `AlreadyExists` if anything is already there, so the caller knows
    /// the directory is its own.
    pub fn create_dir(&self, rel: impl AsRef<Path>, mode: u32) -> Result<Self> {
        let rel = rel.as_ref();
        let (parent, name) = self.split(rel)?;
        let dir = self.mkdir_in(&parent, name, mode, rel)?;
        ensure_mode(&dir.file, mode)
            .map_err(|e| io_error("set the mode of", self.path.join(rel), e))?;
        Ok(dir)
    }

    /// Creates `rel` and its missing parents beneath this directory (like
    /// `mkdir -p`), refusing symlinks on the way. Directories made here get
    /// exactly `mode`; existing ones are kept as they are.
    pub fn create_dir_all(&self, rel: impl AsRef<Path>, mode: u32) -> Result<Self> {
        let rel = rel.as_ref();
        let names = components(&self.path, rel)?;
        let mut cur = self.try_clone()?;
        let mut sofar = PathBuf::new();
        for name in names {
            sofar.push(name);
            cur = match self.mkdir_in(&cur, name, mode, &sofar) {
                Ok(dir) => {
                    ensure_mode(&dir.file, mode)
                        .map_err(|e| io_error("set the mode of", self.path.join(&sofar), e))?;
                    dir
                }
                Err(e) if e.is_already_exists() => {
                    let fd = cur.resolve(
                        Path::new(name),
                        libc::O_RDONLY | libc::O_DIRECTORY,
                        0,
                        "open",
                    )?;
                    self.child(&sofar, fd)
                }
                Err(e) => return Err(e),
            };
        }
        Ok(cur)
    }

    /// Opens `rel` with `open(2)` `flags` (and `mode` when creating);
    /// `O_NOFOLLOW | O_CLOEXEC` are always added. The general form of the
    /// helpers below.
    pub fn open_file(&self, rel: impl AsRef<Path>, flags: libc::c_int, mode: u32) -> Result<File> {
        let fd = self.resolve(rel.as_ref(), flags, mode, "open")?;
        Ok(File::from(fd))
    }

    /// Creates the regular file `rel`, which must not exist, with exactly
    /// `mode`, open for writing.
    pub fn create_file(&self, rel: impl AsRef<Path>, mode: u32) -> Result<File> {
        let rel = rel.as_ref();
        let file = self.open_file(rel, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, mode)?;
        ensure_mode(&file, mode)
            .map_err(|e| io_error("set the mode of", self.path.join(rel), e))?;
        Ok(file)
    }

    /// Opens the regular file `rel` for appending, creating it with `mode`
    /// (masked by the umask) if missing.
    pub fn append_file(&self, rel: impl AsRef<Path>, mode: u32) -> Result<File> {
        self.open_regular(
            rel.as_ref(),
            libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT,
            mode,
        )
    }

    /// Opens the regular file `rel` for writing in place (no truncation,
    /// no append), creating it with `mode` (masked by the umask) if missing.
    pub fn write_file(&self, rel: impl AsRef<Path>, mode: u32) -> Result<File> {
        self.open_regular(rel.as_ref(), libc::O_WRONLY | libc::O_CREAT, mode)
    }

    /// Opens the regular file `rel` for reading.
    pub fn read_file(&self, rel: impl AsRef<Path>) -> Result<File> {
        self.open_regular(rel.as_ref(), libc::O_RDONLY, 0)
    }

    /// Changes this directory's owner (`fchown(2)` on the descriptor).
    pub fn chown(&self, uid: u32, gid: u32) -> Result<()> {
        std::os::unix::fs::fchown(&self.file, Some(uid), Some(gid))
            .map_err(|e| io_error("chown", self.path.clone(), e))
    }

    /// Sets this directory's mode (`fchmod(2)` on the descriptor).
    pub fn set_mode(&self, mode: u32) -> Result<()> {
        self.file
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| io_error("set the mode of", self.path.clone(), e))
    }

    /// This directory's owner uid and permission bits.
    pub fn owner_and_mode(&self) -> Result<(u32, u32)> {
        let meta = self
            .file
            .metadata()
            .map_err(|e| io_error("stat", self.path.clone(), e))?;
        Ok((meta.uid(), meta.mode() & 0o7777))
    }

    /// Removes the entry `name` of this directory and, if it is a
    /// directory, everything in it; a symlink is removed, never followed.
    /// A missing entry is not an error.
    pub fn remove_all(&self, name: impl AsRef<Path>) -> Result<()> {
        let full = self.path.join(name.as_ref());
        let name = single_name(&self.path, name.as_ref())?;
        // `/proc/self/fd/N` names this very directory whatever its path
        // became; std's remove_dir_all does not follow symlinks inside.
        let via = PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd())).join(name);
        match std::fs::symlink_metadata(&via) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_error("stat", full, e)),
            Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&via),
            Ok(_) => std::fs::remove_file(&via),
        }
        .or_else(|e| match e.kind() {
            io::ErrorKind::NotFound => Ok(()),
            _ => Err(e),
        })
        .map_err(|e| io_error("remove", full, e))
    }

    fn open_regular(&self, rel: &Path, flags: libc::c_int, mode: u32) -> Result<File> {
        let fd = self.resolve(rel, flags | libc::O_NONBLOCK, mode, "open")?;
        let full = self.path.join(rel);
        let file = File::from(fd);
        let meta = file
            .metadata()
            .map_err(|e| io_error("stat", full.clone(), e))?;
        if !meta.is_file() {
            return Err(SafeFsError::Refused {
                path: full,
                reason: "not a regular file".into(),
            });
        }
        // SAFETY: F_GETFL/F_SETFL on a descriptor we own.
        let set = unsafe {
            let fl = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
            fl >= 0 && libc::fcntl(file.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK) == 0
        };
        if !set {
            return Err(io_error("set flags of", full, io::Error::last_os_error()));
        }
        Ok(file)
    }

    /// `mkdirat` + safe open of `name` in `parent`; `rel` (relative to
    /// `self`) is for messages and the new handle's path.
    fn mkdir_in(&self, parent: &SafeDir, name: &OsStr, mode: u32, rel: &Path) -> Result<Self> {
        let full = self.path.join(rel);
        let c = CString::new(name.as_bytes()).map_err(|_| nul_error(&full))?;
        // SAFETY: valid directory fd and NUL-terminated name.
        let rc =
            unsafe { libc::mkdirat(parent.file.as_raw_fd(), c.as_ptr(), mode as libc::mode_t) };
        if rc != 0 {
            return Err(io_error("create", full, io::Error::last_os_error()));
        }
        let fd = parent.resolve(
            Path::new(name),
            libc::O_RDONLY | libc::O_DIRECTORY,
            0,
            "open",
        )?;
        Ok(self.child(rel, fd))
    }

    /// The parent directory of `rel` (opened safely) and its last name.
    fn split<'a>(&self, rel: &'a Path) -> Result<(SafeDir, &'a OsStr)> {
        let names = components(&self.path, rel)?;
        let Some((last, parents)) = names.split_last() else {
            return Err(SafeFsError::Refused {
                path: self.path.join(rel),
                reason: "empty path".into(),
            });
        };
        let parent = if parents.is_empty() {
            self.try_clone()?
        } else {
            self.open_dir(parents.iter().collect::<PathBuf>())?
        };
        Ok((parent, last))
    }

    fn child(&self, rel: &Path, fd: OwnedFd) -> Self {
        Self {
            file: File::from(fd),
            path: self.path.join(rel),
        }
    }

    fn resolve(
        &self,
        rel: &Path,
        flags: libc::c_int,
        mode: u32,
        op: &'static str,
    ) -> Result<OwnedFd> {
        open_beneath(self.file.as_fd(), &self.path, rel, flags, mode, op, true)
    }
}

/// Checks that a directory a user who is not root keeps private state in
/// (its runtime or work directory) is in that user's hands: `path`, if it
/// exists, is owned by `uid`, and it and every existing ancestor is owned
/// by `uid` or root and writable by nobody else (a root-owned sticky
/// directory such as `/tmp` excepted). So a `/tmp/phobos-UID` that someone
/// else created first (say 0777 by root) is refused, not used.
pub fn check_private_dir(path: &Path, uid: u32) -> Result<()> {
    let refuse = |at: &Path, why: String| SafeFsError::Refused {
        path: path.to_owned(),
        reason: if at == path {
            why
        } else {
            format!("{} {why}", at.display())
        },
    };
    let mut first = true;
    for at in path.ancestors() {
        let meta = match std::fs::metadata(at) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error("inspect", at.to_owned(), e)),
        };
        let (owner, mode) = (meta.uid(), meta.mode() & 0o7777);
        if first && at == path && owner != uid {
            return Err(refuse(
                at,
                format!("is owned by uid {owner}, not by uid {uid} who runs phobos"),
            ));
        }
        first = false;
        if owner != uid && owner != 0 {
            return Err(refuse(at, format!("is owned by uid {owner}")));
        }
        let shared = mode & 0o022 != 0;
        let sticky_root = owner == 0 && mode & 0o1000 != 0;
        if shared && !sticky_root {
            return Err(refuse(
                at,
                format!("is writable by other users (mode {mode:04o})"),
            ));
        }
    }
    Ok(())
}

/// Removes `rel` (and everything under it) beneath the trusted directory
/// `root`, following no symlink on the way or inside; a missing `root`,
/// parent or entry is not an error.
pub fn remove_beneath(root: &Path, rel: &Path) -> Result<()> {
    let names = components(root, rel)?;
    let Some((last, parents)) = names.split_last() else {
        return Err(SafeFsError::Refused {
            path: root.join(rel),
            reason: "empty path".into(),
        });
    };
    let missing = |e: SafeFsError| if e.is_not_found() { Ok(()) } else { Err(e) };
    let dir = match SafeDir::open_trusted(root) {
        Ok(dir) => dir,
        Err(e) => return missing(e),
    };
    let parent = match dir.open_dir(parents.iter().collect::<PathBuf>()) {
        Ok(parent) => parent,
        Err(e) => return missing(e),
    };
    parent.remove_all(last)
}

impl AsFd for SafeDir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// Resolves `rel` beneath `dir` (whose path is `base`, for messages) with
/// `openat2` when `try_openat2` and the kernel has it, else per component.
fn open_beneath(
    dir: BorrowedFd<'_>,
    base: &Path,
    rel: &Path,
    flags: libc::c_int,
    mode: u32,
    op: &'static str,
    try_openat2: bool,
) -> Result<OwnedFd> {
    let full = base.join(rel);
    let names = components(base, rel)?;
    let flags = flags | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // O_TMPFILE includes O_DIRECTORY's bit, so compare it whole.
    let creating = flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE;
    let mode = if creating { mode } else { 0 };
    if names.is_empty() {
        return openat(dir.as_raw_fd(), Path::new("."), flags, mode)
            .map_err(|e| classify(op, full, e));
    }
    let rel: PathBuf = names.iter().collect();
    if try_openat2 {
        match openat2(dir.as_raw_fd(), &rel, flags, mode) {
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {}
            other => {
                return other
                    .map_err(|e| classify(op, full, symlink_as_eloop(dir.as_raw_fd(), &rel, e)));
            }
        }
    }
    let (last, parents) = names.split_last().expect("checked non-empty");
    let mut held: Option<OwnedFd> = None;
    for name in parents {
        let cur = held.as_ref().map_or(dir.as_raw_fd(), |fd| fd.as_raw_fd());
        let next = openat_step(
            cur,
            name,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0,
        )
        .map_err(|e| classify(op, full.clone(), e))?;
        held = Some(next);
    }
    let cur = held.as_ref().map_or(dir.as_raw_fd(), |fd| fd.as_raw_fd());
    openat_step(cur, last, flags, mode).map_err(|e| classify(op, full, e))
}

/// One `openat` of a single name (the caller adds `O_NOFOLLOW`).
fn openat_step(dir: RawFd, name: &OsStr, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
    openat(dir, Path::new(name), flags, mode).map_err(|e| symlink_as_eloop(dir, Path::new(name), e))
}

/// `O_NOFOLLOW | O_DIRECTORY` on a symlink fails with `ENOTDIR` (also in
/// `openat2`, where earlier symlinks fail with `ELOOP`); reports it as
/// `ELOOP` so every symlink is refused alike.
fn symlink_as_eloop(dir: RawFd, rel: &Path, err: io::Error) -> io::Error {
    if err.raw_os_error() == Some(libc::ENOTDIR) {
        let Ok(c) = CString::new(rel.as_os_str().as_bytes()) else {
            return err;
        };
        // SAFETY: a zeroed stat is a valid out-buffer for fstatat(2).
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid directory fd, NUL-terminated name, valid out-pointer.
        let rc = unsafe { libc::fstatat(dir, c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
        if rc == 0 && st.st_mode & libc::S_IFMT == libc::S_IFLNK {
            return io::Error::from_raw_os_error(libc::ELOOP);
        }
    }
    err
}

/// `ELOOP` means a symlink was met and `EXDEV` an escape: both refusals.
fn classify(op: &'static str, path: PathBuf, e: io::Error) -> SafeFsError {
    match e.raw_os_error() {
        Some(libc::ELOOP) => SafeFsError::Refused {
            path,
            reason: "it is or passes through a symbolic link".into(),
        },
        Some(libc::EXDEV) => SafeFsError::Refused {
            path,
            reason: "it leads outside its directory".into(),
        },
        _ => io_error(op, path, e),
    }
}

/// The normal components of `rel`; `.` is skipped, `..` and absolute paths
/// are refused.
fn components<'a>(base: &Path, rel: &'a Path) -> Result<Vec<&'a OsStr>> {
    let mut out = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(name) => out.push(name),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(SafeFsError::Refused {
                    path: base.join(rel),
                    reason: "the path contains '..'".into(),
                });
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(SafeFsError::Refused {
                    path: base.join(rel),
                    reason: "the path is absolute".into(),
                });
            }
        }
    }
    Ok(out)
}

fn single_name<'a>(base: &Path, rel: &'a Path) -> Result<&'a OsStr> {
    match components(base, rel)?.as_slice() {
        [one] => Ok(one),
        _ => Err(SafeFsError::Refused {
            path: base.join(rel),
            reason: "not a single directory entry name".into(),
        }),
    }
}

fn openat(dir: RawFd, rel: &Path, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
    let c = CString::new(rel.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: valid directory fd and NUL-terminated path; the returned fd,
    // if any, is owned by us from here on.
    let fd = unsafe { libc::openat(dir, c.as_ptr(), flags, mode as libc::c_uint) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by openat(2) and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `struct open_how` of openat2(2) (libc's is non-exhaustive).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

fn openat2(dir: RawFd, rel: &Path, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
    let c = CString::new(rel.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    let how = OpenHow {
        flags: flags as u64,
        mode: u64::from(mode),
        resolve: libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
    };
    // SAFETY: openat2(2) with a valid directory fd, a NUL-terminated path
    // and a pointer to an `open_how` of the size passed; the returned fd,
    // if any, is owned by us from here on.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir,
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by openat2(2) and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn cstring(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| nul_error(path))
}

fn nul_error(path: &Path) -> SafeFsError {
    SafeFsError::Refused {
        path: path.to_owned(),
        reason: "the path contains a NUL byte".into(),
    }
}

fn io_error(op: &'static str, path: PathBuf, source: io::Error) -> SafeFsError {
    SafeFsError::Io { op, path, source }
}

/// Gives the just-created `file` exactly `mode` (which the umask may have
/// narrowed): `fchmod(2)` only when `fstat(2)` says the bits differ, since
/// a `fchmod` writes the inode (its ctime) even when the mode stays, one
/// journaled metadata update more per launch on a disk-backed work dir.
fn ensure_mode(file: &File, mode: u32) -> std::io::Result<()> {
    if file.metadata()?.mode() & 0o7777 == mode & 0o7777 {
        return Ok(());
    }
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, SafeDir, tempfile::TempDir) {
        let root = tempfile::tempdir().unwrap();
        let target = tempfile::tempdir().unwrap();
        let dir = SafeDir::open_trusted(root.path()).unwrap();
        (root, dir, target)
    }

    fn refused(r: Result<impl std::fmt::Debug>) -> String {
        match r {
            Err(e @ SafeFsError::Refused { .. }) => e.to_string(),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn modes_are_exact_under_a_umask_that_narrows_them() {
        let (_root, dir, _t) = setup();
        // SAFETY: umask only sets this process's file mode mask (nextest
        // runs each test in a process of its own).
        let old = unsafe { libc::umask(0o077) };
        let single = dir.create_dir("single", 0o755).unwrap();
        let nested = dir.create_dir_all("x/y", 0o750).unwrap();
        let file = dir.create_file("f", 0o644).unwrap();
        // SAFETY: as above, restoring the mask.
        unsafe { libc::umask(old) };
        assert_eq!(single.owner_and_mode().unwrap().1, 0o755);
        assert_eq!(nested.owner_and_mode().unwrap().1, 0o750);
        assert_eq!(file.metadata().unwrap().mode() & 0o7777, 0o644);
    }

    #[test]
    fn creates_nested_directories_and_files_with_exact_modes() {
        let (root, dir, _t) = setup();
        let sub = dir.create_dir_all("a/b/c", 0o700).unwrap();
        assert_eq!(sub.path(), root.path().join("a/b/c"));
        assert_eq!(sub.owner_and_mode().unwrap().1, 0o700);
        let again = dir.create_dir_all("a/b/c", 0o755).unwrap();
        assert_eq!(again.owner_and_mode().unwrap().1, 0o700, "existing kept");
        let mut f = sub.create_file("config", 0o600).unwrap();
        f.write_all(b"x").unwrap();
        let meta = std::fs::metadata(root.path().join("a/b/c/config")).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert!(
            dir.create_file("a/b/c/config", 0o600)
                .unwrap_err()
                .is_already_exists()
        );
        let mut s = String::new();
        dir.read_file("a/b/c/config")
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "x");
        let made = dir.create_dir("a/new", 0o711).unwrap();
        assert_eq!(made.owner_and_mode().unwrap().1, 0o711);
        assert!(
            dir.create_dir("a/new", 0o711)
                .unwrap_err()
                .is_already_exists()
        );
        assert!(dir.open_dir("missing").unwrap_err().is_not_found());
    }

    #[test]
    fn symlinks_are_refused_at_every_position() {
        let (root, dir, target) = setup();
        symlink(target.path(), root.path().join("link")).unwrap();
        std::fs::create_dir(root.path().join("real")).unwrap();
        symlink(target.path().join("f"), root.path().join("real/flink")).unwrap();
        for try_openat2 in [true, false] {
            let open = |rel: &str, flags| {
                open_beneath(
                    dir.as_fd(),
                    root.path(),
                    Path::new(rel),
                    flags,
                    0o644,
                    "open",
                    try_openat2,
                )
            };
            let rdir = libc::O_RDONLY | libc::O_DIRECTORY;
            let append = libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND;
            // The final component, an intermediate one, and a file.
            assert!(refused(open("link", rdir)).contains("symbolic link"));
            assert!(refused(open("link/x", append)).contains("symbolic link"));
            assert!(refused(open("real/flink", append)).contains("symbolic link"));
            assert!(refused(open("../x", append)).contains("'..'"));
            assert!(refused(open("/etc/passwd", libc::O_RDONLY)).contains("absolute"));
        }
        assert!(refused(dir.create_dir_all("link/sub", 0o700)).contains("symbolic link"));
        assert!(refused(dir.create_dir("link/sub", 0o700)).contains("symbolic link"));
        assert!(refused(dir.append_file("real/flink", 0o644)).contains("symbolic link"));
        // Nothing was created or changed in the target.
        assert_eq!(std::fs::read_dir(target.path()).unwrap().count(), 0);
    }

    #[test]
    fn only_regular_files_are_appended_to() {
        let (root, dir, _t) = setup();
        let fifo = CString::new(root.path().join("fifo").as_os_str().as_bytes()).unwrap();
        // SAFETY: valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        // Opening a FIFO for writing with no reader would block forever
        // without O_NONBLOCK; it must fail at once instead.
        assert!(dir.append_file("fifo", 0o644).is_err());
        std::fs::create_dir(root.path().join("d")).unwrap();
        assert!(dir.read_file("d").is_err());
        let mut f = dir.append_file("out", 0o644).unwrap();
        f.write_all(b"a").unwrap();
        dir.append_file("out", 0o644)
            .unwrap()
            .write_all(b"b")
            .unwrap();
        assert_eq!(std::fs::read(root.path().join("out")).unwrap(), b"ab");
    }

    #[test]
    fn remove_all_removes_a_symlink_not_its_target() {
        let (root, dir, target) = setup();
        std::fs::write(target.path().join("keep"), b"k").unwrap();
        symlink(target.path(), root.path().join("link")).unwrap();
        dir.remove_all("link").unwrap();
        assert!(target.path().join("keep").exists());
        assert!(!root.path().join("link").exists());
        dir.create_dir_all("t/u", 0o700).unwrap();
        symlink(target.path(), root.path().join("t/u/l")).unwrap();
        dir.remove_all("t").unwrap();
        assert!(!root.path().join("t").exists());
        assert!(target.path().join("keep").exists());
        dir.remove_all("t").unwrap();
        assert!(refused(dir.remove_all("../x")).contains("'..'"));
        // The same from a path, refusing a symlinked parent.
        dir.create_dir_all("p/q", 0o700).unwrap();
        std::fs::create_dir(target.path().join("q")).unwrap();
        std::fs::remove_dir_all(root.path().join("p")).unwrap();
        symlink(target.path(), root.path().join("p")).unwrap();
        assert!(refused(remove_beneath(root.path(), Path::new("p/q"))).contains("symbolic link"));
        assert!(target.path().join("q").exists());
        remove_beneath(root.path(), Path::new("missing/q")).unwrap();
    }

    #[test]
    fn privileged_private_dirs_must_belong_to_their_user() {
        let top = tempfile::tempdir().unwrap();
        let base = top.path().join("phobos-65534");
        std::fs::create_dir(&base).unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o777)).unwrap();
        // Pre-created 0777 by root: refused for the user, with or without
        // the runtime directory beneath it existing yet.
        let run = base.join("run");
        let err = check_private_dir(&run, 65534).unwrap_err().to_string();
        assert!(err.contains("writable by other users (mode 0777)"), "{err}");
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(&base, Some(65534), Some(65534)).unwrap();
        check_private_dir(&run, 65534).unwrap();
        // The directory itself created by someone else.
        std::fs::create_dir(&run).unwrap();
        let err = check_private_dir(&run, 65534).unwrap_err().to_string();
        assert!(err.contains("owned by uid 0, not by uid 65534"), "{err}");
        std::os::unix::fs::chown(&run, Some(65534), Some(65534)).unwrap();
        check_private_dir(&run, 65534).unwrap();
        // Owned by a third user on the way.
        std::os::unix::fs::chown(&base, Some(12345), Some(12345)).unwrap();
        let err = check_private_dir(&run, 65534).unwrap_err().to_string();
        assert!(err.contains("is owned by uid 12345"), "{err}");
        // /tmp itself (root, sticky, 1777) is fine.
        check_private_dir(&std::env::temp_dir().join("phobos-none-xyz/run"), 0).unwrap();
    }

    #[test]
    fn privileged_chown_applies_to_the_directory_not_a_swapped_in_link() {
        let (root, dir, target) = setup();
        let sub = dir.create_dir("s", 0o700).unwrap();
        // Swap the directory for a symlink after it was opened: the handle
        // still points at the real one.
        std::fs::rename(root.path().join("s"), root.path().join("moved")).unwrap();
        symlink(target.path(), root.path().join("s")).unwrap();
        sub.chown(65534, 65534).unwrap();
        assert_eq!(
            std::fs::metadata(root.path().join("moved")).unwrap().uid(),
            65534
        );
        assert_ne!(std::fs::metadata(target.path()).unwrap().uid(), 65534);
    }
}
