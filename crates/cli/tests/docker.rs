//! The Docker containerizer through the `phobos` CLI and ECP, against a real
//! Docker engine (started, with the `busybox:local` images, by
//! scripts/docker-test-setup.sh, which the README's test command runs).
//! Each test has its own runtime and work directories and unique ids; the
//! environment's drop destroys (and so removes) what a test left behind.
//! A test prints `skipping <test>: <reason>` when no engine answers.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::engine::{IMAGE, docker_state, engine_or_skip, run_args};
use common::{Env, PATIENCE, eventually};

fn unique() -> String {
    common::engine::unique("dk")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn docker_run(env: &Env, id: &str, extra: &[&str], command: &[&str]) -> std::process::Output {
    env.run(&run_args(false, id, extra, command))
}

#[test]
fn privileged_docker_run_rm_forgets_the_container_once_it_ended() {
    if !engine_or_skip("privileged_docker_run_rm_forgets_the_container_once_it_ended") {
        return;
    }
    let env = Env::new();
    let id = unique();
    let out = docker_run(
        &env,
        &id,
        &["--rm", "-e", "PHOBOS_TEST_PASSED"],
        &["sh", "-c", "echo $PHOBOS_TEST_PASSED; exit 4"],
    );
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "\n",
        "unset in the caller: left out"
    );
    assert_eq!(docker_state(&id), None);
    assert!(!env.sandbox(&id).exists());
    assert_eq!(
        env.run(&["status", &id]).status.code(),
        Some(1),
        "unknown now"
    );
}

#[test]
fn privileged_docker_run_echo_shows_output_fills_sandbox_and_exits_with_its_code() {
    if !engine_or_skip(
        "privileged_docker_run_echo_shows_output_fills_sandbox_and_exits_with_its_code",
    ) {
        return;
    }
    let env = Env::new();
    let id = unique();
    let out = docker_run(
        &env,
        &id,
        &["-e", "GREETING=hi"],
        &["sh", "-c", "echo $GREETING; echo oops >&2; exit 7"],
    );
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("oops"),
        "{out:?}"
    );
    assert_eq!(read(&env.sandbox(&id).join("stdout")), "hi\n");
    assert_eq!(read(&env.sandbox(&id).join("stderr")), "oops\n");
    let t = env.wait_json(&id);
    assert_eq!(t["exit_code"], 7);
    assert_eq!(t["state"], "TASK_FAILED");
    // Its end is recorded, so the engine's container is gone.
    assert_eq!(docker_state(&id), None);
    let status = env.status_json(&id);
    assert_eq!(status["containerizer"], "docker");
    assert_eq!(status["state"], "TERMINATED");
}

