//! `phobos run`'s init spawner (`phobos_mesos::launcher::spawner`): a
//! plain launch's init is cloned by the `phobos init` started with the
//! run, into fresh namespaces and the container's cgroup, as the
//! launcher's child; an unused spawner is ended and reaped by the run.
//! Crashes at every launch state, with a spawner waiting or used, are
//! spine/crash.rs's (`inits_of` counts spawners). Part of the spine
//! binary (spine.rs).

use super::common::*;

fn ns(pid: u32, name: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{name}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| panic!("/proc/{pid}/ns/{name}: {e}"))
}

#[test]
fn privileged_run_has_its_init_cloned_by_the_spawner() {
    if !require_root("privileged_run_has_its_init_cloned_by_the_spawner") {
        return;
    }
    let env = Env::new();
    env.ok(&["run", "-d", "--id", "spawned", "--", "sleep", "1000"]);
    let status = env.status_json("spawned");
    assert_eq!(status["state"], "RUNNING");
    let pid = status["pid"].as_i64().unwrap() as u32;
    // The run's spawner is gone; only the init it cloned has its
    // environment (a cloned init starts as a copy of it).
    assert_eq!(spawners_of(env.runtime.path()), vec![pid]);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        String::from_utf8_lossy(&cmdline).contains("init"),
        "{cmdline:?}"
    );
    let me = std::process::id();
    for name in ["mnt", "pid", "ipc", "uts"] {
        assert_ne!(ns(pid, name), ns(me, name), "{name} is the host's");
    }
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        cgroup
            .lines()
            .any(|l| l.ends_with(&env.cgroup_rel("spawned"))
                || l.ends_with(&format!("{}/leaf", env.cgroup_rel("spawned")))),
        "not in its kill cgroup: {cgroup}"
    );
    // Pid 1 of its namespace, running the command as pid 2.
    let out = env.ok(&[
        "exec",
        "spawned",
        "--",
        "sh",
        "-c",
        "cat /proc/1/cmdline; echo; pgrep -x sleep",
    ]);
    assert!(out.contains("init"), "{out}");
    assert_eq!(out.lines().last(), Some("2"), "{out}");
    let destroyed: serde_json::Value =
        serde_json::from_str(&env.ok(&["destroy", "--json", "spawned"])).unwrap();
    assert_eq!(destroyed["signal"], libc::SIGKILL);
    assert!(
        eventually(PATIENCE, || spawners_of(env.runtime.path()).is_empty()),
        "init left: {:?}",
        spawners_of(env.runtime.path())
    );
    assert!(env.cgroup_dirs("spawned").is_empty(), "cgroup left behind");
}

#[test]
fn privileged_foreground_run_through_the_spawner_keeps_exit_and_output() {
    if !require_root("privileged_foreground_run_through_the_spawner_keeps_exit_and_output") {
        return;
    }
    let env = Env::new();
    let script = "echo out; echo err >&2; echo $$; exit 3";
    let out = env.run(&["run", "--id", "fg", "--", "sh", "-c", script]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n2\n");
    assert_eq!(stderr(&out), "err\n");
    assert_eq!(env.wait_json("fg")["exit_code"], 3);
    // Nothing of the run is left: no init, no spawner, not even a zombie
    // (it was the run's child, reaped by it).
    assert!(spawners_of(env.runtime.path()).is_empty());
    assert!(env.cgroup_dirs("fg").is_empty(), "cgroup left behind");
}

#[test]
fn privileged_unused_spawner_is_ended_by_the_run() {
    if !require_root("privileged_unused_spawner_is_ended_by_the_run") {
        return;
    }
    let env = Env::new();
    // The posix launcher clones no namespaces: the spawner started with
    // the run is not used, and ended when the run ends.
    let out = env.run(&["run", "--launcher", "posix", "--", "sh", "-c", "exit 4"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        spawners_of(env.runtime.path()).is_empty(),
        "spawner left: {:?}",
        spawners_of(env.runtime.path())
    );
}
