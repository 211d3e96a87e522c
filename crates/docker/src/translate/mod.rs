//! The pure translation of a [`DockerRunSpec`] into the Engine API's
//! container-create request, following the Mesos Docker containerizer's
//! `docker run` flag table (reference §4.4) — but as Engine API fields rather
//! than CLI flags.
//!
//! | input | Engine API field |
//! | --- | --- |
//! | name | `mesos-<id>` (query parameter `name`) |
//! | cpus request | `HostConfig.CpuShares = max(1024 × cpus, 2)` |
//! | finite cpus limit, or the request with `cgroups_enable_cfs` | `HostConfig.CpuQuota = max(100 ms × cpus, 1 ms)` in µs; the period stays the engine's default (100 ms) |
//! | finite mem limit | `HostConfig.Memory = max(limit, 32 MiB)` |
//! | mem request only | `HostConfig.Memory = max(request, 32 MiB)` |
//! | mem request < limit (or limit unlimited) | `HostConfig.MemoryReservation = max(request, 32 MiB)`, `HostConfig.OomScoreAdj = 1000 − 1000·request/host_memory` |
//! | env | `Env`, plus `MESOS_SANDBOX=<sandbox_directory>` and `MESOS_CONTAINER_NAME=mesos-<id>` (these two always win) |
//! | volumes | `HostConfig.Binds` `host:container:rw|ro` (relative paths under the sandbox) |
//! | sandbox | a bind `HostConfig.Mounts` entry at `sandbox_directory` (the Mounts API takes paths with `:`, which `-v` could not: MESOS-1833) |
//! | network | `HostConfig.NetworkMode` `host` / `bridge` / `none` / `<name>` |
//! | hostname | `Hostname` (an error with the host network) |
//! | port mappings | `HostConfig.PortBindings` + `ExposedPorts`; bridge/user networks only, host ports within the offered ranges |
//! | privileged | `HostConfig.Privileged` |
//! | (always) | `HostConfig.Init = true`: the engine's init (`docker-init`, tini) is PID 1, so the command is an ordinary process that signals such as SIGPIPE and SIGINT reach with their default action, and zombies are reaped; `init=false` in parameters turns it off |
//! | `shell = true` | `Entrypoint ["/bin/sh"]`, `Cmd ["-c", <value>]` |
//! | `shell = false` | `Cmd = [value] + arguments` when any, image ENTRYPOINT kept |
//! | workdir | `WorkingDir` only when set: the image's WORKDIR is kept otherwise |
//! | parameters | mapped field by field by [`crate::params`], applied last (so they win, as `--key=value` appended to `docker run` did) |
//! | labels | the spec's labels plus `org.phobos.container-id=<id>` and `org.phobos.managed=true` |
//! | engine log bound (the `logrotate` container logger) | `HostConfig.LogConfig` `json-file` with `max-size` = (stdout + stderr limits) × `max_files` bytes and `max-file` = 2, only when no `log-driver`/`log-opt` parameter is given (a user's choice is kept untouched) |
//!
//! stdin is closed, there is no TTY; stdout/stderr are read back through the
//! logs endpoint by [`crate::engine`].

mod names;
mod resources;

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType, PortBinding, PortMap,
};

use crate::params::{ParameterError, apply_parameters};
use crate::spec::{DockerRunSpec, PortRange};

pub use names::{
    LABEL_CONTAINER_ID, LABEL_MANAGED, NAME_PREFIX, container_name, is_valid_container_id,
    parse_container_name,
};
pub use resources::{
    MIN_MEMORY_BYTES, ResourceFields, cpu_quota_us, cpu_shares, oom_score_adj, resource_fields,
};

