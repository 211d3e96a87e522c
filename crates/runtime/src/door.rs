//! [`Door`]: the composing containerizer (Mesos §5), the only way a face
//! reaches a containerizer. It launches a [`LaunchRequest`] on the
//! containerizer its target names after reserving the ID in the one
//! namespace both share (see [`crate::reserve`]), and owns every other
//! operation: wait, destroy, kill, usage, update (through
//! [`phobos_core::Composing`], which routes by the record's owner), list,
//! status, logs, exec, recover and the removal of terminated containers.
//!
//! The Docker containerizer is asynchronous; each call here runs it to
//! completion on a single-threaded runtime, as every face is one
//! synchronous process per request.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use phobos_core::{
    Composing, ContainerDir, ContainerId, ContainerState, Operation, Outcome, ResourceStatistics,
    Termination,
};
use phobos_docker::{DockerContainerizer, DockerRecoverReport, DockerSummary, PullProgress};
use phobos_mesos::{
    ContainerSummary, ExecProcess, ExecRequest, ExecStdio, MesosContainerizer, RecoverReport,
    StopPoint, SweepPolicy, Unreleased,
};
use serde::Serialize;

use crate::error::RuntimeError;
use crate::plan::{Host, LaunchRequest, RealHost, Target};
use crate::reserve::{IdRegistry, ReserveError};
use crate::settings::Settings;

type Result<T> = std::result::Result<T, RuntimeError>;

/// The composing containerizer over one runtime directory.
pub struct Door {
    settings: Arc<Settings>,
    mesos: MesosContainerizer,
    docker: DockerContainerizer,
    ids: IdRegistry,
    /// The phobos binary (init, the switchboard).
    exe: PathBuf,
    /// The Mesos containerizer's image provisioner, for pull progress.
    images: Option<Arc<crate::images::ImageProvisioner>>,
    /// Spare cgroup directories for launches (a long-running face's).
    spares: Option<Arc<phobos_cgroups::spare::Spares>>,
    zygotes: Option<Arc<phobos_mesos::launcher::zygote::Zygotes>>,
}

/// A launched container, as the launching face can attach to it.
#[derive(Debug)]
pub enum Launched {
    /// A process this one forked (the Mesos containerizer's init): follow
    /// its sandbox files, signal and reap it, then [`Door::finish`].
    Process {
        dir: ContainerDir,
        pid: i32,
        pidfd: Option<OwnedFd>,
        sandbox: PathBuf,
        /// With a terminal: where its switchboard takes clients.
        tty: Option<PathBuf>,
        /// Init's mount namespace, held by a face that keeps zygotes
        /// ([`Door::keep_zygote`]) so that its teardown comes after the
        /// end is answered: close it then, off that path.
        mount_ns: Option<OwnedFd>,
    },
    /// A container of an engine: follow it with [`Door::follow_engine`].
    Engine { sandbox: PathBuf },
}

/// One container as `ps` and `status` show it, whichever containerizer
/// holds it (the JSON shape is each containerizer's own).
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Summary {
    Mesos(ContainerSummary),
    Docker(DockerSummary),
}

impl Summary {
    pub fn id(&self) -> &ContainerId {
        match self {
            Self::Mesos(c) => &c.id,
            Self::Docker(c) => &c.id,
        }
    }

    pub fn state(&self) -> ContainerState {
        match self {
            Self::Mesos(c) => c.state,
            Self::Docker(c) => c.state,
        }
    }

    /// The init pid while it runs.
    pub fn pid(&self) -> Option<i32> {
        match self {
            Self::Mesos(c) if c.state == ContainerState::Terminated => None,
            Self::Mesos(c) => c.pid,
            Self::Docker(c) => c.pid,
        }
    }

    /// The first address of the container's networks, if it has its own.
    pub fn address(&self) -> Option<&str> {
        match self {
            Self::Mesos(c) => c
                .network_infos
                .iter()
                .flat_map(|n| &n.ip_addresses)
                .map(|ip| ip.ip_address.as_str())
                .next(),
            Self::Docker(_) => None,
        }
    }

    /// Mesos `ContainerStatus.cgroup_info.net_cls.classid`, when
    /// `cgroups/net_cls` gave the container one.
    pub fn net_cls_classid(&self) -> Option<u32> {
        match self {
            Self::Mesos(c) => c.cgroup_info.as_ref().map(|i| i.net_cls.classid),
            Self::Docker(_) => None,
        }
    }

    pub fn started_at(&self) -> f64 {
        match self {
            Self::Mesos(c) => c.started_at,
            Self::Docker(c) => c.started_at,
        }
    }

    /// The command for listings (with the image for Docker containers).
    pub fn command(&self) -> String {
        match self {
            Self::Mesos(c) => c.command.clone(),
            Self::Docker(c) => format!("[docker {}] {}", c.image, c.command),
        }
    }

