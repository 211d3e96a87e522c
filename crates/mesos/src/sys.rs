//! Thin wrappers over syscalls nix does not cover: pidfds (pidfd_open(2),
//! pidfd_send_signal(2)), which let Phobos signal and await a process that is
//! not its child without racing pid reuse.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Opens a pidfd for `pid`.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Sends `sig` to the process behind `pidfd`.
pub fn pidfd_send_signal(pidfd: &OwnedFd, sig: i32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid pidfd, a signal number, no siginfo, no flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends `sig` to the process behind `pidfd` queued with `value` (as
/// `sigqueue(3)`: `SI_QUEUE`, which the kernel accepts from another
/// process), read by a signalfd as `ssi_int`.
pub fn pidfd_send_queued(pidfd: &OwnedFd, sig: i32, value: i32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    /// The kernel's `siginfo_t` as `SI_QUEUE` fills it: signo, errno,
    /// code, then the union at 8 bytes in: pid, uid, and the `sigval`
    /// whose `sival_int` comes first; 128 bytes in all.
    #[repr(C, align(8))]
    struct QueuedInfo {
        signo: i32,
        errno: i32,
        code: i32,
        _pad: i32,
        pid: i32,
        uid: u32,
        value: [i32; 2],
        _rest: [u64; 12],
    }
    const _: () = assert!(std::mem::size_of::<QueuedInfo>() == 128);
    let info = QueuedInfo {
        signo: sig,
        errno: 0,
        code: libc::SI_QUEUE,
        _pad: 0,
        // SAFETY: getpid(2) and getuid(2) cannot fail.
        pid: unsafe { libc::getpid() },
        // SAFETY: as above.
        uid: unsafe { libc::getuid() },
        value: [value, 0],
        _rest: [0; 12],
    };
    // SAFETY: a valid pidfd, a signal number, a siginfo record of the
    // kernel's size and layout that outlives the call, no flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            &info as *const QueuedInfo,
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Blocks until the process behind `pidfd` has exited (the pidfd turns
/// readable), or until `timeout_ms` passes (-1: forever). Returns whether it
/// exited.
pub fn pidfd_wait(pidfd: &OwnedFd, timeout_ms: i32) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd structure for the duration of the call.
        let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if rc >= 0 {
            return Ok(rc > 0);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}
