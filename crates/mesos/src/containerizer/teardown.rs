//! Waiting for, finalizing and destroying containers: killing every
//! process in the container, cleaning up its isolators and root
//! filesystem, and recording its termination, resumable after a crash at
//! any point.

use super::*;

impl MesosContainerizer {
    /// Blocks until the container ends and returns its termination; `None`
    /// for an unknown container.
    pub fn wait(&self, id: &ContainerId) -> Result<Option<Termination>> {
        let Some(dir) = self.store.open(id) else {
            return Ok(None);
        };
        if let Some(t) = dir.read_json(TERMINATION_FILE)? {
            return Ok(Some(t));
        }
        dir.wait_for_init_exit()?;
        if self.store.open(id).is_none() {
            return Ok(None);
        }
        self.finalize(&dir).map(Some)
    }

    /// Records the termination of a container whose init is gone and frees
    /// what it held. Idempotent.
    pub fn finalize(&self, dir: &ContainerDir) -> Result<Termination> {
        let _op = dir.lock_op()?;
        if let Some(t) = dir.read_json(TERMINATION_FILE)? {
            self.complete_recorded(dir)?;
            return Ok(t);
        }
        let config = self.config(dir)?;
        self.teardown_with_config(dir, &config, finalize_cause(dir)?)
    }

    /// [`Self::finalize`] with the freeing of the container's resources
    /// (its isolators' cleanup: cgroups removed, networks detached; its
    /// image's root filesystem) left for later: returns once every
    /// process is gone and the termination is recorded, with what
    /// [`Self::release`] needs to finish, which holds the operation lock
    /// meanwhile (so no other operation sees the half-finished state).
    /// Everything that decides the termination (nested containers
    /// destroyed, the kill cgroup killed and removed, the terminal's
    /// switchboard drained, a limitation read) happens before it is
    /// recorded. A process that dies before releasing leaves a recorded
    /// termination without TERMINATED, which the next finalize or
    /// recovery completes, freeing what is left. `None` when the
    /// termination was recorded already (nothing to release).
    pub fn finalize_deferred(
        &self,
        dir: &ContainerDir,
    ) -> Result<(Termination, Option<Unreleased>)> {
        let op = dir.lock_op()?;
        if let Some(t) = dir.read_json(TERMINATION_FILE)? {
            self.complete_recorded(dir)?;
            return Ok((t, None));
        }
        let config = self.config(dir)?;
        let cause = finalize_cause(dir)?;
        let isolators = isolator::build_with(&config, &self.host())?;
        let launcher = self.launcher_for(&config)?;
        // Every process is killed and gone before the end is recorded; the
        // emptied kill cgroup is removed with the other resources, after
        // the answer (`release`).
        let begun = self.settle_begin(dir, &config, &cause)?;
        let (termination, mut errors) = self.settle_end(
            dir,
            &config,
            &launcher,
            &isolators,
            cause,
            begun,
            KillCgroups::Keep,
        )?;
        if !errors.is_empty() {
            // As a teardown does: free what can be, record nothing.
            if let Err(e) = launcher.remove_killed(&config.id) {
                errors.push(e.to_string());
            }
            errors.extend(self.free(&config, &isolators));
            return Err(ContainerizerError::Teardown {
                id: config.id.clone(),
                errors: errors.join("; "),
            });
        }
        dir.write_json(TERMINATION_FILE, &termination)?;
        StopPoint::hit(&self.stop_at, "recorded");
        Ok((
            termination,
            Some(Unreleased {
                dir: dir.clone(),
                config,
                _op: op,
            }),
        ))
    }

    /// Frees what [`Self::finalize_deferred`] left and checkpoints
    /// TERMINATED, then lets the operation lock go. On failure the state
    /// stays as it was, and the next finalize or recovery frees again.
    pub fn release(&self, unreleased: Unreleased) -> Result<()> {
        let Unreleased { dir, config, _op } = unreleased;
        self.free_and_terminate(&dir, &config)?;
        tracing::info!(container = %config.id, "terminated; resources released");
        Ok(())
    }

    /// Kills every process of the container, frees its resources and
    /// returns its termination; `None` for an unknown container. Works in
    /// every state; concurrent destroys share one result.
    pub fn destroy(&self, id: &ContainerId) -> Result<Option<Termination>> {
        let Some(dir) = self.store.open(id) else {
            return Ok(None);
        };
        if let Some(t) = dir.read_json(TERMINATION_FILE)? {
            return Ok(Some(t));
        }
        dir.mark_destroying()?;
        // A launch in progress holds this lock; it sees the marker at its
        // next transition, tears itself down and records the termination.
        let _op = dir.lock_op()?;
        if let Some(t) = dir.read_json(TERMINATION_FILE)? {
            return Ok(Some(t));
        }
        let config = self.config(&dir)?;
        self.teardown_with_config(&dir, &config, Cause::Destroyed)
            .map(Some)
    }

