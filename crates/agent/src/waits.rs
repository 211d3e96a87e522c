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
//! its init is this process's child, so its watcher is the reaper. Once
//! the pidfd is readable it reaps init and records the end
//! ([`Door::finish`], on the watcher's own thread) and hands the
//! termination it just wrote to every waiting request: no look at the
//! runtime directory, no trip to the blocking pool, no second thread
//! blocked on the container's lock. The termination is on disk before
//! any request hears of it.
//!
//! The answer does not wait for the container's resources to be freed
//! (its cgroups removed, its root filesystem unmounted): the watcher
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
use std::sync::{Arc, Mutex};

use phobos_core::{ContainerId, Operation, Outcome, Termination};
use phobos_runtime::{Door, Launched};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;

/// A container's end: `None` for an unknown container, an error text when
/// the door failed.
pub type Ended = Result<Option<Termination>, String>;

type Slot = watch::Receiver<Option<Ended>>;

/// The shared watchers, by container ID.
pub struct Waits {
    door: Arc<Door>,
    watchers: Mutex<HashMap<ContainerId, Slot>>,
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
        let mut slot = self.slot(id);
        self.open.fetch_add(1, Ordering::Relaxed);
        let _open = OpenGuard(self);
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
        let mut mount_ns = match &mut launched {
            Launched::Process { mount_ns, .. } => mount_ns.take(),
            Launched::Engine { .. } => None,
        };
        let (tx, rx) = watch::channel(None);
        self.watchers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.clone(), rx);
        let this = Arc::clone(self);
        let id = id.clone();
        tokio::spawn(async move {
            if let Some(fd) = pidfd {
                exited(fd).await;
            }
            // Init has exited (or cannot be watched: finish then blocks
            // until it does). Recording the end takes a moment; this
            // worker hands its other tasks on meanwhile.
            let door = Arc::clone(&this.door);
            let key = id.clone();
            let held = &mut mount_ns;
            let (ended, unreleased) = tokio::task::block_in_place(move || {
                match door.finish_deferred(&launched) {
                    Ok(Some((t, unreleased))) => (Ok(Some(t)), unreleased),
                    other => {
                        if let Err(e) = &other {
                            tracing::warn!(container = %key, error = %e, "recording a container's end failed; waiting for it as any face");
                        }
                        // That wait frees everything, the namespace first.
                        drop(held.take());
                        (
                            match door.apply(&key, Operation::Wait) {
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
            let released = unreleased.map(|u| (this.mark_releasing(&id), u));
            this.watchers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&id);
            let _ = tx.send(Some(ended));
            let Some((done, unreleased)) = released else {
                if mount_ns.is_some() {
                    tokio::task::spawn_blocking(move || drop(mount_ns));
                }
                return;
            };
            let door = Arc::clone(&this.door);
            let freed = tokio::task::spawn_blocking(move || {
                // The namespace first: nothing of the container may
                // still be mounted when its resources are freed (an
                // image's root filesystem), as before.
                drop(mount_ns);
                door.release_resources(unreleased)
            })
            .await;
            match freed {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(container = %id, error = %e, "freeing a container's resources failed; the next finalize or recovery retries")
                }
                Err(e) => {
                    tracing::warn!(container = %id, error = %e, "freeing a container's resources failed")
                }
            }
            this.releasing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&id);
            let _ = done.send(true);
        });
    }

    /// Marks `id` releasing; the sender says when it is done.
    fn mark_releasing(&self, id: &ContainerId) -> watch::Sender<bool> {
        let (tx, rx) = watch::channel(false);
        self.releasing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.clone(), rx);
        tx
    }

    /// Resolves once the resources of `id` are freed, at once when this
    /// agent is not freeing them.
    pub async fn released(&self, id: &ContainerId) {
        let rx = self
            .releasing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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

    fn slot(self: &Arc<Self>, id: &ContainerId) -> Slot {
        let mut watchers = self
            .watchers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(slot) = watchers.get(id) {
            return slot.clone();
        }
        let (tx, rx) = watch::channel(None);
        watchers.insert(id.clone(), rx.clone());
        let this = Arc::clone(self);
        let id = id.clone();
        tokio::spawn(async move {
            let ended = this.watch(&id).await;
            // Late arrivals start a new watcher, which finds the recorded
            // termination at once.
            this.watchers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&id);
            let _ = tx.send(Some(ended));
        });
        rx
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
    // SAFETY: the AsyncFd owns `pidfd` (an OwnedFd, which returns the same
    // open descriptor from every `as_raw_fd` and is closed only when the
    // AsyncFd drops it).
    match unsafe { AsyncFd::register_with_interest(pidfd, Interest::READABLE) } {
        Ok(fd) => {
            let _ = fd.readable().await;
        }
        Err(e) => tracing::debug!(error = %e, "cannot watch a pidfd"),
    }
}

struct OpenGuard<'a>(&'a Waits);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}
