//! `phobos ecp wait`: blocks until the container is gone, then writes its
//! `Termination` and exits 0 — whatever the container's exit code (Deimos
//! exited with it, and the agent took that for a failed call). The call
//! blocks on the init helper's lock, so it works from any process and
//! returns at once when a concurrent `destroy` ends the container.

use phobos_config::EcpTermination;
use phobos_core::Operation;
use phobos_proto::containerizer::Wait;

use super::termination;
use crate::cli::{EcpCall, Global};
use crate::commands::{apply_known, ended};
use crate::context;

pub fn run(global: &Global) -> anyhow::Result<()> {
    let request: Wait = super::read_input()?;
    let id = super::container_id(&request.container_id)?;
    let span = super::container_span(EcpCall::Wait, &id);
    let _entered = span.enter();
    let generation = context::settings(global).config().ecp_termination;
    tracing::info!("waiting");
    let t = ended(apply_known(global, &id, Operation::Wait)?)?;
    tracing::info!(status = ?t.status.map(|s| s.raw()), "terminated");
    match generation {
        EcpTermination::V0_26 => super::write_output(&termination::v0_26(&t)),
        EcpTermination::V0_19 => super::write_output(&termination::v0_19(&t)),
    }
}
