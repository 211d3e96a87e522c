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

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;

use crate::cgroup::Cgroup;

/// The attribute holding the container's name.
pub const CONTAINER_MARK: &str = "trusted.phobos.container";

/// The longest mark read back; container IDs are far shorter.
const MARK_MAX: usize = 256;

impl Cgroup {
    /// Marks this cgroup as the cgroup of container `name`. Fails with the
    /// kernel's error (`ENOTSUP` where the hierarchy keeps no attributes,
    /// `EPERM` without CAP_SYS_ADMIN).
    pub fn mark_container(&self, name: &str) -> io::Result<()> {
        let path = c_path(self)?;
        let attr = CString::new(CONTAINER_MARK).map_err(io::Error::other)?;
        // SAFETY: both strings are NUL-terminated and outlive the call; the
        // value pointer and length describe `name`'s bytes.
        let rc = unsafe {
            libc::setxattr(
                path.as_ptr(),
                attr.as_ptr(),
                name.as_ptr().cast(),
                name.len(),
                0,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// The container name this cgroup is marked with, if any.
    pub fn container_mark(&self) -> Option<String> {
        let path = c_path(self).ok()?;
        let attr = CString::new(CONTAINER_MARK).ok()?;
        let mut buf = [0u8; MARK_MAX];
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
        let n = usize::try_from(n).ok()?;
        String::from_utf8(buf.get(..n)?.to_vec()).ok()
    }

    /// Whether this cgroup is marked as the cgroup of container `name`.
    pub fn is_container(&self, name: &str) -> bool {
        self.container_mark().as_deref() == Some(name)
    }
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
}