    pub(super) fn config(&self, dir: &ContainerDir) -> Result<ContainerConfig> {
        dir.read_json(CONFIG_FILE)?
            .ok_or_else(|| ContainerizerError::NoConfig(dir.id().clone()))
    }

    pub(super) fn teardown_with_config(
        &self,
        dir: &ContainerDir,
        config: &ContainerConfig,
        cause: Cause,
    ) -> Result<Termination> {
        let isolators = isolator::build_with(config, &self.host())?;
        let launcher = self.launcher_for(config)?;
        self.teardown(dir, config, &launcher, &isolators, cause)
    }

    /// The common tail of every destroy (§3.2): kill all processes, wait for
    /// init, clean up isolators in reverse order (continuing past failures),
    /// record the termination. The caller holds the operation lock.
    pub(super) fn teardown(
        &self,
        dir: &ContainerDir,
        config: &ContainerConfig,
        launcher: &Launcher,
        isolators: &[Box<dyn Isolator>],
        cause: Cause,
    ) -> Result<Termination> {
        let (termination, errors) = self.settle(dir, config, launcher, isolators, cause)?;
        self.conclude(dir, config, isolators, termination, errors)
    }

    /// A teardown's last part: frees what the container held, then
    /// records its termination and TERMINATED; with failures (`errors`
    /// from settling too), frees what can be and records nothing.
    pub(super) fn conclude(
        &self,
        dir: &ContainerDir,
        config: &ContainerConfig,
        isolators: &[Box<dyn Isolator>],
        termination: Termination,
        mut errors: Vec<String>,
    ) -> Result<Termination> {
        errors.extend(self.free(config, isolators));
        if !errors.is_empty() {
            return Err(ContainerizerError::Teardown {
                id: config.id.clone(),
                errors: errors.join("; "),
            });
        }
        dir.write_json(TERMINATION_FILE, &termination)?;
        StopPoint::hit(&self.stop_at, "recorded");
        dir.set_state(ContainerState::Terminated)?;
        tracing::info!(container = %config.id, termination = ?termination, "terminated");
        Ok(termination)
    }

    /// The first part of a teardown: everything that decides the
    /// termination. Kills every process (nested containers first), waits
    /// for init, stops the terminal's switchboard, reads a limitation
    /// before cleanup removes the evidence; returns the termination and
    /// the failures met on the way (continuing past them).
    fn settle(
        &self,
        dir: &ContainerDir,
        config: &ContainerConfig,
        launcher: &Launcher,
        isolators: &[Box<dyn Isolator>],
        cause: Cause,
    ) -> Result<(Termination, Vec<String>)> {
        let begun = self.settle_begin(dir, config, &cause)?;
        self.settle_end(
            dir,
            config,
            launcher,
            isolators,
            cause,
            begun,
            KillCgroups::Remove,
        )
    }

    /// What a teardown decides before the kill: the DESTROYING checkpoint
    /// (unless the command ended by itself), the nested containers
    /// destroyed, whether the command had ended already, init's pid and
    /// whether it is alive. After a crash from here on, the checkpoint
    /// makes the next finalize or recovery decide the same termination.
    pub(super) fn settle_begin(
        &self,
        dir: &ContainerDir,
        config: &ContainerConfig,
        cause: &Cause,
    ) -> Result<Begun> {
        let id = &config.id;
        let previous = dir.state()?.map(|r| r.state);
        // A command that ended by itself needs no DESTROYING checkpoint: if
        // this process dies mid-way, RUNNING with a dead init is finalized
        // again, and every step below is idempotent.
        if previous != Some(ContainerState::Destroying) && !matches!(cause, Cause::Exited) {
            dir.set_state(ContainerState::Destroying)?;
            tracing::info!(container = %id, from = ?previous, "destroying");
            StopPoint::hit(&self.stop_at, "destroying");
        }
        // Nested containers first, depth-first (Mesos destroys a parent's
        // children before the parent).
        let mut errors = Vec::new();
        for child in self.store.children(id)? {
            if let Err(e) = self.destroy(&child) {
                errors.push(format!("nested container {child}: {e}"));
            }
        }
        let ended_before = read_status(dir)?;
        let pid = dir.pid().ok().flatten();
        let alive = dir.init_alive()?;
        Ok(Begun {
            previous,
            ended_before,
            pid,
            alive,
            errors,
        })
    }

