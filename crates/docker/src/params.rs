//! `DockerInfo.parameters` onto Engine API fields.
//!
//! Mesos appends each parameter to `docker run` as `--<key>=<value>`, so any
//! flag the CLI knows works there and a later flag wins over an earlier one.
//! We talk to the Engine API instead of the CLI, so each supported key is
//! mapped onto the create-body field the `docker run` flag would have set, and
//! applied after the spec's own fields (parameters win, as in Mesos). Repeatable
//! flags append; single-valued flags replace. A key we do not map, or a value
//! we cannot parse, is a [`ParameterError`] naming it — never silently dropped.
//!
//! A leading `--` on the key is accepted (`--cap-add` = `cap-add`).
//!
//! | key | field | value |
//! | --- | --- | --- |
//! | `label`, `l` | `Labels` | `k=v` or `k` |
//! | `env`, `e` | `Env` (appended) | `K=V` |
//! | `user`, `u` | `User` | as is |
//! | `workdir`, `w` | `WorkingDir` | as is |
//! | `hostname`, `h` | `Hostname` | as is |
//! | `entrypoint` | `Entrypoint` | one word; empty resets it (like the CLI) |
//! | `stop-signal` | `StopSignal` | as is |
//! | `stop-timeout` | `StopTimeout` | seconds |
//! | `memory`, `m` | `HostConfig.Memory` | size (`512m`, `1g`, bytes) |
//! | `memory-reservation` | `HostConfig.MemoryReservation` | size |
//! | `memory-swap` | `HostConfig.MemorySwap` | size or `-1` |
//! | `memory-swappiness` | `HostConfig.MemorySwappiness` | 0–100 |
//! | `cpu-shares`, `c` | `HostConfig.CpuShares` | integer |
//! | `cpu-period` | `HostConfig.CpuPeriod` | µs |
//! | `cpu-quota` | `HostConfig.CpuQuota` | µs |
//! | `cpus` | `HostConfig.NanoCpus` | decimal cpus |
//! | `cpuset-cpus`, `cpuset-mems` | `HostConfig.CpusetCpus` / `CpusetMems` | as is |
//! | `pids-limit` | `HostConfig.PidsLimit` | integer |
//! | `oom-kill-disable` | `HostConfig.OomKillDisable` | bool |
//! | `oom-score-adj` | `HostConfig.OomScoreAdj` | −1000…1000 |
//! | `ulimit` | `HostConfig.Ulimits` | `name=soft[:hard]` |
//! | `cap-add`, `cap-drop` | `HostConfig.CapAdd` / `CapDrop` | capability |
//! | `device` | `HostConfig.Devices` | `host[:container[:perms]]` |
//! | `device-cgroup-rule` | `HostConfig.DeviceCgroupRules` | as is |
//! | `dns`, `dns-search`, `dns-option` (`dns-opt`) | `HostConfig.Dns` / `DnsSearch` / `DnsOptions` | as is |
//! | `add-host` | `HostConfig.ExtraHosts` | `host:ip` |
//! | `security-opt` | `HostConfig.SecurityOpt` | as is |
//! | `shm-size` | `HostConfig.ShmSize` | size |
//! | `read-only` | `HostConfig.ReadonlyRootfs` | bool |
//! | `tmpfs` | `HostConfig.Tmpfs` | `/path[:options]` |
//! | `log-driver` | `HostConfig.LogConfig.Type` | as is |
//! | `log-opt` | `HostConfig.LogConfig.Config` | `k=v` |
//! | `init` | `HostConfig.Init` | bool |
//! | `sysctl` | `HostConfig.Sysctls` | `k=v` |
//! | `volume`, `v` | `HostConfig.Binds` | as is |
//! | `volume-driver` | `HostConfig.VolumeDriver` | as is |
//! | `volumes-from` | `HostConfig.VolumesFrom` | as is |
//! | `group-add` | `HostConfig.GroupAdd` | as is |
//! | `ipc`, `pid`, `uts`, `userns` | `HostConfig.IpcMode` / `PidMode` / `UtsMode` / `UsernsMode` | as is |
//! | `cgroup-parent` | `HostConfig.CgroupParent` | as is |
//! | `runtime` | `HostConfig.Runtime` | as is |
//! | `privileged` | `HostConfig.Privileged` | bool |
//!
//! Deliberately refused: `network`/`net` and `publish`/`p`/`publish-all`
//! (they would bypass the port-range checks: use `DockerInfo.network` and
//! `port_mappings`), `rm`, `restart`, `detach`, `name`, `interactive`, `tty`
//! (they fight the containerizer's own lifecycle), and everything else we
//! do not know.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, DeviceMapping, HostConfig, HostConfigLogConfig, ResourcesUlimits,
};

