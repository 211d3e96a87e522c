//! Parses the Docker options of `phobos run` (`-p`, `--network`, `-v`,
//! `--docker-param`, `--image docker:///…`) and shows image pulls. A bad
//! value is a usage error (exit 2) naming the option; nothing is created.

use std::io::{IsTerminal, Write};
use std::path::Path;

use phobos_runtime::Volume;
use phobos_runtime::docker::{DockerNetwork, PortMapping, PortProtocol, PortRange, PullProgress};
use phobos_runtime::network::Protocol;

use crate::cli::DockerArgs;
use crate::error::usage;

/// The image to run in a Docker container, if the options ask for one:
/// `--docker-image IMAGE`, or `--image docker:///IMAGE` (the Deimos-era
/// URL). Any other `--image` is the Mesos containerizer's
/// ([`mesos_image`]).
pub fn image(args: &DockerArgs) -> anyhow::Result<Option<String>> {
    if let Some(image) = &args.docker_image {
        if image.is_empty() {
            return Err(usage("--docker-image needs an image name"));
        }
        return Ok(Some(image.clone()));
    }
    match &args.image {
        None => Ok(None),
        Some(url) => match url.strip_prefix("docker:///") {
            Some(image) if !image.is_empty() => Ok(Some(image.to_owned())),
            Some(_) => Err(usage(format!(
                "invalid --image '{url}': docker:/// needs an image name"
            ))),
            None => Ok(None),
        },
    }
}

/// `--image REF` for the Mesos containerizer (its root filesystem comes
/// from the image store, pulled when missing).
pub fn mesos_image(args: &DockerArgs) -> Option<String> {
    args.image
        .as_ref()
        .filter(|i| !i.starts_with("docker:///") && args.docker_image.is_none())
        .cloned()
}

/// Whether any Docker-only option was given (an error without an image).
/// Volumes are not Docker-only for a container with its own root
/// filesystem (`mesos_volumes`); `--network` and `-p` serve both.
pub fn any_docker_only(args: &DockerArgs, mesos_volumes: bool) -> Option<&'static str> {
    if !args.volume.is_empty() && !mesos_volumes {
        Some("--volume")
    } else if !args.docker_param.is_empty() {
        Some("--docker-param")
    } else if args.force_pull {
        Some("--force-pull")
    } else if args.privileged {
        Some("--privileged")
    } else {
        None
    }
}

/// `--network host|bridge|none|NAME` (default host, as Mesos).
pub fn network(text: Option<&str>) -> anyhow::Result<DockerNetwork> {
    Ok(match text {
        None | Some("host") => DockerNetwork::Host,
        Some("bridge") => DockerNetwork::Bridge,
        Some("none") => DockerNetwork::None,
        Some("") => return Err(usage("--network needs a value")),
        Some(name) => DockerNetwork::User(name.to_owned()),
    })
}

/// `-p HOST:CONTAINER[/PROTO]` (one parser for both containerizers).
pub fn port(text: &str) -> anyhow::Result<PortMapping> {
    let p = publish(text)?;
    Ok(PortMapping {
        host_port: p.host_port,
        container_port: p.container_port,
        protocol: match p.protocol {
            Protocol::Tcp => PortProtocol::Tcp,
            Protocol::Udp => PortProtocol::Udp,
            Protocol::Sctp => PortProtocol::Sctp,
        },
    })
}

/// `-p HOST:CONTAINER[/PROTO]` as a Mesos `NetworkInfo.PortMapping`.
pub fn publish(text: &str) -> anyhow::Result<phobos_runtime::PortMapping> {
    text.parse::<phobos_runtime::PortMapping>()
        .map_err(|e| usage(e.to_string()))
}

/// Every host port may be published from the command line (there is no
/// Mesos offer restricting them).
pub fn all_ports() -> Vec<PortRange> {
    vec![PortRange {
        begin: 1,
        end: u16::MAX,
    }]
}

/// `-v HOST:CONTAINER[:ro|:rw]`; the host path must exist.
pub fn volume(text: &str) -> anyhow::Result<Volume> {
    let bad = |why: String| usage(format!("invalid --volume '{text}': {why}"));
    let parts: Vec<&str> = text.split(':').collect();
    let (host, container, read_only) = match parts.as_slice() {
        [h, c] => (*h, *c, false),
        [h, c, "ro"] => (*h, *c, true),
        [h, c, "rw"] => (*h, *c, false),
        [_, _, mode] => return Err(bad(format!("unknown mode '{mode}' (ro or rw)"))),
        _ => return Err(bad("expected HOST:CONTAINER[:ro|:rw]".to_owned())),
    };
    if host.is_empty() || !container.starts_with('/') {
        return Err(bad(
            "the host path must be given and the container path absolute".to_owned(),
        ));
    }
    let host_path = std::path::absolute(Path::new(host))
        .map_err(|e| bad(format!("cannot resolve the host path: {e}")))?;
    if !host_path.exists() {
        return Err(bad(format!(
            "host path {} does not exist",
            host_path.display()
        )));
    }
    Ok(Volume {
        host_path,
        container_path: container.into(),
        read_only,
    })
}

