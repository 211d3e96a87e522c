//! Turns the resource options of `run` and `update` into `Resources`.
//! Every value is checked before anything touches the disk; a bad one is a
//! usage error (exit 2) naming the option and the value.

use phobos_core::resources::{Quantity, parse_limit, parse_pids, parse_request};
use phobos_core::{IsolatorFlags, Resources};

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

/// The isolator flags of `phobos run`.
/// The isolator flags: each flag given on the command line, else the
/// configuration's value (the switches can only turn a setting on).
pub fn flags(
    args: &IsolatorFlagArgs,
    config: &phobos_config::Config,
) -> anyhow::Result<IsolatorFlags> {
    let interval = match &args.container_disk_watch_interval {
        Some(text) => phobos_config::parse_duration(text)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                usage(format!(
                    "invalid value '{text}' for --container-disk-watch-interval: expected a positive duration such as 15s or 500ms"
                ))
            })?,
        None => config.container_disk_watch_interval,
    };
    Ok(IsolatorFlags {
        cgroups_enable_cfs: args.cgroups_enable_cfs || config.cgroups_enable_cfs,
        cgroups_limit_swap: args.cgroups_limit_swap || config.cgroups_limit_swap,
        container_disk_watch_interval_secs: interval.as_secs_f64(),
        enforce_container_disk_quota: args.enforce_container_disk_quota
            || config.enforce_container_disk_quota,
        ..IsolatorFlags::default()
    })
}
