//! Tests against a real Docker engine (reference §9.5, adapted).
//!
//! Run `scripts/docker-test-setup.sh` first: it starts dockerd when needed and
//! builds `busybox:local` (CMD prints `phobos-default-cmd` and the working
//! directory; WORKDIR `/srv/phobos`) and `busybox:local-entrypoint`
//! (ENTRYPOINT `echo phobos-entrypoint`, CMD `default-arg`). A test prints
//! `skipping <test>: <reason>` and returns only when no engine answers on the
//! socket (`PHOBOS_DOCKER_SOCKET`, default `/var/run/docker.sock`); a missing
//! image is a failure, not a skip.
//!
//! Every container gets a fresh UUID id and the label `org.phobos.test=true`,
//! and a [`Cleanup`] guard force-removes it even when the test fails.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::CreateContainerOptionsBuilder;
use phobos_cgroups::{Cgroup, Controller, Hierarchies, ProcCgroups, Version};
use phobos_docker::engine::DEFAULT_SOCKET;
use phobos_docker::translate::container_name;
use phobos_docker::{
    DockerCommand, DockerEngine, DockerNetwork, DockerResources, DockerRunSpec, EngineError,
    ExitStatus, MemoryLimit, PortMapping, PortProtocol, PortRange, TranslateError,
};

const IMAGE: &str = "busybox:local";
const IMAGE_ENTRYPOINT: &str = "busybox:local-entrypoint";
const MIB: u64 = 1024 * 1024;
/// The most a test waits for a container to reach a state (the machine may
/// be loaded); every wait returns once its condition holds.
const PATIENCE: Duration = Duration::from_secs(120);

/// Waits until the container's shell catches SIGTERM (it has run `trap …
/// TERM`; `SigCgt` in /proc). Before that a SIGTERM ends the shell (or,
/// as PID 1 of its pid namespace, is ignored) instead of running the trap.
/// The shell is the container's first process or, with the engine's init,
/// that init's child.
async fn wait_until_the_shell_catches_sigterm(engine: &DockerEngine, name: &str) {
    let init = engine.pid(name).await.expect("pid").expect("running");
    let term = 1u64 << (libc::SIGTERM - 1);
    let shell_catches = |pid: u32| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |f: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(f))
                .map(str::trim)
        };
        field("Name:") == Some("sh")
            && field("SigCgt:")
                .and_then(|m| u64::from_str_radix(m, 16).ok())
                .is_some_and(|mask| mask & term != 0)
    };
    let children = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|c| c.parse::<u32>().ok())
            .collect::<Vec<_>>()
    };
    let deadline = std::time::Instant::now() + PATIENCE;
    while !std::iter::once(init)
        .chain(children(init))
        .any(shell_catches)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{name}: the shell never installed its trap"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn socket() -> PathBuf {
    std::env::var_os("PHOBOS_DOCKER_SOCKET")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
}

/// Connect, or print why the test is skipped.
async fn engine_or_skip(test: &str) -> Option<DockerEngine> {
    match DockerEngine::connect(socket()).await {
        Ok(engine) => {
            for image in [IMAGE, IMAGE_ENTRYPOINT] {
                assert!(
                    engine.image_present(image).await.expect("image inspect"),
                    "image {image} is missing: run scripts/docker-test-setup.sh"
                );
            }
            Some(engine)
        }
        Err(e @ (EngineError::SocketMissing { .. } | EngineError::NotAnswering { .. })) => {
            println!("skipping {test}: {e}");
            None
        }
        Err(e) => panic!("unexpected connect error: {e}"),
    }
}

/// Force-removes the named containers when dropped (also on panic).
struct Cleanup {
    names: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let names = std::mem::take(&mut self.names);
        // Drop cannot await and may run inside a runtime: use a thread with its own.
        let handle = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(engine) = DockerEngine::connect(socket()).await {
                    for name in names {
                        if let Err(e) = engine.remove(&name, true).await {
                            eprintln!("cleanup of {name} failed: {e}");
                        }
                    }
                }
            });
        });
        let _ = handle.join();
    }
}

