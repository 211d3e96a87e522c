//! Real CNI networks: Debian's reference plugins (bridge, host-local,
//! portmap, firewall, in /usr/lib/cni), the host's iptables, network
//! namespaces and bridges this test creates. Every test uses its own
//! bridge name and /24 subnet (10.218.x.0/24, leased host-wide), sends
//! traffic only between its own namespaces and the host, bounded in count
//! and time, and removes its bridge even when it fails.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use phobos_net::{
    ContainerNet, ContainerNetwork, NetError, NetRoot, NetSettings, NetworkInfo, Networks,
    PortMapping, Subnet, netns,
};

#[path = "../../cli/tests/common/lease.rs"]
#[allow(dead_code)]
mod lease;
use lease::{Lease, lease, remove_stale_link};

const PLUGINS: &str = "/usr/lib/cni";
/// The most a test waits for a connection, an answer or a process to reach
/// a point: generous, as the CLI tests' `PATIENCE` (the machine may be
/// loaded); every wait returns as soon as its condition holds.
const PATIENCE: Duration = Duration::from_secs(120);

fn root_or_skip(test: &str) -> bool {
    if !nix::unistd::Uid::effective().is_root() {
        println!("skipping {test}: needs root");
        return false;
    }
    for plugin in ["bridge", "host-local", "portmap", "firewall"] {
        assert!(
            Path::new(PLUGINS).join(plugin).exists(),
            "{PLUGINS}/{plugin} is missing: install Debian's containernetworking-plugins (scripts/test.sh does)"
        );
    }
    true
}

/// One test's world: a runtime dir, a bridge, a subnet, a config dir.
struct World {
    _tmp: tempfile::TempDir,
    root: NetRoot,
    bridge: String,
    subnet: Subnet,
    settings: NetSettings,
    containers: Vec<ContainerNet>,
    /// More bridges the test's configurations name.
    extra_bridges: Vec<String>,
    /// Held until the bridges are gone (fields drop after [`Drop::drop`]).
    _lease: Lease,
}

impl World {
    fn new() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let lease = lease("net-cni", 250);
        let bridge = format!("phct{}", lease.n);
        remove_stale_link(&bridge);
        remove_stale_link(&format!("{bridge}x"));
        let subnet: Subnet = format!("10.218.{}.0/24", lease.n).parse().expect("subnet");
        let conf = tmp.path().join("cni.d");
        std::fs::create_dir(&conf).expect("conf dir");
        let settings = NetSettings {
            config_dir: Some(conf),
            plugin_dirs: vec![PathBuf::from(PLUGINS)],
            default_subnet: subnet,
            default_bridge: bridge.clone(),
            plugin_timeout: Duration::from_secs(60),
        };
        let root = NetRoot::new(&tmp.path().join("run"));
        std::fs::create_dir(tmp.path().join("run")).expect("run dir");
        root.prepare().expect("prepare the network root");
        World {
            _tmp: tmp,
            root,
            bridge,
            subnet,
            settings,
            containers: Vec::new(),
            extra_bridges: Vec::new(),
            _lease: lease,
        }
    }

    fn conf_dir(&self) -> &Path {
        self.settings.config_dir.as_deref().expect("conf dir")
    }

    fn networks(&self) -> Networks {
        Networks::load(&self.settings, &self.root.ipam_dir()).expect("load networks")
    }

    fn container(&mut self, id: &str) -> ContainerNet {
        let c = self.root.container(id).expect("container");
        c.create_netns().expect("create netns");
        self.containers.push(c.clone());
        c
    }

    fn default_request(ports: &[PortMapping]) -> Vec<NetworkInfo> {
        vec![NetworkInfo {
            name: "phobos".into(),
            port_mappings: ports.to_vec(),
        }]
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let plugins = self.settings.plugins();
        for c in &self.containers {
            if let Err(e) = c.detach(&plugins) {
                eprintln!("cleanup: detach {}: {e}", c.dir().display());
            }
        }
        if let Err(e) = self.root.remove_host_rules(&self.bridge) {
            eprintln!("cleanup: {e}");
        }
        if let Err(e) = self.root.unmount() {
            eprintln!("cleanup: {e}");
        }
        if Path::new("/sys/class/net").join(&self.bridge).exists() {
            let _ = Command::new("ip")
                .args(["link", "del", &self.bridge])
                .status();
        }
    }
}

