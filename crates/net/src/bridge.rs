//! The built-in network's `bridge` step done in process, instead of the
//! reference `bridge` and `host-local` plugins (two Go programs started for
//! ADD and two more for DEL, most of a network launch's CPU):
//!
//! - ADD: the bridge made once (rtnetlink `RTM_NEWLINK`, up, the gateway
//!   address; skipped while the main table routes the subnet through it),
//!   `net.ipv4.ip_forward` on, an address reserved
//!   ([`crate::ipam`], host-local's layout), one `RTM_NEWLINK` creating the
//!   veth pair with the host end on the bridge and the container end
//!   created inside the namespace as `CNI_IFNAME`, one more bringing the
//!   host end up without IPv6 addresses and with hairpin mode on its
//!   bridge port, then in the
//!   namespace the container end up, also without IPv6 addresses (the
//!   network is IPv4 only: no link-local address, duplicate address
//!   detection or multicast listener reports per veth), its address and
//!   the routes;
//!   the result is a CNI 1.0 result as the `bridge` plugin prints it, so
//!   `portmap` chains after it unchanged.
//! - DEL: the host end deleted by name (which deletes the pair; nothing is
//!   left if the namespace went first), and the reservation released by
//!   container and interface. Both are idempotent and need nothing ADD
//!   recorded, so a DEL after a crash at any point of ADD leaves nothing.
//!   When the whole container goes, [`crate::container`] instead lets the
//!   kernel delete the pair with the namespace ([`BridgeStep::host_end`]
//!   names the link to wait for) and runs DEL after, which then finds the
//!   link gone and only releases the reservation.
//! - CHECK: the host end is on the bridge and the address is still held.
//!
//! The host end's name is derived from the CNI container ID and interface
//! (`ph` and 12 hex digits of a hash), so DEL finds it without a result.
//! Only the built-in network takes this path; a configuration list named
//! `phobos` in `network_cni_config_dir` runs the real plugins.

use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::config::Subnet;
use crate::error::NetError;
use crate::ipam::Pool;
use crate::netlink::{Netlink, index_of};
use crate::netns;

/// What the built-in network's bridge step needs from its plugin object.
#[derive(Debug, Clone)]
pub(crate) struct BridgeStep {
    network: String,
    bridge: String,
    subnet: Subnet,
    data_dir: PathBuf,
    hairpin: bool,
    /// `(destination, prefix length, gateway)` of each route.
    routes: Vec<(Ipv4Addr, u8, Option<Ipv4Addr>)>,
}

/// One container interface on the network.
pub(crate) struct Endpoint<'a> {
    /// `CNI_CONTAINERID`.
    pub container_id: &'a str,
    /// `CNI_IFNAME`.
    pub ifname: &'a str,
    /// `CNI_NETNS` (absent for a DEL after the namespace is gone).
    pub netns: Option<&'a Path>,
}

impl BridgeStep {
    /// Reads the plugin object of the built-in list
    /// ([`crate::NetworkConfig::default_network`]).
    pub(crate) fn from_plugin(network: &str, plugin: &Map<String, Value>) -> Result<Self, String> {
        let str_at = |v: Option<&Value>, what: &str| {
            v.and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("the built-in bridge step has no {what}"))
        };
        let ipam = plugin.get("ipam");
        let subnet: Subnet = str_at(
            ipam.and_then(|i| i.get("ranges"))
                .and_then(|r| r.get(0))
                .and_then(|r| r.get(0))
                .and_then(|r| r.get("subnet")),
            "ipam subnet",
        )?
        .parse()
        .map_err(|e: NetError| e.to_string())?;
        let mut routes = Vec::new();
        for route in ipam
            .and_then(|i| i.get("routes"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let dst = str_at(route.get("dst"), "route destination")?;
            let (addr, len) = dst
                .split_once('/')
                .and_then(|(a, l)| Some((a.parse::<Ipv4Addr>().ok()?, l.parse::<u8>().ok()?)))
                .filter(|(_, l)| *l <= 32)
                .ok_or_else(|| format!("route destination '{dst}' is not an IPv4 CIDR"))?;
            let gw = match route.get("gw").and_then(Value::as_str) {
                Some(gw) => Some(
                    gw.parse()
                        .map_err(|_| format!("route gateway '{gw}' is not an IPv4 address"))?,
                ),
                None => None,
            };
            routes.push((addr, len, gw));
        }
        Ok(BridgeStep {
            network: network.to_owned(),
            bridge: str_at(plugin.get("bridge"), "bridge name")?,
            subnet,
            data_dir: PathBuf::from(str_at(ipam.and_then(|i| i.get("dataDir")), "dataDir")?),
            hairpin: plugin
                .get("hairpinMode")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            routes,
        })
    }

