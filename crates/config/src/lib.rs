//! The phobos configuration: a strict TOML file whose keys are the Mesos
//! agent's flag names (`isolation`, `launcher`, `cgroups_root`,
//! `docker_stop_timeout`, ...), plus a `[log]` table.
//!
//! Loading goes through three layers, each recorded as the [`Source`] of
//! every key so `phobos config` can show where a value came from:
//! built-in defaults (which differ for root and other users, see
//! [`Config::defaults`]), then the first file found on the search path (see
//! [`search`]), then command-line overrides ([`LoadedConfig::apply_override`]).
//!
//! The file is read into serde types that refuse unknown keys
//! ([`raw`]), and then validated into the runtime [`Config`], whose fields
//! are already parsed (isolator names as a list, durations as
//! [`std::time::Duration`]). Every error names the file, the line and the key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod duration;
mod raw;
pub mod search;
pub mod size;
mod values;

pub use duration::{format_duration, parse_duration};
pub use search::{Environment, candidates, find_config_file};
pub use size::{format_bytes, parse_bytes};

/// Every key, in the order `phobos config` shows them.
pub const KEYS: &[&str] = &[
    "runtime_dir",
    "work_dir",
    "isolation",
    "launcher",
    "cgroups_root",
    "cgroups_driver",
    "cgroups_enable_cfs",
    "cgroups_limit_swap",
    "cgroups_net_cls_primary_handle",
    "cgroups_net_cls_secondary_handles",
    "perf_events",
    "perf_duration",
    "perf_interval",
    "sandbox_directory",
    "default_container_image",
    "containerizers",
    "docker",
    "docker_socket",
    "docker_stop_timeout",
    "docker_kill_orphans",
    "docker_remove_delay",
    "container_disk_watch_interval",
    "fetcher_stall_timeout",
    "fetcher_cache_dir",
    "fetcher_cache_size",
    "enforce_container_disk_quota",
    "network_cni_config_dir",
    "network_cni_plugins_dir",
    "default_network_subnet",
    "default_network_bridge",
    "ecp_termination",
    "image_providers",
    "image_provisioner_backend",
    "docker_registry",
    "docker_store_dir",
    "docker_config",
    "docker_insecure_registries",
    "effective_capabilities",
    "bounding_capabilities",
    "seccomp_config_dir",
    "seccomp_profile_name",
    "allowed_devices",
    "default_container_shm_size",
    "container_logger",
    "logrotate.max_stdout_size",
    "logrotate.max_stderr_size",
    "logrotate.max_files",
    "log.level",
    "log.format",
    "log.destination",
];

/// Why `cgroups_hierarchy` (a Mesos agent flag) is refused: one base path
/// cannot describe a host's hierarchies (v1 controllers may be mounted
/// anywhere, a hybrid host has a unified mount beside them), so Phobos
/// reads every mount from `/proc/self/mountinfo` and never used the value.
const CGROUPS_HIERARCHY_UNUSED: &str =
    "not used: Phobos finds every cgroup hierarchy in /proc/self/mountinfo; remove this key";

/// Keys that may be unset (shown as a comment by `phobos config`).
const OPTIONAL_KEYS: &[&str] = &[
    "cgroups_net_cls_primary_handle",
    "fetcher_cache_dir",
    "default_container_image",
    "docker_store_dir",
    "docker_config",
    "network_cni_config_dir",
    "effective_capabilities",
    "bounding_capabilities",
    "seccomp_config_dir",
    "seccomp_profile_name",
    "default_container_shm_size",
];

/// Keys whose values are booleans.
const BOOLEAN_KEYS: &[&str] = &[
    "cgroups_enable_cfs",
    "cgroups_limit_swap",
    "docker_kill_orphans",
    "enforce_container_disk_quota",
];

