//! One file per subcommand (the ECP's calls under `ecp/`); `dispatch`
//! returns the process exit code. Every container operation goes through
//! the door (`phobos_runtime::Door`); no command names a containerizer.

mod agent;
mod attach;
mod config;
mod destroy;
mod ecp;
mod exec;
#[cfg(test)]
mod faces_tests;
mod image;
mod kill;
mod logs;
mod observe;
mod ps;
mod recover;
mod run;
mod state;
mod stats;
mod status;
mod top;
mod update;
mod via_agent;
mod wait;

use phobos_core::{ContainerId, Operation, Outcome, ResourceStatistics, Resources, Termination};

use crate::cli::{Cli, Command};

use crate::error::{Unknown, usage};
pub use top::SortKey;

/// `early`: what `main` started for `run` or `agent` (see `early`).
pub fn dispatch(cli: Cli, early: crate::early::Early) -> anyhow::Result<u8> {
    if let Some(socket) = cli.global.agent.clone() {
        return via_agent::dispatch(&socket, cli);
    }
    let g = &cli.global;
    match cli.command {
        Command::Run(args) => run::run(g, *args, early.spawner),
        Command::Exec(args) => exec::run(g, &args),
        Command::Attach { id } => attach::run(g, &id),
        Command::Wait { id, json } => wait::run(g, &id, json),
        Command::Kill { id, signal } => kill::run(g, &id, &signal),
        Command::Destroy { ids, json } => destroy::run(g, &ids, json),
        Command::Ps { json, quiet } => ps::run(g, json, quiet),
        Command::Status { id, json } => status::run(g, &id, json),
        Command::Logs {
            id,
            follow,
            tail,
            since,
            stdout,
            stderr,
            into_sandbox,
        } => logs::run(
            g,
            &id,
            logs::Options {
                follow,
                tail,
                since,
                stdout,
                stderr,
                into_sandbox,
            },
        ),
        Command::Recover { json } => recover::run(g, json),
        Command::State { rm, older_than } => state::run(g, rm, older_than.as_deref()),
        Command::Config { json } => config::run(g, json),
        Command::Image { command } => image::run(g, command),
        Command::Ecp { call } => ecp::run(g, call),
        Command::Agent(args) => agent::run(g, &args, early.factory),
        Command::Observe { id } => observe::run(g, &id),
        Command::Stats { id, json } => stats::run(g, id.as_deref(), json),
        Command::Top(args) => top::run(
            g,
            top::Options {
                delay: args.delay,
                iterations: args.iterations,
                batch: args.batch,
                filter: args.filter,
                sort: args.sort,
                reverse: args.reverse,
            },
        ),
        Command::Update(args) => update::run(g, &args),
    }
}

/// Applies `operation` to container `id` through the door; `Ok(None)` for
/// an unknown container.
pub(crate) fn apply(
    global: &crate::cli::Global,
    id: &ContainerId,
    operation: Operation,
) -> anyhow::Result<Option<Outcome>> {
    Ok(crate::context::door(global)?.apply(id, operation)?)
}

/// [`apply`] for a container that must exist: an unknown one is an error.
pub(crate) fn apply_known(
    global: &crate::cli::Global,
    id: &ContainerId,
    operation: Operation,
) -> anyhow::Result<Outcome> {
    apply(global, id, operation)?.ok_or_else(|| unknown(id))
}

/// The termination a `Wait` or `Destroy` answered.
pub(crate) fn ended(outcome: Outcome) -> anyhow::Result<Termination> {
    match outcome {
        Outcome::Ended(t) => Ok(t),
        other => Err(unexpected(other)),
    }
}

/// The statistics a `Usage` answered.
pub(crate) fn statistics(outcome: Outcome) -> anyhow::Result<ResourceStatistics> {
    match outcome {
        Outcome::Usage(stats) => Ok(*stats),
        other => Err(unexpected(other)),
    }
}

/// The requests and limits a `Resources` answered.
pub(crate) fn resources(outcome: Outcome) -> anyhow::Result<Resources> {
    match outcome {
        Outcome::Resources(r) => Ok(r),
        other => Err(unexpected(other)),
    }
}

fn unexpected(outcome: Outcome) -> anyhow::Error {
    anyhow::anyhow!("the containerizer gave an answer of the wrong kind: {outcome:?}")
}

/// Parses a container ID argument, a nested one's full ID
/// (`parent.child`) included (exit 2 when invalid).
fn parse_id(text: &str) -> anyhow::Result<ContainerId> {
    ContainerId::parse_path(text).map_err(|e| usage(e.to_string()))
}

pub(crate) fn unknown(id: &ContainerId) -> anyhow::Error {
    anyhow::Error::new(Unknown(id.to_string()))
}

/// Prints a termination as JSON or as one human line.
fn print_termination(t: &Termination, json: bool) -> anyhow::Result<()> {
    if json {
        outln!("{}", serde_json::to_string(&t.report())?);
        return Ok(());
    }
    let mut line = match t.status {
        Some(status) => status.to_string(),
        None => "ended without a status".to_owned(),
    };
    if let Some(state) = t.state {
        let state = serde_json::to_value(state)?;
        line.push_str(&format!(" ({}", state.as_str().unwrap_or("?")));
        if let Some(reason) = t.reason {
            let reason = serde_json::to_value(reason)?;
            line.push_str(&format!(", {}", reason.as_str().unwrap_or("?")));
        }
        line.push(')');
    }
    if let Some(message) = &t.message {
        line.push_str(&format!(": {message}"));
    }
    outln!("{line}");
    Ok(())
}