    fn pool(&self) -> Pool {
        Pool::new(&self.data_dir, &self.network, self.subnet)
    }

    fn fail(&self, command: &'static str, message: String) -> NetError {
        NetError::Plugin {
            command,
            network: self.network.clone(),
            plugin: "bridge (in process)".to_owned(),
            message,
        }
    }

    /// ADD: returns the CNI result. On failure what this ADD made is
    /// undone before the error returns.
    pub(crate) fn add(&self, at: &Endpoint<'_>) -> Result<Value, NetError> {
        let netns = at
            .netns
            .ok_or_else(|| self.fail("ADD", "no network namespace given".to_owned()))?;
        let ns_fd = netns::open_bound(netns)?;
        let pool = self.pool();
        let ip = pool.allocate(at.container_id, at.ifname)?;
        let host = host_ifname(at.container_id, at.ifname);
        let made = self.plumb(&host, &ns_fd, netns, at.ifname, ip);
        match made {
            Ok(()) => Ok(self.result(&host, netns, at.ifname, ip)),
            Err(error) => {
                if let Err(undo) = self.del(at) {
                    tracing::warn!(network = %self.network, "undoing a failed in-process ADD: {undo}");
                }
                Err(error)
            }
        }
    }

    /// The kernel half of ADD.
    fn plumb(
        &self,
        host: &str,
        ns_fd: &OwnedFd,
        netns: &Path,
        ifname: &str,
        ip: Ipv4Addr,
    ) -> Result<(), NetError> {
        let gateway = self.pool().gateway();
        let err = |what: String| move |e: io::Error| self.fail("ADD", format!("{what}: {e}"));
        let mut nl = Netlink::open().map_err(err("open a netlink socket".into()))?;
        let master = self.ensure_bridge(&mut nl, gateway)?;
        enable_ip_forward().map_err(err("enable net.ipv4.ip_forward".into()))?;
        let mac = container_mac(ip);
        match nl.create_veth(host, master, ifname, ns_fd, mac) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) && self.is_ours(host) => {
                // Left by an ADD that died before its DEL: start over.
                let _ = nl.delete_link(host);
                nl.create_veth(host, master, ifname, ns_fd, mac)
            }
            other => other,
        }
        .map_err(err(format!(
            "create veth {host} on {} with peer {ifname} in {}",
            self.bridge,
            netns.display()
        )))?;
        // The container end is still down (it goes up in its namespace
        // below), which `host_end_up` needs.
        nl.host_end_up(host, self.hairpin).map_err(err(format!(
            "bring veth {host} up without IPv6 addresses{}",
            if self.hairpin {
                ", hairpin mode on"
            } else {
                ""
            }
        )))?;
        let prefix = self.subnet.prefix;
        let routes = self.routes.clone();
        netns::run_in(netns, move || -> io::Result<()> {
            let mut nl = Netlink::open()?;
            let index = index_of(ifname)?;
            nl.no_ipv6_addresses(ifname)?;
            nl.set_up(index)?;
            nl.add_address(index, ip, prefix)?;
            for (dst, len, gw) in routes {
                nl.add_route(dst, len, gw.unwrap_or(gateway), index)?;
            }
            Ok(())
        })?
        .map_err(err(format!(
            "address {ip}/{prefix} and routes on {ifname} in {}",
            netns.display()
        )))
    }

    /// The bridge up with the gateway address; returns its index.
    fn ensure_bridge(&self, nl: &mut Netlink, gateway: Ipv4Addr) -> Result<u32, NetError> {
        let err = |what: &'static str| {
            move |e: io::Error| self.fail("ADD", format!("{what} bridge {}: {e}", self.bridge))
        };
        let index = match index_of(&self.bridge) {
            Ok(index) => index,
            Err(_) => {
                match nl.create_bridge(&self.bridge) {
                    Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
                        return Err(err("create")(e));
                    }
                    _ => {}
                }
                index_of(&self.bridge).map_err(err("find"))?
            }
        };
        let kind = Path::new("/sys/class/net")
            .join(&self.bridge)
            .join("bridge");
        if !kind.is_dir() {
            return Err(self.fail("ADD", format!("{} exists and is not a bridge", self.bridge)));
        }
        if self.bridge_routes_subnet() {
            return Ok(index);
        }
        nl.set_up(index).map_err(err("bring up"))?;
        match nl.add_address(index, gateway, self.subnet.prefix) {
            Err(e) if e.raw_os_error() != Some(libc::EEXIST) => Err(err("address the")(e)),
            _ => Ok(index),
        }
    }

    /// Whether the main table routes the subnet through the bridge: the
    /// kernel adds that route when an address of the subnet goes on the
    /// bridge while it is up, and removes it when either goes. Read from
    /// procfs under RCU, where asking with a request (`RTM_NEWLINK` up,
    /// `RTM_NEWADDR`, each answered `EEXIST` or a no-op once the bridge is
    /// made) takes the rtnl lock twice per launch.
    fn bridge_routes_subnet(&self) -> bool {
        let Ok(table) = fs::read_to_string("/proc/thread-self/net/route") else {
            return false;
        };
        // Addresses as the kernel prints them: the raw network-order word.
        let hex = |a: u32| format!("{:08X}", u32::from_ne_bytes(a.to_be_bytes()));
        let dst = hex(u32::from(self.subnet.addr));
        let mask = hex(u32::MAX
            .checked_shl(32 - u32::from(self.subnet.prefix))
            .unwrap_or(0));
        table.lines().skip(1).any(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            f.len() >= 8
                && f[0] == self.bridge
                && f[1] == dst
                && f[7] == mask
                && u16::from_str_radix(f[3], 16).is_ok_and(|flags| flags & 1 != 0)
        })
    }

    /// The result the reference `bridge` plugin prints (CNI 1.0.0).
    fn result(&self, host: &str, netns: &Path, ifname: &str, ip: Ipv4Addr) -> Value {
        let mac_of = |name: &str| {
            fs::read_to_string(Path::new("/sys/class/net").join(name).join("address"))
                .map(|s| s.trim().to_owned())
                .unwrap_or_default()
        };
        let gateway = self.pool().gateway();
        let routes: Vec<Value> = self
            .routes
            .iter()
            .map(|(dst, len, gw)| match gw {
                Some(gw) => json!({"dst": format!("{dst}/{len}"), "gw": gw.to_string()}),
                None => json!({"dst": format!("{dst}/{len}")}),
            })
            .collect();
        json!({
            "cniVersion": "1.0.0",
            "interfaces": [
                {"name": self.bridge, "mac": mac_of(&self.bridge)},
                {"name": host, "mac": mac_of(host)},
                {"name": ifname, "mac": format_mac(container_mac(ip)), "sandbox": netns.display().to_string()},
            ],
            "ips": [{
                "address": format!("{ip}/{}", self.subnet.prefix),
                "gateway": gateway.to_string(),
                "interface": 2,
            }],
            "routes": routes,
            "dns": {},
        })
    }

    /// Whether the link `host` is a veth on this network's bridge, one the
    /// bridge no longer holds (deleted under it) or one being deleted:
    /// never another interface that happens to have the name.
    fn is_ours(&self, host: &str) -> bool {
        let dir = Path::new("/sys/class/net").join(host);
        // A veth's iflink is its peer's index, not its own.
        let read = |f: &str| fs::read_to_string(dir.join(f)).map(|s| s.trim().to_owned());
        let is_pair = matches!((read("ifindex"), read("iflink")), (Ok(a), Ok(b)) if a != b);
        let on_our_bridge = match fs::read_link(dir.join("master")) {
            Ok(master) => is_pair && master.file_name() == Some(self.bridge.as_ref()),
            Err(_) => is_pair,
        };
        // A device being unregistered is unlisted from its namespace's
        // names first; then its attributes read `EINVAL` and its bridge
        // port goes, while the sysfs directory stays until after its
        // `RTM_DELLINK` is sent. One no longer found by name is on its way
        // out, whatever it was.
        on_our_bridge || index_of(host).is_err()
    }

    /// DEL: the veth pair and the reservation; nothing there is fine.
    pub(crate) fn del(&self, at: &Endpoint<'_>) -> Result<(), NetError> {
        let host = host_ifname(at.container_id, at.ifname);
        let sysfs = Path::new("/sys/class/net").join(&host);
        if sysfs.exists() && !self.is_ours(&host) {
            return Err(self.fail(
                "DEL",
                format!("{host} is not a veth of bridge {}; left alone", self.bridge),
            ));
        }
        // Gone already (its namespace took it): no request, so no wait on
        // the rtnl lock. The kernel removes the sysfs entry last, under the
        // lock; while it is there, the delete below returns (`ENODEV`)
        // only once the holder is done with it.
        if index_of(&host).is_ok() || sysfs.exists() {
            let mut nl = Netlink::open()
                .map_err(|e| self.fail("DEL", format!("open a netlink socket: {e}")))?;
            match nl.delete_link(&host) {
                Err(e) if e.raw_os_error() != Some(libc::ENODEV) => {
                    return Err(self.fail("DEL", format!("delete veth {host}: {e}")));
                }
                _ => {}
            }
        }
        self.pool().release(at.container_id, at.ifname)
    }

    /// The host end of `at` as `(index, name)` when it exists and is ours
    /// (as [`BridgeStep::del`] would find it), for a caller that lets the
    /// kernel delete the pair with its namespace: unbinding the namespace
    /// makes the kernel's namespace teardown (`cleanup_net`) delete its
    /// devices, the container end's peer included, for every namespace
    /// dying at the same time in one batch under one hold of the rtnl lock
    /// and one set of RCU grace periods, where deleting each host end
    /// itself takes the lock across several grace periods per veth.
    pub(crate) fn host_end(&self, at: &Endpoint<'_>) -> Result<Option<(u32, String)>, NetError> {
        let host = host_ifname(at.container_id, at.ifname);
        if !Path::new("/sys/class/net").join(&host).exists() {
            return Ok(None);
        }
        if !self.is_ours(&host) {
            return Err(self.fail(
                "DEL",
                format!("{host} is not a veth of bridge {}; left alone", self.bridge),
            ));
        }
        Ok(index_of(&host).ok().map(|index| (index, host)))
    }

    /// CHECK: the host end is a port of the bridge and the address in
    /// `result` is still reserved for the container.
    pub(crate) fn check(&self, at: &Endpoint<'_>, result: Option<&Value>) -> Result<(), NetError> {
        let host = host_ifname(at.container_id, at.ifname);
        let master = fs::read_link(Path::new("/sys/class/net").join(&host).join("master"));
        if !master.is_ok_and(|m| m.file_name() == Some(self.bridge.as_ref())) {
            return Err(self.fail("CHECK", format!("veth {host} is not on {}", self.bridge)));
        }
        let ip = result
            .and_then(|r| r.get("ips")?.get(0)?.get("address")?.as_str())
            .and_then(|a| a.split('/').next()?.parse::<Ipv4Addr>().ok())
            .ok_or_else(|| self.fail("CHECK", "no address in the recorded result".to_owned()))?;
        if !self.pool().holds(at.container_id, at.ifname, ip)? {
            return Err(self.fail("CHECK", format!("{ip} is no longer reserved")));
        }
        Ok(())
    }
}

