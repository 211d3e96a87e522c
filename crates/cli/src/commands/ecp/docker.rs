//! The Docker part of an ECP launch: `ContainerInfo.DockerInfo` (network,
//! port mappings within the task's offered `ports`, privileged, parameters,
//! force_pull_image, the task's kill policy) and the container's volumes, as
//! the Docker part of a launch intent, and the command task's executor.
//!
//! What runs where (Deimos §7):
//!
//! - a task with its own executor (no task command): the executor's command
//!   runs in the container;
//! - a command task (a task command plus the agent's command executor): the
//!   task's command runs in the container (the image's ENTRYPOINT/CMD when
//!   it is empty), and the command executor runs on the host as
//!   `$MESOS_LIBEXEC_DIRECTORY/mesos-executor --override phobos … observe ID`,
//!   so it registers with the agent, reports TASK_RUNNING, and then the
//!   container's end (or destroys it on killTask). Its output goes to the
//!   sandbox's `observer.out` and `observer.err`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;
use phobos_core::{ContainerId, Operation};
use phobos_proto::containerizer::Launch;
use phobos_proto::mesos;
use phobos_proto::mesos::container_info::docker_info;
use phobos_runtime::docker::{DockerLaunch, DockerNetwork, PortMapping, PortProtocol, PortRange};
use phobos_runtime::{Door, LaunchIntent, Volume};

use crate::cli::Global;
use crate::context;
use crate::error::usage;

/// Adds the Docker part of `request` (image `image`) to `intent`; for a
/// command task the task's command runs in the container, and the
/// command executor to start on the host is returned.
pub fn intent(
    request: &Launch,
    mut intent: LaunchIntent,
    image: String,
) -> anyhow::Result<(LaunchIntent, Option<PathBuf>)> {
    let id = intent
        .id
        .clone()
        .map(|id| id.to_string())
        .unwrap_or_default();
    let mut info =
        launch_info(request, image).map_err(|e| usage(format!("container {id}: {e}")))?;
    let task_command = request
        .task_info
        .as_ref()
        .and_then(|t| t.command.as_ref())
        .filter(|_| request.executor_info.is_some());
    let executor = match task_command {
        Some(command) => {
            let executor = command_executor()
                .ok_or_else(|| usage(format!(
                    "container {id}: a Docker command task needs MESOS_LIBEXEC_DIRECTORY (where mesos-executor is)"
                )))?;
            // None: the image's ENTRYPOINT and CMD run.
            intent.command = phobos_runtime::mesos_proto::docker_command_spec(command);
            // The container holds the task only: it is given the task's
            // resources; the executor's share is the command executor's
            // on the host (docs/mesos.md).
            let task = request.task_info.iter().flat_map(|t| &t.resources);
            intent.resources = super::translate::from_mesos(task);
            if let Some(environment) = &command.environment {
                intent.env.extend(
                    environment
                        .variables
                        .iter()
                        .map(|v| (v.name.clone(), v.value.clone())),
                );
            }
            Some(executor)
        }
        None => None,
    };
    intent.volumes = info
        .volumes
        .drain(..)
        .map(|v| Volume {
            host_path: v.host_path.into(),
            container_path: v.container_path.into(),
            read_only: v.read_only,
        })
        .collect();
    intent.docker = Some(info);
    Ok((intent, executor))
}

/// Starts the command executor of a Docker command task on the host; on
/// failure the container is destroyed (without its executor the agent
/// would never hear of the task).
pub fn start_executor(
    global: &Global,
    door: &Door,
    executor: &Path,
    id: &ContainerId,
    sandbox: &Path,
) -> anyhow::Result<()> {
    if let Err(e) = spawn_observer(global, executor, id, sandbox) {
        let _ = door.apply(id, Operation::Destroy);
        return Err(e.context(format!(
            "container {id}: failed to start the command executor {}",
            executor.display()
        )));
    }
    tracing::info!(executor = %executor.display(), "command executor started on the host");
    Ok(())
}

/// `$MESOS_LIBEXEC_DIRECTORY/mesos-executor`.
fn command_executor() -> Option<PathBuf> {
    let dir = std::env::var_os("MESOS_LIBEXEC_DIRECTORY").filter(|d| !d.is_empty())?;
    Some(PathBuf::from(dir).join("mesos-executor"))
}

