//! Streams a sandbox's `stdout` and `stderr` (across their rotated files,
//! `phobos_core::log_stream`) to this process's own stdout and stderr
//! until the container's init exits, waking on inotify(7) events and the
//! init's pidfd (readable at exit) instead of polling, and optionally
//! forwarding signals read from a signalfd(2).
//!
//! A follower is a pipeline stage: when its own stdout or stderr is a
//! pipe whose reader is gone (write(2) fails with EPIPE, as for `phobos
//! run -- yes | head -2`), the container's command gets SIGPIPE, through
//! init, as the writer of a pipeline would, and output to that stream
//! stops; without a container to signal (`logs -f`), following ends and
//! `logs` ends as a pipeline member would (`crate::output`).
//! A terminal that hangs up sends us SIGHUP, which is forwarded like any
//! other signal.
//!
//! The inotify watches are created only once the container has run for
//! [`SHORT_RUN`]: closing a watched inotify instance waits for an SRCU grace
//! period (fsnotify group teardown), which measured ~15 ms here and would
//! otherwise dominate the launch of a short command. For longer ones the
//! watches are removed as soon as the container exits: the kernel then
//! waits out that grace period in its mark reaper while the launcher tears
//! the container down, and closing the instance afterwards is quick.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use nix::sys::signal::SigSet;
use nix::sys::signalfd::{SfdFlags, SignalFd};

use phobos_core::log_stream::{Cursor, Start};

/// Forwards signals delivered to us to the container's init.
pub struct Forward<'a> {
    signals: SignalFd,
    target: &'a OwnedFd,
}

impl<'a> Forward<'a> {
    pub fn new(mask: SigSet, target: &'a OwnedFd) -> anyhow::Result<Self> {
        Ok(Self {
            signals: SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?,
            target,
        })
    }

    /// Forwards signals until the target process exits.
    pub fn until_exit(&self) -> anyhow::Result<()> {
        loop {
            let mut fds = [
                PollFd::new(self.target.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.signals.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            let exited = fds[0].revents().is_some_and(|r| !r.is_empty());
            self.forward_pending();
            if exited {
                return Ok(());
            }
        }
    }

    /// Tells the container's command that its output pipe broke.
    fn pipe_broken(&self) {
        let _ = phobos_runtime::sys::pidfd_send_signal(self.target, libc::SIGPIPE);
    }

    fn forward_pending(&self) {
        while let Ok(Some(info)) = self.signals.read_signal() {
            let _ = phobos_runtime::sys::pidfd_send_signal(self.target, info.ssi_signo as i32);
        }
    }
}

/// How long a container may run before its output is watched with inotify;
/// until then output is copied when the container exits or this passes.
pub const SHORT_RUN: std::time::Duration = std::time::Duration::from_millis(20);

pub struct Follow {
    /// The sandbox, where the streams' files are found by name.
    dir: phobos_core::SafeDir,
    /// stdout and stderr; `None` when not asked for.
    streams: [Option<Cursor>; 2],
    sandbox: std::path::PathBuf,
    inotify: Option<Inotify>,
    /// The watches of `inotify`.
    watches: Vec<WatchDescriptor>,
    /// Whether our own stdout / stderr can still be written.
    open: [Sink; 2],
}

/// One of our output streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sink {
    Open,
    /// The reader of the pipe is gone (EPIPE).
    Broken,
    /// Another write error (a terminal that hung up: EIO); output to it
    /// stops, the container is not told.
    Gone,
}

impl Follow {
    /// Where the sandbox's live files end now (zero when they do not exist
    /// yet): taken before a launch, so `phobos run` shows only the new
    /// output without creating anything before the launch is validated.
    pub fn offsets(sandbox: &Path) -> [u64; 2] {
        ["stdout", "stderr"]
            .map(|name| std::fs::metadata(sandbox.join(name)).map_or(0, |m| m.len()))
    }

    /// Follows a launched container's output from `offsets`.
    pub fn from_offsets(sandbox: &Path, offsets: [u64; 2]) -> anyhow::Result<Self> {
        Self::new(
            sandbox,
            [Start::Live(offsets[0]), Start::Live(offsets[1])].map(Some),
        )
    }

