//! Real-kernel tests: need root. Each prints `skipping <test>: <reason>` and
//! returns only when the host truly lacks the feature.
//!
//! Observed on the project host (kernel 6.18, hybrid): a SIGKILLed process
//! that is a zombie of this test process is *not* listed in `cgroup.procs`
//! (neither in the v1 freezer hierarchy nor on cgroup2), and its cgroup can
//! be removed before it is reaped. Older kernels list such zombies, so every
//! test reaps its child on a separate thread while `kill_all` waits.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use phobos_cgroups::{Cgroup, Controller, Hierarchies, Layout, Version};

/// The most a test waits for a workload to reach a state: generous, since
/// the machine may be loaded and CI runs these tests under qemu TCG too
/// (scripts/v2-lane.sh), 10-50 times slower than natively. Waits end as soon
/// as the condition holds.
const PATIENCE: Duration = Duration::from_secs(120);

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

macro_rules! require_root {
    ($name:expr) => {
        if !is_root() {
            println!("skipping {}: needs root", $name);
            return;
        }
    };
}

/// Kills and removes the test's cgroup however the test ends.
struct Guard(Cgroup);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill_all(PATIENCE);
        let _ = self.0.remove(PATIENCE);
    }
}

fn unique(mount: &Path, version: Version) -> Guard {
    let name = format!("phobos-test-{}", uuid::Uuid::new_v4());
    Guard(Cgroup::new(mount, Path::new(&name), version))
}

/// `sh` that, once released, forks two sleeps and waits: three processes,
/// all started inside `cg`.
fn spawn_tree(cg: &Cgroup) -> Child {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("read go; sleep 100 & sleep 100 & wait")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn sh");
    cg.add_process(child.id() as i32).expect("join the cgroup");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"go\n").expect("release sh");
    drop(stdin);
    let deadline = Instant::now() + PATIENCE;
    while cg.procs().expect("procs").len() < 3 {
        assert!(Instant::now() < deadline, "the tree did not start");
        thread::sleep(Duration::from_millis(5));
    }
    child
}

/// Pids of `cg` that are still running (not gone, not zombies).
fn alive(pids: &[i32]) -> Vec<i32> {
    pids.iter()
        .copied()
        .filter(
            |pid| match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                Ok(stat) => {
                    let state = stat.rsplit(')').next().unwrap_or("").trim_start();
                    !state.starts_with('Z') && !state.starts_with('X')
                }
                Err(_) => false,
            },
        )
        .collect()
}

/// Starts a tree in `<top>/inner`, kills everything under `top` with `kill`,
/// and checks nothing survives and `remove` leaves no directory.
fn kill_tree(top: &Cgroup, kill: impl FnOnce(&Cgroup) -> Result<(), phobos_cgroups::Error>) {
    let inner = top.child("inner");
    inner.create().expect("create");
    let child = spawn_tree(&inner);
    let pids = top.procs().unwrap();
    assert_eq!(pids.len(), 3, "{pids:?}");
    assert!(pids.contains(&(child.id() as i32)));
    assert_eq!(alive(&pids).len(), 3);

    // Reap our child concurrently, so kill_all cannot be fooled by a zombie.
    let reaper = thread::spawn(move || -> ExitStatus {
        let mut child = child;
        child.wait().expect("wait")
    });
    kill(top).expect("kill_all");
    assert!(top.procs().unwrap().is_empty());
    let status = reaper.join().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    // The sleeps were reparented; they must be dead too.
    let deadline = Instant::now() + PATIENCE;
    while !alive(&pids).is_empty() {
        assert!(Instant::now() < deadline, "survivors: {:?}", alive(&pids));
        thread::sleep(Duration::from_millis(5));
    }

    top.remove(PATIENCE).expect("remove");
    assert!(!top.exists());
    assert!(!inner.exists());
}

#[test]
fn privileged_detect_this_host() {
    require_root!("privileged_detect_this_host");
    let h = Hierarchies::detect().expect("detect");
    for c in Controller::ALL {
        match h.locate(c) {
            Some((_, mount)) => assert!(mount.is_dir(), "{c} at {}", mount.display()),
            None => assert!(h.missing_reason(c).is_some()),
        }
    }
    if h.layout() == Layout::Unified {
        assert!(Controller::ALL.iter().all(|c| h.v1_mount(*c).is_none()));
    }
    assert!(h.freezer_cgroup(Path::new("x")).is_some());
}

