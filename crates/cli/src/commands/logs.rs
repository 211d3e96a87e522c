//! `phobos logs [-f] ID`: the sandbox's stdout and stderr.

use phobos_runtime::Logs;

use super::{parse_id, unknown};
use crate::cli::Global;
use crate::context;
use crate::follow::Follow;

pub fn run(global: &Global, id: &str, follow: bool, into_sandbox: bool) -> anyhow::Result<u8> {
    let id = parse_id(id)?;
    let logs = context::door(global)?
        .logs(&id, follow, into_sandbox)?
        .ok_or_else(|| unknown(&id))?;
    if let Logs::Files { sandbox, until } = logs {
        Follow::from_start(&sandbox)?.run(until.as_ref(), None)?;
    }
    Ok(0)
}