fn ipv4(c: &ContainerNet) -> Ipv4Addr {
    let a = c.attachments().expect("attachments");
    match a[0].ip_addresses[0].parse::<IpAddr>().expect("ip") {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(v6) => panic!("expected IPv4, got {v6}"),
    }
}

fn iptables_save() -> String {
    let out = Command::new("iptables-save")
        .output()
        .expect("iptables-save");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn host_mounts() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo")
}

fn bridge_ports(bridge: &str) -> Vec<String> {
    let dir = Path::new("/sys/class/net").join(bridge).join("brif");
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn ipam_reservations(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(nets) = std::fs::read_dir(dir) else {
        return found;
    };
    for net in nets.flatten() {
        for entry in std::fs::read_dir(net.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.parse::<IpAddr>().is_ok() {
                found.push(name);
            }
        }
    }
    found
}

/// Asserts nothing of container `c` is left on the host.
fn assert_gone(world: &World, c: &ContainerNet, ips: &[Ipv4Addr]) {
    assert!(!c.dir().exists(), "state dir left: {}", c.dir().display());
    let ns = c.netns_path();
    assert!(
        !host_mounts().contains(&ns.display().to_string()),
        "netns mount left: {}",
        ns.display()
    );
    assert_eq!(
        bridge_ports(&world.bridge),
        Vec::<String>::new(),
        "veth left on the bridge"
    );
    let rules = iptables_save();
    let id = c.cni_container_id();
    assert!(
        !rules.contains(&id),
        "iptables rule naming {id} left:\n{rules}"
    );
    for ip in ips {
        assert!(
            !rules.contains(&format!("{ip}/")) && !rules.contains(&format!("{ip}:")),
            "iptables rule for {ip} left:\n{rules}"
        );
    }
    assert_eq!(
        ipam_reservations(&world.root.ipam_dir()),
        Vec::<String>::new(),
        "host-local reservation left"
    );
}

/// A one-shot server in the namespace at `ns`: answers the first
/// connection with `reply` and returns what it read.
fn serve_once(
    ns: &Path,
    addr: SocketAddr,
    reply: &'static [u8],
) -> std::thread::JoinHandle<Vec<u8>> {
    let listener = netns::run_in(ns, || TcpListener::bind(addr))
        .expect("enter netns")
        .expect("bind in the container");
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut got = [0u8; 64];
        let n = s.read(&mut got).unwrap_or(0);
        s.write_all(reply).expect("reply");
        got[..n].to_vec()
    })
}

fn exchange(stream: std::io::Result<TcpStream>) -> Vec<u8> {
    let mut s = stream.expect("connect");
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(b"ping").expect("send");
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).expect("read reply");
    reply
}

