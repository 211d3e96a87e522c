//! `phobos --agent SOCKET run`: the options are checked as the local
//! `run` checks them (`run::intent`: the same errors, exit 2), then sent
//! as `LAUNCH_CONTAINER` (`--parent`: `LAUNCH_NESTED_CONTAINER`, or
//! `LAUNCH_CONTAINER` with the parent chain when resources are given, as
//! only it carries them). In the foreground the container's output comes
//! from `ATTACH_CONTAINER_OUTPUT` (its sandbox files, followed until it
//! ended), its end from `WAIT_CONTAINER`, forwarded signals go as
//! `KILL_CONTAINER`, and `--rm` is `REMOVE_CONTAINER`; the exit code is
//! the command's, as without the agent.
//!
//! What the API cannot carry for a launch from here is refused in one
//! line naming the option (exit 2): a terminal or stdin (`-t`, `-i`:
//! ATTACH_CONTAINER_INPUT serves terminals and DEBUG containers only),
//! images, root filesystems, volumes, networks, URIs to fetch, working
//! directory, hardening, isolator choices and flags, DEBUG containers.

use std::io::Write;
use std::path::Path;

use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
use phobos_core::{CommandSpec, ContainerId, Limit, Resources};
use phobos_proto::agent::call::{self, Type};
use phobos_proto::agent::process_io::{self, data};
use phobos_proto::agent::{Call, ProcessIo};
use phobos_proto::mesos;
use prost::Message;

use super::{about, connect, mesos_id, wait_for};
use crate::agent_client::{Client, ClientError};
use crate::cli::RunArgs;
use crate::commands::run::{FORWARDED, intent};
use crate::error::{NeverStarted, usage};

pub fn run(socket: &Path, args: RunArgs) -> anyhow::Result<u8> {
    let (id, launch) = launch_for(&args)?;

    let mut forwarded = SigSet::empty();
    if !args.detach {
        for sig in FORWARDED {
            forwarded.add(sig);
        }
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&forwarded), None)?;
    }
    let mut client = connect(socket)?;
    let reply = client.post(&launch)?;
    match reply.status {
        200 => {}
        202 => {
            return Err(
                anyhow::Error::new(phobos_runtime::RuntimeError::AlreadyExists(id.clone()))
                    .context(NeverStarted),
            );
        }
        status => {
            let err = crate::agent_client::api_error(status, &reply.body);
            // The planner's refusals are bad input (exit 2, nothing
            // made); a launch that failed past them never started (255).
            let launch_failed =
                String::from_utf8_lossy(&reply.body).starts_with("Failed to launch");
            return Err(match status {
                400 if !launch_failed => usage(err.to_string()),
                _ => anyhow::Error::new(err).context(NeverStarted),
            });
        }
    }
    if args.detach {
        outln!("{id}");
        return Ok(0);
    }
    forward_signals(socket, forwarded, &id);
    copy_output(&mut client, &id).map_err(|e| about(&id, e))?;
    let termination = wait_for(&mut client, &id).map_err(|e| about(&id, e))?;
    if let Some(line) = termination.limitation_line() {
        errln!("phobos: container {id} was ended by a limit: {line}");
    }
    if args.rm {
        remove(&mut client, &id).map_err(|e| about(&id, e))?;
    }
    Ok(termination.shell_exit_code().clamp(0, 255) as u8)
}

/// The container's full ID and the launch call for `args` (checked as
/// the local `run` checks them; exit 2 for what the API cannot carry).
pub(crate) fn launch_for(args: &RunArgs) -> anyhow::Result<(ContainerId, Call)> {
    refuse_unserved(args)?;
    let intent = intent(args)?;
    let leaf = intent.id.clone().unwrap_or_else(ContainerId::random);
    let id = match &intent.parent {
        Some(parent) => parent.child(&leaf).map_err(|e| usage(e.to_string()))?,
        None => leaf,
    };
    let command = intent
        .command
        .as_ref()
        .ok_or_else(|| usage("no command given"))?;
    let launch = launch_call(
        &id,
        command,
        &intent.env,
        intent.user.as_deref(),
        &intent.resources,
        &intent.nesting,
        intent.parent.is_some(),
    );
    Ok((id, launch))
}

