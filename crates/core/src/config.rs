//! `ContainerConfig`: what a container was asked to be, checkpointed as the
//! runtime directory's `config` file before anything else happens.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{ContainerId, ContainerNetwork, Resources, Volume};

/// The command to run, with Mesos `CommandInfo` semantics: `shell = true`
/// runs `/bin/sh -c <value>`; otherwise `value` is the executable and
/// `arguments` is the whole argv (so `arguments[0]` is argv[0]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandSpec {
    pub shell: bool,
    pub value: String,
    #[serde(default)]
    pub arguments: Vec<String>,
}

impl CommandSpec {
    /// A command given as an argv vector, as on the `phobos run` command line.
    pub fn argv(argv: Vec<String>) -> Option<Self> {
        let value = argv.first()?.clone();
        Some(Self {
            shell: false,
            value,
            arguments: argv,
        })
    }

    /// The argv that is executed: `["sh", "-c", value]` for shell commands
    /// (argv[0] `sh`, as Mesos's launch helper gives it; the file is
    /// [`Self::program`]).
    pub fn exec_argv(&self) -> Vec<String> {
        if self.shell {
            vec!["sh".into(), "-c".into(), self.value.clone()]
        } else if self.arguments.is_empty() {
            vec![self.value.clone()]
        } else {
            self.arguments.clone()
        }
    }

    /// The file executed, looked up in PATH as `execvp` does: Mesos runs
    /// `value` with `arguments` as its argv when `shell` is false, so it
    /// need not be `arguments[0]`; `/bin/sh` for shell commands.
    pub fn program(&self) -> &str {
        match (self.shell, self.value.is_empty()) {
            (true, _) => "/bin/sh",
            (false, false) => &self.value,
            (false, true) => self.arguments.first().map_or("", String::as_str),
        }
    }

    /// A one-line rendering for listings.
    pub fn display(&self) -> String {
        if self.shell {
            return self.value.clone();
        }
        self.exec_argv()
            .iter()
            .map(|a| {
                if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'') {
                    format!("'{}'", a.replace('\'', "'\\''"))
                } else {
                    a.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Who creates the container's top-level cgroup (`cgroups_driver`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupsDriver {
    /// Phobos itself, `<cgroups_root>/<id>` through the cgroup filesystem.
    #[default]
    Cgroupfs,
    /// systemd: a transient scope `phobos-<id>.scope` with `Delegate=yes`
    /// in the slice `cgroups_root` names, made over D-Bus (pure cgroup v2).
    Systemd,
}

impl CgroupsDriver {
    /// The other driver (recovery also looks where it puts containers).
    pub fn other(self) -> Self {
        match self {
            Self::Cgroupfs => Self::Systemd,
            Self::Systemd => Self::Cgroupfs,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Cgroupfs => "cgroupfs",
            Self::Systemd => "systemd",
        }
    }
}

fn is_cgroupfs(d: &CgroupsDriver) -> bool {
    *d == CgroupsDriver::Cgroupfs
}

/// Which launcher forks the container (Mesos `--launcher`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LauncherKind {
    /// Namespaces plus a freezer cgroup; needs root.
    Linux,
    /// A plain session leader; no namespaces, no cgroups.
    Posix,
}

impl LauncherKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Linux => "linux",
            Self::Posix => "posix",
        }
    }
}

