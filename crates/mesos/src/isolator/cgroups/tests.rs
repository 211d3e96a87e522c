//! Unit tests of the `cgroups/*` isolator on cgroup2 fixtures.
use super::super::HostCache;
use super::*;

const MB: u64 = 1024 * 1024;

/// A pure-v2 host in a temporary directory, with the container's
/// cgroup already holding the interface files the kernel would create.
fn v2_fixture(id: &str) -> (tempfile::TempDir, Hierarchies, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path();
    let controllers = "cpu memory pids io\n";
    let cg = mount.join("phobos-t").join(id);
    std::fs::create_dir_all(&cg).unwrap();
    for d in [mount.to_path_buf(), mount.join("phobos-t")] {
        std::fs::write(d.join("cgroup.controllers"), controllers).unwrap();
        std::fs::write(d.join("cgroup.subtree_control"), controllers).unwrap();
    }
    let files = [
        ("cgroup.procs", ""),
        ("cpu.weight", "100\n"),
        ("cpu.max", "max 100000\n"),
        ("memory.low", "0\n"),
        ("memory.max", "max\n"),
        ("memory.swap.max", "max\n"),
        ("pids.max", "max\n"),
        ("pids.current", "3\n"),
        ("memory.current", "1048576\n"),
        (
            "memory.stat",
            "anon 524288\nfile 262144\nfile_mapped 4096\nunevictable 0\n",
        ),
        ("memory.swap.current", "0\n"),
        (
            "cpu.stat",
            "usage_usec 3000000\nuser_usec 2000000\nsystem_usec 1000000\nnr_periods 10\nnr_throttled 2\nthrottled_usec 500000\n",
        ),
        (
            "io.stat",
            "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
        ),
    ];
    for (f, v) in files {
        std::fs::write(cg.join(f), v).unwrap();
    }
    let mountinfo = format!(
        "35 25 0:30 / {} rw,nosuid,nodev,noexec shared:9 - cgroup2 cgroup2 rw\n",
        mount.display()
    );
    let h = Hierarchies::from_mountinfo(&mountinfo).unwrap();
    (dir, h, cg)
}

