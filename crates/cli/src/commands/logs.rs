//! `phobos logs [-f] ID`: the sandbox's stdout and stderr.

use super::{parse_id, unknown};
use crate::cli::Global;
use crate::context;
use crate::follow::Follow;

pub fn run(global: &Global, id: &str, follow: bool, into_sandbox: bool) -> anyhow::Result<u8> {
    let id = parse_id(id)?;
    if let Some(docker) = super::docker_owner(global, &id) {
        if follow {
            // The engine replays the whole log, then follows it live.
            context::block_on(docker.follow(&id, !into_sandbox, into_sandbox))??
                .ok_or_else(|| unknown(&id))?;
            return Ok(0);
        }
        let sandbox = context::block_on(docker.refresh_logs(&id))??.ok_or_else(|| unknown(&id))?;
        Follow::from_start(&sandbox)?.run(None, None)?;
        return Ok(0);
    }
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
