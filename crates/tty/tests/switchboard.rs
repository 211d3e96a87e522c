//! The switchboard over a real pseudo-terminal from the host's /dev/ptmx,
//! with a real process on the slave: fan-out, the single input slot, the
//! resize, the log, and a client that stops reading; and over a real
//! command's pipes (stdout and stderr logged apart, EOF closing stdin).

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use phobos_tty::pty::{self, HOST_PTMX};
use phobos_tty::server::{self, Options, Switchboard};
use phobos_tty::{Attach, Client, WindowSize};

/// Starts `sh -c SCRIPT` on a new terminal's slave as its controlling
/// terminal; returns the master and the child.
fn spawn_on_pty(script: &str) -> Option<(OwnedFd, std::process::Child)> {
    let pair = match pty::open_pair(Path::new(HOST_PTMX)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("skipped: {e}");
            return None;
        }
    };
    pty::set_window(
        pair.master.as_fd(),
        WindowSize {
            rows: 24,
            columns: 80,
        },
    )
    .unwrap();
    let slave = pair.slave;
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", script])
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    // SAFETY: setsid and ioctl(TIOCSCTTY) are async-signal-safe.
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
    Some((pair.master, child))
}

fn pidfd(child: &std::process::Child) -> OwnedFd {
    // SAFETY: pidfd_open(2) of our own child; the result is checked.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) };
    assert!(fd >= 0, "{}", std::io::Error::last_os_error());
    // SAFETY: a new descriptor we own.
    unsafe { std::os::fd::FromRawFd::from_raw_fd(fd as i32) }
}

fn read_all(client: &mut Client) -> Vec<u8> {
    let mut all = Vec::new();
    while let Some(chunk) = client.recv().unwrap() {
        all.extend(chunk);
    }
    all
}

#[test]
fn input_resize_and_output_reach_the_terminal_and_the_log() {
    let Some((master, mut child)) = spawn_on_pty("read line; echo \"got:$line\"; stty size; tty")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("sb.sock");
    let listener = server::bind(&sock).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let log_path = dir.path().join("stdout");
    let opts = Options {
        log: Some(std::fs::File::create(&log_path).unwrap().into()),
        wait_for_client: true,
        until: Some(pidfd(&child)),
        listener: Some(listener),
        ..Options::default()
    };
    let board = Switchboard::new(master, opts).unwrap();
    let server = std::thread::spawn(move || board.run().unwrap());

    let size = WindowSize {
        rows: 37,
        columns: 91,
    };
    let mut main = Client::connect(
        &sock,
        Attach {
            input: true,
            output: true,
            size: Some(size),
        },
    )
    .unwrap();
    // A second input client is refused; an output-only one is welcome.
    let busy = Client::connect(
        &sock,
        Attach {
            input: true,
            output: true,
            size: None,
        },
    )
    .unwrap_err();
    assert!(busy.is_input_busy(), "{busy}");
    let mut watcher = Client::connect(
        &sock,
        Attach {
            input: false,
            output: true,
            size: None,
        },
    )
    .unwrap();
    main.send(b"hello\n").unwrap();
    let seen = String::from_utf8_lossy(&read_all(&mut main)).into_owned();
    assert!(seen.contains("got:hello"), "{seen:?}");
    assert!(seen.contains("37 91"), "{seen:?}");
    assert!(seen.contains("/dev/pts/"), "{seen:?}");
    let also = String::from_utf8_lossy(&read_all(&mut watcher)).into_owned();
    assert!(also.contains("got:hello"), "{also:?}");
    assert!(child.wait().unwrap().success());
    let summary = server.join().unwrap();
    assert_eq!(summary.slow_dropped, 0);
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("got:hello") && log.contains("37 91"),
        "{log:?}"
    );
}

#[test]
fn a_client_that_stops_reading_never_stalls_the_command() {
    // 64 MB of output; the stalled client's queue is bounded at 256 KiB.
    let Some((master, mut child)) = spawn_on_pty("head -c 67108864 /dev/zero; echo; echo DONE")
    else {
        return;
    };
    let (ours, theirs) = UnixStream::pair().unwrap();
    let (ours2, theirs2) = UnixStream::pair().unwrap();
    let mut board = Switchboard::new(
        master,
        Options {
            until: Some(pidfd(&child)),
            wait_for_client: true,
            output_limit: 256 * 1024,
            ..Options::default()
        },
    )
    .unwrap();
    board.add_client(theirs).unwrap();
    board.add_client(theirs2).unwrap();
    let server = std::thread::spawn(move || board.run().unwrap());
    // The reader attaches first (over() returns once it is accepted), so
    // the held output starts flowing to it: a client attaching later
    // misses what came before, as on a terminal.
    let mut reader = Client::over(
        ours2,
        Attach {
            input: false,
            output: true,
            size: None,
        },
    )
    .unwrap();
    // Attached and then never read again.
    let _stalled = Client::over(
        ours,
        Attach {
            input: false,
            output: true,
            size: None,
        },
    )
    .unwrap();
    let started = Instant::now();
    let mut total = 0usize;
    let mut tail = Vec::new();
    while let Some(chunk) = reader.recv().unwrap() {
        total += chunk.len();
        tail.extend_from_slice(&chunk[chunk.len().saturating_sub(16)..]);
        if tail.len() > 64 {
            tail.drain(..tail.len() - 64);
        }
    }
    let status = child.wait().unwrap();
    assert!(status.success());
    let summary = server.join().unwrap();
    assert!(total >= 64 << 20, "read {total} bytes; {summary:?}");
    assert!(String::from_utf8_lossy(&tail).contains("DONE"));
    assert_eq!(summary.slow_dropped, 1);
    assert!(started.elapsed() < Duration::from_secs(120));
}

