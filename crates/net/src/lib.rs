//! CNI networking for Mesos containers (Mesos's `network/cni` isolator,
//! driven by the CNI 1.0 specification):
//!
//! - [`config`]: network configuration lists from `network_cni_config_dir`
//!   and the built-in default network `phobos` (bridge `phobos0`,
//!   host-local addresses, port mapping, masquerading);
//! - [`plugin`]: running one plugin binary with the CNI environment, a
//!   timeout and bounded output;
//! - [`result`]: plugin results and errors;
//! - [`netns`]: network namespaces bound onto files (nsfs bind mounts,
//!   setns(2), `lo` brought up with SIOCSIFFLAGS);
//! - [`root`] and [`container`]: the state directory, ADD with prevResult
//!   chaining and checkpoints, DEL in reverse order, host port reservations;
//!   at detach the built-in network's veth pair goes with the namespace, in
//!   the kernel's batched namespace teardown, awaited on rtnetlink;
//! - [`mode`]: `--network` / `-p` into a [`ContainerNetwork`], checked;
//!   [`ports`]: `-p` specifications;
//! - `host_rules`: the built-in network's masquerade and forward rules,
//!   installed once per network (iptables(8));
//! - `bridge`, `ipam`, `netlink`: the built-in network's bridge step in
//!   process (veth pair, bridge port, address and routes over rtnetlink;
//!   addresses reserved in host-local's layout) instead of the `bridge`
//!   and `host-local` plugin programs;
//! - [`etc_files`]: `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf` as
//!   Mesos writes them; [`stats`]: `net_*` counters from `net/dev`.

mod bridge;
pub mod config;
pub mod container;
pub mod error;
pub mod etc_files;
mod host_rules;
mod ipam;
pub mod mode;
mod netlink;
pub mod netns;
pub mod plugin;
pub mod ports;
pub mod result;
pub mod root;
pub mod stats;

pub use config::{
    ConfigSource, DEFAULT_BRIDGE, DEFAULT_NETWORK, DEFAULT_PLUGINS_DIR, DEFAULT_SUBNET,
    NetSettings, NetworkConfig, Networks, Plugins, Subnet, validate_bridge_name,
};
pub use container::{Attachment, ContainerNet, EtcFiles};
pub use error::NetError;
pub use mode::{from_cli, validate_requests};
pub use phobos_core::network::{ContainerNetwork, NetworkInfo};
pub use ports::{InvalidPortMapping, PortMapping, Protocol};
pub use result::{CniResult, Dns};
pub use root::NetRoot;
pub use stats::NetStats;
