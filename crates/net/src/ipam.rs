//! Address allocation of the built-in network, in the on-disk layout of the
//! reference `host-local` plugin so both can share one directory (a
//! checkpoint written before this allocator existed is still released by
//! `host-local` on DEL):
//!
//! ```text
//! <dataDir>/<network>/<ip>               one reservation: "<container id>\r\n<ifname>"
//! <dataDir>/<network>/last_reserved_ip.0 where the next search starts
//! ```
//!
//! A reservation is a file created with `O_CREAT | O_EXCL` (open(2)), so of
//! two launches racing for one address exactly one gets it, with no lock
//! held (`host-local` creates its files the same way). Addresses are handed
//! out round-robin after the last one reserved, so a released address is
//! not reused at once. Release removes every reservation naming the
//! container and interface: DEL after a crash at any point of ADD finds what
//! was reserved without knowing the address.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::config::Subnet;
use crate::error::NetError;
use crate::root::{ensure_dir, write_atomic};

const LAST_RESERVED: &str = "last_reserved_ip.0";

/// The reservations of one network.
pub(crate) struct Pool {
    dir: PathBuf,
    subnet: Subnet,
}

impl Pool {
    /// The pool of `network` under `data_dir` for `subnet`.
    pub(crate) fn new(data_dir: &Path, network: &str, subnet: Subnet) -> Self {
        Pool {
            dir: data_dir.join(network),
            subnet,
        }
    }

