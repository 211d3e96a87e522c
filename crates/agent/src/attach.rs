//! `ATTACH_CONTAINER_OUTPUT` (and a session's stream).
//!
//! A container with a terminal: the stream is a client of its switchboard
//! (live output, `STDOUT` records: a terminal merges stderr), from the
//! moment of the attach until the terminal's output ends. The switchboard
//! drops a client that stops reading (see `phobos_tty::server`): a stalled
//! HTTP client stalls only its own stream, never the command.
//!
//! A container without one: the container's output is in its sandbox's
//! `stdout` and `stderr` (init writes them; nothing a client does can
//! block the command), and each attached client gets its own reader of
//! those files, from the oldest rotated file on, following them across
//! rotations (`phobos_core::log_stream`, by inode: no line twice, none
//! missed) with a read every [`POLL`] when there is nothing new, until the
//! container has ended and both streams are drained; then the stream ends
//! (init's exit, watched through its pidfd, wakes the reader at once).
//! Any number of clients may attach to one container.
//!
//! The files are opened beneath the sandbox without following symlinks
//! (`phobos_core::safe_fs`): a container cannot swap them for links to
//! files of the host.

use std::sync::Arc;
use std::time::{Duration, Instant};

use phobos_core::log_stream::{Cursor, Start};
use phobos_core::safe_fs::SafeDir;
use phobos_core::{ContainerId, ContainerState};
use phobos_proto::agent::process_io::data::Type as DataType;
use phobos_runtime::terminal::frame::Frame;

use crate::error::ApiError;
use crate::server::State;
use crate::stream::{self, RecordSender};
use crate::terminal::Attached;

/// How often an idle stream looks for more output.
pub const POLL: Duration = Duration::from_millis(100);

/// Largest DATA record.
const CHUNK: usize = 64 * 1024;

/// What a stream needs to follow one container.
#[derive(Debug)]
pub struct Follow {
    id: ContainerId,
    source: Source,
    /// A session's container: destroyed when the client goes.
    session: bool,
}

#[derive(Debug)]
enum Source {
    Files(Files),
    Terminal(Attached),
}

#[derive(Debug)]
struct Files {
    sandbox: SafeDir,
    stdout: Cursor,
    stderr: Cursor,
    /// The container's init, while it runs.
    init: Option<std::os::fd::OwnedFd>,
}

impl Follow {
    /// Ties the container's life to the stream (a session).
    pub fn session(self) -> Self {
        Self {
            session: true,
            ..self
        }
    }
}

