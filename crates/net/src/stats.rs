//! Interface counters of a container's network namespace, from the
//! kernel's `/proc/<pid>/net/dev` table (read from inside the namespace, or
//! through a process in it), summed over every interface except `lo` and
//! named as Mesos's `ResourceStatistics.net_*` fields.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::NetError;

/// `net_rx_*` / `net_tx_*` of `ResourceStatistics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetStats {
    /// Bytes received.
    pub net_rx_bytes: u64,
    /// Packets received.
    pub net_rx_packets: u64,
    /// Receive errors.
    pub net_rx_errors: u64,
    /// Received packets dropped.
    pub net_rx_dropped: u64,
    /// Bytes sent.
    pub net_tx_bytes: u64,
    /// Packets sent.
    pub net_tx_packets: u64,
    /// Transmit errors.
    pub net_tx_errors: u64,
    /// Sent packets dropped.
    pub net_tx_dropped: u64,
}

impl NetStats {
    fn add(&mut self, other: &NetStats) {
        self.net_rx_bytes += other.net_rx_bytes;
        self.net_rx_packets += other.net_rx_packets;
        self.net_rx_errors += other.net_rx_errors;
        self.net_rx_dropped += other.net_rx_dropped;
        self.net_tx_bytes += other.net_tx_bytes;
        self.net_tx_packets += other.net_tx_packets;
        self.net_tx_errors += other.net_tx_errors;
        self.net_tx_dropped += other.net_tx_dropped;
    }
}

/// Parses the `net/dev` table: one `(interface, counters)` per line.
/// Malformed lines are skipped.
pub fn parse_net_dev(text: &str) -> Vec<(String, NetStats)> {
    let mut out = Vec::new();
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let fields: Vec<u64> = rest
            .split_whitespace()
            .map_while(|f| f.parse().ok())
            .collect();
        if fields.len() < 16 {
            continue;
        }
        out.push((
            name.trim().to_owned(),
            NetStats {
                net_rx_bytes: fields[0],
                net_rx_packets: fields[1],
                net_rx_errors: fields[2],
                net_rx_dropped: fields[3],
                net_tx_bytes: fields[8],
                net_tx_packets: fields[9],
                net_tx_errors: fields[10],
                net_tx_dropped: fields[11],
            },
        ));
    }
    out
}

/// The sum over every interface but `lo`.
pub fn sum_without_loopback(text: &str) -> NetStats {
    let mut total = NetStats::default();
    for (name, stats) in parse_net_dev(text) {
        if name != "lo" {
            total.add(&stats);
        }
    }
    total
}

/// Counters of the namespace bound at `netns`.
pub fn netns_stats(netns: &Path) -> Result<NetStats, NetError> {
    Ok(sum_without_loopback(&crate::netns::read_net_dev(netns)?))
}

/// Counters of the network namespace process `pid` is in.
pub fn pid_stats(pid: u32) -> Result<NetStats, NetError> {
    let path = format!("/proc/{pid}/net/dev");
    let text = std::fs::read_to_string(&path).map_err(|e| NetError::io("read", path, e))?;
    Ok(sum_without_loopback(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
  eth0:    1500      10    1    2    0     0          0         0      900       7    3    4    0     0       0          0
  eth1:      10       1    0    0    0     0          0         0       20       2    0    0    0     0       0          0
garbage line
";

    #[test]
    fn sums_every_interface_but_lo() {
        let s = sum_without_loopback(SAMPLE);
        assert_eq!(
            s,
            NetStats {
                net_rx_bytes: 1510,
                net_rx_packets: 11,
                net_rx_errors: 1,
                net_rx_dropped: 2,
                net_tx_bytes: 920,
                net_tx_packets: 9,
                net_tx_errors: 3,
                net_tx_dropped: 4,
            }
        );
        assert_eq!(parse_net_dev(SAMPLE).len(), 3);
    }

    #[test]
    fn odd_input_yields_nothing_not_a_panic() {
        assert_eq!(sum_without_loopback(""), NetStats::default());
        assert_eq!(
            sum_without_loopback("a\nb\neth0: 1 2 x"),
            NetStats::default()
        );
    }
}
