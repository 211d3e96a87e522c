//! Mesos's net_cls classid handles (`cgroups/net_cls` with
//! `--cgroups_net_cls_primary_handle`): each container's v1 net_cls cgroup
//! gets `net_cls.classid` = `primary << 16 | secondary`, the secondary
//! handle unique among this runtime's containers and taken from
//! `--cgroups_net_cls_secondary_handles`. Traffic control filters and
//! iptables' `-m cgroup --cgroup` then tell the containers' packets apart.
//!
//! The cgroups are the record: a handle is taken while a cgroup under
//! `<net_cls hierarchy>/<cgroups_root>` holds it, so destroying the
//! container (its cgroup removed) releases it, and a recovered container
//! keeps its own, as Mesos recovers handles from `net_cls.classid`. An
//! assignment scans those cgroups and writes the lowest free handle under
//! an exclusive flock(2) of the root cgroup's directory, so concurrent
//! launches never share one.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};
use phobos_cgroups::Cgroup;

const CLASSID: &str = "net_cls.classid";

/// Writes a free classid of `primary` into `cg`, a new cgroup below
/// `root` (the net_cls cgroup of `cgroups_root`); returns it.
pub(super) fn assign(
    root: &Path,
    cg: &Cgroup,
    primary: u16,
    (min, max): (u16, u16),
) -> Result<u32, String> {
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(root)
        .map_err(|e| format!("open {}: {e}", root.display()))?;
    let _lock = Flock::lock(dir, FlockArg::LockExclusive)
        .map_err(|(_, e)| format!("lock {}: {e}", root.display()))?;
    let mut taken = BTreeSet::new();
    collect(root, primary, &mut taken, 0);
    let secondary = (min..=max).find(|h| !taken.contains(h)).ok_or_else(|| {
        format!("no free net_cls secondary handle for primary {primary:#x} in {min:#x},{max:#x}")
    })?;
    let classid = (u32::from(primary) << 16) | u32::from(secondary);
    cg.write(CLASSID, &classid.to_string())
        .map_err(|e| e.to_string())?;
    Ok(classid)
}

/// The secondary handles of `primary` held by cgroups below `dir`
/// (nested containers' cgroups included; symlinks are not followed).
fn collect(dir: &Path, primary: u16, taken: &mut BTreeSet<u16>, depth: usize) {
    if depth > 16 {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        if let Some(classid) = read_classid(&path)
            && classid >> 16 == u32::from(primary)
        {
            taken.insert((classid & 0xffff) as u16);
        }
        collect(&path, primary, taken, depth + 1);
    }
}

/// `net_cls.classid` of the cgroup at `dir`, if it has one set.
pub(crate) fn read_classid(dir: &Path) -> Option<u32> {
    fs::read_to_string(dir.join(CLASSID))
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|&c| c != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixture tree: plain directories and files stand in for cgroupfs.
    #[test]
    fn the_lowest_free_handle_of_the_primary_is_taken() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let mk = |rel: &str, classid: Option<u32>| {
            let d = root.join(rel);
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join(CLASSID), classid.unwrap_or(0).to_string()).unwrap();
        };
        mk("a", Some(0x0012_0001));
        mk("a/mesos/b", Some(0x0012_0002)); // a nested container
        mk("c", Some(0x0013_0003)); // another primary: not ours
        mk("d", None);
        let new = Cgroup::new(root, Path::new("d"), phobos_cgroups::Version::V1);
        assert_eq!(assign(root, &new, 0x12, (1, 0xffff)), Ok(0x0012_0003));
        assert_eq!(read_classid(&root.join("d")), Some(0x0012_0003));
        mk("e", None);
        let full = Cgroup::new(root, Path::new("e"), phobos_cgroups::Version::V1);
        let e = assign(root, &full, 0x12, (1, 3)).unwrap_err();
        assert!(e.contains("no free net_cls secondary handle"), "{e}");
        assert_eq!(read_classid(&root.join("e")), None);
    }
}
