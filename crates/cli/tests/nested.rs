//! Nested containers (issue 12): `phobos run --parent`, the namespace
//! table of reference §3.9 read from `/proc/<pid>/ns/*`, three levels
//! destroyed from the top, the parent's sandbox as an attacker, crashes
//! mid-launch, and bad input.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use common::*;

/// The namespace inode of `pid` for `ns` (`/proc/<pid>/ns/<ns>`).
fn ns(pid: i64, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/ns/{ns}: {e}"))
        .display()
        .to_string()
}

fn pid_of(env: &Env, id: &str) -> i64 {
    env.status_json(id)["pid"]
        .as_i64()
        .unwrap_or_else(|| panic!("{id} has no pid"))
}

/// Nothing of `ids` is left: no process of the environment, no cgroup
/// under its root, no mount naming its work or runtime directory, and,
/// after `state --rm`, no record or sandbox.
fn assert_nothing_left(env: &Env) {
    assert!(
        eventually(PATIENCE, || inits_of(env.runtime.path()).is_empty()),
        "init processes left: {:?}",
        inits_of(env.runtime.path())
    );
    for root in all_hierarchies() {
        let dir = root.join(&env.cgroups_root);
        let left: Vec<PathBuf> = walk_dirs(&dir);
        assert!(
            left.is_empty(),
            "cgroups left under {}: {left:?}",
            dir.display()
        );
    }
    // (The network isolator's `<runtime>/net` mount point is shared by
    // every container of the runtime directory and stays.)
    for dir in [env.work.path(), &env.runtime.path().join("containers")] {
        let mounts = mounts_mentioning(dir);
        assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    }
    env.ok(&["state", "--rm"]);
    assert_eq!(env.ok(&["ps", "--json"]), "[]");
    let records = walk_dirs(&env.runtime.path().join("containers"));
    assert!(records.is_empty(), "records left: {records:?}");
    let sandboxes = walk_dirs(&env.work.path().join("containers"));
    assert!(sandboxes.is_empty(), "sandboxes left: {sandboxes:?}");
}

/// Every directory below `dir` (not `dir` itself).
fn walk_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.push(e.path());
                stack.push(e.path());
            }
        }
    }
    out
}

