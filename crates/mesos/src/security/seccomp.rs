//! `linux/seccomp`: a seccomp BPF filter on the command's system calls
//! (seccomp(2) `SECCOMP_SET_MODE_FILTER`, classic BPF over `struct
//! seccomp_data`).
//!
//! Profiles are Docker's JSON format (which Mesos also reads): resolved
//! here against the container's capabilities and this architecture into a
//! [`SeccompProfile`], checkpointed in the launch info, and compiled to BPF
//! by init before it starts the command ([`compile`]). The built-in
//! default ([`default_profile`]) has the effect of Docker's default profile
//! (see docs/security.md for the list).
//!
//! The generated program checks the architecture (a foreign one, say i386
//! `int 0x80` on x86_64, or the x32 ABI, gets `EPERM`), then finds the
//! system call by binary search and tests its rules in profile order,
//! first match wins, else the default action (`seccomp_bpf.rs`).

use std::path::Path;

use phobos_core::SeccompProfile;
use phobos_core::hardening::{SeccompAction, SeccompArg, SeccompOp, SeccompRule};
use serde::Deserialize;

use super::capabilities;

#[cfg(target_arch = "x86_64")]
#[path = "syscalls_x86_64.rs"]
mod table;
#[cfg(target_arch = "aarch64")]
#[path = "syscalls_aarch64.rs"]
mod table;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod table {
    pub const TABLE: &[(&str, u32)] = &[];
}

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const AUDIT_ARCH: u32 = 0;

/// Docker's name of this architecture.
#[cfg(target_arch = "x86_64")]
const SCMP_ARCH: &str = "SCMP_ARCH_X86_64";
#[cfg(target_arch = "aarch64")]
const SCMP_ARCH: &str = "SCMP_ARCH_AARCH64";
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const SCMP_ARCH: &str = "";

/// The number of a system call on this architecture.
pub fn syscall_number(name: &str) -> Option<u32> {
    table::TABLE
        .binary_search_by(|(n, _)| n.cmp(&name))
        .ok()
        .map(|i| table::TABLE[i].1)
}

/// A profile that cannot be used. Each names the file and the problem.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("cannot read seccomp profile {path}: {message}")]
    Read { path: String, message: String },
    #[error("malformed seccomp profile {path}: {message}")]
    Malformed { path: String, message: String },
    #[error(
        "invalid --security-opt {0:?}: expected seccomp=unconfined, seccomp=FILE.json or no-new-privileges"
    )]
    Option(String),
}

/// `--security-opt` values Phobos understands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecurityOpt {
    SeccompUnconfined,
    SeccompProfile(String),
    NoNewPrivileges,
}

