//! `phobos state [--rm [--older-than DURATION]]`: where state lives, and
//! removal of the runtime data (and sandboxes under our work dir) of
//! terminated containers.

use phobos_core::ContainerState;

use crate::cli::Global;
use crate::context;
use crate::error::usage;

pub fn run(global: &Global, rm: bool, older_than: Option<&str>) -> anyhow::Result<u8> {
    let older_than = older_than
        .map(|text| {
            phobos_config::parse_duration(text)
                .map_err(|e| usage(format!("invalid --older-than {text:?}: {e}")))
        })
        .transpose()?;
    let containerizer = context::containerizer(global)?;
    if rm {
        for id in containerizer.remove_terminated(older_than)? {
            println!("removed {id}");
        }
        let docker = context::docker(global);
        for id in
            context::block_on(docker.remove_terminated(older_than, &context::work_dir(global)))??
        {
            println!("removed {id}");
        }
        return Ok(0);
    }
    let all = containerizer.list()?;
    let mut terminated = all
        .iter()
        .filter(|c| c.state == ContainerState::Terminated)
        .count();
    let mut count = all.len();
    let docker = context::docker(global);
    for id in docker.store().list()? {
        count += 1;
        if docker
            .store()
            .open(&id)
            .is_some_and(|d| d.exists(phobos_core::store::TERMINATION_FILE))
        {
            terminated += 1;
        }
    }
    println!("runtime dir: {}", context::runtime_dir(global).display());
    println!("work dir:    {}", context::work_dir(global).display());
    println!("containers:  {count} ({terminated} terminated)");
    Ok(0)
}
