//! phobos-runtime: the layer between Phobos's faces (the CLI, the external
//! containerizer protocol, the coming agent API) and its containerizers.
//!
//! - [`settings`]: [`Settings`], the configuration file and the global
//!   flags resolved once (flag > file > default), and every launch policy
//!   (launcher, isolator flags) in one place;
//! - [`plan`]: the [`Planner`], which turns a face's [`LaunchIntent`] into
//!   one [`LaunchRequest`] (the shared [`ContainerSpec`] plus the
//!   containerizer's own part);
//! - [`reserve`]: container IDs reserved atomically across containerizers
//!   and processes (`mkdir(2)`, `flock(2)`, `renameat2(2)` `RENAME_NOREPLACE`);
//! - [`mesos_proto`]: Mesos protobuf messages to launch intents and back,
//!   shared by the two Mesos faces (the ECP and the v1 agent API);
//! - [`door`]: the composing containerizer, the only door to the Mesos and
//!   Docker containerizers for launch and every other operation;
//! - [`top`]: the sampler behind `phobos top` (runtime records and cgroup
//!   accounting read directly, cheaply enough to refresh every second).
//!
//! A face parses its input into a `LaunchIntent`, plans it, and hands the
//! request to the [`Door`]; it never names a containerizer.

pub mod door;
pub mod error;
pub mod images;
pub mod mesos_proto;
pub mod plan;
pub mod reserve;
pub mod security;
pub mod settings;
pub mod top;
pub mod tty;

pub use door::{Door, EarlyFactory, EarlySpawner, Launched, Logs, Recovery, Summary};
pub use error::RuntimeError;
pub use phobos_core::{ContainerNetwork, NetworkInfo, PortMapping, Volume, VolumeSource};
pub use phobos_mesos::Unreleased;
pub use plan::{
    ContainerSpec, FetchUri, Host, LaunchIntent, LaunchRequest, MesosPart, ParentFacts, Plan,
    PlanError, Planner, Target,
};
pub use reserve::{IdRegistry, ReserveError};
pub use security::{SecurityError, SecurityIntent};
pub use settings::{FlagOverrides, Flags, LauncherChoice, PolicyError, Settings};

/// The data types of a Docker launch (`DockerInfo`), which faces fill in.
pub mod docker {
    pub use phobos_docker::{
        DockerCommand, DockerLaunch, DockerNetwork, PortMapping, PortProtocol, PortRange,
        PullProgress, Volume,
    };
}

/// The network types faces fill in.
pub mod network {
    pub use phobos_core::network::{ContainerNetwork, NetworkInfo, PortMapping, Protocol};
}

/// pidfd helpers for faces that follow and signal a launched process.
pub mod sys {
    pub use phobos_mesos::sys::{pidfd_open, pidfd_send_signal};
}

/// What `exec` takes and gives.
pub mod exec {
    pub use phobos_mesos::{ExecProcess, ExecRequest, ExecStdio};
}

/// Pseudo-terminals and the I/O switchboard's client, for faces that
/// attach to a container's terminal.
pub mod terminal {
    pub use phobos_tty::*;
}

/// The switchboard process's entry point (`phobos switchboard`, started
/// by the door for a container with a terminal), for the binary to
/// dispatch.
pub fn switchboard_main() -> i32 {
    tty::switchboard_main()
}

/// The container init helper's entry point (the `phobos init` the Mesos
/// containerizer execs in every container), for the binary to dispatch.
pub fn init_main() -> i32 {
    phobos_mesos::init::main()
}
