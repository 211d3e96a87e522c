//! Confined, bounded extraction of an archive into the sandbox: `.tar`,
//! `.tgz`/`.tar.gz` (flate2), `.tbz2`/`.tar.bz2` (bzip2), `.txz`/`.tar.xz`
//! (lzma-rust2), `.zip` (zip), and single `.gz`/`.bz2`/`.xz` files
//! decompressed beside themselves. Every member is created relative to its
//! parent's directory descriptor, reached component by component without
//! following a symlink (`phobos_core::safe_fs`:
//! `openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS)` or `openat(O_NOFOLLOW)`
//! per component). An absolute name, a `..` component, a parent that is a
//! symlink (one the archive planted included), a symlink whose target
//! leaves the sandbox and a hard link to anything but an earlier member
//! refuse the archive. Symlinks are made with `symlinkat(2)`, hard links
//! with `linkat(2)` (no follow). Device nodes, FIFOs and sockets are
//! skipped. Modes keep the permission bits (no setuid/setgid); everything
//! is owned by the task's user. [`Limits`] bound the bytes written and the
//! members made (a decompression bomb fails instead of filling the disk).

use std::ffi::CString;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use phobos_core::SafeDir;

/// Bounds on one archive's extraction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes written, all members together (default 16 GiB).
    pub max_bytes: u64,
    /// Members made (default one million).
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 16 << 30,
            max_entries: 1_000_000,
        }
    }
}

/// The archive types recognised by name (Mesos's list, plus single
/// `.bz2`/`.xz` files as `.gz` is).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Tar,
    TarGz,
    TarBz2,
    TarXz,
    Zip,
    Gz,
    Bz2,
    Xz,
}

impl Kind {
    /// The kind of archive `name` is, by its extension.
    pub fn of(name: &str) -> Option<Kind> {
        let lower = name.to_ascii_lowercase();
        let ends = |list: &[&str]| list.iter().any(|s| lower.ends_with(s));
        Some(if ends(&[".tar"]) {
            Kind::Tar
        } else if ends(&[".tgz", ".tar.gz"]) {
            Kind::TarGz
        } else if ends(&[".tbz2", ".tbz", ".tar.bz2"]) {
            Kind::TarBz2
        } else if ends(&[".txz", ".tar.xz"]) {
            Kind::TarXz
        } else if ends(&[".zip"]) {
            Kind::Zip
        } else if ends(&[".gz"]) {
            Kind::Gz
        } else if ends(&[".bz2"]) {
            Kind::Bz2
        } else if ends(&[".xz"]) {
            Kind::Xz
        } else {
            return None;
        })
    }
}

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
    #[error("archive expands to more than {0} bytes (the extraction limit)")]
    TooLarge(u64),
    #[error("archive has more than {0} members (the extraction limit)")]
    TooMany(u64),
    #[error("extraction cancelled")]
    Cancelled,
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

/// Extracts the tar stream `reader` into `root`, owned by `owner`, with
/// the default [`Limits`].
pub fn extract_tar(
    reader: impl Read,
    root: &SafeDir,
    owner: Option<(u32, u32)>,
) -> Result<Extracted, ExtractError> {
    let never = AtomicBool::new(false);
    let mut ex = Extractor::new(root, root, owner, Limits::default(), &never);
    ex.tar(reader)?;
    Ok(ex.done)
}

/// One extraction: where to, as whom, within which limits.
pub(crate) struct Extractor<'a> {
    root: &'a SafeDir,
    /// The archive's own directory (where a single compressed file goes).
    here: &'a SafeDir,
    owner: Option<(u32, u32)>,
    limits: Limits,
    stop: &'a AtomicBool,
    done: Extracted,
}

impl<'a> Extractor<'a> {
    pub(crate) fn new(
        root: &'a SafeDir,
        here: &'a SafeDir,
        owner: Option<(u32, u32)>,
        limits: Limits,
        stop: &'a AtomicBool,
    ) -> Self {
        Extractor {
            root,
            here,
            owner,
            limits,
            stop,
            done: Extracted::default(),
        }
    }

