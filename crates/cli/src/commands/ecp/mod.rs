//! `phobos ecp <call>`: the Mesos external containerizer protocol
//! (reference §1). A Mesos agent 0.19-1.0 runs `sh -c "<containerizer_path>
//! <call>"` once per operation, in its own session, with the sandbox as the
//! working directory and our stderr appended to the sandbox's `stderr`. Each
//! call reads at most one framed protobuf message from stdin (4-byte
//! native-endian length, then the bytes) and writes at most one to stdout;
//! exit 0 is success, anything else failure.
//!
//! Every call is a fresh process over the runtime directory, so calls for
//! one container may run concurrently (wait during destroy, usage during
//! launch): the containerizer's locks order them.

mod containers;
mod destroy;
pub(super) mod docker;
mod launch;
mod recover;
mod termination;
pub(super) mod translate;
mod usage;

mod wait;

use std::io::{self, Read};

use anyhow::Context;
use phobos_core::ContainerId;
use phobos_proto::ecp;
use phobos_proto::mesos;

use crate::cli::{EcpCall, Global};
use crate::error::usage;

pub fn run(global: &Global, call: EcpCall) -> anyhow::Result<u8> {
    tracing::debug!(call = call.name(), "external containerizer call");
    match call {
        EcpCall::Launch => launch::run(global),
        EcpCall::Update => usage::update(global),
        EcpCall::Usage => usage::usage(global),
        EcpCall::Wait => wait::run(global),
        EcpCall::Destroy => destroy::run(global),
        EcpCall::Containers => containers::run(global),
        EcpCall::Recover => recover::run(global),
    }?;
    Ok(0)
}

/// Reads the call's one input message from stdin.
fn read_input<M>() -> anyhow::Result<M>
where
    M: prost::Message + prost::Name + Default,
{
    read_from(&mut io::stdin().lock())
}

fn read_from<M>(input: &mut impl Read) -> anyhow::Result<M>
where
    M: prost::Message + prost::Name + Default,
{
    ecp::read_message::<M>(input).with_context(|| format!("reading {} from stdin", M::NAME))
}

/// Writes the call's one output message to stdout.
fn write_output<M: prost::Message>(msg: &M) -> anyhow::Result<()> {
    ecp::write_message(&mut io::stdout().lock(), msg).context("writing the result to stdout")
}

/// Validates a Mesos `ContainerID` as one of ours (exit 2 when invalid).
/// Nested container IDs (with a parent) came after the ECP was removed.
fn container_id(id: &mesos::ContainerId) -> anyhow::Result<ContainerId> {
    if id.parent.is_some() {
        return Err(usage(format!(
            "container {}: nested containers are not part of the external containerizer protocol",
            id.value
        )));
    }
    ContainerId::new(id.value.as_str()).map_err(|e| usage(e.to_string()))
}

/// The span every line about one container is logged in.
fn container_span(call: EcpCall, id: &ContainerId) -> tracing::Span {
    tracing::info_span!("ecp", call = call.name(), container_id = %id)
}
