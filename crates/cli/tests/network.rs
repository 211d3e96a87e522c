//! `phobos run --network` and `-p` end to end, with Debian's CNI plugins
//! and real namespaces: each test writes its own network configurations
//! (bridge names and 10.215.x.0/24 subnets leased to it, `common::lease`) into its own config
//! directory, talks only between its containers and the host, bounded in
//! time, and removes its bridges and the network state mount.

#[path = "network/builtin.rs"]
mod builtin;
mod common;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::lease::{Lease, lease, remove_stale_link};
use common::net::{await_reply, bridge_ports, iptables_save};
use common::{Env, PATIENCE, destroy_listed, eventually, require_root, succeeded};

/// An environment with a config file naming its CNI directory, where
/// `phobos` (overriding the built-in network) and `second` are defined.
struct NetEnv {
    env: Env,
    _conf: tempfile::TempDir,
    config: PathBuf,
    bridges: Vec<String>,
    subnet: String,
    /// Held until the bridges are gone (fields drop after [`Drop::drop`]).
    lease: Lease,
}

impl NetEnv {
    fn new() -> Self {
        let env = Env::new();
        let conf = tempfile::tempdir().unwrap();
        let lease = lease("cli-network", 128);
        let n = lease.n;
        let bridges = vec![format!("phcl{n}a"), format!("phcl{n}b")];
        for b in &bridges {
            remove_stale_link(b);
        }
        let subnet = format!("10.215.{n}.0/24");
        let ipam = env.runtime.path().join("test-ipam");
        let list = |name: &str, bridge: &str, subnet: &str| {
            format!(
                r#"{{"cniVersion":"1.0.0","name":"{name}","plugins":[
                {{"type":"bridge","bridge":"{bridge}","isGateway":true,"ipMasq":true,
                  "ipam":{{"type":"host-local","ranges":[[{{"subnet":"{subnet}"}}]],"dataDir":"{}"}}}},
                {{"type":"portmap","capabilities":{{"portMappings":true}}}},
                {{"type":"firewall"}}]}}"#,
                ipam.display()
            )
        };
        std::fs::write(
            conf.path().join("10-phobos.conflist"),
            list("phobos", &bridges[0], &subnet),
        )
        .unwrap();
        std::fs::write(
            conf.path().join("20-second.conflist"),
            list("second", &bridges[1], &format!("10.215.{}.0/24", n + 128)),
        )
        .unwrap();
        let config = conf.path().join("phobos.toml");
        std::fs::write(
            &config,
            format!("network_cni_config_dir = \"{}\"\n", conf.path().display()),
        )
        .unwrap();
        NetEnv {
            env,
            _conf: conf,
            config,
            bridges,
            subnet,
            lease,
        }
    }

    /// Container ID `name`, made unique among the tests running on the
    /// host: CNI plugins name host-wide iptables chains after the network
    /// and the container ID (portmap's `CNI-DN-<hash>`), so two tests that
    /// both ran `srv` on a network `phobos` shared, and tore down, one chain.
    fn id(&self, name: &str) -> String {
        format!("{name}-c{}", self.lease.n)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.env.cmd_config(&self.config);
        c.args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        succeeded(args, self.run(args))
    }

    fn net_dir(&self) -> PathBuf {
        self.env.runtime.path().join("net")
    }

    /// Nothing mounted under the runtime directory (after the last
    /// container is gone, not even the network state root).
    fn assert_nothing_mounted(&self) {
        let runtime = std::fs::canonicalize(self.env.runtime.path()).unwrap();
        let runtime = runtime.to_string_lossy();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let left: Vec<&str> = mounts
            .lines()
            .filter(|l| {
                l.split(' ')
                    .nth(4)
                    .is_some_and(|p| p.starts_with(&*runtime))
            })
            .collect();
        assert!(left.is_empty(), "mounts left under {runtime}: {left:?}");
    }

    /// Nothing of container `id` left: state, namespace mount, veths, rules.
    fn assert_gone(&self, id: &str, ips: &[String]) {
        assert!(
            !self.net_dir().join("containers").join(id).exists(),
            "state of {id} left"
        );
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(&format!("/containers/{id}/ns")),
            "netns mount of {id} left"
        );
        for b in &self.bridges {
            assert_eq!(bridge_ports(b), Vec::<String>::new(), "veth left on {b}");
        }
        let rules = iptables_save();
        for ip in ips {
            assert!(
                !rules.contains(&format!("{ip}/")),
                "iptables rule for {ip} left"
            );
        }
        let ipam = self.env.runtime.path().join("test-ipam");
        for net in std::fs::read_dir(&ipam).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(net.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = f.file_name().to_string_lossy().into_owned();
                assert!(
                    name.parse::<std::net::IpAddr>().is_err(),
                    "address {name} still reserved"
                );
            }
        }
    }
}

