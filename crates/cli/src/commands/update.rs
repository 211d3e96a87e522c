//! `phobos update`: change a running container's requests and limits live
//! (Mesos `Containerizer::update`). Options not given keep their current
//! values.
//!
//! The memory hard limit is only ever raised unless `--force`: lowering it
//! below what the task already uses makes the kernel reclaim and, failing
//! that, invoke the OOM killer inside the container, killing the task the
//! update meant to resize. Mesos never lowers it for the same reason.

use crate::cli::{Global, UpdateArgs};
use crate::context;
use crate::error::usage;
use crate::resource_args;

pub fn run(global: &Global, args: &UpdateArgs) -> anyhow::Result<u8> {
    let id = super::parse_id(&args.id)?;
    if !resource_args::any(&args.resources) {
        return Err(usage(
            "nothing to update: give --cpus, --mem, --cpus-limit, --mem-limit or --pids-limit",
        ));
    }
    // Parse everything before touching the container: a bad value is a
    // usage error and changes nothing.
    resource_args::apply(&args.resources, Default::default())?;
    if let Some(docker) = super::docker_owner(global, &id) {
        return context::block_on(async {
            let engine = docker.engine().await?;
            let current = docker
                .summary(&id, Some(&engine))
                .await?
                .ok_or_else(|| super::unknown(&id))?;
            let resources = resource_args::apply(&args.resources, current.resources)?;
            docker
                .update(&id, &resources)
                .await?
                .ok_or_else(|| super::unknown(&id))?;
            Ok(0)
        })?;
    }
    let containerizer = context::containerizer(global)?;
    let Some(summary) = containerizer.summary(&id)? else {
        return Err(super::unknown(&id));
    };
    let resources = resource_args::apply(&args.resources, summary.resources)?;
    match containerizer.update(&id, &resources, args.force)? {
        Some(()) => Ok(0),
        None => Err(super::unknown(&id)),
    }
}
