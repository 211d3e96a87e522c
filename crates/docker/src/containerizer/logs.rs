//! A Docker container's output: the engine's log copied or followed into
//! `<sandbox>/stdout` and `<sandbox>/stderr` (through [`super::log_copy`],
//! rotated by the `logrotate` logger), or to the caller, without following
//! symlinks in the sandbox.

use futures_util::FutureExt;

use super::log_copy::{Checkpoint, Ident, LOG_COPY_FILE, Reader, STREAMS, Session};
use super::*;

impl DockerContainerizer {
    /// Copies the engine's complete log of the container into its sandbox
    /// files (replacing them), so `logs` of a detached container shows
    /// everything so far. Returns the sandbox; `None` for an unknown ID.
    /// After the container was removed the files already hold the whole log.
    pub async fn refresh_logs(&self, id: &ContainerId) -> Result<Option<PathBuf>> {
        let Some(dir) = self.store.open(id) else {
            return Ok(None);
        };
        let (config, record) = self.record(&dir)?;
        if record.append_logs || dir.read_json::<Termination>(TERMINATION_FILE)?.is_some() {
            return Ok(Some(config.sandbox));
        }
        let engine = self.engine().await?;
        let _lock = dir.lock_op()?;
        if dir.read_json::<Termination>(TERMINATION_FILE)?.is_none() {
            match sync_logs(&engine, &record.name, &dir, &config).await {
                Ok(()) | Err(ContainerizerError::Engine(EngineError::NotFound { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Some(config.sandbox))
    }

    /// Follows the container's output until it ends: with `into_sandbox`
    /// into `<sandbox>/stdout|stderr` (through the copy's checkpoint, see
    /// [`super::log_copy`]: what another writer copied meanwhile is not
    /// written twice; appending for records launched with
    /// [`DockerLaunch::append_logs`]), and with `tee` onto this process's
    /// stdout and stderr. Exactly one sandbox follower should run for an
    /// appending record. When our stdout or stderr is a pipe whose reader
    /// is gone, that stream stops and, with `into_sandbox` (a foreground
    /// `phobos run`), the container gets SIGPIPE as a pipeline's writer
    /// would; without it (`phobos logs -f`), following ends.
    pub async fn follow(
        &self,
        id: &ContainerId,
        tee: bool,
        into_sandbox: bool,
    ) -> Result<Option<()>> {
        let Some(dir) = self.store.open(id) else {
            return Ok(None);
        };
        let (config, record) = self.record(&dir)?;
        if dir.read_json::<Termination>(TERMINATION_FILE)?.is_some() {
            // Ended and removed: the sandbox files hold the whole log.
            if tee {
                print_sandbox_logs(&config.sandbox)?;
            }
            return Ok(Some(()));
        }
        let engine = self.engine().await?;
        // The checkpointed copy, or (ECP) plain appending.
        let copy = into_sandbox && !record.append_logs;
        let mut append = match into_sandbox && record.append_logs {
            true => Some([
                open_log(&config.sandbox, "stdout", true)?,
                open_log(&config.sandbox, "stderr", true)?,
            ]),
            false => None,
        };
        // A detached follower starts where the copy stands; one that
        // shows the output shows all of it.
        let since = match copy && !tee {
            true => dir
                .read_json::<Checkpoint>(LOG_COPY_FILE)?
                .unwrap_or_default()
                .since(),
            false => 0,
        };
        let options = LogsOptionsBuilder::new()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .timestamps(copy)
            .since(since)
            .build();
        let client = engine.client().clone().with_timeout(LONG_TIMEOUT);
        let mut stream = client.logs(&record.name, Some(options));
        let mut reader = Reader::default();
        let mut broken = [false; 2];
        // The last message shown of each stream (with the copy's
        // timestamps), for the catch-up below.
        let mut shown: [Ident; 2] = [(0, 0); 2];
        let mut ended = false;
        while !ended {
            let mut batch = Vec::new();
            let mut batched = 0;
            let mut next = stream.next().await;
            loop {
                let item = match next {
                    None => {
                        ended = true;
                        break;
                    }
                    Some(Err(e)) => {
                        tracing::warn!(%id, error = %e, "the container's log stream ended early");
                        ended = true;
                        break;
                    }
                    Some(Ok(item)) => item,
                };
                let (index, message) = match item {
                    LogOutput::StdErr { message } => (1, message),
                    LogOutput::StdOut { message } | LogOutput::Console { message } => (0, message),
                    LogOutput::StdIn { .. } => (2, Default::default()),
                };
                if index < 2 {
                    let (ident, offset) = match copy {
                        true => match reader.next(index, &message) {
                            Some((ident, bytes)) => (ident, message.len() - bytes.len()),
                            None => {
                                tracing::warn!(%id, "a log message without a timestamp: not copied");
                                ((0, 0), message.len())
                            }
                        },
                        false => ((0, 0), 0),
                    };
                    let bytes = message.slice(offset..);
                    if let Some(files) = &mut append {
                        files[index].write_all(&bytes).map_err(|source| {
                            ContainerizerError::Sandbox {
                                op: "write",
                                path: config.sandbox.join(STREAMS[index]),
                                source,
                            }
                        })?;
                    }
                    if tee && ident != (0, 0) {
                        shown[index] = ident;
                    }
                    if tee && !broken[index] && tee_write(index, &bytes) {
                        // Our reader is gone (`phobos run … | head`):
                        // output to this stream stops; a pipeline stage's
                        // writer gets SIGPIPE, and so does the
                        // container's command (through the engine's
                        // init), while the sandbox copy goes on. A mere
                        // `logs -f` just ends, leaving the container alone.
                        broken[index] = true;
                        if !into_sandbox {
                            return Ok(Some(()));
                        }
                        if let Err(e) = engine.kill(&record.name, "SIGPIPE").await {
                            tracing::debug!(%id, error = %e, "could not send SIGPIPE");
                        }
                    }
                    if copy && ident != (0, 0) {
                        batched += bytes.len();
                        batch.push((index, ident, bytes));
                    }
                }
                // Whatever else is there already goes in the same turn.
                if batched >= BATCH {
                    break;
                }
                match stream.next().now_or_never() {
                    Some(item) => next = item,
                    None => break,
                }
            }
            if !batch.is_empty() {
                let mut session = Session::open(&dir, &config.sandbox, config.logrotate.as_ref())?;
                for (index, ident, bytes) in &batch {
                    session.apply(*index, *ident, bytes)?;
                }
                session.close()?;
            }
        }
        if tee && copy && broken != [true; 2] {
            // Docker 20.10's follow stream can end at the container's exit
            // before its last messages: what it missed is read once more,
            // without following, and shown after what was.
            catch_up(&engine, &record.name, &dir, &config, shown, broken).await?;
        }
        Ok(Some(()))
    }
}

/// Shows (and copies) the messages of the engine's log of `target` past
/// `shown`, the last message of each stream the follow stream showed.
async fn catch_up(
    engine: &DockerEngine,
    target: &str,
    record: &ContainerDir,
    config: &ContainerConfig,
    shown: [Ident; 2],
    broken: [bool; 2],
) -> Result<()> {
    let since = Checkpoint {
        streams: shown.map(|(ts, _)| super::log_copy::Mark {
            ts,
            ..Default::default()
        }),
    }
    .since();
    match replay(engine, target, record, config, Some((since, shown, broken))).await {
        // Removed meanwhile (`--rm`): nothing more to show.
        Err(ContainerizerError::Engine(EngineError::NotFound { .. })) => Ok(()),
        other => other,
    }
}

/// Bytes the follower copies per turn of the copy lock, at most (a
/// little more: whole messages).
const BATCH: usize = 1 << 20;

/// Writes to our stdout (`index` 0) or stderr; `true` when its reader is
/// gone. Other failures are ignored: the terminal going away must not
/// stop the sandbox copy.
fn tee_write(index: usize, bytes: &[u8]) -> bool {
    let written = match index {
        0 => io::stdout()
            .write_all(bytes)
            .and_then(|()| io::stdout().flush()),
        _ => io::stderr().write_all(bytes),
    };
    written.is_err_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

/// Prints an ended container's sandbox files, across their rotated files,
/// to our stdout and stderr.
fn print_sandbox_logs(sandbox: &Path) -> Result<()> {
    use phobos_core::log_stream::{Cursor, Start};
    let err = |source: io::Error| ContainerizerError::Sandbox {
        op: "read",
        path: sandbox.to_owned(),
        source,
    };
    let dir = phobos_core::SafeDir::open_trusted(sandbox).map_err(|e| err(e.into()))?;
    for (name, mut sink) in [
        ("stdout", Box::new(io::stdout()) as Box<dyn Write>),
        ("stderr", Box::new(io::stderr())),
    ] {
        let mut cursor = Cursor::open(&dir, name, Start::Oldest).map_err(err)?;
        // A reader that went away is not our failure.
        let _ = cursor.copy(&dir, &mut sink).map_err(err)?;
    }
    Ok(())
}

/// Waits (at most [`FOLLOWER_DRAIN`]) until nobody holds the follower lock.
pub(super) async fn wait_for_follower(path: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    // Not through a symlink planted in the record's place.
    let opened = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path);
    let Ok(file) = opened else {
        return;
    };
    let deadline = tokio::time::Instant::now() + FOLLOWER_DRAIN;
    while tokio::time::Instant::now() < deadline {
        match file.try_lock_shared() {
            Ok(()) => return,
            Err(fs::TryLockError::WouldBlock) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(fs::TryLockError::Error(e)) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot check the log follower");
                return;
            }
        }
    }
    tracing::warn!(path = %path.display(), "the log follower did not finish in time");
}

/// Timeout for the log follow (about 10 years).
pub(super) const LONG_TIMEOUT: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Opens a sandbox log: appending, or for writing from offset 0 without
/// truncating it (the writer replays the same log the file already holds a
/// prefix of).
/// Opens (creating) the sandbox file `name`, appending or writing in
/// place. The sandbox is the container's (mounted into it, writable by
/// its user): the file is opened beneath it without following a symlink
/// the container may have put there, and must be a regular file.
pub(super) fn open_log(sandbox: &Path, name: &str, append: bool) -> Result<fs::File> {
    let opened = phobos_core::SafeDir::open_trusted(sandbox).and_then(|dir| {
        if append {
            dir.append_file(name, 0o644)
        } else {
            dir.write_file(name, 0o644)
        }
    });
    opened.map_err(|e| ContainerizerError::Sandbox {
        op: "create",
        path: sandbox.join(name),
        source: e.into(),
    })
}

/// Copies what the engine's log of `target` holds past the copy's
/// checkpoint into the sandbox files (see [`super::log_copy`]), holding
/// the copy lock: a follower copying at the same time waits its turn and
/// then skips what this wrote.
pub(super) async fn sync_logs(
    engine: &DockerEngine,
    target: &str,
    record: &ContainerDir,
    config: &ContainerConfig,
) -> Result<()> {
    replay(engine, target, record, config, None).await
}

/// One pass over the engine's log of `target` without following, copied
/// into the sandbox files past the copy's checkpoint; from the
/// checkpoint's `since`, or with `show` = (since, the last message shown of
/// each stream, whether its reader is gone) from that `since`, also showing
/// on our stdout and stderr the messages past those shown.
async fn replay(
    engine: &DockerEngine,
    target: &str,
    record: &ContainerDir,
    config: &ContainerConfig,
    show: Option<(i32, [Ident; 2], [bool; 2])>,
) -> Result<()> {
    let mut session = Session::open(record, &config.sandbox, config.logrotate.as_ref())?;
    let since = match show {
        Some((since, ..)) => since,
        None => session.checkpoint().since(),
    };
    let options = LogsOptionsBuilder::new()
        .follow(false)
        .stdout(true)
        .stderr(true)
        .timestamps(true)
        .since(since)
        .build();
    let mut stream = engine.client().logs(target, Some(options));
    let mut reader = Reader::default();
    let copied = async {
        while let Some(item) = stream.next().await {
            let (index, message) = match item {
                Ok(LogOutput::StdErr { message }) => (1, message),
                Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => (0, message),
                Ok(LogOutput::StdIn { .. }) => continue,
                Err(e) if crate::engine::is_not_found(&e) => {
                    return Err(EngineError::NotFound {
                        target: target.to_owned(),
                    }
                    .into());
                }
                Err(source) => {
                    return Err(EngineError::LogStream {
                        target: target.to_owned(),
                        source,
                    }
                    .into());
                }
            };
            let Some((ident, bytes)) = reader.next(index, &message) else {
                tracing::warn!(target, "a log message without a timestamp: not copied");
                continue;
            };
            if let Some((_, shown, broken)) = show
                && ident > shown[index]
                && !broken[index]
            {
                tee_write(index, bytes);
            }
            session.apply(index, ident, bytes)?;
        }
        Ok(())
    }
    .await;
    // What was copied stays checkpointed, even after a failure.
    session.close()?;
    copied
}
