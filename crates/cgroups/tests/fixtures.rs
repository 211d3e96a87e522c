//! Detection and cgroup file logic on fixture trees, without root.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use phobos_cgroups::{Cgroup, Controller, Error, Hierarchies, Layout, Version};
use tempfile::TempDir;

/// A fixture host: a temporary directory standing in for /sys/fs/cgroup.
struct Host {
    dir: TempDir,
    mountinfo: String,
    next_id: u32,
}

impl Host {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().display().to_string();
        Host {
            mountinfo: format!("31 23 0:28 / {root} rw,relatime - tmpfs tmpfs rw,mode=755\n"),
            dir,
            next_id: 32,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Mounts a v1 hierarchy with super options `opts` at `<root>/<name>`.
    fn v1(mut self, name: &str, opts: &str) -> Self {
        let mount = self.path(name);
        fs::create_dir_all(&mount).unwrap();
        let id = self.next_id;
        self.mountinfo += &format!(
            "{id} 31 0:{id} / {} rw,nosuid,nodev,noexec,relatime shared:{id} - cgroup cgroup {opts}\n",
            mount.display()
        );
        self.next_id += 1;
        self
    }

    /// Mounts cgroup2 at `<root>/<name>` offering `controllers`.
    fn v2(mut self, name: &str, controllers: &str) -> Self {
        let mount = if name.is_empty() {
            self.dir.path().to_path_buf()
        } else {
            self.path(name)
        };
        fs::create_dir_all(&mount).unwrap();
        fs::write(mount.join("cgroup.controllers"), controllers).unwrap();
        fs::write(mount.join("cgroup.subtree_control"), "").unwrap();
        let id = self.next_id;
        self.mountinfo += &format!(
            "{id} 31 0:{id} / {} rw,nosuid,nodev,noexec,relatime shared:{id} - cgroup2 cgroup2 rw,nsdelegate\n",
            mount.display()
        );
        self.next_id += 1;
        self
    }

    fn detect(&self) -> Hierarchies {
        Hierarchies::from_mountinfo(&self.mountinfo).expect("fixture mountinfo parses")
    }
}

/// This project's CI host: every v1 controller mounted on its own (cpu and
/// cpuacct too), a named systemd hierarchy, and cgroup2 at `unified` holding
/// hugetlb.
fn this_host() -> Host {
    Host::new()
        .v1("cpu", "rw,cpu")
        .v1("cpuacct", "rw,cpuacct")
        .v1("cpuset", "rw,cpuset")
        .v1("memory", "rw,memory")
        .v1("devices", "rw,devices")
        .v1("freezer", "rw,freezer")
        .v1("blkio", "rw,blkio")
        .v1("pids", "rw,pids")
        .v1("systemd", "rw,name=systemd")
        .v2("unified", "hugetlb\n")
}

fn pure_v2() -> Host {
    Host::new().v2("", "cpuset cpu io memory hugetlb pids rdma misc\n")
}

fn legacy_comounted() -> Host {
    Host::new()
        .v1("cpu,cpuacct", "rw,cpu,cpuacct")
        .v1("memory", "rw,memory")
        .v1("freezer", "rw,freezer")
        .v1("net_cls,net_prio", "rw,net_cls,net_prio")
}

#[test]
fn this_hosts_hybrid_layout_is_detected_per_controller() {
    let host = this_host();
    let h = host.detect();
    assert_eq!(h.layout(), Layout::Hybrid);
    // cpu and cpuacct are separate hierarchies here.
    assert_eq!(
        h.v1_mount(Controller::Cpu),
        Some(host.path("cpu").as_path())
    );
    assert_eq!(
        h.v1_mount(Controller::Cpuacct),
        Some(host.path("cpuacct").as_path())
    );
    assert_eq!(
        h.locate(Controller::Memory),
        Some((Version::V1, host.path("memory").as_path()))
    );
    // hugetlb lives only on cgroup2.
    assert_eq!(h.v1_mount(Controller::Hugetlb), None);
    assert_eq!(
        h.locate(Controller::Hugetlb),
        Some((Version::V2, host.path("unified").as_path()))
    );
    assert_eq!(h.unified_mount(), Some(host.path("unified").as_path()));
    assert_eq!(h.unified_controllers(), ["hugetlb".to_string()]);
    // io is not offered by cgroup2 here and has no v1 equivalent name.
    assert_eq!(h.locate(Controller::Io), None);
    let reason = h.missing_reason(Controller::Io).unwrap();
    assert!(
        reason.contains("io") && reason.contains("hugetlb"),
        "{reason}"
    );
    assert_eq!(h.missing_reason(Controller::Cpu), None);
    assert_eq!(h.v1_named("systemd"), Some(host.path("systemd").as_path()));
    // The freezer is the v1 hierarchy.
    let cg = h.freezer_cgroup(Path::new("phobos/c1")).unwrap();
    assert_eq!(cg.version(), Version::V1);
    assert_eq!(cg.path(), host.path("freezer/phobos/c1"));
    assert_eq!(cg.rel(), Path::new("phobos/c1"));
}

#[test]
fn pure_v2_layout_locates_everything_on_cgroup2() {
    let host = pure_v2();
    let h = host.detect();
    let root = host.dir.path();
    assert_eq!(h.layout(), Layout::Unified);
    for c in [
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Cpuset,
        Controller::Memory,
        Controller::Freezer,
        Controller::Pids,
        Controller::Hugetlb,
        Controller::Io,
    ] {
        assert_eq!(h.locate(c), Some((Version::V2, root)), "{c}");
        assert_eq!(h.v1_mount(c), None, "{c}");
    }
    assert_eq!(h.locate(Controller::Devices), None);
    assert!(
        h.missing_reason(Controller::Devices)
            .unwrap()
            .contains("eBPF")
    );
    assert_eq!(h.locate(Controller::Blkio), None);
    assert!(
        h.missing_reason(Controller::Blkio)
            .unwrap()
            .contains("io controller")
    );
    let cg = h.freezer_cgroup(Path::new("/phobos/c1")).unwrap();
    assert_eq!(cg.version(), Version::V2);
    assert_eq!(cg.path(), root.join("phobos/c1"));
}

#[test]
fn legacy_layout_with_comounted_cpu_and_cpuacct() {
    let host = legacy_comounted();
    let h = host.detect();
    assert_eq!(h.layout(), Layout::Legacy);
    let both = host.path("cpu,cpuacct");
    assert_eq!(h.v1_mount(Controller::Cpu), Some(both.as_path()));
    assert_eq!(h.v1_mount(Controller::Cpuacct), Some(both.as_path()));
    assert_eq!(h.unified_mount(), None);
    assert_eq!(h.locate(Controller::Pids), None);
    assert!(
        h.missing_reason(Controller::Pids)
            .unwrap()
            .contains("no cgroup2 filesystem")
    );
    // A co-mounted net_cls,net_prio hierarchy holds both controllers.
    let net = h
        .v1_hierarchies()
        .iter()
        .find(|x| x.mount == host.path("net_cls,net_prio"))
        .unwrap();
    assert_eq!(net.subsystems, ["net_cls", "net_prio"]);
    assert_eq!(net.controllers, [Controller::NetCls, Controller::NetPrio]);
    assert_eq!(
        h.locate(Controller::NetPrio),
        Some((Version::V1, host.path("net_cls,net_prio").as_path()))
    );
    assert_eq!(
        h.freezer_cgroup(Path::new("x")).unwrap().path(),
        host.path("freezer/x")
    );
}

#[test]
fn hybrid_without_v1_freezer_uses_cgroup2_for_freezing() {
    let host = Host::new().v1("memory", "rw,memory").v2("unified", "");
    let h = host.detect();
    assert_eq!(h.layout(), Layout::Hybrid);
    let cg = h.freezer_cgroup(Path::new("a")).unwrap();
    assert_eq!(cg.version(), Version::V2);
    assert_eq!(cg.path(), host.path("unified/a"));
    assert!(
        h.missing_reason(Controller::Cpu)
            .unwrap()
            .contains("offers: nothing")
    );
}

#[test]
fn unified_with_only_a_named_v1_hierarchy_is_unified() {
    let host = Host::new()
        .v1("systemd", "rw,name=systemd")
        .v2("unified", "memory");
    assert_eq!(host.detect().layout(), Layout::Unified);
}

#[test]
fn unreadable_cgroup_controllers_is_explained() {
    let host = pure_v2();
    fs::remove_file(host.dir.path().join("cgroup.controllers")).unwrap();
    let h = host.detect();
    assert_eq!(h.locate(Controller::Memory), None);
    assert!(
        h.missing_reason(Controller::Memory)
            .unwrap()
            .contains("cannot read")
    );
}

#[test]
fn the_real_mountinfo_of_this_host_parses() {
    let text = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    let h = Hierarchies::from_mountinfo(text).unwrap();
    assert_eq!(h.layout(), Layout::Hybrid);
    assert_eq!(
        h.v1_mount(Controller::Cpu),
        Some(Path::new("/sys/fs/cgroup/cpu"))
    );
    assert_eq!(h.unified_mount(), Some(Path::new("/sys/fs/cgroup/unified")));
}

#[test]
fn escaped_mount_points_and_duplicate_mounts() {
    let text = "\
50 1 0:40 /sub /mnt/a\\040b rw - cgroup cgroup rw,memory
51 1 0:40 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
52 1 0:41 /x /mnt/v2 rw shared:3 master:1 - cgroup2 cgroup2 rw
53 1 0:41 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
54 1 0:42 / /mnt/c\\040d rw - cgroup cgroup rw,pids
";
    let h = Hierarchies::from_mountinfo(text).unwrap();
    // The same hierarchy (0:40) mounted twice: the mount of its root wins.
    assert_eq!(h.v1_hierarchies().len(), 2);
    assert_eq!(
        h.v1_mount(Controller::Memory),
        Some(Path::new("/sys/fs/cgroup/memory"))
    );
    assert_eq!(h.unified_mount(), Some(Path::new("/sys/fs/cgroup/unified")));
    assert_eq!(h.v1_mount(Controller::Pids), Some(Path::new("/mnt/c d")));
}

#[test]
fn a_mount_with_an_empty_source_does_not_upset_the_table() {
    // `mount -t tmpfs "" /mnt` shows two spaces where the source would be.
    let text = "\
69 46 0:40 / /mnt rw,relatime - tmpfs  rw
70 46 0:41 / /sys/fs/cgroup/memory rw - cgroup  rw,memory
";
    let h = Hierarchies::from_mountinfo(text).unwrap();
    assert_eq!(
        h.v1_mount(Controller::Memory),
        Some(Path::new("/sys/fs/cgroup/memory"))
    );
}

proptest::proptest! {
    #[test]
    fn mountinfo_parsing_never_panics(
        lines in proptest::collection::vec(
            proptest::collection::vec("-|cgroup2?|rw,memory|[a-z0-9:/,]{0,6}", 0..12),
            0..6,
        )
    ) {
        // Single spaces between fields, so empty fields make double spaces.
        let text: Vec<String> = lines.iter().map(|fields| fields.join(" ")).collect();
        let _ = Hierarchies::from_mountinfo(&text.join("\n"));
    }
}

#[test]
fn malformed_mountinfo_is_a_typed_error_with_the_line() {
    let text = "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\ngarbage here\n";
    match Hierarchies::from_mountinfo(text) {
        Err(Error::Mountinfo { line, .. }) => assert_eq!(line, 2),
        other => panic!("expected a mountinfo error, got {other:?}"),
    }
    let e = Hierarchies::from_mountinfo("1 2 3 4 5 - cgroup").unwrap_err();
    assert!(matches!(e, Error::Mountinfo { line: 1, .. }), "{e}");
    let e = Hierarchies::from_mountinfo("").unwrap_err();
    assert!(matches!(e, Error::NotMounted { .. }), "{e}");
    let e = Hierarchies::from_mountinfo("1 2 0:1 / / rw - ext4 /dev/sda rw\n").unwrap_err();
    assert!(e.to_string().starts_with("no cgroup"), "{e}");
}

#[test]
fn controller_names_round_trip() {
    for c in Controller::ALL {
        assert_eq!(Controller::from_name(c.name()), Some(c));
        assert_eq!(c.to_string(), c.name());
    }
    assert_eq!(Controller::from_name("net_cls"), Some(Controller::NetCls));
    assert_eq!(Controller::from_name("rdma"), None);
    assert_eq!(Controller::from_name("CPU"), None);
}

#[test]
fn cgroup_paths_cannot_escape_the_mount() {
    let cg = Cgroup::new(Path::new("/m"), Path::new("/a/../../b/./c"), Version::V1);
    assert_eq!(cg.path(), Path::new("/m/a/b/c"));
    assert_eq!(cg.rel(), Path::new("a/b/c"));
    assert_eq!(cg.child("d").path(), Path::new("/m/a/b/c/d"));
    assert_eq!(cg.mount(), Path::new("/m"));
}

#[test]
fn create_on_v2_enables_controllers_in_every_ancestor() {
    let host = pure_v2();
    let root = host.dir.path();
    // An intermediate cgroup that exists already, as the kernel would fill it.
    let mid = root.join("phobos");
    fs::create_dir(&mid).unwrap();
    fs::write(mid.join("cgroup.controllers"), "cpu memory pids").unwrap();
    fs::write(mid.join("cgroup.subtree_control"), "memory").unwrap();

    let cg = Cgroup::new(root, Path::new("phobos/c1"), Version::V2);
    assert!(!cg.exists());
    cg.create_with(&[Controller::Cpu, Controller::Memory, Controller::Freezer])
        .unwrap();
    assert!(cg.exists());
    // The root had neither; `freezer` is core on v2 and is not written.
    assert_eq!(
        fs::read_to_string(root.join("cgroup.subtree_control")).unwrap(),
        "+cpu +memory"
    );
    // `phobos` had memory already; only cpu is added.
    assert_eq!(
        fs::read_to_string(mid.join("cgroup.subtree_control")).unwrap(),
        "+cpu"
    );
    // Creating again is fine.
    fs::write(mid.join("cgroup.subtree_control"), "cpu memory").unwrap();
    fs::write(root.join("cgroup.subtree_control"), "cpu memory").unwrap();
    cg.create_with(&[Controller::Cpu, Controller::Memory])
        .unwrap();
    assert_eq!(
        fs::read_to_string(mid.join("cgroup.subtree_control")).unwrap(),
        "cpu memory"
    );
}

#[test]
fn create_on_v2_refuses_a_controller_the_parent_lacks() {
    let host = Host::new().v2("unified", "hugetlb");
    let cg = Cgroup::new(&host.path("unified"), Path::new("c"), Version::V2);
    match cg.create_with(&[Controller::Memory]) {
        Err(Error::ControllerUnavailable { controller, path }) => {
            assert_eq!(controller, "memory");
            assert_eq!(path, host.path("unified"));
        }
        other => panic!("expected ControllerUnavailable, got {other:?}"),
    }
    assert!(!cg.exists());
    // Without controllers the plain mkdir works.
    cg.create().unwrap();
    assert!(cg.exists());
}

#[test]
fn create_new_says_whether_it_made_the_directory() {
    let host = this_host();
    // Missing ancestors are walked and made.
    let deep = Cgroup::new(&host.path("freezer"), Path::new("phobos/x/y"), Version::V1);
    assert!(deep.create_new_with(&[Controller::Freezer]).unwrap());
    assert!(!deep.create_new_with(&[Controller::Freezer]).unwrap());
    // Under an existing parent: one mkdir.
    let sibling = Cgroup::new(&host.path("freezer"), Path::new("phobos/x/z"), Version::V1);
    assert!(sibling.create_new_with(&[Controller::Freezer]).unwrap());
    assert!(host.path("freezer/phobos/x/z").is_dir());
    // A file where the cgroup would be is not a cgroup.
    fs::write(host.path("freezer/phobos/x/f"), "").unwrap();
    let file = Cgroup::new(&host.path("freezer"), Path::new("phobos/x/f"), Version::V1);
    let e = file.create_new_with(&[]).unwrap_err();
    assert!(matches!(e, Error::Create { .. }), "{e}");
}

#[test]
fn create_v1_is_mkdir_p_and_fails_with_the_path() {
    let host = this_host();
    let cg = Cgroup::new(&host.path("freezer"), Path::new("phobos/a/b"), Version::V1);
    cg.create().unwrap();
    assert!(host.path("freezer/phobos/a/b").is_dir());
    let bad = Cgroup::new(&host.path("nonexistent-mount"), Path::new("x"), Version::V1);
    fs::write(host.path("nonexistent-mount"), "a file, not a directory").unwrap();
    let e = bad.create().unwrap_err();
    assert!(matches!(e, Error::Create { .. }), "{e}");
    assert!(e.to_string().contains("nonexistent-mount"), "{e}");
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

#[test]
fn procs_and_children_walk_the_subtree() {
    let host = this_host();
    let base = host.path("freezer/phobos");
    write(&base.join("cgroup.procs"), "10\n11\n");
    write(&base.join("a/cgroup.procs"), "12\n");
    write(&base.join("a/deep/cgroup.procs"), "13\n10\n");
    write(&base.join("b/cgroup.procs"), "");
    let cg = Cgroup::new(&host.path("freezer"), Path::new("phobos"), Version::V1);
    assert_eq!(cg.procs().unwrap(), [10, 11, 12, 13]);
    assert_eq!(cg.children().unwrap(), ["a", "b"]);
    assert_eq!(cg.child("a").procs().unwrap(), [10, 12, 13]);
    assert!(cg.child("b").procs().unwrap().is_empty());

    write(&base.join("b/cgroup.procs"), "12\nnot-a-pid\n");
    let e = cg.procs().unwrap_err();
    assert!(matches!(e, Error::Parse { .. }), "{e}");
    assert!(e.to_string().contains("not-a-pid"), "{e}");

    let missing = cg.child("nope");
    assert!(missing.procs().unwrap_err().is_not_found());
    assert!(matches!(missing.children(), Err(Error::List { .. })));
}

#[test]
fn freeze_and_thaw_v1_write_freezer_state() {
    let host = this_host();
    let cg = Cgroup::new(&host.path("freezer"), Path::new("c"), Version::V1);
    write(&cg.path().join("freezer.state"), "THAWED\n");
    assert!(!cg.is_frozen().unwrap());
    cg.freeze(Duration::from_secs(1)).unwrap();
    assert_eq!(cg.read("freezer.state").unwrap(), "FROZEN");
    assert!(cg.is_frozen().unwrap());
    cg.thaw().unwrap();
    assert_eq!(cg.read("freezer.state").unwrap(), "THAWED");
}

#[test]
fn freeze_without_a_freezer_is_unsupported() {
    let host = this_host();
    let cg = Cgroup::new(&host.path("memory"), Path::new("c"), Version::V1);
    fs::create_dir_all(cg.path()).unwrap();
    let e = cg.freeze(Duration::from_millis(10)).unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e}");
    let gone = Cgroup::new(&host.path("freezer"), Path::new("gone"), Version::V1);
    assert!(
        gone.freeze(Duration::from_millis(10))
            .unwrap_err()
            .is_not_found()
    );
}

#[test]
fn freeze_v2_waits_for_cgroup_events() {
    let host = pure_v2();
    let cg = Cgroup::new(host.dir.path(), Path::new("c"), Version::V2);
    write(&cg.path().join("cgroup.freeze"), "0\n");
    write(&cg.path().join("cgroup.events"), "populated 1\nfrozen 0\n");
    let e = cg.freeze(Duration::from_millis(30)).unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert_eq!(cg.read("cgroup.freeze").unwrap(), "1");
    write(&cg.path().join("cgroup.events"), "populated 1\nfrozen 1\n");
    cg.freeze(Duration::from_millis(30)).unwrap();
    assert!(cg.is_frozen().unwrap());
    cg.thaw().unwrap();
    assert_eq!(cg.read("cgroup.freeze").unwrap(), "0");
}

#[test]
fn kill_all_on_v2_writes_cgroup_kill() {
    let host = pure_v2();
    let cg = Cgroup::new(host.dir.path(), Path::new("c"), Version::V2);
    write(&cg.path().join("cgroup.kill"), "");
    write(&cg.path().join("cgroup.freeze"), "0");
    write(&cg.path().join("cgroup.events"), "populated 1\nfrozen 0\n");
    write(&cg.path().join("cgroup.procs"), "");
    cg.kill_all(Duration::from_secs(1)).unwrap();
    assert_eq!(cg.read("cgroup.kill").unwrap(), "1");
    // cgroup.kill is used, not the freezer.
    assert_eq!(cg.read("cgroup.freeze").unwrap(), "0");
}

#[test]
fn kill_all_leaves_an_unpopulated_v2_cgroup_alone() {
    let host = pure_v2();
    let cg = Cgroup::new(host.dir.path(), Path::new("c"), Version::V2);
    write(&cg.path().join("cgroup.kill"), "");
    write(&cg.path().join("cgroup.events"), "populated 0\nfrozen 0\n");
    // `populated` covers the subtree; the process list is not consulted.
    write(&cg.path().join("cgroup.procs"), "1\n");
    assert!(!cg.is_populated().unwrap());
    cg.kill_all(Duration::from_secs(1)).unwrap();
    assert_eq!(cg.read("cgroup.kill").unwrap(), "");
}

#[test]
fn kill_all_leaves_an_empty_v1_cgroup_alone() {
    let host = this_host();
    let cg = Cgroup::new(&host.path("freezer"), Path::new("c"), Version::V1);
    // A state freeze → thaw would overwrite.
    write(&cg.path().join("freezer.state"), "FREEZING");
    write(&cg.path().join("cgroup.procs"), "");
    write(&cg.path().join("sub/cgroup.procs"), "");
    assert!(!cg.is_populated().unwrap());
    cg.kill_all(Duration::from_secs(1)).unwrap();
    assert_eq!(cg.read("freezer.state").unwrap(), "FREEZING");
}

#[test]
fn a_process_in_a_v1_descendant_populates_the_cgroup() {
    let host = this_host();
    let cg = Cgroup::new(&host.path("freezer"), Path::new("c"), Version::V1);
    write(&cg.path().join("cgroup.procs"), "");
    write(&cg.path().join("sub/cgroup.procs"), "4242\n");
    assert!(cg.is_populated().unwrap());
    let missing = Cgroup::new(&host.path("freezer"), Path::new("gone"), Version::V1);
    assert!(!missing.is_populated().unwrap());
}

#[test]
fn kill_all_of_a_missing_cgroup_is_ok() {
    let host = this_host();
    let cg = Cgroup::new(&host.path("freezer"), Path::new("never"), Version::V1);
    cg.kill_all(Duration::from_millis(10)).unwrap();
}

#[test]
fn remove_goes_bottom_up_and_missing_is_ok() {
    let host = this_host();
    let cg = Cgroup::new(&host.path("freezer"), Path::new("phobos"), Version::V1);
    for d in ["a/x/y", "a/z", "b"] {
        fs::create_dir_all(cg.path().join(d)).unwrap();
    }
    cg.remove(Duration::from_millis(100)).unwrap();
    assert!(!cg.exists());
    assert!(host.path("freezer").is_dir());
    cg.remove(Duration::from_millis(100)).unwrap();
}

#[test]
fn remove_reports_a_directory_it_cannot_remove() {
    let host = this_host();
    let cg = Cgroup::new(&host.path("freezer"), Path::new("phobos"), Version::V1);
    // A regular file inside makes rmdir fail with ENOTEMPTY on tmpfs.
    write(&cg.path().join("sub/stray"), "x");
    let e = cg.remove(Duration::from_millis(50)).unwrap_err();
    match &e {
        Error::Remove { path, .. } => assert_eq!(path, &cg.path().join("sub")),
        other => panic!("expected Remove, got {other:?}"),
    }
}

#[test]
fn read_and_write_errors_carry_path_and_value() {
    let host = this_host();
    let cg = Cgroup::new(&host.path("cpu"), Path::new("c"), Version::V1);
    fs::create_dir_all(cg.path()).unwrap();
    let e = cg.write("cpu.shares", "1024").unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("\"1024\"") && msg.contains("cpu.shares"),
        "{msg}"
    );
    assert!(msg.starts_with("failed to write"), "{msg}");
    assert!(!msg.ends_with('.'), "{msg}");
    let e = cg.read("cpu.shares").unwrap_err();
    assert!(e.is_not_found());
    assert!(e.to_string().contains("c/cpu.shares"), "{e}");

    write(&cg.path().join("cpu.shares"), "1024\n");
    cg.write("cpu.shares", "2").unwrap();
    assert_eq!(cg.read("cpu.shares").unwrap(), "2");
    cg.add_process(42).unwrap_err();
    write(&cg.path().join("cgroup.procs"), "");
    cg.add_process(42).unwrap();
    assert_eq!(cg.read("cgroup.procs").unwrap(), "42");
}
