//! The agent's pre-started init spawner (zygote), made by its spawner
//! factory (a fork of the agent) after a launch: waiting in mount, ipc
//! and uts namespaces of its own with its mounts made; taken by the next
//! plain launch, whose init it clones (the agent's child) into those
//! namespaces, a new pid namespace and the container's cgroups, with its
//! limits before the command runs; not taken by a launch that does not
//! qualify; never left behind, nor the factory, by a stopped or a
//! SIGKILLed agent.

use std::path::PathBuf;

use super::*;
use common::spawners_of;

/// The namespaces a spawner is made in ahead of its launch.
const PREMADE: [&str; 3] = ["mnt", "ipc", "uts"];

fn ns(pid: u32, name: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{name}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| panic!("/proc/{pid}/ns/{name}: {e}"))
}

fn ppid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
}

fn init_pid(env: &Env, id: &str) -> u32 {
    let text = std::fs::read_to_string(env.container_dir(id).join("pid")).unwrap();
    text.trim().parse().unwrap()
}

/// The agent's waiting spawner: its child with a spawner's environment
/// that is no container's init (`inits` are the containers' pids, whose
/// memory, and so environment, is their spawner's).
fn waiting_zygote(env: &Env, agent: &Agent, inits: &[u32]) -> Option<u32> {
    spawners_of(env.runtime.path())
        .into_iter()
        .find(|pid| !inits.contains(pid) && ppid(*pid) == Some(agent.pid()))
}

/// The agent's spawner factory: its child whose command line is the
/// agent's own (a fork of it).
fn factory_of(agent: u32) -> Option<u32> {
    let cmdline = |pid: u32| std::fs::read(format!("/proc/{pid}/cmdline")).ok();
    let own = cmdline(agent)?;
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| ppid(*pid) == Some(agent) && cmdline(*pid).as_ref() == Some(&own))
}

/// The agent's next spawner, once the agent holds it ready (it stores
/// it a moment after the factory answers); `inits` are the containers'
/// pids so far.
fn ready_zygote(env: &Env, agent: &Agent, conn: &mut Conn, inits: &[u32]) -> u32 {
    let mut zygote = None;
    assert!(
        eventually(PATIENCE, || {
            zygote = waiting_zygote(env, agent, inits);
            zygote.is_some()
        }),
        "no pre-started spawner after a launch: {:?}",
        spawners_of(env.runtime.path())
    );
    let zygote = zygote.unwrap();
    let ready = format!("phobos_agent_zygote_pid {zygote}");
    assert!(
        eventually(PATIENCE, || {
            conn.request("GET", "/metrics", &[], b"")
                .text()
                .lines()
                .any(|l| l == ready)
        }),
        "the agent never had spawner {zygote} ready"
    );
    zygote
}

/// Asserts that `init` is in the mount namespace `mnt` (its spawner's),
/// unless it has ended already.
fn assert_cloned_in(init: u32, mnt: &str) {
    if let Ok(theirs) = std::fs::read_link(format!("/proc/{init}/ns/mnt")) {
        assert_eq!(
            theirs.display().to_string(),
            mnt,
            "the spawner was not taken"
        );
    }
}

/// Every directory under the environment's cgroups root, in any hierarchy.
fn cgroups_left(env: &Env) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for h in common::all_hierarchies() {
        let Ok(entries) = std::fs::read_dir(h.join(&env.cgroups_root)) else {
            continue;
        };
        out.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    out
}

