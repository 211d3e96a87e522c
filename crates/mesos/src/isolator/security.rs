//! The security isolators: each hands its part of the container's
//! checkpointed hardening (decided by the planner) to init, which applies
//! it to the command (`crate::security`):
//! - `linux/capabilities`: capability sets (capabilities(7));
//! - `linux/seccomp`: a seccomp BPF filter (seccomp(2));
//! - `linux/nnp`: `PR_SET_NO_NEW_PRIVS` for every container;
//! - `posix/rlimits`: resource limits (setrlimit(2)).

use phobos_core::{ContainerConfig, Hardening};

use super::{Isolator, IsolatorError};
use crate::launch_info::Contribution;

/// Which part of the hardening an isolator carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityIsolator {
    Capabilities,
    Seccomp,
    NoNewPrivs,
    RLimits,
}

impl Isolator for SecurityIsolator {
    fn name(&self) -> &'static str {
        match self {
            Self::Capabilities => "linux/capabilities",
            Self::Seccomp => "linux/seccomp",
            Self::NoNewPrivs => "linux/nnp",
            Self::RLimits => "posix/rlimits",
        }
    }

    fn prepare(&self, config: &ContainerConfig) -> Result<Option<Contribution>, IsolatorError> {
        let h = &config.hardening;
        let part = match self {
            Self::Capabilities => Hardening {
                capabilities: h.capabilities,
                ..Hardening::default()
            },
            Self::Seccomp => Hardening {
                seccomp: h.seccomp.clone(),
                ..Hardening::default()
            },
            Self::NoNewPrivs => Hardening {
                no_new_privileges: true,
                ..Hardening::default()
            },
            Self::RLimits => Hardening {
                rlimits: h.rlimits.clone(),
                ..Hardening::default()
            },
        };
        Ok(Some(Contribution {
            hardening: Some(part),
            ..Contribution::default()
        }))
    }
}
