//! Mesos protobuf messages → launch intents, and our results → Mesos
//! messages: the parts the two Mesos faces (the external containerizer
//! protocol and the v1 agent API) share, so a `CommandInfo`, a resource
//! list or a `ContainerInfo`'s networks mean the same whichever face they
//! came through.

use phobos_core::perf::{PerfStatistics, PerfValue};
use phobos_core::{CommandSpec, Reason, ResourceStatistics, Resources};
use phobos_proto::mesos;
use phobos_proto::mesos::task_status::Reason as MesosReason;

use crate::network::{NetworkInfo, PortMapping, Protocol};

/// A port mapping of a `ContainerInfo.network_infos` entry that cannot be
/// used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{origin}.network_infos[{index}].port_mappings: {problem}")]
pub struct BadPortMapping {
    /// Where the `ContainerInfo` came from, e.g. `TaskInfo.container`.
    pub origin: &'static str,
    /// The index of the `NetworkInfo`.
    pub index: usize,
    /// What is wrong, with the value.
    pub problem: String,
}

/// A `ContainerInfo.linux_info` or `rlimit_info` that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{origin}.{field}: {problem}")]
pub struct BadLinuxInfo {
    /// Where the `ContainerInfo` came from, e.g. `TaskInfo.container`.
    pub origin: &'static str,
    /// The field, e.g. `linux_info.ipc_mode`.
    pub field: &'static str,
    /// What is wrong, with the value.
    pub problem: String,
}

/// `ContainerInfo.linux_info` and `rlimit_info` as the planner's intent
/// (reference §5): capabilities by name (`capability_info` is the
/// deprecated spelling of `effective_capabilities`, both is an error),
/// `seccomp` as `--security-opt`, `share_pid_namespace` and `ipc_mode`,
/// and each `RLimit` as `--ulimit TYPE=SOFT:HARD` (neither value:
/// unlimited; only one: an error, as in Mesos).
pub fn linux_security(
    container: &mesos::ContainerInfo,
    origin: &'static str,
) -> Result<crate::security::SecurityIntent, BadLinuxInfo> {
    use mesos::capability_info::Capability;
    use mesos::linux_info::IpcMode;
    let bad = |field: &'static str, problem: String| BadLinuxInfo {
        origin,
        field,
        problem,
    };
    let mut out = crate::security::SecurityIntent::default();
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

/// Mesos `CommandInfo` → our command: `shell` (default true) runs
/// `/bin/sh -c value`; otherwise `value` is the program and `arguments` the
/// whole argv. `None` when there is nothing to run.
pub fn command_spec(info: &mesos::CommandInfo) -> Option<CommandSpec> {
    let value = info.value.clone().unwrap_or_default();
    let shell = info.shell.unwrap_or(true);
    if value.trim().is_empty() {
        return None;
    }
    Some(CommandSpec {
        shell,
        value,
        arguments: if shell {
            Vec::new()
        } else {
            info.arguments.clone()
        },
    })
}

/// Mesos `CommandInfo` → our command for the Docker containerizer, as
/// Mesos's makes it (reference §4.4), which differs from [`command_spec`]:
/// `shell` (default true) runs `/bin/sh -c value` in place of the image's
/// ENTRYPOINT; otherwise `value` (when set) and then `arguments` are the
/// argv that replaces its CMD, its ENTRYPOINT kept. `None` when there is
/// nothing to run (the image's own ENTRYPOINT and CMD then).
pub fn docker_command_spec(info: &mesos::CommandInfo) -> Option<CommandSpec> {
    let value = info.value.clone().filter(|v| !v.trim().is_empty());
    match info.shell.unwrap_or(true) {
        true => value.map(|value| CommandSpec {
            shell: true,
            value,
            arguments: Vec::new(),
        }),
        false => CommandSpec::argv(
            value
                .into_iter()
                .chain(info.arguments.iter().cloned())
                .collect(),
        ),
    }
}

/// `CommandInfo.environment` as pairs, in order.
pub fn environment(info: &mesos::CommandInfo) -> Vec<(String, String)> {
    info.environment
        .iter()
        .flat_map(|e| &e.variables)
        .map(|v| (v.name.clone(), v.value.clone()))
        .collect()
}