#[test]
fn privileged_two_containers_talk_over_the_default_bridge_and_leave_nothing() {
    if !root_or_skip("privileged_two_containers_talk_over_the_default_bridge_and_leave_nothing") {
        return;
    }
    let mut world = World::new();
    let networks = world.networks();
    let plugins = world.settings.plugins();
    let a = world.container("talk-a");
    let b = world.container("talk-b");
    let at_a = a
        .attach(&networks, &plugins, &World::default_request(&[]))
        .expect("attach a");
    b.attach(&networks, &plugins, &World::default_request(&[]))
        .expect("attach b");
    assert_eq!(at_a[0].name, "phobos");
    assert_eq!(at_a[0].ifname, "eth0");
    let (ip_a, ip_b) = (ipv4(&a), ipv4(&b));
    let net = u32::from(world.subnet.addr) >> 8;
    assert_eq!(u32::from(ip_a) >> 8, net, "{ip_a} not in {}", world.subnet);
    assert_ne!(ip_a, ip_b);
    assert_eq!(bridge_ports(&world.bridge).len(), 2);
    assert_eq!(
        netns::interfaces(&a.netns_path()).unwrap().len(),
        2,
        "lo and eth0"
    );
    // As the bridge plugin makes them: hairpin ports, and a default route
    // through the bridge's address, the subnet's first.
    for port in bridge_ports(&world.bridge) {
        let knob = format!("/sys/class/net/{}/brport/hairpin_mode", world.bridge);
        let knob = knob.replace(
            &format!("{}/brport", world.bridge),
            &format!("{port}/brport"),
        );
        assert_eq!(
            std::fs::read_to_string(&knob).unwrap().trim(),
            "1",
            "{knob}"
        );
    }
    let routes = netns::run_in(&a.netns_path(), || {
        std::fs::read_to_string("/proc/thread-self/net/route").unwrap()
    })
    .unwrap();
    let gateway = u32::from(world.subnet.addr) + 1;
    let gateway_hex = format!("{:08X}", u32::from_be(gateway));
    assert!(
        routes
            .lines()
            .any(|l| l.starts_with("eth0\t00000000\t") && l.contains(&gateway_hex)),
        "no default route via the gateway: {routes}"
    );
    // The network's masquerade and forward rules exist once, not per
    // container; no per-container chain, and no portmap without ports.
    let tag = format!("phobos network {}", world.bridge);
    let rules = iptables_save();
    let ours: Vec<&str> = rules.lines().filter(|l| l.contains(&tag)).collect();
    assert_eq!(
        ours.len(),
        3,
        "one masquerade and two forward rules: {ours:?}"
    );
    assert!(
        ours.iter()
            .any(|l| l.contains(&format!("-s {}", world.subnet)) && l.contains("MASQUERADE")),
        "{ours:?}"
    );
    assert!(
        !rules.contains(&a.cni_container_id()),
        "per-container rules:\n{rules}"
    );
    assert!(
        !std::fs::read_to_string(a.dir().join("00.json"))
            .unwrap()
            .contains("portmap"),
        "portmap runs only for published ports"
    );

    let server = serve_once(&a.netns_path(), SocketAddr::from((ip_a, 7001)), b"pong");
    let reply = exchange(
        netns::run_in(&b.netns_path(), || {
            TcpStream::connect_timeout(&SocketAddr::from((ip_a, 7001)), PATIENCE)
        })
        .expect("enter b"),
    );
    assert_eq!(reply, b"pong");
    assert_eq!(server.join().expect("server"), b"ping");

    let stats = a.stats().expect("stats");
    assert!(
        stats.net_rx_packets >= 2 && stats.net_rx_bytes > 0,
        "{stats:?}"
    );
    assert!(
        stats.net_tx_packets >= 2 && stats.net_tx_bytes > 0,
        "{stats:?}"
    );

    // /etc files as Mesos writes them.
    let files = a
        .write_etc_files(
            "talk-a",
            &a.attachments().unwrap(),
            Path::new("/etc/resolv.conf"),
        )
        .expect("etc files");
    assert_eq!(
        std::fs::read_to_string(&files.hosts).unwrap(),
        format!("127.0.0.1 localhost\n{ip_a} talk-a\n")
    );
    assert_eq!(
        std::fs::read_to_string(&files.hostname).unwrap(),
        "talk-a\n"
    );
    assert_eq!(
        std::fs::read(&files.resolv_conf).unwrap(),
        std::fs::read("/etc/resolv.conf").unwrap()
    );

    a.check(&plugins).expect("CHECK of a healthy container");
    for c in [&a, &b] {
        c.detach(&plugins).expect("detach");
        c.detach(&plugins).expect("detach is idempotent");
    }
    assert_gone(&world, &a, &[ip_a, ip_b]);
    assert_gone(&world, &b, &[ip_a, ip_b]);
    world
        .root
        .remove_host_rules(&world.bridge)
        .expect("remove the network's rules");
    assert!(
        !iptables_save().contains(&tag),
        "the network's rules are removed"
    );
}

