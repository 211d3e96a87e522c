//! `phobos update`: change a running container's requests and limits live
//! (Mesos `Containerizer::update`). Options not given keep their current
//! values.
//!
//! The memory hard limit is only ever raised unless `--force`: lowering it
//! below what the task already uses makes the kernel reclaim and, failing
//! that, invoke the OOM killer inside the container, killing the task the
//! update meant to resize. Mesos never lowers it for the same reason.

use phobos_cgroups::memory::{self, Limit};
use phobos_core::{Operation, Resources};

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
    let resources = resource_args::apply(&args.resources, current.clone())?;
    let kept = (!args.force)
        .then(|| kept_hard_limit(&current, &resources))
        .flatten();
    apply_known(
        global,
        &id,
        Operation::Update {
            resources,
            force: args.force,
        },
    )?;
    if let Some((kept, asked)) = kept {
        errln!(
            "phobos: the memory hard limit stays at {} (an update only raises it, as in Mesos: lowering it below what the task uses would OOM-kill it); add --force to lower it to {}",
            show(kept),
            show(asked)
        );
    }
    Ok(0)
}

/// The hard limit an update without `--force` keeps (and the lower one it
/// was asked for), with the formula the cgroups/mem isolator applies:
/// the limit, else the request.
fn kept_hard_limit(current: &Resources, next: &Resources) -> Option<(Limit, Limit)> {
    let hard = |r: &Resources| -> Option<Limit> {
        (r.mem.is_some() || r.mem_limit.is_some())
            .then(|| memory::hard_limit(r.mem_bytes().unwrap_or(0), r.mem_limit_bytes()))
    };
    let (before, after) = (hard(current)?, hard(next)?);
    (after < before).then_some((before, after))
}

fn show(limit: Limit) -> String {
    match limit {
        Limit::Unlimited => "unlimited".to_owned(),
        Limit::Bytes(b) => format!("{} MB", b / (1 << 20)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phobos_core::resources::Limit as Scalar;

    fn mem(mem: Option<f64>, limit: Option<Scalar>) -> Resources {
        Resources {
            mem,
            mem_limit: limit,
            ..Resources::default()
        }
    }

    #[test]
    fn a_lower_hard_limit_is_reported_as_kept() {
        let mb = |v: u64| Limit::Bytes(v << 20);
        assert_eq!(
            kept_hard_limit(&mem(Some(128.0), None), &mem(Some(64.0), None)),
            Some((mb(128), mb(64)))
        );
        assert_eq!(
            kept_hard_limit(
                &mem(Some(64.0), Some(Scalar::Infinite)),
                &mem(Some(64.0), Some(Scalar::Finite(256.0)))
            ),
            Some((Limit::Unlimited, mb(256)))
        );
        assert_eq!(
            kept_hard_limit(&mem(Some(64.0), None), &mem(Some(128.0), None)),
            None
        );
        // Lowering the request under an explicit limit keeps the limit:
        // nothing is refused.
        assert_eq!(
            kept_hard_limit(
                &mem(Some(128.0), Some(Scalar::Finite(256.0))),
                &mem(Some(64.0), Some(Scalar::Finite(256.0)))
            ),
            None
        );
        assert_eq!(
            kept_hard_limit(&Resources::default(), &mem(Some(64.0), None)),
            None
        );
    }
}
