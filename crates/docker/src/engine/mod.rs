//! [`DockerEngine`]: the Docker containerizer's calls to the Docker Engine API.
//!
//! Every operation works for a container created by another process (the
//! engine, not this process, is the truth), so `wait`, `stop`, `usage` and
//! friends can run from a fresh `phobos` invocation after a restart.
//!
//! Behaviour worth knowing:
//!
//! - **Connect** checks that the socket exists and that the engine answers,
//!   negotiates the API version (`/version`) and reads the host's memory for
//!   the OOM score adjustment. A dead socket is an error naming its path.
//! - **Images** (§4.3): inspect first, pull only when missing or when
//!   `force_pull` is set. Pull progress goes to a callback. A failed pull is
//!   reported at once with the engine's message (Deimos waited 73 s for a cid
//!   file instead).
//! - **Launch** translates the spec *before* touching the engine (a bad port
//!   creates nothing), creates, starts, and returns once the container runs.
//!   If start fails the created container is removed: nothing is left behind.
//! - **Wait** returns the raw wait status `exit_code << 8` (Mesos's
//!   convention for the Docker containerizer; a container killed by a signal
//!   shows the engine's `128 + signal` exit code, e.g. `137 << 8`). bollard
//!   reports a non-zero exit as `Error::DockerContainerWaitError`; that is
//!   turned back into a status here.
//! - **Stop** sends the image's stop signal (SIGTERM by default), waits the
//!   grace period, then SIGKILLs and says so in [`StopOutcome::killed`].
//! - **Logs** are followed from the engine's log driver into
//!   `<sandbox>/stdout` and `<sandbox>/stderr` (so a log driver without read
//!   support, such as `syslog` or `none`, cannot be followed).
//!
//! Requests that can legitimately block for a long time (wait, log follow)
//! use a client clone with a long timeout; everything else keeps bollard's
//! two-minute default.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::API_DEFAULT_VERSION;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::models::{ContainerInspectResponse, ContainerSummaryStateEnum, ContainerUpdateBody};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, KillContainerOptionsBuilder,
    ListContainersOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt;
use phobos_cgroups::memory;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;

use crate::spec::{DockerResources, DockerRunSpec};
use crate::translate::{
    LABEL_CONTAINER_ID, LABEL_MANAGED, NAME_PREFIX, TranslateError, create_request,
    is_valid_container_id, parse_container_name, resource_fields,
};
use crate::usage::{ContainerUsage, UsageError, UsageReader};

/// The engine's socket on a standard install.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Timeout for ordinary requests, in seconds (bollard's default).
const REQUEST_TIMEOUT_SECS: u64 = 120;
/// Timeout for requests that block until a container exits (about 10 years).
const LONG_TIMEOUT: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

mod containers;
mod images;

