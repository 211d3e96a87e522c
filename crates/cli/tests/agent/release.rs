//! WAIT_CONTAINER answers once a container's end is recorded, and its
//! resources are freed after the answer: REMOVE, the CLI and a recovery
//! after a crash in between all see a consistent state.

use super::*;

/// A command that exits with `code` once the test opens its gate
/// ([`open_gate`]). An agent stopping at `recorded` freezes as a whole:
/// had the command ended before the agent wrote the LAUNCH answer, the
/// answer would never come.
fn gated_exit(code: i32) -> String {
    format!("while [ ! -e \"$MESOS_SANDBOX/go\" ]; do sleep 0.05; done; exit {code}")
}

fn open_gate(env: &Env, id: &str) {
    std::fs::write(env.sandbox(id).join("go"), "").unwrap();
}

#[test]
fn privileged_agent_remove_right_after_wait_finds_everything_freed() {
    if !require_root("privileged_agent_remove_right_after_wait_finds_everything_freed") {
        return;
    }
    let env = Env::new();
    let agent = Agent::start(&env, &[]);
    let mut conn = agent.conn();
    for i in 0..10 {
        let c = format!("freed-{i}");
        let r = conn.json(&launch_json(&c, &format!("exit {i}")));
        assert_eq!(r.status, 200, "{}", r.text());
        let r = conn.json(&wait_json(&c));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["wait_container"]["exit_status"], i << 8, "{c}");
        // Even while its resources may still be being freed, every face
        // sees the end the waiter was told.
        let status = env.status_json(&c);
        assert_eq!(status["state"], "TERMINATED", "{c}: {status}");
        assert_eq!(status["termination"]["status"], i << 8, "{c}: {status}");
        // REMOVE right after the answer: freed, then removed.
        let r = conn.json(&remove_json(&c));
        assert_eq!(r.status, 200, "{c}: {}", r.text());
        assert!(
            env.cgroup_dirs(&c).is_empty(),
            "{c}: {:?}",
            env.cgroup_dirs(&c)
        );
        assert!(!env.container_dir(&c).exists(), "{c}");
    }
    // A relaunch of a removed ID is a new container.
    let r = conn.json(&launch_json("freed-0", "exit 7"));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = conn.json(&wait_json("freed-0"));
    assert_eq!(r.json()["wait_container"]["exit_status"], 7 << 8);
    // Launched again before its REMOVE: Mesos's duplicate launch.
    assert_eq!(conn.json(&launch_json("freed-0", "exit 8")).status, 202);
}

#[test]
fn privileged_agent_killed_before_freeing_leaves_it_to_recovery() {
    if !require_root("privileged_agent_killed_before_freeing_leaves_it_to_recovery") {
        return;
    }
    let env = Env::new();
    // The agent freezes itself right after recording the end, before it
    // answers or frees anything; then it dies there.
    let agent = Agent::start_stopping_at(&env, "recorded");
    let r = agent
        .conn()
        .json(&launch_json("half-freed", &gated_exit(4)));
    assert_eq!(r.status, 200, "{}", r.text());
    open_gate(&env, "half-freed");
    let termination = env.container_dir("half-freed").join("termination");
    let stopped = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|t| t.trim_start().starts_with('T'))
        })
    };
    assert!(
        eventually(PATIENCE, || termination.exists() && stopped(agent.pid())),
        "the agent did not stop after recording the end"
    );
    // Recorded, not yet freed: the container's cgroups are still there.
    assert!(!env.cgroup_dirs("half-freed").is_empty());
    agent.crash();

    // The next agent's recovery frees them; its WAIT answers the end.
    let agent = Agent::start(&env, &[]);
    let mut conn = agent.conn();
    let r = conn.json(&wait_json("half-freed"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["wait_container"]["exit_status"], 4 << 8);
    let state = std::fs::read_link(env.container_dir("half-freed").join("state")).unwrap();
    assert!(
        state.to_string_lossy().starts_with("TERMINATED"),
        "{state:?}"
    );
    assert!(
        env.cgroup_dirs("half-freed").is_empty(),
        "{:?}",
        env.cgroup_dirs("half-freed")
    );
    assert_eq!(conn.json(&remove_json("half-freed")).status, 200);
}

#[test]
fn privileged_removing_a_recorded_unfreed_container_frees_it_first() {
    if !require_root("privileged_removing_a_recorded_unfreed_container_frees_it_first") {
        return;
    }
    let env = Env::new();
    // An agent that dies after recording the end, before freeing: the
    // record reads 'recorded', the cgroups are still there.
    let agent = Agent::start_stopping_at(&env, "recorded");
    let r = agent
        .conn()
        .json(&launch_json("rm-unfreed", &gated_exit(3)));
    assert_eq!(r.status, 200, "{}", r.text());
    open_gate(&env, "rm-unfreed");
    let termination = env.container_dir("rm-unfreed").join("termination");
    assert!(
        eventually(PATIENCE, || termination.exists()),
        "the agent did not record the end"
    );
    // The freeze comes right after the write; wait for it so the crash
    // cannot land mid-write.
    assert!(
        eventually(PATIENCE, || std::fs::read_to_string(format!(
            "/proc/{}/stat",
            agent.pid()
        ))
        .is_ok_and(|s| s
            .rsplit(')')
            .next()
            .is_some_and(|t| t.trim_start().starts_with('T')))),
        "the agent did not stop after recording the end"
    );
    agent.crash();
    assert!(!env.cgroup_dirs("rm-unfreed").is_empty());

    // The CLI's removal, with no recovery before it: frees, then removes.
    let out = env.cmd().args(["state", "--rm"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("removed rm-unfreed"),
        "{out:?}"
    );
    assert!(!env.container_dir("rm-unfreed").exists());
    assert!(
        env.cgroup_dirs("rm-unfreed").is_empty(),
        "{:?}",
        env.cgroup_dirs("rm-unfreed")
    );
}
