//! `phobos --agent SOCKET <command>`: the commands that have a call in the
//! v1 agent API, sent to a running `phobos agent` over its Unix socket
//! (`crate::agent_client`) instead of acting on the runtime directory.
//! The same output and exit codes as the local command for the same
//! container; a command without a call is refused in one line (exit 2).
//!
//! - [`run`]: `LAUNCH_CONTAINER` (`--parent`: `LAUNCH_NESTED_CONTAINER`),
//!   then `ATTACH_CONTAINER_OUTPUT` and `WAIT_CONTAINER` unless `-d`;
//! - [`containers`]: `wait`, `kill`, `destroy`;
//! - [`listing`]: `ps` (`GET_CONTAINERS` for the statistics) and `status`,
//!   with the agent's `GET /phobos/v1/containers[/ID]`.

mod containers;
mod listing;
pub(super) mod run;

use std::path::Path;

use phobos_core::{ContainerId, Termination, WaitStatus};
use phobos_proto::agent::response;
use phobos_proto::mesos;

use crate::agent_client::{Client, ClientError};
use crate::cli::{Cli, Command};
use crate::error::{Unknown, usage};

pub fn dispatch(socket: &Path, cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Run(args) => run::run(socket, *args),
        Command::Wait { id, json } => containers::wait(socket, &id, json),
        Command::Kill { id, signal } => containers::kill(socket, &id, &signal),
        Command::Destroy { ids, json } => containers::destroy(socket, &ids, json),
        Command::Ps { json, quiet } => listing::ps(socket, json, quiet),
        Command::Status { id, json } => listing::status(socket, &id, json),
        other => Err(usage(format!(
            "--agent: '{}' has no call in the agent's API (run, wait, kill, destroy, ps and status have); run it without --agent",
            name(&other)
        ))),
    }
}

/// The subcommand's name, for the refusal.
fn name(command: &Command) -> &'static str {
    match command {
        Command::Run(_) => "run",
        Command::Exec(_) => "exec",
        Command::Attach { .. } => "attach",
        Command::Wait { .. } => "wait",
        Command::Kill { .. } => "kill",
        Command::Destroy { .. } => "destroy",
        Command::Ps { .. } => "ps",
        Command::Status { .. } => "status",
        Command::Logs { .. } => "logs",
        Command::Recover { .. } => "recover",
        Command::Stats { .. } => "stats",
        Command::Top(_) => "top",
        Command::Update(_) => "update",
        Command::State { .. } => "state",
        Command::Image { .. } => "image",
        Command::Config { .. } => "config",
        Command::Observe { .. } => "observe",
        Command::Agent(_) => "agent",
        Command::Ecp { .. } => "ecp",
    }
}

/// A connection, its failure one line naming the socket (exit 1).
fn connect(socket: &Path) -> anyhow::Result<Client> {
    Ok(Client::connect(socket)?)
}

/// `err` as the local command says it: a 404 about container `id` is
/// "unknown container 'ID'" (exit 1), as without the agent.
fn about(id: &ContainerId, err: ClientError) -> anyhow::Error {
    match err {
        ClientError::Api { status: 404, .. } => anyhow::Error::new(Unknown(id.to_string())),
        other => anyhow::Error::new(other),
    }
}

/// Our full ID as a Mesos `ContainerID` with its parent chain.
fn mesos_id(id: &ContainerId) -> mesos::ContainerId {
    phobos_agent::calls::mesos_id(id)
}

/// Our full ID from a Mesos `ContainerID` with its parent chain.
fn full_id(id: &mesos::ContainerId) -> String {
    let mut parts = Vec::new();
    let mut next = Some(id);
    while let Some(id) = next {
        parts.push(id.value.as_str());
        next = id.parent.as_deref();
    }
    parts.reverse();
    parts.join(".")
}