    pub fn sandbox(&self) -> &std::path::Path {
        match self {
            Self::Mesos(c) => &c.sandbox,
            Self::Docker(c) => &c.sandbox,
        }
    }

    pub fn termination(&self) -> Option<&Termination> {
        match self {
            Self::Mesos(c) => c.termination.as_ref(),
            Self::Docker(c) => c.termination.as_ref(),
        }
    }
}

/// What `recover` found and did, for both containerizers.
#[derive(Debug, Default, Serialize)]
pub struct Recovery {
    /// The Mesos containerizer's report (its fields at the top level).
    #[serde(flatten)]
    pub mesos: RecoverReport,
    /// The Docker containerizer's, when it ran and found anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerRecoverReport>,
    /// ID reservations of launches that never finished, released.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub released_ids: Vec<String>,
}

impl Recovery {
    /// Every failure of either containerizer.
    pub fn errors(&self) -> Vec<String> {
        let docker = self.docker.iter().flat_map(|d| d.errors.iter());
        self.mesos.errors.iter().chain(docker).cloned().collect()
    }
}

/// Where a container's logs are.
#[derive(Debug)]
pub enum Logs {
    /// In the sandbox files; with `until`, the container's init to follow
    /// them until it exits.
    Files {
        sandbox: PathBuf,
        until: Option<OwnedFd>,
    },
    /// Already copied where they were asked to go by the engine.
    Streamed,
}

/// An init spawner forked by a `phobos run` face at its very start,
/// before it parses its arguments and while it is single-threaded (no
/// exec: see `phobos_mesos::launcher::spawner`), so that its set-up
/// overlaps the face's planning and preparing. The face hands it to
/// [`Door::start_init_spawner`], which uses it only for the binary and
/// runtime directory it was started for; otherwise, or unused, it is
/// killed and reaped when dropped.
#[derive(Debug)]
pub struct EarlySpawner(phobos_mesos::launcher::spawner::Spawner);

impl EarlySpawner {
    /// Starts a spawner for `runtime_dir`'s containers, forked from this
    /// process (`Spawner::fork`: no exec); `None` when that fails (the
    /// launch then starts one, or clones init, as usual and says why).
    ///
    /// # Safety
    /// This process must be single-threaded and `exe` its own binary.
    pub unsafe fn start(exe: &Path, runtime_dir: &Path) -> Option<Self> {
        // SAFETY: the caller's contract is the fork's.
        unsafe { phobos_mesos::launcher::spawner::Spawner::fork(exe, runtime_dir) }
            .ok()
            .map(Self)
    }
}

/// A spawner factory forked by a long-running face before it started a
/// thread (see `phobos_mesos::launcher::spawner::factory`), for
/// [`Door::keep_zygote`]; killed and reaped when dropped.
#[derive(Debug)]
pub struct EarlyFactory(phobos_mesos::launcher::spawner::factory::SpawnerFactory);

impl EarlyFactory {
    /// Forks a factory from this process; `None` when that fails (the
    /// face then clones every init).
    ///
    /// # Safety
    /// This process must be single-threaded and `exe` its own binary.
    pub unsafe fn start(exe: &Path) -> Option<Self> {
        // SAFETY: the caller's contract is the fork's.
        unsafe { phobos_mesos::launcher::spawner::factory::SpawnerFactory::fork(exe) }
            .inspect_err(|e| tracing::debug!(error = %e, "no spawner factory"))
            .ok()
            .map(Self)
    }
}

impl Door {
    /// The door over `settings`' runtime and work directories.
    pub fn new(settings: Arc<Settings>) -> Result<Self> {
        // A user other than root keeps its containers in its own
        // directories: a `/tmp/phobos-UID` someone else created first (or
        // anything writable by others up the path) is refused, not used.
        if settings.euid() != 0 {
            for dir in [settings.runtime_dir(), settings.work_dir()] {
                phobos_core::safe_fs::check_private_dir(dir, settings.euid())
                    .map_err(RuntimeError::NotPrivate)?;
            }
        }
        let exe = match settings.init_exe() {
            Some(exe) => exe.to_owned(),
            None => std::env::current_exe().map_err(RuntimeError::NoInit)?,
        };
        let mut mesos = MesosContainerizer::new(settings.runtime_dir(), settings.work_dir(), &exe)
            .with_stop_point(settings.stop_at().map(|p| StopPoint(p.to_owned())));
        // Images for Mesos containers; a store that cannot be opened only
        // matters to a launch or teardown that needs it.
        let images = match crate::images::ImageProvisioner::new(&settings) {
            Ok(p) => {
                let p = Arc::new(p);
                mesos = mesos.with_provisioner(p.clone());
                Some(p)
            }
            Err(e) => {
                tracing::debug!(error = %e, "no image provisioner");
                None
            }
        };
        let docker = DockerContainerizer::new(settings.runtime_dir(), settings.docker_settings());
        let ids = IdRegistry::new(settings.runtime_dir());
        Ok(Self {
            settings,
            mesos,
            docker,
            ids,
            exe,
            images,
            spares: None,
            zygotes: None,
        })
    }

