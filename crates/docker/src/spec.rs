//! What a Docker container launch asks for, in Mesos's terms.
//!
//! [`DockerRunSpec`] is this crate's own input type, shaped after the Mesos
//! messages a Docker-containerized task carries: `CommandInfo` (shell, value,
//! arguments, environment), `ContainerInfo` (hostname, volumes), `DockerInfo`
//! (image, network, port mappings, privileged, parameters, force_pull) and the
//! task's `cpus`, `mem` and `ports` resources (requests and limits, as in
//! Mesos ≥ 1.9). It deliberately does not depend on `phobos-core`; the
//! containerizer adapts its own `ContainerConfig` into it.
//!
//! Nothing here talks to the engine: see [`crate::translate`] for the pure
//! mapping onto the Engine API's container-create body.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where the sandbox is mounted inside the container unless told otherwise
/// (the Mesos agent flag `--sandbox_directory`).
pub const DEFAULT_SANDBOX_DIRECTORY: &str = "/mnt/mesos/sandbox";

/// `CommandInfo` as far as the Docker containerizer uses it.
///
/// With `shell = true` the container runs `/bin/sh -c <value>` (the image's
/// ENTRYPOINT and CMD are replaced and `arguments` are ignored, as in Mesos).
/// With `shell = false` the image's ENTRYPOINT is kept and `value` (if set)
/// followed by `arguments` replace the image's CMD; with neither, the image's
/// CMD runs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DockerCommand {
    /// `CommandInfo.shell`.
    pub shell: bool,
    /// `CommandInfo.value`.
    pub value: Option<String>,
    /// `CommandInfo.arguments`.
    pub arguments: Vec<String>,
}

impl DockerCommand {
    /// A shell command (`shell = true`): `/bin/sh -c <value>`.
    pub fn shell(value: impl Into<String>) -> Self {
        Self {
            shell: true,
            value: Some(value.into()),
            arguments: Vec::new(),
        }
    }

    /// An argv command (`shell = false`) replacing the image's CMD.
    pub fn argv<I, S>(arguments: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            shell: false,
            value: None,
            arguments: arguments.into_iter().map(Into::into).collect(),
        }
    }

    /// No command at all: the image's ENTRYPOINT and CMD run unchanged.
    pub fn image_default() -> Self {
        Self::default()
    }
}

/// `DockerInfo.network`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DockerNetwork {
    /// `--net host`, the Mesos default on Linux.
    #[default]
    Host,
    /// `--net bridge`.
    Bridge,
    /// `--net none`.
    None,
    /// A user-defined network, by name (Mesos's `USER` with one `NetworkInfo`).
    User(String),
}

impl DockerNetwork {
    /// The Engine API's `HostConfig.NetworkMode` value.
    pub fn mode(&self) -> &str {
        match self {
            Self::Host => "host",
            Self::Bridge => "bridge",
            Self::None => "none",
            Self::User(name) => name,
        }
    }

    /// Whether port mappings make sense on this network (bridge and user networks only).
    pub fn supports_port_mappings(&self) -> bool {
        matches!(self, Self::Bridge | Self::User(_))
    }
}

/// A transport protocol of a port mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PortProtocol {
    /// TCP, the default.
    #[default]
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl PortProtocol {
    /// The lower-case name the Engine API uses in `<port>/<proto>` keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Sctp => "sctp",
        }
    }
}

/// `DockerInfo.PortMapping`: publish `container_port` on `host_port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortMapping {
    /// The host port; must lie within the task's offered `ports` ranges.
    pub host_port: u16,
    /// The port inside the container.
    pub container_port: u16,
    /// The protocol, TCP by default.
    pub protocol: PortProtocol,
}

/// An inclusive range of the task's `ports` resource, e.g. `[31000-31005]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// First port of the range.
    pub begin: u16,
    /// Last port of the range (inclusive).
    pub end: u16,
}

impl PortRange {
    /// Whether `port` lies in this range.
    pub fn contains(&self, port: u16) -> bool {
        self.begin <= port && port <= self.end
    }
}

/// `ContainerInfo.Volume` of a host path.
///
/// A relative `host_path` is taken relative to the sandbox on the host, and a
/// relative `container_path` relative to the sandbox inside the container
/// (`sandbox_directory`), as Mesos does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// Path on the host (absolute, or relative to the sandbox).
    pub host_path: String,
    /// Path in the container (absolute, or relative to the mapped sandbox).
    pub container_path: String,
    /// Mount read-only (`Volume.mode = RO`).
    pub read_only: bool,
}

/// A memory limit: a number of bytes, or explicitly unlimited (Mesos's
/// infinite `mem` limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryLimit {
    /// At most this many bytes.
    Bytes(u64),
    /// No limit.
    Unlimited,
}

