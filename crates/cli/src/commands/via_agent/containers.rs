//! `wait`, `kill` and `destroy` through the agent: `WAIT_CONTAINER`,
//! `KILL_CONTAINER`, and for `destroy` `KILL_CONTAINER` with SIGKILL
//! followed by `WAIT_CONTAINER` (the v1 API has no destroy: Mesos's kill
//! signals the command, and the container is torn down, nested containers
//! first, when its init sees it end). The record stays, as after a local
//! `destroy`; `REMOVE_CONTAINER` is what forgets it.

use std::path::Path;

use phobos_core::wait_status::parse_signal;
use phobos_core::{ContainerId, Termination};
use phobos_proto::agent::Call;
use phobos_proto::agent::call::{self, Type};

use super::{about, connect, mesos_id, wait_for};
use crate::agent_client::{Client, ClientError};
use crate::commands::{parse_id, print_termination};
use crate::error::usage;

pub fn wait(socket: &Path, id: &str, json: bool) -> anyhow::Result<u8> {
    let id = parse_id(id)?;
    let mut client = connect(socket)?;
    let termination = wait_for(&mut client, &id).map_err(|e| about(&id, e))?;
    print_termination(&termination, json)?;
    Ok(0)
}

pub fn kill(socket: &Path, id: &str, signal: &str) -> anyhow::Result<u8> {
    let id = parse_id(id)?;
    let signal = parse_signal(signal).ok_or_else(|| usage(format!("unknown signal '{signal}'")))?;
    let mut client = connect(socket)?;
    send_kill(&mut client, &id, signal).map_err(|e| about(&id, e))?;
    Ok(0)
}

fn send_kill(client: &mut Client, id: &ContainerId, signal: i32) -> Result<(), ClientError> {
    let call = Call {
        r#type: Some(Type::KillContainer as i32),
        kill_container: Some(call::KillContainer {
            container_id: mesos_id(id),
            signal: Some(signal),
        }),
        ..Call::default()
    };
    client.call(&call).map(|_| ())
}

pub fn destroy(socket: &Path, ids: &[String], json: bool) -> anyhow::Result<u8> {
    let mut parsed: Vec<ContainerId> = Vec::with_capacity(ids.len());
    for text in ids {
        let id = parse_id(text)?;
        if !parsed.contains(&id) {
            parsed.push(id);
        }
    }
    let mut client = connect(socket)?;
    if let [id] = parsed.as_slice() {
        let termination = destroy_one(&mut client, id)?;
        print_termination(&termination, json)?;
        return Ok(0);
    }
    // Deepest first, as the local command; printed in the given order.
    let mut order: Vec<usize> = (0..parsed.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(parsed[i].depth()));
    let mut results: Vec<Option<anyhow::Result<Termination>>> =
        parsed.iter().map(|_| None).collect();
    for i in order {
        results[i] = Some(destroy_one(&mut client, &parsed[i]));
    }
    let results = results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(anyhow::anyhow!("not destroyed"))))
        .collect();
    crate::commands::destroy::print_results(&parsed, results, json)
}

/// SIGKILL unless it has ended (404: unknown or already ended; the wait
/// tells which), then its termination.
fn destroy_one(client: &mut Client, id: &ContainerId) -> anyhow::Result<Termination> {
    match send_kill(client, id, libc::SIGKILL) {
        Ok(()) | Err(ClientError::Api { status: 404, .. }) => {}
        Err(e) => return Err(e.into()),
    }
    wait_for(client, id).map_err(|e| about(id, e))
}
