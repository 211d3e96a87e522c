//! The planner's part for hardening: a face's [`SecurityIntent`] (Docker's
//! `--cap-add`, `--cap-drop`, `--ulimit`, `--security-opt`,
//! `--no-new-privileges`; Mesos's `LinuxInfo` and `RLimitInfo`) and the
//! operator's flags (`effective_capabilities`, `bounding_capabilities`,
//! `seccomp_config_dir`, `seccomp_profile_name`) become the container's
//! [`Hardening`], once for every face. Nothing is touched: a bad name,
//! limit or profile is refused before anything exists.

use std::path::{Path, PathBuf};

use phobos_core::Hardening;
use phobos_mesos::security::capabilities::{self, CapabilityError, CapabilityRequest};
use phobos_mesos::security::rlimits::{self, RLimitError};
use phobos_mesos::security::seccomp::{self, SeccompError, SecurityOpt};

use crate::plan::PlanError;
use crate::settings::Settings;

/// Hardening as a face received it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecurityIntent {
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// The launch's own effective set (Mesos `LinuxInfo.effective_capabilities`).
    pub effective_capabilities: Option<Vec<String>>,
    /// The launch's own bounding set (Mesos `LinuxInfo.bounding_capabilities`;
    /// within `bounding_capabilities` of the configuration).
    pub bounding_capabilities: Option<Vec<String>>,
    /// Mesos `LinuxInfo.share_pid_namespace`: no PID namespace of its own.
    pub share_pid_namespace: bool,
    /// Mesos `LinuxInfo.ipc_mode`: `Some(true)` SHARE_PARENT (the host's
    /// IPC namespace), `Some(false)` PRIVATE (its own), `None` the isolation's.
    pub share_ipc_namespace: Option<bool>,
    pub no_new_privileges: bool,
    /// Docker's `--ulimit TYPE=SOFT[:HARD]`.
    pub ulimits: Vec<String>,
    /// Docker's `--security-opt` values.
    pub security_opts: Vec<String>,
    /// Docker's `--device HOST[:CONTAINER][:rwm]`.
    pub devices: Vec<String>,
    /// The private `/dev/shm`'s size in bytes (Docker's `--shm-size`,
    /// Mesos `LinuxInfo.shm_size`); needs an IPC namespace of its own.
    pub shm_size: Option<u64>,
}

impl SecurityIntent {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Why the hardening asked for cannot be.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error(transparent)]
    Capability(#[from] CapabilityError),
    #[error(transparent)]
    RLimit(#[from] RLimitError),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error(transparent)]
    Device(#[from] phobos_mesos::security::devices::DeviceError),
    #[error("{what} needs the {isolator} isolator, which is not in the isolation")]
    NeedsIsolator {
        what: String,
        isolator: &'static str,
    },
    #[error("seccomp_profile_name {0:?} needs seccomp_config_dir (or an absolute path)")]
    NoConfigDir(String),
    #[error(
        "a /dev/shm size ({0} bytes) needs an IPC namespace of the container's own (the namespaces/ipc isolator, Mesos ipc_mode PRIVATE; not --share-ipc)"
    )]
    ShmNeedsOwnIpc(u64),
    #[error("a /dev/shm size must be at least one page (4096 bytes), found {0}")]
    ShmTooSmall(u64),
}

fn needs(what: impl Into<String>, isolator: &'static str) -> SecurityError {
    SecurityError::NeedsIsolator {
        what: what.into(),
        isolator,
    }
}

/// A profile path as named: relative names are under `seccomp_config_dir`.
fn profile_path(settings: &Settings, name: &str) -> Result<PathBuf, SecurityError> {
    let path = Path::new(name);
    if path.is_absolute() {
        return Ok(path.to_owned());
    }
    match &settings.config().seccomp_config_dir {
        Some(dir) => Ok(dir.join(path)),
        None => Ok(path.to_owned()),
    }
}

/// The warning when device access cannot be restricted.
pub const NO_DEVICES_CONTROLLER: &str = "cgroups/devices: this host has neither a cgroup v1 devices \
controller nor a cgroup2 filesystem for a device eBPF program; device access is not restricted";

