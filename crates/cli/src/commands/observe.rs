//! `phobos observe ID` (hidden): Deimos's observer for Docker command tasks
//! launched through ECP. The Mesos command executor runs it on the host in
//! place of the task's command (`mesos-executor --override`), so the
//! executor reports TASK_RUNNING, then TASK_FINISHED or TASK_FAILED with the
//! container's exit code. A killTask makes the executor signal it: SIGTERM
//! or SIGINT destroys the container (its grace period, then SIGKILL) and the
//! observer exits with the killed container's code.

use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};

use super::{parse_id, unknown};
use crate::cli::Global;
use crate::context;

pub fn run(global: &Global, id: &str) -> anyhow::Result<u8> {
    let id = parse_id(id)?;
    let docker = super::docker_owner(global, &id).ok_or_else(|| unknown(&id))?;
    let mut stop = SigSet::empty();
    stop.add(Signal::SIGTERM);
    stop.add(Signal::SIGINT);
    // Blocked before any thread exists, so only the thread below takes them.
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&stop), None)?;
    {
        let docker = docker.clone();
        let id = id.clone();
        std::thread::spawn(move || {
            if stop.wait().is_ok() {
                match context::block_on(docker.destroy(&id)) {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => eprintln!("phobos: observe: failed to destroy {id}: {e}"),
                    Err(e) => eprintln!("phobos: observe: failed to destroy {id}: {e}"),
                }
            }
        });
    }
    let termination = context::block_on(docker.wait(&id))??.ok_or_else(|| unknown(&id))?;
    Ok(termination.shell_exit_code().clamp(0, 255) as u8)
}
