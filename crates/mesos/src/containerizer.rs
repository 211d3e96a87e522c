//! The Mesos containerizer's operations over the runtime directory: launch
//! (the §3.2 state machine), wait, destroy, kill, listing, recovery and
//! clean-up. No operation needs a daemon: each takes the locks it needs
//! (see `phobos_core::store`) and leaves the disk consistent, even when the
//! process doing it is SIGKILLed at any point.

use std::fs::{self, File};
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use phobos_core::store::{CONFIG_FILE, LAUNCH_INFO_FILE, STATUS_FILE, TERMINATION_FILE};
use phobos_core::{
    BoxError, ContainerConfig, ContainerDir, ContainerId, ContainerState, LauncherKind, Operation,
    Outcome, Reason, ResourceStatistics, Resources, RuntimeStore, SafeDir, StoreError, TaskState,
    Termination, WaitStatus,
};

use crate::init::{DEFAULT_PATH, InitStatus};
use crate::isolator::{self, HostCache, Isolator, IsolatorError};
use crate::launch_info::{LaunchInfo, ResolvedUser};
use crate::launcher::{self, ForkedInit, InitSpec, LaunchError, Launcher, LinuxLauncher};
use crate::user::{self, UserError};
use phobos_cgroups::Hierarchies;

#[derive(Debug, thiserror::Error)]
pub enum ContainerizerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Isolator(#[from] IsolatorError),
    #[error(transparent)]
    InvalidLaunch(#[from] crate::launch_checks::InvalidLaunch),
    #[error(transparent)]
    Launch(#[from] LaunchError),
    #[error(transparent)]
    User(#[from] UserError),
    /// FETCHING failed: names the URI and the cause.
    #[error(transparent)]
    Fetch(#[from] phobos_fetch::FetchError),
    #[error("failed to prepare the sandbox {}: {source}", path.display())]
    Sandbox {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to prepare the sandbox: {0}")]
    UnsafeSandbox(#[from] phobos_core::SafeFsError),
    #[error(
        "the sandbox {} already exists and was not created for this container; remove it or use another --id",
        .0.display()
    )]
    SandboxExists(PathBuf),
    #[error("container {id} was destroyed while {state}")]
    DestroyedDuring {
        id: ContainerId,
        state: ContainerState,
    },
    #[error("container {0} has no config checkpoint")]
    NoConfig(ContainerId),
    #[error("container {0} is not running")]
    NotRunning(ContainerId),
    #[error("measuring container {0} failed: its worker thread panicked")]
    UsagePanicked(ContainerId),
    #[error("failed to signal container {id}: {source}")]
    Signal {
        id: ContainerId,
        #[source]
        source: io::Error,
    },
    #[error("destroying container {id} failed: {errors}")]
    Teardown { id: ContainerId, errors: String },
    #[error(transparent)]
    InvalidResources(#[from] phobos_core::InvalidResource),
    /// A root filesystem or volume that cannot be used as asked.
    #[error("{0}")]
    Rootfs(String),
    #[error("failed to provision image {image}: {message}")]
    Provision { image: String, message: String },
}

type Result<T, E = ContainerizerError> = std::result::Result<T, E>;

/// What `phobos exec` runs; unset fields come from the container.
#[derive(Clone, Debug, Default)]
pub struct ExecRequest {
    pub argv: Vec<String>,
    /// Added to (and overriding) the container's environment.
    pub env: Vec<(String, String)>,
    pub working_dir: Option<PathBuf>,
    /// A user name or uid; the container's user when unset.
    pub user: Option<String>,
}

/// The descriptors an exec'd command gets as its stdin, stdout and stderr.
#[derive(Clone, Copy, Debug)]
pub struct ExecStdio<'a> {
    pub stdin: &'a OwnedFd,
    pub stdout: &'a File,
    pub stderr: &'a File,
}

/// A started `phobos exec` helper: the caller waits for it (its exit code
/// is the command's, 128 + N for signal N), then calls [`ExecProcess::finish`].
#[derive(Debug)]
pub struct ExecProcess {
    pub pid: i32,
    pub pidfd: OwnedFd,
    spec: PathBuf,
}

impl ExecProcess {
    /// Reaps the helper and removes its spec; returns its wait status.
    pub fn finish(self) -> WaitStatus {
        let mut raw = 0;
        // SAFETY: waitpid on our own child with a valid out-pointer.
        while unsafe { libc::waitpid(self.pid, &mut raw, 0) } < 0
            && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
        {}
        let _ = fs::remove_file(&self.spec);
        WaitStatus(raw)
    }
}

/// A container that reached RUNNING.
#[derive(Debug)]
pub struct Launched {
    pub dir: ContainerDir,
    /// The init helper's pid (a child of the launching process).
    pub pid: i32,
    /// A pidfd for init, when the kernel gave one at clone time.
    pub pidfd: Option<OwnedFd>,
}

/// One line of `phobos ps`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ContainerSummary {
    pub id: ContainerId,
    pub state: ContainerState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    pub started_at: f64,
    pub command: String,
    pub launcher: LauncherKind,
    pub isolation: Vec<String>,
    pub sandbox: PathBuf,
    #[serde(skip_serializing_if = "Resources::is_empty")]
    pub resources: Resources,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub termination: Option<Termination>,
    /// The networks it joined (Mesos `ContainerStatus.network_infos`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub network_infos: Vec<isolator::NetworkStatus>,
}

/// What `recover` found and did.
#[derive(Debug, Default, serde::Serialize)]
pub struct RecoverReport {
    /// Live containers re-adopted.
    pub recovered: Vec<ContainerId>,
    /// Containers whose command had ended; their termination was recorded.
    pub finalized: Vec<ContainerId>,
    /// Half-launched or half-destroyed containers destroyed and removed.
    pub destroyed: Vec<ContainerId>,
    /// Cgroups with no runtime directory, killed and removed.
    pub orphan_cgroups: Vec<String>,
    /// Runtime directories of launches that never became visible.
    pub abandoned: Vec<PathBuf>,
    /// Containers left alone because another phobos process holds them.
    pub busy: Vec<ContainerId>,
    /// Malformed runtime entries (no or unreadable `config` or `state`),
    /// with what is wrong, removed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub malformed: Vec<(ContainerId, String)>,
    /// Provisioned root filesystems with no container, removed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub orphan_rootfs: Vec<ContainerId>,
    /// Network state (`<runtime_dir>/net`) of containers with no record:
    /// detached (CNI DEL, host ports released, namespace unbound).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub orphan_networks: Vec<String>,
    pub errors: Vec<String>,
}

/// Why a container is being torn down; decides its termination.
enum Cause {
    Exited,
    Destroyed,
    LaunchFailed(String),
    Interrupted(ContainerState),
}

/// The Mesos containerizer over one runtime directory.
#[derive(Debug, Clone)]
pub struct MesosContainerizer {
    store: RuntimeStore,
    work_dir: PathBuf,
    /// The binary exec'd as `phobos init`.
    init_exe: PathBuf,
    /// A test aid: stop (SIGSTOP) the launching process at this point so a
    /// test can kill it there. See [`StopPoint`].
    stop_at: Option<StopPoint>,
    /// The host's cgroup hierarchies, read from mountinfo once per
    /// containerizer instead of once per launcher and isolator.
    hierarchies: Arc<OnceLock<Option<Hierarchies>>>,
    /// Makes root filesystems from images (PROVISIONING) and removes them
    /// (every teardown); without one, images are refused.
    provisioner: Option<Arc<dyn crate::Provisioner>>,
}

/// Points of a launch where a crash test can freeze the launcher: entering
/// one of the states, `created` (the runtime directory exists but is not
/// yet published), `provisioned` (an image's root filesystem is mounted,
/// the config not yet rewritten) and `forked` (init exists, its pid is not
/// checkpointed).
/// And of a teardown (destroy, finalize, failed launch): `destroying` (the
/// DESTROYING checkpoint is written, nothing killed yet), `killed` (every
/// process is gone, isolators not yet cleaned up) and `recorded` (the
/// termination is written, TERMINATED is not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StopPoint(pub String);

impl StopPoint {
    fn hit(this: &Option<Self>, point: &str) {
        if this.as_ref().is_some_and(|p| p.0 == point) {
            // SAFETY: raise(2) stops this process until SIGCONT or SIGKILL.
            unsafe { libc::raise(libc::SIGSTOP) };
        }
    }
}

impl MesosContainerizer {
    pub fn new(runtime_dir: &Path, work_dir: &Path, init_exe: &Path) -> Self {
        Self {
            store: RuntimeStore::new(runtime_dir),
            work_dir: work_dir.to_owned(),
            init_exe: init_exe.to_owned(),
            stop_at: None,
            hierarchies: Arc::default(),
            provisioner: None,
        }
    }

    /// Provisions images' root filesystems with `provisioner`.
    pub fn with_provisioner(mut self, provisioner: Arc<dyn crate::Provisioner>) -> Self {
        self.provisioner = Some(provisioner);
        self
    }

    /// The host's cgroup hierarchies (`None` where none can be read).
    pub fn hierarchies(&self) -> Option<&Hierarchies> {
        self.hierarchies
            .get_or_init(|| Hierarchies::detect().ok())
            .as_ref()
    }

    /// Host facts for isolators, with the hierarchies already known.
    fn host(&self) -> HostCache {
        self.hierarchies()
            .cloned()
            .map_or_else(HostCache::default, HostCache::with_hierarchies)
            .with_runtime_dir(self.store.root())
    }

    /// Makes launches stop themselves at `point` (crash-safety tests).
    pub fn with_stop_point(mut self, point: Option<StopPoint>) -> Self {
        self.stop_at = point;
        self
    }

    pub fn store(&self) -> &RuntimeStore {
        &self.store
    }

    /// Where a container's sandbox lives.
    pub fn sandbox_path(&self, id: &ContainerId) -> PathBuf {
        self.work_dir.join("containers").join(id.as_str())
    }

    /// Whether `sandbox` is Phobos's own (under the work directory), made
    /// fresh for each container, rather than one chosen by a Mesos agent.
    fn owns_sandbox(&self, sandbox: &Path) -> bool {
        sandbox
            .strip_prefix(&self.work_dir)
            .is_ok_and(|rel| rel.components().next().is_some())
    }

    /// Before anything is written: Phobos's own sandbox must not exist yet
    /// (whatever is there, a directory, file or symlink, someone else put
    /// it there), and no symlink may lead to where it will be.
    fn check_sandbox_is_new(&self, sandbox: &Path) -> Result<()> {
        let Some(rel) = sandbox
            .strip_prefix(&self.work_dir)
            .ok()
            .filter(|_| self.owns_sandbox(sandbox))
        else {
            return Ok(());
        };
        let root = match SafeDir::open_trusted(&self.work_dir) {
            Ok(root) => root,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let parent = match rel.parent().map(|p| root.open_dir(p)) {
            Some(Ok(parent)) => parent,
            Some(Err(e)) if e.is_not_found() => return Ok(()),
            Some(Err(e)) => return Err(e.into()),
            None => root,
        };
        match parent.open_dir(rel.file_name().unwrap_or_default()) {
            Err(e) if e.is_not_found() => Ok(()),
            _ => Err(ContainerizerError::SandboxExists(sandbox.to_owned())),
        }
    }

    /// Creates the sandbox with `stdout` and `stderr`, owned by the task
    /// user, without following any symlink beneath the work directory (see
    /// `phobos_core::safe_fs`): Phobos's own sandbox is created here, 0700,
    /// and must not exist yet; an agent's sandbox is used as given, but
    /// only its regular files are opened, never through a symlink.
    fn prepare_sandbox(&self, sandbox: &Path, user: Option<&ResolvedUser>) -> Result<(File, File)> {
        let dir = match sandbox.strip_prefix(&self.work_dir) {
            Ok(rel) if self.owns_sandbox(sandbox) => {
                let root = SafeDir::create_trusted(&self.work_dir, 0o755)?;
                let parent = match rel.parent() {
                    Some(p) if p.components().next().is_some() => root.create_dir_all(p, 0o755)?,
                    _ => root,
                };
                let name = rel.file_name().unwrap_or_default();
                parent.create_dir(name, 0o700).map_err(|e| {
                    if e.is_already_exists() {
                        ContainerizerError::SandboxExists(sandbox.to_owned())
                    } else {
                        e.into()
                    }
                })?
            }
            _ => SafeDir::create_trusted(sandbox, 0o755)?,
        };
        let stdout = dir.append_file("stdout", 0o644)?;
        let stderr = dir.append_file("stderr", 0o644)?;
        if let Some(user) = user {
            dir.chown(user.uid, user.gid)?;
            for (file, name) in [(&stdout, "stdout"), (&stderr, "stderr")] {
                std::os::unix::fs::fchown(file, Some(user.uid), Some(user.gid)).map_err(
                    |source| ContainerizerError::Sandbox {
                        path: sandbox.join(name),
                        source,
                    },
                )?;
            }
        }
        Ok((stdout, stderr))
    }

    /// Launches `config` and returns once it is RUNNING. On failure the
    /// container is torn down and its termination recorded.
    pub fn launch(&self, config: &ContainerConfig, stdin: Option<OwnedFd>) -> Result<Launched> {
        // Everything that can be checked without touching the disk first.
        let isolators = isolator::build_with(config, &self.host())?;
        crate::launch_checks::check(config)?;
        let launcher =
            Launcher::with_hierarchies(config.launcher, &config.cgroups_root, self.hierarchies())?;
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
        if self.store.open(&config.id).is_none() {
            self.check_sandbox_is_new(&config.sandbox)?;
        }

        let new = self.store.create(&config.id)?;
        new.write_json(CONFIG_FILE, config)?;
        new.set_state(ContainerState::Provisioning)?;
        StopPoint::hit(&self.stop_at, "created");
        let (dir, op_lock, init_lock) = new.publish()?;
        StopPoint::hit(&self.stop_at, ContainerState::Provisioning.name());
        tracing::info!(container = %config.id, "launching");

        let mut progress = Progress::new(&dir, self.stop_at.clone());
        let mut forked_pid = None;
        let outcome = self.launch_steps(
            config,
            &dir,
            &launcher,
            &isolators,
            user,
            home,
            &init_lock,
            stdin,
            &mut progress,
            &mut forked_pid,
        );
        // The init helper holds its own copy of the lock from here on.
        drop(init_lock);
        match outcome {
            Ok((pid, pidfd)) => {
                drop(op_lock);
                Ok(Launched { dir, pid, pidfd })
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
    fn launch_steps(
        &self,
        config: &ContainerConfig,
        dir: &ContainerDir,
        launcher: &Launcher,
        isolators: &[Box<dyn Isolator>],
        user: Option<ResolvedUser>,
        home: Option<String>,
        init_lock: &File,
        stdin: Option<OwnedFd>,
        progress: &mut Progress<'_>,
        forked_pid: &mut Option<i32>,
    ) -> Result<(i32, Option<OwnedFd>)> {
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
        let (stdout, stderr) = self.prepare_sandbox(&config.sandbox, user.as_ref())?;
        let owner = user.as_ref().map(|u| (u.uid, u.gid));
        // With a root filesystem the command sees its sandbox at the
        // sandbox directory (Mesos §3.4).
        let sandbox_inside = config.sandbox_in_container();
        let mut info = LaunchInfo {
            argv: config.command.exec_argv(),
            working_dir: config
                .working_dir
                .clone()
                .unwrap_or_else(|| sandbox_inside.clone()),
            hostname: config.hostname.clone(),
            user,
            hardening: phobos_core::Hardening {
                no_new_privileges: config.hardening.no_new_privileges,
                ..Default::default()
            },
            ..LaunchInfo::default()
        };
        let mut env = vec![(
            "MESOS_SANDBOX".to_owned(),
            sandbox_inside.display().to_string(),
        )];
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
        if let Some(root) = &config.rootfs {
            info.rootfs = Some(rootfs_plan(config, root, dir, &mut info)?);
        }
        dir.write_json(LAUNCH_INFO_FILE, &info)?;
        let cgroup = launcher.prepare(&config.id)?;

        let init = launcher::spawn_init(&InitSpec {
            exe: &self.init_exe,
            runtime_dir: dir.path(),
            clone_flags: info.clone_flags(),
            stdin: stdin.as_ref(),
            stdout: &stdout,
            stderr: &stderr,
            init_lock,
            cgroup: cgroup.as_ref(),
            join: None,
        })?;
        *forked_pid = Some(init.pid);
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
        progress.to(ContainerState::Fetching)?;
        // FETCHING (Mesos §6.2): the URIs land in the sandbox while init
        // still holds the command back; a failure fails the launch.
        if !config.fetch.is_empty() {
            let settings = phobos_fetch::Settings {
                stall_timeout: config.fetcher_stall_timeout_secs.map_or(
                    phobos_fetch::DEFAULT_STALL_TIMEOUT,
                    std::time::Duration::from_secs,
                ),
                owner,
            };
            for fetched in phobos_fetch::fetch_all(&config.fetch, &config.sandbox, &settings)? {
                tracing::info!(container = %config.id, uri = %fetched.uri, file = %fetched.name, bytes = fetched.bytes, "fetched");
                for warning in &fetched.warnings {
                    tracing::warn!(container = %config.id, "{warning}");
                }
            }
        }
        let pid = init.pid;
        let pidfd = init.pidfd.as_ref().and_then(|fd| fd.try_clone().ok());
        release(init, progress)?;
        Ok((pid, pidfd))
    }

    /// Provisions the image of `config`, if it has one, and returns the
    /// config with the image merged in (command, environment, working
    /// directory, user, root filesystem), checkpointed.
    fn provision(
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
            complete_recorded(dir)?;
            return Ok(t);
        }
        let config = self.config(dir)?;
        let cause = match dir.state()?.map(|r| r.state) {
            Some(ContainerState::Destroying) => Cause::Destroyed,
            Some(s) if s.is_launching() => Cause::Interrupted(s),
            _ => Cause::Exited,
        };
        self.teardown_with_config(dir, &config, cause)
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

    /// Starts a command inside a running container (`phobos exec`): in
    /// its namespaces, cgroups, environment, working directory and user
    /// unless `request` says otherwise, with the given stdio. A helper (the
    /// `phobos init` binary in join mode) is cloned into the container's
    /// kill cgroup, placed in its isolators' cgroups, and released; it
    /// enters the namespaces with setns(2) and supervises the command.
    /// `None` for an unknown container; a container that is not running is
    /// an error. A destroy kills the command with the container.
    pub fn exec(
        &self,
        id: &ContainerId,
        request: &ExecRequest,
        stdio: ExecStdio<'_>,
    ) -> Result<Option<ExecProcess>> {
        let Some(dir) = self.store.open(id) else {
            return Ok(None);
        };
        // Held while the helper is placed, so a destroy cannot slip in
        // between and leave it outside the container's cgroups.
        let _op = dir.lock_op()?;
        let not_running = || ContainerizerError::NotRunning(id.clone());
        let running = matches!(dir.state()?.map(|r| r.state), Some(ContainerState::Running));
        if dir.exists(TERMINATION_FILE) || !running || !dir.init_alive()? {
            return Err(not_running());
        }
        let init_pid = dir.pid()?.ok_or_else(not_running)?;
        let config = self.config(&dir)?;
        let info: LaunchInfo = dir
            .read_json(LAUNCH_INFO_FILE)?
            .ok_or_else(|| ContainerizerError::NoConfig(id.clone()))?;
        let user = match &request.user {
            Some(spec) => resolve_user(&config, Some(spec))?.0,
            None => info.user.clone(),
        };
        let mut env = info.env.clone();
        env.extend(request.env.iter().cloned());
        let spec = LaunchInfo {
            namespaces: info.namespaces.clone(),
            argv: request.argv.clone(),
            env: merge_env(env),
            working_dir: request
                .working_dir
                .clone()
                .unwrap_or_else(|| info.working_dir.clone()),
            user,
            // The same confinement as the container's command.
            hardening: info.hardening.clone(),
            ..LaunchInfo::default()
        };
        let spec_file = format!("exec-{}", ContainerId::random());
        dir.write_json(&spec_file, &spec)?;
        let started = self.start_exec_helper(&dir, &config, init_pid, &spec_file, stdio);
        if started.is_err() {
            let _ = fs::remove_file(dir.file(&spec_file));
        }
        let (pid, pidfd) = started?;
        Ok(Some(ExecProcess {
            pid,
            pidfd,
            spec: dir.file(&spec_file),
        }))
    }

    /// Clones, places and releases `phobos exec`'s helper; kills it again
    /// when any step fails.
    fn start_exec_helper(
        &self,
        dir: &ContainerDir,
        config: &ContainerConfig,
        init_pid: i32,
        spec_file: &str,
        stdio: ExecStdio<'_>,
    ) -> Result<(i32, OwnedFd)> {
        let id = &config.id;
        let launcher =
            Launcher::with_hierarchies(config.launcher, &config.cgroups_root, self.hierarchies())?;
        let isolators = isolator::build_with(config, &self.host())?;
        let cgroup = launcher.prepare(id)?;
        // The helper must not hold the container's init lock: fd 4 is
        // /dev/null for it.
        let no_lock = File::open("/dev/null").map_err(|source| ContainerizerError::Sandbox {
            path: PathBuf::from("/dev/null"),
            source,
        })?;
        let helper = launcher::spawn_init(&InitSpec {
            exe: &self.init_exe,
            runtime_dir: dir.path(),
            clone_flags: 0,
            stdin: Some(stdio.stdin),
            stdout: stdio.stdout,
            stderr: stdio.stderr,
            init_lock: &no_lock,
            cgroup: cgroup.as_ref(),
            join: Some((init_pid, spec_file)),
        })?;
        let pid = helper.pid;
        let placed = (|| -> Result<OwnedFd> {
            launcher.adopt(id, &helper)?;
            for isolator in &isolators {
                isolator.isolate(id, pid)?;
            }
            let pidfd = match &helper.pidfd {
                Some(fd) => fd.try_clone(),
                None => crate::sys::pidfd_open(pid),
            }
            .map_err(|source| ContainerizerError::Signal {
                id: id.clone(),
                source,
            })?;
            Ok(pidfd)
        })();
        match placed {
            Ok(pidfd) => match helper.release() {
                Ok(()) => Ok((pid, pidfd)),
                Err(e) => {
                    reap_child(pid);
                    Err(e.into())
                }
            },
            Err(e) => {
                // SAFETY: kill(2) of our own child, then reaping it.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                reap_child(pid);
                Err(e)
            }
        }
    }

    /// Sends `signal` to the container's command (through init). Returns
    /// `None` for an unknown container. A container that is still launching
    /// is destroyed instead, as Mesos does.
    pub fn kill(&self, id: &ContainerId, signal: i32) -> Result<Option<()>> {
        let Some(dir) = self.store.open(id) else {
            return Ok(None);
        };
        if dir.exists(TERMINATION_FILE) {
            return Err(ContainerizerError::NotRunning(id.clone()));
        }
        let Some(pid) = dir.pid()? else {
            self.destroy(id)?;
            return Ok(Some(()));
        };
        let not_running = || ContainerizerError::NotRunning(id.clone());
        let pidfd = crate::sys::pidfd_open(pid).map_err(|_| not_running())?;
        // The pidfd pins the process; checking the lock after opening it
        // proves the pid still is this container's init.
        if !dir.init_alive()? {
            return Err(not_running());
        }
        crate::sys::pidfd_send_signal(&pidfd, signal).map_err(|source| {
            ContainerizerError::Signal {
                id: id.clone(),
                source,
            }
        })?;
        Ok(Some(()))
    }

    /// The container's resource statistics (§3.13): every isolator's
    /// `usage` merged (failures are logged and skipped, as in Mesos), then
    /// the timestamp and the requests and limits from the checkpointed
    /// config. `None` for an unknown container; a container that is not
    /// running is an error.
    pub fn usage(&self, id: &ContainerId) -> Result<Option<ResourceStatistics>> {
        self.usage_with(
            id,
            &isolator::HostCache::default().with_runtime_dir(self.store.root()),
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
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8)
            .min(ids.len().div_ceil(64).max(1));
        let chunk = ids.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            let workers: Vec<_> = ids
                .chunks(chunk)
                .map(|part| {
                    let host = &host;
                    let worker = scope.spawn(move || {
                        part.iter()
                            .map(|id| (id.clone(), self.usage_with(id, host, running_only)))
                            .collect::<Vec<_>>()
                    });
                    (part, worker)
                })
                .collect();
            // A worker that panicked answers each of its containers with
            // an error instead of dropping them from the answer.
            workers
                .into_iter()
                .flat_map(|(part, worker)| {
                    worker.join().unwrap_or_else(|_| {
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
        })
    }

    fn usage_with(
        &self,
        id: &ContainerId,
        host: &isolator::HostCache,
        running_only: bool,
    ) -> Result<Option<ResourceStatistics>> {
        let Some(dir) = self.store.open(id) else {
            return Ok(None);
        };
        if running_only && dir.state()?.map(|r| r.state) != Some(ContainerState::Running) {
            return Ok(None);
        }
        if dir.exists(TERMINATION_FILE) {
            return Err(ContainerizerError::NotRunning(id.clone()));
        }
        let config = self.config(&dir)?;
        let ctx = isolator::UsageContext {
            pid: dir.pid().ok().flatten(),
            host,
        };
        let mut stats = ResourceStatistics::default();
        for isolator in isolator::build_with(&config, host)? {
            match isolator.usage(id, &ctx) {
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
        let Some(dir) = self.store.open(id) else {
            return Ok(None);
        };
        let config = self.config(&dir)?;
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
            match self.finalize(&dir) {
                Ok(_) => state = dir.state()?,
                Err(e) => {
                    tracing::warn!(container = %id, error = %e, "cannot record the termination yet")
                }
            }
        }
        Ok(Some(ContainerSummary {
            id: id.clone(),
            state: state.map_or(ContainerState::Provisioning, |r| r.state),
            pid: dir.pid().ok().flatten(),
            started_at: config.created_at,
            command: config.command.display(),
            launcher: config.launcher,
            isolation: config.isolation.clone(),
            sandbox: config.sandbox.clone(),
            resources: config.resources.clone(),
            termination: dir.read_json(TERMINATION_FILE)?,
            network_infos: if config.network.own_namespace() {
                isolator::network_status(self.store.root(), id)
            } else {
                Vec::new()
            },
        }))
    }

    /// Every container, sorted by start time.
    pub fn list(&self) -> Result<Vec<ContainerSummary>> {
        let mut out = Vec::new();
        for id in self.store.list()? {
            // A container removed while listing is simply not listed, and
            // one broken entry does not hide all the others.
            match self.summary(&id) {
                Ok(Some(s)) => out.push(s),
                Ok(None) => {}
                Err(e) => tracing::warn!("skipping container {id}: {e}"),
            }
        }
        out.sort_by(|a, b| a.started_at.total_cmp(&b.started_at));
        Ok(out)
    }

    /// Re-adopts live containers and destroys everything half-done: launches
    /// interrupted in any state, destroys interrupted midway, cgroups with
    /// no runtime directory, and unpublished creation directories.
    /// `orphan_launcher` is the linux launcher whose cgroup root to scan.
    pub fn recover(&self, orphan_launcher: Option<&LinuxLauncher>) -> Result<RecoverReport> {
        let mut report = RecoverReport::default();
        for path in self.store.abandoned_creations()? {
            match fs::remove_dir_all(&path) {
                Ok(()) => report.abandoned.push(path),
                Err(e) => report
                    .errors
                    .push(format!("failed to remove {}: {e}", path.display())),
            }
        }
        for id in self.store.list()? {
            if let Err(e) = self.recover_one(&id, &mut report) {
                report.errors.push(format!("container {id}: {e}"));
            }
        }
        if let Some(launcher) = orphan_launcher {
            for name in launcher.known()? {
                let known = ContainerId::new(name.as_str())
                    .ok()
                    .and_then(|id| self.store.open(&id))
                    .is_some();
                if known {
                    continue;
                }
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
                let known = |name: &str| {
                    ContainerId::new(name)
                        .ok()
                        .and_then(|id| self.store.open(&id))
                        .is_some()
                };
                let (removed, errors) =
                    isolator::CgroupsIsolator::sweep_orphans(hierarchies, &root, known);
                for name in removed {
                    if !report.orphan_cgroups.contains(&name) {
                        report.orphan_cgroups.push(name);
                    }
                }
                report.errors.extend(errors);
            }
        }
        self.recover_rootfs(&mut report);
        let (swept, errors) = isolator::sweep_orphan_networks(self.store.root(), |name| {
            ContainerId::new(name)
                .ok()
                .and_then(|id| self.store.open(&id))
                .is_some()
        });
        report.orphan_networks = swept;
        report.errors.extend(errors);
        Ok(report)
    }

    /// Removes provisioned root filesystems whose container has no record
    /// (left by a teardown that could not finish before its record went).
    fn recover_rootfs(&self, report: &mut RecoverReport) {
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

    fn recover_one(&self, id: &ContainerId, report: &mut RecoverReport) -> Result<()> {
        let Some(dir) = self.store.open(id) else {
            return Ok(());
        };
        let Some(op) = lock_op_within(&dir, BUSY_GRACE)? else {
            if !dir.exists(TERMINATION_FILE) {
                report.busy.push(id.clone());
            }
            return Ok(());
        };
        if let Some(why) = dir.malformed() {
            if dir.init_alive()? {
                tracing::warn!("skipping container {id}: {why} (its init is alive)");
            } else {
                dir.remove_whole(&self.work_dir)?;
                report.malformed.push((id.clone(), why));
            }
            return Ok(());
        }
        if dir.exists(TERMINATION_FILE) {
            if complete_recorded(&dir)? {
                report.finalized.push(id.clone());
            }
            return Ok(());
        }
        let state = dir.state()?.map(|r| r.state);
        let config = self.config(&dir)?;
        match state {
            Some(ContainerState::Running) if dir.init_alive()? => {
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
    pub fn remove_terminated(&self, older_than: Option<Duration>) -> Result<Vec<ContainerId>> {
        Ok(self.store.remove_terminated(older_than, &self.work_dir)?)
    }

    /// Removes one terminated container's runtime data and sandbox (`phobos
    /// run --rm`); true when it had ended and is now gone.
    pub fn remove_if_terminated(&self, id: &ContainerId) -> Result<bool> {
        Ok(self.store.remove_if_terminated(id, None, &self.work_dir)?)
    }

    fn config(&self, dir: &ContainerDir) -> Result<ContainerConfig> {
        dir.read_json(CONFIG_FILE)?
            .ok_or_else(|| ContainerizerError::NoConfig(dir.id().clone()))
    }

    fn teardown_with_config(
        &self,
        dir: &ContainerDir,
        config: &ContainerConfig,
        cause: Cause,
    ) -> Result<Termination> {
        let isolators = isolator::build_with(config, &self.host())?;
        let launcher =
            Launcher::with_hierarchies(config.launcher, &config.cgroups_root, self.hierarchies())?;
        self.teardown(dir, config, &launcher, &isolators, cause)
    }

    /// The common tail of every destroy (§3.2): kill all processes, wait for
    /// init, clean up isolators in reverse order (continuing past failures),
    /// record the termination. The caller holds the operation lock.
    fn teardown(
        &self,
        dir: &ContainerDir,
        config: &ContainerConfig,
        launcher: &Launcher,
        isolators: &[Box<dyn Isolator>],
        cause: Cause,
    ) -> Result<Termination> {
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
        let ended_before = read_status(dir)?;
        let pid = dir.pid().ok().flatten();
        let alive = dir.init_alive()?;
        let mut errors = Vec::new();
        match launcher.destroy(id, pid.filter(|_| alive)) {
            Ok(()) => {
                dir.wait_for_init_exit()?;
                // Init is gone and we hold the operation lock: whatever a
                // killed writer (or init's reserved status) left is stale.
                dir.remove_temporaries()?;
                StopPoint::hit(&self.stop_at, "killed");
            }
            Err(e) => errors.push(e.to_string()),
        }
        // Limits hit that init could not record (it was itself killed, or
        // an older init): asked before cleanup removes the evidence.
        let init_record = dir.read_json::<InitStatus>(STATUS_FILE)?;
        let mut limitation = init_record.as_ref().and_then(init_limitation);
        if limitation.is_none() && matches!(cause, Cause::Exited) {
            limitation = isolators
                .iter()
                .find_map(|i| i.limitation(id).ok().flatten());
        }
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
        if !errors.is_empty() {
            return Err(ContainerizerError::Teardown {
                id: id.clone(),
                errors: errors.join("; "),
            });
        }
        // Init is gone by now (or an error returned above): no new status.
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
        dir.write_json(TERMINATION_FILE, &termination)?;
        StopPoint::hit(&self.stop_at, "recorded");
        dir.set_state(ContainerState::Terminated)?;
        tracing::info!(container = %id, termination = ?termination, "terminated");
        Ok(termination)
    }
}

/// Sets the request/limit fields of `stats` as Mesos does (§8):
/// `cpus_soft_limit` = the CPU request; `cpus_limit` = the CPU limit
/// (infinite ⇒ the host's CPU count), else the request when CFS enforces
/// it; `mem_soft_limit_bytes` = the memory request; `mem_limit_bytes` = the
/// memory limit (infinite ⇒ the host's memory), else the request.
fn apply_requests_and_limits(stats: &mut ResourceStatistics, config: &ContainerConfig) {
    let r = &config.resources;
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

fn host_cpus() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    n.max(1) as f64
}

fn host_memory_bytes() -> Option<u64> {
    // SAFETY: sysconf has no preconditions.
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (pages > 0 && size > 0).then(|| pages as u64 * size as u64)
}

fn release(init: ForkedInit, progress: &mut Progress<'_>) -> Result<()> {
    if progress.dir.destroy_requested() {
        return Err(ContainerizerError::DestroyedDuring {
            id: progress.dir.id().clone(),
            state: progress.state,
        });
    }
    init.release()?;
    progress.to(ContainerState::Running)
}

/// The limitation init recorded with the command's status, if any.
fn init_limitation(record: &InitStatus) -> Option<isolator::Limitation> {
    Some(isolator::Limitation {
        reason: record.reason?,
        message: record.message.clone().unwrap_or_default(),
        resources: record.limited_resources.clone(),
    })
}

/// How long recovery waits for a container that another process holds
/// before it reports it busy. A launcher killed right after cloning init
/// leaves its operation lock held by the clone until that execs (the
/// descriptor is close-on-exec, not close-on-fork), which on a loaded
/// machine can take a while to be scheduled.
const BUSY_GRACE: Duration = Duration::from_secs(2);

/// The operation lock, waiting at most `grace` for whoever holds it.
fn lock_op_within(
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

/// Finishes a teardown that recorded the termination but died before
/// checkpointing TERMINATED (a destroy SIGKILLed at its last step): drops
/// its stale temporaries and sets the state. The caller holds the operation
/// lock. Returns whether there was anything to finish.
fn complete_recorded(dir: &ContainerDir) -> Result<bool> {
    let state = dir.state()?.map(|r| r.state);
    if state == Some(ContainerState::Terminated) || dir.init_alive()? {
        return Ok(false);
    }
    dir.remove_temporaries()?;
    dir.set_state(ContainerState::Terminated)?;
    tracing::info!(container = %dir.id(), "completed an interrupted teardown");
    Ok(true)
}

fn read_status(dir: &ContainerDir) -> Result<Option<WaitStatus>> {
    Ok(dir.read_json::<InitStatus>(STATUS_FILE)?.map(|s| s.status))
}

/// Tracks the launch state and logs each transition with the time spent in
/// the previous state, as Mesos does.
struct Progress<'a> {
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
fn check_rootfs(config: &ContainerConfig) -> Result<()> {
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
fn resolve_user(
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
fn rootfs_plan(
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
    Ok(crate::launch_info::RootfsPlan {
        root: root.to_owned(),
        binds,
        devices: config.hardening.device_nodes.clone(),
    })
}

/// The container's `/etc/hostname`, in its runtime directory.
const HOSTNAME_FILE: &str = "hostname";

/// Collapses an ordered list of variables so later entries win, keeping the
/// position of each name's first appearance; adds the default PATH.
fn merge_env(pairs: Vec<(String, String)>) -> Vec<(String, String)> {
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

/// The Mesos containerizer answers every container nobody else owns; a
/// launch stays with the faces, which hold its stdio and output.
impl phobos_core::Containerizer for MesosContainerizer {
    fn name(&self) -> &'static str {
        "mesos"
    }

    fn owns(&self, id: &ContainerId) -> bool {
        self.store.open(id).is_some()
    }

    fn apply(
        &self,
        id: &ContainerId,
        operation: Operation,
    ) -> std::result::Result<Option<Outcome>, BoxError> {
        Ok(match operation {
            Operation::Wait => self.wait(id)?.map(Outcome::Ended),
            Operation::Destroy => self.destroy(id)?.map(Outcome::Ended),
            Operation::Kill { signal } => self.kill(id, signal)?.map(|()| Outcome::Done),
            Operation::Usage => self.usage(id)?.map(|stats| Outcome::Usage(Box::new(stats))),
            Operation::Resources => self.summary(id)?.map(|s| Outcome::Resources(s.resources)),
            Operation::Update { resources, force } => {
                self.update(id, &resources, force)?.map(|()| Outcome::Done)
            }
        })
    }
}

fn reap_child(pid: i32) {
    let mut status = 0;
    // SAFETY: waitpid on our own child with a valid out-pointer.
    unsafe { libc::waitpid(pid, &mut status, 0) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use phobos_core::Limit;

    fn config_with(resources: Resources, cfs: bool) -> ContainerConfig {
        ContainerConfig {
            id: ContainerId::new("c").unwrap(),
            command: phobos_core::CommandSpec::argv(vec!["true".into()]).unwrap(),
            env: vec![],
            working_dir: None,
            user: None,
            hostname: None,
            isolation: vec![],
            launcher: LauncherKind::Posix,
            sandbox: PathBuf::from("/s"),
            cgroups_root: "r".into(),
            interactive: false,
            created_at: 0.0,
            resources,
            isolator_flags: phobos_core::IsolatorFlags {
                cgroups_enable_cfs: cfs,
                ..Default::default()
            },
            rootfs: None,
            volumes: vec![],
            sandbox_directory: None,
            fetch: vec![],
            fetcher_stall_timeout_secs: None,
            network: Default::default(),
            image: None,
            hardening: Default::default(),
        }
    }

    #[test]
    fn requests_and_limits_are_reported_as_mesos_does() {
        const MB: u64 = 1024 * 1024;
        let mut s = ResourceStatistics::default();
        let requests = Resources {
            cpus: Some(0.5),
            mem: Some(64.0),
            ..Resources::default()
        };
        apply_requests_and_limits(&mut s, &config_with(requests.clone(), false));
        assert_eq!(s.cpus_soft_limit, Some(0.5));
        assert_eq!(s.cpus_limit, None);
        assert_eq!(s.mem_soft_limit_bytes, Some(64 * MB));
        assert_eq!(s.mem_limit_bytes, Some(64 * MB));
        // With CFS the request is the limit.
        apply_requests_and_limits(&mut s, &config_with(requests.clone(), true));
        assert_eq!(s.cpus_limit, Some(0.5));
        let limited = Resources {
            cpus_limit: Some(Limit::Finite(2.0)),
            mem_limit: Some(Limit::Finite(128.0)),
            ..requests.clone()
        };
        apply_requests_and_limits(&mut s, &config_with(limited, false));
        assert_eq!(s.cpus_limit, Some(2.0));
        assert_eq!(s.mem_limit_bytes, Some(128 * MB));
        let infinite = Resources {
            cpus_limit: Some(Limit::Infinite),
            mem_limit: Some(Limit::Infinite),
            ..requests
        };
        apply_requests_and_limits(&mut s, &config_with(infinite, false));
        assert_eq!(s.cpus_limit, Some(host_cpus()));
        assert_eq!(s.mem_limit_bytes, host_memory_bytes());
    }

    #[test]
    fn sandboxes_are_made_fresh_and_never_written_through_a_symlink() {
        use std::os::unix::fs::PermissionsExt;
        let (runtime, work, agent, outside) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let c = MesosContainerizer::new(runtime.path(), work.path(), Path::new("/bin/true"));
        // An agent's sandbox is used as given, but a symlinked stdout in it
        // is refused, not written through.
        let victim = outside.path().join("passwd");
        fs::write(&victim, "root:x:0:0\n").unwrap();
        std::os::unix::fs::symlink(&victim, agent.path().join("stdout")).unwrap();
        let err = c
            .prepare_sandbox(agent.path(), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("symbolic link") && err.contains("stdout"),
            "{err}"
        );
        assert_eq!(fs::read_to_string(&victim).unwrap(), "root:x:0:0\n");
        fs::remove_file(agent.path().join("stdout")).unwrap();
        c.prepare_sandbox(agent.path(), None).unwrap();
        assert!(agent.path().join("stderr").is_file());
        // Phobos's own sandbox is made here, private, and only once.
        let own = c.sandbox_path(&ContainerId::new("a").unwrap());
        c.check_sandbox_is_new(&own).unwrap();
        c.prepare_sandbox(&own, None).unwrap();
        let mode = fs::metadata(&own).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(matches!(
            c.check_sandbox_is_new(&own),
            Err(ContainerizerError::SandboxExists(_))
        ));
        assert!(matches!(
            c.prepare_sandbox(&own, None),
            Err(ContainerizerError::SandboxExists(_))
        ));
    }

    #[test]
    fn env_merge_lets_later_entries_win_and_defaults_path() {
        let merged = merge_env(vec![
            ("A".into(), "1".into()),
            ("B".into(), "2".into()),
            ("A".into(), "3".into()),
        ]);
        assert_eq!(
            merged,
            [
                ("A".to_string(), "3".to_string()),
                ("B".to_string(), "2".to_string()),
                ("PATH".to_string(), DEFAULT_PATH.to_string()),
            ]
        );
        let with_path = merge_env(vec![("PATH".into(), "/x".into())]);
        assert_eq!(with_path, [("PATH".to_string(), "/x".to_string())]);
    }
}
