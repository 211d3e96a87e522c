//! phobos-agent: `phobos agent`, the Mesos v1 agent container API
//! (`POST /api/v1`, reference §7) over HTTP/1.1 on a Unix socket and,
//! with a bearer token, on TCP; plus `GET /metrics` (Prometheus text) and
//! `GET /health`.
//!
//! The agent is a third face on the one door (`phobos_runtime::Door`),
//! beside the CLI and the external containerizer: a call is translated to
//! the planner's `LaunchIntent` ([`translate`]) or a door operation
//! ([`calls`]). It keeps no state of its own: the runtime directory is the
//! truth, so the CLI sees what the agent launched and the agent adopts
//! what the CLI launched, and containers outlive the agent (they are not
//! its children in any way that matters: init does not die with it, and
//! the next agent recovers and waits for them through pidfds).
//!
//! - [`server`]: listeners (socket mode 0600), hyper connections, routing,
//!   the bearer token, limits;
//! - [`media`]: JSON/protobuf bodies and `Accept` negotiation;
//! - [`calls`]: the calls; [`waits`]: shared, thread-free waiters;
//! - [`stream`]: RecordIO responses with heartbeats; [`attach`]: a
//!   container's output, from its switchboard for a terminal, else
//!   followed from its sandbox files; [`input`]: ATTACH_CONTAINER_INPUT's
//!   streaming request into the switchboard; [`terminal`]: the agent as a
//!   switchboard client;
//! - [`metrics`]: the Prometheus text; [`listing`]: Phobos's own
//!   `GET /phobos/v1/containers[/ID]` (the summaries `ps`/`status` print).

pub mod attach;
pub mod calls;
pub mod error;
pub mod input;
pub mod listing;
pub mod media;
pub mod metrics;
pub mod server;
pub mod stream;
pub mod terminal;
pub mod translate;
pub mod waits;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use phobos_runtime::{Door, EarlyFactory, Settings};
use tokio::sync::Semaphore;

pub use error::{AgentError, ApiError};
pub use server::Limits;

/// How `phobos agent` serves.
#[derive(Clone, Debug)]
pub struct Options {
    /// The Unix socket; `<runtime_dir>/agent.sock` when `None`.
    pub socket: Option<PathBuf>,
    /// `tcp:HOST:PORT` to serve on TCP too.
    pub tcp: Option<String>,
    /// The bearer token's file (required with `tcp`).
    pub token_file: Option<PathBuf>,
    pub limits: Limits,
}

/// What `main` started before its first thread, for [`serve`].
#[derive(Debug, Default)]
pub struct Early {
    /// The spawner factory (root only): plain launches have a spawner it
    /// made ahead clone their init; without it every init is cloned and
    /// exec'd on its launch's path.
    pub factory: Option<EarlyFactory>,
}