    /// Keeps `per_parent` spare cgroup directories ready under the
    /// cgroups root of every cgroup v1 hierarchy a launch used, which
    /// later launches rename into place instead of making (see
    /// `phobos_cgroups::spare`). For a long-running face as root: it
    /// calls [`Self::refill_spares`] off its launches' path and
    /// [`Self::drain_spares`] at its end; recovery sweeps what a killed
    /// one left.
    pub fn keep_spare_cgroups(&mut self, per_parent: usize) {
        // A devices spare comes with the default device list written.
        let spares = Arc::new(
            phobos_cgroups::spare::Spares::new(per_parent)
                .with_preparer(phobos_mesos::isolator::prepare_spare),
        );
        self.mesos.set_spares(Arc::clone(&spares));
        self.spares = Some(spares);
    }

    /// Keeps one pre-started init spawner (a zygote, see
    /// `phobos_mesos::launcher::zygote`), made by `factory`, that the next
    /// plain launch has clone its init. For a long-running face as root:
    /// it calls [`Self::refill_zygote`] off its launches' path and
    /// [`Self::drain_zygote`] at its end (spawners and the factory also end
    /// by themselves when the face dies). A factory of another binary than
    /// the init this door starts is ended, and launches clone init.
    pub fn keep_zygote(&mut self, factory: EarlyFactory) {
        match self.mesos.keep_zygote(factory.0) {
            Ok(zygotes) => self.zygotes = Some(zygotes),
            Err(other) => {
                tracing::debug!(
                    factory = other.pid(),
                    "the spawner factory runs another binary than the configured init; ending it"
                );
            }
        }
    }

    /// Starts an init spawner (see `phobos_mesos::launcher::spawner`):
    /// a `phobos init` whose exec and start-up run while this face plans
    /// and prepares its one launch, which then has it clone the
    /// container's init. For a face that launches once (`phobos run`), as
    /// root (the linux launcher); an unused one is ended when the door
    /// drops. Best effort: without it the launch clones and execs init.
    ///
    /// `early` is one the face started before it read its arguments and
    /// settings ([`EarlySpawner::start`]): taken when it serves this
    /// door's binary and runtime directory, else ended and a new one
    /// started.
    pub fn start_init_spawner(&mut self, early: Option<EarlySpawner>) {
        if self.settings.euid() != 0 {
            return;
        }
        if let Some(EarlySpawner(spawner)) = early {
            let pid = spawner.pid();
            match self.mesos.adopt_spawner(spawner) {
                Ok(()) => {
                    tracing::debug!(
                        spawner = pid,
                        "using the init spawner started before the parse"
                    );
                    return;
                }
                Err(other) => {
                    tracing::debug!(
                        spawner = pid,
                        "the init spawner started before the parse serves another binary or runtime directory; ending it"
                    );
                    drop(other);
                }
            }
        }
        if let Err(e) = self.mesos.start_spawner() {
            tracing::debug!(error = %e, "no init spawner; the launch will clone init");
        }
    }

    /// Makes a pre-started spawner if the last one was taken (a clone,
    /// off the launches' path); returns whether it made one.
    pub fn refill_zygote(&self) -> Result<bool> {
        match &self.zygotes {
            Some(z) => z
                .refill()
                .map_err(|e| RuntimeError::Mesos(phobos_mesos::ContainerizerError::Launch(e))),
            None => Ok(false),
        }
    }

    /// The ready pre-started spawner's pid, if one is ready.
    pub fn zygote_pid(&self) -> Option<i32> {
        self.zygotes.as_ref().and_then(|z| z.ready_pid())
    }

    /// Ends the ready pre-started spawner and makes no more.
    pub fn drain_zygote(&self) {
        if let Some(z) = &self.zygotes {
            z.drain();
        }
    }

    /// Makes the spare cgroup directories launches took (slow: a `mkdir`
    /// per directory); returns how many were made.
    pub fn refill_spares(&self) -> Result<usize> {
        match &self.spares {
            Some(spares) => spares.refill().map_err(|e| {
                RuntimeError::Mesos(phobos_mesos::ContainerizerError::Launch(e.into()))
            }),
            None => Ok(0),
        }
    }

    /// Spare cgroup directories ready now.
    pub fn spares_ready(&self) -> usize {
        self.spares.as_ref().map_or(0, |s| s.ready())
    }