impl Drop for NetEnv {
    fn drop(&mut self) {
        // Containers first (Env's drop would run after ours).
        destroy_listed(|args| self.run(args));
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.net_dir())
            .status();
        for b in &self.bridges {
            if Path::new("/sys/class/net").join(b).exists() {
                let _ = Command::new("ip").args(["link", "del", b]).status();
            }
        }
    }
}

#[test]
fn privileged_a_container_on_a_network_gets_an_address_a_hostname_and_etc_files() {
    if !require_root("privileged_a_container_on_a_network_gets_an_address_a_hostname_and_etc_files")
    {
        return;
    }
    let t = NetEnv::new();
    let n1 = t.id("n1");
    let out = t.ok(&[
        "run",
        "--id",
        &n1,
        "--hostname",
        "web",
        "--network",
        "phobos",
        "--network",
        "second",
        "--",
        "sh",
        "-c",
        "cat /etc/hostname; hostname; cat /etc/hosts; cat /proc/net/dev; echo LIBPROCESS_IP=$LIBPROCESS_IP",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "web", "{out}");
    assert_eq!(lines[1], "web", "{out}");
    assert_eq!(lines[2], "127.0.0.1 localhost", "{out}");
    let prefix = t.subnet.trim_end_matches("0/24");
    assert!(
        lines[3].starts_with(prefix) && lines[3].ends_with(" web"),
        "{out}"
    );
    for dev in ["lo:", "eth0:", "eth1:"] {
        assert!(out.contains(dev), "{dev} missing: {out}");
    }
    // As Mesos's network/cni gives a container on a CNI network.
    assert_eq!(lines.last(), Some(&"LIBPROCESS_IP=0.0.0.0"), "{out}");
    // The host's files are untouched.
    assert_ne!(
        std::fs::read_to_string("/etc/hostname")
            .unwrap_or_default()
            .trim(),
        "web"
    );
    let ip = lines[3].split(' ').next().unwrap().to_owned();
    t.assert_gone(&n1, &[ip]);
    t.assert_nothing_mounted();
}

#[test]
fn privileged_a_published_port_and_two_containers_talking() {
    if !require_root("privileged_a_published_port_and_two_containers_talking") {
        return;
    }
    let t = NetEnv::new();
    let (srv, cli, dup) = (t.id("srv"), t.id("cli"), t.id("dup"));
    let leased = common::lease::port();
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
        "while true; do echo published | busybox nc -l -p 8080; done",
    ]);
    let status: serde_json::Value =
        serde_json::from_str(&t.ok(&["status", "--json", &srv])).unwrap();
    let net = &status["network_infos"][0];
    assert_eq!(net["name"], "phobos");
    assert_eq!(net["interface"], "eth0");
    assert_eq!(net["port_mappings"][0]["host_port"], port);
    let ip = net["ip_addresses"][0]["ip_address"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(t.ok(&["ps"]).contains(&ip), "ps shows the address");

    // From the host's 127.0.0.1 through portmap.
    await_reply(port, "published\n", PATIENCE);
    // From another container over the bridge.
    let script = format!(
        "i=0; while [ $i -lt {} ]; do busybox nc {ip} 8080 </dev/null && exit 0; sleep 1; i=$((i+1)); done; exit 1",
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
    assert_eq!(out, "published\n");

    let stats: serde_json::Value = serde_json::from_str(&t.ok(&["stats", "--json", &srv])).unwrap();
    let s = &stats;
    assert!(s["net_rx_bytes"].as_u64().unwrap() > 0, "{s}");
    assert!(s["net_tx_packets"].as_u64().unwrap() > 0, "{s}");

    // The port is the container's: another may not publish it.
    let out = t.run(&[
        "run",
        "--id",
        &dup,
        "--network",
        "phobos",
        "-p",
        &publish,
        "--",
        "true",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "host port {port}/tcp is already published by container {srv}"
        )),
        "{err}"
    );
    assert!(!t.net_dir().join("containers").join(&dup).exists());
    assert_eq!(bridge_ports(&t.bridges[0]).len(), 1, "only srv's veth");

    t.ok(&["destroy", &srv]);
    t.assert_gone(&srv, std::slice::from_ref(&ip));
    t.assert_gone(&cli, &[ip]);
    assert!(
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).is_err()
    );
}