/// Why a spec cannot be turned into a container-create request.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TranslateError {
    /// The container id cannot be part of a Docker name.
    #[error(
        "invalid container id {id:?}: must be 1-200 characters of [A-Za-z0-9_-] (no '.', which separates the agent id in Mesos names)"
    )]
    InvalidContainerId {
        /// The offending id.
        id: String,
    },
    /// The image reference is empty.
    #[error("no image given for container {id}")]
    EmptyImage {
        /// The container id.
        id: String,
    },
    /// `shell = true` without a command value.
    #[error("shell command requested but no command value given")]
    ShellWithoutValue,
    /// A hostname was requested together with the host network.
    #[error("cannot set hostname {hostname:?} with the host network")]
    HostnameWithHostNetwork {
        /// The requested hostname.
        hostname: String,
    },
    /// Port mappings on a network that cannot publish ports.
    #[error("port mappings are only supported for bridge and user networks, not {network:?}")]
    PortMappingsNeedBridge {
        /// The network mode.
        network: String,
    },
    /// A mapped host port outside the task's `ports` resources.
    #[error("host port {port} is not within the offered port ranges [{ranges}]")]
    PortNotOffered {
        /// The host port.
        port: u16,
        /// The offered ranges, e.g. `31000-31005, 32000-32000`.
        ranges: String,
    },
    /// A negative or not-a-number cpus value.
    #[error("invalid cpus {which}: {value}")]
    InvalidCpus {
        /// `request` or `limit`.
        which: &'static str,
        /// The value.
        value: f64,
    },
    /// A request larger than its limit.
    #[error("mem request {request} bytes exceeds the mem limit {limit} bytes")]
    MemRequestAboveLimit {
        /// The request.
        request: u64,
        /// The limit.
        limit: u64,
    },
    /// A label the translation sets itself was given by the caller.
    #[error("label {key:?} is reserved for phobos")]
    ReservedLabel {
        /// The label key.
        key: String,
    },
    /// An environment variable name that Docker cannot carry.
    #[error("invalid environment variable name {name:?}")]
    InvalidEnvName {
        /// The name.
        name: String,
    },
    /// A `DockerInfo.parameters` entry that cannot be mapped.
    #[error(transparent)]
    Parameter(#[from] ParameterError),
}

/// The container-create request: the name (query parameter) and the body.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateRequest {
    /// `mesos-<id>`.
    pub name: String,
    /// The `POST /containers/create` body.
    pub body: ContainerCreateBody,
}

fn format_ranges(ranges: &[PortRange]) -> String {
    ranges
        .iter()
        .map(|r| format!("{}-{}", r.begin, r.end))
        .collect::<Vec<_>>()
        .join(", ")
}

fn under(base: &str, path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{}/{}", base.trim_end_matches('/'), path)
    }
}

