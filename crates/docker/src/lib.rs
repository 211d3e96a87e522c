//! phobos-docker: the Docker containerizer (Mesos reference §4) over the
//! Docker Engine API, with a runtime-directory record per container.
//!
//! Mesos's Docker containerizer (reference §4) and Deimos drove the `docker`
//! CLI; Phobos talks to the Docker Engine API over its Unix socket with
//! [bollard], which gives structured errors and streams instead of parsing
//! CLI output and polling for cid files (Deimos's 73-second hangs).
//!
//! - [`spec`]: [`DockerRunSpec`], the launch request in Mesos's terms;
//! - [`translate`]: the pure §4.4 mapping onto the container-create body;
//! - [`params`]: `DockerInfo.parameters` onto Engine API fields;
//! - [`engine`]: [`DockerEngine`], the async client (pull, create+start, wait,
//!   stop/kill, list, update, logs into the sandbox, usage);
//! - [`usage`]: cpu and memory statistics read from the container's cgroups
//!   (v1, v2 and hybrid hosts) with phobos-cgroups.
//!
//! - [`containerizer`]: [`DockerContainerizer`], which keeps a runtime-directory
//!   record per container (in phobos-core's store) so every face of Phobos
//!   can launch, wait, destroy, meter and recover Docker containers from a
//!   fresh process.
//!
//! The engine-facing modules use their own input and output types;
//! [`containerizer`] adapts phobos-core's `ContainerConfig`, `Termination`
//! and `ResourceStatistics` onto them.

pub mod containerizer;
pub mod engine;
pub mod params;
pub mod spec;
pub mod translate;
pub mod usage;

pub use containerizer::{
    ContainerizerError, DockerContainerizer, DockerLaunch, DockerRecord, DockerRecoverReport,
    DockerSettings, DockerSummary, block_on,
};
pub use engine::{
    DockerEngine, EngineError, EngineInfo, ExitStatus, ImageSource, Launched, ListedContainer,
    LogTotals, PullProgress, StopOutcome,
};
pub use spec::{
    DockerCommand, DockerNetwork, DockerResources, DockerRunSpec, EngineLogBound, MemoryLimit,
    PortMapping, PortProtocol, PortRange, Volume,
};
pub use translate::{CreateRequest, TranslateError, create_request};
pub use usage::{ContainerUsage, UsageError, UsageReader};
