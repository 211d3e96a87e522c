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
//! The engine keeps a container's whole log, and every reader gets it
//! replayed from the start. By default ([`DockerLaunch::append_logs`] off)
//! every writer — a foreground follower, a detached one, `refresh_logs`,
//! and the end of the container — writes that stream into the sandbox files
//! from offset 0 without truncating, so they agree whoever runs. When the
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
    DockerCommand, DockerNetwork, DockerResources, DockerRunSpec, MemoryLimit, PortMapping,
    PortRange, Volume,
};
use crate::translate::LABEL_MANAGED;

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
}

impl DockerContainerizer {
    /// A containerizer keeping its records under `<runtime_dir>/docker`.
    pub fn new(runtime_dir: &Path, settings: DockerSettings) -> Self {
        Self {
            runtime_dir: runtime_dir.to_owned(),
            store: RuntimeStore::new(runtime_dir.join(STORE_SUBDIR)),
            settings,
        }
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
        spec.labels = BTreeMap::from([(
            LABEL_RUNTIME_DIR.to_owned(),
            self.runtime_dir.display().to_string(),
        )]);
        spec
    }

    /// Pulls the image if needed, creates and starts `mesos-<id>`, and
    /// records it as RUNNING. On any failure nothing is left behind: no
    /// record, no container, no sandbox this call created.
    pub async fn launch<F>(
        &self,
        config: &ContainerConfig,
        docker: &DockerLaunch,
        mut progress: F,
    ) -> Result<DockerRecord>
    where
        F: FnMut(&PullProgress) + Send,
    {
        if !self.settings.remove_delay.is_zero()
            && let Err(e) = self.remove_expired().await
        {
            tracing::warn!(error = %e, "failed to remove expired containers");
        }
        let id = &config.id;
        if self.owns(id) {
            return Err(ContainerizerError::AlreadyExists(id.clone()));
        }
        let spec = self.spec(config, docker);
        // Translate before anything is created: a bad port or parameter
        // is reported with nothing on disk.
        crate::translate::create_request(&spec, 0).map_err(EngineError::from)?;
        // The engine and the image before any directory: a missing engine
        // or image fails with nothing written.
        let engine = self.engine().await?;
        engine
            .ensure_image(&spec.image, spec.force_pull, &mut progress)
            .await?;
        let store_existed = self.store.containers_dir().exists();
        let new = self.store.create(id).map_err(|e| match e {
            StoreError::AlreadyExists(id) => ContainerizerError::AlreadyExists(id),
            other => other.into(),
        })?;
        let spec = DockerRunSpec {
            // Pulled (or found) above; launch only inspects it again.
            force_pull: false,
            ..spec
        };
        let created_sandbox = !config.sandbox.exists();
        // Removes what this launch created; `new` (the hidden record
        // directory) must be dropped first.
        let undo = || {
            if created_sandbox {
                let _ = fs::remove_dir_all(&config.sandbox);
            }
            if !store_existed {
                // Only removes them when empty (no other container).
                let _ = fs::remove_dir(self.store.containers_dir());
                let _ = fs::remove_dir(self.store.root());
            }
        };
        if let Err(source) = fs::create_dir_all(&config.sandbox) {
            drop(new);
            undo();
            return Err(ContainerizerError::Sandbox {
                op: "create",
                path: config.sandbox.clone(),
                source,
            });
        }
        let launched = match engine.launch(&spec, progress).await {
            Ok(launched) => launched,
            Err(e) => {
                drop(new);
                undo();
                return Err(e.into());
            }
        };
        let record = DockerRecord {
            image: docker.image.clone(),
            name: launched.name.clone(),
            docker_id: launched.docker_id.clone(),
            network: docker.network.mode().to_owned(),
            image_command: matches!(&docker.command, Some(c) if c.value.is_none() && c.arguments.is_empty() && !c.shell),
            append_logs: docker.append_logs,
            stop_grace_ms: docker
                .stop_grace
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        };
        let published = new
            .write_json(CONFIG_FILE, config)
            .and_then(|()| new.write_json(DOCKER_FILE, &record))
            .and_then(|()| new.set_state(ContainerState::Running).map(drop))
            .and_then(|()| new.publish());
        if let Err(e) = published {
            if let Err(remove) = engine.remove(&launched.docker_id, true).await {
                tracing::warn!(%id, error = %remove, "failed to remove the container after a failed checkpoint");
            }
            undo();
            return Err(e.into());
        }
        Ok(record)
    }

