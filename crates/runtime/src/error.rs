//! [`RuntimeError`]: every failure of the runtime layer, typed, with what
//! a face needs to tell a usage error (exit 2, nothing changed) from a
//! runtime failure (exit 1).

use phobos_core::{ContainerId, StoreError};
use phobos_mesos::LaunchError;

use crate::plan::PlanError;
use crate::reserve::ReserveError;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The ID is taken (by a container of either containerizer, or a
    /// launch in progress).
    #[error("container '{0}' already exists")]
    AlreadyExists(ContainerId),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Reserve(#[from] ReserveError),
    #[error(transparent)]
    Mesos(#[from] phobos_mesos::ContainerizerError),
    #[error(transparent)]
    Docker(#[from] phobos_docker::ContainerizerError),
    #[error(transparent)]
    Sweep(#[from] phobos_mesos::SweepError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A containerizer's error through the composing containerizer.
    #[error(transparent)]
    Containerizer(phobos_core::BoxError),
    #[error("container '{0}' is a Docker container: use `docker exec mesos-{0}`")]
    DockerExec(ContainerId),
    #[error("cannot find the phobos binary to run as init: {0}")]
    NoInit(std::io::Error),
    /// A non-root user's runtime or work directory is in someone else's
    /// hands (see `phobos_core::safe_fs::check_private_dir`).
    #[error(transparent)]
    NotPrivate(phobos_core::SafeFsError),
    #[error(transparent)]
    Switchboard(#[from] crate::tty::SwitchboardError),
    #[error("failed to start the async runtime for the Docker engine client: {0}")]
    Async(std::io::Error),
}

impl RuntimeError {
    /// Whether this is a usage error: the request was refused before
    /// anything changed on disk.
    pub fn is_usage(&self) -> bool {
        match self {
            Self::Plan(e) => e.is_usage(),
            Self::AlreadyExists(_) => true,
            Self::Reserve(e) => matches!(e, ReserveError::Taken(_)),
            Self::Mesos(e) => mesos_usage(e),
            Self::Docker(e) => docker_usage(e),
            Self::Store(e) => matches!(e, StoreError::AlreadyExists(_)),
            Self::Containerizer(e) => {
                e.downcast_ref().is_some_and(mesos_usage)
                    || e.downcast_ref().is_some_and(docker_usage)
            }
            _ => false,
        }
    }

    /// Whether an isolator failed while it ran (the cgroups isolator
    /// refused by the kernel, say): a runtime failure, exit 1 for every
    /// command, `run` included (README's exit codes).
    pub fn is_isolator_failure(&self) -> bool {
        let failed = |e: &phobos_mesos::ContainerizerError| {
            matches!(
                e,
                phobos_mesos::ContainerizerError::Isolator(i) if !i.is_usage()
            )
        };
        match self {
            Self::Mesos(e) => failed(e),
            Self::Containerizer(e) => e.downcast_ref().is_some_and(failed),
            _ => false,
        }
    }
}

fn mesos_usage(e: &phobos_mesos::ContainerizerError) -> bool {
    use phobos_mesos::ContainerizerError as M;
    // An isolator failing while it ran is a runtime failure; only an
    // isolator list that cannot work here is bad input.
    if let M::Isolator(i) = e {
        return i.is_usage();
    }
    matches!(
        e,
        M::InvalidResources(_)
            | M::InvalidLaunch(_)
            | M::Store(StoreError::AlreadyExists(_))
            | M::Launch(LaunchError::NotRoot(_))
            | M::Launch(LaunchError::SystemdLayout(_))
            | M::ForeignRoot(_)
            | M::User(_)
            | M::Rootfs(_)
            | M::SandboxExists(_)
    )
}

fn docker_usage(e: &phobos_docker::ContainerizerError) -> bool {
    use phobos_docker::ContainerizerError as D;
    matches!(
        e,
        D::AlreadyExists(_)
            | D::Engine(phobos_docker::EngineError::Translate(_))
            | D::NewSandbox(phobos_core::sandbox::SandboxError::Exists(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use phobos_mesos::isolator::IsolatorError;

    #[test]
    fn an_isolator_failing_at_runtime_is_not_a_usage_error() {
        let failed = IsolatorError::Failed {
            isolator: "cgroups",
            id: ContainerId::new("c").unwrap(),
            message: "cannot enable +memory for the child cgroups of /sys/fs/cgroup/svc".into(),
        };
        let e = RuntimeError::from(phobos_mesos::ContainerizerError::from(failed));
        assert!(!e.is_usage(), "{e}");
        assert!(e.is_isolator_failure(), "{e}");
        let boxed = RuntimeError::Containerizer(Box::new(phobos_mesos::ContainerizerError::from(
            IsolatorError::Failed {
                isolator: "cgroups",
                id: ContainerId::new("c").unwrap(),
                message: "EBUSY".into(),
            },
        )));
        assert!(!boxed.is_usage(), "{boxed}");
        assert!(boxed.is_isolator_failure(), "{boxed}");
        let unavailable = RuntimeError::from(phobos_mesos::ContainerizerError::from(
            IsolatorError::Unavailable {
                isolator: "cgroups/mem",
                reason: "no memory controller".into(),
            },
        ));
        assert!(unavailable.is_usage(), "{unavailable}");
        assert!(!unavailable.is_isolator_failure(), "{unavailable}");
        let unknown = RuntimeError::from(phobos_mesos::ContainerizerError::from(
            IsolatorError::Unknown("cgroups/nope".into()),
        ));
        assert!(unknown.is_usage(), "{unknown}");
    }
}