struct TestContainer {
    spec: DockerRunSpec,
    name: String,
    // Field order: the guard drops before the sandbox directory.
    _cleanup: Cleanup,
    sandbox: tempfile::TempDir,
}

fn test_container(image: &str, command: DockerCommand) -> TestContainer {
    let id = uuid::Uuid::new_v4().to_string();
    let sandbox = tempfile::tempdir().expect("sandbox tempdir");
    let mut spec = DockerRunSpec::new(id.clone(), image, command, sandbox.path());
    spec.network = DockerNetwork::None;
    spec.labels
        .insert("org.phobos.test".to_owned(), "true".to_owned());
    let name = container_name(&id);
    TestContainer {
        spec,
        name: name.clone(),
        _cleanup: Cleanup { names: vec![name] },
        sandbox,
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Launch, follow logs, wait; returns the status, stdout and stderr.
async fn run_to_completion(
    engine: &DockerEngine,
    c: &TestContainer,
) -> (ExitStatus, String, String) {
    let launched = engine.launch(&c.spec, |_| {}).await.expect("launch");
    assert_eq!(launched.name, c.name);
    let logs = engine
        .follow_logs(&c.name, c.sandbox.path())
        .await
        .expect("follow logs");
    let status = engine.wait(&c.name).await.expect("wait");
    logs.await.expect("log task").expect("log follow");
    (
        status,
        read(&c.sandbox.path().join("stdout")),
        read(&c.sandbox.path().join("stderr")),
    )
}

async fn assert_absent(engine: &DockerEngine, name: &str) {
    match engine.inspect(name).await {
        Err(EngineError::NotFound { .. }) => {}
        other => panic!("container {name} should not exist, inspect gave {other:?}"),
    }
}

#[tokio::test]
async fn privileged_docker_launch_echo_logs_land_in_sandbox() {
    let Some(engine) = engine_or_skip("privileged_docker_launch_echo_logs_land_in_sandbox").await
    else {
        return;
    };
    let c = test_container(
        IMAGE,
        DockerCommand::shell(
            "echo out; echo err >&2; echo \"$MESOS_SANDBOX $MESOS_CONTAINER_NAME\"; echo inner > \"$MESOS_SANDBOX/inner\"",
        ),
    );
    let (status, stdout, stderr) = run_to_completion(&engine, &c).await;
    assert_eq!(status.wait_status, 0);
    assert_eq!(stdout, format!("out\n/mnt/mesos/sandbox {}\n", c.name));
    assert_eq!(stderr, "err\n");
    assert_eq!(read(&c.sandbox.path().join("inner")), "inner\n");
}

#[tokio::test]
async fn privileged_docker_exit_code_becomes_wait_status() {
    let Some(engine) = engine_or_skip("privileged_docker_exit_code_becomes_wait_status").await
    else {
        return;
    };
    let c = test_container(IMAGE, DockerCommand::shell("exit 3"));
    let (status, _, _) = run_to_completion(&engine, &c).await;
    assert_eq!(status.exit_code, 3);
    assert_eq!(status.wait_status, 3 << 8);
    assert!(!status.oom_killed);
}

#[tokio::test]
async fn privileged_docker_destroy_with_grace_kills_when_term_is_ignored() {
    let Some(engine) =
        engine_or_skip("privileged_docker_destroy_with_grace_kills_when_term_is_ignored").await
    else {
        return;
    };
    // PID 1 in its pid namespace ignores SIGTERM without a handler.
    let c = test_container(IMAGE, DockerCommand::shell("trap '' TERM; sleep 600"));
    engine.launch(&c.spec, |_| {}).await.expect("launch");
    let outcome = engine
        .stop(&c.name, Duration::from_millis(500))
        .await
        .expect("stop");
    assert!(outcome.killed, "{outcome:?}");
    assert!(!outcome.already_exited);
    assert_eq!(outcome.status.exit_code, 137);
    assert_eq!(outcome.status.wait_status, 137 << 8);
    assert_eq!(engine.pid(&c.name).await.expect("pid"), None);
}

#[tokio::test]
async fn privileged_docker_destroy_with_grace_lets_a_handler_exit() {
    let Some(engine) =
        engine_or_skip("privileged_docker_destroy_with_grace_lets_a_handler_exit").await
    else {
        return;
    };
    let c = test_container(
        IMAGE,
        DockerCommand::shell("trap 'exit 0' TERM; while true; do sleep 0.1; done"),
    );
    engine.launch(&c.spec, |_| {}).await.expect("launch");
    wait_until_the_shell_catches_sigterm(&engine, &c.name).await;
    let outcome = engine.stop(&c.name, PATIENCE).await.expect("stop");
    assert!(!outcome.killed, "{outcome:?}");
    assert_eq!(outcome.status.wait_status, 0);
    // Stopping again reports the earlier exit.
    let again = engine
        .stop(&c.name, Duration::from_secs(1))
        .await
        .expect("stop");
    assert!(again.already_exited);
    assert!(!again.killed);
}

#[tokio::test]
async fn privileged_docker_wait_after_reconnect() {
    let Some(engine) = engine_or_skip("privileged_docker_wait_after_reconnect").await else {
        return;
    };
    // It ends when told (a fixed sleep could end it before the launch
    // reads its pid on a loaded machine).
    let c = test_container(
        IMAGE,
        DockerCommand::shell("while [ ! -e \"$MESOS_SANDBOX/go\" ]; do sleep 0.05; done; exit 7"),
    );
    let launched = engine.launch(&c.spec, |_| {}).await.expect("launch");
    assert!(launched.pid.is_some());
    drop(engine);
    // A fresh connection, as a new `phobos wait` process would make.
    let engine = DockerEngine::connect(socket()).await.expect("reconnect");
    std::fs::write(c.sandbox.path().join("go"), "").unwrap();
    let status = engine.wait(&c.name).await.expect("wait");
    assert_eq!(status.wait_status, 7 << 8);
    // And once more after the exit: returns at once with the same status.
    let engine = DockerEngine::connect(socket()).await.expect("reconnect");
    assert_eq!(
        engine.wait(&c.name).await.expect("wait").wait_status,
        7 << 8
    );
}

#[tokio::test]
async fn privileged_docker_wait_unknown_container_is_not_found() {
    let Some(engine) =
        engine_or_skip("privileged_docker_wait_unknown_container_is_not_found").await
    else {
        return;
    };
    let name = container_name(&uuid::Uuid::new_v4().to_string());
    assert!(matches!(
        engine.wait(&name).await,
        Err(EngineError::NotFound { .. })
    ));
    assert!(!engine.remove(&name, true).await.expect("remove"));
}

#[tokio::test]
async fn privileged_docker_list_by_label_and_orphans() {
    let Some(engine) = engine_or_skip("privileged_docker_list_by_label_and_orphans").await else {
        return;
    };
    let a = test_container(IMAGE, DockerCommand::shell("sleep 600"));
    let b = test_container(IMAGE, DockerCommand::shell("sleep 600"));
    engine.launch(&a.spec, |_| {}).await.expect("launch a");
    engine.launch(&b.spec, |_| {}).await.expect("launch b");

    // A Mesos-named container without Phobos labels, and one whose id part is invalid.
    let foreign_id = uuid::Uuid::new_v4().to_string();
    let foreign = container_name(&foreign_id);
    let invalid = format!("mesos-agent.{}.bad", uuid::Uuid::new_v4());
    let _cleanup = Cleanup {
        names: vec![foreign.clone(), invalid.clone()],
    };
    for name in [&foreign, &invalid] {
        let body = ContainerCreateBody {
            image: Some(IMAGE.to_owned()),
            cmd: Some(vec!["true".to_owned()]),
            labels: Some([("org.phobos.test".to_owned(), "true".to_owned())].into()),
            ..Default::default()
        };
        engine
            .client()
            .create_container(
                Some(CreateContainerOptionsBuilder::new().name(name).build()),
                body,
            )
            .await
            .expect("create foreign container");
    }

    let listed = engine.list().await.expect("list");
    let find = |id: &str| listed.iter().find(|l| l.container_id == id);
    let la = find(&a.spec.container_id).expect("a listed");
    assert!(la.managed && la.running);
    assert_eq!(la.name, a.name);
    assert!(find(&b.spec.container_id).is_some_and(|l| l.managed && l.running));
    let lf = find(&foreign_id).expect("foreign mesos-* container listed by name");
    assert!(!lf.managed && !lf.running);
    assert!(
        !listed.iter().any(|l| l.name == invalid),
        "invalid name must be skipped"
    );

    let known: HashSet<String> = [a.spec.container_id.clone()].into();
    let orphans = engine.orphans(&known).await.expect("orphans");
    assert!(
        orphans
            .iter()
            .any(|o| o.container_id == b.spec.container_id)
    );
    assert!(orphans.iter().any(|o| o.container_id == foreign_id));
    assert!(
        !orphans
            .iter()
            .any(|o| o.container_id == a.spec.container_id)
    );
}

#[tokio::test]
async fn privileged_docker_default_cmd_override_and_args() {
    let Some(engine) = engine_or_skip("privileged_docker_default_cmd_override_and_args").await
    else {
        return;
    };
    // No command: the image's CMD runs in the image's WORKDIR.
    let c = test_container(IMAGE, DockerCommand::image_default());
    let (status, stdout, _) = run_to_completion(&engine, &c).await;
    assert_eq!(status.wait_status, 0);
    assert_eq!(stdout, "phobos-default-cmd\n/srv/phobos\n");

    // shell=true overrides ENTRYPOINT and CMD; WORKDIR is still the image's.
    let c = test_container(IMAGE, DockerCommand::shell("echo override; pwd"));
    let (_, stdout, _) = run_to_completion(&engine, &c).await;
    assert_eq!(stdout, "override\n/srv/phobos\n");

    // A workdir in the spec wins over the image's.
    let mut c = test_container(IMAGE, DockerCommand::shell("pwd"));
    c.spec.workdir = Some("/tmp".to_owned());
    let (_, stdout, _) = run_to_completion(&engine, &c).await;
    assert_eq!(stdout, "/tmp\n");

    // shell=false: value + arguments replace CMD, the ENTRYPOINT is kept.
    let c = test_container(
        IMAGE_ENTRYPOINT,
        DockerCommand {
            shell: false,
            value: Some("x".to_owned()),
            arguments: vec!["y z".to_owned()],
        },
    );
    let (_, stdout, _) = run_to_completion(&engine, &c).await;
    assert_eq!(stdout, "phobos-entrypoint x y z\n");

    // No command with an ENTRYPOINT image: ENTRYPOINT + CMD.
    let c = test_container(IMAGE_ENTRYPOINT, DockerCommand::image_default());
    let (_, stdout, _) = run_to_completion(&engine, &c).await;
    assert_eq!(stdout, "phobos-entrypoint default-arg\n");

    // shell=true on an ENTRYPOINT image: /bin/sh -c replaces it.
    let c = test_container(IMAGE_ENTRYPOINT, DockerCommand::shell("echo shell"));
    let (_, stdout, _) = run_to_completion(&engine, &c).await;
    assert_eq!(stdout, "shell\n");
}

#[tokio::test]
async fn privileged_docker_missing_image_fails_at_once_and_leaves_nothing() {
    let Some(engine) =
        engine_or_skip("privileged_docker_missing_image_fails_at_once_and_leaves_nothing").await
    else {
        return;
    };
    let missing = format!("phobos-missing-{}:none", uuid::Uuid::new_v4());
    let c = test_container(&missing, DockerCommand::shell("true"));
    let err = engine.launch(&c.spec, |_| {}).await.unwrap_err();
    match &err {
        EngineError::Pull { image, message } => {
            assert_eq!(image, &missing);
            assert!(!message.is_empty(), "engine message expected");
        }
        other => panic!("expected a pull error, got {other}"),
    }
    assert_absent(&engine, &c.name).await;
}

#[tokio::test]
async fn privileged_docker_bad_port_creates_nothing() {
    let Some(engine) = engine_or_skip("privileged_docker_bad_port_creates_nothing").await else {
        return;
    };
    let mut c = test_container(IMAGE, DockerCommand::shell("true"));
    c.spec.network = DockerNetwork::Bridge;
    c.spec.offered_ports = vec![PortRange {
        begin: 31000,
        end: 31001,
    }];
    c.spec.port_mappings = vec![PortMapping {
        host_port: 31002,
        container_port: 80,
        protocol: PortProtocol::Tcp,
    }];
    let err = engine.launch(&c.spec, |_| {}).await.unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Translate(TranslateError::PortNotOffered { port: 31002, .. })
        ),
        "{err}"
    );
    assert_absent(&engine, &c.name).await;
}

