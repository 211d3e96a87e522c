//! The container calls of `POST /api/v1` (reference §7.1-7.2), each
//! through the door: the same planner and composing containerizer the CLI
//! and the external containerizer use, so the same request gives the same
//! container whatever face it came through.
//!
//! Door operations block (they take file locks, fork, write records), so
//! each runs on the runtime's blocking pool; `WAIT_CONTAINER` holds no
//! thread while it waits (see [`crate::waits`]).

use std::sync::Arc;

use phobos_core::{ContainerId, ContainerState, Operation, Termination};
use phobos_proto::agent::call::{self, Type as CallType};
use phobos_proto::agent::response::{self, Type as ResponseType};
use phobos_proto::agent::{Call, Response};
use phobos_proto::mesos;
use phobos_runtime::{Door, Launched, Planner, RuntimeError};

use crate::error::ApiError;
use crate::server::State;
use crate::translate::{self, Class};

/// What a call answers.
#[derive(Debug)]
pub enum Answer {
    /// 200 with a body.
    Body(Box<Response>),
    /// A status without a body (200, or 202 for a duplicate launch).
    Empty(u16),
    /// A streaming 200: the container's output as `ProcessIO` records.
    Output(crate::attach::Follow),
}

/// Whether a call's answer is a stream (RecordIO, `Message-Accept`).
pub fn streams(call: &Call) -> bool {
    matches!(
        call.r#type(),
        CallType::AttachContainerOutput | CallType::LaunchNestedContainerSession
    )
}

/// Serves one decoded call.
pub async fn serve(state: &Arc<State>, call: Call) -> Result<Answer, ApiError> {
    match call.r#type() {
        CallType::LaunchContainer => {
            let launch = call
                .launch_container
                .ok_or_else(|| missing("launch_container"))?;
            launch_container(state, launch, Class::Default).await
        }
        CallType::WaitContainer => {
            let wait = call
                .wait_container
                .ok_or_else(|| missing("wait_container"))?;
            let id = container_id(&wait.container_id)?;
            let t = wait_container(state, &id).await?;
            Ok(Answer::Body(Box::new(Response {
                r#type: Some(ResponseType::WaitContainer as i32),
                wait_container: Some(wait_body(&t)),
                ..Response::default()
            })))
        }
        CallType::KillContainer => {
            let kill = call
                .kill_container
                .ok_or_else(|| missing("kill_container"))?;
            let id = container_id(&kill.container_id)?;
            kill_container(state, &id, kill.signal.unwrap_or(libc::SIGKILL)).await
        }
        CallType::RemoveContainer => {
            let remove = call
                .remove_container
                .ok_or_else(|| missing("remove_container"))?;
            let id = container_id(&remove.container_id)?;
            remove_container(state, &id).await
        }
        CallType::GetContainers => {
            let get = call.get_containers.unwrap_or_default();
            get_containers(state, get.show_nested(), get.show_standalone()).await
        }
        CallType::LaunchNestedContainer => {
            let launch = call
                .launch_nested_container
                .ok_or_else(|| missing("launch_nested_container"))?;
            nested_id(&launch.container_id)?;
            let launch = call::LaunchContainer {
                container_id: launch.container_id,
                command: launch.command,
                container: launch.container,
                ..call::LaunchContainer::default()
            };
            launch_container(state, launch, Class::Default).await
        }
        CallType::WaitNestedContainer => {
            let wait = call
                .wait_nested_container
                .ok_or_else(|| missing("wait_nested_container"))?;
            let id = nested_id(&wait.container_id)?;
            let t = wait_container(state, &id).await?;
            let w = wait_body(&t);
            Ok(Answer::Body(Box::new(Response {
                r#type: Some(ResponseType::WaitNestedContainer as i32),
                wait_nested_container: Some(response::WaitNestedContainer {
                    exit_status: w.exit_status,
                    state: w.state,
                    reason: w.reason,
                    limitation: w.limitation,
                    message: w.message,
                }),
                ..Response::default()
            })))
        }
        CallType::KillNestedContainer => {
            let kill = call
                .kill_nested_container
                .ok_or_else(|| missing("kill_nested_container"))?;
            let id = nested_id(&kill.container_id)?;
            kill_container(state, &id, kill.signal.unwrap_or(libc::SIGKILL)).await
        }
        CallType::RemoveNestedContainer => {
            let remove = call
                .remove_nested_container
                .ok_or_else(|| missing("remove_nested_container"))?;
            let id = nested_id(&remove.container_id)?;
            remove_container(state, &id).await
        }
        CallType::LaunchNestedContainerSession => {
            let launch = call
                .launch_nested_container_session
                .ok_or_else(|| missing("launch_nested_container_session"))?;
            let id = nested_id(&launch.container_id)?;
            let request = call::LaunchContainer {
                container_id: launch.container_id,
                command: launch.command,
                container: launch.container,
                ..call::LaunchContainer::default()
            };
            match launch_container(state, request, Class::Session).await? {
                Answer::Empty(200) => {}
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "container {id} already exists: a session launches a new one"
                    )));
                }
            }
            match crate::attach::open(state, &id).await {
                Ok(follow) => Ok(Answer::Output(follow.session())),
                Err(e) => {
                    destroy(state, &id).await;
                    Err(e)
                }
            }
        }
        CallType::AttachContainerOutput => {
            let attach = call
                .attach_container_output
                .ok_or_else(|| missing("attach_container_output"))?;
            let id = container_id(&attach.container_id)?;
            Ok(Answer::Output(crate::attach::open(state, &id).await?))
        }
        // Its body is a stream of records, served by `crate::input`.
        CallType::AttachContainerInput => Err(ApiError::unsupported_media(format!(
            "ATTACH_CONTAINER_INPUT is a stream: expecting 'Content-Type: {}' with 'Message-Content-Type'",
            crate::media::RECORDIO
        ))),
        CallType::Unknown if call.r#type.is_none() => {
            Err(ApiError::bad_request("Expecting 'type' to be present"))
        }
        other => Err(ApiError::not_implemented(format!(
            "call {} is not served by phobos agent (only the container calls are)",
            other.as_str_name()
        ))),
    }
}

