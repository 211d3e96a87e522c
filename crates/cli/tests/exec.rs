//! `phobos exec`: a command inside a running container, for real (root):
//! the container's namespaces, cgroups, environment and user, its exit code
//! passed through, and the command ended with the container.

mod common;

use std::process::Stdio;

use common::{Env, PATIENCE, busybox_rootfs, eventually, require_root, stderr};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn privileged_exec_runs_inside_the_container() {
    if !require_root("privileged_exec_runs_inside_the_container") {
        return;
    }
    let env = Env::new();
    env.ok(&[
        "run",
        "-d",
        "--id",
        "box",
        "--hostname",
        "boxhost",
        "-e",
        "FOO=bar",
        "--",
        "sleep",
        "1000",
    ]);
    let init_pid = env.status_json("box")["pid"].as_i64().unwrap();
    let out = env.run(&[
        "exec",
        "box",
        "--",
        "sh",
        "-c",
        "echo host=$(hostname) foo=$FOO pwd=$(pwd); \
         tr '\\0' ' ' </proc/1/cmdline; echo; cat /proc/self/cgroup; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let text = stdout(&out);
    let sandbox = env.sandbox("box");
    assert!(
        text.contains(&format!("host=boxhost foo=bar pwd={}", sandbox.display())),
        "{text}"
    );
    // The container's pid namespace: its pid 1 is the container's init.
    let pid1 = text.lines().nth(1).unwrap_or_default();
    assert!(pid1.contains("phobos") && pid1.contains("init"), "{text}");
    // The same cgroups as the container's init, in every hierarchy.
    let init_cgroups = std::fs::read_to_string(format!("/proc/{init_pid}/cgroup")).unwrap();
    let exec_cgroups: Vec<&str> = text.lines().skip(2).collect();
    assert_eq!(exec_cgroups, init_cgroups.lines().collect::<Vec<_>>());

    // Options override the container's environment, directory and user.
    let out = env.run(&[
        "exec",
        "-e",
        "FOO=baz",
        "-w",
        "/tmp",
        "-u",
        "nobody",
        "box",
        "--",
        "sh",
        "-c",
        "echo $FOO $(pwd) $(id -u)",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "baz /tmp 65534");

    let out = env.run(&["exec", "box", "--", "no-such-program-phobos"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(
        stderr(&out).contains("no-such-program-phobos"),
        "{}",
        stderr(&out)
    );
    // The container is untouched by all this.
    assert_eq!(env.status_json("box")["state"], "RUNNING");
}

#[test]
fn privileged_exec_ends_with_the_container() {
    if !require_root("privileged_exec_ends_with_the_container") {
        return;
    }
    let env = Env::new();
    env.detach("host", &["sleep", "1000"]);
    let mut exec = env
        .cmd()
        .args(["exec", "host", "--", "sleep", "1000"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the exec'd sleep runs beside the container's.
    let kill_cgroup = env
        .cgroup_dirs("host")
        .into_iter()
        .next()
        .expect("the container's kill cgroup");
    assert!(eventually(PATIENCE, || {
        std::fs::read_to_string(kill_cgroup.join("cgroup.procs"))
            .is_ok_and(|procs| procs.lines().count() >= 4)
    }));
    env.ok(&["destroy", "host"]);
    let status = exec.wait().unwrap();
    assert_eq!(status.code(), Some(128 + libc::SIGKILL));
    assert!(env.cgroup_dirs("host").is_empty(), "cgroups left behind");
}

#[test]
fn privileged_exec_reports_what_it_cannot_do() {
    if !require_root("privileged_exec_reports_what_it_cannot_do") {
        return;
    }
    let env = Env::new();
    let out = env.run(&["exec", "nobody-here", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unknown container 'nobody-here'"));

    env.detach("done", &["true"]);
    env.wait_json("done");
    let out = env.run(&["exec", "done", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not running"), "{}", stderr(&out));

    for bad in [&["exec", "done"][..], &["exec", "a/b", "--", "true"]] {
        let out = env.run(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", stderr(&out));
        assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    }
}

/// RUNNING means ready: `run -d` returns only once init has entered the
/// container's root filesystem, so a container is never joined (by
/// `exec`, or a nested container) while init still sees the host's root.
#[test]
fn privileged_a_rootfs_container_is_in_its_root_when_run_returns() {
    if !require_root("privileged_a_rootfs_container_is_in_its_root_when_run_returns") {
        return;
    }
    let env = Env::new();
    let images = tempfile::tempdir().unwrap();
    let root = busybox_rootfs(images.path());
    std::fs::write(root.join("marker"), "the container's\n").unwrap();
    let rootfs = root.display().to_string();
    for round in 0..5 {
        let id = format!("r{round}");
        env.ok(&[
            "run", "-d", "--id", &id, "--rootfs", &rootfs, "--", "sleep", "1000",
        ]);
        // Straight away, with no wait of any kind: init's root is the
        // container's (its marker), no longer the host's `/`.
        let pid_file = env.runtime.path().join("containers").join(&id).join("pid");
        let init_pid = std::fs::read_to_string(pid_file).unwrap();
        let init_pid = init_pid.trim();
        let marker = std::fs::read_to_string(format!("/proc/{init_pid}/root/marker"));
        assert_eq!(
            marker.ok().as_deref(),
            Some("the container's\n"),
            "round {round}"
        );
        let out = env.run(&["exec", &id, "--", "cat", "/marker"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(stdout(&out), "the container's\n", "round {round}");
        env.ok(&["destroy", &id]);
    }
}
