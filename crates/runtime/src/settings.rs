//! [`Settings`]: the effective configuration, built once per process from
//! the config file and the global flags (flag > file > default), plus the
//! facts about this process that launch policy depends on (root or not).
//!
//! Every launch policy lives here, in one place: which launcher a launch
//! gets, which isolators by default, which isolator flags. `phobos config`
//! shows what these decide.

use std::path::{Path, PathBuf};
use std::time::Duration;

use phobos_config::{ConfigError, Environment, LoadedConfig, Source};
use phobos_core::{IsolatorFlags, LauncherKind};
use phobos_docker::DockerSettings;

/// The global options a face was given (each `None` when absent).
#[derive(Clone, Debug, Default)]
pub struct Flags {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--runtime-dir` (must be absolute, as in the file).
    pub runtime_dir: Option<PathBuf>,
    /// `--work-dir` (must be absolute, as in the file).
    pub work_dir: Option<PathBuf>,
    /// `--cgroups-root`.
    pub cgroups_root: Option<String>,
    /// `--log-level`.
    pub log_level: Option<String>,
}

/// Isolator switches a launch asks for on top of the configuration (a
/// switch can only turn a setting on) and a disk watch interval.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FlagOverrides {
    pub cgroups_enable_cfs: bool,
    pub cgroups_limit_swap: bool,
    pub enforce_container_disk_quota: bool,
    pub container_disk_watch_interval: Option<Duration>,
}

/// The launcher a launch gets, and a warning when it is not the one the
/// configuration names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LauncherChoice {
    pub kind: LauncherKind,
    pub warning: Option<String>,
}

/// Why the settings refuse a launch option.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("the linux launcher needs root (running as uid {uid}); use --launcher posix")]
    LinuxNeedsRoot { uid: u32 },
}

/// The effective settings of this process.
#[derive(Debug, Clone)]
pub struct Settings {
    loaded: LoadedConfig,
    euid: u32,
    /// The binary the Mesos containerizer runs as each container's init.
    init_exe: Option<PathBuf>,
    /// A launch stop point (crash-safety tests only; `PHOBOS_STOP_AT`).
    stop_at: Option<String>,
}

impl Settings {
    /// Loads the configuration file and applies `flags` over it. A bad
    /// file or flag value is a `ConfigError` naming file, line and key.
    pub fn load(flags: &Flags, env: &Environment) -> Result<Self, ConfigError> {
        let mut loaded = phobos_config::load(flags.config.as_deref(), env)?;
        let text = |p: &Path| p.display().to_string();
        if let Some(dir) = &flags.runtime_dir {
            loaded.apply_override("runtime_dir", &text(dir))?;
        }
        if let Some(dir) = &flags.work_dir {
            loaded.apply_override("work_dir", &text(dir))?;
        }
        if let Some(root) = &flags.cgroups_root {
            loaded.apply_override("cgroups_root", root)?;
        }
        if let Some(level) = &flags.log_level {
            loaded.apply_override("log.level", level)?;
        }
        Ok(Self::from_loaded(loaded, nix::unistd::geteuid().as_raw()))
    }

    /// Settings over an already loaded configuration, as user `euid`.
    pub fn from_loaded(loaded: LoadedConfig, euid: u32) -> Self {
        Self {
            loaded,
            euid,
            init_exe: None,
            stop_at: None,
        }
    }

    /// The built-in defaults for this process.
    pub fn defaults() -> Self {
        Self::from_loaded(
            LoadedConfig::defaults(&Environment::from_process()),
            nix::unistd::geteuid().as_raw(),
        )
    }

    /// With the binary that runs as init and an optional stop point.
    pub fn with_init(mut self, init_exe: PathBuf, stop_at: Option<String>) -> Self {
        self.init_exe = Some(init_exe);
        self.stop_at = stop_at;
        self
    }

    /// The configuration with the provenance of every value.
    pub fn loaded(&self) -> &LoadedConfig {
        &self.loaded
    }

    /// The effective configuration values.
    pub fn config(&self) -> &phobos_config::Config {
        &self.loaded.config
    }

    pub fn runtime_dir(&self) -> &Path {
        &self.loaded.config.runtime_dir
    }

    pub fn work_dir(&self) -> &Path {
        &self.loaded.config.work_dir
    }

    pub fn cgroups_root(&self) -> &str {
        &self.loaded.config.cgroups_root
    }

    /// The cgroups driver.
    pub fn cgroups_driver(&self) -> phobos_core::CgroupsDriver {
        match self.loaded.config.cgroups_driver {
            phobos_config::CgroupsDriver::Cgroupfs => phobos_core::CgroupsDriver::Cgroupfs,
            phobos_config::CgroupsDriver::Systemd => phobos_core::CgroupsDriver::Systemd,
        }
    }

    /// The cgroups root containers are placed under, relative to each
    /// hierarchy's mount: `cgroups_root` itself, or with the systemd
    /// driver the cgroup of the slice it names (`phobos` and
    /// `phobos.slice` give `phobos.slice`). A root that names no slice is
    /// the configuration's error.
    pub fn container_cgroups_root(&self) -> Result<String, ConfigError> {
        self.cgroups_root_for(self.cgroups_driver())
    }

    /// [`Self::container_cgroups_root`] as `driver` would place containers.
    pub fn cgroups_root_for(
        &self,
        driver: phobos_core::CgroupsDriver,
    ) -> Result<String, ConfigError> {
        let root = self.cgroups_root();
        match driver {
            phobos_core::CgroupsDriver::Cgroupfs => Ok(root.to_owned()),
            phobos_core::CgroupsDriver::Systemd => phobos_mesos::launcher::scope::slice_path(root)
                .map(|p| p.to_string_lossy().into_owned())
                .map_err(|reason| self.loaded.invalid("cgroups_root", root, reason)),
        }
    }

    pub fn euid(&self) -> u32 {
        self.euid
    }

    pub fn is_root(&self) -> bool {
        self.euid == 0
    }

    pub(crate) fn init_exe(&self) -> Option<&Path> {
        self.init_exe.as_deref()
    }

    pub(crate) fn stop_at(&self) -> Option<&str> {
        self.stop_at.as_deref()
    }

    /// Whether `key` was set by the file or a flag (not a default).
    pub fn configured(&self, key: &str) -> bool {
        !matches!(self.loaded.source(key), Some(Source::Default) | None)
    }

    /// The launcher for a launch that asks for `requested` (or nothing).
    /// Only an explicit request is strict: a system-wide file saying
    /// "linux" must not stop unprivileged users, who get the posix
    /// launcher (with a warning), as by default.
    pub fn launcher(&self, requested: Option<LauncherKind>) -> Result<LauncherChoice, PolicyError> {
        let root = self.is_root();
        let configured = self
            .configured("launcher")
            .then_some(self.config().launcher);
        let kind = match (requested, configured) {
            (Some(LauncherKind::Linux), _) if !root => {
                return Err(PolicyError::LinuxNeedsRoot { uid: self.euid });
            }
            (Some(kind), _) => kind,
            (None, Some(phobos_config::Launcher::Posix)) => LauncherKind::Posix,
            (None, _) if root => LauncherKind::Linux,
            (None, _) => {
                return Ok(LauncherChoice {
                    kind: LauncherKind::Posix,
                    warning: Some(
                        "not running as root; using the posix launcher (no namespaces, no cgroups)"
                            .to_owned(),
                    ),
                });
            }
        };
        Ok(LauncherChoice {
            kind,
            warning: None,
        })
    }

    /// The isolator flags: each switch the launch turned on, else the
    /// configuration's value.
    pub fn isolator_flags(&self, overrides: &FlagOverrides) -> IsolatorFlags {
        let c = self.config();
        IsolatorFlags {
            cgroups_enable_cfs: overrides.cgroups_enable_cfs || c.cgroups_enable_cfs,
            cgroups_limit_swap: overrides.cgroups_limit_swap || c.cgroups_limit_swap,
            container_disk_watch_interval_secs: overrides
                .container_disk_watch_interval
                .unwrap_or(c.container_disk_watch_interval)
                .as_secs_f64(),
            enforce_container_disk_quota: overrides.enforce_container_disk_quota
                || c.enforce_container_disk_quota,
            network_cni_config_dir: c.network_cni_config_dir.clone(),
            network_cni_plugins_dir: Some(c.network_cni_plugins_dir.clone()),
            default_network_subnet: Some(c.default_network_subnet.clone()),
            default_network_bridge: Some(c.default_network_bridge.clone()),
            cgroups_net_cls_primary_handle: c.cgroups_net_cls_primary_handle,
            cgroups_net_cls_secondary_handles: Some(c.cgroups_net_cls_secondary_handles),
            perf_events: c.perf_events.clone(),
            perf_duration_secs: Some(c.perf_duration.as_secs_f64()),
        }
    }

    /// The Docker containerizer's settings (the `docker_*` keys).
    pub fn docker_settings(&self) -> DockerSettings {
        let c = self.config();
        DockerSettings {
            socket: c.docker_socket.clone(),
            stop_timeout: c.docker_stop_timeout,
            kill_orphans: c.docker_kill_orphans,
            sandbox_directory: c.sandbox_directory.display().to_string(),
            cgroups_enable_cfs: c.cgroups_enable_cfs,
            remove_delay: c.docker_remove_delay,
            work_dir: self.work_dir().to_owned(),
        }
    }

    /// The image store: `docker_store_dir`, else `<work_dir>/store`.
    pub fn image_store_dir(&self) -> PathBuf {
        self.config()
            .docker_store_dir
            .clone()
            .unwrap_or_else(|| self.work_dir().join("store"))
    }

    /// Whether `containerizers` enables the Docker containerizer.
    pub fn docker_enabled(&self) -> bool {
        self.config()
            .containerizers
            .contains(&phobos_config::Containerizer::Docker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(file: &str, euid: u32) -> Settings {
        let env = Environment {
            uid: euid,
            home: None,
            xdg_runtime_dir: None,
            phobos_config: None,
            system_config: PathBuf::from("/nonexistent"),
        };
        let loaded =
            phobos_config::parse_str(file, Path::new("/etc/phobos/phobos.toml"), &env).unwrap();
        Settings::from_loaded(loaded, euid)
    }

    #[test]
    fn launcher_policy() {
        let root = settings("", 0);
        assert_eq!(root.launcher(None).unwrap().kind, LauncherKind::Linux);
        let user = settings("", 1000);
        let choice = user.launcher(None).unwrap();
        assert_eq!(choice.kind, LauncherKind::Posix);
        assert!(choice.warning.is_some());
        assert_eq!(
            user.launcher(Some(LauncherKind::Linux)),
            Err(PolicyError::LinuxNeedsRoot { uid: 1000 })
        );
        // A file's "linux" does not stop unprivileged users.
        let file_linux = settings("launcher = \"linux\"\n", 1000);
        assert_eq!(file_linux.launcher(None).unwrap().kind, LauncherKind::Posix);
        let file_posix = settings("launcher = \"posix\"\n", 0);
        let choice = file_posix.launcher(None).unwrap();
        assert_eq!(choice.kind, LauncherKind::Posix);
        assert_eq!(choice.warning, None);
        assert_eq!(
            file_posix.launcher(Some(LauncherKind::Linux)).unwrap().kind,
            LauncherKind::Linux
        );
    }

    #[test]
    fn switches_only_turn_settings_on() {
        let s = settings("cgroups_enable_cfs = true\n", 0);
        let flags = s.isolator_flags(&FlagOverrides {
            cgroups_limit_swap: true,
            container_disk_watch_interval: Some(Duration::from_secs(2)),
            ..FlagOverrides::default()
        });
        assert!(flags.cgroups_enable_cfs);
        assert!(flags.cgroups_limit_swap);
        assert!(!flags.enforce_container_disk_quota);
        assert_eq!(flags.container_disk_watch_interval_secs, 2.0);
        assert_eq!(
            settings("", 0)
                .isolator_flags(&FlagOverrides::default())
                .container_disk_watch_interval_secs,
            15.0
        );
    }
}
