//! The network state directory's own mount and the built-in network's
//! IPv4-only veths, on the real kernel: a tmpfs while containers have
//! state (unmounted after the last detach), a bind of the directory
//! itself when an older version left state on the disk underneath, and no
//! IPv6 address generation on either end of a veth. Each test uses its own
//! runtime directory, bridge (`phxs…`) and /24 subnet (10.214.x.0/24 from
//! the pid), and removes its bridge and rules even when it fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use phobos_net::{NetRoot, NetSettings, NetworkInfo, Networks, netns};

fn is_root(test: &str) -> bool {
    if nix::unistd::Uid::effective().is_root() {
        return true;
    }
    println!("skipping {test}: needs root");
    false
}

fn fs_type(path: &Path) -> nix::sys::statfs::FsType {
    nix::sys::statfs::statfs(path)
        .expect("statfs")
        .filesystem_type()
}

/// Whether mountinfo names `path` as a mount point.
fn mounted(path: &Path) -> bool {
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|p| Path::new(p) == canonical)
}

#[test]
fn privileged_the_state_directory_is_a_tmpfs_only_while_used_and_never_hides_older_state() {
    let test =
        "privileged_the_state_directory_is_a_tmpfs_only_while_used_and_never_hides_older_state";
    if !is_root(test) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = NetRoot::new(tmp.path());
    let c = root.container("a").expect("container");
    c.create_netns().expect("create netns");
    assert_eq!(
        fs_type(root.dir()),
        nix::sys::statfs::TMPFS_MAGIC,
        "the state directory is a tmpfs"
    );
    assert!(netns::is_bound(&c.netns_path()));
    c.detach(&NetSettings::default().plugins()).expect("detach");
    assert!(root.release_if_unused().expect("release"));
    assert!(!mounted(root.dir()), "unmounted after the last container");
    assert!(
        !root.dir().join("containers").exists(),
        "nothing of the tmpfs is left on the disk"
    );

    // State an older version left on the disk stays visible: the
    // directory is bound onto itself, not covered by a tmpfs.
    let old = root.dir().join("containers/old");
    std::fs::create_dir_all(&old).expect("old state");
    std::fs::write(old.join("00.json"), "{}").expect("old checkpoint");
    let b = root.container("b").expect("container");
    b.create_netns().expect("create netns");
    assert_ne!(fs_type(root.dir()), nix::sys::statfs::TMPFS_MAGIC);
    assert!(mounted(root.dir()), "bound onto itself");
    assert!(old.join("00.json").exists(), "older state still visible");
    assert_eq!(root.container_ids().expect("ids"), ["b", "old"]);
    b.detach(&NetSettings::default().plugins()).expect("detach");
    std::fs::remove_dir_all(&old).expect("remove old state");
    assert!(root.release_if_unused().expect("release"));
    assert!(!mounted(root.dir()));
}

/// Deletes the test's bridge and rules on drop.
struct Bridge {
    root: NetRoot,
    name: String,
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Err(e) = self.root.remove_host_rules(&self.name) {
            eprintln!("cleanup: {e}");
        }
        if let Err(e) = self.root.unmount() {
            eprintln!("cleanup: {e}");
        }
        if Path::new("/sys/class/net").join(&self.name).exists() {
            let _ = Command::new("ip")
                .args(["link", "del", &self.name])
                .status();
        }
    }
}

#[test]
fn privileged_builtin_veths_have_no_ipv6_addresses() {
    let test = "privileged_builtin_veths_have_no_ipv6_addresses";
    if !is_root(test) {
        return;
    }
    if !Path::new("/proc/net/if_inet6").exists() {
        println!("skipping {test}: the kernel has no IPv6");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let pid = std::process::id();
    let bridge = format!("phxs{}", pid % 100_000);
    let settings = NetSettings {
        config_dir: None,
        plugin_dirs: vec![PathBuf::from("/usr/lib/cni")],
        default_subnet: format!("10.214.{}.0/24", pid % 250)
            .parse()
            .expect("subnet"),
        default_bridge: bridge.clone(),
        plugin_timeout: Duration::from_secs(60),
    };
    let root = NetRoot::new(tmp.path());
    let _bridge = Bridge {
        root: root.clone(),
        name: bridge.clone(),
    };
    let c = root.container("v6").expect("container");
    c.create_netns().expect("create netns");
    let networks = Networks::load(&settings, &root.ipam_dir()).expect("load");
    let requests = [NetworkInfo {
        name: "phobos".into(),
        port_mappings: Vec::new(),
    }];
    let attached = c.attach(&networks, &settings.plugins(), &requests);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let attached = attached.expect("attach");
        assert_eq!(attached[0].ip_addresses.len(), 1, "{attached:?}");
        let veth = std::fs::read_dir(Path::new("/sys/class/net").join(&bridge).join("brif"))
            .expect("bridge ports")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .next()
            .expect("the veth is on the bridge");
        let mode = std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{veth}/addr_gen_mode"))
            .expect("addr_gen_mode");
        assert_eq!(mode.trim(), "1", "host end: IN6_ADDR_GEN_MODE_NONE");
        let host_v6 = std::fs::read_to_string("/proc/net/if_inet6").expect("if_inet6");
        assert!(
            !host_v6.lines().any(|l| l.ends_with(&format!(" {veth}"))),
            "the host end has an IPv6 address:\n{host_v6}"
        );
        let inside = netns::run_in(&c.netns_path(), || {
            (
                std::fs::read_to_string("/proc/thread-self/net/if_inet6").unwrap_or_default(),
                std::fs::read_to_string("/proc/sys/net/ipv6/conf/eth0/addr_gen_mode")
                    .unwrap_or_default(),
            )
        })
        .expect("enter the namespace");
        assert_eq!(
            inside.1.trim(),
            "1",
            "container end: IN6_ADDR_GEN_MODE_NONE"
        );
        assert!(
            !inside.0.lines().any(|l| l.ends_with(" eth0")),
            "eth0 has an IPv6 address:\n{}",
            inside.0
        );
    }));
    c.detach(&settings.plugins()).expect("detach");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
