//! `phobos destroy ID...`: kills every process of each container in
//! whatever state it is, removes its cgroups and prints the termination.
//!
//! Several IDs are destroyed by a few workers at once, each through the
//! same path as a single destroy (so each gets its exact termination and
//! leaves nothing behind). Most of a destroy's time is the kernel ending
//! the killed processes (the wait for the cgroup's `populated 0`), which
//! overlaps across containers, and one process pays the start-up (config,
//! mount table, cgroup layout) once instead of once per container. Nested
//! containers go first, deepest first, then their parents, as a user
//! destroying them one by one would.

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
    let mut failed = 0usize;
    for (id, result) in parsed.iter().zip(results) {
        match result {
            Ok(t) if json => {
                let mut value = serde_json::to_value(t.report())?;
                if let Some(object) = value.as_object_mut() {
                    object.insert("id".to_owned(), id.as_str().into());
                }
                println!("{value}");
            }
            Ok(t) => {
                print!("{id}: ");
                print_termination(&t, false)?;
            }
            Err(e) => {
                failed += 1;
                let (_, message) = crate::error::classify(&e);
                eprintln!("phobos: destroy {id}: {message}");
            }
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

/// Destroys `ids` (distinct) with up to [`WORKERS`] threads, deepest
/// nesting level first; the results are in the order of `ids`.
fn destroy_all(global: &Global, ids: &[ContainerId]) -> Vec<anyhow::Result<Termination>> {
    let results: Vec<Mutex<Option<anyhow::Result<Termination>>>> =
        ids.iter().map(|_| Mutex::new(None)).collect();
    let mut depths: Vec<usize> = ids.iter().map(ContainerId::depth).collect();
    depths.sort_unstable();
    depths.dedup();
    for depth in depths.into_iter().rev() {
        let level: Vec<usize> = (0..ids.len())
            .filter(|&i| ids[i].depth() == depth)
            .collect();
        let next = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..WORKERS.min(level.len()) {
                scope.spawn(|| {
                    let door = context::door(global);
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&i) = level.get(k) else { break };
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
