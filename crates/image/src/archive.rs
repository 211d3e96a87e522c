//! `phobos image load`: images from a `docker save` archive (the classic
//! layout with `manifest.json`, and Docker ≥ 25's OCI-layout flavour) or
//! an OCI image-layout archive (`oci-layout`, `index.json`, `blobs/`).
//!
//! The archive is indexed once (member name → offset and size; a
//! gzip-compressed archive is first decompressed into the store's
//! staging directory) and then read with `pread`-style seeks, so every
//! member is read where it lies; no member is ever extracted by name.
//! Every blob an OCI index names is checked against its digest, every
//! layer against its diff ID.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::digest::{Digest, HashingReader};
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::registry::{Event, Progress};
use crate::spec::{self, Descriptor, Parsed};
use crate::store::{self, ImageRecord, Store, StoredImage};
use crate::unpack;

/// Members of an archive: regular files by name, symlinks by name.
struct Index {
    path: PathBuf,
    files: BTreeMap<String, (u64, u64)>,
    links: BTreeMap<String, String>,
}

fn clean(name: &str) -> String {
    name.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

impl Index {
    fn build(path: &Path) -> Result<Index> {
        let what = || format!("archive {}", path.display());
        let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
        let mut archive = tar::Archive::new(BufReader::new(file));
        let mut files = BTreeMap::new();
        let mut links = BTreeMap::new();
        for entry in archive.entries().map_err(|e| Error::malformed(what(), e))? {
            let entry = entry.map_err(|e| Error::malformed(what(), e))?;
            let name = clean(&String::from_utf8_lossy(&entry.path_bytes()));
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    files.insert(name, (entry.raw_file_position(), entry.size()));
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    if let Some(target) = entry.link_name_bytes() {
                        let target = String::from_utf8_lossy(&target).into_owned();
                        links.insert(name, target);
                    }
                }
                _ => {}
            }
        }
        Ok(Index {
            path: path.to_path_buf(),
            files,
            links,
        })
    }

    /// Offset and size of a member, following the archive's own links
    /// (resolved as names inside the archive, at most 8 deep).
    fn locate(&self, name: &str) -> Result<(u64, u64)> {
        let mut name = clean(name);
        for _ in 0..8 {
            if let Some(found) = self.files.get(&name) {
                return Ok(*found);
            }
            let Some(target) = self.links.get(&name) else {
                break;
            };
            name = if target.starts_with('/') {
                clean(target)
            } else {
                let dir = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                let mut parts: Vec<&str> = dir.split('/').filter(|c| !c.is_empty()).collect();
                for c in target.split('/') {
                    match c {
                        "" | "." => {}
                        ".." => {
                            parts.pop();
                        }
                        c => parts.push(c),
                    }
                }
                parts.join("/")
            };
        }
        Err(Error::malformed(
            format!("archive {}", self.path.display()),
            format!("no member {name:?}"),
        ))
    }

    fn open(&self, name: &str) -> Result<io::Take<BufReader<File>>> {
        let (offset, size) = self.locate(name)?;
        let mut file = File::open(&self.path).map_err(|e| Error::io("open", &self.path, e))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| Error::io("read", &self.path, e))?;
        Ok(BufReader::with_capacity(256 * 1024, file).take(size))
    }

    fn read(&self, name: &str, limit: u64) -> Result<Vec<u8>> {
        spec::read_limited(
            self.open(name)?,
            limit,
            &format!("{} in {}", name, self.path.display()),
        )
    }

    fn has(&self, name: &str) -> bool {
        self.locate(name).is_ok()
    }
}

/// One image found in an archive, before its layers are unpacked.
struct Found {
    names: Vec<Reference>,
    digest: Digest,
    config: Vec<u8>,
    /// Member names of the layers, lowest first, with the compressed digest
    /// to check when the archive names one.
    layers: Vec<(String, Option<Digest>)>,
}

