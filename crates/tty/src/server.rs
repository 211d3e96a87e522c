//! The switchboard: the one holder of a terminal's master.
//!
//! One `poll(2)` loop, every descriptor non-blocking. Output read from the
//! master goes to the log (the sandbox's `stdout`, a regular file) and
//! into each output client's queue. While a client's queue is over
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
/// How long queued output may take to reach clients at the end.
pub const FINAL_FLUSH: Duration = Duration::from_secs(2);
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

/// A terminal's master and everyone attached to it.
pub struct Switchboard {
    master: File,
    opts: Options,
    peers: Vec<Peer>,
    /// Input waiting for the terminal, from the input client.
    input: Vec<u8>,
    summary: Summary,
}

impl Switchboard {
    pub fn new(master: OwnedFd, opts: Options) -> io::Result<Self> {
        set_nonblocking(master.as_fd())?;
        if let Some(l) = &opts.listener {
            l.set_nonblocking(true)?;
        }
        Ok(Self {
            master: File::from(master),
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
        let mut supervisor_gone: Option<Instant> = None;
        let mut hung_up = false;
        let mut buf = vec![0u8; CHUNK];
        loop {
            if !reading && (self.any_output_client() || started.elapsed() >= WAIT_FOR_CLIENT_LIMIT)
            {
                reading = true;
            }
            if hung_up || supervisor_gone.is_some_and(|t| t.elapsed() >= DRAIN_AFTER_EXIT) {
                break;
            }
            self.drop_stalled();
            self.peers.retain(|p| !p.dead);
            // Waiting for a client with a full queue: the master waits.
            let full_wait = self.full_wait();
            let mut timeout = if !reading {
                WAIT_FOR_CLIENT_LIMIT.saturating_sub(started.elapsed())
            } else if let Some(t) = supervisor_gone {
                DRAIN_AFTER_EXIT.saturating_sub(t.elapsed())
            } else {
                Duration::MAX
            };
            if let Some(left) = full_wait {
                timeout = timeout.min(left);
            }
            let reading_now = reading && full_wait.is_none();
            let (master_ev, listener_ev, until_ev, peer_ev) = {
                let mut fds = Vec::with_capacity(self.peers.len() + 3);
                let mut master_flags = PollFlags::empty();
                if reading_now {
                    master_flags |= PollFlags::POLLIN;
                }
                if !self.input.is_empty() {
                    master_flags |= PollFlags::POLLOUT;
                }
                // A hung-up master reports POLLHUP whatever is asked: poll
                // it only when something is asked of it.
                let master_at = (!master_flags.is_empty()).then(|| {
                    fds.push(PollFd::new(self.master.as_fd(), master_flags));
                    fds.len() - 1
                });
                let listener_at = self.opts.listener.as_ref().map(|l| {
                    fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
                    fds.len() - 1
                });
                let until_at = match (&self.opts.until, reading, supervisor_gone) {
                    (Some(pidfd), true, None) => {
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
                (ev(master_at), ev(listener_at), ev(until_at), peer_ev)
            };
            if !until_ev.is_empty() {
                supervisor_gone = Some(Instant::now());
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
            if master_ev.intersects(PollFlags::POLLOUT | PollFlags::POLLERR | PollFlags::POLLHUP)
                || !self.input.is_empty()
            {
                self.write_input();
            }
            if reading_now && !master_ev.is_empty() && self.read_master(&mut buf) {
                hung_up = true;
            }
            for p in &mut self.peers {
                p.flush();
            }
        }
        self.final_flush();
        if hung_up && supervisor_gone.is_none() {
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
                            let _ = crate::pty::set_window(self.master.as_fd(), size);
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
                    let _ = crate::pty::set_window(self.master.as_fd(), size);
                    PeerState::Attached(h)
                }
                (PeerState::Attached(h), Frame::Eof) if h.input => {
                    // A terminal's end of input is its EOF character
                    // (VEOF, ^D, in canonical mode), as Mesos sends.
                    self.input.push(0x04);
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

    /// Writes waiting input to the terminal without blocking.
    fn write_input(&mut self) {
        while !self.input.is_empty() {
            match (&self.master).write(&self.input) {
                Ok(n) => {
                    self.input.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // The terminal hung up: nobody will read it.
                Err(_) => {
                    self.input.clear();
                    return;
                }
            }
        }
    }

    /// Reads what the terminal has; true once it hung up.
    fn read_master(&mut self, buf: &mut [u8]) -> bool {
        // A few reads per turn, so clients and input are served in between.
        for _ in 0..4 {
            let n = match (&self.master).read(buf) {
                Ok(0) => return true,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                // EIO: every slave is closed.
                Err(_) => return true,
            };
            self.broadcast(&buf[..n]);
        }
        false
    }

    fn broadcast(&mut self, bytes: &[u8]) {
        self.summary.output_bytes += bytes.len() as u64;
        // A full disk stops the log, never the command.
        if let Some(log) = &mut self.opts.log
            && log.write_all(bytes).is_err()
        {
            self.opts.log = None;
        }
        let mut frame = Vec::with_capacity(bytes.len() + frame::HEADER_LEN);
        frame::encode_data(bytes, &mut frame);
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

    /// Gives queued output a bounded time to reach the clients.
    fn final_flush(&mut self) {
        let deadline = Instant::now() + FINAL_FLUSH;
        loop {
            for p in &mut self.peers {
                p.flush();
            }
            self.peers.retain(|p| !p.dead && !p.out.is_empty());
            let left = deadline.saturating_duration_since(Instant::now());
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
