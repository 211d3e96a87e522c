//! [`DockerContainerizer`]: Docker containers with a runtime-directory record,
//! so every `phobos` face (CLI, ECP) can launch, wait, destroy, meter and
//! recover them from a fresh process, like the Mesos containerizer's.
//!
//! # The record
//!
//! Each Docker container has a directory in the *same* runtime directory as
//! the Mesos containerizer's, under its own sub-tree:
//!
//! ```text
//! <runtime_dir>/docker/containers/<id>/
//!     config        the ContainerConfig as launched (as for Mesos containers)
//!     docker        DockerRecord: image, engine name and id, network, command kind
//!     state         RUNNING, then TERMINATED
//!     termination   the final Termination
//!     follower.lock held by the detached log follower (see below)
//!     log_copy      the checkpoint of the sandbox copy of the output
//!     log_copy.lock held by whoever writes that copy
//! ```
//!
//! The sub-tree is the ownership marker of Mesos's composing containerizer
//! (§5): a record under `docker/` belongs to this containerizer, one under
//! `containers/` to the Mesos containerizer. Keeping them apart means the
//! Mesos containerizer's recovery (which treats a record without a live init
//! helper as an interrupted launch) never sees a Docker record; the two
//! stores share one ID space because every launch reserves its ID first in
//! the runtime layer's one namespace (`phobos_runtime::reserve`).
//!
//! # What the engine and the record each know
//!
//! The engine is the truth about a container while it exists; the record is
//! the truth after it: the first process that sees the container end (a
//! `wait`, a `destroy`, or `recover`) makes sure `<sandbox>/stdout` and
//! `<sandbox>/stderr` hold the container's whole output, writes the
//! termination, and removes the container from the engine — at once by
//! default, or, with a `docker_remove_delay`, later: [`DockerContainerizer::remove_expired`]
//! (run by `recover`, `state --rm` and every Docker launch) removes ended
//! containers whose delay has passed. Every step holds the record's
//! operation lock, so a `wait` racing a `destroy` reports the destroy's
//! termination.
//!
//! # Logs
//!
//! The engine keeps a container's log (bounded by the `logrotate` logger).
//! By default ([`DockerLaunch::append_logs`] off) every writer — a
//! foreground follower, a detached one, `refresh_logs`, and the end of the
//! container — copies it into the sandbox files in turn, through the
//! rotating writer, from a checkpoint in the record ([`log_copy`]): none
//! writes a line another wrote, whoever runs or was killed. When the
//! files are shared with another writer (a Mesos agent appends our ECP
//! calls' log lines to them), one detached follower appends instead, nothing
//! replays, and the end of the container waits for the follower (which
//! holds `follower.lock`) to drain the log before removing the container.
//!
//! The container also carries the label `org.phobos.runtime-dir`, so that
//! `recover` only stops and removes unknown `mesos-*` containers that this
//! runtime directory launched; those of other runtime directories (other
//! Phobos instances sharing the engine) and unlabelled ones (a Mesos agent's)
//! are reported as foreign and left alone.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt;
use phobos_core::store::{CONFIG_FILE, TERMINATION_FILE};
use phobos_core::{
    BoxError, ContainerConfig, ContainerDir, ContainerId, ContainerState, Limit, Operation,
    Outcome, Reason, ResourceStatistics, Resources, RuntimeStore, StoreError, TaskState,
    Termination, WaitStatus,
};
use serde::{Deserialize, Serialize};

use crate::engine::{DockerEngine, EngineError, ExitStatus, PullProgress};
use crate::spec::{
    DockerCommand, DockerNetwork, DockerResources, DockerRunSpec, EngineLogBound, MemoryLimit,
    PortMapping, PortRange, Volume,
};
use crate::translate::LABEL_MANAGED;

mod cleanup;
mod lifecycle;
pub mod log_copy;
mod logs;
mod observe;

/// The label naming the runtime directory that launched a container.
pub const LABEL_RUNTIME_DIR: &str = "org.phobos.runtime-dir";

/// The record file with the Docker-specific facts.
pub const DOCKER_FILE: &str = "docker";

/// Marker in a record: its ended container was removed from the engine.
pub const ENGINE_REMOVED_MARKER: &str = "engine_removed";

/// A record's lock file, held (exclusively) by the detached log follower of
/// an appending record for as long as it copies output.
pub const FOLLOWER_LOCK_FILE: &str = "follower.lock";

/// How long the end of an appending container waits for its follower to
/// drain the log before removing the container.
const FOLLOWER_DRAIN: Duration = Duration::from_secs(10);

