//! `phobos state [--rm]`: where state lives, and removal of the runtime and
//! sandbox data of terminated containers.

use phobos_core::ContainerState;

use crate::cli::Global;
use crate::context;

pub fn run(global: &Global, rm: bool) -> anyhow::Result<u8> {
    let containerizer = context::containerizer(global)?;
    if rm {
        for id in containerizer.remove_terminated(None)? {
            println!("removed {id}");
        }
        return Ok(0);
    }
    let all = containerizer.list()?;
    let terminated = all
        .iter()
        .filter(|c| c.state == ContainerState::Terminated)
        .count();
    println!("runtime dir: {}", context::runtime_dir(global).display());
    println!("work dir:    {}", context::work_dir(global).display());
    println!("containers:  {} ({} terminated)", all.len(), terminated);
    Ok(0)
}
