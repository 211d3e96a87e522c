//! `phobos ecp destroy`: kills every process of the container and frees
//! what it held. Idempotent: destroying a terminated or unknown container
//! succeeds, as Mesos's destroy of an unknown container does.

use phobos_core::Operation;
use phobos_proto::containerizer::Destroy;

use crate::cli::{EcpCall, Global};

pub fn run(global: &Global) -> anyhow::Result<()> {
    let request: Destroy = super::read_input()?;
    let id = super::container_id(&request.container_id)?;
    let span = super::container_span(EcpCall::Destroy, &id);
    let _entered = span.enter();
    match crate::commands::apply(global, &id, Operation::Destroy)? {
        Some(outcome) => {
            let t = crate::commands::ended(outcome)?;
            tracing::info!(status = ?t.status.map(|s| s.raw()), "destroyed");
        }
        None => tracing::info!("nothing to destroy: unknown container"),
    }
    Ok(())
}
