//! `phobos`: the human face of Phobos, the Mesos external containerizer
//! (`phobos ecp …`, hidden) and, hidden too, the container init helper.
//! Each subcommand lives in its own file under `commands/` (the ECP's calls
//! under `commands/ecp/`); each parses its input and goes through
//! `phobos_runtime` (the settings, the planner, the door), never to a
//! containerizer directly.

// First: its macros (`outln!`, `out!`, `errln!`) serve every module below.
#[macro_use]
mod output;

mod agent_client;
mod cli;
mod commands;
mod context;
mod docker_args;
mod early;
mod error;
mod follow;
mod logging;
mod resource_args;
mod terminal;

use std::process::ExitCode;

use clap::error::ErrorKind;

fn main() -> ExitCode {
    // The init helper is exec'd on every launch: dispatch it before any
    // argument parsing, configuration or logging set-up, to keep launches fast.
    if std::env::args_os().nth(1).is_some_and(|a| a == "init") {
        return ExitCode::from(phobos_runtime::init_main().clamp(0, 255) as u8);
    }
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "switchboard")
    {
        return ExitCode::from(phobos_runtime::switchboard_main().clamp(0, 255) as u8);
    }
    // Before the parse: see `early`.
    let early = early::start();
    let mut cli = match cli::parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    if let Err(err) = context::resolve(&mut cli.global) {
        return report(&err);
    }
    let face = match cli.command {
        cli::Command::Ecp { .. } => logging::Face::Ecp,
        _ => logging::Face::Human,
    };
    logging::init(&cli.global, face);
    match commands::dispatch(cli, early) {
        Ok(code) => ExitCode::from(code),
        Err(err) => report(&err),
    }
}

fn report(err: &anyhow::Error) -> ExitCode {
    let (code, message) = error::classify(err);
    if !nix::unistd::geteuid().is_root() && error::root_only(err) {
        errln!("phobos: {}: {message}", error::NEEDS_ROOT);
    } else {
        errln!("phobos: {message}");
    }
    ExitCode::from(code)
}

/// Help and version print as usual. Under `phobos ecp` (whose stderr lands
/// in a sandbox file) a grammar error is one line; people get clap's hints.
fn usage_error(err: clap::Error) -> ExitCode {
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) || !std::env::args_os().any(|a| a == "ecp")
    {
        // As clap's `exit`, but a closed stdout ends the process as any
        // other output of ours does (`output`); other write errors are
        // dropped, as clap drops them.
        let printed = err
            .print()
            .and_then(|()| std::io::Write::flush(&mut std::io::stdout()));
        let _ = output::checked(printed);
        return ExitCode::from(err.exit_code().clamp(0, 255) as u8);
    }
    if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        errln!(
            "phobos: ecp needs a subcommand: launch, update, usage, wait, destroy, containers or recover"
        );
        return ExitCode::from(2);
    }
    let rendered = err.to_string();
    let line = rendered.lines().next().unwrap_or("invalid arguments");
    let line = line.strip_prefix("error: ").unwrap_or(line);
    errln!("phobos: {line}");
    ExitCode::from(2)
}