/// The host end's name: `ph` and 12 hex digits of a hash of the CNI
/// container ID and interface (14 characters, under IFNAMSIZ).
pub(crate) fn host_ifname(container_id: &str, ifname: &str) -> String {
    let hash = crate::container::fnv1a(format!("{container_id}/{ifname}").as_bytes());
    format!("ph{:012x}", hash & 0xffff_ffff_ffff)
}

/// A locally administered unicast address made from the IPv4 address
/// (`0a:58:` and its four bytes, as Kubernetes' bridge networks do).
fn container_mac(ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = ip.octets();
    [0x0a, 0x58, a, b, c, d]
}

fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `net.ipv4.ip_forward = 1` (written only when it is not already).
fn enable_ip_forward() -> io::Result<()> {
    let knob = "/proc/sys/net/ipv4/ip_forward";
    if fs::read_to_string(knob)?.trim() == "1" {
        return Ok(());
    }
    fs::write(knob, "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin() -> Map<String, Value> {
        let config = crate::NetworkConfig::default_network(
            "br-t",
            "10.1.0.0/24".parse().unwrap(),
            Path::new("/i"),
        );
        config.plugins[0].clone()
    }

    #[test]
    fn the_builtin_plugin_object_is_read_whole() {
        let step = BridgeStep::from_plugin("phobos", &builtin()).unwrap();
        assert_eq!(step.bridge, "br-t");
        assert_eq!(step.subnet.to_string(), "10.1.0.0/24");
        assert_eq!(step.data_dir, Path::new("/i"));
        assert!(step.hairpin);
        assert_eq!(step.routes, [(Ipv4Addr::UNSPECIFIED, 0, None)]);
        let mut broken = builtin();
        broken.remove("bridge");
        let e = BridgeStep::from_plugin("phobos", &broken).unwrap_err();
        assert!(e.contains("bridge name"), "{e}");
    }

    #[test]
    fn privileged_del_leaves_a_foreign_interface_of_the_same_name_alone() {
        if !nix::unistd::Uid::effective().is_root() {
            println!("skipping: needs root");
            return;
        }
        let id = format!("foreign-{}", std::process::id());
        let name = host_ifname(&id, "eth0");
        let tmp = tempfile::tempdir().unwrap();
        let mut plugin = builtin();
        plugin["ipam"]["dataDir"] = json!(tmp.path());
        let step = BridgeStep::from_plugin("phobos", &plugin).unwrap();
        let ip = |args: &[&str]| {
            std::process::Command::new("ip")
                .args(args)
                .status()
                .unwrap()
        };
        assert!(ip(&["link", "add", &name, "type", "bridge"]).success());
        let at = Endpoint {
            container_id: &id,
            ifname: "eth0",
            netns: None,
        };
        let refused = step.del(&at);
        let still_there = Path::new("/sys/class/net").join(&name).exists();
        ip(&["link", "del", &name]);
        let e = refused.unwrap_err();
        assert!(e.to_string().contains("left alone"), "{e}");
        assert!(still_there);
        // Gone: DEL has nothing to do and succeeds.
        step.del(&at).unwrap();
    }

    #[test]
    fn host_names_are_short_stable_and_distinct() {
        let a = host_ifname("web-1", "eth0");
        assert_eq!(a.len(), 14);
        assert!(a.starts_with("ph"));
        assert_eq!(a, host_ifname("web-1", "eth0"));
        assert_ne!(a, host_ifname("web-1", "eth1"));
        assert_ne!(a, host_ifname("web-2", "eth0"));
        assert_eq!(
            format_mac(container_mac(Ipv4Addr::new(10, 77, 0, 2))),
            "0a:58:0a:4d:00:02"
        );
    }
}