/// One line for an option the API cannot carry from here (exit 2).
fn refuse_unserved(args: &RunArgs) -> anyhow::Result<()> {
    let d = &args.docker;
    let s = &args.security;
    let f = &args.flags;
    let given = [
        (args.tty, "-t/--tty"),
        (args.interactive, "-i/--interactive"),
        (args.debug, "--debug"),
        (args.isolation.is_some(), "--isolation"),
        (args.hostname.is_some(), "--hostname"),
        (args.launcher.is_some(), "--launcher"),
        (args.container_logger.is_some(), "--container-logger"),
        (args.workdir.is_some(), "--workdir"),
        (args.rootfs.is_some(), "--rootfs"),
        (!args.fetch.is_empty(), "--fetch"),
        (args.disk.is_some(), "--disk"),
        (d.docker_image.is_some(), "--docker-image"),
        (d.image.is_some(), "--image"),
        (!d.publish.is_empty(), "--publish"),
        (!d.network.is_empty(), "--network"),
        (!d.volume.is_empty(), "--volume"),
        (!d.docker_param.is_empty(), "--docker-param"),
        (d.force_pull, "--force-pull"),
        (d.privileged, "--privileged"),
        (!s.cap_add.is_empty(), "--cap-add"),
        (!s.cap_drop.is_empty(), "--cap-drop"),
        (s.no_new_privileges, "--no-new-privileges"),
        (!s.ulimit.is_empty(), "--ulimit"),
        (!s.security_opt.is_empty(), "--security-opt"),
        (!s.device.is_empty(), "--device"),
        (s.shm_size.is_some(), "--shm-size"),
        (f.cgroups_enable_cfs, "--cgroups-enable-cfs"),
        (f.cgroups_limit_swap, "--cgroups-limit-swap"),
        (
            f.enforce_container_disk_quota,
            "--enforce-container-disk-quota",
        ),
        (
            f.container_disk_watch_interval.is_some(),
            "--container-disk-watch-interval",
        ),
    ];
    match given.iter().find(|(g, _)| *g) {
        Some((_, flag)) => Err(usage(format!(
            "--agent: run {flag} is not served through the agent; run without --agent"
        ))),
        None => Ok(()),
    }
}