#[test]
fn privileged_nested_namespaces_follow_the_table_at_three_levels() {
    if !require_root("privileged_nested_namespaces_follow_the_table_at_three_levels") {
        return;
    }
    let env = Env::new();
    env.detach_with(
        "top",
        &["--hostname", "top-host", "--network", "none"],
        &["sleep", "1000"],
    );
    env.detach_nested("top", "mid", &[], &["sleep", "1000"]);
    env.detach_nested("top.mid", "low", &[], &["sleep", "1000"]);
    env.detach_nested(
        "top",
        "sharer",
        &["--share-pid", "--share-ipc"],
        &["sleep", "1000"],
    );
    let top = pid_of(&env, "top");
    let mid = pid_of(&env, "top.mid");
    let low = pid_of(&env, "top.mid.low");
    let sharer = pid_of(&env, "top.sharer");
    // The commands (inits may join a shared namespace only for them).
    let (top_cmd, mid_cmd, low_cmd, sharer_cmd) = (
        command_pid(top),
        command_pid(mid),
        command_pid(low),
        command_pid(sharer),
    );
    for (parent, child) in [
        (top_cmd, mid_cmd),
        (mid_cmd, low_cmd),
        (top_cmd, sharer_cmd),
    ] {
        // Network and UTS: the parent's, always.
        assert_eq!(ns(parent, "net"), ns(child, "net"), "{parent} -> {child}");
        assert_eq!(ns(parent, "uts"), ns(child, "uts"), "{parent} -> {child}");
        // Mount: always its own.
        assert_ne!(ns(parent, "mnt"), ns(child, "mnt"), "{parent} -> {child}");
    }
    // PID and IPC: own unless shared.
    for (parent, child) in [(top_cmd, mid_cmd), (mid_cmd, low_cmd)] {
        assert_ne!(ns(parent, "pid"), ns(child, "pid"));
        assert_ne!(ns(parent, "ipc"), ns(child, "ipc"));
    }
    assert_eq!(ns(top_cmd, "pid"), ns(sharer_cmd, "pid"));
    assert_eq!(ns(top_cmd, "ipc"), ns(sharer_cmd, "ipc"));
    // The host's network is not the parent's (`--network none`), nor its
    // hostname: the child sees the parent's.
    assert_ne!(ns(top_cmd, "net"), ns(std::process::id() as i64, "net"));
    let hostname = env.ok(&[
        "run",
        "--parent",
        "top.mid",
        "--",
        "cat",
        "/proc/sys/kernel/hostname",
    ]);
    assert_eq!(hostname, "top-host");
    // Cgroups nested under the parent's: <root>/top/mesos/mid/mesos/low.
    let cgroup = std::fs::read_to_string(format!("/proc/{low_cmd}/cgroup")).unwrap();
    let nested_rel = format!("/{}/top/mesos/mid/mesos/low", env.cgroups_root);
    assert!(cgroup.contains(&nested_rel), "{cgroup}");
    // The sandbox is in the parent's, and the child starts there.
    let sandbox = env.sandbox("top").join("containers/mid/containers/low");
    assert!(sandbox.is_dir());
    assert_eq!(
        std::fs::read_link(format!("/proc/{low_cmd}/cwd")).unwrap(),
        sandbox
    );
    // Full IDs everywhere.
    let ps = env.ok(&["ps"]);
    for id in ["top.mid.low", "top.sharer"] {
        assert!(ps.contains(id), "{ps}");
    }
    env.ok(&["kill", "top.sharer"]);
    let ended = env.wait_json("top.sharer");
    assert_eq!(ended["status"], 15, "{ended}");

    // Destroying the top destroys every level first, depth-first.
    env.ok(&["destroy", "top"]);
    for id in ["top", "top.mid", "top.mid.low"] {
        assert_eq!(env.status_json(id)["state"], "TERMINATED", "{id}");
    }
    for pid in [top_cmd, mid_cmd, low_cmd] {
        assert!(eventually(PATIENCE, || !alive(pid)), "{pid} survived");
    }
    assert_nothing_left(&env);
}

#[test]
fn privileged_nested_exit_codes_logs_and_exec_use_full_ids() {
    if !require_root("privileged_nested_exit_codes_logs_and_exec_use_full_ids") {
        return;
    }
    let env = Env::new();
    env.detach("p", &["sleep", "1000"]);
    // Foreground: the child's exit code and output.
    let out = env.run(&[
        "run",
        "--parent",
        "p",
        "--id",
        "fg",
        "--",
        "sh",
        "-c",
        "echo out; exit 42",
    ]);
    assert_eq!(out.status.code(), Some(42));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(env.ok(&["logs", "p.fg"]), "out");
    assert_eq!(env.wait_json("p.fg")["status"], 42 << 8);
    // exec into a nested container joins its namespaces.
    env.detach_nested("p", "bg", &[], &["sleep", "1000"]);
    let bg = command_pid(pid_of(&env, "p.bg"));
    let inside = env.ok(&["exec", "p.bg", "--", "readlink", "/proc/self/ns/mnt"]);
    assert_eq!(inside, ns(bg, "mnt"));
    let stats = env.ok(&["stats", "p.bg"]);
    assert!(stats.contains("p.bg"), "{stats}");
    // A nested container can be removed once ended, its parent running.
    env.ok(&["destroy", "p.bg"]);
    assert!(alive(pid_of(&env, "p")));
    env.ok(&["state", "--rm"]);
    assert!(!env.sandbox("p").join("containers/bg").exists());
    assert!(!env.container_dir("p").join("containers/bg").exists());
    env.ok(&["destroy", "p"]);
    assert_nothing_left(&env);
}