#[test]
fn privileged_v1_freezer_kill_all() {
    let name = "privileged_v1_freezer_kill_all";
    require_root!(name);
    let h = Hierarchies::detect().unwrap();
    let Some(mount) = h.v1_mount(Controller::Freezer) else {
        println!("skipping {name}: no v1 freezer hierarchy on this host");
        return;
    };
    let guard = unique(mount, Version::V1);
    kill_tree(&guard.0, |cg| cg.kill_all(PATIENCE));
}

#[test]
fn privileged_v1_freeze_and_thaw() {
    let name = "privileged_v1_freeze_and_thaw";
    require_root!(name);
    let h = Hierarchies::detect().unwrap();
    let Some(mount) = h.v1_mount(Controller::Freezer) else {
        println!("skipping {name}: no v1 freezer hierarchy on this host");
        return;
    };
    let guard = unique(mount, Version::V1);
    let top = &guard.0;
    top.create().unwrap();
    let mut child = spawn_tree(top);
    top.freeze(PATIENCE).unwrap();
    assert!(top.is_frozen().unwrap());
    assert_eq!(top.read("freezer.state").unwrap().trim(), "FROZEN");
    top.thaw().unwrap();
    assert!(!top.is_frozen().unwrap());
    let reaper = thread::spawn(move || child.wait().unwrap());
    top.kill_all(PATIENCE).unwrap();
    reaper.join().unwrap();
}

fn unified_or_skip(name: &str) -> Option<std::path::PathBuf> {
    let h = Hierarchies::detect().unwrap();
    match h.unified_mount() {
        Some(m) => Some(m.to_path_buf()),
        None => {
            println!("skipping {name}: no cgroup2 filesystem mounted");
            None
        }
    }
}

#[test]
fn privileged_v2_kill_all() {
    let name = "privileged_v2_kill_all";
    require_root!(name);
    let Some(mount) = unified_or_skip(name) else {
        return;
    };
    let guard = unique(&mount, Version::V2);
    guard.0.create().unwrap();
    if !guard.0.has_file("cgroup.kill") {
        println!("note {name}: no cgroup.kill (kernel < 5.14), the freezer path is used");
    }
    kill_tree(&guard.0, |cg| cg.kill_all(PATIENCE));
}

#[test]
fn privileged_v2_kill_all_by_freezing() {
    let name = "privileged_v2_kill_all_by_freezing";
    require_root!(name);
    let Some(mount) = unified_or_skip(name) else {
        return;
    };
    let guard = unique(&mount, Version::V2);
    guard.0.create().unwrap();
    if !guard.0.has_file("cgroup.freeze") {
        println!("skipping {name}: no cgroup.freeze (kernel < 5.2)");
        return;
    }
    kill_tree(&guard.0, |cg| cg.kill_all_by_freezing(PATIENCE));
}

#[test]
fn privileged_v2_freeze_and_thaw() {
    let name = "privileged_v2_freeze_and_thaw";
    require_root!(name);
    let Some(mount) = unified_or_skip(name) else {
        return;
    };
    let guard = unique(&mount, Version::V2);
    let top = &guard.0;
    top.create().unwrap();
    if !top.has_file("cgroup.freeze") {
        println!("skipping {name}: no cgroup.freeze (kernel < 5.2)");
        return;
    }
    let mut child = spawn_tree(top);
    top.freeze(PATIENCE).unwrap();
    assert!(top.is_frozen().unwrap());
    top.thaw().unwrap();
    let deadline = Instant::now() + PATIENCE;
    while top.is_frozen().unwrap() {
        assert!(Instant::now() < deadline, "did not thaw");
        thread::sleep(Duration::from_millis(5));
    }
    let reaper = thread::spawn(move || child.wait().unwrap());
    top.kill_all(PATIENCE).unwrap();
    reaper.join().unwrap();
}

