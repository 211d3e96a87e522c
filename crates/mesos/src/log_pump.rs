//! Init's log pump, the `logrotate` container logger (Mesos's
//! `LogrotateContainerLogger`, without its two companion processes per
//! container): the command's stdout and stderr are pipes, and init, which
//! already exists for every container and waits in poll(2) while it
//! supervises the command, polls them too (`crate::init_watch`) and moves
//! what arrives into the sandbox's rotated files with splice(2)
//! ([`phobos_core::logrotate::RotatingFile`]), page references rather than
//! copies through user space. No thread: a thread would take pid 2 of a
//! new pid namespace from the command, and cannot be created at all once
//! init has joined a parent's pid namespace for its children
//! (`--share-pid`).
//!
//! The pump never holds the command back longer than the pipe buffer
//! lasts: output that cannot be written (no space left, a failed rotation)
//! is read and dropped, as Mesos's logger drops failed writes. When the
//! command has exited, init finishes the pump ([`Pump::finish`]): it
//! takes what the pipes still hold (the command's last output, or a killed
//! command's) and ends, before init writes the status and exits, so
//! `phobos run` and `wait` see the complete output.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;

use phobos_core::SafeDir;
use phobos_core::logrotate::{self, LogRotation, RotatingFile};

use crate::launch_info::LoggerLaunch;

/// The pipes' capacity asked for with `F_SETPIPE_SZ`: a command writing
/// fast then runs ahead of the pump by up to this much instead of 64 KiB,
/// which halves the context switches; the kernel allocates the pages only
/// as they fill.
const PIPE_SIZE: libc::c_int = 1 << 20;
/// Most bytes one splice(2) moves.
const CHUNK: usize = 1 << 20;
/// Splices per stream and wake-up before the other stream gets its turn.
const TURNS: usize = 16;

/// Opens the sandbox for the pump while its host path is still visible
/// (before init joins other mount namespaces or pivots), and checks it is
/// the launcher's: its `stdout` must be the file init got as fd 1.
pub fn open_sandbox(logger: &LoggerLaunch) -> Result<SafeDir, String> {
    let dir = SafeDir::open_trusted(&logger.sandbox).map_err(|e| e.to_string())?;
    let theirs = dir
        .read_file("stdout")
        .map_err(|e| e.to_string())?
        .metadata()
        .map_err(|e| e.to_string())?;
    // SAFETY: fstat(2) on fd 1 into a zeroed stat buffer we own.
    let mut ours: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstat(1, &mut ours) } != 0
        || (ours.st_dev, ours.st_ino) != (theirs.dev(), theirs.ino())
    {
        return Err(format!(
            "{} is not the sandbox init was started with",
            logger.sandbox.display()
        ));
    }
    Ok(dir)
}

/// A pump's two pipes' write ends, for the command.
pub struct Writers(pub [OwnedFd; 2]);

impl Writers {
    pub fn raw(&self) -> [RawFd; 2] {
        [self.0[0].as_raw_fd(), self.0[1].as_raw_fd()]
    }
}

/// A pipe, both ends close-on-exec; the read end does not block.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the array on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptors from pipe2, each owned once.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl(2) on a descriptor we own; only the read end's open
    // file description becomes non-blocking, the command's stays blocking.
    unsafe {
        libc::fcntl(read.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK);
        // Best effort: an unprivileged init over its pipe quota keeps 64 KiB.
        libc::fcntl(read.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE);
    }
    Ok((read, write))
}

/// A pump: its files and pipes.
pub struct Pump {
    streams: [Stream; 2],
}

/// Opens `dir`'s `stdout` and `stderr` and the pipes; the command gets the
/// returned writers (init must close its copies once it has started it).
pub fn prepare(dir: &SafeDir, rotation: LogRotation) -> Result<(Pump, Writers), String> {
    let fail = |e: io::Error| format!("failed to start the log pump: {e}");
    let mut streams = Vec::with_capacity(2);
    let mut writers = Vec::with_capacity(2);
    for name in ["stdout", "stderr"] {
        let dir = dir.try_clone().map_err(|e| e.to_string())?;
        let log = RotatingFile::open(dir, name, rotation.limit(name)).map_err(fail)?;
        let (read, write) = pipe().map_err(fail)?;
        streams.push(Stream {
            pipe: read,
            log,
            open: true,
        });
        writers.push(write);
    }
    let streams: [Stream; 2] = streams.try_into().map_err(|_| "two streams".to_owned())?;
    let writers: [OwnedFd; 2] = writers.try_into().map_err(|_| "two writers".to_owned())?;
    Ok((Pump { streams }, Writers(writers)))
}

impl Pump {
    /// The pipes still open, to poll for input (`POLLIN`), with their
    /// index for [`Pump::ready`].
    pub fn fds(&self) -> impl Iterator<Item = (usize, BorrowedFd<'_>)> {
        self.streams
            .iter()
            .enumerate()
            .filter(|(_, s)| s.open)
            .map(|(i, s)| (i, s.pipe.as_fd()))
    }

    /// Moves what pipe `index` holds (a few splices' worth, so neither
    /// stream nor init's signals wait long).
    pub fn ready(&mut self, index: usize) {
        if let Some(stream) = self.streams.get_mut(index) {
            stream.pump(TURNS);
        }
    }

    /// The command is gone: takes what is left, but no more than the
    /// pipes can hold, in case something it left behind keeps writing.
    /// Returns the live stderr file, where init's own later messages go.
    pub fn finish(mut self) -> Option<File> {
        let most = (PIPE_SIZE as usize).div_ceil(CHUNK) * 2 + TURNS;
        for stream in &mut self.streams {
            if stream.open {
                stream.pump(most);
            }
        }
        let [_, err] = self.streams;
        err.log.file().try_clone().ok()
    }
}

struct Stream {
    pipe: OwnedFd,
    log: RotatingFile,
    /// Until the pipe's writers are all gone.
    open: bool,
}

impl Stream {
    /// Moves what the pipe holds, `turns` splices at most; false at the
    /// end of the stream.
    fn pump(&mut self, turns: usize) {
        for _ in 0..turns {
            match self.log.splice_from(self.pipe.as_fd(), CHUNK) {
                Ok(0) => {
                    self.open = false;
                    return;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    // The log cannot take it (full disk, failed rotation):
                    // drop it rather than stall the command.
                    if let Ok(0) | Err(_) = logrotate::discard(self.pipe.as_fd()) {
                        return;
                    }
                }
            }
        }
    }
}