fn missing(field: &str) -> ApiError {
    ApiError::bad_request(format!("Expecting '{field}' to be present"))
}

/// Most levels of nesting a `ContainerID` may have (the full ID is
/// bounded by `MAX_NESTED_ID_LENGTH` too).
const MAX_DEPTH: usize = 32;

/// A Mesos `ContainerID` (with its `parent` chain) as our full ID
/// `root.child.…` (400 when invalid).
pub fn container_id(id: &mesos::ContainerId) -> Result<ContainerId, ApiError> {
    let mut parts = Vec::new();
    let mut next = Some(id);
    while let Some(id) = next {
        if parts.len() == MAX_DEPTH {
            return Err(ApiError::bad_request(format!(
                "invalid container_id: more than {MAX_DEPTH} levels of nesting"
            )));
        }
        let part = ContainerId::new(id.value.as_str())
            .map_err(|e| ApiError::bad_request(format!("invalid container_id: {e}")))?;
        parts.push(part);
        next = id.parent.as_deref();
    }
    parts.reverse();
    let joined: Vec<&str> = parts.iter().map(ContainerId::as_str).collect();
    ContainerId::parse_path(joined.join("."))
        .map_err(|e| ApiError::bad_request(format!("invalid container_id: {e}")))
}

/// Our full ID as a Mesos `ContainerID` with its `parent` chain.
pub fn mesos_id(id: &ContainerId) -> mesos::ContainerId {
    let mut out: Option<mesos::ContainerId> = None;
    for part in id.as_str().split('.') {
        out = Some(mesos::ContainerId {
            value: part.to_owned(),
            parent: out.map(Box::new),
        });
    }
    out.unwrap_or_default()
}

/// The ID of a `*_NESTED_*` call, which must have a parent.
fn nested_id(id: &mesos::ContainerId) -> Result<ContainerId, ApiError> {
    let full = container_id(id)?;
    if !full.is_nested() {
        return Err(ApiError::bad_request(
            "Expecting 'container_id.parent' to be present",
        ));
    }
    Ok(full)
}

/// Runs `f` with the door on the blocking pool.
async fn blocking<T, F>(state: &Arc<State>, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Door) -> T + Send + 'static,
{
    let door = Arc::clone(&state.door);
    tokio::task::spawn_blocking(move || f(&door))
        .await
        .map_err(|e| ApiError::internal(format!("the operation failed: {e}")))
}

