//! Size-bounded sandbox logs: the `logrotate` container logger's one
//! writer, and the reader's view of a rotated stream.
//!
//! A stream (`stdout`, `stderr`) is its live file plus up to
//! `max_files - 1` rotated ones, `stdout.1` the newest: when the live file
//! holds `max_size` bytes, `stdout.N-1` is renamed over `stdout.N` (the
//! oldest falls off), …, `stdout` becomes `stdout.1`, and a fresh `stdout`
//! is created, all with renameat(2)/openat(2) on the sandbox's directory
//! descriptor (never by path, never through a symlink). A file never holds
//! more than `max_size` bytes, so one stream never takes more than
//! `max_files × max_size` bytes; the newest bytes are always kept.
//!
//! The writer is fed either by `write(2)` ([`RotatingFile::write_all`],
//! the terminal switchboard, the Docker log copy) or by splice(2) straight
//! from a pipe ([`RotatingFile::splice_from`], init's pump), which moves
//! page references without copying the bytes through user space. The live
//! file is opened without `O_APPEND` (splice refuses append-mode targets);
//! the writer keeps the offset itself.
//!
//! Readers ([`open_stream`]) get the files oldest first as descriptors,
//! checked against a second look at the names so a rotation in between is
//! retried rather than misread.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;

use serde::{Deserialize, Serialize};

use crate::SafeDir;

/// Mesos's logrotate module default for `max_stdout_size` and
/// `max_stderr_size`.
pub const DEFAULT_MAX_SIZE: u64 = 10 << 20;
/// Nomad's default `max_files` per stream.
pub const DEFAULT_MAX_FILES: u32 = 10;
/// The smallest live file accepted: one page, as Mesos's module requires.
pub const MIN_MAX_SIZE: u64 = 4096;
/// More rotated files than anyone reads; a bigger count is a typo.
pub const MAX_MAX_FILES: u32 = 10_000;

/// `[logrotate]`: how big each stream's live file may grow and how many
/// files (the live one included) each stream keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRotation {
    pub max_stdout_size: u64,
    pub max_stderr_size: u64,
    pub max_files: u32,
}

impl Default for LogRotation {
    fn default() -> Self {
        Self {
            max_stdout_size: DEFAULT_MAX_SIZE,
            max_stderr_size: DEFAULT_MAX_SIZE,
            max_files: DEFAULT_MAX_FILES,
        }
    }
}

impl LogRotation {
    /// The limit of the stream `name` (`stdout` or `stderr`).
    pub fn limit(&self, name: &str) -> Limit {
        Limit {
            max_size: match name {
                "stderr" => self.max_stderr_size,
                _ => self.max_stdout_size,
            }
            .max(1),
            max_files: self.max_files.max(1),
        }
    }
}

/// One stream's bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Bytes in one file.
    pub max_size: u64,
    /// Files, the live one included.
    pub max_files: u32,
}

/// The name of the `index`th rotated file of `stream` (`stdout.1` is the
/// newest); index 0 is the live file.
pub fn file_name(stream: &str, index: u32) -> String {
    match index {
        0 => stream.to_owned(),
        i => format!("{stream}.{i}"),
    }
}

/// A stream's live file, rotated when full.
#[derive(Debug)]
pub struct RotatingFile {
    dir: SafeDir,
    stream: String,
    limit: Limit,
    file: File,
    /// Bytes in the live file (its size and our write offset).
    written: u64,
}

impl RotatingFile {
    /// Opens (creating it, 0644, if missing) the live file `stream` in
    /// `dir`, to continue after what it holds.
    pub fn open(dir: SafeDir, stream: &str, limit: Limit) -> io::Result<Self> {
        let mut file = dir.write_file(stream, 0o644)?;
        let written = file.seek(SeekFrom::End(0))?;
        Ok(Self {
            dir,
            stream: stream.to_owned(),
            limit,
            file,
            written,
        })
    }

    /// The live file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Bytes in the live file.
    pub fn len(&self) -> u64 {
        self.written
    }

