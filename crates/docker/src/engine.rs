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

    /// Whether `image` is present locally.
    pub async fn image_present(&self, image: &str) -> Result<bool, EngineError> {
        match self.docker.inspect_image(&normalize_image(image)).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(source) => Err(EngineError::Api {
                op: "image inspect",
                target: image.to_owned(),
                source,
            }),
        }
    }

    /// Make `image` available: inspect first, pull only if missing or `force_pull`.
    pub async fn ensure_image<F>(
        &self,
        image: &str,
        force_pull: bool,
        mut progress: F,
    ) -> Result<ImageSource, EngineError>
    where
        F: FnMut(&PullProgress) + Send,
    {
        let reference = normalize_image(image);
        if !force_pull && self.image_present(&reference).await? {
            return Ok(ImageSource::Present);
        }
        tracing::info!(image = %reference, force_pull, "pulling image");
        let options = CreateImageOptionsBuilder::new()
            .from_image(&reference)
            .build();
        let pull_failed = |message: String| EngineError::Pull {
            image: reference.clone(),
            message,
        };
        let mut stream = self.docker.create_image(Some(options), None, None);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| match e {
                BollardError::DockerResponseServerError { message, .. } => pull_failed(message),
                BollardError::DockerStreamError { error } => pull_failed(error),
                other => pull_failed(other.to_string()),
            })?;
            if let Some(detail) = info.error_detail {
                return Err(pull_failed(detail.message.unwrap_or_default()));
            }
            let (current, total) = info
                .progress_detail
                .map(|d| (d.current, d.total))
                .unwrap_or((None, None));
            progress(&PullProgress {
                id: info.id,
                status: info.status.unwrap_or_default(),
                current,
                total,
            });
        }
        // A pull can "succeed" without producing the reference (e.g. a
        // platform mismatch); make sure it is there now.
        if self.image_present(&reference).await? {
            Ok(ImageSource::Pulled)
        } else {
            Err(pull_failed("image still missing after pull".to_owned()))
        }
    }

    /// Create and start the container for `spec`; returns once it runs.
    ///
    /// The spec is translated before the engine is contacted, so a spec
    /// error creates nothing; a failed start removes the created container.
    #[tracing::instrument(skip_all, fields(container_id = %spec.container_id))]
    pub async fn launch<F>(
        &self,
        spec: &DockerRunSpec,
        progress: F,
    ) -> Result<Launched, EngineError>
    where
        F: FnMut(&PullProgress) + Send,
    {
        let request = create_request(spec, self.info.mem_total)?;
        let image = self
            .ensure_image(&spec.image, spec.force_pull, progress)
            .await?;
        let name = request.name;
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        let created = self
            .docker
            .create_container(Some(options), request.body)
            .await
            .map_err(|source| EngineError::Create {
                name: name.clone(),
                source,
            })?;
        tracing::debug!(docker_id = %created.id, %name, "container created");
        if let Err(source) = self.docker.start_container(&created.id, None).await {
            let remove = RemoveContainerOptionsBuilder::new().force(true).build();
            if let Err(e) = self
                .docker
                .remove_container(&created.id, Some(remove))
                .await
            {
                tracing::warn!(%name, error = %e, "failed to remove container after failed start");
            }
            return Err(EngineError::Start { name, source });
        }
        let pid = self.pid(&created.id).await?;
        tracing::info!(docker_id = %created.id, %name, ?pid, "container running");
        Ok(Launched {
            name,
            docker_id: created.id,
            pid,
            image,
        })
    }

    /// Inspect a container by name or id.
    pub async fn inspect(&self, target: &str) -> Result<ContainerInspectResponse, EngineError> {
        self.docker
            .inspect_container(target, None)
            .await
            .map_err(api("inspect", target))
    }

    /// The container's init pid, `None` when it is not running.
    pub async fn pid(&self, target: &str) -> Result<Option<u32>, EngineError> {
        let info = self.inspect(target).await?;
        let state = info.state.unwrap_or_default();
        Ok(if state.running == Some(true) {
            state
                .pid
                .and_then(|p| u32::try_from(p).ok())
                .filter(|p| *p > 0)
        } else {
            None
        })
    }

    /// Block until the container exits; works for containers started by
    /// another process and returns at once for one that already exited.
    pub async fn wait(&self, target: &str) -> Result<ExitStatus, EngineError> {
        let docker = self.docker.clone().with_timeout(LONG_TIMEOUT);
        let mut stream = docker.wait_container(target, None);
        let code = match stream.next().await {
            Some(Ok(response)) => response.status_code,
            // bollard turns a non-zero exit into an error; it is a status to us.
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => code,
            Some(Err(source)) => return Err(api("wait", target)(source)),
            None => {
                return Err(EngineError::Api {
                    op: "wait",
                    target: target.to_owned(),
                    source: BollardError::DockerStreamError {
                        error: "wait stream ended without a status".to_owned(),
                    },
                });
            }
        };
        // Inspect for the OOM flag; the container may be gone if someone
        // removed it right after exit, which leaves the code we have.
        let oom = match self.inspect(target).await {
            Ok(info) => info.state.and_then(|s| s.oom_killed).unwrap_or(false),
            Err(EngineError::NotFound { .. }) => false,
            Err(e) => return Err(e),
        };
        Ok(ExitStatus::from_code(code, oom))
    }

    /// Send `signal` (e.g. `SIGTERM`, `SIGKILL`, `15`) to the container.
    pub async fn kill(&self, target: &str, signal: &str) -> Result<(), EngineError> {
        let options = KillContainerOptionsBuilder::new().signal(signal).build();
        self.docker
            .kill_container(target, Some(options))
            .await
            .map_err(api("kill", target))
    }

    /// Stop the container: its stop signal, then SIGKILL after `grace`.
    ///
    /// Returns how it ended and whether SIGKILL was needed.
    pub async fn stop(&self, target: &str, grace: Duration) -> Result<StopOutcome, EngineError> {
        let info = self.inspect(target).await?;
        let running = info.state.as_ref().is_some_and(|s| s.running == Some(true));
        if !running {
            let status = self.wait(target).await?;
            return Ok(StopOutcome {
                killed: false,
                already_exited: true,
                status,
            });
        }
        if !grace.is_zero() {
            let signal = info
                .config
                .and_then(|c| c.stop_signal)
                .unwrap_or_else(|| "SIGTERM".to_owned());
            match self.kill(target, &signal).await {
                Ok(()) | Err(EngineError::Api { .. }) => {}
                Err(e) => return Err(e),
            }
            if let Ok(status) = tokio::time::timeout(grace, self.wait(target)).await {
                return Ok(StopOutcome {
                    killed: false,
                    already_exited: false,
                    status: status?,
                });
            }
            tracing::info!(%target, ?grace, "grace period over, sending SIGKILL");
        }
        match self.kill(target, "SIGKILL").await {
            // 409: it exited between the timeout and the kill.
            Ok(())
            | Err(EngineError::Api {
                source:
                    BollardError::DockerResponseServerError {
                        status_code: 409, ..
                    },
                ..
            }) => {}
            Err(e) => return Err(e),
        }
        let status = self.wait(target).await?;
        Ok(StopOutcome {
            killed: true,
            already_exited: false,
            status,
        })
    }

    /// Remove the container (forcibly when `force`). Returns `false` when
    /// there was no such container.
    pub async fn remove(&self, target: &str, force: bool) -> Result<bool, EngineError> {
        let options = RemoveContainerOptionsBuilder::new().force(force).build();
        match self.docker.remove_container(target, Some(options)).await {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(source) => Err(EngineError::Api {
                op: "remove",
                target: target.to_owned(),
                source,
            }),
        }
    }

    /// Every container that carries the Phobos label or a `mesos-<id>` name,
    /// running or not. Names whose id part is invalid (see
    /// [`parse_container_name`]) and `.executor` containers are skipped.
    pub async fn list(&self) -> Result<Vec<ListedContainer>, EngineError> {
        let mut seen: HashSet<String> = HashSet::new();
        let mut out = Vec::new();
        let filters = [
            ("label", format!("{LABEL_MANAGED}=true")),
            ("name", NAME_PREFIX.to_owned()),
        ];
        for (key, value) in filters {
            let map = HashMap::from([(key, vec![value.clone()])]);
            let options = ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&map)
                .build();
            let summaries = self
                .docker
                .list_containers(Some(options))
                .await
                .map_err(api("list", &value))?;
            for s in summaries {
                let Some(docker_id) = s.id.clone() else {
                    continue;
                };
                if !seen.insert(docker_id.clone()) {
                    continue;
                }
                let name = s
                    .names
                    .as_ref()
                    .and_then(|n| n.first())
                    .map(|n| n.trim_start_matches('/').to_owned())
                    .unwrap_or_default();
                let labels: BTreeMap<String, String> =
                    s.labels.clone().unwrap_or_default().into_iter().collect();
                let managed = labels.get(LABEL_MANAGED).map(String::as_str) == Some("true");
                let labelled_id = labels
                    .get(LABEL_CONTAINER_ID)
                    .filter(|id| managed && is_valid_container_id(id))
                    .cloned();
                // The name filter is a substring match: parse to be sure.
                let Some(container_id) = labelled_id.or_else(|| parse_container_name(&name)) else {
                    tracing::debug!(%name, "skipping container with an invalid mesos name");
                    continue;
                };
                let running = s.state == Some(ContainerSummaryStateEnum::RUNNING);
                out.push(ListedContainer {
                    container_id,
                    docker_id,
                    name,
                    managed,
                    running,
                    labels,
                });
            }
        }
        out.sort_by(|a, b| a.container_id.cmp(&b.container_id));
        Ok(out)
    }

    /// The listed containers whose ids are not in `known` (Mesos's orphans,
    /// which `--docker_kill_orphans` stops and removes).
    pub async fn orphans(
        &self,
        known: &HashSet<String>,
    ) -> Result<Vec<ListedContainer>, EngineError> {
        Ok(self
            .list()
            .await?
            .into_iter()
            .filter(|c| !known.contains(&c.container_id))
            .collect())
    }

    /// Change cpu and memory of a running container (§4.5).
    ///
    /// Shares and quota follow the create-time table; an infinite cpu limit
    /// removes the quota. When memory is set, the swap limit is moved with
    /// it to twice the memory (the engine's create-time default), since the
    /// engine refuses a memory limit above the existing swap limit. The OOM
    /// score adjustment cannot be changed on a running container.
    pub async fn update(
        &self,
        target: &str,
        resources: &DockerResources,
        raise_memory_only: bool,
    ) -> Result<(), EngineError> {
        let fields = resource_fields(resources, self.info.mem_total)?;
        let quota = match resources.cpus_limit {
            Some(l) if l.is_infinite() => Some(-1),
            _ => fields.cpu_quota,
        };
        let mut memory = fields.memory;
        if let (true, Some(wanted)) = (raise_memory_only, memory) {
            // Lowering the hard limit below what the task uses makes the
            // kernel reclaim and then OOM-kill it: as Mesos, only raise.
            let current = self
                .inspect(target)
                .await?
                .host_config
                .and_then(|hc| hc.memory)
                .and_then(|m| u64::try_from(m).ok())
                .filter(|m| *m > 0)
                .map_or(memory::Limit::Unlimited, memory::Limit::Bytes);
            let wanted = memory::Limit::Bytes(u64::try_from(wanted).unwrap_or(0));
            if memory::next_hard_limit(Some(current), wanted).is_none() {
                memory = None;
            }
        }
        let body = ContainerUpdateBody {
            cpu_shares: fields.cpu_shares,
            cpu_quota: quota,
            memory,
            memory_swap: memory.map(|m| m.saturating_mul(2)),
            memory_reservation: fields.memory_reservation,
            ..Default::default()
        };
        self.docker
            .update_container(target, body)
            .await
            .map_err(api("update", target))
    }

    /// Cpu and memory usage from the container's cgroups, plus its limits
    /// as the engine knows them.
    pub async fn usage(&self, target: &str) -> Result<ContainerUsage, EngineError> {
        let info = self.inspect(target).await?;
        let state = info.state.unwrap_or_default();
        let pid = state
            .pid
            .and_then(|p| u32::try_from(p).ok())
            .filter(|p| *p > 0 && state.running == Some(true))
            .ok_or_else(|| EngineError::NotRunning {
                target: target.to_owned(),
            })?;
        let reader = self.usage.clone();
        let mut usage = tokio::task::spawn_blocking(move || reader.read(pid))
            .await
            .map_err(|e| EngineError::Task {
                target: target.to_owned(),
                message: e.to_string(),
            })?
            .map_err(|source| EngineError::Usage {
                target: target.to_owned(),
                source,
            })?;
        if let Some(hc) = info.host_config {
            usage.cpus_soft_limit = hc.cpu_shares.filter(|s| *s > 0).map(|s| s as f64 / 1024.0);
            let period = hc.cpu_period.filter(|p| *p > 0).unwrap_or(100_000);
            usage.cpus_limit = hc
                .cpu_quota
                .filter(|q| *q > 0)
                .map(|q| q as f64 / period as f64);
            usage.mem_limit_bytes = hc
                .memory
                .filter(|m| *m > 0)
                .and_then(|m| u64::try_from(m).ok());
            usage.mem_soft_limit_bytes = hc
                .memory_reservation
                .filter(|m| *m > 0)
                .and_then(|m| u64::try_from(m).ok());
        }
        Ok(usage)
    }

    /// Follow the container's stdout and stderr into `<sandbox>/stdout` and
    /// `<sandbox>/stderr` (appending) until it exits.
    ///
    /// The files are opened before this returns, so a bad sandbox is reported
    /// at once; the returned task finishes when the container's output ends.
    /// The engine keeps the whole log, so following from a fresh process
    /// replays it from the start: a restarted follower should truncate the
    /// files first (or the caller keeps one follower per container).
    pub async fn follow_logs(
        &self,
        target: &str,
        sandbox: &Path,
    ) -> Result<JoinHandle<Result<LogTotals, EngineError>>, EngineError> {
        // The sandbox is the container's: its files are opened beneath it,
        // never through a symlink the container put there.
        let open = |name: &str| {
            let path = sandbox.join(name);
            let opened = phobos_core::SafeDir::open_trusted(sandbox)
                .and_then(|dir| dir.append_file(name, 0o644));
            async move {
                opened
                    .map(|f| (tokio::fs::File::from_std(f), path.clone()))
                    .map_err(|e| EngineError::Log {
                        path,
                        source: e.into(),
                    })
            }
        };
        let (mut stdout, stdout_path) = open("stdout").await?;
        let (mut stderr, stderr_path) = open("stderr").await?;
        let docker = self.docker.clone().with_timeout(LONG_TIMEOUT);
        let target = target.to_owned();
        Ok(tokio::spawn(async move {
            let options = LogsOptionsBuilder::new()
                .follow(true)
                .stdout(true)
                .stderr(true)
                .build();
            let mut stream = docker.logs(&target, Some(options));
            let mut totals = LogTotals::default();
            while let Some(item) = stream.next().await {
                let output = item.map_err(|source| EngineError::LogStream {
                    target: target.clone(),
                    source,
                })?;
                let (file, path, count, bytes) = match &output {
                    LogOutput::StdErr { message } => {
                        (&mut stderr, &stderr_path, &mut totals.stderr_bytes, message)
                    }
                    LogOutput::StdOut { message } | LogOutput::Console { message } => {
                        (&mut stdout, &stdout_path, &mut totals.stdout_bytes, message)
                    }
                    LogOutput::StdIn { .. } => continue,
                };
                file.write_all(bytes)
                    .await
                    .map_err(|source| EngineError::Log {
                        path: path.clone(),
                        source,
                    })?;
                *count += bytes.len() as u64;
            }
            for (file, path) in [(&mut stdout, &stdout_path), (&mut stderr, &stderr_path)] {
                file.flush().await.map_err(|source| EngineError::Log {
                    path: path.clone(),
                    source,
                })?;
            }
            Ok(totals)
        }))
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