/// Translate a spec into the container-create request (§4.4).
///
/// Pure: `total_memory` (the host's memory in bytes, for the OOM score
/// adjustment) is the only fact about the host it needs.
pub fn create_request(
    spec: &DockerRunSpec,
    total_memory: u64,
) -> Result<CreateRequest, TranslateError> {
    let id = &spec.container_id;
    if !is_valid_container_id(id) {
        return Err(TranslateError::InvalidContainerId { id: id.clone() });
    }
    if spec.image.trim().is_empty() {
        return Err(TranslateError::EmptyImage { id: id.clone() });
    }
    let name = container_name(id);

    // Command (§4.4 rows shell=true / shell=false).
    let (entrypoint, cmd) = if spec.command.shell {
        let value = spec
            .command
            .value
            .clone()
            .ok_or(TranslateError::ShellWithoutValue)?;
        (
            Some(vec!["/bin/sh".to_owned()]),
            Some(vec!["-c".to_owned(), value]),
        )
    } else {
        let argv: Vec<String> = spec
            .command
            .value
            .iter()
            .chain(spec.command.arguments.iter())
            .cloned()
            .collect();
        (None, (!argv.is_empty()).then_some(argv))
    };

    // Hostname and network.
    if let Some(hostname) = &spec.hostname
        && matches!(spec.network, crate::spec::DockerNetwork::Host)
    {
        return Err(TranslateError::HostnameWithHostNetwork {
            hostname: hostname.clone(),
        });
    }

    // Ports.
    let mut port_bindings: Option<PortMap> = None;
    let mut exposed: Option<Vec<String>> = None;
    if !spec.port_mappings.is_empty() {
        if !spec.network.supports_port_mappings() {
            return Err(TranslateError::PortMappingsNeedBridge {
                network: spec.network.mode().to_owned(),
            });
        }
        let mut map = PortMap::new();
        let mut keys = Vec::new();
        for m in &spec.port_mappings {
            if !spec.offered_ports.iter().any(|r| r.contains(m.host_port)) {
                return Err(TranslateError::PortNotOffered {
                    port: m.host_port,
                    ranges: format_ranges(&spec.offered_ports),
                });
            }
            let key = format!("{}/{}", m.container_port, m.protocol.as_str());
            map.entry(key.clone())
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: None,
                    host_port: Some(m.host_port.to_string()),
                });
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        port_bindings = Some(map);
        exposed = Some(keys);
    }

    // Environment: the spec's, then the two Mesos variables, which always win.
    let mut env: Vec<String> = Vec::with_capacity(spec.env.len() + 2);
    for (k, v) in &spec.env {
        if k.is_empty() || k.contains('=') || k.contains('\0') {
            return Err(TranslateError::InvalidEnvName { name: k.clone() });
        }
        if k == "MESOS_SANDBOX" || k == "MESOS_CONTAINER_NAME" {
            continue;
        }
        env.push(format!("{k}={v}"));
    }
    env.push(format!("MESOS_SANDBOX={}", spec.sandbox_directory));
    env.push(format!("MESOS_CONTAINER_NAME={name}"));

    // Volumes: binds; relative host paths live under the sandbox, relative
    // container paths under the mapped sandbox.
    let sandbox_host = spec.sandbox.to_string_lossy().into_owned();
    let binds: Vec<String> = spec
        .volumes
        .iter()
        .map(|v| {
            format!(
                "{}:{}:{}",
                under(&sandbox_host, &v.host_path),
                under(&spec.sandbox_directory, &v.container_path),
                if v.read_only { "ro" } else { "rw" }
            )
        })
        .collect();
    let sandbox_mount = Mount {
        target: Some(spec.sandbox_directory.clone()),
        source: Some(sandbox_host),
        typ: Some(MountType::BIND),
        read_only: Some(false),
        ..Default::default()
    };

    // Labels.
    let mut labels: HashMap<String, String> = HashMap::new();
    for (k, v) in &spec.labels {
        if k == LABEL_CONTAINER_ID || k == LABEL_MANAGED {
            return Err(TranslateError::ReservedLabel { key: k.clone() });
        }
        labels.insert(k.clone(), v.clone());
    }
    labels.insert(LABEL_CONTAINER_ID.to_owned(), id.clone());
    labels.insert(LABEL_MANAGED.to_owned(), "true".to_owned());

    let res = resource_fields(&spec.resources, total_memory)?;

    let host_config = HostConfig {
        cpu_shares: res.cpu_shares,
        cpu_quota: res.cpu_quota,
        memory: res.memory,
        memory_reservation: res.memory_reservation,
        oom_score_adj: res.oom_score_adj,
        binds: (!binds.is_empty()).then_some(binds),
        mounts: Some(vec![sandbox_mount]),
        network_mode: Some(spec.network.mode().to_owned()),
        port_bindings,
        privileged: spec.privileged.then_some(true),
        // The command as PID 1 of its namespace ignores every signal it has
        // no handler for (SIGPIPE from a closed pipe, SIGINT): an init
        // forwards them to it instead, as `docker run --init` does.
        init: Some(true),
        ..Default::default()
    };

    let mut body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        hostname: spec.hostname.clone(),
        env: Some(env),
        cmd,
        entrypoint,
        working_dir: spec.workdir.clone(),
        labels: Some(labels),
        exposed_ports: exposed,
        attach_stdin: Some(false),
        attach_stdout: Some(false),
        attach_stderr: Some(false),
        open_stdin: Some(false),
        tty: Some(false),
        host_config: Some(host_config),
        ..Default::default()
    };

    apply_parameters(&mut body, &spec.parameters)?;

    // Bounded by default: the engine's json-file driver grows without end
    // unless told otherwise. A log driver or option the user gave wins.
    if let (Some(bound), Some(hc)) = (spec.engine_log, body.host_config.as_mut())
        && hc.log_config.is_none()
    {
        hc.log_config = Some(HostConfigLogConfig {
            typ: Some("json-file".to_owned()),
            config: Some(HashMap::from([
                ("max-size".to_owned(), bound.max_size.to_string()),
                ("max-file".to_owned(), bound.max_files.to_string()),
            ])),
        });
    }

    // A parameter may have changed the network or hostname: re-check.
    if let (Some(hostname), Some(hc)) = (&body.hostname, &body.host_config)
        && hc.network_mode.as_deref() == Some("host")
    {
        return Err(TranslateError::HostnameWithHostNetwork {
            hostname: hostname.clone(),
        });
    }

    Ok(CreateRequest { name, body })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::spec::{
        DockerCommand, DockerNetwork, DockerResources, MemoryLimit, PortMapping, PortProtocol,
        Volume,
    };

    const GIB: u64 = 1024 * 1024 * 1024;
    const MIB: u64 = 1024 * 1024;

    fn spec() -> DockerRunSpec {
        DockerRunSpec::new(
            "6b1d5b3a-2b5c-4bb0-9d3a-0f9f7a6c1e21",
            "busybox:local",
            DockerCommand::shell("echo hello"),
            "/var/lib/phobos/containers/c1",
        )
    }

    fn host(req: &CreateRequest) -> &HostConfig {
        req.body
            .host_config
            .as_ref()
            .expect("host config is always set")
    }

    #[test]
    fn name_and_labels() {
        let mut s = spec();
        s.labels.insert("team".into(), "infra".into());
        let req = create_request(&s, GIB).expect("translates");
        assert_eq!(req.name, "mesos-6b1d5b3a-2b5c-4bb0-9d3a-0f9f7a6c1e21");
        let labels = req.body.labels.expect("labels");
        assert_eq!(
            labels.get(LABEL_CONTAINER_ID).map(String::as_str),
            Some("6b1d5b3a-2b5c-4bb0-9d3a-0f9f7a6c1e21")
        );
        assert_eq!(labels.get(LABEL_MANAGED).map(String::as_str), Some("true"));
        assert_eq!(labels.get("team").map(String::as_str), Some("infra"));
    }

    #[test]
    fn reserved_label_is_an_error() {
        let mut s = spec();
        s.labels.insert(LABEL_MANAGED.into(), "false".into());
        assert_eq!(
            create_request(&s, GIB).unwrap_err(),
            TranslateError::ReservedLabel {
                key: LABEL_MANAGED.into()
            }
        );
    }

    #[test]
    fn invalid_ids_are_refused() {
        for id in ["", "a.b", "a/b", "a b", "ü"] {
            let mut s = spec();
            s.container_id = id.into();
            assert_eq!(
                create_request(&s, GIB).unwrap_err(),
                TranslateError::InvalidContainerId { id: id.into() },
                "{id:?}"
            );
        }
    }

    #[test]
    fn shell_command_uses_bin_sh_entrypoint() {
        let req = create_request(&spec(), GIB).expect("translates");
        assert_eq!(req.body.entrypoint, Some(vec!["/bin/sh".to_owned()]));
        assert_eq!(
            req.body.cmd,
            Some(vec!["-c".to_owned(), "echo hello".to_owned()])
        );
    }

    #[test]
    fn shell_ignores_arguments_and_needs_a_value() {
        let mut s = spec();
        s.command.arguments = vec!["ignored".into()];
        let req = create_request(&s, GIB).expect("translates");
        assert_eq!(
            req.body.cmd,
            Some(vec!["-c".to_owned(), "echo hello".to_owned()])
        );
        s.command.value = None;
        assert_eq!(
            create_request(&s, GIB).unwrap_err(),
            TranslateError::ShellWithoutValue
        );
    }

    #[test]
    fn argv_command_replaces_cmd_and_keeps_entrypoint() {
        let mut s = spec();
        s.command = DockerCommand {
            shell: false,
            value: Some("echo".into()),
            arguments: vec!["a".into(), "b c".into()],
        };
        let req = create_request(&s, GIB).expect("translates");
        assert_eq!(req.body.entrypoint, None);
        assert_eq!(
            req.body.cmd,
            Some(vec!["echo".to_owned(), "a".to_owned(), "b c".to_owned()])
        );
        s.command = DockerCommand::argv(["x", "y"]);
        let req = create_request(&s, GIB).expect("translates");
        assert_eq!(req.body.cmd, Some(vec!["x".to_owned(), "y".to_owned()]));
    }

    #[test]
    fn no_command_keeps_image_cmd_entrypoint_and_workdir() {
        let mut s = spec();
        s.command = DockerCommand::image_default();
        let req = create_request(&s, GIB).expect("translates");
        assert_eq!(req.body.entrypoint, None);
        assert_eq!(req.body.cmd, None);
        assert_eq!(req.body.working_dir, None);
        s.workdir = Some("/data".into());
        let req = create_request(&s, GIB).expect("translates");
        assert_eq!(req.body.working_dir.as_deref(), Some("/data"));
    }

    #[test]
    fn mesos_env_is_appended_and_wins() {
        let mut s = spec();
        s.env = vec![
            ("A".into(), "1".into()),
            ("MESOS_SANDBOX".into(), "/elsewhere".into()),
            ("B".into(), "x=y".into()),
        ];
        let req = create_request(&s, GIB).expect("translates");
        assert_eq!(
            req.body.env,
            Some(vec![
                "A=1".to_owned(),
                "B=x=y".to_owned(),
                "MESOS_SANDBOX=/mnt/mesos/sandbox".to_owned(),
                "MESOS_CONTAINER_NAME=mesos-6b1d5b3a-2b5c-4bb0-9d3a-0f9f7a6c1e21".to_owned(),
            ])
        );
        s.env = vec![("A=B".into(), "1".into())];
        assert_eq!(
            create_request(&s, GIB).unwrap_err(),
            TranslateError::InvalidEnvName { name: "A=B".into() }
        );
    }

    #[test]
    fn sandbox_is_bind_mounted_at_sandbox_directory() {
        let mut s = spec();
        s.sandbox = "/work/slaves/a:b/runs/c1".into();
        s.sandbox_directory = "/sandbox".into();
        let req = create_request(&s, GIB).expect("translates");
        let mounts = host(&req).mounts.clone().expect("mounts");
        assert_eq!(mounts.len(), 1);
        assert_eq!(
            mounts[0].source.as_deref(),
            Some("/work/slaves/a:b/runs/c1")
        );
        assert_eq!(mounts[0].target.as_deref(), Some("/sandbox"));
        assert_eq!(mounts[0].typ, Some(MountType::BIND));
        assert_eq!(mounts[0].read_only, Some(false));
    }

    #[test]
    fn volumes_resolve_relative_paths_against_the_sandbox() {
        let mut s = spec();
        s.volumes = vec![
            Volume {
                host_path: "/etc/ssl".into(),
                container_path: "/etc/ssl".into(),
                read_only: true,
            },
            Volume {
                host_path: "data".into(),
                container_path: "data".into(),
                read_only: false,
            },
        ];
        let req = create_request(&s, GIB).expect("translates");
        assert_eq!(
            host(&req).binds,
            Some(vec![
                "/etc/ssl:/etc/ssl:ro".to_owned(),
                "/var/lib/phobos/containers/c1/data:/mnt/mesos/sandbox/data:rw".to_owned(),
            ])
        );
    }

    #[test]
    fn networks_map_to_network_mode() {
        for (net, mode) in [
            (DockerNetwork::Host, "host"),
            (DockerNetwork::Bridge, "bridge"),
            (DockerNetwork::None, "none"),
            (DockerNetwork::User("overlay-a".into()), "overlay-a"),
        ] {
            let mut s = spec();
            s.network = net;
            let req = create_request(&s, GIB).expect("translates");
            assert_eq!(host(&req).network_mode.as_deref(), Some(mode));
        }
    }

    #[test]
    fn hostname_with_host_network_is_an_error() {
        let mut s = spec();
        s.hostname = Some("web".into());
        assert_eq!(
            create_request(&s, GIB).unwrap_err(),
            TranslateError::HostnameWithHostNetwork {
                hostname: "web".into()
            }
        );
        s.network = DockerNetwork::Bridge;
        let req = create_request(&s, GIB).expect("translates");
        assert_eq!(req.body.hostname.as_deref(), Some("web"));
    }

    #[test]
    fn hostname_parameter_with_host_network_is_an_error_too() {
        let mut s = spec();
        s.parameters = vec![("hostname".into(), "web".into())];
        assert!(matches!(
            create_request(&s, GIB),
            Err(TranslateError::HostnameWithHostNetwork { .. })
        ));
    }

    fn port(host_port: u16, container_port: u16, protocol: PortProtocol) -> PortMapping {
        PortMapping {
            host_port,
            container_port,
            protocol,
        }
    }

    #[test]
    fn ports_within_offered_ranges_are_published() {
        let mut s = spec();
        s.network = DockerNetwork::Bridge;
        s.offered_ports = vec![PortRange {
            begin: 31000,
            end: 31005,
        }];
        s.port_mappings = vec![
            port(31000, 8080, PortProtocol::Tcp),
            port(31005, 53, PortProtocol::Udp),
        ];
        let req = create_request(&s, GIB).expect("translates");
        let bindings = host(&req).port_bindings.clone().expect("bindings");
        assert_eq!(bindings.len(), 2);
        assert_eq!(
            bindings["8080/tcp"],
            Some(vec![PortBinding {
                host_ip: None,
                host_port: Some("31000".into())
            }])
        );
        assert_eq!(
            bindings["53/udp"],
            Some(vec![PortBinding {
                host_ip: None,
                host_port: Some("31005".into())
            }])
        );
        assert_eq!(
            req.body.exposed_ports,
            Some(vec!["8080/tcp".to_owned(), "53/udp".to_owned()])
        );
    }

    #[test]
    fn port_outside_offered_ranges_is_an_error_naming_both() {
        let mut s = spec();
        s.network = DockerNetwork::Bridge;
        s.offered_ports = vec![
            PortRange {
                begin: 31000,
                end: 31005,
            },
            PortRange {
                begin: 32000,
                end: 32000,
            },
        ];
        s.port_mappings = vec![port(31006, 80, PortProtocol::Tcp)];
        let err = create_request(&s, GIB).unwrap_err();
        assert_eq!(
            err.to_string(),
            "host port 31006 is not within the offered port ranges [31000-31005, 32000-32000]"
        );
    }

    #[test]
    fn ports_on_host_or_none_network_are_an_error() {
        for net in [DockerNetwork::Host, DockerNetwork::None] {
            let mut s = spec();
            s.network = net.clone();
            s.offered_ports = vec![PortRange {
                begin: 1,
                end: 65535,
            }];
            s.port_mappings = vec![port(8080, 80, PortProtocol::Tcp)];
            assert_eq!(
                create_request(&s, GIB).unwrap_err(),
                TranslateError::PortMappingsNeedBridge {
                    network: net.mode().into()
                }
            );
        }
    }

    #[test]
    fn privileged_is_passed_only_when_set() {
        let mut s = spec();
        assert_eq!(
            host(&create_request(&s, GIB).expect("translates")).privileged,
            None
        );
        s.privileged = true;
        assert_eq!(
            host(&create_request(&s, GIB).expect("translates")).privileged,
            Some(true)
        );
    }

    #[test]
    fn containers_get_the_engines_init_unless_a_parameter_says_otherwise() {
        let mut s = spec();
        assert_eq!(
            host(&create_request(&s, GIB).expect("translates")).init,
            Some(true)
        );
        s.parameters = vec![("init".into(), "false".into())];
        assert_eq!(
            host(&create_request(&s, GIB).expect("translates")).init,
            Some(false)
        );
    }

    #[test]
    fn the_engine_log_is_bounded_unless_the_user_chose_a_driver_or_options() {
        let mut s = spec();
        assert_eq!(
            host(&create_request(&s, GIB).expect("translates")).log_config,
            None,
            "the sandbox logger leaves the engine's default"
        );
        s.engine_log = Some(crate::spec::EngineLogBound::of(&phobos_core::LogRotation {
            max_stdout_size: 1 << 20,
            max_stderr_size: 64 << 10,
            max_files: 4,
        }));
        let log = host(&create_request(&s, GIB).expect("translates"))
            .log_config
            .clone()
            .expect("a log config");
        assert_eq!(log.typ.as_deref(), Some("json-file"));
        let opts = log.config.expect("options");
        assert_eq!(opts["max-size"], (4 * ((1 << 20) + (64 << 10))).to_string());
        assert_eq!(opts["max-file"], "2");
        for (key, value) in [("log-driver", "none"), ("log-opt", "max-size=1g")] {
            s.parameters = vec![(key.into(), value.into())];
            let log = host(&create_request(&s, GIB).expect("translates"))
                .log_config
                .clone()
                .expect("the user's log config");
            match key {
                "log-driver" => {
                    assert_eq!(log.typ.as_deref(), Some("none"));
                    assert_eq!(log.config, None);
                }
                _ => {
                    assert_eq!(log.typ, None, "the engine's default driver");
                    assert_eq!(
                        log.config,
                        Some(HashMap::from([("max-size".into(), "1g".into())]))
                    );
                }
            }
        }
    }

    #[test]
    fn parameters_are_applied_after_the_spec() {
        let mut s = spec();
        s.workdir = Some("/spec".into());
        s.resources.cpus_request = Some(1.0);
        s.parameters = vec![
            ("workdir".into(), "/param".into()),
            ("cpu-shares".into(), "10".into()),
        ];
        let req = create_request(&s, GIB).expect("translates");
        assert_eq!(req.body.working_dir.as_deref(), Some("/param"));
        assert_eq!(host(&req).cpu_shares, Some(10));
    }

    #[test]
    fn unsupported_parameter_is_named_in_the_error() {
        let mut s = spec();
        s.parameters = vec![("gpus".into(), "all".into())];
        let err = create_request(&s, GIB).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported docker parameter \"gpus\" (value \"all\")"
        );
    }

    #[test]
    fn full_spec_snapshot() {
        let mut s = spec();
        s.command = DockerCommand {
            shell: false,
            value: Some("/app/server".into()),
            arguments: vec!["--port".into(), "8080".into()],
        };
        s.env = vec![("FOO".into(), "bar".into())];
        s.hostname = Some("web-1".into());
        s.resources = DockerResources {
            cpus_request: Some(0.5),
            cpus_limit: Some(2.0),
            mem_request: Some(128 * MIB),
            mem_limit: Some(MemoryLimit::Bytes(256 * MIB)),
            cgroups_enable_cfs: true,
        };
        s.network = DockerNetwork::Bridge;
        s.offered_ports = vec![PortRange {
            begin: 31000,
            end: 31001,
        }];
        s.port_mappings = vec![port(31000, 8080, PortProtocol::Tcp)];
        s.volumes = vec![Volume {
            host_path: "/srv/config".into(),
            container_path: "/config".into(),
            read_only: true,
        }];
        s.parameters = vec![
            ("label".into(), "tier=frontend".into()),
            ("ulimit".into(), "nofile=1024:2048".into()),
            ("cap-drop".into(), "NET_RAW".into()),
            ("log-opt".into(), "max-size=10m".into()),
        ];
        s.labels = BTreeMap::from([("team".to_owned(), "infra".to_owned())]);
        let req = create_request(&s, 4 * GIB).expect("translates");
        let value = serde_json::to_value(&req.body).expect("serializes");
        insta::with_settings!({ sort_maps => true }, {
            assert_eq!(req.name, "mesos-6b1d5b3a-2b5c-4bb0-9d3a-0f9f7a6c1e21");
            insta::assert_json_snapshot!("full_spec_create_body", value);
        });
    }
}