    fn record(&self, dir: &ContainerDir) -> Result<(ContainerConfig, DockerRecord)> {
        let config = dir.read_json::<ContainerConfig>(CONFIG_FILE)?;
        let record = dir.read_json::<DockerRecord>(DOCKER_FILE)?;
        match (config, record) {
            (Some(c), Some(r)) => Ok((c, r)),
            _ => Err(ContainerizerError::Incomplete(dir.id().clone())),
        }
    }

    /// Blocks until the container ends and returns its termination; `None`
    /// for an unknown ID. Works from any process, any number of times.
    pub async fn wait(&self, id: &ContainerId) -> Result<Option<Termination>> {
        let Some(dir) = self.store.open(id) else {
            return Ok(None);
        };
        if let Some(t) = dir.read_json::<Termination>(TERMINATION_FILE)? {
            return Ok(Some(t));
        }
        let (config, record) = self.record(&dir)?;
        let engine = self.engine().await?;
        let termination = match engine.wait(&record.name).await {
            Ok(status) => exit_termination(status),
            Err(EngineError::NotFound { .. }) => lost_termination(),
            Err(e) => return Err(e.into()),
        };
        let _lock = dir.lock_op()?;
        Ok(Some(
            self.finish(&dir, &engine, &config, &record, termination)
                .await?,
        ))
    }

    /// Records `termination` unless another process recorded one first
    /// (then that one is returned); copies the logs into the sandbox and
    /// removes the container. The caller holds the operation lock.
    async fn finish(
        &self,
        dir: &ContainerDir,
        engine: &DockerEngine,
        config: &ContainerConfig,
        record: &DockerRecord,
        termination: Termination,
    ) -> Result<Termination> {
        if let Some(t) = dir.read_json::<Termination>(TERMINATION_FILE)? {
            return Ok(t);
        }
        if record.append_logs {
            // The follower appends everything (replaying would duplicate
            // it); let it drain the ended container's log before removal.
            wait_for_follower(&dir.file(FOLLOWER_LOCK_FILE)).await;
        } else if let Err(e) = sync_logs(engine, &record.name, &config.sandbox).await {
            tracing::warn!(id = %config.id, error = %e, "failed to copy the container's logs into its sandbox");
        }
        dir.write_json(TERMINATION_FILE, &termination)?;
        dir.set_state(ContainerState::Terminated)?;
        if self.settings.remove_delay.is_zero() {
            remove_ended(engine, &config.id, &record.docker_id).await;
        }
        Ok(termination)
    }

