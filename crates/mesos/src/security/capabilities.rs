//! `linux/capabilities`: the command's capability sets (capabilities(7)),
//! set by init's command process with `prctl(PR_CAPBSET_DROP)` (bounding
//! set), `capset(2)` (effective, permitted, inheritable) and
//! `prctl(PR_CAP_AMBIENT_RAISE)` (ambient, so a non-root `--user` keeps
//! them across `execve`; `PR_SET_KEEPCAPS` keeps the permitted set across
//! the `setuid`).
//!
//! The default set is Docker's 14 default capabilities (no
//! `CAP_SYS_ADMIN`); `--cap-add`/`--cap-drop` and Mesos's
//! `effective_capabilities`/`bounding_capabilities` change it. A command
//! run as a non-root user keeps only what was asked for explicitly (so
//! `nobody` never gets, say, `CAP_DAC_OVERRIDE` by default).

use phobos_core::CapabilitySets;

/// Capability names by number (linux/capability.h), without `CAP_`.
pub const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Every capability this table knows.
pub const ALL: u64 = (1 << NAMES.len()) - 1;

/// Docker's default set: the 14 capabilities a container keeps.
pub const DEFAULT: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// The bit of `CAP_SYS_ADMIN`.
pub const SYS_ADMIN: u64 = 1 << 21;

/// A capability name no kernel knows, or a set that cannot be.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CapabilityError {
    #[error(
        "unknown capability {0:?} (expected a name such as NET_ADMIN or CAP_NET_ADMIN, or ALL)"
    )]
    Unknown(String),
    #[error("{what} capabilities {names} are not in the bounding set")]
    NotBounded { what: &'static str, names: String },
}

/// The bit of one name (`NET_ADMIN`, `cap_net_admin`).
pub fn parse(name: &str) -> Result<u64, CapabilityError> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    NAMES
        .iter()
        .position(|n| *n == bare)
        .map(|i| 1u64 << i)
        .ok_or_else(|| CapabilityError::Unknown(name.to_owned()))
}

/// The mask of a list of names (`ALL` is every capability).
pub fn parse_list(names: &[String]) -> Result<u64, CapabilityError> {
    names.iter().try_fold(0, |mask, n| {
        if n.trim().eq_ignore_ascii_case("ALL") {
            Ok(ALL)
        } else {
            Ok(mask | parse(n)?)
        }
    })
}

/// The names in a mask, `CAP_`-less, in number order.
pub fn names(mask: u64) -> Vec<&'static str> {
    NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, n)| *n)
        .collect()
}

/// Docker's default set as a mask.
pub fn default_mask() -> u64 {
    DEFAULT.iter().fold(0, |m, n| m | parse(n).unwrap_or(0))
}

/// What an operator configured (Mesos `--effective_capabilities`,
/// `--bounding_capabilities`) and what one launch asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CapabilityRequest {
    pub effective_flag: Option<Vec<String>>,
    pub bounding_flag: Option<Vec<String>>,
    /// A launch's own effective set (Mesos `LinuxInfo.effective_capabilities`).
    pub effective: Option<Vec<String>>,
    /// A launch's own bounding set (Mesos `LinuxInfo.bounding_capabilities`),
    /// which must lie within `bounding_flag`.
    pub bounding: Option<Vec<String>>,
    pub add: Vec<String>,
    pub drop: Vec<String>,
}

