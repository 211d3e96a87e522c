//! The built-in network `phobos` end to end, without a conflist overriding
//! it: the path every user gets by default (the bridge and address step in
//! process over rtnetlink, host-local's reservation layout, `portmap` only
//! for the published port, the host rules installed once per bridge). The
//! test gets a bridge and subnet of its own through `default_network_bridge`
//! and `default_network_subnet`, so it never touches a user's `phobos0`,
//! and removes the bridge and its host rules at the end.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::common::lease::{Lease, lease, remove_stale_link};
use crate::common::net::{await_reply, iptables_save};
use crate::common::{Env, PATIENCE, require_root, succeeded};

/// A runtime directory whose config moves the built-in network onto a
/// bridge and a /24 leased to the test (10.217.x.0/24, `common::lease`).
struct BuiltinEnv {
    env: Env,
    config: PathBuf,
    bridge: String,
    prefix: String,
    /// Held until the bridge is gone (fields drop after [`Drop::drop`]).
    lease: Lease,
}

impl BuiltinEnv {
    fn new() -> Self {
        let env = Env::new();
        let lease = lease("cli-builtin-network", 250);
        let bridge = format!("phbl{}", lease.n);
        remove_stale_link(&bridge);
        let prefix = format!("10.217.{}.", lease.n);
        let config = env.work.path().join("phobos.toml");
        std::fs::write(
            &config,
            format!(
                "default_network_bridge = \"{bridge}\"\ndefault_network_subnet = \"{prefix}0/24\"\n"
            ),
        )
        .unwrap();
        BuiltinEnv {
            env,
            config,
            bridge,
            prefix,
            lease,
        }
    }

    /// Container ID `name`, unique among the tests running on the host
    /// (see `NetEnv::id` in network.rs: CNI's portmap names a host-wide
    /// chain after the network and the container ID).
    fn id(&self, name: &str) -> String {
        format!("{name}-b{}", self.lease.n)
    }

    fn run(&self, args: &[&str]) -> Output {
        self.env
            .cmd_config(&self.config)
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        succeeded(args, self.run(args))
    }

    fn net_dir(&self) -> PathBuf {
        self.env.runtime.path().join("net")
    }

    fn bridge_ports(&self) -> Vec<String> {
        crate::common::net::bridge_ports(&self.bridge)
    }

    /// The addresses reserved in host-local's layout (`ipam/phobos/<ip>`).
    fn reserved(&self) -> Vec<String> {
        let dir = self.net_dir().join("ipam").join("phobos");
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
            .collect()
    }

