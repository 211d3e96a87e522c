//! The Docker part of an ECP launch: `ContainerInfo.DockerInfo` (network,
//! port mappings within the task's offered `ports`, privileged, parameters,
//! force_pull_image) and the container's volumes, as a [`DockerLaunch`].
//!
//! The command that runs in the container is the Launch's (the executor's,
//! else the task's), as `plan.config.command` says; Deimos's trick of
//! running a command task's command in the container and the executor on
//! the host is not done.

use phobos_docker::{DockerLaunch, DockerNetwork, PortMapping, PortProtocol, PortRange, Volume};
use phobos_proto::containerizer::Launch;
use phobos_proto::mesos;
use phobos_proto::mesos::container_info::docker_info;

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
        out.volumes.push(Volume {
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