/// Loads every image of the archive at `path` into `store`, named by the
/// archive's tags (`RepoTags`, `io.containerd.image.name`, or a full
/// reference in `org.opencontainers.image.ref.name`); `name` names images
/// the archive leaves unnamed (or only tagged).
pub fn load(
    store: &Store,
    path: &Path,
    name: Option<&Reference>,
    progress: &dyn Progress,
) -> Result<Vec<StoredImage>> {
    let _hold = store.shared()?;
    let mut magic = [0u8; 2];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut magic))
        .map_err(|e| Error::io("read", path, e))?;
    let decompressed;
    let archive_path = if n == 2 && magic == [0x1f, 0x8b] {
        decompressed = TempFile(
            store
                .root()
                .join("staging")
                .join(format!("archive-{}", uuid::Uuid::new_v4().simple())),
        );
        // A new file of our own: never through a symlink (O_EXCL).
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&decompressed.0)
            .map_err(|e| Error::io("create", &decompressed.0, e))?;
        let input = File::open(path).map_err(|e| Error::io("open", path, e))?;
        io::copy(
            &mut flate2::read::MultiGzDecoder::new(BufReader::new(input)),
            &mut out,
        )
        .map_err(|e| Error::io("decompress", path, e))?;
        decompressed.0.clone()
    } else {
        path.to_path_buf()
    };
    let index = Index::build(&archive_path)?;
    let found = if index.has("index.json") && index.has("oci-layout") {
        oci_images(&index, name)?
    } else if index.has("manifest.json") {
        docker_images(&index, name)?
    } else {
        return Err(Error::malformed(
            format!("archive {}", path.display()),
            "neither manifest.json (docker save) nor oci-layout and index.json (OCI)",
        ));
    };
    if found.is_empty() {
        return Err(Error::malformed(
            format!("archive {}", path.display()),
            "no images in it",
        ));
    }
    let mut out = Vec::new();
    for image in found {
        out.extend(store_found(store, &index, image, progress)?);
    }
    Ok(out)
}

struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn docker_images(index: &Index, name: Option<&Reference>) -> Result<Vec<Found>> {
    let what = format!("manifest.json in {}", index.path.display());
    let data = index.read("manifest.json", spec::MAX_MANIFEST)?;
    let entries: Vec<spec::SaveEntry> =
        serde_json::from_slice(&data).map_err(|e| Error::malformed(&what, e))?;
    let mut out = Vec::new();
    for entry in entries {
        let config = index.read(&entry.config, spec::MAX_CONFIG)?;
        let digest = Digest::of(&config);
        let mut names = Vec::new();
        for tag in &entry.repo_tags {
            names.push(Reference::parse(tag)?);
        }
        if names.is_empty() {
            names.extend(name.cloned());
        }
        if names.is_empty() {
            return Err(Error::malformed(
                &what,
                format!("image {digest} has no RepoTags; name it with --name"),
            ));
        }
        // Docker ≥ 25 names layers blobs/sha256/<hex>: that is their digest.
        let layers = entry
            .layers
            .iter()
            .map(|l| {
                let d = l
                    .strip_prefix("blobs/sha256/")
                    .and_then(|hex| Digest::parse(&format!("sha256:{hex}")).ok());
                (l.clone(), d)
            })
            .collect();
        out.push(Found {
            names,
            digest,
            config,
            layers,
        });
    }
    Ok(out)
}

