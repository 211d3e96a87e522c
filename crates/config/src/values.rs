//! Reading and setting one configuration key: `Config::get` (the value as
//! the config file spells it) and `Config::set` (a TOML value checked
//! against the key's type and rules), with the value parsers they share.

use super::*;

impl Config {
    /// The value of `key` in flag syntax (e.g. `15secs`, `cgroups/cpu,cgroups/mem`),
    /// or `None` for an unknown key. An unset optional value is the empty string.
    pub fn get(&self, key: &str) -> Option<String> {
        let path = |p: &Path| p.display().to_string();
        Some(match key {
            "runtime_dir" => path(&self.runtime_dir),
            "work_dir" => path(&self.work_dir),
            "isolation" => self.isolation.join(","),
            "launcher" => match self.launcher {
                Launcher::Linux => "linux",
                Launcher::Posix => "posix",
            }
            .to_owned(),
            "cgroups_root" => self.cgroups_root.clone(),
            "cgroups_driver" => match self.cgroups_driver {
                CgroupsDriver::Cgroupfs => "cgroupfs",
                CgroupsDriver::Systemd => "systemd",
            }
            .to_owned(),
            "cgroups_enable_cfs" => self.cgroups_enable_cfs.to_string(),
            "cgroups_limit_swap" => self.cgroups_limit_swap.to_string(),
            "cgroups_net_cls_primary_handle" => self
                .cgroups_net_cls_primary_handle
                .map(|h| format!("{h:#06x}"))
                .unwrap_or_default(),
            "cgroups_net_cls_secondary_handles" => {
                let (min, max) = self.cgroups_net_cls_secondary_handles;
                format!("{min:#06x},{max:#06x}")
            }
            "sandbox_directory" => path(&self.sandbox_directory),
            "default_container_image" => self.default_container_image.clone().unwrap_or_default(),
            "containerizers" => self
                .containerizers
                .iter()
                .map(|c| match c {
                    Containerizer::Mesos => "mesos",
                    Containerizer::Docker => "docker",
                })
                .collect::<Vec<_>>()
                .join(","),
            "docker" => self.docker.clone(),
            "docker_socket" => path(&self.docker_socket),
            "docker_stop_timeout" => format_duration(self.docker_stop_timeout),
            "docker_kill_orphans" => self.docker_kill_orphans.to_string(),
            "docker_remove_delay" => format_duration(self.docker_remove_delay),
            "container_disk_watch_interval" => format_duration(self.container_disk_watch_interval),
            "perf_events" => self.perf_events.join(","),
            "perf_duration" => format_duration(self.perf_duration),
            "perf_interval" => format_duration(self.perf_interval),
            "fetcher_stall_timeout" => format_duration(self.fetcher_stall_timeout),
            "fetcher_cache_dir" => self
                .fetcher_cache_dir
                .as_deref()
                .map(path)
                .unwrap_or_default(),
            "fetcher_cache_size" => format_bytes(self.fetcher_cache_size),
            "enforce_container_disk_quota" => self.enforce_container_disk_quota.to_string(),
            "network_cni_config_dir" => self
                .network_cni_config_dir
                .as_deref()
                .map(path)
                .unwrap_or_default(),
            "network_cni_plugins_dir" => self.network_cni_plugins_dir.clone(),
            "default_network_subnet" => self.default_network_subnet.clone(),
            "default_network_bridge" => self.default_network_bridge.clone(),
            "ecp_termination" => match self.ecp_termination {
                EcpTermination::V0_26 => "0.26",
                EcpTermination::V0_19 => "0.19",
            }
            .to_owned(),
            "image_providers" => self.image_providers.join(","),
            "image_provisioner_backend" => self.image_provisioner_backend.clone(),
            "docker_registry" => self.docker_registry.clone(),
            "docker_store_dir" => self
                .docker_store_dir
                .as_deref()
                .map(path)
                .unwrap_or_default(),
            "docker_config" => self.docker_config.clone().unwrap_or_default(),
            "docker_insecure_registries" => self.docker_insecure_registries.join(","),
            "effective_capabilities" => capability_list(self.effective_capabilities.as_deref()),
            "bounding_capabilities" => capability_list(self.bounding_capabilities.as_deref()),
            "seccomp_config_dir" => self
                .seccomp_config_dir
                .as_deref()
                .map(path)
                .unwrap_or_default(),
            "seccomp_profile_name" => self.seccomp_profile_name.clone().unwrap_or_default(),
            "allowed_devices" => self.allowed_devices.join(","),
            "default_container_shm_size" => self
                .default_container_shm_size
                .map(format_bytes)
                .unwrap_or_default(),
            "container_logger" => match self.container_logger {
                ContainerLogger::Logrotate => "logrotate",
                ContainerLogger::Sandbox => "sandbox",
            }
            .to_owned(),
            "logrotate.max_stdout_size" => format_bytes(self.logrotate.max_stdout_size),
            "logrotate.max_stderr_size" => format_bytes(self.logrotate.max_stderr_size),
            "logrotate.max_files" => self.logrotate.max_files.to_string(),
            "log.level" => match self.log.level {
                LogLevel::Off => "off",
                LogLevel::Error => "error",
                LogLevel::Warn => "warn",
                LogLevel::Info => "info",
                LogLevel::Debug => "debug",
                LogLevel::Trace => "trace",
            }
            .to_owned(),
            "log.format" => match self.log.format {
                LogFormat::Human => "human",
                LogFormat::Json => "json",
            }
            .to_owned(),
            "log.destination" => match self.log.destination {
                LogDestination::Stderr => "stderr",
                LogDestination::Syslog => "syslog",
                LogDestination::Journald => "journald",
            }
            .to_owned(),
            _ => return None,
        })
    }