fn read(cg: &Path, f: &str) -> String {
    std::fs::read_to_string(cg.join(f))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn v2_limits_updates_and_usage_on_a_fixture() {
    let id = ContainerId::new("c1").unwrap();
    let (_dir, h, cg) = v2_fixture("c1");
    let iso = CgroupsIsolator::with_hierarchies(
        h,
        "phobos-t",
        &[
            Subsystem::Cpu,
            Subsystem::Mem,
            Subsystem::Pids,
            Subsystem::Blkio,
        ],
        false,
        IsolatorFlags::default(),
    )
    .unwrap();
    let config = ContainerConfig {
        id: id.clone(),
        command: phobos_core::CommandSpec::argv(vec!["true".into()]).unwrap(),
        env: vec![],
        working_dir: None,
        user: None,
        hostname: None,
        isolation: vec!["cgroups/all".into()],
        launcher: phobos_core::LauncherKind::Linux,
        sandbox: PathBuf::from("/nonexistent"),
        cgroups_root: "phobos-t".into(),
        cgroups_driver: Default::default(),
        interactive: false,
        created_at: 0.0,
        resources: Resources {
            cpus: Some(0.5),
            mem: Some(64.0),
            cpus_limit: Some(phobos_core::Limit::Finite(1.0)),
            mem_limit: Some(phobos_core::Limit::Finite(128.0)),
            pids_limit: Some(50),
            ..Resources::default()
        },
        isolator_flags: IsolatorFlags::default(),
        rootfs: None,
        volumes: vec![],
        sandbox_directory: None,
        fetch: vec![],
        fetcher_stall_timeout_secs: None,
        fetcher_cache: None,
        network: Default::default(),
        image: None,
        hardening: Default::default(),
        tty: None,
        logrotate: None,
        nesting: None,
    };
    let c = iso.prepare(&config).unwrap().unwrap();
    let watch = c.oom_watch.unwrap();
    assert!(watch.cgroup.unified);
    assert_eq!(watch.cgroup.mount.join(&watch.cgroup.rel), cg);
    // shares 512 -> weight 1 + (510 * 9999) / 262142 = 20.
    assert_eq!(read(&cg, "cpu.weight"), "20");
    assert_eq!(read(&cg, "cpu.max"), "100000 100000");
    assert_eq!(read(&cg, "memory.low"), (64 * MB).to_string());
    assert_eq!(read(&cg, "memory.max"), (128 * MB).to_string());
    assert_eq!(read(&cg, "pids.max"), "50");

    // Lowering the hard limit is ignored unless forced.
    let lower = Resources {
        mem_limit: Some(phobos_core::Limit::Finite(96.0)),
        ..config.resources.clone()
    };
    iso.update(&id, &lower, false).unwrap();
    assert_eq!(read(&cg, "memory.max"), (128 * MB).to_string());
    iso.update(&id, &lower, true).unwrap();
    assert_eq!(read(&cg, "memory.max"), (96 * MB).to_string());
    let unlimited = Resources {
        cpus_limit: Some(phobos_core::Limit::Infinite),
        mem_limit: Some(phobos_core::Limit::Infinite),
        ..config.resources.clone()
    };
    iso.update(&id, &unlimited, false).unwrap();
    assert_eq!(read(&cg, "memory.max"), "max");
    assert_eq!(read(&cg, "cpu.max"), "max 100000");

    let host = HostCache::default();
    let ctx = super::super::UsageContext::new(&host);
    let u = iso.usage(&id, &ctx).unwrap().unwrap();
    assert_eq!(u.cpus_user_time_secs, Some(2.0));
    assert_eq!(u.cpus_system_time_secs, Some(1.0));
    assert_eq!(u.mem_total_bytes, Some(MB));
    assert_eq!(u.mem_rss_bytes, Some(524288));
    assert_eq!(u.mem_cache_bytes, Some(262144));
    assert_eq!(u.mem_mapped_file_bytes, Some(4096));
    assert_eq!(u.threads, Some(3));
    assert_eq!(u.processes, Some(0));
    let blkio = u.blkio_statistics.unwrap();
    assert_eq!(blkio.throttling[0].io_service_bytes[1].value, 4096);
}

#[test]
fn a_missing_subsystem_is_an_error_unless_from_cgroups_all() {
    let (_dir, h, _cg) = v2_fixture("c2");
    // The fixture offers no hugetlb, but every Subsystem is there; make
    // one missing by pointing at a v2 root without "pids".
    let root = h.unified_mount().unwrap().to_path_buf();
    std::fs::write(root.join("cgroup.controllers"), "cpu memory io\n").unwrap();
    let mountinfo = format!(
        "35 25 0:30 / {} rw shared:9 - cgroup2 cgroup2 rw\n",
        root.display()
    );
    let h = Hierarchies::from_mountinfo(&mountinfo).unwrap();
    let err = CgroupsIsolator::with_hierarchies(
        h.clone(),
        "r",
        &[Subsystem::Pids],
        false,
        IsolatorFlags::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("cgroups/pids"), "{err}");
    let iso = CgroupsIsolator::with_hierarchies(
        h.clone(),
        "r",
        &Subsystem::ALL,
        true,
        IsolatorFlags::default(),
    )
    .unwrap();
    // perf_event is implicit on cgroup2; net_cls and net_prio do not exist.
    assert_eq!(
        iso.subsystems(),
        [
            Subsystem::Cpu,
            Subsystem::Mem,
            Subsystem::Blkio,
            Subsystem::PerfEvent
        ]
    );
    let err = CgroupsIsolator::with_hierarchies(
        h,
        "r",
        &[Subsystem::NetCls],
        false,
        IsolatorFlags::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains(
            "net_cls: no cgroup v1 hierarchy has it attached, and cgroup2 has no net_cls controller"
        ),
        "{err}"
    );
}

#[test]
fn oom_score_adj_follows_mesos() {
    assert_eq!(oom_score_adj(512, 1024), 500);
    assert_eq!(oom_score_adj(1024, 1024), 0);
    assert_eq!(oom_score_adj(0, 1024), 1000);
    assert_eq!(oom_score_adj(5000, 1024), 0);
    assert_eq!(oom_score_adj(1, 0), 0);
}

#[test]
fn blkio_merges_bytes_and_operations_per_device() {
    let b = DeviceIo {
        major: 8,
        minor: 0,
        read: 4096,
        write: 8192,
        total: 12288,
        ..DeviceIo::default()
    };
    let o = DeviceIo {
        major: 8,
        minor: 0,
        read: 1,
        write: 2,
        total: 3,
        ..DeviceIo::default()
    };
    let s = blkio_statistics(&[b], &[o]);
    assert_eq!(s.throttling.len(), 1);
    let t = &s.throttling[0];
    assert_eq!(t.io_service_bytes[0].value, 12288);
    assert_eq!(t.io_serviced[2].op, BlkioOperation::Write);
    assert_eq!(t.io_serviced[2].value, 2);
}
