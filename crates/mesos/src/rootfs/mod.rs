//! Entering a container's own root filesystem, done by init in the
//! container's mount namespace before it starts the command (reference
//! images §3.2–3.5, runc's default spec for the hardening).
//!
//! Kernel mechanisms, in order:
//! 1. the root filesystem is bind-mounted onto itself (open_tree(2)
//!    `OPEN_TREE_CLONE | AT_RECURSIVE` + move_mount(2)) so it is a mount
//!    point, as pivot_root(2) requires; every later target is resolved
//!    beneath that mount with openat2(2) `RESOLVE_IN_ROOT` (see
//!    [`beneath`]) and mounted on through its descriptor, never through a
//!    path a symlink in the image could redirect onto the host;
//! 2. a fresh `proc` (nosuid, nodev, noexec); `sysfs` read-only; a `tmpfs`
//!    `/dev` (mode 0755, nosuid, noexec) with the character devices null,
//!    zero, full, random, urandom and tty made by mknodat(2) with the
//!    host's numbers, a private `devpts` instance (`newinstance,
//!    ptmxmode=0666, mode=0620, gid=5`) with `/dev/ptmx -> pts/ptmx`, a
//!    `tmpfs` `/dev/shm` (mode 1777), an `mqueue` `/dev/mqueue`, and the
//!    `/dev/fd`, `/dev/stdin`, `/dev/stdout`, `/dev/stderr` symlinks, then
//!    the `--device` nodes (mknodat(2) beneath the root, never through a
//!    symlink out of it);
//! 3. the bind mounts of the plan ([`crate::launch_info::RootfsPlan`]):
//!    `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`, the sandbox at
//!    `sandbox_directory`, the volumes; read-only ones are made so with
//!    mount_setattr(2) `MOUNT_ATTR_RDONLY | AT_RECURSIVE` before they are
//!    attached (submounts included, which a bind remount would miss);
//! 4. runc's default read-only paths (`/proc/bus`, `/proc/fs`, `/proc/irq`,
//!    `/proc/sys`, `/proc/sysrq-trigger`) bound onto themselves read-only,
//!    and its masked paths covered: files by `/dev/null`, directories by an
//!    empty read-only `tmpfs`;
//! 5. pivot_root(2) into the new root with the `pivot_root(".", ".")`
//!    idiom (no directory for the old root is needed, so a read-only image
//!    works), the old root made a recursive slave and lazily detached
//!    (umount2(2) `MNT_DETACH`): the host's tree is unreachable.
//!
//! On kernels before 5.12 (no mount_setattr(2)), or when the plan says so
//! (`phobos_core::mount_api`), steps 1, 3 and 4 use mount(2) instead:
//! `MS_BIND | MS_REC` onto the target's `/proc/self/fd/N` name, and
//! read-only by a bind remount of the mount and of every mount beneath it
//! (from `/proc/self/mountinfo`), keeping their nosuid, nodev and noexec.
//!
//! Every mount lives in the container's mount namespace, whose `/` init
//! made a recursive slave first: nothing propagates to the host, and all
//! of it disappears with the namespace when the container's last process
//! ends.

mod beneath;
mod sys;

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use phobos_core::mount_api::MountApi;
use phobos_core::safe_fs::{SafeDir, SafeFsError};

use crate::launch_info::{Bind, BindSource, RootfsPlan};

pub use beneath::InRoot;