    /// Validates `value` and stores it under `key`; the error is the reason.
    pub(super) fn set(&mut self, key: &str, value: &toml::Value) -> Result<(), String> {
        use toml::Value as V;
        match key {
            "runtime_dir" => self.runtime_dir = absolute_path(value)?,
            "work_dir" => self.work_dir = absolute_path(value)?,
            "isolation" => self.isolation = name_list(value)?,
            "launcher" => {
                self.launcher = one_of(
                    value,
                    &[("linux", Launcher::Linux), ("posix", Launcher::Posix)],
                )?
            }
            "cgroups_root" => {
                let root = non_empty_string(value)?;
                let bad = root.starts_with('/')
                    || root
                        .split('/')
                        .any(|part| part.is_empty() || part == "." || part == "..");
                if bad {
                    return Err("expected a relative cgroup path such as \"phobos\"".to_owned());
                }
                self.cgroups_root = root;
            }
            "cgroups_driver" => {
                self.cgroups_driver = one_of(
                    value,
                    &[
                        ("cgroupfs", CgroupsDriver::Cgroupfs),
                        ("systemd", CgroupsDriver::Systemd),
                    ],
                )?
            }
            // Accepted by the parser only to explain why it is refused.
            "cgroups_hierarchy" => return Err(CGROUPS_HIERARCHY_UNUSED.to_owned()),
            "cgroups_enable_cfs" => self.cgroups_enable_cfs = boolean(value)?,
            "cgroups_limit_swap" => self.cgroups_limit_swap = boolean(value)?,
            "cgroups_net_cls_primary_handle" => {
                self.cgroups_net_cls_primary_handle = Some(net_cls_handle(string(value)?)?);
            }
            "cgroups_net_cls_secondary_handles" => {
                let text = string(value)?;
                let (min, max) = text
                    .split_once(',')
                    .ok_or("expected two handles \"MIN,MAX\" such as \"0x1,0xffff\"")?;
                let (min, max) = (net_cls_handle(min)?, net_cls_handle(max)?);
                if min > max {
                    return Err(format!("the range {min:#x},{max:#x} is empty"));
                }
                self.cgroups_net_cls_secondary_handles = (min, max);
            }
            "perf_events" => {
                let names = name_list(value)?;
                for name in &names {
                    phobos_core::perf::event(name)?;
                }
                self.perf_events = names;
            }
            "perf_duration" | "perf_interval" => {
                let length = duration(value)?;
                if length.is_zero() {
                    return Err("must be greater than zero".to_owned());
                }
                if key == "perf_duration" {
                    self.perf_duration = length;
                } else {
                    self.perf_interval = length;
                }
            }
            "sandbox_directory" => self.sandbox_directory = absolute_path(value)?,
            "default_container_image" => {
                self.default_container_image = Some(non_empty_string(value)?)
            }
            "containerizers" => {
                let mut kinds = Vec::new();
                for name in name_list(value)? {
                    let kind = match name.as_str() {
                        "mesos" => Containerizer::Mesos,
                        "docker" => Containerizer::Docker,
                        other => {
                            return Err(format!(
                                "unknown containerizer {other:?}: expected \"mesos\" or \"docker\""
                            ));
                        }
                    };
                    if kinds.contains(&kind) {
                        return Err(format!("containerizer {name:?} is listed twice"));
                    }
                    kinds.push(kind);
                }
                if kinds.is_empty() {
                    return Err("expected at least one containerizer".to_owned());
                }
                self.containerizers = kinds;
            }
            "docker" => self.docker = non_empty_string(value)?,
            "docker_socket" => self.docker_socket = absolute_path(value)?,
            "docker_stop_timeout" => self.docker_stop_timeout = duration(value)?,
            "docker_kill_orphans" => self.docker_kill_orphans = boolean(value)?,
            "docker_remove_delay" => self.docker_remove_delay = duration(value)?,
            "container_disk_watch_interval" => {
                let interval = duration(value)?;
                if interval.is_zero() {
                    return Err("the interval must be greater than zero".to_owned());
                }
                self.container_disk_watch_interval = interval;
            }
            "fetcher_stall_timeout" => {
                let timeout = duration(value)?;
                if timeout.is_zero() {
                    return Err("the timeout must be greater than zero".to_owned());
                }
                self.fetcher_stall_timeout = timeout;
            }
            "fetcher_cache_dir" => self.fetcher_cache_dir = Some(absolute_path(value)?),
            "fetcher_cache_size" => self.fetcher_cache_size = bytes(value)?,
            "enforce_container_disk_quota" => self.enforce_container_disk_quota = boolean(value)?,
            "network_cni_config_dir" => self.network_cni_config_dir = Some(absolute_path(value)?),
            "network_cni_plugins_dir" => {
                let dirs = non_empty_string(value)?;
                if dirs.split(':').any(|d| !d.starts_with('/')) {
                    return Err(
                        "expected absolute directories separated by ':' such as \"/usr/lib/cni\""
                            .to_owned(),
                    );
                }
                self.network_cni_plugins_dir = dirs;
            }
            "default_network_subnet" => {
                let subnet = non_empty_string(value)?;
                subnet.parse::<phobos_net::Subnet>().map_err(|e| match e {
                    phobos_net::NetError::InvalidSubnet { reason, .. } => reason.to_owned(),
                    other => other.to_string(),
                })?;
                self.default_network_subnet = subnet;
            }
            "default_network_bridge" => {
                let bridge = string(value)?;
                phobos_net::validate_bridge_name(bridge)?;
                self.default_network_bridge = bridge.to_owned();
            }
            "ecp_termination" => {
                if let V::Float(_) = value {
                    return Err("expected the string \"0.26\" or \"0.19\" (quote it)".to_owned());
                }
                self.ecp_termination = one_of(
                    value,
                    &[
                        ("0.26", EcpTermination::V0_26),
                        ("0.19", EcpTermination::V0_19),
                    ],
                )?
            }
            "image_providers" => {
                let mut providers = Vec::new();
                for name in name_list(value)? {
                    match name.to_ascii_lowercase().as_str() {
                        "docker" => providers.push("docker".to_owned()),
                        "appc" => return Err("appc images are not supported".to_owned()),
                        other => {
                            return Err(format!(
                                "unknown image provider {other:?}: expected \"docker\""
                            ));
                        }
                    }
                }
                self.image_providers = providers;
            }
            "image_provisioner_backend" => {
                self.image_provisioner_backend =
                    one_of(value, &[("overlay", "overlay"), ("copy", "copy")])?.to_owned()
            }
            "docker_registry" => {
                let url = non_empty_string(value)?;
                let rest = url
                    .strip_prefix("https://")
                    .or_else(|| url.strip_prefix("http://"))
                    .ok_or("expected an http:// or https:// URL")?;
                if rest.trim_end_matches('/').is_empty() || rest.trim_end_matches('/').contains('/')
                {
                    return Err(
                        "expected a registry URL such as https://registry-1.docker.io".to_owned(),
                    );
                }
                self.docker_registry = url;
            }
            "docker_store_dir" => self.docker_store_dir = Some(absolute_path(value)?),
            "docker_config" => self.docker_config = Some(non_empty_string(value)?),
            "docker_insecure_registries" => self.docker_insecure_registries = name_list(value)?,
            "effective_capabilities" => self.effective_capabilities = Some(capabilities(value)?),
            "bounding_capabilities" => self.bounding_capabilities = Some(capabilities(value)?),
            "seccomp_config_dir" => self.seccomp_config_dir = Some(absolute_path(value)?),
            "seccomp_profile_name" => {
                let name = non_empty_string(value)?;
                if Path::new(&name).is_absolute() && self.seccomp_config_dir.is_some() {
                    return Err("expected a name relative to seccomp_config_dir".to_owned());
                }
                self.seccomp_profile_name = Some(name);
            }
            "allowed_devices" => self.allowed_devices = name_list(value)?,
            "default_container_shm_size" => {
                let n = bytes(value)?;
                if n < MIN_SHM_SIZE {
                    return Err(format!(
                        "{} is smaller than one page (4KB), the least a /dev/shm may hold",
                        format_bytes(n)
                    ));
                }
                self.default_container_shm_size = Some(n);
            }
            "container_logger" => {
                self.container_logger = one_of(
                    value,
                    &[
                        ("logrotate", ContainerLogger::Logrotate),
                        ("sandbox", ContainerLogger::Sandbox),
                    ],
                )?
            }
            "logrotate.max_stdout_size" => self.logrotate.max_stdout_size = log_size(value)?,
            "logrotate.max_stderr_size" => self.logrotate.max_stderr_size = log_size(value)?,
            "logrotate.max_files" => self.logrotate.max_files = max_files(value)?,
            "log.level" => {
                self.log.level = one_of(
                    value,
                    &[
                        ("off", LogLevel::Off),
                        ("error", LogLevel::Error),
                        ("warn", LogLevel::Warn),
                        ("info", LogLevel::Info),
                        ("debug", LogLevel::Debug),
                        ("trace", LogLevel::Trace),
                    ],
                )?
            }
            "log.format" => {
                self.log.format = one_of(
                    value,
                    &[("human", LogFormat::Human), ("json", LogFormat::Json)],
                )?
            }
            "log.destination" => {
                self.log.destination = one_of(
                    value,
                    &[
                        ("stderr", LogDestination::Stderr),
                        ("syslog", LogDestination::Syslog),
                        ("journald", LogDestination::Journald),
                    ],
                )?
            }
            _ => return Err("unknown key".to_owned()),
        }
        Ok(())
    }
}

