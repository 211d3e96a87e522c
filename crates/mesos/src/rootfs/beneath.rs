//! Paths inside a root filesystem, resolved by the kernel as if the root
//! filesystem were `/`: openat2(2) with `RESOLVE_IN_ROOT |
//! RESOLVE_NO_MAGICLINKS`. An image's symlinks keep working (`/var/run ->
//! /run`, `/etc/mtab -> ../proc/mounts`) but can never lead out of it, so a
//! mount target planted as `etc -> /etc` lands on the image's `/etc`, not
//! the host's. Missing directories and files are created one component at
//! a time with `mkdirat(2)` / `openat(2)` (`O_EXCL | O_NOFOLLOW`) relative
//! to a descriptor of the already resolved parent.

use std::collections::VecDeque;
use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use super::sys::{self, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS};

/// A directory treated as `/` for every lookup through it.
#[derive(Debug)]
pub struct InRoot {
    fd: OwnedFd,
}

impl InRoot {
    pub fn new(fd: OwnedFd) -> Self {
        Self { fd }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// An `O_PATH` descriptor of `path` (absolute or relative, both taken
    /// from the root).
    pub fn open(&self, path: &Path) -> io::Result<OwnedFd> {
        let rel = relative(path);
        let c = sys::cstr(if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            &rel
        })?;
        sys::openat2(
            self.fd.as_fd(),
            &c,
            libc::O_PATH,
            0,
            RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        )
    }

    /// A regular file at `path` opened for reading (a FIFO or device
    /// planted there is refused, never opened in blocking mode).
    pub fn read(&self, path: &Path) -> io::Result<std::fs::File> {
        let c = sys::cstr(&relative(path))?;
        let fd = sys::openat2(
            self.fd.as_fd(),
            &c,
            libc::O_RDONLY | libc::O_NONBLOCK,
            0,
            RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        )?;
        if mode_of(&fd)? & libc::S_IFMT != libc::S_IFREG {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a regular file", path.display()),
            ));
        }
        Ok(std::fs::File::from(fd))
    }

    /// The directory at `path`, created (0755, with its parents) when
    /// missing. A dangling symlink on the way is followed inside the root
    /// and its target created there (see [`InRoot::resolve`]).
    pub fn mkdir_all(&self, path: &Path) -> io::Result<OwnedFd> {
        match self.mkdir_all_direct(path) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let resolved = self.resolve(path)?;
                if resolved == Path::new("/").join(relative(path)) {
                    return Err(e);
                }
                self.mkdir_all_direct(&resolved)
            }
            other => other,
        }
    }

    fn mkdir_all_direct(&self, path: &Path) -> io::Result<OwnedFd> {
        let rel = relative(path);
        let mut current = self.open(Path::new("."))?;
        let mut prefix = PathBuf::new();
        for component in rel.components() {
            let Component::Normal(name) = component else {
                continue;
            };
            prefix.push(name);
            current = match self.open(&prefix) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    mkdirat(current.as_fd(), name)?;
                    self.open(&prefix)?
                }
                Err(e) => return Err(e),
            };
        }
        require_kind(&current, libc::S_IFDIR, path)?;
        Ok(current)
    }

    /// The file at `path`, created empty (0644, parents 0755) when missing.
    /// A dangling symlink there (an image's `/etc/resolv.conf ->
    /// /run/systemd/resolve/stub-resolv.conf`) has its target created
    /// inside the root, as Docker does; no link is ever followed out of
    /// the root.
    pub fn file(&self, path: &Path) -> io::Result<OwnedFd> {
        match self.file_direct(path) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                let resolved = self.resolve(path)?;
                if resolved == Path::new("/").join(relative(path)) {
                    return Err(e);
                }
                self.file_direct(&resolved)
            }
            other => other,
        }
    }

    fn file_direct(&self, path: &Path) -> io::Result<OwnedFd> {
        let (parent, name) = split(path)?;
        let dir = self.mkdir_all(parent)?;
        match self.open(path) {
            Ok(fd) => Ok(fd),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let c = name_cstr(name)?;
                // O_NOFOLLOW|O_EXCL: a dangling symlink there fails (EEXIST)
                // instead of creating its target; `file` resolves it.
                drop(sys::openat2(
                    dir.as_fd(),
                    &c,
                    libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                    0o644,
                    sys::RESOLVE_BENEATH | sys::RESOLVE_NO_SYMLINKS,
                )?);
                self.open(path)
            }
            Err(e) => Err(e),
        }
    }

    /// `path` with every symlink among its existing components replaced
    /// by its target, as the kernel would resolve it if the root were `/`
    /// (an absolute target starts again at the root, `..` stops there):
    /// an absolute path inside the root whose existing components are no
    /// symlinks, its missing tail kept as written. What Docker's
    /// `securejoin` does for a mount target; at most 40 links (`ELOOP`).
    pub fn resolve(&self, path: &Path) -> io::Result<PathBuf> {
        let mut pending: VecDeque<PathBuf> = relative(path)
            .components()
            .map(|c| PathBuf::from(c.as_os_str()))
            .collect();
        let mut resolved = PathBuf::from("/");
        let mut links = 0;
        let mut missing = false;
        while let Some(name) = pending.pop_front() {
            if name == Path::new("..") {
                resolved.pop();
                continue;
            }
            if missing {
                resolved.push(&name);
                continue;
            }
            let parent = self.open(&resolved)?;
            let c = name_cstr(name.as_os_str())?;
            match lstat_at(parent.as_fd(), &c)? {
                None => {
                    missing = true;
                    resolved.push(&name);
                }
                Some(mode) if mode & libc::S_IFMT == libc::S_IFLNK => {
                    links += 1;
                    if links > 40 {
                        return Err(io::Error::from_raw_os_error(libc::ELOOP));
                    }
                    let target = readlink_at(parent.as_fd(), &c)?;
                    if target.is_absolute() {
                        resolved = PathBuf::from("/");
                    }
                    for component in relative(&target).components().rev() {
                        pending.push_front(PathBuf::from(component.as_os_str()));
                    }
                }
                Some(_) => resolved.push(&name),
            }
        }
        Ok(resolved)
    }

    /// A directory or a file at `path` as `like_dir` says, created when
    /// missing; an existing entry of the other kind is an error.
    pub fn target(&self, path: &Path, like_dir: bool) -> io::Result<OwnedFd> {
        let fd = if like_dir {
            self.mkdir_all(path)?
        } else {
            self.file(path)?
        };
        if !like_dir && is_dir(&fd)? {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is a directory, the source a file", path.display()),
            ));
        }
        Ok(fd)
    }
}