    /// Removes every spare cgroup directory; returns the failures.
    pub fn drain_spares(&self) -> Vec<String> {
        self.spares.as_ref().map_or_else(Vec::new, |s| {
            s.drain().into_iter().map(|e| e.to_string()).collect()
        })
    }

    /// Reports the image pulls of later Mesos launches (`run --image` of
    /// an image the store lacks) to `progress` instead of log lines.
    pub fn show_image_pulls(&self, progress: Arc<dyn phobos_image::Progress + Send>) {
        if let Some(images) = &self.images {
            images.set_progress(progress);
        }
    }

    /// Reports the downloads of later launches' URIs (FETCHING) to
    /// `progress`, for either containerizer.
    pub fn show_fetches(&mut self, progress: Arc<dyn phobos_fetch::Progress>) {
        let sink = phobos_fetch::ProgressSink(progress);
        self.mesos.set_fetch_progress(sink.clone());
        self.docker.set_fetch_progress(sink);
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The Mesos containerizer's record store (for `top`'s sampler).
    pub(crate) fn mesos_store_root(&self) -> &std::path::Path {
        self.mesos.store().root()
    }

    /// The Docker containerizer's record store.
    pub(crate) fn docker_store_root(&self) -> &std::path::Path {
        self.docker.store().root()
    }

