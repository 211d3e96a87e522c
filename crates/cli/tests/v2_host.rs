//! `phobos` on a host whose controllers are all on cgroup2, as under
//! systemd on every current distribution: init born in its cgroup's leaf
//! with every controller already in force (CLONE_INTO_CGROUP), nested
//! containers with limits of their own, `io.stat` of a real
//! block device in `phobos stats`, and the cgroups root placed in and next
//! to a cgroup that holds processes (docs/operations.md).
//!
//! They need root and controllers on cgroup2; this project's hybrid host
//! has its controllers on v1, so they run for real in the pure cgroup v2
//! lane (scripts/v2-lane.sh), where `PHOBOS_TEST_PURE_V2` turns a skip into
//! a failure.

mod common;
#[path = "../../cgroups/tests/support/v2.rs"]
mod v2;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;
use phobos_cgroups::{Controller, Hierarchies, Version};
use v2::{block_device, skip};

const MB: u64 = 1024 * 1024;

/// cgroup2's mount point when root and every controller the cgroups
/// isolators use is on cgroup2; `None` after saying why not.
fn v2_controllers(test: &str) -> Option<PathBuf> {
    if !require_root(test) {
        return None;
    }
    let h = Hierarchies::detect().unwrap();
    let Some(mount) = h.unified_mount() else {
        skip(test, "no cgroup2 filesystem is mounted");
        return None;
    };
    for c in [
        Controller::Cpu,
        Controller::Memory,
        Controller::Pids,
        Controller::Io,
    ] {
        if h.locate(c).map(|l| l.0) != Some(Version::V2) {
            skip(test, &format!("the {c} controller is not on cgroup2 here"));
            return None;
        }
    }
    Some(mount.to_path_buf())
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// A cgroup made by the test (a stand-in for a systemd unit's), with a
/// process of its own until dropped; drop kills what is left in it and
/// removes it, deepest first.
struct Unit {
    dir: PathBuf,
    member: Option<std::process::Child>,
}

impl Unit {
    fn new(mount: &Path) -> Self {
        let dir = mount.join(format!("phobos-test-{}.service", uuid::Uuid::new_v4()));
        std::fs::create_dir(&dir).unwrap();
        Unit { dir, member: None }
    }

    /// Puts a `sleep` into the unit's own cgroup (or `sub`, created).
    fn populate(&mut self, sub: Option<&str>) {
        let dir = sub.map_or(self.dir.clone(), |s| self.dir.join(s));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("sleep").arg("1000").spawn().unwrap();
        std::fs::write(dir.join("cgroup.procs"), child.id().to_string()).unwrap();
        self.member = Some(child);
    }

    /// `phobos` started inside `sub` of the unit (as an agent running in
    /// that cgroup would start it), with `env`'s directories and
    /// `cgroups_root`.
    fn phobos(&self, sub: Option<&str>, env: &Env, cgroups_root: &str, args: &[&str]) -> Output {
        let dir = sub.map_or(self.dir.clone(), |s| self.dir.join(s));
        std::fs::create_dir_all(&dir).unwrap();
        Command::new("sh")
            .arg("-c")
            .arg("echo $$ > \"$0\" && exec \"$@\"")
            .arg(dir.join("cgroup.procs"))
            .arg(PHOBOS)
            .args(env.dir_args())
            .arg("--cgroups-root")
            .arg(cgroups_root)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn name(&self) -> String {
        self.dir.file_name().unwrap().to_string_lossy().into_owned()
    }
}

impl Drop for Unit {
    fn drop(&mut self) {
        if let Some(mut child) = self.member.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mut stack = vec![self.dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
            dirs.push(d);
        }
        for d in dirs.iter().rev() {
            let _ = std::fs::write(d.join("cgroup.kill"), "1");
            let _ = eventually(PATIENCE, || std::fs::remove_dir(d).is_ok() || !d.exists());
        }
    }
}

#[test]
fn privileged_v2_init_is_born_in_its_cgroup_with_every_controller() {
    let test = "privileged_v2_init_is_born_in_its_cgroup_with_every_controller";
    let Some(mount) = v2_controllers(test) else {
        return;
    };
    let env = Env::new();
    // Stop the launcher right after clone3: nothing can have been migrated.
    let mut launcher = env
        .cmd()
        .args([
            "run",
            "-d",
            "--id",
            "born",
            "--isolation",
            "filesystem/linux,cgroups/all,namespaces/pid",
            "--cpus",
            "0.5",
            "--cpus-limit",
            "1",
            "--mem",
            "64",
            "--pids-limit",
            "50",
            "--",
            "sleep",
            "1000",
        ])
        .env("PHOBOS_STOP_AT", "forked")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = launcher.id();
    let mut ended = None;
    let stopped = eventually(PATIENCE, || {
        ended = launcher.try_wait().unwrap();
        ended.is_some() || proc_state(pid) == Some('T')
    });
    if let Some(status) = ended {
        let mut err = String::new();
        std::io::Read::read_to_string(&mut launcher.stderr.take().unwrap(), &mut err).unwrap();
        panic!("the launch ended before forking init: {status:?}: {err}");
    }
    assert!(stopped, "the launcher never forked init");
    let mut inits = Vec::new();
    assert!(eventually(PATIENCE, || {
        inits = inits_of(env.runtime.path());
        !inits.is_empty()
    }));
    let init = inits[0];
    let rel = env.cgroup_rel("born");
    assert_eq!(
        read(Path::new(&format!("/proc/{init}/cgroup"))),
        format!("0::{rel}/leaf"),
        "init was not born in its cgroup's leaf"
    );
    // Every controller, with its limits, was in force before init existed.
    let dir = mount.join(rel.trim_start_matches('/'));
    let controllers = read(&dir.join("cgroup.controllers"));
    for c in ["cpu", "memory", "pids", "io"] {
        assert!(
            controllers.split_whitespace().any(|n| n == c),
            "{c} not in {controllers}"
        );
    }
    assert_eq!(read(&dir.join("cpu.weight")), "20");
    assert_eq!(read(&dir.join("cpu.max")), "100000 100000");
    assert_eq!(read(&dir.join("memory.max")), (64 * MB).to_string());
    assert_eq!(read(&dir.join("pids.max")), "50");
    assert!(read(&dir.join("pids.current")).parse::<u64>().unwrap() >= 1);

    // The launch goes on without moving init, and ends RUNNING.
    // SAFETY: kill(2) with a pid and SIGCONT.
    unsafe { libc::kill(pid as i32, libc::SIGCONT) };
    assert!(launcher.wait().unwrap().success());
    assert_eq!(env.status_json("born")["state"], "RUNNING");
    assert_eq!(
        read(Path::new(&format!("/proc/{init}/cgroup"))),
        format!("0::{rel}/leaf")
    );
    env.ok(&["destroy", "born"]);
    assert!(!dir.exists(), "cgroup left behind");
}

#[test]
fn privileged_v2_stats_report_io_of_a_real_block_device() {
    let test = "privileged_v2_stats_report_io_of_a_real_block_device";
    if v2_controllers(test).is_none() {
        return;
    }
    let Some((dev, _)) = block_device() else {
        skip(test, "no block device");
        return;
    };
    let name = dev.file_name().unwrap().to_string_lossy().into_owned();
    let Ok(numbers) = std::fs::read_to_string(format!("/sys/class/block/{name}/dev")) else {
        skip(test, &format!("{} is not a whole disk", dev.display()));
        return;
    };
    let (major, minor) = numbers.trim().split_once(':').unwrap();
    let (major, minor): (u64, u64) = (major.parse().unwrap(), minor.parse().unwrap());
    let env = Env::new();
    let script = format!(
        "dd if={} of=/dev/null bs=64k count=16 iflag=direct 2>/dev/null; touch done; sleep 1000",
        dev.display()
    );
    env.detach_with(
        "io",
        &["--isolation", "cgroups/blkio"],
        &["sh", "-c", &script],
    );
    assert!(
        eventually(PATIENCE, || env.sandbox("io").join("done").exists()),
        "dd never finished"
    );
    let stats: serde_json::Value =
        serde_json::from_str(&env.ok(&["stats", "io", "--json"])).unwrap();
    let throttling = stats["blkio_statistics"]["throttling"]
        .as_array()
        .unwrap_or_else(|| panic!("no blkio statistics: {stats}"));
    let device = throttling
        .iter()
        .find(|t| {
            t["device"]["major_number"].as_u64() == Some(major)
                && t["device"]["minor_number"].as_u64() == Some(minor)
        })
        .unwrap_or_else(|| panic!("{major}:{minor} not reported: {stats}"));
    let value = |list: &str, op: &str| {
        device[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["op"] == op)
            .and_then(|v| v["value"].as_u64())
            .unwrap_or_else(|| panic!("no {op} in {list}: {device}"))
    };
    assert!(value("io_service_bytes", "READ") >= MB, "{device}");
    assert!(value("io_serviced", "READ") >= 16, "{device}");
    assert!(value("io_service_bytes", "TOTAL") >= value("io_service_bytes", "READ"));
    env.ok(&["destroy", "io"]);
}

#[test]
fn privileged_v2_cgroups_root_inside_a_populated_cgroup_fails_in_one_line() {
    let test = "privileged_v2_cgroups_root_inside_a_populated_cgroup_fails_in_one_line";
    let Some(mount) = v2_controllers(test) else {
        return;
    };
    let env = Env::new();
    // phobos runs in the unit's own cgroup, which therefore holds processes,
    // and is asked to put its containers below it.
    let mut unit = Unit::new(&mount);
    unit.populate(None);
    let root = format!("{}/phobos", unit.name());
    // In the foreground and detached alike.
    for (id, detach) in [("svc1", false), ("svc2", true)] {
        let mut args = vec!["run", "--id", id];
        if detach {
            args.push("-d");
        }
        args.extend(["--", "true"]);
        let out = unit.phobos(None, &env, &root, &args);
        let err = stderr(&out);
        // A runtime failure of an isolator: exit 1 (README), neither 2 (bad
        // input, nothing changed) nor 255 (a container that never started
        // for another reason).
        assert_eq!(out.status.code(), Some(1), "{id}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains("no-internal-process rule"), "{err}");
        assert!(err.contains(&unit.dir.display().to_string()), "{err}");
        assert!(out.stdout.is_empty(), "{id}: printed an ID");
        // No container cgroup anywhere below the unit, nor under the
        // test's own cgroups root.
        assert!(!unit.dir.join("phobos").join(id).exists());
        assert!(!mount.join(&env.cgroups_root).join(id).exists());
        // The container's record says why, as for any failed launch.
        let t = env.wait_json(id);
        assert_eq!(t["state"], "TASK_FAILED", "{t}");
        assert_eq!(t["reason"], "REASON_CONTAINER_LAUNCH_FAILED", "{t}");
        assert!(
            t["message"]
                .as_str()
                .unwrap()
                .contains("no-internal-process"),
            "{t}"
        );
    }
    // Nothing is left in the unit (the controllers are refused before the
    // cgroups root is made), and `state --rm` forgets both records.
    let children: Vec<_> = std::fs::read_dir(&unit.dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(children.is_empty(), "left in the unit: {children:?}");
    env.ok(&["state", "--rm"]);
    assert!(!env.container_dir("svc1").exists() && !env.container_dir("svc2").exists());
}

#[test]
fn privileged_v2_delegated_unit_with_the_agent_in_a_leaf_works() {
    let test = "privileged_v2_delegated_unit_with_the_agent_in_a_leaf_works";
    let Some(mount) = v2_controllers(test) else {
        return;
    };
    let env = Env::new();
    // docs/operations.md: the agent in <unit>/supervisor, containers under
    // <unit>/containers; the unit's own cgroup holds no process.
    let mut unit = Unit::new(&mount);
    unit.populate(Some("supervisor"));
    let root = format!("{}/containers", unit.name());
    let out = unit.phobos(
        Some("supervisor"),
        &env,
        &root,
        &[
            "run",
            "--id",
            "leaf",
            "--mem",
            "64",
            "--",
            "sh",
            "-c",
            "cat /proc/self/cgroup; exit 3",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    // The container `leaf`'s processes, in its cgroup's leaf.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("0::/{root}/leaf/leaf")
    );
    let enabled = read(&unit.dir.join("cgroup.subtree_control"));
    for c in ["cpu", "memory", "pids"] {
        assert!(enabled.split_whitespace().any(|n| n == c), "{enabled}");
    }
    assert!(
        !unit.dir.join("containers/leaf").exists(),
        "cgroup left behind"
    );
}

/// A device node made by a test in `/dev` (devtmpfs, where nodes work;
/// a temporary directory may be on a `nodev` mount), removed on drop.
struct TestNode(PathBuf);

impl TestNode {
    /// A block node with the device numbers of `of`, mode 0600.
    fn block_like(of: &Path) -> Self {
        use std::os::unix::fs::MetadataExt;
        let rdev = std::fs::metadata(of).unwrap().rdev();
        let path = PathBuf::from(format!("/dev/phobos-test-{}", uuid::Uuid::new_v4()));
        nix::sys::stat::mknod(
            &path,
            nix::sys::stat::SFlag::S_IFBLK,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            rdev,
        )
        .unwrap_or_else(|e| panic!("mknod {}: {e}", path.display()));
        TestNode(path)
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn privileged_v2_device_program_denies_a_block_device_and_device_allows_it() {
    let test = "privileged_v2_device_program_denies_a_block_device_and_device_allows_it";
    if v2_controllers(test).is_none() {
        return;
    }
    if Hierarchies::detect()
        .unwrap()
        .locate(Controller::Devices)
        .is_some()
    {
        skip(test, "a v1 devices controller is mounted");
        return;
    }
    let Some((disk, _)) = block_device() else {
        skip(test, "no block device");
        return;
    };
    // A node of our own for the host's disk: root on the host opens it.
    let node = TestNode::block_like(&disk);
    let node_path = node.0.to_str().unwrap().to_owned();
    std::fs::File::open(&node.0).expect("root opens the node on the host");
    let env = Env::new();
    let probe = format!(
        "head -c1 {node_path} >/dev/null && echo block-open || echo block-denied; \
         echo x >/dev/null && head -c1 /dev/zero >/dev/null && echo null-zero-ok"
    );
    let out = env.run(&["run", "--id", "dev1", "--", "sh", "-c", &probe]);
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(out.status.success(), "{all}");
    assert!(all.contains("block-denied"), "{all}");
    assert!(
        all.contains("Operation not permitted"),
        "EPERM from the program: {all}"
    );
    assert!(all.contains("null-zero-ok"), "{all}");
    // The launch's cgroup had the program; it went with the container.
    let cg = Hierarchies::detect()
        .unwrap()
        .unified_mount()
        .unwrap()
        .join(&env.cgroups_root)
        .join("dev1");
    assert!(!cg.exists(), "{} left behind", cg.display());
    let out = env.run(&[
        "run",
        "--device",
        &format!("{node_path}:r"),
        "--",
        "sh",
        "-c",
        &probe,
    ]);
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(all.contains("block-open"), "--device allows it: {all}");
    assert!(all.contains("null-zero-ok"), "{all}");
}

/// A nested container under a parent with resource cgroups: the parent's
/// processes are in `<parent>/leaf`, so `<parent>/mesos/<child>` gets
/// controllers and limits of its own, enforced: a child whose memory limit
/// is below its parent's is OOM-killed alone (its termination says so),
/// and the parent runs on, not marked limited. Statistics of the parent
/// count its own processes, not its children's. With `--share-cgroups`
/// a child still runs in a kill cgroup nested in the parent's. Destroy
/// from the top leaves nothing.
#[test]
fn privileged_v2_nested_container_has_its_own_limits_and_is_oom_killed_alone() {
    let test = "privileged_v2_nested_container_has_its_own_limits_and_is_oom_killed_alone";
    let Some(mount) = v2_controllers(test) else {
        return;
    };
    let env = Env::new();
    env.detach_with("p", &["--mem", "128"], &["sleep", "1000"]);
    let parent_cgroup = mount.join(&env.cgroups_root).join("p");
    assert_eq!(
        read(&parent_cgroup.join("memory.max")),
        (128 * MB).to_string()
    );
    let parent_pid = env.status_json("p")["pid"].as_i64().unwrap();
    assert_eq!(
        read(Path::new(&format!("/proc/{parent_pid}/cgroup"))),
        format!("0::{}/leaf", env.cgroup_rel("p")),
        "the parent's init is not in its leaf"
    );
    assert_eq!(read(&parent_cgroup.join("cgroup.procs")), "");

    // A child with limits of its own, in force, its processes in its leaf.
    env.detach_nested(
        "p",
        "own",
        &["--mem", "48", "--cpus", "0.25", "--cpus-limit", "0.5"],
        &["sleep", "1000"],
    );
    let child_cgroup = parent_cgroup.join("mesos/own");
    assert_eq!(
        read(&child_cgroup.join("memory.max")),
        (48 * MB).to_string()
    );
    assert_eq!(read(&child_cgroup.join("cpu.max")), "50000 100000");
    let child_pid = env.status_json("p.own")["pid"].as_i64().unwrap();
    assert_eq!(
        read(Path::new(&format!("/proc/{child_pid}/cgroup"))),
        format!("0::{}/mesos/own/leaf", env.cgroup_rel("p"))
    );
    let stats = |id: &str| -> serde_json::Value {
        serde_json::from_str(&env.ok(&["stats", "--json", id])).unwrap()
    };
    assert_eq!(stats("p.own")["mem_limit_bytes"], 48 * MB);
    let own_procs = read(&parent_cgroup.join("leaf/cgroup.procs"))
        .lines()
        .count();
    assert_eq!(stats("p")["processes"], own_procs as u64, "{}", stats("p"));

    // A child over its own limit is killed alone.
    env.detach_nested(
        "p",
        "hog",
        &["--mem", "32"],
        &[
            "sh",
            "-c",
            // The hog, not the child's init, is the OOM killer's choice.
            "echo 1000 > /proc/self/oom_score_adj; x=a; while :; do x=\"$x$x\"; done",
        ],
    );
    let t = env.wait_json("p.hog");
    // Init records the memory limitation. Under slow emulation (the lane's
    // TCG) the kernel may have to kill again before the dying hog's memory
    // is freed, and then takes the child's init too: the child still ended
    // by its own limit, killed (checked through the parent's counters).
    if t["reason"] == "REASON_CONTAINER_LIMITATION_MEMORY" {
        let message = t["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!(
                "Memory limit exceeded: Requested: {} bytes",
                32 * MB
            )),
            "{message}"
        );
    } else {
        assert_eq!(t["signal"], 9, "{t}");
    }
    // The kills were below the parent, none of the parent's own.
    let events = |file: &str| -> u64 {
        read(&parent_cgroup.join(file))
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(events("memory.events") >= 1, "no OOM kill below the parent");
    assert_eq!(events("memory.events.local"), 0);
    assert_eq!(events("leaf/memory.events"), 0);
    assert!(alive(parent_pid), "the parent died with its child");
    let parent = env.status_json("p");
    assert_eq!(parent["state"], "RUNNING", "{parent}");
    assert_eq!(env.status_json("p.own")["state"], "RUNNING");
    assert!(
        !env.container_dir("p")
            .join(phobos_core::store::TERMINATION_FILE)
            .exists(),
        "the parent was given a termination"
    );

    // Sharing the parent's cgroups still works.
    let out = env.run(&[
        "run",
        "--parent",
        "p",
        "--id",
        "shared",
        "--share-cgroups",
        "--",
        "sh",
        "-c",
        "cat /proc/self/cgroup; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("0::/{}/p/mesos/shared/leaf", env.cgroups_root)
    );
    assert!(!parent_cgroup.join("mesos/shared").exists());
    env.ok(&["destroy", "p"]);
    assert!(!parent_cgroup.exists(), "cgroups left behind");
    // Empty by the kernel's count (cgroup_exit) a moment before the task
    // turns into a zombie.
    assert!(
        eventually(PATIENCE, || !alive(child_pid)),
        "{child_pid} survived destroy"
    );
}

/// A container launched before the leaf layout holds its processes in its
/// own cgroup (simulated by moving them there and removing the leaf):
/// statistics, `recover` and destroy still work; a nested container with
/// cgroups of its own under it is refused in one line naming the rule and
/// the ways out, exit 1, nothing created; with `--share-cgroups` it runs.
#[test]
fn privileged_v2_container_of_the_old_layout_is_recovered_and_destroyed() {
    let test = "privileged_v2_container_of_the_old_layout_is_recovered_and_destroyed";
    let Some(mount) = v2_controllers(test) else {
        return;
    };
    let env = Env::new();
    env.detach_with("old", &["--mem", "64"], &["sleep", "1000"]);
    let cgroup = mount.join(&env.cgroups_root).join("old");
    // Init may still be starting the command when `run -d` returns: move
    // whatever is in the leaf until it is empty and can go.
    let leaf = cgroup.join("leaf");
    let emptied = eventually(PATIENCE, || {
        for pid in read(&leaf.join("cgroup.procs")).lines() {
            std::fs::write(cgroup.join("cgroup.procs"), pid).unwrap();
        }
        std::fs::remove_dir(&leaf).is_ok()
    });
    assert!(emptied, "{} could not be emptied", leaf.display());
    let pid = env.status_json("old")["pid"].as_i64().unwrap();
    assert_eq!(
        read(Path::new(&format!("/proc/{pid}/cgroup"))),
        format!("0::{}", env.cgroup_rel("old"))
    );
    let stats: serde_json::Value =
        serde_json::from_str(&env.ok(&["stats", "--json", "old"])).unwrap();
    assert_eq!(stats["mem_limit_bytes"], 64 * MB, "{stats}");
    assert_eq!(stats["processes"], 2, "{stats}");

    let out = env.run(&[
        "run", "--parent", "old", "--id", "own", "--mem", "16", "--", "true",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    for says in ["no-internal-process rule", "--share-cgroups", "leaf"] {
        assert!(err.contains(says), "{says}: {err}");
    }
    assert!(!env.container_dir("old").join("containers/own").exists());
    assert!(!env.sandbox("old").join("containers/own").exists());
    assert!(!cgroup.join("mesos/own").exists());
    assert_eq!(read(&cgroup.join("cgroup.subtree_control")), "");
    let out = env.run(&[
        "run",
        "--parent",
        "old",
        "--share-cgroups",
        "--",
        "sh",
        "-c",
        "exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));

    let report = env.ok(&["recover"]);
    assert!(report.lines().any(|l| l == "recovered old"), "{report}");
    assert!(!report.contains("destroyed"), "{report}");
    assert_eq!(env.status_json("old")["state"], "RUNNING");
    env.ok(&["destroy", "old"]);
    assert!(!cgroup.exists(), "cgroup left behind");
    // Empty by the kernel's count (cgroup_exit) a moment before the task
    // turns into a zombie.
    assert!(
        eventually(PATIENCE, || !alive(pid)),
        "{pid} survived destroy"
    );
}