#[test]
fn privileged_docker_detached_wait_survives_the_launcher_and_logs_land_in_sandbox() {
    if !engine_or_skip(
        "privileged_docker_detached_wait_survives_the_launcher_and_logs_land_in_sandbox",
    ) {
        return;
    }
    let env = Env::new();
    let id = unique();
    // A foreground run, SIGKILLed while the container runs (it ends once
    // the test opens its gate, after the kill).
    let mut child = env
        .cmd()
        .args(run_args(false, &id, &[], &["sh", "-c"]))
        .arg(
            "echo started; while [ ! -e \"$MESOS_SANDBOX/go\" ]; do sleep 0.05; done; \
             echo done; exit 3",
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // RUNNING is recorded once the engine runs it (a launcher killed
    // before that leaves an orphan for `recover`, not a record).
    assert!(
        eventually(PATIENCE, || env.run(&["status", &id]).status.success()),
        "container never ran"
    );
    assert_eq!(docker_state(&id).as_deref(), Some("running"));
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::write(env.sandbox(&id).join("go"), "").unwrap();
    // A fresh process reconnects and gets the exit code.
    let t = env.wait_json(&id);
    assert_eq!(t["exit_code"], 3, "{t}");
    assert_eq!(read(&env.sandbox(&id).join("stdout")), "started\ndone\n");
    assert_eq!(
        env.ok(&["wait", &id]),
        "exited with status 3 (TASK_FAILED): Command exited with status 3"
    );

    // A detached one prints its id; logs come from the engine on demand.
    let id2 = unique();
    let printed = env.ok(&run_args(
        true,
        &id2,
        &[],
        &["sh", "-c", "echo detached; sleep 30"],
    ));
    assert_eq!(printed, id2);
    assert!(
        eventually(PATIENCE, || env.ok(&["logs", &id2]) == "detached"),
        "logs never showed the output"
    );
    assert!(
        eventually(PATIENCE, || read(&env.sandbox(&id2).join("stdout"))
            == "detached\n"),
        "the sandbox never got the output"
    );
    let ps = env.ok(&["ps"]);
    let row = ps
        .lines()
        .find(|l| l.starts_with(&id2))
        .expect("ps lists it");
    assert!(
        row.contains("RUNNING") && row.contains("[docker busybox:local]"),
        "{ps}"
    );
    let listed: Vec<serde_json::Value> = serde_json::from_str(&env.ok(&["ps", "--json"])).unwrap();
    assert!(
        listed
            .iter()
            .any(|c| c["id"] == id2.as_str() && c["containerizer"] == "docker")
    );
    let stats: serde_json::Value =
        serde_json::from_str(&env.ok(&["stats", "--json", &id2])).unwrap();
    assert!(stats["cpus_user_time_secs"].is_number(), "{stats}");
    assert!(stats["mem_rss_bytes"].is_number(), "{stats}");
    env.ok(&["destroy", &id2]);
}

#[test]
fn privileged_docker_destroy_kills_records_and_removes_the_container() {
    if !engine_or_skip("privileged_docker_destroy_kills_records_and_removes_the_container") {
        return;
    }
    let env = Env::new();
    let id = unique();
    env.ok(&run_args(true, &id, &[], &["sleep", "300"]));
    assert_eq!(docker_state(&id).as_deref(), Some("running"));
    let t: serde_json::Value = serde_json::from_str(&env.ok(&["destroy", "--json", &id])).unwrap();
    assert_eq!(t["state"], "TASK_KILLED", "{t}");
    assert_eq!(t["exit_code"], 137, "{t}");
    assert_eq!(docker_state(&id), None, "the container is removed");
    // Idempotent, and wait agrees.
    let again: serde_json::Value =
        serde_json::from_str(&env.ok(&["destroy", "--json", &id])).unwrap();
    assert_eq!(again, t);
    assert_eq!(env.wait_json(&id), t);
    let out = env.run(&["kill", &id]);
    assert_eq!(out.status.code(), Some(1));
    // state --rm removes the record and the sandbox.
    assert_eq!(env.ok(&["state", "--rm"]), format!("removed {id}"));
    assert!(!env.sandbox(&id).exists());
    assert_eq!(env.run(&["wait", &id]).status.code(), Some(1));
}

#[test]
fn privileged_docker_bad_input_is_one_line_and_leaves_nothing() {
    if !engine_or_skip("privileged_docker_bad_input_is_one_line_and_leaves_nothing") {
        return;
    }
    let env = Env::new();
    let missing = format!("phobos-missing-{}:nope", uuid::Uuid::new_v4().simple());
    let nowhere = format!("/nonexistent-{}", uuid::Uuid::new_v4().simple());
    let volume = format!("{nowhere}:/data");
    // A container that never started: 255 (README), as for Mesos ones.
    // (A missing command, with the engine's init turned off: the engine
    // cannot start the container; with it, see below.)
    let cases: [(Vec<&str>, i32, &str); 6] = [
        (
            vec![
                "--docker-image",
                IMAGE,
                "--docker-param",
                "init=false",
                "--",
                "/nonexistent",
            ],
            255,
            "failed to start container",
        ),
        (
            vec!["--docker-image", &missing, "--", "true"],
            255,
            "failed to pull image",
        ),
        (
            vec!["--docker-image", IMAGE, "-p", "8080:80", "--", "true"],
            2,
            "port mappings",
        ),
        (
            vec![
                "--docker-image",
                IMAGE,
                "-p",
                "70000:80",
                "--network",
                "bridge",
                "--",
                "true",
            ],
            2,
            "--publish",
        ),
        (
            vec![
                "--docker-image",
                IMAGE,
                "--docker-param",
                "bogus=1",
                "--",
                "true",
            ],
            2,
            "bogus",
        ),
        (
            vec!["--docker-image", IMAGE, "-v", &volume, "--", "true"],
            2,
            "does not exist",
        ),
    ];
    for (extra, code, needle) in cases {
        let id = unique();
        let mut args = vec!["run", "--id", &id];
        args.extend_from_slice(&extra);
        let out = env.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert_eq!(docker_state(&id), None, "{args:?} created a container");
        assert!(!env.sandbox(&id).exists(), "{args:?} left a sandbox");
    }
    // No record of any of them.
    let left: Vec<_> = std::fs::read_dir(env.runtime.path())
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        left.iter()
            .all(|p| p.file_name().is_some_and(|n| n != "docker")
                || std::fs::read_dir(p)
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(true)),
        "{left:?}"
    );
    assert!(env.ok(&["ps"]).lines().count() == 1, "only the header");
    // With the engine's init (the default) the container starts and its
    // init cannot run the command: 127, as for Mesos containers and
    // `docker run --init`, in one line.
    let id = unique();
    let out = docker_run(&env, &id, &[], &["/nonexistent"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(127), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("/nonexistent"), "{stderr}");
    assert_eq!(env.wait_json(&id)["exit_code"], 127);
}

#[test]
fn privileged_docker_recover_kills_an_orphan_and_keeps_known_containers() {
    if !engine_or_skip("privileged_docker_recover_kills_an_orphan_and_keeps_known_containers") {
        return;
    }
    let env = Env::new();
    let keeper = unique();
    let orphan = unique();
    for id in [&keeper, &orphan] {
        env.ok(&run_args(true, id, &[], &["sleep", "300"]));
    }
    // The orphan's record is lost (as after a crash that lost the runtime dir).
    std::fs::remove_dir_all(env.runtime.path().join("docker/containers").join(&orphan)).unwrap();
    let report = env.ok(&["recover"]);
    assert!(
        report.contains(&format!("recovered {keeper} (docker)")),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "stopped and removed orphan docker container mesos-{orphan}"
        )),
        "{report}"
    );
    assert_eq!(docker_state(&orphan), None);
    assert_eq!(docker_state(&keeper).as_deref(), Some("running"));
    env.ok(&["destroy", &keeper]);
}