/// `-v HOST:CONTAINER[:ro|:rw]` for a Mesos container with its own root
/// filesystem: a relative HOST is a directory in the sandbox, a relative
/// CONTAINER a path under the sandbox directory; an absolute HOST must
/// exist.
pub fn mesos_volume(text: &str) -> anyhow::Result<Volume> {
    let volume = Volume::parse(text).map_err(|e| usage(e.to_string()))?;
    if let phobos_runtime::VolumeSource::HostPath(path) = volume.source()
        && !path.exists()
    {
        return Err(usage(format!(
            "invalid volume '{text}': host path {} does not exist",
            path.display()
        )));
    }
    Ok(volume)
}

/// `--docker-param KEY=VALUE`.
pub fn parameter(text: &str) -> anyhow::Result<(String, String)> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(usage(format!(
            "invalid --docker-param '{text}': expected KEY=VALUE"
        ))),
    }
}

/// Shows pull progress on stderr: one rewritten line on a terminal, a log
/// line per layer state change otherwise.
pub struct PullDisplay {
    image: String,
    terminal: bool,
    shown: bool,
    last: Option<(Option<String>, String)>,
}

impl PullDisplay {
    pub fn new(image: &str) -> Self {
        Self {
            image: image.to_owned(),
            terminal: std::io::stderr().is_terminal(),
            shown: false,
            last: None,
        }
    }

    pub fn update(&mut self, p: &PullProgress) {
        let layer = p.id.clone().unwrap_or_default();
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let amount = match (p.current, p.total) {
                (Some(c), Some(t)) if t > 0 => format!(" {:>3}%", c.saturating_mul(100) / t),
                _ => String::new(),
            };
            let _ = write!(
                err,
                "\r\x1b[2Kpulling {}: {layer} {}{amount}",
                self.image, p.status
            );
            let _ = err.flush();
            self.shown = true;
            return;
        }
        let key = (p.id.clone(), p.status.clone());
        if self.last.as_ref() != Some(&key) {
            let _ = writeln!(err, "phobos: pulling {}: {layer} {}", self.image, p.status);
            self.last = Some(key);
        }
    }

    /// Ends the progress line (on a terminal).
    pub fn finish(&mut self) {
        if self.terminal && self.shown {
            let _ = writeln!(std::io::stderr());
            self.shown = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_with_protocols_and_reject_nonsense() {
        let p = port("8080:80/udp").expect("port");
        assert_eq!((p.host_port, p.container_port), (8080, 80));
        assert_eq!(p.protocol, PortProtocol::Udp);
        assert_eq!(port("1:2").expect("port").protocol, PortProtocol::Tcp);
        for bad in ["80", "0:80", "99999:80", "a:b", "80:80/icmp"] {
            assert!(port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn volumes_need_an_existing_host_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = format!("{}:/data:ro", dir.path().display());
        let v = volume(&spec).expect("volume");
        assert!(v.read_only);
        assert_eq!(v.container_path, std::path::Path::new("/data"));
        let missing = format!("{}/nope:/data", dir.path().display());
        let err = volume(&missing).unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
        assert!(volume("/x:relative").is_err());
    }

    #[test]
    fn docker_urls_pick_docker_and_other_images_the_mesos_containerizer() {
        let args = DockerArgs {
            image: Some("docker:///busybox:local".into()),
            ..DockerArgs::default()
        };
        assert_eq!(
            image(&args).expect("image").as_deref(),
            Some("busybox:local")
        );
        assert_eq!(mesos_image(&args), None);
        let args = DockerArgs {
            image: Some("busybox".into()),
            ..DockerArgs::default()
        };
        assert_eq!(image(&args).expect("no docker image"), None);
        assert_eq!(mesos_image(&args).as_deref(), Some("busybox"));
        let args = DockerArgs {
            image: Some("docker:///".into()),
            ..DockerArgs::default()
        };
        assert!(image(&args).is_err());
        assert_eq!(
            network(Some("br0")).expect("net"),
            DockerNetwork::User("br0".into())
        );
    }
}
