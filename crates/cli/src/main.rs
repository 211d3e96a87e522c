//! `phobos`: the human face of Phobos (and, hidden, the container init
//! helper). Each subcommand lives in its own file under `commands/`.

mod cli;
mod commands;
mod context;
mod error;
mod follow;
mod resource_args;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // The init helper is exec'd on every launch: dispatch it before any
    // argument parsing or logging set-up, to keep launches fast.
    if std::env::args_os().nth(1).is_some_and(|a| a == "init") {
        return ExitCode::from(phobos_mesos::init::main().clamp(0, 255) as u8);
    }
    let cli = cli::Cli::parse();
    context::init_logging(&cli.global);
    match commands::dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let (code, message) = error::classify(&err);
            eprintln!("phobos: {message}");
            ExitCode::from(code)
        }
    }
}