#[test]
fn privileged_agent_zygote_is_taken_in_fresh_namespaces_and_its_cgroups() {
    if !require_root("privileged_agent_zygote_is_taken_in_fresh_namespaces_and_its_cgroups") {
        return;
    }
    let env = Env::new();
    // Started with a soft descriptor limit below the hard one, which the
    // agent raises (below: its containers inherit that, however cloned).
    let mut cmd = env.cmd();
    cmd.arg("agent");
    // SAFETY: getrlimit(2) and setrlimit(2) only, in the child before its
    // exec, on a local record.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_max > 256 {
                limit.rlim_cur = 256;
                libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            }
            Ok(())
        })
    };
    let agent = Agent::spawn(&env, &mut cmd);
    let mut conn = agent.conn();
    let r = conn.json(&launch_json("zy-0", "exec sleep 600"));
    assert_eq!(r.status, 200, "{}", r.text());
    let first = init_pid(&env, "zy-0");
    let zygote = ready_zygote(&env, &agent, &mut conn, &[first]);
    // Waiting: in fresh namespaces (not the agent's, not the last
    // container's), in the agent's pid namespace and on the host network,
    // in none of our cgroups.
    let premade: Vec<String> = PREMADE.iter().map(|name| ns(zygote, name)).collect();
    for (name, own) in PREMADE.iter().zip(&premade) {
        assert_ne!(*own, ns(agent.pid(), name), "{name}");
        assert_ne!(*own, ns(first, name), "{name}");
    }
    assert_eq!(ns(zygote, "pid"), ns(agent.pid(), "pid"));
    assert_eq!(ns(zygote, "net"), ns(agent.pid(), "net"));
    let cgroup = std::fs::read_to_string(format!("/proc/{zygote}/cgroup")).unwrap();
    assert!(!cgroup.contains(&env.cgroups_root), "{cgroup}");

    // The next plain launch has it clone its init: the agent's child, in
    // those namespaces and a new pid namespace; the spawner is gone.
    // Its command finds itself in
    // the container's cgroups, under its memory limit, before anything
    // else it does. On cgroup2 the processes live in the cgroup's leaf
    // (`phobos_cgroups::LEAF`) and the limits are on its parent.
    let probe = r#"cat /proc/self/cgroup > "$MESOS_SANDBOX/cgroup"
        v1=$(sed -n 's/^[0-9]*:memory://p' /proc/self/cgroup)
        v2=$(sed -n 's/^0:://p' /proc/self/cgroup); v2=${v2%/leaf}
        for f in "/sys/fs/cgroup/memory$v1/memory.limit_in_bytes" "/sys/fs/cgroup$v2/memory.max"; do
            [ -n "$v1$v2" ] && [ -f "$f" ] && { echo "$f"; cat "$f"; break; }
        done > "$MESOS_SANDBOX/limit.tmp"
        mv "$MESOS_SANDBOX/limit.tmp" "$MESOS_SANDBOX/limit"
        exec sleep 600"#;
    let r = conn.json(
        &serde_json::json!({"type": "LAUNCH_CONTAINER", "launch_container": {
        "container_id": {"value": "zy-1"},
        "command": {"value": probe},
        "resources": [{"name": "mem", "type": "SCALAR", "scalar": {"value": 64}}]}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let init = init_pid(&env, "zy-1");
    assert_ne!(init, zygote);
    assert_eq!(ppid(init), Some(agent.pid()));
    for (name, theirs) in PREMADE.iter().zip(&premade) {
        assert_eq!(ns(init, name), *theirs, "{name}: the spawner was not taken");
    }
    assert_ne!(ns(init, "pid"), ns(agent.pid(), "pid"));
    assert_ne!(ns(init, "pid"), ns(first, "pid"));
    assert!(
        eventually(PATIENCE, || !common::alive(i64::from(zygote))),
        "the spawner outlived its launch"
    );
    // The limits it inherited are those of an init the agent clones
    // itself (the first launch's): the agent raises its descriptor limit.
    let open_files = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/limits"))
            .unwrap()
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .map(str::to_owned)
    };
    assert_eq!(open_files(init), open_files(first));
    let soft = open_files(init).unwrap();
    assert!(
        soft.split_whitespace().nth(3) != Some("256"),
        "not raised: {soft}"
    );
    let limit = env.sandbox("zy-1").join("limit");
    assert!(
        eventually(PATIENCE, || limit.exists()),
        "zy-1 wrote no limit"
    );
    let limit = std::fs::read_to_string(&limit).unwrap();
    let lines: Vec<&str> = limit.lines().collect();
    assert_eq!(lines.len(), 2, "{limit}");
    assert_eq!(lines[1], (64u64 << 20).to_string(), "{limit}");
    let rel = env.cgroup_rel("zy-1");
    assert!(lines[0].contains(&format!("{rel}/memory.")), "{limit}");
    let seen = std::fs::read_to_string(env.sandbox("zy-1").join("cgroup")).unwrap();
    assert!(
        seen.lines().any(|l| {
            let path = l.splitn(3, ':').nth(2).unwrap_or("");
            (l.starts_with("0::") || l.contains(":freezer:"))
                && (path == rel || path.starts_with(&format!("{rel}/")))
        }),
        "the command was not in its kill cgroup: {seen}"
    );

    // A new one is made for the next launch.
    let next = ready_zygote(&env, &agent, &mut conn, &[first, init]);
    // A launch that does not qualify (nested) launches as before and
    // leaves it waiting.
    let r = conn.json(
        &serde_json::json!({"type": "LAUNCH_CONTAINER", "launch_container": {
        "container_id": {"value": "kid", "parent": {"value": "zy-0"}},
        "command": {"value": "exit 3"}}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = conn.json(
        &serde_json::json!({"type": "WAIT_CONTAINER", "wait_container": {
        "container_id": {"value": "kid", "parent": {"value": "zy-0"}}}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["wait_container"]["exit_status"],
        3 << 8,
        "{}",
        r.text()
    );
    assert_eq!(waiting_zygote(&env, &agent, &[first, init]), Some(next));

    // A plain launch that ends: its exit status as for any init.
    let next_mnt = ns(next, "mnt");
    let r = conn.json(&launch_json("zy-2", "exit 7"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_cloned_in(init_pid(&env, "zy-2"), &next_mnt);
    let r = conn.json(&wait_json("zy-2"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["wait_container"]["exit_status"],
        7 << 8,
        "{}",
        r.text()
    );

    for c in ["zy-0", "zy-1"] {
        assert_eq!(conn.json(&kill_json(c, 9)).status, 200, "{c}");
        assert_eq!(conn.json(&wait_json(c)).status, 200, "{c}");
    }
    // Made again after zy-2's launch; a stopped agent ends it and the
    // factory.
    assert!(
        eventually(PATIENCE, || waiting_zygote(&env, &agent, &[]).is_some()),
        "no pre-started spawner after the third launch"
    );
    let factory = factory_of(agent.pid()).expect("the agent has a spawner factory");
    drop(conn);
    drop(agent);
    assert_eq!(spawners_of(env.runtime.path()), Vec::<u32>::new());
    assert!(
        !common::alive(i64::from(factory)),
        "the factory outlived its agent"
    );
}

#[test]
fn privileged_agent_zygote_is_never_left_after_a_sigkill() {
    if !require_root("privileged_agent_zygote_is_never_left_after_a_sigkill") {
        return;
    }
    let env = Env::new();
    let agent = Agent::start(&env, &[]);
    let mut conn = agent.conn();
    let r = conn.json(&launch_json("zk-0", "exit 0"));
    assert_eq!(r.status, 200, "{}", r.text());
    let first = init_pid(&env, "zk-0");
    assert_eq!(conn.json(&wait_json("zk-0")).status, 200);
    ready_zygote(&env, &agent, &mut conn, &[first]);
    let factory = factory_of(agent.pid()).expect("the agent has a spawner factory");
    drop(conn);
    agent.crash();
    // Their sockets report end-of-file: they exit on their own.
    assert!(
        eventually(PATIENCE, || spawners_of(env.runtime.path()).is_empty()),
        "a pre-started spawner outlived its agent: {:?}",
        spawners_of(env.runtime.path())
    );
    assert!(
        eventually(PATIENCE, || !common::alive(i64::from(factory))),
        "the spawner factory outlived its agent"
    );
    let out = env.run(&["recover"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(cgroups_left(&env), Vec::<PathBuf>::new());
    assert_eq!(common::inits_of(env.runtime.path()), Vec::<u32>::new());
}

/// The mount namespaces the agent holds open (`mnt:[…]` descriptors).
fn held_mount_namespaces(agent: &Agent) -> Vec<String> {
    let dir = format!("/proc/{}/fd", agent.pid());
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|p| p.display().to_string())
        .filter(|l| l.starts_with("mnt:["))
        .collect()
}

#[test]
fn privileged_agent_holds_a_mount_namespace_until_the_end_is_answered() {
    if !require_root("privileged_agent_holds_a_mount_namespace_until_the_end_is_answered") {
        return;
    }
    let env = Env::new();
    // The first launch clones its init on its path; the second has the
    // spawner made after it clone one. The agent holds each one's mount
    // namespace while it runs.
    let (agent, mut conn) = Agent::start_with_running(&env, "zn-0");
    let cloned = init_pid(&env, "zn-0");
    ready_zygote(&env, &agent, &mut conn, &[cloned]);
    let r = conn.json(&launch_json("zn-1", "exec sleep 600"));
    assert_eq!(r.status, 200, "{}", r.text());
    let zygote = init_pid(&env, "zn-1");
    let held = held_mount_namespaces(&agent);
    let own = ns(agent.pid(), "mnt");
    for (id, init) in [("zn-0", cloned), ("zn-1", zygote)] {
        let theirs = ns(init, "mnt");
        assert_ne!(theirs, own, "{id}");
        assert!(
            held.contains(&theirs),
            "{id}'s mount namespace {theirs} is not held: {held:?}"
        );
    }
    // Once the end is answered and the resources freed (REMOVE waits for
    // that), neither is held any more, and nothing else is.
    for id in ["zn-0", "zn-1"] {
        let theirs = ns(init_pid(&env, id), "mnt");
        assert_eq!(conn.json(&kill_json(id, 9)).status, 200, "{id}");
        let r = conn.json(&wait_json(id));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["wait_container"]["exit_status"], 9, "{}", r.text());
        let r = conn.json(&remove_json(id));
        assert_eq!(r.status, 200, "{}", r.text());
        let held = held_mount_namespaces(&agent);
        assert!(
            !held.contains(&theirs),
            "{id}: {theirs} still held: {held:?}"
        );
    }
    // Nothing is held any more (a waiting spawner's namespace is its
    // own); a stopped agent leaves no process.
    assert_eq!(held_mount_namespaces(&agent), Vec::<String>::new());
    drop(conn);
    drop(agent);
    assert_eq!(spawners_of(env.runtime.path()), Vec::<u32>::new());
    assert_eq!(common::inits_of(env.runtime.path()), Vec::<u32>::new());
}

/// Its mount points (the fifth field of each `mountinfo` line) and their
/// filesystem types.
fn mounts(pid: u32) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    text.lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            let dash = fields.iter().position(|f| *f == "-")?;
            Some((
                fields.get(4)?.to_string(),
                fields.get(dash + 1)?.to_string(),
            ))
        })
        .collect()
}

#[test]
fn privileged_agent_zygote_mounts_ahead_and_its_container_sees_them() {
    if !require_root("privileged_agent_zygote_mounts_ahead_and_its_container_sees_them") {
        return;
    }
    let env = Env::new();
    let (agent, mut conn) = Agent::start_with_running(&env, "zm-0");
    let first = init_pid(&env, "zm-0");
    let zygote = ready_zygote(&env, &agent, &mut conn, &[first]);
    // Waiting for its container, it has its own /dev/shm already (the
    // default launch has a new ipc namespace), but not yet a /proc of its
    // own (its pid namespace is made at the launch); the host's mounts are
    // as they were. (Counted, not compared whole: other tests mount on
    // this host.)
    let count = |pid, at: &str| {
        mounts(pid)
            .into_iter()
            .filter(|(point, _)| point == at)
            .count()
    };
    assert_eq!(
        count(zygote, "/dev/shm"),
        count(agent.pid(), "/dev/shm") + 1
    );
    assert_eq!(count(zygote, "/proc"), count(agent.pid(), "/proc"));
    let host_count = |pid| count(pid, "/proc") + count(pid, "/dev/shm");
    let host_before = host_count(agent.pid());
    let zygote_mnt = ns(zygote, "mnt");
    // Its container sees them: its init is pid 1 of its /proc, and a file
    // in its /dev/shm is not the host's.
    let probe = r#"cat /proc/1/cmdline | tr '\0' ' ' > "$MESOS_SANDBOX/one"
        echo mine > /dev/shm/zm-1-probe
        cat /dev/shm/zm-1-probe > "$MESOS_SANDBOX/shm""#;
    let r = conn.json(&launch_json("zm-1", probe));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_cloned_in(init_pid(&env, "zm-1"), &zygote_mnt);
    let r = conn.json(&wait_json("zm-1"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["wait_container"]["exit_status"], 0, "{}", r.text());
    let one = std::fs::read_to_string(env.sandbox("zm-1").join("one")).unwrap();
    assert!(one.ends_with(" init "), "pid 1 of its /proc: {one:?}");
    let shm = std::fs::read_to_string(env.sandbox("zm-1").join("shm")).unwrap();
    assert_eq!(shm, "mine\n");
    assert!(!std::path::Path::new("/dev/shm/zm-1-probe").exists());
    assert_eq!(host_count(agent.pid()), host_before);
    assert_eq!(conn.json(&kill_json("zm-0", 9)).status, 200);
    assert_eq!(conn.json(&wait_json("zm-0")).status, 200);
}

#[test]
fn privileged_agent_launches_on_without_its_spawner_factory() {
    if !require_root("privileged_agent_launches_on_without_its_spawner_factory") {
        return;
    }
    let env = Env::new();
    let (agent, mut conn) = Agent::start_with_running(&env, "zf-0");
    let first = init_pid(&env, "zf-0");
    ready_zygote(&env, &agent, &mut conn, &[first]);
    // Someone kills the factory: the waiting spawner still serves the
    // next launch, and every launch after clones its init as without one.
    let factory = factory_of(agent.pid()).expect("the agent has a spawner factory");
    // SAFETY: kill(2) of a live pid this test found; no memory involved.
    assert_eq!(unsafe { libc::kill(factory as i32, libc::SIGKILL) }, 0);
    for (n, id) in ["zf-1", "zf-2", "zf-3"].into_iter().enumerate() {
        let r = conn.json(&launch_json(id, &format!("exit {}", n + 4)));
        assert_eq!(r.status, 200, "{}", r.text());
        let r = conn.json(&wait_json(id));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.json()["wait_container"]["exit_status"],
            (n + 4) << 8,
            "{}",
            r.text()
        );
    }
    // The factory was reaped (no zombie), and no spawner is made any more.
    assert!(
        eventually(PATIENCE, || common::proc_state(factory).is_none()),
        "the killed factory was not reaped"
    );
    assert_eq!(waiting_zygote(&env, &agent, &[first]), None);
    assert_eq!(conn.json(&kill_json("zf-0", 9)).status, 200);
    assert_eq!(conn.json(&wait_json("zf-0")).status, 200);
    drop(conn);
    drop(agent);
    assert_eq!(common::inits_of(env.runtime.path()), Vec::<u32>::new());
}