#[test]
fn privileged_docker_default_cmd_override_and_args() {
    if !engine_or_skip("privileged_docker_default_cmd_override_and_args") {
        return;
    }
    let env = Env::new();
    // busybox:local's CMD prints a marker and its working directory.
    let id = unique();
    let out = docker_run(&env, &id, &[], &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("phobos-default-cmd"), "{stdout}");
    // The image's WORKDIR is kept unless one is given (Deimos issue #49).
    assert!(stdout.contains("/srv/phobos"), "{stdout}");
    let id = unique();
    let out = docker_run(&env, &id, &["-w", "/tmp"], &["pwd"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "/tmp\n");
    // An image with an ENTRYPOINT: no command keeps its CMD, a command
    // replaces the CMD and is passed to the ENTRYPOINT as arguments.
    let id = unique();
    let out = env.run(&[
        "run",
        "--id",
        &id,
        "--image",
        "docker:///busybox:local-entrypoint",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "phobos-entrypoint default-arg\n"
    );
    let id = unique();
    let out = env.run(&[
        "run",
        "--id",
        &id,
        "--image",
        "docker:///busybox:local-entrypoint",
        "--",
        "a",
        "b",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "phobos-entrypoint a b\n"
    );
}

#[test]
fn privileged_docker_cpus_limit_sets_the_cfs_quota() {
    if !engine_or_skip("privileged_docker_cpus_limit_sets_the_cfs_quota") {
        return;
    }
    let env = Env::new();
    let id = unique();
    // Inside the container its own cgroup is the root of the cgroup namespace
    // (v2) or of the mounted v1 hierarchy.
    let out = docker_run(
        &env,
        &id,
        &["--cpus", "0.5", "--cpus-limit", "0.5", "--mem", "64"],
        &[
            "sh",
            "-c",
            "cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us 2>/dev/null; true",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        stdout.contains("50000"),
        "expected a 50 ms quota per 100 ms: {stdout}"
    );
}

#[test]
fn privileged_docker_foreground_run_forwards_sigterm_to_the_container() {
    if !engine_or_skip("privileged_docker_foreground_run_forwards_sigterm_to_the_container") {
        return;
    }
    let env = Env::new();
    let id = unique();
    let child = env
        .cmd()
        .args(run_args(false, &id, &[], &["sh", "-c"]))
        .arg("trap 'echo got-term; exit 5' TERM; touch \"$MESOS_SANDBOX/trapped\"; sleep 30 & wait")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        eventually(PATIENCE, || docker_state(&id).as_deref() == Some("running")),
        "container never ran"
    );
    // The shell has installed its trap.
    let trapped = env.sandbox(&id).join("trapped");
    assert!(
        eventually(PATIENCE, || trapped.exists()),
        "the shell never installed its trap"
    );
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got-term\n");
}

/// Whether `pid` blocks SIGTERM (its signal mask in /proc).
fn blocks_sigterm(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("SigBlk:"))
                .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        })
        .is_some_and(|mask| mask & (1 << (libc::SIGTERM - 1)) != 0)
}