#[test]
fn privileged_v2_create_with_enables_a_controller() {
    let name = "privileged_v2_create_with_enables_a_controller";
    require_root!(name);
    let Some(mount) = unified_or_skip(name) else {
        return;
    };
    let h = Hierarchies::detect().unwrap();
    let Some(c) = Controller::ALL
        .into_iter()
        .find(|c| c.is_v2_controller() && h.locate(*c).map(|l| l.0) == Some(Version::V2))
    else {
        println!("skipping {name}: cgroup2 offers no controller here");
        return;
    };
    let root = Cgroup::new(&mount, Path::new(""), Version::V2);
    let before = root.read("cgroup.subtree_control").unwrap();
    let guard = unique(&mount, Version::V2);
    let leaf = guard.0.child("leaf");
    leaf.create_with(&[c]).unwrap();
    let enabled = guard.0.read("cgroup.subtree_control").unwrap();
    assert!(
        enabled.split_whitespace().any(|n| n == c.name()),
        "{enabled}"
    );
    let offered = leaf.read("cgroup.controllers").unwrap();
    assert!(
        offered.split_whitespace().any(|n| n == c.name()),
        "{offered}"
    );
    drop(guard);
    if !before.split_whitespace().any(|n| n == c.name()) {
        // Best effort: leave the root as we found it.
        let _ = root.write("cgroup.subtree_control", &format!("-{}", c.name()));
    }
}

#[test]
fn privileged_v1_cpuset_child_inherits_cpus_and_mems() {
    let name = "privileged_v1_cpuset_child_inherits_cpus_and_mems";
    require_root!(name);
    let h = Hierarchies::detect().unwrap();
    let Some(mount) = h.v1_mount(Controller::Cpuset) else {
        println!("skipping {name}: no v1 cpuset hierarchy on this host");
        return;
    };
    let guard = unique(mount, Version::V1);
    let leaf = guard.0.child("a/b");
    leaf.create().unwrap();
    assert!(!leaf.read("cpuset.cpus").unwrap().trim().is_empty());
    assert!(!leaf.read("cpuset.mems").unwrap().trim().is_empty());
    // Joining works only with cpus and mems set.
    let mut child = Command::new("sleep").arg("100").spawn().unwrap();
    let joined = leaf.add_process(child.id() as i32);
    // A sibling under the existing parent, made with the hierarchy's
    // controllers named (one mkdir, no walk): the same copy.
    let sibling = guard.0.child("a/c");
    assert!(sibling.create_new_with(&[Controller::Cpuset]).unwrap());
    assert!(!sibling.create_new_with(&[Controller::Cpuset]).unwrap());
    assert!(!sibling.read("cpuset.cpus").unwrap().trim().is_empty());
    assert!(!sibling.read("cpuset.mems").unwrap().trim().is_empty());
    let rejoined = sibling.add_process(child.id() as i32);
    let _ = child.kill();
    let _ = child.wait();
    joined.unwrap();
    rejoined.unwrap();
}

/// A shell forking sleeps as fast as it can must not outrun `kill_all`.
fn fork_loop_cannot_escape(
    top: &Cgroup,
    kill: impl FnOnce(&Cgroup) -> Result<(), phobos_cgroups::Error>,
) {
    top.create().unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("read go; while :; do sleep 100 & done")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    top.add_process(child.id() as i32).unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let deadline = Instant::now() + PATIENCE;
    let mut before = top.procs().unwrap();
    while before.len() <= 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
        before = top.procs().unwrap();
    }
    assert!(before.len() > 2, "the loop did not fork: {before:?}");
    let reaper = thread::spawn(move || child.wait().unwrap());
    kill(top).expect("kill_all");
    assert!(top.procs().unwrap().is_empty());
    assert_eq!(reaper.join().unwrap().signal(), Some(libc::SIGKILL));
    top.remove(PATIENCE).unwrap();
    assert!(!top.exists());
}

#[test]
fn privileged_v1_fork_loop_cannot_escape() {
    let name = "privileged_v1_fork_loop_cannot_escape";
    require_root!(name);
    let h = Hierarchies::detect().unwrap();
    let Some(mount) = h.v1_mount(Controller::Freezer) else {
        println!("skipping {name}: no v1 freezer hierarchy on this host");
        return;
    };
    let guard = unique(mount, Version::V1);
    fork_loop_cannot_escape(&guard.0, |cg| cg.kill_all(PATIENCE));
}

