//! A Mesos container's `LinuxInfo` and `RLimitInfo` as the planner's
//! security intent: capabilities, seccomp, pid/ipc namespace sharing and
//! rlimits (reference §5).

use phobos_proto::mesos;

use super::TranslateError;

/// `ContainerInfo.linux_info` and `rlimit_info` as the planner's intent
/// (reference §5): capabilities by name (`capability_info` is the
/// deprecated spelling of `effective_capabilities`, both is an error),
/// `seccomp` as `--security-opt`, `share_pid_namespace` and `ipc_mode`,
/// and each `RLimit` as `--ulimit TYPE=SOFT:HARD` (neither value:
/// unlimited; only one: an error, as in Mesos).
pub(super) fn security(
    container: &mesos::ContainerInfo,
    origin: &'static str,
) -> Result<phobos_runtime::security::SecurityIntent, TranslateError> {
    use mesos::capability_info::Capability;
    use mesos::linux_info::IpcMode;
    let bad = |field: &'static str, problem: String| TranslateError::BadLinuxInfo {
        origin,
        field,
        problem,
    };
    let mut out = phobos_runtime::security::SecurityIntent::default();
    if let Some(linux) = &container.linux_info {
        let names = |field: &'static str, info: &mesos::CapabilityInfo| {
            info.capabilities
                .iter()
                .map(|&v| match Capability::try_from(v) {
                    Ok(c) if c != Capability::Unknown => Ok(c.as_str_name().to_owned()),
                    _ => Err(bad(field, format!("unknown capability {v}"))),
                })
                .collect::<Result<Vec<_>, _>>()
        };
        #[allow(deprecated)]
        let legacy = linux.capability_info.as_ref();
        out.effective_capabilities = match (legacy, &linux.effective_capabilities) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "linux_info",
                    "capability_info and effective_capabilities are both set".to_owned(),
                ));
            }
            (Some(c), None) => Some(names("linux_info.capability_info", c)?),
            (None, Some(c)) => Some(names("linux_info.effective_capabilities", c)?),
            (None, None) => None,
        };
        out.bounding_capabilities = linux
            .bounding_capabilities
            .as_ref()
            .map(|c| names("linux_info.bounding_capabilities", c))
            .transpose()?;
        out.share_pid_namespace = linux.share_pid_namespace.unwrap_or(false);
        if let Some(seccomp) = &linux.seccomp {
            let profile = seccomp.profile_name.as_deref().filter(|p| !p.is_empty());
            match (profile, seccomp.unconfined.unwrap_or(false)) {
                (Some(_), true) => {
                    return Err(bad(
                        "linux_info.seccomp",
                        "profile_name and unconfined are both set".to_owned(),
                    ));
                }
                (Some(name), false) => out.security_opts.push(format!("seccomp={name}")),
                (None, true) => out.security_opts.push("seccomp=unconfined".to_owned()),
                (None, false) => {}
            }
        }
        let ipc = linux.ipc_mode.map(IpcMode::try_from);
        out.share_ipc_namespace = match ipc {
            None | Some(Ok(IpcMode::Unknown)) => None,
            Some(Ok(IpcMode::Private)) => Some(false),
            Some(Ok(IpcMode::ShareParent)) => Some(true),
            Some(Err(_)) => {
                return Err(bad(
                    "linux_info.ipc_mode",
                    format!("unknown mode {}", linux.ipc_mode.unwrap_or_default()),
                ));
            }
        };
        // In MB; Mesos rejects it with any ipc_mode but PRIVATE.
        if let Some(scalar) = &linux.shm_size {
            let mb = scalar.value;
            if !(mb.is_finite() && mb > 0.0 && mb <= (1u64 << 20) as f64) {
                return Err(bad(
                    "linux_info.shm_size",
                    format!("{mb} MB is not a size from 1 MB to 1 TB"),
                ));
            }
            if out.share_ipc_namespace != Some(false) {
                return Err(bad(
                    "linux_info.shm_size",
                    format!("{mb} MB needs ipc_mode PRIVATE"),
                ));
            }
            out.shm_size = Some((mb * f64::from(1u32 << 20)).round() as u64);
        }
    }
    if let Some(info) = &container.rlimit_info {
        use mesos::r_limit_info::r_limit::Type;
        for limit in &info.rlimits {
            let kind = match limit.r#type.map(Type::try_from) {
                Some(Ok(t)) if t != Type::Unknown => t.as_str_name(),
                other => {
                    return Err(bad(
                        "rlimit_info",
                        format!("unknown rlimit type {:?}", other.map(|_| limit.r#type)),
                    ));
                }
            };
            let value = match (limit.soft, limit.hard) {
                (Some(soft), Some(hard)) => format!("{kind}={soft}:{hard}"),
                (None, None) => format!("{kind}=unlimited"),
                _ => {
                    return Err(bad(
                        "rlimit_info",
                        format!("{kind} sets only one of soft and hard"),
                    ));
                }
            };
            out.ulimits.push(value);
        }
    }
    Ok(out)
}