#[test]
fn privileged_docker_observe_exits_with_the_container_and_destroys_it_on_sigterm() {
    if !engine_or_skip(
        "privileged_docker_observe_exits_with_the_container_and_destroys_it_on_sigterm",
    ) {
        return;
    }
    let env = Env::new();
    let id = unique();
    env.ok(&run_args(true, &id, &[], &["sleep", "300"]));
    let observer = env.cmd().args(["observe", &id]).spawn().unwrap();
    assert!(
        eventually(PATIENCE, || blocks_sigterm(observer.id())),
        "the observer never got ready"
    );
    // SAFETY: kill(2) on our own child's pid.
    let rc = unsafe { libc::kill(observer.id() as i32, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let out = observer.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(137), "{out:?}");
    assert_eq!(env.wait_json(&id)["state"], "TASK_KILLED");
    assert_eq!(docker_state(&id), None);

    // Without a signal it ends with the container's code.
    let id = unique();
    env.ok(&run_args(true, &id, &[], &["sh", "-c", "exit 9"]));
    assert_eq!(env.run(&["observe", &id]).status.code(), Some(9));
}

#[test]
fn privileged_docker_remove_delay_keeps_the_ended_container_until_it_passes() {
    if !engine_or_skip("privileged_docker_remove_delay_keeps_the_ended_container_until_it_passes") {
        return;
    }
    let env = Env::new();
    // The launch and the first recovery run with a delay no loaded machine
    // outlasts, the second with one second: with one second throughout,
    // `run` ending and the first recovery could take longer than the delay
    // and find it passed.
    let config = env.work.path().join("phobos.toml");
    std::fs::write(&config, "docker_remove_delay = \"1h\"\n").unwrap();
    let config = config.display().to_string();
    let short = env.work.path().join("short.toml");
    std::fs::write(&short, "docker_remove_delay = \"1secs\"\n").unwrap();
    let short = short.display().to_string();
    let id = unique();
    let out = env.run(
        &[
            &["--config", config.as_str()][..],
            &run_args(false, &id, &[], &["true"]),
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // Kept for inspection while the delay runs ...
    assert_eq!(docker_state(&id).as_deref(), Some("exited"));
    let early = env.run(&["--config", &config, "recover"]);
    assert!(early.status.success(), "{early:?}");
    assert_eq!(
        docker_state(&id).as_deref(),
        Some("exited"),
        "removed too early"
    );
    // ... and removed once it has passed (the end was recorded before `run`
    // returned); the record stays for `state --rm`.
    std::thread::sleep(Duration::from_millis(1100));
    let late = env.run(&["--config", &short, "recover"]);
    assert!(late.status.success(), "{late:?}");
    assert_eq!(docker_state(&id), None, "kept past the delay");
    assert_eq!(env.wait_json(&id)["exit_code"], 0);
    let out = env.run(&["--config", &config, "state", "--rm"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&id));
}

/// `phobos run --docker-image … -- CMD | head -2` ends: the command gets
/// SIGPIPE through the engine's init, as a pipeline's writer would, instead
/// of running (and filling its sandbox) forever as PID 1. The writer is a
/// shell loop rather than `yes`, whose megabytes of one-line log entries
/// the engine takes tens of seconds to hand back for the sandbox copy.
#[test]
fn privileged_docker_a_closed_pipe_ends_the_container() {
    if !engine_or_skip("privileged_docker_a_closed_pipe_ends_the_container") {
        return;
    }
    use std::io::BufRead;
    let env = Env::new();
    let id = unique();
    let mut run = env
        .cmd()
        .args(run_args(false, &id, &[], &["sh", "-c"]))
        .arg("while :; do echo y; sleep 0.01; done")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = std::io::BufReader::new(run.stdout.take().unwrap());
    for _ in 0..2 {
        let mut line = String::new();
        head.read_line(&mut line).unwrap();
        assert_eq!(line, "y\n");
    }
    drop(head);
    // The container ends at once; `run` ends once the engine's log is
    // copied into the sandbox.
    let mut state = None;
    assert!(
        eventually(PATIENCE, || {
            state = docker_state(&id);
            state.as_deref() != Some("running")
        }),
        "the container kept running behind a closed pipe"
    );
    // Ended: exited, being removed, or gone already.
    assert!(
        matches!(
            state.as_deref(),
            None | Some("exited" | "removing" | "dead")
        ),
        "{state:?}"
    );
    let deadline = std::time::Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = run.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = run.kill();
            let _ = run.wait();
            panic!("run with a closed stdout did not end");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(128 + libc::SIGPIPE));
    let t = env.wait_json(&id);
    assert_eq!(t["exit_code"], 128 + libc::SIGPIPE, "{t}");
    assert_eq!(docker_state(&id), None, "the engine's container is left");
    // Nothing writes into the sandbox any more.
    let size = || {
        std::fs::metadata(env.sandbox(&id).join("stdout"))
            .unwrap()
            .len()
    };
    let before = size();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(size(), before);
}

#[test]
fn privileged_docker_fetches_uris_into_the_sandbox_before_the_container_is_created() {
    if !engine_or_skip(
        "privileged_docker_fetches_uris_into_the_sandbox_before_the_container_is_created",
    ) {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(src.path().join("app/conf")).unwrap();
    std::fs::write(src.path().join("app/conf/a.txt"), "alpha\n").unwrap();
    let archive = src.path().join("app.tar.xz");
    let tar = Command::new("tar")
        .arg("cJf")
        .arg(&archive)
        .arg("-C")
        .arg(src.path())
        .arg("app")
        .status()
        .unwrap();
    assert!(tar.success());
    let env = Env::new();
    let id = unique();
    let fetch = archive.display().to_string();
    let out = docker_run(
        &env,
        &id,
        &["--fetch", &fetch],
        &["cat", "/mnt/mesos/sandbox/app/conf/a.txt"],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "alpha\n");
    assert!(env.sandbox(&id).join("app.tar.xz").is_file());

    // A failed fetch: one line naming the URI, no container created.
    let id = unique();
    let missing = src.path().join("missing.tgz").display().to_string();
    let out = docker_run(&env, &id, &["--fetch", &missing], &["true"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A runtime failure (the CLI's "did not start" code), not a usage error.
    assert!(!matches!(out.status.code(), Some(0 | 2) | None), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&missing), "{stderr}");
    assert_eq!(docker_state(&id), None);
    assert!(
        !env.sandbox(&id).exists(),
        "the sandbox this launch made is gone"
    );
}
