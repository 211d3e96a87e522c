//! What a person meets first, through the real `phobos` binary: input
//! Docker users expect to work (`-e KEY`, `-u UID`, `-u USER:GROUP`, the
//! longest IDs), exit codes and one-line messages the README promises
//! (a container that never started, an OOM kill, an update that keeps the
//! hard limit), tables that stay tables, `run --rm`, a `run` that is a
//! pipeline stage (a closed pipe, a terminal hanging up), and help text.

mod common;

use std::time::Duration;

use common::*;

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
fn privileged_an_isolator_failing_at_runtime_exits_1_not_2() {
    if !require_root("privileged_an_isolator_failing_at_runtime_exits_1_not_2") {
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
    // A runtime failure (README): 1, not 2 (bad input, nothing changed)
    // and not 255 (kept for a container that never started for a reason
    // other than an isolator).
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("phobos: the container did not start: "),
        "{err}"
    );
    assert!(err.contains("failed for container occupied"), "{err}");
    // The FAILED record stays; `wait` has no status for it (255).
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
    assert!(eventually(PATIENCE, || {
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

/// Waits for `child` with a generous bound; kills it (a test failure) when
/// it does not end.
fn wait_bounded(child: &mut std::process::Child, what: &str) -> std::process::ExitStatus {
    let mut status = None;
    let ended = eventually(PATIENCE, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if !ended {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{what} did not end");
    }
    status.unwrap()
}

#[test]
fn privileged_a_closed_pipe_ends_the_container_as_a_pipeline_ends_its_writer() {
    if !require_root("privileged_a_closed_pipe_ends_the_container_as_a_pipeline_ends_its_writer") {
        return;
    }
    use std::io::BufRead;
    let env = Env::new();
    // `phobos run -- yes | head -2`.
    let mut run = env
        .cmd()
        .args(["run", "--id", "yes", "--", "yes"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = std::io::BufReader::new(run.stdout.take().unwrap());
    for _ in 0..2 {
        let mut line = String::new();
        head.read_line(&mut line).unwrap();
        assert_eq!(line, "y\n");
    }
    drop(head);
    let status = wait_bounded(&mut run, "run with a closed stdout");
    assert_eq!(status.code(), Some(128 + libc::SIGPIPE));
    let t = env.wait_json("yes");
    assert_eq!(t["signal"], libc::SIGPIPE, "{t}");
    // Nothing writes into the sandbox any more.
    let size = || {
        std::fs::metadata(env.sandbox("yes").join("stdout"))
            .unwrap()
            .len()
    };
    let before = size();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(size(), before);

    // Detached, the container is not tied to our output at all.
    let mut detached = env
        .cmd()
        .args(["run", "-d", "--id", "bg", "--", "sh", "-c"])
        .arg("while true; do echo y; sleep 0.05; done")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(detached.stdout.take().unwrap());
    let mut id = String::new();
    out.read_line(&mut id).unwrap();
    drop(out);
    assert!(wait_bounded(&mut detached, "run -d").success());
    // `logs -f | head -1` ends too, as a pipeline's writer (killed by
    // SIGPIPE, README), and leaves the container alone.
    let mut logs = env
        .cmd()
        .args(["logs", "-f", "bg"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = std::io::BufReader::new(logs.stdout.take().unwrap());
    let mut line = String::new();
    head.read_line(&mut line).unwrap();
    assert_eq!(line, "y\n");
    drop(head);
    let status = wait_bounded(&mut logs, "logs -f with a closed stdout");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGPIPE),
        "{status:?}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(env.status_json("bg")["state"], "RUNNING");
}

#[test]
fn privileged_a_terminal_hangup_is_forwarded_as_sighup() {
    if !require_root("privileged_a_terminal_hangup_is_forwarded_as_sighup") {
        return;
    }
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    let env = Env::new();
    // A pseudo-terminal whose slave becomes `phobos run`'s controlling
    // terminal and stdio, as in an interactive login.
    // SAFETY: posix_openpt, grantpt, unlockpt and ptsname_r on the master
    // descriptor we own, with a buffer of the size we pass.
    let (master, slave) = unsafe {
        let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        let master = OwnedFd::from_raw_fd(fd);
        assert_eq!(libc::grantpt(fd), 0);
        assert_eq!(libc::unlockpt(fd), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(fd, name.as_mut_ptr(), name.len()), 0);
        (master, std::ffi::CStr::from_ptr(name.as_ptr()).to_owned())
    };
    let mut command = env.cmd();
    command
        .args([
            "run",
            "--id",
            "hup",
            "--",
            "sh",
            "-c",
            "echo ready; exec sleep 1000",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: only async-signal-safe calls (setsid, open, ioctl, dup2,
    // close) between fork and exec; `slave` was allocated before the fork.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let fd = libc::open(slave.as_ptr(), libc::O_RDWR);
            if fd < 0 || libc::ioctl(fd, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            for target in 0..3 {
                if libc::dup2(fd, target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            libc::close(fd);
            Ok(())
        });
    }
    let mut run = command.spawn().unwrap();
    let mut terminal = std::fs::File::from(master);
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("ready") {
        let mut buf = [0u8; 256];
        let n = terminal.read(&mut buf).unwrap();
        assert!(n > 0, "the terminal closed before the command ran");
        seen.extend_from_slice(&buf[..n]);
    }
    // Hang up: the last descriptor of the master goes.
    drop(terminal);
    let status = wait_bounded(&mut run, "run after a hangup");
    assert_eq!(status.code(), Some(128 + libc::SIGHUP));
    let t = env.wait_json("hup");
    assert_eq!(t["signal"], libc::SIGHUP, "{t}");
}

/// The lines of `--help` output under `heading` (up to the next blank line).
fn section<'a>(help: &'a str, heading: &str) -> Vec<&'a str> {
    help.lines()
        .skip_while(|l| *l != heading)
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect()
}

fn help(args: &[&str]) -> String {
    let out = std::process::Command::new(PHOBOS)
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}");
    stdout(&out)
}

#[test]
fn help_keeps_global_and_docker_only_options_apart() {
    let run = help(&["run"]);
    let own = section(&run, "Options:").join("\n");
    assert!(own.contains("--id") && own.contains("--rm"), "{run}");
    for global in [
        "--config",
        "--runtime-dir",
        "--work-dir",
        "--cgroups-root",
        "--log-level",
    ] {
        assert!(
            !own.contains(global),
            "{global} among run's own options:\n{run}"
        );
        assert!(
            section(&run, "Global options:")
                .iter()
                .any(|l| l.contains(global)),
            "{global}:\n{run}"
        );
    }
    let docker_only = section(&run, "Docker containers only (--docker-image):").join("\n");
    for flag in ["--docker-param", "--force-pull", "--privileged"] {
        assert!(docker_only.contains(flag), "{flag}:\n{run}");
    }
    // Network and volume options say where they are refused, in words that
    // stay true as more containerizers support them.
    let network = section(&run, "Network and volumes:").join("\n");
    for flag in ["--publish", "--network", "--volume"] {
        assert!(network.contains(flag), "{flag}:\n{run}");
    }
    assert_eq!(
        network
            .matches("Refused where the containerizer cannot")
            .count(),
        3,
        "{run}"
    );
}

#[test]
fn every_id_and_json_argument_has_help_text() {
    for command in [
        vec!["wait"],
        vec!["kill"],
        vec!["destroy"],
        vec!["ps"],
        vec!["status"],
        vec!["logs"],
        vec!["recover"],
        vec!["stats"],
        vec!["update"],
        vec!["exec"],
        vec!["config"],
        vec!["image", "ls"],
    ] {
        let text = help(&command);
        for line in text.lines() {
            let line = line.trim();
            for arg in ["<ID>", "[ID]", "--json"] {
                if line.starts_with(arg) {
                    assert!(
                        line.len() > arg.len() + 2,
                        "{command:?}: {arg} has no help text:\n{text}"
                    );
                }
            }
        }
    }
}

#[test]
fn the_readme_starts_without_sudo() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let first = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|block| block.lines().next())
        .unwrap();
    assert!(!first.contains("sudo"), "{first}");
    assert!(first.contains("phobos\" run --"), "{first}");
    let before = readme.split("```sh\n").next().unwrap();
    assert!(
        before.contains("as root"),
        "the first command says it runs as root"
    );
}

#[test]
fn privileged_another_user_is_told_the_command_needs_root() {
    if !require_root("privileged_another_user_is_told_the_command_needs_root") {
        return;
    }
    use std::os::unix::process::CommandExt;
    let env = Env::new();
    env.detach("roots", &["sleep", "1000"]);
    let exe = private_copy_of_phobos();
    for args in [vec!["ps"], vec!["wait", "roots"], vec!["run", "--", "true"]] {
        let out = std::process::Command::new(exe.path())
            .arg("--runtime-dir")
            .arg(env.runtime.path())
            .arg("--work-dir")
            .arg(env.work.path())
            .args(&args)
            .uid(65534)
            .gid(65534)
            .env("HOME", "/nonexistent")
            .env_remove("PHOBOS_CONFIG")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("phobos: this command needs root (or --launcher posix"),
            "{args:?}: {err}"
        );
        assert!(
            err.contains(&env.runtime.path().display().to_string()),
            "{err}"
        );
    }
    assert_eq!(env.status_json("roots")["state"], "RUNNING");
}
