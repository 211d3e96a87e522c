//! The `containers` directory held open while a command reads many
//! records: one `getdents64(2)` listing per level, and each record opened
//! by its name below the directory's descriptor (see [`super::at`]).

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::ContainerId;

use super::{CONTAINERS_DIR, ContainerDir, RuntimeStore, StoreError, TMP_PREFIX, at, io_err};

/// `<runtime_dir>/containers`, open (or known not to exist yet).
pub struct Containers {
    store: RuntimeStore,
    path: PathBuf,
    fd: Option<OwnedFd>,
}

/// What one listing found.
#[derive(Debug, Default)]
pub struct Listing {
    /// Every container ID, nested ones included, sorted (a parent before
    /// its children).
    pub ids: Vec<ContainerId>,
    /// The records holding a `containers` directory (nested containers).
    nesting: HashSet<ContainerId>,
    /// Hidden creation directories (`.tmp-…`) at every level.
    creations: Vec<PathBuf>,
}

impl Listing {
    /// Whether `id`'s record had a directory for nested containers when
    /// listed. It is made before a nested container's record (and its
    /// cgroups) and goes only with the whole record, so a record without
    /// one never had nested containers.
    pub fn has_nested(&self, id: &ContainerId) -> bool {
        self.nesting.contains(id)
    }

    pub fn creations(&self) -> &[PathBuf] {
        &self.creations
    }
}

impl RuntimeStore {
    /// Opens `containers` for a command that reads many records; none
    /// yet is not an error.
    pub fn containers(&self) -> Result<Containers, StoreError> {
        let path = self.containers_dir();
        let root = at::c_name(path.as_os_str()).map_err(io_err("open", &path))?;
        let fd = match at::open_dir(libc::AT_FDCWD, &root) {
            Ok(fd) => Some(fd),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err("open", &path)(e)),
        };
        Ok(Containers {
            store: self.clone(),
            path,
            fd,
        })
    }
}

impl Containers {
    /// The directory of a known container, opened below `containers`, or
    /// `None` (a symlink in its place is no container). Where it cannot be
    /// opened for another reason (no descriptor left) it is looked up by
    /// path as [`RuntimeStore::open`] does.
    pub fn open(&self, id: &ContainerId) -> Option<ContainerDir> {
        let Some(fd) = &self.fd else {
            return self.store.open(id);
        };
        let rel = id.nested_path(CONTAINERS_DIR);
        let c = at::c_name(rel.as_os_str()).ok()?;
        match at::open_dir(fd.as_raw_fd(), &c) {
            Ok(dir) => Some(ContainerDir {
                id: id.clone(),
                path: self.path.join(rel),
                fd: Some(Arc::new(dir)),
            }),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)
                ) =>
            {
                None
            }
            Err(_) => self.store.open(id),
        }
    }

    /// The top-level IDs in `containers` now: one listing, nothing opened.
    pub fn top_level(&self) -> Result<HashSet<ContainerId>, StoreError> {
        let Some(fd) = &self.fd else {
            return Ok(HashSet::new());
        };
        let entries = at::list(fd).map_err(io_err("list", &self.path))?;
        Ok(entries
            .iter()
            .filter_map(|e| std::str::from_utf8(&e.name).ok())
            .filter_map(|name| ContainerId::new(name).ok())
            .collect())
    }

    /// Every record, nested ones included, and the hidden creation
    /// directories: one listing per `containers` directory, and one
    /// `fstatat` per record below it (its link count says whether it can
    /// hold nested containers; only then is that looked up).
    pub fn list(&self) -> Result<Listing, StoreError> {
        let mut listing = Listing::default();
        if let Some(fd) = &self.fd {
            self.list_level(fd, &self.path, None, &mut listing)?;
        }
        listing.ids.sort();
        Ok(listing)
    }

    fn list_level(
        &self,
        dir: &OwnedFd,
        path: &Path,
        parent: Option<&ContainerId>,
        out: &mut Listing,
    ) -> Result<(), StoreError> {
        for entry in at::list(dir).map_err(io_err("list", path))? {
            let Ok(name) = std::str::from_utf8(&entry.name) else {
                continue;
            };
            if name.starts_with(TMP_PREFIX) {
                out.creations.push(path.join(name));
                continue;
            }
            let id = match (ContainerId::new(name), parent) {
                (Ok(leaf), None) => leaf,
                (Ok(leaf), Some(parent)) => match parent.child(&leaf) {
                    Ok(id) => id,
                    Err(_) => continue,
                },
                (Err(_), _) => continue,
            };
            // Only a real directory of a real record, never a symlink.
            if matches!(entry.kind, libc::DT_DIR | libc::DT_UNKNOWN)
                && let Some(nested) = self.nested_dir(dir, name, path)?
            {
                out.nesting.insert(id.clone());
                self.list_level(
                    &nested,
                    &path.join(name).join(CONTAINERS_DIR),
                    Some(&id),
                    out,
                )?;
            }
            out.ids.push(id);
        }
        Ok(())
    }

    /// Record `name`'s directory of nested containers, opened, if it has
    /// one.
    fn nested_dir(
        &self,
        dir: &OwnedFd,
        name: &str,
        path: &Path,
    ) -> Result<Option<OwnedFd>, StoreError> {
        let c = at::c_name(OsStr::new(name)).map_err(io_err("list", path))?;
        match at::stat(dir.as_raw_fd(), &c, false) {
            Ok(st) if at::is_dir(&st) && at::may_have_subdirs(&st) => {}
            _ => return Ok(None),
        }
        let rel = Path::new(name).join(CONTAINERS_DIR);
        let c = at::c_name(rel.as_os_str()).map_err(io_err("list", path))?;
        match at::open_dir(dir.as_raw_fd(), &c) {
            Ok(fd) => Ok(Some(fd)),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(io_err("list", &path.join(rel))(e)),
        }
    }
}
