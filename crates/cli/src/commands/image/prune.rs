//! `phobos image prune`: removes layers that no image and no container
//! uses, and what killed pulls left in staging (Mesos's image GC).

use crate::cli::Global;

pub fn run(global: &Global) -> anyhow::Result<u8> {
    let store = super::store(global)?;
    let (layers, bytes) = store.prune()?;
    outln!("removed {layers} layer(s), {}", super::human_size(bytes));
    Ok(0)
}