    /// The rest of [`Self::settle`] after [`Self::settle_begin`]: the kill
    /// (or, after a batch's kill, the removal of the emptied cgroups), the
    /// wait for init and the termination.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn settle_end(
        &self,
        dir: &ContainerDir,
        config: &ContainerConfig,
        launcher: &Launcher,
        isolators: &[Box<dyn Isolator>],
        cause: Cause,
        begun: Begun,
        kill_cgroups: KillCgroups,
    ) -> Result<(Termination, Vec<String>)> {
        let id = &config.id;
        let Begun {
            previous,
            ended_before,
            pid,
            alive,
            mut errors,
        } = begun;
        let init = pid.filter(|_| alive);
        let killed = match kill_cgroups {
            KillCgroups::Remove => launcher.destroy(id, init),
            KillCgroups::Keep => launcher.kill(id, init),
        };
        match killed {
            Ok(()) => {
                dir.wait_for_init_exit()?;
                // Init is gone and we hold the operation lock: whatever a
                // killed writer (or init's reserved status) left is stale.
                dir.remove_temporaries()?;
                StopPoint::hit(&self.stop_at, "killed");
            }
            Err(e) => errors.push(e.to_string()),
        }
        // The terminal's switchboard ends with the container: after a
        // command that ended by itself it may still drain, briefly.
        let grace = match cause {
            Cause::Exited => crate::switchboard::EXIT_GRACE,
            _ => std::time::Duration::ZERO,
        };
        crate::switchboard::stop(dir, grace);
        // Limits hit that init could not record (it was itself killed, or
        // an older init): asked before cleanup removes the evidence.
        let init_record = dir.read_json::<InitStatus>(STATUS_FILE)?;
        let mut limitation = init_record.as_ref().and_then(init_limitation);
        if limitation.is_none() && matches!(cause, Cause::Exited) {
            limitation = isolators
                .iter()
                .find_map(|i| i.limitation(id).ok().flatten());
        }
        // Init is gone by now (or the failure is reported): no new status.
        let status = init_record.as_ref().map(|r| r.status);
        let launch_failed = matches!(cause, Cause::LaunchFailed(_));
        // Only a command that was started can have been killed; a launch
        // stopped before RUNNING has no status, as in Mesos.
        let started = matches!(
            previous,
            Some(ContainerState::Running | ContainerState::Destroying)
        );
        let killed = pid
            .filter(|_| started)
            .map(|_| WaitStatus::signaled(libc::SIGKILL));
        let termination = match cause {
            _ if ended_before.is_some() => {
                Termination::from_exit(ended_before.unwrap_or(WaitStatus(0)))
            }
            Cause::Exited => match status {
                Some(status) => Termination::from_exit(status),
                // Init died without writing: it was SIGKILLed (§3.11).
                None => Termination {
                    status: killed,
                    state: Some(TaskState::Failed),
                    message: Some("the init helper was killed before the command ended".into()),
                    ..Termination::default()
                },
            },
            Cause::Destroyed => Termination {
                status: status.or(killed),
                state: Some(TaskState::Killed),
                message: Some("Container destroyed".into()),
                ..Termination::default()
            },
            Cause::LaunchFailed(message) => Termination {
                state: Some(TaskState::Failed),
                reason: Some(Reason::ContainerLaunchFailed),
                message: Some(format!("Failed to launch container: {message}")),
                ..Termination::default()
            },
            Cause::Interrupted(state) => Termination {
                state: Some(TaskState::Failed),
                reason: Some(Reason::ContainerLaunchFailed),
                message: Some(format!(
                    "the launch was interrupted while {state} (the launching process died)"
                )),
                ..Termination::default()
            },
        };
        let termination = match limitation {
            // A limitation ends the container as Mesos's destroy does:
            // TASK_FAILED with the limitation's reason (§3.2).
            Some(l) if !launch_failed => Termination {
                // Init failing to start the command (its root filesystem)
                // is a launch failure: no command status.
                status: termination
                    .status
                    .filter(|_| l.reason != Reason::ContainerLaunchFailed),
                state: Some(TaskState::Failed),
                reason: Some(l.reason),
                message: Some(l.message),
                limited_resources: l.resources,
            },
            _ => termination,
        };
        Ok((termination, errors))
    }

    /// The second part of a teardown: every isolator's cleanup in reverse
    /// order and the image's root filesystem, continuing past failures,
    /// which are returned. Idempotent.
    fn free(&self, config: &ContainerConfig, isolators: &[Box<dyn Isolator>]) -> Vec<String> {
        let id = &config.id;
        let mut errors = Vec::new();
        for isolator in isolators.iter().rev() {
            if let Err(e) = isolator.cleanup(id) {
                errors.push(e.to_string());
            }
        }
        // The image's root filesystem, once nothing runs in it (Mesos's
        // provisioner destroy): unmounted, removed, no longer in use.
        if config.image.is_some() {
            match &self.provisioner {
                Some(p) => {
                    if let Err(e) = p.destroy(id) {
                        errors.push(format!("failed to remove the root filesystem: {e}"));
                    }
                }
                None => errors.push(
                    "the container's root filesystem needs an image provisioner to be removed"
                        .into(),
                ),
            }
        }
        errors
    }

    /// Finishes a teardown that recorded the termination but stopped
    /// before checkpointing TERMINATED (a destroy SIGKILLed at its last
    /// step, a deferred release that never ran): drops its stale
    /// temporaries, frees the container's resources again (every cleanup
    /// is idempotent) and sets the state. The caller holds the operation
    /// lock. Returns whether there was anything to finish.
    pub(super) fn complete_recorded(&self, dir: &ContainerDir) -> Result<bool> {
        let state = dir.state()?.map(|r| r.state);
        if state == Some(ContainerState::Terminated) || dir.init_alive()? {
            return Ok(false);
        }
        dir.remove_temporaries()?;
        self.free_and_terminate(dir, &self.config(dir)?)?;
        tracing::info!(container = %dir.id(), "completed an interrupted teardown");
        Ok(true)
    }

    /// Frees `config`'s resources (again: every cleanup is idempotent) and
    /// checkpoints TERMINATED; on a failure the state stays as it was.
    fn free_and_terminate(&self, dir: &ContainerDir, config: &ContainerConfig) -> Result<()> {
        let isolators = isolator::build_with(config, &self.host())?;
        // The kill cgroup a deferred finalize emptied and left (already
        // gone after any other teardown).
        let mut errors = Vec::new();
        if let Err(e) = self.launcher_for(config)?.remove_killed(&config.id) {
            errors.push(e.to_string());
        }
        errors.extend(self.free(config, &isolators));
        if !errors.is_empty() {
            return Err(ContainerizerError::Teardown {
                id: config.id.clone(),
                errors: errors.join("; "),
            });
        }
        dir.set_state(ContainerState::Terminated)?;
        Ok(())
    }
}

