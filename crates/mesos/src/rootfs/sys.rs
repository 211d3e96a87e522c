//! The system calls entering a root filesystem needs that nix does not
//! wrap: openat2(2) with `RESOLVE_*` flags, the new mount API
//! (open_tree(2), move_mount(2), mount_setattr(2)), pivot_root(2), and
//! mount(2) onto a descriptor through its `/proc/self/fd` link.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

pub fn cstr(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn owned(ret: libc::c_long) -> io::Result<OwnedFd> {
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

fn check(ret: libc::c_long) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `struct open_how` of openat2(2).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Symlinks are resolved as if `dirfd` were `/`, `..` stops there.
pub const RESOLVE_IN_ROOT: u64 = 0x10;
/// No "magic" links (`/proc/self/fd/N` and friends) on the way.
pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
/// No symlink at all on the way.
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
/// Never leave `dirfd` (absolute paths and escaping `..` fail).
pub const RESOLVE_BENEATH: u64 = 0x08;

/// openat2(2): `path` relative to `dirfd` under the `resolve` rules.
pub fn openat2(
    dirfd: BorrowedFd<'_>,
    path: &CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: u64::from(mode),
        resolve,
    };
    loop {
        // SAFETY: a valid dirfd, a NUL-terminated path and an open_how of
        // the size passed.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd.as_raw_fd(),
                path.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        // EAGAIN: a rename raced with the lookup; the kernel asks to retry.
        if ret < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN) {
            continue;
        }
        return owned(ret);
    }
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
const MOUNT_ATTR_RDONLY: u64 = 0x1;

/// open_tree(2) with `OPEN_TREE_CLONE | AT_RECURSIVE`: a detached copy of
/// the mount tree at `path` (absolute) or at `dirfd` itself (`path` None),
/// ready to be attached with [`move_mount_to`]: a recursive bind mount.
pub fn clone_tree(dirfd: Option<BorrowedFd<'_>>, path: Option<&Path>) -> io::Result<OwnedFd> {
    let (fd, name, empty) = match (dirfd, path) {
        (Some(fd), None) => (
            fd.as_raw_fd(),
            CString::default(),
            libc::AT_EMPTY_PATH as u32,
        ),
        (_, Some(p)) => (libc::AT_FDCWD, cstr(p)?, 0),
        (None, None) => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
    };
    // SAFETY: a NUL-terminated path and flags; returns a new fd.
    owned(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            fd,
            name.as_ptr(),
            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | empty,
        )
    })
}

/// mount_setattr(2): the whole detached or attached tree read-only
/// (`AT_RECURSIVE`, so submounts too, unlike a bind remount).
pub fn make_read_only(tree: BorrowedFd<'_>) -> io::Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: a valid fd, an empty path with AT_EMPTY_PATH and a
    // mount_attr of the size passed.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint | AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
}

/// move_mount(2): attaches the detached `tree` on top of `target`.
pub fn move_mount_to(tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: two valid fds and empty paths with the *_EMPTY_PATH flags.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    })
}

/// The `/proc/self/fd/N` name of a descriptor, for calls that take paths.
pub fn fd_path(fd: BorrowedFd<'_>) -> CString {
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default()
}

/// mount(2) of a new filesystem on top of `target` (an `O_PATH` fd).
pub fn mount_fs(
    fstype: &CStr,
    target: BorrowedFd<'_>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> io::Result<()> {
    let path = fd_path(target);
    // SAFETY: NUL-terminated strings that outlive the call.
    let ret = unsafe {
        libc::mount(
            fstype.as_ptr(),
            path.as_ptr(),
            fstype.as_ptr(),
            flags,
            data.map_or(std::ptr::null(), |d| d.as_ptr().cast()),
        )
    };
    check(ret.into())
}

/// mount(2) changing only the propagation of the mounts at and below
/// `target`.
pub fn set_propagation(target: &CStr, flags: libc::c_ulong) -> io::Result<()> {
    // SAFETY: a NUL-terminated path; no source, type or data.
    let ret = unsafe {
        libc::mount(
            std::ptr::null(),
            target.as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        )
    };
    check(ret.into())
}

