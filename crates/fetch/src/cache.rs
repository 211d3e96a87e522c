//! The fetcher cache (Mesos `--fetcher_cache_dir`, `--fetcher_cache_size`,
//! `CommandInfo.URI.cache`): a URI asked for with `cache` is downloaded
//! once into a directory shared by every launch on the host and copied
//! from there into each sandbox.
//!
//! - An entry is keyed by the task's user and the URI (Mesos's
//!   `<user>@<uri>`), named by the SHA-256 of that key: `<hex>` is the
//!   file, `<hex>.lock` the lock every launch that wants it takes with
//!   `flock(2)` (`LOCK_EX`), so concurrent launches of one URI download it
//!   once: the first downloads, the others wait on the lock and then find
//!   the entry. The lock file is checked to still be linked after it is
//!   locked (an eviction may have removed it meanwhile).
//! - A download goes to `<hex>.part` and is renamed into place only when
//!   complete (the length the server announced, checked); a failed or
//!   interrupted one leaves no entry, and its `.part` is removed by the
//!   next launch that wants the key, or by an eviction.
//! - Eviction is least-recently-used by size: an entry's mtime is set at
//!   every use, and before a download (and after it lands) entries are
//!   removed oldest first, skipping any whose lock another launch holds,
//!   until the total fits `fetcher_cache_size`. A URI whose size is
//!   unknown (no `Content-Length`) or larger than the whole cache is
//!   fetched directly, as Mesos does. `<dir>/.lock` serialises evictions.
//! - Everything is opened beneath the cache directory's descriptor with
//!   `O_NOFOLLOW` (`phobos_core::safe_fs`): a symlink or anything but a
//!   regular file found at an entry's name is removed, never followed or
//!   read. The directory is 0700 and must be private to this user; entries
//!   are 0600 (MESOS-7298).

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::SystemTime;

use phobos_core::SafeDir;
use sha2::{Digest, Sha256};

/// Mesos's `--fetcher_cache_size` default: 2 GB.
pub const DEFAULT_CACHE_SIZE: u64 = 2 * 1024 * 1024 * 1024;

/// Where the cache is and how large it may grow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheSettings {
    pub dir: PathBuf,
    pub max_bytes: u64,
}

/// Why the cache could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("fetcher cache {path}: {source}", path = path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("fetcher cache: {0}")]
    Fs(#[from] phobos_core::SafeFsError),
}

fn io_err(path: PathBuf, source: io::Error) -> CacheError {
    CacheError::Io { path, source }
}

