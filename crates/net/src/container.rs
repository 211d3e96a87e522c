//! One container's networks: its namespace handle, CNI ADD of every
//! requested network in order (each plugin of a list gets the previous
//! result as `prevResult`, port mappings go in `runtimeConfig`), a
//! checkpoint per network written before its ADD starts and after every
//! plugin, and DEL of every checkpointed network in reverse order with the
//! last result it recorded. DEL is idempotent: a network whose DEL
//! succeeded loses its checkpoint, so running it again does nothing.

use std::fs;
use std::io::{ErrorKind, Write};
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::bridge::{BridgeStep, Endpoint};
use crate::config::{ConfigSource, NetworkConfig, Networks, Plugins};
use crate::error::NetError;
use crate::etc_files;
use crate::host_rules;
use crate::mode::validate_requests;
use crate::netns;
use crate::plugin::{self, CniCommand, Invocation, RunError};
use crate::ports::{PortMapping, Protocol};
use crate::result::{CniResult, error_message, parse_result};
use crate::root::{NetRoot, ensure_dir, write_atomic};
use crate::stats::{NetStats, netns_stats};
use phobos_core::network::NetworkInfo;

mod detach;
pub use detach::KERNEL_DELETE_BOUND;

/// What is recorded per joined network.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Checkpoint {
    network: String,
    ifname: String,
    /// `CNI_CONTAINERID` used for ADD (DEL must use the same).
    cni_container_id: String,
    /// The network configuration list exactly as used for ADD.
    config: Value,
    #[serde(default)]
    port_mappings: Vec<PortMapping>,
    /// The latest result: the final one once ADD completed.
    #[serde(default)]
    result: Option<Value>,
    /// Whether ADD ran to the end.
    #[serde(default)]
    complete: bool,
    /// `network_cni_plugins_dir` at ADD, so DEL of an orphan (whose
    /// container's configuration is gone) finds the same plugins.
    #[serde(default)]
    plugin_dirs: Vec<PathBuf>,
    /// Whether the first plugin itself reported ADD failing (so, by the CNI
    /// contract, it undid its own work and nothing of this network exists).
    #[serde(default)]
    first_plugin_failed: bool,
    /// Whether the list is the built-in network's, whose `bridge` step runs
    /// in process ([`crate::bridge`]); false in checkpoints written before,
    /// which keep running the plugins they were added with.
    #[serde(default)]
    in_process: bool,
}

/// A joined network, as `status` reports it (Mesos `NetworkInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The network.
    pub name: String,
    /// The interface in the container (`eth0`, …).
    pub ifname: String,
    /// Its addresses, without prefix length.
    pub ip_addresses: Vec<String>,
    /// Published ports.
    pub port_mappings: Vec<PortMapping>,
    /// The final CNI result (absent while ADD has not completed).
    pub result: Option<CniResult>,
}

/// Paths of the generated `/etc` files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcFiles {
    /// `hosts`.
    pub hosts: PathBuf,
    /// `hostname`.
    pub hostname: PathBuf,
    /// `resolv.conf` (a copy of the host's when no network gave DNS).
    pub resolv_conf: PathBuf,
}

/// The network state of one container.
#[derive(Debug, Clone)]
pub struct ContainerNet {
    root: NetRoot,
    dir: PathBuf,
    id: String,
}

impl ContainerNet {
    pub(crate) fn new(root: NetRoot, dir: PathBuf, id: &str) -> Self {
        ContainerNet {
            root,
            dir,
            id: id.to_owned(),
        }
    }

    /// `<runtime_dir>/net/containers/<id>`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The namespace handle (`CNI_NETNS`).
    pub fn netns_path(&self) -> PathBuf {
        self.dir.join("ns")
    }

    /// Whether any state exists for the container.
    pub fn exists(&self) -> bool {
        fs::symlink_metadata(&self.dir).is_ok()
    }

    /// `CNI_CONTAINERID`: the ID itself when CNI accepts it (a letter or
    /// digit, then letters, digits, `_`, `.`, `-`), else a readable
    /// replacement with a hash of the original so it stays unique.
    pub fn cni_container_id(&self) -> String {
        cni_container_id(&self.id)
    }

