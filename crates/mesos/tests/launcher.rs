//! The linux launcher's kill cgroup on both hierarchies of this host, with
//! real processes: the v1 freezer (freeze, SIGKILL, thaw, remove) and, where
//! the kernel has it, cgroup2's `cgroup.kill`.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use phobos_core::ContainerId;
use phobos_mesos::launcher::{KillHierarchy, LinuxLauncher};

fn check(choice: KillHierarchy, test: &str) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipping {test}: needs root");
        return;
    }
    let root = format!("phobos-test-{}", uuid_like());
    let launcher = match LinuxLauncher::with_hierarchy(&root, choice) {
        Ok(l) => l,
        Err(e) => {
            println!("skipping {test}: {e}");
            return;
        }
    };
    let id = ContainerId::new("tree").unwrap();
    launcher.prepare(&id).unwrap();
    let cgroup = launcher.cgroup(&id);
    // A shell moved into the cgroup (the freezer path's adopt; on cgroup2 a
    // moved process is killed just the same), which forks two children only
    // once it is there: a line on stdin releases it, as the sync pipe
    // releases init.
    let mut shell = Command::new("sh")
        .args(["-c", "read _; sleep 1000 & sleep 1000 & wait"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    cgroup.add_process(shell.id() as i32).unwrap();
    let mut release = shell.stdin.take().unwrap();
    std::io::Write::write_all(&mut release, b"go\n").unwrap();
    // Generous: CI also runs this under qemu TCG (scripts/v2-lane.sh).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let tree = loop {
        let pids = cgroup.procs().unwrap();
        if pids.len() == 3 || std::time::Instant::now() > deadline {
            break pids;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert_eq!(tree.len(), 3, "the shell and its two sleeps: {tree:?}");
    assert_eq!(launcher.known().unwrap(), ["tree"]);
    let reaper = std::thread::spawn(move || shell.wait().unwrap());
    launcher.destroy(&id, None).unwrap();
    let status = reaper.join().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(!cgroup.path().exists(), "cgroup left behind");
    // The sleeps died too (at most zombies, until pid 1 reaps them).
    for pid in tree {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit(')').next().map(|r| r.trim_start().chars().next()))
            .flatten();
        assert!(
            matches!(state, None | Some('Z' | 'X')),
            "pid {pid} survived: {state:?}"
        );
    }
    assert!(launcher.known().unwrap().is_empty());
    for mount in [
        "/sys/fs/cgroup/unified",
        "/sys/fs/cgroup/freezer",
        "/sys/fs/cgroup",
    ] {
        let _ = std::fs::remove_dir(std::path::Path::new(mount).join(&root));
    }
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        phobos_core::time::now_secs().to_bits()
    )
}

#[test]
fn privileged_v1_freezer_kills_the_whole_tree() {
    check(
        KillHierarchy::V1Freezer,
        "privileged_v1_freezer_kills_the_whole_tree",
    );
}

#[test]
fn privileged_default_hierarchy_kills_the_whole_tree() {
    check(
        KillHierarchy::Auto,
        "privileged_default_hierarchy_kills_the_whole_tree",
    );
}
