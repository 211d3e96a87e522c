//! CNI results: the success result of ADD (1.0 / 0.4 / 0.3 form with
//! `interfaces`, `ips`, `routes`, `dns`, and the older 0.1 / 0.2 form with
//! `ip4` / `ip6`, which Mesos reads), normalised into one type, and the
//! error result (`code`, `msg`, `details`).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An interface a plugin created or configured.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// Its name (`eth0`, or the host side of a veth, or the bridge).
    pub name: String,
    /// Its hardware address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    /// The netns path when the interface is inside the container.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sandbox: String,
}

/// An address assigned to an interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// `address/prefix`.
    pub address: String,
    /// The gateway, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

impl IpConfig {
    /// The address without its prefix length.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.split('/').next()?.parse().ok()
    }
}

/// A route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Destination, CIDR.
    pub dst: String,
    /// Next hop, if not the default gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<String>,
}

/// DNS settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    /// Name servers, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    /// Local domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Search domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// resolv.conf options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == Dns::default()
    }
}

/// A success result, in one shape whatever the version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniResult {
    /// `cniVersion` of the result.
    #[serde(rename = "cniVersion", default)]
    pub cni_version: String,
    /// Interfaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    /// Addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpConfig>,
    /// Routes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// DNS.
    #[serde(default, skip_serializing_if = "Dns::is_empty")]
    pub dns: Dns,
}

impl CniResult {
    /// The addresses of the container interface `ifname` (or, when the
    /// result names no interfaces, every address).
    pub fn addresses_of(&self, ifname: &str) -> Vec<&IpConfig> {
        let index = self
            .interfaces
            .iter()
            .position(|i| i.name == ifname && !i.sandbox.is_empty());
        self.ips
            .iter()
            .filter(|ip| match (index, ip.interface) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            })
            .collect()
    }
}

/// Parses a plugin's success output. Returns the problem on failure.
pub fn parse_result(value: &Value) -> Result<CniResult, String> {
    let Some(object) = value.as_object() else {
        return Err("expected a JSON object".into());
    };
    let mut result = if object.contains_key("ip4") || object.contains_key("ip6") {
        parse_legacy(value)?
    } else {
        serde_json::from_value::<CniResult>(value.clone()).map_err(|e| e.to_string())?
    };
    if result.cni_version.is_empty() {
        result.cni_version = "0.1.0".into();
    }
    for ip in &result.ips {
        check_cidr(&ip.address).map_err(|e| format!("ips: {e}"))?;
        if let Some(gw) = &ip.gateway {
            gw.parse::<IpAddr>()
                .map_err(|_| format!("ips: gateway \"{gw}\" is not an IP address"))?;
        }
        if let Some(i) = ip.interface
            && i >= result.interfaces.len()
        {
            return Err(format!("ips: interface index {i} is out of range"));
        }
    }
    for route in &result.routes {
        check_cidr(&route.dst).map_err(|e| format!("routes: {e}"))?;
    }
    Ok(result)
}

#[derive(Deserialize)]
struct LegacyIp {
    ip: String,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default)]
    routes: Vec<Route>,
}

#[derive(Deserialize)]
struct Legacy {
    #[serde(rename = "cniVersion", default)]
    cni_version: String,
    #[serde(default)]
    ip4: Option<LegacyIp>,
    #[serde(default)]
    ip6: Option<LegacyIp>,
    #[serde(default)]
    dns: Dns,
}

fn parse_legacy(value: &Value) -> Result<CniResult, String> {
    let legacy: Legacy = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    let mut result = CniResult {
        cni_version: legacy.cni_version,
        dns: legacy.dns,
        ..CniResult::default()
    };
    for ip in [legacy.ip4, legacy.ip6].into_iter().flatten() {
        result.ips.push(IpConfig {
            address: ip.ip,
            gateway: ip.gateway,
            interface: None,
        });
        result.routes.extend(ip.routes);
    }
    Ok(result)
}

fn check_cidr(text: &str) -> Result<(), String> {
    let bad = || format!("\"{text}\" is not an address/prefix");
    let (addr, prefix) = text.split_once('/').ok_or_else(bad)?;
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(bad());
    }
    Ok(())
}

