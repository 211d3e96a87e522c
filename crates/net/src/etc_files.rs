//! The `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` a container on
//! its own network gets, generated as Mesos's `network/cni` isolator does
//! (pure functions; the caller writes and binds them).

use std::net::{IpAddr, Ipv4Addr};

use crate::result::{CniResult, Dns};

/// `/etc/hostname`: the name and a newline.
pub fn hostname_file(hostname: &str) -> String {
    format!("{hostname}\n")
}

/// `/etc/hosts`: `127.0.0.1 localhost`, then the container's address with
/// its hostname when it has one (Mesos writes nothing else).
pub fn hosts_file(hostname: &str, address: Option<Ipv4Addr>) -> String {
    let mut out = String::from("127.0.0.1 localhost\n");
    if let Some(ip) = address {
        out.push_str(&format!("{ip} {hostname}\n"));
    }
    out
}

/// The first IPv4 address of the first network that has one.
pub fn first_ipv4<'a>(results: impl IntoIterator<Item = &'a CniResult>) -> Option<Ipv4Addr> {
    results.into_iter().find_map(|r| {
        r.ips.iter().find_map(|ip| match ip.ip() {
            Some(IpAddr::V4(v4)) => Some(v4),
            _ => None,
        })
    })
}

/// Merges the DNS of several networks in order: lists are appended
/// (without repeats), single values are taken from the last network that
/// has one. Networks without name servers contribute nothing (Mesos).
pub fn merge_dns<'a>(all: impl IntoIterator<Item = &'a Dns>) -> Dns {
    let mut out = Dns::default();
    for dns in all {
        if dns.nameservers.is_empty() {
            continue;
        }
        for (dst, src) in [
            (&mut out.nameservers, &dns.nameservers),
            (&mut out.search, &dns.search),
            (&mut out.options, &dns.options),
        ] {
            for item in src {
                if !dst.contains(item) {
                    dst.push(item.clone());
                }
            }
        }
        if dns.domain.is_some() {
            out.domain.clone_from(&dns.domain);
        }
    }
    out
}

/// `/etc/resolv.conf` for `dns`, or `None` when it has no name servers (the
/// host's file is then used, as Mesos does).
pub fn resolv_conf(dns: &Dns) -> Option<String> {
    if dns.nameservers.is_empty() {
        return None;
    }
    let mut out = String::new();
    if let Some(domain) = &dns.domain {
        out.push_str(&format!("domain {}\n", clean(domain)));
    }
    if !dns.search.is_empty() {
        out.push_str(&format!("search {}\n", join(&dns.search)));
    }
    for ns in &dns.nameservers {
        out.push_str(&format!("nameserver {}\n", clean(ns)));
    }
    if !dns.options.is_empty() {
        out.push_str(&format!("options {}\n", join(&dns.options)));
    }
    Some(out)
}

/// A plugin's value on one line with no whitespace (it must not add lines).
fn clean(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect()
}

fn join(values: &[String]) -> String {
    values
        .iter()
        .map(|v| clean(v))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::IpConfig;

    fn result(addresses: &[&str], dns: Dns) -> CniResult {
        CniResult {
            ips: addresses
                .iter()
                .map(|a| IpConfig {
                    address: (*a).to_owned(),
                    gateway: None,
                    interface: None,
                })
                .collect(),
            dns,
            ..CniResult::default()
        }
    }

    #[test]
    fn hosts_and_hostname_as_mesos_writes_them() {
        assert_eq!(hostname_file("web"), "web\n");
        assert_eq!(hosts_file("web", None), "127.0.0.1 localhost\n");
        let a = result(&["fd00::5/64"], Dns::default());
        let b = result(&["10.1.0.5/16", "10.1.0.6/16"], Dns::default());
        let ip = first_ipv4([&a, &b]);
        assert_eq!(hosts_file("web", ip), "127.0.0.1 localhost\n10.1.0.5 web\n");
    }

    #[test]
    fn dns_merges_in_order_and_renders() {
        let one = Dns {
            nameservers: vec!["10.0.0.1".into()],
            domain: Some("a.example".into()),
            search: vec!["a.example".into()],
            options: vec!["ndots:2".into()],
        };
        let skipped = Dns {
            domain: Some("ignored".into()),
            ..Dns::default()
        };
        let two = Dns {
            nameservers: vec!["10.0.0.2".into(), "10.0.0.1".into()],
            domain: Some("b.example".into()),
            search: vec!["b.example".into()],
            options: vec![],
        };
        let merged = merge_dns([&one, &skipped, &two]);
        assert_eq!(
            resolv_conf(&merged).unwrap(),
            "domain b.example\nsearch a.example b.example\nnameserver 10.0.0.1\nnameserver 10.0.0.2\noptions ndots:2\n"
        );
        assert_eq!(resolv_conf(&Dns::default()), None);
        let evil = Dns {
            nameservers: vec!["1.1.1.1\nnameserver 6.6.6.6".into()],
            ..Dns::default()
        };
        assert_eq!(resolv_conf(&evil).unwrap().lines().count(), 1);
    }
}
