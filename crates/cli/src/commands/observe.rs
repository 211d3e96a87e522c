//! `phobos observe ID` (hidden): Deimos's observer for Docker command tasks
//! launched through ECP. The Mesos command executor runs it on the host in
//! place of the task's command (`mesos-executor --override`), so the
//! executor reports TASK_RUNNING, then TASK_FINISHED or TASK_FAILED with the
//! container's exit code. A killTask makes the executor signal it: SIGTERM
//! or SIGINT destroys the container (its grace period, then SIGKILL) and the
//! observer exits with the killed container's code.

use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use phobos_core::Operation;

use super::{parse_id, unknown};
use crate::cli::Global;
use crate::context;

pub fn run(global: &Global, id: &str) -> anyhow::Result<u8> {
    let id = parse_id(id)?;
    let door = context::door(global)?;
    if !door.exists(&id) {
        return Err(unknown(&id));
    }
    let mut stop = SigSet::empty();
    stop.add(Signal::SIGTERM);
    stop.add(Signal::SIGINT);
    // Blocked before any thread exists, so only the thread below takes them.
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&stop), None)?;
    {
        let global = global.clone();
        let id = id.clone();
        std::thread::spawn(move || {
            if stop.wait().is_ok()
                && let Err(e) = super::apply(&global, &id, Operation::Destroy)
            {
                errln!("phobos: observe: failed to destroy {id}: {e}");
            }
        });
    }
    let termination = super::ended(super::apply_known(global, &id, Operation::Wait)?)?;
    Ok(termination.shell_exit_code().clamp(0, 255) as u8)
}