/// Errors from the engine-facing half of the Docker containerizer.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No socket file at the path.
    #[error("no docker engine socket at {path}: is dockerd running?")]
    SocketMissing {
        /// The socket path.
        path: PathBuf,
    },
    /// The socket exists but the engine does not answer.
    #[error("docker engine at {path} does not answer: {source}")]
    NotAnswering {
        /// The socket path.
        path: PathBuf,
        /// What bollard saw.
        source: BollardError,
    },
    /// The spec cannot be translated; nothing was sent to the engine.
    #[error(transparent)]
    Translate(#[from] TranslateError),
    /// The image is missing and could not be pulled.
    #[error("failed to pull image {image}: {message}")]
    Pull {
        /// The image reference.
        image: String,
        /// The engine's message.
        message: String,
    },
    /// The engine refused to create the container.
    #[error("failed to create container {name}: {source}")]
    Create {
        /// The container name.
        name: String,
        /// The engine's error.
        source: BollardError,
    },
    /// The engine failed to start the container; it was removed again.
    #[error("failed to start container {name} (removed again): {source}")]
    Start {
        /// The container name.
        name: String,
        /// The engine's error.
        source: BollardError,
    },
    /// No such container.
    #[error("no docker container {target}")]
    NotFound {
        /// The name or id asked for.
        target: String,
    },
    /// Any other engine call failed.
    #[error("docker {op} of {target} failed: {source}")]
    Api {
        /// The operation (`inspect`, `kill`, …).
        op: &'static str,
        /// The container, image or filter concerned.
        target: String,
        /// The engine's error.
        source: BollardError,
    },
    /// The container is not running (no pid to read cgroups from).
    #[error("docker container {target} is not running")]
    NotRunning {
        /// The name or id.
        target: String,
    },
    /// A sandbox log file could not be written.
    #[error("failed to write container log {path}: {source}")]
    Log {
        /// The log file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The log stream broke.
    #[error("failed to follow logs of {target}: {source}")]
    LogStream {
        /// The container.
        target: String,
        /// The engine's error.
        source: BollardError,
    },
    /// Usage could not be read from the cgroups.
    #[error("failed to read usage of {target}: {source}")]
    Usage {
        /// The container.
        target: String,
        /// Why.
        source: UsageError,
    },
    /// A blocking helper task died.
    #[error("background task for {target} failed: {message}")]
    Task {
        /// The container.
        target: String,
        /// The join error.
        message: String,
    },
}

pub(crate) fn is_not_found(e: &BollardError) -> bool {
    matches!(
        e,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

fn api(op: &'static str, target: &str) -> impl FnOnce(BollardError) -> EngineError {
    let target = target.to_owned();
    move |source| {
        if is_not_found(&source) {
            EngineError::NotFound { target }
        } else {
            EngineError::Api { op, target, source }
        }
    }
}

/// What the engine says about itself, read once at connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineInfo {
    /// The negotiated API version, e.g. `1.41`.
    pub api_version: String,
    /// The engine's version, e.g. `20.10.24+dfsg1`.
    pub server_version: String,
    /// `cgroupfs` or `systemd`.
    pub cgroup_driver: String,
    /// `1` or `2`.
    pub cgroup_version: String,
    /// Host memory in bytes.
    pub mem_total: u64,
}

/// One progress message of an image pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullProgress {
    /// The layer id, when the message is about one.
    pub id: Option<String>,
    /// The engine's status text (`Downloading`, `Pull complete`, …).
    pub status: String,
    /// Bytes done, for download/extract messages.
    pub current: Option<i64>,
    /// Bytes in total, for download/extract messages.
    pub total: Option<i64>,
}

/// Whether an image had to be pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSource {
    /// It was present and `force_pull` was not set.
    Present,
    /// It was pulled.
    Pulled,
}

/// A launched container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launched {
    /// `mesos-<id>`.
    pub name: String,
    /// The engine's container id.
    pub docker_id: String,
    /// The container's init pid, if it was still running right after start.
    pub pid: Option<u32>,
    /// Whether the image was pulled.
    pub image: ImageSource,
}

/// How a container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    /// The engine's exit code (`128 + signal` for a signal death).
    pub exit_code: i64,
    /// The raw wait status Mesos reports: `(exit_code & 0xff) << 8`.
    pub wait_status: i32,
    /// Whether the kernel OOM killer hit the container.
    pub oom_killed: bool,
}

impl ExitStatus {
    fn from_code(code: i64, oom_killed: bool) -> Self {
        Self {
            exit_code: code,
            wait_status: ((code & 0xff) as i32) << 8,
            oom_killed,
        }
    }
}

/// The result of [`DockerEngine::stop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopOutcome {
    /// `true` when the grace period ran out and the container was SIGKILLed.
    pub killed: bool,
    /// `true` when the container had already exited before the stop.
    pub already_exited: bool,
    /// How it ended.
    pub status: ExitStatus,
}

/// A Phobos (or Mesos) container found on the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedContainer {
    /// The Mesos container id.
    pub container_id: String,
    /// The engine's id.
    pub docker_id: String,
    /// The Docker name, without the leading `/`.
    pub name: String,
    /// Whether it carries `org.phobos.managed=true` (else it merely has a
    /// `mesos-*` name, e.g. from a Mesos agent sharing the engine).
    pub managed: bool,
    /// Whether it is running.
    pub running: bool,
    /// All its labels.
    pub labels: BTreeMap<String, String>,
}

/// Bytes copied by a log follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogTotals {
    /// Bytes appended to `<sandbox>/stdout`.
    pub stdout_bytes: u64,
    /// Bytes appended to `<sandbox>/stderr`.
    pub stderr_bytes: u64,
}