    /// The host's iptables rules naming this test's bridge.
    fn host_rules(&self) -> Vec<String> {
        iptables_save()
            .lines()
            .filter(|l| l.contains(&format!("phobos network {}", self.bridge)))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for BuiltinEnv {
    fn drop(&mut self) {
        for id in [self.id("srv"), self.id("cli")] {
            let _ = self.run(&["destroy", &id]);
        }
        let root = phobos_net::NetRoot::new(self.env.runtime.path());
        if let Err(e) = root.remove_host_rules(&self.bridge) {
            eprintln!("cleanup: {e}");
        }
        let _ = root.unmount();
        if Path::new("/sys/class/net").join(&self.bridge).exists() {
            let _ = Command::new("ip")
                .args(["link", "del", &self.bridge])
                .status();
        }
    }
}

#[test]
fn privileged_the_builtin_network_connects_publishes_and_leaves_nothing() {
    if !require_root("privileged_the_builtin_network_connects_publishes_and_leaves_nothing") {
        return;
    }
    let t = BuiltinEnv::new();
    let (srv, cli) = (t.id("srv"), t.id("cli"));
    let leased = crate::common::lease::port();
    let port = leased.port;
    let publish = format!("{port}:8080");
    t.ok(&[
        "run",
        "-d",
        "--id",
        &srv,
        "--network",
        "phobos",
        "-p",
        &publish,
        "--",
        "sh",
        "-c",
        "while true; do echo builtin | busybox nc -l -p 8080; done",
    ]);
    // The address: in the configured subnet, in status, ps and the
    // reservation; the host end of the veth on the configured bridge.
    let status: serde_json::Value =
        serde_json::from_str(&t.ok(&["status", "--json", &srv])).unwrap();
    let net = &status["network_infos"][0];
    assert_eq!(net["name"], "phobos", "{status}");
    assert_eq!(net["interface"], "eth0", "{status}");
    assert_eq!(net["port_mappings"][0]["host_port"], port, "{status}");
    let ip = net["ip_addresses"][0]["ip_address"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(ip.starts_with(&t.prefix), "{ip} not in {}0/24", t.prefix);
    assert!(t.ok(&["ps"]).contains(&ip), "ps shows {ip}");
    assert_eq!(
        t.reserved(),
        std::slice::from_ref(&ip),
        "the reservation of srv"
    );
    let ports = t.bridge_ports();
    assert!(
        ports.len() == 1 && ports[0].starts_with("ph"),
        "srv's veth on {}: {ports:?}",
        t.bridge
    );
    // The host end has one queue each way (created so, without the
    // kernel's cut under the rtnl lock) and hairpin mode on its port.
    let host_end = Path::new("/sys/class/net").join(&ports[0]);
    let mut queues: Vec<String> = std::fs::read_dir(host_end.join("queues"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    queues.sort();
    assert_eq!(queues, ["rx-0", "tx-0"], "queues of {}", ports[0]);
    let hairpin = std::fs::read_to_string(host_end.join("brport/hairpin_mode")).unwrap();
    assert_eq!(hairpin.trim(), "1", "hairpin mode of {}", ports[0]);
    assert!(
        !t.host_rules().is_empty(),
        "masquerade and forward rules of {}",
        t.bridge
    );

    // From the host's 127.0.0.1 through portmap.
    await_reply(port, "builtin\n", PATIENCE);
    // From a second container on the same bridge, to srv's address.
    let script = format!(
        "tail -n 1 /etc/hosts; i=0; while [ $i -lt {} ]; do busybox nc {ip} 8080 </dev/null && exit 0; sleep 1; i=$((i+1)); done; exit 1",
        PATIENCE.as_secs()
    );
    let out = t.ok(&[
        "run",
        "--id",
        &cli,
        "--network",
        "phobos",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let (hosts_line, reply) = out.split_once('\n').unwrap_or((&out, ""));
    let cli_ip = hosts_line.split(' ').next().unwrap().to_owned();
    assert!(
        cli_ip.starts_with(&t.prefix) && cli_ip != ip,
        "cli's address {cli_ip:?} (srv has {ip}): {out}"
    );
    assert_eq!(reply, "builtin\n", "{out}");
    // cli is gone (run without -d): its address and veth are released.
    assert_eq!(
        t.reserved(),
        std::slice::from_ref(&ip),
        "cli's reservation released"
    );
    assert_eq!(t.bridge_ports().len(), 1, "only srv's veth");

    t.ok(&["destroy", &srv]);
    for id in [&srv, &cli] {
        assert!(
            !t.net_dir().join("containers").join(id).exists(),
            "network state of {id} left"
        );
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let runtime = std::fs::canonicalize(t.env.runtime.path()).unwrap();
    let runtime = runtime.to_string_lossy();
    assert!(
        !mounts.lines().any(|l| l.contains(&*runtime)),
        "mounts left under {runtime} (netns handles or the state root)"
    );
    assert_eq!(t.bridge_ports(), Vec::<String>::new(), "veth left");
    assert_eq!(t.reserved(), Vec::<String>::new(), "address still reserved");
    assert!(
        !t.net_dir()
            .join("ports")
            .join(format!("tcp-{port}"))
            .exists(),
        "host port {port} still reserved"
    );
    let rules = iptables_save();
    for addr in [&ip, &cli_ip] {
        assert!(
            !rules.contains(&format!("{addr}/")) && !rules.contains(&format!("{addr}:")),
            "iptables rule for {addr} left"
        );
    }
    assert!(
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).is_err(),
        "port {port} still answers"
    );
    // The bridge-wide rules stay (installed once per network) until removed.
    phobos_net::NetRoot::new(t.env.runtime.path())
        .remove_host_rules(&t.bridge)
        .unwrap();
    assert_eq!(t.host_rules(), Vec::<String>::new(), "host rules left");
}

#[test]
fn privileged_a_bad_default_network_bridge_is_one_line_and_exit_2() {
    if !require_root("privileged_a_bad_default_network_bridge_is_one_line_and_exit_2") {
        return;
    }
    let env = Env::new();
    let config = env.work.path().join("bad.toml");
    std::fs::write(&config, "default_network_bridge = \"much-too-long-name\"\n").unwrap();
    let out = env
        .cmd()
        .arg("--config")
        .arg(&config)
        .args(["run", "--id", "bad", "--network", "phobos", "--", "true"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("much-too-long-name") && err.contains("default_network_bridge"),
        "{err}"
    );
    assert!(
        !env.container_dir("bad").exists(),
        "the container was created"
    );
    assert!(
        !env.runtime.path().join("net").exists(),
        "network state was created"
    );
}
