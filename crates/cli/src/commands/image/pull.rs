//! `phobos image pull REF`: pulls from the image's registry (progress on a
//! terminal, log lines otherwise).

use crate::cli::Global;

pub fn run(global: &Global, reference: &str) -> anyhow::Result<u8> {
    let reference = super::reference(reference)?;
    let _store = super::store(global)?;
    anyhow::bail!("pulling {reference}: not built yet")
}
