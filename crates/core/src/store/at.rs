//! Lookups relative to open directory descriptors (`openat(2)`,
//! `readlinkat(2)`, `fstatat(2)`, `getdents64(2)`), for the commands that
//! read every record (`ps`, `stats`, `recover`): with thousands of
//! containers the kernel's cost is per path component looked up in the
//! dentry hash, so a record's files are reached by their one name below
//! the record's descriptor instead of by an absolute path walked from `/`.
//! Nothing here follows a symlink in the last component.

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

/// `name` as a C string; a NUL byte is `InvalidInput`.
pub(super) fn c_name(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name contains a NUL byte"))
}

/// `openat(dir, name, flags | O_CLOEXEC | O_NOFOLLOW)`.
pub(super) fn open(dir: RawFd, name: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: `name` is a valid NUL-terminated string; the returned
    // descriptor is owned by nobody else.
    let fd = unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            flags | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by openat and is ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A directory below `dir` (never through a symlink in its last name).
pub(super) fn open_dir(dir: RawFd, name: &CStr) -> io::Result<OwnedFd> {
    open(dir, name, libc::O_RDONLY | libc::O_DIRECTORY)
}

/// `fstatat(dir, name)`; `follow` follows a symlink in the last name.
pub(super) fn stat(dir: RawFd, name: &CStr, follow: bool) -> io::Result<libc::stat> {
    let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
    // SAFETY: an all-zero `stat` is a valid value of the plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is NUL-terminated and `st` is writable for the call.
    if unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// Whether a directory may hold subdirectories: its link count is 2 plus
/// the number of its subdirectories where the filesystem keeps that count
/// (tmpfs, ext4, xfs); a count below 2 (btrfs, some overlays) says
/// nothing, so the answer is then yes.
pub(super) fn may_have_subdirs(st: &libc::stat) -> bool {
    st.st_nlink != 2
}

pub(super) fn is_dir(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

/// The target of symlink `name` below `dir`.
pub(super) fn readlink(dir: RawFd, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is writable for `buf.len()` bytes during the call.
    let n = unsafe { libc::readlinkat(dir, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    if n == buf.len() {
        // A state link is a few dozen bytes; a longer one is not ours.
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "symlink target too long",
        ));
    }
    Ok(buf[..n].to_vec())
}

/// The whole content of `file`, read without asking its size first (no
/// `fstat`): the records are small, so one `read` into a stack buffer
/// usually takes all of it and the result is allocated once, exactly. A
/// read that fills less than the buffer was at the end: a record is a
/// regular file, replaced whole by `rename(2)`, and `read(2)` of a regular
/// file returns less than asked only at its end, so no second `read` is
/// made to see 0 (with thousands of records, one system call each).
pub(super) fn read_all(file: &File) -> io::Result<Vec<u8>> {
    let mut chunk = [0u8; 8192];
    let mut out = Vec::new();
    loop {
        let n = loop {
            // SAFETY: `chunk` is writable for its length during the call.
            let n = unsafe { libc::read(file.as_raw_fd(), chunk.as_mut_ptr().cast(), chunk.len()) };
            if n >= 0 {
                break n as usize;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        };
        out.extend_from_slice(&chunk[..n]);
        if n < chunk.len() {
            return Ok(out);
        }
    }
}

/// One name of a directory listing and its `d_type` (`DT_UNKNOWN` when
/// the filesystem does not say).
pub(super) struct Entry {
    pub name: Vec<u8>,
    pub kind: u8,
}

/// Every name of directory `dir` but `.` and `..`, read from its start
/// with `getdents64(2)` into one buffer for the whole listing.
pub(super) fn list(dir: &OwnedFd) -> io::Result<Vec<Entry>> {
    // SAFETY: lseek on a descriptor we own; rewinds a reused listing.
    if unsafe { libc::lseek(dir.as_raw_fd(), 0, libc::SEEK_SET) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    loop {
        // SAFETY: `buf` is writable for its length during the call; the
        // kernel fills it with whole `linux_dirent64` records.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Ok(out);
        }
        let n = n as usize;
        let mut at = 0;
        // linux_dirent64: u64 d_ino, i64 d_off, u16 d_reclen, u8 d_type,
        // then the NUL-terminated name.
        while at + 19 <= n {
            let reclen = u16::from_ne_bytes([buf[at + 16], buf[at + 17]]) as usize;
            if reclen < 19 || at + reclen > n {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "malformed directory entry",
                ));
            }
            let kind = buf[at + 18];
            let raw = &buf[at + 19..at + reclen];
            let name = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())];
            if name != b"." && name != b".." {
                out.push(Entry {
                    name: name.to_vec(),
                    kind,
                });
            }
            at += reclen;
        }
    }
}
