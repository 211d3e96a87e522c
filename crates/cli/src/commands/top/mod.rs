//! `phobos top`: every container of the host, live, refreshed every
//! `-d` seconds from the runtime directory and the cgroups
//! ([`phobos_runtime::top`]).
//!
//! On a terminal it takes the alternate screen and puts the terminal in
//! raw mode (both undone on every way out: `q`, Ctrl-C, SIGINT, SIGTERM,
//! SIGHUP, an error or a panic), redraws on SIGWINCH, and reads keys:
//! `c` `m` `p` `i` `u` `n` sort by CPU, memory, PIDs, ID, uptime, network;
//! `r` reverses; `/` starts a filter by ID prefix (Enter keeps it, Esc
//! clears it); `q` quits. Signals are read from a signalfd(2) polled with
//! the terminal. With `--batch` (or when stdout is no terminal) it prints
//! plain frames separated by a blank line, `-n` of them.

mod view;

use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use phobos_runtime::terminal::pty::{self, RawMode};
use phobos_runtime::top::Row;

pub use view::SortKey;
use view::{Status, View};

use crate::cli::Global;
use crate::context;
use crate::error::usage;

/// What `phobos top` was asked.
pub struct Options {
    pub delay: f64,
    pub iterations: Option<u64>,
    pub batch: bool,
    pub filter: Option<String>,
    pub sort: SortKey,
    pub reverse: bool,
}

pub fn run(global: &Global, opts: Options) -> anyhow::Result<u8> {
    if !(opts.delay.is_finite() && (0.05..=86_400.0).contains(&opts.delay)) {
        return Err(usage(format!(
            "-d {}: the delay must be between 0.05 and 86400 seconds",
            opts.delay
        )));
    }
    if opts.iterations == Some(0) {
        return Err(usage("-n 0: at least one iteration"));
    }
    let view = View {
        sort: opts.sort,
        reverse: opts.reverse,
        filter: opts.filter.clone().unwrap_or_default(),
    };
    let delay = Duration::from_secs_f64(opts.delay);
    let interactive =
        !opts.batch && std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    // The signals are read from a descriptor: blocked before the door
    // (and any thread of the Docker client) exists.
    let mut signals = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGWINCH,
    ] {
        signals.add(s);
    }
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&signals), None)?;
    let signalfd = SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
    raise_open_file_limit();
    let door = context::door(global)?;
    let mut sampler = door.top();
    if interactive {
        interactive_loop(&mut sampler, view, delay, opts.iterations, &signalfd)
    } else {
        batch_loop(&mut sampler, &view, delay, opts.iterations, &signalfd)
    }
}

/// Plain frames on stdout, one every `delay`, until `iterations` or a
/// signal.
fn batch_loop(
    sampler: &mut phobos_runtime::top::Sampler<'_>,
    view: &View,
    delay: Duration,
    iterations: Option<u64>,
    signals: &SignalFd,
) -> anyhow::Result<u8> {
    let mut out = crate::output::stdout();
    let mut n = 0u64;
    loop {
        let rows = sampler.refresh();
        n += 1;
        let status = Status {
            clock: &clock(),
            typing: None,
        };
        if n > 1 {
            writeln!(out)?;
        }
        for line in view::frame(&rows, view, &status, usize::MAX, None) {
            writeln!(out, "{line}")?;
        }
        out.flush()?;
        if iterations.is_some_and(|max| n >= max) {
            return Ok(0);
        }
        let deadline = Instant::now() + delay;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let mut fds = [PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
            poll(&mut fds, timeout(left))?;
            if let Some(sig) = next_signal(signals)
                && sig != Signal::SIGWINCH
            {
                return Ok(0);
            }
        }
    }
}

/// The terminal taken over for the view: the alternate screen, no cursor,
/// raw input; all given back when this is dropped (on every return, error
/// and panic alike).
struct Screen {
    _raw: Option<RawMode>,
}

impl Screen {
    fn take() -> anyhow::Result<Self> {
        let raw = RawMode::enter(std::io::stdin().as_fd())?;
        let mut out = std::io::stdout().lock();
        out.write_all(b"\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J")?;
        out.flush()?;
        Ok(Self { _raw: raw })
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(b"\x1b[?25h\x1b[?1049l");
        let _ = out.flush();
        // `_raw` restores the saved terminal settings after this.
    }
}