use crate::translate::{LABEL_CONTAINER_ID, LABEL_MANAGED};

/// A parameter that cannot be mapped onto the Engine API.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParameterError {
    /// A key we do not map.
    #[error("unsupported docker parameter {key:?} (value {value:?})")]
    Unsupported {
        /// The key as given.
        key: String,
        /// The value as given.
        value: String,
    },
    /// A key we map on purpose to nothing, with the reason.
    #[error("docker parameter {key:?} is not allowed: {reason}")]
    Refused {
        /// The key as given.
        key: String,
        /// Why.
        reason: &'static str,
    },
    /// A known key with a value we cannot parse.
    #[error("invalid value {value:?} for docker parameter {key:?}: {reason}")]
    InvalidValue {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// What was expected.
        reason: &'static str,
    },
}

fn invalid(key: &str, value: &str, reason: &'static str) -> ParameterError {
    ParameterError::InvalidValue {
        key: key.to_owned(),
        value: value.to_owned(),
        reason,
    }
}

/// Parse a boolean the way Go's `strconv.ParseBool` (and so the docker CLI) does;
/// an empty value means `true`, as a bare `--flag` would.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "" | "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Parse a size the way the docker CLI's `RAMInBytes` does: a decimal number
/// with an optional binary unit `b`, `k`, `m`, `g`, `t`, `p` (case-insensitive,
/// an optional trailing `b`, e.g. `512m`, `1.5GB`, `4096`).
pub fn parse_size(value: &str) -> Option<i64> {
    let v = value.trim();
    let lower = v.to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(digits_end);
    if num.is_empty() {
        return None;
    }
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match unit {
        "" | "b" => 1.0,
        "k" | "kb" => 1024.0,
        "m" | "mb" => 1024.0 * 1024.0,
        "g" | "gb" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "p" | "pb" => 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = n * mult;
    if !bytes.is_finite() || bytes > i64::MAX as f64 {
        return None;
    }
    Some(bytes as i64)
}

fn kv<'a>(key: &str, value: &'a str) -> Result<(&'a str, &'a str), ParameterError> {
    match value.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k, v)),
        _ => Err(invalid(key, value, "expected key=value")),
    }
}

fn int(key: &str, value: &str) -> Result<i64, ParameterError> {
    value
        .trim()
        .parse::<i64>()
        .map_err(|_| invalid(key, value, "expected an integer"))
}

fn size(key: &str, value: &str) -> Result<i64, ParameterError> {
    parse_size(value).ok_or_else(|| invalid(key, value, "expected a size such as 512m or 1g"))
}

fn boolean(key: &str, value: &str) -> Result<bool, ParameterError> {
    parse_bool(value).ok_or_else(|| invalid(key, value, "expected true or false"))
}

fn push(list: &mut Option<Vec<String>>, value: &str) {
    list.get_or_insert_with(Vec::new).push(value.to_owned());
}

