//! Terminals, for real (root): `phobos` driven on the slave of a real
//! pseudo-terminal this test holds the master of (as a terminal emulator
//! would), for `run -it`, `exec -it` and `attach`: the command's own
//! `/dev/pts` terminal, the caller's size, a resize (TIOCSWINSZ on the
//! outer terminal), the exit code, detach and re-attach, a second input
//! client refused, a client that stops reading, and `-t` without a
//! terminal.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    Env, PATIENCE, busybox_rootfs, eventually, inits_of, kill_stopped_at, require_root,
    spawn_stopped_at,
};
use phobos_tty::WindowSize;
use phobos_tty::pty::{self, HOST_PTMX};

/// `phobos` running on the slave of a terminal whose master we hold.
struct Term {
    master: File,
    child: Child,
    out: Arc<Mutex<Vec<u8>>>,
    /// Says when the reader saw the terminal's end.
    drained: std::sync::mpsc::Receiver<()>,
}

impl Term {
    /// `phobos ARGS…` with `env`'s options on a new terminal of `size`.
    fn phobos(env: &Env, args: &[&str], size: WindowSize) -> Self {
        let mut cmd = env.cmd();
        cmd.args(args);
        Self::spawn(cmd, size)
    }

    /// Starts `cmd` as the session leader of a new terminal of `size`.
    fn spawn(mut cmd: Command, size: WindowSize) -> Self {
        let pair = pty::open_pair(Path::new(HOST_PTMX)).expect("a host terminal");
        pty::set_window(pair.master.as_fd(), size).unwrap();
        cmd.stdin(Stdio::from(pair.slave.try_clone().unwrap()))
            .stdout(Stdio::from(pair.slave.try_clone().unwrap()))
            .stderr(Stdio::from(pair.slave));
        // SAFETY: setsid and ioctl are async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        drop(cmd);
        let master = File::from(pair.master);
        let out = Arc::new(Mutex::new(Vec::new()));
        let (mut reader, sink) = (master.try_clone().unwrap(), out.clone());
        let (done, drained) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once every slave is closed.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
            let _ = done.send(());
        });
        Self {
            master,
            child,
            out,
            drained,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    /// Waits until the screen shows `needle` (`n` times).
    fn expect_n(&self, needle: &str, n: usize) {
        assert!(
            eventually(PATIENCE, || self.text().matches(needle).count() >= n),
            "never saw {needle:?} x{n}; the terminal shows {:?}",
            self.text()
        );
    }

    fn expect(&self, needle: &str) {
        self.expect_n(needle, 1);
    }

    fn type_in(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).unwrap();
    }

    fn resize(&self, size: WindowSize) {
        pty::set_window(self.master.as_fd(), size).unwrap();
    }

    fn finish(mut self) -> (ExitStatus, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The reader drains what is left, up to the hangup.
                let _ = self.drained.recv_timeout(PATIENCE);
                return (status, self.text());
            }
            if start.elapsed() > PATIENCE {
                let _ = self.child.kill();
                panic!("phobos did not exit; the terminal shows {:?}", self.text());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

const SIZE: WindowSize = WindowSize {
    rows: 31,
    columns: 97,
};
const RESIZED: WindowSize = WindowSize {
    rows: 42,
    columns: 133,
};

/// The `/dev/pts/N` lines the command printed.
fn pts_lines(screen: &str) -> Vec<String> {
    screen
        .split(['\r', '\n'])
        .filter(|l| l.starts_with("/dev/pts/"))
        .map(str::to_owned)
        .collect()
}

/// A script that shows its terminal and size, waits for a line, shows the
/// size again and exits with `code`.
fn probe(code: i32) -> String {
    format!("tty; stty size; echo READY; read x; stty size; echo \"line:$x\"; exit {code}")
}

#[test]
fn privileged_run_it_gives_the_command_its_own_terminal_size_resize_and_exit_code() {
    if !require_root(
        "privileged_run_it_gives_the_command_its_own_terminal_size_resize_and_exit_code",
    ) {
        return;
    }
    let env = Env::new();
    let mut term = Term::phobos(
        &env,
        &["run", "-it", "--id", "fg", "--", "sh", "-c", &probe(5)],
        SIZE,
    );
    term.expect("READY");
    let screen = term.text();
    let outer = std::fs::read_link(format!("/proc/{}/fd/0", term.child.id())).unwrap();
    let inner = pts_lines(&screen);
    assert_eq!(inner.len(), 1, "{screen:?}");
    assert_ne!(Path::new(&inner[0]), outer, "a terminal of its own");
    assert!(screen.contains("31 97"), "{screen:?}");
    term.resize(RESIZED);
    term.type_in(b"hello\r");
    let (status, screen) = term.finish();
    assert!(screen.contains("42 133"), "{screen:?}");
    assert!(screen.contains("line:hello"), "{screen:?}");
    assert_eq!(status.code(), Some(5), "{screen:?}");
    // Output is also logged in the sandbox.
    let log = std::fs::read_to_string(env.sandbox("fg").join("stdout")).unwrap();
    assert!(
        log.contains("/dev/pts/") && log.contains("line:hello"),
        "{log:?}"
    );
}

#[test]
fn privileged_raw_mode_is_restored_when_the_command_ends_or_fails() {
    if !require_root("privileged_raw_mode_is_restored_when_the_command_ends_or_fails") {
        return;
    }
    let env = Env::new();
    for script in ["exit 0", "kill -9 $$"] {
        let pair = pty::open_pair(Path::new(HOST_PTMX)).unwrap();
        let before = nix::sys::termios::tcgetattr(pair.slave.as_fd()).unwrap();
        let status = env
            .cmd()
            .args(["run", "-it", "--", "sh", "-c", script])
            .stdin(Stdio::from(pair.slave.try_clone().unwrap()))
            .stdout(Stdio::from(pair.slave.try_clone().unwrap()))
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.code().is_some(), "{status:?}");
        let after = nix::sys::termios::tcgetattr(pair.slave.as_fd()).unwrap();
        assert_eq!(before.local_flags, after.local_flags, "{script}");
        assert_eq!(before.input_flags, after.input_flags, "{script}");
        assert_eq!(before.output_flags, after.output_flags, "{script}");
        drop(pair.master);
    }
}

