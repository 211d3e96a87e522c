//! Init's log pump, the `logrotate` container logger (Mesos's
//! `LogrotateContainerLogger`, without its two companion processes per
//! container): the command's stdout and stderr are pipes, and a thread of
//! init, which already exists for every container, moves what arrives into
//! the sandbox's rotated files with splice(2)
//! ([`phobos_core::logrotate::RotatingFile`]), page references rather than
//! copies through user space.
//!
//! The pump never holds the command back longer than the pipe buffer
//! lasts: output that cannot be written (no space left, a failed rotation)
//! is read and dropped, as Mesos's logger drops failed writes. When the
//! command has exited, init tells the pump to finish ([`Pump::finish`]): it
//! takes what the pipes still hold (the command's last output, or a killed
//! command's) and ends, before init writes the status and exits, so
//! `phobos run` and `wait` see the complete output.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::thread::JoinHandle;

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
/// The pump thread's stack: it only calls the kernel.
const STACK: usize = 64 * 1024;

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

/// A running pump.
pub struct Pump {
    /// Dropped to tell the pump to finish.
    stop: OwnedFd,
    thread: JoinHandle<Option<File>>,
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

/// Starts pumping into `dir`'s `stdout` and `stderr`; the command gets the
/// returned writers (init must close its copies once it has started it).
pub fn start(dir: &SafeDir, rotation: LogRotation) -> Result<(Pump, Writers), String> {
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
    let (stop_read, stop) = pipe().map_err(fail)?;
    let [out, err]: [Stream; 2] = streams.try_into().map_err(|_| "two streams".to_owned())?;
    let thread = std::thread::Builder::new()
        .name("log-pump".into())
        .stack_size(STACK)
        .spawn(move || run([out, err], stop_read))
        .map_err(fail)?;
    let writers: [OwnedFd; 2] = writers.try_into().map_err(|_| "two writers".to_owned())?;
    Ok((Pump { stop, thread }, Writers(writers)))
}

impl Pump {
    /// Takes what the pipes still hold and stops; returns the live stderr
    /// file, where init's own later messages belong.
    pub fn finish(self) -> Option<File> {
        drop(self.stop);
        self.thread.join().ok().flatten()
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

/// The pump thread: waits on both pipes and the stop pipe.
fn run(mut streams: [Stream; 2], stop: OwnedFd) -> Option<File> {
    loop {
        let poll_fd = |fd: BorrowedFd<'_>, open: bool| libc::pollfd {
            fd: if open { fd.as_raw_fd() } else { -1 },
            events: libc::POLLIN,
            revents: 0,
        };
        let mut fds = [
            poll_fd(streams[0].pipe.as_fd(), streams[0].open),
            poll_fd(streams[1].pipe.as_fd(), streams[1].open),
            poll_fd(stop.as_fd(), true),
        ];
        // SAFETY: poll(2) on an array of pollfds we own, of its length.
        if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) } < 0 {
            continue;
        }
        for (stream, fd) in streams.iter_mut().zip(&fds) {
            if fd.revents != 0 {
                stream.pump(TURNS);
            }
        }
        if fds[2].revents != 0 {
            break;
        }
        if !streams[0].open && !streams[1].open {
            // Nothing more can come; wait for init to ask for the file.
            let mut fd = poll_fd(stop.as_fd(), true);
            // SAFETY: as above, one pollfd.
            while unsafe { libc::poll(&mut fd, 1, -1) } < 0 {}
            break;
        }
    }
    // The command is gone: take what is left, but no more than the pipes
    // can hold, in case something it left behind keeps writing.
    let most = (PIPE_SIZE as usize).div_ceil(CHUNK) * 2 + TURNS;
    for stream in &mut streams {
        if stream.open {
            stream.pump(most);
        }
    }
    let [_, err] = streams;
    err.log.file().try_clone().ok()
}
