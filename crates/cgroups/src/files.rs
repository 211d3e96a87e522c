//! Reading the control files of many sibling cgroups (the containers under
//! a cgroups root) with `openat(2)` below an open descriptor of their
//! parent directory, one per hierarchy, instead of walking each file's
//! absolute path (`/sys/fs/cgroup/<controller>/<root>/<id>/<file>`, six
//! names looked up in the dentry cache) from `/` every time; the text of
//! every file goes into one reused buffer. `stats` over thousands of
//! containers reads five such files per container on a v1 host.
//!
//! [`ParentDirs`] holds the open parent directories (`O_PATH`), shared by
//! the threads that measure containers; each thread reads through its own
//! [`Reader`]. A parent that cannot be opened, or one beyond the first
//! [`MAX_PARENTS`] (nested containers have one parent each), is read by
//! absolute path as before. Nothing here follows a symlink in the file's
//! last name; cgroupfs has no symlinks.
//!
//! [`Cgroup::write_each`] writes a list of records (v1 `devices.allow`
//! rules) through one open descriptor, one `write(2)` each.

use std::ffi::CString;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use crate::cgroup::{Cgroup, read_limited};
use crate::error::Error;

/// The most parent directories kept open (each is one descriptor).
pub const MAX_PARENTS: usize = 64;

/// Open parent directories of cgroups, by path; `None` where opening failed
/// (that parent's files are read by path).
#[derive(Debug, Default)]
pub struct ParentDirs {
    dirs: Mutex<Vec<(PathBuf, Option<Arc<OwnedFd>>)>>,
}

impl ParentDirs {
    /// The open directory `parent`, opened on first use; `None` when it
    /// cannot be opened or too many are open already.
    fn get(&self, parent: &Path) -> Option<Arc<OwnedFd>> {
        let mut dirs = self.dirs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, fd)) = dirs.iter().find(|(p, _)| p == parent) {
            return fd.clone();
        }
        if dirs.len() >= MAX_PARENTS {
            return None;
        }
        let fd = open_path_dir(parent).ok().map(Arc::new);
        dirs.push((parent.to_path_buf(), fd.clone()));
        fd
    }
}

/// `open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)`: a descriptor good only
/// as the base of later `openat` calls.
fn open_path_dir(path: &Path) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: `c` is a valid NUL-terminated string; the returned
    // descriptor is owned by nobody else.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by open and is ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads control files, below open parent directories when it has them,
/// into one buffer reused from file to file.
#[derive(Debug, Default)]
pub struct Reader<'a> {
    parents: Option<&'a ParentDirs>,
    text: String,
    name: Vec<u8>,
}

impl<'a> Reader<'a> {
    /// A reader through `parents` (`None`: every file by its path).
    pub fn new(parents: Option<&'a ParentDirs>) -> Self {
        Reader {
            parents,
            text: String::with_capacity(4096),
            name: Vec::with_capacity(128),
        }
    }

    /// The contents of `file` of `cg`, at most `limit` bytes (a longer
    /// file is [`Error::TooLarge`]), read until `read(2)` returns 0.
    pub fn read(&mut self, cg: &Cgroup, file: &str, limit: u64) -> Result<&str, Error> {
        self.read_as(cg, file, limit, Shown::Records)
    }

    /// [`Reader::read`] of a file the kernel prints in one piece (a
    /// value, `memory.stat`, `cpuacct.stat`: one `show` of its `seq_file`,
    /// which is made whole before any of it is copied out), so a read that
    /// fills less than the buffer was its end and no second `read` is
    /// made to see 0. Not for files of one line per process
    /// (`cgroup.procs`, `tasks`): those are printed record by record, and
    /// a read can stop short at a record that did not fit.
    pub fn read_single(&mut self, cg: &Cgroup, file: &str, limit: u64) -> Result<&str, Error> {
        self.read_as(cg, file, limit, Shown::Whole)
    }