    /// Stops the container (its stop signal, the grace period of the task's
    /// kill policy or else `docker_stop_timeout`, then SIGKILL), records a TASK_KILLED termination and removes it.
    /// Idempotent; `None` for an unknown ID.
    pub async fn destroy(&self, id: &ContainerId) -> Result<Option<Termination>> {
        let Some(dir) = self.store.open(id) else {
            return Ok(None);
        };
        let _lock = dir.lock_op()?;
        if let Some(t) = dir.read_json::<Termination>(TERMINATION_FILE)? {
            return Ok(Some(t));
        }
        let (config, record) = self.record(&dir)?;
        dir.mark_destroying()?;
        let engine = self.engine().await?;
        // The task's kill policy, else `docker_stop_timeout` (Mesos).
        let grace = record
            .stop_grace_ms
            .map_or(self.settings.stop_timeout, Duration::from_millis);
        let termination = match engine.stop(&record.name, grace).await {
            Ok(outcome) if outcome.already_exited => exit_termination(outcome.status),
            Ok(outcome) => {
                let how = if outcome.killed {
                    format!(
                        "killed with SIGKILL after a grace period of {}s",
                        grace.as_secs_f64()
                    )
                } else {
                    "stopped by its stop signal".to_owned()
                };
                Termination {
                    status: Some(WaitStatus(outcome.status.wait_status)),
                    state: Some(TaskState::Killed),
                    message: Some(format!("Container destroyed: {how}")),
                    ..Termination::default()
                }
            }
            Err(EngineError::NotFound { .. }) => lost_termination(),
            Err(e) => return Err(e.into()),
        };
        Ok(Some(
            self.finish(&dir, &engine, &config, &record, termination)
                .await?,
        ))
    }

    /// The record of a container that has not ended: `None` for an unknown
    /// ID, an error for a terminated one.
    fn live_record(&self, id: &ContainerId) -> Result<Option<DockerRecord>> {
        let Some(dir) = self.store.open(id) else {
            return Ok(None);
        };
        if dir.read_json::<Termination>(TERMINATION_FILE)?.is_some() {
            return Err(ContainerizerError::NotRunning(id.clone()));
        }
        Ok(Some(self.record(&dir)?.1))
    }

    /// Sends `signal` to the container's main process; `None` for an unknown ID.
    pub async fn kill(&self, id: &ContainerId, signal: i32) -> Result<Option<()>> {
        let Some(record) = self.live_record(id)? else {
            return Ok(None);
        };
        let engine = self.engine().await?;
        match engine.kill(&record.name, &signal.to_string()).await {
            Ok(()) => Ok(Some(())),
            Err(EngineError::NotFound { .. }) => Err(ContainerizerError::NotRunning(id.clone())),
            Err(EngineError::Api {
                source:
                    bollard::errors::Error::DockerResponseServerError {
                        status_code: 409, ..
                    },
                ..
            }) => Err(ContainerizerError::NotRunning(id.clone())),
            Err(e) => Err(e.into()),
        }
    }

    /// The container as listings show it; `None` for an unknown ID. The
    /// engine is asked for the pid only when `engine` is given.
    pub async fn summary(
        &self,
        id: &ContainerId,
        engine: Option<&DockerEngine>,
    ) -> Result<Option<DockerSummary>> {
        let Some(dir) = self.store.open(id) else {
            return Ok(None);
        };
        let (config, record) = self.record(&dir)?;
        let termination = dir.read_json::<Termination>(TERMINATION_FILE)?;
        let state = if termination.is_some() {
            ContainerState::Terminated
        } else {
            dir.state()?
                .map(|s| s.state)
                .unwrap_or(ContainerState::Running)
        };
        let pid = match (engine, &termination) {
            (Some(engine), None) => engine
                .pid(&record.name)
                .await
                .ok()
                .flatten()
                .and_then(|p| i32::try_from(p).ok()),
            _ => None,
        };
        let command = if record.image_command {
            "(the image's default command)".to_owned()
        } else {
            config.command.display()
        };
        Ok(Some(DockerSummary {
            id: config.id,
            containerizer: "docker",
            state,
            pid,
            started_at: config.created_at,
            command,
            image: record.image,
            name: record.name,
            sandbox: config.sandbox,
            resources: config.resources,
            termination,
        }))
    }

    /// Every Docker container with a record, sorted by ID.
    pub async fn list(&self, engine: Option<&DockerEngine>) -> Result<Vec<DockerSummary>> {
        let mut out = Vec::new();
        for id in self.store.list()? {
            match self.summary(&id, engine).await {
                Ok(Some(s)) => out.push(s),
                Ok(None) => {}
                // A record being created or removed right now.
                Err(ContainerizerError::Incomplete(_)) => {}
                // One broken record does not hide all the others.
                Err(e) => tracing::warn!("skipping docker container {id}: {e}"),
            }
        }
        Ok(out)
    }

