//! `ps` and `status` through the agent: the summaries from its
//! `GET /phobos/v1/containers[/ID]` (the JSON `ps --json` and `status
//! --json` print, printed as it comes; `ps -q` prints their IDs), and for
//! `ps`'s CPU and memory columns the statistics of `GET_CONTAINERS`
//! (`show_nested`, `show_standalone`).

use std::collections::HashMap;
use std::path::Path;

use phobos_core::ResourceStatistics;
use phobos_proto::agent::Call;
use phobos_proto::agent::call::{self, Type};
use phobos_proto::mesos;

use super::{about, connect, full_id};
use crate::agent_client::{self, ClientError};
use crate::commands::parse_id;
use crate::commands::ps::{Row, label, print_header, print_ids, print_row};
use crate::commands::status::{View, print};

pub fn ps(socket: &Path, json: bool, quiet: bool) -> anyhow::Result<u8> {
    let mut client = connect(socket)?;
    let reply = agent_client::ok(client.get(phobos_agent::listing::PATH)?)?;
    if json {
        print_body(&reply.body)?;
        return Ok(0);
    }
    let views: Vec<View> = serde_json::from_slice(&reply.body).map_err(decode)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, crate::output::stdout());
    if quiet {
        print_ids(&mut out, views.iter().map(|v| v.id.as_str()))?;
        return Ok(0);
    }
    let call = Call {
        r#type: Some(Type::GetContainers as i32),
        get_containers: Some(call::GetContainers {
            show_nested: Some(true),
            show_standalone: Some(true),
        }),
        ..Call::default()
    };
    let stats: HashMap<String, ResourceStatistics> = client
        .call(&call)?
        .and_then(|r| r.get_containers)
        .map(|g| g.containers)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| {
            Some((
                full_id(&c.container_id),
                statistics(&c.resource_statistics?),
            ))
        })
        .collect();
    print_header(&mut out)?;
    for v in &views {
        print_row(
            &mut out,
            &Row {
                id: &v.id,
                label: label(v.state, v.termination.as_ref()),
                pid: v.pid(),
                started_at: v.started_at,
                address: v.address(),
                command: v.listed_command(),
                stats: stats.get(&v.id),
            },
        )?;
    }
    std::io::Write::flush(&mut out)?;
    Ok(0)
}

pub fn status(socket: &Path, id: &str, json: bool) -> anyhow::Result<u8> {
    let id = parse_id(id)?;
    let mut client = connect(socket)?;
    let path = format!("{}/{}", phobos_agent::listing::PATH, id.as_str());
    let reply = client
        .get(&path)
        .and_then(agent_client::ok)
        .map_err(|e| about(&id, e))?;
    if json {
        print_body(&reply.body)?;
        return Ok(0);
    }
    print(&serde_json::from_slice(&reply.body).map_err(decode)?)?;
    Ok(0)
}

/// The agent's pretty JSON as the local command prints it (checked to be
/// JSON first: nothing else is printed as if it were).
fn print_body(body: &[u8]) -> anyhow::Result<()> {
    serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(decode)?;
    let text = std::str::from_utf8(body)?;
    outln!("{}", text.trim_end_matches('\n'));
    Ok(())
}

fn decode(e: serde_json::Error) -> ClientError {
    ClientError::Decode(e.to_string())
}

/// The fields `ps` shows, from Mesos's message.
fn statistics(s: &mesos::ResourceStatistics) -> ResourceStatistics {
    ResourceStatistics {
        timestamp: s.timestamp,
        cpus_user_time_secs: s.cpus_user_time_secs,
        cpus_system_time_secs: s.cpus_system_time_secs,
        mem_rss_bytes: s.mem_rss_bytes,
        mem_total_bytes: s.mem_total_bytes,
        ..ResourceStatistics::default()
    }
}
