//! Reading one sandbox log stream (`stdout` or `stderr`) across its
//! rotated files ([`crate::logrotate`]), in order; the one reader behind
//! `phobos logs`, `phobos run`'s follower and the agent's
//! `ATTACH_CONTAINER_OUTPUT`. A [`Cursor`] holds the file it reads as a
//! descriptor, so it follows that inode whatever it is renamed to; once
//! the file is read to its end and the name `stdout` is some other inode,
//! the writer rotated: whatever it wrote to the old inode came before the
//! rename, so the old file is read to its end once more and the cursor
//! moves to the next newer file. A follower is never given a line twice
//! and misses none, unless it falls more than `max_files` rotations
//! behind (those files are gone); a name briefly missing mid-rotation
//! reads as "nothing new yet".
//!
//! Where to start: the oldest file, `--tail N` lines from the end (read
//! backwards in blocks), or `--since`: the first file written to after
//! the cutoff (a file's mtime is the time of its last write; lines carry
//! no time, so within that file everything is shown).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;

use crate::SafeDir;
use crate::logrotate::{StreamFile, open_stream};

/// Where a stream is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// The oldest file's first byte.
    Oldest,
    /// This offset of the live file (`phobos run`: what is new).
    Live(u64),
    /// The last `n` lines.
    Tail(u64),
    /// The first file modified at or after this time (seconds since the
    /// epoch).
    Since(i64),
}

/// A reader of one stream.
#[derive(Debug)]
pub struct Cursor {
    pub name: &'static str,
    file: Option<File>,
    id: (u64, u64),
}

/// Device and inode of `name` in `dir`, without following a symlink.
fn id_at(dir: &SafeDir, name: &str) -> Option<(u64, u64)> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: a zeroed stat buffer we own, filled by fstatat(2) on a plain
    // name relative to a directory descriptor we hold.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let r = unsafe {
        libc::fstatat(
            dir.as_file().as_raw_fd(),
            c.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    (r == 0).then_some((st.st_dev, st.st_ino))
}

impl Cursor {
    /// A cursor on `name` at `start`.
    pub fn open(dir: &SafeDir, name: &'static str, start: Start) -> io::Result<Self> {
        let mut files = open_stream(dir, name)?;
        let mut cursor = Self {
            name,
            file: None,
            id: (0, 0),
        };
        let (index, offset) = match start {
            Start::Oldest => (0, 0),
            Start::Live(offset) => (files.len().saturating_sub(1), offset),
            Start::Tail(n) => tail_start(&mut files, n)?,
            Start::Since(cutoff) => (
                files
                    .iter()
                    .position(|f| f.mtime >= cutoff)
                    .unwrap_or(files.len()),
                0,
            ),
        };
        let len = files.len();
        if let Some(mut f) = files.into_iter().nth(index.min(len.saturating_sub(1))) {
            match index < len {
                true => f.file.seek(SeekFrom::Start(offset))?,
                // Nothing to show yet (`--tail 0`, a cutoff after the last
                // write): start after the live file's end.
                false => f.file.seek(SeekFrom::End(0))?,
            };
            cursor.set(f);
        }
        Ok(cursor)
    }

    fn set(&mut self, f: StreamFile) {
        self.id = f.id;
        self.file = Some(f.file);
    }

    /// Reads what the stream holds now into `buf`, across rotations:
    /// `Ok(0)` when there is nothing new (yet). A reader that wants
    /// everything calls it until it returns 0 (see [`Cursor::copy`]).
    pub fn read(&mut self, dir: &SafeDir, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(file) = &mut self.file {
                let n = read_retrying(file, buf)?;
                if n > 0 {
                    return Ok(n);
                }
            }
            let live = id_at(dir, self.name);
            if live.is_none() || (self.file.is_some() && live == Some(self.id)) {
                return Ok(0);
            }
            // Rotated (or first created): finish the old inode (whatever
            // was written to it came before the rename we just saw), then
            // take the next newer file.
            if let Some(file) = &mut self.file {
                let n = read_retrying(file, buf)?;
                if n > 0 {
                    return Ok(n);
                }
            }
            let files = open_stream(dir, self.name)?;
            let next = match files.iter().position(|f| f.id == self.id) {
                Some(p) if self.file.is_some() => p + 1,
                // Not started, or our file rotated away: the oldest left.
                _ => 0,
            };
            match files.into_iter().nth(next) {
                Some(f) => self.set(f),
                None => return Ok(0),
            }
        }
    }

    /// Copies what the stream holds now, across rotations, to `to`;
    /// returns the error of writing to `to`, if any (inside: it never
    /// fails the reader, whose container's bookkeeping must go on).
    pub fn copy(
        &mut self,
        dir: &SafeDir,
        to: &mut impl Write,
    ) -> io::Result<Result<(), io::Error>> {
        let mut buf = [0u8; COPY_BUF_SIZE];
        loop {
            match self.read(dir, &mut buf)? {
                0 => return Ok(to.flush()),
                n => {
                    if let Err(e) = to.write_all(&buf[..n]) {
                        return Ok(Err(e));
                    }
                }
            }
        }
    }
}

