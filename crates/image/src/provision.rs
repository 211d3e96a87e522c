//! The provisioner: a container's root filesystem from a stored image,
//! under `<work_dir>/provisioner/<container id>/`:
//!
//! ```text
//! backend    "overlay" or "copy" (what destroy undoes)
//! rootfs/    the root filesystem (an overlay mount point, or the copy)
//! upper/     overlay upper directory: all the container writes
//! work/      overlay work directory
//! ```
//!
//! `overlay` mounts overlayfs with the new mount API: `fsopen("overlay")`,
//! one `fsconfig(FSCONFIG_SET_STRING, "lowerdir+", layer)` per layer (top
//! first, so no option string ever has to hold every path: legacy
//! `mount(2)` copies one page of options, ~55 store paths), `fsmount`,
//! `move_mount` onto `rootfs/`. Kernels before 6.8 without `lowerdir+`, and
//! kernels before 5.12 (or `PHOBOS_MOUNT_API=legacy`, see
//! `phobos_core::mount_api`), use `mount(2)`: the layers' paths when the
//! option string fits in a page, else their `/proc/self/fd/N` names (a
//! descriptor per layer, ~20 bytes each, so ~190 layers fit), else the
//! `copy` backend with a one-line note. Where the kernel has no overlayfs
//! the `copy` backend is used instead, with a warning. `destroy` unmounts with `umount2(MNT_DETACH)` and removes the
//! directory and the in-use record.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use phobos_core::ContainerId;
use phobos_core::mount_api::MountApi;

use crate::copy;
use crate::error::{Error, Result};
use crate::store::{self, InUse, Store, StoredImage};

/// How a root filesystem is made from the layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// overlayfs over the layers (the default).
    Overlay,
    /// A private copy of the merged layers.
    Copy,
}

impl Backend {
    /// The config value (`image_provisioner_backend`).
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Overlay => "overlay",
            Backend::Copy => "copy",
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "overlay" => Ok(Backend::Overlay),
            "copy" => Ok(Backend::Copy),
            other => Err(format!(
                "unknown image provisioner backend {other:?} (overlay, copy)"
            )),
        }
    }
}

/// Makes and removes containers' root filesystems.
#[derive(Debug, Clone)]
pub struct Provisioner {
    store: Store,
    dir: PathBuf,
    backend: Backend,
    api: MountApi,
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |e| Error::io(action, path, e)
}

impl Provisioner {
    /// A provisioner keeping its directories under `dir`
    /// (`<work_dir>/provisioner`).
    pub fn new(store: Store, dir: impl Into<PathBuf>, backend: Backend) -> Self {
        Provisioner {
            store,
            dir: dir.into(),
            backend,
            api: MountApi::New,
        }
    }

