//! Exit codes: 2 for usage errors (bad input, nothing changed on disk),
//! 255 for a `run` whose container never started for a reason other than
//! an isolator, 1 for everything else (unknown containers, runtime
//! failures, an isolator failing while it ran).

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

/// Context of a launch that failed after its input was accepted: `run`
/// then exits 255, as `wait` does for a container without a status.
#[derive(Debug)]
pub struct NeverStarted;

impl std::fmt::Display for NeverStarted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the container did not start")
    }
}

/// `run`'s exit code when the container never started (README).
pub const NEVER_STARTED: u8 = 255;

pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Usage(message.into()))
}

/// Maps an error to its exit code and one-line message.
pub fn classify(err: &anyhow::Error) -> (u8, String) {
    let is_usage = is_usage(err);
    // Typed errors already print their sources; add only what is new. Bad
    // input is named alone (nothing was attempted, so nothing failed).
    let mut message = String::new();
    let never_started = NeverStarted.to_string();
    for part in err.chain().map(|e| e.to_string()) {
        if is_usage && part == never_started {
            continue;
        }
        if !message.contains(&part) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&part);
        }
    }
    let code = if is_usage {
        2
    } else if isolator_failed(err) {
        // README: an isolator failing is a runtime failure, exit 1, even
        // when it kept the command from starting.
        1
    } else if err.downcast_ref::<NeverStarted>().is_some() {
        NEVER_STARTED
    } else {
        1
    };
    (code, message)
}

/// Whether an isolator failed while it ran.
fn isolator_failed(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<phobos_runtime::RuntimeError>()
            .is_some_and(phobos_runtime::RuntimeError::is_isolator_failure)
    })
}

/// Whether any error in the chain is bad input.
fn is_usage(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.is::<Usage>()
            || e.is::<phobos_config::ConfigError>()
            || e.is::<phobos_proto::ecp::FrameError>()
            || e.is::<phobos_core::InvalidContainerId>()
            || e.is::<phobos_core::InvalidResource>()
            || e.is::<phobos_core::InvalidEnv>()
            || e.is::<phobos_core::InvalidHostname>()
            || e.downcast_ref::<phobos_runtime::PlanError>()
                .is_some_and(phobos_runtime::PlanError::is_usage)
            || e.is::<phobos_runtime::PolicyError>()
            || e.downcast_ref::<phobos_runtime::RuntimeError>()
                .is_some_and(phobos_runtime::RuntimeError::is_usage)
            || e.downcast_ref::<phobos_image::Error>()
                .is_some_and(phobos_image::Error::is_usage)
    })
}

/// What a user other than root is told when root's state was in the way.
pub const NEEDS_ROOT: &str = "this command needs root (or --launcher posix, with this user's own runtime and work directories)";

/// Whether `err` is the system refusing access to what only root may use:
/// a permission error on a file or directory (not the configuration file,
/// which is the user's to fix), or a directory refused for belonging to
/// root. Said instead of the bare "Permission denied".
pub fn root_only(err: &anyhow::Error) -> bool {
    if err.chain().any(|e| e.is::<phobos_config::ConfigError>()) {
        return false;
    }
    err.chain().any(|e| {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return denied(io);
        }
        // Transparent wrappers hide the SafeFsError from the chain.
        let safe = match e.downcast_ref::<phobos_runtime::RuntimeError>() {
            Some(phobos_runtime::RuntimeError::NotPrivate(s)) => Some(s),
            Some(phobos_runtime::RuntimeError::Store(phobos_core::StoreError::Unsafe(s))) => {
                Some(s)
            }
            _ => match e.downcast_ref::<phobos_core::StoreError>() {
                Some(phobos_core::StoreError::Unsafe(s)) => Some(s),
                _ => e.downcast_ref::<phobos_core::SafeFsError>(),
            },
        };
        match safe {
            Some(phobos_core::SafeFsError::Refused { path, .. }) => {
                std::fs::metadata(path).is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
            }
            Some(phobos_core::SafeFsError::Io { source, .. }) => denied(source),
            None => false,
        }
    })
}

fn denied(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::PermissionDenied || e.raw_os_error() == Some(libc::EPERM)
}