/// The host end of a container's built-in network (the result's
/// interface without a sandbox on the bridge).
fn host_end(c: &ContainerNet) -> String {
    let attachments = c.attachments().expect("attachments");
    let result = attachments[0].result.as_ref().expect("a complete ADD");
    result
        .interfaces
        .iter()
        .find(|i| i.sandbox.is_empty() && i.name.starts_with("ph") && i.name.len() == 14)
        .expect("the host end in the result")
        .name
        .clone()
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Detach lets the kernel's namespace teardown delete the built-in
/// network's veth pair (one batch for all namespaces dying together) and
/// returns only once it is gone. The other ways end the same: with the
/// namespace pinned (a descriptor of it held open, so the kernel cannot
/// take it) detach deletes the pair itself after its bound; and a detach
/// killed after unbinding the namespace leaves a checkpoint whose DEL (as
/// recovery runs it) finds the link gone or deletes it.
#[test]
fn privileged_detach_returns_with_the_veth_gone_however_it_goes() {
    if !root_or_skip("privileged_detach_returns_with_the_veth_gone_however_it_goes") {
        return;
    }
    let mut world = World::new();
    let networks = world.networks();
    let plugins = world.settings.plugins();
    let free = world.container("gone-free");
    let pinned = world.container("gone-pinned");
    let crashed = world.container("gone-crashed");
    let mut ips = Vec::new();
    let mut ends = Vec::new();
    for c in [&free, &pinned, &crashed] {
        c.attach(&networks, &plugins, &World::default_request(&[]))
            .expect("attach");
        ips.push(ipv4(c));
        ends.push(host_end(c));
    }
    let mut on_bridge = bridge_ports(&world.bridge);
    on_bridge.sort();
    let mut expected = ends.clone();
    expected.sort();
    assert_eq!(on_bridge, expected, "the three host ends on the bridge");

    free.detach(&plugins).expect("detach");
    assert!(!link_exists(&ends[0]), "{} left after detach", ends[0]);

    let pin = std::fs::File::open(pinned.netns_path()).expect("open the namespace");
    pinned
        .detach(&plugins)
        .expect("detach of a pinned namespace");
    assert!(
        !link_exists(&ends[1]),
        "{} left after detach with the namespace pinned",
        ends[1]
    );
    drop(pin);

    // Killed right after the unbind: the checkpoint is all that is left.
    netns::remove(&crashed.netns_path()).expect("unbind");
    assert!(crashed.dir().join("00.json").exists());
    crashed.detach(&plugins).expect("detach after the unbind");
    assert!(
        !link_exists(&ends[2]),
        "{} left after recovery's DEL",
        ends[2]
    );

    for c in [&free, &pinned, &crashed] {
        assert_gone(&world, c, &ips);
    }
}

#[test]
fn privileged_published_port_answers_on_localhost_and_is_exclusive() {
    if !root_or_skip("privileged_published_port_answers_on_localhost_and_is_exclusive") {
        return;
    }
    let mut world = World::new();
    let networks = world.networks();
    let plugins = world.settings.plugins();
    let leased = lease::port();
    let host_port = leased.port;
    let mapping: PortMapping = format!("{host_port}:8080").parse().unwrap();
    let names = vec!["phobos".to_owned()];
    let ContainerNetwork::Cni { networks: requests } =
        phobos_net::from_cli(&names, &[mapping], &networks).unwrap()
    else {
        panic!("expected CNI networks");
    };
    let web = world.container("web");
    let at = web
        .attach(&networks, &plugins, &requests)
        .expect("attach with a port");
    assert_eq!(at[0].port_mappings, [mapping]);
    let ip = ipv4(&web);

    let server = serve_once(
        &web.netns_path(),
        SocketAddr::from(([0, 0, 0, 0], 8080)),
        b"published",
    );
    let reply = exchange(TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], host_port)),
        PATIENCE,
    ));
    assert_eq!(reply, b"published");
    server.join().expect("server");

    // The same host port for a second container: refused, nothing left.
    let other = world.container("web2");
    let err = other.attach(&networks, &plugins, &requests).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("host port {host_port}/tcp is already published by container web")
    );
    assert!(other.attachments().unwrap().is_empty());
    assert_eq!(
        bridge_ports(&world.bridge).len(),
        1,
        "the refused container has no veth"
    );

    web.detach(&plugins).expect("detach");
    // Freed: the other container may publish it now.
    other
        .attach(&networks, &plugins, &requests)
        .expect("port free again");
    let ip2 = ipv4(&other);
    other.detach(&plugins).expect("detach");
    assert_gone(&world, &web, &[ip, ip2]);
    assert_gone(&world, &other, &[ip, ip2]);
}