/// The entry name of `uri` fetched for `uid` (`None`: no user given).
pub fn entry_name(uri: &str, uid: Option<u32>) -> String {
    let key = match uid {
        Some(uid) => format!("{uid}@{uri}"),
        None => uri.to_owned(),
    };
    let digest = Sha256::digest(key.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The open cache directory.
pub(crate) struct Cache {
    dir: SafeDir,
    max_bytes: u64,
}

/// A locked entry: while it lives, no other launch downloads or evicts it.
pub(crate) struct Locked<'a> {
    cache: &'a Cache,
    name: String,
    _lock: File,
}

impl Cache {
    /// Opens (creating, 0700) the cache directory, which must be private
    /// to the user running phobos.
    pub(crate) fn open(settings: &CacheSettings) -> Result<Self, CacheError> {
        let dir = SafeDir::create_trusted(&settings.dir, 0o700)?;
        // SAFETY: geteuid(2) cannot fail and has no preconditions.
        let me = unsafe { libc::geteuid() };
        phobos_core::safe_fs::check_private_dir(&settings.dir, me)?;
        Ok(Cache {
            dir,
            max_bytes: settings.max_bytes,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Locks the entry `name` (waiting for a launch that holds it, e.g.
    /// while it downloads), and drops any `.part` it left.
    pub(crate) fn lock(&self, name: &str) -> Result<Locked<'_>, CacheError> {
        let lock_name = format!("{name}.lock");
        loop {
            let lock = self.dir.open_file(
                &lock_name,
                libc::O_RDWR | libc::O_CREAT | libc::O_NONBLOCK,
                0o600,
            )?;
            flock(&lock, libc::LOCK_EX).map_err(|e| io_err(self.path(&lock_name), e))?;
            // Still the file at that name (not one an eviction unlinked
            // after we opened it)?
            let held = lock
                .metadata()
                .map_err(|e| io_err(self.path(&lock_name), e))?;
            match self.stat(&lock_name)? {
                Some(now) if now.ino() == held.ino() && now.dev() == held.dev() => {
                    if !now.is_file() {
                        return Err(io_err(
                            self.path(&lock_name),
                            io::Error::other("not a regular file"),
                        ));
                    }
                }
                _ => continue,
            }
            self.dir.remove_all(format!("{name}.part"))?;
            return Ok(Locked {
                cache: self,
                name: name.to_owned(),
                _lock: lock,
            });
        }
    }

    /// `lstat` of `name` in the cache directory (`None`: absent).
    fn stat(&self, name: &str) -> Result<Option<std::fs::Metadata>, CacheError> {
        let via =
            PathBuf::from(format!("/proc/self/fd/{}", self.dir.as_file().as_raw_fd())).join(name);
        match std::fs::symlink_metadata(&via) {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(self.path(name), e)),
        }
    }

    /// Removes entries, least recently used first, until `incoming` more
    /// bytes fit; entries another launch holds (and `keep`) are skipped.
    /// Returns whether they fit.
    pub(crate) fn make_room(&self, incoming: u64, keep: &str) -> Result<bool, CacheError> {
        let global = self.dir.open_file(
            ".lock",
            libc::O_RDWR | libc::O_CREAT | libc::O_NONBLOCK,
            0o600,
        )?;
        flock(&global, libc::LOCK_EX).map_err(|e| io_err(self.path(".lock"), e))?;
        let mut entries = Vec::new();
        let mut total = 0u64;
        let listing =
            std::fs::read_dir(format!("/proc/self/fd/{}", self.dir.as_file().as_raw_fd()))
                .map_err(|e| io_err(self.dir.path().to_owned(), e))?;
        for item in listing {
            let item = item.map_err(|e| io_err(self.dir.path().to_owned(), e))?;
            let Some(name) = item.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let (stem, part) = match name.strip_suffix(".part") {
                Some(stem) => (stem, true),
                None => (name.as_str(), false),
            };
            if !is_key(stem) {
                continue;
            }
            let Some(meta) = self.stat(&name)? else {
                continue;
            };
            // A regular file's blocks count (a planted symlink is removed
            // by the next launch that wants its key).
            let size = if meta.is_file() { meta.len() } else { 0 };
            total += size;
            if part {
                continue; // being downloaded, or stale: its key's lock decides
            }
            entries.push((
                meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                name,
                size,
            ));
        }
        entries.sort();
        for (_, name, size) in entries {
            if total.saturating_add(incoming) <= self.max_bytes {
                break;
            }
            if name == keep {
                continue;
            }
            let lock_name = format!("{name}.lock");
            let Ok(lock) = self.dir.open_file(
                &lock_name,
                libc::O_RDWR | libc::O_CREAT | libc::O_NONBLOCK,
                0o600,
            ) else {
                continue;
            };
            if flock(&lock, libc::LOCK_EX | libc::LOCK_NB).is_err() {
                continue; // in use by another launch
            }
            self.dir.remove_all(&name)?;
            self.dir.remove_all(format!("{name}.part"))?;
            self.dir.remove_all(&lock_name)?;
            total = total.saturating_sub(size);
        }
        Ok(total.saturating_add(incoming) <= self.max_bytes)
    }

    /// The largest entry the cache takes.
    pub(crate) fn max_bytes(&self) -> u64 {
        self.max_bytes
    }
}

impl Locked<'_> {
    /// The entry, if it is there: a regular file, 0600, one link. It is
    /// marked used now (LRU). Anything else at its name is removed.
    pub(crate) fn open_entry(&self) -> Result<Option<File>, CacheError> {
        let dir = &self.cache.dir;
        let Some(meta) = self.cache.stat(&self.name)? else {
            return Ok(None);
        };
        if !meta.is_file() || meta.nlink() != 1 || meta.mode() & 0o077 != 0 {
            dir.remove_all(&self.name)?;
            return Ok(None);
        }
        let file = dir.read_file(&self.name)?;
        let now = [libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        }; 2];
        // SAFETY: `file` is an open descriptor and `now` two valid
        // timespecs; futimens(2) only changes the file's times.
        unsafe { libc::futimens(file.as_raw_fd(), now.as_ptr()) };
        Ok(Some(file))
    }

    /// A fresh `.part` file to download into.
    pub(crate) fn create_part(&self) -> Result<File, CacheError> {
        let part = format!("{}.part", self.name);
        self.cache.dir.remove_all(&part)?;
        Ok(self.cache.dir.create_file(&part, 0o600)?)
    }

    /// Drops the `.part` file of a failed download.
    pub(crate) fn discard_part(&self) {
        let _ = self.cache.dir.remove_all(format!("{}.part", self.name));
    }

    /// Renames the complete `.part` into place (atomically), then trims
    /// the cache to its size.
    pub(crate) fn commit(&self, part: &File) -> Result<(), CacheError> {
        part.sync_all()
            .map_err(|e| io_err(self.cache.path(&self.name), e))?;
        let fd = self.cache.dir.as_file().as_raw_fd();
        let from = cstr(&format!("{}.part", self.name));
        let to = cstr(&self.name);
        // SAFETY: NUL-terminated names relative to an open directory
        // descriptor; renameat(2) replaces a name, never follows it.
        if unsafe { libc::renameat(fd, from.as_ptr(), fd, to.as_ptr()) } != 0 {
            return Err(io_err(
                self.cache.path(&self.name),
                io::Error::last_os_error(),
            ));
        }
        self.cache.make_room(0, &self.name)?;
        Ok(())
    }

    /// The cache this entry is in.
    pub(crate) fn cache(&self) -> &Cache {
        self.cache
    }

    /// The entry's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

fn cstr(name: &str) -> CString {
    // Entry names are hex digits and a suffix: never a NUL.
    CString::new(name).unwrap_or_default()
}

fn is_key(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

fn flock(file: &File, op: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: flock(2) on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The path of a locked entry (for messages).
pub(crate) fn entry_path(locked: &Locked<'_>) -> PathBuf {
    locked.cache.path(&locked.name)
}