/// Which container logger writes a Mesos container's stdout and stderr
/// into its sandbox (Mesos `--container_logger`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerLogger {
    /// Size-bounded, rotated files (Mesos's `LogrotateContainerLogger`
    /// module, Nomad's `logs` block): the default.
    Logrotate,
    /// Mesos's `SandboxContainerLogger`: the command writes the files
    /// itself, without bound.
    Sandbox,
}

/// `[logrotate]`: the limits of the `logrotate` logger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogrotateConfig {
    /// Bytes in the live `stdout` before it is rotated.
    pub max_stdout_size: u64,
    /// Bytes in the live `stderr` before it is rotated.
    pub max_stderr_size: u64,
    /// Files kept per stream, the live one included (at least 1).
    pub max_files: u32,
}

/// Errors loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An explicitly requested file does not exist.
    #[error("config file {} (from {origin}) does not exist", path.display())]
    Missing {
        /// The requested path.
        path: PathBuf,
        /// `--config` or `$PHOBOS_CONFIG`.
        origin: &'static str,
    },
    /// The file exists but cannot be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or has an unknown key or a key of the
    /// wrong shape.
    #[error("{}: {message}", location(path, *line, key.as_deref()))]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem, when known.
        line: Option<usize>,
        /// The offending key (dotted for `[log]` keys), when known.
        key: Option<String>,
        /// What the TOML parser said.
        message: String,
    },
    /// A key has a value it cannot take.
    #[error("{origin}: invalid value {value} for {key}: {reason}")]
    Invalid {
        /// Where the value came from (file and line, or command line).
        origin: Source,
        /// The key, e.g. `docker_stop_timeout` or `log.level`.
        key: String,
        /// The value as written.
        value: String,
        /// What was expected.
        reason: String,
    },
    /// A command-line override names a key that does not exist.
    #[error("command line: unknown config key {key:?}")]
    UnknownKey {
        /// The key as given.
        key: String,
    },
}

fn location(path: &Path, line: Option<usize>, key: Option<&str>) -> String {
    let mut out = path.display().to_string();
    if let Some(line) = line {
        out.push_str(&format!(":{line}"));
    }
    if let Some(key) = key {
        out.push_str(&format!(": {key}"));
    }
    out
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// A configuration file, at a 1-based line.
    File {
        /// The file.
        path: PathBuf,
        /// The line of the value.
        line: usize,
    },
    /// A command-line override.
    CommandLine,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File { path, line } => write!(f, "{}:{line}", path.display()),
            Source::CommandLine => f.write_str("command line"),
        }
    }
}

/// Who creates a container's cgroup (`cgroups_driver`, as runc's and
/// crun's `--cgroup-manager`/`systemd-cgroup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupsDriver {
    /// Phobos, through the cgroup filesystem (the default).
    Cgroupfs,
    /// systemd: a transient scope per container in the slice
    /// `cgroups_root` names, created over D-Bus.
    Systemd,
}

/// Which launcher starts container processes (Mesos `--launcher`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launcher {
    /// Namespaces and cgroups (needs root).
    Linux,
    /// Plain process groups and sessions.
    Posix,
}

/// A containerizer kind (Mesos `--containerizers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Containerizer {
    /// The Mesos (native) containerizer.
    Mesos,
    /// The Docker containerizer.
    Docker,
}

/// Which `Termination` message the ECP `wait` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcpTermination {
    /// Agents 0.26 - 1.0: `status`, `state`, `reasons`, `message`.
    V0_26,
    /// Agents 0.19 - 0.25: `killed`, `message`, `status`.
    V0_19,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Where logs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogDestination {
    /// Standard error.
    Stderr,
    /// syslog(3).
    Syslog,
    /// The systemd journal.
    Journald,
}

/// Log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Nothing at all.
    Off,
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// The default.
    Info,
    /// Debugging detail.
    Debug,
    /// Everything.
    Trace,
}