/// Opens the output of `id` for a new stream: 404 unknown.
pub async fn open(state: &Arc<State>, id: &ContainerId) -> Result<Follow, ApiError> {
    let hello = phobos_runtime::terminal::Attach {
        input: false,
        output: true,
        size: None,
    };
    if let Some(attached) = crate::terminal::attach(state, id, hello).await? {
        return Ok(Follow {
            id: id.clone(),
            source: Source::Terminal(attached),
            session: false,
        });
    }
    let door = Arc::clone(&state.door);
    let key = id.clone();
    let summary = tokio::task::spawn_blocking(move || door.summary(&key))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(format!("Failed to attach to container {id}: {e}")))?
        .ok_or_else(|| ApiError::not_found(format!("Container {id} cannot be found")))?;
    let sandbox = summary.sandbox().to_owned();
    let files = tokio::task::spawn_blocking(move || {
        let dir = SafeDir::open_trusted(&sandbox)?;
        let stdout = Cursor::open(&dir, "stdout", Start::Oldest)?;
        let stderr = Cursor::open(&dir, "stderr", Start::Oldest)?;
        Ok::<_, std::io::Error>((dir, stdout, stderr))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(|e| ApiError::internal(format!("Failed to open the output of container {id}: {e}")))?;
    let init = match (summary.state(), summary.pid()) {
        (ContainerState::Terminated, _) | (_, None) => None,
        (_, Some(pid)) => phobos_runtime::sys::pidfd_open(pid).ok(),
    };
    Ok(Follow {
        id: id.clone(),
        source: Source::Files(Files {
            sandbox: files.0,
            stdout: files.1,
            stderr: files.2,
            init,
        }),
        session: false,
    })
}

/// Streams `follow` to `out` until the container has ended and its output
/// is drained, or the client goes (which destroys a session's container).
pub async fn pump(state: Arc<State>, follow: Follow, out: RecordSender) {
    let (id, session) = (follow.id, follow.session);
    let followed = match follow.source {
        Source::Files(files) => follow_files(&state, &id, files, &out).await,
        Source::Terminal(attached) => follow_terminal(attached, &out).await,
    };
    if followed.is_err() && session {
        crate::calls::destroy(&state, &id).await;
    }
}

/// Relays a switchboard's output until it ends; `Err` when the client
/// went before the end.
async fn follow_terminal(mut t: Attached, out: &RecordSender) -> Result<(), stream::Gone> {
    use tokio::io::AsyncReadExt;
    for frame in std::mem::take(&mut t.ahead) {
        if let Some((kind, bytes)) = output(frame) {
            out.send(&stream::data(kind, bytes)).await?;
        }
    }
    let mut buf = vec![0u8; CHUNK];
    let mut last_sent = Instant::now();
    loop {
        loop {
            match t.decoder.next_frame() {
                Ok(Some(f @ (Frame::Data(_) | Frame::ErrData(_)))) => {
                    if let Some((kind, bytes)) = output(f) {
                        out.send(&stream::data(kind, bytes)).await?;
                    }
                    last_sent = Instant::now();
                }
                Ok(None) => break,
                Ok(Some(other)) => {
                    tracing::warn!(frame = ?other, "unexpected frame from a switchboard");
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a switchboard broke the protocol");
                    return Ok(());
                }
            }
        }
        let heartbeat_at = tokio::time::Instant::from_std(last_sent + out.interval());
        tokio::select! {
            read = t.stream.read(&mut buf) => match read {
                // The terminal's output ended (or the switchboard dropped
                // this client for not reading).
                Ok(0) | Err(_) => return Ok(()),
                Ok(n) => t.decoder.feed(&buf[..n]),
            },
            () = tokio::time::sleep_until(heartbeat_at) => {
                out.heartbeat().await?;
                last_sent = Instant::now();
            }
            () = out.closed() => return Err(stream::Gone),
        }
    }
}

/// A switchboard's output frame as a `ProcessIO` DATA record's stream and
/// bytes: `Data` is STDOUT (a terminal's merged output, or a pipe's
/// stdout), `ErrData` STDERR.
fn output(frame: Frame) -> Option<(DataType, Vec<u8>)> {
    match frame {
        Frame::Data(d) => Some((DataType::Stdout, d)),
        Frame::ErrData(d) => Some((DataType::Stderr, d)),
        _ => None,
    }
}

/// `Err` when the client went before the end.
async fn follow_files(
    state: &Arc<State>,
    id: &ContainerId,
    mut follow: Files,
    out: &RecordSender,
) -> Result<(), stream::Gone> {
    let mut last_sent = Instant::now();
    // Init's exit wakes the loop at once (the last pass then drains the
    // files and ends the stream) instead of at the next poll.
    let mut init_exit: Option<ExitFuture> = follow
        .init
        .as_ref()
        .and_then(|fd| fd.try_clone().ok())
        .map(|fd| Box::pin(crate::waits::exited(fd)) as ExitFuture);
    loop {
        // Whether the container had ended before this pass: output written
        // before its end is then all in the files.
        let ended = match &follow.init {
            None => true,
            Some(fd) => poll_readable(fd),
        };
        let mut sent = false;
        for (cursor, kind) in [
            (&mut follow.stdout, DataType::Stdout),
            (&mut follow.stderr, DataType::Stderr),
        ] {
            loop {
                let mut buf = vec![0; CHUNK];
                let n = match cursor.read(&follow.sandbox, &mut buf) {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(container = %id, error = %e, "reading output failed");
                        return Err(stream::Gone);
                    }
                };
                if n == 0 {
                    break;
                }
                buf.truncate(n);
                out.send(&stream::data(kind, buf)).await?;
                sent = true;
            }
        }
        if sent {
            last_sent = Instant::now();
        }
        // Without an init to watch (still launching, an engine's
        // container), the record says when the output is complete.
        if ended && (follow.init.is_some() || terminated(state, id).await) {
            return Ok(());
        }
        if last_sent.elapsed() >= out.interval() {
            out.heartbeat().await?;
            last_sent = Instant::now();
        }
        let mut init_exited = false;
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = until_exit(&mut init_exit) => init_exited = true,
            () = out.closed() => return Err(stream::Gone),
        }
        if init_exited {
            init_exit = None;
        }
    }
}

type ExitFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Resolves when init has exited; never without an init to watch.
async fn until_exit(exit: &mut Option<ExitFuture>) {
    match exit {
        Some(f) => f.as_mut().await,
        None => std::future::pending().await,
    }
}

/// Whether the container's record says it ended (or it is gone).
async fn terminated(state: &Arc<State>, id: &ContainerId) -> bool {
    let door = Arc::clone(&state.door);
    let key = id.clone();
    match tokio::task::spawn_blocking(move || door.summary(&key)).await {
        Ok(Ok(Some(s))) => s.state() == ContainerState::Terminated,
        _ => true,
    }
}

/// Whether a pidfd is readable (its process has exited), without waiting.
fn poll_readable(fd: &std::os::fd::OwnedFd) -> bool {
    use std::os::fd::AsFd;
    let mut fds = [nix::poll::PollFd::new(
        fd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    matches!(nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO), Ok(n) if n > 0)
}