/// The launch call: the command (argv: `shell: false`, Mesos's `value`
/// and `arguments`), environment, user, requests and limits; a nested
/// container's sharing as `LinuxInfo` says it (the CLI's defaults: cgroups,
/// pid and ipc namespaces of its own).
fn launch_call(
    id: &ContainerId,
    command: &CommandSpec,
    env: &[(String, String)],
    user: Option<&str>,
    resources: &Resources,
    nesting: &phobos_core::Nesting,
    nested: bool,
) -> Call {
    let command = mesos::CommandInfo {
        shell: Some(command.shell),
        value: Some(command.value.clone()),
        arguments: command.arguments.clone(),
        environment: (!env.is_empty()).then(|| mesos::Environment {
            variables: env
                .iter()
                .map(|(name, value)| mesos::environment::Variable {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
        }),
        user: user.map(str::to_owned),
        ..Default::default()
    };
    let container = nested.then(|| mesos::ContainerInfo {
        r#type: mesos::container_info::Type::Mesos as i32,
        linux_info: Some(mesos::LinuxInfo {
            share_cgroups: Some(nesting.share_cgroups),
            share_pid_namespace: Some(nesting.share_pid),
            ipc_mode: nesting
                .share_ipc
                .then_some(mesos::linux_info::IpcMode::ShareParent as i32),
            ..Default::default()
        }),
        ..Default::default()
    });
    let (requests, limits) = mesos_resources(resources);
    if nested && requests.is_empty() && limits.is_empty() {
        return Call {
            r#type: Some(Type::LaunchNestedContainer as i32),
            launch_nested_container: Some(call::LaunchNestedContainer {
                container_id: mesos_id(id),
                command: Some(command),
                container,
            }),
            ..Call::default()
        };
    }
    Call {
        r#type: Some(Type::LaunchContainer as i32),
        launch_container: Some(call::LaunchContainer {
            container_id: mesos_id(id),
            command: Some(command),
            container,
            resources: requests,
            limits,
        }),
        ..Call::default()
    }
}

/// Requests as scalar `Resource`s, limits as Mesos's `limits` map
/// (infinity: no limit).
fn mesos_resources(
    r: &Resources,
) -> (
    Vec<mesos::Resource>,
    std::collections::HashMap<String, mesos::value::Scalar>,
) {
    let scalar = |name: &str, value: f64| mesos::Resource {
        name: name.to_owned(),
        r#type: mesos::value::Type::Scalar as i32,
        scalar: Some(mesos::value::Scalar { value }),
        ..Default::default()
    };
    let mut requests = Vec::new();
    if let Some(cpus) = r.cpus {
        requests.push(scalar("cpus", cpus));
    }
    if let Some(mem) = r.mem {
        requests.push(scalar("mem", mem));
    }
    let value = |l: Limit| match l {
        Limit::Finite(v) => v,
        Limit::Infinite => f64::INFINITY,
    };
    let mut limits = std::collections::HashMap::new();
    if let Some(l) = r.cpus_limit {
        limits.insert("cpus".to_owned(), mesos::value::Scalar { value: value(l) });
    }
    if let Some(l) = r.mem_limit {
        limits.insert("mem".to_owned(), mesos::value::Scalar { value: value(l) });
    }
    if let Some(pids) = r.pids_limit {
        limits.insert(
            "pids".to_owned(),
            mesos::value::Scalar { value: pids as f64 },
        );
    }
    (requests, limits)
}

/// Copies the container's stdout and stderr records here until the
/// stream ends with the container.
fn copy_output(client: &mut Client, id: &ContainerId) -> Result<(), ClientError> {
    let call = Call {
        r#type: Some(Type::AttachContainerOutput as i32),
        attach_container_output: Some(call::AttachContainerOutput {
            container_id: mesos_id(id),
        }),
        ..Call::default()
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    client.stream(&call, |record| {
        let io = ProcessIo::decode(record).map_err(|e| ClientError::Decode(e.to_string()))?;
        if io.r#type() != process_io::Type::Data {
            return Ok(());
        }
        let Some(d) = io.data else { return Ok(()) };
        let kind = d.r#type();
        let bytes = d.data.unwrap_or_default();
        // A closed stdout (a pipe's reader gone) does not stop the wait.
        let _ = match kind {
            data::Type::Stderr => stderr.lock().write_all(&bytes),
            _ => stdout
                .lock()
                .write_all(&bytes)
                .and_then(|()| stdout.lock().flush()),
        };
        Ok(())
    })
}

/// Sends each forwarded signal as `KILL_CONTAINER` from a thread of its
/// own (the only one that does not block them), on its own connection.
fn forward_signals(socket: &Path, forwarded: SigSet, id: &ContainerId) {
    let socket = socket.to_owned();
    let id = id.clone();
    std::thread::spawn(move || {
        while let Ok(sig) = forwarded.wait() {
            let call = Call {
                r#type: Some(Type::KillContainer as i32),
                kill_container: Some(call::KillContainer {
                    container_id: mesos_id(&id),
                    signal: Some(sig as i32),
                }),
                ..Call::default()
            };
            if let Err(e) = Client::connect(&socket).and_then(|mut c| c.call(&call)) {
                errln!("phobos: failed to forward {sig}: {e}");
            }
        }
    });
}

fn remove(client: &mut Client, id: &ContainerId) -> Result<(), ClientError> {
    let call = Call {
        r#type: Some(Type::RemoveContainer as i32),
        remove_container: Some(call::RemoveContainer {
            container_id: mesos_id(id),
        }),
        ..Call::default()
    };
    client.call(&call).map(|_| ())
}