    /// Mounts with `api` (default: the new mount API).
    pub fn with_mount_api(mut self, api: MountApi) -> Self {
        self.api = api;
        self
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// `<dir>/<id>`.
    pub fn container_dir(&self, id: &ContainerId) -> PathBuf {
        self.dir.join(id.as_str())
    }

    /// Provisions the root filesystem of container `id` from `image` and
    /// returns its path. Records the use first; on failure everything made
    /// is undone.
    pub fn provision(&self, id: &ContainerId, image: &StoredImage) -> Result<PathBuf> {
        let hold = self.store.shared()?;
        if let Some(missing) = image.diff_ids.iter().find(|l| !self.store.has_layer(l)) {
            return Err(Error::NoSuchImage {
                reference: format!("{} (layer {missing})", image.reference),
                store: self.store.root().to_path_buf(),
            });
        }
        self.store.put_in_use(&InUse {
            container_id: id.to_string(),
            reference: image.reference.to_string(),
            digest: image.digest.clone(),
            layers: image.diff_ids.clone(),
        })?;
        drop(hold);
        let result = self.make(id, image);
        if result.is_err() {
            let _ = self.destroy(id);
        } else if let Err(e) = self.store.touch(&image.reference) {
            tracing::warn!(error = %e, "cannot record the image's last use");
        }
        result
    }

    fn make(&self, id: &ContainerId, image: &StoredImage) -> Result<PathBuf> {
        fs::create_dir_all(&self.dir).map_err(io_err("create", &self.dir))?;
        let dir = self.container_dir(id);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(io_err("create", &dir))?;
        let rootfs = dir.join("rootfs");
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&rootfs)
            .map_err(io_err("create", &rootfs))?;
        let mut backend = self.backend;
        if backend == Backend::Overlay && !overlay_available() {
            tracing::warn!("overlayfs is not available: using the copy backend");
            backend = Backend::Copy;
        }
        store::write_volatile(&dir.join("backend"), backend.as_str().as_bytes())?;
        match backend {
            Backend::Copy => {
                for layer in &image.layers {
                    copy::apply_layer(layer, &rootfs)?;
                }
            }
            Backend::Overlay => {
                let upper = dir.join("upper");
                let work = dir.join("work");
                for d in [&upper, &work] {
                    fs::DirBuilder::new()
                        .mode(0o755)
                        .create(d)
                        .map_err(io_err("create", d))?;
                }
                if !mount_overlay(self.api, &image.layers, &upper, &work, &rootfs)? {
                    tracing::warn!(
                        layers = image.layers.len(),
                        "the image's layers do not fit in one page of overlay options on this kernel: using the copy backend"
                    );
                    store::write_volatile(&dir.join("backend"), Backend::Copy.as_str().as_bytes())?;
                    for layer in &image.layers {
                        copy::apply_layer(layer, &rootfs)?;
                    }
                }
            }
        }
        Ok(rootfs)
    }

    /// Unmounts and removes container `id`'s root filesystem and its
    /// in-use record. Idempotent.
    pub fn destroy(&self, id: &ContainerId) -> Result<()> {
        let dir = self.container_dir(id);
        let rootfs = dir.join("rootfs");
        if fs::symlink_metadata(&rootfs).is_ok_and(|m| m.is_dir()) {
            unmount(&rootfs)?;
        }
        store::remove_tree(&dir)?;
        self.store.remove_in_use(id.as_str())
    }
}

fn cpath(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::malformed("path", format!("NUL in {}", path.display())))
}

/// Detaches whatever is mounted on `path` (nothing mounted is fine).
fn unmount(path: &Path) -> Result<()> {
    let c = cpath(path)?;
    loop {
        // SAFETY: `c` is a valid NUL-terminated path.
        if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW) } == 0 {
            continue; // Stacked mounts: detach each.
        }
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EINVAL) | Some(libc::ENOENT) => Ok(()),
            _ => Err(Error::Mount {
                action: "unmount".into(),
                path: path.to_path_buf(),
                source: e,
            }),
        };
    }
}

fn overlay_available() -> bool {
    fs::read_to_string("/proc/filesystems")
        .is_ok_and(|s| s.lines().any(|l| l.trim_end().ends_with("\toverlay")))
        || fsopen("overlay").is_ok()
}

const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

fn fsopen(fstype: &str) -> io::Result<OwnedFd> {
    let c = CString::new(fstype).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: fsopen(2) with a valid NUL-terminated name; the result is a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_fsopen, c.as_ptr(), FSOPEN_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor returned by fsopen(2), owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn fsconfig(
    fs: &OwnedFd,
    cmd: libc::c_uint,
    key: Option<&str>,
    value: Option<&[u8]>,
) -> io::Result<()> {
    let key = key
        .map(|k| CString::new(k).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL)))
        .transpose()?;
    let value = value
        .map(|v| CString::new(v).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL)))
        .transpose()?;
    // SAFETY: fsconfig(2) on a valid fs context with NUL-terminated strings or null pointers.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            cmd,
            key.as_ref().map_or(std::ptr::null(), |k| k.as_ptr()),
            value.as_ref().map_or(std::ptr::null(), |v| v.as_ptr()),
            0,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Mounts overlayfs over `layers` (lowest first) on `target`; `false` when
