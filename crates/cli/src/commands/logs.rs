//! `phobos logs [-f] ID`: the sandbox's stdout and stderr.

use super::{parse_id, unknown};
use crate::cli::Global;
use crate::context;
use crate::follow::Follow;

pub fn run(global: &Global, id: &str, follow: bool) -> anyhow::Result<u8> {
    let id = parse_id(id)?;
    let containerizer = context::containerizer(global)?;
    let c = containerizer.summary(&id)?.ok_or_else(|| unknown(&id))?;
    let mut output = Follow::from_start(&c.sandbox)?;
    let init = match (follow, c.pid) {
        (true, Some(pid)) if c.termination.is_none() => {
            let pidfd = phobos_mesos::sys::pidfd_open(pid).ok();
            // Only follow a pid that still is this container's init.
            let dir = containerizer.store().open(&id);
            match (pidfd, dir) {
                (Some(fd), Some(dir)) if dir.init_alive()? => Some(fd),
                _ => None,
            }
        }
        _ => None,
    };
    output.run(init.as_ref(), None)?;
    Ok(0)
}