/// The whole description of a container as launched.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContainerConfig {
    pub id: ContainerId,
    pub command: CommandSpec,
    /// Environment variables in priority order (later entries win).
    #[serde(default)]
    pub env: Vec<(String, String)>,
    #[serde(default)]
    pub working_dir: Option<PathBuf>,
    /// The user to run as (name or numeric uid); `None` keeps the caller's.
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub hostname: Option<String>,
    /// Isolator names in Mesos spelling, after defaults were applied.
    pub isolation: Vec<String>,
    pub launcher: LauncherKind,
    /// Host path of the sandbox (holds `stdout` and `stderr`).
    pub sandbox: PathBuf,
    /// The cgroup directory name under each hierarchy's root (`--cgroups-root`).
    pub cgroups_root: String,
    /// Who makes the top-level cgroup; records written before the option
    /// existed load as `cgroupfs`.
    #[serde(default, skip_serializing_if = "is_cgroupfs")]
    pub cgroups_driver: CgroupsDriver,
    /// Whether the launcher's stdin is handed to the command.
    #[serde(default)]
    pub interactive: bool,
    /// When the launch began, in seconds since the epoch.
    pub created_at: f64,
    /// Requests and limits; absent in configs written before resources
    /// existed, which then load as "nothing requested".
    #[serde(default, skip_serializing_if = "Resources::is_empty")]
    pub resources: Resources,
    /// Agent flags that decide how resources are isolated, checkpointed so
    /// every later operation (update, usage, cleanup) uses the same ones.
    #[serde(default)]
    pub isolator_flags: IsolatorFlags,
    /// The container's root filesystem, a directory on the host (Mesos
    /// `ContainerLaunchInfo.rootfs`); `None` runs on the host's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<PathBuf>,
    /// The image the root filesystem is provisioned from at PROVISIONING
    /// (Mesos `ContainerInfo.mesos.image`); the checkpoint written after
    /// provisioning has the merged command and `rootfs` set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ContainerImage>,
    /// Volumes mounted into the root filesystem, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// Where the sandbox appears inside the root filesystem (Mesos
    /// `--sandbox_directory`); `None` means `/mnt/mesos/sandbox`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_directory: Option<PathBuf>,
    /// URIs fetched into the sandbox in FETCHING, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fetch: Vec<FetchUri>,
    /// `fetcher_stall_timeout` in seconds; `None`: the default (60 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetcher_stall_timeout_secs: Option<u64>,
    /// The fetcher cache (`fetcher_cache_dir`, `fetcher_cache_size`) for
    /// URIs fetched with `cache`; `None`: they are fetched directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetcher_cache: Option<FetcherCache>,
    /// The container's network (`host` when absent).
    #[serde(default, skip_serializing_if = "ContainerNetwork::is_host")]
    pub network: ContainerNetwork,
    /// Capabilities, no_new_privs, rlimits and seccomp for the command.
    #[serde(default, skip_serializing_if = "crate::Hardening::is_empty")]
    pub hardening: crate::Hardening,
    /// What a nested container (an `id` with a parent) shares with its
    /// parent beyond the network and UTS namespaces it always shares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nesting: Option<Nesting>,
    /// A pseudo-terminal for the command (Mesos `ContainerInfo.tty_info`):
    /// its stdin, stdout and stderr are the terminal, whose master an I/O
    /// switchboard holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tty: Option<TtyInfo>,
    /// The `logrotate` container logger's limits; `None`: the `sandbox`
    /// logger (the command writes its sandbox files directly, unbounded),
    /// as in configs checkpointed before loggers existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logrotate: Option<crate::LogRotation>,
}

/// The sharing choices of a nested container (Mesos `LinuxInfo`
/// `share_pid_namespace`, `ipc_mode`, `share_cgroups`; §3.9, §3.12). The
/// mount namespace is always its own; network and UTS always the parent's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nesting {
    /// Join the parent's pid namespace instead of a new one.
    #[serde(default)]
    pub share_pid: bool,
    /// Join the parent's ipc namespace instead of a new one.
    #[serde(default)]
    pub share_ipc: bool,
    /// Run in the parent's resource cgroups (accounted to the parent)
    /// instead of cgroups of its own nested under the parent's.
    #[serde(default)]
    pub share_cgroups: bool,
    /// Mesos's `ContainerClass::DEBUG`: shares everything with the parent
    /// (its mount namespace too), inherits its environment, working
    /// directory and user, has no resources of its own (it is not
    /// counted), and is destroyed by recovery.
    #[serde(default)]
    pub debug: bool,
    /// A session's DEBUG container (LAUNCH_NESTED_CONTAINER_SESSION): its
    /// switchboard holds the output until the session's stream attached.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub session: bool,
}

/// Where the fetcher cache is and how large it may grow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetcherCache {
    pub dir: PathBuf,
    pub max_bytes: u64,
}

/// Mesos `TTYInfo`: the container's command gets a terminal of its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TtyInfo {
    /// The terminal's size at start (the caller's); 24x80 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_size: Option<WindowSize>,
    /// Phobos: the switchboard holds the command's output, and its end,
    /// until the first client attached (bounded), so a foreground `run
    /// -it` loses nothing the command printed before it connected (Mesos
    /// `wait_for_connection`, which it sets for DEBUG containers).
    #[serde(default)]
    pub wait_for_client: bool,
}

/// Mesos `TTYInfo.WindowSize`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSize {
    pub rows: u16,
    pub columns: u16,
}

