//! Reading live containers: resource usage (from their cgroups, in
//! parallel for many), resource updates, and the summaries `ps` lists.

use super::*;

impl MesosContainerizer {
    /// The container's resource statistics (§3.13): every isolator's
    /// `usage` merged (failures are logged and skipped, as in Mesos), then
    /// the timestamp and the requests and limits from the checkpointed
    /// config. `None` for an unknown container; a container that is not
    /// running is an error.
    pub fn usage(&self, id: &ContainerId) -> Result<Option<ResourceStatistics>> {
        let host = isolator::HostCache::default().with_runtime_dir(self.store.root());
        self.usage_with(
            self.store.open(id),
            id,
            &mut isolator::UsageContext::new(&host),
            false,
        )
    }

    /// [`MesosContainerizer::usage`] of several containers at once: the
    /// host's mount table and `/proc` are read once for all of them, and
    /// the containers are measured on a few threads. With `running_only`,
    /// containers that are not RUNNING are answered with `Ok(None)`.
    pub fn usage_many(
        &self,
        ids: &[ContainerId],
        running_only: bool,
    ) -> Vec<(ContainerId, Result<Option<ResourceStatistics>>)> {
        let host = isolator::HostCache::default().with_runtime_dir(self.store.root());
        // Each record is opened below the open `containers` directory
        // (by path when that cannot be opened).
        let containers = self.store.containers().ok();
        let open = |id: &ContainerId| match &containers {
            Some(c) => c.open(id),
            None => self.store.open(id),
        };
        on_threads(ids, |part| {
            // One context per thread: one buffer for every control file
            // this thread reads.
            let mut ctx = isolator::UsageContext::new(&host);
            part.iter()
                .map(|id| {
                    (
                        id.clone(),
                        self.usage_with(open(id), id, &mut ctx, running_only),
                    )
                })
                .collect()
        })
        .into_iter()
        // A worker that panicked answers each of its containers with an
        // error instead of dropping them from the answer.
        .flat_map(|chunk| {
            chunk.unwrap_or_else(|part| {
                part.iter()
                    .map(|id| {
                        (
                            id.clone(),
                            Err(ContainerizerError::UsagePanicked(id.clone())),
                        )
                    })
                    .collect()
            })
        })
        .collect()
    }

    /// The usage of `id`, whose record `dir` is (`None`: unknown), read
    /// through `ctx` (its pid is set to this container's).
    pub(super) fn usage_with(
        &self,
        dir: Option<ContainerDir>,
        id: &ContainerId,
        ctx: &mut isolator::UsageContext<'_>,
        running_only: bool,
    ) -> Result<Option<ResourceStatistics>> {
        let Some(dir) = dir else {
            return Ok(None);
        };
        // Running means recorded RUNNING with its init alive: one whose
        // init died unseen is not measured (`ps` records its end).
        if running_only
            && (dir.state()?.map(|r| r.state) != Some(ContainerState::Running)
                || !dir.init_alive()?)
        {
            return Ok(None);
        }
        if dir.exists(TERMINATION_FILE) {
            return Err(ContainerizerError::NotRunning(id.clone()));
        }
        // Only the fields the isolators' construction reads: the rest of
        // the config (its seccomp profile is most of it) is skipped, not
        // built, when thousands of containers are measured.
        let config: phobos_core::UsageConfig = dir
            .read_json(CONFIG_FILE)?
            .ok_or_else(|| ContainerizerError::NoConfig(id.clone()))?;
        // The pid file is read only for isolators that measure init's
        // process tree; the cgroups isolators read the container's cgroups.
        ctx.pid = if isolator::measures_process_tree(&config.isolation) {
            dir.pid().ok().flatten()
        } else {
            None
        };
        let mut stats = ResourceStatistics::default();
        for isolator in isolator::build_with(&config, ctx.host)? {
            match isolator.usage(id, ctx) {
                Ok(Some(part)) => stats.merge_from(part),
                Ok(None) => {}
                Err(e) => tracing::warn!(container = %id, error = %e, "usage failed"),
            }
        }
        stats.timestamp = phobos_core::time::now_secs();
        apply_requests_and_limits(&mut stats, &config);
        Ok(Some(stats))
    }

