//! `phobos` on a host whose controllers are all on cgroup2, as under
//! systemd on every current distribution: init born in its cgroup with every
//! controller already in force (CLONE_INTO_CGROUP), `io.stat` of a real
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
        format!("0::{rel}"),
        "init was not born in its cgroup"
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
        format!("0::{rel}")
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
    env.ok(&[
        "run",
        "-d",
        "--id",
        "io",
        "--isolation",
        "cgroups/blkio",
        "--",
        "sh",
        "-c",
        &script,
    ]);
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
    // Only the (empty) cgroups root is left in the unit, and `state --rm`
    // forgets both records.
    let children: Vec<_> = std::fs::read_dir(&unit.dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(children, ["phobos"], "{children:?}");
    assert_eq!(
        std::fs::read_dir(unit.dir.join("phobos"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .count(),
        0
    );
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
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("0::/{root}/leaf")
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

/// A nested container under a parent with resource cgroups: on cgroup2
/// alone its own cgroups would need controllers enabled in the parent's
/// cgroup, which holds the parent's processes (the no-internal-process
/// rule). Without `--share-cgroups` it is refused in one line naming the
/// rule, exit 1, nothing created; with it, it runs in a kill cgroup
/// nested in the parent's, accounted to the parent, and leaves nothing.
#[test]
fn privileged_v2_nested_container_needs_share_cgroups_under_a_parent_with_resources() {
    let test = "privileged_v2_nested_container_needs_share_cgroups_under_a_parent_with_resources";
    let Some(mount) = v2_controllers(test) else {
        return;
    };
    let env = Env::new();
    env.ok(&[
        "run", "-d", "--id", "p", "--mem", "64", "--", "sleep", "1000",
    ]);
    let parent_cgroup = mount.join(&env.cgroups_root).join("p");
    assert_eq!(
        read(&parent_cgroup.join("memory.max")),
        (64 * MB).to_string()
    );

    let out = env.run(&["run", "--parent", "p", "--id", "own", "--", "true"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("no-internal-process rule"), "{err}");
    assert!(err.contains("--share-cgroups"), "{err}");
    assert!(!env.container_dir("p").join("containers/own").exists());
    assert!(!env.sandbox("p").join("containers/own").exists());
    assert!(!parent_cgroup.join("mesos/own").exists());
    assert_eq!(read(&parent_cgroup.join("cgroup.subtree_control")), "");

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
        format!("0::/{}/p/mesos/shared", env.cgroups_root)
    );
    assert!(!parent_cgroup.join("mesos/shared").exists());
    assert_eq!(env.status_json("p")["state"], "RUNNING");
    env.ok(&["destroy", "p"]);
    assert!(!parent_cgroup.exists());
}
