//! The image store under `<work_dir>/store` (`docker_store_dir`): layers
//! unpacked once by diff ID and shared, blobs by digest, images by
//! reference, in-use records of live containers (layout in the crate
//! docs).
//!
//! Cross-process safety uses `flock(2)`: a lock file per layer makes
//! concurrent pulls of one layer (in separate processes) unpack it once,
//! and `gc.lock` is held shared by pulls and provisions and exclusively by
//! `rm`/`prune`. Everything becomes visible by `rename(2)`: a layer is
//! unpacked into `staging/<diff id>/` and renamed into `layers/`, records
//! and blobs are written to a temporary name and renamed, so a kill at any
//! point leaves nothing half-visible.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::spec::{self, ImageConfig};
use crate::unpack::LayerSummary;

/// An image store directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// An image's record, `images/<sha256 of the reference>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The normalized reference.
    pub reference: String,
    /// The manifest's digest.
    pub digest: Digest,
    /// The config blob's digest.
    pub config: Digest,
    /// Layer diff IDs, lowest first.
    pub layers: Vec<Digest>,
    /// Unpacked bytes of all layers.
    pub size: u64,
    /// When the image was stored (seconds since the epoch).
    pub created: u64,
    /// When a container last used it (seconds since the epoch).
    #[serde(default)]
    pub last_used: Option<u64>,
}

/// A container's use of an image, `in-use/<container id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InUse {
    /// The container's ID.
    pub container_id: String,
    /// The image's normalized reference.
    pub reference: String,
    /// The manifest's digest.
    pub digest: Digest,
    /// The layers the rootfs stacks.
    pub layers: Vec<Digest>,
}

/// A stored image, ready for the provisioner.
#[derive(Debug, Clone)]
pub struct StoredImage {
    /// The normalized reference.
    pub reference: Reference,
    /// The manifest's digest.
    pub digest: Digest,
    /// Layer diff IDs, lowest first.
    pub diff_ids: Vec<Digest>,
    /// The unpacked layer directories, lowest first.
    pub layers: Vec<PathBuf>,
    /// ENTRYPOINT, CMD, ENV, WORKDIR, USER.
    pub config: ImageConfig,
    /// Unpacked bytes of all layers.
    pub size: u64,
}

/// A held `flock(2)`; released when dropped.
#[derive(Debug)]
pub struct Lock(#[allow(dead_code)] File);

fn flock(path: &Path, op: libc::c_int) -> Result<Lock> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io("open lock", path, e))?;
    loop {
        // SAFETY: `file` is an open descriptor for the duration of the call.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(Lock(file));
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(Error::io("lock", path, e));
        }
    }
}

/// Seconds since the epoch.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Writes `data` to `path` through a temporary file and a rename.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    write_renamed(path, data, true)
}

/// [`write_atomic`] without `fsync(2)`: for records about mounts, which do
/// not outlive a reboot either (in-use records, a provisioned root
/// filesystem's backend), so a crash loses nothing they describe.
pub(crate) fn write_volatile(path: &Path, data: &[u8]) -> Result<()> {
    write_renamed(path, data, false)
}

fn write_renamed(path: &Path, data: &[u8], sync: bool) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(data)?;
        if sync {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io("write", path, e));
    }
    Ok(())
}

fn mkdir(path: &Path) -> Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let meta = fs::symlink_metadata(path).map_err(|e| Error::io("stat", path, e))?;
            if meta.is_dir() {
                Ok(())
            } else {
                Err(Error::io(
                    "use",
                    path,
                    std::io::Error::other(
                        "exists and is not a directory (a symlink is never followed)",
                    ),
                ))
            }
        }
        Err(e) => Err(Error::io("create", path, e)),
    }
}

/// How stale an image's `last_used` may be before a launch rewrites it.
const TOUCH_RESOLUTION_SECS: u64 = 60;

const SUBDIRS: &[&str] = &[
    "layers",
    "blobs",
    "blobs/sha256",
    "images",
    "locks",
    "staging",
    "in-use",
];