    /// The gateway: the subnet's first address (the bridge has it).
    pub(crate) fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.subnet.addr) + 1)
    }

    /// The addresses handed out: after the gateway, before broadcast.
    fn range(&self) -> (u32, u32) {
        let first = u32::from(self.subnet.addr) + 2;
        let broadcast = u32::from(self.subnet.addr) | (u32::MAX >> self.subnet.prefix);
        (first, broadcast - 1)
    }

    fn owner(id: &str, ifname: &str) -> String {
        format!("{id}\r\n{ifname}")
    }

    /// Reserves an address for `id`'s `ifname`; the one it already holds,
    /// if any (ADD run again).
    pub(crate) fn allocate(&self, id: &str, ifname: &str) -> Result<Ipv4Addr, NetError> {
        ensure_dir(self.dir.parent().unwrap_or(Path::new("/")))?;
        ensure_dir(&self.dir)?;
        let owner = Self::owner(id, ifname);
        if let Some(held) = self.held_by(&owner)?.first() {
            return Ok(*held);
        }
        let (first, last) = self.range();
        let size = last - first + 1;
        let start = fs::read_to_string(self.dir.join(LAST_RESERVED))
            .ok()
            .and_then(|s| s.trim().parse::<Ipv4Addr>().ok())
            .map(u32::from)
            .filter(|ip| (first..=last).contains(ip))
            .map_or(0, |ip| ip - first + 1);
        for step in 0..size {
            let ip = Ipv4Addr::from(first + (start + step) % size);
            let path = self.dir.join(ip.to_string());
            let created = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path);
            match created {
                Ok(mut file) => {
                    if let Err(e) = file.write_all(owner.as_bytes()) {
                        let _ = fs::remove_file(&path);
                        return Err(NetError::io("write", &path, e));
                    }
                    // Only a hint: a lost update costs one more step.
                    let _ = write_atomic(&self.dir, LAST_RESERVED, ip.to_string().as_bytes());
                    return Ok(ip);
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(NetError::io("create", &path, e)),
            }
        }
        Err(NetError::AddressesExhausted {
            subnet: self.subnet.to_string(),
        })
    }

    /// The addresses reserved by `owner`.
    fn held_by(&self, owner: &str) -> Result<Vec<Ipv4Addr>, NetError> {
        let entries = match fs::read_dir(&self.dir) {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            other => other.map_err(|e| NetError::io("list", &self.dir, e))?,
        };
        let mut held = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| NetError::io("list", &self.dir, e))?;
            let Some(ip) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<Ipv4Addr>().ok())
            else {
                continue;
            };
            // A reservation is a regular file; read without following.
            let content = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(entry.path())
                .and_then(|f| {
                    let mut s = String::new();
                    std::io::Read::read_to_string(&mut std::io::Read::take(f, 4096), &mut s)
                        .map(|_| s)
                });
            if content.is_ok_and(|c| c.trim_end() == owner) {
                held.push(ip);
            }
        }
        held.sort();
        Ok(held)
    }

    /// Removes every reservation of `id`'s `ifname` (none is fine).
    pub(crate) fn release(&self, id: &str, ifname: &str) -> Result<(), NetError> {
        for ip in self.held_by(&Self::owner(id, ifname))? {
            let path = self.dir.join(ip.to_string());
            match fs::remove_file(&path) {
                Err(e) if e.kind() != ErrorKind::NotFound => {
                    return Err(NetError::io("remove", &path, e));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether `id`'s `ifname` holds `ip`.
    pub(crate) fn holds(&self, id: &str, ifname: &str, ip: Ipv4Addr) -> Result<bool, NetError> {
        Ok(self.held_by(&Self::owner(id, ifname))?.contains(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(dir: &Path, subnet: &str) -> Pool {
        Pool::new(dir, "net", subnet.parse().unwrap())
    }

    #[test]
    fn addresses_are_exclusive_round_robin_and_released_by_owner() {
        let tmp = tempfile::tempdir().unwrap();
        let p = pool(tmp.path(), "10.9.0.0/29"); // .2 to .6
        assert_eq!(p.gateway(), Ipv4Addr::new(10, 9, 0, 1));
        let a = p.allocate("a", "eth0").unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 9, 0, 2));
        assert_eq!(p.allocate("a", "eth0").unwrap(), a, "ADD again keeps it");
        let b = p.allocate("b", "eth0").unwrap();
        assert_eq!(b, Ipv4Addr::new(10, 9, 0, 3));
        assert_eq!(
            fs::read_to_string(tmp.path().join("net/10.9.0.3")).unwrap(),
            "b\r\neth0",
            "host-local's format"
        );
        p.release("a", "eth0").unwrap();
        p.release("a", "eth0").unwrap();
        assert!(!p.holds("a", "eth0", a).unwrap());
        // Round robin: the released .2 comes back only after the rest.
        let got: Vec<_> = ["c", "d", "e", "f"]
            .iter()
            .map(|id| p.allocate(id, "eth0").unwrap().octets()[3])
            .collect();
        assert_eq!(got, [4, 5, 6, 2]);
        let e = p.allocate("g", "eth0").unwrap_err();
        assert!(e.to_string().contains("10.9.0.0/29"), "{e}");
        // Another interface of the same container is another owner.
        p.release("b", "eth1").unwrap();
        assert!(p.holds("b", "eth0", b).unwrap());
    }

    #[test]
    fn concurrent_allocations_never_share_an_address() {
        let tmp = tempfile::tempdir().unwrap();
        let subnet = "10.9.0.0/26";
        let got: Vec<Ipv4Addr> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..40)
                .map(|i| {
                    let dir = tmp.path();
                    s.spawn(move || {
                        pool(dir, subnet)
                            .allocate(&format!("c{i}"), "eth0")
                            .unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut unique = got.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), got.len(), "{got:?}");
    }

    #[test]
    fn a_symlinked_reservation_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let p = pool(tmp.path(), "10.9.0.0/29");
        fs::create_dir_all(tmp.path().join("net")).unwrap();
        let target = tmp.path().join("secret");
        fs::write(&target, "a\r\neth0").unwrap();
        std::os::unix::fs::symlink(&target, tmp.path().join("net/10.9.0.2")).unwrap();
        assert_eq!(p.allocate("a", "eth0").unwrap(), Ipv4Addr::new(10, 9, 0, 3));
        p.release("a", "eth0").unwrap();
        assert!(target.exists(), "the symlink's target is untouched");
    }
}