    fn read_as(
        &mut self,
        cg: &Cgroup,
        file: &str,
        limit: u64,
        shown: Shown,
    ) -> Result<&str, Error> {
        let below = match (cg.path().parent(), cg.path().file_name(), self.parents) {
            (Some(parent), Some(name), Some(parents)) => {
                parents.get(parent).map(|fd| (fd, name.as_bytes()))
            }
            _ => None,
        };
        let Some((dir, name)) = below else {
            self.text = read_limited(&cg.path().join(file), limit)?;
            return Ok(&self.text);
        };
        let path = || cg.path().join(file);
        // `<name>/<file>`, NUL-terminated, in the reused name buffer.
        self.name.clear();
        self.name.extend_from_slice(name);
        self.name.push(b'/');
        self.name.extend_from_slice(file.as_bytes());
        self.name.push(0);
        if self.name[..self.name.len() - 1].contains(&0) {
            return Err(Error::Read {
                path: path(),
                source: io::Error::new(io::ErrorKind::InvalidInput, "name contains a NUL byte"),
            });
        }
        // SAFETY: `self.name` is NUL-terminated with no NUL before the end
        // (checked above); the returned descriptor is owned by nobody else.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                self.name.as_ptr().cast(),
                libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            )
        };
        if fd < 0 {
            return Err(Error::Read {
                path: path(),
                source: io::Error::last_os_error(),
            });
        }
        // SAFETY: `fd` was just returned by openat and is ours alone.
        let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        self.text.clear();
        let mut file = file.take(limit.saturating_add(1));
        let read = match shown {
            Shown::Records => file.read_to_string(&mut self.text).map(drop),
            Shown::Whole => read_shown_whole(&mut file, &mut self.text),
        };
        read.map_err(|source| Error::Read {
            path: path(),
            source,
        })?;
        if u64::try_from(self.text.len()).map_or(true, |len| len > limit) {
            return Err(Error::TooLarge {
                path: path(),
                limit,
            });
        }
        Ok(&self.text)
    }
}

/// How the kernel prints a control file (see [`Reader::read_single`]).
#[derive(Clone, Copy)]
enum Shown {
    /// In one piece: a short read is the end.
    Whole,
    /// Record by record: read until 0.
    Records,
}

