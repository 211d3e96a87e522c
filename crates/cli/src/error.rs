//! Exit codes: 2 for usage errors (bad input, nothing changed on disk),
//! 1 for everything else (unknown containers, runtime failures).

use phobos_core::StoreError;
use phobos_mesos::isolator::IsolatorError;
use phobos_mesos::{ContainerizerError, LaunchError};

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
            || e.downcast_ref::<IsolatorError>()
                .is_some_and(IsolatorError::is_usage)
            || e.is::<phobos_core::InvalidResource>()
            || matches!(
                e.downcast_ref::<StoreError>(),
                Some(StoreError::AlreadyExists(_))
            )
            || matches!(
                e.downcast_ref::<LaunchError>(),
                Some(LaunchError::NotRoot(_))
            )
            || matches!(
                e.downcast_ref::<phobos_docker::ContainerizerError>(),
                Some(phobos_docker::ContainerizerError::AlreadyExists(_))
                    | Some(phobos_docker::ContainerizerError::Engine(
                        phobos_docker::EngineError::Translate(_)
                    ))
            )
            || matches!(
                e.downcast_ref::<ContainerizerError>(),
                Some(ContainerizerError::Isolator(e)) if e.is_usage()
            )
            || matches!(
                e.downcast_ref::<ContainerizerError>(),
                Some(ContainerizerError::InvalidResources(_))
                    | Some(ContainerizerError::Store(StoreError::AlreadyExists(_)))
                    | Some(ContainerizerError::Launch(LaunchError::NotRoot(_)))
                    | Some(ContainerizerError::User(_))
            )
    });
    (if is_usage { 2 } else { 1 }, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use phobos_core::ContainerId;

    #[test]
    fn an_isolator_failing_at_runtime_is_exit_1_and_a_refused_one_exit_2() {
        let failed = IsolatorError::Failed {
            isolator: "cgroups",
            id: ContainerId::new("c").unwrap(),
            message: "cannot enable +memory for the child cgroups of /sys/fs/cgroup/svc".into(),
        };
        let (code, message) = classify(&anyhow::Error::new(ContainerizerError::from(failed)));
        assert_eq!(code, 1, "{message}");
        assert!(message.contains("/sys/fs/cgroup/svc"), "{message}");
        let unknown = IsolatorError::Unknown("cgroups/nope".into());
        assert_eq!(classify(&anyhow::Error::new(unknown)).0, 2);
        let unavailable = ContainerizerError::from(IsolatorError::Unavailable {
            isolator: "cgroups/mem",
            reason: "no memory controller".into(),
        });
        assert_eq!(classify(&anyhow::Error::new(unavailable)).0, 2);
    }
}
