//! A command whose stdout is a pipe with its reader gone (`phobos ps |
//! head -1`) ends as a pipeline member does, killed by SIGPIPE with
//! nothing on stderr (README, exit codes); and a container's command
//! starts with every signal at its default action, whatever phobos itself
//! ignores.

mod common;

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Output, Stdio};

use common::{Env, PATIENCE, eventually, require_root, stderr};

/// The smallest pipe the kernel makes (one page): a few kilobytes of
/// output overflow it, so the writer is still writing when the reader
/// leaves.
const SMALL_PIPE: libc::c_int = 4096;

/// Runs `cmd` with its stdout a pipe of [`SMALL_PIPE`] bytes whose reader
/// takes the first line (byte by byte, as `head -1` would see it) and
/// leaves; returns that line and the command's output (stdout empty).
fn first_line_then_close(cmd: &mut Command) -> (String, Output) {
    let (mut reader, writer) = std::io::pipe().unwrap();
    // SAFETY: F_SETPIPE_SZ on a pipe descriptor we own only resizes it.
    let size = unsafe { libc::fcntl(writer.as_raw_fd(), libc::F_SETPIPE_SZ, SMALL_PIPE) };
    assert!(
        size >= SMALL_PIPE,
        "F_SETPIPE_SZ: {}",
        std::io::Error::last_os_error()
    );
    let child = cmd.stdout(writer).stderr(Stdio::piped()).spawn().unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8];
    while reader.read(&mut byte).unwrap() == 1 {
        line.push(byte[0]);
        if byte[0] == b'\n' {
            break;
        }
    }
    drop(reader);
    let out = wait_output(child);
    (String::from_utf8(line).unwrap(), out)
}

/// Runs `cmd` with its stdout a pipe whose reader is gone before it starts.
fn into_closed_pipe(cmd: &mut Command) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    wait_output(cmd.stdout(writer).stderr(Stdio::piped()).spawn().unwrap())
}

/// The child's output, bounded by [`PATIENCE`] (killed past it).
fn wait_output(mut child: std::process::Child) -> Output {
    let pid = child.id();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        err.read_to_end(&mut text).unwrap();
        text
    });
    let mut status = None;
    if !eventually(PATIENCE, || {
        status = child.try_wait().unwrap();
        status.is_some()
    }) {
        let _ = child.kill();
        let _ = child.wait();
        panic!("phobos (pid {pid}) did not end with its stdout closed");
    }
    Output {
        status: status.unwrap(),
        stdout: Vec::new(),
        stderr: reader.join().unwrap(),
    }
}

/// Killed by SIGPIPE, silently: what README says of a closed stdout.
fn assert_ended_by_sigpipe(what: &str, out: &Output) {
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "{what}: {:?}, stderr: {}",
        out.status,
        stderr(out)
    );
    assert_eq!(stderr(out), "", "{what}: nothing on stderr");
}

