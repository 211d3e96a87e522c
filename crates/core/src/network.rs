//! A container's network as asked for (Mesos `ContainerInfo.network_infos`,
//! plus Phobos's `none`): the networks to join and the ports to publish
//! (`-p HOST:CONTAINER[/tcp|/udp|/sctp]`, Mesos `NetworkInfo.PortMapping`).
//! `phobos-net` turns this into CNI operations.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP (the default).
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }

    /// Parses a name, any case (Mesos's `PortMapping.protocol` is free text).
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            "sctp" => Some(Protocol::Sctp),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    /// Port on the host.
    pub host_port: u16,
    /// Port in the container.
    pub container_port: u16,
    /// Protocol.
    pub protocol: Protocol,
}

/// A `-p` specification that does not parse; names the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --publish '{spec}': {reason}")]
pub struct InvalidPortMapping {
    /// The specification as given.
    pub spec: String,
    /// What was expected.
    pub reason: &'static str,
}

impl FromStr for PortMapping {
    type Err = InvalidPortMapping;

    /// `HOST:CONTAINER[/PROTO]`, ports 1 to 65535.
    fn from_str(spec: &str) -> Result<Self, InvalidPortMapping> {
        let bad = |reason| InvalidPortMapping {
            spec: spec.to_owned(),
            reason,
        };
        let (ports, protocol) = match spec.rsplit_once('/') {
            Some((ports, proto)) => (
                ports,
                Protocol::parse(proto)
                    .ok_or_else(|| bad("the protocol must be tcp, udp or sctp"))?,
            ),
            None => (spec, Protocol::Tcp),
        };
        let (host, container) = ports
            .split_once(':')
            .ok_or_else(|| bad("expected HOST:CONTAINER[/tcp|/udp|/sctp]"))?;
        let number = |p: &str| {
            (!p.starts_with('+'))
                .then(|| p.parse::<u16>().ok())
                .flatten()
                .filter(|p| *p > 0)
        };
        let (Some(host_port), Some(container_port)) = (number(host), number(container)) else {
            return Err(bad("ports must be numbers from 1 to 65535"));
        };
        Ok(PortMapping {
            host_port,
            container_port,
            protocol,
        })
    }
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}/{}",
            self.host_port, self.container_port, self.protocol
        )
    }
}

/// One network to join (Mesos `NetworkInfo`: its name and port mappings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInfo {
    /// The CNI network name.
    pub name: String,
    /// Ports published through this network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
}

/// A container's network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum ContainerNetwork {
    /// The host's network namespace (Mesos's default).
    #[default]
    Host,
    /// An own network namespace with only `lo`.
    None,
    /// An own network namespace joined to these networks, in order
    /// (`eth0`, `eth1`, …).
    Cni {
        /// The networks.
        networks: Vec<NetworkInfo>,
    },
}

impl ContainerNetwork {
    /// Whether the container gets its own network (and UTS) namespace.
    pub fn own_namespace(&self) -> bool {
        !matches!(self, ContainerNetwork::Host)
    }

    /// Whether this is the host network (for `skip_serializing_if`).
    pub fn is_host(&self) -> bool {
        matches!(self, ContainerNetwork::Host)
    }

    /// The networks joined (empty for `host` and `none`).
    pub fn networks(&self) -> &[NetworkInfo] {
        match self {
            ContainerNetwork::Cni { networks } => networks,
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        let p: PortMapping = "8080:80".parse().unwrap();
        assert_eq!(
            p,
            PortMapping {
                host_port: 8080,
                container_port: 80,
                protocol: Protocol::Tcp
            }
        );
        assert_eq!(
            "53:5353/udp".parse::<PortMapping>().unwrap().protocol,
            Protocol::Udp
        );
        assert_eq!(
            "1:2/SCTP".parse::<PortMapping>().unwrap().to_string(),
            "1:2/sctp"
        );
    }

    #[test]
    fn rejects_bad_specs_naming_them() {
        for bad in [
            "",
            "80",
            "0:80",
            "80:0",
            "70000:80",
            "a:80",
            "80:80/icmp",
            ":80",
            "80:",
            "+1:2",
            "1:2:3",
            "-1:2",
            "1:2/",
            "80/tcp",
        ] {
            let err = bad.parse::<PortMapping>().unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.starts_with(&format!("invalid --publish '{bad}': ")),
                "{msg}"
            );
        }
    }

    #[test]
    fn networks_round_trip_through_json() {
        let n = ContainerNetwork::Cni {
            networks: vec![NetworkInfo {
                name: "phobos".into(),
                port_mappings: vec!["80:8080/udp".parse().unwrap()],
            }],
        };
        let text = serde_json::to_string(&n).unwrap();
        assert_eq!(
            text,
            r#"{"mode":"cni","networks":[{"name":"phobos","port_mappings":[{"host_port":80,"container_port":8080,"protocol":"udp"}]}]}"#
        );
        assert_eq!(serde_json::from_str::<ContainerNetwork>(&text).unwrap(), n);
        assert!(ContainerNetwork::None.own_namespace());
        assert!(!ContainerNetwork::Host.own_namespace());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,40}") {
            let _ = s.parse::<PortMapping>();
        }

        #[test]
        fn round_trips(h in 1u16.., c in 1u16.., proto in 0..3usize) {
            let protocol = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp][proto];
            let p = PortMapping { host_port: h, container_port: c, protocol };
            proptest::prop_assert_eq!(p.to_string().parse::<PortMapping>().unwrap(), p);
        }
    }
}