    /// Creates the container's state directory, mounting the state root
    /// first if no container has state (see [`NetRoot`]). Done before the
    /// container's mount namespace is cloned, so that it gets a copy of the
    /// root's mount, where its `/etc` files will be; the directory also
    /// keeps the root from being unmounted by another container's detach
    /// until this one's.
    pub fn prepare(&self) -> Result<(), NetError> {
        self.root.prepare_container(&self.dir)
    }

    /// Creates a new, empty network namespace for a launcher that will
    /// enter it with setns(2).
    pub fn create_netns(&self) -> Result<PathBuf, NetError> {
        self.root.prepare_container(&self.dir)?;
        let path = self.netns_path();
        netns::create(&path)?;
        Ok(path)
    }

    /// Binds the network namespace of `pid` (cloned with `CLONE_NEWNET`).
    pub fn bind_netns(&self, pid: u32) -> Result<PathBuf, NetError> {
        self.root.prepare_container(&self.dir)?;
        let path = self.netns_path();
        netns::bind_from_pid(pid, &path)?;
        Ok(path)
    }

    /// Brings `lo` up and joins every requested network in order
    /// (`eth0`, `eth1`, …). On failure every network already joined (and
    /// the one that failed) is detached again, and the plugin's error is
    /// returned. The namespace stays; [`ContainerNet::detach`] removes it.
    pub fn attach(
        &self,
        networks: &Networks,
        plugins: &Plugins,
        requests: &[NetworkInfo],
    ) -> Result<Vec<Attachment>, NetError> {
        validate_requests(requests, networks)?;
        let netns = self.netns_path();
        netns::loopback_up(&netns)?;
        let mut attached = Vec::with_capacity(requests.len());
        for (index, request) in requests.iter().enumerate() {
            let config = networks
                .get(&request.name)?
                .for_ports(&request.port_mappings);
            if let Some((bridge, subnet)) = config.builtin_bridge() {
                host_rules::ensure(&self.root, bridge, subnet)?;
            }
            let checkpoint = Checkpoint {
                network: request.name.clone(),
                ifname: format!("eth{index}"),
                cni_container_id: self.cni_container_id(),
                config: config.to_json(),
                port_mappings: request.port_mappings.clone(),
                result: None,
                complete: false,
                plugin_dirs: plugins.dirs.clone(),
                first_plugin_failed: false,
                in_process: config.source == ConfigSource::BuiltIn,
            };
            let outcome = self
                .save(index, &checkpoint)
                .and_then(|()| self.reserve_ports(&checkpoint.port_mappings))
                .and_then(|()| self.add(index, checkpoint, plugins, &netns));
            match outcome {
                Ok(attachment) => attached.push(attachment),
                Err(error) => {
                    if let Err(undo) = self.detach_networks(plugins, None) {
                        tracing::warn!(container = %self.id, "undoing a failed network attach: {undo}");
                    }
                    return Err(error);
                }
            }
        }
        Ok(attached)
    }

    /// Runs ADD of one network's plugins, checkpointing after each (the
    /// last one's result together with the end of ADD).
    fn add(
        &self,
        index: usize,
        mut checkpoint: Checkpoint,
        plugins: &Plugins,
        netns: &Path,
    ) -> Result<Attachment, NetError> {
        let config = config_of(&checkpoint, &self.checkpoint_path(index))?;
        let last = config.plugins.len().saturating_sub(1);
        for (i, plugin) in config.plugins.iter().enumerate() {
            let prev = checkpoint
                .result
                .as_ref()
                .filter(|_| config.chains_results());
            let stdin = plugin_input(&config, plugin, prev, &checkpoint.port_mappings);
            let output = invoke(
                CniCommand::Add,
                &config,
                plugin,
                plugins,
                &checkpoint,
                Some(netns),
                &stdin,
            );
            let output = match output {
                Ok(output) => output,
                Err(error) => {
                    if checkpoint.result.is_none() && matches!(error, NetError::Plugin { .. }) {
                        checkpoint.first_plugin_failed = true;
                        self.save(index, &checkpoint)?;
                    }
                    return Err(error);
                }
            };
            checkpoint.result = Some(output);
            // The last plugin's result is saved once, with `complete`.
            if i < last {
                self.save(index, &checkpoint)?;
            }
        }
        checkpoint.complete = true;
        self.save(index, &checkpoint)?;
        attachment_of(&checkpoint)
    }