#[test]
fn privileged_listings_cut_short_end_as_a_pipeline_member_without_a_panic() {
    if !require_root("privileged_listings_cut_short_end_as_a_pipeline_member_without_a_panic") {
        return;
    }
    let env = Env::new();
    // Sixteen containers whose command is long enough that `ps` writes
    // several times the pipe's size.
    let filler = "x".repeat(400);
    let script = format!(": {filler}");
    let mut ids = Vec::new();
    for i in 0..16 {
        let id = format!("pipe-{i:02}");
        env.detach(&id, &["sh", "-c", &script]);
        ids.push(id);
    }
    env.detach("pipe-live", &["sleep", "600"]);
    ids.push("pipe-live".to_owned());
    for id in &ids[..16] {
        assert_eq!(env.wait_json(id)["exit_code"], 0, "{id}");
    }

    // `phobos ps | head -1`: the header, then SIGPIPE.
    let (line, out) = first_line_then_close(env.cmd().arg("ps"));
    assert!(line.starts_with("ID "), "{line:?}");
    assert_ended_by_sigpipe("ps", &out);
    let (line, out) = first_line_then_close(env.cmd().args(["ps", "--json"]));
    assert_eq!(line, "[\n");
    assert_ended_by_sigpipe("ps --json", &out);

    // Every other printer, its reader gone before it writes.
    let config = common::config("");
    let config = config.path.to_str().unwrap();
    for args in [
        &["ps"][..],
        &["ps", "-q"],
        &["status", "pipe-00"],
        &["status", "--json", "pipe-00"],
        &["wait", "pipe-00"],
        &["stats", "pipe-live"],
        &["stats", "--json", "pipe-live"],
        &["top", "--batch", "--iterations", "1"],
        &["state"],
        &["config"],
        &["--config", config, "config", "--json"],
        &["image", "ls"],
        &["recover", "--json"],
        &["--help"],
        &["ps", "--help"],
    ] {
        assert_ended_by_sigpipe(
            &format!("{args:?}"),
            &into_closed_pipe(env.cmd().args(args)),
        );
    }
    // Nothing was disturbed: the live container still runs.
    assert_eq!(env.status_json("pipe-live")["state"], "RUNNING");
}

#[test]
fn privileged_logs_of_a_large_output_cut_short_end_as_a_pipeline_member() {
    if !require_root("privileged_logs_of_a_large_output_cut_short_end_as_a_pipeline_member") {
        return;
    }
    let env = Env::new();
    // About 600 KB of output, far more than any pipe holds.
    env.detach("big", &["seq", "1", "100000"]);
    assert_eq!(env.wait_json("big")["exit_code"], 0);
    for args in [
        &["logs", "big"][..],
        &["logs", "--follow", "big"],
        &["logs", "--stdout", "big"],
    ] {
        let (line, out) = first_line_then_close(env.cmd().args(args));
        assert_eq!(line, "1\n", "{args:?}");
        assert_ended_by_sigpipe(&format!("{args:?}"), &out);
    }
    // `phobos run` in the foreground gives the pipe's end to the command
    // (tested in first_contact); `-d` prints the ID and ends the same way.
    let out = into_closed_pipe(env.cmd().args(["run", "-d", "--id", "after", "--", "true"]));
    assert_ended_by_sigpipe("run -d", &out);
    assert_eq!(env.wait_json("after")["exit_code"], 0);
}

/// The signals a process ignores and blocks, from /proc/self/status
/// (`SigIgn` and `SigBlk` lines) as the command in a container prints them.
fn ignored_and_blocked(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines.sort_unstable();
    lines
}

#[test]
fn privileged_the_container_command_starts_with_every_signal_at_its_default() {
    if !require_root("privileged_the_container_command_starts_with_every_signal_at_its_default") {
        return;
    }
    let env = Env::new();
    let probe = ["grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status"];
    let expected = ["SigBlk:\t0000000000000000", "SigIgn:\t0000000000000000"];
    // phobos itself ignores SIGPIPE (Rust does) and here SIGHUP too, as
    // under nohup: neither reaches the command.
    let mut run = env.cmd();
    run.args(["run", "--id", "sigs", "--"]).args(probe);
    // SAFETY: signal(2) is async-signal-safe; it only sets a disposition
    // in the child before exec.
    unsafe {
        run.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let out = run.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(ignored_and_blocked(&text), expected, "run: {text}");

    // A command exec'd into a running container, the same.
    env.detach("sigs-live", &["sleep", "600"]);
    assert!(eventually(
        PATIENCE,
        || env.status_json("sigs-live")["state"] == "RUNNING"
    ));
    let mut exec = env.cmd();
    exec.args(["exec", "sigs-live", "--"]).args(probe);
    // SAFETY: as above.
    unsafe {
        exec.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let out = exec.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(ignored_and_blocked(&text), expected, "exec: {text}");
}