#[test]
fn privileged_run_it_in_a_root_filesystem_uses_its_private_devpts() {
    if !require_root("privileged_run_it_in_a_root_filesystem_uses_its_private_devpts") {
        return;
    }
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let root = busybox_rootfs(dir.path());
    let mut cmd = env.cmd();
    cmd.args(["run", "-it", "--rootfs"]).arg(&root).args([
        "--",
        "/bin/sh",
        "-c",
        "tty; ls /dev/pts; stty size; exit 3",
    ]);
    let term = Term::spawn(cmd, SIZE);
    let (status, screen) = term.finish();
    assert_eq!(status.code(), Some(3), "{screen:?}");
    // A fresh devpts instance: its first terminal, alone in it.
    assert_eq!(
        pts_lines(&screen),
        vec!["/dev/pts/0".to_owned()],
        "{screen:?}"
    );
    assert!(screen.contains("31 97"), "{screen:?}");
    let listing: Vec<&str> = screen.split_whitespace().collect();
    assert!(
        listing.contains(&"0") && listing.contains(&"ptmx"),
        "{screen:?}"
    );
}

#[test]
fn privileged_exec_it_gives_the_command_a_terminal_in_the_container() {
    if !require_root("privileged_exec_it_gives_the_command_a_terminal_in_the_container") {
        return;
    }
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let root = busybox_rootfs(dir.path());
    env.ok(&[
        "run",
        "-d",
        "--id",
        "box",
        "--rootfs",
        root.to_str().unwrap(),
        "--",
        "/bin/sleep",
        "1000",
    ]);
    let mut term = Term::phobos(
        &env,
        &["exec", "-it", "box", "--", "/bin/sh", "-c", &probe(4)],
        SIZE,
    );
    term.expect("READY");
    // Allocated from the container's own devpts.
    assert_eq!(pts_lines(&term.text()), vec!["/dev/pts/0".to_owned()]);
    assert!(term.text().contains("31 97"), "{:?}", term.text());
    term.resize(RESIZED);
    term.type_in(b"there\r");
    let (status, screen) = term.finish();
    assert!(
        screen.contains("42 133") && screen.contains("line:there"),
        "{screen:?}"
    );
    assert_eq!(status.code(), Some(4), "{screen:?}");
    env.ok(&["destroy", "box"]);
}