#[tokio::test]
async fn privileged_docker_failed_start_removes_the_container() {
    let Some(engine) = engine_or_skip("privileged_docker_failed_start_removes_the_container").await
    else {
        return;
    };
    let mut c = test_container(IMAGE, DockerCommand::argv(["/no/such/binary"]));
    // Without the engine's init, which would start and then fail to run
    // the command (exit 127), the start itself fails.
    c.spec.parameters = vec![("init".into(), "false".into())];
    let err = engine.launch(&c.spec, |_| {}).await.unwrap_err();
    assert!(matches!(err, EngineError::Start { .. }), "{err}");
    assert_absent(&engine, &c.name).await;
}

#[tokio::test]
async fn privileged_docker_usage_shows_cpu_and_memory() {
    let Some(engine) = engine_or_skip("privileged_docker_usage_shows_cpu_and_memory").await else {
        return;
    };
    // Hold ~4 MB in the shell, then spin.
    let mut c = test_container(
        IMAGE,
        DockerCommand::shell("x=$(head -c 4000000 /dev/zero | tr '\\0' a); while :; do :; done"),
    );
    c.spec.resources = DockerResources {
        cpus_request: Some(0.5),
        cpus_limit: Some(1.0),
        mem_request: Some(64 * MIB),
        mem_limit: Some(MemoryLimit::Bytes(128 * MIB)),
        cgroups_enable_cfs: false,
    };
    engine.launch(&c.spec, |_| {}).await.expect("launch");
    let mut usage = engine.usage(&c.name).await.expect("usage");
    let deadline = std::time::Instant::now() + PATIENCE;
    while std::time::Instant::now() < deadline {
        if usage.cpus_user_time_secs + usage.cpus_system_time_secs > 0.0 && usage.mem_rss_bytes > 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        usage = engine.usage(&c.name).await.expect("usage");
    }
    println!("usage of a spinning container: {usage:?}");
    assert!(
        usage.cpus_user_time_secs + usage.cpus_system_time_secs > 0.0,
        "{usage:?}"
    );
    assert!(usage.mem_rss_bytes > 0, "{usage:?}");
    assert_eq!(usage.cpus_soft_limit, Some(0.5));
    assert_eq!(usage.cpus_limit, Some(1.0));
    assert_eq!(usage.mem_limit_bytes, Some(128 * MIB));
    assert_eq!(usage.mem_soft_limit_bytes, Some(64 * MIB));
    assert!(usage.cpu_cgroup_version.is_some() && usage.mem_cgroup_version.is_some());
    let stopped = engine.stop(&c.name, Duration::ZERO).await.expect("stop");
    assert!(stopped.killed);
    assert!(matches!(
        engine.usage(&c.name).await,
        Err(EngineError::NotRunning { .. })
    ));
}