fn parse_ulimit(key: &str, value: &str) -> Result<ResourcesUlimits, ParameterError> {
    let (name, limits) = kv(key, value)?;
    let (soft, hard) = match limits.split_once(':') {
        Some((s, h)) => (s, h),
        None => (limits, limits),
    };
    let soft = soft
        .parse::<i64>()
        .map_err(|_| invalid(key, value, "expected name=soft[:hard]"))?;
    let hard = hard
        .parse::<i64>()
        .map_err(|_| invalid(key, value, "expected name=soft[:hard]"))?;
    if hard >= 0 && soft > hard {
        return Err(invalid(key, value, "soft limit above hard limit"));
    }
    Ok(ResourcesUlimits {
        name: Some(name.to_owned()),
        soft: Some(soft),
        hard: Some(hard),
    })
}

fn parse_device(key: &str, value: &str) -> Result<DeviceMapping, ParameterError> {
    let parts: Vec<&str> = value.split(':').collect();
    let (host, container, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, c] if c.chars().all(|ch| matches!(ch, 'r' | 'w' | 'm')) && !c.is_empty() => {
            (*h, *h, *c)
        }
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] => (*h, *c, *p),
        _ => return Err(invalid(key, value, "expected host[:container[:perms]]")),
    };
    if !host.starts_with('/') || !container.starts_with('/') {
        return Err(invalid(key, value, "device paths must be absolute"));
    }
    if perms.is_empty() || !perms.chars().all(|ch| matches!(ch, 'r' | 'w' | 'm')) {
        return Err(invalid(key, value, "permissions must be a subset of rwm"));
    }
    Ok(DeviceMapping {
        path_on_host: Some(host.to_owned()),
        path_in_container: Some(container.to_owned()),
        cgroup_permissions: Some(perms.to_owned()),
    })
}

/// Apply `parameters` in order onto `body` (see the module table).
pub fn apply_parameters(
    body: &mut ContainerCreateBody,
    parameters: &[(String, String)],
) -> Result<(), ParameterError> {
    for (raw_key, value) in parameters {
        apply_one(body, raw_key, value)?;
    }
    Ok(())
}

