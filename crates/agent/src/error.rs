//! Errors: [`ApiError`] is one HTTP answer (a Mesos status code and a
//! one-line message naming the problem and the value); [`AgentError`] is
//! why the agent could not start or serve.

use std::path::PathBuf;

/// A refused or failed API request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, message)
    }

    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(413, message)
    }

    pub fn unsupported_media(message: impl Into<String>) -> Self {
        Self::new(415, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }

    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(501, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, message)
    }
}

/// Why the agent cannot start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("invalid --listen {0:?}: expected unix:PATH or tcp:HOST:PORT")]
    BadListen(String),
    #[error("--listen {0} needs --token-file: TCP is served only with a bearer token")]
    TcpWithoutToken(String),
    #[error("cannot read the token file {path}: {source}")]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("token file {0} is empty")]
    EmptyToken(PathBuf),
    #[error("token file {path} is readable by others (mode {mode:o}): it must be 0600 or stricter")]
    TokenFileMode { path: PathBuf, mode: u32 },
    #[error("socket {0} is in use by a running agent")]
    SocketInUse(PathBuf),
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    #[error("cannot listen on {what}: {source}")]
    Listen {
        what: String,
        source: std::io::Error,
    },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Door(#[from] phobos_runtime::RuntimeError),
}
