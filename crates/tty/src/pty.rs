//! Pseudo-terminal pairs, window sizes, descriptor passing and raw mode.
//!
//! A pair is allocated as `posix_openpt(3)` does, without its path games:
//! `open(2)` of a `ptmx` multiplexer (checked by `fstat(2)` to be the
//! character device 5:2, so a planted file or symlink is refused), unlock
//! (`TIOCSPTLCK`), then the peer opened from the master with `TIOCGPTPEER`
//! (Linux 4.13), which never resolves a `/dev/pts/N` path and so always
//! gets the slave of *this* devpts instance. The master crosses process
//! boundaries as `SCM_RIGHTS` ancillary data on a Unix socket.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use nix::sys::termios::{self, SetArg, Termios};
use phobos_core::WindowSize;

/// The host's multiplexer, for containers on the host's root filesystem.
pub const HOST_PTMX: &str = "/dev/ptmx";
/// The multiplexer of the private devpts instance a container with its own
/// root filesystem has at `/dev/pts` (`newinstance,ptmxmode=0666`).
pub const PRIVATE_PTMX: &str = "/dev/pts/ptmx";

/// The size a terminal gets when nobody says (the VT100's).
pub const DEFAULT_SIZE: WindowSize = WindowSize {
    rows: 24,
    columns: 80,
};

#[derive(Debug, thiserror::Error)]
pub enum PtyError {
    #[error("failed to open {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a pseudo-terminal multiplexer (character device 5:2)")]
    NotPtmx { path: PathBuf },
    #[error("failed to {op}: {source}")]
    Sys {
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

fn sys(op: &'static str) -> impl FnOnce(io::Error) -> PtyError {
    move |source| PtyError::Sys { op, source }
}

/// A terminal's two ends; both close-on-exec.
#[derive(Debug)]
pub struct Pair {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// Allocates a terminal from the multiplexer at `ptmx`.
pub fn open_pair(ptmx: &Path) -> Result<Pair, PtyError> {
    let open_err = |source| PtyError::Open {
        path: ptmx.to_owned(),
        source,
    };
    let c_path = std::ffi::CString::new(ptmx.as_os_str().as_encoded_bytes())
        .map_err(|_| open_err(io::Error::from(io::ErrorKind::InvalidInput)))?;
    // SAFETY: open(2) of a NUL-terminated path; the result is checked.
    let fd = unsafe {
        libc::open(
            c_path.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        )
    };
    if fd < 0 {
        return Err(open_err(io::Error::last_os_error()));
    }
    // SAFETY: open succeeded: a new descriptor nobody else owns.
    let master = unsafe { OwnedFd::from_raw_fd(fd) };
    let stat = nix::sys::stat::fstat(&master).map_err(|e| open_err(e.into()))?;
    let is_chr = stat.st_mode & libc::S_IFMT == libc::S_IFCHR;
    if !is_chr || libc::major(stat.st_rdev) != 5 || libc::minor(stat.st_rdev) != 2 {
        return Err(PtyError::NotPtmx {
            path: ptmx.to_owned(),
        });
    }
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int from the pointer we pass.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } != 0 {
        return Err(sys("unlock the terminal")(io::Error::last_os_error()));
    }
    // SAFETY: TIOCGPTPEER takes open flags and returns a new descriptor.
    let peer = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if peer < 0 {
        return Err(sys("open the terminal's peer")(io::Error::last_os_error()));
    }
    // SAFETY: the ioctl returned a new descriptor we now own.
    let slave = unsafe { OwnedFd::from_raw_fd(peer) };
    Ok(Pair { master, slave })
}

/// Sets a terminal's window size (on either end); the kernel sends
/// SIGWINCH to its foreground process group when it changed.
pub fn set_window(fd: BorrowedFd<'_>, size: WindowSize) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.columns,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from the pointer we pass.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A terminal's window size; `None` when `fd` is no terminal or has no size.
pub fn window(fd: BorrowedFd<'_>) -> Option<WindowSize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills the winsize we pass.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) } != 0 {
        return None;
    }
    (ws.ws_row > 0 && ws.ws_col > 0).then_some(WindowSize {
        rows: ws.ws_row,
        columns: ws.ws_col,
    })
}

/// Sends `fd` over the Unix socket `sock` (one byte of data with it).
pub fn send_fd(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> io::Result<()> {
    send_fds(sock, &[fd])
}

/// Sends several descriptors in one message (a command's three pipes).
pub fn send_fds(sock: BorrowedFd<'_>, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let raw: Vec<RawFd> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
    let iov = [IoSlice::new(b"T")];
    let cmsg = [ControlMessage::ScmRights(&raw)];
    loop {
        match sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receives one descriptor sent by [`send_fd`]; `None` when the sender
/// closed the socket without sending one. Blocks.
pub fn recv_fd(sock: BorrowedFd<'_>) -> io::Result<Option<OwnedFd>> {
    Ok(recv_fds::<1>(sock)?.map(|[fd]| fd))
}

/// Receives exactly `N` descriptors sent in one message by [`send_fds`];
/// `None` when the sender closed the socket without sending any. Blocks.
/// A message with another number of descriptors is an error (the ones
/// that came are closed).
pub fn recv_fds<const N: usize>(sock: BorrowedFd<'_>) -> io::Result<Option<[OwnedFd; N]>> {
    let Some((fixed, extra)) = recv_fds_and_more::<N>(sock, 0)? else {
        return Ok(None);
    };
    debug_assert!(extra.is_empty());
    Ok(Some(fixed))
}

/// The most descriptors one message may carry to [`recv_fds_and_more`].
pub const MAX_FDS_PER_MESSAGE: usize = 24;

/// Receives one message of [`send_fds`] with `N` descriptors and then up
/// to `more` others (`N + more` at most [`MAX_FDS_PER_MESSAGE`]); `None`
/// when the sender closed the socket without sending any. Blocks. A
/// message with fewer than `N` or more than `N + more` is an error (the
/// ones that came are closed).
pub fn recv_fds_and_more<const N: usize>(
    sock: BorrowedFd<'_>,
    more: usize,
) -> io::Result<Option<([OwnedFd; N], Vec<OwnedFd>)>> {
    let most = N.saturating_add(more).min(MAX_FDS_PER_MESSAGE);
    let mut byte = [0u8; 1];
    // Room for a few more than allowed, so a wrong count is seen (and
    // closed) rather than truncated.
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS_PER_MESSAGE + 4]);
    loop {
        let mut iov = [IoSliceMut::new(&mut byte)];
        let msg = match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => msg,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut received = Vec::new();
        for cmsg in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                for raw in fds {
                    // SAFETY: the kernel installed these descriptors in
                    // this process for us; each is owned exactly once.
                    received.push(unsafe { OwnedFd::from_raw_fd(raw) });
                }
            }
        }
        if received.is_empty() && msg.bytes == 0 {
            return Ok(None);
        }
        let count = received.len();
        if count < N || count > most {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                match more {
                    0 => format!("a message with {count} descriptors, expected {N}"),
                    _ => format!("a message with {count} descriptors, expected {N} to {most}"),
                },
            ));
        }
        let extra = received.split_off(N);
        // Exactly N are left, so this conversion cannot fail.
        let fixed = received.try_into().map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidData, "a descriptor count mismatch")
        })?;
        return Ok(Some((fixed, extra)));
    }
}

