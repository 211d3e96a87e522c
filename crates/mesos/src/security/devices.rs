//! `cgroups/devices`: which device nodes a container may open or create,
//! enforced by the cgroup v1 devices controller (`devices.deny` with `a`,
//! then one `devices.allow` line per allowed device: `TYPE MAJOR:MINOR
//! ACCESS`), or on a host without it by a device eBPF program
//! (`BPF_PROG_TYPE_CGROUP_DEVICE`, generated from the same lines by
//! `phobos_cgroups::device_bpf`) attached to the container's cgroup2
//! directory.
//!
//! The default list is Mesos's: mknod of any node, and read/write/mknod of
//! `console`, `tty0`, `tty1`, `pts/*`, `ptmx`, `net/tun`, `null`, `zero`,
//! `full`, `tty`, `urandom` and `random`. `--device HOST[:CONTAINER][:rwm]`
//! and `allowed_devices` add to it.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path};

use phobos_core::DeviceNode;

/// Mesos's default whitelist, as devices.allow lines.
pub const DEFAULT_ALLOW: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 5:1 rwm",    // /dev/console
    "c 4:0 rwm",    // /dev/tty0
    "c 4:1 rwm",    // /dev/tty1
    "c 136:* rwm",  // /dev/pts/*
    "c 5:2 rwm",    // /dev/ptmx
    "c 10:200 rwm", // /dev/net/tun
    "c 1:3 rwm",    // /dev/null
    "c 1:5 rwm",    // /dev/zero
    "c 1:7 rwm",    // /dev/full
    "c 5:0 rwm",    // /dev/tty
    "c 1:9 rwm",    // /dev/urandom
    "c 1:8 rwm",    // /dev/random
];

/// Attaches the device program allowing [`DEFAULT_ALLOW`] and `extra`
/// (devices.allow lines) to the cgroup2 directory `cgroup`.
pub fn attach_program(
    cgroup: &Path,
    extra: &[String],
) -> Result<(), phobos_cgroups::device_bpf::DeviceBpfError> {
    use phobos_cgroups::device_bpf::{DeviceRule, restrict};
    let rules = DEFAULT_ALLOW
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
        .map(DeviceRule::parse)
        .collect::<Result<Vec<_>, _>>()?;
    restrict(cgroup, &rules)
}

/// A `--device` that cannot be.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeviceError {
    #[error("invalid device {spec:?}: {reason}")]
    Invalid { spec: String, reason: String },
}

/// Parses `HOST[:CONTAINER][:PERMS]` (Docker's `--device`, PERMS a
/// non-empty subset of `rwm`, default `rwm`) into a devices.allow line and
/// the node to make in a root filesystem (at CONTAINER, default HOST),
/// reading the node's type, numbers and mode from the host.
pub fn parse_device(spec: &str) -> Result<(String, DeviceNode), DeviceError> {
    let bad = |reason: String| DeviceError::Invalid {
        spec: spec.to_owned(),
        reason,
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let is_perms = |s: &str| !s.is_empty() && s.chars().all(|c| "rwm".contains(c));
    let (host, container, perms) = match parts.as_slice() {
        [host] => (*host, *host, "rwm"),
        [host, last] if is_perms(last) => (*host, *host, *last),
        [host, container] if container.starts_with('/') => (*host, *container, "rwm"),
        [host, container, perms] if container.starts_with('/') && is_perms(perms) => {
            (*host, *container, *perms)
        }
        _ => return Err(bad("expected HOST[:CONTAINER][:rwm]".to_owned())),
    };
    if !host.starts_with('/') {
        return Err(bad("the host path must be absolute".to_owned()));
    }
    let target = Path::new(container);
    if target
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        || target.file_name().is_none()
    {
        return Err(bad(format!(
            "the container path {container} must name a file without . or .."
        )));
    }
    let meta = std::fs::metadata(Path::new(host)).map_err(|e| bad(e.to_string()))?;
    let kind = if meta.file_type().is_char_device() {
        'c'
    } else if meta.file_type().is_block_device() {
        'b'
    } else {
        return Err(bad(format!("{host} is not a device node")));
    };
    let rdev = meta.rdev();
    let (major, minor) = (libc::major(rdev), libc::minor(rdev));
    let node = DeviceNode {
        path: target.to_owned(),
        kind,
        major,
        minor,
        mode: meta.mode() & 0o7777,
    };
    Ok((format!("{kind} {major}:{minor} {perms}"), node))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dockers_spelling() {
        let rule = |s| parse_device(s).unwrap().0;
        assert_eq!(rule("/dev/null"), "c 1:3 rwm");
        assert_eq!(rule("/dev/zero:r"), "c 1:5 r");
        assert_eq!(rule("/dev/full:/dev/f:rw"), "c 1:7 rw");
        assert_eq!(rule("/dev/full:/dev/f"), "c 1:7 rwm");
        let (_, node) = parse_device("/dev/full:/dev/f:r").unwrap();
        assert_eq!(
            (node.path.to_str(), node.kind, node.major, node.minor),
            (Some("/dev/f"), 'c', 1, 7)
        );
        assert_eq!(
            parse_device("/dev/zero").unwrap().1.path,
            Path::new("/dev/zero")
        );
    }

    #[test]
    fn refuses_what_is_not_a_device() {
        let e = parse_device("/etc/passwd").unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid device \"/etc/passwd\": /etc/passwd is not a device node"
        );
        assert!(parse_device("/dev/nonexistent-x").is_err());
        assert!(parse_device("dev/null").is_err());
        assert!(parse_device("/dev/null:xyz").is_err());
        assert!(parse_device("/dev/null:/dev/../etc/x").is_err());
        assert!(parse_device("/dev/null:/").is_err());
    }
}
