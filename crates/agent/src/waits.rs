//! `WAIT_CONTAINER`: any number of requests for one container share one
//! watcher, and a watcher holds no thread while the container runs: it
//! waits for the container's init to exit on a pidfd (`pidfd_open(2)`,
//! readable once the process has exited) registered with the event loop,
//! then has the door record and return the termination (which takes a
//! moment, on a blocking thread). A container without a live init (a
//! Docker container's engine, a launch in progress) is waited for by the
//! door on a blocking thread.
//!
//! Works for containers launched by any face (CLI, ECP, this agent, an
//! earlier agent): the runtime directory is the truth.
//!
//! A container this agent launched itself is [`Waits::adopt`]ed at launch:
//! its init is this process's child, so it is reaped here. Every task
//! waiting on it (a background watcher, and each WAIT request) is woken
//! by the pidfd; the first to take the job reaps init and records the end
//! ([`Door::finish_deferred`], on its own thread) and hands the
//! termination it just wrote to the others: no look at the runtime
//! directory, no trip to the blocking pool, no second thread blocked on
//! the container's lock. A WAIT request goes first (the watcher yields
//! to it), so the request that records the end answers from that same
//! thread, without waking another worker to write the answer; the
//! watcher records it when nobody waits. The termination is on disk
//! before any request hears of it.
//!
//! The answer does not wait for the container's resources to be freed
//! (its cgroups removed, its root filesystem unmounted): the reaper
//! records the end ([`Door::finish_deferred`]: every process gone, the
//! termination checkpointed), answers, and only then frees them on a
//! blocking thread ([`Door::release_resources`]) while the container's
//! operation lock stays held. Until that is done the container is
//! *releasing* here: REMOVE waits for it ([`Waits::released`]), as does
//! any other face's destroy or remove (on the lock), and an agent that
//! dies meanwhile leaves a recorded termination that the next finalize
//! or recovery completes.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use phobos_core::{ContainerId, Operation, Outcome, Termination};
use phobos_runtime::{Door, Launched};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;

/// A container's end: `None` for an unknown container, an error text when
/// the door failed.
pub type Ended = Result<Option<Termination>, String>;

type Slot = watch::Receiver<Option<Ended>>;

/// One container's watcher: where its end is announced and, for a
/// container this agent launched, what records it.
struct Watcher {
    slot: Slot,
    reaper: Option<Arc<Reaper>>,
}

/// A container this agent launched, until its end is recorded. Every
/// task waiting on it (the background watcher, each WAIT request) is
/// woken by init's pidfd; the first to take `job` records the end and
/// the others hear it through the slot. A WAIT request that records it
/// answers from its own thread, with no hand-over to another worker.
struct Reaper {
    /// Init's pidfd (`None`: cannot be watched, the finish blocks).
    pidfd: Option<AsyncFd<OwnedFd>>,
    /// The launch and init's held mount namespace.
    job: Mutex<Option<(Launched, Option<OwnedFd>)>>,
    tx: watch::Sender<Option<Ended>>,
}

/// Announces a failure through its slot when dropped still armed: the
/// task that took a container's job ended without announcing its end.
struct Unannounced<'a>(Option<&'a watch::Sender<Option<Ended>>>);

impl Drop for Unannounced<'_> {
    fn drop(&mut self) {
        if let Some(tx) = self.0 {
            let _ = tx.send(Some(Err(
                "recording the container's end failed unexpectedly".into(),
            )));
        }
    }
}

/// The shared watchers, by container ID.
pub struct Waits {
    door: Arc<Door>,
    watchers: Mutex<HashMap<ContainerId, Watcher>>,
    /// Containers whose end is answered and whose resources are being
    /// freed: each receiver sees `true` once they are.
    releasing: Mutex<HashMap<ContainerId, watch::Receiver<bool>>>,
    open: AtomicI64,
}

impl Waits {
    pub fn new(door: Arc<Door>) -> Arc<Self> {
        Arc::new(Self {
            door,
            watchers: Mutex::new(HashMap::new()),
            releasing: Mutex::new(HashMap::new()),
            open: AtomicI64::new(0),
        })
    }

    /// Requests waiting right now.
    pub fn open(&self) -> i64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Containers watched right now.
    pub fn watched(&self) -> usize {
        self.watchers.lock().map_or(0, |w| w.len())
    }

