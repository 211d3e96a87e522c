//! Removing ended Docker containers (now, after `docker_remove_delay`, or
//! when asked) and recovering the records of containers the engine still
//! has or has lost.

use super::lifecycle::remove_ended;
use super::*;

impl DockerContainerizer {
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