#[test]
fn privileged_nested_share_cgroups_accounts_to_the_parent() {
    if !require_root("privileged_nested_share_cgroups_accounts_to_the_parent") {
        return;
    }
    let env = Env::new();
    env.detach_with("p", &["--cpus", "0.5", "--mem", "64"], &["sleep", "1000"]);
    env.detach_nested("p", "own", &[], &["sleep", "1000"]);
    env.detach_nested("p", "shared", &["--share-cgroups"], &["sleep", "1000"]);
    let own = command_pid(pid_of(&env, "p.own"));
    let shared = command_pid(pid_of(&env, "p.shared"));
    let cgroups = |pid: i64| std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let memory_line = |pid: i64| {
        cgroups(pid)
            .lines()
            .find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|c| c == "memory"))
            })
            .map(str::to_owned)
    };
    let root = &env.cgroups_root;
    if let (Some(own_mem), Some(shared_mem)) = (memory_line(own), memory_line(shared)) {
        assert!(
            own_mem.ends_with(&format!("/{root}/p/mesos/own")),
            "{own_mem}"
        );
        assert!(shared_mem.ends_with(&format!("/{root}/p")), "{shared_mem}");
    } else {
        // A cgroup2-only host: the kill cgroup (nested in the parent's)
        // is where both live.
        assert!(cgroups(shared).contains(&format!("/{root}/p/mesos/shared")));
    }
    env.ok(&["destroy", "p"]);
    assert_nothing_left(&env);
}

#[test]
fn privileged_nested_sandbox_is_not_created_through_the_parents_symlink() {
    if !require_root("privileged_nested_sandbox_is_not_created_through_the_parents_symlink") {
        return;
    }
    let env = Env::new();
    let outside = tempfile::tempdir().unwrap();
    // The parent's command controls its sandbox: it plants a symlink
    // where the child's sandbox will be, and one for `containers` of a
    // second parent.
    env.detach(
        "evil",
        &[
            "sh",
            "-c",
            &format!(
                "mkdir containers && ln -s {} containers/kid && touch ready && sleep 1000",
                outside.path().display()
            ),
        ],
    );
    env.detach(
        "evil2",
        &[
            "sh",
            "-c",
            &format!(
                "ln -s {} containers && touch ready && sleep 1000",
                outside.path().display()
            ),
        ],
    );
    for parent in ["evil", "evil2"] {
        let ready = env.sandbox(parent).join("ready");
        assert!(
            eventually(PATIENCE, || ready.exists()),
            "{parent} never got ready"
        );
        let out = env.run(&["run", "--parent", parent, "--id", "kid", "--", "true"]);
        assert_ne!(
            out.status.code(),
            Some(0),
            "{parent}: launched through a symlink"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("sandbox") || stderr.contains("symbolic link"),
            "{stderr}"
        );
        // Nothing was written where the symlink leads, and nothing of the
        // child is left but what the launch recorded.
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        assert!(
            !env.container_dir(parent).join("containers/kid").exists()
                || env.status_json(&format!("{parent}.kid"))["state"] == "TERMINATED"
        );
    }
    // The parents are untouched.
    assert!(alive(pid_of(&env, "evil")) && alive(pid_of(&env, "evil2")));
    env.ok(&["destroy", "evil"]);
    env.ok(&["destroy", "evil2"]);
    assert_nothing_left(&env);
}

