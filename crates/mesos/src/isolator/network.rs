//! `network/cni` (Mesos `network/cni`, reference §4): a container asking
//! for its own network gets new network, UTS and mount namespaces
//! (network_namespaces(7), `CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWNS`), a hostname (its
//! ID unless given), its state directory under `<runtime_dir>/net` made
//! before those are cloned (so init's mount namespace holds the state
//! root's mount), and, in ISOLATING, before the command may start:
//! the namespace bound under `<runtime_dir>/net`, `lo` up, CNI ADD of each
//! network in order, and `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`
//! generated for init to bind over the container's (into its root
//! filesystem when it has one). Cleanup runs CNI DEL of every network in
//! reverse order and unbinds the namespace; it is idempotent and works
//! from the checkpoints alone, so it also serves recovery of a container
//! whose launcher died during ADD. `usage` reports the `net_*` counters.
//!
//! Containers on the host network are left alone (Mesos's default).

use std::path::{Path, PathBuf};

use phobos_core::{
    ContainerConfig, ContainerId, ContainerNetwork, IsolatorFlags, ResourceStatistics,
};
use phobos_net::{NetRoot, NetSettings, Networks, Subnet};

use super::{Isolator, IsolatorError, UsageContext};
use crate::launch_info::{Contribution, EtcFiles, Namespace};

/// The address libprocess binds (`LIBPROCESS_IP`).
const LIBPROCESS_IP: &str = "LIBPROCESS_IP";

/// The network settings a container's checkpointed flags name.
pub fn net_settings(flags: &IsolatorFlags) -> Result<NetSettings, phobos_net::NetError> {
    let mut settings = NetSettings::default();
    settings
        .config_dir
        .clone_from(&flags.network_cni_config_dir);
    if let Some(dirs) = &flags.network_cni_plugins_dir {
        settings.plugin_dirs = NetSettings::split_plugin_dirs(dirs);
    }
    if let Some(subnet) = &flags.default_network_subnet {
        settings.default_subnet = subnet.parse::<Subnet>()?;
    }
    if let Some(bridge) = &flags.default_network_bridge {
        phobos_net::validate_bridge_name(bridge).map_err(|reason| {
            phobos_net::NetError::InvalidBridge {
                value: bridge.clone(),
                reason,
            }
        })?;
        settings.default_bridge = bridge.clone();
    }
    Ok(settings)
}

/// The `network/cni` isolator for one container.
#[derive(Debug)]
pub struct NetworkCni {
    network: ContainerNetwork,
    settings: NetSettings,
    root: Option<NetRoot>,
    hostname: String,
}

impl NetworkCni {
    /// Built from the container's config; `runtime_dir` is where its state
    /// lives (absent: the isolator can only describe, not act).
    pub fn new(
        config: &super::Spec<'_>,
        runtime_dir: Option<&Path>,
    ) -> Result<Self, IsolatorError> {
        let settings = net_settings(config.isolator_flags).map_err(|e| IsolatorError::Failed {
            isolator: "network/cni",
            id: config.id.clone(),
            message: e.to_string(),
        })?;
        Ok(Self {
            network: config.network.clone(),
            settings,
            root: runtime_dir.map(NetRoot::new),
            hostname: hostname_for(config.hostname, config.id),
        })
    }

    fn fail(id: &ContainerId, e: impl std::fmt::Display) -> IsolatorError {
        IsolatorError::Failed {
            isolator: "network/cni",
            id: id.clone(),
            message: e.to_string(),
        }
    }

    fn root(&self, id: &ContainerId) -> Result<&NetRoot, IsolatorError> {
        self.root
            .as_ref()
            .ok_or_else(|| Self::fail(id, "no runtime directory to keep network state in"))
    }

    /// Where a container's generated `/etc` files are.
    pub fn etc_files(root: &NetRoot, id: &ContainerId) -> Option<EtcFiles> {
        let dir = root.container(id.as_str()).ok()?.dir().to_owned();
        Some(EtcFiles {
            hosts: dir.join("hosts"),
            hostname: dir.join("hostname"),
            resolv_conf: dir.join("resolv.conf"),
        })
    }
}

/// The UTS hostname of a container with its own network: the one asked
/// for, else its ID (Mesos), cut to the kernel's 64 bytes.
pub fn hostname_of(config: &ContainerConfig) -> String {
    hostname_for(config.hostname.as_deref(), &config.id)
}