/// Copy buffer size: std's own `io::copy` size. A bigger stack buffer costs
/// a page fault per 4 KiB on every launch, for output most commands never
/// produce.
const COPY_BUF_SIZE: usize = 8 * 1024;

fn read_retrying(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match file.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Block read backwards by `--tail`.
const TAIL_BLOCK: u64 = 64 * 1024;

/// Where the last `n` lines of `files` (oldest first) start: a file index
/// and an offset in it. A final line without a newline counts as a line.
fn tail_start(files: &mut [StreamFile], n: u64) -> io::Result<(usize, u64)> {
    if n == 0 {
        return Ok((files.len(), 0));
    }
    let mut newlines = 0;
    let mut last_byte_seen = false;
    let mut buf = vec![0u8; TAIL_BLOCK as usize];
    for index in (0..files.len()).rev() {
        let file = &mut files[index].file;
        let mut end = file.metadata()?.len();
        while end > 0 {
            let start = end.saturating_sub(TAIL_BLOCK);
            let block = &mut buf[..(end - start) as usize];
            file.seek(SeekFrom::Start(start))?;
            file.read_exact(block)?;
            for (i, byte) in block.iter().enumerate().rev() {
                if !last_byte_seen {
                    last_byte_seen = true;
                    if *byte == b'\n' {
                        // The newline ending the last line.
                        continue;
                    }
                }
                if *byte == b'\n' {
                    newlines += 1;
                    if newlines == n {
                        return Ok((index, start + i as u64 + 1));
                    }
                }
            }
            end = start;
        }
    }
    Ok((0, 0))
}

#[cfg(test)]
mod tests {
    use crate::logrotate::{Limit, RotatingFile};

    use super::*;

    fn setup(lines: u32) -> (tempfile::TempDir, SafeDir) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SafeDir::open_trusted(tmp.path()).unwrap();
        let limit = Limit {
            max_size: 1000,
            max_files: 50,
        };
        let mut log = RotatingFile::open(dir.try_clone().unwrap(), "stdout", limit).unwrap();
        for i in 0..lines {
            log.write_all(format!("line {i}\n").as_bytes()).unwrap();
        }
        (tmp, dir)
    }

    fn read(dir: &SafeDir, start: Start) -> String {
        let mut cursor = Cursor::open(dir, "stdout", start).unwrap();
        let mut out = Vec::new();
        cursor.copy(dir, &mut out).unwrap().unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn reads_every_rotated_file_in_order() {
        let (tmp, dir) = setup(1000);
        assert!(tmp.path().join("stdout.5").exists());
        let expected: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        assert_eq!(read(&dir, Start::Oldest), expected);
    }

    #[test]
    fn tail_counts_lines_across_files() {
        let (_tmp, dir) = setup(1000);
        let expected: String = (700..1000).map(|i| format!("line {i}\n")).collect();
        assert_eq!(read(&dir, Start::Tail(300)), expected);
        assert_eq!(read(&dir, Start::Tail(1)), "line 999\n");
        assert_eq!(read(&dir, Start::Tail(0)), "");
        assert_eq!(read(&dir, Start::Tail(5000)).lines().count(), 1000);
    }

    #[test]
    fn since_in_the_future_shows_nothing_old() {
        let (_tmp, dir) = setup(100);
        assert_eq!(read(&dir, Start::Since(i64::MAX)), "");
        assert_eq!(read(&dir, Start::Since(0)).lines().count(), 100);
    }

    #[test]
    fn a_follower_moves_across_rotations_without_loss_or_repeat() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SafeDir::open_trusted(tmp.path()).unwrap();
        let limit = Limit {
            max_size: 4096,
            max_files: 3,
        };
        let mut log = RotatingFile::open(dir.try_clone().unwrap(), "stdout", limit).unwrap();
        let mut cursor = Cursor::open(&dir, "stdout", Start::Oldest).unwrap();
        let mut out = Vec::new();
        let mut expected = Vec::new();
        for i in 0..20_000u32 {
            let line = format!("line {i}\n");
            log.write_all(line.as_bytes()).unwrap();
            expected.extend_from_slice(line.as_bytes());
            // Look often enough not to fall two rotations behind.
            if i % 97 == 0 {
                cursor.copy(&dir, &mut out).unwrap().unwrap();
            }
        }
        cursor.copy(&dir, &mut out).unwrap().unwrap();
        assert!(out == expected, "{} of {} bytes", out.len(), expected.len());
    }
}
