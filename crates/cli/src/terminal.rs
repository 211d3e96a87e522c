//! What `run -t`, `exec -t` and `attach` share: the caller's terminal
//! checked up front, its size, and the bridge to a switchboard client
//! (`phobos_runtime::terminal`), with signals sent to this process passed
//! on to the container's supervisor from a thread of their own.

use std::io::IsTerminal;
use std::os::fd::{AsFd, OwnedFd};

use nix::sys::signal::{SigSet, Signal};
use phobos_core::WindowSize;
use phobos_runtime::terminal::terminal::{self as bridge, BridgeOptions, End};
use phobos_runtime::terminal::{Attach, Client};

use crate::error::usage;
use crate::follow::Forward;

/// `-t` in the foreground needs a terminal to be the caller's side.
pub fn require_terminal(what: &str) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(usage(format!(
            "{what} needs a terminal on stdin (stdin is not a terminal)"
        )));
    }
    Ok(())
}

/// The caller's window size, when it has a terminal.
pub fn caller_size() -> Option<WindowSize> {
    bridge::caller_size(std::io::stdin().as_fd(), std::io::stdout().as_fd())
}

/// Adds SIGWINCH to `set`, so the bridge's signalfd gets it whichever
/// thread the kernel would have picked: block the set before any thread
/// (or child) is started.
pub fn with_sigwinch(mut set: SigSet) -> SigSet {
    set.add(Signal::SIGWINCH);
    set
}

/// Connects to the switchboard at `path` and bridges this terminal to it
/// until the output ends or the user detaches.
pub fn attach(path: &std::path::Path, input: bool, detach_keys: bool) -> anyhow::Result<End> {
    let mut client = Client::connect(
        path,
        Attach {
            input,
            output: true,
            size: caller_size(),
        },
    )?;
    run_bridge(&mut client, input, detach_keys)
}

/// Bridges this terminal to an attached client.
pub fn run_bridge(client: &mut Client, input: bool, detach_keys: bool) -> anyhow::Result<End> {
    Ok(bridge::bridge(
        client,
        std::io::stdin().as_fd(),
        std::io::stdout().as_fd(),
        BridgeOptions { input, detach_keys },
    )?)
}

/// Passes the signals of `forwarded` (blocked in every thread) on to the
/// process behind `pidfd` until it exits, from a thread of its own.
pub fn forward_signals(forwarded: SigSet, pidfd: OwnedFd) {
    std::thread::spawn(move || {
        if let Ok(forward) = Forward::new(forwarded, &pidfd) {
            let _ = forward.until_exit();
        }
    });
}

/// What the user is told after detaching.
pub fn detached(id: &phobos_core::ContainerId) {
    errln!("phobos: detached from {id}; `phobos attach {id}` attaches again");
}
