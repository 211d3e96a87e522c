//! What a person meets first, through the real `phobos` binary: input
//! Docker users expect to work (`-e KEY`, `-u UID`, `-u USER:GROUP`, the
//! longest IDs), exit codes and one-line messages the README promises
//! (a container that never started, an OOM kill, an update that keeps the
//! hard limit), tables that stay tables, `run --rm`, and help text.

mod common;

use std::time::Duration;

use common::*;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn privileged_docker_style_env_and_users_are_accepted() {
    if !require_root("privileged_docker_style_env_and_users_are_accepted") {
        return;
    }
    let env = Env::new();
    // `-e KEY` passes the caller's value; an unset one is left out.
    let out = env
        .cmd()
        .args(["run", "-e", "PHOBOS_TEST_PASSED", "-e", "PHOBOS_TEST_UNSET"])
        .args(["-e", "B=x=y", "--", "sh", "-c"])
        .arg("echo \"$PHOBOS_TEST_PASSED ${PHOBOS_TEST_UNSET-unset} $B\"")
        .env("PHOBOS_TEST_PASSED", "from the caller")
        .env_remove("PHOBOS_TEST_UNSET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "from the caller unset x=y\n");
    // A uid no database knows: gid 0, as Docker. UID:GID and USER:GROUP.
    for (user, ids) in [
        ("12345", "12345 0 0"),
        ("12345:4242", "12345 4242 4242"),
        ("root:65534", "0 65534 65534"),
        ("nobody:root", "65534 0 0"),
    ] {
        let out = env.run(&[
            "run",
            "-u",
            user,
            "--",
            "sh",
            "-c",
            "echo $(id -u) $(id -g) $(id -G)",
        ]);
        assert_eq!(out.status.code(), Some(0), "{user}: {}", stderr(&out));
        assert_eq!(stdout(&out).trim(), ids, "{user}");
    }
}

#[test]
fn privileged_the_longest_ids_launch() {
    if !require_root("privileged_the_longest_ids_launch") {
        return;
    }
    let env = Env::new();
    // 218–242 bytes used to fail on the temporary directory's name.
    for len in [218, 242] {
        let id = "i".repeat(len);
        let out = env.run(&["run", "--id", &id, "--", "true"]);
        assert_eq!(out.status.code(), Some(0), "{len}: {}", stderr(&out));
        assert_eq!(env.wait_json(&id)["exit_code"], 0);
    }
}

#[test]
fn privileged_a_launch_failing_at_runtime_exits_255_not_2() {
    if !require_root("privileged_a_launch_failing_at_runtime_exits_255_not_2") {
        return;
    }
    let env = Env::new();
    // The cgroups isolator refuses a cgroup that already exists (another
    // container's, as in Mesos): a runtime failure, after the input was
    // accepted and the record created.
    let id = "occupied";
    let mut made = Vec::new();
    for root in all_hierarchies() {
        if root.join("memory.limit_in_bytes").exists() || root.join("cgroup.controllers").exists() {
            let dir = root.join(&env.cgroups_root).join(id);
            if std::fs::create_dir_all(&dir).is_ok() {
                made.push(dir);
            }
        }
    }
    assert!(!made.is_empty(), "no memory hierarchy to occupy");
    let out = env.run(&[
        "run",
        "--id",
        id,
        "--isolation",
        "cgroups/mem",
        "--mem",
        "64",
        "--",
        "true",
    ]);
    for dir in &made {
        let _ = std::fs::remove_dir(dir);
    }
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(255), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("phobos: the container did not start: "),
        "{err}"
    );
    assert!(err.contains("failed for container occupied"), "{err}");
    // The FAILED record stays, and `wait` agrees on 255's meaning.
    let t = env.wait_json(id);
    assert_eq!(t["state"], "TASK_FAILED", "{t}");
    assert!(t.get("status").is_none(), "{t}");
}

#[test]
fn privileged_an_oom_kill_in_the_foreground_says_so_in_one_line() {
    if !require_root("privileged_an_oom_kill_in_the_foreground_says_so_in_one_line") {
        return;
    }
    let env = Env::new();
    let out = env.run(&[
        "run",
        "--mem",
        "32",
        "--",
        "sh",
        "-c",
        "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(137), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("phobos:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains(
            "was ended by a limit: Memory limit exceeded: Requested: 33554432 bytes Maximum Used: "
        ),
        "{err}"
    );
    // A plain non-zero exit says nothing extra.
    let out = env.run(&["run", "--", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(stderr(&out), "");
}

#[test]
fn privileged_update_says_when_the_hard_limit_stays() {
    if !require_root("privileged_update_says_when_the_hard_limit_stays") {
        return;
    }
    let env = Env::new();
    env.ok(&[
        "run", "-d", "--id", "grown", "--mem", "128", "--", "sleep", "1000",
    ]);
    let out = env.run(&["update", "grown", "--mem", "64"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("the memory hard limit stays at 128 MB")
            && err.contains("add --force to lower it to 64 MB"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let out = env.run(&["update", "grown", "--mem", "64", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "forced: lowered, nothing to say");
    let out = env.run(&["update", "grown", "--mem", "256"]);
    assert_eq!(stderr(&out), "", "raised: nothing to say");
}

#[test]
fn privileged_tables_stay_tables() {
    if !require_root("privileged_tables_stay_tables") {
        return;
    }
    let env = Env::new();
    env.detach("multi", &["sh", "-c", "sleep 1000 # one\ntwo"]);
    let ps = env.ok(&["ps"]);
    assert_eq!(ps.lines().count(), 2, "{ps}");
    assert!(ps.contains("# one\\ntwo"), "{ps}");
    // `stats` shows the disk use the JSON has.
    env.ok(&[
        "run",
        "-d",
        "--id",
        "disky",
        "--disk",
        "64",
        "--",
        "sh",
        "-c",
        "head -c 300000 /dev/zero > f; sleep 1000",
    ]);
    assert!(eventually(Duration::from_secs(30), || {
        let json: serde_json::Value =
            serde_json::from_str(&env.ok(&["stats", "--json", "disky"])).unwrap();
        json["disk_used_bytes"]
            .as_u64()
            .is_some_and(|b| b >= 300_000)
    }));
    let table = env.ok(&["stats", "disky"]);
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    assert!(
        header.contains("DISK") && header.ends_with("DISK LIMIT"),
        "{table}"
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row.last(), Some(&"64.0MiB"), "{table}");
    let used = row[row.len() - 2];
    assert!(used.ends_with("KiB") || used.ends_with("MiB"), "{table}");
}

#[test]
fn privileged_run_rm_forgets_the_container_once_it_ended() {
    if !require_root("privileged_run_rm_forgets_the_container_once_it_ended") {
        return;
    }
    let env = Env::new();
    let out = env.run(&[
        "run",
        "--rm",
        "--id",
        "gone",
        "--",
        "sh",
        "-c",
        "echo bye; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), "bye\n");
    assert!(!env.container_dir("gone").exists());
    assert!(!env.sandbox("gone").exists());
    assert_eq!(
        env.run(&["wait", "gone"]).status.code(),
        Some(1),
        "unknown now"
    );
    // The ID is free again.
    env.ok(&["run", "--rm", "--id", "gone", "--", "true"]);
    // Without --rm the record stays.
    env.ok(&["run", "--id", "kept", "--", "true"]);
    assert!(env.container_dir("kept").exists());
}
