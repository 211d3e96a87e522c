//! The Docker containerizer behind the ECP: launch, usage, output, kill
//! policy and command tasks on the shared engine (`common::engine`).

use super::common::engine::engine_or_skip;
use super::*;

/// A Docker `ContainerInfo` running busybox:local.
fn busybox() -> mesos::ContainerInfo {
    mesos::ContainerInfo {
        r#type: mesos::container_info::Type::Docker as i32,
        docker: Some(mesos::container_info::DockerInfo {
            image: "busybox:local".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// [`launch_msg`]'s launch of `command` with its executor in busybox:local.
fn docker_executor_launch(id: &str, sandbox: &Path, command: &str) -> Launch {
    let mut launch: Launch = read_message(&mut &launch_msg(id, sandbox, command)[..]).unwrap();
    launch.executor_info.as_mut().unwrap().container = Some(busybox());
    launch
}

/// Task `t1` running `command` in busybox:local.
fn docker_task(command: &str) -> mesos::TaskInfo {
    mesos::TaskInfo {
        name: "task".into(),
        task_id: mesos::TaskId { value: "t1".into() },
        slave_id: mesos::SlaveId { value: "s1".into() },
        command: Some(CommandInfo {
            value: Some(command.into()),
            ..Default::default()
        }),
        container: Some(busybox()),
        ..Default::default()
    }
}

#[test]
fn privileged_docker_launch_usage_destroy_wait_through_ecp() {
    if !engine_or_skip("privileged_docker_launch_usage_destroy_wait_through_ecp") {
        return;
    }
    let agent = Agent::new();
    let id = unique_id();
    let sandbox = agent.sandbox(&id);
    let launch = docker_executor_launch(&id, &sandbox, "echo $GREETING; exec sleep 300");
    agent.ok("launch", &encode_frame(&launch).unwrap(), Some(&sandbox));
    let name = format!("mesos-{id}");
    let running = Command::new("docker")
        .args(["inspect", "--format", "{{.State.Running}}", &name])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&running.stdout).trim(), "true");
    assert_eq!(agent.containers(), vec![id.clone()]);

    let out = agent.ok("usage", &usage_msg(&id), Some(&sandbox));
    let stats: mesos::ResourceStatistics = read_message(&mut &out.stdout[..]).unwrap();
    assert!(stats.cpus_user_time_secs.is_some(), "{stats:?}");
    assert_eq!(stats.cpus_soft_limit, Some(0.5), "{stats:?}");
    assert_eq!(stats.mem_limit_bytes, Some(64 << 20), "{stats:?}");
    assert_eq!(stats.cpus_limit, Some(0.5), "{stats:?}");

    agent.ok("destroy", &destroy_msg(&id), Some(&sandbox));
    let out = agent.ok("wait", &wait_msg(&id), Some(&sandbox));
    let t: Termination = read_message(&mut &out.stdout[..]).unwrap();
    assert_eq!(t.status, Some(137 << 8), "{t:?}");
    assert!(agent.containers().is_empty());
    let gone = Command::new("docker")
        .args(["inspect", &name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!gone.success(), "the container is removed");
    // The task's output reached the agent's sandbox.
    let stdout = fs::read_to_string(sandbox.join("stdout")).unwrap();
    assert!(stdout.contains("hello from CommandInfo"), "{stdout}");
}

#[test]
fn privileged_docker_output_is_appended_to_the_agents_sandbox_files() {
    if !engine_or_skip("privileged_docker_output_is_appended_to_the_agents_sandbox_files") {
        return;
    }
    let agent = Agent::new();
    let id = unique_id();
    let sandbox = agent.sandbox(&id);
    // What the agent already wrote (our launch's log lines, its own).
    fs::write(sandbox.join("stderr"), "agent line\n").unwrap();
    let launch = docker_executor_launch(&id, &sandbox, "echo out; echo err >&2; exit 4");
    agent.ok("launch", &encode_frame(&launch).unwrap(), Some(&sandbox));
    // wait right away: the end waits for the follower to drain the log.
    let out = agent.ok("wait", &wait_msg(&id), Some(&sandbox));
    let t: Termination = read_message(&mut &out.stdout[..]).unwrap();
    assert_eq!(t.status, Some(4 << 8), "{t:?}");
    assert_eq!(fs::read_to_string(sandbox.join("stdout")).unwrap(), "out\n");
    assert_eq!(
        fs::read_to_string(sandbox.join("stderr")).unwrap(),
        "agent line\nerr\n"
    );
}

#[test]
fn privileged_docker_destroy_honours_the_tasks_kill_policy() {
    if !engine_or_skip("privileged_docker_destroy_honours_the_tasks_kill_policy") {
        return;
    }
    let agent = Agent::new();
    let id = unique_id();
    let sandbox = agent.sandbox(&id);
    let launch = Launch {
        container_id: container_id(&id),
        task_info: Some(mesos::TaskInfo {
            kill_policy: Some(mesos::KillPolicy {
                // Longer than a loaded machine takes to stop the
                // container through its trap.
                grace_period: Some(mesos::DurationInfo {
                    nanoseconds: super::common::PATIENCE.as_nanos() as i64,
                }),
            }),
            ..docker_task(
                "trap 'echo term; exit 0' TERM; touch /mnt/mesos/sandbox/ready; sleep 300 & wait",
            )
        }),
        directory: Some(sandbox.display().to_string()),
        ..Default::default()
    };
    agent.ok("launch", &encode_frame(&launch).unwrap(), Some(&sandbox));
    wait_for_file(&sandbox.join("ready"));
    let started = Instant::now();
    agent.ok("destroy", &destroy_msg(&id), Some(&sandbox));
    assert!(
        started.elapsed() < super::common::PATIENCE,
        "SIGKILL only after the grace period"
    );
    let out = agent.ok("wait", &wait_msg(&id), Some(&sandbox));
    let t: Termination = read_message(&mut &out.stdout[..]).unwrap();
    // The task's TERM handler ran and exited 0 within the grace period
    // (without the policy, docker_stop_timeout = 0s would SIGKILL: 137).
    assert_eq!(t.status, Some(0), "{t:?}");
    assert!(
        fs::read_to_string(sandbox.join("stdout"))
            .unwrap()
            .contains("term")
    );
}

#[test]
fn privileged_docker_command_task_runs_in_the_container_with_the_executor_on_the_host() {
    if !engine_or_skip(
        "privileged_docker_command_task_runs_in_the_container_with_the_executor_on_the_host",
    ) {
        return;
    }
    let agent = Agent::new();
    let id = unique_id();
    let sandbox = agent.sandbox(&id);
    // A stand-in for the command executor: runs its --override command and
    // records the arguments and the exit code.
    let libexec = tempfile::tempdir().unwrap();
    let executor = libexec.path().join("mesos-executor");
    fs::write(
        &executor,
        "#!/bin/sh\n[ \"$1\" = --override ] || exit 99\nshift\necho \"$@\" > executor-args\n\"$@\"\necho $? > observer-exit\n",
    )
    .unwrap();
    fs::set_permissions(
        &executor,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();

    let mut launch: Launch =
        read_message(&mut &launch_msg(&id, &sandbox, "echo executor-ran-in-container")[..])
            .unwrap();
    launch.task_info = Some(docker_task("echo task-ran; exit 6"));
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(format!("{} launch", agent.containerizer_path()))
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("MESOS_LIBEXEC_DIRECTORY", libexec.path())
        .env("LIBPROCESS_PORT", "0")
        .current_dir(&sandbox)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&encode_frame(&launch).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The executor's observer ends with the task's exit code.
    wait_for_file(&sandbox.join("observer-exit"));
    assert!(
        eventually_nonempty(&sandbox.join("observer-exit")),
        "the observer never finished"
    );
    assert_eq!(
        fs::read_to_string(sandbox.join("observer-exit"))
            .unwrap()
            .trim(),
        "6"
    );
    let args = fs::read_to_string(sandbox.join("executor-args")).unwrap();
    assert!(args.trim().ends_with(&format!("observe {id}")), "{args}");
    let out = agent.ok("wait", &wait_msg(&id), Some(&sandbox));
    let t: Termination = read_message(&mut &out.stdout[..]).unwrap();
    assert_eq!(t.status, Some(6 << 8), "{t:?}");
    let stdout = fs::read_to_string(sandbox.join("stdout")).unwrap();
    assert_eq!(
        stdout, "task-ran\n",
        "the task's command ran, not the executor's"
    );
}

/// Waits (up to [`PATIENCE`](super::common::PATIENCE)) until `path` has content.
fn eventually_nonempty(path: &Path) -> bool {
    let deadline = Instant::now() + super::common::PATIENCE;
    while Instant::now() < deadline {
        if fs::metadata(path).is_ok_and(|m| m.len() > 0) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