/// The `[log]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `log.level`, default `info`.
    pub level: LogLevel,
    /// `log.format`, default `human`.
    pub format: LogFormat,
    /// `log.destination`, default `stderr`.
    pub destination: LogDestination,
}

/// The validated runtime configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where container state lives (the source of truth).
    pub runtime_dir: PathBuf,
    /// Where sandboxes live.
    pub work_dir: PathBuf,
    /// Isolator names, in order (e.g. `cgroups/cpu`).
    pub isolation: Vec<String>,
    /// The launcher.
    pub launcher: Launcher,
    /// Name of our cgroup under each hierarchy.
    pub cgroups_root: String,
    /// Who creates the containers' cgroups.
    pub cgroups_driver: CgroupsDriver,
    /// Enforce cpu limits with CFS quotas.
    pub cgroups_enable_cfs: bool,
    /// Limit memory and swap together.
    pub cgroups_limit_swap: bool,
    /// Mesos `--cgroups_net_cls_primary_handle`: with `cgroups/net_cls`,
    /// each container gets `net_cls.classid` = this handle (upper 16
    /// bits) and a secondary one of its own (lower 16 bits).
    pub cgroups_net_cls_primary_handle: Option<u16>,
    /// Mesos `--cgroups_net_cls_secondary_handles`: the range secondary
    /// handles come from (`min,max`, default `0x1,0xffff`).
    pub cgroups_net_cls_secondary_handles: (u16, u16),
    /// Mesos `--perf_events`: with `cgroups/perf_event`, the perf events
    /// `stats` samples in each container's perf_event cgroup (names as
    /// `perf list` gives them; none: no sampling).
    pub perf_events: Vec<String>,
    /// Mesos `--perf_duration`: how long one sample counts (default 10s).
    pub perf_duration: Duration,
    /// Mesos `--perf_interval` (default 60s): Mesos samples every interval
    /// in the background; Phobos has no daemon and samples when asked
    /// (`stats`), so the key is accepted and shown but not used.
    pub perf_interval: Duration,
    /// Where the sandbox appears inside a container with its own root.
    pub sandbox_directory: PathBuf,
    /// Image for containers that do not name one.
    pub default_container_image: Option<String>,
    /// Enabled containerizers, in order of preference.
    pub containerizers: Vec<Containerizer>,
    /// The docker CLI (name or path).
    pub docker: String,
    /// The Docker Engine API socket.
    pub docker_socket: PathBuf,
    /// Grace period between SIGTERM and SIGKILL on `docker stop`.
    pub docker_stop_timeout: Duration,
    /// Kill Docker containers that no executor owns on recovery.
    pub docker_kill_orphans: bool,
    /// How long to keep a stopped Docker container before removing it.
    /// Mesos keeps them 6 hours so `docker logs` still works; Phobos copies
    /// their output into the sandbox first, so it removes them at once
    /// unless asked to keep them.
    pub docker_remove_delay: Duration,
    /// How often disk usage is measured.
    pub container_disk_watch_interval: Duration,
    /// Mesos `--fetcher_stall_timeout`: a download with no byte for this
    /// long fails the launch (default 60s).
    pub fetcher_stall_timeout: Duration,
    /// Mesos `--fetcher_cache_dir`: where URIs fetched with `cache` are
    /// kept; `None` means `<work_dir>/fetcher-cache`.
    pub fetcher_cache_dir: Option<PathBuf>,
    /// Mesos `--fetcher_cache_size` in bytes (default 2GB); 0 caches
    /// nothing.
    pub fetcher_cache_size: u64,
    /// Kill containers that exceed their disk quota.
    pub enforce_container_disk_quota: bool,
    /// CNI network configurations (`.conflist`, `.conf`, `.json`).
    pub network_cni_config_dir: Option<PathBuf>,
    /// Where CNI plugins are, `:`-separated absolute directories.
    pub network_cni_plugins_dir: String,
    /// The subnet of the built-in network `phobos`.
    pub default_network_subnet: String,
    /// The bridge of the built-in network `phobos`.
    pub default_network_bridge: String,
    /// Which `Termination` the ECP writes.
    pub ecp_termination: EcpTermination,
    /// Image providers for the Mesos containerizer (`docker`); empty
    /// disables images there.
    pub image_providers: Vec<String>,
    /// How root filesystems are made: `overlay` (default) or `copy`.
    pub image_provisioner_backend: String,
    /// The default registry's URL.
    pub docker_registry: String,
    /// The image store; `None` means `<work_dir>/store`.
    pub docker_store_dir: Option<PathBuf>,
    /// A Docker client `config.json` (path, or the JSON itself) with
    /// registry credentials.
    pub docker_config: Option<String>,
    /// Registries (`host[:port]`) spoken to over plain HTTP besides
    /// 127.0.0.0/8 and [::1].
    pub docker_insecure_registries: Vec<String>,
    /// Mesos `--effective_capabilities`: the capabilities a container's
    /// command gets (`None`: Docker's default set; empty: none).
    pub effective_capabilities: Option<Vec<String>>,
    /// Mesos `--bounding_capabilities`: what a launch may add.
    pub bounding_capabilities: Option<Vec<String>>,
    /// Mesos `--seccomp_config_dir`: where profiles named relatively are.
    pub seccomp_config_dir: Option<PathBuf>,
    /// Mesos `--seccomp_profile_name`: the default profile (relative to
    /// `seccomp_config_dir`); `None`: the built-in default.
    pub seccomp_profile_name: Option<String>,
    /// Mesos `--allowed_devices`: devices every container may use besides
    /// the default list, in Docker's `--device` spelling
    /// (`/dev/fuse:rwm`).
    pub allowed_devices: Vec<String>,
    /// Mesos `--default_container_shm_size`: the size of a private
    /// `/dev/shm` (a container with its own IPC namespace) whose launch
    /// asks for none; `None` leaves tmpfs's default (half the host's
    /// memory), or 64MB in a container with a root filesystem.
    pub default_container_shm_size: Option<u64>,
    /// `container_logger`.
    pub container_logger: ContainerLogger,
    /// `[logrotate]`.
    pub logrotate: LogrotateConfig,
    /// Logging.
    pub log: LogConfig,
}