/// The task's cpu and memory requests and limits.
///
/// `cpus_limit` may be `f64::INFINITY` (no CFS quota).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DockerResources {
    /// `cpus` request: becomes `cpu.shares`.
    pub cpus_request: Option<f64>,
    /// `cpus` limit: becomes the CFS quota when finite.
    pub cpus_limit: Option<f64>,
    /// `mem` request in bytes.
    pub mem_request: Option<u64>,
    /// `mem` limit.
    pub mem_limit: Option<MemoryLimit>,
    /// The agent flag `--cgroups_enable_cfs`: derive a CFS quota from the
    /// request when no limit is given.
    pub cgroups_enable_cfs: bool,
}

/// Everything needed to create a Docker container for a Mesos container.
#[derive(Debug, Clone, PartialEq)]
pub struct DockerRunSpec {
    /// The Mesos `ContainerID` value; the Docker name is `mesos-<id>`.
    pub container_id: String,
    /// `ContainerInfo.DockerInfo.image`.
    pub image: String,
    /// The command to run.
    pub command: DockerCommand,
    /// Environment, in order (agent env first, then `CommandInfo.environment`;
    /// a later entry for the same name wins).
    pub env: Vec<(String, String)>,
    /// Working directory; `None` keeps the image's WORKDIR (Deimos issue #49).
    pub workdir: Option<String>,
    /// `ContainerInfo.hostname`; not allowed with the host network.
    pub hostname: Option<String>,
    /// Cpu and memory.
    pub resources: DockerResources,
    /// `DockerInfo.network`.
    pub network: DockerNetwork,
    /// `DockerInfo.port_mappings`.
    pub port_mappings: Vec<PortMapping>,
    /// The task's `ports` resource ranges; every mapped host port must be inside.
    pub offered_ports: Vec<PortRange>,
    /// `ContainerInfo.volumes` (host paths).
    pub volumes: Vec<Volume>,
    /// The sandbox on the host (`<work_dir>/…/runs/<id>`).
    pub sandbox: PathBuf,
    /// Where the sandbox appears inside the container.
    pub sandbox_directory: String,
    /// `DockerInfo.parameters`, in order, mapped by [`crate::params`].
    pub parameters: Vec<(String, String)>,
    /// `DockerInfo.privileged`.
    pub privileged: bool,
    /// `DockerInfo.force_pull_image`.
    pub force_pull: bool,
    /// Extra container labels (the Phobos labels are added by the translation).
    pub labels: BTreeMap<String, String>,
    /// The bound of the engine's own log (the `logrotate` container
    /// logger), unless the parameters choose a log driver or options;
    /// `None` (the `sandbox` logger) leaves the engine's default.
    pub engine_log: Option<EngineLogBound>,
}

/// The engine's `json-file` log driver's `max-size` and `max-file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineLogBound {
    /// Bytes in one file (both streams share it).
    pub max_size: u64,
    /// Files kept, the live one included.
    pub max_files: u32,
}

impl EngineLogBound {
    /// The engine keeps one file for both streams: one of its files may
    /// hold what all the sandbox files hold,
    /// `(max_stdout_size + max_stderr_size) × max_files`, and it keeps two,
    /// so the engine's log holds at most twice the sandbox copy's bound
    /// (its JSON framing and timestamps take a share). Few, big engine
    /// files, because a follower of the engine's log can stall at the
    /// engine's rotation (Docker before 23.0); the copy is then completed
    /// from its checkpoint by `logs`, `wait` or the container's end.
    pub fn of(rotation: &phobos_core::LogRotation) -> Self {
        Self {
            max_size: rotation
                .max_stdout_size
                .saturating_add(rotation.max_stderr_size)
                .saturating_mul(u64::from(rotation.max_files.max(1))),
            max_files: 2,
        }
    }
}

impl DockerRunSpec {
    /// A spec with the given id, image, command and sandbox, and defaults for
    /// the rest: host network, no resources, sandbox at
    /// [`DEFAULT_SANDBOX_DIRECTORY`].
    pub fn new(
        container_id: impl Into<String>,
        image: impl Into<String>,
        command: DockerCommand,
        sandbox: impl Into<PathBuf>,
    ) -> Self {
        Self {
            container_id: container_id.into(),
            image: image.into(),
            command,
            env: Vec::new(),
            workdir: None,
            hostname: None,
            resources: DockerResources::default(),
            network: DockerNetwork::default(),
            port_mappings: Vec::new(),
            offered_ports: Vec::new(),
            volumes: Vec::new(),
            sandbox: sandbox.into(),
            sandbox_directory: DEFAULT_SANDBOX_DIRECTORY.to_owned(),
            parameters: Vec::new(),
            privileged: false,
            force_pull: false,
            labels: BTreeMap::new(),
            engine_log: None,
        }
    }
}
