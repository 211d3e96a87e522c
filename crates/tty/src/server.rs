//! The switchboard: the one holder of a terminal's master, or of the
//! command's three pipes (a DEBUG container without a terminal: Mesos
//! gives every DEBUG container a switchboard).
//!
//! One `poll(2)` loop, every descriptor non-blocking. Output read from the
//! master goes to the log (the sandbox's `stdout`, a regular file) and
//! into each output client's queue; over pipes, stdout goes to `stdout`
//! and `DATA` frames, stderr to `stderr` and `ERR_DATA` frames, and the
//! input client's EOF closes the command's stdin. While a client's queue is over
//! [`Options::output_limit`] the master is not read (a slow terminal slows
//! the command, as a real terminal would), but a client whose full queue
//! took no bytes for [`STALL_LIMIT`] is disconnected: a reader that stops
//! reading holds the command back for that long at most, once, and never
//! after. Input comes from one client at a time; while its bytes
//! wait for the terminal (a command that does not read), only that client
//! is held back. The loop ends when the terminal hangs up (every slave
//! closed: `EIO`), or a bounded drain after the supervisor exited
//! (its pidfd polls readable), then flushes the queues for a bounded time
//! and closes every client; after a hang-up the master is closed only once
//! the supervisor has exited, so that closing it never sends SIGHUP to a
//! command that is still finishing.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::frame::{self, Decoder, Frame, Hello};

/// How long a `wait_for_client` switchboard holds the output for its
/// first client before it reads anyway.
pub const WAIT_FOR_CLIENT_LIMIT: Duration = Duration::from_secs(30);
/// How long output is still read after the supervisor exited (a process
/// that escaped it may hold the terminal open).
pub const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(1);
/// How long a client may take none of its queued output at the end
/// before it is given up.
pub const FINAL_FLUSH: Duration = Duration::from_secs(2);
/// How long the end's flush lasts at most, however steadily a client
/// trickles its queue away.
pub const FINAL_FLUSH_CAP: Duration = Duration::from_secs(20);
/// How long a client with a full queue may take nothing before it is
/// dropped.
pub const STALL_LIMIT: Duration = Duration::from_secs(2);
/// At most this many clients at once; more are refused.
pub const MAX_CLIENTS: usize = 64;
/// The default bound of one client's output queue.
pub const DEFAULT_OUTPUT_LIMIT: usize = 1024 * 1024;
/// Bytes read from the master at a time.
const CHUNK: usize = 64 * 1024;

/// Why a second input client is turned away (the agent answers 409).
pub const INPUT_BUSY: &str = "another client is attached to the input";

#[derive(Debug)]
pub struct Options {
    /// Where every byte of output is also written (the sandbox's stdout,
    /// rotated under the `logrotate` logger).
    pub log: Option<phobos_core::logrotate::LogFile>,
    /// Over pipes: where every byte of stderr is also written.
    pub err_log: Option<phobos_core::logrotate::LogFile>,
    /// Hold the output (and the end) until the first output client
    /// attached, at most [`WAIT_FOR_CLIENT_LIMIT`].
    pub wait_for_client: bool,
    /// A pidfd of the container's supervisor: once it exits, the output
    /// is drained for [`DRAIN_AFTER_EXIT`] at most.
    pub until: Option<OwnedFd>,
    /// Where clients connect.
    pub listener: Option<UnixListener>,
    /// Bytes of output one client may have queued before the master waits
    /// for it (and drops it after [`STALL_LIMIT`] without progress).
    pub output_limit: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            log: None,
            err_log: None,
            wait_for_client: false,
            until: None,
            listener: None,
            output_limit: DEFAULT_OUTPUT_LIMIT,
        }
    }
}

/// What a switchboard did, for its owner's log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub output_bytes: u64,
    pub clients: u64,
    /// Clients disconnected for not reading their output.
    pub slow_dropped: u64,
}

#[derive(Debug, PartialEq, Eq)]
enum PeerState {
    AwaitHello,
    Attached(Hello),
    /// Sends what is queued (a refusal), then closes.
    Closing,
}

#[derive(Debug)]
struct Peer {
    stream: UnixStream,
    decoder: Decoder,
    state: PeerState,
    out: VecDeque<u8>,
    dead: bool,
    /// When its queue last moved (or began to fill).
    last_progress: Instant,
}

