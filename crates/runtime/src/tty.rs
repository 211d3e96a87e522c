//! Terminals of Mesos containers: the per-container switchboard process.
//! A DEBUG container without a terminal gets one too, over pipes: init
//! sends the command's stdin, stdout and stderr pipes instead of a master.
//!
//! A container launched with a terminal ([`phobos_core::TtyInfo`]) gets one
//! `phobos switchboard` process, started by the door right after the
//! launch: it receives the terminal's master from the container's init
//! (`SCM_RIGHTS` on the socket the launcher gave init), logs the output to
//! the sandbox's `stdout`, and serves clients on
//! `<runtime entry>/io_switchboard.sock` (0600, in the 0700 entry). It is
//! tied to the container's init through a pidfd: when init exits it drains
//! the terminal briefly, removes its socket and exits. Its pid is recorded
//! in the runtime entry (`phobos_mesos::switchboard`), and the
//! containerizer's teardown, which every end of a container goes through
//! (the command's exit, destroy, recover after the launching process was
//! killed), waits for it briefly (not at all on destroy), kills it and
//! removes its socket: it never outlives its container's record of the
//! end.
//!
//! The process gets fixed descriptors and nothing else: 3 the socket the
//! master arrives on, 4 the listening socket, 5 the log, 6 init's pidfd,
//! 7 the read end of its *go pipe*. It serves nothing until the door has
//! recorded its pid and writes a byte there ([`record`]); a door killed
//! between the switchboard's start and its record closes the pipe with no
//! byte, and the unrecorded switchboard exits at once, so no switchboard
//! nothing knows of lives on with the container (its terminal is gone with
//! it: the command gets the hangup, as from any terminal whose master
//! closed).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use phobos_core::logrotate::{LogFile, RotatingFile};
use phobos_core::{ContainerDir, ContainerState, SafeDir};
use phobos_tty::server::{Io, Options, Switchboard};

/// The subcommand the binary dispatches to [`switchboard_main`].
pub const SUBCOMMAND: &str = "switchboard";
const WAIT_FLAG: &str = "--wait-for-client";
/// `--rotate MAX_SIZE MAX_FILES`: the log descriptor is the sandbox
/// directory, and the log rotates (the `logrotate` logger).
const ROTATE_FLAG: &str = "--rotate";
/// `--pipes`: the command's three pipes arrive instead of a terminal's
/// master (a DEBUG container without a terminal); the log descriptor is
/// the sandbox directory, and stdout and stderr are logged apart.
const PIPES_FLAG: &str = "--pipes";
/// `--rotate-stderr MAX_SIZE MAX_FILES`: with `--pipes`, stderr's limits.
const ROTATE_STDERR_FLAG: &str = "--rotate-stderr";

const CHANNEL_FD: RawFd = 3;
const LISTENER_FD: RawFd = 4;
const LOG_FD: RawFd = 5;
const PIDFD_FD: RawFd = 6;
const GO_FD: RawFd = 7;

