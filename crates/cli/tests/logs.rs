//! The `logrotate` container logger with real containers: init's pump
//! rotates a chatty command's output within its bounds and keeps the
//! newest output in order, drains the tail when the command exits or is
//! killed, `phobos logs` reads across rotated files (`--tail`, `--since`,
//! `--stdout`/`--stderr`, `-f` across rotations), the `sandbox` logger
//! still writes plain files, `run --container-logger` picks the logger of
//! one launch, and bad `[logrotate]` values and loggers are refused.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{Config, Env, PATIENCE, config, eventually, log_stream, require_root};

fn cmd(env: &Env, config: &Config, args: &[&str]) -> Command {
    let mut c = env.cmd_config(&config.path);
    c.args(args);
    c
}

fn run(env: &Env, config: &Config, args: &[&str]) -> Output {
    cmd(env, config, args).output().unwrap()
}

fn ok(env: &Env, config: &Config, args: &[&str]) -> Vec<u8> {
    let out = run(env, config, args);
    assert!(
        out.status.success(),
        "phobos {args:?}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Starts container `id` detached, running `sh -c script`.
fn detach_sh(env: &Env, config: &Config, id: &str, script: &str) {
    ok(
        env,
        config,
        &["run", "-d", "--id", id, "--", "sh", "-c", script],
    );
}

/// `lines` numbered lines, as `seq 1 lines` writes them.
fn numbered(from: u64, to: u64) -> Vec<u8> {
    (from..=to)
        .map(|i| format!("{i}\n"))
        .collect::<String>()
        .into_bytes()
}

/// [`log_stream`] of a container whose logger has ended: every file,
/// the newest too, is there.
fn stream(sandbox: &Path, name: &str) -> (Vec<(String, u64)>, Vec<u8>) {
    let newest = sandbox.join(name);
    assert!(newest.is_file(), "{} is missing", newest.display());
    log_stream(sandbox, name)
}

const MB: u64 = 1 << 20;

#[test]
fn privileged_logrotate_bounds_a_chatty_container_and_keeps_the_newest_output() {
    if !require_root("privileged_logrotate_bounds_a_chatty_container") {
        return;
    }
    let env = Env::new();
    let cfg = config(
        "[logrotate]\nmax_stdout_size = \"1MB\"\nmax_stderr_size = \"64KB\"\nmax_files = 4\n",
    );
    // About 27 MB of numbered lines, after a pause that lets the follower
    // start first; a little on stderr too.
    let n = 3_500_000u64;
    let script = format!("sleep 1; seq 1 {n}; echo oops >&2; seq 1 20000 >&2");
    detach_sh(&env, &cfg, "chatty", &script);
    let wait = env.wait_json("chatty");
    assert_eq!(wait["exit_code"], 0, "{wait}");
    let expected = numbered(1, n);
    assert!(expected.len() as u64 > 25 * MB);

    let sandbox = env.sandbox("chatty");
    let (files, kept) = stream(&sandbox, "stdout");
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["stdout.3", "stdout.2", "stdout.1", "stdout"]);
    assert!(files.iter().all(|(_, size)| *size <= MB), "{files:?}");
    assert!(files[..3].iter().all(|(_, size)| *size == MB), "{files:?}");
    assert!(kept.len() as u64 > 3 * MB && kept.len() as u64 <= 4 * MB);
    // The newest output, in order, through the last line.
    assert!(
        expected.ends_with(&kept),
        "the kept files are the newest output"
    );
    assert!(!sandbox.join("stdout.4").exists());

    let (err_files, err_kept) = stream(&sandbox, "stderr");
    assert!(err_files.len() <= 4 && err_files.iter().all(|(_, s)| *s <= 64 << 10));
    let err_expected = [b"oops\n".to_vec(), numbered(1, 20000)].concat();
    assert!(err_files.len() > 1, "stderr rotated too: {err_files:?}");
    assert!(err_expected.ends_with(&err_kept));

    // --tail across the files; --stderr alone.
    let tail = ok(&env, &cfg, &["logs", "--tail", "3", "--stdout", "chatty"]);
    assert_eq!(tail, numbered(n - 2, n));
    let err_tail = run(&env, &cfg, &["logs", "--tail", "2", "--stderr", "chatty"]);
    assert!(err_tail.stdout.is_empty());
    assert_eq!(err_tail.stderr, b"19999\n20000\n");
    // Without a stream option both, each to its own.
    let both = run(&env, &cfg, &["logs", "--tail", "1", "chatty"]);
    assert_eq!(both.stdout, format!("{n}\n").into_bytes());
    assert_eq!(both.stderr, b"20000\n");
    // Everything kept, oldest first.
    let all = run(&env, &cfg, &["logs", "chatty"]);
    assert_eq!(all.stdout, kept);
    assert_eq!(all.stderr, err_kept);
}

#[test]
fn privileged_a_follower_started_first_sees_every_line_once_across_rotations() {
    if !require_root("privileged_a_follower_started_first_sees_every_line_once") {
        return;
    }
    let env = Env::new();
    // 256 KB files, kept by the hundred: about 40 rotations, and room for
    // the follower to lag 25 MB on a loaded machine before a file it has
    // not read rotates away (what a follower slower than that loses is
    // gone; see docs/operations.md).
    let cfg = config("[logrotate]\nmax_stdout_size = \"256KB\"\nmax_files = 100\n");
    let n = 1_300_000u64;
    let script = format!("sleep 1; seq 1 {n}");
    detach_sh(&env, &cfg, "followed", &script);
    let follower = cmd(&env, &cfg, &["logs", "-f", "--stdout", "followed"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let followed = follower.wait_with_output().unwrap();
    assert!(followed.status.success(), "{followed:?}");
    let expected = numbered(1, n);
    assert!(
        env.sandbox("followed").join("stdout.30").exists(),
        "rotated often"
    );
    // Every line exactly once, in order, across every rotation.
    assert!(
        followed.stdout == expected,
        "the follower got {} bytes of {}",
        followed.stdout.len(),
        expected.len()
    );
    assert!(followed.stderr.is_empty(), "--stdout shows stdout only");
}

#[test]
fn privileged_logs_since_selects_the_files_written_within_the_duration() {
    if !require_root("privileged_logs_since_selects_the_files_written_within_the_duration") {
        return;
    }
    let env = Env::new();
    let cfg = config("[logrotate]\nmax_stdout_size = \"4KB\"\nmax_files = 5\n");
    // Numbered lines of 5 bytes ("1000\n" .. "1999\n"): 4 KB files.
    ok(
        &env,
        &cfg,
        &["run", "--id", "old", "--", "seq", "1000", "4999"],
    );
    let sandbox = env.sandbox("old");
    // The two oldest files were written two hours ago.
    for name in ["stdout.4", "stdout.3"] {
        let status = Command::new("touch")
            .args(["-m", "-d", "2 hours ago"])
            .arg(sandbox.join(name))
            .status()
            .unwrap();
        assert!(status.success());
    }
    let (files, kept) = stream(&sandbox, "stdout");
    assert_eq!(files.len(), 5);
    let recent: Vec<u8> = files[2..]
        .iter()
        .flat_map(|(n, _)| std::fs::read(sandbox.join(n)).unwrap())
        .collect();
    assert_eq!(ok(&env, &cfg, &["logs", "--since", "1h", "old"]), recent);
    assert_eq!(ok(&env, &cfg, &["logs", "--since", "3h", "old"]), kept);
    let bad = run(&env, &cfg, &["logs", "--since", "yesterday", "old"]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("--since") && err.contains("yesterday"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn privileged_pump_drains_the_tail_when_the_command_exits_or_is_killed() {
    if !require_root("privileged_pump_drains_the_tail_when_the_command_exits_or_is_killed") {
        return;
    }
    let env = Env::new();
    let cfg = config("");
    // Default limits (10 MB x 10): nothing rotates; every byte arrives.
    // Exits right after writing more than the pipe holds.
    let out = ok(
        &env,
        &cfg,
        &["run", "--id", "ends", "--", "seq", "1", "300000"],
    );
    assert_eq!(out, numbered(1, 300000));
    assert_eq!(
        stream(&env.sandbox("ends"), "stdout").1,
        numbered(1, 300000)
    );
    // Killed by a signal right after its last write (SIGKILL from itself).
    let killed = run(
        &env,
        &cfg,
        &[
            "run",
            "--id",
            "killed",
            "--",
            "sh",
            "-c",
            "seq 1 200000; kill -KILL $$",
        ],
    );
    assert_eq!(killed.status.code(), Some(137), "{killed:?}");
    assert_eq!(
        stream(&env.sandbox("killed"), "stdout").1,
        numbered(1, 200000)
    );
    // Destroyed while writing: what it wrote is there, in order, whole
    // lines up to the last one cut. Its file holds more than the command
    // can write (889 MB): with the default 10 MB x 10 a loaded machine
    // could let it write past 100 MB before the destroy, and rotation
    // dropped the first lines.
    let roomy = config("[logrotate]\nmax_stdout_size = \"1GB\"\n");
    detach_sh(&env, &roomy, "doomed", "seq 1 100000000");
    let sandbox = env.sandbox("doomed");
    assert!(eventually(PATIENCE, || {
        std::fs::metadata(sandbox.join("stdout")).is_ok_and(|m| m.len() > 1_000_000)
    }));
    ok(&env, &roomy, &["destroy", "doomed"]);
    assert!(!sandbox.join("stdout.1").exists(), "rotated");
    let (_, kept) = stream(&sandbox, "stdout");
    let text = String::from_utf8(kept).unwrap();
    let last_full = text.rsplit_once('\n').unwrap().0;
    let count = last_full.lines().count() as u64;
    // (Made once: the command may have written tens of megabytes by the
    // destroy on a loaded machine.)
    let expected = numbered(1, count);
    assert_eq!(last_full.as_bytes(), &expected[..expected.len() - 1]);
}

#[test]
fn privileged_sandbox_logger_writes_plain_files_without_a_pump() {
    if !require_root("privileged_sandbox_logger_writes_plain_files_without_a_pump") {
        return;
    }
    let env = Env::new();
    let cfg = config(
        "container_logger = \"sandbox\"\n[logrotate]\nmax_stdout_size = \"4KB\"\nmax_files = 1\n",
    );
    env.detach("plain", &["true"]);
    let id = "plain-long";
    detach_sh(&env, &cfg, id, "seq 1 50000; sleep 600");
    let sandbox = env.sandbox(id);
    assert!(eventually(PATIENCE, || {
        std::fs::read(sandbox.join("stdout")).is_ok_and(|b| b == numbered(1, 50000))
    }));
    assert!(
        !sandbox.join("stdout.1").exists(),
        "the sandbox logger never rotates"
    );
    // The command writes the file itself: its stdout is the file, and init
    // runs no pump thread.
    let status = env.status_json(id);
    let pid = status["pid"].as_i64().expect("pid");
    let init_threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count();
    assert_eq!(init_threads, 1, "init runs no pump");
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    let child = children.split_whitespace().next().expect("the command");
    let target = std::fs::read_link(format!("/proc/{child}/fd/1")).unwrap();
    assert_eq!(target, sandbox.join("stdout"));
    ok(&env, &cfg, &["destroy", id]);
}

/// `phobos run --container-logger` overrides `container_logger` for one
/// launch, either way.
#[test]
fn privileged_container_logger_flag_overrides_the_config() {
    if !require_root("privileged_container_logger_flag_overrides_the_config") {
        return;
    }
    let env = Env::new();
    for (configured, flag, rotates) in [
        ("logrotate", "sandbox", false),
        ("sandbox", "logrotate", true),
    ] {
        let cfg = config(&format!(
            "container_logger = \"{configured}\"\n[logrotate]\nmax_stdout_size = \"4KB\"\nmax_files = 100\n"
        ));
        let id = format!("flag-{flag}");
        ok(
            &env,
            &cfg,
            &[
                "run",
                "--container-logger",
                flag,
                "--id",
                &id,
                "--",
                "seq",
                "1",
                "5000",
            ],
        );
        let sandbox = env.sandbox(&id);
        let (files, all) = stream(&sandbox, "stdout");
        assert_eq!(all, numbered(1, 5000), "{flag}: every line, in order");
        assert_eq!(
            sandbox.join("stdout.1").exists(),
            rotates,
            "{flag}: {files:?}"
        );
        if rotates {
            assert!(files.iter().all(|(_, len)| *len <= 4096), "{files:?}");
        }
    }
}

#[test]
fn privileged_logrotate_init_itself_reads_the_command_s_pipes() {
    if !require_root("privileged_logrotate_init_itself_reads_the_command_s_pipes") {
        return;
    }
    let env = Env::new();
    let cfg = config("");
    let id = "pumped";
    detach_sh(&env, &cfg, id, "echo hi; echo ho >&2; sleep 600");
    let pid = env.status_json(id)["pid"].as_i64().expect("pid");
    assert!(eventually(PATIENCE, || {
        std::fs::read(env.sandbox(id).join("stdout")).is_ok_and(|b| b == b"hi\n")
            && std::fs::read(env.sandbox(id).join("stderr")).is_ok_and(|b| b == b"ho\n")
    }));
    // No new process and no thread: init, single-threaded, holds the read
    // ends of the pipes the command writes.
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count();
    assert_eq!(threads, 1, "init pumps in its own loop");
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    let kids: Vec<&str> = children.split_whitespace().collect();
    assert_eq!(kids.len(), 1, "only the command: {kids:?}");
    let init_fds: Vec<PathBuf> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
        .collect();
    for fd in [1, 2] {
        let target = std::fs::read_link(format!("/proc/{}/fd/{fd}", kids[0])).unwrap();
        assert!(target.to_string_lossy().starts_with("pipe:"), "{target:?}");
        assert!(init_fds.contains(&target), "init reads {target:?}");
    }
    ok(&env, &cfg, &["destroy", id]);
}

#[test]
fn bad_logrotate_values_exit_2_with_one_line_and_change_nothing() {
    let env = Env::new();
    let cases = [
        ("[logrotate]\nmax_files = 0\n", "logrotate.max_files", "0"),
        (
            "[logrotate]\nmax_stdout_size = \"10XB\"\n",
            "logrotate.max_stdout_size",
            "\"10XB\"",
        ),
        (
            "[logrotate]\nmax_stdout_size = -1\n",
            "logrotate.max_stdout_size",
            "-1",
        ),
        (
            "[logrotate]\nmax_stdout_size = \"\"\n",
            "logrotate.max_stdout_size",
            "\"\"",
        ),
        (
            "[logrotate]\nmax_stdout_size = \"99999999999999999999MB\"\n",
            "logrotate.max_stdout_size",
            "\"99999999999999999999MB\"",
        ),
        (
            "container_logger = \"syslog\"\n",
            "container_logger",
            "\"syslog\"",
        ),
    ];
    for (text, key, value) in cases {
        let cfg = config(text);
        for args in [&["config"][..], &["run", "--id", "never", "--", "true"][..]] {
            let out = run(&env, &cfg, args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{text} {args:?}: {err}");
            assert_eq!(err.trim().lines().count(), 1, "{text}: {err}");
            assert!(err.contains(key) && err.contains(value), "{text}: {err}");
            assert!(out.stdout.is_empty());
        }
        assert!(!env.sandbox("never").exists(), "{text}: nothing made");
        assert!(!env.container_dir("never").exists(), "{text}: nothing made");
    }
    let cfg = config("");
    let out = run(
        &env,
        &cfg,
        &[
            "run",
            "--container-logger",
            "syslog",
            "--id",
            "never",
            "--",
            "true",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("--container-logger") && err.contains("syslog"),
        "{err}"
    );
    assert!(!env.sandbox("never").exists() && !env.container_dir("never").exists());
}