impl Peer {
    fn new(stream: UnixStream) -> io::Result<Self> {
        stream.set_nonblocking(true)?;
        Ok(Self {
            stream,
            decoder: Decoder::default(),
            state: PeerState::AwaitHello,
            out: VecDeque::new(),
            dead: false,
            last_progress: Instant::now(),
        })
    }

    fn wants(&self, what: fn(&Hello) -> bool) -> bool {
        !self.dead && matches!(&self.state, PeerState::Attached(h) if what(h))
    }

    fn queue(&mut self, frame: &Frame) {
        let mut bytes = Vec::new();
        frame.encode(&mut bytes);
        self.out.extend(bytes);
    }

    /// Writes what is queued without blocking.
    fn flush(&mut self) {
        while !self.out.is_empty() && !self.dead {
            let (front, _) = self.out.as_slices();
            match (&self.stream).write(front) {
                Ok(0) => self.dead = true,
                Ok(n) => {
                    self.out.drain(..n);
                    self.last_progress = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => self.dead = true,
            }
        }
        if self.out.is_empty() && self.state == PeerState::Closing {
            self.dead = true;
        }
    }
}

/// What a switchboard holds.
#[derive(Debug)]
pub enum Io {
    /// A terminal's master: output, input, resizes.
    Terminal(OwnedFd),
    /// The command's pipes: its stdin's writing end, its stdout's and
    /// stderr's reading ends.
    Pipes {
        stdin: OwnedFd,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
}

/// One output to read: the master, or a pipe.
struct Source {
    file: File,
    stderr: bool,
    ended: bool,
}

/// A terminal's master (or a command's pipes) and everyone attached.
pub struct Switchboard {
    /// A terminal (its master is `sink`), not pipes.
    terminal: bool,
    sources: Vec<Source>,
    /// Where input goes: the master, or the stdin pipe until its EOF.
    sink: Option<File>,
    /// Over pipes: the input client's EOF, once its input is written.
    eof_pending: bool,
    opts: Options,
    peers: Vec<Peer>,
    /// Input waiting for the terminal, from the input client.
    input: Vec<u8>,
    summary: Summary,
}

impl Switchboard {
    /// A switchboard of a terminal's master.
    pub fn new(master: OwnedFd, opts: Options) -> io::Result<Self> {
        Self::with_io(Io::Terminal(master), opts)
    }

    pub fn with_io(io: Io, opts: Options) -> io::Result<Self> {
        if let Some(l) = &opts.listener {
            l.set_nonblocking(true)?;
        }
        let source = |fd: OwnedFd, stderr: bool| -> io::Result<Source> {
            set_nonblocking(fd.as_fd())?;
            Ok(Source {
                file: File::from(fd),
                stderr,
                ended: false,
            })
        };
        let (terminal, sources, sink) = match io {
            Io::Terminal(master) => {
                let sink = File::from(master.try_clone()?);
                (true, vec![source(master, false)?], sink)
            }
            Io::Pipes {
                stdin,
                stdout,
                stderr,
            } => {
                set_nonblocking(stdin.as_fd())?;
                let sources = vec![source(stdout, false)?, source(stderr, true)?];
                (false, sources, File::from(stdin))
            }
        };
        Ok(Self {
            terminal,
            sources,
            sink: Some(sink),
            eof_pending: false,
            opts,
            peers: Vec::new(),
            input: Vec::new(),
            summary: Summary::default(),
        })
    }

    /// Adds a client already connected (the other end of a socketpair, for
    /// an owner that attaches in-process).
    pub fn add_client(&mut self, stream: UnixStream) -> io::Result<()> {
        self.peers.push(Peer::new(stream)?);
        self.summary.clients += 1;
        Ok(())
    }

    fn input_taken(&self) -> bool {
        self.peers.iter().any(|p| p.wants(|h| h.input))
    }

    fn any_output_client(&self) -> bool {
        self.peers.iter().any(|p| p.wants(|h| h.output))
    }

