//! `phobos kill ID [-s SIG]`: signals the command through its init helper.

use phobos_core::wait_status::parse_signal;

use super::{parse_id, unknown};
use crate::cli::Global;
use crate::context;
use crate::error::usage;

pub fn run(global: &Global, id: &str, signal: &str) -> anyhow::Result<u8> {
    let id = parse_id(id)?;
    let sig = parse_signal(signal).ok_or_else(|| usage(format!("unknown signal '{signal}'")))?;
    if let Some(docker) = super::docker_owner(global, &id) {
        context::block_on(docker.kill(&id, sig))??.ok_or_else(|| unknown(&id))?;
        return Ok(0);
    }
    context::containerizer(global)?
        .kill(&id, sig)?
        .ok_or_else(|| unknown(&id))?;
    Ok(0)
}