impl Config {
    /// The fetcher cache: `fetcher_cache_dir`, else
    /// `<work_dir>/fetcher-cache`.
    pub fn fetcher_cache_dir(&self) -> PathBuf {
        self.fetcher_cache_dir
            .clone()
            .unwrap_or_else(|| self.work_dir.join("fetcher-cache"))
    }

    /// The image store: `docker_store_dir`, else `<work_dir>/store`.
    pub fn store_dir(&self) -> PathBuf {
        self.docker_store_dir
            .clone()
            .unwrap_or_else(|| self.work_dir.join("store"))
    }

    /// The built-in defaults for this environment.
    ///
    /// Root gets `/run/phobos` and `/var/lib/phobos` and the linux launcher;
    /// other users get `$XDG_RUNTIME_DIR/phobos` (else `/tmp/phobos-<uid>/run`),
    /// `~/.local/share/phobos` (else `/tmp/phobos-<uid>/work`) and the posix
    /// launcher, which needs no privileges.
    pub fn defaults(env: &Environment) -> Self {
        let (runtime_dir, work_dir, launcher) = if env.is_root() {
            (
                PathBuf::from("/run/phobos"),
                PathBuf::from("/var/lib/phobos"),
                Launcher::Linux,
            )
        } else {
            let tmp = PathBuf::from(format!("/tmp/phobos-{}", env.uid));
            let runtime = match &env.xdg_runtime_dir {
                Some(dir) => dir.join("phobos"),
                None => tmp.join("run"),
            };
            let work = match &env.home {
                Some(home) => home.join(".local/share/phobos"),
                None => tmp.join("work"),
            };
            (runtime, work, Launcher::Posix)
        };
        Self {
            runtime_dir,
            work_dir,
            isolation: vec!["posix/cpu".to_owned(), "posix/mem".to_owned()],
            launcher,
            cgroups_root: "phobos".to_owned(),
            cgroups_driver: CgroupsDriver::Cgroupfs,
            cgroups_enable_cfs: false,
            cgroups_limit_swap: false,
            cgroups_net_cls_primary_handle: None,
            cgroups_net_cls_secondary_handles: (1, 0xffff),
            perf_events: Vec::new(),
            perf_duration: Duration::from_secs(10),
            perf_interval: Duration::from_secs(60),
            sandbox_directory: PathBuf::from("/mnt/mesos/sandbox"),
            default_container_image: None,
            containerizers: vec![Containerizer::Mesos, Containerizer::Docker],
            docker: "docker".to_owned(),
            docker_socket: PathBuf::from("/var/run/docker.sock"),
            docker_stop_timeout: Duration::ZERO,
            docker_kill_orphans: true,
            docker_remove_delay: Duration::ZERO,
            container_disk_watch_interval: Duration::from_secs(15),
            fetcher_stall_timeout: Duration::from_secs(60),
            fetcher_cache_dir: None,
            fetcher_cache_size: 2 << 30,
            enforce_container_disk_quota: false,
            network_cni_config_dir: None,
            network_cni_plugins_dir: phobos_net::DEFAULT_PLUGINS_DIR.to_owned(),
            default_network_subnet: phobos_net::DEFAULT_SUBNET.to_owned(),
            default_network_bridge: phobos_net::DEFAULT_BRIDGE.to_owned(),
            ecp_termination: EcpTermination::V0_26,
            image_providers: Vec::new(),
            image_provisioner_backend: "overlay".to_owned(),
            docker_registry: "https://registry-1.docker.io".to_owned(),
            docker_store_dir: None,
            docker_config: None,
            docker_insecure_registries: Vec::new(),
            effective_capabilities: None,
            bounding_capabilities: None,
            seccomp_config_dir: None,
            seccomp_profile_name: None,
            allowed_devices: Vec::new(),
            default_container_shm_size: None,
            container_logger: ContainerLogger::Logrotate,
            // Mesos's module default size and Nomad's default count: at
            // most 100 MB per stream, 200 MB per container.
            logrotate: LogrotateConfig {
                max_stdout_size: 10 << 20,
                max_stderr_size: 10 << 20,
                max_files: 10,
            },
            log: LogConfig {
                level: LogLevel::Info,
                format: LogFormat::Human,
                destination: LogDestination::Stderr,
            },
        }
    }
}