#[test]
fn privileged_network_none_has_only_loopback() {
    if !require_root("privileged_network_none_has_only_loopback") {
        return;
    }
    let t = NetEnv::new();
    let alone = t.id("alone");
    let out = t.ok(&[
        "run",
        "--id",
        &alone,
        "--network",
        "none",
        "--",
        "cat",
        "/proc/net/dev",
    ]);
    let devs: Vec<&str> = out
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(devs, ["lo"], "{out}");
    t.assert_gone(&alone, &[]);
}

#[test]
fn privileged_network_mistakes_are_one_line_and_change_nothing() {
    if !require_root("privileged_network_mistakes_are_one_line_and_change_nothing") {
        return;
    }
    let t = NetEnv::new();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let taken = format!("{busy_port}:80");
    for (args, code, want) in [
        (
            vec!["--network", "nope"],
            2,
            "unknown network 'nope' (networks found: phobos, second)".to_owned(),
        ),
        (
            vec!["-p", "1:2:3", "--network", "phobos"],
            2,
            "invalid --publish '1:2:3'".to_owned(),
        ),
        (
            vec!["-p", "80:80"],
            2,
            "--publish needs a network".to_owned(),
        ),
        (
            vec!["--network", "phobos", "-p", &taken],
            -1,
            format!("host port {busy_port}/tcp is already in use on this host"),
        ),
    ] {
        let mut full = vec!["run", "--id", "bad"];
        full.extend(args.iter().copied());
        full.extend(["--", "true"]);
        let out = t.run(&full);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&want), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        if code == 2 {
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert!(
                !t.env.container_dir("bad").exists(),
                "{args:?} created the container"
            );
        } else {
            assert!(
                !out.status.success() && out.status.code() != Some(2),
                "{args:?}"
            );
            t.ok(&["state", "--rm"]);
        }
        t.assert_gone("bad", &[]);
    }
    // A malformed configuration names its file.
    let conf_dir = t.config.parent().unwrap().to_owned();
    std::fs::write(
        conf_dir.join("30-broken.conflist"),
        "{\"name\": \"x\", \"plugins\": [",
    )
    .unwrap();
    let out = t.run(&["run", "--network", "phobos", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("30-broken.conflist") && err.contains("not valid JSON"),
        "{err}"
    );
}

