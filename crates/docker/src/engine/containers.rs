//! Containers through the engine: create and start, inspect, wait, signal,
//! stop, remove, list (and find orphans), update resources, read usage, and
//! follow logs into files.

use super::*;

impl DockerEngine {
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
