//! Safe unpacking of one layer (a tar stream, plain, gzip or zstd) into its
//! own directory, in the overlay format (OCI `layer.md`):
//!
//! - every member is created relative to its parent's directory
//!   descriptor, reached component by component with `O_NOFOLLOW`
//!   (`phobos_core::safe_fs`): a `..` component is refused, a leading `/`
//!   is dropped (the name is confined to the layer), and a parent that is a
//!   symlink or not a directory refuses the layer, so nothing is written,
//!   linked or followed outside it;
//! - hard links must name a member already in this layer, reached the same
//!   way, and are made with `linkat(2)` without following a symlink;
//! - `.wh.NAME` becomes a character device 0/0 named NAME and
//!   `.wh..wh..opq` the xattr `trusted.overlay.opaque=y` on its directory,
//!   so the layers stack as overlayfs lower directories;
//! - owners, modes (setuid/setgid/sticky too), modification times, and the
//!   `user.*` and `security.capability` xattrs of PAX headers are kept
//!   (`trusted.*` from an archive is dropped: it would steer overlayfs);
//!   device nodes and FIFOs are created with `mknodat(2)`, or skipped with
//!   a warning where that is not permitted.
//!
//! The diff ID (sha256 of the uncompressed tar) is computed on the way.

use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use phobos_core::safe_fs::{SafeDir, SafeFsError};

use tar::EntryType;

use crate::digest::{Digest, HashingReader};
use crate::error::{Error, Result};
use crate::fsops;

/// What unpacking a layer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSummary {
    /// sha256 of the uncompressed tar stream.
    pub diff_id: Digest,
    /// Bytes of regular-file content written.
    pub size: u64,
    /// Number of archive members.
    pub entries: u64,
}

const OPAQUE: &[u8] = b".wh..wh..opq";
const WHITEOUT: &[u8] = b".wh.";

/// Decompresses `reader` (gzip and zstd recognized by their magic numbers,
/// anything else read as a plain tar) and unpacks it into the existing,
/// empty directory `dest`. `layer` names the layer in errors.
pub fn unpack_layer(reader: impl Read, dest: &Path, layer: &str) -> Result<LayerSummary> {
    let mut buffered = BufReader::with_capacity(256 * 1024, reader);
    let head = buffered
        .fill_buf()
        .map_err(|e| Error::io("read layer", Path::new(layer), e))?;
    let stream: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(buffered))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let decoder = ruzstd::decoding::StreamingDecoder::new(buffered)
            .map_err(|e| Error::malformed(format!("layer {layer}"), e))?;
        Box::new(decoder)
    } else {
        Box::new(buffered)
    };
    let mut hashing = HashingReader::new(stream);
    let root = SafeDir::open_trusted(dest).map_err(|e| Error::io("open", dest, e.into()))?;
    let mut unpacker = Unpacker {
        root: &root,
        dest,
        layer,
        size: 0,
        entries: 0,
        dir_times: Vec::new(),
    };
    {
        let mut archive = tar::Archive::new(&mut hashing);
        let entries = archive
            .entries()
            .map_err(|e| Error::malformed(format!("layer {layer}"), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::malformed(format!("layer {layer}"), e))?;
            unpacker.entry(entry)?;
        }
    }
    unpacker.set_dir_times()?;
    let (diff_id, _) = hashing
        .finish()
        .map_err(|e| Error::malformed(format!("layer {layer}"), e))?;
    Ok(LayerSummary {
        diff_id,
        size: unpacker.size,
        entries: unpacker.entries,
    })
}

struct Unpacker<'a> {
    root: &'a SafeDir,
    dest: &'a Path,
    layer: &'a str,
    size: u64,
    entries: u64,
    dir_times: Vec<(Vec<Vec<u8>>, i64)>,
}

