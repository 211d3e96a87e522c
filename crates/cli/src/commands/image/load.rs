//! `phobos image load FILE [--name REF]`: the images of a `docker save`
//! archive (classic or Docker ≥ 25's OCI layout) or an OCI archive.

use std::path::Path;

use crate::cli::Global;

pub fn run(global: &Global, file: &Path, name: Option<&str>) -> anyhow::Result<u8> {
    let name = name.map(super::reference).transpose()?;
    let store = super::store(global)?;
    let reporter = super::progress::PullProgress::new(super::progress::Mode::for_stderr(false));
    let result = phobos_image::load(&store, file, name.as_ref(), &reporter);
    for image in result? {
        outln!("loaded {} ({})", image.reference, image.digest);
    }
    Ok(0)
}