#[test]
fn a_stalled_stream_reads_as_closed_after_it_was_dropped() {
    let Some((master, mut child)) = spawn_on_pty("head -c 8388608 /dev/zero") else {
        return;
    };
    let (ours, theirs) = UnixStream::pair().unwrap();
    let mut board = Switchboard::new(
        master,
        Options {
            until: Some(pidfd(&child)),
            output_limit: 128 * 1024,
            ..Options::default()
        },
    )
    .unwrap();
    board.add_client(theirs).unwrap();
    let server = std::thread::spawn(move || board.run().unwrap());
    let mut stalled = Client::over(
        ours,
        Attach {
            input: false,
            output: true,
            size: None,
        },
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
    server.join().unwrap();
    // What was queued arrives, then the end: never all 8 MB.
    let mut raw = stalled.recv();
    let mut got = 0;
    while let Ok(Some(chunk)) = raw {
        got += chunk.len();
        raw = stalled.recv();
    }
    assert!(got < 8 << 20, "got {got}");
}

#[test]
fn a_socket_path_too_long_for_sun_path_still_binds_and_connects() {
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("d".repeat(120)).join("e".repeat(60));
    std::fs::create_dir_all(&deep).unwrap();
    let sock = deep.join("io_switchboard.sock");
    assert!(sock.as_os_str().len() > 108);
    let listener = server::bind(&sock).unwrap();
    assert!(sock.exists());
    let Some((master, mut child)) = spawn_on_pty("echo LONG") else {
        return;
    };
    let board = Switchboard::new(
        master,
        Options {
            listener: Some(listener),
            wait_for_client: true,
            until: Some(pidfd(&child)),
            ..Options::default()
        },
    )
    .unwrap();
    let server = std::thread::spawn(move || board.run().unwrap());
    let mut client = Client::connect(
        &sock,
        Attach {
            input: false,
            output: true,
            size: None,
        },
    )
    .unwrap();
    let seen = String::from_utf8_lossy(&read_all(&mut client)).into_owned();
    let summary = server.join().unwrap();
    assert!(seen.contains("LONG"), "{seen:?} {summary:?}");
    assert!(child.wait().unwrap().success());
}

/// Over pipes (a DEBUG container without a terminal): stdout and stderr
/// reach the reader apart (`DATA`, `ERR_DATA`) and their own logs, a
/// client that stops reading is dropped without stalling the command, and
/// the input client's EOF closes the command's stdin.
#[test]
fn over_pipes_a_stalled_client_never_stalls_the_command_and_eof_closes_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let (out_log, err_log) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = Command::new("/bin/sh")
        .args([
            "-c",
            "head -c 8388608 /dev/zero; echo oops >&2; while read l; do echo \"got:$l\"; done; echo DONE",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let io = server::Io::Pipes {
        stdin: OwnedFd::from(child.stdin.take().unwrap()),
        stdout: OwnedFd::from(child.stdout.take().unwrap()),
        stderr: OwnedFd::from(child.stderr.take().unwrap()),
    };
    let (ours, theirs) = UnixStream::pair().unwrap();
    let (ours2, theirs2) = UnixStream::pair().unwrap();
    let mut board = Switchboard::with_io(
        io,
        Options {
            log: Some(std::fs::File::create(&out_log).unwrap().into()),
            err_log: Some(std::fs::File::create(&err_log).unwrap().into()),
            until: Some(pidfd(&child)),
            wait_for_client: true,
            output_limit: 128 * 1024,
            ..Options::default()
        },
    )
    .unwrap();
    board.add_client(theirs).unwrap();
    board.add_client(theirs2).unwrap();
    let server = std::thread::spawn(move || board.run().unwrap());
    // The reader first: the output held for the first client flows to it.
    let mut both = Client::over(
        ours2,
        Attach {
            input: true,
            output: true,
            size: None,
        },
    )
    .unwrap();
    let _stalled = Client::over(
        ours,
        Attach {
            input: false,
            output: true,
            size: None,
        },
    )
    .unwrap();
    let mut seen = Vec::new();
    let mut total = 0usize;
    let mut sent = false;
    while let Some(chunk) = both.recv().unwrap() {
        total += chunk.len();
        seen.extend(chunk.iter().copied().filter(|b| *b != 0));
        if !sent && String::from_utf8_lossy(&seen).contains("oops") {
            both.send(b"hi\n").unwrap();
            both.close_input().unwrap();
            sent = true;
        }
    }
    assert!(child.wait().unwrap().success());
    let text = String::from_utf8_lossy(&seen).into_owned();
    assert!(
        text.contains("got:hi") && text.ends_with("DONE\n"),
        "{text:?}"
    );
    assert!(total >= 8 << 20, "read {total} bytes");
    let summary = server.join().unwrap();
    assert_eq!(summary.slow_dropped, 1);
    let logged = std::fs::read(&out_log).unwrap();
    assert_eq!(logged.len(), (8 << 20) + "got:hi\nDONE\n".len());
    assert_eq!(std::fs::read_to_string(&err_log).unwrap(), "oops\n");
}