    /// Applies new requests and limits to a running container and
    /// checkpoints them in its config. The memory hard limit is only
    /// raised unless `force` (lowering it below the usage would invoke the
    /// OOM killer on the task, which is why Mesos never lowers it).
    /// `None` for an unknown container; a terminated container is an error.
    pub fn update(
        &self,
        id: &ContainerId,
        resources: &Resources,
        force: bool,
    ) -> Result<Option<()>> {
        resources.validate()?;
        let Some(dir) = self.store.open(id) else {
            return Ok(None);
        };
        let _op = dir.lock_op()?;
        let running = matches!(dir.state()?.map(|r| r.state), Some(ContainerState::Running));
        if dir.exists(TERMINATION_FILE) || !running || !dir.init_alive()? {
            return Err(ContainerizerError::NotRunning(id.clone()));
        }
        let mut config = self.config(&dir)?;
        if let Some(limit) = resources.pids_limit {
            crate::launch_checks::check_pids_limit(limit, &config.isolation)?;
        }
        for isolator in isolator::build(&config)? {
            isolator.update(id, resources, force)?;
        }
        config.resources = resources.clone();
        dir.write_json(CONFIG_FILE, &config)?;
        tracing::info!(container = %id, resources = ?resources, force, "updated");
        Ok(Some(()))
    }

    /// A container's summary; `None` if unknown.
    pub fn summary(&self, id: &ContainerId) -> Result<Option<ContainerSummary>> {
        match self.store.open(id) {
            Some(dir) => self.summary_of(&dir).map(Some),
            None => Ok(None),
        }
    }

    /// The summary of the container whose record is `dir`.
    fn summary_of(&self, dir: &ContainerDir) -> Result<ContainerSummary> {
        let id = dir.id();
        // Only the fields shown: with thousands of containers, building
        // each whole config (its seccomp profile's syscall names) was most
        // of a listing's time.
        let config: phobos_core::ConfigSummary = dir
            .read_json(CONFIG_FILE)?
            .ok_or_else(|| ContainerizerError::NoConfig(id.clone()))?;
        let mut state = dir.state()?;
        // A command that ended with nobody waiting, or a destroy whose
        // process died: record it now, so the listing shows the truth (the
        // way `docker ps -a` shows Exited). Best effort: a read must work
        // when nothing can be written (a full runtime filesystem).
        if matches!(
            state.map(|r| r.state),
            Some(ContainerState::Running | ContainerState::Destroying)
        ) && !dir.init_alive()?
            && dir.try_lock_op()?.is_some()
        {
            match self.finalize(dir) {
                Ok(_) => state = dir.state()?,
                Err(e) => {
                    tracing::warn!(container = %id, error = %e, "cannot record the termination yet")
                }
            }
        }
        let termination: Option<Termination> = dir.read_json(TERMINATION_FILE)?;
        // A recorded termination is the end, whatever the state file says:
        // while a deferred release frees the resources (it holds the
        // operation lock, see `finalize_deferred`) the container has ended
        // already, and its waiters have been told.
        let state = match (&termination, state) {
            (Some(_), _) => ContainerState::Terminated,
            (None, state) => state.map_or(ContainerState::Provisioning, |r| r.state),
        };
        let network_infos = if config.network.own_namespace() {
            isolator::network_status(self.store.root(), id)
        } else {
            Vec::new()
        };
        let cgroup_info = self
            .hierarchies()
            .and_then(|h| isolator::CgroupsIsolator::net_cls_classid(h, &config))
            .map(|classid| super::CgroupInfo {
                net_cls: super::NetClsInfo { classid },
            });
        // The parsed fields move into the summary (no copies).
        Ok(ContainerSummary {
            id: id.clone(),
            state,
            pid: dir.pid().ok().flatten(),
            started_at: config.created_at,
            command: config.command.display(),
            launcher: config.launcher,
            isolation: config.isolation,
            sandbox: config.sandbox,
            resources: config.resources,
            termination,
            network_infos,
            cgroup_info,
        })
    }

    /// Every container, sorted by start time: one listing of the runtime
    /// directory, each record opened below it, read on a few threads when
    /// there are many.
    pub fn list(&self) -> Result<Vec<ContainerSummary>> {
        let containers = self.store.containers()?;
        let listing = containers.list()?;
        let chunks = on_threads(&listing.ids, |part| {
            part.iter()
                .filter_map(|id| {
                    // A container removed while listing is simply not
                    // listed, and one broken entry does not hide all the
                    // others.
                    let dir = containers.open(id)?;
                    self.summary_of(&dir)
                        .inspect_err(|e| tracing::warn!("skipping container {id}: {e}"))
                        .ok()
                })
                .collect()
        });
        let mut out = Vec::with_capacity(listing.ids.len());
        for chunk in chunks {
            match chunk {
                Ok(summaries) => out.extend(summaries),
                Err(part) => {
                    for id in part {
                        tracing::warn!("skipping container {id}: reading its record panicked");
                    }
                }
            }
        }
        out.sort_by(|a, b| a.started_at.total_cmp(&b.started_at));
        Ok(out)
    }
}