    /// Extracts `archive` (named `name`, in `here`) as `kind`.
    pub(crate) fn extract(
        mut self,
        kind: Kind,
        archive: File,
        name: &Path,
    ) -> Result<Extracted, ExtractError> {
        let buffered = BufReader::with_capacity(256 * 1024, archive);
        match kind {
            Kind::Tar => self.tar(buffered)?,
            Kind::TarGz => self.tar(flate2::read::MultiGzDecoder::new(buffered))?,
            Kind::TarBz2 => self.tar(bzip2::read::MultiBzDecoder::new(buffered))?,
            Kind::TarXz => self.tar(lzma_rust2::XzReader::new(buffered, true))?,
            Kind::Zip => self.zip(buffered.into_inner())?,
            Kind::Gz | Kind::Bz2 | Kind::Xz => {
                let text = name.as_os_str().as_bytes();
                let cut = match kind {
                    Kind::Bz2 => 4,
                    _ => 3,
                };
                let stem = Path::new(std::ffi::OsStr::from_bytes(&text[..text.len() - cut]));
                let mut reader: Box<dyn Read> = match kind {
                    Kind::Gz => Box::new(flate2::read::MultiGzDecoder::new(buffered)),
                    Kind::Bz2 => Box::new(bzip2::read::MultiBzDecoder::new(buffered)),
                    _ => Box::new(lzma_rust2::XzReader::new(buffered, true)),
                };
                let here = self.here;
                if let Err(e) = self.file(here, stem, 0o644, &mut reader) {
                    let _ = here.remove_all(stem);
                    return Err(e);
                }
            }
        }
        Ok(self.done)
    }

