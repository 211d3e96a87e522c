//! The Mesos containerizer (reference §3): a launch walks the Mesos state
//! machine, isolators contribute namespaces, a launcher clones the init
//! helper, and every operation works from a fresh process because the
//! runtime directory holds all state.

pub mod containerizer;
pub mod image_user;
pub mod init;
mod init_exec;
pub mod init_mounts;
mod init_pidns;
mod init_watch;
pub mod isolator;
pub mod launch_checks;
pub mod launch_info;
pub mod launcher;
mod log_pump;
mod nested;
pub mod provision;
pub mod rootfs;
pub mod security;
pub mod sweep;
pub mod switchboard;
pub mod sys;
mod user;

pub use containerizer::{
    ContainerSummary, ContainerizerError, ExecProcess, ExecRequest, ExecStdio, Launched,
    MesosContainerizer, RecoverReport, StopPoint, Unreleased,
};
pub use launcher::LaunchError;
pub use provision::{Provisioned, Provisioner};
pub use sweep::{SweepError, SweepPolicy};
