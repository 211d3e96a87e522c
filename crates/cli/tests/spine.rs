//! The spine, end to end through the real `phobos` binary: the Mesos
//! acceptance cases of §9.1 that fit (exit codes, wait/destroy of unknown
//! containers, destroy → SIGKILL, kill forwarding, sandbox output, status
//! surviving the launcher), the namespace cases of §9.2/§9.4, recovery of
//! orphans, crash safety at every launch state, and bad input.

mod common;
#[path = "spine/crash.rs"]
mod crash;
#[path = "spine/spawner.rs"]
mod spawner;

use std::os::unix::process::CommandExt;
use std::process::Stdio;

use common::*;

#[test]
fn privileged_run_exits_with_the_commands_code_and_shows_output() {
    if !require_root("privileged_run_exits_with_the_commands_code_and_shows_output") {
        return;
    }
    let env = Env::new();
    let out = env.run(&[
        "run",
        "--id",
        "seven",
        "--",
        "sh",
        "-c",
        "echo hi; echo oops >&2; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    // §9.1 IoRedirection: the output also lands in the sandbox.
    let sandbox = env.sandbox("seven");
    assert_eq!(
        std::fs::read_to_string(sandbox.join("stdout")).unwrap(),
        "hi\n"
    );
    assert_eq!(
        std::fs::read_to_string(sandbox.join("stderr")).unwrap(),
        "oops\n"
    );
    let t = env.wait_json("seven");
    assert_eq!(t["status"], 7 << 8);
    assert_eq!(t["exit_code"], 7);
    assert_eq!(t["state"], "TASK_FAILED");
    assert!(t.get("signal").is_none(), "absent fields are omitted: {t}");
    assert!(env.cgroup_dirs("seven").is_empty(), "cgroup left behind");
}

#[test]
fn privileged_death_by_signal_exits_128_plus_n() {
    if !require_root("privileged_death_by_signal_exits_128_plus_n") {
        return;
    }
    let env = Env::new();
    let out = env.run(&["run", "--", "sh", "-c", "kill -USR1 $$"]);
    assert_eq!(out.status.code(), Some(128 + libc::SIGUSR1));
    let ok = env.run(&["run", "--", "true"]);
    assert_eq!(ok.status.code(), Some(0));
}

#[test]
fn privileged_detached_container_is_listed_waited_and_destroyed() {
    if !require_root("privileged_detached_container_is_listed_waited_and_destroyed") {
        return;
    }
    let env = Env::new();
    env.detach("sleeper", &["sleep", "1000"]);
    let status = env.status_json("sleeper");
    assert_eq!(status["state"], "RUNNING");
    assert_eq!(status["command"], "sleep 1000");
    let pid = status["pid"].as_i64().unwrap();
    assert!(alive(pid));
    let ps: Vec<serde_json::Value> = serde_json::from_str(&env.ok(&["ps", "--json"])).unwrap();
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0]["id"], "sleeper");
    let table = env.ok(&["ps"]);
    assert!(table.lines().nth(1).unwrap().contains("RUNNING"), "{table}");

    // Several waiters at once, in separate processes, all get the answer.
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            env.cmd()
                .args(["wait", "--json", "sleeper"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for w in &waiters {
        assert!(
            eventually(PATIENCE, || blocked_on_a_lock(w.id())),
            "a `wait` never blocked on the container's end"
        );
    }
    // §9.1 Destroy: a running container ends with SIGKILL.
    let destroyed: serde_json::Value =
        serde_json::from_str(&env.ok(&["destroy", "--json", "sleeper"])).unwrap();
    assert_eq!(destroyed["signal"], libc::SIGKILL);
    assert_eq!(destroyed["state"], "TASK_KILLED");
    for w in waiters {
        let out = w.wait_with_output().unwrap();
        assert!(out.status.success());
        let t: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(t["signal"], libc::SIGKILL, "{t}");
    }
    // The kernel reports the cgroup empty from the dying task's exit
    // (cgroup_exit), a moment before it turns into a zombie.
    assert!(
        eventually(PATIENCE, || !alive(pid)),
        "init survived destroy"
    );
    assert!(env.cgroup_dirs("sleeper").is_empty(), "cgroup left behind");
    // Destroy is idempotent.
    let again: serde_json::Value =
        serde_json::from_str(&env.ok(&["destroy", "--json", "sleeper"])).unwrap();
    assert_eq!(again, destroyed);
}

#[test]
fn privileged_kill_forwards_the_signal_to_the_command() {
    if !require_root("privileged_kill_forwards_the_signal_to_the_command") {
        return;
    }
    let env = Env::new();
    // The command traps TERM: only a forwarded signal makes it exit 42.
    env.detach(
        "trap",
        &[
            "sh",
            "-c",
            "trap 'exit 42' TERM; echo ready; while :; do sleep 0.05; done",
        ],
    );
    let stdout = env.sandbox("trap").join("stdout");
    assert!(eventually(PATIENCE, || {
        std::fs::read_to_string(&stdout).is_ok_and(|s| s.contains("ready"))
    }));
    env.ok(&["kill", "trap"]);
    assert_eq!(env.wait_json("trap")["exit_code"], 42);

    env.detach("plain", &["sleep", "1000"]);
    env.ok(&["kill", "-s", "TERM", "plain"]);
    let t = env.wait_json("plain");
    assert_eq!(t["signal"], libc::SIGTERM);
    // Killing a terminated container is an error, not a silent success.
    let out = env.run(&["kill", "plain"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not running"));
}

#[test]
fn privileged_kill_sends_sigstop_and_sigkill_to_the_command_not_its_init() {
    if !require_root("privileged_kill_sends_sigstop_and_sigkill_to_the_command_not_its_init") {
        return;
    }
    let env = Env::new();
    env.detach("held", &["sleep", "1000"]);
    let init = env.status_json("held")["pid"].as_i64().unwrap();
    let command = command_pid(init).to_string();
    let state = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().next().map(str::to_owned))
            })
            .unwrap_or_default()
    };
    // SIGSTOP stops the command; init, which could not forward it had it
    // been stopped itself, goes on supervising.
    env.ok(&["kill", "-s", "STOP", "held"]);
    assert!(
        eventually(PATIENCE, || state(&command) == "T"),
        "{}",
        state(&command)
    );
    assert_ne!(state(&init.to_string()), "T");
    env.ok(&["kill", "-s", "CONT", "held"]);
    assert!(eventually(PATIENCE, || state(&command) == "S"));
    // SIGKILL kills the command, and init records its end as any other.
    env.ok(&["kill", "-s", "KILL", "held"]);
    let t = env.wait_json("held");
    assert_eq!(t["signal"], libc::SIGKILL, "{t}");
    let message = t["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("Command "), "{t}");
}

#[test]
fn privileged_runtime_dir_under_dev_shm_survives_the_private_dev_shm() {
    if !require_root("privileged_runtime_dir_under_dev_shm_survives_the_private_dev_shm") {
        return;
    }
    if !std::path::Path::new("/dev/shm").is_dir() {
        println!("skipping: this host has no /dev/shm");
        return;
    }
    // The ipc namespace gets a private /dev/shm mounted over the host's,
    // which hides this runtime directory inside the container; init must
    // still record the command's status there.
    let env = Env::with_runtime_dir(tempfile::tempdir_in("/dev/shm").unwrap());
    let out = env.run(&["run", "--id", "shm", "--", "sh", "-c", "exit 3"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = env.wait_json("shm");
    assert_eq!(t["exit_code"], 3, "{t}");
    assert_eq!(t["state"], "TASK_FAILED", "{t}");
}

#[test]
fn privileged_unknown_containers_are_reported() {
    if !require_root("privileged_unknown_containers_are_reported") {
        return;
    }
    let env = Env::new();
    for cmd in ["wait", "destroy", "kill", "status", "logs"] {
        let out = env.run(&[cmd, "nope"]);
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "phobos: unknown container 'nope'\n",
            "{cmd}"
        );
    }
}

#[test]
fn privileged_exit_status_survives_the_launchers_death() {
    if !require_root("privileged_exit_status_survives_the_launchers_death") {
        return;
    }
    let env = Env::new();
    let mut launcher = env
        .cmd()
        .args([
            "run",
            "--id",
            "orphaned",
            "--",
            "sh",
            "-c",
            // Ends once the launcher is dead (a fixed sleep raced the
            // status polls on a loaded machine).
            "while [ ! -e \"$MESOS_SANDBOX/go\" ]; do sleep 0.05; done; exit 5",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    assert!(eventually(PATIENCE, || {
        env.run(&["status", "--json", "orphaned"]).status.success()
            && env.status_json("orphaned")["state"] == "RUNNING"
    }));
    launcher.kill().unwrap();
    launcher.wait().unwrap();
    std::fs::write(env.sandbox("orphaned").join("go"), "").unwrap();
    let t = env.wait_json("orphaned");
    assert_eq!(t["exit_code"], 5, "{t}");
    assert!(env.cgroup_dirs("orphaned").is_empty());
}

#[test]
fn privileged_container_has_its_own_pid_ipc_uts_and_mount_namespaces() {
    if !require_root("privileged_container_has_its_own_pid_ipc_uts_and_mount_namespaces") {
        return;
    }
    let env = Env::new();
    let script = "readlink /proc/self/ns/pid /proc/self/ns/ipc /proc/self/ns/uts /proc/self/ns/mnt; \
                  tr '\\0' ' ' < /proc/1/cmdline; echo; echo $$; ls /proc | grep -c '^[0-9]'; hostname; \
                  cat /proc/self/cgroup";
    let out = env.ok(&[
        "run",
        "--id",
        "ns",
        "--hostname",
        "inside",
        "--",
        "sh",
        "-c",
        script,
    ]);
    let lines: Vec<&str> = out.lines().collect();
    for (i, ns) in ["pid", "ipc", "uts", "mnt"].iter().enumerate() {
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        assert_ne!(
            lines[i],
            host.to_string_lossy(),
            "{ns} namespace is the host's"
        );
    }
    // §9.4 PidNamespace: pid 1 is the phobos init helper, the command is 2,
    // and the fresh /proc shows only the container's processes.
    assert!(
        lines[4].contains("phobos") && lines[4].contains("init"),
        "{}",
        lines[4]
    );
    assert_eq!(lines[5], "2");
    let procs: usize = lines[6].parse().unwrap();
    assert!(procs <= 4, "/proc shows {procs} processes");
    assert_eq!(lines[7], "inside");
    assert_ne!(nix_hostname(), "inside");
    assert!(
        lines[8..]
            .iter()
            // On cgroup2 its processes are in the kill cgroup's leaf.
            .any(|l| l.ends_with(&env.cgroup_rel("ns"))
                || l.ends_with(&format!("{}/leaf", env.cgroup_rel("ns")))),
        "not in its kill cgroup: {:?}",
        &lines[8..]
    );
}

fn nix_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn privileged_env_workdir_and_user() {
    if !require_root("privileged_env_workdir_and_user") {
        return;
    }
    let env = Env::new();
    let out = env.ok(&[
        "run",
        "--id",
        "who",
        "-e",
        "GREETING=hello",
        "-e",
        "GREETING=hi",
        "--workdir",
        "/tmp",
        "--user",
        "nobody",
        "--",
        "sh",
        "-c",
        "echo $GREETING; pwd; id -u; id -g; echo $MESOS_SANDBOX; echo $PATH",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "hi", "later --env wins");
    assert_eq!(lines[1], "/tmp");
    assert_eq!(lines[2], "65534");
    assert_eq!(lines[4], env.sandbox("who").to_string_lossy());
    assert!(lines[5].contains("/usr/bin"));
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(env.sandbox("who").join("stdout")).unwrap();
    assert_eq!(meta.uid(), 65534, "sandbox not owned by the task user");
    // Without --workdir the command starts in its sandbox.
    let pwd = env.ok(&["run", "--id", "wd", "--", "pwd"]);
    assert_eq!(pwd, env.sandbox("wd").to_string_lossy());
}

#[test]
fn privileged_missing_command_exits_127_with_a_message() {
    if !require_root("privileged_missing_command_exits_127_with_a_message") {
        return;
    }
    let env = Env::new();
    let out = env.run(&["run", "--", "no-such-command-phobos"]);
    assert_eq!(out.status.code(), Some(127));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-command-phobos"), "{err}");
}

#[test]
fn privileged_logs_prints_and_follows_the_sandbox() {
    if !require_root("privileged_logs_prints_and_follows_the_sandbox") {
        return;
    }
    let env = Env::new();
    env.detach(
        "talker",
        &["sh", "-c", "echo one; sleep 0.3; echo two; echo err >&2"],
    );
    let out = env.cmd().args(["logs", "-f", "talker"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\ntwo\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    let out = env.run(&["logs", "talker"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\ntwo\n");
}

#[test]
fn privileged_recover_destroys_orphan_cgroups_and_keeps_live_containers() {
    if !require_root("privileged_recover_destroys_orphan_cgroups_and_keeps_live_containers") {
        return;
    }
    let env = Env::new();
    env.detach("keeper", &["sleep", "1000"]);
    // An orphan: a container's cgroups, with its processes, and no runtime
    // directory (as if the runtime dir had been wiped). A cgroup Phobos did
    // not create is not an orphan (see tests/recover.rs).
    env.detach("orphan", &["sleep", "1000"]);
    let victim = env.status_json("orphan")["pid"].as_i64().unwrap();
    let orphan_cgs = env.cgroup_dirs("orphan");
    assert!(!orphan_cgs.is_empty());
    std::fs::remove_dir_all(env.container_dir("orphan")).unwrap();

    let report = env.ok(&["recover"]);
    assert!(report.contains("recovered keeper"), "{report}");
    assert!(report.contains("destroyed orphan cgroup"), "{report}");
    assert!(
        eventually(PATIENCE, || !alive(victim)),
        "the orphan's init survived"
    );
    for cg in orphan_cgs {
        assert!(!cg.exists(), "{} left", cg.display());
    }
    assert_eq!(env.status_json("keeper")["state"], "RUNNING");
}

#[test]
fn privileged_destroy_while_launching_stops_the_launch() {
    if !require_root("privileged_destroy_while_launching_stops_the_launch") {
        return;
    }
    let env = Env::new();
    let launcher = spawn_stopped_at(
        env.cmd()
            .args(["run", "--id", "early", "--", "sleep", "1000"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
        "PREPARING",
    );
    let pid = launcher.id();
    // The destroy blocks on the launch's lock; the launch resumes, sees the
    // request at its next transition and tears itself down.
    let destroyer = env
        .cmd()
        .args(["destroy", "--json", "early"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(eventually(PATIENCE, || env
        .container_dir("early")
        .join("destroying")
        .exists()));
    // SAFETY: kill(2) with a pid and SIGCONT.
    unsafe { libc::kill(pid as i32, libc::SIGCONT) };
    let out = destroyer.wait_with_output().unwrap();
    assert!(out.status.success());
    let t: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(t["state"], "TASK_KILLED", "{t}");
    assert!(t.get("status").is_none(), "never forked, so no status: {t}");
    let launch = launcher.wait_with_output().unwrap();
    // It never started: 255, as the README says (and `wait` agrees).
    assert_eq!(launch.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&launch.stderr).contains("destroyed while PREPARING"));
    assert!(env.cgroup_dirs("early").is_empty());
    assert!(inits_of(env.runtime.path()).is_empty());
}

#[test]
fn privileged_state_rm_removes_terminated_containers_only() {
    if !require_root("privileged_state_rm_removes_terminated_containers_only") {
        return;
    }
    let env = Env::new();
    env.ok(&["run", "--id", "done", "--", "true"]);
    env.detach("live", &["sleep", "1000"]);
    let out = env.ok(&["state", "--rm"]);
    assert_eq!(out, "removed done");
    assert!(!env.container_dir("done").exists());
    assert!(!env.sandbox("done").exists());
    assert!(env.container_dir("live").exists());
}

#[test]
fn privileged_bad_input_exits_2_and_changes_nothing() {
    if !require_root("privileged_bad_input_exits_2_and_changes_nothing") {
        return;
    }
    let env = Env::new();
    env.detach("taken", &["sleep", "1000"]);
    // `run -d` returns once init is released; init then reserves its status
    // slot before starting the command, so the baseline is taken only once
    // the command runs (on a slow guest that can be noticeably later).
    command_pid(env.status_json("taken")["pid"].as_i64().unwrap());
    let snapshot = || {
        let mut names: Vec<_> = walk(env.runtime.path());
        names.extend(walk(env.work.path()));
        names.sort();
        names
    };
    let before = snapshot();
    let long = "x".repeat(300);
    let long_host = "h".repeat(65);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["run", "--id", "a/b", "--", "true"], "'a/b'"),
        (vec!["run", "--id", "..", "--", "true"], "'..'"),
        (vec!["run", "--id", "a.b", "--", "true"], "'a.b'"),
        (vec!["run", "--id", &long, "--", "true"], "300 bytes"),
        (vec!["run", "--id", "", "--", "true"], "must not be empty"),
        (
            vec!["run", "--isolation", "cgroups/bogus", "--", "true"],
            "'cgroups/bogus'",
        ),
        (
            vec!["run", "--isolation", "namespaces/pid", "--", "true"],
            "requires 'filesystem/linux'",
        ),
        (
            vec!["run", "--id", "taken", "--", "true"],
            "'taken' already exists",
        ),
        (vec!["run", "--env", "=1", "--", "true"], "'=1'"),
        (vec!["run", "--env", "A\nB=1", "--", "true"], "'A\\nB=1'"),
        (vec!["run", "--hostname", "a b", "--", "true"], "'a b'"),
        (vec!["run", "--hostname", "", "--", "true"], "hostname ''"),
        (vec!["run", "--hostname", "a\nb", "--", "true"], "'a\\nb'"),
        (
            vec!["run", "--hostname", &long_host, "--", "true"],
            "65 bytes",
        ),
        (
            vec!["run", "-w", "/nonexistent-phobos", "--", "true"],
            "'/nonexistent-phobos': no such directory",
        ),
        (
            vec!["run", "--pids-limit", "1", "--", "true"],
            "needs at least 2 processes",
        ),
        (
            vec!["run", "--user", "root:no-such-group-phobos", "--", "true"],
            "unknown group 'no-such-group-phobos'",
        ),
        (
            vec!["run", "--user", "no-such-user-phobos", "--", "true"],
            "'no-such-user-phobos'",
        ),
        (vec!["kill", "-s", "BOGUS", "taken"], "'BOGUS'"),
        (vec!["wait", "a/b"], "'a/b'"),
    ];
    for (args, needle) in &cases {
        let out = env.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(
            err.lines().count(),
            1,
            "{args:?}: more than one line: {err}"
        );
    }
    // No command at all, or --rm with -d: clap's usage errors, also exit 2.
    assert_eq!(env.run(&["run"]).status.code(), Some(2));
    assert_eq!(
        env.run(&["run", "-d", "--rm", "--", "true"]).status.code(),
        Some(2)
    );
    assert_eq!(snapshot(), before, "bad input changed the disk");
    assert_eq!(env.status_json("taken")["state"], "RUNNING");
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            out.push(p.display().to_string());
            if p.is_dir() {
                out.extend(walk(&p));
            }
        }
    }
    out
}

#[test]
fn privileged_unprivileged_user_gets_the_posix_launcher() {
    if !require_root("privileged_unprivileged_user_gets_the_posix_launcher") {
        return;
    }
    let env = Env::new();
    // The user's own directories (someone else's are refused), and the
    // binary copied where the user can run it whatever the checkout's
    // location.
    for dir in [env.runtime.path(), env.work.path()] {
        std::os::unix::fs::chown(dir, Some(65534), Some(65534)).unwrap();
    }
    let exe = common::private_copy_of_phobos();
    let as_nobody = |args: &[&str]| {
        let mut c = env.cmd_with(exe.path());
        c.args(args)
            .uid(65534)
            .gid(65534)
            .env("HOME", "/nonexistent");
        c.output().unwrap()
    };
    let out = as_nobody(&["run", "--", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("warning").count(), 1, "{err}");
    assert!(err.contains("posix launcher"), "{err}");
    let out = as_nobody(&["run", "--launcher", "linux", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs root"));
    // A detached posix container is destroyed with its whole tree.
    let out = as_nobody(&[
        "run",
        "-d",
        "--id",
        "tree",
        "--",
        "sh",
        "-c",
        "sleep 1000 & sleep 1000",
    ]);
    assert!(out.status.success());
    let out = as_nobody(&["status", "--json", "tree"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let session = status["pid"].as_i64().unwrap();
    let out = as_nobody(&["destroy", "--json", "tree"]);
    let t: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(t["signal"], libc::SIGKILL, "{t}");
    assert!(eventually(PATIENCE, || inits_of(env.runtime.path()).is_empty()));
    // Both sleeps too, also one forked while destroy was killing.
    let left = live_members_of_session(session);
    assert!(left.is_empty(), "left running: {left:?}");
}

/// Live (not zombie) processes whose session is `session`.
fn live_members_of_session(session: i64) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let live = fields.first().is_some_and(|s| *s != "Z" && *s != "X");
        if live && fields.get(3).and_then(|s| s.parse::<i64>().ok()) == Some(session) {
            out.push(stat);
        }
    }
    out
}

#[test]
fn privileged_signal_sent_right_after_launch_is_not_lost() {
    if !require_root("privileged_signal_sent_right_after_launch_is_not_lost") {
        return;
    }
    // A signal with the default action sent to a pid namespace's init before
    // it has blocked signals would be dropped by the kernel; init must start
    // with them blocked so the signal waits for it.
    let env = Env::new();
    for i in 0..15 {
        let id = format!("early-signal-{i}");
        env.detach(&id, &["sleep", "1000"]);
        env.ok(&["kill", "-s", "TERM", &id]);
        assert_eq!(env.wait_json(&id)["signal"], libc::SIGTERM, "round {i}");
    }
}

#[test]
fn privileged_interactive_run_hands_stdin_to_the_command() {
    if !require_root("privileged_interactive_run_hands_stdin_to_the_command") {
        return;
    }
    let env = Env::new();
    let mut child = env
        .cmd()
        .args(["run", "-i", "--", "sh", "-c", "read line; echo got:$line"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got:hello\n");
    // Without -i the command reads /dev/null.
    let out = env.ok(&["run", "--", "sh", "-c", "read line || echo eof"]);
    assert_eq!(out, "eof");
}

/// Processes on the host whose command line has `arg` as an argument and
/// that are not zombies.
fn live_with_argument(arg: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if cmdline.split(|b| *b == 0).any(|a| a == arg.as_bytes()) {
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let zombie = stat
                .rfind(')')
                .is_some_and(|i| stat[i + 1..].starts_with(" Z"));
            if !zombie {
                found.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    found
}

#[test]
fn privileged_init_takes_the_rest_of_its_pid_namespace_with_it() {
    if !require_root("privileged_init_takes_the_rest_of_its_pid_namespace_with_it") {
        return;
    }
    let env = Env::new();
    // A background process the command leaves behind (reparented to init)
    // is killed and reaped before `run` returns: init skips its kill only
    // when its namespace's procfs shows it alone.
    let marker = format!("{}", 900_000 + std::process::id() % 90_000);
    let script = format!("sleep {marker} & echo started");
    let out = env.ok(&["run", "--", "sh", "-c", &script]);
    assert_eq!(out.trim(), "started");
    let left = live_with_argument(&marker);
    assert!(left.is_empty(), "left running after run returned: {left:?}");
    // Alone: the plain command still ends with its own status.
    let out = env.run(&["run", "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
}