/// only `mount(2)` can be used and the layers do not fit in its options.
fn mount_overlay(
    api: MountApi,
    layers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<bool> {
    if api == MountApi::Legacy {
        return mount_overlay_legacy(layers, upper, work, target);
    }
    let merr = |action: &str, e: io::Error| Error::Mount {
        action: action.to_string(),
        path: target.to_path_buf(),
        source: e,
    };
    let fs = fsopen("overlay").map_err(|e| merr("fsopen overlay for", e))?;
    // lowerdir+ lists the top layer first.
    let mut appended = true;
    for layer in layers.iter().rev() {
        if let Err(e) = fsconfig(
            &fs,
            FSCONFIG_SET_STRING,
            Some("lowerdir+"),
            Some(layer.as_os_str().as_bytes()),
        ) {
            if e.raw_os_error() == Some(libc::EINVAL) && layer == layers.last().unwrap_or(layer) {
                appended = false; // A kernel before 6.8: no lowerdir+.
                break;
            }
            return Err(merr("add an overlay lower layer for", e));
        }
    }
    if !appended {
        return mount_overlay_legacy(layers, upper, work, target);
    }
    fsconfig(
        &fs,
        FSCONFIG_SET_STRING,
        Some("upperdir"),
        Some(upper.as_os_str().as_bytes()),
    )
    .map_err(|e| merr("set upperdir of", e))?;
    fsconfig(
        &fs,
        FSCONFIG_SET_STRING,
        Some("workdir"),
        Some(work.as_os_str().as_bytes()),
    )
    .map_err(|e| merr("set workdir of", e))?;
    fsconfig(&fs, FSCONFIG_CMD_CREATE, None, None).map_err(|e| merr("create overlay for", e))?;
    // SAFETY: fsmount(2) on a created fs context; the result is a new descriptor.
    let mfd = unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, 0) };
    if mfd < 0 {
        return Err(merr("fsmount overlay for", io::Error::last_os_error()));
    }
    // SAFETY: a new descriptor returned by fsmount(2), owned by nobody else.
    let mfd = unsafe { OwnedFd::from_raw_fd(mfd as i32) };
    let empty = CString::default();
    let t = cpath(target)?;
    // SAFETY: move_mount(2) of the detached mount to a NUL-terminated path.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mfd.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if ret < 0 {
        return Err(merr(
            "move the overlay mount to",
            io::Error::last_os_error(),
        ));
    }
    Ok(true)
}

/// The most `mount(2)` copies of its options: one page.
const OPTIONS_MAX: usize = 4096;

/// `lowerdir=<top>:…:<lowest>,upperdir=…,workdir=…`.
fn overlay_options(lower_top_first: &[String], upper: &Path, work: &Path) -> String {
    format!(
        "lowerdir={},upperdir={},workdir={}",
        lower_top_first.join(":"),
        upper.display(),
        work.display()
    )
}

/// How the classic path names the layers.
#[derive(Debug, PartialEq, Eq)]
enum LegacyNames {
    /// Their paths: the options fit in a page.
    Paths(String),
    /// `/proc/self/fd/N` of a descriptor per layer.
    Descriptors,
    /// Not even so: the copy backend.
    TooMany,
}

/// The choice for `layers`, given the widest descriptor number the
/// descriptor form may need (`fd_digits`).
fn legacy_names(layers: &[PathBuf], upper: &Path, work: &Path, fd_digits: usize) -> LegacyNames {
    let paths: Vec<String> = layers
        .iter()
        .rev()
        .map(|l| l.display().to_string())
        .collect();
    let options = overlay_options(&paths, upper, work);
    if options.len() < OPTIONS_MAX {
        return LegacyNames::Paths(options);
    }
    let widest = format!("/proc/self/fd/{}", "9".repeat(fd_digits));
    let fds = vec![widest; layers.len()];
    if overlay_options(&fds, upper, work).len() < OPTIONS_MAX {
        LegacyNames::Descriptors
    } else {
        LegacyNames::TooMany
    }
}