/// A Mesos `Resource` list as our requests: scalar `cpus`, `mem` and
/// `disk` add up; other names (`ports`, custom ones) are not isolated.
pub fn resources<'a>(list: impl IntoIterator<Item = &'a mesos::Resource>) -> Resources {
    let scalars = list
        .into_iter()
        .filter_map(|r| Some((r.name.as_str(), r.scalar.as_ref()?.value)));
    Resources::from_mesos(scalars, [])
}

/// A Mesos `CommandInfo.URI` as the fetcher's (Mesos's defaults: extract).
pub fn fetch_uri(uri: &mesos::command_info::Uri) -> crate::FetchUri {
    crate::FetchUri {
        value: uri.value.clone(),
        executable: uri.executable.unwrap_or(false),
        extract: uri.extract.unwrap_or(true),
        cache: uri.cache.unwrap_or(false),
        output_file: uri.output_file.clone().filter(|o| !o.is_empty()),
    }
}

/// `ContainerInfo.network_infos` with a name (Mesos skips the others),
/// with their port mappings.
pub fn networks(
    container: &mesos::ContainerInfo,
    origin: &'static str,
) -> Result<Vec<NetworkInfo>, BadPortMapping> {
    let mut out = Vec::new();
    for (index, info) in container.network_infos.iter().enumerate() {
        let Some(name) = info.name.clone().filter(|n| !n.is_empty()) else {
            continue;
        };
        let bad = |problem: String| BadPortMapping {
            origin,
            index,
            problem,
        };
        let mut port_mappings = Vec::new();
        for p in &info.port_mappings {
            let port = |v: u32| u16::try_from(v).ok().filter(|v| *v > 0);
            let (Some(host_port), Some(container_port)) =
                (port(p.host_port), port(p.container_port))
            else {
                return Err(bad(format!(
                    "ports must be from 1 to 65535, got {}:{}",
                    p.host_port, p.container_port
                )));
            };
            let protocol = match p.protocol.as_deref().filter(|s| !s.is_empty()) {
                None => Protocol::Tcp,
                Some(text) => Protocol::parse(text)
                    .ok_or_else(|| bad(format!("unknown protocol {text:?}")))?,
            };
            port_mappings.push(PortMapping {
                host_port,
                container_port,
                protocol,
            });
        }
        out.push(NetworkInfo {
            name,
            port_mappings,
        });
    }
    Ok(out)
}

/// Our reason as Mesos's `TaskStatus.Reason`.
pub fn reason(reason: Reason) -> MesosReason {
    match reason {
        Reason::ContainerLimitation => MesosReason::ContainerLimitation,
        Reason::ContainerLimitationMemory => MesosReason::ContainerLimitationMemory,
        Reason::ContainerLimitationDisk => MesosReason::ContainerLimitationDisk,
        Reason::ContainerLaunchFailed => MesosReason::ContainerLaunchFailed,
        Reason::ExecutorTerminated => MesosReason::ExecutorTerminated,
    }
}

/// Our task state as Mesos's `TaskState`.
pub fn task_state(state: phobos_core::TaskState) -> mesos::TaskState {
    match state {
        phobos_core::TaskState::Finished => mesos::TaskState::TaskFinished,
        phobos_core::TaskState::Failed => mesos::TaskState::TaskFailed,
        phobos_core::TaskState::Killed => mesos::TaskState::TaskKilled,
        phobos_core::TaskState::Lost => mesos::TaskState::TaskLost,
    }
}