/// The termination a `WAIT_CONTAINER` answered, as the door recorded it
/// (every field of ours has its Mesos counterpart; a command that simply
/// ended comes as its status alone, as from Mesos, and its state and
/// message are the door's for that status).
fn termination(wait: &response::WaitContainer) -> Termination {
    use mesos::TaskState as M;
    use mesos::task_status::Reason as R;
    use phobos_core::{Reason, TaskState};
    let state = wait.state.and_then(|s| match M::try_from(s).ok()? {
        M::TaskFinished => Some(TaskState::Finished),
        M::TaskFailed => Some(TaskState::Failed),
        M::TaskKilled => Some(TaskState::Killed),
        M::TaskLost => Some(TaskState::Lost),
        _ => None,
    });
    let reason = wait.reason.and_then(|r| match R::try_from(r).ok()? {
        R::ContainerLimitation => Some(Reason::ContainerLimitation),
        R::ContainerLimitationMemory => Some(Reason::ContainerLimitationMemory),
        R::ContainerLimitationDisk => Some(Reason::ContainerLimitationDisk),
        R::ContainerLaunchFailed => Some(Reason::ContainerLaunchFailed),
        R::ExecutorTerminated => Some(Reason::ExecutorTerminated),
        _ => None,
    });
    let status = wait.exit_status.map(WaitStatus);
    if let (Some(status), None, None, None) = (status, state, reason, &wait.message) {
        return Termination::from_exit(status);
    }
    Termination {
        status,
        state,
        reason,
        message: wait.message.clone(),
        limited_resources: wait
            .limitation
            .as_ref()
            .map(|l| l.resources.iter().map(|r| r.name.clone()).collect())
            .unwrap_or_default(),
    }
}

/// `WAIT_CONTAINER` (`WAIT_NESTED_CONTAINER` answers the same fields).
fn wait_for(client: &mut Client, id: &ContainerId) -> Result<Termination, ClientError> {
    use phobos_proto::agent::Call;
    use phobos_proto::agent::call::{self, Type};
    let call = Call {
        r#type: Some(Type::WaitContainer as i32),
        wait_container: Some(call::WaitContainer {
            container_id: mesos_id(id),
        }),
        ..Call::default()
    };
    let answer = client.call(&call)?;
    let wait = answer.and_then(|r| r.wait_container).ok_or_else(|| {
        ClientError::Decode("a WAIT_CONTAINER answer without wait_container".into())
    })?;
    Ok(termination(&wait))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminations_survive_the_api() {
        let cases = [
            Termination::from_exit(WaitStatus::exited(3)),
            Termination::from_exit(WaitStatus::signaled(9)),
            Termination {
                status: Some(WaitStatus::signaled(9)),
                state: Some(phobos_core::TaskState::Failed),
                reason: Some(phobos_core::Reason::ContainerLimitationMemory),
                message: Some("Memory limit exceeded".into()),
                limited_resources: vec!["mem".into()],
            },
            Termination {
                state: Some(phobos_core::TaskState::Failed),
                reason: Some(phobos_core::Reason::ContainerLaunchFailed),
                message: Some("Failed to launch container: x".into()),
                ..Termination::default()
            },
            Termination {
                status: Some(WaitStatus::signaled(9)),
                state: Some(phobos_core::TaskState::Killed),
                message: Some("Container destroyed".into()),
                ..Termination::default()
            },
            Termination::default(),
        ];
        for t in cases {
            let body = phobos_agent::calls::wait_body(&t);
            assert_eq!(termination(&body), t);
        }
        // A command that simply ended: its status alone, as Mesos answers.
        let body = phobos_agent::calls::wait_body(&Termination::from_exit(WaitStatus::exited(3)));
        assert_eq!((body.state, body.message), (None, None));
    }

    #[test]
    fn nested_ids_round_trip() {
        let id = ContainerId::parse_path("a.b.c").unwrap();
        assert_eq!(full_id(&mesos_id(&id)), "a.b.c");
    }
}
