//! CNI network configurations: the files of `network_cni_config_dir`
//! (`.conflist` lists and single-plugin `.conf`/`.json` files, the latter
//! read as Mesos reads them and turned into one-plugin lists as libcni
//! does), the built-in default network `phobos`, and the plugin search path
//! `network_cni_plugins_dir`.
//!
//! Loading is strict: a file that is not valid JSON, lacks a name, type or
//! version, names a plugin that is not installed, or reuses a network name
//! fails the load with one error naming the file and the problem.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Read;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::error::NetError;
use crate::ports::PortMapping;

/// The network that exists without any configuration.
pub const DEFAULT_NETWORK: &str = "phobos";
/// The bridge of the default network.
pub const DEFAULT_BRIDGE: &str = "phobos0";
/// The default network's subnet unless `default_network_subnet` says otherwise.
pub const DEFAULT_SUBNET: &str = "10.77.0.0/16";
/// Where Debian's `containernetworking-plugins` puts the reference plugins.
pub const DEFAULT_PLUGINS_DIR: &str = "/usr/lib/cni";
/// How long one plugin may run before it is killed.
pub const DEFAULT_PLUGIN_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest configuration file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Versions of the CNI specification this runtime drives.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"];

/// An IPv4 subnet in CIDR notation (`default_network_subnet`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    /// The network address (host bits zero).
    pub addr: Ipv4Addr,
    /// The prefix length, 8 to 30.
    pub prefix: u8,
}

impl FromStr for Subnet {
    type Err = NetError;

