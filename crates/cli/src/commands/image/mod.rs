//! `phobos image pull|load|ls|rm|prune`: the image store of the Mesos
//! containerizer (`docker_store_dir`, default `<work_dir>/store`).

pub(crate) mod fetch_progress;
mod load;
mod ls;
pub(crate) mod progress;
mod prune;
mod pull;
mod rm;

use phobos_image::{Reference, Store};

use crate::cli::{Global, ImageCommand};
use crate::context;
use crate::error::usage;

pub fn run(global: &Global, command: ImageCommand) -> anyhow::Result<u8> {
    match command {
        ImageCommand::Pull {
            reference,
            timeout,
            quiet,
        } => pull::run(global, &reference, &timeout, quiet),
        ImageCommand::Load { file, name } => load::run(global, &file, name.as_deref()),
        ImageCommand::Ls { json } => ls::run(global, json),
        ImageCommand::Rm { reference } => rm::run(global, &reference),
        ImageCommand::Prune => prune::run(global),
    }
}

/// The store: `docker_store_dir`, else `<work_dir>/store`.
pub(crate) fn store(global: &Global) -> anyhow::Result<Store> {
    Ok(Store::open(context::settings(global).image_store_dir())?)
}

/// Parses a reference argument (exit 2 when invalid).
pub(crate) fn reference(text: &str) -> anyhow::Result<Reference> {
    Reference::parse(text).map_err(|e| usage(e.to_string()))
}

/// Bytes for people: 1.5 MB.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