/// What a teardown's kill does with the container's emptied kill cgroups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum KillCgroups {
    /// Removes them (a teardown that frees everything before it answers).
    Remove,
    /// Leaves them for `free_and_terminate` (a deferred finalize: removed
    /// after the answer, with the other resources).
    Keep,
}

/// A container whose end is recorded and whose resources are not yet
/// freed ([`MesosContainerizer::finalize_deferred`]); it holds the
/// container's operation lock until [`MesosContainerizer::release`] (or
/// until dropped: the next finalize or recovery then frees them).
#[derive(Debug)]
pub struct Unreleased {
    dir: ContainerDir,
    config: ContainerConfig,
    _op: phobos_core::store::OpLock,
}

impl Unreleased {
    pub fn id(&self) -> &ContainerId {
        &self.config.id
    }
}

/// What [`MesosContainerizer::settle_begin`] found before the kill.
#[derive(Debug)]
pub(super) struct Begun {
    previous: Option<ContainerState>,
    ended_before: Option<WaitStatus>,
    pid: Option<i32>,
    alive: bool,
    errors: Vec<String>,
}

impl Begun {
    /// Init's pid when it is alive (what the kill must reach).
    pub(super) fn live_pid(&self) -> Option<i32> {
        self.pid.filter(|_| self.alive)
    }

    /// Records a failure met after this (it fails the teardown).
    pub(super) fn push_error(&mut self, error: String) {
        self.errors.push(error);
    }
}

/// Why a container whose init is gone ended, from its last checkpoint.
fn finalize_cause(dir: &ContainerDir) -> Result<Cause> {
    Ok(match dir.state()?.map(|r| r.state) {
        Some(ContainerState::Destroying) => Cause::Destroyed,
        Some(s) if s.is_launching() => Cause::Interrupted(s),
        _ => Cause::Exited,
    })
}

/// The limitation init recorded with the command's status, if any.
pub(super) fn init_limitation(record: &InitStatus) -> Option<isolator::Limitation> {
    Some(isolator::Limitation {
        reason: record.reason?,
        message: record.message.clone().unwrap_or_default(),
        resources: record.limited_resources.clone(),
    })
}

pub(super) fn read_status(dir: &ContainerDir) -> Result<Option<WaitStatus>> {
    Ok(dir.read_json::<InitStatus>(STATUS_FILE)?.map(|s| s.status))
}