    fn from_str(value: &str) -> Result<Self, NetError> {
        let bad = |reason| NetError::InvalidSubnet {
            value: value.to_owned(),
            reason,
        };
        let (addr, prefix) = value
            .split_once('/')
            .ok_or_else(|| bad("expected an IPv4 CIDR such as 10.77.0.0/16"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| bad("expected an IPv4 CIDR such as 10.77.0.0/16"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| bad("the prefix length must be a number"))?;
        if !(8..=30).contains(&prefix) {
            return Err(bad("the prefix length must be from 8 to 30"));
        }
        let mask = u32::MAX << (32 - prefix);
        if u32::from(addr) & !mask != 0 {
            return Err(bad("host bits are set; give the network address"));
        }
        Ok(Subnet { addr, prefix })
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The settings networking needs (Mesos flag names where Mesos has them).
#[derive(Debug, Clone)]
pub struct NetSettings {
    /// `network_cni_config_dir`: operator configurations (none: only the
    /// built-in default network).
    pub config_dir: Option<PathBuf>,
    /// `network_cni_plugins_dir`, split at `:`.
    pub plugin_dirs: Vec<PathBuf>,
    /// `default_network_subnet`.
    pub default_subnet: Subnet,
    /// `default_network_bridge`: the bridge of the built-in default
    /// network (`phobos0`).
    pub default_bridge: String,
    /// Per-plugin time limit.
    pub plugin_timeout: Duration,
}

impl Default for NetSettings {
    fn default() -> Self {
        NetSettings {
            config_dir: None,
            plugin_dirs: vec![PathBuf::from(DEFAULT_PLUGINS_DIR)],
            default_subnet: DEFAULT_SUBNET.parse().expect("valid built-in subnet"),
            default_bridge: DEFAULT_BRIDGE.to_owned(),
            plugin_timeout: DEFAULT_PLUGIN_TIMEOUT,
        }
    }
}

impl NetSettings {
    /// Splits a `network_cni_plugins_dir` value (`:`-separated).
    pub fn split_plugin_dirs(value: &str) -> Vec<PathBuf> {
        value
            .split(':')
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect()
    }

    /// The plugins half of the settings.
    pub fn plugins(&self) -> Plugins {
        Plugins {
            dirs: self.plugin_dirs.clone(),
            timeout: self.plugin_timeout,
        }
    }
}

/// Where plugins are looked up and how long they may run.
#[derive(Debug, Clone)]
pub struct Plugins {
    /// Search path, in order (exported as `CNI_PATH`).
    pub dirs: Vec<PathBuf>,
    /// Per-plugin time limit.
    pub timeout: Duration,
}

impl Plugins {
    /// The first executable regular file named `plugin` in the search path.
    pub fn find(&self, plugin: &str) -> Option<PathBuf> {
        if !is_plain_name(plugin) {
            return None;
        }
        self.dirs.iter().map(|d| d.join(plugin)).find(|p| {
            fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    }

    /// `CNI_PATH`.
    pub fn cni_path(&self) -> String {
        self.dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// Where a configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A file of `network_cni_config_dir`.
    File(PathBuf),
    /// The built-in default network.
    BuiltIn,
}

/// One network: a list of plugins run in order (CNI 1.0 network
/// configuration list).
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfig {
    /// The network name.
    pub name: String,
    /// `cniVersion`.
    pub cni_version: String,
    /// `disableCheck`.
    pub disable_check: bool,
    /// The plugin objects, as written.
    pub plugins: Vec<Map<String, Value>>,
    /// Where it came from.
    pub source: ConfigSource,
}

impl NetworkConfig {
    /// The list as JSON (what is checkpointed and reused for DEL).
    pub fn to_json(&self) -> Value {
        json!({
            "cniVersion": self.cni_version,
            "name": self.name,
            "disableCheck": self.disable_check,
            "plugins": self.plugins,
        })
    }

    /// Parses a list written by [`NetworkConfig::to_json`] or a file.
    pub fn from_json(value: &Value, source: ConfigSource) -> Result<Self, String> {
        parse_value(value, source)
    }

    /// Whether some plugin takes `runtimeConfig.portMappings`.
    pub fn supports_port_mappings(&self) -> bool {
        self.plugins.iter().any(|p| {
            p.get("capabilities")
                .and_then(|c| c.get("portMappings"))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        })
    }

    /// The plugin types, in order.
    pub fn plugin_types(&self) -> impl Iterator<Item = &str> {
        self.plugins
            .iter()
            .filter_map(|p| p.get("type").and_then(Value::as_str))
    }

    /// The list one container runs: for the built-in network without
    /// published ports, without `portmap` (whose DEL alone runs iptables
    /// several times); any other list as written.
    pub fn for_ports(&self, ports: &[PortMapping]) -> NetworkConfig {
        let mut config = self.clone();
        if config.source == ConfigSource::BuiltIn && ports.is_empty() {
            config
                .plugins
                .retain(|p| p.get("type").and_then(Value::as_str) != Some("portmap"));
        }
        config
    }

    /// For the built-in network: its bridge and subnet, whose host-wide
    /// rules must be in place before a container joins.
    pub(crate) fn builtin_bridge(&self) -> Option<(&str, &str)> {
        if self.source != ConfigSource::BuiltIn {
            return None;
        }
        let bridge = self.plugins.first()?;
        let name = bridge.get("bridge")?.as_str()?;
        let subnet = bridge
            .get("ipam")?
            .get("ranges")?
            .get(0)?
            .get(0)?
            .get("subnet")?
            .as_str()?;
        Some((name, subnet))
    }

    /// Whether prevResult chaining applies (lists are 0.3.0 and later).
    pub fn chains_results(&self) -> bool {
        !matches!(self.cni_version.as_str(), "0.1.0" | "0.2.0")
    }

    /// The built-in default network `phobos`: a bridge with host-local
    /// addresses and port mapping (as podman's default network). Its
    /// masquerade and forward rules are the network's, installed once
    /// (`host_rules`), not per container by `ipMasq` and the `firewall`
    /// plugin; `portmap` runs only for a container that publishes ports
    /// ([`NetworkConfig::for_ports`]).
    pub fn default_network(bridge: &str, subnet: Subnet, ipam_dir: &Path) -> Self {
        let list = json!({
            "cniVersion": "1.0.0",
            "name": DEFAULT_NETWORK,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": bridge,
                    "isGateway": true,
                    "ipMasq": false,
                    "hairpinMode": true,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{ "subnet": subnet.to_string() }]],
                        "routes": [{ "dst": "0.0.0.0/0" }],
                        "dataDir": ipam_dir.display().to_string(),
                    }
                },
                { "type": "portmap", "capabilities": { "portMappings": true } }
            ]
        });
        parse_value(&list, ConfigSource::BuiltIn).expect("the built-in network is valid")
    }
}

/// Every network that can be joined: the built-in `phobos` (unless a file
/// of that name overrides it) and the files of the configuration directory.
#[derive(Debug, Clone)]
pub struct Networks {
    by_name: BTreeMap<String, NetworkConfig>,
}

impl Networks {
    /// Reads the configuration directory and checks every plugin exists.
    /// `ipam_dir` is where the default network keeps address reservations.
    pub fn load(settings: &NetSettings, ipam_dir: &Path) -> Result<Self, NetError> {
        let plugins = settings.plugins();
        let mut by_name: BTreeMap<String, NetworkConfig> = BTreeMap::new();
        if let Some(dir) = &settings.config_dir {
            for path in config_files(dir)? {
                let config = load_file(&path)?;
                check_plugins(&config, &plugins, &path)?;
                if let Some(prev) = by_name.get(&config.name) {
                    let ConfigSource::File(first) = &prev.source else {
                        unreachable!("only files are loaded here")
                    };
                    return Err(NetError::DuplicateNetwork {
                        name: config.name.clone(),
                        first: first.clone(),
                        second: path,
                    });
                }
                by_name.insert(config.name.clone(), config);
            }
        }
        if !by_name.contains_key(DEFAULT_NETWORK) {
            // Its plugins are looked up at ADD, so a host without them can
            // still use its own networks.
            let config = NetworkConfig::default_network(
                &settings.default_bridge,
                settings.default_subnet,
                ipam_dir,
            );
            by_name.insert(DEFAULT_NETWORK.to_owned(), config);
        }
        Ok(Networks { by_name })
    }

    /// The network called `name`, or an error listing the known ones.
    pub fn get(&self, name: &str) -> Result<&NetworkConfig, NetError> {
        self.by_name
            .get(name)
            .ok_or_else(|| NetError::UnknownNetwork {
                name: name.to_owned(),
                known: self.names().map(str::to_owned).collect(),
            })
    }

    /// Every network name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}

/// The configuration files of `dir`, sorted by name (libcni's order):
/// regular files ending in `.conflist`, `.conf` or `.json`.
fn config_files(dir: &Path) -> Result<Vec<PathBuf>, NetError> {
    let entries = fs::read_dir(dir).map_err(|source| NetError::ConfigDir {
        dir: dir.to_owned(),
        source,
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| NetError::ConfigDir {
            dir: dir.to_owned(),
            source,
        })?;
        let path = entry.path();
        let wanted = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("conflist" | "conf" | "json")
        );
        if wanted && fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads and validates one file.
pub fn load_file(path: &Path) -> Result<NetworkConfig, NetError> {
    let invalid = |problem: String| NetError::ConfigInvalid {
        path: path.to_owned(),
        problem,
    };
    let file = fs::File::open(path).map_err(|source| NetError::ConfigRead {
        path: path.to_owned(),
        source,
    })?;
    let mut text = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|source| NetError::ConfigRead {
            path: path.to_owned(),
            source,
        })?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(invalid(format!("larger than {MAX_CONFIG_BYTES} bytes")));
    }
    let value: Value = serde_json::from_slice(&text).map_err(|e| {
        invalid(format!(
            "not valid JSON at line {} column {}: {}",
            e.line(),
            e.column(),
            strip_position(&e.to_string())
        ))
    })?;
    parse_value(&value, ConfigSource::File(path.to_owned())).map_err(invalid)
}

fn strip_position(message: &str) -> &str {
    message
        .rfind(" at line ")
        .map_or(message, |i| &message[..i])
}

fn parse_value(value: &Value, source: ConfigSource) -> Result<NetworkConfig, String> {
    let Some(object) = value.as_object() else {
        return Err("expected a JSON object".to_owned());
    };
    let name = string_field(object, "name")?.ok_or("missing \"name\"")?;
    validate_network_name(name)?;
    let cni_version = match string_field(object, "cniVersion")? {
        Some(v) => v,
        None if object.contains_key("plugins") => return Err("missing \"cniVersion\"".into()),
        None => "0.1.0",
    };
    if !SUPPORTED_VERSIONS.contains(&cni_version) {
        return Err(format!(
            "cniVersion \"{cni_version}\" is not supported (supported: {})",
            SUPPORTED_VERSIONS.join(", ")
        ));
    }
    let disable_check = match object.get("disableCheck") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("\"disableCheck\" must be true or false".into()),
    };
    let plugins = match object.get("plugins") {
        Some(Value::Array(list)) => {
            if list.is_empty() {
                return Err("\"plugins\" is empty".into());
            }
            let mut plugins = Vec::with_capacity(list.len());
            for (i, plugin) in list.iter().enumerate() {
                let Some(plugin) = plugin.as_object() else {
                    return Err(format!("plugins[{i}] is not an object"));
                };
                check_plugin_object(plugin).map_err(|e| format!("plugins[{i}]: {e}"))?;
                plugins.push(plugin.clone());
            }
            plugins
        }
        Some(_) => return Err("\"plugins\" must be a list".into()),
        None => {
            // A single-plugin configuration (CNI before 0.3, and Mesos).
            check_plugin_object(object)?;
            let mut plugin = object.clone();
            plugin.remove("name");
            plugin.remove("cniVersion");
            vec![plugin]
        }
    };
    Ok(NetworkConfig {
        name: name.to_owned(),
        cni_version: cni_version.to_owned(),
        disable_check,
        plugins,
        source,
    })
}

fn check_plugin_object(plugin: &Map<String, Value>) -> Result<(), String> {
    let kind = string_field(plugin, "type")?.ok_or("missing \"type\"")?;
    if !is_plain_name(kind) {
        return Err(format!("\"type\" \"{kind}\" is not a plugin name"));
    }
    if let Some(ipam) = plugin.get("ipam") {
        let Some(ipam) = ipam.as_object() else {
            return Err("\"ipam\" must be an object".into());
        };
        if let Some(kind) = string_field(ipam, "type")?
            && !is_plain_name(kind)
        {
            return Err(format!("\"ipam.type\" \"{kind}\" is not a plugin name"));
        }
    }
    if let Some(caps) = plugin.get("capabilities")
        && !caps.is_object()
    {
        return Err("\"capabilities\" must be an object".into());
    }
    Ok(())
}

fn check_plugins(config: &NetworkConfig, plugins: &Plugins, path: &Path) -> Result<(), NetError> {
    match missing_plugin(config, plugins) {
        None => Ok(()),
        Some(kind) => Err(NetError::ConfigInvalid {
            path: path.to_owned(),
            problem: format!("plugin \"{kind}\" not found in {}", plugins.cni_path()),
        }),
    }
}

/// The first plugin (or IPAM plugin) type of `config` not installed.
fn missing_plugin(config: &NetworkConfig, plugins: &Plugins) -> Option<String> {
    config
        .plugins
        .iter()
        .flat_map(|plugin| {
            [
                plugin.get("type").and_then(Value::as_str),
                plugin
                    .get("ipam")
                    .and_then(|i| i.get("type"))
                    .and_then(Value::as_str),
            ]
        })
        .flatten()
        .find(|kind| plugins.find(kind).is_none())
        .map(str::to_owned)
}

fn string_field<'a>(object: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, String> {
    match object.get(key) {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s)),
        Some(Value::String(_)) => Err(format!("\"{key}\" is empty")),
        Some(_) => Err(format!("\"{key}\" must be a string")),
    }
}

