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
    let door = context::door(global)?;
    if rm {
        for id in door.remove_terminated(older_than)? {
            outln!("removed {id}");
        }
        return Ok(0);
    }
    let all = door.list()?;
    let terminated = all
        .iter()
        .filter(|c| c.state() == ContainerState::Terminated)
        .count();
    let settings = door.settings();
    outln!("runtime dir: {}", settings.runtime_dir().display());
    outln!("work dir:    {}", settings.work_dir().display());
    outln!("containers:  {} ({terminated} terminated)", all.len());
    Ok(0)
}