/// Parses one `--security-opt` (Docker's spelling; `=` or `:`).
pub fn parse_security_opt(value: &str) -> Result<SecurityOpt, SeccompError> {
    let bad = || SeccompError::Option(value.to_owned());
    if matches!(
        value,
        "no-new-privileges" | "no-new-privileges=true" | "no-new-privileges:true"
    ) {
        return Ok(SecurityOpt::NoNewPrivileges);
    }
    let rest = value
        .strip_prefix("seccomp=")
        .or_else(|| value.strip_prefix("seccomp:"))
        .ok_or_else(bad)?;
    match rest {
        "" => Err(bad()),
        "unconfined" => Ok(SecurityOpt::SeccompUnconfined),
        file => Ok(SecurityOpt::SeccompProfile(file.to_owned())),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerProfile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u16>,
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    arch_map: Vec<DockerArchMap>,
    #[serde(default)]
    syscalls: Vec<DockerSyscall>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerSyscall {
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    name: Option<String>,
    action: String,
    #[serde(default)]
    args: Option<Vec<DockerArg>>,
    #[serde(default)]
    includes: Option<DockerFilter>,
    #[serde(default)]
    excludes: Option<DockerFilter>,
    #[serde(default)]
    errno_ret: Option<u16>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerArg {
    index: u8,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerFilter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
}

fn action(name: &str, errno: Option<u16>) -> Result<SeccompAction, String> {
    Ok(match name {
        "SCMP_ACT_ALLOW" => SeccompAction::Allow,
        "SCMP_ACT_ERRNO" => SeccompAction::Errno(errno.unwrap_or(libc::EPERM as u16)),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => SeccompAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => SeccompAction::KillProcess,
        "SCMP_ACT_TRAP" => SeccompAction::Trap,
        "SCMP_ACT_TRACE" => SeccompAction::Trace(errno.unwrap_or(libc::EPERM as u16)),
        "SCMP_ACT_LOG" => SeccompAction::Log,
        other => return Err(format!("unknown action {other:?}")),
    })
}

fn op(name: &str) -> Result<SeccompOp, String> {
    Ok(match name {
        "SCMP_CMP_NE" => SeccompOp::Ne,
        "SCMP_CMP_LT" => SeccompOp::Lt,
        "SCMP_CMP_LE" => SeccompOp::Le,
        "SCMP_CMP_EQ" => SeccompOp::Eq,
        "SCMP_CMP_GE" => SeccompOp::Ge,
        "SCMP_CMP_GT" => SeccompOp::Gt,
        "SCMP_CMP_MASKED_EQ" => SeccompOp::MaskedEq,
        other => return Err(format!("unknown operator {other:?}")),
    })
}

/// Reads and resolves a Docker-format profile for a container whose
/// bounding set is `bounding` (Docker judges `caps` against it).
pub fn load_profile(path: &Path, bounding: u64) -> Result<SeccompProfile, SeccompError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| SeccompError::Read {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    parse_profile(&text, &shown, bounding).map_err(|message| SeccompError::Malformed {
        path: shown,
        message,
    })
}

/// [`load_profile`] on text.
pub fn parse_profile(text: &str, source: &str, bounding: u64) -> Result<SeccompProfile, String> {
    let p: DockerProfile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    for arch in p.architectures.iter().chain(
        p.arch_map
            .iter()
            .flat_map(|m| std::iter::once(&m.architecture).chain(m.sub_architectures.iter())),
    ) {
        if !arch.starts_with("SCMP_ARCH_") {
            return Err(format!("unknown architecture {arch:?}"));
        }
    }
    let default_action = action(&p.default_action, p.default_errno_ret)?;
    let mut rules = Vec::new();
    for (i, call) in p.syscalls.iter().enumerate() {
        let at = |m: String| format!("syscalls[{i}]: {m}");
        let caps_of = |f: &Option<DockerFilter>| -> Result<(u64, Vec<String>), String> {
            let Some(f) = f else {
                return Ok((0, Vec::new()));
            };
            let caps = capabilities::parse_list(&f.caps).map_err(|e| e.to_string())?;
            Ok((caps, f.arches.clone()))
        };
        let (inc_caps, inc_arches) = caps_of(&call.includes).map_err(at)?;
        let (exc_caps, exc_arches) = caps_of(&call.excludes).map_err(at)?;
        let native = |arches: &[String]| {
            arches
                .iter()
                .any(|a| a == SCMP_ARCH || docker_arch_alias(a) == Some(SCMP_ARCH))
        };
        let applies = inc_caps & bounding == inc_caps
            && (exc_caps == 0 || exc_caps & bounding == 0)
            && (inc_arches.is_empty() || native(&inc_arches))
            && !native(&exc_arches);
        let act = action(&call.action, call.errno_ret).map_err(at)?;
        let mut args = Vec::new();
        for a in call.args.iter().flatten() {
            if a.index > 5 {
                return Err(at(format!("argument index {} is above 5", a.index)));
            }
            args.push(SeccompArg {
                index: a.index,
                op: op(&a.op).map_err(at)?,
                value: a.value,
                value_two: a.value_two,
            });
        }
        let mut names = call.names.clone();
        names.extend(call.name.clone());
        if names.is_empty() {
            return Err(at("no system call names".to_owned()));
        }
        if applies {
            rules.push(SeccompRule {
                names,
                action: act,
                args,
            });
        }
    }
    Ok(SeccompProfile {
        source: source.to_owned(),
        default_action,
        rules,
    })
}

/// Docker's arch names in `includes.arches` (`amd64`, `arm64`).
fn docker_arch_alias(name: &str) -> Option<&'static str> {
    match name {
        "amd64" | "x86_64" => Some("SCMP_ARCH_X86_64"),
        "arm64" | "aarch64" => Some("SCMP_ARCH_AARCH64"),
        _ => None,
    }
}

/// The namespace flags of clone(2) Docker's default profile keeps from a
/// container without `CAP_SYS_ADMIN` (`CLONE_NEWNS | NEWCGROUP | NEWUTS |
/// NEWIPC | NEWUSER | NEWPID | NEWNET`).
const CLONE_NAMESPACES: u64 = 0x7E02_0000;

/// The calls the built-in default denies with `EPERM`, each with the
/// capabilities that lift the denial (as Docker's default profile does).
pub const DEFAULT_DENIED: &[(&[&str], &[&str])] = &[
    (&["keyctl", "add_key", "request_key"], &[]),
    (
        &[
            "mount",
            "umount",
            "umount2",
            "pivot_root",
            "unshare",
            "setns",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "move_mount",
            "open_tree",
            "mount_setattr",
            "swapon",
            "swapoff",
            "quotactl",
            "quotactl_fd",
            "lookup_dcookie",
            "fanotify_init",
            "vm86",
            "vm86old",
        ],
        &["SYS_ADMIN"],
    ),
    (&["bpf"], &["SYS_ADMIN", "BPF"]),
    (&["perf_event_open"], &["SYS_ADMIN", "PERFMON"]),
    (&["kexec_load", "kexec_file_load", "reboot"], &["SYS_BOOT"]),
    (
        &[
            "init_module",
            "finit_module",
            "delete_module",
            "create_module",
            "query_module",
            "get_kernel_syms",
        ],
        &["SYS_MODULE"],
    ),
    (&["acct"], &["SYS_PACCT"]),
    (&["iopl", "ioperm"], &["SYS_RAWIO"]),
    (
        &["settimeofday", "stime", "clock_settime", "clock_adjtime"],
        &["SYS_TIME"],
    ),
    (
        &["open_by_handle_at", "name_to_handle_at"],
        &["DAC_READ_SEARCH"],
    ),
    (
        &[
            "process_vm_readv",
            "process_vm_writev",
            "kcmp",
            "userfaultfd",
        ],
        &["SYS_PTRACE"],
    ),
    (
        &["mbind", "set_mempolicy", "get_mempolicy", "move_pages"],
        &["SYS_NICE"],
    ),
    (&["syslog"], &["SYSLOG"]),
    (
        &["io_uring_setup", "io_uring_enter", "io_uring_register"],
        &[],
    ),
    (
        &[
            "nfsservctl",
            "uselib",
            "_sysctl",
            "ustat",
            "sysfs",
            "afs_syscall",
            "tuxcall",
            "vserver",
            "getpmsg",
            "putpmsg",
            "security",
        ],
        &[],
    ),
];

/// The built-in profile for a container whose bounding set is `bounding`:
/// everything allowed except [`DEFAULT_DENIED`] (unless a listed
/// capability is held), `clone` with namespace flags and `clone3` (ENOSYS,
/// so libcs fall back to the filtered `clone`) without `CAP_SYS_ADMIN`.
pub fn default_profile(bounding: u64) -> SeccompProfile {
    let held = |caps: &[&str]| {
        caps.iter()
            .any(|c| capabilities::parse(c).is_ok_and(|bit| bounding & bit != 0))
    };
    let mut rules = Vec::new();
    if bounding & capabilities::SYS_ADMIN == 0 {
        rules.push(SeccompRule {
            names: vec!["clone".to_owned()],
            action: SeccompAction::Allow,
            args: vec![SeccompArg {
                index: 0,
                op: SeccompOp::MaskedEq,
                value: CLONE_NAMESPACES,
                value_two: 0,
            }],
        });
        rules.push(SeccompRule {
            names: vec!["clone".to_owned()],
            action: SeccompAction::Errno(libc::EPERM as u16),
            args: Vec::new(),
        });
        rules.push(SeccompRule {
            names: vec!["clone3".to_owned()],
            action: SeccompAction::Errno(libc::ENOSYS as u16),
            args: Vec::new(),
        });
    }
    let denied: Vec<String> = DEFAULT_DENIED
        .iter()
        .filter(|(_, caps)| !held(caps))
        .flat_map(|(names, _)| names.iter().map(|n| (*n).to_owned()))
        .collect();
    rules.push(SeccompRule {
        names: denied,
        action: SeccompAction::Errno(libc::EPERM as u16),
        args: Vec::new(),
    });
    SeccompProfile {
        source: "default".to_owned(),
        default_action: SeccompAction::Allow,
        rules,
    }
}

/// The BPF code generator (`seccomp_bpf.rs`).
#[path = "seccomp_bpf.rs"]
mod bpf;
pub use bpf::compile;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_knows_common_calls() {
        assert!(table::TABLE.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(syscall_number("openat"), Some(libc::SYS_openat as u32));
        assert_eq!(syscall_number("keyctl"), Some(libc::SYS_keyctl as u32));
        assert_eq!(syscall_number("no_such_call"), None);
    }

    #[test]
    fn default_profile_denies_unless_a_capability_lifts_it() {
        let p = default_profile(capabilities::default_mask());
        let denied = |n: &str| p.rules.iter().any(|r| r.names.iter().any(|x| x == n));
        for n in [
            "keyctl",
            "unshare",
            "mount",
            "bpf",
            "kexec_load",
            "perf_event_open",
        ] {
            assert!(denied(n), "{n}");
        }
        let admin = default_profile(capabilities::ALL);
        assert!(
            !admin
                .rules
                .iter()
                .any(|r| r.names.iter().any(|x| x == "mount"))
        );
        assert!(
            admin
                .rules
                .iter()
                .any(|r| r.names.iter().any(|x| x == "keyctl"))
        );
        assert!(compile(&p).unwrap().len() > 40);
    }

    #[test]
    fn docker_profiles_parse_with_includes_and_excludes() {
        let text = r#"{
            "defaultAction": "SCMP_ACT_ERRNO",
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "args": []},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
                 "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "args": null}
            ]
        }"#;
        let p = parse_profile(text, "t.json", capabilities::default_mask()).unwrap();
        assert_eq!(p.default_action, SeccompAction::Errno(1));
        assert_eq!(p.rules.len(), 3);
        assert_eq!(p.rules[2].action, SeccompAction::Errno(38));
        let admin = parse_profile(text, "t.json", capabilities::ALL).unwrap();
        assert_eq!(admin.rules.len(), 3);
        assert_eq!(admin.rules[1].names, ["mount"]);
        compile(&p).unwrap();
    }

    #[test]
    fn malformed_profiles_say_what_is_wrong() {
        let e = parse_profile("{}", "x", 0).unwrap_err();
        assert!(e.contains("defaultAction"), "{e}");
        let e = parse_profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_EXPLODE"}]}"#,
            "x",
            0,
        )
        .unwrap_err();
        assert_eq!(e, "syscalls[0]: unknown action \"SCMP_ACT_EXPLODE\"");
        let e = parse_profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_FLY"]}}]}"#,
            "x",
            0,
        )
        .unwrap_err();
        assert!(e.starts_with("syscalls[0]: unknown capability"), "{e}");
        assert!(matches!(
            parse_security_opt("apparmor=x"),
            Err(SeccompError::Option(_))
        ));
        assert_eq!(
            parse_security_opt("seccomp=unconfined").unwrap(),
            SecurityOpt::SeccompUnconfined
        );
    }
}