async fn launch_container(
    state: &Arc<State>,
    launch: call::LaunchContainer,
    class: Class,
) -> Result<Answer, ApiError> {
    let id = container_id(&launch.container_id)?;
    let intent = translate::launch_intent(&id, &launch, state.root, class)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    // On this worker thread (its other tasks handed on): a launch is one
    // blocking step, and answering from the thread that did it saves two
    // thread wake-ups per launch.
    let door = Arc::clone(&state.door);
    let launched = tokio::task::block_in_place(move || {
        let host = door.host();
        let plan = Planner::new(door.settings(), &host)
            .plan(intent)
            .map_err(|e| ApiError::bad_request(format!("container {id}: {e}")))?;
        for warning in &plan.warnings {
            tracing::warn!(container = %id, "{warning}");
        }
        match door.launch(&plan.request, None, |_| {}) {
            Ok(launched) => Ok(Some((id, launched))),
            Err(RuntimeError::AlreadyExists(_)) => Ok(None),
            Err(e) => Err(ApiError::bad_request(format!(
                "Failed to launch container {id}: {e}"
            ))),
        }
    });
    // The spare cgroups this launch took (if any) are made again, off
    // its path.
    state.refill.notify_one();
    let launched = launched?;
    let Some((id, launched)) = launched else {
        // Mesos's ALREADY_LAUNCHED: the launch is idempotent.
        return Ok(Answer::Empty(202));
    };
    if let Launched::Process { pidfd, pid, .. } = &launched {
        tracing::info!(pid, "launched");
        // Init is this process's child: its watcher reaps it when it exits,
        // records the end and answers the waits.
        let pidfd = match pidfd {
            Some(fd) => fd.try_clone().ok(),
            None => phobos_runtime::sys::pidfd_open(*pid).ok(),
        };
        state.waits.adopt(&id, launched, pidfd);
    }
    Ok(Answer::Empty(200))
}

async fn wait_container(state: &Arc<State>, id: &ContainerId) -> Result<Termination, ApiError> {
    match state.waits.wait(id).await {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err(unknown(id)),
        Err(e) => Err(ApiError::internal(format!(
            "failed to wait for container {id}: {e}"
        ))),
    }
}

fn unknown(id: &ContainerId) -> ApiError {
    ApiError::not_found(format!("Container {id} cannot be found"))
}

/// The `WaitContainer` response from a termination. As Mesos's
/// containerizer, a state and a message come with a reason (a limitation,
/// a failed launch) or a destroy only: for a command that simply ended the
/// status says it all, and a client such as Mesos's default executor takes
/// an answered state over its own (its TASK_KILLED for a task it killed)
/// and appends an answered message to its own "Command exited …".
pub fn wait_body(t: &Termination) -> response::WaitContainer {
    let said = t.reason.is_some() || t.state == Some(phobos_core::TaskState::Killed);
    let limitation = (!t.limited_resources.is_empty()).then(|| mesos::TaskResourceLimitation {
        resources: t
            .limited_resources
            .iter()
            .map(|name| mesos::Resource {
                name: name.clone(),
                r#type: mesos::value::Type::Scalar as i32,
                ..mesos::Resource::default()
            })
            .collect(),
    });
    response::WaitContainer {
        exit_status: t.status.map(|s| s.raw()),
        state: t
            .state
            .filter(|_| said)
            .map(|s| phobos_runtime::mesos_proto::task_state(s) as i32),
        reason: t
            .reason
            .map(|r| phobos_runtime::mesos_proto::reason(r) as i32),
        limitation,
        message: t.message.clone().filter(|_| said),
    }
}

async fn kill_container(
    state: &Arc<State>,
    id: &ContainerId,
    signal: i32,
) -> Result<Answer, ApiError> {
    if !(1..=64).contains(&signal) {
        return Err(ApiError::bad_request(format!(
            "invalid signal {signal}: expected 1 to 64"
        )));
    }
    let key = id.clone();
    let outcome = blocking(state, move |door| {
        match door.summary(&key)? {
            None => return Ok(None),
            Some(s) if s.state() == ContainerState::Terminated => return Ok(None),
            Some(_) => {}
        }
        door.apply(&key, Operation::Kill { signal })
            .map(|o| o.map(|_| ()))
    })
    .await?;
    match outcome {
        Ok(Some(())) => Ok(Answer::Empty(200)),
        Ok(None) => Err(ApiError::not_found(format!(
            "Container {id} cannot be found (or is already killed)"
        ))),
        // Ended between the look and the signal.
        Err(e) if e.to_string().contains("not running") => Err(ApiError::not_found(format!(
            "Container {id} cannot be found (or is already killed)"
        ))),
        Err(e) => Err(ApiError::internal(format!(
            "Failed to kill container {id}: {e}"
        ))),
    }
}

