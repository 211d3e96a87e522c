//! The face's side of its forked helpers (spawners, the spawner factory):
//! one `SOCK_SEQPACKET` socket pair per helper, whose message boundaries
//! frame every order and answer (`send`, `recv`), and the end of a child
//! process of ours (`kill_and_reap`, `reap`). A seqpacket socket reports
//! end-of-file to one side as soon as the other side's last descriptor is
//! closed, which is how each helper learns its face is gone.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{LaunchError, sys};

/// Kills our unreaped child `pid` (through `pidfd` when there is one)
/// and reaps it.
pub(super) fn kill_and_reap(pid: i32, pidfd: Option<&OwnedFd>) {
    match pidfd {
        Some(pidfd) => {
            let _ = crate::sys::pidfd_send_signal(pidfd, libc::SIGKILL);
        }
        // SAFETY: kill(2) of our own unreaped child: the pid is not reused.
        None => unsafe {
            libc::kill(pid, libc::SIGKILL);
        },
    }
    reap(pid);
}

/// Waits for our own child `pid` to end and reaps it.
pub(super) fn reap(pid: i32) {
    let mut status = 0;
    // SAFETY: waitpid on our own child with a valid out-pointer.
    unsafe { libc::waitpid(pid, &mut status, 0) };
}

/// Sends `bytes` as one message on `sock`.
pub(super) fn send(sock: &OwnedFd, bytes: &[u8]) -> io::Result<()> {
    loop {
        // SAFETY: send(2) reads `bytes.len()` bytes of a live slice.
        let rc = unsafe {
            libc::send(
                sock.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if rc >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Receives one message into `buf`; its full length (which may exceed
/// `buf`: `MSG_TRUNC`), 0 at end-of-file.
pub(super) fn recv(sock: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: recv(2) writes at most `buf.len()` bytes into `buf`.
        let rc = unsafe {
            libc::recv(
                sock.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC,
            )
        };
        if rc >= 0 {
            return Ok(rc as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

pub(super) fn seqpacket_pair() -> Result<(OwnedFd, OwnedFd), LaunchError> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for socketpair to fill.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(sys("create a socket pair")(io::Error::last_os_error()));
    }
    // SAFETY: socketpair succeeded: both fds are new and ours alone.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}
