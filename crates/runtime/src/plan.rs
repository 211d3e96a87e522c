//! The planner: a face's [`LaunchIntent`] (what the CLI's `run`, the ECP's
//! `launch` or the agent was asked) becomes one [`LaunchRequest`]: the
//! [`ContainerSpec`] both containerizers share plus the part only one of
//! them reads ([`Target`]). Faces parse; every launch policy (which
//! containerizer, which launcher, which isolators, which flags, what a
//! Docker container gets) is decided here, with the [`Settings`], so a new
//! launch option is written once for every face.
//!
//! Nothing is touched on disk: a refused intent changes nothing.

use std::path::PathBuf;

use phobos_core::{
    CommandSpec, ContainerConfig, ContainerId, ContainerImage, ContainerNetwork, IsolatorFlags,
    LauncherKind, Nesting, NetworkInfo, PortMapping, Resources, Volume,
};
use phobos_docker::{DockerCommand, DockerContainerizer, DockerLaunch};

use crate::settings::{FlagOverrides, PolicyError, Settings};

pub use phobos_core::FetchUri;

/// What a face asks for: every field as the face received it, nothing
/// decided yet. `None`/empty means "not asked".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LaunchIntent {
    /// The ID; a random UUID when absent.
    pub id: Option<ContainerId>,
    /// The command; absent only for a Docker image's own ENTRYPOINT/CMD.
    pub command: Option<CommandSpec>,
    /// Environment in priority order (later entries win).
    pub env: Vec<(String, String)>,
    pub working_dir: Option<PathBuf>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    /// The sandbox; `<work_dir>/containers/<id>` when absent.
    pub sandbox: Option<PathBuf>,
    pub resources: Resources,
    /// The launching process's stdin goes to the command.
    pub interactive: bool,
    /// Mesos containerizer: an explicit launcher (strict: linux needs root).
    pub launcher: Option<LauncherKind>,
    /// Mesos containerizer: an explicit isolator list.
    pub isolation: Option<Vec<String>>,
    /// The container logger for this launch; `container_logger` from the
    /// settings when absent.
    pub container_logger: Option<phobos_config::ContainerLogger>,
    /// Isolator switches turned on for this launch.
    pub flags: FlagOverrides,
    /// A Docker image and its `DockerInfo`: routes to the Docker
    /// containerizer. `volumes` inside it are ignored (use [`Self::volumes`]).
    pub docker: Option<DockerLaunch>,
    /// A root filesystem image for the Mesos containerizer (issue 10).
    pub rootfs_image: Option<String>,
    /// The command is a command line's argv (a CLI face): with an image
    /// it replaces CMD and follows ENTRYPOINT, as Docker does; otherwise
    /// it is a Mesos `CommandInfo`, merged as Mesos does.
    pub command_line: bool,
    /// A root filesystem directory for the Mesos containerizer (`phobos
    /// run --rootfs DIR`), absolute.
    pub rootfs: Option<PathBuf>,
    /// Host paths to mount into the container.
    pub volumes: Vec<Volume>,
    /// Networks to join, in order (Mesos `NetworkInfo`s: a CNI network's
    /// name and its port mappings; `host` and `none` stand alone).
    pub networks: Vec<NetworkInfo>,
    /// Ports to publish (`-p`) through the first listed network that maps
    /// ports.
    pub publish: Vec<PortMapping>,
    /// URIs to fetch into the sandbox (issue 13).
    pub fetch: Vec<FetchUri>,
    /// The parent of a nested container (its full ID); [`Self::id`] is
    /// then the child's own ID under it.
    pub parent: Option<ContainerId>,
    /// What a nested container shares with its parent.
    pub nesting: Nesting,
    /// Capabilities, no_new_privs, rlimits, seccomp (issue 11).
    pub security: crate::security::SecurityIntent,
    /// A terminal for the command, held by a switchboard (issue 12).
    pub tty: Option<phobos_core::TtyInfo>,
}

