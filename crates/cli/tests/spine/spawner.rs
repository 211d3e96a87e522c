//! `phobos run`'s init spawner (`phobos_mesos::launcher::spawner`): a
//! plain launch's init is cloned by the `phobos init` started with the
//! run, into fresh namespaces and the container's cgroup, as the
//! launcher's child; an unused spawner is ended and reaped by the run.
//! Crashes at every launch state, with a spawner waiting or used, are
//! spine/crash.rs's (`inits_of` counts spawners). Part of the spine
//! binary (spine.rs).

use super::common::*;

fn ns(pid: u32, name: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{name}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| panic!("/proc/{pid}/ns/{name}: {e}"))
}

/// The init of RUNNING container `id`, once its command `sleep` has
/// exec'd: `-d` returns once init is ready, before its child for the
/// command has exec'd (until then the child shares init's memory,
/// environment included).
fn init_running_sleep(env: &Env, id: &str) -> u32 {
    let status = env.status_json(id);
    assert_eq!(status["state"], "RUNNING");
    let pid = status["pid"].as_i64().unwrap() as u32;
    assert!(
        eventually(PATIENCE, || command_running(pid, "sleep")),
        "no sleep under init {pid}"
    );
    pid
}

/// Whether a child of `init` runs `comm` (has exec'd it).
fn command_running(init: u32, comm: &str) -> bool {
    let children =
        std::fs::read_to_string(format!("/proc/{init}/task/{init}/children")).unwrap_or_default();
    children.split_whitespace().any(|child| {
        std::fs::read_to_string(format!("/proc/{child}/comm")).is_ok_and(|c| c.trim() == comm)
    })
}

#[test]
fn privileged_run_has_its_init_cloned_by_the_spawner() {
    if !require_root("privileged_run_has_its_init_cloned_by_the_spawner") {
        return;
    }
    let env = Env::new();
    env.ok(&["run", "-d", "--id", "spawned", "--", "sleep", "1000"]);
    let pid = init_running_sleep(&env, "spawned");
    // The run's spawner is gone; only the init it cloned has its
    // environment (a cloned init starts as a copy of it).
    assert_eq!(spawners_of(env.runtime.path()), vec![pid]);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        String::from_utf8_lossy(&cmdline).contains("init"),
        "{cmdline:?}"
    );
    let me = std::process::id();
    for name in ["mnt", "pid", "ipc", "uts"] {
        assert_ne!(ns(pid, name), ns(me, name), "{name} is the host's");
    }
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        cgroup
            .lines()
            .any(|l| l.ends_with(&env.cgroup_rel("spawned"))
                || l.ends_with(&format!("{}/leaf", env.cgroup_rel("spawned")))),
        "not in its kill cgroup: {cgroup}"
    );
    // Pid 1 of its namespace, running the command as pid 2.
    let out = env.ok(&[
        "exec",
        "spawned",
        "--",
        "sh",
        "-c",
        "cat /proc/1/cmdline; echo; pgrep -x sleep",
    ]);
    assert!(out.contains("init"), "{out}");
    assert_eq!(out.lines().last(), Some("2"), "{out}");
    destroyed_leaves_nothing(&env, "spawned");
}

/// Destroys `id` (a running container, so it ends by SIGKILL) and checks
/// that its init goes and no cgroup of it is left.
fn destroyed_leaves_nothing(env: &Env, id: &str) {
    let destroyed: serde_json::Value =
        serde_json::from_str(&env.ok(&["destroy", "--json", id])).unwrap();
    assert_eq!(destroyed["signal"], libc::SIGKILL);
    assert!(
        eventually(PATIENCE, || spawners_of(env.runtime.path()).is_empty()),
        "init left: {:?}",
        spawners_of(env.runtime.path())
    );
    assert!(env.cgroup_dirs(id).is_empty(), "cgroup left behind");
}