    /// Runs CHECK for every network (CNI 0.4.0 and later, unless the list
    /// sets `disableCheck`).
    pub fn check(&self, plugins: &Plugins) -> Result<(), NetError> {
        let netns = self.netns_path();
        for (_, path) in self.checkpoints()? {
            let checkpoint = read_checkpoint(&path)?;
            let config = config_of(&checkpoint, &path)?;
            if config.disable_check
                || matches!(
                    config.cni_version.as_str(),
                    "0.1.0" | "0.2.0" | "0.3.0" | "0.3.1"
                )
            {
                continue;
            }
            for plugin in &config.plugins {
                let stdin = plugin_input(
                    &config,
                    plugin,
                    checkpoint.result.as_ref(),
                    &checkpoint.port_mappings,
                );
                invoke(
                    CniCommand::Check,
                    &config,
                    plugin,
                    plugins,
                    &checkpoint,
                    Some(&netns),
                    &stdin,
                )?;
            }
        }
        Ok(())
    }

    /// The joined networks, from the checkpoints.
    pub fn attachments(&self) -> Result<Vec<Attachment>, NetError> {
        self.checkpoints()?
            .into_iter()
            .map(|(_, path)| read_checkpoint(&path).and_then(|cp| attachment_of(&cp)))
            .collect()
    }

    /// Writes `hosts`, `hostname` and `resolv.conf` for the container
    /// (Mesos §4.6): the first IPv4 address of the attachments names the
    /// host; DNS of the networks merged, else a copy of `host_resolv_conf`.
    pub fn write_etc_files(
        &self,
        hostname: &str,
        attachments: &[Attachment],
        host_resolv_conf: &Path,
    ) -> Result<EtcFiles, NetError> {
        ensure_dir(&self.dir)?;
        let results: Vec<&CniResult> = attachments
            .iter()
            .filter_map(|a| a.result.as_ref())
            .collect();
        let address = etc_files::first_ipv4(results.iter().copied());
        let dns = etc_files::merge_dns(results.iter().map(|r| &r.dns));
        let resolv = match etc_files::resolv_conf(&dns) {
            Some(text) => text.into_bytes(),
            None => {
                let mut text = Vec::new();
                fs::File::open(host_resolv_conf)
                    .and_then(|f| {
                        std::io::Read::read_to_end(&mut std::io::Read::take(f, 1 << 20), &mut text)
                    })
                    .map_err(|e| NetError::io("read", host_resolv_conf, e))?;
                text
            }
        };
        Ok(EtcFiles {
            hosts: write_atomic(
                &self.dir,
                "hosts",
                etc_files::hosts_file(hostname, address).as_bytes(),
            )?,
            hostname: write_atomic(
                &self.dir,
                "hostname",
                etc_files::hostname_file(hostname).as_bytes(),
            )?,
            resolv_conf: write_atomic(&self.dir, "resolv.conf", &resolv)?,
        })
    }

    /// Interface counters of the container's namespace (all but `lo`).
    pub fn stats(&self) -> Result<NetStats, NetError> {
        netns_stats(&self.netns_path())
    }

    fn checkpoint_path(&self, index: usize) -> PathBuf {
        self.dir.join(format!("{index:02}.json"))
    }

    fn save(&self, index: usize, checkpoint: &Checkpoint) -> Result<(), NetError> {
        ensure_dir(&self.dir)?;
        let bytes = serde_json::to_vec(checkpoint).expect("checkpoints serialize");
        write_atomic(&self.dir, &format!("{index:02}.json"), &bytes).map(drop)
    }