/// A URI to fetch into the sandbox before the command starts (Mesos
/// `CommandInfo.URI`); `phobos_fetch` parses, checks and fetches it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchUri {
    pub value: String,
    /// `chmod 0755` the file; an executable is never extracted (Mesos).
    #[serde(default)]
    pub executable: bool,
    /// Extract a recognised archive (Mesos's default: true).
    #[serde(default = "yes")]
    pub extract: bool,
    /// Fetched through the fetcher cache (once per URI and user).
    #[serde(default)]
    pub cache: bool,
    /// The file's path in the sandbox, instead of the URI's basename.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_file: Option<String>,
}

fn yes() -> bool {
    true
}

impl FetchUri {
    /// A URI with Mesos's defaults (extract, nothing else).
    pub fn new(value: impl Into<String>) -> Self {
        FetchUri {
            value: value.into(),
            executable: false,
            extract: true,
            cache: false,
            output_file: None,
        }
    }
}

/// A container's image, as asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerImage {
    /// The image reference as given (normalized by the provisioner).
    pub reference: String,
    /// The command is a command line's argv (`phobos run --image REF --
    /// ARGV`): merged as Docker does (it replaces CMD); otherwise it is a
    /// Mesos `CommandInfo` (an empty one runs the image's own command).
    #[serde(default)]
    pub command_line: bool,
}

impl ContainerConfig {
    /// A DEBUG container without a terminal gets a switchboard over pipes
    /// (Mesos gives every DEBUG container an I/O switchboard): its input
    /// through ATTACH_CONTAINER_INPUT, its output to every attached stream
    /// and its sandbox files.
    pub fn pipe_switchboard(&self) -> bool {
        self.tty.is_none() && self.nesting.is_some_and(|n| n.debug)
    }

    /// The sandbox's path as the command sees it.
    pub fn sandbox_in_container(&self) -> PathBuf {
        let own_root = self.rootfs.is_some() || self.image.is_some();
        match &self.sandbox_directory {
            // A nested container without a root filesystem of its own sees
            // its sandbox where its parent does.
            Some(dir) if !own_root && self.nesting.is_some() => dir.clone(),
            _ if !own_root => self.sandbox.clone(),
            Some(dir) => dir.clone(),
            None => PathBuf::from(crate::volume::DEFAULT_SANDBOX_DIRECTORY),
        }
    }
}

/// The fields of a checkpointed [`ContainerConfig`] that a listing shows
/// (`ps`), read from the same JSON without building the rest: the
/// environment, the hardening (the seccomp profile's hundred syscall
/// names), volumes and fetch URIs are skipped unparsed into values. Each
/// field is read exactly as [`ContainerConfig`] reads it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ConfigSummary {
    pub id: ContainerId,
    pub command: CommandSpec,
    pub isolation: Vec<String>,
    pub launcher: LauncherKind,
    pub sandbox: PathBuf,
    pub cgroups_root: String,
    #[serde(default)]
    pub cgroups_driver: CgroupsDriver,
    pub created_at: f64,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default)]
    pub isolator_flags: NetClsFlags,
    #[serde(default)]
    pub network: ContainerNetwork,
}

/// The fields of a checkpointed [`ContainerConfig`] that measuring a
/// container needs (`stats`: which isolators it has and how they were
/// set up), read from the same JSON without building the rest: the
/// command, environment, hardening (the seccomp profile's syscall names
/// are most of a config's bytes), volumes and fetch URIs are skipped
/// unparsed into values. Each field is read exactly as
/// [`ContainerConfig`] reads it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct UsageConfig {
    pub id: ContainerId,
    pub isolation: Vec<String>,
    pub sandbox: PathBuf,
    pub cgroups_root: String,
    #[serde(default)]
    pub cgroups_driver: CgroupsDriver,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default)]
    pub isolator_flags: IsolatorFlags,
    #[serde(default)]
    pub network: ContainerNetwork,
}

/// The one [`IsolatorFlags`] field a listing needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct NetClsFlags {
    /// See [`IsolatorFlags::cgroups_net_cls_primary_handle`].
    #[serde(default)]
    pub cgroups_net_cls_primary_handle: Option<u16>,
}