    fn next_entry(&mut self) -> Result<(), ExtractError> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(ExtractError::Cancelled);
        }
        self.done.entries += 1;
        if self.done.entries > self.limits.max_entries {
            return Err(ExtractError::TooMany(self.limits.max_entries));
        }
        Ok(())
    }

    /// The directory a member goes in (made, owned by the user).
    fn parent_of(&self, rel: &Path) -> Result<SafeDir, ExtractError> {
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        if parent_rel.as_os_str().is_empty() {
            return Ok(self.root.try_clone()?);
        }
        let dir = self.root.create_dir_all(parent_rel, 0o755)?;
        if let Some((uid, gid)) = self.owner {
            dir.chown(uid, gid)?;
        }
        Ok(dir)
    }

    fn dir(&mut self, rel: &Path, mode: u32) -> Result<(), ExtractError> {
        let dir = self.root.create_dir_all(rel, mode | 0o700)?;
        if let Some((uid, gid)) = self.owner {
            dir.chown(uid, gid)?;
        }
        Ok(())
    }

    /// Writes the regular file `name` in `parent` from `data`, counting
    /// its bytes against the limit; whatever was there is replaced.
    fn file(
        &mut self,
        parent: &SafeDir,
        name: &Path,
        mode: u32,
        data: &mut dyn Read,
    ) -> Result<(), ExtractError> {
        let full = parent.path().join(name);
        remove_entry(parent, name);
        let mut file = parent.create_file(name, mode)?;
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid)).map_err(|e| io_err(&full, e))?;
        }
        let mut buf = vec![0u8; 128 * 1024];
        loop {
            let n = match data.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ExtractError::Corrupt(e)),
            };
            self.done.bytes += n as u64;
            if self.done.bytes > self.limits.max_bytes {
                return Err(ExtractError::TooLarge(self.limits.max_bytes));
            }
            if self.stop.load(Ordering::Relaxed) {
                return Err(ExtractError::Cancelled);
            }
            file.write_all(&buf[..n]).map_err(|e| io_err(&full, e))?;
        }
    }

    fn symlink(
        &mut self,
        parent: &SafeDir,
        rel: &Path,
        target: &Path,
        shown: &str,
    ) -> Result<(), ExtractError> {
        if !link_stays_inside(rel, target) {
            return Err(ExtractError::LinkOutside {
                member: shown.to_owned(),
                target: target.display().to_string(),
            });
        }
        let name = Path::new(rel.file_name().unwrap_or_default());
        let full = self.root.path().join(rel);
        remove_entry(parent, name);
        let (t, n) = (cstr(target)?, cstr(name)?);
        // SAFETY: both strings are NUL-terminated and live across the
        // call; the directory descriptor is open.
        if unsafe { libc::symlinkat(t.as_ptr(), parent.as_file().as_raw_fd(), n.as_ptr()) } != 0 {
            return Err(io_err(&full, io::Error::last_os_error()));
        }
        if let Some((uid, gid)) = self.owner {
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
        Ok(())
    }

    fn hard_link(
        &mut self,
        parent: &SafeDir,
        rel: &Path,
        target: &Path,
        shown: &str,
    ) -> Result<(), ExtractError> {
        let target_rel = confined(target).ok_or_else(|| ExtractError::LinkOutside {
            member: shown.to_owned(),
            target: target.display().to_string(),
        })?;
        let tparent_rel = target_rel.parent().unwrap_or(Path::new(""));
        let tparent = if tparent_rel.as_os_str().is_empty() {
            self.root.try_clone()?
        } else {
            self.root.open_dir(tparent_rel)?
        };
        let tname = cstr(Path::new(target_rel.file_name().unwrap_or_default()))?;
        let name = Path::new(rel.file_name().unwrap_or_default());
        remove_entry(parent, name);
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
            return Err(io_err(
                &self.root.path().join(rel),
                io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    fn tar(&mut self, reader: impl Read) -> Result<(), ExtractError> {
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries().map_err(ExtractError::Corrupt)? {
            let mut entry = entry.map_err(ExtractError::Corrupt)?;
            let raw = entry.path().map_err(ExtractError::Corrupt)?.into_owned();
            let shown = raw.display().to_string();
            let rel = confined(&raw).ok_or_else(|| ExtractError::Escapes(shown.clone()))?;
            let kind = entry.header().entry_type();
            if matches!(
                kind,
                tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
            ) {
                continue;
            }
            if rel.as_os_str().is_empty() {
                if kind.is_dir() {
                    continue; // "./" itself
                }
                return Err(ExtractError::Escapes(shown));
            }
            self.next_entry()?;
            let mode = entry.header().mode().map_err(ExtractError::Corrupt)? & 0o777;
            let parent = self.parent_of(&rel)?;
            let name = Path::new(rel.file_name().unwrap_or_default());
            if kind.is_dir() {
                self.dir(&rel, mode)?;
            } else if kind.is_file() || kind == tar::EntryType::Continuous {
                self.file(&parent, name, mode, &mut entry)?;
            } else if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name()
                    .map_err(ExtractError::Corrupt)?
                    .ok_or_else(|| ExtractError::Escapes(shown.clone()))?
                    .into_owned();
                if kind.is_symlink() {
                    self.symlink(&parent, &rel, &target, &shown)?;
                } else {
                    self.hard_link(&parent, &rel, &target, &shown)?;
                }
            } else {
                self.done.skipped.push(shown);
            }
        }
        Ok(())
    }

    fn zip(&mut self, archive: File) -> Result<(), ExtractError> {
        let corrupt = |e: zip::result::ZipError| ExtractError::Corrupt(io::Error::other(e));
        let mut archive = zip::ZipArchive::new(archive).map_err(corrupt)?;
        if archive.len() as u64 > self.limits.max_entries {
            return Err(ExtractError::TooMany(self.limits.max_entries));
        }
        for i in 0..archive.len() {
            let mut entry = archive.by_index(i).map_err(corrupt)?;
            let raw = PathBuf::from(std::ffi::OsStr::from_bytes(entry.name_raw()));
            let shown = raw.display().to_string();
            let rel = confined(&raw).ok_or_else(|| ExtractError::Escapes(shown.clone()))?;
            let unix = entry.unix_mode();
            let file_type = unix.map(|m| m & libc::S_IFMT);
            let is_dir = entry.is_dir() || file_type == Some(libc::S_IFDIR);
            if rel.as_os_str().is_empty() {
                if is_dir {
                    continue;
                }
                return Err(ExtractError::Escapes(shown));
            }
            self.next_entry()?;
            let parent = self.parent_of(&rel)?;
            let name = Path::new(rel.file_name().unwrap_or_default());
            if is_dir {
                self.dir(&rel, unix.map_or(0o755, |m| m & 0o777))?;
            } else if file_type == Some(libc::S_IFLNK) {
                // The member's data is the link's target (bounded).
                let mut target = Vec::new();
                (&mut entry)
                    .take(4096)
                    .read_to_end(&mut target)
                    .map_err(ExtractError::Corrupt)?;
                let target = PathBuf::from(std::ffi::OsStr::from_bytes(&target));
                self.symlink(&parent, &rel, &target, &shown)?;
            } else if file_type.is_none_or(|t| t == libc::S_IFREG) {
                self.file(&parent, name, unix.map_or(0o644, |m| m & 0o777), &mut entry)?;
            } else {
                self.done.skipped.push(shown);
            }
        }
        Ok(())
    }
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
