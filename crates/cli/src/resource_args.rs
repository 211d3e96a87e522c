//! Turns the resource options of `run` and `update` into `Resources`.
//! Every value is checked before anything touches the disk; a bad one is a
//! usage error (exit 2) naming the option and the value.

use phobos_core::Resources;
use phobos_core::resources::{Quantity, parse_limit, parse_pids, parse_request};
use phobos_runtime::FlagOverrides;

use crate::cli::{IsolatorFlagArgs, ResourceArgs};
use crate::error::usage;

/// `base` with every option that was given replaced.
pub fn apply(args: &ResourceArgs, mut base: Resources) -> anyhow::Result<Resources> {
    if let Some(t) = &args.cpus {
        base.cpus = Some(parse_request("--cpus", Quantity::Cpus, t)?);
    }
    if let Some(t) = &args.mem {
        base.mem = Some(parse_request("--mem", Quantity::Mem, t)?);
    }
    if let Some(t) = &args.cpus_limit {
        base.cpus_limit = Some(parse_limit("--cpus-limit", Quantity::Cpus, t)?);
    }
    if let Some(t) = &args.mem_limit {
        base.mem_limit = Some(parse_limit("--mem-limit", Quantity::Mem, t)?);
    }
    if let Some(t) = &args.pids_limit {
        base.pids_limit = Some(parse_pids("--pids-limit", t)?);
    }
    Ok(base)
}

/// Whether any resource option was given.
pub fn any(args: &ResourceArgs) -> bool {
    args.cpus.is_some()
        || args.mem.is_some()
        || args.cpus_limit.is_some()
        || args.mem_limit.is_some()
        || args.pids_limit.is_some()
}

/// `--disk MB`.
pub fn disk(text: &str) -> anyhow::Result<f64> {
    Ok(parse_request("--disk", Quantity::Disk, text)?)
}

/// The isolator switches and the disk watch interval of `phobos run` (a
/// switch can only turn a setting on; the settings combine them with the
/// configuration).
pub fn flags(args: &IsolatorFlagArgs) -> anyhow::Result<FlagOverrides> {
    let interval = args
        .container_disk_watch_interval
        .as_deref()
        .map(|text| {
            phobos_config::parse_duration(text)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    usage(format!(
                        "invalid value '{text}' for --container-disk-watch-interval: expected a positive duration such as 15s or 500ms"
                    ))
                })
        })
        .transpose()?;
    Ok(FlagOverrides {
        cgroups_enable_cfs: args.cgroups_enable_cfs,
        cgroups_limit_swap: args.cgroups_limit_swap,
        enforce_container_disk_quota: args.enforce_container_disk_quota,
        container_disk_watch_interval: interval,
    })
}