fn mount_overlay_legacy(
    layers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<bool> {
    let merr = |action: &str, e: io::Error| Error::Mount {
        action: action.to_string(),
        path: target.to_path_buf(),
        source: e,
    };
    // Descriptors are numbered upwards from the lowest free one; this
    // process has far fewer than 10^6 open.
    let mut held = Vec::new();
    let options = match legacy_names(layers, upper, work, 6) {
        LegacyNames::Paths(options) => options,
        LegacyNames::TooMany => return Ok(false),
        LegacyNames::Descriptors => {
            for layer in layers.iter().rev() {
                held.push(
                    crate::fsops::open_dir(layer)
                        .map_err(|e| merr("open an overlay layer for", e))?,
                );
            }
            let names: Vec<String> = held
                .iter()
                .map(|fd| format!("/proc/self/fd/{}", fd.as_raw_fd()))
                .collect();
            let options = overlay_options(&names, upper, work);
            if options.len() >= OPTIONS_MAX {
                return Ok(false);
            }
            options
        }
    };
    let t = cpath(target)?;
    let d = CString::new(options).map_err(|_| Error::malformed("overlay options", "NUL"))?;
    // SAFETY: mount(2) with NUL-terminated strings; the descriptors the
    // options name stay open until it returns.
    let ret = unsafe {
        libc::mount(
            c"overlay".as_ptr(),
            t.as_ptr(),
            c"overlay".as_ptr(),
            0,
            d.as_ptr().cast(),
        )
    };
    if ret < 0 {
        return Err(merr("mount overlay on", io::Error::last_os_error()));
    }
    drop(held);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(n: usize, name_len: usize) -> Vec<PathBuf> {
        (0..n)
            .map(|i| PathBuf::from(format!("/s/{i:0name_len$}/rootfs")))
            .collect()
    }

    #[test]
    fn the_classic_path_names_layers_by_path_then_descriptor_then_gives_up() {
        let (upper, work) = (Path::new("/p/c/upper"), Path::new("/p/c/work"));
        // A few layers: their paths, top first.
        match legacy_names(&layers(3, 4), upper, work, 6) {
            LegacyNames::Paths(o) => assert_eq!(
                o,
                "lowerdir=/s/0002/rootfs:/s/0001/rootfs:/s/0000/rootfs,upperdir=/p/c/upper,workdir=/p/c/work"
            ),
            other => panic!("{other:?}"),
        }
        // Store paths are ~100 bytes: 60 layers overflow a page, but their
        // descriptors' names fit.
        assert_eq!(
            legacy_names(&layers(60, 90), upper, work, 6),
            LegacyNames::Descriptors
        );
        // Exactly at the limit: a page holds 4095 bytes and the NUL.
        let fixed = overlay_options(&[], upper, work).len();
        let per = "/s/0000/rootfs".len() + 1;
        let n = (OPTIONS_MAX - 1 - fixed + 1) / per;
        assert!(matches!(
            legacy_names(&layers(n, 4), upper, work, 6),
            LegacyNames::Paths(o) if o.len() < OPTIONS_MAX
        ));
        // One more: short paths overflow, and descriptor names are no
        // shorter than these paths.
        assert_eq!(
            legacy_names(&layers(n + 1, 4), upper, work, 6),
            LegacyNames::TooMany
        );
        // More than a page of descriptor names: the copy backend.
        assert_eq!(
            legacy_names(&layers(250, 90), upper, work, 6),
            LegacyNames::TooMany
        );
    }
}
