//! The crate's one error type: every variant names the value or path it is
//! about, so the CLI prints it as one line.

use std::path::PathBuf;

/// Errors of references, the store, unpacking, pulls and provisioning.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A reference that does not follow Docker's grammar (a usage error).
    #[error("invalid image reference {value:?}: {reason}")]
    InvalidReference {
        /// The reference as given.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A system call failed on a path.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done ("create", "read", ...).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A layer entry that would escape its directory or is otherwise unsafe.
    #[error("refusing layer {layer}: entry {entry:?}: {reason}")]
    Hostile {
        /// The layer (its digest or file name).
        layer: String,
        /// The archive member's name.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// A manifest, config, index or archive that cannot be understood.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being read.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// Content whose digest is not the one it was asked for by.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The blob or manifest.
        what: String,
        /// The digest asked for.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },
    /// The registry has no such repository, tag or digest.
    #[error("image {reference} not found in registry {registry}")]
    NotFound {
        /// The normalized reference.
        reference: String,
        /// The registry asked.
        registry: String,
    },
    /// A registry request that failed (connection, status, auth).
    #[error("registry {registry}: {message}")]
    Registry {
        /// The registry.
        registry: String,
        /// What went wrong, naming the request.
        message: String,
    },
    /// Something valid that Phobos does not support (schema 1 manifests, ...).
    #[error("{what} is not supported")]
    Unsupported {
        /// What is not supported.
        what: String,
    },
    /// An image is not in the store.
    #[error("image {reference} is not in the store {}", store.display())]
    NoSuchImage {
        /// The normalized reference.
        reference: String,
        /// The store directory.
        store: PathBuf,
    },
    /// An image a live container uses.
    #[error("image {reference} is in use by container(s) {}", containers.join(", "))]
    InUse {
        /// The normalized reference.
        reference: String,
        /// The containers' IDs.
        containers: Vec<String>,
    },
    /// A mount, unmount or mount-API call failed.
    #[error("{action} {}: {source}", path.display())]
    Mount {
        /// What was being done.
        action: String,
        /// The mount point.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// True for errors of the user's input (exit 2), false for runtime
    /// failures (exit 1).
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::InvalidReference { .. })
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn malformed(what: impl Into<String>, reason: impl ToString) -> Self {
        Error::Malformed {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
