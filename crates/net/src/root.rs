//! The network state directory `<runtime_dir>/net`:
//!
//! ```text
//! <runtime_dir>/net/                 a tmpfs with shared propagation while any container has state
//!   containers/<id>/ns               the container's network namespace (nsfs bind mount)
//!   containers/<id>/NN-<net>.json    checkpoint per network: config, ifname, ports, result
//!   containers/<id>/hosts, hostname, resolv.conf
//!   ports/<proto>-<port>             host port reservations (owner's ID inside)
//!   ipam/                            host-local reservations of the built-in network
//! <runtime_dir>/net-rules/BRIDGE     the built-in network's host rules are installed
//! <runtime_dir>/net.lock             serializes mounting and unmounting the directory
//! ```
//!
//! Like `/run/netns` of iproute2, the directory is a shared mount in its
//! own peer group (mount_namespaces(7)): container mount namespaces made
//! later get slave copies of the namespace handles, and unmounting a handle
//! on the host propagates into them, so no container pins another
//! container's namespace.
//!
//! The mount is a tmpfs(5) of its own (mode 0700): everything in it lives
//! exactly as long as the kernel objects it describes (namespaces, veths,
//! packet filter rules of published ports are gone after a reboot, and so
//! is this state), and the dozen files a network launch creates, renames
//! and removes cost no disk inode allocation or journal work (on the ext4
//! runtime directory of the benchmarks, a third of the network's CPU per
//! launch). The last container's detach unmounts it. State an older
//! version left on the disk underneath (a `containers` entry) is never
//! hidden: then the directory is bound onto itself as before.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::container::ContainerNet;
use crate::error::NetError;

/// The network state directory of one runtime directory.
#[derive(Debug, Clone)]
pub struct NetRoot {
    dir: PathBuf,
    runtime_dir: PathBuf,
}

impl NetRoot {
    /// `<runtime_dir>/net`; nothing is created until [`NetRoot::prepare`].
    pub fn new(runtime_dir: &Path) -> Self {
        NetRoot {
            dir: runtime_dir.join("net"),
            runtime_dir: runtime_dir.to_owned(),
        }
    }

    /// `<runtime_dir>/net-rules`: what survives the unmount of the state
    /// directory (the built-in network's host rules stay installed).
    pub(crate) fn rules_dir(&self) -> PathBuf {
        self.runtime_dir.join("net-rules")
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the built-in network's host-local IPAM keeps reservations.
    pub fn ipam_dir(&self) -> PathBuf {
        self.dir.join("ipam")
    }

    pub(crate) fn ports_dir(&self) -> PathBuf {
        self.dir.join("ports")
    }

    fn containers_dir(&self) -> PathBuf {
        self.dir.join("containers")
    }

    /// Creates the directories and makes the root a shared mount (once;
    /// concurrent callers serialize on a lock of the directory).
    pub fn prepare(&self) -> Result<(), NetError> {
        self.prepare_with(|| Ok(()))
    }

    /// [`NetRoot::prepare`], then creates the state directory `dir` of a
    /// container under the same lock, so [`NetRoot::release_if_unused`]
    /// cannot unmount the root between the two. Once `dir` is there on the
    /// mounted root (a launch's second call, when it binds the namespace),
    /// nothing is done: the directory keeps the root mounted, and the lock
    /// is not taken again (20 launches at once queued on it, each holder
    /// in mount(2) calls that wait on the kernel's mount lock).
    pub(crate) fn prepare_container(&self, dir: &Path) -> Result<(), NetError> {
        let made = fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir());
        if made && is_mount_point(&self.dir)? {
            return Ok(());
        }
        self.prepare_with(|| ensure_dir(dir))
    }

