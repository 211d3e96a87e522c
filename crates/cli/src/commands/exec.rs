//! `phobos exec ID -- CMD`: runs a command inside a running container, in
//! its namespaces (setns(2)) and cgroups, with its environment, working
//! directory and user unless overridden; shows its output here, forwards
//! signals to it, and exits with its exit code (128 + N for signal N).
//!
//! With `-t` the command gets a terminal of its own, allocated by the
//! helper inside the container; its master comes back here and this
//! process holds it in a switchboard (`phobos_runtime::terminal`) on a
//! thread, with this terminal attached as its one client.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};

use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
use phobos_runtime::exec::{ExecRequest, ExecStdio};

use super::run::{FORWARDED, parse_env};
use super::{parse_id, unknown};
use crate::cli::{ExecArgs, Global};
use crate::context;
use crate::error::usage;
use crate::follow::Forward;

pub fn run(global: &Global, args: &ExecArgs) -> anyhow::Result<u8> {
    let id = parse_id(&args.id)?;
    if args.command.is_empty() {
        return Err(usage("no command given"));
    }
    if args.tty {
        crate::terminal::require_terminal("-t")?;
    }
    let request = ExecRequest {
        argv: args.command.clone(),
        env: parse_env(&args.env)?,
        working_dir: args.workdir.clone(),
        user: args.user.clone(),
        tty: args.tty.then(|| {
            crate::terminal::caller_size().unwrap_or(phobos_runtime::terminal::pty::DEFAULT_SIZE)
        }),
    };
    let door = context::door(global)?;
    // Block the forwarded signals first so none is lost; the helper resets
    // the mask for the command.
    let mut forwarded = SigSet::empty();
    for sig in FORWARDED {
        forwarded.add(sig);
    }
    let blocked = match args.tty {
        true => crate::terminal::with_sigwinch(forwarded),
        false => forwarded,
    };
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&blocked), None)?;
    let stdin = std::io::stdin().as_fd().try_clone_to_owned()?;
    let stdout = File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
    let stderr = File::from(std::io::stderr().as_fd().try_clone_to_owned()?);
    let mut process = door
        .exec(
            &id,
            &request,
            ExecStdio {
                stdin: &stdin,
                stdout: &stdout,
                stderr: &stderr,
            },
        )?
        .ok_or_else(|| unknown(&id))?;
    match process.tty.take() {
        Some(channel) => {
            crate::terminal::forward_signals(forwarded, process.pidfd.try_clone()?);
            with_terminal(channel, process.pidfd.try_clone()?, args.interactive)?;
        }
        None => Forward::new(forwarded, &process.pidfd)?.until_exit()?,
    }
    let status = process.finish();
    Ok(status.shell_exit_code().clamp(0, 255) as u8)
}

/// Receives the command's terminal from the helper and holds it in a
/// switchboard on a thread, with this terminal as its client, until the
/// command's output ended.
fn with_terminal(channel: OwnedFd, pidfd: OwnedFd, input: bool) -> anyhow::Result<()> {
    use phobos_runtime::terminal::{Attach, Client, Options, Switchboard, pty};
    // None: the helper failed before the command started (it said why).
    let Some(master) = pty::recv_fd(channel.as_fd())? else {
        return Ok(());
    };
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    let mut board = Switchboard::new(
        master,
        Options {
            until: Some(pidfd),
            wait_for_client: true,
            ..Options::default()
        },
    )?;
    board.add_client(theirs)?;
    let server = std::thread::spawn(move || board.run());
    let mut client = Client::over(
        ours,
        Attach {
            input,
            output: true,
            size: crate::terminal::caller_size(),
        },
    )?;
    crate::terminal::run_bridge(&mut client, input, false)?;
    drop(client);
    match server.join() {
        Ok(result) => {
            result?;
        }
        Err(_) => anyhow::bail!("the terminal's switchboard thread panicked"),
    }
    Ok(())
}