    /// The container's statistics from its cgroups; `None` for an unknown ID.
    pub async fn usage(&self, id: &ContainerId) -> Result<Option<ResourceStatistics>> {
        let Some(record) = self.live_record(id)? else {
            return Ok(None);
        };
        let engine = self.engine().await?;
        let usage = match engine.usage(&record.name).await {
            Ok(u) => u,
            Err(EngineError::NotRunning { .. } | EngineError::NotFound { .. }) => {
                return Err(ContainerizerError::NotRunning(id.clone()));
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Some(ResourceStatistics {
            timestamp: phobos_core::time::now_secs(),
            cpus_user_time_secs: Some(usage.cpus_user_time_secs),
            cpus_system_time_secs: Some(usage.cpus_system_time_secs),
            cpus_nr_periods: usage.cpus_nr_periods.map(saturate_u32),
            cpus_nr_throttled: usage.cpus_nr_throttled.map(saturate_u32),
            cpus_throttled_time_secs: usage.cpus_throttled_time_secs,
            cpus_soft_limit: usage.cpus_soft_limit,
            cpus_limit: usage.cpus_limit,
            mem_rss_bytes: Some(usage.mem_rss_bytes),
            mem_anon_bytes: Some(usage.mem_rss_bytes),
            mem_total_bytes: usage.mem_total_bytes,
            mem_limit_bytes: usage.mem_limit_bytes,
            mem_soft_limit_bytes: usage.mem_soft_limit_bytes,
            ..ResourceStatistics::default()
        }))
    }

    /// Changes cpu and memory live and records the new resources; `None`
    /// for an unknown ID. The memory hard limit is only raised unless
    /// `force`, as in the Mesos containerizer.
    pub async fn update(
        &self,
        id: &ContainerId,
        resources: &Resources,
        force: bool,
    ) -> Result<Option<()>> {
        let Some(dir) = self.store.open(id) else {
            return Ok(None);
        };
        let _lock = dir.lock_op()?;
        if dir.read_json::<Termination>(TERMINATION_FILE)?.is_some() {
            return Err(ContainerizerError::NotRunning(id.clone()));
        }
        let (mut config, record) = self.record(&dir)?;
        let engine = self.engine().await?;
        let wanted = docker_resources(
            resources,
            self.settings.cgroups_enable_cfs || config.isolator_flags.cgroups_enable_cfs,
        );
        engine.update(&record.name, &wanted, !force).await?;
        config.resources = resources.clone();
        dir.write_json(CONFIG_FILE, &config)?;
        Ok(Some(()))
    }

    /// Copies the engine's complete log of the container into its sandbox
    /// files (replacing them), so `logs` of a detached container shows
    /// everything so far. Returns the sandbox; `None` for an unknown ID.
    /// After the container was removed the files already hold the whole log.
    pub async fn refresh_logs(&self, id: &ContainerId) -> Result<Option<PathBuf>> {
        let Some(dir) = self.store.open(id) else {
            return Ok(None);
        };
        let (config, record) = self.record(&dir)?;
        if record.append_logs || dir.read_json::<Termination>(TERMINATION_FILE)?.is_some() {
            return Ok(Some(config.sandbox));
        }
        let engine = self.engine().await?;
        let _lock = dir.lock_op()?;
        if dir.read_json::<Termination>(TERMINATION_FILE)?.is_none() {
            match sync_logs(&engine, &record.name, &config.sandbox).await {
                Ok(()) | Err(ContainerizerError::Engine(EngineError::NotFound { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Some(config.sandbox))
    }

    /// Follows the container's output until it ends: with `into_sandbox`
    /// into `<sandbox>/stdout|stderr` (rewriting them from the start, since
    /// the engine replays the whole log; appending for records launched
    /// with [`DockerLaunch::append_logs`]), and with `tee` onto this
    /// process's stdout and stderr. Exactly one sandbox follower should run
    /// for an appending record.
    pub async fn follow(
        &self,
        id: &ContainerId,
        tee: bool,
        into_sandbox: bool,
    ) -> Result<Option<()>> {
        let Some(dir) = self.store.open(id) else {
            return Ok(None);
        };
        let (config, record) = self.record(&dir)?;
        if dir.read_json::<Termination>(TERMINATION_FILE)?.is_some() {
            // Ended and removed: the sandbox files hold the whole log.
            if tee {
                for (name, mut sink) in [
                    ("stdout", Box::new(io::stdout()) as Box<dyn Write>),
                    ("stderr", Box::new(io::stderr())),
                ] {
                    let path = config.sandbox.join(name);
                    let read = phobos_core::SafeDir::open_trusted(&config.sandbox)
                        .and_then(|dir| dir.read_file(name))
                        .map_err(io::Error::from)
                        .and_then(|mut f| {
                            let mut bytes = Vec::new();
                            io::Read::read_to_end(&mut f, &mut bytes).map(|_| bytes)
                        });
                    match read {
                        Ok(bytes) => {
                            let _ = sink.write_all(&bytes);
                        }
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(source) => {
                            return Err(ContainerizerError::Sandbox {
                                op: "read",
                                path,
                                source,
                            });
                        }
                    }
                }
            }
            return Ok(Some(()));
        }
        let engine = self.engine().await?;
        let open = |name: &str| {
            into_sandbox
                .then(|| open_log(&config.sandbox, name, record.append_logs))
                .transpose()
        };
        let mut out = open("stdout")?;
        let mut err = open("stderr")?;
        let options = LogsOptionsBuilder::new()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .build();
        let client = engine.client().clone().with_timeout(LONG_TIMEOUT);
        let mut stream = client.logs(&record.name, Some(options));
        while let Some(item) = stream.next().await {
            let item = match item {
                Ok(item) => item,
                Err(e) => {
                    tracing::warn!(%id, error = %e, "the container's log stream ended early");
                    break;
                }
            };
            let (file, path, is_err, bytes) = match &item {
                LogOutput::StdErr { message } => (&mut err, "stderr", true, message),
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    (&mut out, "stdout", false, message)
                }
                LogOutput::StdIn { .. } => continue,
            };
            if let Some(file) = file {
                file.write_all(bytes)
                    .map_err(|source| ContainerizerError::Sandbox {
                        op: "write",
                        path: config.sandbox.join(path),
                        source,
                    })?;
            }
            if tee {
                // The terminal going away must not stop the sandbox copy.
                let _ = if is_err {
                    io::stderr().write_all(bytes)
                } else {
                    io::stdout()
                        .write_all(bytes)
                        .and_then(|()| io::stdout().flush())
                };
            }
        }
        Ok(Some(()))
    }

    /// Removes the records of terminated containers (ended at least
    /// `older_than` ago, when given) and their sandboxes when those lie
    /// under `work_dir`. Records another process is working on are skipped.
    pub async fn remove_terminated(
        &self,
        older_than: Option<Duration>,
        work_dir: &Path,
    ) -> Result<Vec<ContainerId>> {
        let removed = self.store.remove_terminated(older_than, work_dir)?;
        // Containers kept for `docker_remove_delay` go with their records.
        if !removed.is_empty() && !self.settings.remove_delay.is_zero() {
            let engine = self.engine().await?;
            for id in &removed {
                let name = crate::translate::container_name(id.as_str());
                remove_ended(&engine, id, &name).await;
            }
        }
        Ok(removed)
    }

    /// [`Self::remove_terminated`] for one container (`phobos run --rm`):
    /// true when it had ended and is now gone.
    pub async fn remove_if_terminated(&self, id: &ContainerId, work_dir: &Path) -> Result<bool> {
        let removed = self.store.remove_if_terminated(id, None, work_dir)?;
        if removed && !self.settings.remove_delay.is_zero() {
            let engine = self.engine().await?;
            remove_ended(&engine, id, &crate::translate::container_name(id.as_str())).await;
        }
        Ok(removed)
    }

    /// Removes from the engine the ended containers whose
    /// `docker_remove_delay` has passed (their records stay until
    /// `state --rm`); returns their IDs. Records another process holds are
    /// skipped.
    pub async fn remove_expired(&self) -> Result<Vec<ContainerId>> {
        let now = phobos_core::time::now_secs();
        let delay = self.settings.remove_delay.as_secs_f64();
        let mut due = Vec::new();
        for id in self.store.list()? {
            let Some(dir) = self.store.open(&id) else {
                continue;
            };
            let Some(_lock) = dir.try_lock_op()? else {
                continue;
            };
            if dir.exists(ENGINE_REMOVED_MARKER) || !dir.exists(TERMINATION_FILE) {
                continue;
            }
            let ended = dir.state()?.map_or(0.0, |r| r.since);
            if now - ended >= delay {
                due.push(id);
            }
        }
        if due.is_empty() {
            return Ok(due);
        }
        let engine = self.engine().await?;
        for id in &due {
            let name = crate::translate::container_name(id.as_str());
            remove_ended(&engine, id, &name).await;
            if let Some(dir) = self.store.open(id) {
                dir.write_atomic(ENGINE_REMOVED_MARKER, b"")?;
            }
        }
        Ok(due)
    }

    /// Re-adopts running containers, records the end of those that ended
    /// while nobody watched, and (with `docker_kill_orphans`) stops and
    /// removes unknown `mesos-*` containers of this runtime directory.
    pub async fn recover(&self) -> Result<DockerRecoverReport> {
        let mut report = DockerRecoverReport::default();
        let engine = self.engine().await?;
        if let Err(e) = self.remove_expired().await {
            report
                .errors
                .push(format!("removing expired containers: {e}"));
        }
        let listed = engine.list().await?;
        let mut known = HashSet::new();
        for id in self.store.list()? {
            known.insert(id.as_str().to_owned());
            let Some(dir) = self.store.open(&id) else {
                continue;
            };
            if dir.read_json::<Termination>(TERMINATION_FILE)?.is_some() {
                continue;
            }
            let running = listed
                .iter()
                .any(|c| c.container_id == id.as_str() && c.running);
            if running {
                report.recovered.push(id);
                continue;
            }
            match self.wait(&id).await {
                Ok(_) => report.finalized.push(id),
                Err(e) => report.errors.push(format!("container {id}: {e}")),
            }
        }
        let mine = self.runtime_dir.display().to_string();
        for c in listed {
            if known.contains(&c.container_id) {
                continue;
            }
            let ours = c.managed
                && c.labels.get(LABEL_MANAGED).map(String::as_str) == Some("true")
                && c.labels.get(LABEL_RUNTIME_DIR) == Some(&mine);
            if !ours || !self.settings.kill_orphans {
                report.foreign.push(c.name);
                continue;
            }
            let stopped = match engine.stop(&c.docker_id, Duration::ZERO).await {
                Ok(_) | Err(EngineError::NotFound { .. }) => {
                    engine.remove(&c.docker_id, true).await
                }
                Err(e) => Err(e),
            };
            match stopped {
                Ok(_) => report.orphans_killed.push(c.name),
                Err(e) => report.errors.push(format!("orphan {}: {e}", c.name)),
            }
        }
        Ok(report)
    }
}

/// Waits (at most [`FOLLOWER_DRAIN`]) until nobody holds the follower lock.
async fn wait_for_follower(path: &Path) {
    let Ok(file) = fs::File::open(path) else {
        return;
    };
    let deadline = tokio::time::Instant::now() + FOLLOWER_DRAIN;
    while tokio::time::Instant::now() < deadline {
        match file.try_lock_shared() {
            Ok(()) => return,
            Err(fs::TryLockError::WouldBlock) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(fs::TryLockError::Error(e)) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot check the log follower");
                return;
            }
        }
    }
    tracing::warn!(path = %path.display(), "the log follower did not finish in time");
}

/// Timeout for the log follow (about 10 years).
const LONG_TIMEOUT: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

fn saturate_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Opens a sandbox log: appending, or for writing from offset 0 without
/// truncating it (the writer replays the same log the file already holds a
/// prefix of).
/// Opens (creating) the sandbox file `name`, appending or writing in
/// place. The sandbox is the container's (mounted into it, writable by
/// its user): the file is opened beneath it without following a symlink
/// the container may have put there, and must be a regular file.
fn open_log(sandbox: &Path, name: &str, append: bool) -> Result<fs::File> {
    let opened = phobos_core::SafeDir::open_trusted(sandbox).and_then(|dir| {
        if append {
            dir.append_file(name, 0o644)
        } else {
            dir.write_file(name, 0o644)
        }
    });
    opened.map_err(|e| ContainerizerError::Sandbox {
        op: "create",
        path: sandbox.join(name),
        source: e.into(),
    })
}

/// The engine's whole log of `target`, written over the sandbox files in
/// place, from offset 0 and without truncating: a log follower writing the
/// same stream into the same files (see [`DockerContainerizer::follow`])
/// keeps its offset and writes the same bytes, so the two never disagree.
async fn sync_logs(engine: &DockerEngine, target: &str, sandbox: &Path) -> Result<()> {
    let options = LogsOptionsBuilder::new()
        .follow(false)
        .stdout(true)
        .stderr(true)
        .build();
    let mut stream = engine.client().logs(target, Some(options));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while let Some(item) = stream.next().await {
        match item {
            Ok(LogOutput::StdErr { message }) => err.extend_from_slice(&message),
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                out.extend_from_slice(&message)
            }
            Ok(LogOutput::StdIn { .. }) => {}
            Err(e) if crate::engine::is_not_found(&e) => {
                return Err(EngineError::NotFound {
                    target: target.to_owned(),
                }
                .into());
            }
            Err(source) => {
                return Err(EngineError::LogStream {
                    target: target.to_owned(),
                    source,
                }
                .into());
            }
        }
    }
    for (name, bytes) in [("stdout", out), ("stderr", err)] {
        open_log(sandbox, name, false)?
            .write_all(&bytes)
            .map_err(|source| ContainerizerError::Sandbox {
                op: "write",
                path: sandbox.join(name),
                source,
            })?;
    }
    Ok(())
}

/// A container that ended on its own (or was OOM-killed).
fn exit_termination(status: ExitStatus) -> Termination {
    let mut t = Termination::from_exit(WaitStatus(status.wait_status));
    if status.oom_killed {
        t.state = Some(TaskState::Failed);
        t.reason = Some(Reason::ContainerLimitationMemory);
        t.limited_resources = vec!["mem".to_owned()];
        t.message = Some("Memory limit exceeded: the container was OOM-killed".to_owned());
    }
    t
}

/// The container vanished from the engine before its end was recorded.
fn lost_termination() -> Termination {
    Termination {
        state: Some(TaskState::Lost),
        message: Some("the docker container disappeared before its end was recorded".to_owned()),
        ..Termination::default()
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

/// Removes an ended container from the engine; one already gone is fine.
async fn remove_ended(engine: &DockerEngine, id: &ContainerId, target: &str) {
    if let Err(e) = engine.remove(target, true).await {
        tracing::warn!(%id, error = %e, "failed to remove the ended container");
    }
}

#[cfg(test)]
mod tests {
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