/// The sub-directory of the runtime directory holding Docker records.
pub const STORE_SUBDIR: &str = "docker";

/// Errors of the Docker containerizer.
#[derive(Debug, thiserror::Error)]
pub enum ContainerizerError {
    /// An engine call failed (its message names the container and the call).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The runtime directory could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A record with this ID exists already.
    #[error("container '{0}' already exists")]
    AlreadyExists(ContainerId),
    /// The sandbox exists already or cannot be made without following a
    /// symlink (see [`phobos_core::sandbox`]).
    #[error(transparent)]
    NewSandbox(#[from] phobos_core::sandbox::SandboxError),
    /// The sandbox could not be prepared or written.
    #[error("failed to {op} {}: {source}", path.display())]
    Sandbox {
        /// What was being done.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The record lacks its `docker` or `config` file.
    #[error("incomplete docker record for container '{0}'")]
    Incomplete(ContainerId),
    /// The container is not running (usage, update and kill need it running).
    #[error("container '{0}' is not running")]
    NotRunning(ContainerId),
    /// A URI of the task could not be fetched into the sandbox.
    #[error(transparent)]
    Fetch(#[from] phobos_fetch::FetchError),
}

type Result<T> = std::result::Result<T, ContainerizerError>;

/// The containerizer's settings (the `docker_*` configuration keys).
#[derive(Debug, Clone)]
pub struct DockerSettings {
    /// `docker_socket`.
    pub socket: PathBuf,
    /// `docker_stop_timeout`: the grace period between the stop signal and SIGKILL.
    pub stop_timeout: Duration,
    /// `docker_kill_orphans`.
    pub kill_orphans: bool,
    /// `sandbox_directory`: where the sandbox appears inside containers.
    pub sandbox_directory: String,
    /// `cgroups_enable_cfs`.
    pub cgroups_enable_cfs: bool,
    /// `docker_remove_delay`: how long an ended container stays in the
    /// engine (zero: removed when its end is recorded).
    pub remove_delay: Duration,
    /// `work_dir`: Phobos's own sandboxes are `<work_dir>/containers/<id>`,
    /// made fresh beneath it without following symlinks.
    pub work_dir: PathBuf,
}

/// The Docker-specific part of a launch (`ContainerInfo.DockerInfo`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DockerLaunch {
    /// The image reference.
    pub image: String,
    /// `None`: run the config's command; `Some(cmd)`: run this instead
    /// (e.g. [`DockerCommand::image_default`]).
    pub command: Option<DockerCommand>,
    /// The network.
    pub network: DockerNetwork,
    /// Published ports.
    pub port_mappings: Vec<PortMapping>,
    /// Host ports the mappings may use; empty means any.
    pub offered_ports: Vec<PortRange>,
    /// Host-path volumes.
    pub volumes: Vec<Volume>,
    /// `DockerInfo.parameters`.
    pub parameters: Vec<(String, String)>,
    /// `DockerInfo.privileged`.
    pub privileged: bool,
    /// `DockerInfo.force_pull_image`.
    pub force_pull: bool,
    /// Append the container's output to the sandbox files (which others,
    /// e.g. a Mesos agent logging our ECP calls, also append to) through
    /// one detached follower, instead of replaying the engine's log over
    /// them from offset 0 on demand.
    pub append_logs: bool,
    /// The task's kill policy grace period; `None` uses `docker_stop_timeout`.
    pub stop_grace: Option<Duration>,
}

/// The `docker` file of a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerRecord {
    /// The image as asked for.
    pub image: String,
    /// The engine's name, `mesos-<id>`.
    pub name: String,
    /// The engine's container id.
    pub docker_id: String,
    /// The network mode.
    pub network: String,
    /// Whether the image's own ENTRYPOINT/CMD run (no command was given).
    #[serde(default)]
    pub image_command: bool,
    /// [`DockerLaunch::append_logs`].
    #[serde(default)]
    pub append_logs: bool,
    /// [`DockerLaunch::stop_grace`], in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_ms: Option<u64>,
}

/// One Docker container as `ps` and `status` show it.
#[derive(Debug, Clone, Serialize)]
pub struct DockerSummary {
    /// The container ID.
    pub id: ContainerId,
    /// Always `docker`.
    pub containerizer: &'static str,
    /// RUNNING or TERMINATED.
    pub state: ContainerState,
    /// The container's init pid on the host while it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// When it was launched.
    pub started_at: f64,
    /// The command, for listings.
    pub command: String,
    /// The image.
    pub image: String,
    /// The engine's name.
    pub name: String,
    /// The sandbox on the host.
    pub sandbox: PathBuf,
    /// Requests and limits as launched (or last updated).
    #[serde(skip_serializing_if = "Resources::is_empty")]
    pub resources: Resources,
    /// How it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub termination: Option<Termination>,
}

/// What [`DockerContainerizer::recover`] found and did.
#[derive(Debug, Default, Serialize)]
pub struct DockerRecoverReport {
    /// Running containers re-adopted.
    pub recovered: Vec<ContainerId>,
    /// Containers that had ended; their termination was recorded.
    pub finalized: Vec<ContainerId>,
    /// Unknown containers of this runtime directory, stopped and removed.
    pub orphans_killed: Vec<String>,
    /// `mesos-*` containers of other runtime directories or of Mesos, left alone.
    pub foreign: Vec<String>,
    /// Failures, one line each.
    pub errors: Vec<String>,
}

/// The Docker containerizer over a runtime directory.
#[derive(Debug, Clone)]
pub struct DockerContainerizer {
    runtime_dir: PathBuf,
    store: RuntimeStore,
    settings: DockerSettings,
    /// Told how the downloads of a launch's URIs go.
    fetch_progress: Option<phobos_fetch::ProgressSink>,
}

impl DockerContainerizer {
    /// A containerizer keeping its records under `<runtime_dir>/docker`.
    pub fn new(runtime_dir: &Path, settings: DockerSettings) -> Self {
        Self {
            runtime_dir: runtime_dir.to_owned(),
            store: RuntimeStore::new(runtime_dir.join(STORE_SUBDIR)),
            settings,
            fetch_progress: None,
        }
    }