#[test]
fn privileged_attach_detaches_and_reattaches_and_refuses_a_second_input() {
    if !require_root("privileged_attach_detaches_and_reattaches_and_refuses_a_second_input") {
        return;
    }
    let env = Env::new();
    let echo = "while read l; do echo \"got:$l\"; stty size; done; exit 6";
    // No terminal needed to start it detached.
    env.ok(&["run", "-d", "-t", "--id", "tt", "--", "sh", "-c", echo]);
    let socket = env.container_dir("tt").join("io_switchboard.sock");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let mut first = Term::phobos(&env, &["attach", "tt"], SIZE);
    first.type_in(b"one\r");
    first.expect("got:one");
    first.expect("31 97");
    first.type_in(&[0x10, 0x11]);
    let (status, screen) = first.finish();
    assert_eq!(status.code(), Some(0), "{screen:?}");
    assert!(screen.contains("detached from tt"), "{screen:?}");

    let mut second = Term::phobos(&env, &["attach", "tt"], RESIZED);
    second.type_in(b"two\r");
    second.expect("got:two");
    second.expect("42 133");
    // Meanwhile a second input client is turned away in one line.
    let busy = env.run(&["attach", "tt"]);
    assert_eq!(busy.status.code(), Some(1));
    let err = String::from_utf8_lossy(&busy.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("another client is attached to the input"),
        "{err}"
    );
    second.resize(SIZE);
    second.type_in(b"three\r");
    second.expect("got:three");
    second.expect_n("31 97", 1);
    // ^D at the start of a line: the command's `read` sees the end.
    second.type_in(&[0x04]);
    let (status, screen) = second.finish();
    assert_eq!(status.code(), Some(6), "{screen:?}");
    let log = std::fs::read_to_string(env.sandbox("tt").join("stdout")).unwrap();
    for word in ["got:one", "got:two", "got:three"] {
        assert!(log.contains(word), "{log:?}");
    }
    assert!(
        eventually(PATIENCE, || !socket.exists()),
        "the switchboard removes its socket when the container ended"
    );
}

#[test]
fn privileged_a_client_that_stops_reading_does_not_stall_the_command() {
    if !require_root("privileged_a_client_that_stops_reading_does_not_stall_the_command") {
        return;
    }
    let env = Env::new();
    let script = "while [ ! -e go ]; do sleep 0.05; done; head -c 30000000 /dev/zero | tr '\\0' a; echo; echo END";
    env.ok(&["run", "-d", "-t", "--id", "flood", "--", "sh", "-c", script]);
    // Attached, never read: its stdout is a pipe nobody empties.
    let (_keep_reader, writer) = std::io::pipe().unwrap();
    let (stdin_reader, _keep_writer) = std::io::pipe().unwrap();
    let mut stalled = env
        .cmd()
        .args(["attach", "flood"])
        .stdin(Stdio::from(stdin_reader))
        .stdout(Stdio::from(writer))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(env.sandbox("flood").join("go"), b"").unwrap();
    let started = Instant::now();
    let waited = env.wait_json("flood");
    assert_eq!(waited["exit_code"], 0, "{waited}");
    assert!(started.elapsed() < PATIENCE);
    // All of it, across the files the `logrotate` logger (the default,
    // 10 MB files) rotated it into.
    let log = env
        .cmd()
        .args(["logs", "--stdout", "flood"])
        .output()
        .unwrap()
        .stdout;
    assert!(env.sandbox("flood").join("stdout.2").exists());
    assert!(log.len() > 30_000_000, "{}", log.len());
    assert!(String::from_utf8_lossy(&log[log.len() - 16..]).contains("END"));
    // The stalled client itself is stuck writing to its full pipe.
    let _ = stalled.kill();
    let _ = stalled.wait();
}

