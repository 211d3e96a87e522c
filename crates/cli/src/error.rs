//! Exit codes: 2 for usage errors (bad input, nothing changed on disk),
//! 1 for everything else (unknown containers, runtime failures).

/// A usage error raised by the CLI itself.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// An unknown container ID.
#[derive(Debug)]
pub struct Unknown(pub String);

impl std::fmt::Display for Unknown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown container '{}'", self.0)
    }
}

impl std::error::Error for Unknown {}

pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Usage(message.into()))
}

/// Maps an error to its exit code and one-line message.
pub fn classify(err: &anyhow::Error) -> (u8, String) {
    // Typed errors already print their sources; add only what is new.
    let mut message = String::new();
    for part in err.chain().map(|e| e.to_string()) {
        if !message.contains(&part) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&part);
        }
    }
    let is_usage = err.chain().any(|e| {
        e.is::<Usage>()
            || e.is::<phobos_config::ConfigError>()
            || e.is::<phobos_proto::ecp::FrameError>()
            || e.is::<phobos_core::InvalidContainerId>()
            || e.is::<phobos_core::InvalidResource>()
            || e.is::<phobos_runtime::PlanError>()
            || e.is::<phobos_runtime::PolicyError>()
            || e.downcast_ref::<phobos_runtime::RuntimeError>()
                .is_some_and(phobos_runtime::RuntimeError::is_usage)
            || e.downcast_ref::<phobos_image::Error>()
                .is_some_and(phobos_image::Error::is_usage)
    });
    (if is_usage { 2 } else { 1 }, message)
}