    /// Whether the live file is empty.
    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    /// Bytes the live file takes before it is rotated (0: the next write
    /// rotates first).
    pub fn room(&self) -> u64 {
        self.limit.max_size.saturating_sub(self.written)
    }

    /// Rotates when the live file is full.
    fn make_room(&mut self) -> io::Result<u64> {
        if self.room() == 0 {
            self.rotate()?;
        }
        Ok(self.room())
    }

    /// Shifts every rotated file one up (the oldest is replaced) and
    /// starts a new live file owned like the old one.
    pub fn rotate(&mut self) -> io::Result<()> {
        let meta = self.file.metadata()?;
        let dir = self.dir.as_fd();
        if self.limit.max_files <= 1 {
            unlinkat(dir, &self.stream)?;
        } else {
            for i in (1..self.limit.max_files - 1).rev() {
                match renameat(
                    dir,
                    &file_name(&self.stream, i),
                    &file_name(&self.stream, i + 1),
                ) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    other => other?,
                }
            }
            renameat(dir, &self.stream, &file_name(&self.stream, 1))?;
        }
        let file = self.dir.open_file(
            &self.stream,
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
            0o644,
        )?;
        // A container user's files stay theirs after a rotation by root.
        let _ = std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid()));
        self.file = file;
        self.written = 0;
        Ok(())
    }

    /// Writes all of `buf`, rotating as often as it needs.
    pub fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let room = self.make_room()?;
            let n = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            let wrote = std::os::unix::fs::FileExt::write_at(&self.file, &buf[..n], self.written)?;
            if wrote == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.written += wrote as u64;
            buf = &buf[wrote..];
        }
        Ok(())
    }

    /// Moves up to `max` bytes from the pipe `from` into the live file
    /// with splice(2), rotating first when it is full; the pipe is read
    /// without blocking. `Ok(0)`: the pipe's writers are all gone; an
    /// error of kind `WouldBlock`: it is empty now. The bytes of a failed
    /// write (no space left) stay in the pipe: see [`discard`].
    pub fn splice_from(&mut self, from: BorrowedFd<'_>, max: usize) -> io::Result<usize> {
        let room = self.make_room()?;
        let len = max.min(usize::try_from(room).unwrap_or(usize::MAX));
        let mut offset = i64::try_from(self.written).map_err(io::Error::other)?;
        // SAFETY: splice(2) between two descriptors we hold, with an
        // offset for the (non-pipe) output that lives across the call.
        let n = unsafe {
            libc::splice(
                from.as_raw_fd(),
                std::ptr::null_mut(),
                self.file.as_raw_fd(),
                &mut offset,
                len,
                libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.written += n as u64;
        Ok(n as usize)
    }
}

/// Reads and drops what the pipe `from` holds now (without blocking), so a
/// command whose log cannot be written (a full disk) never stalls on it.
/// Returns the bytes dropped.
pub fn discard(from: BorrowedFd<'_>) -> io::Result<u64> {
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0;
    loop {
        // SAFETY: read(2) into a buffer we own, of its length.
        let n = unsafe { libc::read(from.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        match n {
            0 => return Ok(total),
            n if n > 0 => total += n as u64,
            _ => {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => {}
                    io::ErrorKind::WouldBlock => return Ok(total),
                    _ => return Err(e),
                }
            }
        }
    }
}

fn c_name(name: &str) -> io::Result<std::ffi::CString> {
    if name.contains('/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a plain file name"),
        ));
    }
    std::ffi::CString::new(name).map_err(io::Error::other)
}