/// Our statistics as the Mesos message (every scalar field Phobos fills).
pub fn statistics(s: &ResourceStatistics) -> mesos::ResourceStatistics {
    mesos::ResourceStatistics {
        timestamp: s.timestamp,
        processes: s.processes,
        threads: s.threads,
        cpus_user_time_secs: s.cpus_user_time_secs,
        cpus_system_time_secs: s.cpus_system_time_secs,
        cpus_limit: s.cpus_limit,
        cpus_soft_limit: s.cpus_soft_limit,
        cpus_nr_periods: s.cpus_nr_periods,
        cpus_nr_throttled: s.cpus_nr_throttled,
        cpus_throttled_time_secs: s.cpus_throttled_time_secs,
        mem_total_bytes: s.mem_total_bytes,
        mem_total_memsw_bytes: s.mem_total_memsw_bytes,
        mem_limit_bytes: s.mem_limit_bytes,
        mem_soft_limit_bytes: s.mem_soft_limit_bytes,
        mem_file_bytes: s.mem_file_bytes,
        mem_anon_bytes: s.mem_anon_bytes,
        mem_cache_bytes: s.mem_cache_bytes,
        mem_rss_bytes: s.mem_rss_bytes,
        mem_mapped_file_bytes: s.mem_mapped_file_bytes,
        mem_swap_bytes: s.mem_swap_bytes,
        mem_unevictable_bytes: s.mem_unevictable_bytes,
        disk_limit_bytes: s.disk_limit_bytes,
        disk_used_bytes: s.disk_used_bytes,
        net_rx_packets: s.net_rx_packets,
        net_rx_bytes: s.net_rx_bytes,
        net_rx_errors: s.net_rx_errors,
        net_rx_dropped: s.net_rx_dropped,
        net_tx_packets: s.net_tx_packets,
        net_tx_bytes: s.net_tx_bytes,
        net_tx_errors: s.net_tx_errors,
        net_tx_dropped: s.net_tx_dropped,
        perf: s.perf.as_ref().map(perf_statistics),
        ..Default::default()
    }
}

/// Maps each `PerfStatistics` counter, by its Mesos field name, onto the
/// message's field of that name; a counter of the wrong kind (a count for
/// a clock) or an unknown name is left out rather than misreported.
macro_rules! perf_statistics {
    (counts: $($count:ident),* ; clocks: $($clock:ident),* $(,)?) => {
        /// Our perf sample as Mesos's `PerfStatistics` (field 13 of
        /// `ResourceStatistics`).
        pub fn perf_statistics(p: &PerfStatistics) -> mesos::PerfStatistics {
            let mut m = mesos::PerfStatistics {
                timestamp: p.timestamp,
                duration: p.duration,
                ..Default::default()
            };
            for (name, value) in &p.counters {
                match (name.as_str(), *value) {
                    $((stringify!($count), PerfValue::Count(n)) => m.$count = Some(n),)*
                    $((stringify!($clock), PerfValue::Millis(ms)) => m.$clock = Some(ms),)*
                    _ => {}
                }
            }
            m
        }
    };
}