/// Launches `phobos run --network slow -p PORT:80` and SIGKILLs it while
/// the slow plugin hangs in ADD (after bridge, host-local and portmap ran);
/// returns once both are dead.
fn launch_and_kill_during_add(t: &NetEnv, config: &Path, id: &str, port: u16, marker: &Path) {
    let mut child = t
        .env
        .cmd()
        .arg("--config")
        .arg(config)
        .args(["run", "--id", id, "--network", "slow", "-p"])
        .arg(format!("{port}:80"))
        .args(["--", "true"])
        .spawn()
        .unwrap();
    assert!(
        eventually(PATIENCE, || marker.exists()),
        "the slow plugin never started for {id}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let pid: i32 = std::fs::read_to_string(marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: kill(2) of the plugin process this test's script recorded.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    std::fs::remove_file(marker).unwrap();
}

#[test]
fn privileged_recover_detaches_a_killed_launch_and_an_orphan() {
    if !require_root("privileged_recover_detaches_a_killed_launch_and_an_orphan") {
        return;
    }
    let t = NetEnv::new();
    // A plugin that records its pid and hangs in ADD; quick for DEL.
    let bin = t.env.work.path().join("plugins");
    std::fs::create_dir(&bin).unwrap();
    let marker = t.env.work.path().join("slow.pid");
    let slow = bin.join("phobos-test-slow");
    std::fs::write(
        &slow,
        format!(
            "#!/bin/sh\n[ \"$CNI_COMMAND\" = ADD ] || {{ echo '{{}}'; exit 0; }}\n\
             echo $$ > {m}.tmp\nmv {m}.tmp {m}\nexec sleep 120\n",
            m = marker.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&slow, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let conf = t._conf.path();
    let ipam = t.env.runtime.path().join("test-ipam");
    std::fs::write(
        conf.join("30-slow.conflist"),
        format!(
            r#"{{"cniVersion":"1.0.0","name":"slow","plugins":[
            {{"type":"bridge","bridge":"{}","ipam":{{"type":"host-local","ranges":[[{{"subnet":"{}"}}]],"dataDir":"{}"}}}},
            {{"type":"portmap","capabilities":{{"portMappings":true}}}},
            {{"type":"phobos-test-slow"}}]}}"#,
            t.bridges[0],
            t.subnet,
            ipam.display()
        ),
    )
    .unwrap();
    let config = t.env.work.path().join("slow.toml");
    std::fs::write(
        &config,
        format!(
            "network_cni_config_dir = \"{}\"\nnetwork_cni_plugins_dir = \"/usr/lib/cni:{}\"\n",
            conf.display(),
            bin.display()
        ),
    )
    .unwrap();
    let (l1, l2) = (common::lease::port(), common::lease::port());
    let (p1, p2) = (l1.port, l2.port);
    let (killed, orphan) = (t.id("killed"), t.id("orphan"));
    launch_and_kill_during_add(&t, &config, &killed, p1, &marker);
    launch_and_kill_during_add(&t, &config, &orphan, p2, &marker);
    assert_eq!(bridge_ports(&t.bridges[0]).len(), 2, "two veths left");
    let ports = t.net_dir().join("ports");
    assert!(ports.join(format!("tcp-{p1}")).exists());
    assert!(ports.join(format!("tcp-{p2}")).exists());
    let rules = iptables_save;
    assert!(rules().contains(&format!("--dport {p2}")), "portmap's DNAT");
    // The orphan's record is gone (as after `state --rm` of a container
    // whose teardown could not finish): only its network state is left.
    std::fs::remove_dir_all(t.env.runtime.path().join("containers").join(&orphan)).unwrap();

    let out = t.ok(&["recover", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        report["orphan_networks"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == orphan.as_str())),
        "{report}"
    );
    assert!(report["errors"].as_array().unwrap().is_empty(), "{report}");
    for id in [&killed, &orphan] {
        t.assert_gone(id, &[]);
    }
    t.assert_nothing_mounted();
    assert!(
        !ports.join(format!("tcp-{p1}")).exists(),
        "host port released"
    );
    assert!(
        !ports.join(format!("tcp-{p2}")).exists(),
        "host port released"
    );
    let rules = rules();
    for p in [p1, p2] {
        assert!(
            !rules.contains(&format!("--dport {p}")),
            "DNAT for {p} left"
        );
    }
    // The ports can be published again.
    TcpListener::bind(("0.0.0.0", p1)).expect("the port is free on the host");
}