/// [`hostname_of`] from the two fields it depends on.
fn hostname_for(hostname: Option<&str>, id: &ContainerId) -> String {
    if let Some(name) = hostname {
        return name.to_owned();
    }
    let id = id.as_str();
    let mut end = id.len().min(64);
    while !id.is_char_boundary(end) {
        end -= 1;
    }
    id[..end].to_owned()
}

impl Isolator for NetworkCni {
    fn name(&self) -> &'static str {
        "network/cni"
    }

    fn needs_linux_launcher(&self) -> bool {
        true
    }

    fn prepare(&self, config: &ContainerConfig) -> Result<Option<Contribution>, IsolatorError> {
        if !self.network.own_namespace() {
            return Ok(None);
        }
        let root = self.root(&config.id)?;
        // Before init's mount namespace is cloned from this one: it must
        // hold the state root's mount, where the `/etc` files will be.
        root.container(config.id.as_str())
            .and_then(|c| c.prepare())
            .map_err(|e| Self::fail(&config.id, e))?;
        // As Mesos's network/cni: a libprocess-based executor on a CNI
        // network binds all of its namespace's addresses, not the agent's
        // (the container's own environment still wins).
        let env = match self.network.networks().is_empty() {
            true => Vec::new(),
            false => vec![(LIBPROCESS_IP.to_owned(), "0.0.0.0".to_owned())],
        };
        Ok(Some(Contribution {
            namespaces: vec![Namespace::Mount, Namespace::Net, Namespace::Uts],
            hostname: Some(self.hostname.clone()),
            etc_files: Self::etc_files(root, &config.id),
            env,
            ..Contribution::default()
        }))
    }

    fn isolate(&self, id: &ContainerId, pid: i32) -> Result<(), IsolatorError> {
        if !self.network.own_namespace() {
            return Ok(());
        }
        let root = self.root(id)?;
        let fail = |e: phobos_net::NetError| Self::fail(id, e);
        let container = root.container(id.as_str()).map_err(fail)?;
        let pid = u32::try_from(pid).map_err(|_| Self::fail(id, format!("bad pid {pid}")))?;
        container.bind_netns(pid).map_err(fail)?;
        let networks = Networks::load(&self.settings, &root.ipam_dir()).map_err(fail)?;
        let started = std::time::Instant::now();
        let attached = container
            .attach(&networks, &self.settings.plugins(), self.network.networks())
            .map_err(fail)?;
        tracing::debug!(
            container = %id,
            "CNI ADD of {} network(s) took {:.3} ms",
            attached.len(),
            started.elapsed().as_secs_f64() * 1e3
        );
        container
            .write_etc_files(&self.hostname, &attached, Path::new("/etc/resolv.conf"))
            .map_err(fail)?;
        Ok(())
    }

    fn usage(
        &self,
        id: &ContainerId,
        _ctx: &UsageContext<'_>,
    ) -> Result<Option<ResourceStatistics>, IsolatorError> {
        if !self.network.own_namespace() {
            return Ok(None);
        }
        let Some(root) = &self.root else {
            return Ok(None);
        };
        let container = root.container(id.as_str()).map_err(|e| Self::fail(id, e))?;
        if !phobos_net::netns::is_bound(&container.netns_path()) {
            return Ok(None);
        }
        let s = container.stats().map_err(|e| Self::fail(id, e))?;
        Ok(Some(ResourceStatistics {
            net_rx_packets: Some(s.net_rx_packets),
            net_rx_bytes: Some(s.net_rx_bytes),
            net_rx_errors: Some(s.net_rx_errors),
            net_rx_dropped: Some(s.net_rx_dropped),
            net_tx_packets: Some(s.net_tx_packets),
            net_tx_bytes: Some(s.net_tx_bytes),
            net_tx_errors: Some(s.net_tx_errors),
            net_tx_dropped: Some(s.net_tx_dropped),
            ..ResourceStatistics::default()
        }))
    }

    fn cleanup(&self, id: &ContainerId) -> Result<(), IsolatorError> {
        // Whatever the mode now says: state on disk is what counts.
        let Some(root) = &self.root else {
            return Ok(());
        };
        let container = root.container(id.as_str()).map_err(|e| Self::fail(id, e))?;
        if !container.exists() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        container
            .detach(&self.settings.plugins())
            .map_err(|e| Self::fail(id, e))?;
        // The last container gone: nothing stays mounted under the runtime
        // directory.
        root.release_if_unused().map_err(|e| Self::fail(id, e))?;
        tracing::debug!(
            container = %id,
            "CNI DEL took {:.3} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
        Ok(())
    }
}

