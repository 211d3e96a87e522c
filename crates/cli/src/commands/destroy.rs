//! `phobos destroy ID`: kills every process of the container in whatever
//! state it is, removes its cgroups and prints the termination.

use super::{parse_id, print_termination, unknown};
use crate::cli::Global;
use crate::context;

pub fn run(global: &Global, id: &str, json: bool) -> anyhow::Result<u8> {
    let id = parse_id(id)?;
    if let Some(docker) = super::docker_owner(global, &id) {
        let t = context::block_on(docker.destroy(&id))??.ok_or_else(|| unknown(&id))?;
        print_termination(&t, json)?;
        return Ok(0);
    }
    let termination = context::containerizer(global)?
        .destroy(&id)?
        .ok_or_else(|| unknown(&id))?;
    print_termination(&termination, json)?;
    Ok(0)
}
