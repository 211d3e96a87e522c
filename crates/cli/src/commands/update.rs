//! `phobos update`: change a running container's requests and limits live
//! (Mesos `Containerizer::update`). Options not given keep their current
//! values.
//!
//! The memory hard limit is only ever raised unless `--force`: lowering it
//! below what the task already uses makes the kernel reclaim and, failing
//! that, invoke the OOM killer inside the container, killing the task the
//! update meant to resize. Mesos never lowers it for the same reason.

use phobos_core::Operation;

use super::apply_known;
use crate::cli::{Global, UpdateArgs};
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
    let current = super::resources(apply_known(global, &id, Operation::Resources)?)?;
    let resources = resource_args::apply(&args.resources, current)?;
    apply_known(
        global,
        &id,
        Operation::Update {
            resources,
            force: args.force,
        },
    )?;
    Ok(0)
}