async fn remove_container(state: &Arc<State>, id: &ContainerId) -> Result<Answer, ApiError> {
    // Its end answered, its resources perhaps still being freed: removed
    // once they are.
    state.waits.released(id).await;
    let key = id.clone();
    let removed = blocking(state, move |door| match door.summary(&key)? {
        None => Ok(None),
        Some(s) if s.state() != ContainerState::Terminated => Ok(Some(false)),
        Some(_) => door.remove_if_terminated(&key).map(Some),
    })
    .await?;
    match removed {
        Ok(None) => Err(unknown(id)),
        Ok(Some(true)) => Ok(Answer::Empty(200)),
        Ok(Some(false)) => Err(ApiError::internal(format!(
            "Failed to remove container {id}: it has not terminated yet"
        ))),
        Err(e) => Err(ApiError::internal(format!(
            "Failed to remove container {id}: {e}"
        ))),
    }
}

/// Every container Phobos holds is standalone in Mesos's terms (no
/// framework's executor): they are listed with `show_standalone`, as
/// Mesos lists standalone containers, and their nested containers with
/// `show_nested` too; an ended one is not (Mesos's `containers()` drops a
/// container once its destroy is done; its end stays for WAIT). Running
/// ones carry their statistics; every one its status (container ID, init
/// pid, addresses, the net_cls classid).
async fn get_containers(
    state: &Arc<State>,
    show_nested: bool,
    show_standalone: bool,
) -> Result<Answer, ApiError> {
    let containers = if show_standalone {
        blocking(state, move |door| -> Result<_, RuntimeError> {
            let list: Vec<_> = door
                .list()?
                .into_iter()
                .filter(|c| show_nested || !c.id().is_nested())
                .filter(|c| c.state() != ContainerState::Terminated)
                .collect();
            let running: Vec<ContainerId> = list
                .iter()
                .filter(|c| c.state() == ContainerState::Running)
                .map(|c| c.id().clone())
                .collect();
            let stats = door.usage_of(&running);
            Ok((list, stats))
        })
        .await?
        .map_err(|e| ApiError::internal(format!("Failed to list containers: {e}")))?
    } else {
        (Vec::new(), Vec::new())
    };
    let (list, stats) = containers;
    let mut stats: std::collections::HashMap<ContainerId, mesos::ResourceStatistics> = stats
        .into_iter()
        .filter_map(|(id, r)| Some((id, r.ok()??)))
        .map(|(id, s)| (id, phobos_runtime::mesos_proto::statistics(&s)))
        .collect();
    let containers = list
        .iter()
        .map(|c| {
            let id = mesos_id(c.id());
            let network_infos = c
                .address()
                .map(|ip| mesos::NetworkInfo {
                    ip_addresses: vec![mesos::network_info::IpAddress {
                        ip_address: Some(ip.to_owned()),
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .into_iter()
                .collect();
            response::get_containers::Container {
                container_id: id.clone(),
                container_status: Some(mesos::ContainerStatus {
                    container_id: Some(id),
                    network_infos,
                    cgroup_info: c.net_cls_classid().map(|classid| mesos::CgroupInfo {
                        net_cls: Some(mesos::cgroup_info::NetCls {
                            classid: Some(classid),
                        }),
                    }),
                    executor_pid: c.pid().and_then(|p| u32::try_from(p).ok()),
                }),
                resource_statistics: stats.remove(c.id()),
                ..Default::default()
            }
        })
        .collect();
    Ok(Answer::Body(Box::new(Response {
        r#type: Some(ResponseType::GetContainers as i32),
        get_containers: Some(response::GetContainers { containers }),
        ..Response::default()
    })))
}

/// Destroys `id` (a session whose client went), logging a failure.
pub async fn destroy(state: &Arc<State>, id: &ContainerId) {
    let key = id.clone();
    let destroyed = blocking(state, move |door| door.apply(&key, Operation::Destroy)).await;
    match destroyed {
        Ok(Ok(_)) => tracing::info!(container = %id, "session ended: destroyed"),
        Ok(Err(e)) => tracing::warn!(container = %id, error = %e, "destroying a session failed"),
        Err(e) => {
            tracing::warn!(container = %id, error = %e.message, "destroying a session failed")
        }
    }
}
