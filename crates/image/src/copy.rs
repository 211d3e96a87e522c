//! The `copy` backend: the layers merged into one private directory,
//! lowest first, interpreting the overlay-format whiteouts the store keeps
//! (a character device 0/0 removes the name, `trusted.overlay.opaque=y`
//! empties the directory before the layer's own entries go in).
//!
//! Every operation is relative to directory descriptors opened with
//! `O_NOFOLLOW`; an entry of a lower layer is removed before a file,
//! directory or link of the same name is created, so nothing is ever
//! written through a symlink a lower layer planted (MESOS-5028).

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use phobos_core::safe_fs::SafeDir;

use crate::error::{Error, Result};
use crate::fsops;
use crate::unpack::relative;

/// Copies the layer at `layer` onto the tree at `rootfs`.
pub fn apply_layer(layer: &Path, rootfs: &Path) -> Result<()> {
    let src = fsops::open_dir(layer).map_err(|e| Error::io("open", layer, e))?;
    let dst = SafeDir::open_trusted(rootfs).map_err(|e| Error::io("open", rootfs, e.into()))?;
    let dst_fd = dst.as_file().as_fd();
    let mut copier = Copier {
        dst_root: &dst,
        layer,
        links: HashMap::new(),
        path: Vec::new(),
    };
    copier.dir(src.as_fd(), dst_fd).map_err(|e| {
        Error::io(
            "copy layer",
            layer.join(fsops::show(&copier.path.join(&b'/'))),
            e,
        )
    })
}

struct Copier<'a> {
    dst_root: &'a SafeDir,
    #[allow(dead_code)]
    layer: &'a Path,
    /// (device, inode) of multiply-linked files → their path in the rootfs.
    links: HashMap<(u64, u64), Vec<Vec<u8>>>,
    path: Vec<Vec<u8>>,
}

fn copy_xattrs(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> io::Result<()> {
    for (name, value) in fsops::fxattrs(src)? {
        if name.starts_with(b"trusted.overlay.") {
            continue;
        }
        fsops::fsetxattr(dst, &name, &value)?;
    }
    Ok(())
}

impl Copier<'_> {
    fn dir(&mut self, src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> io::Result<()> {
        for (name, _) in fsops::read_dir(src)? {
            self.path.push(name.clone());
            self.entry(src, dst, &name)?;
            self.path.pop();
        }
        Ok(())
    }

    fn entry(&mut self, src: BorrowedFd<'_>, dst: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
        let Some(st) = fsops::stat_at(src, name)? else {
            return Ok(());
        };
        let kind = st.st_mode & libc::S_IFMT;
        let mode = st.st_mode & 0o7777;
        match kind {
            libc::S_IFCHR if st.st_rdev == 0 => fsops::remove_at(dst, name),
            libc::S_IFDIR => {
                let sub_src = fsops::open_dir_at(src, name)?;
                let opaque = fsops::fgetxattr(sub_src.as_fd(), b"trusted.overlay.opaque")?
                    .is_some_and(|v| v == b"y");
                match fsops::stat_at(dst, name)? {
                    Some(d) if fsops::is_dir(d.st_mode) => {}
                    Some(_) => {
                        fsops::unlink_at(dst, name)?;
                        fsops::mkdir_at(dst, name, 0o700)?;
                    }
                    None => fsops::mkdir_at(dst, name, 0o700)?,
                }
                let sub_dst = fsops::open_dir_at(dst, name)?;
                if opaque {
                    fsops::clear_dir(sub_dst.as_fd())?;
                }
                fsops::fchown(sub_dst.as_fd(), st.st_uid, st.st_gid)?;
                fsops::fchmod(sub_dst.as_fd(), mode)?;
                copy_xattrs(sub_src.as_fd(), sub_dst.as_fd())?;
                self.dir(sub_src.as_fd(), sub_dst.as_fd())?;
                fsops::set_mtime_fd(sub_dst.as_fd(), st.st_mtime)
            }
            libc::S_IFREG => {
                fsops::remove_at(dst, name)?;
                let key = (st.st_dev, st.st_ino);
                if st.st_nlink > 1
                    && let Some(first) = self.links.get(&key)
                {
                    let parent = self
                        .dst_root
                        .open_dir(relative(&first[..first.len() - 1]))?;
                    return fsops::link_at(
                        parent.as_file().as_fd(),
                        &first[first.len() - 1],
                        dst,
                        name,
                    );
                }
                let input = fsops::open_at(src, name, libc::O_RDONLY | libc::O_NOFOLLOW, 0)?;
                let output = fsops::open_at(
                    dst,
                    name,
                    libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                    0o600,
                )?;
                let mut input = File::from(input);
                let mut output = File::from(output);
                io::copy(&mut input, &mut output)?;
                fsops::fchown(output.as_fd(), st.st_uid, st.st_gid)?;
                fsops::fchmod(output.as_fd(), mode)?;
                copy_xattrs(input.as_fd(), output.as_fd())?;
                fsops::set_mtime_fd(output.as_fd(), st.st_mtime)?;
                if st.st_nlink > 1 {
                    self.links.insert(key, self.path.clone());
                }
                Ok(())
            }
            libc::S_IFLNK => {
                fsops::remove_at(dst, name)?;
                let target = fsops::readlink_at(src, name)?;
                fsops::symlink_at(&target, dst, name)?;
                fsops::lchown_at(dst, name, st.st_uid, st.st_gid)?;
                fsops::set_mtime_at(dst, name, st.st_mtime)
            }
            _ => {
                fsops::remove_at(dst, name)?;
                fsops::mknod_at(dst, name, kind | 0o600, st.st_rdev)?;
                fsops::lchown_at(dst, name, st.st_uid, st.st_gid)?;
                fsops::chmod_at(dst, name, mode)?;
                fsops::set_mtime_at(dst, name, st.st_mtime)
            }
        }
    }
}
