//! Choosing a container's network ([`ContainerNetwork`]): the host's
//! (Mesos's default), an own namespace with only `lo` (`none`), or CNI
//! networks joined in order as `eth0`, `eth1`, … with their published
//! ports; and checking such a choice against the configured networks.

use std::collections::HashSet;

use phobos_core::network::{ContainerNetwork, NetworkInfo};

use crate::config::Networks;
use crate::error::NetError;
use crate::ports::PortMapping;

/// The network of a container from `--network` values (repeatable) and
/// `-p` values: `host` (or nothing) and `none` stand alone; published ports
/// go to the first listed network that maps ports. Every network must exist.
pub fn from_cli(
    names: &[String],
    ports: &[PortMapping],
    networks: &Networks,
) -> Result<ContainerNetwork, NetError> {
    let mode = match names {
        [] => ContainerNetwork::Host,
        [one] if one == "host" => ContainerNetwork::Host,
        [one] if one == "none" => ContainerNetwork::None,
        _ => {
            if let Some(special) = names.iter().find(|n| *n == "host" || *n == "none") {
                return Err(NetError::ExclusiveNetwork {
                    name: special.clone(),
                });
            }
            let mut requests = Vec::with_capacity(names.len());
            for name in names {
                networks.get(name)?;
                requests.push(NetworkInfo {
                    name: name.clone(),
                    port_mappings: Vec::new(),
                });
            }
            if !ports.is_empty() {
                let target = requests
                    .iter_mut()
                    .find(|r| {
                        networks
                            .get(&r.name)
                            .is_ok_and(|c| c.supports_port_mappings())
                    })
                    .ok_or_else(|| NetError::PortsNeedNetwork {
                        network: names.join(","),
                    })?;
                target.port_mappings = ports.to_vec();
            }
            ContainerNetwork::Cni { networks: requests }
        }
    };
    if !ports.is_empty() && !matches!(mode, ContainerNetwork::Cni { .. }) {
        return Err(NetError::PortsNeedNetwork {
            network: names.first().cloned().unwrap_or_else(|| "host".into()),
        });
    }
    validate_requests(mode.networks(), networks)?;
    Ok(mode)
}

/// Checks a list of requests (from the CLI or from ECP `NetworkInfo`s):
/// each network exists and is joined once, ports only where a plugin maps
/// them, no host port published twice.
pub fn validate_requests(requests: &[NetworkInfo], networks: &Networks) -> Result<(), NetError> {
    let mut seen = HashSet::new();
    let mut ports = HashSet::new();
    for request in requests {
        let config = networks.get(&request.name)?;
        if !seen.insert(request.name.as_str()) {
            return Err(NetError::JoinedTwice {
                name: request.name.clone(),
            });
        }
        if !request.port_mappings.is_empty() && !config.supports_port_mappings() {
            return Err(NetError::PortsNeedNetwork {
                network: request.name.clone(),
            });
        }
        for mapping in &request.port_mappings {
            if !ports.insert((mapping.host_port, mapping.protocol)) {
                return Err(NetError::InvalidPortSpec {
                    spec: mapping.to_string(),
                    reason: "this host port is published twice",
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NetSettings;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    fn networks() -> (tempfile::TempDir, tempfile::TempDir, Networks) {
        let conf = tempfile::tempdir().unwrap();
        let bin = tempfile::tempdir().unwrap();
        for name in ["bridge", "host-local", "portmap", "firewall"] {
            let p = bin.path().join(name);
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(
            conf.path().join("plain.conflist"),
            r#"{"cniVersion":"1.0.0","name":"plain","plugins":[{"type":"bridge"}]}"#,
        )
        .unwrap();
        let settings = NetSettings {
            config_dir: Some(conf.path().to_owned()),
            plugin_dirs: vec![bin.path().to_owned()],
            ..NetSettings::default()
        };
        let n = Networks::load(&settings, Path::new("/x")).unwrap();
        (conf, bin, n)
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn modes_from_the_command_line() {
        let (_c, _b, n) = networks();
        let p: PortMapping = "8080:80".parse().unwrap();
        assert_eq!(from_cli(&[], &[], &n).unwrap(), ContainerNetwork::Host);
        assert_eq!(
            from_cli(&names(&["host"]), &[], &n).unwrap(),
            ContainerNetwork::Host
        );
        assert_eq!(
            from_cli(&names(&["none"]), &[], &n).unwrap(),
            ContainerNetwork::None
        );
        let ContainerNetwork::Cni { networks: r } =
            from_cli(&names(&["plain", "phobos"]), &[p], &n).unwrap()
        else {
            panic!("cni expected")
        };
        assert_eq!(r[0].port_mappings, []);
        assert_eq!(r[1].port_mappings, [p]);
    }

    #[test]
    fn bad_combinations_are_usage_errors() {
        let (_c, _b, n) = networks();
        let p: PortMapping = "8080:80".parse().unwrap();
        let q: PortMapping = "8080:81".parse().unwrap();
        for (list, ports, want) in [
            (
                names(&["host", "phobos"]),
                vec![],
                "network 'host' cannot be combined",
            ),
            (
                names(&["phobos", "none"]),
                vec![],
                "network 'none' cannot be combined",
            ),
            (
                names(&["nope"]),
                vec![],
                "unknown network 'nope' (networks found: phobos, plain)",
            ),
            (names(&["phobos", "phobos"]), vec![], "requested twice"),
            (
                names(&["plain"]),
                vec![p],
                "--publish needs a network with port mapping",
            ),
            (names(&[]), vec![p], "not 'host'"),
            (names(&["none"]), vec![p], "not 'none'"),
            (names(&["phobos"]), vec![p, q], "published twice"),
        ] {
            let err = from_cli(&list, &ports, &n).unwrap_err();
            assert!(err.to_string().contains(want), "{list:?}: {err}");
            assert!(err.is_usage(), "{err}");
        }
    }
}
