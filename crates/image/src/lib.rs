//! Phobos images: what turns a Docker or OCI image into a root filesystem
//! for the Mesos containerizer (Mesos's provisioner and Docker store).
//!
//! Kernel mechanisms driven: `openat(2)` with `O_NOFOLLOW` per path
//! component, `mkdirat`/`mknodat`/`symlinkat`/`linkat`/`fsetxattr` beneath a
//! layer's directory descriptor (safe unpacking); `flock(2)` per layer and
//! `rename(2)` out of a staging directory (the store); overlayfs mounted
//! with the new mount API, `fsopen`/`fsconfig("lowerdir+")`/`fsmount`/
//! `move_mount` (the provisioner), `umount2(MNT_DETACH)` (destroy).
//!
//! # The API other crates use
//!
//! ```text
//! Reference::parse("busybox")?            -> docker.io/library/busybox:latest
//! Store::open(store_dir)?                  <work_dir>/store (config docker_store_dir)
//! store.image(&reference)?                 -> Option<StoredImage>
//! pull(&store, &reference, &settings, &progress)? -> StoredImage   (registry)
//! load(&store, archive_path, name, &progress)? -> Vec<StoredImage> (docker save / OCI archive)
//!
//! StoredImage {
//!     reference: Reference,        normalized, e.g. docker.io/library/busybox:latest
//!     digest: Digest,              the manifest's digest
//!     layers: Vec<PathBuf>,        unpacked layer directories, LOWEST FIRST
//!     config: ImageConfig,         entrypoint, cmd, env, working_dir, user (Docker's fields)
//!     size: u64,                   unpacked bytes of all layers
//! }
//!
//! let provisioner = Provisioner::new(store, <work_dir>/provisioner, Backend::Overlay);
//! provisioner.provision(&container_id, &image)? -> PathBuf   the rootfs (a mount point
//!     for overlay, a private directory for copy); writes the in-use record first
//! provisioner.destroy(&container_id)?           unmounts, removes <work_dir>/provisioner/<id>
//!     and the in-use record; idempotent (call it from destroy and recover)
//! ```
//!
//! # In-use records
//!
//! `provision` writes `<store>/in-use/<container_id>` (JSON: reference,
//! manifest digest, layer diff IDs) before it mounts anything, and
//! `destroy` removes it after the rootfs is gone. `phobos image rm` refuses
//! an image named by a record and `prune` keeps every layer a record names.
//! A record outlives a crashed launch until `destroy` (from `phobos
//! destroy`/`recover`) runs for that container.
//!
//! # Store layout (`<store>/`)
//!
//! ```text
//! layers/<diff-id hex>/rootfs/   one unpacked layer, overlay format: whiteouts are
//!                                char devices 0/0, opaque dirs carry trusted.overlay.opaque=y
//! layers/<diff-id hex>/layer.json   {diff_id, size}
//! blobs/sha256/<hex>             manifests and image configs, verified
//! images/<sha256 of reference>.json  {reference, digest, config, layers, size, created, last_used}
//! locks/<diff-id hex>            flock(2): one process unpacks a layer, the others wait
//! staging/<diff-id hex>/         a layer being unpacked (only under its lock; a stale one
//!                                left by a killed pull is removed by the next holder)
//! in-use/<container id>          see above
//! gc.lock                        shared by pulls/provisions, exclusive for rm/prune
//! ```

mod archive;
mod copy;
mod digest;
mod error;
mod fsops;
mod provision;
mod reference;
pub mod registry;
mod spec;
mod store;
mod unpack;

pub use archive::load;
pub use digest::Digest;
pub use error::Error;
pub use provision::{Backend, Provisioner};
pub use reference::Reference;
pub use registry::{Credentials, Event, Progress, PullSettings, Quiet, pull};
pub use spec::ImageConfig;
pub use store::{ImageRecord, InUse, Store, StoredImage};
pub use unpack::{LayerSummary, unpack_layer};