impl Store {
    /// Opens (creating) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        if let Some(parent) = root.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
        }
        // Made in order, so the last one existing means all do (one stat
        // on every launch instead of a mkdir and a stat per directory).
        let last = root.join(SUBDIRS[SUBDIRS.len() - 1]);
        if fs::symlink_metadata(&last).is_ok_and(|m| m.is_dir())
            && fs::symlink_metadata(&root).is_ok_and(|m| m.is_dir())
        {
            return Ok(Store { root });
        }
        mkdir(&root)?;
        for sub in SUBDIRS {
            mkdir(&root.join(sub))?;
        }
        Ok(Store { root })
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The unpacked tree of a layer.
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex()).join("rootfs")
    }

    /// True when the layer is unpacked in the store.
    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        self.root
            .join("layers")
            .join(diff_id.hex())
            .join("layer.json")
            .is_file()
    }

    /// The unpacked size of a stored layer.
    pub fn layer_size(&self, diff_id: &Digest) -> u64 {
        #[derive(Deserialize)]
        struct Meta {
            size: u64,
        }
        fs::read(
            self.root
                .join("layers")
                .join(diff_id.hex())
                .join("layer.json"),
        )
        .ok()
        .and_then(|b| serde_json::from_slice::<Meta>(&b).ok())
        .map(|m| m.size)
        .unwrap_or(0)
    }

    /// Shared hold on the store: pulls, loads and provisions.
    pub fn shared(&self) -> Result<Lock> {
        flock(&self.root.join("gc.lock"), libc::LOCK_SH)
    }

    /// Exclusive hold on the store: rm and prune.
    pub fn exclusive(&self) -> Result<Lock> {
        flock(&self.root.join("gc.lock"), libc::LOCK_EX)
    }

    /// Makes sure the layer `diff_id` is in the store. Under the layer's
    /// lock: when it is there already, returns `false`; otherwise removes a
    /// stale staging directory a killed process left, calls `fill` to
    /// unpack into a fresh `staging/<hex>/rootfs`, checks the diff ID it
    /// reports, and renames the layer into place (`true`). On any error the
    /// staging directory is removed.
    pub fn ensure_layer(
        &self,
        diff_id: &Digest,
        fill: impl FnOnce(&Path) -> Result<LayerSummary>,
    ) -> Result<bool> {
        let _lock = flock(&self.root.join("locks").join(diff_id.hex()), libc::LOCK_EX)?;
        if self.has_layer(diff_id) {
            return Ok(false);
        }
        let staging = self.root.join("staging").join(diff_id.hex());
        remove_tree(&staging)?;
        let final_dir = self.root.join("layers").join(diff_id.hex());
        remove_tree(&final_dir)?;
        let result = (|| {
            mkdir(&staging)?;
            let rootfs = staging.join("rootfs");
            fs::DirBuilder::new()
                .mode(0o755)
                .create(&rootfs)
                .map_err(|e| Error::io("create", &rootfs, e))?;
            let summary = fill(&rootfs)?;
            if &summary.diff_id != diff_id {
                return Err(Error::DigestMismatch {
                    what: format!("layer {diff_id} (uncompressed)"),
                    expected: diff_id.to_string(),
                    actual: summary.diff_id.to_string(),
                });
            }
            let meta = serde_json::json!({"diff_id": diff_id, "size": summary.size, "entries": summary.entries});
            write_atomic(&staging.join("layer.json"), meta.to_string().as_bytes())?;
            fs::rename(&staging, &final_dir)
                .map_err(|e| Error::io("rename into place", &final_dir, e))
        })();
        if let Err(e) = result {
            let _ = remove_tree(&staging);
            return Err(e);
        }
        Ok(true)
    }

    /// Stores a verified blob (manifest or config) and returns its digest.
    pub fn put_blob(&self, data: &[u8]) -> Result<Digest> {
        let digest = Digest::of(data);
        let path = self.blob_path(&digest);
        if !path.is_file() {
            write_atomic(&path, data)?;
        }
        Ok(digest)
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// Reads a stored blob, checking its digest.
    pub fn blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        let data = fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
        let actual = Digest::of(&data);
        if &actual != digest {
            return Err(Error::DigestMismatch {
                what: path.display().to_string(),
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(data)
    }

    fn record_path(&self, reference: &str) -> PathBuf {
        self.root
            .join("images")
            .join(format!("{}.json", Digest::of(reference.as_bytes()).hex()))
    }

    /// Records an image (its layers and config blob must be stored).
    pub fn put_image(&self, record: &ImageRecord) -> Result<()> {
        let data =
            serde_json::to_vec_pretty(record).map_err(|e| Error::malformed("image record", e))?;
        write_atomic(&self.record_path(&record.reference), &data)
    }

    /// Every image record, sorted by reference.
    pub fn records(&self) -> Result<Vec<ImageRecord>> {
        let dir = self.root.join("images");
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| Error::io("read", &dir, e))? {
            let entry = entry.map_err(|e| Error::io("read", &dir, e))?;
            let name = entry.file_name();
            if !name.to_string_lossy().ends_with(".json") || name.to_string_lossy().starts_with('.')
            {
                continue;
            }
            let path = entry.path();
            match fs::read(&path).map(|b| serde_json::from_slice::<ImageRecord>(&b)) {
                Ok(Ok(record)) => out.push(record),
                Ok(Err(e)) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipping a malformed image record")
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipping an unreadable image record")
                }
            }
        }
        out.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(out)
    }

    /// The record of `reference`: by its exact normalized form, or, for a
    /// reference with a digest, any record of that name and digest.
    pub fn record(&self, reference: &Reference) -> Result<Option<ImageRecord>> {
        let key = reference.to_string();
        let path = self.record_path(&key);
        if let Ok(data) = fs::read(&path) {
            let record: ImageRecord = serde_json::from_slice(&data)
                .map_err(|e| Error::malformed(path.display().to_string(), e))?;
            return Ok(Some(record));
        }
        if let Some(digest) = reference.digest() {
            let name = reference.name();
            return Ok(self.records()?.into_iter().find(|r| {
                &r.digest == digest
                    && Reference::parse(&r.reference).is_ok_and(|x| x.name() == name)
            }));
        }
        Ok(None)
    }

    /// The stored image of `reference`, with every layer present; `None`
    /// when it is not (completely) stored.
    pub fn image(&self, reference: &Reference) -> Result<Option<StoredImage>> {
        let Some(record) = self.record(reference)? else {
            return Ok(None);
        };
        if !record.layers.iter().all(|l| self.has_layer(l)) {
            return Ok(None);
        }
        let blob = self.blob(&record.config)?;
        let config = spec::parse_config(
            &blob,
            record.layers.len(),
            &format!("config {}", record.config),
        )?;
        Ok(Some(StoredImage {
            reference: Reference::parse(&record.reference)?,
            digest: record.digest.clone(),
            layers: record.layers.iter().map(|l| self.layer_dir(l)).collect(),
            diff_ids: record.layers.clone(),
            config: config.config.unwrap_or_default(),
            size: record.size,
        }))
    }

    /// Sets an image's last-used time to now.
    pub fn touch(&self, reference: &Reference) -> Result<()> {
        if let Some(mut record) = self.record(reference)? {
            // Minute resolution: a launch a second after the last one does
            // not rewrite (and fsync) the record again.
            let now = now();
            if record
                .last_used
                .is_some_and(|t| now.saturating_sub(t) < TOUCH_RESOLUTION_SECS)
            {
                return Ok(());
            }
            record.last_used = Some(now);
            self.put_image(&record)?;
        }
        Ok(())
    }

    /// Writes a container's in-use record.
    pub fn put_in_use(&self, record: &InUse) -> Result<()> {
        let data =
            serde_json::to_vec_pretty(record).map_err(|e| Error::malformed("in-use record", e))?;
        write_volatile(&self.root.join("in-use").join(&record.container_id), &data)
    }

    /// Removes a container's in-use record (absent is fine).
    pub fn remove_in_use(&self, container_id: &str) -> Result<()> {
        let path = self.root.join("in-use").join(container_id);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io("remove", &path, e))
            }
            _ => Ok(()),
        }
    }

    /// Every in-use record.
    pub fn in_use(&self) -> Result<Vec<InUse>> {
        let dir = self.root.join("in-use");
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| Error::io("read", &dir, e))? {
            let entry = entry.map_err(|e| Error::io("read", &dir, e))?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if let Ok(Ok(record)) =
                fs::read(entry.path()).map(|b| serde_json::from_slice::<InUse>(&b))
            {
                out.push(record);
            }
        }
        out.sort_by(|a, b| a.container_id.cmp(&b.container_id));
        Ok(out)
    }

    /// Removes an image's record, refused while a container uses it, then
    /// removes the layers and blobs nothing uses any more. Returns the
    /// removed record.
    pub fn remove_image(&self, reference: &Reference) -> Result<ImageRecord> {
        let _lock = self.exclusive()?;
        let Some(record) = self.record(reference)? else {
            return Err(Error::NoSuchImage {
                reference: reference.to_string(),
                store: self.root.clone(),
            });
        };
        let users: Vec<String> = self
            .in_use()?
            .into_iter()
            .filter(|u| u.reference == record.reference || u.digest == record.digest)
            .map(|u| u.container_id)
            .collect();
        if !users.is_empty() {
            return Err(Error::InUse {
                reference: record.reference.clone(),
                containers: users,
            });
        }
        let path = self.record_path(&record.reference);
        fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
        self.collect()?;
        Ok(record)
    }

    /// Removes layers and blobs no image or container uses, and staging
    /// left by killed pulls. Returns (layers removed, bytes freed).
    pub fn prune(&self) -> Result<(usize, u64)> {
        let _lock = self.exclusive()?;
        let staging = self.root.join("staging");
        for entry in fs::read_dir(&staging)
            .map_err(|e| Error::io("read", &staging, e))?
            .flatten()
        {
            remove_tree(&entry.path())?;
        }
        self.collect()
    }

    /// The sweep of rm and prune; the caller holds the exclusive lock.
    fn collect(&self) -> Result<(usize, u64)> {
        let records = self.records()?;
        let users = self.in_use()?;
        let mut keep_layers = std::collections::BTreeSet::new();
        let mut keep_blobs = std::collections::BTreeSet::new();
        for r in &records {
            keep_layers.extend(r.layers.iter().map(|l| l.hex().to_string()));
            keep_blobs.insert(r.config.hex().to_string());
            keep_blobs.insert(r.digest.hex().to_string());
        }
        for u in &users {
            keep_layers.extend(u.layers.iter().map(|l| l.hex().to_string()));
        }
        let layers = self.root.join("layers");
        let (mut removed, mut freed) = (0, 0);
        for entry in fs::read_dir(&layers)
            .map_err(|e| Error::io("read", &layers, e))?
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if keep_layers.contains(&name) {
                continue;
            }
            if let Ok(d) = Digest::parse(&format!("sha256:{name}")) {
                freed += self.layer_size(&d);
            }
            // Renamed out first, so no half-removed layer is ever visible.
            let doomed = self
                .root
                .join("staging")
                .join(format!("gc-{name}-{}", uuid::Uuid::new_v4().simple()));
            fs::rename(entry.path(), &doomed).map_err(|e| Error::io("remove", entry.path(), e))?;
            remove_tree(&doomed)?;
            removed += 1;
        }
        let blobs = self.root.join("blobs/sha256");
        for entry in fs::read_dir(&blobs)
            .map_err(|e| Error::io("read", &blobs, e))?
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !keep_blobs.contains(&name) {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok((removed, freed))
    }
}

/// Removes a tree (never following symlinks); absent is fine.
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("stat", path, e)),
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(|e| Error::io("remove", path, e)),
        Ok(_) => fs::remove_file(path).map_err(|e| Error::io("remove", path, e)),
    }
}
