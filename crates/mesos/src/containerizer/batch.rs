//! Destroying many containers at once: every container of a batch is
//! killed before any is waited for, the kernel ends all their processes
//! while one `poll(2)` waits on every kill cgroup's `cgroup.events`
//! together (`phobos_cgroups::wait_all_emptied`), and then a few workers
//! free the containers in parallel.
//!
//! Each container goes through the same steps as a single destroy, only
//! split at the kill: under its operation lock, the DESTROYING checkpoint
//! and everything that decides its termination (nested containers
//! destroyed, whether the command had ended by itself, init's pid) come
//! before the kill (`settle_begin`); the wait for init, the termination,
//! the isolators' cleanup and the record come after (`settle_end`,
//! `conclude`). A destroyer that dies between the two leaves DESTROYING
//! checkpointed and no termination, which the next destroy, finalize or
//! `recover` completes with the same termination (its reason "Container
//! destroyed", the command's status the real one). A container whose
//! operation lock is held (a launch in progress, another operation), or
//! that is not RUNNING or DESTROYING, goes through the single path.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use phobos_core::store::OpLock;

use super::teardown::Begun;
use super::*;

/// At most this many containers are killed and held (their operation
/// locks and `cgroup.events` open) at once: bounded descriptors per batch.
const CHUNK: usize = 256;

/// A container killed by a batch whose processes may still be exiting.
struct Killing {
    dir: ContainerDir,
    config: ContainerConfig,
    launcher: Launcher,
    begun: Begun,
    emptying: Vec<phobos_cgroups::Emptying>,
    _op: OpLock,
}

/// How a batch's first pass left one container.
enum Started {
    /// Unknown.
    Unknown,
    /// Its end was recorded already.
    Ended(Termination),
    /// Killed: wait, then finish.
    Killing(Box<Killing>),
    /// Destroyed through the single path instead.
    Single,
}

impl MesosContainerizer {
    /// Destroys `ids` (distinct; a parent after its nested containers, as
    /// the caller orders them) with up to `workers` threads: every
    /// container of a chunk is killed, then all of them are waited for at
    /// once, then freed. The results are in the order of `ids`; `Ok(None)`
    /// for an unknown container.
    pub fn destroy_many(
        &self,
        ids: &[ContainerId],
        workers: usize,
    ) -> Vec<Result<Option<Termination>>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            out.extend(self.destroy_chunk(chunk, workers));
        }
        out
    }

    fn destroy_chunk(
        &self,
        ids: &[ContainerId],
        workers: usize,
    ) -> Vec<Result<Option<Termination>>> {
        let started = in_parallel(ids.len(), workers, |i| self.destroy_start(&ids[i]));
        let mut results: Vec<Option<Result<Option<Termination>>>> =
            ids.iter().map(|_| None).collect();
        let mut killing: Vec<Option<Box<Killing>>> = ids.iter().map(|_| None).collect();
        let mut single = vec![false; ids.len()];
        for (i, s) in started.into_iter().enumerate() {
            match s {
                Ok(Started::Unknown) => results[i] = Some(Ok(None)),
                Ok(Started::Ended(t)) => results[i] = Some(Ok(Some(t))),
                Ok(Started::Killing(k)) => killing[i] = Some(k),
                Ok(Started::Single) => single[i] = true,
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        StopPoint::hit(&self.stop_at, "batch-killed");
        // One wait for every process of every killed container.
        let mut owners = Vec::new();
        let mut emptying = Vec::new();
        for (i, k) in killing.iter_mut().enumerate() {
            if let Some(k) = k {
                for e in k.emptying.drain(..) {
                    owners.push(i);
                    emptying.push(e);
                }
            }
        }
        for (n, error) in phobos_cgroups::wait_all_emptied(emptying, launcher::DESTROY_TIMEOUT) {
            let i = owners[n];
            // Its operation lock goes with it: DESTROYING stays
            // checkpointed for the next destroy or `recover`.
            if killing[i].take().is_some() {
                results[i] = Some(Err(ContainerizerError::Teardown {
                    id: ids[i].clone(),
                    errors: format!("its processes would not die: {error}"),
                }));
            }
        }
        let killing: Vec<Mutex<Option<Box<Killing>>>> =
            killing.into_iter().map(Mutex::new).collect();
        let finished = in_parallel(ids.len(), workers, |i| {
            let k = killing[i].lock().unwrap_or_else(|p| p.into_inner()).take();
            match k {
                Some(k) => Some(self.destroy_finish(*k).map(Some)),
                None if single[i] => Some(self.destroy(&ids[i])),
                None => None,
            }
        });
        results
            .into_iter()
            .zip(finished)
            .zip(ids)
            .map(|((r, f), id)| {
                // Every container has a first-pass result or a second
                // pass; the error only stands in for the impossible.
                r.or(f).unwrap_or_else(|| {
                    Err(ContainerizerError::Teardown {
                        id: id.clone(),
                        errors: "it was not destroyed".into(),
                    })
                })
            })
            .collect()
    }

    /// A batch's first pass over one container: under its operation lock,
    /// the DESTROYING checkpoint, what decides the termination, then the
    /// kill, without waiting for the processes to exit.
    fn destroy_start(&self, id: &ContainerId) -> Result<Started> {
        let Some(dir) = self.store.open(id) else {
            return Ok(Started::Unknown);
        };
        if let Some(t) = dir.read_json(TERMINATION_FILE)? {
            return Ok(Started::Ended(t));
        }
        let Some(op) = dir.try_lock_op()? else {
            return Ok(Started::Single);
        };
        if let Some(t) = dir.read_json(TERMINATION_FILE)? {
            return Ok(Started::Ended(t));
        }
        if !matches!(
            dir.state()?.map(|r| r.state),
            Some(ContainerState::Running | ContainerState::Destroying)
        ) {
            return Ok(Started::Single);
        }
        dir.mark_destroying()?;
        let config = self.config(&dir)?;
        let launcher = self.launcher_for(&config)?;
        let mut begun = self.settle_begin(&dir, &config, &Cause::Destroyed)?;
        let emptying = match launcher.start_kill(id, begun.live_pid()) {
            Ok(emptying) => emptying,
            Err(e) => {
                begun.push_error(e.to_string());
                Vec::new()
            }
        };
        Ok(Started::Killing(Box::new(Killing {
            dir,
            config,
            launcher,
            begun,
            emptying,
            _op: op,
        })))
    }

    /// A batch's second pass over one killed container: what a single
    /// destroy does after its kill.
    fn destroy_finish(&self, killing: Killing) -> Result<Termination> {
        let Killing {
            dir,
            config,
            launcher,
            begun,
            _op,
            ..
        } = killing;
        let isolators = isolator::build_with(&config, &self.host())?;
        let (termination, errors) = self.settle_end(
            &dir,
            &config,
            &launcher,
            &isolators,
            Cause::Destroyed,
            begun,
            super::teardown::KillCgroups::Remove,
        )?;
        self.conclude(&dir, &config, &isolators, termination, errors)
    }
}

/// `f(0..count)` by up to `workers` threads; the results in index order.
fn in_parallel<T: Send>(count: usize, workers: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let results: Vec<Mutex<Option<T>>> = (0..count).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, count.max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let value = f(i);
                    *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(value);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .expect("every index is visited once")
        })
        .collect()
}
