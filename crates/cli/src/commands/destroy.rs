//! `phobos destroy ID`: kills every process of the container in whatever
//! state it is, removes its cgroups and prints the termination.

use phobos_core::Operation;

use super::{apply_known, ended, parse_id, print_termination};
use crate::cli::Global;

pub fn run(global: &Global, id: &str, json: bool) -> anyhow::Result<u8> {
    let id = parse_id(id)?;
    let termination = ended(apply_known(global, &id, Operation::Destroy)?)?;
    print_termination(&termination, json)?;
    Ok(0)
}