    /// Reports the downloads of later launches' URIs to `progress`.
    pub fn set_fetch_progress(&mut self, progress: phobos_fetch::ProgressSink) {
        self.fetch_progress = Some(progress);
    }

    /// The record store.
    pub fn store(&self) -> &RuntimeStore {
        &self.store
    }

    /// The settings.
    pub fn settings(&self) -> &DockerSettings {
        &self.settings
    }

    /// Whether this containerizer owns `id` (it has a record).
    pub fn owns(&self, id: &ContainerId) -> bool {
        self.store.open(id).is_some()
    }

    /// Connects to the engine.
    pub async fn engine(&self) -> Result<DockerEngine> {
        Ok(DockerEngine::connect(&self.settings.socket).await?)
    }

    /// The engine request for `config` and `docker`, without contacting it.
    pub fn spec(&self, config: &ContainerConfig, docker: &DockerLaunch) -> DockerRunSpec {
        let command = docker.command.clone().unwrap_or_else(|| {
            if config.command.shell {
                DockerCommand::shell(config.command.value.clone())
            } else {
                DockerCommand::argv(config.command.exec_argv())
            }
        });
        let mut spec = DockerRunSpec::new(
            config.id.as_str(),
            docker.image.clone(),
            command,
            config.sandbox.clone(),
        );
        spec.env = config.env.clone();
        spec.workdir = config.working_dir.as_ref().map(|p| p.display().to_string());
        spec.hostname = config.hostname.clone();
        spec.resources = docker_resources(
            &config.resources,
            self.settings.cgroups_enable_cfs || config.isolator_flags.cgroups_enable_cfs,
        );
        spec.network = docker.network.clone();
        spec.port_mappings = docker.port_mappings.clone();
        spec.offered_ports = docker.offered_ports.clone();
        spec.volumes = docker.volumes.clone();
        spec.sandbox_directory = self.settings.sandbox_directory.clone();
        spec.parameters = docker.parameters.clone();
        spec.privileged = docker.privileged;
        spec.force_pull = docker.force_pull;
        spec.engine_log = config.logrotate.as_ref().map(EngineLogBound::of);
        spec.labels = BTreeMap::from([(
            LABEL_RUNTIME_DIR.to_owned(),
            self.runtime_dir.display().to_string(),
        )]);
        spec
    }
}

/// Phobos's requests and limits (MB) in the engine's terms (bytes).
pub fn docker_resources(r: &Resources, cgroups_enable_cfs: bool) -> DockerResources {
    const MB: f64 = 1024.0 * 1024.0;
    DockerResources {
        cpus_request: r.cpus,
        cpus_limit: r.cpus_limit.map(|l| match l {
            Limit::Finite(v) => v,
            Limit::Infinite => f64::INFINITY,
        }),
        mem_request: r.mem.map(|m| (m * MB) as u64),
        mem_limit: r.mem_limit.map(|l| match l {
            Limit::Finite(v) => MemoryLimit::Bytes((v * MB) as u64),
            Limit::Infinite => MemoryLimit::Unlimited,
        }),
        cgroups_enable_cfs,
    }
}

/// Runs one call of the Docker containerizer to completion on a
/// single-threaded runtime: the faces are synchronous, one call per
/// process's request.
pub fn block_on<F: std::future::Future>(future: F) -> io::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(future))
}