    /// The checkpoint files, by index.
    fn checkpoints(&self) -> Result<Vec<(usize, PathBuf)>, NetError> {
        let entries = match fs::read_dir(&self.dir) {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            other => other.map_err(|e| NetError::io("list", &self.dir, e))?,
        };
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| NetError::io("list", &self.dir, e))?;
            let name = entry.file_name();
            let Some(index) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse::<usize>().ok())
            else {
                continue;
            };
            found.push((index, entry.path()));
        }
        found.sort();
        Ok(found)
    }

    fn port_file(&self, mapping: &PortMapping) -> PathBuf {
        self.root
            .ports_dir()
            .join(format!("{}-{}", mapping.protocol, mapping.host_port))
    }

    /// Reserves each host port (a file created exclusively, holding the
    /// owner's ID) and checks that no host socket has it. The portmap
    /// plugin itself does not reserve ports: the last DNAT rule would win.
    fn reserve_ports(&self, mappings: &[PortMapping]) -> Result<(), NetError> {
        for (i, mapping) in mappings.iter().enumerate() {
            let path = self.port_file(mapping);
            let created = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path);
            let taken = |by: String| NetError::PortInUse {
                port: mapping.host_port,
                protocol: mapping.protocol.to_string(),
                by,
            };
            let outcome = match created {
                Ok(mut file) => file
                    .write_all(self.id.as_bytes())
                    .map_err(|e| NetError::io("write", &path, e))
                    .and_then(|()| host_port_free(mapping).map_err(taken)),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    let owner = fs::read_to_string(&path).unwrap_or_default();
                    Err(taken(format!("published by container {owner}")))
                }
                Err(e) => Err(NetError::io("create", &path, e)),
            };
            if let Err(e) = outcome {
                // Ours only: the earlier ones, and this one if we made it.
                let _ = self.release_ports(&mappings[..=i]);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Removes the reservations this container holds.
    fn release_ports(&self, mappings: &[PortMapping]) -> Result<(), NetError> {
        for mapping in mappings {
            let path = self.port_file(mapping);
            match fs::read_to_string(&path) {
                Ok(owner) if owner == self.id => {
                    fs::remove_file(&path).map_err(|e| NetError::io("remove", &path, e))?;
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(NetError::io("read", &path, e)),
            }
        }
        Ok(())
    }
}

/// Whether a host socket already has the port (bind on the wildcard
/// address fails with EADDRINUSE).
fn host_port_free(mapping: &PortMapping) -> Result<(), String> {
    let busy = |e: std::io::Error| {
        if e.kind() == ErrorKind::AddrInUse {
            "in use on this host".to_owned()
        } else {
            format!("not bindable on this host: {e}")
        }
    };
    match mapping.protocol {
        Protocol::Tcp => TcpListener::bind(("0.0.0.0", mapping.host_port))
            .map(drop)
            .map_err(busy),
        Protocol::Udp => UdpSocket::bind(("0.0.0.0", mapping.host_port))
            .map(drop)
            .map_err(busy),
        Protocol::Sctp => Ok(()),
    }
}

fn read_checkpoint(path: &Path) -> Result<Checkpoint, NetError> {
    let bytes = fs::read(path).map_err(|e| NetError::io("read", path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| NetError::Checkpoint {
        path: path.to_owned(),
        problem: e.to_string(),
    })
}

fn config_of(checkpoint: &Checkpoint, path: &Path) -> Result<NetworkConfig, NetError> {
    NetworkConfig::from_json(&checkpoint.config, ConfigSource::File(path.to_owned())).map_err(
        |problem| NetError::Checkpoint {
            path: path.to_owned(),
            problem,
        },
    )
}

fn attachment_of(checkpoint: &Checkpoint) -> Result<Attachment, NetError> {
    let result = match (&checkpoint.result, checkpoint.complete) {
        (Some(value), true) => {
            Some(parse_result(value).map_err(|problem| NetError::Checkpoint {
                path: PathBuf::from(&checkpoint.network),
                problem,
            })?)
        }
        _ => None,
    };
    let ip_addresses = result
        .as_ref()
        .map(|r| {
            r.addresses_of(&checkpoint.ifname)
                .iter()
                .filter_map(|ip| ip.ip())
                .map(|ip| ip.to_string())
                .collect()
        })
        .unwrap_or_default();
    Ok(Attachment {
        name: checkpoint.network.clone(),
        ifname: checkpoint.ifname.clone(),
        ip_addresses,
        port_mappings: checkpoint.port_mappings.clone(),
        result,
    })
}

/// The configuration one plugin reads on stdin (CNI 1.0 §"Deriving
/// execution configuration"): the plugin object plus `cniVersion`,
/// `name`, `runtimeConfig` for the capabilities it declares, `prevResult`;
/// `capabilities` removed. `args.org.apache.mesos.network_info` carries the
/// Mesos `NetworkInfo` as Mesos hands it to plugins.
pub(crate) fn plugin_input(
    config: &NetworkConfig,
    plugin: &Map<String, Value>,
    prev: Option<&Value>,
    ports: &[PortMapping],
) -> Vec<u8> {
    let mut object = plugin.clone();
    let wants_ports = object
        .remove("capabilities")
        .and_then(|c| c.get("portMappings").and_then(Value::as_bool))
        .unwrap_or(false);
    object.insert("cniVersion".into(), json!(config.cni_version));
    object.insert("name".into(), json!(config.name));
    object.remove("runtimeConfig");
    if wants_ports && !ports.is_empty() {
        let list: Vec<Value> = ports.iter().map(crate::ports::to_cni).collect();
        object.insert("runtimeConfig".into(), json!({ "portMappings": list }));
    }
    let mut args = match object.remove("args") {
        Some(Value::Object(args)) => args,
        _ => Map::new(),
    };
    let mesos_ports: Vec<Value> = ports
        .iter()
        .map(|p| json!({"host_port": p.host_port, "container_port": p.container_port, "protocol": p.protocol.as_str()}))
        .collect();
    args.insert(
        "org.apache.mesos".into(),
        json!({ "network_info": { "name": config.name, "port_mappings": mesos_ports } }),
    );
    object.insert("args".into(), Value::Object(args));
    match prev {
        Some(prev) => object.insert("prevResult".into(), prev.clone()),
        None => object.remove("prevResult"),
    };
    serde_json::to_vec(&object).expect("JSON values serialize")
}

/// Runs one plugin and returns its (validated) result for ADD/CHECK.
fn invoke(
    command: CniCommand,
    config: &NetworkConfig,
    plugin: &Map<String, Value>,
    plugins: &Plugins,
    checkpoint: &Checkpoint,
    netns: Option<&Path>,
    stdin: &[u8],
) -> Result<Value, NetError> {
    let kind = plugin
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if is_in_process(checkpoint, plugin) {
        return in_process(command, config, plugin, checkpoint, netns);
    }
    let binary = plugins.find(kind).ok_or_else(|| NetError::PluginNotFound {
        plugin: kind.to_owned(),
        network: config.name.clone(),
        dirs: plugins.cni_path(),
    })?;
    let cni_path = plugins.cni_path();
    let invocation = Invocation {
        command,
        container_id: &checkpoint.cni_container_id,
        netns,
        ifname: &checkpoint.ifname,
        cni_path: &cni_path,
        timeout: plugins.timeout,
    };
    let output = plugin::run(&binary, &invocation, stdin).map_err(|e| match e {
        RunError::Spawn(source) => NetError::PluginSpawn {
            path: binary.clone(),
            source,
        },
        RunError::Timeout => NetError::PluginTimeout {
            command: command.as_str(),
            network: config.name.clone(),
            plugin: kind.to_owned(),
            timeout: plugins.timeout,
        },
    })?;
    let fail = |message: String| NetError::Plugin {
        command: command.as_str(),
        network: config.name.clone(),
        plugin: kind.to_owned(),
        message,
    };
    if !output.status.success() {
        return Err(fail(error_message(
            &output.stdout,
            &output.stderr,
            &output.status.to_string(),
        )));
    }
    if command != CniCommand::Add {
        return Ok(Value::Null);
    }
    let bad = |problem: String| NetError::BadResult {
        command: command.as_str(),
        network: config.name.clone(),
        plugin: kind.to_owned(),
        problem,
    };
    if output.stdout_truncated {
        return Err(bad(format!("larger than {} bytes", plugin::MAX_OUTPUT)));
    }
    let value: Value =
        serde_json::from_slice(&output.stdout).map_err(|e| bad(format!("not JSON: {e}")))?;
    parse_result(&value).map_err(bad)?;
    Ok(value)
}

/// Whether `plugin` is the built-in network's bridge step, run in process.
fn is_in_process(checkpoint: &Checkpoint, plugin: &Map<String, Value>) -> bool {
    checkpoint.in_process && plugin.get("type").and_then(Value::as_str) == Some("bridge")
}

fn bridge_step(
    config: &NetworkConfig,
    plugin: &Map<String, Value>,
    checkpoint: &Checkpoint,
) -> Result<BridgeStep, NetError> {
    BridgeStep::from_plugin(&config.name, plugin).map_err(|problem| NetError::Checkpoint {
        path: PathBuf::from(&checkpoint.network),
        problem,
    })
}

fn endpoint<'a>(checkpoint: &'a Checkpoint, netns: Option<&'a Path>) -> Endpoint<'a> {
    Endpoint {
        container_id: &checkpoint.cni_container_id,
        ifname: &checkpoint.ifname,
        netns,
    }
}

/// The built-in network's bridge step, in process ([`crate::bridge`]).
fn in_process(
    command: CniCommand,
    config: &NetworkConfig,
    plugin: &Map<String, Value>,
    checkpoint: &Checkpoint,
    netns: Option<&Path>,
) -> Result<Value, NetError> {
    let step = bridge_step(config, plugin, checkpoint)?;
    let at = endpoint(checkpoint, netns);
    match command {
        CniCommand::Add => step.add(&at),
        CniCommand::Del => step.del(&at).map(|()| Value::Null),
        CniCommand::Check => step
            .check(&at, checkpoint.result.as_ref())
            .map(|()| Value::Null),
    }
}

/// `CNI_CONTAINERID` for a Phobos container ID.
pub fn cni_container_id(id: &str) -> String {
    let valid = id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        return id.to_owned();
    }
    let cleaned: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("c{cleaned}-{:016x}", fnv1a(id.as_bytes()))
}

/// FNV-1a: a hash stable across versions and machines.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cni_ids_are_valid_and_distinct() {
        assert_eq!(cni_container_id("web-1.a_b"), "web-1.a_b");
        let a = cni_container_id("_x:y");
        let b = cni_container_id("_x@y");
        assert_ne!(a, b);
        assert!(a.starts_with("c_x_y-"), "{a}");
        assert_eq!(
            cni_container_id(&"a b".repeat(3)),
            cni_container_id(&"a b".repeat(3))
        );
    }

    #[test]
    fn plugin_input_follows_the_spec() {
        let config =
            NetworkConfig::default_network("br-t", "10.1.0.0/24".parse().unwrap(), Path::new("/i"));
        let ports = ["8080:80".parse().unwrap()];
        let prev = json!({"cniVersion": "1.0.0", "ips": []});
        let bridge: Value =
            serde_json::from_slice(&plugin_input(&config, &config.plugins[0], None, &ports))
                .unwrap();
        assert_eq!(bridge["name"], "phobos");
        assert_eq!(bridge["cniVersion"], "1.0.0");
        assert!(
            bridge.get("runtimeConfig").is_none(),
            "bridge does not map ports"
        );
        assert!(bridge.get("prevResult").is_none());
        assert_eq!(
            bridge["args"]["org.apache.mesos"]["network_info"]["port_mappings"][0]["host_port"],
            8080
        );
        let portmap: Value = serde_json::from_slice(&plugin_input(
            &config,
            &config.plugins[1],
            Some(&prev),
            &ports,
        ))
        .unwrap();
        assert!(portmap.get("capabilities").is_none());
        assert_eq!(
            portmap["runtimeConfig"]["portMappings"],
            json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}])
        );
        assert_eq!(portmap["prevResult"], prev);
        let empty: Value =
            serde_json::from_slice(&plugin_input(&config, &config.plugins[1], None, &[])).unwrap();
        assert!(empty.get("runtimeConfig").is_none());
    }
}