#[test]
fn privileged_a_host_port_in_use_is_refused_with_nothing_left() {
    if !root_or_skip("privileged_a_host_port_in_use_is_refused_with_nothing_left") {
        return;
    }
    let mut world = World::new();
    let networks = world.networks();
    let plugins = world.settings.plugins();
    let busy = TcpListener::bind("127.0.0.1:0").expect("host socket");
    let port = busy.local_addr().unwrap().port();
    let c = world.container("busy");
    let requests = World::default_request(&[format!("{port}:80").parse().unwrap()]);
    let err = c.attach(&networks, &plugins, &requests).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("host port {port}/tcp is already in use on this host")
    );
    assert!(!err.is_usage());
    assert!(c.attachments().unwrap().is_empty());
    assert_eq!(bridge_ports(&world.bridge), Vec::<String>::new());
    assert!(
        std::fs::read_dir(world.root.dir().join("ports"))
            .unwrap()
            .next()
            .is_none()
    );
    c.detach(&plugins).expect("detach");
    assert_gone(&world, &c, &[]);
}

#[test]
fn privileged_a_failing_plugin_undoes_the_networks_already_joined() {
    if !root_or_skip("privileged_a_failing_plugin_undoes_the_networks_already_joined") {
        return;
    }
    let mut world = World::new();
    let broken_bridge = format!("{}x", world.bridge);
    world.extra_bridges.push(broken_bridge.clone());
    std::fs::write(
        world.conf_dir().join("broken.conflist"),
        format!(
            r#"{{"cniVersion":"1.0.0","name":"broken","plugins":[
                {{"type":"bridge","bridge":"{broken_bridge}","ipam":{{"type":"host-local","subnet":"not-a-subnet","dataDir":"{}"}}}}]}}"#,
            world.root.ipam_dir().display()
        ),
    )
    .unwrap();
    let networks = world.networks();
    let plugins = world.settings.plugins();
    let c = world.container("halfway");
    let requests = vec![
        NetworkInfo {
            name: "phobos".into(),
            port_mappings: vec![],
        },
        NetworkInfo {
            name: "broken".into(),
            port_mappings: vec![],
        },
    ];
    let err = c.attach(&networks, &plugins, &requests).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("CNI ADD of network 'broken' failed in plugin 'bridge': "),
        "{msg}"
    );
    assert!(
        msg.contains("not-a-subnet"),
        "the plugin's own message: {msg}"
    );
    assert!(matches!(err, NetError::Plugin { .. }));
    assert!(c.attachments().unwrap().is_empty(), "no checkpoint left");
    assert_eq!(
        bridge_ports(&world.bridge),
        Vec::<String>::new(),
        "eth0's veth removed"
    );
    assert_eq!(
        ipam_reservations(&world.root.ipam_dir()),
        Vec::<String>::new()
    );
    c.detach(&plugins).expect("detach");
    assert_gone(&world, &c, &[]);
    if Path::new("/sys/class/net").join(&broken_bridge).exists() {
        let _ = Command::new("ip")
            .args(["link", "del", &broken_bridge])
            .status();
    }
}

#[test]
fn privileged_network_none_has_only_loopback_up() {
    if !root_or_skip("privileged_network_none_has_only_loopback_up") {
        return;
    }
    let mut world = World::new();
    let networks = world.networks();
    let plugins = world.settings.plugins();
    let c = world.container("alone");
    let attached = c
        .attach(&networks, &plugins, &[])
        .expect("no networks: lo only");
    assert!(attached.is_empty());
    assert_eq!(netns::interfaces(&c.netns_path()).unwrap(), ["lo"]);
    // lo is up: a connection to 127.0.0.1 inside the namespace works.
    let server = serve_once(
        &c.netns_path(),
        SocketAddr::from(([127, 0, 0, 1], 7002)),
        b"lo",
    );
    let reply = exchange(
        netns::run_in(&c.netns_path(), || {
            TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], 7002)), PATIENCE)
        })
        .unwrap(),
    );
    assert_eq!(reply, b"lo");
    server.join().unwrap();
    assert_eq!(
        c.stats().unwrap(),
        phobos_net::NetStats::default(),
        "lo is not counted"
    );
    c.detach(&plugins).expect("detach");
    assert_gone(&world, &c, &[]);
}