fn apply_one(
    body: &mut ContainerCreateBody,
    raw_key: &str,
    value: &str,
) -> Result<(), ParameterError> {
    let key = raw_key.strip_prefix("--").unwrap_or(raw_key);
    let hc: &mut HostConfig = body.host_config.get_or_insert_with(HostConfig::default);
    match key {
        "label" | "l" => {
            let (k, v) = value.split_once('=').unwrap_or((value, ""));
            if k.is_empty() {
                return Err(invalid(key, value, "expected key[=value]"));
            }
            if k == LABEL_CONTAINER_ID || k == LABEL_MANAGED {
                return Err(invalid(key, value, "label is reserved for phobos"));
            }
            body.labels
                .get_or_insert_with(HashMap::new)
                .insert(k.to_owned(), v.to_owned());
        }
        "env" | "e" => {
            kv(key, value)?;
            push(&mut body.env, value);
        }
        "user" | "u" => body.user = Some(value.to_owned()),
        "workdir" | "w" => {
            if !value.starts_with('/') {
                return Err(invalid(key, value, "expected an absolute path"));
            }
            body.working_dir = Some(value.to_owned());
        }
        "hostname" | "h" => body.hostname = Some(value.to_owned()),
        "entrypoint" => {
            body.entrypoint = Some(if value.is_empty() {
                Vec::new()
            } else {
                vec![value.to_owned()]
            });
        }
        "stop-signal" => body.stop_signal = Some(value.to_owned()),
        "stop-timeout" => body.stop_timeout = Some(int(key, value)?),
        "memory" | "m" => hc.memory = Some(size(key, value)?),
        "memory-reservation" => hc.memory_reservation = Some(size(key, value)?),
        "memory-swap" => {
            hc.memory_swap = Some(if value.trim() == "-1" {
                -1
            } else {
                size(key, value)?
            });
        }
        "memory-swappiness" => {
            let v = int(key, value)?;
            if !(-1..=100).contains(&v) {
                return Err(invalid(key, value, "expected 0 to 100"));
            }
            hc.memory_swappiness = Some(v);
        }
        "cpu-shares" | "c" => hc.cpu_shares = Some(int(key, value)?),
        "cpu-period" => hc.cpu_period = Some(int(key, value)?),
        "cpu-quota" => hc.cpu_quota = Some(int(key, value)?),
        "cpus" => {
            let cpus: f64 = value
                .trim()
                .parse()
                .map_err(|_| invalid(key, value, "expected a decimal number of cpus"))?;
            if !cpus.is_finite() || cpus < 0.0 {
                return Err(invalid(
                    key,
                    value,
                    "expected a non-negative number of cpus",
                ));
            }
            hc.nano_cpus = Some((cpus * 1e9) as i64);
        }
        "cpuset-cpus" => hc.cpuset_cpus = Some(value.to_owned()),
        "cpuset-mems" => hc.cpuset_mems = Some(value.to_owned()),
        "pids-limit" => hc.pids_limit = Some(int(key, value)?),
        "oom-kill-disable" => hc.oom_kill_disable = Some(boolean(key, value)?),
        "oom-score-adj" => {
            let v = int(key, value)?;
            if !(-1000..=1000).contains(&v) {
                return Err(invalid(key, value, "expected -1000 to 1000"));
            }
            hc.oom_score_adj = Some(v);
        }
        "ulimit" => hc
            .ulimits
            .get_or_insert_with(Vec::new)
            .push(parse_ulimit(key, value)?),
        "cap-add" => push(&mut hc.cap_add, value),
        "cap-drop" => push(&mut hc.cap_drop, value),
        "device" => hc
            .devices
            .get_or_insert_with(Vec::new)
            .push(parse_device(key, value)?),
        "device-cgroup-rule" => push(&mut hc.device_cgroup_rules, value),
        "dns" => push(&mut hc.dns, value),
        "dns-search" => push(&mut hc.dns_search, value),
        "dns-option" | "dns-opt" => push(&mut hc.dns_options, value),
        "add-host" => {
            match value.split_once(':') {
                Some((h, ip)) if !h.is_empty() && !ip.is_empty() => {}
                _ => return Err(invalid(key, value, "expected host:ip")),
            }
            push(&mut hc.extra_hosts, value);
        }
        "security-opt" => push(&mut hc.security_opt, value),
        "shm-size" => hc.shm_size = Some(size(key, value)?),
        "read-only" => hc.readonly_rootfs = Some(boolean(key, value)?),
        "tmpfs" => {
            let (path, opts) = value.split_once(':').unwrap_or((value, ""));
            if !path.starts_with('/') {
                return Err(invalid(key, value, "expected /path[:options]"));
            }
            hc.tmpfs
                .get_or_insert_with(HashMap::new)
                .insert(path.to_owned(), opts.to_owned());
        }
        "log-driver" => {
            hc.log_config
                .get_or_insert_with(HostConfigLogConfig::default)
                .typ = Some(value.to_owned());
        }
        "log-opt" => {
            let (k, v) = kv(key, value)?;
            hc.log_config
                .get_or_insert_with(HostConfigLogConfig::default)
                .config
                .get_or_insert_with(HashMap::new)
                .insert(k.to_owned(), v.to_owned());
        }
        "init" => hc.init = Some(boolean(key, value)?),
        "sysctl" => {
            let (k, v) = kv(key, value)?;
            hc.sysctls
                .get_or_insert_with(HashMap::new)
                .insert(k.to_owned(), v.to_owned());
        }
        "volume" | "v" => push(&mut hc.binds, value),
        "volume-driver" => hc.volume_driver = Some(value.to_owned()),
        "volumes-from" => push(&mut hc.volumes_from, value),
        "group-add" => push(&mut hc.group_add, value),
        "ipc" => hc.ipc_mode = Some(value.to_owned()),
        "pid" => hc.pid_mode = Some(value.to_owned()),
        "uts" => hc.uts_mode = Some(value.to_owned()),
        "userns" => hc.userns_mode = Some(value.to_owned()),
        "cgroup-parent" => hc.cgroup_parent = Some(value.to_owned()),
        "runtime" => hc.runtime = Some(value.to_owned()),
        "privileged" => hc.privileged = Some(boolean(key, value)?),
        "network" | "net" => {
            return Err(ParameterError::Refused {
                key: raw_key.to_owned(),
                reason: "use DockerInfo.network, which the port checks rely on",
            });
        }
        "publish" | "p" | "publish-all" | "P" | "expose" => {
            return Err(ParameterError::Refused {
                key: raw_key.to_owned(),
                reason: "use DockerInfo.port_mappings, which are checked against the offered ports",
            });
        }
        "rm" | "restart" | "detach" | "d" | "name" | "interactive" | "i" | "tty" | "t"
        | "attach" | "a" | "cidfile" => {
            return Err(ParameterError::Refused {
                key: raw_key.to_owned(),
                reason: "the containerizer owns the container's name and lifecycle",
            });
        }
        _ => {
            return Err(ParameterError::Unsupported {
                key: raw_key.to_owned(),
                value: value.to_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(params: &[(&str, &str)]) -> Result<ContainerCreateBody, ParameterError> {
        let mut body = ContainerCreateBody::default();
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        apply_parameters(&mut body, &params)?;
        Ok(body)
    }

    fn hc(body: &ContainerCreateBody) -> &HostConfig {
        body.host_config.as_ref().expect("host config")
    }

    #[test]
    fn sizes_parse_like_the_docker_cli() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("512m"), Some(512 * 1024 * 1024));
        assert_eq!(parse_size("512MB"), Some(512 * 1024 * 1024));
        assert_eq!(parse_size("1.5g"), Some(1536 * 1024 * 1024));
        assert_eq!(parse_size("64k"), Some(65536));
        assert_eq!(parse_size("10b"), Some(10));
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("m"), None);
        assert_eq!(parse_size("12x"), None);
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("99999999p"), None);
    }

    #[test]
    fn bools_parse_like_go() {
        assert_eq!(parse_bool("true"), Some(true));
        assert_eq!(parse_bool(""), Some(true));
        assert_eq!(parse_bool("1"), Some(true));
        assert_eq!(parse_bool("False"), Some(false));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }

    #[test]
    fn container_level_parameters() {
        let body = apply(&[
            ("label", "a=b"),
            ("label", "flag"),
            ("env", "X=1"),
            ("--user", "nobody"),
            ("w", "/srv"),
            ("hostname", "h1"),
            ("entrypoint", "/bin/true"),
            ("stop-signal", "SIGINT"),
            ("stop-timeout", "7"),
        ])
        .expect("maps");
        let labels = body.labels.clone().expect("labels");
        assert_eq!(labels["a"], "b");
        assert_eq!(labels["flag"], "");
        assert_eq!(body.env, Some(vec!["X=1".to_owned()]));
        assert_eq!(body.user.as_deref(), Some("nobody"));
        assert_eq!(body.working_dir.as_deref(), Some("/srv"));
        assert_eq!(body.hostname.as_deref(), Some("h1"));
        assert_eq!(body.entrypoint, Some(vec!["/bin/true".to_owned()]));
        assert_eq!(body.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(body.stop_timeout, Some(7));
        let reset = apply(&[("entrypoint", "")]).expect("maps");
        assert_eq!(reset.entrypoint, Some(Vec::new()));
    }

    #[test]
    fn resource_parameters() {
        let body = apply(&[
            ("memory", "256m"),
            ("memory-reservation", "128m"),
            ("memory-swap", "-1"),
            ("memory-swappiness", "0"),
            ("cpu-shares", "512"),
            ("cpu-period", "50000"),
            ("cpu-quota", "25000"),
            ("cpus", "1.5"),
            ("cpuset-cpus", "0-1"),
            ("cpuset-mems", "0"),
            ("pids-limit", "100"),
            ("oom-kill-disable", "true"),
            ("oom-score-adj", "-500"),
            ("shm-size", "64m"),
        ])
        .expect("maps");
        let h = hc(&body);
        assert_eq!(h.memory, Some(256 * 1024 * 1024));
        assert_eq!(h.memory_reservation, Some(128 * 1024 * 1024));
        assert_eq!(h.memory_swap, Some(-1));
        assert_eq!(h.memory_swappiness, Some(0));
        assert_eq!(h.cpu_shares, Some(512));
        assert_eq!(h.cpu_period, Some(50_000));
        assert_eq!(h.cpu_quota, Some(25_000));
        assert_eq!(h.nano_cpus, Some(1_500_000_000));
        assert_eq!(h.cpuset_cpus.as_deref(), Some("0-1"));
        assert_eq!(h.cpuset_mems.as_deref(), Some("0"));
        assert_eq!(h.pids_limit, Some(100));
        assert_eq!(h.oom_kill_disable, Some(true));
        assert_eq!(h.oom_score_adj, Some(-500));
        assert_eq!(h.shm_size, Some(64 * 1024 * 1024));
    }

    #[test]
    fn security_and_device_parameters() {
        let body = apply(&[
            ("ulimit", "nofile=1024:2048"),
            ("ulimit", "core=0"),
            ("cap-add", "NET_ADMIN"),
            ("cap-drop", "ALL"),
            ("device", "/dev/fuse"),
            ("device", "/dev/sda:/dev/xvda:r"),
            ("device", "/dev/null:rw"),
            ("security-opt", "no-new-privileges"),
            ("read-only", "true"),
            ("init", "1"),
            ("privileged", "false"),
            ("sysctl", "net.core.somaxconn=1024"),
            ("tmpfs", "/run:rw,size=64m"),
            ("tmpfs", "/scratch"),
        ])
        .expect("maps");
        let h = hc(&body);
        assert_eq!(
            h.ulimits,
            Some(vec![
                ResourcesUlimits {
                    name: Some("nofile".into()),
                    soft: Some(1024),
                    hard: Some(2048)
                },
                ResourcesUlimits {
                    name: Some("core".into()),
                    soft: Some(0),
                    hard: Some(0)
                },
            ])
        );
        assert_eq!(h.cap_add, Some(vec!["NET_ADMIN".to_owned()]));
        assert_eq!(h.cap_drop, Some(vec!["ALL".to_owned()]));
        let devices = h.devices.clone().expect("devices");
        let triples: Vec<(String, String, String)> = devices
            .into_iter()
            .map(|d| {
                (
                    d.path_on_host.unwrap_or_default(),
                    d.path_in_container.unwrap_or_default(),
                    d.cgroup_permissions.unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            triples,
            vec![
                ("/dev/fuse".into(), "/dev/fuse".into(), "rwm".into()),
                ("/dev/sda".into(), "/dev/xvda".into(), "r".into()),
                ("/dev/null".into(), "/dev/null".into(), "rw".into()),
            ]
        );
        assert_eq!(h.security_opt, Some(vec!["no-new-privileges".to_owned()]));
        assert_eq!(h.readonly_rootfs, Some(true));
        assert_eq!(h.init, Some(true));
        assert_eq!(h.privileged, Some(false));
        assert_eq!(
            h.sysctls.clone().expect("sysctls")["net.core.somaxconn"],
            "1024"
        );
        let tmpfs = h.tmpfs.clone().expect("tmpfs");
        assert_eq!(tmpfs["/run"], "rw,size=64m");
        assert_eq!(tmpfs["/scratch"], "");
    }

    #[test]
    fn network_and_logging_parameters() {
        let body = apply(&[
            ("dns", "10.0.0.2"),
            ("dns-search", "example.internal"),
            ("dns-opt", "ndots:2"),
            ("add-host", "db:10.0.0.5"),
            ("log-driver", "json-file"),
            ("log-opt", "max-size=10m"),
            ("log-opt", "max-file=3"),
            ("volume", "/a:/b:ro"),
            ("volumes-from", "other"),
            ("group-add", "audio"),
            ("ipc", "private"),
            ("pid", "host"),
            ("uts", "host"),
            ("userns", "host"),
            ("cgroup-parent", "/phobos"),
            ("runtime", "runc"),
            ("volume-driver", "local"),
            ("device-cgroup-rule", "c 1:3 mr"),
        ])
        .expect("maps");
        let h = hc(&body);
        assert_eq!(h.dns, Some(vec!["10.0.0.2".to_owned()]));
        assert_eq!(h.dns_search, Some(vec!["example.internal".to_owned()]));
        assert_eq!(h.dns_options, Some(vec!["ndots:2".to_owned()]));
        assert_eq!(h.extra_hosts, Some(vec!["db:10.0.0.5".to_owned()]));
        let log = h.log_config.clone().expect("log config");
        assert_eq!(log.typ.as_deref(), Some("json-file"));
        let cfg = log.config.expect("log opts");
        assert_eq!(cfg["max-size"], "10m");
        assert_eq!(cfg["max-file"], "3");
        assert_eq!(h.binds, Some(vec!["/a:/b:ro".to_owned()]));
        assert_eq!(h.volumes_from, Some(vec!["other".to_owned()]));
        assert_eq!(h.group_add, Some(vec!["audio".to_owned()]));
        assert_eq!(h.ipc_mode.as_deref(), Some("private"));
        assert_eq!(h.pid_mode.as_deref(), Some("host"));
        assert_eq!(h.uts_mode.as_deref(), Some("host"));
        assert_eq!(h.userns_mode.as_deref(), Some("host"));
        assert_eq!(h.cgroup_parent.as_deref(), Some("/phobos"));
        assert_eq!(h.runtime.as_deref(), Some("runc"));
        assert_eq!(h.volume_driver.as_deref(), Some("local"));
        assert_eq!(h.device_cgroup_rules, Some(vec!["c 1:3 mr".to_owned()]));
    }

    #[test]
    fn bad_values_name_key_and_value() {
        let cases = [
            ("memory", "lots"),
            ("memory-swappiness", "101"),
            ("oom-score-adj", "2000"),
            ("ulimit", "nofile"),
            ("ulimit", "nofile=10:5"),
            ("device", "relative"),
            ("device", "/dev/a:/dev/b:xyz"),
            ("add-host", "nohost"),
            ("read-only", "maybe"),
            ("env", "NOVALUE"),
            ("sysctl", "=1"),
            ("tmpfs", "relative"),
            ("workdir", "relative"),
            ("cpus", "-1"),
            ("pids-limit", "ten"),
        ];
        for (k, v) in cases {
            match apply(&[(k, v)]) {
                Err(ParameterError::InvalidValue { key, value, .. }) => {
                    assert_eq!((key.as_str(), value.as_str()), (k, v));
                }
                other => panic!("{k}={v}: expected InvalidValue, got {other:?}"),
            }
        }
    }

    #[test]
    fn refused_and_unknown_parameters() {
        for k in [
            "network", "net", "publish", "p", "rm", "restart", "name", "tty",
        ] {
            assert!(
                matches!(apply(&[(k, "x")]), Err(ParameterError::Refused { ref key, .. }) if key == k),
                "{k}"
            );
        }
        assert_eq!(
            apply(&[("no-such-flag", "1")]).unwrap_err(),
            ParameterError::Unsupported {
                key: "no-such-flag".into(),
                value: "1".into()
            }
        );
    }

    #[test]
    fn reserved_labels_are_refused() {
        assert!(matches!(
            apply(&[("label", "org.phobos.managed=false")]),
            Err(ParameterError::InvalidValue { .. })
        ));
    }
}
