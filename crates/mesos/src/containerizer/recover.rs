//! Recovery after a crash or restart: re-adopting live containers,
//! finalizing ended ones, completing interrupted launches and destroys,
//! removing malformed entries and orphan cgroups and root filesystems.

use std::collections::HashSet;

use super::*;

impl MesosContainerizer {
    /// Re-adopts live containers and destroys everything half-done: launches
    /// interrupted in any state, destroys interrupted midway, cgroups with
    /// no runtime directory, and unpublished creation directories.
    /// `orphan_launcher` is the linux launcher whose cgroup root to scan;
    /// its cgroups root is claimed first: one another runtime directory
    /// owns is refused before anything changes. `other_roots` are more
    /// roots to scan for top-level orphans (the other cgroups driver's),
    /// each only where it exists and is already marked as this runtime
    /// directory's (never adopted here).
    pub fn recover(
        &self,
        orphan_launcher: Option<&LinuxLauncher>,
        other_roots: &[LinuxLauncher],
    ) -> Result<RecoverReport> {
        if let Some(launcher) = orphan_launcher {
            self.claim_cgroups_root(launcher)?;
        }
        let mut report = RecoverReport::default();
        // One listing of the runtime directory for the whole recovery; each
        // record is opened below it.
        let containers = self.store.containers()?;
        let listing = containers.list()?;
        for path in RuntimeStore::abandoned_of(&listing)? {
            match fs::remove_dir_all(&path) {
                Ok(()) => report.abandoned.push(path),
                Err(e) => report
                    .errors
                    .push(format!("failed to remove {}: {e}", path.display())),
            }
        }
        for id in &listing.ids {
            if let Err(e) = self.recover_one(containers.open(id), id, &mut report) {
                report.errors.push(format!("container {id}: {e}"));
            }
        }
        // The top-level records that remain (the names of `containers`
        // only): each hierarchy's sweep below asks about every cgroup
        // name, and a lookup per name and hierarchy was most of
        // `recover`'s system calls with thousands of containers. A name
        // not listed is looked up again, so a launch published since the
        // listing is never taken for an orphan.
        let listed: HashSet<ContainerId> = containers.top_level()?;
        let known = |name: &str| {
            ContainerId::new(name)
                .ok()
                .is_some_and(|id| listed.contains(&id) || self.store.open(&id).is_some())
        };
        if let Some(launcher) = orphan_launcher {
            self.sweep_top_level(launcher, &known, &mut report)?;
            for other in other_roots {
                if other.cgroups_root() == launcher.cgroups_root()
                    && other.driver() == launcher.driver()
                {
                    continue;
                }
                if self.owns_cgroups_root(other) {
                    self.sweep_top_level(other, &known, &mut report)?;
                    self.sweep_spares(other, &mut report);
                }
            }
            self.recover_nested_orphans(launcher, &containers, &listing, &mut report)?;
            self.sweep_spares(launcher, &mut report);
        }
        self.recover_rootfs(&mut report);
        let (swept, errors) = isolator::sweep_orphan_networks(self.store.root(), known);
        report.orphan_networks = swept;
        report.errors.extend(errors);
        Ok(report)
    }

    /// Spare cgroup directories under the cgroups root of every v1
    /// hierarchy (an agent's; one killed with its pool leaves them).
    fn sweep_spares(&self, launcher: &LinuxLauncher, report: &mut RecoverReport) {
        let Some(hierarchies) = self.hierarchies() else {
            return;
        };
        for h in hierarchies.v1_hierarchies() {
            let root = phobos_cgroups::Cgroup::new(
                &h.mount,
                launcher.cgroups_root(),
                phobos_cgroups::Version::V1,
            );
            let (removed, errors) = phobos_cgroups::spare::sweep(&root);
            report.spare_cgroups.extend(
                removed
                    .into_iter()
                    .map(|name| root.child(name).path().display().to_string()),
            );
            report
                .errors
                .extend(errors.into_iter().map(|e| format!("spare cgroup: {e}")));
        }
    }

    /// Kills and removes the top-level container cgroups under the root of
    /// `launcher` that `known` does not claim, in the kill hierarchy and
    /// the cgroups isolators' ones.
    fn sweep_top_level(
        &self,
        launcher: &LinuxLauncher,
        known: &impl Fn(&str) -> bool,
        report: &mut RecoverReport,
    ) -> Result<()> {
        for name in launcher.known_unclaimed(known)? {
            match launcher.destroy_orphan(&name) {
                Ok(()) => report.orphan_cgroups.push(name),
                Err(e) => report.errors.push(format!("orphan cgroup {name}: {e}")),
            }
        }
        // The cgroups isolators' directories in the other hierarchies
        // (cpu, memory, ... on v1 hosts), as Mesos's cgroups isolator
        // recovers and destroys its orphans.
        if let Some(hierarchies) = self.hierarchies() {
            let root = launcher.cgroups_root().to_string_lossy().into_owned();
            let (removed, errors) =
                isolator::CgroupsIsolator::sweep_orphans(hierarchies, &root, known);
            for name in removed {
                if !report.orphan_cgroups.contains(&name) {
                    report.orphan_cgroups.push(name);
                }
            }
            report.errors.extend(errors);
        }
        Ok(())
    }