pub(super) fn type_error(expected: &str, value: &toml::Value) -> String {
    format!("expected {expected}, found {}", value.type_str())
}

pub(super) fn string(value: &toml::Value) -> Result<&str, String> {
    value.as_str().ok_or_else(|| type_error("a string", value))
}

pub(super) fn non_empty_string(value: &toml::Value) -> Result<String, String> {
    match string(value)? {
        "" => Err("expected a non-empty string".to_owned()),
        s => Ok(s.to_owned()),
    }
}

pub(super) fn absolute_path(value: &toml::Value) -> Result<PathBuf, String> {
    let path = PathBuf::from(non_empty_string(value)?);
    if path.is_absolute() {
        Ok(path)
    } else {
        Err("expected an absolute path".to_owned())
    }
}

pub(super) fn boolean(value: &toml::Value) -> Result<bool, String> {
    value
        .as_bool()
        .ok_or_else(|| type_error("true or false", value))
}

/// A size: `"10MB"` (Mesos's spelling) or an integer of bytes.
pub(super) fn bytes(value: &toml::Value) -> Result<u64, String> {
    match value {
        toml::Value::Integer(n) => u64::try_from(*n)
            .ok()
            .filter(|n| *n <= size::MAX_BYTES)
            .ok_or_else(|| format!("{n} is not a size between 0 and 1PB in bytes")),
        other => parse_bytes(string(other)?),
    }
}