/// A connection to a Docker engine.
#[derive(Debug, Clone)]
pub struct DockerEngine {
    docker: Docker,
    socket: PathBuf,
    info: EngineInfo,
    usage: UsageReader,
}

/// Normalise an image reference as Mesos does: no tag in the last
/// `/`-segment (and no digest) means `:latest`.
pub fn normalize_image(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') || image.contains('@') {
        image.to_owned()
    } else {
        format!("{image}:latest")
    }
}

impl DockerEngine {
    /// Connect to the engine at `socket` and negotiate the API version.
    pub async fn connect(socket: impl AsRef<Path>) -> Result<Self, EngineError> {
        let path = socket.as_ref().to_path_buf();
        if !path.exists() {
            return Err(EngineError::SocketMissing { path });
        }
        let not_answering = |source| EngineError::NotAnswering {
            path: path.clone(),
            source,
        };
        let docker = Docker::connect_with_unix(
            &path.to_string_lossy(),
            REQUEST_TIMEOUT_SECS,
            API_DEFAULT_VERSION,
        )
        .map_err(not_answering)?;
        let docker = docker
            .with_timeout(Duration::from_secs(10))
            .negotiate_version()
            .await
            .map_err(not_answering)?;
        let sys = docker.info().await.map_err(not_answering)?;
        let docker = docker.with_timeout(Duration::from_secs(REQUEST_TIMEOUT_SECS));
        let v = docker.client_version();
        let info = EngineInfo {
            api_version: format!("{}.{}", v.major_version, v.minor_version),
            server_version: sys.server_version.unwrap_or_default(),
            cgroup_driver: sys.cgroup_driver.map(|d| d.to_string()).unwrap_or_default(),
            cgroup_version: sys
                .cgroup_version
                .map(|d| d.to_string())
                .unwrap_or_default(),
            mem_total: sys
                .mem_total
                .and_then(|m| u64::try_from(m).ok())
                .unwrap_or(0),
        };
        tracing::info!(
            socket = %path.display(),
            api_version = %info.api_version,
            server_version = %info.server_version,
            cgroup_driver = %info.cgroup_driver,
            "connected to docker engine"
        );
        Ok(Self {
            docker,
            socket: path,
            info,
            usage: UsageReader::default(),
        })
    }

    /// What the engine reported at connect.
    pub fn info(&self) -> &EngineInfo {
        &self.info
    }

    /// The underlying bollard client, for calls this type does not wrap.
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// The socket this engine was reached on.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Use another usage reader (e.g. with different proc/fs roots).
    pub fn with_usage_reader(mut self, reader: UsageReader) -> Self {
        self.usage = reader;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_get_latest_like_mesos() {
        assert_eq!(normalize_image("busybox"), "busybox:latest");
        assert_eq!(normalize_image("busybox:local"), "busybox:local");
        assert_eq!(
            normalize_image("registry.int:5000/team/app"),
            "registry.int:5000/team/app:latest"
        );
        assert_eq!(
            normalize_image("registry.int:5000/team/app:1.2"),
            "registry.int:5000/team/app:1.2"
        );
        assert_eq!(normalize_image("app@sha256:abc"), "app@sha256:abc");
    }

    #[test]
    fn wait_status_is_exit_code_shifted() {
        assert_eq!(ExitStatus::from_code(0, false).wait_status, 0);
        assert_eq!(ExitStatus::from_code(3, false).wait_status, 3 << 8);
        assert_eq!(ExitStatus::from_code(137, true).wait_status, 137 << 8);
        assert!(ExitStatus::from_code(137, true).oom_killed);
        assert_eq!(ExitStatus::from_code(-1, false).wait_status, 255 << 8);
    }

    #[tokio::test]
    async fn missing_socket_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("docker.sock");
        let err = DockerEngine::connect(&path).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "no docker engine socket at {}: is dockerd running?",
                path.display()
            )
        );
    }

    #[tokio::test]
    async fn dead_socket_is_not_answering() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("docker.sock");
        // A socket file with nobody listening.
        let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        drop(listener);
        let err = DockerEngine::connect(&path).await.unwrap_err();
        assert!(
            matches!(err, EngineError::NotAnswering { path: ref p, .. } if p == &path),
            "{err}"
        );
        assert!(err.to_string().contains(&path.display().to_string()));
    }
}
