//! `phobos ecp usage` and `phobos ecp update`.
//!
//! `usage` always answers a running container with a `ResourceStatistics`
//! carrying a timestamp and CPU times (Deimos wrote nothing in several
//! normal states and never CPU times), with `cpus_limit` and
//! `mem_limit_bytes` as the container's allocation, as agents 0.19-1.0
//! read them: the door's `legacy_usage`.
//!
//! `update` applies the agent's new resource set (the scalar `cpus`, `mem`
//! and `disk`) through the isolators and checkpoints it. The memory hard
//! limit is only ever raised, as Mesos does.

use phobos_core::Operation;
use phobos_proto::containerizer::{Update, Usage};

use super::translate;
use crate::cli::{EcpCall, Global};
use crate::commands;
use crate::context;

pub fn usage(global: &Global) -> anyhow::Result<()> {
    let request: Usage = super::read_input()?;
    let id = super::container_id(&request.container_id)?;
    let span = super::container_span(EcpCall::Usage, &id);
    let _entered = span.enter();
    let stats = context::door(global)?
        .legacy_usage(&id)?
        .ok_or_else(|| commands::unknown(&id))?;
    super::write_output(&phobos_runtime::mesos_proto::statistics(&stats))
}

pub fn update(global: &Global) -> anyhow::Result<()> {
    let request: Update = super::read_input()?;
    let id = super::container_id(&request.container_id)?;
    let span = super::container_span(EcpCall::Update, &id);
    let _entered = span.enter();
    let resources = translate::from_mesos(&request.resources);
    tracing::info!(?resources, "updating");
    commands::apply_known(
        global,
        &id,
        Operation::Update {
            resources,
            force: false,
        },
    )?;
    Ok(())
}