    /// Serves until the terminal's output ended; see the module docs.
    pub fn run(mut self) -> io::Result<Summary> {
        let started = Instant::now();
        let mut reading = !self.opts.wait_for_client;
        let mut supervisor_gone = false;
        // The drain's clock runs only while the master is read: time held
        // back by a slow client (itself bounded by the stall limit) does
        // not eat into the output still buffered in the terminal.
        let mut drain_left = DRAIN_AFTER_EXIT;
        let mut hung_up = false;
        let mut buf = vec![0u8; CHUNK];
        loop {
            if !reading && (self.any_output_client() || started.elapsed() >= WAIT_FOR_CLIENT_LIMIT)
            {
                reading = true;
            }
            if hung_up || (supervisor_gone && drain_left.is_zero()) {
                break;
            }
            self.drop_stalled();
            self.peers.retain(|p| !p.dead);
            // Waiting for a client with a full queue: the master waits.
            let full_wait = self.full_wait();
            let reading_now = reading && full_wait.is_none();
            let mut timeout = if !reading {
                WAIT_FOR_CLIENT_LIMIT.saturating_sub(started.elapsed())
            } else if supervisor_gone && reading_now {
                drain_left
            } else {
                Duration::MAX
            };
            if let Some(left) = full_wait {
                timeout = timeout.min(left);
            }
            let turn_started = Instant::now();
            let (source_ev, sink_ev, listener_ev, until_ev, peer_ev) = {
                let mut fds = Vec::with_capacity(self.peers.len() + 5);
                // A hung-up master (or pipe) reports POLLHUP whatever is
                // asked: poll one only when something is asked of it.
                let mut source_at = Vec::with_capacity(self.sources.len());
                for src in &self.sources {
                    source_at.push((reading_now && !src.ended).then(|| {
                        fds.push(PollFd::new(src.file.as_fd(), PollFlags::POLLIN));
                        fds.len() - 1
                    }));
                }
                let sink_at = match &self.sink {
                    Some(sink) if !self.input.is_empty() => {
                        fds.push(PollFd::new(sink.as_fd(), PollFlags::POLLOUT));
                        Some(fds.len() - 1)
                    }
                    _ => None,
                };
                let listener_at = self.opts.listener.as_ref().map(|l| {
                    fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
                    fds.len() - 1
                });
                let until_at = match (&self.opts.until, reading, supervisor_gone) {
                    (Some(pidfd), true, false) => {
                        fds.push(PollFd::new(pidfd.as_fd(), PollFlags::POLLIN));
                        Some(fds.len() - 1)
                    }
                    _ => None,
                };
                let holding_input = !self.input.is_empty();
                let first_peer = fds.len();
                for p in &self.peers {
                    let mut flags = PollFlags::empty();
                    let held = holding_input && p.wants(|h| h.input);
                    if !held && p.state != PeerState::Closing {
                        flags |= PollFlags::POLLIN;
                    }
                    if !p.out.is_empty() {
                        flags |= PollFlags::POLLOUT;
                    }
                    fds.push(PollFd::new(p.stream.as_fd(), flags));
                }
                let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
                let pt = if timeout == Duration::MAX {
                    PollTimeout::NONE
                } else {
                    // Round up, so a sub-millisecond remainder cannot spin.
                    PollTimeout::try_from(ms.saturating_add(1)).unwrap_or(PollTimeout::MAX)
                };
                match poll(&mut fds, pt) {
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
                let ev = |i: Option<usize>| {
                    i.and_then(|i| fds[i].revents())
                        .unwrap_or(PollFlags::empty())
                };
                let peer_ev: Vec<PollFlags> =
                    (first_peer..fds.len()).map(|i| ev(Some(i))).collect();
                let source_ev: Vec<PollFlags> = source_at.into_iter().map(ev).collect();
                (
                    source_ev,
                    ev(sink_at),
                    ev(listener_at),
                    ev(until_at),
                    peer_ev,
                )
            };
            if supervisor_gone && reading_now {
                drain_left = drain_left.saturating_sub(turn_started.elapsed());
            }
            if !until_ev.is_empty() {
                supervisor_gone = true;
            }
            if !listener_ev.is_empty() {
                self.accept()?;
            }
            for (i, ev) in peer_ev.into_iter().enumerate() {
                if ev.is_empty() {
                    continue;
                }
                if ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                    self.read_peer(i, &mut buf);
                }
                if ev.contains(PollFlags::POLLOUT) {
                    self.peers[i].flush();
                }
            }
            if !sink_ev.is_empty() || !self.input.is_empty() || self.eof_pending {
                self.write_input();
            }
            if reading_now {
                for (i, ev) in source_ev.into_iter().enumerate() {
                    if !ev.is_empty() {
                        self.read_source(i, &mut buf);
                    }
                }
                hung_up = self.sources.iter().all(|s| s.ended);
            }
            for p in &mut self.peers {
                p.flush();
            }
        }
        self.final_flush();
        if self.terminal && hung_up && !supervisor_gone {
            self.hold_master_until_the_supervisor_exits();
        }
        Ok(self.summary)
    }