/// Decides a Mesos container's hardening for its resolved `isolation`;
/// `v1_devices` says whether the host has a v1 devices controller.
pub fn hardening(
    settings: &Settings,
    intent: &SecurityIntent,
    isolation: &[String],
    v1_devices: bool,
    warnings: &mut Vec<String>,
) -> Result<Hardening, PlanError> {
    let on = |name: &str| isolation.iter().any(|n| n == name);
    let config = settings.config();
    // Operator flags first: a bad name there is the file's error.
    for (key, list) in [
        ("effective_capabilities", &config.effective_capabilities),
        ("bounding_capabilities", &config.bounding_capabilities),
    ] {
        if let Some(list) = list {
            capabilities::parse_list(list)
                .map_err(|e| settings.loaded().invalid(key, &list.join(","), e))?;
        }
    }
    let mut seccomp_choice = None;
    let mut nnp = intent.no_new_privileges || on("linux/nnp");
    for opt in &intent.security_opts {
        match seccomp::parse_security_opt(opt).map_err(SecurityError::from)? {
            SecurityOpt::NoNewPrivileges => nnp = true,
            choice => seccomp_choice = Some(choice),
        }
    }
    let capabilities = if on("linux/capabilities") {
        Some(
            capabilities::resolve(&CapabilityRequest {
                effective_flag: config.effective_capabilities.clone(),
                bounding_flag: config.bounding_capabilities.clone(),
                effective: intent.effective_capabilities.clone(),
                bounding: intent.bounding_capabilities.clone(),
                add: intent.cap_add.clone(),
                drop: intent.cap_drop.clone(),
            })
            .map_err(SecurityError::from)?,
        )
    } else {
        if let Some(first) = intent
            .cap_add
            .first()
            .or(intent.cap_drop.first())
            .or(intent.effective_capabilities.iter().flatten().next())
            .or(intent.bounding_capabilities.iter().flatten().next())
        {
            return Err(needs(format!("capability {first:?}"), "linux/capabilities").into());
        }
        None
    };
    let mut rlimits = Vec::new();
    for spec in &intent.ulimits {
        rlimits::push(
            &mut rlimits,
            rlimits::parse_ulimit(spec).map_err(SecurityError::from)?,
        );
    }
    if !rlimits.is_empty() && !on("posix/rlimits") {
        return Err(needs(format!("ulimit {:?}", intent.ulimits[0]), "posix/rlimits").into());
    }
    let bounding = capabilities.map_or(capabilities::ALL, |c| c.bounding);
    let seccomp = if on("linux/seccomp") {
        let file = match &seccomp_choice {
            Some(SecurityOpt::SeccompUnconfined) => None,
            Some(SecurityOpt::SeccompProfile(name)) => Some(profile_path(settings, name)?),
            _ => match &config.seccomp_profile_name {
                Some(name)
                    if config.seccomp_config_dir.is_none() && !Path::new(name).is_absolute() =>
                {
                    return Err(SecurityError::NoConfigDir(name.clone()).into());
                }
                Some(name) => Some(profile_path(settings, name)?),
                None => Some(PathBuf::new()),
            },
        };
        match file {
            None => None,
            Some(p) if p.as_os_str().is_empty() => Some(seccomp::default_profile(bounding)),
            Some(p) => Some(seccomp::load_profile(&p, bounding).map_err(SecurityError::from)?),
        }
    } else {
        if let Some(SecurityOpt::SeccompProfile(name)) = &seccomp_choice {
            return Err(needs(format!("seccomp profile {name:?}"), "linux/seccomp").into());
        }
        None
    };
    let mut devices = Vec::new();
    let mut device_nodes = Vec::new();
    let configured = &config.allowed_devices;
    for spec in configured {
        let (rule, node) = phobos_mesos::security::devices::parse_device(spec)
            .map_err(|e| settings.loaded().invalid("allowed_devices", spec, e))?;
        devices.push(rule);
        device_nodes.push(node);
    }
    for spec in &intent.devices {
        let (rule, node) =
            phobos_mesos::security::devices::parse_device(spec).map_err(SecurityError::from)?;
        devices.push(rule);
        device_nodes.push(node);
    }
    if !v1_devices && (on("cgroups/devices") || !intent.devices.is_empty()) {
        warnings.push(NO_DEVICES_CONTROLLER.to_owned());
    } else if !intent.devices.is_empty() && !on("cgroups/devices") {
        return Err(needs(format!("device {:?}", intent.devices[0]), "cgroups/devices").into());
    }
    Ok(Hardening {
        devices,
        device_nodes,
        capabilities,
        no_new_privileges: nnp,
        rlimits,
        seccomp,
        // Set by the planner, which knows whether the IPC namespace is
        // the container's own.
        shm_size: None,
    })
}

/// The same intent as `docker run` parameters (the engine applies them).
pub fn docker_parameters(intent: &SecurityIntent) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut push = |k: &str, v: &str| out.push((k.to_owned(), v.to_owned()));
    intent.cap_add.iter().for_each(|c| push("cap-add", c));
    intent.cap_drop.iter().for_each(|c| push("cap-drop", c));
    intent.ulimits.iter().for_each(|u| push("ulimit", u));
    intent
        .security_opts
        .iter()
        .for_each(|o| push("security-opt", o));
    intent.devices.iter().for_each(|d| push("device", d));
    if intent.no_new_privileges {
        push("security-opt", "no-new-privileges");
    }
    if let Some(bytes) = intent.shm_size {
        push("shm-size", &bytes.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_gets_the_shm_size_in_bytes() {
        let intent = SecurityIntent {
            shm_size: Some(8 << 20),
            no_new_privileges: true,
            ..SecurityIntent::default()
        };
        let params = docker_parameters(&intent);
        assert_eq!(
            params,
            [
                ("security-opt".to_owned(), "no-new-privileges".to_owned()),
                ("shm-size".to_owned(), "8388608".to_owned())
            ]
        );
        // As the Docker face parses it.
        assert_eq!(phobos_docker::params::parse_size("8388608"), Some(8 << 20));
    }
}