/// The kernel's interface name rule (at most 15 bytes, `IFNAMSIZ` - 1),
/// narrowed to letters, digits, `_`, `.` and `-` so the name is also safe
/// in iptables arguments and file names (`default_network_bridge`).
pub fn validate_bridge_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 15 {
        return Err("expected an interface name of 1 to 15 bytes".to_owned());
    }
    if name == "." || name == ".." {
        return Err("'.' and '..' are not interface names".to_owned());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err("an interface name has only letters, digits, '_', '.' and '-'".to_owned());
    }
    Ok(())
}

/// CNI's network name rule (`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`), and not one
/// of the modes `host` and `none`.
pub fn validate_network_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return Err(format!(
            "network name \"{name}\" must start with a letter or digit and contain only letters, digits, '_', '.' and '-'"
        ));
    }
    if name == "host" || name == "none" {
        return Err(format!(
            "network name \"{name}\" is reserved for --network {name}"
        ));
    }
    Ok(())
}

fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, text).unwrap();
        path
    }

    fn settings(dir: &Path, plugins: &Path) -> NetSettings {
        NetSettings {
            config_dir: Some(dir.to_owned()),
            plugin_dirs: vec![plugins.to_owned()],
            ..NetSettings::default()
        }
    }

    fn fake_plugins(dir: &Path, names: &[&str]) {
        for name in names {
            let p = dir.join(name);
            fs::write(&p, "#!/bin/sh\n").unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    #[test]
    fn subnets_parse_and_reject_nonsense() {
        let s: Subnet = "10.77.0.0/16".parse().unwrap();
        assert_eq!(s.to_string(), "10.77.0.0/16");
        for bad in [
            "10.77.0.1/16",
            "10.77.0.0",
            "x/16",
            "10.0.0.0/31",
            "10.0.0.0/x",
            "::1/64",
        ] {
            let err = bad.parse::<Subnet>().unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn loads_lists_and_single_plugin_files_and_the_default() {
        let conf = tempfile::tempdir().unwrap();
        let bin = tempfile::tempdir().unwrap();
        fake_plugins(bin.path(), &["bridge", "host-local", "portmap", "firewall"]);
        write(
            conf.path(),
            "10-a.conflist",
            r#"{"cniVersion":"1.0.0","name":"a","plugins":[{"type":"bridge","ipam":{"type":"host-local"}},{"type":"portmap","capabilities":{"portMappings":true}}]}"#,
        );
        write(
            conf.path(),
            "20-b.conf",
            r#"{"cniVersion":"0.2.0","name":"b","type":"bridge","ipam":{"type":"host-local"}}"#,
        );
        write(conf.path(), "README", "not a config");
        let nets = Networks::load(&settings(conf.path(), bin.path()), Path::new("/x")).unwrap();
        assert_eq!(nets.names().collect::<Vec<_>>(), ["a", "b", "phobos"]);
        let a = nets.get("a").unwrap();
        assert!(a.supports_port_mappings());
        assert!(a.chains_results());
        let b = nets.get("b").unwrap();
        assert_eq!(b.plugins.len(), 1);
        assert!(!b.plugins[0].contains_key("name"));
        assert!(!b.chains_results());
        let d = nets.get(DEFAULT_NETWORK).unwrap();
        assert_eq!(d.source, ConfigSource::BuiltIn);
        assert_eq!(d.plugins[0]["bridge"], "phobos0");
        assert_eq!(d.plugins[0]["ipam"]["dataDir"], "/x");
        let err = nets.get("c").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown network 'c' (networks found: a, b, phobos)"
        );
        assert!(err.is_usage());
    }

    #[test]
    fn a_file_named_phobos_overrides_the_default() {
        let conf = tempfile::tempdir().unwrap();
        let bin = tempfile::tempdir().unwrap();
        fake_plugins(bin.path(), &["ptp"]);
        write(
            conf.path(),
            "p.conflist",
            r#"{"cniVersion":"1.0.0","name":"phobos","plugins":[{"type":"ptp"}]}"#,
        );
        let nets = Networks::load(&settings(conf.path(), bin.path()), Path::new("/x")).unwrap();
        assert_eq!(
            nets.get("phobos")
                .unwrap()
                .plugin_types()
                .collect::<Vec<_>>(),
            ["ptp"]
        );
    }

    #[test]
    fn malformed_files_are_named_with_their_problem() {
        let bin = tempfile::tempdir().unwrap();
        fake_plugins(bin.path(), &["bridge"]);
        let cases = [
            ("{", "not valid JSON at line 1 column 1"),
            ("[]", "expected a JSON object"),
            (
                r#"{"cniVersion":"1.0.0","plugins":[{"type":"bridge"}]}"#,
                "missing \"name\"",
            ),
            (
                r#"{"name":"x","plugins":[{"type":"bridge"}]}"#,
                "missing \"cniVersion\"",
            ),
            (
                r#"{"cniVersion":"9.9.9","name":"x","plugins":[{"type":"bridge"}]}"#,
                "cniVersion \"9.9.9\" is not supported",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"x","plugins":[]}"#,
                "\"plugins\" is empty",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"x","plugins":[{"kind":"bridge"}]}"#,
                "plugins[0]: missing \"type\"",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"../bin/sh"}]}"#,
                "is not a plugin name",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"macvlan"}]}"#,
                "plugin \"macvlan\" not found in",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"bridge","ipam":{"type":"dhcp"}}]}"#,
                "plugin \"dhcp\" not found in",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"a b","plugins":[{"type":"bridge"}]}"#,
                "network name \"a b\"",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"host","plugins":[{"type":"bridge"}]}"#,
                "reserved",
            ),
            (r#"{"name":"x"}"#, "missing \"type\""),
        ];
        for (text, want) in cases {
            let conf = tempfile::tempdir().unwrap();
            let path = write(conf.path(), "bad.conflist", text);
            let err =
                Networks::load(&settings(conf.path(), bin.path()), Path::new("/x")).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains(want), "{text}: {msg}");
            assert!(!msg.contains('\n'), "{msg}");
            assert!(err.is_usage());
        }
    }

    #[test]
    fn duplicate_names_name_both_files() {
        let conf = tempfile::tempdir().unwrap();
        let bin = tempfile::tempdir().unwrap();
        fake_plugins(bin.path(), &["bridge"]);
        let one = r#"{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"bridge"}]}"#;
        let a = write(conf.path(), "a.conflist", one);
        let b = write(conf.path(), "b.conf", r#"{"name":"x","type":"bridge"}"#);
        let err = Networks::load(&settings(conf.path(), bin.path()), Path::new("/x")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "CNI network 'x' is defined twice: in {} and in {}",
                a.display(),
                b.display()
            )
        );
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let err = Networks::load(
            &settings(
                Path::new("/nonexistent/phobos-cni"),
                Path::new("/nonexistent"),
            ),
            Path::new("/x"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/phobos-cni"), "{err}");
    }

    #[test]
    fn round_trips_through_json() {
        let d =
            NetworkConfig::default_network("br-x", "10.1.0.0/24".parse().unwrap(), Path::new("/i"));
        let back = NetworkConfig::from_json(&d.to_json(), ConfigSource::BuiltIn).unwrap();
        assert_eq!(back, d);
    }
}