/// The fewest items worth a thread of their own in [`on_threads`].
const ITEMS_PER_THREAD: usize = 64;

/// `work` over `items` cut into contiguous chunks, each on a thread of its
/// own (as many as the host has CPUs, at most 8, and at least
/// [`ITEMS_PER_THREAD`] items each: a few containers are read on the
/// calling thread's one worker), the chunks' results in the order of
/// `items`. A chunk whose worker panicked is `Err` with its items.
fn on_threads<'i, T: Sync, R: Send>(
    items: &'i [T],
    work: impl Fn(&'i [T]) -> Vec<R> + Sync,
) -> Vec<std::result::Result<Vec<R>, &'i [T]>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8)
        .min(items.len().div_ceil(ITEMS_PER_THREAD).max(1));
    let chunk = items.len().div_ceil(threads).max(1);
    let work = &work;
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|part| (part, scope.spawn(move || work(part))))
            .collect();
        workers
            .into_iter()
            .map(|(part, worker)| worker.join().map_err(|_| part))
            .collect()
    })
}

/// Sets the request/limit fields of `stats` as Mesos does (§8):
/// `cpus_soft_limit` = the CPU request; `cpus_limit` = the CPU limit
/// (infinite ⇒ the host's CPU count), else the request when CFS enforces
/// it; `mem_soft_limit_bytes` = the memory request; `mem_limit_bytes` = the
/// memory limit (infinite ⇒ the host's memory), else the request.
pub(super) fn apply_requests_and_limits<'a>(
    stats: &mut ResourceStatistics,
    config: impl Into<isolator::Spec<'a>>,
) {
    let config: isolator::Spec<'a> = config.into();
    let r = config.resources;
    stats.cpus_soft_limit = r.cpus;
    stats.cpus_limit = match r.cpus_limit {
        Some(l) => Some(l.finite().unwrap_or_else(host_cpus)),
        None if config.isolator_flags.cgroups_enable_cfs => r.cpus,
        None => None,
    };
    stats.mem_soft_limit_bytes = r.mem_bytes();
    stats.mem_limit_bytes = match r.mem_limit_bytes() {
        Some(Some(bytes)) => Some(bytes),
        Some(None) => host_memory_bytes(),
        None => r.mem_bytes(),
    };
}

pub(super) fn host_cpus() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    n.max(1) as f64
}

pub(super) fn host_memory_bytes() -> Option<u64> {
    // SAFETY: sysconf has no preconditions.
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (pages > 0 && size > 0).then(|| pages as u64 * size as u64)
}

#[cfg(test)]
mod tests {
    use super::{ITEMS_PER_THREAD, on_threads};

    #[test]
    fn work_on_threads_comes_back_whole_and_in_order() {
        for n in [0, 1, ITEMS_PER_THREAD, ITEMS_PER_THREAD + 1, 1000] {
            let items: Vec<usize> = (0..n).collect();
            let threads = std::sync::Mutex::new(std::collections::HashSet::new());
            let chunks = on_threads(&items, |part| {
                threads.lock().unwrap().insert(std::thread::current().id());
                part.iter().map(|i| i * 2).collect()
            });
            let got: Vec<usize> = chunks.into_iter().flat_map(Result::unwrap).collect();
            assert_eq!(got, items.iter().map(|i| i * 2).collect::<Vec<_>>(), "{n}");
            // None take no worker, a few one; many take as many as the
            // host has CPUs (at most 8).
            let cpus = std::thread::available_parallelism().map_or(1, |c| c.get());
            let want = match n {
                0 => 0,
                n if n <= ITEMS_PER_THREAD => 1,
                n => cpus.clamp(1, 8).min(n.div_ceil(ITEMS_PER_THREAD)),
            };
            assert_eq!(threads.lock().unwrap().len(), want, "{n}");
        }
    }

    #[test]
    fn a_chunk_whose_worker_panicked_comes_back_as_its_items() {
        let items: Vec<usize> = (0..4 * ITEMS_PER_THREAD).collect();
        let chunks = on_threads(&items, |part| {
            assert!(!part.contains(&0), "the first chunk's worker panics");
            part.to_vec()
        });
        let mut seen = Vec::new();
        for chunk in chunks {
            match chunk {
                Ok(done) => seen.extend(done),
                Err(part) => {
                    assert_eq!(part[0], 0);
                    seen.extend_from_slice(part);
                }
            }
        }
        assert_eq!(seen, items);
    }
}
