//! The image provisioner the door hands the Mesos containerizer: the
//! image store and overlay/copy provisioner of `phobos-image`, pulling an
//! image the store lacks from its registry first (Mesos's provisioner
//! with the Docker store, reference images §1). A pull is reported to the
//! face's [`Progress`] when it set one ([`crate::Door::show_image_pulls`]),
//! as log lines otherwise.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use phobos_core::{BoxError, ContainerId};
use phobos_image::{
    Backend, Credentials, Event, Progress, Provisioner, PullSettings, Reference, Store,
};
use phobos_mesos::Provisioned;

use crate::settings::Settings;

/// `phobos_mesos::Provisioner` over the image store, which is opened (and
/// created) only when a container with an image needs it.
pub struct ImageProvisioner {
    store_dir: PathBuf,
    backend: Backend,
    provisioner: OnceLock<Provisioner>,
    dir: PathBuf,
    pull: PullSettings,
    progress: Mutex<Option<Arc<dyn Progress + Send>>>,
}

impl std::fmt::Debug for ImageProvisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageProvisioner")
            .field("store_dir", &self.store_dir)
            .field("backend", &self.backend)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
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
            progress: Mutex::new(None),
        })
    }

    /// Where the pulls of later launches are reported.
    pub fn set_progress(&self, progress: Arc<dyn Progress + Send>) {
        if let Ok(mut slot) = self.progress.lock() {
            *slot = Some(progress);
        }
    }

    fn provisioner(&self) -> Result<&Provisioner, BoxError> {
        if let Some(p) = self.provisioner.get() {
            return Ok(p);
        }
        let store = Store::open(&self.store_dir)?;
        // The kernel's lack of the new mount API is noted once per
        // launch, where init's mounts are planned.
        let (api, _) = phobos_core::mount_api::current();
        Ok(self.provisioner.get_or_init(|| {
            Provisioner::new(store, self.dir.clone(), self.backend).with_mount_api(api)
        }))
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
                let shown = self.progress.lock().ok().and_then(|p| p.clone());
                match shown {
                    Some(progress) => {
                        phobos_image::pull(store, &reference, &self.pull, progress.as_ref())?
                    }
                    None => phobos_image::pull(store, &reference, &self.pull, &LogProgress)?,
                }
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