/// What both containerizers read: the container as asked, with every
/// default applied.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerSpec {
    pub id: ContainerId,
    /// `None`: the Docker image's own ENTRYPOINT/CMD.
    pub command: Option<CommandSpec>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<PathBuf>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub sandbox: PathBuf,
    pub resources: Resources,
    pub isolator_flags: IsolatorFlags,
    pub rootfs_image: Option<String>,
    pub command_line: bool,
    pub rootfs: Option<PathBuf>,
    pub volumes: Vec<Volume>,
    /// The network, checked against the configured CNI networks.
    pub network: ContainerNetwork,
    pub fetch: Vec<FetchUri>,
    /// `fetcher_stall_timeout`, from the settings.
    pub fetcher_stall_timeout_secs: Option<u64>,
    /// `fetcher_cache_dir` and `fetcher_cache_size`, from the settings.
    pub fetcher_cache: Option<phobos_core::FetcherCache>,
    /// The parent of a nested container (`id` is then `parent.child`).
    pub parent: Option<ContainerId>,
    pub tty: Option<phobos_core::TtyInfo>,
    pub nesting: Option<Nesting>,
    /// `container_logger` and `[logrotate]`, from the settings: `None`
    /// for the `sandbox` logger.
    pub logrotate: Option<phobos_core::LogRotation>,
    /// Where the sandbox appears in a Mesos container's own root
    /// filesystem (`sandbox_directory`); `None` on the host's.
    pub sandbox_directory: Option<PathBuf>,
}

/// The Mesos containerizer's own part of a launch.
#[derive(Clone, Debug, PartialEq)]
pub struct MesosPart {
    pub launcher: LauncherKind,
    /// Isolator names, resolved (aliases expanded, order fixed).
    pub isolation: Vec<String>,
    pub cgroups_root: String,
    pub cgroups_driver: phobos_core::CgroupsDriver,
    pub interactive: bool,
    /// What the command is confined by.
    pub hardening: phobos_core::Hardening,
}

/// Which containerizer launches, with its own part.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    Mesos(Box<MesosPart>),
    Docker(Box<DockerLaunch>),
}

/// One launch, decided: what the composing containerizer routes.
#[derive(Clone, Debug, PartialEq)]
pub struct LaunchRequest {
    pub spec: ContainerSpec,
    pub target: Target,
}

/// A request and what the face should tell its user about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub request: LaunchRequest,
    /// Non-fatal remarks (a fallback launcher, unenforced resources).
    pub warnings: Vec<String>,
}

