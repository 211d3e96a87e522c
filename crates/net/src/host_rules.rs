//! The host-wide packet filter rules of the built-in network, installed
//! once per network as Docker does for its bridge, instead of per container
//! by the bridge plugin's `ipMasq` and the `firewall` plugin (each of which
//! runs iptables(8) several times per ADD and DEL and serializes concurrent
//! launches on the xtables lock):
//!
//! - `nat POSTROUTING -s SUBNET ! -o BRIDGE -j MASQUERADE` (containers
//!   reach other hosts with the host's address),
//! - `filter FORWARD -i BRIDGE -j ACCEPT` (traffic from containers, also
//!   between two of them when `br_netfilter` is loaded),
//! - `filter FORWARD -o BRIDGE -m conntrack --ctstate
//!   RELATED,ESTABLISHED,DNAT -j ACCEPT` (replies, and connections to ports
//!   `portmap` published), inserted first so a `FORWARD` policy of `DROP`
//!   (Docker sets one) does not drop them.
//!
//! Every rule carries the comment `phobos network BRIDGE`. A rule is added
//! only when `iptables -C` does not find it, under an exclusive lock of
//! `<runtime_dir>/net-rules/BRIDGE`, whose content (the subnet) records that
//! the rules are in place: while that file matches and the bridge exists, a
//! launch does nothing here but one `stat(2)` and one read. The rules stay
//! after the last container, like the shared chains of other runtimes.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use nix::fcntl::{Flock, FlockArg};

use crate::error::NetError;
use crate::root::{NetRoot, ensure_dir, write_atomic};

/// Makes sure the rules of the built-in network on `bridge` with `subnet`
/// are installed (see the module documentation).
pub(crate) fn ensure(root: &NetRoot, bridge: &str, subnet: &str) -> Result<(), NetError> {
    let dir = root.rules_dir();
    let marker = dir.join(bridge);
    let bridge_up = Path::new("/sys/class/net").join(bridge).exists();
    if bridge_up && fs::read_to_string(&marker).is_ok_and(|s| s == subnet) {
        return Ok(());
    }
    ensure_dir(&dir)?;
    let lock_path = dir.join(format!(".{bridge}.lock"));
    let lock_file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&lock_path)
        .map_err(|e| NetError::io("open", &lock_path, e))?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, e)| NetError::io("lock", &lock_path, e.into()))?;
    let comment = format!("phobos network {bridge}");
    for rule in rules(bridge, subnet, &comment) {
        install(&rule)?;
    }
    write_atomic(&dir, bridge, subnet.as_bytes()).map(drop)
}

/// Removes the rules [`ensure`] installed for `bridge` (for tests and
/// uninstall: after the bridge's last container is gone).
pub(crate) fn remove(root: &NetRoot, bridge: &str) -> Result<(), NetError> {
    let marker = root.rules_dir().join(bridge);
    let subnet = match fs::read_to_string(&marker) {
        Ok(subnet) => subnet,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(NetError::io("read", &marker, e)),
    };
    fs::remove_file(&marker).map_err(|e| NetError::io("remove", &marker, e))?;
    let comment = format!("phobos network {bridge}");
    for rule in rules(bridge, &subnet, &comment) {
        while iptables(&rule, &["-C", rule.chain])?.status.success() {
            let del = iptables(&rule, &["-D", rule.chain])?;
            if !del.status.success() {
                return Err(NetError::HostRule {
                    rule: format!("-t {} {} {}", rule.table, rule.chain, rule.spec.join(" ")),
                    message: String::from_utf8_lossy(&del.stderr).trim().to_owned(),
                });
            }
        }
    }
    Ok(())
}

/// One rule: table, chain, whether it goes first, the match and target.
struct Rule {
    table: &'static str,
    chain: &'static str,
    first: bool,
    spec: Vec<String>,
}

fn rules(bridge: &str, subnet: &str, comment: &str) -> Vec<Rule> {
    let spec = |matches: &[&str], target: &str| {
        matches
            .iter()
            .copied()
            .chain(["-m", "comment", "--comment", comment, "-j", target])
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    vec![
        Rule {
            table: "nat",
            chain: "POSTROUTING",
            first: false,
            spec: spec(&["-s", subnet, "!", "-o", bridge], "MASQUERADE"),
        },
        Rule {
            table: "filter",
            chain: "FORWARD",
            first: true,
            spec: spec(&["-i", bridge], "ACCEPT"),
        },
        Rule {
            table: "filter",
            chain: "FORWARD",
            first: true,
            spec: spec(
                &[
                    "-o",
                    bridge,
                    "-m",
                    "conntrack",
                    "--ctstate",
                    "RELATED,ESTABLISHED,DNAT",
                ],
                "ACCEPT",
            ),
        },
    ]
}

/// `iptables -C` the rule, and add it when it is missing.
fn install(rule: &Rule) -> Result<(), NetError> {
    let check = iptables(rule, &["-C", rule.chain])?;
    if check.status.success() {
        return Ok(());
    }
    let add = if rule.first {
        iptables(rule, &["-I", rule.chain, "1"])?
    } else {
        iptables(rule, &["-A", rule.chain])?
    };
    if add.status.success() {
        return Ok(());
    }
    Err(NetError::HostRule {
        rule: format!("-t {} {} {}", rule.table, rule.chain, rule.spec.join(" ")),
        message: String::from_utf8_lossy(&add.stderr).trim().to_owned(),
    })
}

fn iptables(rule: &Rule, op: &[&str]) -> Result<std::process::Output, NetError> {
    Command::new("iptables")
        .args(["-w", "-t", rule.table])
        .args(op)
        .args(&rule.spec)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| NetError::io("run", "iptables", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_name_the_bridge_and_subnet() {
        let rules = rules("br-t", "10.1.0.0/24", "phobos network br-t");
        assert_eq!(rules.len(), 3);
        assert_eq!(
            rules[0].spec.join(" "),
            "-s 10.1.0.0/24 ! -o br-t -m comment --comment phobos network br-t -j MASQUERADE"
        );
        assert!(rules[1..].iter().all(|r| r.first && r.chain == "FORWARD"));
        assert!(rules[2].spec.join(" ").contains("RELATED,ESTABLISHED,DNAT"));
    }
}
