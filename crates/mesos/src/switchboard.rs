//! The record of a container's I/O switchboard process (the holder of its
//! terminal's master, started by the door: `phobos_runtime::tty`), so that
//! it ends with the container on every path.
//!
//! The door writes the switchboard's pid and start time (field 22 of
//! `/proc/<pid>/stat`, which tells a reused pid apart) to
//! `io_switchboard.pid` in the runtime entry, as Mesos checkpoints
//! `io_switchboard/pid`. Every end of a container goes through the
//! containerizer's teardown (its command's exit, destroy, a recover after
//! the launching process was killed), which calls [`stop`] once init is
//! gone: the switchboard is given [`EXIT_GRACE`] to drain the terminal
//! and flush its clients when the command ended by itself, none when the
//! container is destroyed; then it is killed through a pidfd, and its
//! socket and record are removed. Independently, the switchboard itself
//! watches init's pidfd and exits within its own bounds after init does.
//! Teardown leaves RUNNING before it reads the record, and the door reads
//! the state after it wrote the record (`phobos_runtime::tty::record`), so
//! a destroy between the switchboard's start and its record is seen by one
//! of them.

use std::io;
use std::time::Duration;

use phobos_core::ContainerDir;

use crate::sys::{pidfd_open, pidfd_send_signal, pidfd_wait};

/// The record's file name in the container's runtime entry.
pub const PID_FILE: &str = "io_switchboard.pid";

/// How long a switchboard may take to end by itself after its container's
/// command ended (it drains the terminal for at most 1 s and flushes its
/// clients for at most 2 s).
pub const EXIT_GRACE: Duration = Duration::from_secs(4);

/// How long a killed switchboard may take to be gone.
const KILL_WAIT_MS: i32 = 5000;

/// Records `pid` as the switchboard of `dir`'s container.
pub fn record(dir: &ContainerDir, pid: i32) -> io::Result<()> {
    let start = start_time(pid).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("switchboard process {pid} is gone"),
        )
    })?;
    dir.write_atomic(PID_FILE, format!("{pid} {start}\n").as_bytes())
        .map_err(io::Error::other)
}

/// Ends the switchboard of `dir`'s container, if it has one: waits up to
/// `grace` for it to exit by itself, then kills it; then removes its
/// socket and record. Only for a caller that holds the container's
/// operation lock after its init is gone.
pub fn stop(dir: &ContainerDir, grace: Duration) {
    if let Some((pid, start)) = recorded(dir)
        && let Ok(pidfd) = pidfd_open(pid)
        // Checked after the pidfd is open: the pidfd then names this very
        // process, whatever happens to the pid afterwards.
        && start_time(pid) == Some(start)
    {
        let grace_ms = i32::try_from(grace.as_millis()).unwrap_or(i32::MAX);
        if !pidfd_wait(&pidfd, grace_ms).unwrap_or(false) {
            tracing::debug!(container = %dir.id(), pid, "killing the switchboard");
            let _ = pidfd_send_signal(&pidfd, libc::SIGKILL);
            let _ = pidfd_wait(&pidfd, KILL_WAIT_MS);
        }
    }
    for name in [phobos_tty::SOCKET_NAME, PID_FILE] {
        match std::fs::remove_file(dir.file(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(container = %dir.id(), error = %e, "removing the switchboard's {name}")
            }
        }
    }
}

fn recorded(dir: &ContainerDir) -> Option<(i32, u64)> {
    let bytes = dir.read(PID_FILE).ok()??;
    let text = std::str::from_utf8(&bytes).ok()?;
    let mut parts = text.split_whitespace();
    let pid: i32 = parts.next()?.parse().ok()?;
    let start: u64 = parts.next()?.parse().ok()?;
    (pid > 0).then_some((pid, start))
}

/// A process's start time in clock ticks since boot (`/proc/<pid>/stat`
/// field 22; the fields after the command name, which may hold anything
/// but a `)` last).
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_time_of_this_process_is_read() {
        let me = std::process::id() as i32;
        assert!(start_time(me).is_some_and(|t| t > 0));
        assert_eq!(start_time(i32::MAX), None);
    }
}
