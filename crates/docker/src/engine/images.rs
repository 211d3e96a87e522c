//! Images through the engine: whether one is present, and pulling it
//! (with progress) when missing or when asked to.

use super::*;

impl DockerEngine {
    /// Whether `image` is present locally.
    pub async fn image_present(&self, image: &str) -> Result<bool, EngineError> {
        match self.docker.inspect_image(&normalize_image(image)).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(source) => Err(EngineError::Api {
                op: "image inspect",
                target: image.to_owned(),
                source,
            }),
        }
    }

    /// Make `image` available: inspect first, pull only if missing or `force_pull`.
    pub async fn ensure_image<F>(
        &self,
        image: &str,
        force_pull: bool,
        mut progress: F,
    ) -> Result<ImageSource, EngineError>
    where
        F: FnMut(&PullProgress) + Send,
    {
        let reference = normalize_image(image);
        if !force_pull && self.image_present(&reference).await? {
            return Ok(ImageSource::Present);
        }
        tracing::info!(image = %reference, force_pull, "pulling image");
        let options = CreateImageOptionsBuilder::new()
            .from_image(&reference)
            .build();
        let pull_failed = |message: String| EngineError::Pull {
            image: reference.clone(),
            message,
        };
        let mut stream = self.docker.create_image(Some(options), None, None);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| match e {
                BollardError::DockerResponseServerError { message, .. } => pull_failed(message),
                BollardError::DockerStreamError { error } => pull_failed(error),
                other => pull_failed(other.to_string()),
            })?;
            if let Some(detail) = info.error_detail {
                return Err(pull_failed(detail.message.unwrap_or_default()));
            }
            let (current, total) = info
                .progress_detail
                .map(|d| (d.current, d.total))
                .unwrap_or((None, None));
            progress(&PullProgress {
                id: info.id,
                status: info.status.unwrap_or_default(),
                current,
                total,
            });
        }
        // A pull can "succeed" without producing the reference (e.g. a
        // platform mismatch); make sure it is there now.
        if self.image_present(&reference).await? {
            Ok(ImageSource::Pulled)
        } else {
            Err(pull_failed("image still missing after pull".to_owned()))
        }
    }
}
