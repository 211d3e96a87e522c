//! `phobos ecp destroy`: kills every process of the container and frees
//! what it held. Idempotent: destroying a terminated or unknown container
//! succeeds, as Mesos's destroy of an unknown container does.

use phobos_proto::containerizer::Destroy;

use crate::cli::{EcpCall, Global};
use crate::context;

pub fn run(global: &Global) -> anyhow::Result<()> {
    let request: Destroy = super::read_input()?;
    let id = super::container_id(&request.container_id)?;
    let span = super::container_span(EcpCall::Destroy, &id);
    let _entered = span.enter();
    let t = match crate::commands::docker_owner(global, &id) {
        Some(docker) => context::block_on(docker.destroy(&id))??,
        None => context::containerizer(global)?.destroy(&id)?,
    };
    match t {
        Some(t) => tracing::info!(status = ?t.status.map(|s| s.raw()), "destroyed"),
        None => tracing::info!("nothing to destroy: unknown container"),
    }
    Ok(())
}