/// Appends `file` to `text` until a read returns less than it was given
/// room for (or 0), then checks that it is UTF-8.
fn read_shown_whole(file: &mut impl Read, text: &mut String) -> io::Result<()> {
    let mut bytes = std::mem::take(text).into_bytes();
    let mut chunk = [0u8; 4096];
    let result = loop {
        match file.read(&mut chunk) {
            Ok(n) => {
                bytes.extend_from_slice(&chunk[..n]);
                if n < chunk.len() {
                    break Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    match String::from_utf8(bytes) {
        Ok(s) => {
            *text = s;
            result
        }
        Err(_) => {
            text.clear();
            result.and(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            )))
        }
    }
}

impl Cgroup {
    /// Writes each of `values` to control file `file` through one open
    /// descriptor, one `write(2)` per value. The kernel takes each write
    /// as one record and ignores the file offset, so a file that takes one
    /// rule per write (v1 `devices.allow`) gets a list for one `open`
    /// instead of one each. A value the kernel takes only in part is an
    /// error naming it.
    pub fn write_each<'a>(
        &self,
        file: &str,
        values: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), Error> {
        let path = self.path().join(file);
        let fail = |value: &str, source| Error::Write {
            path: path.clone(),
            value: value.to_string(),
            source,
        };
        let mut values = values.into_iter().peekable();
        let Some(first) = values.peek().copied() else {
            return Ok(());
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| fail(first, e))?;
        for value in values {
            match f.write(value.as_bytes()) {
                Ok(n) if n == value.len() => {}
                Ok(_) => return Err(fail(value, io::Error::from(io::ErrorKind::WriteZero))),
                Err(e) => return Err(fail(value, e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hierarchy::Version;

    fn tree() -> (tempfile::TempDir, Cgroup) {
        let dir = tempfile::tempdir().unwrap();
        let cg = Cgroup::new(dir.path(), Path::new("root/c1"), Version::V1);
        std::fs::create_dir_all(cg.path()).unwrap();
        std::fs::write(cg.path().join("memory.stat"), "rss 4096\ncache 0\n").unwrap();
        (dir, cg)
    }

    #[test]
    fn reads_below_the_parent_and_by_path_alike() {
        let (_dir, cg) = tree();
        let parents = ParentDirs::default();
        let mut below = Reader::new(Some(&parents));
        let mut by_path = Reader::new(None);
        for _ in 0..2 {
            assert_eq!(
                below.read(&cg, "memory.stat", 100).unwrap(),
                "rss 4096\ncache 0\n"
            );
            assert_eq!(
                by_path.read(&cg, "memory.stat", 100).unwrap(),
                "rss 4096\ncache 0\n"
            );
        }
        // One open parent for both reads.
        assert_eq!(parents.dirs.lock().unwrap().len(), 1);
        assert!(parents.dirs.lock().unwrap()[0].1.is_some());
    }

    #[test]
    fn errors_name_the_file_and_limits_hold() {
        let (_dir, cg) = tree();
        let parents = ParentDirs::default();
        let mut r = Reader::new(Some(&parents));
        match r.read(&cg, "nope", 100) {
            Err(Error::Read { path, source }) => {
                assert_eq!(path, cg.path().join("nope"));
                assert_eq!(source.kind(), io::ErrorKind::NotFound);
            }
            other => panic!("expected a read error, got {other:?}"),
        }
        assert!(matches!(
            r.read(&cg, "memory.stat", 4),
            Err(Error::TooLarge { limit: 4, .. })
        ));
        assert!(matches!(r.read(&cg, "a\0b", 100), Err(Error::Read { .. })));
    }

    #[test]
    fn a_file_shown_whole_reads_complete_at_every_size() {
        let (_dir, cg) = tree();
        let parents = ParentDirs::default();
        let mut r = Reader::new(Some(&parents));
        // Below, at and across the read size: each ends with its last byte.
        for len in [0, 1, 4095, 4096, 4097, 8192, 10_000] {
            let text: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            std::fs::write(cg.path().join("big.stat"), &text).unwrap();
            assert_eq!(
                r.read_single(&cg, "big.stat", 20_000).unwrap(),
                text,
                "{len}"
            );
        }
        assert!(matches!(
            r.read_single(&cg, "big.stat", 9_999),
            Err(Error::TooLarge { limit: 9_999, .. })
        ));
        std::fs::write(cg.path().join("bad.stat"), b"rss \xff\n").unwrap();
        match r.read_single(&cg, "bad.stat", 100) {
            Err(Error::Read { path, source }) => {
                assert_eq!(path, cg.path().join("bad.stat"));
                assert_eq!(source.kind(), io::ErrorKind::InvalidData);
            }
            other => panic!("expected a read error, got {other:?}"),
        }
        // The buffer is whole again for the next file.
        assert_eq!(
            r.read_single(&cg, "memory.stat", 100).unwrap(),
            "rss 4096\ncache 0\n"
        );
    }

    #[test]
    fn never_follows_a_symlink_in_the_last_name() {
        let (dir, cg) = tree();
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), cg.path().join("link")).unwrap();
        std::fs::write(dir.path().join("elsewhere"), "secret").unwrap();
        let parents = ParentDirs::default();
        let mut r = Reader::new(Some(&parents));
        assert!(r.read(&cg, "link", 100).is_err());
    }

    #[test]
    fn a_parent_that_cannot_be_opened_is_read_by_path() {
        let (_dir, cg) = tree();
        let parents = ParentDirs::default();
        let gone = Cgroup::new(
            Path::new("/nonexistent-phobos"),
            Path::new("r/c"),
            Version::V1,
        );
        let mut r = Reader::new(Some(&parents));
        assert!(r.read(&gone, "memory.stat", 100).is_err());
        assert_eq!(
            r.read(&cg, "memory.stat", 100).unwrap(),
            "rss 4096\ncache 0\n"
        );
    }
}
