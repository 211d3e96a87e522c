//! Which runtime directory owns a cgroups root: an owner mark
//! (`phobos_cgroups::OWNER_MARK`, an extended attribute on the root's
//! directory in each hierarchy) names it.
//!
//! Recovery destroys the container cgroups under its root that its own
//! runtime directory has no record of. Two instances with different
//! runtime directories sharing one root would destroy each other's
//! containers (and two containers of the same ID would share a cgroup), so
//! a root belongs to one runtime directory: the first launch that creates
//! it marks it, and a launch, `recover` or `state --rm` of another runtime
//! directory is refused in one line before it changes anything. A root
//! made before owner marks existed carries none and is adopted silently by
//! the first instance that launches into it or recovers it.

use std::path::{Path, PathBuf};

use phobos_cgroups::{Cgroup, Hierarchies, Version};

/// A cgroups root that another runtime directory owns.
#[derive(Debug, thiserror::Error)]
#[error(
    "the cgroups root {} belongs to the runtime directory {owner}, not to {}: use one runtime directory per cgroups root (another cgroups_root, or that runtime_dir)",
    root.display(),
    ours.display()
)]
pub struct ForeignRoot {
    /// The root's directory in one hierarchy.
    pub root: PathBuf,
    /// The runtime directory its owner mark names.
    pub owner: String,
    /// This instance's runtime directory.
    pub ours: PathBuf,
}

/// Every directory the cgroups root `rel` has or may have: in the cgroup2
/// mount and in each v1 hierarchy holding a controller Phobos knows
/// (named hierarchies such as `name=systemd` are not Phobos's).
pub fn root_dirs(hierarchies: &Hierarchies, rel: &Path) -> Vec<Cgroup> {
    let mut dirs: Vec<Cgroup> = hierarchies
        .unified_mount()
        .map(|mount| Cgroup::new(mount, rel, Version::V2))
        .into_iter()
        .collect();
    for h in hierarchies.v1_hierarchies() {
        if !h.controllers.is_empty() {
            dirs.push(Cgroup::new(&h.mount, rel, Version::V1));
        }
    }
    dirs
}

/// Whose `root` is: `Ok(true)` when it is marked as `ours`, `Ok(false)`
/// when it carries no mark (or does not exist yet), and the refusal when
/// another runtime directory's mark is on it. Reads one attribute and
/// changes nothing (the launch path's check).
pub fn check(root: &Cgroup, ours: &Path) -> Result<bool, ForeignRoot> {
    match root.owner_mark() {
        Ok(None) => Ok(false),
        Ok(Some(owner)) if same_dir(&owner, ours) => Ok(true),
        Ok(Some(owner)) => Err(ForeignRoot {
            root: root.path().to_owned(),
            owner,
            ours: ours.to_owned(),
        }),
        Err(e) => {
            tracing::warn!(root = %root.path().display(), error = %e, "cannot read the cgroups root's owner mark");
            Ok(false)
        }
    }
}

/// Marks every existing directory of `dirs` as owned by `ours`, after
/// checking all of them: when one belongs to another runtime directory,
/// nothing is marked and that one is named. Unmarked ones (made before
/// owner marks existed, or by this instance's launch) are adopted. Best
/// effort where a hierarchy keeps no attributes.
pub fn claim(dirs: &[Cgroup], ours: &Path) -> Result<(), ForeignRoot> {
    let mut unmarked = Vec::new();
    for dir in dirs {
        if !check(dir, ours)? && dir.exists() {
            unmarked.push(dir);
        }
    }
    if unmarked.is_empty() {
        return Ok(());
    }
    let value = std::fs::canonicalize(ours).unwrap_or_else(|_| ours.to_owned());
    let value = value.to_string_lossy();
    for dir in unmarked {
        match dir.create_owner_mark(&value) {
            Ok(()) => {
                tracing::debug!(root = %dir.path().display(), owner = %value, "cgroups root marked")
            }
            // Marked by someone else since it was read.
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                check(dir, ours)?;
            }
            Err(e) => {
                let level_debug = matches!(e.raw_os_error(), Some(libc::ENOTSUP | libc::ENOENT));
                if level_debug {
                    tracing::debug!(root = %dir.path().display(), error = %e, "cannot mark the cgroups root");
                } else {
                    tracing::warn!(root = %dir.path().display(), error = %e, "cannot mark the cgroups root's owner");
                }
            }
        }
    }
    Ok(())
}

/// Whether every existing directory of `dirs` is marked as owned by
/// `ours`, and at least one exists: a root this runtime directory may
/// sweep without adopting it.
pub fn is_ours(dirs: &[Cgroup], ours: &Path) -> bool {
    let mut any = false;
    for dir in dirs.iter().filter(|d| d.exists()) {
        match check(dir, ours) {
            Ok(true) => any = true,
            _ => return false,
        }
    }
    any
}

/// Whether an owner mark names the runtime directory `ours` (spelled
/// alike, or the same directory once both are resolved).
fn same_dir(mark: &str, ours: &Path) -> bool {
    if Path::new(mark) == ours {
        return true;
    }
    match (std::fs::canonicalize(mark), std::fs::canonicalize(ours)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_names_the_same_directory_however_spelled() {
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("run");
        std::fs::create_dir(&ours).unwrap();
        let dotted = dir.path().join("run/../run");
        assert!(same_dir(&dotted.to_string_lossy(), &ours));
        assert!(same_dir(&ours.to_string_lossy(), &ours));
        assert!(!same_dir(&dir.path().to_string_lossy(), &ours));
        assert!(!same_dir("/nonexistent/run", &ours));
    }

    #[test]
    fn claiming_marks_existing_roots_and_refuses_a_foreign_one_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let a = Cgroup::new(dir.path(), Path::new("a"), Version::V2);
        let b = Cgroup::new(dir.path(), Path::new("b"), Version::V2);
        let missing = Cgroup::new(dir.path(), Path::new("missing"), Version::V2);
        std::fs::create_dir(a.path()).unwrap();
        std::fs::create_dir(b.path()).unwrap();
        let ours = dir.path().join("run-a");
        std::fs::create_dir(&ours).unwrap();
        if let Err(e) = a.create_owner_mark("/elsewhere") {
            println!("skipping: this filesystem keeps no trusted attributes ({e})");
            return;
        }
        let err = claim(&[b.clone(), a.clone(), missing.clone()], &ours).unwrap_err();
        assert_eq!(err.root, a.path());
        assert_eq!(err.owner, "/elsewhere");
        assert_eq!(b.owner_mark().unwrap(), None, "nothing marked on refusal");
        assert!(!is_ours(std::slice::from_ref(&a), &ours));
        claim(&[b.clone(), missing.clone()], &ours).unwrap();
        assert_eq!(
            b.owner_mark().unwrap().map(PathBuf::from),
            Some(std::fs::canonicalize(&ours).unwrap())
        );
        assert!(!missing.exists(), "claiming makes no directory");
        assert!(is_ours(&[b.clone(), missing.clone()], &ours));
        assert!(!is_ours(std::slice::from_ref(&missing), &ours));
        assert!(check(&b, &ours).unwrap());
    }
}