/// The Mesos agent flags the resource isolators follow (§6).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IsolatorFlags {
    /// `--cgroups_enable_cfs`: enforce the CPU request as a CFS quota.
    #[serde(default)]
    pub cgroups_enable_cfs: bool,
    /// `--cgroups_limit_swap`: memory + swap ≤ the hard limit.
    #[serde(default)]
    pub cgroups_limit_swap: bool,
    /// `--container_disk_watch_interval` in seconds (Mesos default 15 s).
    #[serde(default = "default_disk_watch_interval")]
    pub container_disk_watch_interval_secs: f64,
    /// `--enforce_container_disk_quota`: end containers over `disk`.
    #[serde(default)]
    pub enforce_container_disk_quota: bool,
    /// `--network_cni_config_dir`: CNI network configurations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_cni_config_dir: Option<PathBuf>,
    /// `--network_cni_plugins_dir`: where CNI plugins are (`:`-separated);
    /// `None` means `/usr/lib/cni`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_cni_plugins_dir: Option<String>,
    /// The default network's subnet; `None` means the built-in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_network_subnet: Option<String>,
    /// The default network's bridge; `None` means `phobos0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_network_bridge: Option<String>,
    /// `--cgroups_net_cls_primary_handle`: with `cgroups/net_cls`, the
    /// upper 16 bits of every container's `net_cls.classid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups_net_cls_primary_handle: Option<u16>,
    /// `--cgroups_net_cls_secondary_handles`: the range the lower 16 bits
    /// come from, one value per container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups_net_cls_secondary_handles: Option<(u16, u16)>,
    /// `--perf_events`: with `cgroups/perf_event`, the events sampled in
    /// the container's perf_event cgroup (none: no sampling).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub perf_events: Vec<String>,
    /// `--perf_duration` in seconds: how long one sample counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perf_duration_secs: Option<f64>,
}

fn default_disk_watch_interval() -> f64 {
    15.0
}

