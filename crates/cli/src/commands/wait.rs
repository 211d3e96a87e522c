//! `phobos wait ID`: blocks (on init's lock, no polling) until the container
//! ends, then prints its termination. Works from any process, any number of
//! times, also after the launching process died.

use super::{parse_id, print_termination, unknown};
use crate::cli::Global;
use crate::context;

pub fn run(global: &Global, id: &str, json: bool) -> anyhow::Result<u8> {
    let id = parse_id(id)?;
    if let Some(docker) = super::docker_owner(global, &id) {
        let t = context::block_on(docker.wait(&id))??.ok_or_else(|| unknown(&id))?;
        print_termination(&t, json)?;
        return Ok(0);
    }
    let termination = context::containerizer(global)?
        .wait(&id)?
        .ok_or_else(|| unknown(&id))?;
    print_termination(&termination, json)?;
    Ok(0)
}