/// A net_cls handle as Mesos writes it: hexadecimal (`0x12`), 1 to 0xffff.
fn net_cls_handle(text: &str) -> Result<u16, String> {
    let t = text.trim();
    let digits = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .ok_or_else(|| format!("expected a hexadecimal handle such as \"0x12\", found {t:?}"))?;
    match u16::from_str_radix(digits, 16) {
        Ok(0) | Err(_) => Err(format!("expected a handle from 0x1 to 0xffff, found {t:?}")),
        Ok(h) => Ok(h),
    }
}

/// The smallest /dev/shm: one page (as `--shm-size` requires).
const MIN_SHM_SIZE: u64 = 4096;

/// The smallest log file: one page, as Mesos's logrotate module requires.
const MIN_LOG_SIZE: u64 = 4096;

/// A log file size: at least one page.
fn log_size(value: &toml::Value) -> Result<u64, String> {
    let n = bytes(value)?;
    if n < MIN_LOG_SIZE {
        return Err(format!(
            "{} is smaller than one page (4KB), the least a log file may hold",
            format_bytes(n)
        ));
    }
    Ok(n)
}

/// The most files kept per stream; more is a typo.
const MAX_LOG_FILES: i64 = 10_000;

/// `max_files`: an integer from 1 (only the live file) to 10000.
fn max_files(value: &toml::Value) -> Result<u32, String> {
    let n = match value {
        toml::Value::Integer(n) => *n,
        toml::Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("expected a number of files such as 10, found {s:?}"))?,
        other => return Err(type_error("an integer", other)),
    };
    match n {
        n if (1..=MAX_LOG_FILES).contains(&n) => Ok(n as u32),
        0 => {
            Err("0 files would keep no log at all; the least is 1 (the live file only)".to_owned())
        }
        n => Err(format!("{n} is not between 1 and {MAX_LOG_FILES}")),
    }
}