    /// Host facts for the planner.
    pub fn host(&self) -> impl Host + '_ {
        RealHost {
            mesos: &self.mesos,
            docker: &self.docker,
        }
    }

    /// Whether any containerizer holds a record of `id`.
    pub fn exists(&self, id: &ContainerId) -> bool {
        self.mesos.store().open(id).is_some() || self.docker.owns(id)
    }

    /// Launches `request` and returns once it runs. The ID is reserved
    /// first; a launch that loses the reservation changes nothing.
    /// `progress` sees image pulls.
    ///
    /// A nested container (a request with a parent) needs no reservation:
    /// only the Mesos containerizer has nested containers, and its record
    /// is created atomically inside its parent's (`renameat2(2)`
    /// `RENAME_NOREPLACE`), under the parent's operation lock.
    pub fn launch(
        &self,
        request: &LaunchRequest,
        stdin: Option<OwnedFd>,
        progress: impl FnMut(&PullProgress) + Send,
    ) -> Result<Launched> {
        let id = request.id();
        if id.is_nested() {
            let Target::Mesos(_) = &request.target else {
                return Err(crate::plan::PlanError::NotForDocker("nesting").into());
            };
            let config = request.config(phobos_core::time::now_secs());
            return self
                .mesos
                .launch(&config, stdin)
                .map_err(RuntimeError::from)
                .and_then(|l| self.with_switchboard(l, &config));
        }
        let key = IdRegistry::key(id);
        let reservation = self
            .ids
            .reserve(&key, || self.exists(id))
            .map_err(|e| match e {
                ReserveError::Taken(_) => RuntimeError::AlreadyExists(id.clone()),
                other => other.into(),
            })?;
        let config = request.config(phobos_core::time::now_secs());
        let launched = match &request.target {
            Target::Mesos(_) => self
                .mesos
                .launch(&config, stdin)
                .map_err(RuntimeError::from)
                .and_then(|l| self.with_switchboard(l, &config)),
            Target::Docker(docker) => {
                match block_on(self.docker.launch(&config, docker, progress)) {
                    Ok(Ok(_)) => Ok(Launched::Engine {
                        sandbox: config.sandbox.clone(),
                    }),
                    Ok(Err(e)) => Err(e.into()),
                    Err(e) => Err(e),
                }
            }
        };
        // A failed Mesos launch leaves its terminated record, which holds
        // the ID like any other; nothing else does.
        if launched.is_ok() || self.exists(id) {
            reservation.keep();
        }
        launched
    }

    /// Starts the switchboard of a container launched with a terminal;
    /// a container whose terminal nobody could hold is destroyed.
    fn with_switchboard(
        &self,
        l: phobos_mesos::Launched,
        config: &phobos_core::ContainerConfig,
    ) -> Result<Launched> {
        // A terminal, or (a DEBUG container without one) pipes.
        let wait_for_client = match config.tty {
            Some(info) => info.wait_for_client,
            None => config.nesting.is_some_and(|n| n.session),
        };
        let tty = match l.tty {
            // Only a terminal or pipes have a channel.
            Some(channel) => {
                let started = match &l.pidfd {
                    Some(fd) => fd.try_clone(),
                    None => crate::sys::pidfd_open(l.pid),
                }
                .map_err(|source| crate::tty::SwitchboardError::Spawn {
                    exe: self.exe.clone(),
                    source,
                })
                .and_then(|pidfd| {
                    crate::tty::start(
                        &self.exe,
                        &l.dir,
                        &config.sandbox,
                        channel,
                        pidfd,
                        crate::tty::Mode {
                            wait_for_client,
                            pipes: config.tty.is_none(),
                        },
                        config.logrotate,
                    )
                });
                match started {
                    Ok(started) => {
                        self.mesos.stop_point("switchboard-started");
                        let path = crate::tty::record(&l.dir, started);
                        self.mesos.stop_point("switchboard");
                        path
                    }
                    Err(e) => {
                        if let Err(d) = self.mesos.destroy(&config.id) {
                            tracing::error!(container = %config.id, error = %d, "destroying a container without its terminal");
                        }
                        return Err(e.into());
                    }
                }
            }
            _ => None,
        };
        Ok(Launched::Process {
            dir: l.dir,
            pid: l.pid,
            pidfd: l.pidfd,
            sandbox: config.sandbox.clone(),
            tty,
            mount_ns: l.mount_ns,
        })
    }

    /// Where the switchboard of container `id`'s terminal takes clients
    /// (`phobos attach`, the agent's ATTACH_CONTAINER_INPUT/OUTPUT);
    /// `None` when it has no terminal or it ended.
    pub fn switchboard(&self, id: &ContainerId) -> Option<PathBuf> {
        let dir = self.mesos.store().open(id)?;
        let path = crate::tty::socket_path(&dir);
        path.exists().then_some(path)
    }

    /// A foreground Mesos launch's end: reaps init (this process's child)
    /// and records the termination.
    pub fn finish(&self, launched: &Launched) -> Result<Option<Termination>> {
        let Launched::Process { dir, pid, .. } = launched else {
            return Ok(None);
        };
        let pid = nix::unistd::Pid::from_raw(*pid);
        // Reap our child (init) before reading its verdict; an error means
        // it was reaped already.
        let _ = nix::sys::wait::waitpid(pid, None);
        Ok(Some(self.mesos.finalize(dir)?))
    }

    /// [`Self::finish`] that answers as soon as the end is recorded: every
    /// process is gone and the termination is on disk, while freeing the
    /// container's resources (its cgroups, its root filesystem) is left to
    /// [`Self::release_resources`], which the caller runs off its critical path.
    /// The returned [`Unreleased`] holds the container's operation lock
    /// until then, so a destroy, remove or recovery by any face waits for
    /// the release instead of seeing it half done; dropped unreleased (a
    /// crash), the next finalize or recovery frees what is left.
    pub fn finish_deferred(
        &self,
        launched: &Launched,
    ) -> Result<Option<(Termination, Option<Unreleased>)>> {
        let Launched::Process { dir, pid, .. } = launched else {
            return Ok(None);
        };
        let pid = nix::unistd::Pid::from_raw(*pid);
        // Reap our child (init) before reading its verdict; an error means
        // it was reaped already.
        let _ = nix::sys::wait::waitpid(pid, None);
        Ok(Some(self.mesos.finalize_deferred(dir)?))
    }

    /// Frees what [`Self::finish_deferred`] left and checkpoints
    /// TERMINATED.
    pub fn release_resources(&self, unreleased: Unreleased) -> Result<()> {
        Ok(self.mesos.release(unreleased)?)
    }

    /// Copies an engine container's output until it ends: into its
    /// sandbox files with `into_sandbox`, onto this process's stdout and
    /// stderr with `tee`. `None` for an unknown container.
    pub fn follow_engine(
        &self,
        id: &ContainerId,
        tee: bool,
        into_sandbox: bool,
    ) -> Result<Option<()>> {
        Ok(block_on(self.docker.follow(id, tee, into_sandbox))??)
    }

    /// The record's follower lock file, for a detached log follower of an
    /// engine container (`None` for other containers).
    pub fn follower_lock_path(&self, id: &ContainerId) -> Option<PathBuf> {
        let dir = self.docker.store().open(id)?;
        Some(dir.file(phobos_docker::containerizer::FOLLOWER_LOCK_FILE))
    }

    /// Whether `id` runs in an engine (its logs come from the engine).
    pub fn is_engine(&self, id: &ContainerId) -> bool {
        self.docker.owns(id)
    }

    fn composing(&self) -> Composing {
        Composing::new(
            vec![Box::new(self.docker.clone())],
            Box::new(self.mesos.clone()),
        )
    }

    /// Applies `operation` to `id` through its owner; `None` for an
    /// unknown container.
    pub fn apply(&self, id: &ContainerId, operation: Operation) -> Result<Option<Outcome>> {
        self.composing()
            .apply(id, operation)
            .map_err(RuntimeError::Containerizer)
    }

    /// Destroys Mesos containers `ids` (distinct; nested ones before
    /// their parents) by killing all of them before waiting for any (see
    /// `MesosContainerizer::destroy_many`), with up to `workers` threads;
    /// the results in the order of `ids`, `None` for an unknown container.
    /// Engine containers go through [`Self::apply`].
    pub fn destroy_many(
        &self,
        ids: &[ContainerId],
        workers: usize,
    ) -> Vec<Result<Option<Termination>>> {
        self.mesos
            .destroy_many(ids, workers)
            .into_iter()
            .map(|r| r.map_err(|e| RuntimeError::Containerizer(Box::new(e))))
            .collect()
    }

    /// The statistics the external containerizer protocol answers, as
    /// agents 0.19-1.0 read them (Mesos <= 1.9 semantics, reference §8):
    /// always with CPU times (when no isolator measures CPU, as for a
    /// posix launch without `posix/cpu`, the process tree under the
    /// container's init is summed from `/proc`, as the `posix/cpu` and
    /// `posix/mem` isolators would), and with `cpus_limit` and
    /// `mem_limit_bytes` being the container's allocation (its `cpus` and
    /// `mem`; those agents predate separate limits), for Mesos and Docker
    /// containers alike. `None` when unknown.
    pub fn legacy_usage(&self, id: &ContainerId) -> Result<Option<ResourceStatistics>> {
        let Some(outcome) = self.apply(id, Operation::Usage)? else {
            return Ok(None);
        };
        let Outcome::Usage(stats) = outcome else {
            return Ok(None);
        };
        let mut stats = *stats;
        if let Some(Outcome::Resources(r)) = self.apply(id, Operation::Resources)? {
            stats.cpus_limit = r.cpus.or(stats.cpus_limit);
            stats.mem_limit_bytes = r.mem_bytes().or(stats.mem_limit_bytes);
        }
        if stats.cpus_user_time_secs.is_some() && stats.cpus_system_time_secs.is_some() {
            return Ok(Some(stats));
        }
        let pid = self
            .mesos
            .store()
            .open(id)
            .and_then(|d| d.pid().ok().flatten());
        let table = phobos_mesos::isolator::ProcTable::scan();
        let tree = pid
            .and_then(|pid| phobos_mesos::isolator::process_tree_usage(&table, pid))
            .unwrap_or_default();
        stats.cpus_user_time_secs = Some(tree.user_secs);
        stats.cpus_system_time_secs = Some(tree.system_secs);
        if tree.processes > 0 {
            stats.mem_rss_bytes = stats.mem_rss_bytes.or(Some(tree.rss_bytes));
            stats.processes = stats.processes.or(Some(tree.processes));
            stats.threads = stats.threads.or(Some(tree.threads));
        }
        Ok(Some(stats))
    }

    /// Every container of both containerizers, Mesos ones first; the
    /// engine is contacted only when there are Docker records.
    pub fn list(&self) -> Result<Vec<Summary>> {
        let mut all: Vec<Summary> = self.mesos.list()?.into_iter().map(Summary::Mesos).collect();
        if !self.docker.store().list()?.is_empty() {
            let docker = block_on(async {
                let engine = self.docker.engine().await.ok();
                self.docker.list(engine.as_ref()).await
            })??;
            all.extend(docker.into_iter().map(Summary::Docker));
        }
        Ok(all)
    }

    /// One container; `None` when unknown.
    pub fn summary(&self, id: &ContainerId) -> Result<Option<Summary>> {
        if self.docker.owns(id) {
            let summary = block_on(async {
                let engine = self.docker.engine().await.ok();
                self.docker.summary(id, engine.as_ref()).await
            })??;
            return Ok(summary.map(Summary::Docker));
        }
        Ok(self.mesos.summary(id)?.map(Summary::Mesos))
    }

    /// The statistics of every running container of both containerizers,
    /// Mesos ones first (by ID), without building their summaries first:
    /// `stats` over thousands of containers reads each record once.
    pub fn usage_all(&self) -> Result<Vec<(ContainerId, Result<Option<ResourceStatistics>>)>> {
        let mesos = self.mesos.store().list()?;
        let docker = self.docker.store().list()?;
        let mut out = self.usage_mesos(&mesos);
        out.extend(self.usage_docker(docker));
        Ok(out)
    }

    /// The statistics of every running container among `ids` (others are
    /// left out); a failure is reported per container.
    pub fn usage_of(
        &self,
        ids: &[ContainerId],
    ) -> Vec<(ContainerId, Result<Option<ResourceStatistics>>)> {
        let (docker, mesos): (Vec<ContainerId>, Vec<ContainerId>) =
            ids.iter().cloned().partition(|id| self.docker.owns(id));
        let mut out = self.usage_mesos(&mesos);
        out.extend(self.usage_docker(docker));
        out
    }

    /// The statistics of the Mesos containers `ids` that are running.
    fn usage_mesos(
        &self,
        ids: &[ContainerId],
    ) -> Vec<(ContainerId, Result<Option<ResourceStatistics>>)> {
        self.mesos
            .usage_many(ids, true)
            .into_iter()
            .map(|(id, r)| match r {
                Err(phobos_mesos::ContainerizerError::NotRunning(_)) => (id, Ok(None)),
                r => (id, r.map_err(RuntimeError::from)),
            })
            .collect()
    }

    /// The statistics of the engine's containers `ids` that are running
    /// (none when the engine cannot be reached, with a warning).
    fn usage_docker(
        &self,
        ids: Vec<ContainerId>,
    ) -> Vec<(ContainerId, Result<Option<ResourceStatistics>>)> {
        if ids.is_empty() {
            return Vec::new();
        }
        let results = block_on(async {
            let mut results = Vec::new();
            for id in ids {
                let r = match self.docker.usage(&id).await {
                    Err(phobos_docker::ContainerizerError::NotRunning(_)) => Ok(None),
                    r => r.map_err(RuntimeError::from),
                };
                results.push((id, r));
            }
            results
        });
        results.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "no Docker statistics");
            Vec::new()
        })
    }

    /// Where `id`'s logs are. For an engine container the engine's log is
    /// copied first: with `follow`, streamed to this process (or into the
    /// sandbox files with `into_sandbox`) until it ends.
    pub fn logs(&self, id: &ContainerId, follow: bool, into_sandbox: bool) -> Result<Option<Logs>> {
        if self.docker.owns(id) {
            if follow {
                return Ok(self
                    .follow_engine(id, !into_sandbox, into_sandbox)?
                    .map(|()| Logs::Streamed));
            }
            let sandbox = block_on(self.docker.refresh_logs(id))??;
            return Ok(sandbox.map(|sandbox| Logs::Files {
                sandbox,
                until: None,
            }));
        }
        let Some(c) = self.mesos.summary(id)? else {
            return Ok(None);
        };
        let until = match (follow, c.pid) {
            (true, Some(pid)) if c.termination.is_none() => {
                let pidfd = phobos_mesos::sys::pidfd_open(pid).ok();
                // Only follow a pid that still is this container's init.
                match (pidfd, self.mesos.store().open(id)) {
                    (Some(fd), Some(dir)) if dir.init_alive()? => Some(fd),
                    _ => None,
                }
            }
            _ => None,
        };
        Ok(Some(Logs::Files {
            sandbox: c.sandbox,
            until,
        }))
    }

    /// Runs a command inside running container `id`; `None` when unknown.
    pub fn exec(
        &self,
        id: &ContainerId,
        request: &ExecRequest,
        stdio: ExecStdio<'_>,
    ) -> Result<Option<ExecProcess>> {
        if self.docker.owns(id) {
            return Err(RuntimeError::DockerExec(id.clone()));
        }
        Ok(self.mesos.exec(id, request, stdio)?)
    }

    /// Re-adopts live containers, records the ends of those that ended
    /// unwatched, destroys half-launched ones and orphans, and releases
    /// reservations of launches that never finished. As root the linux
    /// launcher's cgroup roots are scanned for orphans too.
    pub fn recover(&self) -> Result<Recovery> {
        let launcher = self.cgroups_launcher(self.settings.cgroups_driver(), false);
        // The other driver's root too (where this runtime directory
        // already owns it): orphans left there before the driver changed.
        let other: Vec<_> = launcher
            .as_ref()
            .and_then(|_| self.cgroups_launcher(self.settings.cgroups_driver().other(), true))
            .into_iter()
            .collect();
        let mesos = self.mesos.recover(launcher.as_ref(), &other)?;
        // Shown only when it found or did anything.
        let docker = self.recover_docker()?.filter(|d| {
            !(d.recovered.is_empty()
                && d.finalized.is_empty()
                && d.orphans_killed.is_empty()
                && d.errors.is_empty())
        });
        let released_ids = self
            .ids
            .sweep(|key| ContainerId::new(key).is_ok_and(|id| self.exists(&id)))?;
        Ok(Recovery {
            mesos,
            docker,
            released_ids,
        })
    }

    /// The Docker containerizer's recovery: always when it has records,
    /// and when it is enabled and an engine socket exists, to find orphans
    /// whose records were lost. No engine and no records is not an error.
    fn recover_docker(&self) -> Result<Option<DockerRecoverReport>> {
        let has_records = !self.docker.store().list()?.is_empty();
        let enabled = self.settings.docker_enabled();
        if !(has_records || (enabled && self.docker.settings().socket.exists())) {
            return Ok(None);
        }
        match block_on(self.docker.recover())? {
            Ok(report) => Ok(Some(report)),
            Err(e) if has_records => Ok(Some(DockerRecoverReport {
                errors: vec![format!("docker: {e}")],
                ..DockerRecoverReport::default()
            })),
            Err(e) => {
                tracing::warn!(error = %e, "skipping docker recovery");
                Ok(None)
            }
        }
    }

    /// Removes the records (and sandboxes under the work dir) of
    /// terminated containers, ended at least `older_than` ago when given,
    /// and releases their IDs.
    /// Refused, with nothing removed, when the configured cgroups root
    /// belongs to another runtime directory (a record's name there may
    /// be that directory's live container).
    pub fn remove_terminated(&self, older_than: Option<Duration>) -> Result<Vec<ContainerId>> {
        if let Some(launcher) = self.cgroups_launcher(self.settings.cgroups_driver(), true) {
            self.mesos.claim_cgroups_root(&launcher)?;
        }
        let mut removed = self.mesos.remove_terminated(older_than)?;
        removed.extend(block_on(
            self.docker
                .remove_terminated(older_than, self.settings.work_dir()),
        )??);
        self.release(&removed);
        Ok(removed)
    }

    /// [`Self::remove_terminated`] for one container (`phobos run --rm`):
    /// true when it had ended and is now gone, its ID free again.
    pub fn remove_if_terminated(&self, id: &ContainerId) -> Result<bool> {
        let removed = if self.docker.owns(id) {
            block_on(
                self.docker
                    .remove_if_terminated(id, self.settings.work_dir()),
            )??
        } else {
            self.mesos.remove_if_terminated(id)?
        };
        if removed {
            self.release(std::slice::from_ref(id));
        }
        Ok(removed)
    }

    /// The linux launcher over the configured cgroups root as `driver`
    /// places containers (as root only; `None` where it cannot be built,
    /// e.g. the systemd driver on a host that is not pure cgroup v2, and
    /// with `only_existing` where the root exists in no hierarchy: then
    /// there is nothing to claim or sweep, and building a launcher on a
    /// cgroup2 mount with no directory at all would make the root for its
    /// `cgroup.kill` probe).
    fn cgroups_launcher(
        &self,
        driver: phobos_core::CgroupsDriver,
        only_existing: bool,
    ) -> Option<phobos_mesos::launcher::LinuxLauncher> {
        if !self.settings.is_root() {
            return None;
        }
        let root = self.settings.cgroups_root_for(driver).ok()?;
        let hierarchies = self.mesos.hierarchies()?;
        if only_existing
            && !phobos_mesos::launcher::owner::root_dirs(hierarchies, Path::new(&root))
                .iter()
                .any(phobos_cgroups::Cgroup::exists)
        {
            return None;
        }
        phobos_mesos::launcher::LinuxLauncher::with_driver(
            &root,
            phobos_mesos::launcher::KillHierarchy::Auto,
            driver,
            hierarchies,
        )
        .ok()
    }

    /// The automatic clean-up after a launch, at most once per interval
    /// (see `phobos_mesos::sweep`); returns the removed IDs.
    pub fn sweep_if_due(&self) -> Result<Vec<ContainerId>> {
        let removed = self
            .mesos
            .sweep_if_due(SweepPolicy::default())?
            .unwrap_or_default();
        self.release(&removed);
        Ok(removed)
    }

    fn release(&self, ids: &[ContainerId]) {
        for id in ids {
            if let Err(e) = self.ids.release(&IdRegistry::key(id)) {
                tracing::warn!(%id, error = %e, "failed to release the ID");
            }
        }
    }

    /// The record's follower lock, locked and inheritable (no
    /// FD_CLOEXEC), for a detached engine log follower to hold while it
    /// copies; `None` (with a warning) when it cannot be set up.
    pub fn follower_lock(&self, id: &ContainerId) -> Option<File> {
        use nix::fcntl::{FcntlArg, FdFlag, fcntl};
        use nix::libc::{O_CREAT, O_NONBLOCK, O_RDWR};
        let path = self.follower_lock_path(id)?;
        let store = self.docker.store();
        let setup = || -> std::io::Result<File> {
            // Beneath the Docker store, following no symlink (the record's
            // directory or the lock swapped for one).
            let rel = path.strip_prefix(store.root()).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "not in the store")
            })?;
            let file = phobos_core::SafeDir::open_trusted(store.root())?.open_file(
                rel,
                O_RDWR | O_CREAT | O_NONBLOCK,
                0o600,
            )?;
            file.lock()?;
            fcntl(&file, FcntlArg::F_SETFD(FdFlag::empty())).map_err(std::io::Error::from)?;
            Ok(file)
        };
        match setup() {
            Ok(file) => Some(file),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "no follower lock");
                None
            }
        }
    }
}

/// Runs one Docker containerizer call to completion.
fn block_on<F: std::future::Future>(future: F) -> Result<F::Output> {
    phobos_docker::block_on(future).map_err(RuntimeError::Async)
}