    /// Every slave closed is not the command's end: a command closes its
    /// standard descriptors just before it exits (coreutils' atexit), and
    /// closing the master now would hang the terminal up and kill it with
    /// SIGHUP on its way out. So the master stays open until the
    /// supervisor has exited (the container's end, which teardown bounds).
    fn hold_master_until_the_supervisor_exits(&self) {
        let Some(pidfd) = &self.opts.until else {
            return;
        };
        loop {
            let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::NONE) {
                Err(nix::errno::Errno::EINTR) => continue,
                _ => return,
            }
        }
    }

    /// While some output client's queue is full: how long until the
    /// first of them has stalled for [`STALL_LIMIT`].
    fn full_wait(&self) -> Option<Duration> {
        let limit = self.opts.output_limit;
        self.peers
            .iter()
            .filter(|p| p.wants(|h| h.output) && p.out.len() >= limit)
            .map(|p| STALL_LIMIT.saturating_sub(p.last_progress.elapsed()))
            .min()
    }

    /// Drops the clients whose full queue took nothing for [`STALL_LIMIT`].
    fn drop_stalled(&mut self) {
        let limit = self.opts.output_limit;
        for p in &mut self.peers {
            if p.wants(|h| h.output)
                && p.out.len() >= limit
                && p.last_progress.elapsed() >= STALL_LIMIT
            {
                p.dead = true;
                self.summary.slow_dropped += 1;
            }
        }
    }