/// Mesos `NetworkInfo.IPAddress`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct IpAddress {
    /// `IPv4` or `IPv6`.
    pub protocol: &'static str,
    pub ip_address: String,
}

/// One joined network as `status` shows it (Mesos
/// `ContainerStatus.network_infos`, plus the interface).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NetworkStatus {
    pub name: String,
    pub interface: String,
    pub ip_addresses: Vec<IpAddress>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<phobos_core::PortMapping>,
}

/// The networks a container joined, from its checkpoints; empty on the
/// host network and once it is torn down.
pub fn network_status(runtime_dir: &Path, id: &ContainerId) -> Vec<NetworkStatus> {
    let Ok(container) = NetRoot::new(runtime_dir).container(id.as_str()) else {
        return Vec::new();
    };
    if !container.exists() {
        return Vec::new();
    }
    let attachments = container.attachments().unwrap_or_else(|e| {
        tracing::warn!(container = %id, "cannot read its networks: {e}");
        Vec::new()
    });
    attachments
        .into_iter()
        .map(|a| NetworkStatus {
            ip_addresses: a
                .ip_addresses
                .into_iter()
                .map(|ip| IpAddress {
                    protocol: if ip.contains(':') { "IPv6" } else { "IPv4" },
                    ip_address: ip,
                })
                .collect(),
            name: a.name,
            interface: a.ifname,
            port_mappings: a.port_mappings,
        })
        .collect()
}

/// Where the state of network containers lives (for recovery's orphan sweep).
pub fn net_root(runtime_dir: &Path) -> PathBuf {
    NetRoot::new(runtime_dir).dir().to_owned()
}

/// Detaches every container with network state under `runtime_dir` that
/// `known` does not claim (its record is gone, so no cleanup of its own
/// will run): CNI DEL of each checkpointed network with the plugins ADD
/// used, its host ports released, its namespace unbound. Returns the IDs
/// swept and the errors met, continuing past them.
pub fn sweep_orphan_networks(
    runtime_dir: &Path,
    known: impl Fn(&str) -> bool,
) -> (Vec<String>, Vec<String>) {
    let root = NetRoot::new(runtime_dir);
    let ids = match root.container_ids() {
        Ok(ids) => ids,
        Err(e) => return (Vec::new(), vec![format!("orphan networks: {e}")]),
    };
    let plugins = NetSettings::default().plugins();
    let (mut swept, mut errors) = (Vec::new(), Vec::new());
    for id in ids.into_iter().filter(|id| !known(id)) {
        match root.container(&id).and_then(|c| c.detach(&plugins)) {
            Ok(()) => swept.push(id),
            Err(e) => errors.push(format!("orphan network state of {id}: {e}")),
        }
    }
    if let Err(e) = root.release_if_unused() {
        errors.push(format!("network state root: {e}"));
    }
    (swept, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_follow_the_flags() {
        let flags = IsolatorFlags {
            network_cni_config_dir: Some("/etc/cni/net.d".into()),
            network_cni_plugins_dir: Some("/opt/cni/bin:/usr/lib/cni".into()),
            default_network_subnet: Some("10.99.0.0/16".into()),
            default_network_bridge: Some("phbr-t".into()),
            ..IsolatorFlags::default()
        };
        let s = net_settings(&flags).unwrap();
        assert_eq!(s.default_bridge, "phbr-t");
        assert_eq!(s.config_dir.as_deref(), Some(Path::new("/etc/cni/net.d")));
        assert_eq!(s.plugin_dirs.len(), 2);
        assert_eq!(s.default_subnet.to_string(), "10.99.0.0/16");
        let bad = IsolatorFlags {
            default_network_subnet: Some("10.99.0.1/16".into()),
            ..IsolatorFlags::default()
        };
        assert!(
            net_settings(&bad)
                .unwrap_err()
                .to_string()
                .contains("10.99.0.1/16")
        );
        let long = IsolatorFlags {
            default_network_bridge: Some("sixteen-bytes-xx".into()),
            ..IsolatorFlags::default()
        };
        let err = net_settings(&long).unwrap_err();
        assert!(
            err.is_usage() && err.to_string().contains("sixteen-bytes-xx"),
            "{err}"
        );
        assert_eq!(
            net_settings(&IsolatorFlags::default())
                .unwrap()
                .default_bridge,
            "phobos0"
        );
        assert_eq!(
            net_settings(&IsolatorFlags::default()).unwrap().plugin_dirs,
            [PathBuf::from("/usr/lib/cni")]
        );
    }
}