#[test]
fn privileged_foreground_run_through_the_spawner_keeps_exit_and_output() {
    if !require_root("privileged_foreground_run_through_the_spawner_keeps_exit_and_output") {
        return;
    }
    let env = Env::new();
    let script = "echo out; echo err >&2; echo $$; exit 3";
    let out = env.run(&["run", "--id", "fg", "--", "sh", "-c", script]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n2\n");
    assert_eq!(stderr(&out), "err\n");
    assert_eq!(env.wait_json("fg")["exit_code"], 3);
    // Nothing of the run is left: no init, no spawner, not even a zombie
    // (it was the run's child, reaped by it).
    assert!(spawners_of(env.runtime.path()).is_empty());
    assert!(env.cgroup_dirs("fg").is_empty(), "cgroup left behind");
}

#[test]
fn privileged_unused_spawner_is_ended_by_the_run() {
    if !require_root("privileged_unused_spawner_is_ended_by_the_run") {
        return;
    }
    let env = Env::new();
    // The posix launcher clones no namespaces: the spawner started with
    // the run is not used, and ended when the run ends.
    let out = env.run(&["run", "--launcher", "posix", "--", "sh", "-c", "exit 4"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        spawners_of(env.runtime.path()).is_empty(),
        "spawner left: {:?}",
        spawners_of(env.runtime.path())
    );
}

/// `phobos run` with its directories in the environment, so that `run`
/// is its first argument and `main` starts the spawner before the parse
/// (`crates/cli/src/early.rs`); the harness's own commands name the
/// directories with global options first, which never takes that path.
/// `extra` is added to its environment.
fn run_named_by_env(env: &Env, args: &[&str], extra: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(PHOBOS)
        .arg("run")
        .args(args)
        .env("PHOBOS_RUNTIME_DIR", env.runtime.path())
        .env("PHOBOS_WORK_DIR", env.work.path())
        .env("PHOBOS_CGROUPS_ROOT", &env.cgroups_root)
        .env(
            "RUST_LOG",
            "phobos_runtime=debug,phobos_mesos::isolator=debug",
        )
        .envs(extra.iter().copied())
        .env_remove("PHOBOS_STOP_AT")
        .env_remove("PHOBOS_AGENT")
        .env_remove("PHOBOS_CONFIG")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

const EARLY_USED: &str = "using the init spawner started before the parse";

#[test]
fn privileged_spawner_started_before_the_parse_clones_init() {
    if !require_root("privileged_spawner_started_before_the_parse_clones_init") {
        return;
    }
    let env = Env::new();
    let out = run_named_by_env(&env, &["-d", "--id", "early", "--", "sleep", "1000"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains(EARLY_USED), "{}", stderr(&out));
    let pid = init_running_sleep(&env, "early");
    // The spawner is gone; the init it cloned carries its environment,
    // which names this runtime directory.
    assert_eq!(spawners_of(env.runtime.path()), vec![pid]);
    let me = std::process::id();
    for name in ["mnt", "pid", "ipc", "uts"] {
        assert_ne!(ns(pid, name), ns(me, name), "{name} is the host's");
    }
    destroyed_leaves_nothing(&env, "early");
}

#[test]
fn privileged_spawner_started_before_the_parse_keeps_a_foreground_run_whole() {
    if !require_root("privileged_spawner_started_before_the_parse_keeps_a_foreground_run_whole") {
        return;
    }
    let env = Env::new();
    let out = run_named_by_env(
        &env,
        &[
            "--id",
            "fg",
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert!(stderr(&out).contains("err\n"), "{}", stderr(&out));
    assert!(stderr(&out).contains(EARLY_USED), "{}", stderr(&out));
    assert_eq!(env.wait_json("fg")["exit_code"], 3);
    assert!(spawners_of(env.runtime.path()).is_empty());
    assert!(env.cgroup_dirs("fg").is_empty(), "cgroup left behind");
}

#[test]
fn privileged_spawner_started_before_the_parse_is_ended_when_unused() {
    if !require_root("privileged_spawner_started_before_the_parse_is_ended_when_unused") {
        return;
    }
    let env = Env::new();
    // Plain to the guess, but the posix launcher clones no namespaces:
    // the spawner is never sent a container, and the run ends it.
    let out = run_named_by_env(
        &env,
        &["--launcher", "posix", "--", "sh", "-c", "exit 4"],
        &[],
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        spawners_of(env.runtime.path()).is_empty(),
        "spawner left: {:?}",
        spawners_of(env.runtime.path())
    );
}

/// `run -d OPTIONS --id ID -- sleep 1000` through the spawner started
/// before the parse, which joined every v1 cgroup itself before it cloned
/// init (`tasks`, `0`): the face moved init into none of them. Init's pid.
fn run_self_joined(env: &Env, id: &str, options: &[&str]) -> u32 {
    let mut args = vec!["-d"];
    args.extend_from_slice(options);
    args.extend_from_slice(&["--id", id, "--", "sleep", "1000"]);
    let out = run_named_by_env(env, &args, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains(EARLY_USED), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("init moved into 0 of its"),
        "{}",
        stderr(&out)
    );
    init_running_sleep(env, id)
}

#[test]
fn privileged_spawner_moves_itself_into_the_v1_cgroups() {
    let name = "privileged_spawner_moves_itself_into_the_v1_cgroups";
    if !require_root(name) {
        return;
    }
    let h = phobos_cgroups::Hierarchies::detect().unwrap();
    if h.v1_mount(phobos_cgroups::Controller::Memory).is_none() {
        println!(
            "skipping {name}: no v1 memory hierarchy (on cgroup2 init is cloned into its cgroup)"
        );
        return;
    }
    let env = Env::new();
    let pid = run_self_joined(&env, "joined", &[]);
    let rel = env.cgroup_rel("joined");
    let procs = phobos_cgroups::ProcCgroups::read(std::path::Path::new("/proc"), pid).unwrap();
    for c in [
        phobos_cgroups::Controller::Cpu,
        phobos_cgroups::Controller::Memory,
        phobos_cgroups::Controller::Pids,
        phobos_cgroups::Controller::Devices,
    ] {
        if h.v1_mount(c).is_some() {
            assert_eq!(procs.v1_path(c), Some(rel.as_str()), "{c:?}: {procs:?}");
        }
    }
    destroyed_leaves_nothing(&env, "joined");
}

#[test]
fn privileged_spawner_joins_the_v1_cpuset_too() {
    let name = "privileged_spawner_joins_the_v1_cpuset_too";
    if !require_root(name) {
        return;
    }
    let h = phobos_cgroups::Hierarchies::detect().unwrap();
    if h.v1_mount(phobos_cgroups::Controller::Cpuset).is_none() {
        println!("skipping {name}: no v1 cpuset hierarchy");
        return;
    }
    let env = Env::new();
    // The spawner has memory of its own, so it joins the cpuset as well
    // (a vfork-style child may not: the attach rebinds its memory's
    // policy, the face's).
    let pid = run_self_joined(&env, "pinned", &["--isolation", "cgroups/all"]);
    let procs = phobos_cgroups::ProcCgroups::read(std::path::Path::new("/proc"), pid).unwrap();
    assert_eq!(
        procs.v1_path(phobos_cgroups::Controller::Cpuset),
        Some(env.cgroup_rel("pinned").as_str()),
        "{procs:?}"
    );
    destroyed_leaves_nothing(&env, "pinned");
}

#[test]
fn privileged_spawner_keeps_nothing_of_the_runs_environment() {
    let name = "privileged_spawner_keeps_nothing_of_the_runs_environment";
    if !require_root(name) {
        return;
    }
    let env = Env::new();
    let secret = format!("s3cr3t-{}-{}", std::process::id(), line!());
    let out = run_named_by_env(
        &env,
        &["-d", "--id", "quiet", "--", "sleep", "1000"],
        &[("THE_CALLERS_SECRET", &secret)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains(EARLY_USED), "{}", stderr(&out));
    let pid = init_running_sleep(&env, "quiet");
    // /proc shows an exec'd spawner's command line and environment.
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let vars: Vec<&[u8]> = environ
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .collect();
    let spawner = format!("PHOBOS_INIT_SPAWNER={}", env.runtime.path().display());
    assert!(
        vars.iter()
            .all(|v| *v == spawner.as_bytes() || v.starts_with(b"RUST_LOG=")),
        "{}",
        String::from_utf8_lossy(&environ)
    );
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(cmdline.ends_with(b"\0init\0"), "{cmdline:?}");
    // And its memory (the stack, where the run's own arguments and
    // environment were, and every other writable mapping) holds no copy
    // of the caller's secret.
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut scanned = 0;
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !perms.starts_with("rw") {
            continue;
        }
        let (from, to) = range.split_once('-').unwrap();
        let (from, to) = (
            u64::from_str_radix(from, 16).unwrap(),
            u64::from_str_radix(to, 16).unwrap(),
        );
        let mut bytes = vec![0u8; (to - from) as usize];
        if std::os::unix::fs::FileExt::read_exact_at(&mem, &mut bytes, from).is_err() {
            continue;
        }
        scanned += 1;
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the caller's environment is still in init's memory: {line}"
        );
    }
    assert!(scanned > 0, "no writable mapping of init read: {maps}");
    destroyed_leaves_nothing(&env, "quiet");
}