/// Files that runc's default spec covers with `/dev/null` or an empty
/// read-only tmpfs (whichever fits), so the container cannot read kernel
/// memory, keyrings, timers or firmware tables.
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths runc's default spec makes read-only.
pub const READ_ONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The device nodes every container gets (the OCI runtime spec's default
/// devices), copied from the host's by major and minor number.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

const DEV_SYMLINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

/// The size of a root filesystem's `/dev/shm` unless the container asks
/// for another (Docker's default, 64 MiB).
const DEFAULT_SHM_SIZE: u64 = 64 << 20;

/// Sets up `plan` and pivots into it; on return "/" is the container's
/// root and the current directory is "/". Fails with one line naming the
/// step and path.
pub fn enter(plan: &RootfsPlan) -> Result<(), String> {
    let root_path = &plan.root;
    let at = |what: &str, path: &Path| {
        let what = what.to_owned();
        let path = path.display().to_string();
        move |e: io::Error| format!("failed to {what} {path}: {e}")
    };
    // Host facts first, while the host's tree is still ours to read.
    let devices = host_devices()?;
    let legacy = plan.mount_api == MountApi::Legacy;
    let root = if legacy {
        let target = open_dir(root_path).map_err(at("open the root filesystem", root_path))?;
        let source = sys::cstr(root_path).map_err(at("bind the root filesystem", root_path))?;
        sys::bind_legacy(&source, target.as_fd(), true)
            .map_err(at("bind the root filesystem onto", root_path))?;
        // Opened again: the new mount's root, not the directory under it.
        InRoot::new(open_dir(root_path).map_err(at("open the root filesystem", root_path))?)
    } else {
        let tree = sys::clone_tree(None, Some(root_path))
            .map_err(at("bind the root filesystem", root_path))?;
        let target = open_dir(root_path).map_err(at("open the root filesystem", root_path))?;
        sys::move_mount_to(tree.as_fd(), target.as_fd())
            .map_err(at("bind the root filesystem onto", root_path))?;
        // The tree's descriptor now names the new mount's root.
        InRoot::new(tree)
    };
    let mount_at = |path: &str, fstype: &CStr, flags: libc::c_ulong, data: Option<&CStr>| {
        let target = root
            .mkdir_all(Path::new(path))
            .map_err(at("create the mount point", Path::new(path)))?;
        sys::mount_fs(fstype, target.as_fd(), flags, data).map_err(|e| {
            format!(
                "failed to mount {} on {path}: {e}",
                fstype.to_string_lossy()
            )
        })
    };
    let hardened = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    mount_at("/proc", c"proc", hardened, None)?;
    mount_at("/sys", c"sysfs", hardened | libc::MS_RDONLY, None)?;
    mount_at(
        "/dev",
        c"tmpfs",
        libc::MS_NOSUID | libc::MS_NOEXEC | libc::MS_STRICTATIME,
        Some(c"mode=755,size=65536k"),
    )?;
    populate_dev(&root, &devices)?;
    mount_at(
        "/dev/pts",
        c"devpts",
        libc::MS_NOSUID | libc::MS_NOEXEC,
        Some(c"newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    let shm_options = std::ffi::CString::new(format!(
        "mode=1777,size={}",
        plan.shm_size.unwrap_or(DEFAULT_SHM_SIZE)
    ))
    .map_err(|e| format!("/dev/shm options: {e}"))?;
    mount_at("/dev/shm", c"tmpfs", hardened, Some(&shm_options))?;
    mount_at("/dev/mqueue", c"mqueue", hardened, None)?;
    for node in &plan.devices {
        make_device(&root, node)?;
    }

    for bind in &plan.binds {
        bind_into(&root, bind, legacy)?;
    }
    for path in READ_ONLY_PATHS {
        read_only(&root, Path::new(path), legacy).map_err(at("make read-only", Path::new(path)))?;
    }
    for path in MASKED_PATHS {
        mask(&root, Path::new(path), legacy).map_err(at("mask", Path::new(path)))?;
    }
    sys::pivot_into(root.fd()).map_err(at("pivot_root into", root_path))
}

fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let c = sys::cstr(path)?;
    // SAFETY: a NUL-terminated path; returns a new fd or -1.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new fd nobody else owns.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

/// The host's device numbers of [`DEVICES`].
fn host_devices() -> Result<Vec<(&'static str, libc::dev_t)>, String> {
    DEVICES
        .iter()
        .map(|name| {
            let path = Path::new("/dev").join(name);
            let meta = std::fs::metadata(&path)
                .map_err(|e| format!("failed to inspect {}: {e}", path.display()))?;
            if !meta.file_type().is_char_device() {
                return Err(format!("{} is not a character device", path.display()));
            }
            Ok((*name, meta.rdev()))
        })
        .collect()
}

/// Device nodes and symlinks in the fresh `/dev` tmpfs.
fn populate_dev(root: &InRoot, devices: &[(&str, libc::dev_t)]) -> Result<(), String> {
    let dev = root
        .open(Path::new("/dev"))
        .map_err(|e| format!("failed to open the new /dev: {e}"))?;
    for (name, rdev) in devices {
        let c = CString::new(*name).unwrap_or_default();
        // SAFETY: mknodat and fchmodat on a valid dirfd with a single
        // NUL-terminated component; fchmodat sets the exact mode whatever
        // the umask.
        let failed = unsafe {
            libc::mknodat(dev.as_raw_fd(), c.as_ptr(), libc::S_IFCHR | 0o666, *rdev) != 0
                || libc::fchmodat(dev.as_raw_fd(), c.as_ptr(), 0o666, 0) != 0
        };
        if failed {
            return Err(format!(
                "failed to create /dev/{name}: {}",
                io::Error::last_os_error()
            ));
        }
    }
    for (name, target) in DEV_SYMLINKS {
        let (n, t) = (
            CString::new(name).unwrap_or_default(),
            CString::new(target).unwrap_or_default(),
        );
        // SAFETY: symlinkat with NUL-terminated strings and a valid dirfd.
        if unsafe { libc::symlinkat(t.as_ptr(), dev.as_raw_fd(), n.as_ptr()) } != 0 {
            return Err(format!(
                "failed to create /dev/{name}: {}",
                io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// A `--device` node at its container path: the parent resolved beneath
/// the root (made when missing; symlinks stay inside), then mknodat(2) of
/// the last component, which never follows a symlink there. An existing
/// node with the same type and numbers is kept; anything else there is an
/// error.
fn make_device(root: &InRoot, node: &phobos_core::DeviceNode) -> Result<(), String> {
    let fail = |e: io::Error| format!("failed to create device {}: {e}", node.path.display());
    let (Some(parent), Some(name)) = (node.path.parent(), node.path.file_name()) else {
        return Err(fail(io::Error::from_raw_os_error(libc::EINVAL)));
    };
    let dir = root.mkdir_all(parent).map_err(fail)?;
    let c = CString::new(name.as_encoded_bytes())
        .map_err(|_| fail(io::ErrorKind::InvalidInput.into()))?;
    let kind = if node.kind == 'b' {
        libc::S_IFBLK
    } else {
        libc::S_IFCHR
    };
    let rdev = libc::makedev(node.major, node.minor);
    let mode = node.mode & 0o7777;
    // SAFETY: mknodat on a valid dirfd with one NUL-terminated component.
    if unsafe { libc::mknodat(dir.as_raw_fd(), c.as_ptr(), kind | mode, rdev) } != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EEXIST) {
            return Err(fail(err));
        }
        // SAFETY: an all-zero stat is valid; fstatat fills it.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid dirfd, NUL-terminated name, a live stat buffer;
        // AT_SYMLINK_NOFOLLOW inspects a symlink itself.
        let r = unsafe {
            libc::fstatat(
                dir.as_raw_fd(),
                c.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if r != 0 || st.st_mode & libc::S_IFMT != kind || st.st_rdev != rdev {
            return Err(fail(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "something else exists there",
            )));
        }
        return Ok(());
    }
    // SAFETY: as above; the node was just made by us (not a symlink), and
    // fchmodat sets the exact mode whatever the umask.
    if unsafe { libc::fchmodat(dir.as_raw_fd(), c.as_ptr(), mode, 0) } != 0 {
        return Err(fail(io::Error::last_os_error()));
    }
    Ok(())
}

/// One bind mount of the plan; `legacy`: with mount(2) alone.
fn bind_into(root: &InRoot, bind: &Bind, legacy: bool) -> Result<(), String> {
    let target = &bind.target;
    let fail = |what: &str, e: io::Error| {
        format!(
            "failed to {what} for the mount on {}: {e}",
            target.display()
        )
    };
    let sandbox_source = match &bind.source {
        BindSource::Host(_) => None,
        BindSource::Sandbox { sandbox, path } => Some(sandbox_dir(sandbox, path).map_err(|e| {
            format!(
                "failed to prepare {} in the sandbox {}: {e}",
                path.display(),
                sandbox.display()
            )
        })?),
    };
    let host_fail = |path: &Path, e: io::Error| {
        format!("failed to bind {} into the container: {e}", path.display())
    };
    if legacy {
        let (source, like_dir) = match (&bind.source, &sandbox_source) {
            (_, Some(dir)) => (sys::fd_path(dir.as_fd()), true),
            (BindSource::Host(path), None) => {
                let meta = std::fs::metadata(path).map_err(|e| host_fail(path, e))?;
                (
                    sys::cstr(path).map_err(|e| host_fail(path, e))?,
                    meta.is_dir(),
                )
            }
            (BindSource::Sandbox { .. }, None) => unreachable!("prepared above"),
        };
        let target_fd = root
            .target(target, like_dir)
            .map_err(|e| fail("create the mount point", e))?;
        sys::bind_legacy(&source, target_fd.as_fd(), true)
            .map_err(|e| fail("attach the mount", e))?;
        if bind.read_only {
            let top = root.open(target).map_err(|e| fail("open", e))?;
            sys::make_read_only_legacy(top.as_fd()).map_err(|e| fail("make read-only", e))?;
        }
        return Ok(());
    }
    let tree = match (&bind.source, &sandbox_source) {
        (_, Some(dir)) => sys::clone_tree(Some(dir.as_fd()), None)
            .map_err(|e| fail("bind the sandbox path", e))?,
        (BindSource::Host(path), None) => {
            sys::clone_tree(None, Some(path)).map_err(|e| host_fail(path, e))?
        }
        (BindSource::Sandbox { .. }, None) => unreachable!("prepared above"),
    };
    let like_dir = beneath::is_dir(&tree).map_err(|e| fail("inspect the source", e))?;
    if bind.read_only {
        sys::make_read_only(tree.as_fd()).map_err(|e| fail("make read-only", e))?;
    }
    let target_fd = root
        .target(target, like_dir)
        .map_err(|e| fail("create the mount point", e))?;
    sys::move_mount_to(tree.as_fd(), target_fd.as_fd()).map_err(|e| fail("attach the mount", e))
}

/// `sandbox/path` as a directory, created when missing (owned like the
/// sandbox, as Mesos chowns it to the sandbox owner), without following
/// any symlink on the way: the sandbox's contents are the container's.
fn sandbox_dir(sandbox: &Path, path: &Path) -> Result<OwnedFd, SafeFsError> {
    let base = SafeDir::open_trusted(sandbox)?;
    let io = |op: &'static str| {
        move |source| SafeFsError::Io {
            op,
            path: sandbox.join(path),
            source,
        }
    };
    let owner = base.as_file().metadata().map_err(io("stat"))?;
    let dir = base.create_dir_all(path, 0o755)?;
    let meta = dir.as_file().metadata().map_err(io("stat"))?;
    if (meta.uid(), meta.gid()) != (owner.uid(), owner.gid()) {
        dir.chown(owner.uid(), owner.gid())?;
    }
    dir.as_file()
        .try_clone()
        .map(OwnedFd::from)
        .map_err(io("duplicate"))
}

/// Binds `path` onto itself read-only; missing paths are skipped.
fn read_only(root: &InRoot, path: &Path, legacy: bool) -> io::Result<()> {
    let fd = match root.open(path) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    if legacy {
        sys::bind_legacy(&sys::fd_path(fd.as_fd()), fd.as_fd(), true)?;
        return sys::make_read_only_legacy(root.open(path)?.as_fd());
    }
    let tree = sys::clone_tree(Some(fd.as_fd()), None)?;
    sys::make_read_only(tree.as_fd())?;
    sys::move_mount_to(tree.as_fd(), fd.as_fd())
}

/// Covers `path`: a directory with an empty read-only tmpfs, anything else
/// with `/dev/null`; missing paths are skipped.
fn mask(root: &InRoot, path: &Path, legacy: bool) -> io::Result<()> {
    let fd = match root.open(path) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    if beneath::is_dir(&fd)? {
        return sys::mount_fs(
            c"tmpfs",
            fd.as_fd(),
            libc::MS_RDONLY,
            Some(c"size=0,mode=555"),
        );
    }
    let null = root.open(Path::new("/dev/null"))?;
    if legacy {
        return sys::bind_legacy(&sys::fd_path(null.as_fd()), fd.as_fd(), false);
    }
    let tree = sys::clone_tree(Some(null.as_fd()), None)?;
    sys::move_mount_to(tree.as_fd(), fd.as_fd())
}

/// The plan's `/etc` binds for a container whose hostname file (written by
/// the containerizer) is `hostname_file`: the host's `/etc/hosts` and
/// `/etc/resolv.conf` read-only, as Mesos gives containers on the host
/// network, and the container's own `/etc/hostname`.
pub fn etc_binds(hostname_file: Option<PathBuf>) -> Vec<Bind> {
    let mut binds = Vec::new();
    for name in ["hosts", "resolv.conf"] {
        let host = Path::new("/etc").join(name);
        if host.exists() {
            binds.push(Bind {
                source: BindSource::Host(host.clone()),
                target: host,
                read_only: true,
            });
        }
    }
    let hostname = hostname_file.or_else(|| {
        let host = PathBuf::from("/etc/hostname");
        host.exists().then_some(host)
    });
    if let Some(source) = hostname {
        binds.push(Bind {
            source: BindSource::Host(source),
            target: PathBuf::from("/etc/hostname"),
            read_only: true,
        });
    }
    binds
}