    /// Follows the streams given a start (`None`: not shown).
    pub fn new(sandbox: &Path, starts: [Option<Start>; 2]) -> anyhow::Result<Self> {
        // Read beneath the sandbox, never through a symlink its command
        // may have put in place of a file.
        let dir = phobos_core::SafeDir::open_trusted(sandbox)?;
        let mut streams = [None, None];
        for ((slot, name), start) in streams.iter_mut().zip(["stdout", "stderr"]).zip(starts) {
            if let Some(start) = start {
                *slot = Some(Cursor::open(&dir, name, start)?);
            }
        }
        Ok(Self {
            dir,
            streams,
            sandbox: sandbox.to_owned(),
            inotify: None,
            watches: Vec::new(),
            open: [Sink::Open; 2],
        })
    }

    /// Starts the inotify watch on the sandbox (its files' writes, and the
    /// creations and renames of a rotation); true when a pipe of ours
    /// broke.
    fn watch(&mut self) -> anyhow::Result<bool> {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)?;
        self.watches.push(inotify.add_watch(
            &self.sandbox,
            AddWatchFlags::IN_MODIFY
                | AddWatchFlags::IN_CREATE
                | AddWatchFlags::IN_MOVED_TO
                | AddWatchFlags::IN_ONLYDIR,
        )?);
        self.inotify = Some(inotify);
        // Output written before the watch existed raised no event.
        Ok(self.drain()?)
    }

    /// Copies what is there now; true when a pipe of ours broke just now.
    pub fn drain(&mut self) -> io::Result<bool> {
        let before = self.open;
        let broken = |e: io::Error| match e.kind() {
            io::ErrorKind::BrokenPipe => Sink::Broken,
            _ => Sink::Gone,
        };
        if self.open[0] == Sink::Open
            && let Some(c) = &mut self.streams[0]
            && let Err(e) = c.copy(&self.dir, &mut io::stdout().lock())?
        {
            self.open[0] = broken(e);
        }
        if self.open[1] == Sink::Open
            && let Some(c) = &mut self.streams[1]
            && let Err(e) = c.copy(&self.dir, &mut io::stderr().lock())?
        {
            self.open[1] = broken(e);
        }
        let broke = |i: usize| before[i] != Sink::Broken && self.open[i] == Sink::Broken;
        Ok(broke(0) || broke(1))
    }

    /// Whether the reader of our stdout or stderr went away (EPIPE).
    pub fn pipe_broke(&self) -> bool {
        self.open.contains(&Sink::Broken)
    }

    /// Copies output until `init` exits (or once, without `init`).
    pub fn run(
        &mut self,
        init: Option<&OwnedFd>,
        forward: Option<Forward<'_>>,
    ) -> anyhow::Result<()> {
        let mut broke = self.drain()?;
        let Some(init) = init else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        loop {
            if broke {
                match &forward {
                    // A pipeline's writer gets SIGPIPE; so does the command.
                    Some(f) => f.pipe_broken(),
                    // Nobody to tell: this follower's own output is gone.
                    None => return Ok(()),
                }
            }
            let timeout = match &self.inotify {
                Some(_) => PollTimeout::NONE,
                None => {
                    // Round up: a remainder under 1 ms must not become a
                    // zero timeout and spin.
                    let left = SHORT_RUN.saturating_sub(started.elapsed()).as_micros();
                    PollTimeout::try_from(left.div_ceil(1000) as u64).unwrap_or(PollTimeout::ZERO)
                }
            };
            let mut fds = vec![PollFd::new(init.as_fd(), PollFlags::POLLIN)];
            if let Some(f) = &forward {
                fds.push(PollFd::new(f.signals.as_fd(), PollFlags::POLLIN));
            }
            if let Some(inotify) = &self.inotify {
                fds.push(PollFd::new(inotify.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, timeout) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            let fired = |i: usize| {
                fds.get(i)
                    .and_then(PollFd::revents)
                    .is_some_and(|r| !r.is_empty())
            };
            let exited = fired(0);
            let signalled = forward.is_some() && fired(1);
            drop(fds);
            if let Some(inotify) = &self.inotify {
                // Empty the queue; the events only say "look again".
                while inotify.read_events().is_ok_and(|e| !e.is_empty()) {}
            }
            broke = self.drain()?;
            if self.inotify.is_none() && !exited && started.elapsed() >= SHORT_RUN {
                broke |= self.watch()?;
            }
            if let (true, Some(f)) = (signalled, &forward) {
                f.forward_pending();
            }
            if exited {
                self.unwatch();
                return Ok(());
            }
        }
    }

    /// Removes the watches (the instance stays open): their SRCU grace
    /// period then passes in the kernel's reaper, in the background.
    fn unwatch(&mut self) {
        if let Some(inotify) = &self.inotify {
            for wd in self.watches.drain(..) {
                let _ = inotify.rm_watch(wd);
            }
        }
    }
}