fn interactive_loop(
    sampler: &mut phobos_runtime::top::Sampler<'_>,
    mut view: View,
    delay: Duration,
    iterations: Option<u64>,
    signals: &SignalFd,
) -> anyhow::Result<u8> {
    let stdin = std::io::stdin();
    let _screen = Screen::take()?;
    let mut typing: Option<String> = None;
    let mut rows: Vec<Row> = sampler.refresh();
    let mut n = 1u64;
    let mut next = Instant::now() + delay;
    loop {
        draw(&rows, &view, typing.as_deref())?;
        let left = next.saturating_duration_since(Instant::now());
        if left.is_zero() {
            if iterations.is_some_and(|max| n >= max) {
                return Ok(0);
            }
            rows = sampler.refresh();
            n += 1;
            next = Instant::now() + delay;
            continue;
        }
        let mut fds = [
            PollFd::new(stdin.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
        ];
        poll(&mut fds, timeout(left))?;
        let input_ready = fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP));
        while let Some(sig) = next_signal(signals) {
            if sig != Signal::SIGWINCH {
                return Ok(0);
            }
            // SIGWINCH: the next draw takes the new size.
        }
        if !input_ready {
            continue;
        }
        let mut keys = [0u8; 64];
        let got = nix::unistd::read(stdin.as_fd(), &mut keys)?;
        if got == 0 {
            // The terminal went away.
            return Ok(0);
        }
        for &key in &keys[..got] {
            if let Some(text) = typing.as_mut() {
                match key {
                    b'\r' | b'\n' => {
                        view.filter = std::mem::take(text);
                        typing = None;
                    }
                    0x1b => {
                        view.filter.clear();
                        typing = None;
                    }
                    0x03 => return Ok(0),
                    0x7f | 0x08 => {
                        text.pop();
                    }
                    k if k.is_ascii_graphic() => text.push(k as char),
                    _ => {}
                }
                continue;
            }
            match key {
                b'q' | b'Q' | 0x03 => return Ok(0),
                b'r' | b'R' => view.reverse = !view.reverse,
                b'/' => typing = Some(String::new()),
                k => {
                    if let Some(sort) = SortKey::from_key(k) {
                        view.sort = sort;
                    }
                }
            }
        }
    }
}

/// Draws a frame over the previous one, at the terminal's current size.
fn draw(rows: &[Row], view: &View, typing: Option<&str>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let size = pty::window(out.as_fd());
    let (width, height) = size.map_or((80, 24), |s| (s.columns as usize, s.rows as usize));
    let status = Status {
        clock: &clock(),
        typing,
    };
    let mut text = Vec::with_capacity(width * height);
    text.extend_from_slice(b"\x1b[H");
    let lines = view::frame(rows, view, &status, width, Some(height));
    let count = lines.len();
    for (i, line) in lines.into_iter().enumerate() {
        text.extend_from_slice(line.as_bytes());
        text.extend_from_slice(b"\x1b[K");
        if i + 1 < count {
            text.extend_from_slice(b"\r\n");
        }
    }
    text.extend_from_slice(b"\x1b[J");
    out.write_all(&text)?;
    out.flush()?;
    Ok(())
}

fn next_signal(signals: &SignalFd) -> Option<Signal> {
    match signals.read_signal() {
        Ok(Some(info)) => Signal::try_from(info.ssi_signo as i32).ok(),
        _ => None,
    }
}

fn timeout(left: Duration) -> PollTimeout {
    PollTimeout::try_from(left.as_millis().clamp(1, 60_000) as i32).unwrap_or(PollTimeout::NONE)
}

/// The time of day (UTC) for the summary line.
fn clock() -> String {
    let secs = phobos_core::time::now_secs() as u64 % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Every running container keeps a few accounting files open: lift the
/// soft descriptor limit to the hard one (best effort; a file that cannot
/// be opened shows `-`).
fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard.min(1 << 20), hard);
    }
}
