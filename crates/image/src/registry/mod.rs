//! Pulling images from a registry (Docker Registry HTTP API v2 / OCI
//! distribution).

use crate::digest::Digest;

/// What a pull or load reports as it goes.
#[derive(Debug, Clone)]
pub enum Event {
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
