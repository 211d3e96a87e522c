//! The image provisioner the door hands the Mesos containerizer: the
//! image store and overlay/copy provisioner of `phobos-image`, pulling an
//! image the store lacks from its registry first (Mesos's provisioner
//! with the Docker store, reference images §1). A pull is reported as log
//! lines.

use std::path::PathBuf;
use std::sync::OnceLock;

use phobos_core::{BoxError, ContainerId};
use phobos_image::{
    Backend, Credentials, Event, Progress, Provisioner, PullSettings, Reference, Store,
};
use phobos_mesos::Provisioned;

use crate::settings::Settings;

/// `phobos_mesos::Provisioner` over the image store, which is opened (and
/// created) only when a container with an image needs it.
#[derive(Debug)]
pub struct ImageProvisioner {
    store_dir: PathBuf,
    backend: Backend,
    provisioner: OnceLock<Provisioner>,
    dir: PathBuf,
    pull: PullSettings,
}

impl ImageProvisioner {
    /// The store at `docker_store_dir`, root filesystems under
    /// `<work_dir>/provisioner` with `image_provisioner_backend`.
    pub fn new(settings: &Settings) -> Result<Self, BoxError> {
        let config = settings.config();
        let backend: Backend = config.image_provisioner_backend.parse()?;
        let dir = settings.work_dir().join("provisioner");
        let pull = PullSettings {
            default_registry: config.docker_registry.clone(),
            insecure: config.docker_insecure_registries.clone(),
            credentials: match &config.docker_config {
                Some(setting) => Credentials::from_setting(setting)?,
                None => Credentials::none(),
            },
            ..PullSettings::default()
        };
        Ok(Self {
            store_dir: settings.image_store_dir(),
            backend,
            provisioner: OnceLock::new(),
            dir,
            pull,
        })
    }

    fn provisioner(&self) -> Result<&Provisioner, BoxError> {
        if let Some(p) = self.provisioner.get() {
            return Ok(p);
        }
        let store = Store::open(&self.store_dir)?;
        Ok(self
            .provisioner
            .get_or_init(|| Provisioner::new(store, self.dir.clone(), self.backend)))
    }
}

/// Pull progress as log lines (the launch's own output is the command's).
struct LogProgress;

impl Progress for LogProgress {
    fn event(&self, event: Event) {
        if let Event::LayerDone { digest, fetched } = event {
            tracing::info!(layer = %digest, fetched, "layer ready");
        }
    }
}

impl phobos_mesos::Provisioner for ImageProvisioner {
    fn provision(&self, id: &ContainerId, reference: &str) -> Result<Provisioned, BoxError> {
        let reference = Reference::parse(reference)?;
        let provisioner = self.provisioner()?;
        let store = provisioner.store();
        let image = match store.image(&reference)? {
            Some(image) => image,
            None => {
                tracing::info!(image = %reference, "pulling (not in the store)");
                phobos_image::pull(store, &reference, &self.pull, &LogProgress)?
            }
        };
        let rootfs = provisioner.provision(id, &image)?;
        Ok(Provisioned {
            rootfs,
            config: image.config,
        })
    }

    fn destroy(&self, id: &ContainerId) -> Result<(), BoxError> {
        Ok(self.provisioner()?.destroy(id)?)
    }

    fn provisioned(&self) -> Result<Vec<ContainerId>, BoxError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        Ok(entries
            .flatten()
            .filter_map(|e| ContainerId::new(e.file_name().to_str()?).ok())
            .collect())
    }
}
