//! `LaunchInfo`: everything the init helper needs, merged from the isolators'
//! contributions (Mesos `ContainerLaunchInfo`, §3.4) and checkpointed as the
//! runtime directory's `launch_info` before the fork.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A namespace the launcher creates with `clone(2)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Namespace {
    Mount,
    Pid,
    Ipc,
    Uts,
}

impl Namespace {
    pub fn clone_flag(self) -> libc::c_int {
        match self {
            Self::Mount => libc::CLONE_NEWNS,
            Self::Pid => libc::CLONE_NEWPID,
            Self::Ipc => libc::CLONE_NEWIPC,
            Self::Uts => libc::CLONE_NEWUTS,
        }
    }
}

/// A resolved user to switch to before exec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// One isolator's contribution; merged into [`LaunchInfo`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Contribution {
    pub namespaces: Vec<Namespace>,
    pub mount_proc: bool,
    pub private_shm: bool,
    pub env: Vec<(String, String)>,
}

/// The merged launch description the init helper executes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchInfo {
    /// Namespaces to clone, de-duplicated, in a stable order.
    pub namespaces: Vec<Namespace>,
    /// Mount a fresh `/proc` for the new pid namespace.
    pub mount_proc: bool,
    /// Mount a private tmpfs on `/dev/shm` for the new ipc namespace.
    pub private_shm: bool,
    pub hostname: Option<String>,
    /// The argv to execute; `argv[0]` is looked up in the container's PATH.
    pub argv: Vec<String>,
    /// The command's whole environment (later entries win).
    pub env: Vec<(String, String)>,
    pub working_dir: PathBuf,
    pub user: Option<ResolvedUser>,
}

impl LaunchInfo {
    /// Adds one isolator's contribution (Mesos merges with `MergeFrom`:
    /// lists append, flags OR).
    pub fn merge(&mut self, c: Contribution) {
        for ns in c.namespaces {
            if !self.namespaces.contains(&ns) {
                self.namespaces.push(ns);
            }
        }
        self.mount_proc |= c.mount_proc;
        self.private_shm |= c.private_shm;
        self.env.extend(c.env);
    }

    pub fn clone_flags(&self) -> libc::c_int {
        self.namespaces.iter().fold(0, |f, ns| f | ns.clone_flag())
    }

    pub fn has(&self, ns: Namespace) -> bool {
        self.namespaces.contains(&ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_dedups_namespaces_and_ors_flags() {
        let mut info = LaunchInfo::default();
        info.merge(Contribution {
            namespaces: vec![Namespace::Mount],
            ..Contribution::default()
        });
        info.merge(Contribution {
            namespaces: vec![Namespace::Mount, Namespace::Pid],
            mount_proc: true,
            env: vec![("A".into(), "1".into())],
            ..Contribution::default()
        });
        assert_eq!(info.namespaces, [Namespace::Mount, Namespace::Pid]);
        assert_eq!(info.clone_flags(), libc::CLONE_NEWNS | libc::CLONE_NEWPID);
        assert!(info.mount_proc && !info.private_shm);
        assert_eq!(info.env, [("A".to_string(), "1".to_string())]);
    }
}
