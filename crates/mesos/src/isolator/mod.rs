//! Isolators: small plug-ins with the Mesos lifecycle (§3.6). Each one may
//! contribute namespaces, mounts and environment in `prepare`, act on the
//! forked init's pid in `isolate`, and undo its work in `cleanup`.
//!
//! Isolators are created in the fixed order of the Mesos built-in table
//! (filesystem first, then runtime, namespaces), whatever order
//! `--isolation` lists them in; cleanup runs in reverse.

mod filesystem;
mod namespaces;

use phobos_core::{ContainerConfig, ContainerId, LauncherKind};

use crate::launch_info::Contribution;

pub use filesystem::{FilesystemLinux, FilesystemPosix};
pub use namespaces::{NamespacesIpc, NamespacesPid, NamespacesUts};

/// Errors from choosing or running isolators.
#[derive(Debug, thiserror::Error)]
pub enum IsolatorError {
    #[error("unknown or unsupported isolator '{0}'")]
    Unknown(String),
    #[error("isolator '{0}' is listed twice")]
    Duplicate(String),
    #[error("only one filesystem isolator may be used, got '{0}' and '{1}'")]
    TwoFilesystems(String, String),
    #[error("isolator '{isolator}' requires '{requires}'")]
    Requires {
        isolator: &'static str,
        requires: &'static str,
    },
    #[error("isolator '{isolator}' needs the linux launcher, not '{launcher}'")]
    NeedsLinuxLauncher {
        isolator: &'static str,
        launcher: &'static str,
    },
    #[error("isolator '{isolator}' failed for container {id}: {message}")]
    Failed {
        isolator: &'static str,
        id: ContainerId,
        message: String,
    },
}

/// The Mesos isolator lifecycle. Every method has a default so an isolator
/// only implements what it needs.
pub trait Isolator: std::fmt::Debug {
    fn name(&self) -> &'static str;

    /// Whether this isolator needs namespaces, and so the linux launcher.
    fn needs_linux_launcher(&self) -> bool {
        false
    }

    /// Before the fork: what the container needs from the launch.
    fn prepare(&self, _config: &ContainerConfig) -> Result<Option<Contribution>, IsolatorError> {
        Ok(None)
    }

    /// After the fork, while init is blocked on its pipe.
    fn isolate(&self, _id: &ContainerId, _pid: i32) -> Result<(), IsolatorError> {
        Ok(())
    }

    /// After every process of the container is gone. Must tolerate
    /// containers it never prepared.
    fn cleanup(&self, _id: &ContainerId) -> Result<(), IsolatorError> {
        Ok(())
    }
}

/// The built-in isolator table, in Mesos creation order.
const BUILT_IN: &[&str] = &[
    "filesystem/posix",
    "filesystem/linux",
    "namespaces/pid",
    "namespaces/ipc",
    "namespaces/uts",
];

/// Mesos's deprecated aliases (§3.1 step 2) that still parse.
fn expand_alias(name: &str) -> &str {
    match name {
        "posix/disk" => "disk/du",
        other => other,
    }
}

/// The default `--isolation` for a launcher.
pub fn default_isolation(launcher: LauncherKind) -> Vec<String> {
    let names: &[&str] = match launcher {
        LauncherKind::Linux => &[
            "filesystem/linux",
            "namespaces/pid",
            "namespaces/ipc",
            "namespaces/uts",
        ],
        LauncherKind::Posix => &["filesystem/posix"],
    };
    names.iter().map(|s| s.to_string()).collect()
}

