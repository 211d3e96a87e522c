//! The bridge between a caller's terminal and a switchboard client
//! (`phobos run -it`, `exec -it`, `attach`): the terminal in raw mode for
//! the bridge's whole life (restored however it ends), keystrokes sent as
//! input, output written back, the window size sent on SIGWINCH (read
//! from a signalfd(2); the caller blocks SIGWINCH in every thread first),
//! and the detach keys Ctrl-P Ctrl-Q, as Docker's.

use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::client::Client;
use crate::pty::{self, RawMode};

const CTRL_P: u8 = 0x10;
const CTRL_Q: u8 = 0x11;

/// How a bridge ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The terminal's output ended (the command is done).
    Ended,
    /// The user typed the detach keys; the command goes on.
    Detached,
}

#[derive(Clone, Copy, Debug)]
pub struct BridgeOptions {
    /// Send the caller's stdin as input.
    pub input: bool,
    /// Watch the input for Ctrl-P Ctrl-Q.
    pub detach_keys: bool,
}

/// The caller's window size: of stdin, else of stdout.
pub fn caller_size(
    stdin: BorrowedFd<'_>,
    stdout: BorrowedFd<'_>,
) -> Option<phobos_core::WindowSize> {
    pty::window(stdin).or_else(|| pty::window(stdout))
}

/// Blocks SIGWINCH in the calling thread (and the threads it starts
/// later), so the bridge's signalfd receives it.
pub fn block_sigwinch() -> io::Result<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGWINCH);
    set.thread_block()?;
    Ok(())
}

/// Runs the bridge until the output ends or the user detaches.
pub fn bridge(
    client: &mut Client,
    stdin: BorrowedFd<'_>,
    stdout: BorrowedFd<'_>,
    opts: BridgeOptions,
) -> io::Result<End> {
    block_sigwinch()?;
    let mut winch_set = SigSet::empty();
    winch_set.add(Signal::SIGWINCH);
    let winch = SignalFd::with_flags(&winch_set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
    let _raw = if opts.input {
        RawMode::enter(stdin)?
    } else {
        RawMode::enter_output(stdout)?
    };
    let mut out = std::fs::File::from(stdout.try_clone_to_owned()?);
    let mut keys = DetachKeys::default();
    let mut stdin_open = opts.input;
    let mut buf = vec![0u8; 64 * 1024];
    for chunk in client.take_pending() {
        out.write_all(&chunk)?;
        out.flush()?;
    }
    loop {
        let mut fds = vec![
            PollFd::new(client.as_fd(), PollFlags::POLLIN),
            PollFd::new(winch.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin, PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        let fired = |i: usize| {
            fds.get(i)
                .and_then(PollFd::revents)
                .is_some_and(|r| !r.is_empty())
        };
        let (from_client, resized, typed) = (fired(0), fired(1), fired(2));
        drop(fds);
        if resized {
            while let Ok(Some(_)) = winch.read_signal() {}
            if let Some(size) = caller_size(stdin, stdout) {
                client.resize(size)?;
            }
        }
        if typed {
            let n = read_fd(stdin, &mut buf)?;
            if n == 0 {
                stdin_open = false;
                client.close_input()?;
            } else {
                let (send, detach) = if opts.detach_keys {
                    keys.scan(&buf[..n])
                } else {
                    (buf[..n].to_vec(), false)
                };
                client.send(&send)?;
                if detach {
                    return Ok(End::Detached);
                }
            }
        }
        if from_client {
            let open = client.read_available(|chunk| {
                out.write_all(chunk)?;
                out.flush()
            })?;
            if !open {
                return Ok(End::Ended);
            }
        }
    }
}

fn read_fd(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: read(2) into a buffer we own, of its length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => {}
            // A terminal that hung up reads as EIO: its input ended.
            _ if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
            _ => return Err(e),
        }
    }
}

/// Finds Ctrl-P Ctrl-Q in the input; a Ctrl-P not followed by Ctrl-Q is
/// sent on with the byte after it.
#[derive(Debug, Default)]
struct DetachKeys {
    held: bool,
}

impl DetachKeys {
    /// What to send from `input`, and whether the keys were typed.
    fn scan(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut send = Vec::with_capacity(input.len() + 1);
        for &b in input {
            if self.held {
                self.held = false;
                if b == CTRL_Q {
                    return (send, true);
                }
                send.push(CTRL_P);
            }
            if b == CTRL_P {
                self.held = true;
            } else {
                send.push(b);
            }
        }
        (send, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_across_reads() {
        let mut k = DetachKeys::default();
        assert_eq!(k.scan(b"ab"), (b"ab".to_vec(), false));
        assert_eq!(k.scan(&[b'x', CTRL_P]), (b"x".to_vec(), false));
        assert_eq!(k.scan(&[CTRL_Q, b'z']), (Vec::new(), true));
        let mut k = DetachKeys::default();
        assert_eq!(k.scan(&[CTRL_P, b'y']), (vec![CTRL_P, b'y'], false));
        assert_eq!(k.scan(&[CTRL_P, CTRL_P, CTRL_Q]), (vec![CTRL_P], true));
    }
}
