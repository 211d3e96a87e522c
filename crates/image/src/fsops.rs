//! Directory-descriptor-relative file operations that never follow a
//! symbolic link, beyond what `phobos_core::safe_fs` offers (which reaches
//! the parent directories): entries are made with
//! `mkdirat`, `mknodat`, `symlinkat`, `linkat` (without
//! `AT_SYMLINK_FOLLOW`) relative to the parent's descriptor. The trees these
//! work on (a staging layer, a private rootfs copy) belong to the calling
//! process alone, so no other process can swap a component in between.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cstring(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a name"))
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Opens a directory by a trusted absolute path, the last component not
/// followed when it is a symlink.
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let c = cstring(path.as_os_str().as_bytes())?;
    // SAFETY: `c` is a valid NUL-terminated string; the returned descriptor
    // is owned by the OwnedFd below.
    let fd = check(unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: `fd` was just returned by open(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens the directory `name` beneath `dir`, refusing a symlink (`ELOOP`)
/// or a non-directory (`ENOTDIR`).
pub fn open_dir_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<OwnedFd> {
    open_at(
        dir,
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )
}

/// `openat(2)` with `O_CLOEXEC` added.
pub fn open_at(
    dir: BorrowedFd<'_>,
    name: &[u8],
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    let c = cstring(name)?;
    // SAFETY: valid descriptor and NUL-terminated name; the result is owned below.
    let fd = check(unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    })?;
    // SAFETY: `fd` was just returned by openat(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fstatat(AT_SYMLINK_NOFOLLOW)`; `None` when nothing has that name.
pub fn stat_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Option<libc::stat>> {
    let c = cstring(name)?;
    // SAFETY: an all-zero stat is a valid value for this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid descriptor, NUL-terminated name, and a stat buffer we own.
    let ret = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            c.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if ret < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENOENT) {
            return Ok(None);
        }
        return Err(e);
    }
    Ok(Some(st))
}

/// True when the mode is a directory's.
pub fn is_dir(mode: libc::mode_t) -> bool {
    mode & libc::S_IFMT == libc::S_IFDIR
}

/// `mkdirat(2)`.
pub fn mkdir_at(dir: BorrowedFd<'_>, name: &[u8], mode: libc::mode_t) -> io::Result<()> {
    let c = cstring(name)?;
    // SAFETY: valid descriptor and NUL-terminated name.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), mode) }).map(drop)
}

/// `mknodat(2)`.
pub fn mknod_at(
    dir: BorrowedFd<'_>,
    name: &[u8],
    mode: libc::mode_t,
    dev: libc::dev_t,
) -> io::Result<()> {
    let c = cstring(name)?;
    // SAFETY: valid descriptor and NUL-terminated name.
    check(unsafe { libc::mknodat(dir.as_raw_fd(), c.as_ptr(), mode, dev) }).map(drop)
}

/// `symlinkat(2)`: the link `name` in `dir` pointing at `target`.
pub fn symlink_at(target: &[u8], dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let t = cstring(target)?;
    let c = cstring(name)?;
    // SAFETY: valid descriptor and NUL-terminated strings.
    check(unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), c.as_ptr()) }).map(drop)
}

/// `linkat(2)` without `AT_SYMLINK_FOLLOW`: a symlink is linked as itself.
pub fn link_at(
    old_dir: BorrowedFd<'_>,
    old: &[u8],
    new_dir: BorrowedFd<'_>,
    new: &[u8],
) -> io::Result<()> {
    let o = cstring(old)?;
    let n = cstring(new)?;
    // SAFETY: valid descriptors and NUL-terminated names.
    check(unsafe {
        libc::linkat(
            old_dir.as_raw_fd(),
            o.as_ptr(),
            new_dir.as_raw_fd(),
            n.as_ptr(),
            0,
        )
    })
    .map(drop)
}

/// `readlinkat(2)`.
pub fn readlink_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Vec<u8>> {
    let c = cstring(name)?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: valid descriptor, NUL-terminated name and a buffer of the given length.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            c.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// `unlinkat(2)` of a non-directory.
pub fn unlink_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let c = cstring(name)?;
    // SAFETY: valid descriptor and NUL-terminated name.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) }).map(drop)
}

/// Removes `name` in `dir` whatever it is; a directory with everything
/// beneath it (symlinks inside are removed, never followed).
pub fn remove_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let Some(st) = stat_at(dir, name)? else {
        return Ok(());
    };
    if !is_dir(st.st_mode) {
        return unlink_at(dir, name);
    }
    let sub = open_dir_at(dir, name)?;
    clear_dir(std::os::fd::AsFd::as_fd(&sub))?;
    let c = cstring(name)?;
    // SAFETY: valid descriptor and NUL-terminated name.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), libc::AT_REMOVEDIR) }).map(drop)
}

/// Removes everything inside the directory `dir`.
pub fn clear_dir(dir: BorrowedFd<'_>) -> io::Result<()> {
    for (name, _) in read_dir(dir)? {
        remove_at(dir, &name)?;
    }
    Ok(())
}