    /// Nested containers' cgroups with no record (Mesos's nested launcher
    /// orphans): under every container's cgroups, `mesos/<child>` that no
    /// record `<parent>/containers/<child>` holds is killed and removed,
    /// in the kill hierarchy and the cgroups isolators' ones. Each parent's
    /// cgroups are where its record's cgroups root and driver put them,
    /// whatever the configuration says now. Only records that hold a
    /// directory of nested containers are looked at: it is made before
    /// any nested container's record and cgroups and goes only with the
    /// whole record, so a parent without one has no nested cgroups (and
    /// nothing is probed in each hierarchy for the thousands without).
    fn recover_nested_orphans(
        &self,
        current: &LinuxLauncher,
        containers: &Containers,
        listing: &Listing,
        report: &mut RecoverReport,
    ) -> Result<()> {
        for parent in listing.ids.iter().filter(|id| listing.has_nested(id)) {
            // Gone since the listing (destroyed above): no longer a parent.
            let Some(dir) = containers.open(parent) else {
                continue;
            };
            // The record is read only when the parent's cgroup is not where
            // the current configuration puts it (a stat per container, as
            // recover scales with thousands of them).
            let own;
            let record = match current.cgroup(parent).exists() {
                true => None,
                false => Some(self.config(&dir)),
            };
            let launcher = match record {
                Some(Ok(config))
                    if config.launcher == phobos_core::LauncherKind::Linux
                        && (Path::new(&config.cgroups_root) != current.cgroups_root()
                            || config.cgroups_driver != current.driver()) =>
                {
                    match self.launcher_for(&config) {
                        Ok(Launcher::Linux(l)) => {
                            own = l;
                            &own
                        }
                        _ => continue,
                    }
                }
                _ => current,
            };
            let root = launcher.cgroups_root().to_owned();
            let known = |name: &str| {
                ContainerId::new(name)
                    .ok()
                    .and_then(|leaf| parent.child(&leaf).ok())
                    .and_then(|id| self.store.open(&id))
                    .is_some()
            };
            for name in launcher.known_nested(parent)? {
                if known(&name) {
                    continue;
                }
                let full = format!("{parent}.{name}");
                match launcher.destroy_nested_orphan(parent, &name) {
                    Ok(()) => report.orphan_cgroups.push(full),
                    Err(e) => report.errors.push(format!("orphan cgroup {full}: {e}")),
                }
            }
            if let Some(hierarchies) = self.hierarchies() {
                let below = root
                    .join(crate::launcher::cgroup_rel(launcher.driver(), parent))
                    .join(crate::launcher::NESTED_CGROUPS_DIR);
                let (removed, errors) = isolator::CgroupsIsolator::sweep_orphans(
                    hierarchies,
                    &below.to_string_lossy(),
                    known,
                );
                for name in removed {
                    let full = format!("{parent}.{name}");
                    if !report.orphan_cgroups.contains(&full) {
                        report.orphan_cgroups.push(full);
                    }
                }
                report.errors.extend(errors);
            }
        }
        Ok(())
    }

    /// Removes provisioned root filesystems whose container has no record
    /// (left by a teardown that could not finish before its record went).
    pub(super) fn recover_rootfs(&self, report: &mut RecoverReport) {
        let Some(provisioner) = &self.provisioner else {
            return;
        };
        let ids = match provisioner.provisioned() {
            Ok(ids) => ids,
            Err(e) => {
                report
                    .errors
                    .push(format!("failed to list provisioned root filesystems: {e}"));
                return;
            }
        };
        for id in ids.into_iter().filter(|id| self.store.open(id).is_none()) {
            match provisioner.destroy(&id) {
                Ok(()) => report.orphan_rootfs.push(id),
                Err(e) => report
                    .errors
                    .push(format!("orphan root filesystem of {id}: {e}")),
            }
        }
    }