    fn accept(&mut self) -> io::Result<()> {
        let Some(listener) = &self.opts.listener else {
            return Ok(());
        };
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    let mut peer = Peer::new(stream)?;
                    if self.peers.len() >= MAX_CLIENTS {
                        peer.queue(&Frame::Refused(format!(
                            "too many clients (at most {MAX_CLIENTS})"
                        )));
                        peer.state = PeerState::Closing;
                    }
                    self.summary.clients += 1;
                    self.peers.push(peer);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // ECONNABORTED and friends: that client is gone.
                Err(_) => return Ok(()),
            }
        }
    }

    /// Reads a client's frames and acts on them; a protocol error or a
    /// closed stream drops the client (freeing the input).
    fn read_peer(&mut self, i: usize, buf: &mut [u8]) {
        let n = loop {
            match (&self.peers[i].stream).read(buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => break 0,
            }
        };
        if n == 0 {
            self.peers[i].dead = true;
            return;
        }
        self.peers[i].decoder.feed(&buf[..n]);
        loop {
            let frame = match self.peers[i].decoder.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => return,
                Err(_) => {
                    self.peers[i].dead = true;
                    return;
                }
            };
            let state = std::mem::replace(&mut self.peers[i].state, PeerState::Closing);
            let next = match (state, frame) {
                (PeerState::AwaitHello, Frame::Hello(hello)) => {
                    if hello.input && self.input_taken() {
                        self.peers[i].queue(&Frame::Refused(INPUT_BUSY.into()));
                        PeerState::Closing
                    } else {
                        if let (true, Some(size)) = (hello.input, hello.size) {
                            self.resize(size);
                        }
                        self.peers[i].queue(&Frame::Accepted);
                        PeerState::Attached(hello)
                    }
                }
                (PeerState::Attached(h), Frame::Data(d)) if h.input => {
                    self.input.extend_from_slice(&d);
                    PeerState::Attached(h)
                }
                (PeerState::Attached(h), Frame::Resize(size)) if h.input => {
                    self.resize(size);
                    PeerState::Attached(h)
                }
                (PeerState::Attached(h), Frame::Eof) if h.input => {
                    if self.terminal {
                        // A terminal's end of input is its EOF character
                        // (VEOF, ^D, in canonical mode), as Mesos sends.
                        self.input.push(0x04);
                    } else {
                        // A pipe's is its close, once the input before
                        // it is written.
                        self.eof_pending = true;
                    }
                    PeerState::Attached(h)
                }
                _ => {
                    self.peers[i].dead = true;
                    return;
                }
            };
            self.peers[i].state = next;
        }
    }

    /// A new window size for the terminal (nothing over pipes).
    fn resize(&self, size: phobos_core::WindowSize) {
        if let (true, Some(master)) = (self.terminal, &self.sink) {
            let _ = crate::pty::set_window(master.as_fd(), size);
        }
    }

    /// Writes waiting input to the terminal (or the stdin pipe) without
    /// blocking; over pipes, closes it after an EOF's preceding input.
    fn write_input(&mut self) {
        let Some(sink) = &self.sink else {
            self.input.clear();
            return;
        };
        while !self.input.is_empty() {
            match (&*sink).write(&self.input) {
                Ok(n) => {
                    self.input.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // The terminal hung up (or the command closed its stdin):
                // nobody will read it.
                Err(_) => {
                    self.input.clear();
                    break;
                }
            }
        }
        if self.eof_pending && !self.terminal {
            self.sink = None;
            self.eof_pending = false;
        }
    }

    /// Reads what source `i` has; marks it ended once it hung up (EOF).
    fn read_source(&mut self, i: usize, buf: &mut [u8]) {
        // A few reads per turn, so clients and input are served in between.
        for _ in 0..4 {
            let n = match (&self.sources[i].file).read(buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // EIO: every slave is closed.
                Err(_) => 0,
            };
            if n == 0 {
                self.sources[i].ended = true;
                return;
            }
            let stderr = self.sources[i].stderr;
            self.broadcast(stderr, &buf[..n]);
        }
    }

    fn broadcast(&mut self, stderr: bool, bytes: &[u8]) {
        self.summary.output_bytes += bytes.len() as u64;
        // A full disk stops the log, never the command.
        let log = match stderr {
            false => &mut self.opts.log,
            true => &mut self.opts.err_log,
        };
        if let Some(file) = log
            && file.write_all(bytes).is_err()
        {
            *log = None;
        }
        let mut frame = Vec::with_capacity(bytes.len() + frame::HEADER_LEN);
        frame::encode_output(stderr, bytes, &mut frame);
        for p in &mut self.peers {
            if !p.wants(|h| h.output) {
                continue;
            }
            if p.out.is_empty() {
                p.last_progress = Instant::now();
            }
            p.out.extend(&frame);
        }
    }

    /// Gives queued output a bounded time to reach the clients: a client
    /// that keeps taking bytes gets its whole (bounded) queue, one that
    /// took nothing for [`FINAL_FLUSH`] is given up.
    fn final_flush(&mut self) {
        let started = Instant::now();
        for p in &mut self.peers {
            p.last_progress = started;
        }
        loop {
            for p in &mut self.peers {
                p.flush();
            }
            self.peers.retain(|p| {
                !p.dead && !p.out.is_empty() && p.last_progress.elapsed() < FINAL_FLUSH
            });
            let left = self
                .peers
                .iter()
                .map(|p| FINAL_FLUSH.saturating_sub(p.last_progress.elapsed()))
                .max()
                .unwrap_or_default()
                .min(FINAL_FLUSH_CAP.saturating_sub(started.elapsed()));
            if self.peers.is_empty() || left.is_zero() {
                return;
            }
            let mut fds: Vec<PollFd<'_>> = self
                .peers
                .iter()
                .map(|p| PollFd::new(p.stream.as_fd(), PollFlags::POLLOUT))
                .collect();
            let ms = (left.as_millis() as i32).saturating_add(1);
            let _ = poll(
                &mut fds,
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
            );
        }
    }
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Binds the switchboard's socket at `path` (any length: a path too long
/// for `sun_path` is reached through its directory's descriptor), mode
/// 0600. A stale socket file there is replaced.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    crate::client::via_dir(path, |short| {
        match std::fs::remove_file(short) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let listener = UnixListener::bind(short)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(short, std::fs::Permissions::from_mode(0o600))?;
        Ok(listener)
    })
}
