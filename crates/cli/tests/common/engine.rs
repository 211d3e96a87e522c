//! The Docker engine the Docker tests use: the shared one on the default
//! socket, with the `busybox:local` image (scripts/docker-test-setup.sh).

use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};

pub const SOCKET: &str = "/var/run/docker.sock";
pub const IMAGE: &str = "busybox:local";

/// Whether we are root and an engine with [`IMAGE`] answers; prints the
/// skip line otherwise.
pub fn engine_or_skip(test: &str) -> bool {
    if !super::is_root() {
        println!("skipping {test}: needs root (the docker engine socket)");
        return false;
    }
    if UnixStream::connect(SOCKET).is_err() {
        println!("skipping {test}: no docker engine answers on {SOCKET}");
        return false;
    }
    let present = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !present {
        println!("skipping {test}: image {IMAGE} missing (run scripts/docker-test-setup.sh)");
    }
    present
}

/// A container ID of a test's own: `PREFIX-<uuid>`.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// The arguments of a Docker launch: `run [-d] --id ID --docker-image
/// IMAGE EXTRA… [-- COMMAND…]` (without a command, the image's own).
pub fn run_args<'a>(
    detach: bool,
    id: &'a str,
    extra: &[&'a str],
    command: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec!["run"];
    if detach {
        args.push("-d");
    }
    args.extend_from_slice(&["--id", id, "--docker-image", IMAGE]);
    args.extend_from_slice(extra);
    if !command.is_empty() {
        args.push("--");
        args.extend_from_slice(command);
    }
    args
}

/// `docker inspect --format FORMAT mesos-<id>`, trimmed: `None` when there
/// is no such container.
pub fn inspect(id: &str, format: &str) -> Option<String> {
    let out = Command::new("docker")
        .args(["inspect", "--format", format, &format!("mesos-{id}")])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The engine's view of `mesos-<id>`: `None` when there is no such container.
pub fn docker_state(id: &str) -> Option<String> {
    inspect(id, "{{.State.Status}}")
}

/// The engine's containers named `mesos-<id>`, whatever their state.
pub fn engine_containers(id: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("name=^/mesos-{id}$"),
            "--format",
            "{{.Names}}",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}