/// Starts the command executor with `--override phobos … observe ID`, in
/// the sandbox, in its own process group, without `LIBPROCESS_PORT` and
/// `LIBPROCESS_IP` (Deimos saw bind failures with `LIBPROCESS_PORT=0`).
fn spawn_observer(
    global: &Global,
    executor: &Path,
    id: &ContainerId,
    sandbox: &Path,
) -> anyhow::Result<()> {
    let phobos = context::phobos_command(global)?;
    // The sandbox is mounted into the container: its `stdout` may be a
    // symlink the command planted, which must not be followed.
    let output = |name: &str| {
        phobos_core::SafeDir::open_trusted(sandbox)
            .and_then(|dir| dir.write_file(name, 0o644))
            .and_then(|file| {
                file.set_len(0)
                    .map(|()| file)
                    .map_err(|source| phobos_core::SafeFsError::Io {
                        op: "truncate",
                        path: sandbox.join(name),
                        source,
                    })
            })
            .with_context(|| format!("cannot create {}", sandbox.join(name).display()))
    };
    Command::new(executor)
        .arg("--override")
        .arg(phobos.get_program())
        .args(phobos.get_args())
        .args(["observe", id.as_str()])
        .current_dir(sandbox)
        .env_remove("LIBPROCESS_PORT")
        .env_remove("LIBPROCESS_IP")
        // `phobos observe` acts on the runtime directory itself.
        .env_remove(crate::cli::AGENT_ENV)
        .stdin(Stdio::null())
        .stdout(output("observer.out")?)
        .stderr(output("observer.err")?)
        .process_group(0)
        .spawn()?;
    Ok(())
}

/// The Docker launch for `image`, or one line saying what cannot be mapped.
pub fn launch_info(launch: &Launch, image: String) -> Result<DockerLaunch, String> {
    // The agent appends our calls' log lines to the sandbox's stderr too.
    let mut out = DockerLaunch {
        image,
        append_logs: true,
        ..DockerLaunch::default()
    };
    out.offered_ports = offered_ports(launch);
    out.stop_grace = launch
        .task_info
        .as_ref()
        .and_then(|t| t.kill_policy.as_ref())
        .and_then(|k| k.grace_period.as_ref())
        .map(|g| std::time::Duration::from_nanos(u64::try_from(g.nanoseconds).unwrap_or(0)));
    let Some((info, _)) = super::translate::container(launch) else {
        return Ok(out);
    };
    for v in &info.volumes {
        let Some(host_path) = v.host_path.clone().filter(|p| !p.is_empty()) else {
            return Err(format!(
                "volume {:?} has no host_path; only host-path volumes are supported",
                v.container_path
            ));
        };
        out.volumes.push(phobos_runtime::docker::Volume {
            host_path,
            container_path: v.container_path.clone(),
            read_only: v.mode() == mesos::volume::Mode::Ro,
        });
    }
    let Some(docker) = &info.docker else {
        return Ok(out);
    };
    out.network = match docker.network() {
        docker_info::Network::Host => DockerNetwork::Host,
        docker_info::Network::Bridge => DockerNetwork::Bridge,
        docker_info::Network::None => DockerNetwork::None,
        docker_info::Network::User => {
            let name = info
                .network_infos
                .iter()
                .find_map(|n| n.name.clone().filter(|n| !n.is_empty()))
                .ok_or("network USER needs a NetworkInfo with a name")?;
            DockerNetwork::User(name)
        }
    };
    for m in &docker.port_mappings {
        let port = |p: u32, which: &str| {
            u16::try_from(p)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("invalid {which} port {p}"))
        };
        let protocol = match m.protocol.as_deref().unwrap_or("tcp") {
            "" | "tcp" => PortProtocol::Tcp,
            "udp" => PortProtocol::Udp,
            "sctp" => PortProtocol::Sctp,
            other => return Err(format!("unknown port mapping protocol {other:?}")),
        };
        out.port_mappings.push(PortMapping {
            host_port: port(m.host_port, "host")?,
            container_port: port(m.container_port, "container")?,
            protocol,
        });
    }
    out.privileged = docker.privileged.unwrap_or(false);
    out.force_pull = docker.force_pull_image.unwrap_or(false);
    out.parameters = docker
        .parameters
        .iter()
        .map(|p| (p.key.clone(), p.value.clone()))
        .collect();
    Ok(out)
}

/// The `ports` ranges of the task's and the executor's resources.
fn offered_ports(launch: &Launch) -> Vec<PortRange> {
    let task = launch.task_info.iter().flat_map(|t| &t.resources);
    let executor = launch.executor_info.iter().flat_map(|e| &e.resources);
    task.chain(executor)
        .filter(|r| r.name == "ports")
        .filter_map(|r| r.ranges.as_ref())
        .flat_map(|r| &r.range)
        .filter_map(|r| {
            Some(PortRange {
                begin: u16::try_from(r.begin).ok()?,
                end: u16::try_from(r.end.min(u64::from(u16::MAX))).ok()?,
            })
        })
        .collect()
}
