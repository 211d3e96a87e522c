//! The seam between the Mesos containerizer and an image provisioner
//! (Mesos's provisioner, reference images §1 and containerizer §3.3 step
//! 5): at PROVISIONING the containerizer asks for the root filesystem of
//! the container's image, and every teardown (destroy, a failed launch,
//! recovery) asks for it to be removed. The implementation (the image
//! store, pulls, overlay mounts) lives outside this crate and is handed in
//! with [`crate::MesosContainerizer::with_provisioner`].

use std::path::PathBuf;

use phobos_core::{BoxError, ContainerId, ImageConfig};

/// A provisioned root filesystem and the image's run-time configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provisioned {
    /// The root filesystem, a directory (or mount point) on the host.
    pub rootfs: PathBuf,
    pub config: ImageConfig,
}

/// Makes and removes containers' root filesystems from images.
pub trait Provisioner: Send + Sync + std::fmt::Debug {
    /// The root filesystem of container `id` from the image `reference`
    /// (fetched first when it is not stored); records the image as used.
    fn provision(&self, id: &ContainerId, reference: &str) -> Result<Provisioned, BoxError>;
    /// Unmounts and removes container `id`'s root filesystem and its use
    /// of the image. Idempotent: nothing provisioned is fine.
    fn destroy(&self, id: &ContainerId) -> Result<(), BoxError>;
    /// The containers that have a root filesystem provisioned, for
    /// recovery to find orphans.
    fn provisioned(&self) -> Result<Vec<ContainerId>, BoxError>;
}