#[test]
fn privileged_a_process_namespace_is_bound_and_outlives_the_process() {
    if !root_or_skip("privileged_a_process_namespace_is_bound_and_outlives_the_process") {
        return;
    }
    let mut world = World::new();
    let networks = world.networks();
    let plugins = world.settings.plugins();
    let mut child = Command::new("unshare")
        .args(["--net", "sleep", "60"])
        .spawn()
        .expect("unshare --net");
    let pid = child.id();
    let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
    let deadline = std::time::Instant::now() + PATIENCE;
    while std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .ok()
        .as_ref()
        == Some(&ours)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "unshare did not enter a new netns"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let c = world.root.container("proc").unwrap();
    world.containers.push(c.clone());
    c.bind_netns(pid).expect("bind");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        netns::is_bound(&c.netns_path()),
        "the namespace outlives its process"
    );
    c.attach(&networks, &plugins, &World::default_request(&[]))
        .expect("attach after exit");
    let ip = ipv4(&c);
    c.detach(&plugins).expect("detach");
    assert_gone(&world, &c, &[ip]);
}

#[test]
fn privileged_a_failing_chained_plugin_undoes_its_own_network() {
    if !root_or_skip("privileged_a_failing_chained_plugin_undoes_its_own_network") {
        return;
    }
    let mut world = World::new();
    // The list's first plugin (bridge) succeeds, the second fails.
    std::fs::write(
        world.conf_dir().join("chain.conflist"),
        format!(
            r#"{{"cniVersion":"1.0.0","name":"chain","plugins":[
                {{"type":"bridge","bridge":"{}","ipam":{{"type":"host-local","subnet":"{}","dataDir":"{}"}}}},
                {{"type":"tuning","sysctl":{{"net.ipv4.conf.eth0.phobos_no_such_knob":"1"}}}}]}}"#,
            world.bridge,
            world.subnet,
            world.root.ipam_dir().display()
        ),
    )
    .unwrap();
    let networks = world.networks();
    let plugins = world.settings.plugins();
    let c = world.container("chained");
    let requests = vec![NetworkInfo {
        name: "chain".into(),
        port_mappings: vec![],
    }];
    let err = c.attach(&networks, &plugins, &requests).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("CNI ADD of network 'chain' failed in plugin 'tuning': "),
        "{msg}"
    );
    assert!(msg.contains("phobos_no_such_knob"), "{msg}");
    assert!(c.attachments().unwrap().is_empty(), "no checkpoint left");
    assert_eq!(
        bridge_ports(&world.bridge),
        Vec::<String>::new(),
        "the bridge plugin's veth was deleted"
    );
    assert_eq!(
        ipam_reservations(&world.root.ipam_dir()),
        Vec::<String>::new()
    );
    c.detach(&plugins).expect("detach");
    assert_gone(&world, &c, &[]);
}

/// The child half of the crash test: attaches and is SIGKILLed during ADD.
fn crash_child() {
    let var = |k: &str| std::env::var(k).expect(k);
    let settings = NetSettings {
        config_dir: Some(PathBuf::from(var("PHOBOS_NET_CONF"))),
        plugin_dirs: NetSettings::split_plugin_dirs(&var("PHOBOS_NET_PLUGINS")),
        default_subnet: var("PHOBOS_NET_SUBNET").parse().expect("subnet"),
        default_bridge: var("PHOBOS_NET_BRIDGE"),
        ..NetSettings::default()
    };
    let root = NetRoot::new(Path::new(&var("PHOBOS_NET_RUNTIME")));
    let networks = Networks::load(&settings, &root.ipam_dir()).expect("load");
    let c = root.container("killed").expect("container");
    let requests = vec![NetworkInfo {
        name: var("PHOBOS_NET_CRASH_NETWORK"),
        port_mappings: std::env::var("PHOBOS_NET_CRASH_PORT")
            .map(|p| vec![p.parse().expect("port mapping")])
            .unwrap_or_default(),
    }];
    let _ = c.attach(&networks, &settings.plugins(), &requests);
    panic!("the parent should have killed this process during ADD");
}

#[test]
fn privileged_a_launcher_killed_during_add_leaves_nothing_after_detach() {
    let test = "privileged_a_launcher_killed_during_add_leaves_nothing_after_detach";
    if std::env::var_os("PHOBOS_NET_CRASH_CHILD").is_some() {
        crash_child();
        return;
    }
    if !root_or_skip(test) {
        return;
    }
    killed_during_add(World::new(), test, "phobos-test-slow", "slow", None);
}

