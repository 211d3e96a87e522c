//! Terminals of Mesos containers: the per-container switchboard process.
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
//! master arrives on, 4 the listening socket, 5 the log, 6 init's pidfd.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use phobos_core::{ContainerDir, SafeDir};
use phobos_tty::server::{Options, Switchboard};

/// The subcommand the binary dispatches to [`switchboard_main`].
pub const SUBCOMMAND: &str = "switchboard";
const WAIT_FLAG: &str = "--wait-for-client";

const CHANNEL_FD: RawFd = 3;
const LISTENER_FD: RawFd = 4;
const LOG_FD: RawFd = 5;
const PIDFD_FD: RawFd = 6;

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

/// Starts the switchboard of a just-launched container; returns where
/// clients connect.
pub(crate) fn start(
    exe: &Path,
    dir: &ContainerDir,
    sandbox: &Path,
    channel: OwnedFd,
    init_pidfd: OwnedFd,
    wait_for_client: bool,
) -> Result<PathBuf, SwitchboardError> {
    let path = socket_path(dir);
    let listener = phobos_tty::server::bind(&path).map_err(|source| SwitchboardError::Bind {
        path: path.clone(),
        source,
    })?;
    let log = SafeDir::open_trusted(sandbox)?.append_file("stdout", 0o644)?;
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
    let sources = [
        high(channel.as_raw_fd()).map_err(spawn_err)?,
        high(listener.as_raw_fd()).map_err(spawn_err)?,
        high(log.as_raw_fd()).map_err(spawn_err)?,
        high(init_pidfd.as_raw_fd()).map_err(spawn_err)?,
    ];
    let raw: [RawFd; 4] = [
        sources[0].as_raw_fd(),
        sources[1].as_raw_fd(),
        sources[2].as_raw_fd(),
        sources[3].as_raw_fd(),
    ];
    let mut command = Command::new(exe);
    command.arg(SUBCOMMAND).arg(&path);
    if wait_for_client {
        command.arg(WAIT_FLAG);
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
            for (target, src) in [CHANNEL_FD, LISTENER_FD, LOG_FD, PIDFD_FD]
                .into_iter()
                .zip(raw)
            {
                if libc::dup2(src, target) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            phobos_mesos::launcher::close_from_on_exec(PIDFD_FD + 1);
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(spawn_err)?;
    // Recorded for the container's teardown, which ends it on every path.
    if let Err(e) = phobos_mesos::switchboard::record(dir, child.id() as i32) {
        tracing::warn!(container = %dir.id(), error = %e, "recording the switchboard's pid failed");
    }
    // Reaped by whoever outlives it: a thread here for a long-lived face
    // (the agent); a CLI that exits first leaves it to be re-parented.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(path)
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
    // Removed at the end only if it is still ours (not a later
    // container's of the same ID).
    let ours = inode(&socket);
    let _ = nix::sys::signal::SigSet::empty().thread_set_mask();
    // SAFETY: the door put these descriptors at these numbers for us, and
    // nothing else in this fresh process owns them.
    let (channel, listener, log, pidfd) = unsafe {
        (
            OwnedFd::from_raw_fd(CHANNEL_FD),
            std::os::unix::net::UnixListener::from_raw_fd(LISTENER_FD),
            File::from_raw_fd(LOG_FD),
            OwnedFd::from_raw_fd(PIDFD_FD),
        )
    };
    let code = match phobos_tty::pty::recv_fd(std::os::fd::AsFd::as_fd(&channel)) {
        // Init ended before it had a terminal; it said why on stderr.
        Ok(None) => 0,
        Ok(Some(master)) => {
            drop(channel);
            let opts = Options {
                log: Some(log),
                wait_for_client,
                until: Some(pidfd),
                listener: Some(listener),
                ..Options::default()
            };
            match Switchboard::new(master, opts).and_then(Switchboard::run) {
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

fn inode(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}
