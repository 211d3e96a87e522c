//! Typed errors of the network crate. Every message is one line naming the
//! value at fault (file, network, plugin, port) and what is wrong with it.

use std::path::PathBuf;
use std::time::Duration;

/// What went wrong setting up or tearing down container networking.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The CNI configuration directory cannot be listed.
    #[error("cannot read CNI configuration directory {}: {source}", dir.display())]
    ConfigDir {
        /// `network_cni_config_dir`.
        dir: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A configuration file cannot be read.
    #[error("cannot read CNI configuration {}: {source}", path.display())]
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A configuration file is malformed or names something that is not there.
    #[error("invalid CNI configuration {}: {problem}", path.display())]
    ConfigInvalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the field and value.
        problem: String,
    },
    /// Two files define the same network name.
    #[error("CNI network '{name}' is defined twice: in {} and in {}", first.display(), second.display())]
    DuplicateNetwork {
        /// The network name.
        name: String,
        /// The first file (in name order).
        first: PathBuf,
        /// The second file.
        second: PathBuf,
    },
    /// A network that no configuration defines.
    #[error("unknown network '{name}' (networks found: {})", list_or_none(known))]
    UnknownNetwork {
        /// The requested name.
        name: String,
        /// Every network that is defined, including the built-in `phobos`.
        known: Vec<String>,
    },
    /// Every address of the built-in network's subnet is reserved.
    #[error("no free address left in subnet {subnet} of the built-in network")]
    AddressesExhausted {
        /// The subnet.
        subnet: String,
    },
    /// The same network was requested twice for one container.
    #[error("network '{name}' is requested twice; a container joins each network once")]
    JoinedTwice {
        /// The network name.
        name: String,
    },
    /// `host` or `none` was combined with other networks.
    #[error("network '{name}' cannot be combined with other networks")]
    ExclusiveNetwork {
        /// `host` or `none`.
        name: String,
    },
    /// `default_network_subnet` is not an IPv4 CIDR.
    #[error("invalid default_network_subnet '{value}': {reason}")]
    InvalidSubnet {
        /// The value as given.
        value: String,
        /// What was expected.
        reason: &'static str,
    },
    /// `default_network_bridge` is not a usable interface name.
    #[error("invalid default_network_bridge '{value}': {reason}")]
    InvalidBridge {
        /// The value as given.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A `-p` specification is malformed, or a host port is published twice.
    #[error("invalid --publish '{spec}': {reason}")]
    InvalidPortSpec {
        /// The specification as given.
        spec: String,
        /// What was expected.
        reason: &'static str,
    },
    /// Port mappings were asked for, but no network can carry them.
    #[error("--publish needs a network with port mapping (e.g. --network phobos), not '{network}'")]
    PortsNeedNetwork {
        /// The network mode in use (`host` or `none`).
        network: String,
    },
    /// A published host port is already taken.
    #[error("host port {port}/{protocol} is already {by}")]
    PortInUse {
        /// The host port.
        port: u16,
        /// `tcp`, `udp` or `sctp`.
        protocol: String,
        /// Who has it: "published by container X" or "in use on this host".
        by: String,
    },
    /// A plugin binary cannot be found in `network_cni_plugins_dir`.
    #[error("CNI plugin '{plugin}' of network '{network}' not found in {dirs}")]
    PluginNotFound {
        /// The plugin type.
        plugin: String,
        /// The network.
        network: String,
        /// The search path, `:`-separated.
        dirs: String,
    },
    /// A plugin could not be started.
    #[error("cannot run CNI plugin {}: {source}", path.display())]
    PluginSpawn {
        /// The binary.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A plugin reported an error (or exited non-zero).
    #[error("CNI {command} of network '{network}' failed in plugin '{plugin}': {message}")]
    Plugin {
        /// ADD, DEL or CHECK.
        command: &'static str,
        /// The network.
        network: String,
        /// The plugin type.
        plugin: String,
        /// The plugin's own message (its `msg` and `details`, or its output).
        message: String,
    },
    /// A plugin ran longer than the timeout and was killed.
    #[error(
        "CNI {command} of network '{network}': plugin '{plugin}' did not finish within {timeout:?} and was killed"
    )]
    PluginTimeout {
        /// ADD, DEL or CHECK.
        command: &'static str,
        /// The network.
        network: String,
        /// The plugin type.
        plugin: String,
        /// The limit.
        timeout: Duration,
    },
    /// A plugin's result could not be understood.
    #[error(
        "CNI {command} of network '{network}': plugin '{plugin}' returned an invalid result: {problem}"
    )]
    BadResult {
        /// ADD or CHECK.
        command: &'static str,
        /// The network.
        network: String,
        /// The plugin type.
        plugin: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A value that must be a CNI interface name or container ID is not.
    #[error("invalid {what} '{value}': {reason}")]
    InvalidName {
        /// "interface name", "network name", ...
        what: &'static str,
        /// The value.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A system call on a network namespace failed.
    #[error("network namespace {}: {op} failed: {source}", path.display())]
    Netns {
        /// The namespace handle (bind mount) or `/proc/<pid>/ns/net`.
        path: PathBuf,
        /// What was attempted.
        op: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// A file operation in the network state directory failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was attempted ("write", "remove", ...).
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A checkpoint in the network state directory is unreadable.
    #[error("corrupt network checkpoint {}: {problem}", path.display())]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A directory in the state directory is a symlink or not a directory.
    #[error("refusing to use {}: {reason}", path.display())]
    Unsafe {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// A host-wide packet filter rule of the built-in network could not be added.
    #[error("cannot add the iptables rule '{rule}': {message}")]
    HostRule {
        /// The rule, as iptables arguments.
        rule: String,
        /// iptables's message.
        message: String,
    },
    /// Several failures while tearing networks down (each one listed).
    #[error("network teardown failed: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Teardown(Vec<NetError>),
}

impl From<phobos_core::network::InvalidPortMapping> for NetError {
    fn from(e: phobos_core::network::InvalidPortMapping) -> Self {
        NetError::InvalidPortSpec {
            spec: e.spec,
            reason: e.reason,
        }
    }
}

impl NetError {
    /// Whether the error is the caller's bad input (exit 2, nothing changed)
    /// rather than a runtime failure (exit 1).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            NetError::UnknownNetwork { .. }
                | NetError::JoinedTwice { .. }
                | NetError::ExclusiveNetwork { .. }
                | NetError::InvalidSubnet { .. }
                | NetError::InvalidBridge { .. }
                | NetError::InvalidPortSpec { .. }
                | NetError::PortsNeedNetwork { .. }
                | NetError::ConfigInvalid { .. }
                | NetError::DuplicateNetwork { .. }
                | NetError::InvalidName { .. }
        )
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        NetError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}