    fn prepare_with(&self, then: impl FnOnce() -> Result<(), NetError>) -> Result<(), NetError> {
        ensure_dir(&self.dir)?;
        let _lock = self.lock()?;
        let shared = || {
            mount(
                None::<&str>,
                &self.dir,
                None::<&str>,
                MsFlags::MS_SHARED | MsFlags::MS_REC,
                None::<&str>,
            )
        };
        if !is_mount_point(&self.dir)? {
            // Not mounted yet: a tmpfs, unless older state is underneath,
            // which stays visible through a bind of the directory itself.
            let tmpfs = !has_entries(&self.containers_dir())?
                && mount(
                    Some("phobos-net"),
                    &self.dir,
                    Some("tmpfs"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                    Some("mode=0700"),
                )
                .is_ok();
            if !tmpfs {
                mount(
                    Some(&self.dir),
                    &self.dir,
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .map_err(|e| NetError::io("bind mount", &self.dir, e.into()))?;
            }
        }
        shared().map_err(|e| NetError::io("make shared", &self.dir, e.into()))?;
        for dir in [self.containers_dir(), self.ports_dir(), self.ipam_dir()] {
            ensure_dir(&dir)?;
        }
        then()
    }

    /// An exclusive lock of the state directory's mounting and unmounting:
    /// flock(2) on `<runtime_dir>/net.lock`, a file beside the directory,
    /// whose inode (unlike the directory's) is the same whether the tmpfs
    /// is mounted or not.
    fn lock(&self) -> Result<Flock<File>, NetError> {
        let path = self.runtime_dir.join("net.lock");
        let handle = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| NetError::io("open", &path, e))?;
        Flock::lock(handle, FlockArg::LockExclusive)
            .map_err(|(_, e)| NetError::io("lock", &path, e.into()))
    }

    /// Unmounts the root's shared self-bind once no container has network
    /// state any more (called after a container's detach), so nothing stays
    /// mounted under the runtime directory; the next
    /// [`NetRoot::prepare`] binds it again. Returns whether it unmounted.
    pub fn release_if_unused(&self) -> Result<bool, NetError> {
        if fs::symlink_metadata(&self.dir).is_err() {
            return Ok(false);
        }
        // Another container's state: it will look again when it goes (a
        // container's directory is removed before it looks), so the last
        // one to go always sees none; only then is the lock needed.
        if !self.container_ids()?.is_empty() {
            return Ok(false);
        }
        let _lock = self.lock()?;
        if !self.container_ids()?.is_empty() || !is_mount_point(&self.dir)? {
            return Ok(false);
        }
        self.unmount()?;
        Ok(true)
    }

    /// Removes the shared self-bind of the root (for tests and uninstall;
    /// the namespaces of running containers stay bound underneath only if
    /// they were bound before; callers detach every container first).
    pub fn unmount(&self) -> Result<(), NetError> {
        while is_mount_point(&self.dir)? {
            umount2(&self.dir, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW)
                .map_err(|e| NetError::io("unmount", &self.dir, e.into()))?;
        }
        Ok(())
    }

    /// Removes the built-in network's host-wide iptables rules for `bridge`
    /// (installed by the first container that joined it; for tests and
    /// uninstall, once no container uses the bridge).
    pub fn remove_host_rules(&self, bridge: &str) -> Result<(), NetError> {
        crate::host_rules::remove(self, bridge)
    }

    /// The state of container `id` (nothing is created).
    pub fn container(&self, id: &str) -> Result<ContainerNet, NetError> {
        if id.is_empty() || id == "." || id == ".." || id.contains(['/', '\0']) || id.len() > 240 {
            return Err(NetError::InvalidName {
                what: "container id",
                value: id.to_owned(),
                reason: "not usable as a directory name",
            });
        }
        Ok(ContainerNet::new(
            self.clone(),
            self.containers_dir().join(id),
            id,
        ))
    }

    /// Every container that has network state (for recovery: a container
    /// listed here but unknown to the runtime store is an orphan to detach).
    pub fn container_ids(&self) -> Result<Vec<String>, NetError> {
        let dir = self.containers_dir();
        let entries = match fs::read_dir(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            other => other.map_err(|e| NetError::io("list", &dir, e))?,
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| NetError::io("list", &dir, e))?;
            if entry.file_type().is_ok_and(|t| t.is_dir())
                && let Some(name) = entry.file_name().to_str()
            {
                ids.push(name.to_owned());
            }
        }
        ids.sort();
        Ok(ids)
    }
}

