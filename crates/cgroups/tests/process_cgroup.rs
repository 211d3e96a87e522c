//! A process's cgroup per controller, on fixture hosts: a temporary
//! directory holding `proc/self/mountinfo`, `proc/<pid>/cgroup` and the
//! mount points, read with `Hierarchies::detect_at`.

use std::fs;
use std::path::{Path, PathBuf};

use phobos_cgroups::{Controller, Error, Hierarchies, ProcCgroups, Version};
use tempfile::TempDir;

const PID: u32 = 42;

/// One cgroup mount: (mount point, root of the mount, fs type, super options).
type Mount<'a> = (&'a str, &'a str, &'a str, &'a str);

/// A fixture host with `mounts` and a process `PID` whose
/// `/proc/<pid>/cgroup` is `proc_cgroup`. A cgroup2 mount's root offers
/// `unified_controllers`.
fn host(mounts: &[Mount<'_>], unified_controllers: &str, proc_cgroup: &str) -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut mountinfo = String::new();
    for (id, (mount_point, root, fs_type, options)) in (30..).zip(mounts) {
        mountinfo += &format!(
            "{id} 25 0:{id} {root} {mount_point} rw,relatime - {fs_type} {fs_type} {options}\n"
        );
        let dir = dir.path().join(mount_point.trim_start_matches('/'));
        fs::create_dir_all(&dir).expect("mkdir");
        if *fs_type == "cgroup2" {
            fs::write(dir.join("cgroup.controllers"), unified_controllers).expect("write");
        }
    }
    let proc = dir.path().join("proc");
    fs::create_dir_all(proc.join("self")).expect("mkdir");
    fs::create_dir_all(proc.join(PID.to_string())).expect("mkdir");
    fs::write(proc.join("self/mountinfo"), mountinfo).expect("write");
    fs::write(proc.join(format!("{PID}/cgroup")), proc_cgroup).expect("write");
    dir
}

/// Where `c`'s cgroup of `PID` is on `host`: its version, its directory
/// relative to the host's root, and the path `/proc/<pid>/cgroup` gave.
fn locate(host: &TempDir, c: Controller) -> Option<(Version, PathBuf, String)> {
    let proc = host.path().join("proc");
    let hierarchies = Hierarchies::detect_at(&proc, host.path()).expect("detect");
    let procs = ProcCgroups::read(&proc, PID).expect("proc cgroup");
    let found = hierarchies.process_cgroup(&procs, c)?;
    let dir = found
        .cgroup
        .path()
        .strip_prefix(host.path())
        .expect("under the host root")
        .to_path_buf();
    Some((found.cgroup.version(), dir, found.path))
}

/// What [`locate`] returns for a cgroup found in `dir`.
fn found(version: Version, dir: &str, path: &str) -> Option<(Version, PathBuf, String)> {
    Some((version, PathBuf::from(dir), path.to_owned()))
}

/// This project's CI host: every v1 controller on its own hierarchy, cgroup2
/// at `unified` offering only hugetlb.
const HYBRID: &[Mount<'_>] = &[
    ("/sys/fs/cgroup/unified", "/", "cgroup2", "rw,nsdelegate"),
    (
        "/sys/fs/cgroup/systemd",
        "/",
        "cgroup",
        "rw,xattr,name=systemd",
    ),
    ("/sys/fs/cgroup/cpu", "/", "cgroup", "rw,cpu"),
    ("/sys/fs/cgroup/cpuacct", "/", "cgroup", "rw,cpuacct"),
    ("/sys/fs/cgroup/memory", "/", "cgroup", "rw,memory"),
];

#[test]
fn hybrid_host_uses_v1_where_the_controller_is_and_cgroup2_otherwise() {
    let host = host(
        HYBRID,
        "hugetlb\n",
        "9:name=systemd:/docker/abc\n4:memory:/docker/abc\n2:cpuacct:/docker/abc\n\
         1:cpu:/docker/abc\n0::/docker/abc\n",
    );
    let homes = [
        (Controller::Cpuacct, Some((Version::V1, "cpuacct"))),
        (Controller::Cpu, Some((Version::V1, "cpu"))),
        (Controller::Memory, Some((Version::V1, "memory"))),
        (Controller::Hugetlb, Some((Version::V2, "unified"))),
        // Neither a v1 hierarchy nor cgroup2 offers pids here.
        (Controller::Pids, None),
    ];
    for (c, home) in homes {
        let expected = home.and_then(|(version, mount)| {
            let dir = format!("sys/fs/cgroup/{mount}/docker/abc");
            found(version, &dir, "/docker/abc")
        });
        assert_eq!(locate(&host, c), expected, "{c}");
    }
}

#[test]
fn pure_v2_host_uses_the_unified_hierarchy_for_everything() {
    let host = host(
        &[("/sys/fs/cgroup", "/", "cgroup2", "rw,nsdelegate")],
        "cpuset cpu io memory pids\n",
        "0::/system.slice/docker-abc.scope\n",
    );
    let dir = "sys/fs/cgroup/system.slice/docker-abc.scope";
    for c in [Controller::Cpuacct, Controller::Cpu, Controller::Memory] {
        assert_eq!(
            locate(&host, c),
            found(Version::V2, dir, "/system.slice/docker-abc.scope"),
            "{c}"
        );
    }
}

#[test]
fn legacy_host_with_comounted_cpu_and_cpuacct() {
    let host = host(
        &[
            (
                "/sys/fs/cgroup/cpu,cpuacct",
                "/",
                "cgroup",
                "rw,cpu,cpuacct",
            ),
            ("/sys/fs/cgroup/memory", "/", "cgroup", "rw,memory"),
        ],
        "",
        "3:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n",
    );
    let dir = "sys/fs/cgroup/cpu,cpuacct/docker/abc";
    assert_eq!(
        locate(&host, Controller::Cpu),
        found(Version::V1, dir, "/docker/abc")
    );
    assert_eq!(
        locate(&host, Controller::Cpuacct),
        found(Version::V1, dir, "/docker/abc")
    );
}

#[test]
fn the_root_of_a_bound_subtree_is_taken_off() {
    let mounts = [("/sys/fs/cgroup/memory", "/docker", "cgroup", "rw,memory")];
    let inside = host(&mounts, "", "4:memory:/docker/abc\n");
    assert_eq!(
        locate(&inside, Controller::Memory),
        found(Version::V1, "sys/fs/cgroup/memory/abc", "/docker/abc")
    );
    let outside = host(&mounts, "", "4:memory:/elsewhere\n");
    assert_eq!(locate(&outside, Controller::Memory), None);
    let prefix_only = host(&mounts, "", "4:memory:/dockerish\n");
    assert_eq!(locate(&prefix_only, Controller::Memory), None);
}

#[test]
fn a_process_in_a_root_cgroup_is_found_and_marked() {
    let host = host(HYBRID, "", "2:cpuacct:/\n4:memory:/docker/abc\n0::/\n");
    let proc = host.path().join("proc");
    let hierarchies = Hierarchies::detect_at(&proc, host.path()).unwrap();
    let procs = ProcCgroups::read(&proc, PID).unwrap();
    let cpuacct = hierarchies
        .process_cgroup(&procs, Controller::Cpuacct)
        .unwrap();
    assert!(cpuacct.is_root());
    assert_eq!(
        cpuacct.cgroup.path(),
        host.path().join("sys/fs/cgroup/cpuacct")
    );
    let memory = hierarchies
        .process_cgroup(&procs, Controller::Memory)
        .unwrap();
    assert!(!memory.is_root());
}

#[test]
fn a_process_missing_from_the_hierarchy_has_no_cgroup_there() {
    // The controller's hierarchy is mounted but the process lists none.
    let host = host(HYBRID, "", "0::/docker/abc\n");
    assert_eq!(locate(&host, Controller::Memory), None);
}

#[test]
fn missing_proc_files_are_read_errors_naming_them() {
    let host = host(HYBRID, "", "");
    let proc = host.path().join("proc");
    let e = ProcCgroups::read(&proc, 7).unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(e.to_string().contains("proc/7/cgroup"), "{e}");
    let e = Hierarchies::detect_at(&host.path().join("nowhere"), host.path()).unwrap_err();
    assert!(matches!(e, Error::Read { .. }), "{e}");
    assert!(e.to_string().contains("nowhere/self/mountinfo"), "{e}");
    let h = Hierarchies::detect_at(&proc, Path::new("/")).unwrap();
    assert_eq!(h.source(), proc.join("self/mountinfo"));
    // With `/` as the root, mount points are taken as they are.
    assert_eq!(
        h.v1_mount(Controller::Cpu),
        Some(Path::new("/sys/fs/cgroup/cpu"))
    );
}
