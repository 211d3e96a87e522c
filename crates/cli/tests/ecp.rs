//! `phobos ecp` driven exactly as a Mesos agent drives an external
//! containerizer (reference §1.2): `sh -c "<containerizer_path> <call>"` in
//! a new session, the sandbox as the working directory, the agent's
//! `MESOS_*` environment, one length-prefixed protobuf on stdin and at most
//! one on stdout, exit 0 for success.
//!
//! Each test has its own runtime dir, work dir, agent sandbox and cgroups
//! root (`phobos-test-<uuid>`), and destroys whatever it launched on drop.
//! As root the linux launcher (namespaces, freezer cgroup) is used; other
//! users get the posix launcher, so the tests run either way.

mod common;
#[path = "ecp/docker.rs"]
mod docker;

use std::fs;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use phobos_proto::containerizer::{
    Containers, Destroy, Launch, Termination, TerminationV019, Update, Usage, Wait,
};
use phobos_proto::ecp::{encode_frame, read_message};
use phobos_proto::mesos::{self, CommandInfo, Environment, ExecutorId, ExecutorInfo, environment};
use prost::{Message, Name};

const BIN: &str = env!("CARGO_BIN_EXE_phobos");

/// One isolated "agent" with its own directories.
struct Agent {
    runtime: tempfile::TempDir,
    work: tempfile::TempDir,
    /// Executor sandboxes, as the agent's work_dir would hold them.
    agent_work: tempfile::TempDir,
    cgroups_root: String,
    /// When set, the dirs come from this config file instead of flags.
    config: Option<PathBuf>,
}

impl Agent {
    fn new() -> Self {
        Self {
            runtime: tempfile::tempdir().unwrap(),
            work: tempfile::tempdir().unwrap(),
            agent_work: tempfile::tempdir().unwrap(),
            cgroups_root: format!("phobos-test-{}", uuid::Uuid::new_v4()),
            config: None,
        }
    }

    /// An agent whose phobos reads everything from a config file.
    fn with_config(extra: &str) -> Self {
        let mut agent = Self::new();
        let path = agent.work.path().join("phobos.toml");
        fs::write(
            &path,
            format!(
                "runtime_dir = {:?}\nwork_dir = {:?}\ncgroups_root = {:?}\n{extra}",
                agent.runtime.path(),
                agent.work.path(),
                agent.cgroups_root
            ),
        )
        .unwrap();
        agent.config = Some(path);
        agent
    }

    /// The `--containerizer_path` value.
    fn containerizer_path(&self) -> String {
        match &self.config {
            Some(config) => format!("'{BIN}' --config '{}' ecp", config.display()),
            None => format!(
                "'{BIN}' --runtime-dir '{}' --work-dir '{}' --cgroups-root {} ecp",
                self.runtime.path().display(),
                self.work.path().display(),
                self.cgroups_root
            ),
        }
    }