impl Default for IsolatorFlags {
    fn default() -> Self {
        Self {
            cgroups_enable_cfs: false,
            cgroups_limit_swap: false,
            container_disk_watch_interval_secs: default_disk_watch_interval(),
            enforce_container_disk_quota: false,
            network_cni_config_dir: None,
            network_cni_plugins_dir: None,
            default_network_subnet: None,
            default_network_bridge: None,
            cgroups_net_cls_primary_handle: None,
            cgroups_net_cls_secondary_handles: None,
            perf_events: Vec::new(),
            perf_duration_secs: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_without_resources_still_load() {
        let old = r#"{"id":"c1","command":{"shell":true,"value":"true"},"isolation":[],
            "launcher":"posix","sandbox":"/tmp/s","cgroups_root":"phobos","created_at":1.0}"#;
        let c: ContainerConfig = serde_json::from_str(old).unwrap();
        assert!(c.resources.is_empty());
        assert_eq!(c.isolator_flags, IsolatorFlags::default());
        assert_eq!(c.isolator_flags.container_disk_watch_interval_secs, 15.0);
    }

    #[test]
    fn a_summary_reads_the_listed_fields_as_the_whole_config_does() {
        let text = r#"{"id":"c1","command":{"shell":false,"value":"sleep","arguments":["sleep","9"]},
            "env":[["A","1"]],"isolation":["cgroups/cpu","cgroups/net_cls"],"launcher":"linux",
            "sandbox":"/tmp/s","cgroups_root":"phobos","cgroups_driver":"systemd",
            "created_at":12.5,"resources":{"cpus":0.5},
            "isolator_flags":{"cgroups_enable_cfs":true,"cgroups_net_cls_primary_handle":4096},
            "network":{"mode":"none"},
            "hardening":{"seccomp":{"source":"default","default_action":"allow","rules":[]}}}"#;
        let full: ContainerConfig = serde_json::from_str(text).unwrap();
        let summary: ConfigSummary = serde_json::from_str(text).unwrap();
        assert_eq!(summary.id, full.id);
        assert_eq!(summary.command, full.command);
        assert_eq!(summary.isolation, full.isolation);
        assert_eq!(summary.launcher, full.launcher);
        assert_eq!(summary.sandbox, full.sandbox);
        assert_eq!(summary.cgroups_root, full.cgroups_root);
        assert_eq!(summary.cgroups_driver, full.cgroups_driver);
        assert_eq!(summary.created_at, full.created_at);
        assert_eq!(summary.resources, full.resources);
        assert_eq!(
            summary.isolator_flags.cgroups_net_cls_primary_handle,
            full.isolator_flags.cgroups_net_cls_primary_handle
        );
        assert_eq!(summary.network, full.network);
        // A record from before the optional fields existed, too.
        let old = r#"{"id":"c1","command":{"shell":true,"value":"true"},"isolation":[],
            "launcher":"posix","sandbox":"/tmp/s","cgroups_root":"phobos","created_at":1.0}"#;
        let summary: ConfigSummary = serde_json::from_str(old).unwrap();
        assert!(summary.resources.is_empty());
        assert_eq!(summary.isolator_flags, NetClsFlags::default());
        assert_eq!(summary.network, ContainerNetwork::default());
    }

    #[test]
    fn a_usage_config_reads_its_fields_as_the_whole_config_does() {
        let text = r#"{"id":"c1","command":{"shell":false,"value":"sleep","arguments":["sleep","9"]},
            "env":[["A","1"]],"hostname":"h1","isolation":["cgroups/cpu","disk/du"],
            "launcher":"linux","sandbox":"/tmp/s","cgroups_root":"phobos",
            "cgroups_driver":"systemd","created_at":12.5,"resources":{"cpus":0.5,"disk":64},
            "isolator_flags":{"cgroups_enable_cfs":true,"enforce_container_disk_quota":true,
                "container_disk_watch_interval_secs":3.0,"perf_events":["cycles"]},
            "network":{"mode":"none"},
            "hardening":{"seccomp":{"source":"default","default_action":"allow","rules":[]}}}"#;
        let full: ContainerConfig = serde_json::from_str(text).unwrap();
        let usage: UsageConfig = serde_json::from_str(text).unwrap();
        assert_eq!(usage.id, full.id);
        assert_eq!(usage.isolation, full.isolation);
        assert_eq!(usage.sandbox, full.sandbox);
        assert_eq!(usage.cgroups_root, full.cgroups_root);
        assert_eq!(usage.cgroups_driver, full.cgroups_driver);
        assert_eq!(usage.hostname, full.hostname);
        assert_eq!(usage.resources, full.resources);
        assert_eq!(usage.isolator_flags, full.isolator_flags);
        assert_eq!(usage.network, full.network);
        // A record from before the optional fields existed, too.
        let old = r#"{"id":"c1","command":{"shell":true,"value":"true"},"isolation":[],
            "launcher":"posix","sandbox":"/tmp/s","cgroups_root":"phobos","created_at":1.0}"#;
        let full: ContainerConfig = serde_json::from_str(old).unwrap();
        let usage: UsageConfig = serde_json::from_str(old).unwrap();
        assert_eq!(usage.isolator_flags, full.isolator_flags);
        assert_eq!(usage.cgroups_driver, CgroupsDriver::Cgroupfs);
        assert_eq!(usage.network, ContainerNetwork::default());
        assert!(usage.resources.is_empty() && usage.hostname.is_none());
    }

    #[test]
    fn argv_and_shell_forms() {
        let c =
            CommandSpec::argv(vec!["sh".into(), "-c".into(), "echo hi; exit 7".into()]).unwrap();
        assert_eq!(c.exec_argv(), ["sh", "-c", "echo hi; exit 7"]);
        assert_eq!(c.display(), "sh -c 'echo hi; exit 7'");
        let s = CommandSpec {
            shell: true,
            value: "exit 42".into(),
            arguments: vec![],
        };
        assert_eq!(s.exec_argv(), ["sh", "-c", "exit 42"]);
        assert_eq!(s.program(), "/bin/sh");
        assert!(CommandSpec::argv(vec![]).is_none());
        assert_eq!(c.program(), "sh");
    }

    #[test]
    fn a_mesos_command_runs_its_value_with_its_arguments_as_argv() {
        let renamed = CommandSpec {
            shell: false,
            value: "/bin/sh".into(),
            arguments: vec!["renamed".into(), "-c".into(), "echo $0".into()],
        };
        assert_eq!(renamed.program(), "/bin/sh");
        assert_eq!(renamed.exec_argv(), ["renamed", "-c", "echo $0"]);
        let no_arguments = CommandSpec {
            shell: false,
            value: "/bin/true".into(),
            arguments: vec![],
        };
        assert_eq!(no_arguments.program(), "/bin/true");
        assert_eq!(no_arguments.exec_argv(), ["/bin/true"]);
        let no_value = CommandSpec {
            shell: false,
            value: String::new(),
            arguments: vec!["echo".into(), "hi".into()],
        };
        assert_eq!(no_value.program(), "echo");
    }
}