/// `path` without its root and `.` components: what openat2 takes.
fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| matches!(c, Component::Normal(_) | Component::ParentDir))
        .collect()
}

fn split(path: &Path) -> io::Result<(&Path, &OsStr)> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => Ok((parent, name)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )),
    }
}

fn name_cstr(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name contains a NUL byte"))
}

fn mkdirat(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let c = name_cstr(name)?;
    // SAFETY: a valid dirfd and a NUL-terminated single component.
    if unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o755) } != 0 {
        let e = io::Error::last_os_error();
        // Made meanwhile by someone else: the caller resolves it again.
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(e);
        }
    }
    Ok(())
}

/// `fstatat(AT_SYMLINK_NOFOLLOW)`'s mode; `None` when nothing has that
/// name.
fn lstat_at(dir: BorrowedFd<'_>, name: &CString) -> io::Result<Option<libc::mode_t>> {
    // SAFETY: an all-zero stat is a valid value for this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid dirfd, a NUL-terminated single component and a stat
    // buffer we own.
    let ret = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if ret == 0 {
        return Ok(Some(st.st_mode));
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => Ok(None),
        _ => Err(e),
    }
}

/// `readlinkat(2)` of a single component.
fn readlink_at(dir: BorrowedFd<'_>, name: &CString) -> io::Result<PathBuf> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: a valid dirfd, a NUL-terminated name and a buffer of the
    // length passed.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(PathBuf::from(std::ffi::OsString::from_vec(buf)))
}

pub fn is_dir(fd: &OwnedFd) -> io::Result<bool> {
    Ok(mode_of(fd)? & libc::S_IFMT == libc::S_IFDIR)
}

fn mode_of(fd: &OwnedFd) -> io::Result<libc::mode_t> {
    // SAFETY: fstat on a valid fd (O_PATH fds support fstat) into a
    // zeroed struct we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.st_mode)
}