/// A plugin's error output turned into one line: `msg: details (code N)`,
/// else its trimmed stderr or stdout, else its exit status.
pub fn error_message(stdout: &[u8], stderr: &[u8], status: &str) -> String {
    if let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(stdout)
        && let Some(msg) = object.get("msg").and_then(Value::as_str)
    {
        let mut out = msg.to_owned();
        if let Some(details) = object.get("details").and_then(Value::as_str)
            && !details.is_empty()
        {
            out.push_str(": ");
            out.push_str(details);
        }
        if let Some(code) = object.get("code").and_then(Value::as_u64) {
            out.push_str(&format!(" (code {code})"));
        }
        return one_line(&out);
    }
    for text in [stderr, stdout] {
        let text = String::from_utf8_lossy(text);
        let text = text.trim();
        if !text.is_empty() {
            return one_line(text);
        }
    }
    status.to_owned()
}

/// Newlines and control characters of a plugin's text as spaces, at most
/// 2 KiB of it.
fn one_line(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(2048)
        .collect();
    if text.chars().count() > 2048 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_a_1_0_result() {
        let v = json!({
            "cniVersion": "1.0.0",
            "interfaces": [
                {"name": "br0", "mac": "aa:bb:cc:dd:ee:ff"},
                {"name": "veth1", "mac": "aa:bb:cc:dd:ee:01"},
                {"name": "eth0", "mac": "aa:bb:cc:dd:ee:02", "sandbox": "/run/x/ns"}
            ],
            "ips": [{"address": "10.9.0.5/24", "gateway": "10.9.0.1", "interface": 2}],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dns": {"nameservers": ["10.9.0.1"], "search": ["example"]}
        });
        let r = parse_result(&v).unwrap();
        assert_eq!(r.ips[0].ip(), Some("10.9.0.5".parse().unwrap()));
        assert_eq!(r.addresses_of("eth0").len(), 1);
        assert_eq!(
            r.addresses_of("eth1").len(),
            1,
            "no such interface: all addresses"
        );
        assert_eq!(r.dns.nameservers, ["10.9.0.1"]);
        let back: CniResult = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn parses_the_legacy_form_mesos_reads() {
        let v = json!({
            "cniVersion": "0.2.0",
            "ip4": {"ip": "10.1.0.7/16", "gateway": "10.1.0.1", "routes": [{"dst": "0.0.0.0/0"}]},
            "dns": {"nameservers": ["8.8.8.8"]}
        });
        let r = parse_result(&v).unwrap();
        assert_eq!(r.ips.len(), 1);
        assert_eq!(r.ips[0].address, "10.1.0.7/16");
        assert_eq!(r.routes.len(), 1);
    }

    #[test]
    fn rejects_bad_results() {
        for (v, want) in [
            (json!([]), "expected a JSON object"),
            (
                json!({"ips": [{"address": "10.0.0.1"}]}),
                "is not an address/prefix",
            ),
            (
                json!({"ips": [{"address": "10.0.0.1/33"}]}),
                "is not an address/prefix",
            ),
            (
                json!({"ips": [{"address": "10.0.0.1/8", "interface": 3}]}),
                "out of range",
            ),
            (
                json!({"ips": [{"address": "10.0.0.1/8", "gateway": "x"}]}),
                "gateway",
            ),
            (json!({"ips": "no"}), "invalid type"),
        ] {
            let err = parse_result(&v).unwrap_err();
            assert!(err.contains(want), "{v}: {err}");
        }
    }

    #[test]
    fn error_messages_prefer_the_plugin_json() {
        let out = br#"{"code":7,"msg":"invalid config","details":"no bridge\nname"}"#;
        assert_eq!(
            error_message(out, b"ignored", "exit status 1"),
            "invalid config: no bridge name (code 7)"
        );
        assert_eq!(error_message(b"", b" oops\n", "exit status 1"), "oops");
        assert_eq!(error_message(b"", b"", "exit status 1"), "exit status 1");
        let long = vec![b'x'; 5000];
        assert!(error_message(&long, b"", "").chars().count() <= 2049);
    }
}