/// Owner, mode, time and xattrs of one member.
struct Meta {
    uid: u32,
    gid: u32,
    mode: libc::mode_t,
    mtime: i64,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Splits an archive name into components: empty and `.` ones dropped, a
/// leading `/` ignored (confined to the layer), `..` refused.
pub(crate) fn components(name: &[u8]) -> Result<Vec<Vec<u8>>, &'static str> {
    let mut out = Vec::new();
    for c in name.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("'..' in the name would leave the layer"),
            c => out.push(c.to_vec()),
        }
    }
    Ok(out)
}

/// Components (already checked by [`components`]) as a relative path.
pub(crate) fn relative(comps: &[Vec<u8>]) -> PathBuf {
    comps.iter().map(|c| OsStr::from_bytes(c)).collect()
}

impl Unpacker<'_> {
    fn hostile(&self, entry: &[u8], reason: impl Into<String>) -> Error {
        Error::Hostile {
            layer: self.layer.to_string(),
            entry: fsops::show(entry),
            reason: reason.into(),
        }
    }

    fn io(&self, action: &'static str, entry: &[u8], e: io::Error) -> Error {
        Error::io(
            action,
            self.dest.join(fsops::show(entry).trim_start_matches('/')),
            e,
        )
    }

    /// Opens the parent of `comps`' last component, creating directories.
    fn parent(&self, name: &[u8], comps: &[Vec<u8>], create: bool) -> Result<SafeDir> {
        let parents = relative(&comps[..comps.len() - 1]);
        let opened = if create {
            self.root.create_dir_all(&parents, 0o755)
        } else {
            self.root.open_dir(&parents)
        };
        let symlink = "a parent directory is a symlink or not a directory";
        opened.map_err(|e| match e {
            SafeFsError::Refused { .. } => self.hostile(name, symlink),
            e if e.is_not_found() => {
                self.hostile(name, "its parent directory is not in this layer")
            }
            SafeFsError::Io { ref source, .. }
                if matches!(
                    source.raw_os_error(),
                    Some(libc::ELOOP | libc::ENOTDIR | libc::EXDEV)
                ) =>
            {
                self.hostile(name, symlink)
            }
            e => self.io("open parent of", name, e.into()),
        })
    }

    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<()> {
        self.entries += 1;
        let name = entry.path_bytes().into_owned();
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let comps = components(&name).map_err(|r| self.hostile(&name, r))?;
        let meta = self.meta(&mut entry, &name)?;
        let Some(last) = comps.last().cloned() else {
            // The layer's root itself ("./"): keep the store's own mode.
            return Ok(());
        };
        if last == OPAQUE {
            let parent = self.parent(&name, &comps, true)?;
            fsops::fsetxattr(parent.as_file().as_fd(), b"trusted.overlay.opaque", b"y")
                .map_err(|e| self.io("mark opaque", &name, e))?;
            return Ok(());
        }
        if let Some(hidden) = last.strip_prefix(WHITEOUT) {
            if hidden.is_empty() {
                return Err(self.hostile(&name, "a whiteout without a name"));
            }
            if hidden.starts_with(WHITEOUT) {
                // AUFS-internal names (.wh..wh.plnk, .wh..wh.aufs): not content.
                tracing::debug!(entry = %fsops::show(&name), "skipping AUFS metadata");
                return Ok(());
            }
            if hidden == b".." || hidden == b"." {
                return Err(self.hostile(&name, "a whiteout of '.' or '..'"));
            }
            let parent = self.parent(&name, &comps, true)?;
            let p = parent.as_file().as_fd();
            fsops::remove_at(p, hidden).map_err(|e| self.io("remove", &name, e))?;
            fsops::mknod_at(p, hidden, libc::S_IFCHR, 0)
                .map_err(|e| self.io("create whiteout", &name, e))?;
            return Ok(());
        }
        let parent = self.parent(&name, &comps, true)?;
        let p = parent.as_file().as_fd();
        match kind {
            EntryType::Directory => {
                match fsops::stat_at(p, &last).map_err(|e| self.io("stat", &name, e))? {
                    Some(st) if fsops::is_dir(st.st_mode) => {}
                    Some(_) => {
                        fsops::unlink_at(p, &last).map_err(|e| self.io("replace", &name, e))?;
                        fsops::mkdir_at(p, &last, 0o700)
                            .map_err(|e| self.io("create directory", &name, e))?;
                    }
                    None => fsops::mkdir_at(p, &last, 0o700)
                        .map_err(|e| self.io("create directory", &name, e))?,
                }
                let dir = fsops::open_dir_at(p, &last).map_err(|e| self.io("open", &name, e))?;
                self.apply(dir.as_fd(), &meta, &name, false)?;
                self.dir_times.push((comps, meta.mtime));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                fsops::remove_at(p, &last).map_err(|e| self.io("replace", &name, e))?;
                let file = fsops::open_at(
                    p,
                    &last,
                    libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                    0o600,
                )
                .map_err(|e| self.io("create", &name, e))?;
                let mut out = std::fs::File::from(file);
                let n = io::copy(&mut entry, &mut out).map_err(|e| self.io("write", &name, e))?;
                self.size += n;
                self.apply(out.as_fd(), &meta, &name, true)?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.hostile(&name, "a symlink without a target"))?
                    .into_owned();
                fsops::remove_at(p, &last).map_err(|e| self.io("replace", &name, e))?;
                fsops::symlink_at(&target, p, &last)
                    .map_err(|e| self.io("create symlink", &name, e))?;
                fsops::lchown_at(p, &last, meta.uid, meta.gid)
                    .map_err(|e| self.io("chown", &name, e))?;
                fsops::set_mtime_at(p, &last, meta.mtime)
                    .map_err(|e| self.io("set time of", &name, e))?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.hostile(&name, "a hard link without a target"))?
                    .into_owned();
                let tcomps = components(&target)
                    .map_err(|r| self.hostile(&name, format!("hard link target: {r}")))?;
                if tcomps.is_empty() {
                    return Err(self.hostile(&name, "a hard link to the layer's root"));
                }
                if tcomps == comps {
                    return Ok(());
                }
                let tparent = self.parent(&target, &tcomps, false).map_err(|_| {
                    self.hostile(
                        &name,
                        format!(
                            "hard link to {:?}, which is not in this layer",
                            fsops::show(&target)
                        ),
                    )
                })?;
                let tlast = &tcomps[tcomps.len() - 1];
                let tp = tparent.as_file().as_fd();
                match fsops::stat_at(tp, tlast).map_err(|e| self.io("stat", &target, e))? {
                    Some(st) if !fsops::is_dir(st.st_mode) => {}
                    _ => {
                        return Err(self.hostile(
                            &name,
                            format!(
                                "hard link to {:?}, which is not a file in this layer",
                                fsops::show(&target)
                            ),
                        ));
                    }
                }
                fsops::remove_at(p, &last).map_err(|e| self.io("replace", &name, e))?;
                fsops::link_at(tp, tlast, p, &last).map_err(|e| self.io("link", &name, e))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (major, minor) = (
                    entry.header().device_major().ok().flatten().unwrap_or(0),
                    entry.header().device_minor().ok().flatten().unwrap_or(0),
                );
                let (ftype, dev) = match kind {
                    EntryType::Char => (libc::S_IFCHR, libc::makedev(major, minor)),
                    EntryType::Block => (libc::S_IFBLK, libc::makedev(major, minor)),
                    _ => (libc::S_IFIFO, 0),
                };
                fsops::remove_at(p, &last).map_err(|e| self.io("replace", &name, e))?;
                if let Err(e) = fsops::mknod_at(p, &last, ftype | 0o600, dev) {
                    if e.raw_os_error() == Some(libc::EPERM) {
                        tracing::warn!(layer = self.layer, entry = %fsops::show(&name), "skipping a device node: not permitted here");
                        return Ok(());
                    }
                    return Err(self.io("create device", &name, e));
                }
                fsops::lchown_at(p, &last, meta.uid, meta.gid)
                    .map_err(|e| self.io("chown", &name, e))?;
                fsops::chmod_at(p, &last, meta.mode).map_err(|e| self.io("chmod", &name, e))?;
                fsops::set_mtime_at(p, &last, meta.mtime)
                    .map_err(|e| self.io("set time of", &name, e))?;
            }
            other => {
                tracing::warn!(layer = self.layer, entry = %fsops::show(&name), kind = ?other, "skipping an archive member of an unknown type");
            }
        }
        Ok(())
    }

    fn meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>, name: &[u8]) -> Result<Meta> {
        let header = entry.header();
        let bad = |e: io::Error| self.hostile(name, format!("bad header: {e}"));
        let mut meta = Meta {
            uid: u32::try_from(header.uid().map_err(bad)?).unwrap_or(u32::MAX),
            gid: u32::try_from(header.gid().map_err(bad)?).unwrap_or(u32::MAX),
            mode: header.mode().map_err(bad)? & 0o7777,
            mtime: i64::try_from(header.mtime().unwrap_or(0)).unwrap_or(0),
            xattrs: Vec::new(),
        };
        if let Some(pax) = entry.pax_extensions().map_err(bad)? {
            for ext in pax {
                let ext = ext.map_err(bad)?;
                let key = ext.key_bytes();
                let value = ext.value_bytes();
                let number = || {
                    std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| v.split('.').next()?.parse::<i64>().ok())
                };
                match key {
                    b"uid" => {
                        meta.uid = number()
                            .and_then(|n| u32::try_from(n).ok())
                            .unwrap_or(meta.uid)
                    }
                    b"gid" => {
                        meta.gid = number()
                            .and_then(|n| u32::try_from(n).ok())
                            .unwrap_or(meta.gid)
                    }
                    b"mtime" => meta.mtime = number().unwrap_or(meta.mtime),
                    _ => {
                        if let Some(attr) = key.strip_prefix(b"SCHILY.xattr.") {
                            if attr.starts_with(b"user.") || attr == b"security.capability" {
                                meta.xattrs.push((attr.to_vec(), value.to_vec()));
                            } else {
                                tracing::debug!(entry = %fsops::show(name), xattr = %fsops::show(attr), "dropping an xattr");
                            }
                        }
                    }
                }
            }
        }
        Ok(meta)
    }

    /// Owner first (chown clears setuid), then mode, xattrs and time.
    fn apply(&self, fd: BorrowedFd<'_>, meta: &Meta, name: &[u8], time: bool) -> Result<()> {
        fsops::fchown(fd, meta.uid, meta.gid).map_err(|e| self.io("chown", name, e))?;
        fsops::fchmod(fd, meta.mode).map_err(|e| self.io("chmod", name, e))?;
        for (attr, value) in &meta.xattrs {
            if let Err(e) = fsops::fsetxattr(fd, attr, value) {
                tracing::warn!(layer = self.layer, entry = %fsops::show(name), xattr = %fsops::show(attr), error = %e, "cannot set an xattr");
            }
        }
        if time {
            fsops::set_mtime_fd(fd, meta.mtime).map_err(|e| self.io("set time of", name, e))?;
        }
        Ok(())
    }

    fn set_dir_times(&self) -> Result<()> {
        for (comps, mtime) in self.dir_times.iter().rev() {
            // A directory replaced later in the archive is skipped.
            if let Ok(dir) = self.root.open_dir(relative(comps)) {
                fsops::set_mtime_fd(dir.as_file().as_fd(), *mtime)
                    .map_err(|e| self.io("set time of", &comps.join(&b'/'), e))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_confine_names() {
        assert_eq!(
            components(b"/etc//./x").unwrap(),
            vec![b"etc".to_vec(), b"x".to_vec()]
        );
        assert!(components(b"a/../../x").is_err());
        assert!(components(b"./").unwrap().is_empty());
    }
}