    /// Resolves when `id` has ended.
    pub async fn wait(self: &Arc<Self>, id: &ContainerId) -> Ended {
        let (mut slot, reaper) = self.slot(id);
        self.open.fetch_add(1, Ordering::Relaxed);
        let _open = OpenGuard(self);
        if let Some(reaper) = reaper
            && let Some(ended) = self.reap(id, &reaper).await
        {
            return ended;
        }
        match slot.wait_for(Option::is_some).await {
            Ok(value) => value.clone().unwrap_or(Err("the watcher ended".into())),
            Err(_) => Err(format!(
                "the watcher of container {id} ended without an answer"
            )),
        }
    }

    /// Watches container `id`, which this process launched (`launched`,
    /// whose init is its child, behind `pidfd`): reaps init when it exits,
    /// records the end and answers every wait with it. Called before the
    /// launch is answered, so every later wait finds this watcher.
    pub fn adopt(
        self: &Arc<Self>,
        id: &ContainerId,
        mut launched: Launched,
        pidfd: Option<OwnedFd>,
    ) {
        // Init's mount namespace, which the launch held: closed (and so
        // torn down) after the answer, with the resources.
        let mount_ns = match &mut launched {
            Launched::Process { mount_ns, .. } => mount_ns.take(),
            Launched::Engine { .. } => None,
        };
        let (tx, rx) = watch::channel(None);
        let reaper = Arc::new(Reaper {
            pidfd: pidfd.and_then(watchable),
            job: Mutex::new(Some((launched, mount_ns))),
            tx,
        });
        self.watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                id.clone(),
                Watcher {
                    slot: rx,
                    reaper: Some(Arc::clone(&reaper)),
                },
            );
        let this = Arc::clone(self);
        let id = id.clone();
        // The backstop: records the end when no request is waiting (or
        // none took it).
        tokio::spawn(async move {
            if let Some(fd) = &reaper.pidfd {
                let _ = fd.readable().await;
            }
            // A request woken by the same exit goes first (it answers from
            // its own thread); the map's receiver is the only other one.
            if reaper.tx.receiver_count() > 1 {
                tokio::task::yield_now().await;
            }
            this.reap(&id, &reaper).await;
        });
    }

    /// Once init has exited, records the end of container `id` unless
    /// another task took that job (then `None`: its answer comes through
    /// the slot); announces it, and frees the resources on a blocking
    /// thread after.
    async fn reap(self: &Arc<Self>, id: &ContainerId, reaper: &Reaper) -> Option<Ended> {
        if let Some(fd) = &reaper.pidfd {
            let _ = fd.readable().await;
        }
        let (launched, mut mount_ns) = reaper
            .job
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()?;
        // Should recording the end panic (it unwinds this request's task
        // only), every other waiter hears an error instead of waiting for
        // an announcement that would never come.
        let mut unannounced = Unannounced(Some(&reaper.tx));
        // Init has exited (or cannot be watched: finish then blocks until
        // it does). Recording the end takes a moment; this worker hands
        // its other tasks on meanwhile, and answers from here after.
        let door = Arc::clone(&self.door);
        let held = &mut mount_ns;
        let (ended, unreleased) = tokio::task::block_in_place(move || {
            match door.finish_deferred(&launched) {
                Ok(Some((t, unreleased))) => (Ok(Some(t)), unreleased),
                other => {
                    if let Err(e) = &other {
                        tracing::warn!(container = %id, error = %e, "recording a container's end failed; waiting for it as any face");
                    }
                    // That wait frees everything, the namespace first.
                    drop(held.take());
                    (
                        match door.apply(id, Operation::Wait) {
                            Ok(None) => Ok(None),
                            Ok(Some(Outcome::Ended(t))) => Ok(Some(t)),
                            Ok(Some(other)) => {
                                Err(format!("the containerizer answered {other:?} to wait"))
                            }
                            Err(e) => Err(e.to_string()),
                        },
                        None,
                    )
                }
            }
        });
        if let Err(e) = &ended {
            tracing::warn!(container = %id, error = %e, "recording a container's end failed");
        }
        // Known as releasing before any wait is answered, so a REMOVE
        // sent after the answer finds it.
        let released = unreleased.map(|u| (self.mark_releasing(id), u));
        self.watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        let _ = reaper.tx.send(Some(ended.clone()));
        unannounced.0 = None;
        let Some((done, unreleased)) = released else {
            if mount_ns.is_some() {
                tokio::task::spawn_blocking(move || drop(mount_ns));
            }
            return Some(ended);
        };
        let this = Arc::clone(self);
        let id = id.clone();
        tokio::task::spawn_blocking(move || {
            // The namespace first: nothing of the container may still be
            // mounted when its resources are freed (an image's root
            // filesystem), as before.
            drop(mount_ns);
            if let Err(e) = this.door.release_resources(unreleased) {
                tracing::warn!(container = %id, error = %e, "freeing a container's resources failed; the next finalize or recovery retries");
            }
            this.releasing
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
            let _ = done.send(true);
        });
        Some(ended)
    }

    /// Marks `id` releasing; the sender says when it is done.
    fn mark_releasing(&self, id: &ContainerId) -> watch::Sender<bool> {
        let (tx, rx) = watch::channel(false);
        self.releasing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), rx);
        tx
    }

    /// Resolves once the resources of `id` are freed, at once when this
    /// agent is not freeing them.
    pub async fn released(&self, id: &ContainerId) {
        let rx = self
            .releasing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned();
        if let Some(mut rx) = rx {
            let _ = rx.wait_for(|done| *done).await;
        }
    }

    /// Resolves once every release under way is done (the agent's
    /// shutdown), or after `bound`.
    pub async fn drain(&self, bound: std::time::Duration) {
        let pending: Vec<watch::Receiver<bool>> = self
            .releasing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let all = async {
            for mut rx in pending {
                let _ = rx.wait_for(|done| *done).await;
            }
        };
        let _ = tokio::time::timeout(bound, all).await;
    }

    /// The watcher of `id` (started when there is none), and its reaper
    /// when this agent launched it.
    fn slot(self: &Arc<Self>, id: &ContainerId) -> (Slot, Option<Arc<Reaper>>) {
        let mut watchers = self.watchers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(w) = watchers.get(id) {
            return (w.slot.clone(), w.reaper.clone());
        }
        let (tx, rx) = watch::channel(None);
        watchers.insert(
            id.clone(),
            Watcher {
                slot: rx.clone(),
                reaper: None,
            },
        );
        let this = Arc::clone(self);
        let id = id.clone();
        tokio::spawn(async move {
            let ended = this.watch(&id).await;
            // Late arrivals start a new watcher, which finds the recorded
            // termination at once.
            this.watchers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
            let _ = tx.send(Some(ended));
        });
        (rx, None)
    }

    async fn watch(&self, id: &ContainerId) -> Ended {
        let Some(summary) = self.summary(id).await? else {
            return Ok(None);
        };
        if let Some(t) = summary.termination() {
            return Ok(Some(t.clone()));
        }
        if let Some(pid) = summary.pid()
            && let Ok(pidfd) = phobos_runtime::sys::pidfd_open(pid)
        {
            // The pidfd pins the process; the container still running
            // after it was opened proves the pid is still its init (the
            // summary records the end of an init that is gone).
            match self.summary(id).await? {
                None => return Ok(None),
                Some(s) if s.termination().is_some() => {}
                Some(_) => exited(pidfd).await,
            }
        }
        let door = Arc::clone(&self.door);
        let key = id.clone();
        let outcome = tokio::task::spawn_blocking(move || door.apply(&key, Operation::Wait))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        match outcome {
            None => Ok(None),
            Some(Outcome::Ended(t)) => Ok(Some(t)),
            Some(other) => Err(format!("the containerizer answered {other:?} to wait")),
        }
    }
}

impl Waits {
    async fn summary(&self, id: &ContainerId) -> Result<Option<phobos_runtime::Summary>, String> {
        let door = Arc::clone(&self.door);
        let key = id.clone();
        tokio::task::spawn_blocking(move || door.summary(&key))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }
}

/// Resolves when the process behind `pidfd` has exited (at once when the
/// descriptor cannot be watched: the door's wait then blocks instead).
pub async fn exited(pidfd: OwnedFd) {
    if let Some(fd) = watchable(pidfd) {
        let _ = fd.readable().await;
    }
}

/// `pidfd` registered with the event loop (readable once the process has
/// exited); `None` when it cannot be.
fn watchable(pidfd: OwnedFd) -> Option<AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd owns `pidfd` (an OwnedFd, which returns the same
    // open descriptor from every `as_raw_fd` and is closed only when the
    // AsyncFd drops it).
    match unsafe { AsyncFd::register_with_interest(pidfd, Interest::READABLE) } {
        Ok(fd) => Some(fd),
        Err(e) => {
            tracing::debug!(error = %e, "cannot watch a pidfd");
            None
        }
    }
}

struct OpenGuard<'a>(&'a Waits);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}
