//! Host-side views the network tests share: a bridge's ports, the
//! host's iptables rules and a published port's answer (a port to publish
//! is leased, `common::lease::port`).

use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The interfaces enslaved to `bridge` (none when it does not exist).
pub fn bridge_ports(bridge: &str) -> Vec<String> {
    let dir = Path::new("/sys/class/net").join(bridge).join("brif");
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `iptables-save`: every rule of the host's tables.
pub fn iptables_save() -> String {
    String::from_utf8_lossy(&Command::new("iptables-save").output().unwrap().stdout).into_owned()
}

/// What `s` sends until it closes, waiting at most `wait` for each read.
pub fn read_all(mut s: TcpStream, wait: Duration) -> String {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// Waits (at most `wait`) until 127.0.0.1:`port` answers `expected`,
/// through the published port's portmap rules.
pub fn await_reply(port: u16, expected: &str, wait: Duration) {
    let mut reply = String::new();
    assert!(
        super::eventually(wait, || {
            reply = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), wait)
                .map(|s| read_all(s, wait))
                .unwrap_or_default();
            reply == expected
        }),
        "no answer on 127.0.0.1:{port}: {reply:?}"
    );
}