/// One line of `phobos config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key (dotted for `[log]`).
    pub key: &'static str,
    /// The value in flag syntax.
    pub value: String,
    /// Where it came from.
    pub source: Source,
}

impl Entry {
    /// The entry as a line of the configuration file, which loads back to
    /// the same value: booleans bare, everything else a TOML string, and an
    /// unset optional key commented out (an empty string is not a value).
    pub fn toml_line(&self) -> String {
        if self.value.is_empty() && OPTIONAL_KEYS.contains(&self.key) {
            return format!("# {} is unset", self.key);
        }
        let value = if BOOLEAN_KEYS.contains(&self.key) {
            self.value.clone()
        } else {
            toml_string(&self.value)
        };
        format!("{} = {value}", self.key)
    }
}

/// `text` as a TOML basic string: quoted, with `"`, `\\` and control
/// characters escaped.
fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A configuration together with the provenance of each key.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedConfig {
    /// The validated values.
    pub config: Config,
    /// The file that was read, if any.
    pub file: Option<PathBuf>,
    provenance: BTreeMap<&'static str, Source>,
}

impl LoadedConfig {
    /// The defaults, with every key's source [`Source::Default`].
    pub fn defaults(env: &Environment) -> Self {
        Self {
            config: Config::defaults(env),
            file: None,
            provenance: KEYS.iter().map(|k| (*k, Source::Default)).collect(),
        }
    }