/// pivot_root(".", "."), then the old root (now stacked on the new one at
/// ".") is made a slave, so its unmount cannot propagate anywhere, and
/// lazily detached; the process ends in "/" of the new root. `root` must
/// be the new root's mount.
pub fn pivot_into(root: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fchdir to a directory fd; pivot_root, mount, umount2 and
    // chdir with NUL-terminated constant paths.
    unsafe {
        check(libc::fchdir(root.as_raw_fd()).into())?;
        check(libc::syscall(
            libc::SYS_pivot_root,
            c".".as_ptr(),
            c".".as_ptr(),
        ))?;
    }
    set_propagation(c".", libc::MS_SLAVE | libc::MS_REC)?;
    // SAFETY: as above.
    unsafe {
        check(libc::umount2(c".".as_ptr(), libc::MNT_DETACH).into())?;
        check(libc::chdir(c"/".as_ptr()).into())
    }
}

/// mount(2) `MS_BIND` (with `MS_REC` when `recursive`) of `source` (a path
/// or a `/proc/self/fd/N` name) onto `target`: the classic path's
/// [`clone_tree`] + [`move_mount_to`] (Linux < 5.12).
pub fn bind_legacy(source: &CStr, target: BorrowedFd<'_>, recursive: bool) -> io::Result<()> {
    let target = fd_path(target);
    let flags = libc::MS_BIND | if recursive { libc::MS_REC } else { 0 };
    // SAFETY: NUL-terminated strings that outlive the call; no data.
    let ret = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        )
    };
    check(ret.into())
}

/// The classic path's [`make_read_only`] for an attached mount whose root
/// `top` is: a bind remount read-only of it and of every mount beneath it
/// (from `/proc/self/mountinfo`), each keeping its nosuid, nodev, noexec
/// and atime flags (a bind remount would otherwise clear them).
pub fn make_read_only_legacy(top: BorrowedFd<'_>) -> io::Result<()> {
    let top_name = fd_path(top);
    let at = std::fs::read_link(top_name.to_str().unwrap_or_default())?;
    remount_read_only(&top_name)?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
    let mut below: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|p| p != &at && p.starts_with(&at))
        .collect();
    below.sort();
    below.dedup();
    for path in below {
        remount_read_only(&cstr(&path)?)?;
    }
    Ok(())
}

/// `MS_BIND | MS_REMOUNT | MS_RDONLY` of the mount at `path`, its other
/// per-mount flags kept.
fn remount_read_only(path: &CStr) -> io::Result<()> {
    // SAFETY: an all-zero statvfs is a valid value for this C struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a statvfs we own.
    check(unsafe { libc::statvfs(path.as_ptr(), &mut st) }.into())?;
    let kept = [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ]
    .into_iter()
    .filter(|(st_flag, _)| st.f_flag & st_flag != 0)
    .fold(0, |flags, (_, ms_flag)| flags | ms_flag);
    // SAFETY: a NUL-terminated path; no source, type or data.
    let ret = unsafe {
        libc::mount(
            std::ptr::null(),
            path.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | kept,
            std::ptr::null(),
        )
    };
    check(ret.into())
}

/// A mountinfo path field: `\040` (space), `\011`, `\012`, `\134` decoded.
fn unescape_mountinfo(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value = bytes[i + 1..i + 4]
                .iter()
                .fold(0u32, |v, b| v * 8 + u32::from(b - b'0'));
            out.push(value as u8);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_paths_are_unescaped() {
        assert_eq!(
            unescape_mountinfo(r"/mnt/a\040b\134c"),
            Path::new("/mnt/a b\\c")
        );
        assert_eq!(unescape_mountinfo("/plain"), Path::new("/plain"));
        assert_eq!(unescape_mountinfo(r"/end\04"), Path::new(r"/end\04"));
    }
}
