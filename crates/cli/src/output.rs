//! This process's standard output as a pipeline member's.
//!
//! Rust starts every program with SIGPIPE ignored, so a write(2) to a pipe
//! whose reader is gone (`phobos ps | head -1`) fails with EPIPE instead
//! of killing the process, and `println!` panics on that error. The
//! commands write their output here instead: EPIPE on stdout ends the
//! process as it ends a C program or a Go one such as docker, killed by
//! SIGPIPE with nothing printed (the shell shows 141), while every other
//! descriptor (an agent's socket, a pipe to a child) keeps SIGPIPE ignored
//! and reports EPIPE as an error. The disposition is changed only on the
//! way out, so nothing started before inherits it. Another write error
//! (a full disk, a terminal gone: EIO) is one line on stderr and exit 1.
//!
//! Messages for stderr go through [`errln!`], which drops a write error:
//! there is nobody left to tell, and the exit code still says how the
//! command ended.

use std::io::{self, Write};

/// `println!` on stdout, ending the process as described above when it
/// cannot be written.
macro_rules! outln {
    () => {
        $crate::output::print(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` on stdout, as [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::print(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics: a write error is dropped.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Locked stdout whose EPIPE ends the process (see the module docs); for
/// the commands that write through a `BufWriter` or `write!`.
pub struct Stdout(io::StdoutLock<'static>);

/// This process's stdout, locked.
pub fn stdout() -> Stdout {
    Stdout(io::stdout().lock())
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        checked(self.0.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        checked(self.0.flush())
    }
}

/// What [`outln!`] and [`out!`] run.
pub fn print(args: std::fmt::Arguments<'_>) {
    if let Err(e) = stdout().write_fmt(args) {
        errln!("phobos: writing to stdout: {e}");
        std::process::exit(1);
    }
}

/// `result`, unless it is EPIPE: then the process ends.
pub fn checked<T>(result: io::Result<T>) -> io::Result<T> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => die_of_sigpipe(),
        other => other,
    }
}

/// Whether stdout or stderr is a pipe whose reader is gone (poll(2) says
/// POLLERR for it), for output another part of Phobos wrote.
pub fn reader_gone() -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let (stdout, stderr) = (io::stdout(), io::stderr());
    let mut fds = [
        PollFd::new(stdout.as_fd(), PollFlags::empty()),
        PollFd::new(stderr.as_fd(), PollFlags::empty()),
    ];
    poll(&mut fds, PollTimeout::ZERO).is_ok()
        && fds
            .iter()
            .any(|fd| fd.revents().is_some_and(|r| r.contains(PollFlags::POLLERR)))
}

/// Ends the process as a pipeline member whose reader went away: killed by
/// SIGPIPE at its default action.
pub fn die_of_sigpipe() -> ! {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask, raise};
    // SAFETY: the default action installs no handler; nothing runs after
    // the signal below but the kernel ending the process.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let mut pipe = SigSet::empty();
    pipe.add(Signal::SIGPIPE);
    // A follower blocks signals to read them from a signalfd; this thread
    // must take this one.
    let _ = pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&pipe), None);
    let _ = raise(Signal::SIGPIPE);
    // Not reached: the signal ends the process before raise(3) returns.
    std::process::exit(128 + libc::SIGPIPE)
}
