//! `filesystem/posix` (the host filesystem, nothing to do) and
//! `filesystem/linux`: a private mount namespace (`CLONE_NEWNS`, see
//! mount_namespaces(7)) whose mounts never propagate back to the host,
//! because init marks `/` recursively as a slave before mounting anything.

use phobos_core::ContainerConfig;

use super::{Isolator, IsolatorError};
use crate::launch_info::{Contribution, Namespace};

#[derive(Debug)]
pub struct FilesystemPosix;

impl Isolator for FilesystemPosix {
    fn name(&self) -> &'static str {
        "filesystem/posix"
    }
}

#[derive(Debug)]
pub struct FilesystemLinux;

impl Isolator for FilesystemLinux {
    fn name(&self) -> &'static str {
        "filesystem/linux"
    }

    fn needs_linux_launcher(&self) -> bool {
        true
    }

    fn prepare(&self, _config: &ContainerConfig) -> Result<Option<Contribution>, IsolatorError> {
        Ok(Some(Contribution {
            namespaces: vec![Namespace::Mount],
            ..Contribution::default()
        }))
    }
}