/// The entries of a directory (without `.` and `..`) and their `d_type`.
pub fn read_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<(Vec<u8>, u8)>> {
    let fd = open_at(dir, b".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    let raw: RawFd = std::os::fd::IntoRawFd::into_raw_fd(fd);
    // SAFETY: `raw` is an open directory descriptor whose ownership passes to
    // the DIR stream (closed by closedir below).
    let stream = unsafe { libc::fdopendir(raw) };
    if stream.is_null() {
        let e = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so `raw` is still ours to close.
        unsafe { libc::close(raw) };
        return Err(e);
    }
    let mut out = Vec::new();
    loop {
        // SAFETY: `stream` is a valid DIR stream; errno is reset to tell end from error.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: `stream` is valid until closedir.
        let entry = unsafe { libc::readdir64(stream) };
        if entry.is_null() {
            let e = io::Error::last_os_error();
            // SAFETY: `stream` is valid and closed exactly once.
            unsafe { libc::closedir(stream) };
            if e.raw_os_error().unwrap_or(0) != 0 {
                return Err(e);
            }
            return Ok(out);
        }
        // SAFETY: readdir returned a valid entry whose d_name is NUL-terminated.
        let (name, kind) = unsafe {
            let e = &*entry;
            (
                std::ffi::CStr::from_ptr(e.d_name.as_ptr())
                    .to_bytes()
                    .to_vec(),
                e.d_type,
            )
        };
        if name != b"." && name != b".." {
            out.push((name, kind));
        }
    }
}

/// `fchown(2)`.
pub fn fchown(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: valid descriptor.
    check(unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) }).map(drop)
}

/// `fchmod(2)`.
pub fn fchmod(fd: BorrowedFd<'_>, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: valid descriptor.
    check(unsafe { libc::fchmod(fd.as_raw_fd(), mode) }).map(drop)
}

/// `fchownat(AT_SYMLINK_NOFOLLOW)`.
pub fn lchown_at(dir: BorrowedFd<'_>, name: &[u8], uid: u32, gid: u32) -> io::Result<()> {
    let c = cstring(name)?;
    // SAFETY: valid descriptor and NUL-terminated name.
    check(unsafe {
        libc::fchownat(
            dir.as_raw_fd(),
            c.as_ptr(),
            uid,
            gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(drop)
}

/// `fchmodat(2)` (never on a symlink: callers check the type first).
pub fn chmod_at(dir: BorrowedFd<'_>, name: &[u8], mode: libc::mode_t) -> io::Result<()> {
    let c = cstring(name)?;
    // SAFETY: valid descriptor and NUL-terminated name.
    check(unsafe { libc::fchmodat(dir.as_raw_fd(), c.as_ptr(), mode, 0) }).map(drop)
}

/// `fsetxattr(2)`.
pub fn fsetxattr(fd: BorrowedFd<'_>, name: &[u8], value: &[u8]) -> io::Result<()> {
    let c = cstring(name)?;
    // SAFETY: valid descriptor, NUL-terminated name, value pointer and length from a slice.
    check(unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            c.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
    .map(drop)
}

/// Every extended attribute of `fd` (name, value).
pub fn fxattrs(fd: BorrowedFd<'_>) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut names = vec![0u8; 64 * 1024];
    // SAFETY: valid descriptor and a buffer of the given length.
    let n = unsafe { libc::flistxattr(fd.as_raw_fd(), names.as_mut_ptr().cast(), names.len()) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENOTSUP) {
            return Ok(Vec::new());
        }
        return Err(e);
    }
    names.truncate(n as usize);
    let mut out = Vec::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let c = cstring(name)?;
        let mut value = vec![0u8; 64 * 1024];
        // SAFETY: valid descriptor, NUL-terminated name, buffer of the given length.
        let n = unsafe {
            libc::fgetxattr(
                fd.as_raw_fd(),
                c.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        if n < 0 {
            continue;
        }
        value.truncate(n as usize);
        out.push((name.to_vec(), value));
    }
    Ok(out)
}

/// `fgetxattr(2)` of one attribute; `None` when it is not set.
pub fn fgetxattr(fd: BorrowedFd<'_>, name: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let c = cstring(name)?;
    let mut value = vec![0u8; 256];
    // SAFETY: valid descriptor, NUL-terminated name, buffer of the given length.
    let n = unsafe {
        libc::fgetxattr(
            fd.as_raw_fd(),
            c.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        if matches!(e.raw_os_error(), Some(libc::ENODATA) | Some(libc::ENOTSUP)) {
            return Ok(None);
        }
        return Err(e);
    }
    value.truncate(n as usize);
    Ok(Some(value))
}

/// Sets access and modification time of `name` in `dir` (a symlink itself).
pub fn set_mtime_at(dir: BorrowedFd<'_>, name: &[u8], seconds: i64) -> io::Result<()> {
    let c = cstring(name)?;
    let t = libc::timespec {
        tv_sec: seconds,
        tv_nsec: 0,
    };
    let times = [t, t];
    // SAFETY: valid descriptor, NUL-terminated name, two timespecs.
    check(unsafe {
        libc::utimensat(
            dir.as_raw_fd(),
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(drop)
}

/// Sets access and modification time of an open file.
pub fn set_mtime_fd(fd: BorrowedFd<'_>, seconds: i64) -> io::Result<()> {
    let t = libc::timespec {
        tv_sec: seconds,
        tv_nsec: 0,
    };
    let times = [t, t];
    // SAFETY: valid descriptor, two timespecs.
    check(unsafe { libc::futimens(fd.as_raw_fd(), times.as_ptr()) }).map(drop)
}

/// Renders a name for messages.
pub fn show(name: &[u8]) -> String {
    OsStr::from_bytes(name).to_string_lossy().into_owned()
}