fn read_blob(index: &Index, d: &Descriptor, limit: u64) -> Result<Vec<u8>> {
    let data = index.read(&format!("blobs/sha256/{}", d.digest.hex()), limit)?;
    let actual = Digest::of(&data);
    if actual != d.digest {
        return Err(Error::DigestMismatch {
            what: format!("blob in {}", index.path.display()),
            expected: d.digest.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(data)
}

fn oci_images(index: &Index, name: Option<&Reference>) -> Result<Vec<Found>> {
    let what = format!("index.json in {}", index.path.display());
    let data = index.read("index.json", spec::MAX_MANIFEST)?;
    let Parsed::Index(entries) = spec::parse_manifest(&data, Some(spec::OCI_INDEX), &what)? else {
        return Err(Error::malformed(&what, "not an index"));
    };
    let mut out = Vec::new();
    for entry in entries {
        let names = names_of(&entry, name)?;
        let mut descriptor = entry;
        // Nested indexes (multi-platform images): pick the host's platform.
        let (config, layers, digest) = loop {
            let bytes = read_blob(index, &descriptor, spec::MAX_MANIFEST)?;
            match spec::parse_manifest(
                &bytes,
                Some(&descriptor.media_type),
                &format!("manifest {}", descriptor.digest),
            )? {
                Parsed::Manifest { config, layers } => {
                    break (config, layers, descriptor.digest.clone());
                }
                Parsed::Index(list) => descriptor = spec::pick_platform(&list, &what)?.clone(),
            }
        };
        let config = read_blob(index, &config, spec::MAX_CONFIG)?;
        if names.is_empty() {
            return Err(Error::malformed(
                &what,
                format!("image {digest} has no name; name it with --name"),
            ));
        }
        out.push(Found {
            names,
            digest,
            config,
            layers: layers
                .iter()
                .map(|l| {
                    (
                        format!("blobs/sha256/{}", l.digest.hex()),
                        Some(l.digest.clone()),
                    )
                })
                .collect(),
        });
    }
    Ok(out)
}

/// An OCI index entry's names: `io.containerd.image.name` (Docker),
/// else a full reference in `org.opencontainers.image.ref.name`; a bare
/// tag there names the image `name` with that tag.
fn names_of(entry: &Descriptor, name: Option<&Reference>) -> Result<Vec<Reference>> {
    if let Some(full) = entry.annotations.get("io.containerd.image.name") {
        return Ok(vec![Reference::parse(full)?]);
    }
    match entry.annotations.get("org.opencontainers.image.ref.name") {
        Some(r) if r.contains('/') || r.contains('@') => Ok(vec![Reference::parse(r)?]),
        Some(tag) => match name {
            Some(n) if n.tag().is_none() || n.tag() == Some("latest") => {
                Ok(vec![Reference::parse(&format!("{}:{tag}", n.name()))?])
            }
            Some(n) => Ok(vec![n.clone()]),
            None => Err(Error::malformed(
                "OCI archive",
                format!("image tagged {tag:?} has no repository name; name it with --name"),
            )),
        },
        None => Ok(name.cloned().into_iter().collect()),
    }
}

fn store_found(
    store: &Store,
    index: &Index,
    image: Found,
    progress: &dyn Progress,
) -> Result<Vec<StoredImage>> {
    let what = format!("config {}", image.digest);
    let config = spec::parse_config(&image.config, image.layers.len(), &what)?;
    let diff_ids = config.rootfs.diff_ids.clone();
    let results: Vec<Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = image
            .layers
            .iter()
            .zip(&diff_ids)
            .map(|((member, blob_digest), diff_id)| {
                scope.spawn(move || {
                    let downloaded = store.ensure_layer(diff_id, |dir| {
                        let mut hashing = HashingReader::new(index.open(member)?);
                        let summary = unpack::unpack_layer(&mut hashing, dir, member)?;
                        let (actual, _) = hashing
                            .finish()
                            .map_err(|e| Error::io("read", &index.path, e))?;
                        if let Some(expected) = blob_digest
                            && &actual != expected
                        {
                            return Err(Error::DigestMismatch {
                                what: format!("layer {member}"),
                                expected: expected.to_string(),
                                actual: actual.to_string(),
                            });
                        }
                        Ok(summary)
                    })?;
                    progress.event(Event::LayerDone {
                        digest: diff_id.clone(),
                        fetched: downloaded,
                    });
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::malformed("layer", "unpacking thread panicked")))
            })
            .collect()
    });
    for r in results {
        r?;
    }
    let config_digest = store.put_blob(&image.config)?;
    let size = diff_ids.iter().map(|d| store.layer_size(d)).sum();
    let mut out = Vec::new();
    for name in image.names {
        let record = ImageRecord {
            reference: name.to_string(),
            digest: image.digest.clone(),
            config: config_digest.clone(),
            layers: diff_ids.clone(),
            size,
            created: store::now(),
            last_used: None,
        };
        store.put_image(&record)?;
        progress.event(Event::Stored {
            reference: name.to_string(),
            digest: image.digest.clone(),
        });
        if let Some(stored) = store.image(&name)? {
            out.push(stored);
        }
    }
    Ok(out)
}
