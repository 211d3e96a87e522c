//! Launching: the §3.2 state machine from PROVISIONING to RUNNING
//! (provisioning an image's root filesystem, preparing the sandbox,
//! isolating, fetching, forking init and releasing it), with the checks
//! that can refuse a launch before anything is written.

use super::*;

impl MesosContainerizer {
    /// Launches `config` and returns once it is RUNNING. On failure the
    /// container is torn down and its termination recorded.
    pub fn launch(&self, config: &ContainerConfig, stdin: Option<OwnedFd>) -> Result<Launched> {
        // Everything that can be checked without touching the disk first.
        let isolators = isolator::build_with(config, &self.host())?;
        crate::launch_checks::check(config)?;
        let launcher = self.launcher_for(config)?.with_spares(self.spares.clone());
        // A root another runtime directory owns is refused before anything
        // is written; one not marked yet is claimed once the launch made it.
        let root_owned = match &launcher {
            Launcher::Linux(l) => launcher::owner::check(l.root_cgroup(), self.store.root())?,
            Launcher::Posix => true,
        };
        check_rootfs(config)?;
        if config.image.is_some() && self.provisioner.is_none() {
            return Err(ContainerizerError::Rootfs(
                "images need an image provisioner, and this containerizer has none".into(),
            ));
        }
        // An image's user is known once it is provisioned.
        let (user, home) = match config.image {
            Some(_) => (None, None),
            None => resolve_user(config, config.user.as_deref())?,
        };
        // A nested container's parent, held running until it runs.
        let parent = crate::nested::ParentHold::take(&self.store, &config.id)?;
        let nested_config;
        let config = match &parent {
            Some(parent) => {
                nested_config = parent.child_config(config);
                &nested_config
            }
            None => config,
        };
        if self.store.open(&config.id).is_none() {
            self.check_sandbox_is_new(config)?;
        }

        // A caller's own stdin (`run -i`) is the command's: no pipes then.
        let pipes = config.pipe_switchboard() && stdin.is_none();
        let tty = match config.tty.is_some() || pipes {
            true => Some(tty_channel()?),
            false => None,
        };
        let new = self.store.create(&config.id)?;
        new.write_json(CONFIG_FILE, config)?;
        new.set_state(ContainerState::Provisioning)?;
        StopPoint::hit(&self.stop_at, "created");
        let (dir, op_lock, init_lock) = new.publish()?;
        StopPoint::hit(&self.stop_at, ContainerState::Provisioning.name());
        tracing::info!(container = %config.id, "launching");

        let mut progress = Progress::new(&dir, self.stop_at.clone());
        let mut forked_pid = None;
        let outcome = self
            .launch_steps(
                config,
                &dir,
                &launcher,
                &isolators,
                user,
                home,
                &init_lock,
                stdin,
                tty.as_ref().map(|(_, init_end)| init_end),
                parent.as_ref(),
                &mut progress,
                &mut forked_pid,
            )
            .and_then(|started| match &launcher {
                Launcher::Linux(l) if !root_owned => {
                    self.claim_cgroups_root(l)?;
                    Ok(started)
                }
                _ => Ok(started),
            });
        // The init helper holds its own copy of the lock from here on.
        drop(init_lock);
        match outcome {
            Ok((pid, pidfd, mount_ns)) => {
                drop(op_lock);
                Ok(Launched {
                    dir,
                    pid,
                    pidfd,
                    tty: tty.map(|(ours, _)| ours),
                    mount_ns,
                })
            }
            Err(err) => {
                let cause = match &err {
                    ContainerizerError::DestroyedDuring { .. } => Cause::Destroyed,
                    other => Cause::LaunchFailed(other.to_string()),
                };
                if let Err(e) = self.teardown(&dir, config, &launcher, &isolators, cause) {
                    tracing::error!(container = %config.id, error = %e, "cleaning up a failed launch");
                }
                if let Some(pid) = forked_pid {
                    reap_child(pid);
                }
                drop(op_lock);
                Err(err)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn launch_steps(
        &self,
        config: &ContainerConfig,
        dir: &ContainerDir,
        launcher: &Launcher,
        isolators: &[Box<dyn Isolator>],
        user: Option<ResolvedUser>,
        home: Option<String>,
        init_lock: &File,
        stdin: Option<OwnedFd>,
        tty: Option<&OwnedFd>,
        parent: Option<&crate::nested::ParentHold>,
        progress: &mut Progress<'_>,
        forked_pid: &mut Option<i32>,
    ) -> Result<(i32, Option<OwnedFd>, Option<OwnedFd>)> {
        // PROVISIONING: the image's root filesystem, and the config as the
        // image makes it (checkpointed again, as Mesos does in `prepare`).
        let provisioned;
        let (config, user, home) = match self.provision(config, dir)? {
            Some(merged) => {
                provisioned = merged;
                let (user, home) = resolve_user(&provisioned, provisioned.user.as_deref())?;
                (&provisioned, user, home)
            }
            None => (config, user, home),
        };
        progress.to(ContainerState::Preparing)?;
        let (stdout, stderr) = self.prepare_sandbox(config, user.as_ref())?;
        let owner = user.as_ref().map(|u| (u.uid, u.gid));
        // With a root filesystem the command sees its sandbox at the
        // sandbox directory (Mesos §3.4).
        let sandbox_inside = config.sandbox_in_container();
        let argv = config.command.exec_argv();
        let program = config.command.program();
        let mut info = LaunchInfo {
            program: (argv.first().map(String::as_str) != Some(program))
                .then(|| program.to_owned()),
            argv,
            forwards_kill_and_stop: true,
            working_dir: config
                .working_dir
                .clone()
                .unwrap_or_else(|| sandbox_inside.clone()),
            hostname: config.hostname.clone(),
            user,
            hardening: phobos_core::Hardening {
                no_new_privileges: config.hardening.no_new_privileges,
                shm_size: config.hardening.shm_size,
                ..Default::default()
            },
            ..LaunchInfo::default()
        };
        let mut env = vec![(
            "MESOS_SANDBOX".to_owned(),
            sandbox_inside.display().to_string(),
        )];
        // With the systemd driver the container's cgroup is a scope that
        // systemd makes; it must exist before the isolators write into it.
        let scope_hold = launcher.start_unit(&config.id)?;
        if scope_hold.is_some() {
            StopPoint::hit(&self.stop_at, "scope-started");
        }
        for isolator in isolators {
            if let Some(contribution) = isolator.prepare(config)? {
                info.merge(contribution);
            }
        }
        env.append(&mut info.env);
        // HOME from the image's passwd unless the container's own
        // environment sets it, as Docker does.
        env.extend(home.map(|h| ("HOME".to_owned(), h)));
        env.extend(config.env.iter().cloned());
        info.env = merge_env(env);
        if config.hostname.is_some() && !info.has(crate::launch_info::Namespace::Uts) {
            info.merge(crate::launch_info::Contribution {
                namespaces: vec![crate::launch_info::Namespace::Uts],
                ..Default::default()
            });
        }
        if let Some(parent) = parent {
            parent.apply(config, &mut info);
        }
        if let Some(root) = &config.rootfs {
            info.rootfs = Some(rootfs_plan(config, root, dir, &mut info)?);
        }
        info.tty = config.tty.map(|t| crate::launch_info::TtyLaunch {
            size: t.window_size.unwrap_or(phobos_tty::pty::DEFAULT_SIZE),
            private_devpts: info.rootfs.is_some(),
        });
        info.pipes = config.pipe_switchboard() && stdin.is_none();
        // The `logrotate` logger: init pumps the output (a switchboard's
        // is logged by the switchboard instead).
        info.logger = match (&config.logrotate, &config.tty) {
            (Some(rotation), None) if !info.pipes => Some(crate::launch_info::LoggerLaunch {
                sandbox: config.sandbox.clone(),
                rotation: *rotation,
            }),
            _ => None,
        };
        dir.write_json(LAUNCH_INFO_FILE, &info)?;

        // A plain top-level launch (no root filesystem, terminal, pipes
        // or parent; the cgroupfs driver) has a pre-started spawner clone
        // its init (a long-running face's, made in the namespaces it asks
        // for, or the one `phobos run` started with it).
        let plain = matches!(launcher, Launcher::Linux(_))
            && parent.is_none()
            && scope_hold.is_none()
            && tty.is_none()
            && !info.pipes
            && info.rootfs.is_none()
            && info.join_parent.is_none();
        // Init (or the spawner that clones it) moves itself into the v1
        // cgroups (`Isolator::join_files`): cheaper than being moved, and
        // before its exec.
        let join = isolator::JoinFiles::of(isolators, &config.id, plain);
        let cgroup = launcher.prepare(&config.id)?;
        let spec = InitSpec {
            exe: &self.init_exe,
            runtime_dir: dir.path(),
            clone_flags: info.clone_flags(),
            stdin: stdin.as_ref(),
            stdout: &stdout,
            stderr: &stderr,
            init_lock,
            cgroup: cgroup.as_ref(),
            join_cgroups: &join.any,
            join_own_memory: &join.own_memory,
            join: None,
            tty,
        };
        let spawn = |spawner: &mut launcher::spawner::Spawner| {
            spawner
                .spawn(&spec)
                .inspect_err(|e| {
                    tracing::warn!(container = %config.id, spawner = spawner.pid(), error = %e, "the init spawner failed; cloning init");
                })
                .ok()
        };
        let pooled = match &self.zygotes {
            Some(zygotes) if plain => zygotes.take(
                info.clone_flags(),
                crate::init_mounts::Premount::for_launch(&info),
            ),
            _ => None,
        };
        let spawned = match (pooled, &self.spawner) {
            (Some(mut spawner), _) => spawn(&mut spawner),
            (None, Some(spawner)) if plain => {
                let mut spawner = spawner.lock().unwrap_or_else(|e| e.into_inner());
                match spawner.used() {
                    true => None,
                    false => spawn(&mut spawner),
                }
            }
            _ => None,
        };
        let mut init = match spawned {
            Some(init) => init,
            None => launcher::spawn_init(&spec)?,
        };
        *forked_pid = Some(init.pid);
        // Init does nothing after its release but start the command when it
        // enters no root filesystem and binds no `/etc` files.
        init.ready_before_release = info.rootfs.is_none() && info.etc_files.is_none();
        // A long-running face (one that keeps spawners) holds the new mount
        // namespace, so init's exit does not tear it down on the way to
        // the answer of its wait (see `launcher::zygote::hold_mount_namespace`).
        if self.zygotes.is_some()
            && init.mount_ns.is_none()
            && info.clone_flags() & libc::CLONE_NEWNS != 0
        {
            init.mount_ns = launcher::zygote::hold_mount_namespace(init.pid);
        }
        // Init is in the scope now: its placeholder goes (and is reaped)
        // before the command could count against pids.max.
        drop(scope_hold);
        StopPoint::hit(&self.stop_at, "forked");
        dir.write_atomic(
            phobos_core::store::PID_FILE,
            format!("{}\n", init.pid).as_bytes(),
        )?;

        progress.to(ContainerState::Isolating)?;
        launcher.adopt(&config.id, &init)?;
        for isolator in isolators {
            isolator.isolate(&config.id, init.pid)?;
        }
        if let Some(parent) = parent {
            self.share_parent_cgroups(config, parent, init.pid)?;
        }
        progress.to(ContainerState::Fetching)?;
        // FETCHING (Mesos §6.2): the URIs land in the sandbox while init
        // still holds the command back; a failure fails the launch.
        if !config.fetch.is_empty() {
            let mut settings = phobos_fetch::Settings::for_container(config, owner);
            settings.progress = self.fetch_progress.clone();
            // A destroy during FETCHING (Mesos's DestroyWhileFetching)
            // stops the download at once: it marks the container, which
            // is polled here while a worker thread fetches.
            let fetched = phobos_fetch::fetch_all_until(
                &config.fetch,
                &config.sandbox,
                &settings,
                std::time::Duration::from_millis(100),
                &|| dir.destroy_requested(),
            );
            let fetched = match fetched {
                Err(e) if matches!(e.cause, phobos_fetch::Cause::Cancelled) => {
                    return Err(ContainerizerError::DestroyedDuring {
                        id: config.id.clone(),
                        state: ContainerState::Fetching,
                    });
                }
                other => other?,
            };
            for fetched in fetched {
                tracing::info!(container = %config.id, uri = %fetched.uri, file = %fetched.name, bytes = fetched.bytes, cache_hit = fetched.cache_hit, "fetched");
                for warning in &fetched.warnings {
                    tracing::warn!(container = %config.id, "{warning}");
                }
            }
        }
        let pid = init.pid;
        let pidfd = init.pidfd.as_ref().and_then(|fd| fd.try_clone().ok());
        let mount_ns = init.mount_ns.take();
        release(init, progress)?;
        Ok((pid, pidfd, mount_ns))
    }

    /// With `share_cgroups`, puts a nested container's init into its
    /// parent's resource cgroups too (the parent's `cgroups/*` isolators),
    /// so it is accounted to the parent. On a cgroup2-only host its kill
    /// cgroup already lies inside the parent's, which accounts it.
    fn share_parent_cgroups(
        &self,
        config: &ContainerConfig,
        parent: &crate::nested::ParentHold,
        pid: i32,
    ) -> Result<()> {
        if !config.nesting.is_some_and(|n| n.share_cgroups) {
            return Ok(());
        }
        let unified_only = self
            .hierarchies()
            .is_some_and(|h| h.layout() == phobos_cgroups::Layout::Unified);
        if unified_only {
            return Ok(());
        }
        for isolator in isolator::build_with(&parent.config, &self.host())? {
            if isolator.name() == "cgroups" {
                isolator.isolate(&parent.id, pid)?;
            }
        }
        Ok(())
    }

    /// Provisions the image of `config`, if it has one, and returns the
    /// config with the image merged in (command, environment, working
    /// directory, user, root filesystem), checkpointed.
    pub(super) fn provision(
        &self,
        config: &ContainerConfig,
        dir: &ContainerDir,
    ) -> Result<Option<ContainerConfig>> {
        let (Some(image), Some(provisioner)) = (&config.image, &self.provisioner) else {
            return Ok(None);
        };
        let provisioned = provisioner
            .provision(&config.id, &image.reference)
            .map_err(|e| ContainerizerError::Provision {
                image: image.reference.clone(),
                message: e.to_string(),
            })?;
        // Mounted, not yet recorded in the config: a crash test's point.
        StopPoint::hit(&self.stop_at, "provisioned");
        let command = &config.command;
        let no_command = !command.shell && command.value.is_empty() && command.arguments.is_empty();
        let request = match (image.command_line, no_command) {
            (_, true) => phobos_core::CommandRequest::Image,
            (true, false) => phobos_core::CommandRequest::Argv(command.exec_argv()),
            (false, false) => phobos_core::CommandRequest::Mesos(command.clone()),
        };
        let merged = phobos_core::image_config::merge(
            &provisioned.config,
            request,
            config.working_dir.clone(),
            config.user.clone(),
        )
        .map_err(|e| ContainerizerError::Provision {
            image: image.reference.clone(),
            message: e.to_string(),
        })?;
        let mut env = merged.env;
        env.extend(config.env.iter().cloned());
        let effective = ContainerConfig {
            command: merged.command,
            env,
            working_dir: merged.working_dir,
            user: merged.user,
            rootfs: Some(provisioned.rootfs),
            ..config.clone()
        };
        dir.write_json(CONFIG_FILE, &effective)?;
        Ok(Some(effective))
    }
}

pub(super) fn release(init: ForkedInit, progress: &mut Progress<'_>) -> Result<()> {
    if progress.dir.destroy_requested() {
        return Err(ContainerizerError::DestroyedDuring {
            id: progress.dir.id().clone(),
            state: progress.state,
        });
    }
    init.release()?;
    progress.to(ContainerState::Running)
}

/// Tracks the launch state and logs each transition with the time spent in
/// the previous state, as Mesos does.
pub(super) struct Progress<'a> {
    dir: &'a ContainerDir,
    state: ContainerState,
    since: Instant,
    stop_at: Option<StopPoint>,
}

impl<'a> Progress<'a> {
    fn new(dir: &'a ContainerDir, stop_at: Option<StopPoint>) -> Self {
        Self {
            dir,
            state: ContainerState::Provisioning,
            since: Instant::now(),
            stop_at,
        }
    }

    fn to(&mut self, next: ContainerState) -> Result<()> {
        if self.dir.destroy_requested() {
            return Err(ContainerizerError::DestroyedDuring {
                id: self.dir.id().clone(),
                state: self.state,
            });
        }
        debug_assert!(self.state.may_become(next), "{} -> {next}", self.state);
        self.dir.set_state(next)?;
        tracing::info!(
            container = %self.dir.id(),
            "transitioned from {} to {next} after {:?}",
            self.state,
            self.since.elapsed()
        );
        self.state = next;
        self.since = Instant::now();
        StopPoint::hit(&self.stop_at, next.name());
        Ok(())
    }
}

/// Refuses a root filesystem or volumes the launch cannot honour, before
/// anything is written.
pub(super) fn check_rootfs(config: &ContainerConfig) -> Result<()> {
    let bad = |m: String| Err(ContainerizerError::Rootfs(m));
    if config.rootfs.is_none() && config.image.is_none() {
        if !config.volumes.is_empty() {
            return bad(
                "volumes need a root filesystem (the Mesos containerizer mounts them into one)"
                    .into(),
            );
        }
        return Ok(());
    }
    if config.launcher != LauncherKind::Linux {
        return bad(format!(
            "a root filesystem needs the linux launcher, not '{}'",
            config.launcher.name()
        ));
    }
    if !config.isolation.iter().any(|n| n == "filesystem/linux") {
        return bad("a root filesystem needs the filesystem/linux isolator".into());
    }
    if let Some(root) = &config.rootfs
        && (!root.is_absolute() || !root.is_dir())
    {
        return bad(format!(
            "the root filesystem {} is not an existing directory given by its absolute path",
            root.display()
        ));
    }
    for volume in &config.volumes {
        volume
            .validate()
            .map_err(|reason| ContainerizerError::Rootfs(format!("invalid volume: {reason}")))?;
        if let phobos_core::VolumeSource::HostPath(path) = volume.source()
            && !path.exists()
        {
            return bad(format!(
                "the volume's host path {} does not exist",
                path.display()
            ));
        }
    }
    Ok(())
}

/// `spec` resolved where the command will run: in the container's root
/// filesystem (its own /etc/passwd and /etc/group, with `HOME`), else on
/// the host.
pub(super) fn resolve_user(
    config: &ContainerConfig,
    spec: Option<&str>,
) -> Result<(Option<ResolvedUser>, Option<String>)> {
    let Some(spec) = spec else {
        return Ok((None, None));
    };
    match &config.rootfs {
        Some(root) => {
            let found = crate::image_user::resolve_in_rootfs(root, spec)
                .map_err(ContainerizerError::Rootfs)?;
            Ok((Some(found.user), Some(found.home)))
        }
        None => Ok((Some(user::resolve(spec)?), None)),
    }
}

/// What init mounts into the root filesystem: `/etc/hosts`,
/// `/etc/resolv.conf` and `/etc/hostname`, the sandbox at the sandbox
/// directory, then the volumes, parents before children. A container with
/// its own UTS namespace and no hostname is named after its ID, as Docker
/// names containers.
pub(super) fn rootfs_plan(
    config: &ContainerConfig,
    root: &Path,
    dir: &ContainerDir,
    info: &mut LaunchInfo,
) -> Result<crate::launch_info::RootfsPlan> {
    use crate::launch_info::{Bind, BindSource, Namespace};
    if info.hostname.is_none() && info.has(Namespace::Uts) {
        let id = config.id.as_str();
        let end = id.char_indices().nth(64).map_or(id.len(), |(i, _)| i);
        info.hostname = Some(id[..end].to_owned());
    }
    let hostname_file = match &info.hostname {
        Some(name) => {
            dir.write_atomic(HOSTNAME_FILE, format!("{name}\n").as_bytes())?;
            Some(dir.file(HOSTNAME_FILE))
        }
        None => None,
    };
    let sandbox_inside = config.sandbox_in_container();
    // A container on its own network gets the files `network/cni`
    // generates (written in ISOLATING, before init enters the root
    // filesystem); on the host network, the host's, read-only.
    let mut binds = match &info.etc_files {
        Some(files) => [
            (&files.hosts, "/etc/hosts"),
            (&files.hostname, "/etc/hostname"),
            (&files.resolv_conf, "/etc/resolv.conf"),
        ]
        .into_iter()
        .map(|(source, target)| Bind {
            source: BindSource::Host(source.clone()),
            target: PathBuf::from(target),
            read_only: false,
        })
        .collect(),
        None => crate::rootfs::etc_binds(hostname_file),
    };
    binds.push(Bind {
        source: BindSource::Host(config.sandbox.clone()),
        target: sandbox_inside.clone(),
        read_only: false,
    });
    let mut volumes: Vec<&phobos_core::Volume> = config.volumes.iter().collect();
    volumes.sort_by_key(|v| v.target(&sandbox_inside).components().count());
    for volume in volumes {
        let source = match volume.source() {
            phobos_core::VolumeSource::HostPath(path) => BindSource::Host(path.to_owned()),
            phobos_core::VolumeSource::SandboxPath(path) => BindSource::Sandbox {
                sandbox: config.sandbox.clone(),
                path: path.to_owned(),
            },
        };
        binds.push(Bind {
            source,
            target: volume.target(&sandbox_inside),
            read_only: volume.read_only,
        });
    }
    let (mount_api, note) = phobos_core::mount_api::current();
    if let Some(note) = note {
        tracing::warn!("{note}");
    }
    Ok(crate::launch_info::RootfsPlan {
        root: root.to_owned(),
        binds,
        devices: config.hardening.device_nodes.clone(),
        mount_api,
        shm_size: config.hardening.shm_size,
    })
}

/// The container's `/etc/hostname`, in its runtime directory.
pub(super) const HOSTNAME_FILE: &str = "hostname";

/// Collapses an ordered list of variables so later entries win, keeping the
/// position of each name's first appearance; adds the default PATH.
pub(crate) fn merge_env(pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(pairs.len() + 1);
    for (k, v) in pairs {
        match out.iter_mut().find(|(name, _)| *name == k) {
            Some(slot) => slot.1 = v,
            None => out.push((k, v)),
        }
    }
    if !out.iter().any(|(k, _)| k == "PATH") {
        out.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    out
}
