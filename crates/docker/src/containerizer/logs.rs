//! A Docker container's output: the engine's log copied or followed into
//! `<sandbox>/stdout` and `<sandbox>/stderr` (or to the caller), without
//! following symlinks in the sandbox.

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
            match sync_logs(&engine, &record.name, &config.sandbox).await {
                Ok(()) | Err(ContainerizerError::Engine(EngineError::NotFound { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Some(config.sandbox))
    }

    /// Follows the container's output until it ends: with `into_sandbox`
    /// into `<sandbox>/stdout|stderr` (rewriting them from the start, since
    /// the engine replays the whole log; appending for records launched
    /// with [`DockerLaunch::append_logs`]), and with `tee` onto this
    /// process's stdout and stderr. Exactly one sandbox follower should run
    /// for an appending record. When our stdout or stderr is a pipe whose
    /// reader is gone, that stream stops and, with `into_sandbox` (a
    /// foreground `phobos run`), the container gets SIGPIPE as a pipeline's
    /// writer would; without it (`phobos logs -f`), following ends.
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
                for (name, mut sink) in [
                    ("stdout", Box::new(io::stdout()) as Box<dyn Write>),
                    ("stderr", Box::new(io::stderr())),
                ] {
                    let path = config.sandbox.join(name);
                    let read = phobos_core::SafeDir::open_trusted(&config.sandbox)
                        .and_then(|dir| dir.read_file(name))
                        .map_err(io::Error::from)
                        .and_then(|mut f| {
                            let mut bytes = Vec::new();
                            io::Read::read_to_end(&mut f, &mut bytes).map(|_| bytes)
                        });
                    match read {
                        Ok(bytes) => {
                            let _ = sink.write_all(&bytes);
                        }
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(source) => {
                            return Err(ContainerizerError::Sandbox {
                                op: "read",
                                path,
                                source,
                            });
                        }
                    }
                }
            }
            return Ok(Some(()));
        }
        let engine = self.engine().await?;
        let open = |name: &str| {
            into_sandbox
                .then(|| open_log(&config.sandbox, name, record.append_logs))
                .transpose()
        };
        let mut out = open("stdout")?;
        let mut err = open("stderr")?;
        let options = LogsOptionsBuilder::new()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .build();
        let client = engine.client().clone().with_timeout(LONG_TIMEOUT);
        let mut stream = client.logs(&record.name, Some(options));
        let (mut out_broken, mut err_broken) = (false, false);
        while let Some(item) = stream.next().await {
            let item = match item {
                Ok(item) => item,
                Err(e) => {
                    tracing::warn!(%id, error = %e, "the container's log stream ended early");
                    break;
                }
            };
            let (file, path, is_err, bytes) = match &item {
                LogOutput::StdErr { message } => (&mut err, "stderr", true, message),
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    (&mut out, "stdout", false, message)
                }
                LogOutput::StdIn { .. } => continue,
            };
            if let Some(file) = file {
                file.write_all(bytes)
                    .map_err(|source| ContainerizerError::Sandbox {
                        op: "write",
                        path: config.sandbox.join(path),
                        source,
                    })?;
            }
            let broken = if is_err {
                &mut err_broken
            } else {
                &mut out_broken
            };
            if tee && !*broken {
                // The terminal going away must not stop the sandbox copy.
                let written = if is_err {
                    io::stderr().write_all(bytes)
                } else {
                    io::stdout()
                        .write_all(bytes)
                        .and_then(|()| io::stdout().flush())
                };
                if written.is_err_and(|e| e.kind() == io::ErrorKind::BrokenPipe) {
                    // Our reader is gone (`phobos run … | head`): output to
                    // this stream stops; a pipeline stage's writer gets
                    // SIGPIPE, and so does the container's command (through
                    // the engine's init), while the sandbox copy goes on. A
                    // mere `logs -f` just ends, leaving the container alone.
                    *broken = true;
                    if !into_sandbox {
                        return Ok(Some(()));
                    }
                    if let Err(e) = engine.kill(&record.name, "SIGPIPE").await {
                        tracing::debug!(%id, error = %e, "could not send SIGPIPE");
                    }
                }
            }
        }
        Ok(Some(()))
    }
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

/// The engine's whole log of `target`, written over the sandbox files in
/// place, from offset 0 and without truncating: a log follower writing the
/// same stream into the same files (see [`DockerContainerizer::follow`])
/// keeps its offset and writes the same bytes, so the two never disagree.
pub(super) async fn sync_logs(engine: &DockerEngine, target: &str, sandbox: &Path) -> Result<()> {
    let options = LogsOptionsBuilder::new()
        .follow(false)
        .stdout(true)
        .stderr(true)
        .build();
    let mut stream = engine.client().logs(target, Some(options));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while let Some(item) = stream.next().await {
        match item {
            Ok(LogOutput::StdErr { message }) => err.extend_from_slice(&message),
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                out.extend_from_slice(&message)
            }
            Ok(LogOutput::StdIn { .. }) => {}
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
        }
    }
    for (name, bytes) in [("stdout", out), ("stderr", err)] {
        open_log(sandbox, name, false)?
            .write_all(&bytes)
            .map_err(|source| ContainerizerError::Sandbox {
                op: "write",
                path: sandbox.join(name),
                source,
            })?;
    }
    Ok(())
}
