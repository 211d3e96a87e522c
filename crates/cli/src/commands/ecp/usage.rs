//! `phobos ecp usage` and `phobos ecp update`.
//!
//! `usage` always answers a running container with a `ResourceStatistics`
//! carrying a timestamp and CPU times (Deimos wrote nothing in several
//! normal states and never CPU times), with `cpus_limit` and
//! `mem_limit_bytes` as the container's allocation, as agents 0.19-1.0
//! read them: the door's `legacy_usage`.
//!
//! `update` applies the agent's new resource set (the scalar `cpus`, `mem`
//! and `disk`) through the isolators and checkpoints it. The memory hard
//! limit is only ever raised, as Mesos does.

use phobos_core::{Operation, ResourceStatistics};
use phobos_proto::containerizer::{Update, Usage};
use phobos_proto::mesos;

use super::translate;
use crate::cli::{EcpCall, Global};
use crate::commands;
use crate::context;

pub fn usage(global: &Global) -> anyhow::Result<()> {
    let request: Usage = super::read_input()?;
    let id = super::container_id(&request.container_id)?;
    let span = super::container_span(EcpCall::Usage, &id);
    let _entered = span.enter();
    let stats = context::door(global)?
        .legacy_usage(&id)?
        .ok_or_else(|| commands::unknown(&id))?;
    super::write_output(&to_proto(&stats))
}

pub fn update(global: &Global) -> anyhow::Result<()> {
    let request: Update = super::read_input()?;
    let id = super::container_id(&request.container_id)?;
    let span = super::container_span(EcpCall::Update, &id);
    let _entered = span.enter();
    let resources = translate::from_mesos(&request.resources);
    tracing::info!(?resources, "updating");
    commands::apply_known(
        global,
        &id,
        Operation::Update {
            resources,
            force: false,
        },
    )?;
    Ok(())
}

/// Our statistics as the Mesos message (every scalar field Phobos fills).
fn to_proto(s: &ResourceStatistics) -> mesos::ResourceStatistics {
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
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let m = to_proto(&s);
        assert_eq!(m.timestamp, 5.5);
        assert_eq!(m.cpus_user_time_secs, Some(1.0));
        assert_eq!(m.cpus_system_time_secs, Some(0.5));
        assert_eq!(m.mem_limit_bytes, Some(1 << 20));
        assert_eq!(m.disk_used_bytes, Some(7));
        assert_eq!(m.net_rx_bytes, Some(11));
        assert_eq!(m.mem_rss_bytes, None);
    }
}