/// Resolves the sets as Mesos does (reference §5.1), with Docker's default
/// when nothing is configured and `--cap-add`/`--cap-drop` on top (Docker's
/// rules: `--cap-add ALL` keeps all but the dropped, `--cap-drop ALL`
/// keeps only the added).
pub fn resolve(req: &CapabilityRequest) -> Result<CapabilitySets, CapabilityError> {
    let flag_effective = req.effective_flag.as_deref().map(parse_list).transpose()?;
    let flag_bounding = req.bounding_flag.as_deref().map(parse_list).transpose()?;
    let own = req.effective.as_deref().map(parse_list).transpose()?;
    let own_bounding = req.bounding.as_deref().map(parse_list).transpose()?;
    if let (Some(own), Some(flag)) = (own_bounding, flag_bounding)
        && own & !flag != 0
    {
        return Err(CapabilityError::NotBounded {
            what: "launch's bounding",
            names: names(own & !flag).join(","),
        });
    }
    let add = parse_list(&req.add)?;
    let drop = parse_list(&req.drop)?;
    // Docker's default, within a launch's own bounding set if it has one.
    let base = own
        .or(flag_effective)
        .unwrap_or_else(|| default_mask() & own_bounding.unwrap_or(ALL));
    let add_all = add == ALL;
    let drop_all = drop == ALL;
    let effective = if add_all {
        ALL & !if drop_all { 0 } else { drop }
    } else if drop_all {
        add
    } else {
        (base | add) & !drop
    };
    // Mesos: the launch's bounding set, else the flag's, else effective.
    let bounding = own_bounding.or(flag_bounding).unwrap_or(effective);
    let outside = effective & !bounding;
    if outside != 0 {
        return Err(CapabilityError::NotBounded {
            what: "effective",
            names: names(outside).join(","),
        });
    }
    let explicit = own.or(flag_effective).unwrap_or(0) | add;
    Ok(CapabilitySets {
        effective,
        bounding,
        non_root: explicit & effective,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn default_is_dockers_fourteen_without_sys_admin() {
        let sets = resolve(&CapabilityRequest::default()).unwrap();
        assert_eq!(sets.effective.count_ones(), 14);
        assert_eq!(sets.effective & SYS_ADMIN, 0);
        assert_eq!(sets.bounding, sets.effective);
        assert_eq!(default_mask(), sets.effective);
        assert_eq!(
            sets.non_root, 0,
            "a non-root user gets no default capability"
        );
    }

    #[test]
    fn add_and_drop_follow_docker() {
        let req = CapabilityRequest {
            add: v(&["cap_net_admin", "SYS_PTRACE"]),
            drop: v(&["CAP_CHOWN"]),
            ..Default::default()
        };
        let sets = resolve(&req).unwrap();
        assert!(names(sets.effective).contains(&"NET_ADMIN"));
        assert!(names(sets.effective).contains(&"SYS_PTRACE"));
        assert!(!names(sets.effective).contains(&"CHOWN"));
        assert_eq!(names(sets.non_root), ["NET_ADMIN", "SYS_PTRACE"]);
        let only = resolve(&CapabilityRequest {
            add: v(&["NET_RAW"]),
            drop: v(&["ALL"]),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(names(only.effective), ["NET_RAW"]);
        let all = resolve(&CapabilityRequest {
            add: v(&["all"]),
            drop: v(&["SYS_ADMIN"]),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(all.effective, ALL & !SYS_ADMIN);
    }

    #[test]
    fn flags_bound_the_launch() {
        let req = CapabilityRequest {
            effective_flag: Some(v(&["CHOWN"])),
            bounding_flag: Some(v(&["CHOWN", "NET_RAW"])),
            add: v(&["NET_RAW"]),
            ..Default::default()
        };
        let sets = resolve(&req).unwrap();
        assert_eq!(names(sets.effective), ["CHOWN", "NET_RAW"]);
        assert_eq!(names(sets.bounding), ["CHOWN", "NET_RAW"]);
        let err = resolve(&CapabilityRequest {
            add: v(&["SYS_ADMIN"]),
            ..req
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "effective capabilities SYS_ADMIN are not in the bounding set"
        );
    }

    #[test]
    fn a_launch_bounding_set_must_lie_within_the_flag() {
        let sets = resolve(&CapabilityRequest {
            effective: Some(v(&["CHOWN"])),
            bounding: Some(v(&["CHOWN", "KILL"])),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(names(sets.effective), ["CHOWN"]);
        assert_eq!(names(sets.bounding), ["CHOWN", "KILL"]);
        let err = resolve(&CapabilityRequest {
            bounding_flag: Some(v(&["CHOWN"])),
            bounding: Some(v(&["CHOWN", "KILL"])),
            effective: Some(v(&["CHOWN"])),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "launch's bounding capabilities KILL are not in the bounding set"
        );
        let err = resolve(&CapabilityRequest {
            bounding: Some(v(&["KILL"])),
            effective: Some(v(&["CHOWN"])),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("CHOWN"), "{err}");
    }

    #[test]
    fn unknown_names_are_named() {
        let err = parse_list(&v(&["NET_ADMIN", "CAP_FLY"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown capability \"CAP_FLY\" (expected a name such as NET_ADMIN or CAP_NET_ADMIN, or ALL)"
        );
    }
}
