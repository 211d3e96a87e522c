//! What a container's command is confined by besides namespaces and
//! cgroups, as decided at launch and checkpointed with its config: the
//! capability sets, `no_new_privs`, resource limits (rlimits) and a seccomp
//! profile. The Mesos containerizer's init applies them (see
//! `phobos_mesos::security`).

use serde::{Deserialize, Serialize};

/// The command's capability sets, as bit masks (bit N = capability N).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilitySets {
    /// Effective, permitted, inheritable and (for a non-root user)
    /// ambient.
    pub effective: u64,
    /// The bounding set: what the command can ever regain.
    pub bounding: u64,
    /// What a command run as a non-root user keeps (through the ambient
    /// set): only the capabilities asked for explicitly (`--cap-add`, a
    /// configured or requested effective set), never the default set.
    #[serde(default)]
    pub non_root: u64,
}

/// One resource limit (`setrlimit(2)`), Mesos `RLimitInfo.RLimit`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RLimit {
    /// Mesos's type name without `RLMT_`, lower case (`nofile`).
    pub kind: String,
    /// `None`: unlimited.
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

/// One syscall rule of a resolved seccomp profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompRule {
    pub names: Vec<String>,
    pub action: SeccompAction,
    /// All must hold (Docker's `args`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<SeccompArg>,
}

/// What a seccomp filter does with a system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeccompAction {
    Allow,
    Errno(u16),
    KillThread,
    KillProcess,
    Trap,
    Trace(u16),
    Log,
}

/// A comparison of one system call argument (Docker's `args` entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompArg {
    pub index: u8,
    pub op: SeccompOp,
    pub value: u64,
    /// The second value of `masked_eq` (`arg & value == value_two`).
    #[serde(default)]
    pub value_two: u64,
}

/// Docker's `SCMP_CMP_*` operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeccompOp {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq,
}

/// A seccomp profile resolved for one container (its `includes` and
/// `excludes` already judged against the container's capabilities and
/// this architecture).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompProfile {
    /// Where it came from (`default`, or the file), for messages.
    pub source: String,
    pub default_action: SeccompAction,
    pub rules: Vec<SeccompRule>,
}

/// Everything the command is confined by besides namespaces and cgroups.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hardening {
    /// `None`: the capabilities are left as the user switch leaves them
    /// (the `linux/capabilities` isolator is off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<CapabilitySets>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_new_privileges: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rlimits: Vec<RLimit>,
    /// `None`: unconfined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<SeccompProfile>,
    /// Devices allowed besides the default list (`cgroups/devices`), as
    /// cgroup v1 `devices.allow` lines (`c 10:229 rwm`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// Nodes made in a root filesystem's `/dev` (`--device`,
    /// `allowed_devices`); without a root filesystem the host's `/dev` is
    /// the container's and they exist already.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_nodes: Vec<DeviceNode>,
    /// The size in bytes of the private `/dev/shm` tmpfs of a container
    /// with its own IPC namespace (Mesos `LinuxInfo.shm_size`, Docker's
    /// `--shm-size`); `None`: tmpfs's default (half of RAM) without a root
    /// filesystem, 64 MiB with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<u64>,
}

/// A device node to create in a container's root filesystem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceNode {
    /// Absolute path inside the container.
    pub path: std::path::PathBuf,
    /// `c` or `b`.
    pub kind: char,
    pub major: u32,
    pub minor: u32,
    /// Permission bits, the host node's.
    pub mode: u32,
}

impl Hardening {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}
