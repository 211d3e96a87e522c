//! Network namespaces (network_namespaces(7)) as files: a namespace is kept
//! alive by bind-mounting its nsfs inode (`/proc/<pid>/ns/net`) onto an
//! empty file, as `ip netns` does, so CNI plugins can enter it by path
//! (`CNI_NETNS`) and DEL can run after every process in it is gone.
//!
//! Entering a namespace is done on a short-lived thread with setns(2):
//! the network namespace is per thread, so the rest of the process is not
//! affected, and the thread ends with it.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

use crate::error::NetError;

fn netns_err(path: &Path, op: &'static str, source: impl Into<std::io::Error>) -> NetError {
    NetError::Netns {
        path: path.to_owned(),
        op,
        source: source.into(),
    }
}

/// Creates the empty file a namespace will be bound onto; refuses to reuse
/// or follow anything already there.
fn create_mount_point(path: &Path) -> Result<(), NetError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map(drop)
        .map_err(|e| netns_err(path, "create the mount point", e))
}

/// Creates a new, empty network namespace and binds it at `path` (which
/// must not exist).
pub fn create(path: &Path) -> Result<(), NetError> {
    create_mount_point(path)?;
    let result = std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<(), NetError> {
                unshare(CloneFlags::CLONE_NEWNET)
                    .map_err(|e| netns_err(path, "unshare(CLONE_NEWNET)", e))?;
                mount(
                    Some("/proc/thread-self/ns/net"),
                    path,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(|e| netns_err(path, "bind mount", e))
            })
            .join()
            .unwrap_or_else(|_| {
                Err(netns_err(
                    path,
                    "unshare",
                    std::io::Error::other("thread panicked"),
                ))
            })
    });
    if result.is_err() {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// Binds the network namespace of process `pid` at `path` (which must not
/// exist): the launcher cloned it with `CLONE_NEWNET`.
pub fn bind_from_pid(pid: u32, path: &Path) -> Result<(), NetError> {
    create_mount_point(path)?;
    let source = PathBuf::from(format!("/proc/{pid}/ns/net"));
    let result = mount(
        Some(&source),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| netns_err(&source, "bind mount", e));
    if result.is_err() {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// Whether `path` is a bound namespace (not a symlink, on nsfs).
pub fn is_bound(path: &Path) -> bool {
    open_handle(path).is_ok_and(|f| is_nsfs(&f))
}

fn open_handle(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

fn is_nsfs(file: &File) -> bool {
    nix::sys::statfs::fstatfs(file.as_fd())
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
}

/// Unbinds and removes `path`. Idempotent: a missing file is fine.
pub fn remove(path: &Path) -> Result<(), NetError> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(netns_err(path, "stat", e)),
        Ok(meta) if !meta.is_file() => {
            return Err(NetError::Unsafe {
                path: path.to_owned(),
                reason: "not a namespace handle file",
            });
        }
        Ok(_) => {}
    }
    // Several stacked binds (never made by us, but harmless) all go.
    while is_bound(path) {
        umount2(path, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW)
            .map_err(|e| netns_err(path, "unmount", e))?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(netns_err(path, "remove", e)),
        _ => Ok(()),
    }
}

/// Opens the namespace bound at `path` (for `IFLA_NET_NS_FD`); anything
/// but a namespace handle is refused.
pub fn open_bound(path: &Path) -> Result<std::os::fd::OwnedFd, NetError> {
    let handle = open_handle(path).map_err(|e| netns_err(path, "open", e))?;
    if !is_nsfs(&handle) {
        return Err(NetError::Unsafe {
            path: path.to_owned(),
            reason: "not a network namespace handle",
        });
    }
    Ok(handle.into())
}

/// Runs `f` on a thread inside the namespace bound at `path`.
pub fn run_in<T: Send>(path: &Path, f: impl FnOnce() -> T + Send) -> Result<T, NetError> {
    let handle = open_handle(path).map_err(|e| netns_err(path, "open", e))?;
    if !is_nsfs(&handle) {
        return Err(NetError::Unsafe {
            path: path.to_owned(),
            reason: "not a network namespace handle",
        });
    }
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                setns(handle.as_fd(), CloneFlags::CLONE_NEWNET)
                    .map_err(|e| netns_err(path, "setns", e))?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|_| {
                Err(netns_err(
                    path,
                    "enter",
                    std::io::Error::other("thread panicked"),
                ))
            })
    })
}

/// Brings the loopback interface up inside the namespace at `path`
/// (SIOCSIFFLAGS with IFF_UP on `lo`), as Mesos does for every container
/// network namespace.
pub fn loopback_up(path: &Path) -> Result<(), NetError> {
    run_in(path, set_lo_up)?.map_err(|e| netns_err(path, "bring lo up", e))
}

fn set_lo_up() -> std::io::Result<()> {
    // SAFETY: socket(2) with constant arguments; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor owned by nothing else.
    let sock = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    let raw = std::os::fd::AsRawFd::as_raw_fd(&sock);
    // SAFETY: SIOCGIFFLAGS reads into the ifreq we own, which lives for
    // the whole call.
    if unsafe { libc::ioctl(raw, libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: after SIOCGIFFLAGS the union holds ifru_flags.
    unsafe {
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
    }
    // SAFETY: SIOCSIFFLAGS reads the ifreq we own.
    if unsafe { libc::ioctl(raw, libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Reads `/proc/thread-self/net/dev` inside the namespace at `path`.
pub fn read_net_dev(path: &Path) -> Result<String, NetError> {
    run_in(path, || {
        let mut text = String::new();
        File::open("/proc/thread-self/net/dev")
            .and_then(|f| f.take(1 << 20).read_to_string(&mut text))
            .map(|_| text)
    })?
    .map_err(|e| netns_err(path, "read net/dev", e))
}

/// The names of the interfaces in the namespace at `path`.
pub fn interfaces(path: &Path) -> Result<Vec<String>, NetError> {
    let text = read_net_dev(path)?;
    Ok(crate::stats::parse_net_dev(&text)
        .into_iter()
        .map(|(name, _)| name)
        .collect())
}
