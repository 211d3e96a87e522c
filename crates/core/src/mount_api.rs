//! Which kernel mount interface Phobos drives for root filesystems: the
//! new mount API (open_tree(2), move_mount(2), fsopen(2)/fsconfig(2)/
//! fsmount(2) and mount_setattr(2), complete in Linux 5.12) or, on older
//! kernels, classic mount(2) (bind mounts and bind remounts, overlayfs
//! options in one page). Chosen at run time by probing mount_setattr(2),
//! the newest call the new path needs; `PHOBOS_MOUNT_API=legacy` (an
//! internal setting for tests) forces the classic path on any kernel.
//! Both paths still need openat2(2) (Linux 5.6) to resolve every target
//! beneath the root.

use serde::{Deserialize, Serialize};

/// The internal setting that forces a mount interface (`legacy`, `new`).
pub const FORCE_ENV: &str = "PHOBOS_MOUNT_API";

/// A mount interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MountApi {
    /// open_tree, move_mount, fsopen/fsconfig/fsmount, mount_setattr.
    #[default]
    New,
    /// mount(2) alone (Linux < 5.12).
    Legacy,
}

/// The interface for a kernel that has (or lacks) mount_setattr(2), and
/// the one-line note to show when the classic path is used because of the
/// kernel. `forced` is the value of [`FORCE_ENV`], if set.
pub fn choose(forced: Option<&str>, has_mount_setattr: bool) -> (MountApi, Option<String>) {
    match forced.map(str::trim) {
        Some("legacy") => return (MountApi::Legacy, None),
        Some("new") if has_mount_setattr => return (MountApi::New, None),
        _ => {}
    }
    if has_mount_setattr {
        (MountApi::New, None)
    } else {
        (
            MountApi::Legacy,
            Some(
                "this kernel has no mount_setattr(2) (Linux < 5.12): root filesystems are mounted with mount(2) \
                 (bind remounts; overlay layers within one page of options, else the copy backend)"
                    .to_owned(),
            ),
        )
    }
}

/// Whether the kernel has mount_setattr(2): a call with a zero-sized
/// attribute fails with `EINVAL` where it exists, `ENOSYS` where not.
pub fn has_mount_setattr() -> bool {
    // SAFETY: mount_setattr(2) with an invalid descriptor, an empty path
    // and a null attribute of size 0: the kernel rejects the arguments
    // without touching memory.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            -1,
            c"".as_ptr(),
            0,
            std::ptr::null::<u8>(),
            0usize,
        )
    };
    !(ret < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS))
}

/// The interface for this process (the kernel probed, [`FORCE_ENV`]
/// honoured) and the note to show, if any.
pub fn current() -> (MountApi, Option<String>) {
    let forced = std::env::var(FORCE_ENV).ok();
    choose(forced.as_deref(), has_mount_setattr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_decides_unless_the_legacy_path_is_forced() {
        assert_eq!(choose(None, true), (MountApi::New, None));
        let (api, note) = choose(None, false);
        assert_eq!(api, MountApi::Legacy);
        let note = note.expect("a note for the fallback");
        assert!(
            note.contains("Linux < 5.12") && !note.contains('\n'),
            "{note}"
        );
        // The internal setting forces the classic path, quietly.
        assert_eq!(choose(Some("legacy"), true), (MountApi::Legacy, None));
        assert_eq!(choose(Some("legacy"), false), (MountApi::Legacy, None));
        // Asking for the new API on a kernel without it still falls back.
        assert_eq!(choose(Some("new"), false).0, MountApi::Legacy);
        assert_eq!(choose(Some("new"), true), (MountApi::New, None));
        // Anything else is ignored.
        assert_eq!(choose(Some("bogus"), true).0, MountApi::New);
    }

    #[test]
    fn this_kernel_is_probed() {
        // The project's hosts run Linux ≥ 5.12; the probe must say so
        // there, and must not fail on any kernel.
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut parts = release.trim().split(['.', '-']);
        let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        assert_eq!(has_mount_setattr(), (major, minor) >= (5, 12), "{release}");
    }
}
