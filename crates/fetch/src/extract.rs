//! Confined extraction of a tar stream into the sandbox: every member is
//! created relative to its parent's directory descriptor, reached
//! component by component without following a symlink
//! (`phobos_core::safe_fs`: `openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS)`
//! or `openat(O_NOFOLLOW)` per component). An absolute name, a `..`
//! component, a parent that is a symlink (one the archive planted
//! included), a symlink whose target leaves the sandbox and a hard link to
//! anything but an earlier member refuse the archive. Symlinks are made
//! with `symlinkat(2)`, hard links with `linkat(2)` (no follow). Device
//! nodes, FIFOs and sockets are skipped. Modes keep the permission bits
//! (no setuid/setgid); everything is owned by the task's user.

use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use phobos_core::SafeDir;

/// Why an archive was refused or could not be extracted.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("archive member {0:?} escapes the sandbox")]
    Escapes(String),
    #[error("archive member {member:?} links to {target:?}, outside the sandbox")]
    LinkOutside { member: String, target: String },
    #[error("{0}")]
    Fs(#[from] phobos_core::SafeFsError),
    #[error("corrupt archive: {0}")]
    Corrupt(io::Error),
    #[error("writing {path}: {source}", path = path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What was extracted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Extracted {
    pub entries: u64,
    pub bytes: u64,
    /// Members skipped (devices, FIFOs), by name.
    pub skipped: Vec<String>,
}

/// A member's name made relative and checked: no root, no `..`.
fn confined(name: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// True if `target`, read from the directory of `member`, stays beneath
/// the extraction root (lexically: symlinked parents are refused anyway).
fn link_stays_inside(member: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: usize = member.components().count().saturating_sub(1);
    for c in target.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

fn cstr(p: &Path) -> Result<CString, ExtractError> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| ExtractError::Escapes(p.display().to_string()))
}

fn io_err(path: &Path, source: io::Error) -> ExtractError {
    ExtractError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Extracts the tar stream `reader` into `root`, owned by `owner`.
pub fn extract_tar(
    reader: impl Read,
    root: &SafeDir,
    owner: Option<(u32, u32)>,
) -> Result<Extracted, ExtractError> {
    let mut archive = tar::Archive::new(reader);
    let mut done = Extracted::default();
    for entry in archive.entries().map_err(ExtractError::Corrupt)? {
        let mut entry = entry.map_err(ExtractError::Corrupt)?;
        let raw = entry.path().map_err(ExtractError::Corrupt)?.into_owned();
        let shown = raw.display().to_string();
        let rel = confined(&raw).ok_or_else(|| ExtractError::Escapes(shown.clone()))?;
        let kind = entry.header().entry_type();
        if rel.as_os_str().is_empty() {
            if kind.is_dir() {
                continue; // "./" itself
            }
            return Err(ExtractError::Escapes(shown));
        }
        let mode = entry.header().mode().map_err(ExtractError::Corrupt)? & 0o777;
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        let name = Path::new(rel.file_name().unwrap_or_default());
        let parent = if parent_rel.as_os_str().is_empty() {
            root.try_clone()?
        } else {
            let dir = root.create_dir_all(parent_rel, 0o755)?;
            if let Some((uid, gid)) = owner {
                dir.chown(uid, gid)?;
            }
            dir
        };
        let full = root.path().join(&rel);
        done.entries += 1;
        if kind.is_dir() {
            let dir = root.create_dir_all(&rel, mode | 0o700)?;
            if let Some((uid, gid)) = owner {
                dir.chown(uid, gid)?;
            }
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            // Replace whatever an earlier member left (never through it).
            remove_entry(&parent, name);
            let mut file = parent.create_file(name, mode)?;
            done.bytes += io::copy(&mut entry, &mut file).map_err(ExtractError::Corrupt)?;
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::fchown(&file, Some(uid), Some(gid))
                    .map_err(|e| io_err(&full, e))?;
            }
        } else if kind.is_symlink() {
            let target = entry
                .link_name()
                .map_err(ExtractError::Corrupt)?
                .ok_or_else(|| ExtractError::Escapes(shown.clone()))?
                .into_owned();
            if !link_stays_inside(&rel, &target) {
                return Err(ExtractError::LinkOutside {
                    member: shown,
                    target: target.display().to_string(),
                });
            }
            remove_entry(&parent, name);
            let (t, n) = (cstr(&target)?, cstr(name)?);
            // SAFETY: both strings are NUL-terminated and live across the
            // call; the directory descriptor is open.
            if unsafe { libc::symlinkat(t.as_ptr(), parent.as_file().as_raw_fd(), n.as_ptr()) } != 0
            {
                return Err(io_err(&full, io::Error::last_os_error()));
            }
            if let Some((uid, gid)) = owner {
                // SAFETY: as above; AT_SYMLINK_NOFOLLOW changes the link.
                let rc = unsafe {
                    libc::fchownat(
                        parent.as_file().as_raw_fd(),
                        n.as_ptr(),
                        uid,
                        gid,
                        libc::AT_SYMLINK_NOFOLLOW,
                    )
                };
                if rc != 0 {
                    return Err(io_err(&full, io::Error::last_os_error()));
                }
            }
        } else if kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(ExtractError::Corrupt)?
                .ok_or_else(|| ExtractError::Escapes(shown.clone()))?
                .into_owned();
            let target_rel = confined(&target).ok_or_else(|| ExtractError::LinkOutside {
                member: shown.clone(),
                target: target.display().to_string(),
            })?;
            let tparent_rel = target_rel.parent().unwrap_or(Path::new(""));
            let tparent = if tparent_rel.as_os_str().is_empty() {
                root.try_clone()?
            } else {
                root.open_dir(tparent_rel)?
            };
            let tname = cstr(Path::new(target_rel.file_name().unwrap_or_default()))?;
            remove_entry(&parent, name);
            let n = cstr(name)?;
            // SAFETY: NUL-terminated names, open directory descriptors;
            // flags 0: a symlink is linked itself, never followed.
            let rc = unsafe {
                libc::linkat(
                    tparent.as_file().as_raw_fd(),
                    tname.as_ptr(),
                    parent.as_file().as_raw_fd(),
                    n.as_ptr(),
                    0,
                )
            };
            if rc != 0 {
                return Err(io_err(&full, io::Error::last_os_error()));
            }
        } else if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            done.entries -= 1;
        } else {
            done.skipped.push(shown);
        }
    }
    Ok(done)
}

/// Removes a non-directory entry `name` of `dir` if there is one (a later
/// member replaces an earlier one, as tar does); never follows it.
fn remove_entry(dir: &SafeDir, name: &Path) {
    if let Ok(n) = cstr(name) {
        // SAFETY: NUL-terminated name, open directory descriptor; unlinkat
        // without AT_REMOVEDIR removes a link, never what it points to.
        unsafe { libc::unlinkat(dir.as_file().as_raw_fd(), n.as_ptr(), 0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confinement() {
        assert_eq!(confined(Path::new("./a/b")), Some(PathBuf::from("a/b")));
        assert_eq!(confined(Path::new("a/../b")), None);
        assert_eq!(confined(Path::new("/etc/x")), None);
        assert!(link_stays_inside(Path::new("a/l"), Path::new("../b")));
        assert!(!link_stays_inside(Path::new("a/l"), Path::new("../../b")));
        assert!(!link_stays_inside(Path::new("l"), Path::new("/etc/passwd")));
    }
}
