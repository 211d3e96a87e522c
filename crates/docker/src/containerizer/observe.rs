//! Reading Docker containers: summaries for `ps`, resource usage from the
//! engine's statistics, and resource updates.

use super::*;

impl DockerContainerizer {
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
}

pub(super) fn saturate_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}