#[test]
fn privileged_t_without_a_terminal_is_one_line_and_exit_2() {
    if !require_root("privileged_t_without_a_terminal_is_one_line_and_exit_2") {
        return;
    }
    let env = Env::new();
    for args in [
        &["run", "-t", "--", "true"][..],
        &["run", "-it", "--", "true"][..],
        &["exec", "-it", "nobody-here", "--", "true"][..],
    ] {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("needs a terminal"), "{err}");
    }
    assert!(
        !env.runtime.path().join("containers").exists() || {
            std::fs::read_dir(env.runtime.path().join("containers"))
                .unwrap()
                .next()
                .is_none()
        }
    );
    // A Docker container: one line, before anything is created.
    let out = env.run(&[
        "run",
        "-d",
        "-t",
        "--docker-image",
        "busybox:local",
        "--",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--tty does not apply to Docker containers"),
        "{err}"
    );
    // Attaching to a container without a terminal says so.
    env.detach("plain", &["sleep", "1000"]);
    let out = env.run(&["attach", "plain"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no terminal"));
    env.ok(&["destroy", "plain"]);
}

/// Switchboard processes of an environment (their socket path names its
/// runtime directory).
fn switchboards_of(env: &Env) -> Vec<u32> {
    let runtime = env.runtime.path().display().to_string();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.get(1).is_some_and(|a| a == "switchboard")
            && args.get(2).is_some_and(|a| a.starts_with(&runtime))
            && common::alive(i64::from(pid))
        {
            out.push(pid);
        }
    }
    out
}

/// The recorded switchboard of a container: its pid.
fn switchboard_pid(env: &Env, id: &str) -> i64 {
    let record = std::fs::read_to_string(env.container_dir(id).join("io_switchboard.pid"))
        .unwrap_or_else(|e| panic!("{id}: no switchboard record: {e}"));
    record.split_whitespace().next().unwrap().parse().unwrap()
}

/// The switchboard ends with its container on every path, and neither it
/// nor its socket is left once the container's end is recorded: the
/// command's exit (`wait` returns), destroy, and a launcher SIGKILLed
/// after it started the switchboard (recover adopts the container; its
/// terminal still works) or before (the command loses its terminal and
/// ends; recover records it).
#[test]
fn privileged_the_switchboard_ends_with_its_container_on_every_path() {
    if !require_root("privileged_the_switchboard_ends_with_its_container_on_every_path") {
        return;
    }
    let env = Env::new();
    let gone = |id: &str, pid: i64| {
        let dir = env.container_dir(id);
        assert!(!common::alive(pid), "{id}: switchboard {pid} outlived it");
        for name in ["io_switchboard.sock", "io_switchboard.pid"] {
            assert!(!dir.join(name).exists(), "{id}: {name} left");
        }
    };

    // The command's exit.
    env.ok(&[
        "run",
        "-d",
        "-t",
        "--id",
        "sb-exit",
        "--",
        "sh",
        "-c",
        // Ends when told: a fixed sleep could end it (and its switchboard
        // and record) before the checks below on a loaded machine.
        "while [ ! -e go ]; do sleep 0.05; done; exit 3",
    ]);
    let pid = switchboard_pid(&env, "sb-exit");
    assert!(common::alive(pid));
    std::fs::write(env.sandbox("sb-exit").join("go"), b"").unwrap();
    let waited = env.ok(&["wait", "sb-exit"]);
    assert!(waited.contains("exited with status 3"), "{waited:?}");
    gone("sb-exit", pid);

    // Destroy.
    env.ok(&[
        "run",
        "-d",
        "-t",
        "--id",
        "sb-destroy",
        "--",
        "sleep",
        "600",
    ]);
    let pid = switchboard_pid(&env, "sb-destroy");
    assert!(common::alive(pid));
    env.ok(&["destroy", "sb-destroy"]);
    gone("sb-destroy", pid);

    // The launcher SIGKILLed right after it started the switchboard: the
    // container and its terminal live on; recover adopts it; destroy ends
    // the switchboard.
    kill_stopped_at(
        env.cmd()
            .args(["run", "-d", "-t", "--id", "sb-kill", "--", "sh", "-c"])
            .arg("while read l; do echo \"got:$l\"; done"),
        "switchboard",
    );
    env.ok(&["recover"]);
    assert_eq!(env.status_json("sb-kill")["state"], "RUNNING");
    let pid = switchboard_pid(&env, "sb-kill");
    assert!(common::alive(pid), "the switchboard died with its launcher");
    let socket = env.container_dir("sb-kill").join("io_switchboard.sock");
    let mut client = phobos_tty::Client::connect(
        &socket,
        phobos_tty::Attach {
            input: true,
            output: true,
            size: None,
        },
    )
    .unwrap();
    client.send(b"after-recover\n").unwrap();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("got:after-recover") {
        seen.extend(client.recv().unwrap().expect("the terminal ended"));
    }
    drop(client);
    env.ok(&["destroy", "sb-kill"]);
    gone("sb-kill", pid);

    // SIGKILLed before the switchboard existed (init forked, not yet
    // released): recover destroys the interrupted launch.
    kill_stopped_at(
        env.cmd()
            .args(["run", "-d", "-t", "--id", "sb-early", "--", "sleep", "600"]),
        "forked",
    );
    env.ok(&["recover"]);
    assert!(
        !env.container_dir("sb-early")
            .join("io_switchboard.sock")
            .exists()
    );

    assert_eq!(switchboards_of(&env), Vec::<u32>::new());
}

/// A destroy that lands after the switchboard started but before its pid
/// was recorded (the launcher frozen in between) leaves no switchboard:
/// the launcher, on recording it, finds the container ended and ends it;
/// it does not live on for its drain after init's exit.
#[test]
fn privileged_a_destroy_before_the_switchboard_is_recorded_leaves_no_switchboard() {
    if !require_root(
        "privileged_a_destroy_before_the_switchboard_is_recorded_leaves_no_switchboard",
    ) {
        return;
    }
    let env = Env::new();
    let launcher = env
        .cmd()
        .args(["run", "-d", "-t", "--id", "sb-race", "--", "sleep", "600"])
        .env("PHOBOS_STOP_AT", "switchboard-started")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let launcher_pid = launcher.id();
    assert!(
        eventually(PATIENCE, || common::proc_state(launcher_pid) == Some('T')),
        "the launcher never reached the switchboard-started stop point"
    );
    let dir = env.container_dir("sb-race");
    assert!(
        !dir.join("io_switchboard.pid").exists(),
        "recorded before the stop point"
    );
    let running = switchboards_of(&env);
    assert_eq!(running.len(), 1, "one switchboard runs: {running:?}");
    env.ok(&["destroy", "sb-race"]);
    // SAFETY: kill(2) on the launcher we spawned (still our unreaped child).
    assert_eq!(unsafe { libc::kill(launcher_pid as i32, libc::SIGCONT) }, 0);
    let out = launcher.wait_with_output().unwrap();
    // Gone when the launch returns, not seconds later.
    assert_eq!(switchboards_of(&env), Vec::<u32>::new());
    assert!(
        !common::alive(i64::from(running[0])),
        "switchboard {} outlived its destroyed container",
        running[0]
    );
    for name in ["io_switchboard.sock", "io_switchboard.pid"] {
        assert!(!dir.join(name).exists(), "{name} left");
    }
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The launcher SIGKILLed after it started the switchboard but before it
/// recorded it: the unrecorded switchboard never serves and ends at once
/// (it used to serve until seconds after the container's init ended, out
/// of reach of destroy and recover); recover and destroy then leave
/// nothing behind.
#[test]
fn privileged_a_launcher_killed_before_recording_its_switchboard_leaves_none() {
    if !require_root("privileged_a_launcher_killed_before_recording_its_switchboard_leaves_none") {
        return;
    }
    let env = Env::new();
    let mut launcher = spawn_stopped_at(
        env.cmd()
            .args(["run", "-d", "-t", "--id", "sb-lost", "--", "sleep", "600"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        "switchboard-started",
    );
    let dir = env.container_dir("sb-lost");
    assert!(!dir.join("io_switchboard.pid").exists());
    let running = switchboards_of(&env);
    assert_eq!(running.len(), 1, "one switchboard runs: {running:?}");
    launcher.kill().unwrap();
    launcher.wait().unwrap();
    assert!(
        eventually(PATIENCE, || switchboards_of(&env).is_empty()),
        "the unrecorded switchboard {running:?} lives on"
    );
    assert!(
        eventually(PATIENCE, || !dir.join("io_switchboard.sock").exists()),
        "its socket is left"
    );
    env.ok(&["recover"]);
    env.run(&["destroy", "sb-lost"]);
    assert!(switchboards_of(&env).is_empty());
    assert!(inits_of(env.runtime.path()).is_empty(), "an init is left");
    assert!(env.cgroup_dirs("sb-lost").is_empty(), "cgroups are left");
}
