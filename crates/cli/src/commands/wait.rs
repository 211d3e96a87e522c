//! `phobos wait ID`: blocks (on init's lock, no polling) until the container
//! ends, then prints its termination. Works from any process, any number of
//! times, also after the launching process died.

use phobos_core::Operation;

use super::{apply_known, ended, parse_id, print_termination};
use crate::cli::Global;

pub fn run(global: &Global, id: &str, json: bool) -> anyhow::Result<u8> {
    let id = parse_id(id)?;
    let termination = ended(apply_known(global, &id, Operation::Wait)?)?;
    print_termination(&termination, json)?;
    Ok(0)
}