#[tokio::test]
async fn privileged_docker_update_changes_shares_and_memory_live() {
    let Some(engine) =
        engine_or_skip("privileged_docker_update_changes_shares_and_memory_live").await
    else {
        return;
    };
    let mut c = test_container(IMAGE, DockerCommand::shell("sleep 600"));
    c.spec.resources = DockerResources {
        cpus_request: Some(1.0),
        mem_request: Some(64 * MIB),
        ..Default::default()
    };
    engine.launch(&c.spec, |_| {}).await.expect("launch");
    let hc = engine
        .inspect(&c.name)
        .await
        .expect("inspect")
        .host_config
        .expect("host config");
    assert_eq!(hc.cpu_shares, Some(1024));
    assert_eq!(hc.memory, Some((64 * MIB) as i64));

    engine
        .update(
            &c.name,
            &DockerResources {
                cpus_request: Some(2.0),
                cpus_limit: Some(1.5),
                mem_request: Some(128 * MIB),
                mem_limit: Some(MemoryLimit::Bytes(256 * MIB)),
                cgroups_enable_cfs: false,
            },
            true,
        )
        .await
        .expect("update");
    let hc = engine
        .inspect(&c.name)
        .await
        .expect("inspect")
        .host_config
        .expect("host config");
    assert_eq!(hc.cpu_shares, Some(2048));
    assert_eq!(hc.cpu_quota, Some(150_000));
    assert_eq!(hc.memory, Some((256 * MIB) as i64));
    assert_eq!(hc.memory_reservation, Some((128 * MIB) as i64));
    // The kernel sees it too.
    let pid = engine.pid(&c.name).await.expect("pid").expect("running");
    let cg = process_cgroup(pid, Controller::Memory);
    let limit = match cg.version() {
        Version::V1 => read(&cg.path().join("memory.limit_in_bytes")),
        Version::V2 => read(&cg.path().join("memory.max")),
    };
    assert_eq!(limit.trim(), (256 * MIB).to_string());

    // The hard limit is only raised, unless forced.
    let lower = DockerResources {
        mem_request: Some(64 * MIB),
        mem_limit: Some(MemoryLimit::Bytes(128 * MIB)),
        ..Default::default()
    };
    let memory = |hc: Option<bollard::models::HostConfig>| hc.and_then(|hc| hc.memory);
    engine.update(&c.name, &lower, true).await.expect("update");
    let hc = engine.inspect(&c.name).await.expect("inspect").host_config;
    assert_eq!(memory(hc), Some((256 * MIB) as i64));
    engine
        .update(&c.name, &lower, false)
        .await
        .expect("forced update");
    let hc = engine.inspect(&c.name).await.expect("inspect").host_config;
    assert_eq!(memory(hc), Some((128 * MIB) as i64));

    // An infinite cpu limit removes the quota.
    engine
        .update(
            &c.name,
            &DockerResources {
                cpus_limit: Some(f64::INFINITY),
                ..Default::default()
            },
            true,
        )
        .await
        .expect("update");
    let hc = engine
        .inspect(&c.name)
        .await
        .expect("inspect")
        .host_config
        .expect("host config");
    assert!(hc.cpu_quota.is_none_or(|q| q <= 0), "{:?}", hc.cpu_quota);
}

