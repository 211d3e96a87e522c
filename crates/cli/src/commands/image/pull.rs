//! `phobos image pull REF [--timeout D]`: pulls from the image's registry
//! (`docker_registry` for docker.io, plain HTTP for loopback and
//! `docker_insecure_registries`, credentials from `docker_config`), with
//! progress on a terminal, a few plain lines otherwise, none with
//! `--quiet` (see `progress`).

use phobos_image::{Credentials, PullSettings};

use crate::cli::Global;
use crate::context;
use crate::error::usage;

pub fn run(global: &Global, reference: &str, timeout: &str, quiet: bool) -> anyhow::Result<u8> {
    let reference = super::reference(reference)?;
    let timeout = phobos_config::parse_duration(timeout)
        .map_err(|e| usage(format!("invalid --timeout {timeout:?}: {e}")))?;
    if timeout.is_zero() {
        return Err(usage("invalid --timeout: must be greater than zero"));
    }
    let settings_now = context::settings(global);
    let config = settings_now.config();
    let settings = PullSettings {
        default_registry: config.docker_registry.clone(),
        insecure: config.docker_insecure_registries.clone(),
        credentials: match &config.docker_config {
            Some(setting) => Credentials::from_setting(setting)?,
            None => Credentials::none(),
        },
        timeout,
        ..PullSettings::default()
    };
    let store = super::store(global)?;
    let reporter = super::progress::PullProgress::new(super::progress::Mode::for_stderr(quiet));
    let result = phobos_image::pull(&store, &reference, &settings, &reporter);
    let image = result?;
    outln!("pulled {} ({})", image.reference, image.digest);
    Ok(0)
}