fn require_kind(fd: &OwnedFd, kind: libc::mode_t, path: &Path) -> io::Result<()> {
    if mode_of(fd)? & libc::S_IFMT != kind {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} exists and is not a directory", path.display()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(dir: &Path) -> InRoot {
        let fd = nix::fcntl::open(
            dir,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        InRoot::new(fd)
    }

    #[test]
    fn symlinks_resolve_inside_the_root_and_never_out_of_it() {
        let host = tempfile::tempdir().unwrap();
        let rootfs = tempfile::tempdir().unwrap();
        // The image says etc -> /etc-host-target (absolute) and
        // up -> ../../.. (escaping); both must stay inside.
        std::os::unix::fs::symlink(host.path(), rootfs.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("../../../..", rootfs.path().join("up")).unwrap();
        let r = root(rootfs.path());
        r.file(Path::new("/etc/hosts")).unwrap_or_else(|e| {
            // The absolute link points at a path that does not exist
            // inside the root: creating through it must fail, not write
            // to the host.
            assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{e}");
            r.open(Path::new("/")).unwrap()
        });
        assert!(
            !host.path().join("hosts").exists(),
            "wrote through etc -> host"
        );
        r.mkdir_all(Path::new("/up/escaped")).unwrap();
        assert!(
            rootfs.path().join("escaped").is_dir(),
            "'..' did not stop at the root"
        );
        assert!(!Path::new("/escaped").exists());
    }

    #[test]
    fn reads_files_of_the_image_never_of_the_host() {
        let host = tempfile::tempdir().unwrap();
        let rootfs = tempfile::tempdir().unwrap();
        std::fs::write(host.path().join("secret"), "host only").unwrap();
        std::fs::create_dir(rootfs.path().join("etc")).unwrap();
        std::os::unix::fs::symlink(host.path().join("secret"), rootfs.path().join("etc/passwd"))
            .unwrap();
        std::os::unix::fs::symlink("../../../../../../..", rootfs.path().join("etc/up")).unwrap();
        let r = root(rootfs.path());
        let e = r.read(Path::new("/etc/passwd")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{e}");
        let escape = host.path().strip_prefix("/").unwrap().join("secret");
        assert!(r.read(&Path::new("/etc/up").join(escape)).is_err());
        std::fs::write(rootfs.path().join("etc/group"), "root:x:0:\n").unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut r.read(Path::new("etc/group")).unwrap(), &mut text)
            .unwrap();
        assert_eq!(text, "root:x:0:\n");
        // Not a regular file: refused.
        assert!(r.read(Path::new("/etc")).is_err());
    }

    #[test]
    fn creates_directories_and_files_and_checks_kinds() {
        let rootfs = tempfile::tempdir().unwrap();
        std::fs::create_dir(rootfs.path().join("run")).unwrap();
        std::os::unix::fs::symlink("/run", rootfs.path().join("varrun")).unwrap();
        let r = root(rootfs.path());
        r.mkdir_all(Path::new("/varrun/a/b")).unwrap();
        assert!(rootfs.path().join("run/a/b").is_dir());
        r.file(Path::new("etc/hostname")).unwrap();
        assert!(rootfs.path().join("etc/hostname").is_file());
        assert!(r.target(Path::new("/run"), false).is_err());
        assert!(r.mkdir_all(Path::new("/etc/hostname")).is_err());
    }

    #[test]
    fn a_dangling_symlink_target_is_created_inside_the_root() {
        let host = tempfile::tempdir().unwrap();
        let rootfs = tempfile::tempdir().unwrap();
        let etc = rootfs.path().join("etc");
        std::fs::create_dir(&etc).unwrap();
        std::fs::create_dir(rootfs.path().join("run")).unwrap();
        // systemd's layout: an absolute link into a directory the image
        // does not have.
        std::os::unix::fs::symlink(
            "/run/systemd/resolve/stub-resolv.conf",
            etc.join("resolv.conf"),
        )
        .unwrap();
        // A relative link that climbs above the root: `..` stops there.
        std::os::unix::fs::symlink("../../../../../run/hosts", etc.join("hosts")).unwrap();
        // An absolute link naming a host path, through a chain of links.
        let host_file = host.path().join("hostname");
        std::os::unix::fs::symlink(&host_file, rootfs.path().join("hop")).unwrap();
        std::os::unix::fs::symlink("../hop", etc.join("hostname")).unwrap();
        // A dangling directory link as a parent.
        std::os::unix::fs::symlink("/data/real", rootfs.path().join("data-link")).unwrap();
        let r = root(rootfs.path());
        let host_inside = host_file.strip_prefix("/").unwrap().display().to_string();
        for (target, made) in [
            ("/etc/resolv.conf", "run/systemd/resolve/stub-resolv.conf"),
            ("/etc/hosts", "run/hosts"),
            ("/etc/hostname", host_inside.as_str()),
            ("/data-link/file", "data/real/file"),
        ] {
            let fd = r.target(Path::new(target), false).unwrap();
            assert!(!is_dir(&fd).unwrap(), "{target}");
            assert!(rootfs.path().join(made).is_file(), "{target} -> {made}");
            // The image's own link stays as it was.
            if !target.starts_with("/data-link") {
                let link = rootfs.path().join(target.trim_start_matches('/'));
                let kind = std::fs::symlink_metadata(&link).unwrap().file_type();
                assert!(kind.is_symlink(), "{target}");
            }
        }
        assert!(!host_file.exists(), "created through a link on the host");
        // Directories too.
        std::os::unix::fs::symlink("/srv/made", rootfs.path().join("srv-link")).unwrap();
        r.mkdir_all(Path::new("/srv-link/sub")).unwrap();
        assert!(rootfs.path().join("srv/made/sub").is_dir());
        // A loop is refused, not followed forever.
        std::os::unix::fs::symlink("loop-b", rootfs.path().join("loop-a")).unwrap();
        std::os::unix::fs::symlink("loop-a", rootfs.path().join("loop-b")).unwrap();
        let e = r.file(Path::new("/loop-a")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{e}");
    }
}
