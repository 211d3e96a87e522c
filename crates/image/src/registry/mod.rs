//! Pulling images from a registry (Docker Registry HTTP API v2 / OCI
//! distribution): the manifest (an index or manifest list resolved to
//! linux/<host arch>), the config, then every missing layer downloaded in
//! parallel and unpacked as it streams in, each verified against its
//! digest (compressed) and diff ID (uncompressed) before it is renamed
//! into the store.

mod auth;
mod client;

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub use auth::Credentials;
pub use client::Endpoint;
pub use phobos_core::resolve::resolve as resolve_host;

use crate::digest::{Digest, HashingReader};
use crate::error::{Error, Result};
use crate::reference::{DOCKER_HUB, Reference};
use crate::spec::{self, Parsed};
use crate::store::{self, ImageRecord, Store, StoredImage};
use crate::unpack;

/// What a pull or load reports as it goes.
#[derive(Debug, Clone)]
pub enum Event {
    /// The image's layers, lowest first, once its manifest and config are
    /// read and before any is fetched: (blob digest, diff ID, compressed
    /// size). Later events name a layer by one of the two digests.
    Layers {
        /// The normalized reference.
        reference: String,
        /// Every layer of the image.
        layers: Vec<(Digest, Digest, u64)>,
    },
    /// A layer is being fetched (`size` compressed bytes).
    LayerStart {
        /// The layer blob's digest.
        digest: Digest,
        /// Its size, from the manifest.
        size: u64,
    },
    /// More bytes of a layer arrived (the total so far).
    LayerBytes {
        /// The layer blob's digest.
        digest: Digest,
        /// Bytes so far.
        bytes: u64,
    },
    /// A layer is in the store; `fetched` is false when it already was.
    LayerDone {
        /// The layer (diff ID).
        digest: Digest,
        /// Whether this process fetched and unpacked it.
        fetched: bool,
    },
    /// An image was recorded under a reference.
    Stored {
        /// The normalized reference.
        reference: String,
        /// The manifest's digest.
        digest: Digest,
    },
}

/// Receives [`Event`]s (from several threads).
pub trait Progress: Sync {
    /// One event.
    fn event(&self, event: Event);
}

/// A [`Progress`] that ignores everything.
pub struct Quiet;

impl Progress for Quiet {
    fn event(&self, _: Event) {}
}

/// How to reach registries.
#[derive(Debug, Clone)]
pub struct PullSettings {
    /// The registry of `docker.io/...` references (`docker_registry`).
    pub default_registry: String,
    /// `host[:port]`s spoken to over plain HTTP besides 127.0.0.0/8,
    /// `[::1]` and `localhost` (`docker_insecure_registries`).
    pub insecure: Vec<String>,
    /// Credentials (`docker_config`).
    pub credentials: Credentials,
    /// Connect timeout and the longest wait for any read.
    pub timeout: Duration,
    /// Layers fetched at once.
    pub parallel: usize,
}

impl Default for PullSettings {
    fn default() -> Self {
        PullSettings {
            default_registry: "https://registry-1.docker.io".to_string(),
            insecure: Vec::new(),
            credentials: Credentials::none(),
            timeout: Duration::from_secs(30),
            parallel: 4,
        }
    }
}

fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host),
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl PullSettings {
    /// Where the registry of `reference` is: `docker.io` goes to
    /// `default_registry`; loopback and insecure registries speak HTTP,
    /// all others HTTPS.
    pub fn endpoint(&self, reference: &Reference) -> Endpoint {
        if reference.domain() == DOCKER_HUB {
            let base = self.default_registry.trim_end_matches('/').to_string();
            let host = base.split("://").nth(1).unwrap_or(&base).to_string();
            return Endpoint { base, host };
        }
        let host = reference.domain().to_string();
        let bare = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(&host);
        let insecure = is_loopback(&host) || self.insecure.iter().any(|i| *i == host || *i == bare);
        let scheme = if insecure { "http" } else { "https" };
        Endpoint {
            base: format!("{scheme}://{host}"),
            host,
        }
    }
}

/// Counts bytes for progress reports.
struct Counting<'a, R> {
    inner: R,
    digest: &'a Digest,
    bytes: u64,
    reported: u64,
    progress: &'a dyn Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        if self.bytes - self.reported >= 1 << 20 {
            self.reported = self.bytes;
            self.progress.event(Event::LayerBytes {
                digest: self.digest.clone(),
                bytes: self.bytes,
            });
        }
        Ok(n)
    }
}