#[test]
fn privileged_nested_bad_input_changes_nothing() {
    if !require_root("privileged_nested_bad_input_changes_nothing") {
        return;
    }
    let env = Env::new();
    env.detach("p", &["sleep", "1000"]);
    let before = (
        walk_dirs(env.runtime.path()),
        walk_dirs(env.work.path()),
        walk_dirs(&Path::new("/sys/fs/cgroup/unified").join(&env.cgroups_root)),
    );
    let one_line = |args: &[&str], code: i32, says: &str| {
        let out = env.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    };
    one_line(
        &["run", "--parent", "nope", "--", "true"],
        1,
        "parent container 'nope' does not exist",
    );
    one_line(&["run", "--parent", "p.nope", "--", "true"], 1, "'p.nope'");
    one_line(
        &["run", "--parent", "p", "--id", "a.b", "--", "true"],
        2,
        "'a.b'",
    );
    one_line(
        &["run", "--parent", "p", "--id", "a b", "--", "true"],
        2,
        "'a b'",
    );
    one_line(&["run", "--parent", "p..x", "--", "true"], 2, "'p..x'");
    one_line(
        &["run", "--parent", "p", "--hostname", "h", "--", "true"],
        2,
        "hostname",
    );
    one_line(&["run", "--id", "p.x", "--", "true"], 2, "'p.x'");
    let long = format!("p.{}", "x".repeat(243));
    one_line(&["status", &long], 2, "longer than 242");
    one_line(&["status", "p.none"], 1, "p.none");
    let clap = env.run(&["run", "--share-pid", "--", "true"]);
    assert_eq!(clap.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&clap.stderr).contains("--parent"));
    let after = (
        walk_dirs(env.runtime.path()),
        walk_dirs(env.work.path()),
        walk_dirs(&Path::new("/sys/fs/cgroup/unified").join(&env.cgroups_root)),
    );
    assert_eq!(before, after);
    // A parent that ended: one line, exit 255 (never started), the
    // parent's record unchanged.
    env.ok(&["run", "--id", "done", "--", "true"]);
    let out = env.run(&["run", "--parent", "done", "--", "true"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'done' is not running"));
    assert!(!env.container_dir("done").join("containers").exists());
    env.ok(&["destroy", "p"]);
    assert_nothing_left(&env);
}

#[test]
fn privileged_nested_launch_killed_midway_is_recovered_to_nothing() {
    if !require_root("privileged_nested_launch_killed_midway_is_recovered_to_nothing") {
        return;
    }
    let env = Env::new();
    env.detach("p", &["sleep", "1000"]);
    let parent = pid_of(&env, "p");
    for (i, point) in [
        "created",
        "PROVISIONING",
        "PREPARING",
        "forked",
        "ISOLATING",
        "FETCHING",
    ]
    .iter()
    .enumerate()
    {
        let id = format!("k{i}");
        kill_stopped_at(
            env.cmd().args([
                "run", "-d", "--parent", "p", "--id", &id, "--", "sleep", "1000",
            ]),
            point,
        );
        let report = env.ok(&["recover", "--json"]);
        assert!(
            report.contains(&format!("p.{id}")) || *point == "created",
            "{point}: {report}"
        );
        // The half-launched child is gone whole; the parent lives on.
        assert!(
            !env.container_dir("p").join("containers").join(&id).exists(),
            "{point}"
        );
        assert!(
            !env.sandbox("p").join("containers").join(&id).exists(),
            "{point}"
        );
        let kill_cgroup = Path::new("/sys/fs/cgroup/unified")
            .join(&env.cgroups_root)
            .join("p/mesos")
            .join(&id);
        assert!(!kill_cgroup.exists(), "{point}: {}", kill_cgroup.display());
        assert!(alive(parent), "{point}: the parent died");
        assert_eq!(inits_of(env.runtime.path()).len(), 1, "{point}");
    }
    // And a parent whose launcher is killed while a child runs: recover
    // after SIGKILL of the parent's init ends both.
    env.detach_nested("p", "c", &[], &["sleep", "1000"]);
    let child_cmd = command_pid(pid_of(&env, "p.c"));
    // SAFETY: kill(2) of a process this test's container started.
    unsafe { libc::kill(parent as i32, libc::SIGKILL) };
    assert!(eventually(PATIENCE, || !alive(parent)));
    env.ok(&["recover"]);
    assert!(eventually(PATIENCE, || !alive(child_cmd)));
    assert_eq!(env.status_json("p.c")["state"], "TERMINATED");
    assert_nothing_left(&env);
}

#[test]
fn privileged_nested_children_of_a_rootfs_parent_see_its_files_or_their_own() {
    if !require_root("privileged_nested_children_of_a_rootfs_parent_see_its_files_or_their_own") {
        return;
    }
    let env = Env::new();
    let images = tempfile::tempdir().unwrap();
    let parent_root = busybox_rootfs(&images.path().join("parent"));
    let child_root = busybox_rootfs(&images.path().join("child"));
    std::fs::write(parent_root.join("marker"), "parent's\n").unwrap();
    std::fs::write(child_root.join("marker"), "child's\n").unwrap();
    let rootfs = parent_root.display().to_string();
    env.detach_with(
        "p",
        &["--rootfs", &rootfs, "--network", "none"],
        &["sleep", "1000"],
    );
    let parent_cmd = command_pid(pid_of(&env, "p"));
    // Without a root filesystem of its own: the parent's files, its own
    // mount and pid namespaces, the sandbox where the parent sees it.
    let out = env.ok(&[
        "run",
        "--parent",
        "p",
        "--id",
        "plain",
        "--",
        "sh",
        "-c",
        "cat /marker; pwd; echo $MESOS_SANDBOX; readlink /proc/self/ns/net; echo 1 > file",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "parent's", "{out}");
    assert_eq!(lines[1], "/mnt/mesos/sandbox/containers/plain", "{out}");
    assert_eq!(lines[2], "/mnt/mesos/sandbox/containers/plain", "{out}");
    assert_eq!(lines[3], ns(parent_cmd, "net"), "{out}");
    assert!(env.sandbox("p").join("containers/plain/file").is_file());
    // With its own: its files, joined to the parent's network only.
    let child = child_root.display().to_string();
    let out = env.ok(&[
        "run",
        "--parent",
        "p",
        "--id",
        "own",
        "--rootfs",
        &child,
        "--",
        "sh",
        "-c",
        "cat /marker; pwd; readlink /proc/self/ns/net",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "child's", "{out}");
    assert_eq!(lines[1], "/mnt/mesos/sandbox", "{out}");
    assert_eq!(lines[2], ns(parent_cmd, "net"), "{out}");
    // The parent's mount table did not gain the children's mounts.
    let mounts = std::fs::read_to_string(format!("/proc/{parent_cmd}/mountinfo")).unwrap();
    assert!(!mounts.contains("containers/own"), "{mounts}");
    env.ok(&["destroy", "p"]);
    assert_nothing_left(&env);
}

#[test]
fn privileged_nested_under_a_docker_container_is_refused() {
    if !require_root("privileged_nested_under_a_docker_container_is_refused") {
        return;
    }
    if !Path::new("/var/run/docker.sock").exists() {
        println!("skipping: no Docker engine socket");
        return;
    }
    let env = Env::new();
    let id = format!("dk{}", &env.cgroups_root[12..20]);
    env.detach_with(
        &id,
        &["--docker-image", "busybox:local"],
        &["sleep", "1000"],
    );
    let before = walk_dirs(env.runtime.path());
    let out = env.run(&["run", "--parent", &id, "--", "true"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("'{id}' is a Docker container")),
        "{stderr}"
    );
    assert_eq!(before, walk_dirs(env.runtime.path()));
    env.ok(&["destroy", &id]);
}

#[test]
fn privileged_recover_destroys_nested_cgroups_without_a_record() {
    if !require_root("privileged_recover_destroys_nested_cgroups_without_a_record") {
        return;
    }
    let env = Env::new();
    env.detach("p", &["sleep", "1000"]);
    env.detach_nested("p", "known", &[], &["sleep", "1000"]);
    let known = command_pid(pid_of(&env, "p.known"));
    // A nested cgroup of ours whose record is gone (Mesos's nested
    // launcher orphan), with a process in it.
    let kill_root = Path::new("/sys/fs/cgroup/unified").join(&env.cgroups_root);
    let ghost = kill_root.join("p/mesos/ghost");
    if !kill_root.join("p").exists() {
        println!("skipping: no cgroup2 kill hierarchy on this host");
        return;
    }
    std::fs::create_dir(&ghost).unwrap();
    let path = std::ffi::CString::new(ghost.as_os_str().as_encoded_bytes()).unwrap();
    let name = std::ffi::CString::new(phobos_cgroups::CONTAINER_MARK).unwrap();
    // SAFETY: NUL-terminated strings and a byte slice that outlive the call.
    let rc =
        unsafe { libc::setxattr(path.as_ptr(), name.as_ptr(), b"ghost".as_ptr().cast(), 5, 0) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    let mut sleeper = std::process::Command::new("sleep")
        .arg("1000")
        .spawn()
        .unwrap();
    std::fs::write(ghost.join("cgroup.procs"), sleeper.id().to_string()).unwrap();
    let report = env.ok(&["recover", "--json"]);
    assert!(report.contains("p.ghost"), "{report}");
    assert!(sleeper.wait().unwrap().signal() == Some(libc::SIGKILL));
    assert!(!ghost.exists());
    // The known child and its parent are untouched.
    assert!(alive(known) && alive(pid_of(&env, "p")));
    env.ok(&["destroy", "p"]);
    assert_nothing_left(&env);
}

#[test]
fn privileged_nested_debug_container_shares_everything_and_dies_on_recover() {
    if !require_root("privileged_nested_debug_container_shares_everything_and_dies_on_recover") {
        return;
    }
    let env = Env::new();
    let images = tempfile::tempdir().unwrap();
    let root = busybox_rootfs(images.path());
    std::fs::write(root.join("marker"), "parent's\n").unwrap();
    let rootfs = root.display().to_string();
    env.detach_with(
        "p",
        &["--rootfs", &rootfs, "-e", "FROM_PARENT=yes", "-w", "/tmp"],
        &["sleep", "1000"],
    );
    let parent_cmd = command_pid(pid_of(&env, "p"));
    env.detach_nested("p", "dbg", &["--debug", "-e", "OWN=1"], &["sleep", "1000"]);
    let dbg_cmd = command_pid(pid_of(&env, "p.dbg"));
    for n in ["mnt", "pid", "ipc", "net", "uts"] {
        assert_eq!(ns(parent_cmd, n), ns(dbg_cmd, n), "{n}");
    }
    let environ = std::fs::read(format!("/proc/{dbg_cmd}/environ")).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    assert!(
        environ.contains("FROM_PARENT=yes") && environ.contains("OWN=1"),
        "{environ}"
    );
    // (Shown as the process sees it, inside the parent's root.)
    assert_eq!(
        std::fs::read_link(format!("/proc/{dbg_cmd}/cwd")).unwrap(),
        Path::new("/tmp")
    );
    // `exec` into it lands in the namespaces it shares, the pid one too.
    for n in ["pid", "mnt", "net"] {
        let inside = env.ok(&[
            "exec",
            "p.dbg",
            "--",
            "readlink",
            &format!("/proc/self/ns/{n}"),
        ]);
        assert_eq!(inside, ns(parent_cmd, n), "{n}");
    }
    // No resources of its own: refused, nothing changed.
    let out = env.run(&[
        "run", "--parent", "p", "--debug", "--mem", "64", "--", "true",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("resources"));
    // Recovery destroys it and keeps its parent.
    let report = env.ok(&["recover", "--json"]);
    assert!(report.contains("p.dbg"), "{report}");
    assert!(eventually(PATIENCE, || !alive(dbg_cmd)));
    assert!(alive(parent_cmd));
    assert_eq!(env.status_json("p.dbg")["state"], "TERMINATED");
    env.ok(&["destroy", "p"]);
    assert_nothing_left(&env);
}