/// Parses and validates an isolation list, returning the canonical names in
/// creation order (a filesystem isolator is added when none was named).
pub fn resolve_isolation(
    names: &[String],
    launcher: LauncherKind,
) -> Result<Vec<String>, IsolatorError> {
    let mut seen: Vec<&str> = Vec::new();
    for raw in names {
        let name = expand_alias(raw.trim());
        if name.is_empty() {
            continue;
        }
        if !BUILT_IN.contains(&name) {
            return Err(IsolatorError::Unknown(raw.trim().to_owned()));
        }
        if seen.contains(&name) {
            return Err(IsolatorError::Duplicate(name.to_owned()));
        }
        seen.push(name);
    }
    let filesystems: Vec<&str> = seen
        .iter()
        .copied()
        .filter(|n| n.starts_with("filesystem/"))
        .collect();
    match filesystems.as_slice() {
        [] => seen.push("filesystem/posix"),
        [_] => {}
        [a, b, ..] => return Err(IsolatorError::TwoFilesystems(a.to_string(), b.to_string())),
    }
    let has_linux_fs = seen.contains(&"filesystem/linux");
    for ns in ["namespaces/pid", "namespaces/ipc"] {
        if seen.contains(&ns) && !has_linux_fs {
            return Err(IsolatorError::Requires {
                isolator: if ns == "namespaces/pid" {
                    "namespaces/pid"
                } else {
                    "namespaces/ipc"
                },
                requires: "filesystem/linux",
            });
        }
    }
    let ordered: Vec<String> = BUILT_IN
        .iter()
        .filter(|n| seen.contains(n))
        .map(|n| n.to_string())
        .collect();
    for isolator in build(&ordered)? {
        if isolator.needs_linux_launcher() && launcher != LauncherKind::Linux {
            return Err(IsolatorError::NeedsLinuxLauncher {
                isolator: isolator.name(),
                launcher: launcher.name(),
            });
        }
    }
    Ok(ordered)
}

/// Instantiates already-resolved isolator names.
pub fn build(names: &[String]) -> Result<Vec<Box<dyn Isolator>>, IsolatorError> {
    names
        .iter()
        .map(|name| -> Result<Box<dyn Isolator>, IsolatorError> {
            Ok(match name.as_str() {
                "filesystem/posix" => Box::new(FilesystemPosix),
                "filesystem/linux" => Box::new(FilesystemLinux),
                "namespaces/pid" => Box::new(NamespacesPid),
                "namespaces/ipc" => Box::new(NamespacesIpc),
                "namespaces/uts" => Box::new(NamespacesUts),
                other => return Err(IsolatorError::Unknown(other.to_owned())),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &str) -> Vec<String> {
        list.split(',').map(str::to_owned).collect()
    }

    #[test]
    fn orders_like_mesos_and_adds_a_filesystem() {
        let got = resolve_isolation(
            &names("namespaces/ipc,namespaces/pid,filesystem/linux"),
            LauncherKind::Linux,
        )
        .unwrap();
        assert_eq!(
            got,
            ["filesystem/linux", "namespaces/pid", "namespaces/ipc"]
        );
        let got = resolve_isolation(&names(""), LauncherKind::Posix).unwrap();
        assert_eq!(got, ["filesystem/posix"]);
    }

    #[test]
    fn rejects_bad_lists_with_the_name() {
        let err = resolve_isolation(&names("cgroups/bogus"), LauncherKind::Linux).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown or unsupported isolator 'cgroups/bogus'"
        );
        assert!(matches!(
            resolve_isolation(&names("namespaces/pid,namespaces/pid"), LauncherKind::Linux),
            Err(IsolatorError::Duplicate(_))
        ));
        assert!(matches!(
            resolve_isolation(
                &names("filesystem/posix,filesystem/linux"),
                LauncherKind::Linux
            ),
            Err(IsolatorError::TwoFilesystems(..))
        ));
        assert!(matches!(
            resolve_isolation(&names("namespaces/pid"), LauncherKind::Linux),
            Err(IsolatorError::Requires { .. })
        ));
        let err = resolve_isolation(&names("filesystem/linux"), LauncherKind::Posix).unwrap_err();
        assert_eq!(
            err.to_string(),
            "isolator 'filesystem/linux' needs the linux launcher, not 'posix'"
        );
    }

    #[test]
    fn defaults_are_valid_for_their_launcher() {
        for l in [LauncherKind::Linux, LauncherKind::Posix] {
            let d = default_isolation(l);
            assert_eq!(resolve_isolation(&d, l).unwrap(), d);
        }
    }
}