#[test]
fn privileged_v2_fork_loop_cannot_escape() {
    let name = "privileged_v2_fork_loop_cannot_escape";
    require_root!(name);
    let Some(mount) = unified_or_skip(name) else {
        return;
    };
    let guard = unique(&mount, Version::V2);
    fork_loop_cannot_escape(&guard.0, |cg| cg.kill_all(PATIENCE));
    let guard = unique(&mount, Version::V2);
    guard.0.create().unwrap();
    if guard.0.has_file("cgroup.freeze") {
        fork_loop_cannot_escape(&guard.0, |cg| cg.kill_all_by_freezing(PATIENCE));
    }
}

/// `remove_if_empty` removes an empty cgroup with one rmdir (its leaf
/// first on cgroup2) and keeps one that holds a process or a nested
/// cgroup, which `kill_all` + `remove` then take.
#[test]
fn privileged_remove_if_empty_keeps_a_cgroup_in_use() {
    let name = "privileged_remove_if_empty_keeps_a_cgroup_in_use";
    require_root!(name);
    let h = Hierarchies::detect().unwrap();
    let mut homes: Vec<(&Path, Version)> = Vec::new();
    if let Some(mount) = h.v1_mount(Controller::Freezer) {
        homes.push((mount, Version::V1));
    }
    if let Some(mount) = h.unified_mount() {
        homes.push((mount, Version::V2));
    }
    if homes.is_empty() {
        println!("skipping {name}: no freezer hierarchy and no cgroup2 mount");
        return;
    }
    for (mount, version) in homes {
        let guard = unique(mount, version);
        let cg = &guard.0;
        // Never made: gone already.
        assert!(cg.remove_if_empty().unwrap());
        // Empty, with its leaf on cgroup2: removed.
        let home = match version {
            Version::V2 => cg.leaf(),
            Version::V1 => cg.clone(),
        };
        home.create().unwrap();
        assert!(cg.remove_if_empty().unwrap());
        assert!(!cg.exists());
        // A process inside: kept, with the process in it.
        home.create().unwrap();
        let mut child = Command::new("sleep").arg("100").spawn().unwrap();
        home.add_process(child.id() as i32).unwrap();
        assert!(!cg.remove_if_empty().unwrap());
        assert!(home.exists());
        assert_eq!(home.procs().unwrap(), vec![child.id() as i32]);
        cg.kill_all(Duration::from_secs(120)).unwrap();
        let _ = child.wait();
        // A nested cgroup (empty leaf gone): kept until `remove` walks it.
        let nested = cg.child("nested");
        nested.create().unwrap();
        assert!(!cg.remove_if_empty().unwrap());
        assert!(nested.exists());
        cg.remove(Duration::from_secs(120)).unwrap();
        assert!(!cg.exists());
    }
}

/// `write_each` gives a v1 devices cgroup a whole allow list through one
/// open of `devices.allow`: the kernel takes every write as one rule, and
/// a rule it refuses is an error naming the rule.
#[test]
fn privileged_v1_write_each_gives_every_devices_rule() {
    let name = "privileged_v1_write_each_gives_every_devices_rule";
    require_root!(name);
    let h = Hierarchies::detect().unwrap();
    let Some(mount) = h.v1_mount(Controller::Devices) else {
        println!("skipping {name}: no v1 devices hierarchy on this host");
        return;
    };
    let guard = unique(mount, Version::V1);
    let cg = &guard.0;
    cg.create().unwrap();
    cg.write("devices.deny", "a").unwrap();
    let rules = ["c *:* m", "c 1:3 rwm", "c 136:* rwm", "b 7:0 r"];
    cg.write_each("devices.allow", rules).unwrap();
    let list = cg.read("devices.list").unwrap();
    let listed: Vec<&str> = list.lines().collect();
    assert_eq!(listed, rules, "{list}");
    cg.write_each("devices.allow", std::iter::empty()).unwrap();
    let e = cg
        .write_each("devices.allow", ["c 1:5 rwm", "x nonsense"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("x nonsense"), "{e}");
    assert!(cg.read("devices.list").unwrap().contains("c 1:5 rwm"));
}
