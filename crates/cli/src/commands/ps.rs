//! `phobos ps`: every container with its state, pid, start time and command.

use phobos_core::ContainerState;
use phobos_mesos::ContainerSummary;

use crate::cli::Global;
use crate::context;

pub fn run(global: &Global, json: bool) -> anyhow::Result<u8> {
    let containers = context::containerizer(global)?.list()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&containers)?);
        return Ok(0);
    }
    println!(
        "{:<36}  {:<12}  {:>7}  {:<20}  COMMAND",
        "ID", "STATE", "PID", "STARTED"
    );
    for c in &containers {
        println!(
            "{:<36}  {:<12}  {:>7}  {:<20}  {}",
            c.id,
            state_label(c),
            pid_label(c),
            phobos_core::time::rfc3339(c.started_at),
            c.command
        );
    }
    Ok(0)
}

/// TERMINATED shows how: `EXITED(7)`, `KILLED(9)`, or `FAILED`.
pub fn state_label(c: &ContainerSummary) -> String {
    match (&c.state, &c.termination) {
        (ContainerState::Terminated, Some(t)) => match t.status {
            Some(s) if s.exit_code().is_some() => format!("EXITED({})", s.shell_exit_code()),
            Some(s) => format!("KILLED({})", s.signal().unwrap_or(0)),
            None => "FAILED".to_owned(),
        },
        (state, _) => state.to_string(),
    }
}

fn pid_label(c: &ContainerSummary) -> String {
    match (c.state, c.pid) {
        (ContainerState::Terminated, _) | (_, None) => "-".to_owned(),
        (_, Some(pid)) => pid.to_string(),
    }
}
