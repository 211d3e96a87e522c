//! `ResourceStatistics`: a container's usage with Mesos's field names and
//! meanings (mesos.proto `ResourceStatistics`, reference §8). Every field but
//! `timestamp` is optional and omitted from JSON when absent, so a partial
//! snapshot (one isolator's contribution) merges into another with
//! [`ResourceStatistics::merge_from`], the way Mesos uses `MergeFrom`.

use serde::{Deserialize, Serialize};

/// Mesos `Device.Number`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceNumber {
    pub major_number: u64,
    pub minor_number: u64,
}

/// Mesos `CgroupInfo.Blkio.Operation`, spelled as the JSON mapping spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum BlkioOperation {
    Unknown,
    Total,
    Read,
    Write,
    Sync,
    Async,
    Discard,
}

/// Mesos `CgroupInfo.Blkio.Value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioValue {
    pub op: BlkioOperation,
    pub value: u64,
}

/// Mesos `CgroupInfo.Blkio.Throttling.Statistics`: one device's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioThrottlingStatistics {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceNumber>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_serviced: Vec<BlkioValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes: Vec<BlkioValue>,
}

/// Mesos `CgroupInfo.Blkio.Statistics` (Phobos fills `throttling`, which
/// exists on every kernel; the CFQ scheduler is gone since Linux 5.0).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioStatistics {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throttling: Vec<BlkioThrottlingStatistics>,
}

macro_rules! statistics {
    ($( $(#[$doc:meta])* $field:ident : $ty:ty ),* $(,)?) => {
        /// Mesos `ResourceStatistics` (the fields Phobos can produce).
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
        pub struct ResourceStatistics {
            /// Seconds since the epoch when the snapshot was taken.
            pub timestamp: f64,
            $(
                $(#[$doc])*
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )*
        }

        impl ResourceStatistics {
            /// Copies every field `other` has into `self` (Mesos
            /// `MergeFrom` for singular fields); `timestamp` is kept.
            pub fn merge_from(&mut self, other: ResourceStatistics) {
                $(
                    if other.$field.is_some() {
                        self.$field = other.$field;
                    }
                )*
            }
        }
    };
}

statistics! {
    /// Processes in the container.
    processes: u32,
    /// Threads in the container.
    threads: u32,
    /// User CPU time (cpuacct.stat `user`, cpu.stat `user_usec`).
    cpus_user_time_secs: f64,
    /// System CPU time.
    cpus_system_time_secs: f64,
    /// The CPU limit (the request when CFS enforces it).
    cpus_limit: f64,
    /// The CPU request.
    cpus_soft_limit: f64,
    /// CFS periods elapsed.
    cpus_nr_periods: u32,
    /// CFS periods throttled.
    cpus_nr_throttled: u32,
    /// Time throttled.
    cpus_throttled_time_secs: f64,
    /// memory.usage_in_bytes / memory.current.
    mem_total_bytes: u64,
    /// memory.memsw.usage_in_bytes (with swap limiting).
    mem_total_memsw_bytes: u64,
    /// The hard limit (the request when there is no limit).
    mem_limit_bytes: u64,
    /// The memory request.
    mem_soft_limit_bytes: u64,
    /// Deprecated alias of `mem_cache_bytes`.
    mem_file_bytes: u64,
    /// Deprecated alias of `mem_rss_bytes`.
    mem_anon_bytes: u64,
    /// Page cache.
    mem_cache_bytes: u64,
    /// Anonymous memory (resident set).
    mem_rss_bytes: u64,
    /// Mapped files.
    mem_mapped_file_bytes: u64,
    /// Swapped out.
    mem_swap_bytes: u64,
    /// Unevictable.
    mem_unevictable_bytes: u64,
    /// The sandbox disk limit.
    disk_limit_bytes: u64,
    /// The sandbox's size on disk.
    disk_used_bytes: u64,
    /// Block I/O per device.
    blkio_statistics: BlkioStatistics,
    /// The perf events sampled in the container's perf_event cgroup
    /// (`cgroups/perf_event` with `perf_events`).
    perf: crate::perf::PerfStatistics,
    /// Packets received on the container's interfaces (all but `lo`).
    net_rx_packets: u64,
    /// Bytes received.
    net_rx_bytes: u64,
    /// Receive errors.
    net_rx_errors: u64,
    /// Received packets dropped.
    net_rx_dropped: u64,
    /// Packets sent.
    net_tx_packets: u64,
    /// Bytes sent.
    net_tx_bytes: u64,
    /// Transmit errors.
    net_tx_errors: u64,
    /// Sent packets dropped.
    net_tx_dropped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn omits_absent_fields_and_requires_a_timestamp() {
        let s = ResourceStatistics {
            timestamp: 12.5,
            cpus_user_time_secs: Some(1.25),
            mem_rss_bytes: Some(4096),
            ..ResourceStatistics::default()
        };
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"timestamp": 12.5, "cpus_user_time_secs": 1.25, "mem_rss_bytes": 4096})
        );
        assert!(serde_json::from_str::<ResourceStatistics>("{}").is_err());
    }

    #[test]
    fn merge_keeps_what_the_other_lacks() {
        let mut a = ResourceStatistics {
            timestamp: 1.0,
            mem_rss_bytes: Some(1),
            processes: Some(3),
            ..ResourceStatistics::default()
        };
        a.merge_from(ResourceStatistics {
            timestamp: 2.0,
            mem_rss_bytes: Some(7),
            disk_used_bytes: Some(9),
            ..ResourceStatistics::default()
        });
        assert_eq!(a.timestamp, 1.0);
        assert_eq!(a.mem_rss_bytes, Some(7));
        assert_eq!(a.processes, Some(3));
        assert_eq!(a.disk_used_bytes, Some(9));
    }

    #[test]
    fn blkio_uses_mesos_json_names() {
        let b = BlkioStatistics {
            throttling: vec![BlkioThrottlingStatistics {
                device: Some(DeviceNumber {
                    major_number: 8,
                    minor_number: 0,
                }),
                io_serviced: vec![BlkioValue {
                    op: BlkioOperation::Read,
                    value: 3,
                }],
                io_service_bytes: vec![],
            }],
        };
        assert_eq!(
            serde_json::to_value(&b).unwrap(),
            serde_json::json!({"throttling": [{"device": {"major_number": 8, "minor_number": 0},
                                               "io_serviced": [{"op": "READ", "value": 3}]}]})
        );
    }
}
