//! Container marks: an extended attribute (`trusted.phobos.container`,
//! setxattr(2) on the cgroup directory; kernfs keeps `trusted.*` attributes
//! of cgroup directories in both v1 and v2 hierarchies) naming the container
//! a cgroup was created for.
//!
//! Recovery destroys an orphan cgroup under its cgroups root only when it
//! carries the mark with its own name: a child that is not marked, such as
//! the root of another instance nested under ours (`--cgroups-root a` and
//! `--cgroups-root a/b`), or a cgroup someone else made, is never touched.
//! `trusted.*` attributes need CAP_SYS_ADMIN, so a process inside a
//! container (even one given a delegated cgroup) cannot forge a mark.
//!
//! Owner marks: `trusted.phobos.owner` on a cgroups root directory names
//! the runtime directory whose containers live under it, so an instance
//! with another runtime directory never sweeps them as orphans.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;

use crate::cgroup::Cgroup;

/// The attribute holding the container's name.
pub const CONTAINER_MARK: &str = "trusted.phobos.container";

/// The attribute naming the runtime directory that owns a cgroups root.
pub const OWNER_MARK: &str = "trusted.phobos.owner";

/// The longest mark read back; container IDs are far shorter.
const MARK_MAX: usize = 256;

/// The longest owner mark read back (a path).
const OWNER_MAX: usize = libc::PATH_MAX as usize;

impl Cgroup {
    /// Marks this cgroup as the cgroup of container `name`. Fails with the
    /// kernel's error (`ENOTSUP` where the hierarchy keeps no attributes,
    /// `EPERM` without CAP_SYS_ADMIN).
    pub fn mark_container(&self, name: &str) -> io::Result<()> {
        set_attr(self, CONTAINER_MARK, name, 0)
    }

    /// The container name this cgroup is marked with, if any.
    pub fn container_mark(&self) -> Option<String> {
        let mut buf = [0u8; MARK_MAX];
        let n = get_attr(self, CONTAINER_MARK, &mut buf).ok()?;
        String::from_utf8(buf.get(..n)?.to_vec()).ok()
    }

    /// Whether this cgroup is marked as the cgroup of container `name`.
    pub fn is_container(&self, name: &str) -> bool {
        self.container_mark().as_deref() == Some(name)
    }

    /// The runtime directory this cgroups root is marked as owned by:
    /// `Ok(None)` when it carries no owner mark, does not exist, or sits on
    /// a filesystem that keeps no attributes.
    pub fn owner_mark(&self) -> io::Result<Option<String>> {
        let mut buf = vec![0u8; OWNER_MAX];
        match get_attr(self, OWNER_MARK, &mut buf) {
            Ok(n) => {
                buf.truncate(n);
                Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
            }
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENODATA | libc::ENOENT | libc::ENOTSUP)
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Marks this cgroups root as owned by runtime directory `owner`, only
    /// if it carries no owner mark yet (`XATTR_CREATE`): `EEXIST` when
    /// another process marked it first.
    pub fn create_owner_mark(&self, owner: &str) -> io::Result<()> {
        set_attr(self, OWNER_MARK, owner, libc::XATTR_CREATE)
    }
}

/// setxattr(2) of `attr` = `value` on the cgroup's directory.
fn set_attr(cgroup: &Cgroup, attr: &str, value: &str, flags: libc::c_int) -> io::Result<()> {
    let path = c_path(cgroup)?;
    let attr = CString::new(attr).map_err(io::Error::other)?;
    // SAFETY: both strings are NUL-terminated and outlive the call; the
    // value pointer and length describe `value`'s bytes.
    let rc = unsafe {
        libc::setxattr(
            path.as_ptr(),
            attr.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// getxattr(2) of `attr` on the cgroup's directory into `buf`: the length
/// read.
fn get_attr(cgroup: &Cgroup, attr: &str, buf: &mut [u8]) -> io::Result<usize> {
    let path = c_path(cgroup)?;
    let attr = CString::new(attr).map_err(io::Error::other)?;
    // SAFETY: both strings are NUL-terminated; the kernel writes at most
    // `buf.len()` bytes into `buf`.
    let n = unsafe {
        libc::getxattr(
            path.as_ptr(),
            attr.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

fn c_path(cgroup: &Cgroup) -> io::Result<CString> {
    CString::new(cgroup.path().as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Version;

    #[test]
    fn marks_round_trip_where_the_filesystem_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let cg = Cgroup::new(dir.path(), std::path::Path::new("c1"), Version::V2);
        std::fs::create_dir(cg.path()).unwrap();
        assert_eq!(cg.container_mark(), None);
        assert!(!cg.is_container("c1"));
        match cg.mark_container("c1") {
            Ok(()) => {
                assert_eq!(cg.container_mark().as_deref(), Some("c1"));
                assert!(cg.is_container("c1"));
                assert!(!cg.is_container("c2"));
            }
            // Not root, or a temporary directory without xattrs.
            Err(e) => println!("skipping the round trip: {e}"),
        }
    }

    #[test]
    fn an_owner_mark_is_made_once_where_the_filesystem_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let cg = Cgroup::new(dir.path(), std::path::Path::new("root"), Version::V2);
        assert_eq!(
            cg.owner_mark().unwrap(),
            None,
            "a missing root has no owner"
        );
        std::fs::create_dir(cg.path()).unwrap();
        assert_eq!(cg.owner_mark().unwrap(), None);
        match cg.create_owner_mark("/run/a") {
            Ok(()) => {
                assert_eq!(cg.owner_mark().unwrap().as_deref(), Some("/run/a"));
                let again = cg.create_owner_mark("/run/b").unwrap_err();
                assert_eq!(again.raw_os_error(), Some(libc::EEXIST));
                assert_eq!(cg.owner_mark().unwrap().as_deref(), Some("/run/a"));
            }
            Err(e) => println!("skipping the owner mark: {e}"),
        }
    }
}
