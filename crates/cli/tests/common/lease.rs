//! Host-wide leases on the names a network test needs to itself (a /24,
//! bridge names), among every test process on the machine: the other
//! tests of this suite and the suites of other checkouts running at the
//! same time. A lease is an exclusive flock(2) on
//! `/run/phobos-test-leases/<pool>-<n>`, which the kernel drops when the
//! holder ends, however it ends, so a crashed test leaves nothing taken.
//!
//! Two tests that derived a subnet from their pids could pick the same one
//! on two bridges; the host then routed one container's packets to the
//! other bridge, and a connection hung until its timeout. Likewise a TCP
//! port a test picks and publishes (or listens on) later: a port the
//! kernel called free at the pick (`bind` to port 0, then closed) could be
//! picked by another test meanwhile, and two containers published on one
//! host port answer each other's connections.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

const DIR: &str = "/run/phobos-test-leases";

/// Number `n` of a pool, held until this is dropped.
pub struct Lease {
    pub n: u32,
    _file: File,
}

/// Takes the first free number of `pool` in `0..count`, starting at one
/// that depends on the pid so that concurrent tests seldom try the same
/// numbers first.
pub fn lease(pool: &str, count: u32) -> Lease {
    let start = std::process::id() % count;
    for i in 0..count {
        let n = (start + i) % count;
        let (file, path) = lock_file(&format!("{pool}-{n}"));
        match file.try_lock() {
            Ok(()) => return Lease { n, _file: file },
            Err(TryLockError::WouldBlock) => continue,
            Err(TryLockError::Error(e)) => panic!("lock {}: {e}", path.display()),
        }
    }
    panic!("all {count} leases of {pool} in {DIR} are held");
}

/// The host-wide lock `name`, waited for: held by one test process of the
/// machine at a time until dropped. For a test that changes something every
/// other test would see (the v1 controller test's temporary hierarchies),
/// which nextest's test groups keep apart within one run only.
pub fn exclusive(name: &str) -> Lease {
    let (file, path) = lock_file(&format!("exclusive-{name}"));
    file.lock()
        .unwrap_or_else(|e| panic!("lock {}: {e}", path.display()));
    Lease { n: 0, _file: file }
}

/// `DIR/name`, opened (made if missing) for a lock, and its path.
fn lock_file(name: &str) -> (File, std::path::PathBuf) {
    std::fs::create_dir_all(DIR).unwrap_or_else(|e| panic!("{DIR}: {e}"));
    let path = Path::new(DIR).join(name);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (file, path)
}

/// Deletes network link `name` if it exists: one left by an earlier holder
/// of the lease the name comes from, which ended before it cleaned up.
pub fn remove_stale_link(name: &str) {
    if Path::new("/sys/class/net").join(name).exists() {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", name])
            .status();
    }
}

/// The first port of [`port`]'s range: below the kernel's ephemeral range
/// (`net.ipv4.ip_local_port_range`, 32768–60999 by default), so neither a
/// `bind` to port 0 nor an outgoing connection takes one of them.
const FIRST_PORT: u16 = 21_000;
/// How many ports [`port`] hands out.
const PORTS: u32 = 1_000;

/// A TCP/UDP port number of this host held for one test until this is
/// dropped.
pub struct Port {
    pub port: u16,
    _lease: Lease,
}

/// A port no other test holds, and nothing on this host listens on now
/// (one that something outside the tests listens on is skipped).
pub fn port() -> Port {
    let mut held = Vec::new();
    loop {
        let lease = lease("port", PORTS);
        let port = FIRST_PORT + lease.n as u16;
        if std::net::TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return Port {
                port,
                _lease: lease,
            };
        }
        // Kept until a free one is found, so the next pick is another.
        held.push(lease);
        assert!(
            held.len() < PORTS as usize,
            "every leased port is in use on this host"
        );
    }
}