#[derive(Debug, thiserror::Error)]
pub enum SwitchboardError {
    #[error("failed to listen on {}: {source}", path.display())]
    Bind {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to open the sandbox's stdout for the terminal's log: {0}")]
    Log(#[from] phobos_core::SafeFsError),
    #[error("failed to start the terminal's switchboard {}: {source}", exe.display())]
    Spawn {
        exe: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The switchboard socket of a container's runtime entry.
pub fn socket_path(dir: &ContainerDir) -> PathBuf {
    dir.file(phobos_tty::SOCKET_NAME)
}

/// What a switchboard holds, and when it starts reading.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mode {
    /// Hold the output until the first client attached (bounded).
    pub wait_for_client: bool,
    /// The command's pipes, not a terminal.
    pub pipes: bool,
}

/// Starts the switchboard of a just-launched container; [`record`] makes
/// it known.
pub(crate) fn start(
    exe: &Path,
    dir: &ContainerDir,
    sandbox: &Path,
    channel: OwnedFd,
    init_pidfd: OwnedFd,
    Mode {
        wait_for_client,
        pipes,
    }: Mode,
    rotation: Option<phobos_core::LogRotation>,
) -> Result<Started, SwitchboardError> {
    let path = socket_path(dir);
    let listener = phobos_tty::server::bind(&path).map_err(|source| SwitchboardError::Bind {
        path: path.clone(),
        source,
    })?;
    // The terminal's output is the stdout stream: a plain file, or (the
    // `logrotate` logger) the sandbox directory, where the switchboard
    // rotates it.
    let log: OwnedFd = match (rotation, pipes) {
        (None, false) => SafeDir::open_trusted(sandbox)?
            .append_file("stdout", 0o644)?
            .into(),
        _ => SafeDir::open_trusted(sandbox)?.into_file().into(),
    };
    let stderr = SafeDir::open_trusted(sandbox)?.append_file("stderr", 0o644)?;
    // Above the fixed numbers, so no dup2 below overwrites a source.
    let high = |fd: RawFd| -> io::Result<OwnedFd> {
        // SAFETY: F_DUPFD_CLOEXEC duplicates a descriptor we hold.
        let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
        if new < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor we own.
        Ok(unsafe { OwnedFd::from_raw_fd(new) })
    };
    let spawn_err = |source| SwitchboardError::Spawn {
        exe: exe.to_owned(),
        source,
    };
    // Both ends close-on-exec: the switchboard gets the read end at
    // GO_FD, and only this process holds the write end.
    let (go_read, go) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| spawn_err(io::Error::from(e)))?;
    let sources = [
        high(channel.as_raw_fd()).map_err(spawn_err)?,
        high(listener.as_raw_fd()).map_err(spawn_err)?,
        high(log.as_raw_fd()).map_err(spawn_err)?,
        high(init_pidfd.as_raw_fd()).map_err(spawn_err)?,
        high(go_read.as_raw_fd()).map_err(spawn_err)?,
    ];
    drop(go_read);
    let raw: [RawFd; 5] = [
        sources[0].as_raw_fd(),
        sources[1].as_raw_fd(),
        sources[2].as_raw_fd(),
        sources[3].as_raw_fd(),
        sources[4].as_raw_fd(),
    ];
    let mut command = Command::new(exe);
    command.arg(SUBCOMMAND).arg(&path);
    if wait_for_client {
        command.arg(WAIT_FLAG);
    }
    if pipes {
        command.arg(PIPES_FLAG);
    }
    if let Some(rotation) = rotation {
        for (flag, stream) in [(ROTATE_FLAG, "stdout"), (ROTATE_STDERR_FLAG, "stderr")] {
            let limit = rotation.limit(stream);
            command
                .arg(flag)
                .arg(limit.max_size.to_string())
                .arg(limit.max_files.to_string());
        }
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr))
        .env_clear();
    // SAFETY: between fork and exec only async-signal-safe calls: setsid,
    // dup2 (which clears close-on-exec on the new number) and close_range.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            for (target, src) in [CHANNEL_FD, LISTENER_FD, LOG_FD, PIDFD_FD, GO_FD]
                .into_iter()
                .zip(raw)
            {
                if libc::dup2(src, target) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            phobos_mesos::launcher::close_from_on_exec(GO_FD + 1);
            Ok(())
        });
    }
    let child = command.spawn().map_err(spawn_err)?;
    Ok(Started { path, child, go })
}

/// A switchboard process started and not yet recorded.
#[derive(Debug)]
pub(crate) struct Started {
    pub path: PathBuf,
    child: std::process::Child,
    /// The write end of its go pipe: a byte once it is recorded.
    go: OwnedFd,
}