    /// Recovers `id`, whose record is `dir` (`None`: gone).
    pub(super) fn recover_one(
        &self,
        dir: Option<ContainerDir>,
        id: &ContainerId,
        report: &mut RecoverReport,
    ) -> Result<()> {
        let Some(dir) = dir else {
            return Ok(());
        };
        let Some(op) = lock_op_within(&dir, BUSY_GRACE)? else {
            if !dir.exists(TERMINATION_FILE) {
                report.busy.push(id.clone());
            }
            return Ok(());
        };
        let (config, state) = match dir.well_formed() {
            Ok((config, state)) => (config, Some(state.state)),
            Err(why) => {
                if dir.init_alive()? {
                    tracing::warn!("skipping container {id}: {why} (its init is alive)");
                } else {
                    dir.remove_whole(&self.work_dir)?;
                    report.malformed.push((id.clone(), why));
                }
                return Ok(());
            }
        };
        if dir.exists(TERMINATION_FILE) {
            if self.complete_recorded(&dir)? {
                report.finalized.push(id.clone());
            }
            return Ok(());
        }
        let alive = state == Some(ContainerState::Running) && dir.init_alive()?;
        match state {
            // A debug container is destroyed by recovery (Mesos's
            // `force_destroy_on_recovery`).
            Some(ContainerState::Running) if alive && config.nesting.is_some_and(|n| n.debug) => {
                self.teardown_with_config(&dir, &config, Cause::Destroyed)?;
                tracing::info!(container = %id, "debug container destroyed by recovery");
                report.destroyed.push(id.clone());
            }
            Some(ContainerState::Running) if alive => {
                tracing::info!(container = %id, "recovered");
                report.recovered.push(id.clone());
            }
            Some(ContainerState::Running) => {
                self.teardown_with_config(&dir, &config, Cause::Exited)?;
                report.finalized.push(id.clone());
            }
            Some(ContainerState::Destroying) => {
                self.teardown_with_config(&dir, &config, Cause::Destroyed)?;
                report.finalized.push(id.clone());
            }
            other => {
                // The launcher died mid-launch: an orphan, as in Mesos.
                let state = other.unwrap_or(ContainerState::Provisioning);
                self.teardown_with_config(&dir, &config, Cause::Interrupted(state))?;
                // Destroyed whole: the sandbox too, so a later container
                // with this ID never finds the old files.
                dir.remove_whole(&self.work_dir)?;
                drop(op);
                report.destroyed.push(id.clone());
            }
        }
        Ok(())
    }

    /// Removes the runtime directory of terminated containers (terminated
    /// at least `older_than` ago) and their sandboxes when those live under
    /// our work dir (a sandbox elsewhere, such as a Mesos agent's executor
    /// directory, belongs to whoever chose it); returns their IDs.
    /// A container whose termination is recorded but whose resources are
    /// not yet freed (its process died between the two) is freed first;
    /// one whose freeing fails keeps its record, for the next try.
    pub fn remove_terminated(&self, older_than: Option<Duration>) -> Result<Vec<ContainerId>> {
        let mut removed = Vec::new();
        for id in self.store.list()? {
            match self.remove_terminated_one(&id, older_than, false) {
                Ok(true) => removed.push(id),
                Ok(false) => {}
                Err(e) => tracing::warn!(container = %id, error = %e, "not removed"),
            }
        }
        Ok(removed)
    }

    /// Removes one terminated container's runtime data and sandbox (`phobos
    /// run --rm`, the agent's REMOVE); true when it had ended and is now
    /// gone. Waits for the container's operation lock: a release under way
    /// holds it, and so, for a moment, does a process another thread of a
    /// long-running face is cloning (its copy of the descriptor lives
    /// until it closes it).
    pub fn remove_if_terminated(&self, id: &ContainerId) -> Result<bool> {
        self.remove_terminated_one(id, None, true)
    }

    /// Removes a terminated container's record, under its operation lock,
    /// after completing the freeing of a recorded but unreleased
    /// termination (the same idempotent free finalize and recovery do),
    /// its nested containers' first: removing the record must never leave
    /// cgroups or a root filesystem that nothing would free. False when
    /// it has not ended, is held (unless `wait`: then it waits for the
    /// operation lock), or a nested container is held.
    fn remove_terminated_one(
        &self,
        id: &ContainerId,
        older_than: Option<Duration>,
        wait: bool,
    ) -> Result<bool> {
        let Some(dir) = self.store.open(id) else {
            return Ok(false);
        };
        let op = match wait {
            true => dir.lock_op()?,
            false => match dir.try_lock_op()? {
                Some(op) => op,
                None => return Ok(false),
            },
        };
        if dir.malformed().is_none() && dir.exists(TERMINATION_FILE) {
            if !self.free_recorded_nested(id)? {
                return Ok(false);
            }
            self.complete_recorded(&dir)?;
        }
        Ok(self
            .store
            .remove_held(&dir, &op, older_than, &self.work_dir)?)
    }

    /// Completes the freeing of every recorded, unreleased termination
    /// among `id`'s nested containers, depth-first; false when one of them
    /// is held by another operation.
    fn free_recorded_nested(&self, id: &ContainerId) -> Result<bool> {
        for child in self.store.children(id)? {
            let Some(dir) = self.store.open(&child) else {
                continue;
            };
            let Some(_op) = dir.try_lock_op()? else {
                return Ok(false);
            };
            if !self.free_recorded_nested(&child)? {
                return Ok(false);
            }
            if dir.malformed().is_none() && dir.exists(TERMINATION_FILE) {
                self.complete_recorded(&dir)?;
            }
        }
        Ok(true)
    }
}

/// How long recovery waits for a container that another process holds
/// before it reports it busy. A launcher killed right after cloning init
/// leaves its operation lock held by the clone until that execs (the
/// descriptor is close-on-exec, not close-on-fork), which on a loaded
/// machine can take a while to be scheduled.
pub(super) const BUSY_GRACE: Duration = Duration::from_secs(2);

/// The operation lock, waiting at most `grace` for whoever holds it.
pub(super) fn lock_op_within(
    dir: &ContainerDir,
    grace: Duration,
) -> Result<Option<phobos_core::store::OpLock>> {
    let deadline = Instant::now() + grace;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(op) = dir.try_lock_op()? {
            return Ok(Some(op));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
