//! Phobos core: the types every containerizer shares and the runtime-directory
//! store that is the single source of truth about containers.
//!
//! Nothing here touches namespaces or cgroups; the store only uses plain files,
//! `rename(2)` for atomic checkpoints and `flock(2)` for cross-process locks.

pub mod config;
pub mod containerizer;
pub mod hardening;
pub mod id;
pub mod image_config;
pub mod input;
pub mod log_stream;
pub mod logrotate;
pub mod mount_api;
pub mod network;
pub mod perf;
pub mod resolve;
pub mod resources;
pub mod safe_fs;
pub mod sandbox;
pub mod state;
pub mod statistics;
pub mod store;
pub mod termination;
pub mod time;
pub mod volume;
pub mod wait_status;

pub use config::{
    CgroupsDriver, CommandSpec, ConfigSummary, ContainerConfig, ContainerImage, FetchUri,
    FetcherCache, IsolatorFlags, LauncherKind, Nesting, TtyInfo, UsageConfig, WindowSize,
};
pub use containerizer::{BoxError, Composing, Containerizer, Operation, Outcome};
pub use hardening::{CapabilitySets, DeviceNode, Hardening, RLimit, SeccompProfile};
pub use id::{ContainerId, InvalidContainerId};
pub use image_config::{CommandRequest, ImageConfig, MergeError, MergedCommand};
pub use input::{InvalidEnv, InvalidHostname};
pub use logrotate::LogRotation;
pub use network::{ContainerNetwork, InvalidPortMapping, NetworkInfo, PortMapping, Protocol};
pub use resources::{InvalidResource, Limit, Resources};
pub use safe_fs::{SafeDir, SafeFsError};
pub use state::{ContainerState, StateRecord};
pub use statistics::ResourceStatistics;
pub use store::{ContainerDir, RuntimeStore, StoreError};
pub use termination::{Reason, TaskState, Termination};
pub use volume::{InvalidVolume, Volume, VolumeSource};
pub use wait_status::WaitStatus;