/// Creates `dir` (mode 0700) unless it exists as a real directory; a
/// symlink or file there is refused.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), NetError> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let meta = fs::symlink_metadata(dir).map_err(|e| NetError::io("stat", dir, e))?;
            if meta.is_dir() {
                Ok(())
            } else {
                Err(NetError::Unsafe {
                    path: dir.to_owned(),
                    reason: "exists and is not a directory (symlinks are not followed)",
                })
            }
        }
        Err(e) => Err(NetError::io("create directory", dir, e)),
    }
}

/// Writes `bytes` to `dir/name` atomically (a temporary file renamed over
/// it; neither is followed if it is a symlink).
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, NetError> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(name);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(|e| NetError::io("create", &tmp, e))?;
    file.write_all(bytes)
        .map_err(|e| NetError::io("write", &tmp, e))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(|e| NetError::io("rename", &path, e))?;
    Ok(path)
}

/// Whether `dir` is the mount point of some mount (mountinfo's field 5).
fn is_mount_point(dir: &Path) -> Result<bool, NetError> {
    if let Some(root) = statx_mount_root(dir)? {
        return Ok(root);
    }
    let canonical = match fs::canonicalize(dir) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(NetError::io("resolve", dir, e)),
    };
    let info = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| NetError::io("read", "/proc/self/mountinfo", e))?;
    let want = canonical.to_string_lossy();
    Ok(info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|p| unescape(p) == want))
}

/// Whether `dir` is the root of a mount, from statx(2)'s
/// `STATX_ATTR_MOUNT_ROOT` (Linux 5.8); `None` when the kernel does not
/// say, and `Some(false)` when `dir` does not exist.
fn statx_mount_root(dir: &Path) -> Result<Option<bool>, NetError> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|e| NetError::io("stat", dir, e.into()))?;
    // SAFETY: statx is plain old data; all zeroes is a valid value.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated and `st` is ours, both valid for the
    // whole call.
    let rc = unsafe { libc::statx(libc::AT_FDCWD, c.as_ptr(), 0, libc::STATX_TYPE, &mut st) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return match e.kind() {
            std::io::ErrorKind::NotFound => Ok(Some(false)),
            _ if e.raw_os_error() == Some(libc::ENOSYS) => Ok(None),
            _ => Err(NetError::io("stat", dir, e)),
        };
    }
    let flag = libc::STATX_ATTR_MOUNT_ROOT as u64;
    Ok((st.stx_attributes_mask & flag != 0).then_some(st.stx_attributes & flag != 0))
}

/// Whether directory `dir` exists and has any entry.
fn has_entries(dir: &Path) -> Result<bool, NetError> {
    match fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_some()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(NetError::io("list", dir, e)),
    }
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
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
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mountinfo_paths() {
        assert_eq!(unescape(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape(r"/x\134y"), r"/x\y");
        assert_eq!(unescape(r"/short\04"), r"/short\04");
    }

    #[test]
    fn container_ids_must_be_directory_names() {
        let root = NetRoot::new(Path::new("/nonexistent"));
        for bad in ["", ".", "..", "a/b"] {
            assert!(root.container(bad).is_err(), "{bad}");
        }
        assert!(root.container("web-1").is_ok());
        assert_eq!(root.container_ids().unwrap(), Vec::<String>::new());
    }

    #[test]
    fn write_atomic_refuses_a_symlinked_temporary() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/passwd-does-not-matter", dir.path().join(".x.tmp"))
            .unwrap();
        assert!(write_atomic(dir.path(), "x", b"1").is_err());
        std::fs::remove_file(dir.path().join(".x.tmp")).unwrap();
        let p = write_atomic(dir.path(), "x", b"1").unwrap();
        assert_eq!(std::fs::read(p).unwrap(), b"1");
    }
}