perf_statistics! {
    counts: cycles, stalled_cycles_frontend, stalled_cycles_backend, instructions,
        cache_references, cache_misses, branches, branch_misses, bus_cycles, ref_cycles,
        page_faults, minor_faults, major_faults, context_switches, cpu_migrations,
        alignment_faults, emulation_faults,
        l1_dcache_loads, l1_dcache_load_misses, l1_dcache_stores, l1_dcache_store_misses,
        l1_dcache_prefetches, l1_dcache_prefetch_misses, l1_icache_loads,
        l1_icache_load_misses, l1_icache_prefetches, l1_icache_prefetch_misses,
        llc_loads, llc_load_misses, llc_stores, llc_store_misses, llc_prefetches,
        llc_prefetch_misses, dtlb_loads, dtlb_load_misses, dtlb_stores, dtlb_store_misses,
        dtlb_prefetches, dtlb_prefetch_misses, itlb_loads, itlb_load_misses,
        branch_loads, branch_load_misses, node_loads, node_load_misses, node_stores,
        node_store_misses, node_prefetches, node_prefetch_misses;
    clocks: cpu_clock, task_clock,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_commands_as_mesos_docker_containerizer_makes_them() {
        let info =
            |shell: Option<bool>, value: Option<&str>, arguments: &[&str]| mesos::CommandInfo {
                shell,
                value: value.map(Into::into),
                arguments: arguments.iter().map(|a| a.to_string()).collect(),
                ..Default::default()
            };
        let argv = |argv: &[&str]| CommandSpec::argv(argv.iter().map(|a| a.to_string()).collect());
        // shell defaults to true; its arguments are ignored.
        let shell = docker_command_spec(&info(None, Some("echo hi"), &["x"])).unwrap();
        assert!(shell.shell && shell.value == "echo hi" && shell.arguments.is_empty());
        // value, then arguments, replace CMD (the Mesos containerizer would
        // execute value with the arguments as the whole argv instead).
        let both = info(Some(false), Some("/bin/echo"), &["a", "b"]);
        assert_eq!(docker_command_spec(&both), argv(&["/bin/echo", "a", "b"]));
        assert_eq!(command_spec(&both).unwrap().exec_argv(), ["a", "b"]);
        // Arguments alone (Marathon's `args`).
        assert_eq!(
            docker_command_spec(&info(Some(false), None, &["--port", "80"])),
            argv(&["--port", "80"])
        );
        // Nothing to run: the image's own command.
        for empty in [
            info(Some(false), None, &[]),
            info(None, Some(" "), &[]),
            info(None, None, &[]),
        ] {
            assert_eq!(docker_command_spec(&empty), None);
        }
    }

    #[test]
    fn every_scalar_reaches_the_message() {
        let s = ResourceStatistics {
            timestamp: 5.5,
            cpus_user_time_secs: Some(1.0),
            cpus_system_time_secs: Some(0.5),
            mem_limit_bytes: Some(1 << 20),
            disk_used_bytes: Some(7),
            net_rx_bytes: Some(11),
            ..ResourceStatistics::default()
        };
        let m = statistics(&s);
        assert_eq!(m.timestamp, 5.5);
        assert_eq!(m.cpus_user_time_secs, Some(1.0));
        assert_eq!(m.cpus_system_time_secs, Some(0.5));
        assert_eq!(m.mem_limit_bytes, Some(1 << 20));
        assert_eq!(m.disk_used_bytes, Some(7));
        assert_eq!(m.net_rx_bytes, Some(11));
        assert_eq!(m.mem_rss_bytes, None);
        assert_eq!(m.perf, None);
    }

    #[test]
    fn every_perf_event_reaches_its_mesos_field() {
        use phobos_core::perf::EVENTS;
        let mut p = PerfStatistics {
            timestamp: 7.5,
            duration: 1.0,
            ..Default::default()
        };
        for (n, e) in EVENTS.iter().enumerate() {
            let value = if e.is_clock() {
                PerfValue::Millis(n as f64 + 0.5)
            } else {
                PerfValue::Count(n as u64 + 1)
            };
            p.counters.insert(e.field(), value);
        }
        let s = ResourceStatistics {
            timestamp: 8.0,
            perf: Some(p),
            ..ResourceStatistics::default()
        };
        let m = statistics(&s);
        let perf = m.perf.as_ref().expect("perf is field 13");
        assert_eq!((perf.timestamp, perf.duration), (7.5, 1.0));
        assert_eq!(perf.task_clock, Some(11.5));
        assert_eq!(perf.node_prefetch_misses, Some(51));
        // Mesos's JSON mapping of the message names every event's field
        // with the value it was given; nothing was dropped on the way.
        let json = phobos_proto::json::to_json_value(&m).unwrap();
        for (n, e) in EVENTS.iter().enumerate() {
            let got = &json["perf"][e.field()];
            if e.is_clock() {
                assert_eq!(got.as_f64(), Some(n as f64 + 0.5), "{}", e.name);
            } else {
                assert_eq!(got.as_u64(), Some(n as u64 + 1), "{}", e.name);
            }
        }
    }

    #[test]
    fn a_perf_counter_of_the_wrong_kind_or_name_is_left_out() {
        let mut p = PerfStatistics::default();
        p.counters.insert("task_clock".into(), PerfValue::Count(3));
        p.counters.insert("cycles".into(), PerfValue::Millis(1.0));
        p.counters
            .insert("no_such_event".into(), PerfValue::Count(1));
        let m = perf_statistics(&p);
        assert_eq!(m, mesos::PerfStatistics::default());
    }

    #[test]
    fn shell_and_argv_commands() {
        let shell = mesos::CommandInfo {
            value: Some("echo hi".into()),
            arguments: vec!["ignored".into()],
            ..Default::default()
        };
        assert_eq!(command_spec(&shell).map(|c| c.arguments), Some(Vec::new()));
        let empty = mesos::CommandInfo {
            value: Some("  ".into()),
            ..Default::default()
        };
        assert_eq!(command_spec(&empty), None);
    }
}