    fn sandbox(&self, id: &str) -> PathBuf {
        let dir = self
            .agent_work
            .path()
            .join("executors")
            .join(id)
            .join("runs/latest");
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Starts `<containerizer_path> <call>` as the agent does.
    fn spawn(&self, call: &str, input: &[u8], sandbox: Option<&Path>) -> Child {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(format!("{} {call}", self.containerizer_path()))
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("MESOS_LIBEXEC_DIRECTORY", "/usr/libexec/mesos")
            .env("MESOS_WORK_DIRECTORY", self.agent_work.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match sandbox {
            Some(dir) => {
                cmd.current_dir(dir);
                if call == "launch" {
                    cmd.env("LIBPROCESS_PORT", "0")
                        .env("MESOS_FRAMEWORK_ID", "framework-1")
                        .env("MESOS_EXECUTOR_ID", "executor-1")
                        .env("MESOS_DIRECTORY", dir)
                        .env("MESOS_SLAVE_ID", "slave-1")
                        .env("MESOS_SLAVE_PID", "slave(1)@127.0.0.1:5051")
                        .env("MESOS_CHECKPOINT", "1")
                        .env("MESOS_RECOVERY_TIMEOUT", "15mins");
                }
            }
            None => {
                cmd.current_dir("/");
            }
        }
        // SAFETY: setsid is async-signal-safe and touches no Rust state.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input).unwrap();
        drop(stdin);
        child
    }

    fn call(&self, call: &str, input: &[u8], sandbox: Option<&Path>) -> Output {
        self.spawn(call, input, sandbox).wait_with_output().unwrap()
    }

    /// Runs a call that must succeed.
    fn ok(&self, call: &str, input: &[u8], sandbox: Option<&Path>) -> Output {
        let out = self.call(call, input, sandbox);
        assert!(
            out.status.success(),
            "{call} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The message a call that must succeed answers.
    fn answer<M: Message + Default + Name>(
        &self,
        call: &str,
        input: &[u8],
        sandbox: Option<&Path>,
    ) -> M {
        let out = self.ok(call, input, sandbox);
        read_message(&mut &out.stdout[..]).unwrap()
    }

    fn containers(&self) -> Vec<String> {
        let msg: Containers = self.answer("containers", b"", None);
        msg.containers.into_iter().map(|c| c.value).collect()
    }

    /// Every file and directory under the runtime dir (for "nothing changed").
    fn runtime_snapshot(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            let Ok(entries) = fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                out.push(e.path());
                walk(&e.path(), out);
            }
        }
        let mut out = Vec::new();
        walk(self.runtime.path(), &mut out);
        walk(self.work.path(), &mut out);
        out.retain(|p| p.file_name().is_none_or(|n| n != "phobos.toml"));
        out.sort();
        out
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let exe = Path::new(BIN);
        let c = phobos_mesos::MesosContainerizer::new(self.runtime.path(), self.work.path(), exe);
        if let Ok(list) = c.list() {
            for summary in list {
                let _ = c.destroy(&summary.id);
            }
        }
        remove_cgroup_roots(&self.cgroups_root);
    }
}

/// Removes `<hierarchy>/<root>` on every mounted cgroup hierarchy.
fn remove_cgroup_roots(root: &str) {
    let base = Path::new("/sys/fs/cgroup");
    let mut candidates = vec![base.join(root)];
    if let Ok(entries) = fs::read_dir(base) {
        for e in entries.flatten() {
            candidates.push(e.path().join(root));
        }
    }
    for dir in candidates {
        if let Ok(children) = fs::read_dir(&dir) {
            for child in children.flatten() {
                if child.path().is_dir() {
                    let _ = fs::remove_dir(child.path());
                }
            }
        }
        let _ = fs::remove_dir(&dir);
    }
}

/// Every `<hierarchy>/<root>/<id>` cgroup directory on this host.
fn container_cgroups(root: &str, id: &str) -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let mut hierarchies = vec![base.to_owned()];
    if let Ok(entries) = fs::read_dir(base) {
        hierarchies.extend(entries.flatten().map(|e| e.path()));
    }
    hierarchies
        .into_iter()
        .map(|h| h.join(root).join(id))
        .filter(|p| p.is_dir())
        .collect()
}

fn container_id(id: &str) -> mesos::ContainerId {
    mesos::ContainerId {
        value: id.to_owned(),
        parent: None,
    }
}

fn scalar(name: &str, value: f64) -> mesos::Resource {
    mesos::Resource {
        name: name.into(),
        r#type: mesos::value::Type::Scalar as i32,
        scalar: Some(mesos::value::Scalar { value }),
        ..Default::default()
    }
}

/// A Launch of an executor running `script` under `/bin/sh -c`.
fn launch_msg(id: &str, sandbox: &Path, script: &str) -> Vec<u8> {
    let launch = Launch {
        container_id: container_id(id),
        executor_info: Some(ExecutorInfo {
            executor_id: ExecutorId {
                value: "executor-1".into(),
            },
            command: CommandInfo {
                value: Some(script.into()),
                environment: Some(Environment {
                    variables: vec![environment::Variable {
                        name: "GREETING".into(),
                        value: "hello from CommandInfo".into(),
                    }],
                }),
                ..Default::default()
            },
            resources: vec![scalar("cpus", 0.5), scalar("mem", 64.0)],
            ..Default::default()
        }),
        directory: Some(sandbox.display().to_string()),
        checkpoint: Some(true),
        ..Default::default()
    };
    encode_frame(&launch).unwrap()
}

fn wait_msg(id: &str) -> Vec<u8> {
    encode_frame(&Wait {
        container_id: container_id(id),
    })
    .unwrap()
}

fn destroy_msg(id: &str) -> Vec<u8> {
    encode_frame(&Destroy {
        container_id: container_id(id),
    })
    .unwrap()
}

fn usage_msg(id: &str) -> Vec<u8> {
    encode_frame(&Usage {
        container_id: container_id(id),
    })
    .unwrap()
}

/// The message a spawned call answers, once it ended successfully.
fn answered<M: Message + Default + Name>(call: Child) -> M {
    let out = call.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    read_message(&mut &out.stdout[..]).unwrap()
}

/// Waits for `path` to exist (the container reached a point of its script).
fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + common::PATIENCE;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The script of a container that signals it started, then waits for `go`.
const GATED: &str = "touch started; while [ ! -e go ]; do sleep 0.02; done; \
                     echo \"$GREETING|$MESOS_DIRECTORY|$MESOS_EXECUTOR_ID\" > seen; exit 3";

fn unique_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[test]
fn launch_usage_update_wait_destroy_containers_as_the_agent_does() {
    let agent = Agent::new();
    let id = unique_id();
    let sandbox = agent.sandbox(&id);

    let launched = agent.ok("launch", &launch_msg(&id, &sandbox, GATED), Some(&sandbox));
    assert!(launched.stdout.is_empty(), "launch writes nothing");
    // Our log lines (the agent appends them to the sandbox's stderr) name
    // the container.
    let log = String::from_utf8_lossy(&launched.stderr);
    assert!(
        log.contains(&id) && log.contains("launch requested"),
        "{log}"
    );
    wait_for_file(&sandbox.join("started"));
    assert_eq!(agent.containers(), vec![id.clone()]);

    // usage: always a timestamp and CPU times; the request as soft limits.
    let stats: mesos::ResourceStatistics = agent.answer("usage", &usage_msg(&id), Some(&sandbox));
    assert!(stats.timestamp > 1.0e9, "{stats:?}");
    assert!(
        stats.cpus_user_time_secs.is_some_and(|t| t >= 0.0),
        "{stats:?}"
    );
    assert!(
        stats.cpus_system_time_secs.is_some_and(|t| t >= 0.0),
        "{stats:?}"
    );
    assert_eq!(stats.cpus_soft_limit, Some(0.5));
    assert_eq!(stats.mem_soft_limit_bytes, Some(64 << 20));
    // Agents 0.19-1.0 read the allocation from these two (no CFS here).
    assert_eq!(stats.cpus_limit, Some(0.5), "{stats:?}");
    assert_eq!(stats.mem_limit_bytes, Some(64 << 20), "{stats:?}");

    // update: the new resource set is applied and reported.
    let update = Update {
        container_id: container_id(&id),
        resources: vec![scalar("cpus", 1.0), scalar("mem", 128.0)],
    };
    agent.ok("update", &encode_frame(&update).unwrap(), Some(&sandbox));
    let stats: mesos::ResourceStatistics = agent.answer("usage", &usage_msg(&id), Some(&sandbox));
    assert_eq!(stats.cpus_soft_limit, Some(1.0));
    assert_eq!(stats.mem_soft_limit_bytes, Some(128 << 20));
    assert_eq!(stats.cpus_limit, Some(1.0), "{stats:?}");
    assert_eq!(stats.mem_limit_bytes, Some(128 << 20), "{stats:?}");

    // wait blocks until the executor ends, then exits 0 whatever its code.
    let waiter = agent.spawn("wait", &wait_msg(&id), Some(&sandbox));
    assert!(
        common::eventually(common::PATIENCE, || common::blocked_on_a_lock(waiter.id())),
        "the wait never blocked on the container's end"
    );
    fs::write(sandbox.join("go"), "").unwrap();
    let t: Termination = answered(waiter);
    assert_eq!(t.status, Some(3 << 8), "{t:?}");
    assert_eq!(t.state, None, "no limit was enforced: the agent decides");
    assert!(t.message.as_deref().unwrap_or("").contains('3'), "{t:?}");

    // The executor saw the agent's environment and its CommandInfo's.
    let seen = fs::read_to_string(sandbox.join("seen")).unwrap();
    assert_eq!(
        seen.trim(),
        format!("hello from CommandInfo|{}|executor-1", sandbox.display())
    );
    // Its output went to the agent's sandbox.
    assert!(sandbox.join("stdout").exists() && sandbox.join("stderr").exists());

    // destroy after the end, and twice, and containers no longer lists it.
    agent.ok("destroy", &destroy_msg(&id), Some(&sandbox));
    agent.ok("destroy", &destroy_msg(&id), Some(&sandbox));
    assert!(agent.containers().is_empty());
    // A second wait returns the same termination.
    let again: Termination = agent.answer("wait", &wait_msg(&id), Some(&sandbox));
    assert_eq!(again, t);
}

#[test]
fn destroy_ends_a_concurrent_wait_with_the_old_termination_from_a_config_file() {
    let agent = Agent::with_config("ecp_termination = \"0.19\"\n");
    let id = unique_id();
    let sandbox = agent.sandbox(&id);
    agent.ok(
        "launch",
        &launch_msg(&id, &sandbox, "touch started; exec sleep 600"),
        Some(&sandbox),
    );
    wait_for_file(&sandbox.join("started"));
    let waiter = agent.spawn("wait", &wait_msg(&id), Some(&sandbox));
    assert!(
        common::eventually(common::PATIENCE, || common::blocked_on_a_lock(waiter.id())),
        "the wait never blocked on the container's end"
    );
    agent.ok("destroy", &destroy_msg(&id), Some(&sandbox));
    let t: TerminationV019 = answered(waiter);
    assert!(!t.killed, "no limit was enforced");
    assert_eq!(t.status, Some(libc::SIGKILL), "{t:?}");
    assert!(agent.containers().is_empty());
}

#[test]
fn recover_after_the_launching_and_waiting_processes_were_killed() {
    let agent = Agent::new();
    let id = unique_id();
    let sandbox = agent.sandbox(&id);
    let launch = agent.spawn("launch", &launch_msg(&id, &sandbox, GATED), Some(&sandbox));
    let launch_pid = launch.id() as i32;
    let out = launch.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for_file(&sandbox.join("started"));

    // The agent dies: SIGKILL the launch call's session and an in-flight
    // wait with all its processes (what os::killtree does).
    let waiter = agent.spawn("wait", &wait_msg(&id), Some(&sandbox));
    assert!(
        common::eventually(common::PATIENCE, || common::blocked_on_a_lock(waiter.id())),
        "the wait never blocked on the container's end"
    );
    // SAFETY: kill with a negative pid signals a process group we created.
    unsafe {
        libc::kill(-launch_pid, libc::SIGKILL);
        libc::kill(-(waiter.id() as i32), libc::SIGKILL);
    }
    let killed = waiter.wait_with_output().unwrap();
    assert!(!killed.status.success());

    // The restarted agent: recover, containers, then wait again.
    agent.ok("recover", b"", None);
    assert_eq!(agent.containers(), vec![id.clone()]);
    let waiter = agent.spawn("wait", &wait_msg(&id), Some(&sandbox));
    fs::write(sandbox.join("go"), "").unwrap();
    let t: Termination = answered(waiter);
    assert_eq!(t.status, Some(3 << 8), "{t:?}");
    assert!(agent.containers().is_empty());
}

/// Asserts a failed call: non-zero, exactly one error line naming
/// `needle`, and nothing changed on disk.
fn assert_refused(agent: &Agent, call: &str, input: &[u8], needle: &str) {
    let before = agent.runtime_snapshot();
    let sandbox = agent.sandbox("refused");
    let out = agent.call(call, input, Some(&sandbox));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{call} succeeded: {stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("phobos: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains(needle),
        "expected {needle:?} in {stderr}"
    );
    assert!(out.stdout.is_empty(), "no output on failure");
    assert_eq!(agent.runtime_snapshot(), before, "{call} changed the disk");
}

#[test]
fn bad_input_is_refused_with_one_line_and_no_change() {
    let agent = Agent::new();
    assert_refused(&agent, "launch", b"", "no message");
    assert_refused(&agent, "wait", &[7, 0], "truncated length prefix");
    assert_refused(
        &agent,
        "launch",
        &[0xff, 0xff, 0xff, 0xff],
        "exceeds the 64 MiB limit",
    );
    assert_refused(
        &agent,
        "destroy",
        &[5, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff],
        "cannot decode",
    );
    assert_refused(
        &agent,
        "launch",
        &[9, 0, 0, 0, 1, 2],
        "truncated message body",
    );
    // Wait without its container_id; Launch whose container_id lacks value.
    assert_refused(
        &agent,
        "wait",
        &[0, 0, 0, 0],
        "missing required field container_id",
    );
    assert_refused(
        &agent,
        "launch",
        &[2, 0, 0, 0, 0x0a, 0x00],
        "missing required field container_id.value",
    );
    assert_refused(
        &agent,
        "usage",
        &usage_msg("../etc"),
        "invalid container id",
    );
    assert_refused(&agent, "frobnicate", b"", "frobnicate");
    assert_refused(&agent, "", b"", "ecp needs a subcommand");
    // Unknown containers: wait, usage and update fail; destroy succeeds.
    assert_refused(
        &agent,
        "wait",
        &wait_msg("nope"),
        "unknown container 'nope'",
    );
    assert_refused(
        &agent,
        "usage",
        &usage_msg("nope"),
        "unknown container 'nope'",
    );
    let update = Update {
        container_id: container_id("nope"),
        resources: vec![scalar("cpus", 1.0)],
    };
    assert_refused(
        &agent,
        "update",
        &encode_frame(&update).unwrap(),
        "unknown container 'nope'",
    );
    let before = agent.runtime_snapshot();
    agent.ok("destroy", &destroy_msg("nope"), None);
    assert_eq!(agent.runtime_snapshot(), before);
}

#[test]
fn docker_launches_with_a_missing_image_fail_at_once_and_leave_nothing() {
    let agent = Agent::new();
    let id = unique_id();
    let sandbox = agent.sandbox(&id);
    let image = format!("phobos-missing-{}:nope", uuid::Uuid::new_v4().simple());
    let mut launch: Launch = read_message(&mut &launch_msg(&id, &sandbox, "true")[..]).unwrap();
    launch.executor_info.as_mut().unwrap().container = Some(mesos::ContainerInfo {
        r#type: mesos::container_info::Type::Docker as i32,
        docker: Some(mesos::container_info::DockerInfo {
            image: image.clone(),
            ..Default::default()
        }),
        ..Default::default()
    });
    // With an engine the pull fails (no registry); without one the socket
    // is missing: either way one line naming the container, nothing on disk.
    assert_refused(&agent, "launch", &encode_frame(&launch).unwrap(), &id);
    // The agent's default image applies to tasks without a ContainerInfo.
    let before = agent.runtime_snapshot();
    let mut cmd = agent.spawn_with_env(
        "launch",
        &launch_msg(&id, &sandbox, "true"),
        &sandbox,
        (
            "MESOS_DEFAULT_CONTAINER_IMAGE",
            &format!("docker:///{image}"),
        ),
    );
    let out = cmd.wait().unwrap();
    assert!(!out.success());
    assert_eq!(agent.runtime_snapshot(), before);
    assert!(agent.containers().is_empty());
}

#[test]
fn a_config_file_with_a_typo_names_file_line_and_key() {
    let agent = Agent::with_config("ecp_terminaton = \"0.19\"\n");
    let before = agent.runtime_snapshot();
    let out = agent.call("containers", b"", None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let config = agent.config.as_ref().unwrap().display().to_string();
    assert!(
        stderr.contains(&format!("{config}:4: ecp_terminaton")),
        "{stderr}"
    );
    assert_eq!(agent.runtime_snapshot(), before);
}

impl Agent {
    /// `spawn` for a launch with one more agent environment variable.
    fn spawn_with_env(
        &self,
        call: &str,
        input: &[u8],
        sandbox: &Path,
        (key, value): (&str, &str),
    ) -> Child {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(format!("{} {call}", self.containerizer_path()))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env(key, value)
            .current_dir(sandbox)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child
    }
}

#[test]
fn calls_from_many_processes_at_once_agree() {
    let agent = Agent::new();
    let id = unique_id();
    let sandbox = agent.sandbox(&id);
    // Calls racing the launch itself (the agent queues them, but nothing
    // here relies on that): once the container is published, a destroy
    // ends it whether the launch has finished or not, and every wait
    // reports the same termination. (A destroy before that point finds an
    // unknown container and succeeds without effect, as in Mesos.)
    let launch = agent.spawn("launch", &launch_msg(&id, &sandbox, GATED), Some(&sandbox));
    wait_for_file(&agent.runtime.path().join("containers").join(&id));
    let waits: Vec<Child> = (0..2)
        .map(|_| agent.spawn("wait", &wait_msg(&id), Some(&sandbox)))
        .collect();
    let usages: Vec<Child> = (0..3)
        .map(|_| agent.spawn("usage", &usage_msg(&id), Some(&sandbox)))
        .collect();
    let destroy = agent.spawn("destroy", &destroy_msg(&id), Some(&sandbox));
    let launched = launch.wait_with_output().unwrap();
    let destroyed = destroy.wait_with_output().unwrap();
    assert!(
        destroyed.status.success(),
        "{}",
        String::from_utf8_lossy(&destroyed.stderr)
    );
    for usage in usages {
        let out = usage.wait_with_output().unwrap();
        if out.status.success() {
            let stats: mesos::ResourceStatistics = read_message(&mut &out.stdout[..]).unwrap();
            assert!(stats.timestamp > 0.0 && stats.cpus_user_time_secs.is_some());
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let errors = stderr.lines().filter(|l| l.starts_with("phobos: ")).count();
            assert_eq!(errors, 1, "{stderr}");
        }
    }
    // A wait that started before the launch published the container may
    // find it unknown; every other wait gets the one termination.
    let mut terminations = Vec::new();
    for wait in waits {
        let out = wait.wait_with_output().unwrap();
        if out.status.success() {
            terminations.push(read_message::<Termination>(&mut &out.stdout[..]).unwrap());
        }
    }
    let last: Termination = agent.answer("wait", &wait_msg(&id), Some(&sandbox));
    for t in &terminations {
        assert_eq!(t, &last);
    }
    if launched.status.success() {
        assert_eq!(last.status, Some(libc::SIGKILL), "{last:?}");
    }
    assert!(agent.containers().is_empty());
}

#[test]
fn privileged_ecp_containers_get_a_pid_namespace_and_a_cgroup() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipping privileged_ecp_containers_get_a_pid_namespace_and_a_cgroup: needs root");
        return;
    }
    let agent = Agent::with_config("launcher = \"linux\"\n");
    let id = unique_id();
    let sandbox = agent.sandbox(&id);
    agent.ok(
        "launch",
        &launch_msg(
            &id,
            &sandbox,
            "echo $$ > pid; touch started; exec sleep 600",
        ),
        Some(&sandbox),
    );
    wait_for_file(&sandbox.join("started"));
    // In its own pid namespace the executor is init's first child.
    let pid = fs::read_to_string(sandbox.join("pid")).unwrap();
    assert_eq!(pid.trim(), "2", "pid in the container");
    // The launcher's cgroup (cgroup2 with cgroup.kill, else the v1
    // freezer) is `<hierarchy>/<cgroups_root>/<id>`.
    let cgroups = container_cgroups(&agent.cgroups_root, &id);
    assert!(!cgroups.is_empty(), "no cgroup for the container");
    agent.ok("destroy", &destroy_msg(&id), Some(&sandbox));
    let t: Termination = agent.answer("wait", &wait_msg(&id), Some(&sandbox));
    assert_eq!(t.status, Some(libc::SIGKILL));
    assert!(
        container_cgroups(&agent.cgroups_root, &id).is_empty(),
        "the container's cgroups are removed"
    );
}