/// The built-in network's bridge step runs in process: a launcher killed
/// after it (here in the `portmap` that follows for a published port)
/// leaves a veth, an address reservation and a port reservation that only
/// the checkpoint knows of; DEL from it removes them all.
#[test]
fn privileged_a_launcher_killed_during_the_builtin_add_leaves_nothing_after_detach() {
    let test = "privileged_a_launcher_killed_during_the_builtin_add_leaves_nothing_after_detach";
    if std::env::var_os("PHOBOS_NET_CRASH_CHILD").is_some() {
        crash_child();
        return;
    }
    if !root_or_skip(test) {
        return;
    }
    let leased = lease::port();
    let mapping = format!("{}:80", leased.port);
    killed_during_add(World::new(), test, "portmap", "phobos", Some(&mapping));
}

/// Starts a child that attaches `network` (with `port` published) and is
/// SIGKILLed while the plugin `slow_type` (a stub in a plugin directory
/// searched after the real one, or before it for `portmap`) hangs; then
/// detaches from the checkpoint as recover does and checks nothing is left.
fn killed_during_add(
    mut world: World,
    test: &str,
    slow_type: &str,
    network: &str,
    port: Option<&str>,
) {
    let tmp = world
        .root
        .dir()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    // A plugin that records its pid, says it started, and hangs.
    let bin = tmp.join("plugins");
    std::fs::create_dir(&bin).unwrap();
    let marker = tmp.join("slow.pid");
    let slow = bin.join(slow_type);
    std::fs::write(
        &slow,
        format!(
            "#!/bin/sh\necho $$ > {}.tmp\nmv {0}.tmp {0}\nexec sleep 120\n",
            marker.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&slow, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(
        world.conf_dir().join("slow.conflist"),
        format!(
            r#"{{"cniVersion":"1.0.0","name":"slow","plugins":[
                {{"type":"bridge","bridge":"{}","ipam":{{"type":"host-local","subnet":"{}","dataDir":"{}"}}}},
                {{"type":"{slow_type}"}}]}}"#,
            world.bridge,
            world.subnet,
            world.root.ipam_dir().display()
        ),
    )
    .unwrap();
    // The stub comes first when it replaces a real plugin.
    let plugin_path = if Path::new(PLUGINS).join(slow_type).exists() {
        format!("{}:{PLUGINS}", bin.display())
    } else {
        format!("{PLUGINS}:{}", bin.display())
    };
    let c = world.container("killed");
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args(["--exact", test, "--nocapture"])
        .env("PHOBOS_NET_CRASH_CHILD", "1")
        .env("PHOBOS_NET_CRASH_NETWORK", network)
        .env("PHOBOS_NET_CONF", world.conf_dir())
        .env("PHOBOS_NET_PLUGINS", &plugin_path)
        .env("PHOBOS_NET_SUBNET", world.subnet.to_string())
        .env("PHOBOS_NET_BRIDGE", &world.bridge)
        .env("PHOBOS_NET_RUNTIME", world.root.dir().parent().unwrap());
    if let Some(port) = port {
        child.env("PHOBOS_NET_CRASH_PORT", port);
    }
    let mut child = child.spawn().expect("spawn the attaching child");
    let deadline = std::time::Instant::now() + PATIENCE;
    while !marker.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the slow plugin never started"
        );
        assert!(child.try_wait().unwrap().is_none(), "the child ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let slow_pid: i32 = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(slow_pid),
        nix::sys::signal::SIGKILL,
    );

    // The bridge step's work is there, recorded in the checkpoint.
    assert_eq!(
        bridge_ports(&world.bridge).len(),
        1,
        "veth made before the kill"
    );
    let seen = c.attachments().expect("checkpoint readable");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].result, None, "ADD never completed");
    assert_eq!(ipam_reservations(&world.root.ipam_dir()).len(), 1);
    let ports_dir = world.root.dir().join("ports");
    let reserved_ports = || std::fs::read_dir(&ports_dir).unwrap().count();
    assert_eq!(reserved_ports(), usize::from(port.is_some()));

    // What recover does for a dead container: detach from the checkpoints.
    let mut settings = world.settings.clone();
    settings.plugin_dirs = NetSettings::split_plugin_dirs(&plugin_path);
    // The hanging plugin's DEL would hang too; make DEL of it quick.
    std::fs::write(&slow, "#!/bin/sh\necho '{}'\n").unwrap();
    c.detach(&settings.plugins())
        .expect("detach after the crash");
    assert_gone(&world, &c, &[]);
    assert_eq!(reserved_ports(), 0, "port reservation left");
}