/// A caller's terminal in raw mode; the saved settings come back on drop,
/// on every way out of the scope that holds it (errors and panics too).
pub struct RawMode {
    fd: OwnedFd,
    saved: Termios,
}

impl RawMode {
    /// Puts the terminal `fd` in raw mode (`cfmakeraw`); `None` when `fd`
    /// is no terminal.
    pub fn enter(fd: BorrowedFd<'_>) -> io::Result<Option<Self>> {
        let saved = match termios::tcgetattr(fd) {
            Ok(t) => t,
            Err(nix::errno::Errno::ENOTTY) | Err(nix::errno::Errno::EINVAL) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw)?;
        Ok(Some(Self {
            fd: fd.try_clone_to_owned()?,
            saved,
        }))
    }

    /// Turns off only output processing (`OPOST`: the `\n` to `\r\n`
    /// the container's own terminal already did), for a caller whose
    /// keystrokes are not passed on and keep their usual meaning (Ctrl-C
    /// still interrupts it); `None` when `fd` is no terminal.
    pub fn enter_output(fd: BorrowedFd<'_>) -> io::Result<Option<Self>> {
        let saved = match termios::tcgetattr(fd) {
            Ok(t) => t,
            Err(nix::errno::Errno::ENOTTY) | Err(nix::errno::Errno::EINVAL) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut out = saved.clone();
        out.output_flags.remove(termios::OutputFlags::OPOST);
        termios::tcsetattr(fd, SetArg::TCSANOW, &out)?;
        Ok(Some(Self {
            fd: fd.try_clone_to_owned()?,
            saved,
        }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.fd.as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn a_host_pair_carries_bytes_and_sizes() {
        let pair = match open_pair(Path::new(HOST_PTMX)) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("skipped: no {HOST_PTMX}: {e}");
                return;
            }
        };
        let size = WindowSize {
            rows: 33,
            columns: 101,
        };
        set_window(pair.master.as_fd(), size).unwrap();
        assert_eq!(window(pair.slave.as_fd()), Some(size));
        let mut slave = std::fs::File::from(pair.slave);
        let mut master = std::fs::File::from(pair.master);
        slave.write_all(b"hi").unwrap();
        let mut buf = [0u8; 8];
        let n = master.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hi");
    }

    #[test]
    fn a_file_is_no_multiplexer() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ptmx");
        std::fs::write(&file, b"").unwrap();
        let err = open_pair(&file).unwrap_err();
        assert!(matches!(err, PtyError::NotPtmx { .. }), "{err}");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(HOST_PTMX, &link).unwrap();
        let err = open_pair(&link).unwrap_err();
        assert!(err.to_string().contains("link"), "{err}");
    }

    #[test]
    fn a_descriptor_crosses_a_socket() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let file = tempfile::tempfile().unwrap();
        send_fd(a.as_fd(), file.as_fd()).unwrap();
        let got = recv_fd(b.as_fd()).unwrap().unwrap();
        let same = |fd: BorrowedFd<'_>| nix::sys::stat::fstat(fd).unwrap().st_ino;
        assert_eq!(same(got.as_fd()), same(file.as_fd()));
        drop(a);
        assert!(recv_fd(b.as_fd()).unwrap().is_none());
    }

    #[test]
    fn raw_mode_is_restored_on_drop() {
        let Ok(pair) = open_pair(Path::new(HOST_PTMX)) else {
            return;
        };
        let before = termios::tcgetattr(pair.slave.as_fd()).unwrap();
        {
            let _raw = RawMode::enter(pair.slave.as_fd()).unwrap().unwrap();
            let now = termios::tcgetattr(pair.slave.as_fd()).unwrap();
            assert!(!now.local_flags.contains(termios::LocalFlags::ICANON));
        }
        let after = termios::tcgetattr(pair.slave.as_fd()).unwrap();
        assert_eq!(before.local_flags, after.local_flags);
        assert!(
            RawMode::enter(tempfile::tempfile().unwrap().as_fd())
                .unwrap()
                .is_none()
        );
    }
}