/// Why an intent cannot be launched. Each names the offending value.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("no command given")]
    NoCommand,
    /// A URI to fetch with an unsupported scheme or no usable file name.
    #[error(transparent)]
    Fetch(#[from] phobos_fetch::SpecError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Isolation(#[from] phobos_mesos::isolator::IsolatorError),
    #[error(transparent)]
    Config(#[from] phobos_config::ConfigError),
    #[error(transparent)]
    Hostname(#[from] phobos_core::InvalidHostname),
    #[error(transparent)]
    Env(#[from] phobos_core::InvalidEnv),
    /// A resource value the face did not check itself (the API's, the
    /// ECP's: the CLI refuses its options as it parses them).
    #[error(
        "invalid value '{}' for resource {}: {}",
        .0.value,
        .0.option.trim_start_matches('-'),
        .0.reason
    )]
    Resources(phobos_core::InvalidResource),
    #[error("hostname {0:?} needs the linux launcher")]
    HostnameNeedsLinux(String),
    #[error("{0} does not apply to Docker containers")]
    NotForDocker(&'static str),
    #[error("image {0:?} needs the Docker containerizer, which is not in `containerizers`")]
    DockerDisabled(String),
    #[error("a Docker image needs a name")]
    EmptyImage,
    #[error(transparent)]
    Docker(#[from] phobos_docker::TranslateError),
    #[error(transparent)]
    Network(#[from] phobos_net::NetError),
    #[error(transparent)]
    Image(#[from] phobos_image::Error),
    #[error("a root filesystem directory ({0:?}) and an image are exclusive")]
    ImageAndRootfs(PathBuf),
    #[error("volume {0:?} needs a root filesystem (an image or --rootfs) or a Docker image")]
    VolumeNeedsRootfs(String),
    #[error("{0} needs the linux launcher, not {1}")]
    RootfsNeedsLinux(&'static str, &'static str),
    #[error("a root filesystem needs the filesystem/linux isolator; the isolation is {0:?}")]
    RootfsNeedsFilesystemLinux(String),
    #[error(transparent)]
    Security(#[from] crate::security::SecurityError),
    /// `--parent` names no container (a runtime failure, not a usage
    /// error: it may have just been removed).
    #[error("parent container '{0}' does not exist")]
    UnknownParent(ContainerId),
    #[error(
        "container '{0}' is a Docker container: only Mesos containers can have nested containers"
    )]
    DockerParent(ContainerId),
    #[error("invalid nested container id: {0}")]
    NestedId(#[from] phobos_core::InvalidContainerId),
    #[error("{0} does not apply to a nested container: {1}")]
    NotForNested(&'static str, &'static str),
    #[error("{0} applies only to a nested container (use --parent)")]
    OnlyForNested(&'static str),
    /// A nested container with resource cgroups of its own, on a
    /// cgroup2-only host, under a parent launched before containers' processes
    /// moved to a leaf cgroup (a runtime condition, not bad input).
    #[error(
        "nested container '{child}' cannot have cgroups of its own on this cgroup2-only host: \
         its parent '{parent}' was launched before Phobos kept a container's processes in \
         '<cgroup>/leaf' and holds them in its own cgroup, and cgroup v2's \
         no-internal-process rule gives controllers only to the children of a cgroup without \
         processes; launch it with --share-cgroups (LinuxInfo.share_cgroups: accounted to the \
         parent), or with an isolation without cgroups isolators, or relaunch the parent"
    )]
    NestedCgroupsOnV2 {
        parent: ContainerId,
        child: ContainerId,
    },
}

impl PlanError {
    /// Whether this is bad input (exit 2, nothing changed); a parent that
    /// does not exist is a runtime failure (it may have just gone).
    pub fn is_usage(&self) -> bool {
        !matches!(
            self,
            Self::UnknownParent(_) | Self::NestedCgroupsOnV2 { .. }
        )
    }
}

/// What the planner needs to know about a nested container's parent.
#[derive(Clone, Debug, PartialEq)]
pub struct ParentFacts {
    /// The parent's sandbox on the host.
    pub sandbox: PathBuf,
    /// It runs in an engine (Docker): it cannot have nested containers.
    pub docker: bool,
    /// Its processes are in its own cgroup2 directory rather than in that
    /// directory's leaf (a container launched before the leaf layout):
    /// its nested containers cannot get controllers of their own.
    pub processes_in_own_cgroup: bool,
    /// The cgroups root and driver its record was launched with; its
    /// nested containers' cgroups go below its own whatever the
    /// configuration says now. `None`: the configuration's.
    pub cgroups: Option<(String, phobos_core::CgroupsDriver)>,
}

/// Host facts the default isolation depends on (the cgroup hierarchies
/// present); a trait so the planner can be tested without a host.
pub trait Host {
    /// The isolators a launcher gets when none are configured.
    fn default_isolation(&self, launcher: LauncherKind) -> Vec<String>;

    /// Whether device access can be restricted (a cgroup v1 devices
    /// controller, or cgroup2 where a device eBPF program does it).
    fn has_v1_devices(&self) -> bool {
        true
    }

    /// The parent a nested container is asked under; `None` when unknown.
    fn parent(&self, _id: &ContainerId) -> Option<ParentFacts> {
        None
    }

    /// Whether every cgroup controller is on cgroup2 (no v1 controller
    /// hierarchy), where a container's own cgroup holds its processes.
    fn cgroup2_only(&self) -> bool {
        false
    }
}

/// This machine, through the Mesos containerizer's view of its cgroups
/// and the records of both containerizers.
pub struct RealHost<'a> {
    pub mesos: &'a phobos_mesos::MesosContainerizer,
    pub docker: &'a DockerContainerizer,
}

impl Host for RealHost<'_> {
    fn parent(&self, id: &ContainerId) -> Option<ParentFacts> {
        if self.docker.owns(id) {
            return Some(ParentFacts {
                sandbox: PathBuf::new(),
                docker: true,
                processes_in_own_cgroup: false,
                cgroups: None,
            });
        }
        let dir = self.mesos.store().open(id)?;
        let config: ContainerConfig = dir.read_json(phobos_core::store::CONFIG_FILE).ok()??;
        let processes_in_own_cgroup = self
            .mesos
            .hierarchies()
            .and_then(|h| h.unified_mount())
            .is_some_and(|mount| {
                let rel = std::path::Path::new(&config.cgroups_root).join(
                    phobos_mesos::launcher::cgroup_rel(config.cgroups_driver, id),
                );
                phobos_cgroups::Cgroup::new(mount, &rel, phobos_cgroups::Version::V2)
                    .read("cgroup.procs")
                    .is_ok_and(|procs| !procs.trim().is_empty())
            });
        Some(ParentFacts {
            sandbox: config.sandbox,
            docker: false,
            processes_in_own_cgroup,
            cgroups: Some((config.cgroups_root, config.cgroups_driver)),
        })
    }

    fn default_isolation(&self, launcher: LauncherKind) -> Vec<String> {
        phobos_mesos::isolator::default_isolation_with(launcher, self.mesos.hierarchies())
    }

    fn cgroup2_only(&self) -> bool {
        self.mesos
            .hierarchies()
            .is_some_and(|h| h.layout() == phobos_cgroups::Layout::Unified)
    }

    fn has_v1_devices(&self) -> bool {
        // A v1 devices controller, or cgroup2 for a device eBPF program.
        self.mesos.hierarchies().is_some_and(|h| {
            h.locate(phobos_cgroups::Controller::Devices).is_some() || h.unified_mount().is_some()
        })
    }
}

/// Turns intents into requests with one process's settings.
pub struct Planner<'a> {
    settings: &'a Settings,
    host: &'a dyn Host,
}

impl<'a> Planner<'a> {
    pub fn new(settings: &'a Settings, host: &'a dyn Host) -> Self {
        Self { settings, host }
    }

    /// The isolators a launcher gets when the launch names none: the
    /// configured list, else the host's default set (plus `disk/du` when
    /// disk is requested, which nothing else would measure).
    pub fn isolation(
        &self,
        launcher: LauncherKind,
        requested: Option<&[String]>,
        wants_disk: bool,
    ) -> Result<Vec<String>, PlanError> {
        use phobos_mesos::isolator::resolve_isolation;
        let names = match requested {
            Some(list) => list.to_vec(),
            None if self.settings.configured("isolation") => {
                // A bad configured name is the file's error, named by line.
                let names = &self.settings.config().isolation;
                return resolve_isolation(names, launcher).map_err(|e| {
                    self.settings
                        .loaded()
                        .invalid("isolation", &names.join(","), e)
                        .into()
                });
            }
            None => {
                let mut names = self.host.default_isolation(launcher);
                if wants_disk {
                    names.push("disk/du".to_owned());
                }
                names
            }
        };
        Ok(resolve_isolation(&names, launcher)?)
    }

    /// Decides `intent`.
    pub fn plan(&self, intent: LaunchIntent) -> Result<Plan, PlanError> {
        // The same input rules for every face and both containerizers
        // (the Mesos containerizer checks them again for direct callers).
        if let Some(name) = &intent.hostname {
            phobos_core::input::validate_hostname(name)?;
        }
        for (key, value) in &intent.env {
            phobos_core::input::validate_env(key, value)?;
        }
        intent.resources.validate().map_err(PlanError::Resources)?;
        let (id, sandbox) = match &intent.parent {
            Some(parent) => self.nested_id(&intent, parent)?,
            None => {
                if intent.nesting != Nesting::default() {
                    return Err(PlanError::OnlyForNested("sharing with a parent"));
                }
                let id = intent.id.clone().unwrap_or_else(ContainerId::random);
                let sandbox = intent.sandbox.clone().unwrap_or_else(|| {
                    self.settings
                        .work_dir()
                        .join("containers")
                        .join(id.as_str())
                });
                (id, sandbox)
            }
        };
        let isolator_flags = self.settings.isolator_flags(&intent.flags);
        let mut warnings = Vec::new();
        let mut network = ContainerNetwork::Host;
        let target = match &intent.docker {
            Some(docker) => Target::Docker(Box::new(self.docker_part(&intent, docker)?)),
            None => {
                network = self.network(&intent, &isolator_flags)?;
                Target::Mesos(Box::new(self.mesos_part(
                    &intent,
                    &network,
                    &mut warnings,
                )?))
            }
        };
        let own_root = intent.rootfs.is_some() || intent.rootfs_image.is_some();
        let sandbox_directory = match &target {
            Target::Mesos(_) if own_root => Some(self.settings.config().sandbox_directory.clone()),
            _ => None,
        };
        let request = LaunchRequest {
            spec: ContainerSpec {
                id,
                command: intent.command,
                env: intent.env,
                working_dir: intent.working_dir,
                user: intent.user,
                hostname: intent.hostname,
                sandbox,
                resources: intent.resources,
                isolator_flags,
                rootfs_image: intent.rootfs_image,
                command_line: intent.command_line,
                rootfs: intent.rootfs,
                volumes: intent.volumes,
                network,
                fetch: intent.fetch,
                fetcher_stall_timeout_secs: Some(
                    self.settings
                        .config()
                        .fetcher_stall_timeout
                        .as_secs()
                        .max(1),
                ),
                fetcher_cache: {
                    let config = self.settings.config();
                    (config.fetcher_cache_size > 0).then(|| phobos_core::FetcherCache {
                        dir: config.fetcher_cache_dir(),
                        max_bytes: config.fetcher_cache_size,
                    })
                },
                nesting: intent.parent.as_ref().map(|_| intent.nesting),
                parent: intent.parent,
                tty: intent.tty,
                logrotate: {
                    let config = self.settings.config();
                    match intent.container_logger.unwrap_or(config.container_logger) {
                        phobos_config::ContainerLogger::Sandbox => None,
                        phobos_config::ContainerLogger::Logrotate => {
                            Some(phobos_core::LogRotation {
                                max_stdout_size: config.logrotate.max_stdout_size,
                                max_stderr_size: config.logrotate.max_stderr_size,
                                max_files: config.logrotate.max_files,
                            })
                        }
                    }
                },
                sandbox_directory,
            },
            target,
        };
        if let Target::Docker(docker) = &request.target {
            // The engine-free checks (ports on the host network, bad
            // parameters, a hostname on the host network …) here, before
            // anything is created or the engine contacted.
            let probe = DockerContainerizer::new(
                self.settings.runtime_dir(),
                self.settings.docker_settings(),
            );
            let config = request.config(0.0);
            phobos_docker::create_request(&probe.spec(&config, docker), 0)?;
        }
        Ok(Plan { request, warnings })
    }

    /// A nested container's full ID and sandbox: its own ID (a valid
    /// top-level ID, random when absent) under a known Mesos parent, the
    /// sandbox `<parent sandbox>/containers/<child>` (Mesos §8.5).
    fn nested_id(
        &self,
        intent: &LaunchIntent,
        parent: &ContainerId,
    ) -> Result<(ContainerId, PathBuf), PlanError> {
        let leaf = match &intent.id {
            Some(id) => ContainerId::new(id.as_str())?,
            None => ContainerId::random(),
        };
        let id = parent.child(&leaf)?;
        let facts = self
            .host
            .parent(parent)
            .ok_or_else(|| PlanError::UnknownParent(parent.clone()))?;
        if facts.docker {
            return Err(PlanError::DockerParent(parent.clone()));
        }
        let why = "it lives in its parent's";
        if intent.sandbox.is_some() {
            return Err(PlanError::NotForNested("a sandbox directory", why));
        }
        if intent.hostname.is_some() {
            return Err(PlanError::NotForNested(
                "a hostname",
                "it shares its parent's UTS namespace",
            ));
        }
        if !intent.networks.is_empty() || !intent.publish.is_empty() {
            return Err(PlanError::NotForNested(
                "a network or published port",
                "it shares its parent's network namespace",
            ));
        }
        if intent.nesting.debug {
            // Mesos's DEBUG class: in the parent's namespaces, cgroups and
            // filesystem, not counted against resources.
            let why = "a debug container shares everything with its parent";
            let given = [
                (!intent.resources.is_empty(), "resources"),
                (
                    intent.rootfs.is_some() || intent.rootfs_image.is_some(),
                    "a root filesystem",
                ),
                (!intent.volumes.is_empty(), "a volume"),
                (intent.isolation.is_some(), "an isolator list"),
            ];
            if let Some((_, what)) = given.iter().find(|(given, _)| *given) {
                return Err(PlanError::NotForNested(what, why));
            }
        }
        let sandbox = facts.sandbox.join("containers").join(leaf.as_str());
        Ok((id, sandbox))
    }

    /// The network of a Mesos container: `host` unless networks are named;
    /// every named network must be configured (or be the built-in
    /// `phobos`), ports go where a plugin maps them.
    fn network(
        &self,
        intent: &LaunchIntent,
        flags: &IsolatorFlags,
    ) -> Result<ContainerNetwork, PlanError> {
        if intent.networks.is_empty() && intent.publish.is_empty() {
            return Ok(ContainerNetwork::Host);
        }
        let settings = phobos_mesos::isolator::net_settings(flags)?;
        let root = phobos_net::NetRoot::new(self.settings.runtime_dir());
        let configured = phobos_net::Networks::load(&settings, &root.ipam_dir())?;
        let names: Vec<String> = intent.networks.iter().map(|n| n.name.clone()).collect();
        let mut network = phobos_net::from_cli(&names, &intent.publish, &configured)?;
        // Port mappings that came with a network (ECP `NetworkInfo`).
        let asked = intent
            .networks
            .iter()
            .filter(|n| !n.port_mappings.is_empty());
        match &mut network {
            ContainerNetwork::Cni { networks } => {
                for (joined, wanted) in networks.iter_mut().zip(&intent.networks) {
                    joined
                        .port_mappings
                        .extend(wanted.port_mappings.iter().copied());
                }
                phobos_net::validate_requests(networks, &configured)?;
            }
            other => {
                if let Some(n) = asked.clone().next() {
                    return Err(phobos_net::NetError::PortsNeedNetwork {
                        network: match other {
                            ContainerNetwork::None => "none".to_owned(),
                            _ => n.name.clone(),
                        },
                    }
                    .into());
                }
            }
        }
        Ok(network)
    }

    fn mesos_part(
        &self,
        intent: &LaunchIntent,
        network: &ContainerNetwork,
        warnings: &mut Vec<String>,
    ) -> Result<MesosPart, PlanError> {
        // An image may bring its own command (ENTRYPOINT/CMD).
        if intent.command.is_none() && intent.rootfs_image.is_none() {
            return Err(PlanError::NoCommand);
        }
        if let Some(image) = &intent.rootfs_image {
            phobos_image::Reference::parse(image)?;
            if let Some(dir) = &intent.rootfs {
                return Err(PlanError::ImageAndRootfs(dir.clone()));
            }
        }
        let has_rootfs = intent.rootfs.is_some() || intent.rootfs_image.is_some();
        if let Some(v) = intent.volumes.first().filter(|_| !has_rootfs) {
            return Err(PlanError::VolumeNeedsRootfs(format!(
                "{}:{}",
                v.host_path.display(),
                v.container_path.display()
            )));
        }
        for uri in &intent.fetch {
            phobos_fetch::UriExt::check(uri)?;
        }
        let choice = self.settings.launcher(intent.launcher)?;
        warnings.extend(choice.warning);
        let launcher = choice.kind;
        if intent.parent.is_some() && launcher != LauncherKind::Linux {
            return Err(PlanError::NotForNested(
                "the posix launcher",
                "joining its parent's namespaces needs the linux launcher (root)",
            ));
        }
        let mut isolation = self.isolation(
            launcher,
            intent.isolation.as_deref(),
            intent.resources.disk.is_some(),
        )?;
        if intent.parent.is_some() {
            // The namespaces are the nesting's (own mount, pid and ipc
            // unless shared; the parent's network and UTS); shared cgroups
            // are the parent's isolators'. A debug container keeps only
            // the confinement of its command.
            let debug = intent.nesting.debug;
            if debug {
                isolation.retain(|n| n.starts_with("linux/") || n == "posix/rlimits");
            }
            let share_cgroups = intent.nesting.share_cgroups || debug;
            isolation.retain(|n| {
                let decided_by_nesting = matches!(
                    n.as_str(),
                    "namespaces/pid" | "namespaces/ipc" | "namespaces/uts" | "network/cni"
                );
                let parents = share_cgroups && n.starts_with("cgroups/");
                !(decided_by_nesting || parents)
            });
            // On cgroup2 alone, controllers for `<parent>/mesos/<child>`
            // are enabled in the parent's cgroup, whose processes are in
            // its leaf. A parent launched before the leaf layout holds
            // them in its cgroup itself: the kernel would refuse (EBUSY),
            // so it is refused here, before anything is created. (The
            // device eBPF program needs no controller.)
            let controllers = isolation
                .iter()
                .any(|n| n.starts_with("cgroups/") && n != "cgroups/devices");
            if controllers
                && !share_cgroups
                && self.host.cgroup2_only()
                && let Some(parent) = &intent.parent
                && self
                    .host
                    .parent(parent)
                    .is_some_and(|p| p.processes_in_own_cgroup)
            {
                let leaf = intent.id.clone().unwrap_or_else(ContainerId::random);
                return Err(PlanError::NestedCgroupsOnV2 {
                    parent: parent.clone(),
                    child: parent.child(&leaf).unwrap_or(leaf),
                });
            }
            if share_cgroups && !intent.resources.is_empty() {
                warnings.push(
                    "the container shares its parent's cgroups: its resources are accounted to the parent and not enforced on their own"
                        .to_owned(),
                );
            }
        }
        // Mesos `LinuxInfo.share_pid_namespace` / `ipc_mode` of a top-level
        // container: it keeps the host's namespace, or gets its own.
        if intent.parent.is_none() {
            if intent.security.share_pid_namespace {
                isolation.retain(|n| n != "namespaces/pid");
            }
            match intent.security.share_ipc_namespace {
                Some(true) => isolation.retain(|n| n != "namespaces/ipc"),
                Some(false) if !isolation.iter().any(|n| n == "namespaces/ipc") => {
                    isolation.push("namespaces/ipc".to_owned());
                    isolation = phobos_mesos::isolator::resolve_isolation(&isolation, launcher)?;
                }
                _ => {}
            }
        }
        // Mesos adds `network/cni` when no network isolator is listed.
        if network.own_namespace() && !isolation.iter().any(|n| n == "network/cni") {
            isolation.push("network/cni".to_owned());
            isolation = phobos_mesos::isolator::resolve_isolation(&isolation, launcher)?;
        }
        if !intent.resources.is_empty()
            && !isolation
                .iter()
                .any(|n| n.starts_with("cgroups/") || n.starts_with("posix/") || n == "disk/du")
        {
            warnings.push(
                "no resource isolator in the isolation; the requested resources are recorded but not enforced"
                    .to_owned(),
            );
        }
        if let Some(hostname) = &intent.hostname
            && launcher != LauncherKind::Linux
        {
            return Err(PlanError::HostnameNeedsLinux(hostname.clone()));
        }
        if has_rootfs {
            if launcher != LauncherKind::Linux {
                let what = match intent.rootfs_image {
                    Some(_) => "an image (the Mesos containerizer pivots into its root filesystem)",
                    None => "a root filesystem",
                };
                return Err(PlanError::RootfsNeedsLinux(what, launcher.name()));
            }
            if !isolation.iter().any(|n| n == "filesystem/linux") {
                return Err(PlanError::RootfsNeedsFilesystemLinux(isolation.join(",")));
            }
        }
        let mut hardening = crate::security::hardening(
            self.settings,
            &intent.security,
            &isolation,
            self.host.has_v1_devices(),
            warnings,
        )?;
        // Only a private /dev/shm can be sized (Mesos rejects shm_size
        // with any ipc_mode but PRIVATE).
        let own_ipc = match intent.parent {
            Some(_) => !intent.nesting.share_ipc && !intent.nesting.debug,
            None => isolation.iter().any(|n| n == "namespaces/ipc"),
        };
        if let Some(bytes) = intent.security.shm_size {
            if !own_ipc {
                return Err(crate::security::SecurityError::ShmNeedsOwnIpc(bytes).into());
            }
            if bytes < 4096 {
                return Err(crate::security::SecurityError::ShmTooSmall(bytes).into());
            }
            hardening.shm_size = Some(bytes);
        } else if own_ipc {
            // Mesos `--default_container_shm_size` (checked when the
            // configuration was loaded).
            hardening.shm_size = self.settings.config().default_container_shm_size;
        }
        // A nested container's cgroups are below its parent's, where the
        // parent's record says they are.
        let parent_cgroups = intent
            .parent
            .as_ref()
            .and_then(|p| self.host.parent(p))
            .and_then(|facts| facts.cgroups);
        let (cgroups_root, cgroups_driver) = match parent_cgroups {
            Some(cgroups) => cgroups,
            None => (
                self.settings.container_cgroups_root()?,
                self.settings.cgroups_driver(),
            ),
        };
        Ok(MesosPart {
            launcher,
            isolation,
            cgroups_root,
            cgroups_driver,
            interactive: intent.interactive,
            hardening,
        })
    }

    fn docker_part(
        &self,
        intent: &LaunchIntent,
        docker: &DockerLaunch,
    ) -> Result<DockerLaunch, PlanError> {
        let flags = &intent.flags;
        let mesos_only = [
            (intent.isolation.is_some(), "isolation"),
            (intent.launcher.is_some(), "a launcher"),
            (intent.interactive, "interactive stdin"),
            (intent.resources.disk.is_some(), "a disk request"),
            (flags.cgroups_limit_swap, "cgroups_limit_swap"),
            (
                flags.enforce_container_disk_quota,
                "enforce_container_disk_quota",
            ),
            (intent.rootfs_image.is_some(), "a root filesystem image"),
            (intent.rootfs.is_some(), "a root filesystem directory"),
            (
                !intent.networks.is_empty(),
                "a named network (use the Docker network)",
            ),
            (
                !intent.publish.is_empty(),
                "a published port without the Docker network",
            ),
            (intent.parent.is_some(), "nesting"),
            (intent.tty.is_some(), "a terminal (-t)"),
        ];
        if let Some((_, what)) = mesos_only.iter().find(|(given, _)| *given) {
            return Err(PlanError::NotForDocker(what));
        }
        if docker.image.is_empty() {
            return Err(PlanError::EmptyImage);
        }
        if !self.settings.docker_enabled() {
            return Err(PlanError::DockerDisabled(docker.image.clone()));
        }
        let mut part = docker.clone();
        if intent.command.is_none() && part.command.is_none() {
            part.command = Some(DockerCommand::image_default());
        }
        // `docker run --user` and `--pids-limit`, as parameters.
        let mut parameters = Vec::new();
        if let Some(user) = &intent.user {
            parameters.push(("user".to_owned(), user.clone()));
        }
        if let Some(pids) = intent.resources.pids_limit {
            parameters.push(("pids-limit".to_owned(), pids.to_string()));
        }
        parameters.extend(crate::security::docker_parameters(&intent.security));
        parameters.append(&mut part.parameters);
        part.parameters = parameters;
        part.volumes = intent
            .volumes
            .iter()
            .map(|v| phobos_docker::Volume {
                host_path: v.host_path.display().to_string(),
                container_path: v.container_path.display().to_string(),
                read_only: v.read_only,
            })
            .collect();
        Ok(part)
    }
}

impl LaunchRequest {
    pub fn id(&self) -> &ContainerId {
        &self.spec.id
    }

    /// The container as checkpointed in its record's `config` file.
    pub fn config(&self, created_at: f64) -> ContainerConfig {
        let spec = &self.spec;
        let command = spec.command.clone().unwrap_or(CommandSpec {
            shell: false,
            value: String::new(),
            arguments: Vec::new(),
        });
        let (isolation, launcher, (cgroups_root, cgroups_driver), interactive, hardening) =
            match &self.target {
                Target::Mesos(m) => (
                    m.isolation.clone(),
                    m.launcher,
                    (m.cgroups_root.clone(), m.cgroups_driver),
                    m.interactive,
                    m.hardening.clone(),
                ),
                Target::Docker(_) => (
                    Vec::new(),
                    LauncherKind::Linux,
                    (String::new(), phobos_core::CgroupsDriver::Cgroupfs),
                    false,
                    Default::default(),
                ),
            };
        ContainerConfig {
            id: spec.id.clone(),
            command,
            env: spec.env.clone(),
            working_dir: spec.working_dir.clone(),
            user: spec.user.clone(),
            hostname: spec.hostname.clone(),
            isolation,
            launcher,
            sandbox: spec.sandbox.clone(),
            cgroups_root,
            cgroups_driver,
            interactive,
            created_at,
            resources: spec.resources.clone(),
            isolator_flags: spec.isolator_flags.clone(),
            // A directory given as is; the provisioned directory of
            // `rootfs_image` is set by the launch that provisions it.
            rootfs: spec.rootfs.clone(),
            volumes: match &self.target {
                Target::Mesos(_) => spec.volumes.clone(),
                // In the engine's request (`DockerLaunch::volumes`).
                Target::Docker(_) => Vec::new(),
            },
            sandbox_directory: spec.sandbox_directory.clone(),
            // The Docker containerizer fetches into the sandbox before it
            // creates the container.
            fetch: spec.fetch.clone(),
            fetcher_stall_timeout_secs: spec.fetcher_stall_timeout_secs,
            fetcher_cache: spec.fetcher_cache.clone(),
            network: match &self.target {
                Target::Mesos(_) => spec.network.clone(),
                // The engine's network (`DockerLaunch::network`).
                Target::Docker(_) => ContainerNetwork::Host,
            },
            nesting: spec.nesting,
            image: match &self.target {
                Target::Mesos(_) => spec.rootfs_image.clone().map(|reference| ContainerImage {
                    reference,
                    command_line: spec.command_line,
                }),
                Target::Docker(_) => None,
            },
            hardening,
            tty: match &self.target {
                Target::Mesos(_) => spec.tty,
                Target::Docker(_) => None,
            },
            // Both containerizers: init's pump or the switchboard for a
            // Mesos container, the engine log's copy for a Docker one.
            logrotate: spec.logrotate,
        }
    }
}