/// Serves until SIGTERM or SIGINT; containers keep running afterwards.
/// `ready` is called once the listeners are bound (recovery may still be
/// running: calls answer 503 until it is done).
pub fn serve(
    settings: Arc<Settings>,
    options: Options,
    early: Early,
    ready: impl FnOnce(&std::path::Path),
) -> Result<(), AgentError> {
    let tcp = match &options.tcp {
        Some(spec) => {
            let addr = server::tcp_addr(spec)?;
            let file = options
                .token_file
                .as_ref()
                .ok_or_else(|| AgentError::TcpWithoutToken(spec.clone()))?;
            Some((addr, server::read_token(file)?))
        }
        None => None,
    };
    raise_fd_limit();
    limit_malloc_arenas();
    let root = settings.is_root();
    let socket = options
        .socket
        .clone()
        .unwrap_or_else(|| server::default_socket(settings.runtime_dir()));
    let mut door = Door::new(settings)?;
    if root {
        door.keep_spare_cgroups(SPARE_CGROUPS);
        if let Some(factory) = early.factory {
            door.keep_zygote(factory);
        }
    }
    let door = Arc::new(door);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        .thread_keep_alive(std::time::Duration::from_secs(2))
        .enable_all()
        .build()
        .map_err(AgentError::Runtime)?;
    runtime.block_on(async move {
        if let Some(parent) = socket.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let unix = server::bind_unix(&socket)?;
        let unix =
            tokio::net::UnixListener::from_std(unix).map_err(|source| AgentError::Listen {
                what: socket.display().to_string(),
                source,
            })?;
        let tcp = match tcp {
            Some((addr, token)) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| AgentError::Listen {
                        what: addr.to_string(),
                        source,
                    })?;
                Some((listener, token))
            }
            None => None,
        };
        let state = Arc::new(server::State {
            waits: waits::Waits::new(Arc::clone(&door)),
            door,
            metrics: metrics::Metrics::default(),
            recovering: AtomicBool::new(true),
            streams: Arc::new(Semaphore::new(options.limits.max_streams)),
            limits: options.limits.clone(),
            root,
            refill: Arc::new(tokio::sync::Notify::new()),
        });
        tokio::spawn(refill_spares(Arc::clone(&state)));
        let slots = Arc::new(Semaphore::new(options.limits.max_connections));
        tokio::spawn(server::accept_unix(
            Arc::clone(&state),
            unix,
            Arc::clone(&slots),
        ));
        if let Some((listener, token)) = tcp {
            tokio::spawn(server::accept_tcp(
                Arc::clone(&state),
                listener,
                Arc::from(token),
                Arc::clone(&slots),
            ));
        }
        ready(&socket);
        recover(&state).await;
        shutdown_signal().await;
        tracing::info!("stopping; containers keep running");
        // Ended containers whose resources are being freed: finished
        // first (else the next recovery would finish them).
        state.waits.drain(std::time::Duration::from_secs(10)).await;
        state.door.drain_zygote();
        for e in state.door.drain_spares() {
            tracing::warn!(error = %e, "removing a spare cgroup failed; the next recovery removes it");
        }
        let _ = std::fs::remove_file(&socket);
        Ok(())
    })
}

/// Spare cgroup directories kept per cgroups root and v1 hierarchy: a
/// launch renames one into place instead of making it (see
/// `phobos_cgroups::spare`); a burst beyond them makes its own.
const SPARE_CGROUPS: usize = 4;

/// Makes the pre-started spawner and the spares launches took, each time a
/// launch asks, on the blocking pool: off every launch's path.
async fn refill_spares(state: Arc<server::State>) {
    loop {
        state.refill.notified().await;
        let door = Arc::clone(&state.door);
        let refilled = tokio::task::spawn_blocking(move || {
            if let Err(e) = door.refill_zygote() {
                tracing::warn!(error = %e, "making a pre-started init spawner failed");
            }
            door.refill_spares()
        });
        match refilled.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "making spare cgroups failed"),
            Err(e) => tracing::warn!(error = %e, "making spare cgroups failed"),
        }
    }
}

/// Adopts live containers and records the ends of those that ended
/// while no agent watched, then opens the API.
async fn recover(state: &Arc<server::State>) {
    let door = Arc::clone(&state.door);
    match tokio::task::spawn_blocking(move || door.recover()).await {
        Ok(Ok(report)) => {
            for e in report.errors() {
                tracing::warn!("recovery: {e}");
            }
            tracing::info!("recovered");
        }
        Ok(Err(e)) => tracing::error!(error = %e, "recovery failed"),
        Err(e) => tracing::error!(error = %e, "recovery failed"),
    }
    state.recovering.store(false, Ordering::Relaxed);
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Many waiting clients need many descriptors: the soft limit is raised
/// to the hard one. The containers whose init the agent starts inherit
/// it (as Mesos's inherit the agent's limits), so `main` raises it before
/// it forks the spawner factory too.
pub fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// glibc gives each thread that allocates an arena of its own (up to 8
/// per core), which a long-lived server with a pool of blocking threads
/// keeps resident; two are plenty for the agent's allocations.
fn limit_malloc_arenas() {
    // SAFETY: mallopt only sets an allocator parameter; it is called
    // before any other thread of this process exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