pub(super) fn duration(value: &toml::Value) -> Result<Duration, String> {
    parse_duration(string(value)?)
}

pub(super) fn one_of<T: Copy>(value: &toml::Value, choices: &[(&str, T)]) -> Result<T, String> {
    let text = string(value)?;
    choices
        .iter()
        .find(|(name, _)| *name == text)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<String> = choices.iter().map(|(n, _)| format!("{n:?}")).collect();
            format!("expected one of {}", names.join(", "))
        })
}

/// A capability list: names (checked by the planner), or `"none"` or an
/// empty array for no capabilities at all.
pub(super) fn capabilities(value: &toml::Value) -> Result<Vec<String>, String> {
    if value
        .as_str()
        .is_some_and(|s| s.trim().eq_ignore_ascii_case("none"))
    {
        return Ok(Vec::new());
    }
    if value.as_str().is_some_and(|s| s.trim().is_empty()) {
        return Err("expected capability names, or \"none\" for no capabilities".to_owned());
    }
    name_list(value)
}

/// A capability list in flag syntax (`none` for the empty list).
pub(super) fn capability_list(list: Option<&[String]>) -> String {
    match list {
        None => String::new(),
        Some([]) => "none".to_owned(),
        Some(names) => names.join(","),
    }
}

/// A comma-separated string (as Mesos flags take it) or an array of strings.
/// Entries are trimmed; empty entries are refused; an empty string or array
/// is an empty list.
pub(super) fn name_list(value: &toml::Value) -> Result<Vec<String>, String> {
    let names: Vec<String> = match value {
        toml::Value::String(s) if s.trim().is_empty() => return Ok(Vec::new()),
        toml::Value::String(s) => s.split(',').map(|n| n.trim().to_owned()).collect(),
        toml::Value::Array(items) => items
            .iter()
            .map(|item| string(item).map(|s| s.trim().to_owned()))
            .collect::<Result<_, _>>()
            .map_err(|_| "expected an array of strings".to_owned())?,
        other => {
            return Err(type_error(
                "a comma-separated string or an array of strings",
                other,
            ));
        }
    };
    if names.iter().any(String::is_empty) {
        return Err("empty name in list".to_owned());
    }
    Ok(names)
}
