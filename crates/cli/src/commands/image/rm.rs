//! `phobos image rm REF`: removes an image and the layers nothing else
//! uses; refused (exit 1, naming the containers) while a container's
//! in-use record names it.

use crate::cli::Global;

pub fn run(global: &Global, reference: &str) -> anyhow::Result<u8> {
    let reference = super::reference(reference)?;
    let store = super::store(global)?;
    let record = store.remove_image(&reference)?;
    outln!("removed {} ({})", record.reference, record.digest);
    Ok(0)
}
