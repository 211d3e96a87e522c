//! A Docker container's life through the engine: launching it (pulling
//! its image, creating and starting it, writing its record), waiting for
//! it, destroying and signalling it, and recording its end.

use super::logs::{sync_logs, wait_for_follower};
use super::*;

impl DockerContainerizer {
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
        // A sandbox someone else made (or a symlink where it goes) is
        // refused before anything is pulled or written.
        phobos_core::sandbox::check_new(&self.settings.work_dir, &config.sandbox)?;
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
        let work_dir = &self.settings.work_dir;
        // Removes what this launch created; `new` (the hidden record
        // directory) must be dropped first.
        let undo = |created_sandbox: bool| {
            if created_sandbox
                && let Err(e) = phobos_core::sandbox::remove(work_dir, &config.sandbox)
            {
                tracing::warn!(%id, error = %e, "failed to remove the sandbox");
            }
            if !store_existed {
                // Only removes them when empty (no other container).
                let _ = fs::remove_dir(self.store.containers_dir());
                let _ = fs::remove_dir(self.store.root());
            }
        };
        // The sandbox is mounted into the container, whose user comes from
        // the image: it stays readable as before (0755), but is made fresh,
        // beneath the work directory, following no symlink.
        let created_sandbox = match phobos_core::sandbox::create(work_dir, &config.sandbox, 0o755) {
            Ok(sandbox) => sandbox.created,
            Err(e) => {
                drop(new);
                undo(false);
                return Err(e.into());
            }
        };
        // The task's URIs, into the sandbox before the container is
        // created (as Deimos did, without its crash on a failed download).
        if !config.fetch.is_empty() {
            let (uris, sandbox) = (config.fetch.clone(), config.sandbox.clone());
            let mut settings = phobos_fetch::Settings::for_container(config, None);
            settings.progress = self.fetch_progress.clone();
            let fetched = tokio::task::spawn_blocking(move || {
                phobos_fetch::fetch_all(&uris, &sandbox, &settings)
            })
            .await
            .unwrap_or_else(|e| {
                Err(phobos_fetch::FetchError {
                    uri: config.fetch[0].value.clone(),
                    cause: phobos_fetch::Cause::Transport(format!("the fetch task failed: {e}")),
                })
            });
            match fetched {
                Ok(list) => {
                    for f in list {
                        tracing::info!(container = %id, uri = %f.uri, file = %f.name, bytes = f.bytes, cache_hit = f.cache_hit, "fetched");
                        for warning in &f.warnings {
                            tracing::warn!(container = %id, "{warning}");
                        }
                    }
                }
                Err(e) => {
                    drop(new);
                    undo(created_sandbox);
                    return Err(ContainerizerError::Fetch(e));
                }
            }
        }
        let launched = match engine.launch(&spec, progress).await {
            Ok(launched) => launched,
            Err(e) => {
                drop(new);
                undo(created_sandbox);
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
            undo(created_sandbox);
            return Err(e.into());
        }
        Ok(record)
    }

    pub(super) fn record(&self, dir: &ContainerDir) -> Result<(ContainerConfig, DockerRecord)> {
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
    pub(super) async fn finish(
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
        } else if let Err(e) = sync_logs(engine, &record.name, dir, config).await {
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
    pub(super) fn live_record(&self, id: &ContainerId) -> Result<Option<DockerRecord>> {
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
}

/// A container that ended on its own (or was OOM-killed).
pub(super) fn exit_termination(status: ExitStatus) -> Termination {
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
pub(super) fn lost_termination() -> Termination {
    Termination {
        state: Some(TaskState::Lost),
        message: Some("the docker container disappeared before its end was recorded".to_owned()),
        ..Termination::default()
    }
}

/// Removes an ended container from the engine; one already gone is fine.
pub(super) async fn remove_ended(engine: &DockerEngine, id: &ContainerId, target: &str) {
    if let Err(e) = engine.remove(target, true).await {
        tracing::warn!(%id, error = %e, "failed to remove the ended container");
    }
}