/// The cgroup of `controller` that process `pid` is in.
fn process_cgroup(pid: u32, controller: Controller) -> Cgroup {
    let hierarchies = Hierarchies::detect().expect("cgroup hierarchies");
    let procs = ProcCgroups::read(Path::new("/proc"), pid).expect("/proc/<pid>/cgroup");
    hierarchies
        .process_cgroup(&procs, controller)
        .unwrap_or_else(|| panic!("no {controller} cgroup for pid {pid}"))
        .cgroup
}

#[tokio::test]
async fn privileged_docker_cfs_quota_is_set() {
    let Some(engine) = engine_or_skip("privileged_docker_cfs_quota_is_set").await else {
        return;
    };
    let mut c = test_container(IMAGE, DockerCommand::shell("sleep 600"));
    c.spec.resources = DockerResources {
        cpus_request: Some(0.5),
        cgroups_enable_cfs: true,
        ..Default::default()
    };
    engine.launch(&c.spec, |_| {}).await.expect("launch");
    let hc = engine
        .inspect(&c.name)
        .await
        .expect("inspect")
        .host_config
        .expect("host config");
    assert_eq!(hc.cpu_quota, Some(50_000));
    assert_eq!(hc.cpu_shares, Some(512));
    let pid = engine.pid(&c.name).await.expect("pid").expect("running");
    let cg = process_cgroup(pid, Controller::Cpu);
    match cg.version() {
        Version::V1 => {
            assert_eq!(read(&cg.path().join("cpu.cfs_quota_us")).trim(), "50000");
            assert_eq!(read(&cg.path().join("cpu.cfs_period_us")).trim(), "100000");
            assert_eq!(read(&cg.path().join("cpu.shares")).trim(), "512");
        }
        Version::V2 => {
            assert_eq!(read(&cg.path().join("cpu.max")).trim(), "50000 100000");
        }
    }
}