    /// Where `key`'s value came from, or `None` for an unknown key.
    pub fn source(&self, key: &str) -> Option<&Source> {
        self.provenance.get(key)
    }

    /// Every key with its value and source, in [`KEYS`] order.
    pub fn entries(&self) -> Vec<Entry> {
        KEYS.iter()
            .map(|key| Entry {
                key,
                value: self.config.get(key).unwrap_or_default(),
                source: self.provenance.get(key).cloned().unwrap_or(Source::Default),
            })
            .collect()
    }

    /// An error about `key`'s value found after loading (say, an isolator
    /// name only the containerizer knows), naming where the value came
    /// from: the file and line, the command line, or the default.
    pub fn invalid(&self, key: &str, value: &str, reason: impl fmt::Display) -> ConfigError {
        ConfigError::Invalid {
            origin: self.source(key).cloned().unwrap_or(Source::Default),
            key: key.to_owned(),
            value: format!("{value:?}"),
            reason: reason.to_string(),
        }
    }

    /// Applies a command-line override in flag syntax, e.g.
    /// (`"docker_stop_timeout"`, `"10secs"`) or (`"isolation"`,
    /// `"cgroups/cpu,cgroups/mem"`); booleans are `true` or `false`.
    pub fn apply_override(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let Some(key) = KEYS.iter().copied().find(|k| *k == key) else {
            return Err(ConfigError::UnknownKey {
                key: key.to_owned(),
            });
        };
        let parsed = if BOOLEAN_KEYS.contains(&key) {
            match value {
                "true" => toml::Value::Boolean(true),
                "false" => toml::Value::Boolean(false),
                _ => {
                    return Err(ConfigError::Invalid {
                        origin: Source::CommandLine,
                        key: key.to_owned(),
                        value: format!("{value:?}"),
                        reason: "expected true or false".to_owned(),
                    });
                }
            }
        } else {
            toml::Value::String(value.to_owned())
        };
        self.config
            .set(key, &parsed)
            .map_err(|reason| ConfigError::Invalid {
                origin: Source::CommandLine,
                key: key.to_owned(),
                value: format!("{value:?}"),
                reason,
            })?;
        self.provenance.insert(key, Source::CommandLine);
        Ok(())
    }
}

/// Finds the configuration file (see [`search`]) and loads it over the
/// defaults; no file means the defaults.
pub fn load(explicit: Option<&Path>, env: &Environment) -> Result<LoadedConfig, ConfigError> {
    match find_config_file(explicit, env)? {
        None => Ok(LoadedConfig::defaults(env)),
        Some(path) => load_file(&path, env),
    }
}

/// Loads one file over the defaults.
pub fn load_file(path: &Path, env: &Environment) -> Result<LoadedConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_str(&text, path, env)
}

/// Parses TOML `text` (read from `path`, which is used in messages and
/// provenance) over the defaults.
pub fn parse_str(text: &str, path: &Path, env: &Environment) -> Result<LoadedConfig, ConfigError> {
    let raw = raw::RawConfig::parse(text).map_err(|e| raw::parse_error(text, path, &e))?;
    let mut loaded = LoadedConfig::defaults(env);
    loaded.file = Some(path.to_path_buf());
    for (key, spanned) in raw.into_entries() {
        let line = raw::line_of(text, spanned.span().start);
        let origin = Source::File {
            path: path.to_path_buf(),
            line,
        };
        loaded
            .config
            .set(key, spanned.get_ref())
            .map_err(|reason| ConfigError::Invalid {
                origin: origin.clone(),
                key: key.to_owned(),
                value: raw::render(spanned.get_ref()),
                reason,
            })?;
        loaded.provenance.insert(key, origin);
    }
    Ok(loaded)
}
