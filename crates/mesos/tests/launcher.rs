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

/// `spawn_init` clones without copying this process's memory
/// (`CLONE_VM | CLONE_VFORK` on its own stack) from a process with other
/// threads running: the child still gets exactly its fixed descriptors and
/// environment, waits on the sync pipe until released, and an exec that
/// fails is reported by `release`, not lost.
#[test]
fn spawn_init_starts_the_helper_with_its_descriptors_and_reports_a_failed_exec() {
    use phobos_mesos::launcher::{InitSpec, LaunchError, spawn_init};
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    // A stand-in for `phobos init`: waits for the release byte on fd 3,
    // then reports its arguments, environment and open descriptors.
    let helper = dir.path().join("helper");
    std::fs::write(
        &helper,
        "#!/bin/sh\nhead -c 1 <&3 >/dev/null\necho \"args=$*\"\necho \"dir=$PHOBOS_INIT_DIR\"\n\
         ls /proc/self/fd | sort -n | tr '\\n' ' '\necho\n",
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let stdout_path = dir.path().join("stdout");
    let stdout = std::fs::File::create(&stdout_path).unwrap();
    let stderr = std::fs::File::create(dir.path().join("stderr")).unwrap();
    let lock = std::fs::File::create(dir.path().join("init.lock")).unwrap();
    // Other threads run (and allocate) while the child shares our memory.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut v = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    v.push(vec![0u8; 4096]);
                    if v.len() > 64 {
                        v.clear();
                    }
                }
            })
        })
        .collect();
    let runtime_dir = dir.path().join("run");
    let spec = |exe: &'static std::path::Path| InitSpec {
        exe,
        runtime_dir: &runtime_dir,
        clone_flags: 0,
        stdin: None,
        stdout: &stdout,
        stderr: &stderr,
        init_lock: &lock,
        cgroup: None,
        join_cgroups: &[],
        join_own_memory: &[],
        join: None,
        tty: None,
    };
    let helper: &'static std::path::Path = Box::leak(helper.into_boxed_path());
    for _ in 0..20 {
        let init = spawn_init(&spec(helper)).unwrap();
        let pid = init.pid;
        init.release().unwrap();
        let mut status = 0;
        // SAFETY: waitpid on our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    }
    let out = std::fs::read_to_string(&stdout_path).unwrap();
    let first: Vec<&str> = out.lines().take(3).collect();
    assert_eq!(first[0], "args=init");
    assert_eq!(first[1], format!("dir={}", runtime_dir.display()));
    // 0-2, the sync pipe (3), the lock (4); `ls`'s own directory fd.
    let fds: Vec<&str> = first[2].split_whitespace().collect();
    assert_eq!(&fds[..5], ["0", "1", "2", "3", "4"], "{out}");
    assert!(fds.len() <= 6, "a descriptor leaked into the helper: {out}");
    assert_eq!(out.lines().count(), 60, "{out}");

    let missing: &'static std::path::Path = std::path::Path::new("/nonexistent/phobos-init");
    let init = spawn_init(&spec(missing)).unwrap();
    let pid = init.pid;
    match init.release() {
        Err(LaunchError::ExecInit { source, .. }) => {
            assert_eq!(source.raw_os_error(), Some(libc::ENOENT))
        }
        other => panic!("expected the failed exec, got {other:?}"),
    }
    let mut status = 0;
    // SAFETY: waitpid on our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert_eq!(libc::WEXITSTATUS(status), 127);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in busy {
        t.join().unwrap();
    }
}
