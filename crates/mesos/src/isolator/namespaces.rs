//! Namespace isolators (namespaces(7)):
//! - `namespaces/pid`: `CLONE_NEWPID` (pid_namespaces(7)); init becomes pid 1
//!   and mounts a fresh `/proc` so the container sees only its own processes.
//! - `namespaces/ipc`: `CLONE_NEWIPC` (ipc_namespaces(7)) plus a private
//!   tmpfs on `/dev/shm`, since POSIX shared memory lives there, not in the
//!   IPC namespace.
//! - `namespaces/uts`: `CLONE_NEWUTS` (uts_namespaces(7)) so `--hostname`
//!   cannot change the host's name. Mesos puts UTS under `network/cni`;
//!   Phobos gives it its own name because it has no CNI yet.

use phobos_core::ContainerConfig;

use super::{Isolator, IsolatorError};
use crate::launch_info::{Contribution, Namespace};

#[derive(Debug)]
pub struct NamespacesPid;

impl Isolator for NamespacesPid {
    fn name(&self) -> &'static str {
        "namespaces/pid"
    }

    fn needs_linux_launcher(&self) -> bool {
        true
    }

    fn prepare(&self, _config: &ContainerConfig) -> Result<Option<Contribution>, IsolatorError> {
        Ok(Some(Contribution {
            namespaces: vec![Namespace::Pid],
            mount_proc: true,
            ..Contribution::default()
        }))
    }
}

#[derive(Debug)]
pub struct NamespacesIpc;

impl Isolator for NamespacesIpc {
    fn name(&self) -> &'static str {
        "namespaces/ipc"
    }

    fn needs_linux_launcher(&self) -> bool {
        true
    }

    fn prepare(&self, _config: &ContainerConfig) -> Result<Option<Contribution>, IsolatorError> {
        Ok(Some(Contribution {
            namespaces: vec![Namespace::Ipc],
            private_shm: true,
            ..Contribution::default()
        }))
    }
}

#[derive(Debug)]
pub struct NamespacesUts;

impl Isolator for NamespacesUts {
    fn name(&self) -> &'static str {
        "namespaces/uts"
    }

    fn needs_linux_launcher(&self) -> bool {
        true
    }

    fn prepare(&self, _config: &ContainerConfig) -> Result<Option<Contribution>, IsolatorError> {
        Ok(Some(Contribution {
            namespaces: vec![Namespace::Uts],
            ..Contribution::default()
        }))
    }
}
