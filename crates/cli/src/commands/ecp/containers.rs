//! `phobos ecp containers`: every live top-level container (launching,
//! running or being destroyed; not terminated ones), which the agent
//! compares with its checkpoints after `recover` to find orphans.

use phobos_core::ContainerState;
use phobos_proto::containerizer::Containers;
use phobos_proto::mesos;

use crate::cli::Global;
use crate::context;

pub fn run(global: &Global) -> anyhow::Result<()> {
    let containers = context::door(global)?
        .list()?
        .into_iter()
        .filter(|c| c.state() != ContainerState::Terminated)
        // Nested containers (`parent.child`) are not the agent's: the
        // protocol has no nested IDs, and they go with their top-level one.
        .filter(|c| !c.id().is_nested())
        .map(|c| mesos::ContainerId {
            value: c.id().as_str().to_owned(),
            parent: None,
        })
        .collect();
    super::write_output(&Containers { containers })
}
