//! `phobos kill ID [-s SIG]`: signals the command through its init helper.

use phobos_core::Operation;
use phobos_core::wait_status::parse_signal;

use super::{apply_known, parse_id};
use crate::cli::Global;
use crate::error::usage;

pub fn run(global: &Global, id: &str, signal: &str) -> anyhow::Result<u8> {
    let id = parse_id(id)?;
    let signal = parse_signal(signal).ok_or_else(|| usage(format!("unknown signal '{signal}'")))?;
    apply_known(global, &id, Operation::Kill { signal })?;
    Ok(0)
}