/// renameat(2) of two plain names in `dir` (the names themselves are
/// renamed, never followed).
fn renameat(dir: BorrowedFd<'_>, from: &str, to: &str) -> io::Result<()> {
    let (from, to) = (c_name(from)?, c_name(to)?);
    // SAFETY: both names are NUL-terminated plain names relative to a
    // directory descriptor we hold.
    match unsafe { libc::renameat(dir.as_raw_fd(), from.as_ptr(), dir.as_raw_fd(), to.as_ptr()) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

fn unlinkat(dir: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    let name = c_name(name)?;
    // SAFETY: a NUL-terminated plain name relative to a directory
    // descriptor we hold.
    match unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// One file of a stream, opened for reading.
#[derive(Debug)]
pub struct StreamFile {
    /// Its name when it was opened (`stdout.2`).
    pub name: String,
    pub file: File,
    /// Device and inode: who it is, whatever its name is now.
    pub id: (u64, u64),
    /// Last modification, seconds since the epoch.
    pub mtime: i64,
}

/// How many times [`open_stream`] looks again when a rotation moved the
/// files while it opened them.
const OPEN_ATTEMPTS: usize = 100;

/// The files of `stream` in `dir`, oldest first, the live file last (the
/// live file may be missing: then it is not listed). Rotated files are
/// found by counting up from `.1` to two missing names in a row (one is
/// a rotation under way).
pub fn open_stream(dir: &SafeDir, stream: &str) -> io::Result<Vec<StreamFile>> {
    let mut last = None;
    for _ in 0..OPEN_ATTEMPTS {
        let files = open_once(dir, stream)?;
        let again = ids_by_name(dir, stream)?;
        if files.iter().map(|f| f.id).eq(again.iter().copied()) {
            return Ok(files);
        }
        last = Some(files);
    }
    // A writer rotating faster than we can look: take the last view.
    Ok(last.unwrap_or_default())
}

fn open_once(dir: &SafeDir, stream: &str) -> io::Result<Vec<StreamFile>> {
    let mut files = Vec::new();
    let mut missing = 0;
    for index in 0..=MAX_MAX_FILES {
        let name = file_name(stream, index);
        match dir.read_file(&name) {
            Ok(file) => {
                let meta = file.metadata()?;
                files.push(StreamFile {
                    name,
                    id: (meta.dev(), meta.ino()),
                    mtime: meta.mtime(),
                    file,
                });
            }
            // One missing name is a rotation under way (it renames from
            // the oldest down, so one index at a time is free); two in a
            // row is the end.
            Err(e) if e.is_not_found() => {
                missing += 1;
                if index > 0 && missing >= 2 {
                    break;
                }
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        missing = 0;
    }
    // Live first above; oldest first from here.
    if let Some(live) = (!files.is_empty() && files[0].name == stream).then(|| files.remove(0)) {
        files.reverse();
        files.push(live);
    } else {
        files.reverse();
    }
    Ok(files)
}

/// The device and inode of each file of `stream`, in [`open_stream`]'s
/// order: a second look that tells whether a rotation moved names between.
fn ids_by_name(dir: &SafeDir, stream: &str) -> io::Result<Vec<(u64, u64)>> {
    Ok(open_once(dir, stream)?.iter().map(|f| f.id).collect())
}

/// A sandbox log as a writer sees it: a plain file (the `sandbox`
/// logger, appended to without bound) or a rotating one.
#[derive(Debug)]
pub enum LogFile {
    Plain(File),
    Rotating(RotatingFile),
}

impl From<File> for LogFile {
    fn from(file: File) -> Self {
        Self::Plain(file)
    }
}

impl Write for LogFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(f) => f.write(buf),
            Self::Rotating(r) => r.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};

    use super::*;

    fn limit(max_size: u64, max_files: u32) -> Limit {
        Limit {
            max_size,
            max_files,
        }
    }

    fn read_all(dir: &SafeDir, stream: &str) -> (Vec<u8>, Vec<String>) {
        let mut out = Vec::new();
        let mut names = Vec::new();
        for mut f in open_stream(dir, stream).unwrap() {
            f.file.read_to_end(&mut out).unwrap();
            names.push(f.name);
        }
        (out, names)
    }

    fn numbered(lines: std::ops::Range<u32>) -> Vec<u8> {
        lines
            .map(|i| format!("line {i}\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn rotation_keeps_the_newest_bytes_in_order_within_the_bound() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SafeDir::open_trusted(tmp.path()).unwrap();
        let mut log =
            RotatingFile::open(dir.try_clone().unwrap(), "stdout", limit(100, 4)).unwrap();
        let all = numbered(0..200);
        for chunk in all.chunks(37) {
            log.write_all(chunk).unwrap();
        }
        let (kept, names) = read_all(&dir, "stdout");
        assert_eq!(names, ["stdout.3", "stdout.2", "stdout.1", "stdout"]);
        assert!(kept.len() <= 400 && kept.len() > 300, "{}", kept.len());
        assert!(all.ends_with(&kept), "the newest bytes, in order");
        for name in &names[..3] {
            assert_eq!(std::fs::metadata(tmp.path().join(name)).unwrap().len(), 100);
        }
        assert!(!tmp.path().join("stdout.4").exists());
    }

    #[test]
    fn one_file_means_the_live_file_starts_over() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SafeDir::open_trusted(tmp.path()).unwrap();
        let mut log = RotatingFile::open(dir.try_clone().unwrap(), "stderr", limit(10, 1)).unwrap();
        log.write_all(b"0123456789abcdef").unwrap();
        let (kept, names) = read_all(&dir, "stderr");
        assert_eq!(names, ["stderr"]);
        assert_eq!(kept, b"abcdef");
    }

    #[test]
    fn reopening_continues_after_what_the_live_file_holds() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("stdout"), b"12345678").unwrap();
        let dir = SafeDir::open_trusted(tmp.path()).unwrap();
        let mut log = RotatingFile::open(dir.try_clone().unwrap(), "stdout", limit(10, 3)).unwrap();
        log.write_all(b"abcd").unwrap();
        assert_eq!(
            std::fs::read(tmp.path().join("stdout.1")).unwrap(),
            b"12345678ab"
        );
        assert_eq!(std::fs::read(tmp.path().join("stdout")).unwrap(), b"cd");
    }

    #[test]
    fn splice_moves_a_pipe_into_rotated_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SafeDir::open_trusted(tmp.path()).unwrap();
        let mut log =
            RotatingFile::open(dir.try_clone().unwrap(), "stdout", limit(4096, 10)).unwrap();
        let mut fds = [0; 2];
        assert_eq!(
            // SAFETY: pipe2 fills the array on success; both ends are ours.
            unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) },
            0
        );
        // SAFETY: fresh descriptors from pipe2, owned once each.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let all = numbered(0..2000);
        let mut writer = File::from(write);
        let mut sent = 0;
        while sent < all.len() {
            let end = (sent + 8192).min(all.len());
            writer.write_all(&all[sent..end]).unwrap();
            sent = end;
            loop {
                match log.splice_from(read.as_fd(), 1 << 20) {
                    Ok(0) => unreachable!("the writer is open"),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
            }
        }
        drop(writer);
        assert_eq!(log.splice_from(read.as_fd(), 1 << 20).unwrap(), 0);
        let (kept, names) = read_all(&dir, "stdout");
        assert_eq!(names.len(), all.len().div_ceil(4096), "{names:?}");
        assert_eq!(kept, all);
    }

    #[test]
    fn discard_empties_a_pipe_without_blocking() {
        let mut fds = [0; 2];
        assert_eq!(
            // SAFETY: pipe2 fills the array on success; both ends are ours.
            unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) },
            0
        );
        // SAFETY: as above.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        File::from(write.try_clone().unwrap())
            .write_all(&[7; 5000])
            .unwrap();
        assert_eq!(discard(read.as_fd()).unwrap(), 5000);
        drop(write);
        assert_eq!(discard(read.as_fd()).unwrap(), 0);
    }

    #[test]
    fn a_symlinked_stream_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/passwd", tmp.path().join("stdout")).unwrap();
        let dir = SafeDir::open_trusted(tmp.path()).unwrap();
        assert!(RotatingFile::open(dir.try_clone().unwrap(), "stdout", limit(10, 2)).is_err());
        assert!(open_stream(&dir, "stdout").is_err());
        assert!(c_name("../x").is_err());
    }
}
