//! `phobos destroy ID...`: kills every process of each container in
//! whatever state it is, removes its cgroups and prints the termination.
//!
//! Several IDs are destroyed in one batch: every container is killed
//! (its DESTROYING checkpoint and what decides its termination first),
//! then one wait covers all of them (the kernel ending the killed
//! processes, the wait for each kill cgroup's `populated 0`, was most of
//! a destroy's time), then a few workers free them, each through the same
//! steps as a single destroy (so each gets its exact termination and
//! leaves nothing behind). One process pays the start-up (config, mount
//! table, cgroup layout) once instead of once per container. Nested
//! containers go first, deepest first, then their parents, as a user
//! destroying them one by one would; engine (Docker) containers and
//! launches in progress go through the single path.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use phobos_core::{ContainerId, Operation, Termination};

use super::{apply_known, ended, parse_id, print_termination, unknown};
use crate::cli::Global;
use crate::context;

/// Workers destroying at once: enough to overlap the waits for the kernel
/// to end the killed processes, few enough not to crowd a small host.
const WORKERS: usize = 8;

pub fn run(global: &Global, ids: &[String], json: bool) -> anyhow::Result<u8> {
    // Every ID is checked before anything is destroyed (exit 2, nothing
    // changed); a repeated one is destroyed and printed once.
    let mut parsed: Vec<ContainerId> = Vec::with_capacity(ids.len());
    for text in ids {
        let id = parse_id(text)?;
        if !parsed.contains(&id) {
            parsed.push(id);
        }
    }
    if let [id] = parsed.as_slice() {
        let termination = ended(apply_known(global, id, Operation::Destroy)?)?;
        print_termination(&termination, json)?;
        return Ok(0);
    }
    let results = destroy_all(global, &parsed);
    print_results(&parsed, results, json)
}

/// Prints each container's termination (or its one-line error) in the
/// order of `ids`; the exit code is 1 if any failed. Shared with the
/// destroy routed through an agent.
pub(crate) fn print_results(
    ids: &[ContainerId],
    results: Vec<anyhow::Result<Termination>>,
    json: bool,
) -> anyhow::Result<u8> {
    let mut failed = 0usize;
    for (id, result) in ids.iter().zip(results) {
        match result {
            Ok(t) if json => {
                let mut value = serde_json::to_value(t.report())?;
                if let Some(object) = value.as_object_mut() {
                    object.insert("id".to_owned(), id.as_str().into());
                }
                outln!("{value}");
            }
            Ok(t) => {
                out!("{id}: ");
                print_termination(&t, false)?;
            }
            Err(e) => {
                failed += 1;
                let (_, message) = crate::error::classify(&e);
                errln!("phobos: destroy {id}: {message}");
            }
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

/// Destroys `ids` (distinct), deepest nesting level first; the results
/// are in the order of `ids`. At each level the Mesos containers are all
/// killed before any is waited for (`Door::destroy_many`); engine
/// containers go one by one through the single path, by up to
/// [`WORKERS`] threads.
fn destroy_all(global: &Global, ids: &[ContainerId]) -> Vec<anyhow::Result<Termination>> {
    let results: Vec<Mutex<Option<anyhow::Result<Termination>>>> =
        ids.iter().map(|_| Mutex::new(None)).collect();
    let door = match context::door(global) {
        Ok(door) => door,
        Err(e) => {
            let message = format!("{e:#}");
            return ids
                .iter()
                .map(|_| Err(anyhow::anyhow!("{message}")))
                .collect();
        }
    };
    let mut depths: Vec<usize> = ids.iter().map(ContainerId::depth).collect();
    depths.sort_unstable();
    depths.dedup();
    for depth in depths.into_iter().rev() {
        let (engine, mesos): (Vec<usize>, Vec<usize>) = (0..ids.len())
            .filter(|&i| ids[i].depth() == depth)
            .partition(|&i| door.is_engine(&ids[i]));
        let batch: Vec<ContainerId> = mesos.iter().map(|&i| ids[i].clone()).collect();
        for (&i, result) in mesos.iter().zip(door.destroy_many(&batch, WORKERS)) {
            let result = result
                .map_err(anyhow::Error::from)
                .and_then(|o| o.ok_or_else(|| unknown(&ids[i])));
            *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
        }
        let next = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..WORKERS.min(engine.len()) {
                scope.spawn(|| {
                    let door = context::door(global);
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&i) = engine.get(k) else { break };
                        let id = &ids[i];
                        let result = match &door {
                            Ok(door) => door
                                .apply(id, Operation::Destroy)
                                .map_err(anyhow::Error::from)
                                .and_then(|o| o.ok_or_else(|| unknown(id)))
                                .and_then(ended),
                            Err(e) => Err(anyhow::anyhow!("{e:#}")),
                        };
                        *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
                    }
                });
            }
        });
    }
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .unwrap_or_else(|| Err(anyhow::anyhow!("not destroyed")))
        })
        .collect()
}