/// Pulls `reference` into `store` and returns it. Layers already in the
/// store are not fetched again.
pub fn pull(
    store: &Store,
    reference: &Reference,
    settings: &PullSettings,
    progress: &dyn Progress,
) -> Result<StoredImage> {
    let _hold = store.shared()?;
    let endpoint = settings.endpoint(reference);
    let session = client::Session::new(
        endpoint,
        reference.repository(),
        &settings.credentials,
        settings.timeout,
    );
    let not_found = || Error::NotFound {
        reference: reference.to_string(),
        registry: session.host().to_string(),
    };
    let asked = reference.manifest_reference();
    let (body, content_type, header_digest) = session.manifest(&asked)?.ok_or_else(not_found)?;
    let mut digest = Digest::of(&body);
    let expected = match reference.digest() {
        Some(d) => Some(d.to_string()),
        None => header_digest,
    };
    if let Some(expected) = expected
        && expected != digest.to_string()
    {
        return Err(Error::DigestMismatch {
            what: format!("manifest {reference}"),
            expected,
            actual: digest.to_string(),
        });
    }
    let what = format!("manifest of {reference}");
    let mut manifest_body = body;
    let (config_desc, layers) =
        match spec::parse_manifest(&manifest_body, Some(&content_type), &what)? {
            Parsed::Manifest { config, layers } => (config, layers),
            Parsed::Index(list) => {
                let chosen = spec::pick_platform(&list, &what)?.digest.clone();
                let (body, content_type, _) = session
                    .manifest(&chosen.to_string())?
                    .ok_or_else(not_found)?;
                let actual = Digest::of(&body);
                if actual != chosen {
                    return Err(Error::DigestMismatch {
                        what: format!("manifest {chosen} of {reference}"),
                        expected: chosen.to_string(),
                        actual: actual.to_string(),
                    });
                }
                digest = actual;
                manifest_body = body;
                match spec::parse_manifest(&manifest_body, Some(&content_type), &what)? {
                    Parsed::Manifest { config, layers } => (config, layers),
                    Parsed::Index(_) => {
                        return Err(Error::malformed(what, "an index inside an index"));
                    }
                }
            }
        };
    let config_bytes = spec::read_limited(
        session.blob(&config_desc.digest)?,
        spec::MAX_CONFIG,
        &format!("config of {reference}"),
    )?;
    let actual = Digest::of(&config_bytes);
    if actual != config_desc.digest {
        return Err(Error::DigestMismatch {
            what: format!("config of {reference}"),
            expected: config_desc.digest.to_string(),
            actual: actual.to_string(),
        });
    }
    let config = spec::parse_config(
        &config_bytes,
        layers.len(),
        &format!("config of {reference}"),
    )?;
    let diff_ids = config.rootfs.diff_ids.clone();

    progress.event(Event::Layers {
        reference: reference.to_string(),
        layers: layers
            .iter()
            .zip(&diff_ids)
            .map(|(desc, diff_id)| (desc.digest.clone(), diff_id.clone(), desc.size))
            .collect(),
    });
    let next = AtomicUsize::new(0);
    let work: Vec<(&spec::Descriptor, &Digest)> = layers.iter().zip(&diff_ids).collect();
    let workers = settings.parallel.clamp(1, 16).min(work.len().max(1));
    let results: Vec<Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some((desc, diff_id)) = work.get(i) else {
                            return Ok(());
                        };
                        let fetched = store.ensure_layer(diff_id, |dir| {
                            progress.event(Event::LayerStart {
                                digest: desc.digest.clone(),
                                size: desc.size,
                            });
                            let stream = session.blob(&desc.digest)?;
                            let counting = Counting {
                                inner: stream,
                                digest: &desc.digest,
                                bytes: 0,
                                reported: 0,
                                progress,
                            };
                            let mut hashing = HashingReader::new(counting);
                            let summary =
                                unpack::unpack_layer(&mut hashing, dir, &desc.digest.to_string())?;
                            let (actual, _) = hashing.finish().map_err(|e| Error::Registry {
                                registry: session.host().to_string(),
                                message: format!("blob {}: {e}", desc.digest),
                            })?;
                            if actual != desc.digest {
                                return Err(Error::DigestMismatch {
                                    what: format!("layer of {reference}"),
                                    expected: desc.digest.to_string(),
                                    actual: actual.to_string(),
                                });
                            }
                            Ok(summary)
                        })?;
                        progress.event(Event::LayerDone {
                            digest: (*diff_id).clone(),
                            fetched,
                        });
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::malformed("layer", "a download thread panicked"))
                })
            })
            .collect()
    });
    for r in results {
        r?;
    }
    let config_digest = store.put_blob(&config_bytes)?;
    store.put_blob(&manifest_body)?;
    let record = ImageRecord {
        reference: reference.to_string(),
        digest: digest.clone(),
        config: config_digest,
        layers: diff_ids.clone(),
        size: diff_ids.iter().map(|d| store.layer_size(d)).sum(),
        created: store::now(),
        last_used: None,
    };
    store.put_image(&record)?;
    progress.event(Event::Stored {
        reference: reference.to_string(),
        digest,
    });
    store.image(reference)?.ok_or_else(|| Error::NoSuchImage {
        reference: reference.to_string(),
        store: store.root().to_path_buf(),
    })
}