/// Each operation runs to completion on [`block_on`].
impl phobos_core::Containerizer for DockerContainerizer {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn owns(&self, id: &ContainerId) -> bool {
        DockerContainerizer::owns(self, id)
    }

    fn apply(
        &self,
        id: &ContainerId,
        operation: Operation,
    ) -> std::result::Result<Option<Outcome>, BoxError> {
        let outcome = block_on(async {
            Ok::<_, ContainerizerError>(match operation {
                Operation::Wait => self.wait(id).await?.map(Outcome::Ended),
                Operation::Destroy => self.destroy(id).await?.map(Outcome::Ended),
                Operation::Kill { signal } => self.kill(id, signal).await?.map(|()| Outcome::Done),
                Operation::Usage => self
                    .usage(id)
                    .await?
                    .map(|stats| Outcome::Usage(Box::new(stats))),
                Operation::Resources => self
                    .summary(id, None)
                    .await?
                    .map(|s| Outcome::Resources(s.resources)),
                Operation::Update { resources, force } => self
                    .update(id, &resources, force)
                    .await?
                    .map(|()| Outcome::Done),
            })
        })??;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::lifecycle::exit_termination;
    use super::*;

    #[test]
    fn resources_convert_megabytes_and_infinite_limits() {
        let r = Resources {
            cpus: Some(0.5),
            mem: Some(64.0),
            cpus_limit: Some(Limit::Infinite),
            mem_limit: Some(Limit::Finite(128.0)),
            ..Resources::default()
        };
        let d = docker_resources(&r, true);
        assert_eq!(d.cpus_request, Some(0.5));
        assert_eq!(d.cpus_limit, Some(f64::INFINITY));
        assert_eq!(d.mem_request, Some(64 << 20));
        assert_eq!(d.mem_limit, Some(MemoryLimit::Bytes(128 << 20)));
        assert!(d.cgroups_enable_cfs);
    }

    #[test]
    fn oom_exit_is_a_memory_limitation() {
        let t = exit_termination(ExitStatus {
            exit_code: 137,
            wait_status: 137 << 8,
            oom_killed: true,
        });
        assert_eq!(t.reason, Some(Reason::ContainerLimitationMemory));
        assert_eq!(t.limited_resources, vec!["mem".to_owned()]);
        let t = exit_termination(ExitStatus {
            exit_code: 0,
            wait_status: 0,
            oom_killed: false,
        });
        assert_eq!(t.state, Some(TaskState::Finished));
    }

    fn settings() -> DockerSettings {
        DockerSettings {
            socket: PathBuf::from("/nonexistent/docker.sock"),
            stop_timeout: Duration::ZERO,
            kill_orphans: true,
            sandbox_directory: "/mnt/mesos/sandbox".to_owned(),
            cgroups_enable_cfs: false,
            remove_delay: Duration::ZERO,
            work_dir: PathBuf::from("/nonexistent/work"),
        }
    }

    #[test]
    fn spec_keeps_argv_and_labels_the_runtime_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = DockerContainerizer::new(dir.path(), settings());
        let config: ContainerConfig = serde_json::from_value(serde_json::json!({
            "id": "abc",
            "command": {"shell": false, "value": "echo", "arguments": ["echo", "hi"]},
            "env": [["A", "1"]],
            "isolation": [],
            "launcher": "posix",
            "sandbox": "/tmp/sb",
            "cgroups_root": "phobos",
            "created_at": 1.0
        }))
        .expect("config");
        let spec = c.spec(
            &config,
            &DockerLaunch {
                image: "busybox:local".into(),
                ..DockerLaunch::default()
            },
        );
        assert_eq!(spec.command, DockerCommand::argv(["echo", "hi"]));
        assert_eq!(spec.env, vec![("A".to_owned(), "1".to_owned())]);
        assert_eq!(
            spec.labels.get(LABEL_RUNTIME_DIR),
            Some(&dir.path().display().to_string())
        );
    }

    #[tokio::test]
    async fn unknown_ids_are_none_without_an_engine() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = DockerContainerizer::new(dir.path(), settings());
        let id = ContainerId::new("nope").expect("id");
        assert!(!c.owns(&id));
        assert!(c.wait(&id).await.expect("wait").is_none());
        assert!(c.destroy(&id).await.expect("destroy").is_none());
        assert!(c.usage(&id).await.expect("usage").is_none());
    }
}
