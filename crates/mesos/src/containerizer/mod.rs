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

use phobos_core::store::{
    CONFIG_FILE, Containers, LAUNCH_INFO_FILE, Listing, STATUS_FILE, TERMINATION_FILE,
};
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

mod batch;
mod exec;
mod launch;
mod observe;
mod recover;
mod teardown;

pub use teardown::Unreleased;

pub(crate) use launch::merge_env;

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
    /// The cgroups root belongs to another runtime directory.
    #[error(transparent)]
    ForeignRoot(#[from] crate::launcher::owner::ForeignRoot),
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
    #[error("failed to create the socket for the command's terminal: {0}")]
    TerminalSocket(#[source] io::Error),
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
    #[error("parent container '{0}' is not running")]
    ParentNotRunning(ContainerId),
    #[error("the nested sandbox {} is not beneath its top-level container's sandbox", .0.display())]
    NestedSandbox(PathBuf),
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

impl From<phobos_core::sandbox::SandboxError> for ContainerizerError {
    fn from(e: phobos_core::sandbox::SandboxError) -> Self {
        match e {
            phobos_core::sandbox::SandboxError::Exists(path) => Self::SandboxExists(path),
            phobos_core::sandbox::SandboxError::Unsafe(e) => Self::UnsafeSandbox(e),
        }
    }
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
    /// A terminal of its own, of this size (the helper allocates it in the
    /// container's mount namespace and sends its master back).
    pub tty: Option<phobos_core::WindowSize>,
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
    /// With [`ExecRequest::tty`]: where the terminal's master arrives
    /// (`phobos_tty::pty::recv_fd`).
    pub tty: Option<OwnedFd>,
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
    /// For a command with a terminal: the socket init sends the
    /// terminal's master on once it allocated it (after the release), for
    /// a switchboard to receive with `phobos_tty::pty::recv_fd`.
    pub tty: Option<OwnedFd>,
    /// Init's mount namespace, held by a face that keeps zygotes, to be
    /// closed once the container's end is answered (see
    /// `launcher::zygote::hold_mount_namespace`).
    pub mount_ns: Option<OwnedFd>,
}

/// A socket pair for a terminal's master: (ours, init's).
fn tty_channel() -> Result<(OwnedFd, OwnedFd)> {
    let (ours, theirs) =
        std::os::unix::net::UnixStream::pair().map_err(ContainerizerError::TerminalSocket)?;
    Ok((ours.into(), theirs.into()))
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
    /// Mesos `ContainerStatus.cgroup_info`: the net_cls classid, when
    /// `cgroups/net_cls` gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup_info: Option<CgroupInfo>,
}

/// Mesos `CgroupInfo` (the part a container status carries).
#[derive(Clone, Debug, serde::Serialize)]
pub struct CgroupInfo {
    /// `net_cls`.
    pub net_cls: NetClsInfo,
}

/// Mesos `CgroupInfo.NetCls`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct NetClsInfo {
    /// `primary << 16 | secondary`.
    pub classid: u32,
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
    /// Spare cgroup directories (an agent's, made ahead for its launches)
    /// removed from the cgroups root, as `<mount>/<root>/<name>`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub spare_cgroups: Vec<String>,
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
    /// Told how the downloads of FETCHING go (a terminal's progress line).
    fetch_progress: Option<phobos_fetch::ProgressSink>,
    /// Spare cgroup directories that launches rename into place (a
    /// long-running face keeps them; see `phobos_cgroups::spare`).
    spares: Option<Arc<phobos_cgroups::spare::Spares>>,
    /// A pre-started init spawner that a plain launch has clone its init
    /// (a long-running face keeps it; see [`launcher::zygote`]).
    zygotes: Option<Arc<launcher::zygote::Zygotes>>,
    /// An init spawner started at a one-shot face's start, which a plain
    /// launch has clone its init (see [`launcher::spawner`]).
    spawner: Option<Arc<std::sync::Mutex<launcher::spawner::Spawner>>>,
}

/// Points of a launch where a crash test can freeze the launcher: entering
/// one of the states, `created` (the runtime directory exists but is not
/// yet published), `provisioned` (an image's root filesystem is mounted,
/// the config not yet rewritten) and `forked` (init exists, its pid is not
/// checkpointed); the door adds `switchboard-started` (a terminal's
/// switchboard runs, its pid is not recorded) and `switchboard` (recorded).
/// And of a teardown (destroy, finalize, failed launch): `destroying` (the
/// DESTROYING checkpoint is written, nothing killed yet), `killed` (every
/// process is gone, isolators not yet cleaned up) and `recorded` (the
/// termination is written, TERMINATED is not); and of a batch destroy,
/// `batch-killed` (every container of a chunk is DESTROYING and killed,
/// none waited for or freed).
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
            fetch_progress: None,
            spares: None,
            zygotes: None,
            spawner: None,
        }
    }

    /// Starts an init spawner (a `phobos init` whose exec and start-up
    /// overlap the caller's work until its launch) that the next plain
    /// launch has clone its init; for a face that launches once. It is
    /// ended and reaped when the last clone of this containerizer drops.
    pub fn start_spawner(&mut self) -> Result<(), launcher::LaunchError> {
        let spawner = launcher::spawner::Spawner::start(&self.init_exe, self.store.root())?;
        self.spawner = Some(Arc::new(std::sync::Mutex::new(spawner)));
        Ok(())
    }

    /// Takes `spawner`, started earlier for this containerizer's binary
    /// and runtime directory, as [`Self::start_spawner`] would have
    /// started it; one started for another is handed back (its drop ends
    /// it).
    pub fn adopt_spawner(
        &mut self,
        spawner: launcher::spawner::Spawner,
    ) -> Result<(), launcher::spawner::Spawner> {
        if !spawner.serves(&self.init_exe, self.store.root()) {
            return Err(spawner);
        }
        self.spawner = Some(Arc::new(std::sync::Mutex::new(spawner)));
        Ok(())
    }

    /// Plain launches take a pre-started spawner from the returned pool,
    /// made by `factory`, when one is ready; the caller refills it
    /// ([`launcher::zygote::Zygotes::refill`]) off the launches' path and
    /// drains it at its end. `Err(factory)` when the factory's binary is
    /// not this containerizer's init.
    pub fn keep_zygote(
        &mut self,
        factory: launcher::spawner::factory::SpawnerFactory,
    ) -> Result<Arc<launcher::zygote::Zygotes>, launcher::spawner::factory::SpawnerFactory> {
        if !factory.makes(&self.init_exe) {
            return Err(factory);
        }
        let zygotes = Arc::new(launcher::zygote::Zygotes::new(factory, self.store.root()));
        self.zygotes = Some(Arc::clone(&zygotes));
        Ok(zygotes)
    }

    /// Launches take their cgroup v1 directories from `spares` when it has
    /// them ready; the caller refills it ([`phobos_cgroups::spare::Spares::refill`])
    /// off the launches' path and drains it at its end.
    pub fn set_spares(&mut self, spares: Arc<phobos_cgroups::spare::Spares>) {
        self.spares = Some(spares);
    }

    /// Provisions images' root filesystems with `provisioner`.
    pub fn with_provisioner(mut self, provisioner: Arc<dyn crate::Provisioner>) -> Self {
        self.provisioner = Some(provisioner);
        self
    }

    /// Reports the downloads of later launches' FETCHING to `progress`.
    pub fn set_fetch_progress(&mut self, progress: phobos_fetch::ProgressSink) {
        self.fetch_progress = Some(progress);
    }

    /// The host's cgroup hierarchies (`None` where none can be read).
    pub fn hierarchies(&self) -> Option<&Hierarchies> {
        self.hierarchies
            .get_or_init(|| Hierarchies::detect().ok())
            .as_ref()
    }

    /// The launcher `config` was launched with (its kind, cgroups root and
    /// driver) over the host's hierarchies.
    pub(crate) fn launcher_for(
        &self,
        config: &ContainerConfig,
    ) -> std::result::Result<Launcher, LaunchError> {
        Launcher::with_hierarchies(
            config.launcher,
            &config.cgroups_root,
            config.cgroups_driver,
            self.hierarchies(),
        )
    }

    /// Marks the cgroups root of `launcher` as this runtime directory's in
    /// every hierarchy where it exists, refusing (with nothing changed)
    /// when another runtime directory owns it; see [`launcher::owner`].
    pub fn claim_cgroups_root(&self, launcher: &LinuxLauncher) -> Result<()> {
        let Some(hierarchies) = self.hierarchies() else {
            return Ok(());
        };
        let dirs = launcher::owner::root_dirs(hierarchies, launcher.cgroups_root());
        launcher::owner::claim(&dirs, self.store.root())?;
        Ok(())
    }

    /// Whether the cgroups root of `launcher` exists and is marked as this
    /// runtime directory's wherever it exists (nothing is adopted).
    pub fn owns_cgroups_root(&self, launcher: &LinuxLauncher) -> bool {
        self.hierarchies().is_some_and(|hierarchies| {
            let dirs = launcher::owner::root_dirs(hierarchies, launcher.cgroups_root());
            launcher::owner::is_ours(&dirs, self.store.root())
        })
    }

    /// Host facts for isolators, with the hierarchies already known.
    fn host(&self) -> HostCache {
        self.hierarchies()
            .cloned()
            .map_or_else(HostCache::default, HostCache::with_hierarchies)
            .with_runtime_dir(self.store.root())
            .with_spares(self.spares.clone())
    }

    /// Stops this process at `point` when the tests asked for it there
    /// (a point of a face's launch beyond the containerizer's own, such as
    /// the door's `switchboard`: its terminal's switchboard started).
    pub fn stop_point(&self, point: &str) {
        StopPoint::hit(&self.stop_at, point);
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

    /// Where `config`'s sandbox is made fresh beneath (see
    /// [`crate::nested::sandbox_base`]): the work directory for Phobos's
    /// own, the top-level sandbox for a nested one; `None` for a sandbox
    /// chosen by a Mesos agent, used as given. A nested sandbox anywhere
    /// else is refused.
    fn sandbox_base(&self, config: &ContainerConfig) -> Result<Option<PathBuf>> {
        let base = crate::nested::sandbox_base(&self.store, &self.work_dir, config);
        if base.is_none() && config.id.is_nested() {
            return Err(ContainerizerError::NestedSandbox(config.sandbox.clone()));
        }
        Ok(base)
    }

    /// Before anything is written: a sandbox made fresh must not exist yet
    /// (whatever is there, a directory, file or symlink, someone else put
    /// it there), and no symlink may lead to where it will be
    /// ([`phobos_core::sandbox::check_new`]).
    fn check_sandbox_is_new(&self, config: &ContainerConfig) -> Result<()> {
        let Some(base) = self.sandbox_base(config)? else {
            return Ok(());
        };
        Ok(phobos_core::sandbox::check_new(&base, &config.sandbox)?)
    }

    /// Creates the sandbox with `stdout` and `stderr`, owned by the task
    /// user, without following any symlink beneath its base
    /// ([`phobos_core::sandbox::create`]): a sandbox made fresh is created
    /// here, 0700, and must not exist yet; an agent's sandbox is used as
    /// given, but only its regular files are opened, never through a
    /// symlink.
    fn prepare_sandbox(
        &self,
        config: &ContainerConfig,
        user: Option<&ResolvedUser>,
    ) -> Result<(File, File)> {
        let sandbox = &config.sandbox;
        let dir = match self.sandbox_base(config)? {
            Some(base) => phobos_core::sandbox::create(&base, sandbox, 0o700)?.dir,
            None => SafeDir::create_trusted(sandbox, 0o755)?,
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
    use super::launch::merge_env;
    use super::observe::{apply_requests_and_limits, host_cpus, host_memory_bytes};
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
            cgroups_driver: Default::default(),
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
            fetcher_cache: None,
            network: Default::default(),
            image: None,
            hardening: Default::default(),
            nesting: None,
            tty: None,
            logrotate: None,
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
        let at = |sandbox: &Path| ContainerConfig {
            sandbox: sandbox.to_owned(),
            ..config_with(Resources::default(), false)
        };
        // An agent's sandbox is used as given, but a symlinked stdout in it
        // is refused, not written through.
        let victim = outside.path().join("passwd");
        fs::write(&victim, "root:x:0:0\n").unwrap();
        std::os::unix::fs::symlink(&victim, agent.path().join("stdout")).unwrap();
        let err = c
            .prepare_sandbox(&at(agent.path()), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("symbolic link") && err.contains("stdout"),
            "{err}"
        );
        assert_eq!(fs::read_to_string(&victim).unwrap(), "root:x:0:0\n");
        fs::remove_file(agent.path().join("stdout")).unwrap();
        c.prepare_sandbox(&at(agent.path()), None).unwrap();
        assert!(agent.path().join("stderr").is_file());
        // Phobos's own sandbox is made here, private, and only once.
        let own = c.sandbox_path(&ContainerId::new("a").unwrap());
        c.check_sandbox_is_new(&at(&own)).unwrap();
        c.prepare_sandbox(&at(&own), None).unwrap();
        let mode = fs::metadata(&own).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(matches!(
            c.check_sandbox_is_new(&at(&own)),
            Err(ContainerizerError::SandboxExists(_))
        ));
        assert!(matches!(
            c.prepare_sandbox(&at(&own), None),
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
