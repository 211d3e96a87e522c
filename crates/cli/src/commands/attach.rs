//! `phobos attach ID`: this terminal to the switchboard of a container
//! started with `-t` (its input, if no other client holds it, and its
//! output); Ctrl-P Ctrl-Q detaches and leaves the container running.
//! When the container's terminal ends, exits with the container's code.

use phobos_core::Operation;
use phobos_runtime::terminal::terminal::End;

use super::{parse_id, unknown};
use crate::cli::Global;
use crate::context;

pub fn run(global: &Global, id: &str) -> anyhow::Result<u8> {
    let id = parse_id(id)?;
    let door = context::door(global)?;
    if !door.exists(&id) {
        return Err(unknown(&id));
    }
    let Some(path) = door.switchboard(&id) else {
        anyhow::bail!(
            "container {id} has no terminal to attach to (it was not started with -t, or it ended)"
        );
    };
    // SIGWINCH to the bridge's signalfd, whatever thread would get it.
    nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_BLOCK,
        Some(&crate::terminal::with_sigwinch(
            nix::sys::signal::SigSet::empty(),
        )),
        None,
    )?;
    if crate::terminal::attach(&path, true, true)? == End::Detached {
        crate::terminal::detached(&id);
        return Ok(0);
    }
    let outcome = door
        .apply(&id, Operation::Wait)?
        .ok_or_else(|| unknown(&id))?;
    let termination = super::ended(outcome)?;
    Ok(termination.shell_exit_code().clamp(0, 255) as u8)
}