/// Records a just-started switchboard for the container's teardown, which
/// ends it on every path, and closes the window between its start and its
/// record: a destroy (or the command's end) whose teardown looked for the
/// record before it was written would miss it. Teardown moves the state
/// away from RUNNING before it reads the record (DESTROYING, or TERMINATED
/// at its end), and the record is written before the state is read here,
/// so at least one side sees the other: a container found DESTROYING has
/// its switchboard killed at once, as teardown would; one found
/// TERMINATED gives it [`phobos_mesos::switchboard::EXIT_GRACE`] to end by
/// itself, then kills it. Only a recorded switchboard of a running
/// container is told to go on (a byte on its go pipe). Returns where
/// clients connect, or `None` when the container ended already.
pub(crate) fn record(dir: &ContainerDir, started: Started) -> Option<PathBuf> {
    let Started {
        path,
        mut child,
        go,
    } = started;
    let pid = child.id() as i32;
    let ended = match phobos_mesos::switchboard::record(dir, pid) {
        Ok(()) => match dir.state() {
            Ok(Some(r)) => match r.state {
                ContainerState::Destroying => Some(Duration::ZERO),
                ContainerState::Terminated => Some(phobos_mesos::switchboard::EXIT_GRACE),
                _ => None,
            },
            // No state (a record removed under us) or an unreadable one:
            // nothing would ever end it.
            _ => Some(Duration::ZERO),
        },
        Err(e) => {
            tracing::warn!(container = %dir.id(), error = %e, "recording the switchboard's pid failed; stopping it");
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
    };
    if let Some(grace) = ended {
        tracing::debug!(container = %dir.id(), pid, "the container ended before its switchboard was recorded");
        // Told to go on only to drain what the command left (the
        // container ended by itself); killed at once when destroyed.
        if !grace.is_zero() {
            let _ = nix::unistd::write(&go, b"g");
        }
        drop(go);
        phobos_mesos::switchboard::stop(dir, grace);
        let _ = child.wait();
        return None;
    }
    if let Err(e) = nix::unistd::write(&go, b"g") {
        tracing::warn!(container = %dir.id(), error = %e, "the switchboard cannot be told to start; stopping it");
        drop(go);
        phobos_mesos::switchboard::stop(dir, Duration::ZERO);
        let _ = child.wait();
        return None;
    }
    drop(go);
    // Reaped by whoever outlives it: a thread here for a long-lived face
    // (the agent); a CLI that exits first leaves it to be re-parented.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Some(path)
}

/// `phobos switchboard SOCKET [--wait-for-client]`, with the descriptors
/// the door set up; returns the exit code.
pub fn switchboard_main() -> i32 {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(2).collect();
    let Some(socket) = args.first().map(PathBuf::from) else {
        eprintln!("phobos switchboard: started by the door only");
        return 2;
    };
    let wait_for_client = args.iter().skip(1).any(|a| a == WAIT_FLAG);
    let pipes = args.iter().skip(1).any(|a| a == PIPES_FLAG);
    let limit_after = |flag: &str| {
        args.iter().position(|a| a == flag).and_then(|i| {
            let number = |j: usize| args.get(j)?.to_str()?.parse::<u64>().ok();
            Some(phobos_core::logrotate::Limit {
                max_size: number(i + 1)?,
                max_files: u32::try_from(number(i + 2)?).ok()?,
            })
        })
    };
    let rotate = limit_after(ROTATE_FLAG);
    let rotate_stderr = limit_after(ROTATE_STDERR_FLAG);
    // Removed at the end only if it is still ours (not a later
    // container's of the same ID).
    let ours = inode(&socket);
    // SAFETY: the door put the go pipe's read end at this number for us.
    let go = unsafe { File::from_raw_fd(GO_FD) };
    if !told_to_go(go) {
        // Its launcher died before recording it: nothing would ever end
        // it, so it never serves.
        eprintln!("phobos switchboard: its launcher ended before recording it; not serving");
        if ours.is_some() && inode(&socket) == ours {
            let _ = std::fs::remove_file(&socket);
        }
        return 1;
    }
    let _ = nix::sys::signal::SigSet::empty().thread_set_mask();
    // SAFETY: the door put these descriptors at these numbers for us, and
    // nothing else in this fresh process owns them.
    let (channel, listener, log, pidfd) = unsafe {
        (
            OwnedFd::from_raw_fd(CHANNEL_FD),
            std::os::unix::net::UnixListener::from_raw_fd(LISTENER_FD),
            OwnedFd::from_raw_fd(LOG_FD),
            OwnedFd::from_raw_fd(PIDFD_FD),
        )
    };
    let received = match pipes {
        false => phobos_tty::pty::recv_fd(channel.as_fd()).map(|m| m.map(Io::Terminal)),
        true => phobos_tty::pty::recv_fds::<3>(channel.as_fd()).map(|fds| {
            fds.map(|[stdin, stdout, stderr]| Io::Pipes {
                stdin,
                stdout,
                stderr,
            })
        }),
    };
    let code = match received {
        // Init ended before it had a terminal; it said why on stderr.
        Ok(None) => 0,
        Ok(Some(io)) => {
            drop(channel);
            let (log, err_log) = match pipes {
                false => (open_log(log, rotate, false, "stdout"), None),
                true => {
                    let err = log.try_clone();
                    let err_log = err
                        .inspect_err(|e| {
                            eprintln!("phobos switchboard: stderr is not logged: {e}");
                        })
                        .ok()
                        .and_then(|fd| open_log(fd, rotate_stderr, true, "stderr"));
                    (open_log(log, rotate, true, "stdout"), err_log)
                }
            };
            let opts = Options {
                log,
                err_log,
                wait_for_client,
                until: Some(pidfd),
                listener: Some(listener),
                ..Options::default()
            };
            match Switchboard::with_io(io, opts).and_then(Switchboard::run) {
                Ok(_) => 0,
                Err(e) => {
                    eprintln!("phobos switchboard: {e}");
                    1
                }
            }
        }
        Err(e) => {
            eprintln!("phobos switchboard: failed to receive the terminal: {e}");
            1
        }
    };
    if ours.is_some() && inode(&socket) == ours {
        let _ = std::fs::remove_file(&socket);
    }
    code
}

/// Waits for the door's byte on the go pipe: false on EOF (the door died
/// before it recorded this switchboard) or an error.
fn told_to_go(mut go: File) -> bool {
    use std::io::Read;
    let mut byte = [0u8; 1];
    loop {
        match go.read(&mut byte) {
            Ok(n) => return n == 1,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}

/// The log of one stream: `fd` is the file itself, or (`in_dir`, or a
/// rotation) the sandbox directory, where `stream` is opened (appended to,
/// or rotated within `limit`). A log that cannot be opened is reported on
/// stderr and left out: the command never waits for a log.
fn open_log(
    fd: OwnedFd,
    limit: Option<phobos_core::logrotate::Limit>,
    in_dir: bool,
    stream: &str,
) -> Option<LogFile> {
    let opened = match (limit, in_dir) {
        (None, false) => Ok(File::from(fd).into()),
        (None, true) => SafeDir::from_fd(fd, Path::new("sandbox"))
            .and_then(|dir| dir.append_file(stream, 0o644))
            .map(|f| f.into())
            .map_err(std::io::Error::from),
        (Some(limit), _) => SafeDir::from_fd(fd, Path::new("sandbox"))
            .map_err(std::io::Error::from)
            .and_then(|dir| RotatingFile::open(dir, stream, limit))
            .map(LogFile::Rotating),
    };
    opened
        .inspect_err(|e| eprintln!("phobos switchboard: {stream} is not logged: {e}"))
        .ok()
}

fn inode(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}
