//! The agent's spare cgroup directories (cgroup v1 hierarchies only: the
//! kernel refuses to rename a cgroup2 directory): made after a launch,
//! renamed into place by the next ones, removed when the agent stops and,
//! after a SIGKILL, by the next recovery. Nothing is ever left.

use std::path::PathBuf;

use super::*;

/// Every spare directory under the environment's cgroups root, in any
/// hierarchy.
fn spares(env: &Env) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for h in common::all_hierarchies() {
        let Ok(entries) = std::fs::read_dir(h.join(&env.cgroups_root)) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with("spare.") && e.path().is_dir() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

fn run_to_end(conn: &mut Conn, c: &str, command: &str) {
    let r = conn.json(&launch_json(c, command));
    assert_eq!(r.status, 200, "{c}: {}", r.text());
    let r = conn.json(&wait_json(c));
    assert_eq!(r.status, 200, "{c}: {}", r.text());
}

#[test]
fn privileged_agent_spare_cgroups_are_used_and_never_left() {
    if !require_root("privileged_agent_spare_cgroups_are_used_and_never_left") {
        return;
    }
    // A v1 memory hierarchy (a hybrid or v1 host) is where spares are
    // kept; on a pure cgroup2 host there must be none at all.
    let v1 = std::path::Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists();
    let env = Env::new();
    let agent = Agent::start(&env, &[]);
    let mut conn = agent.conn();
    if !v1 {
        run_to_end(&mut conn, "spare-0", "exit 0");
        run_to_end(&mut conn, "spare-1", "exit 0");
        assert!(spares(&env).is_empty(), "{:?}", spares(&env));
        return;
    }
    // The first launch makes its directories; the pool then keeps
    // SPARE_CGROUPS (4) spares beside them in each of its v1 hierarchies
    // (a cgroup2 root has cgroup.controllers; a v1 one does not).
    let r = conn.json(&launch_json("spare-0", "exec sleep 600"));
    assert_eq!(r.status, 200, "{}", r.text());
    let roots: Vec<PathBuf> = env
        .cgroup_dirs("spare-0")
        .iter()
        .filter_map(|d| d.parent().map(PathBuf::from))
        .filter(|root| !root.parent().unwrap().join("cgroup.controllers").exists())
        .collect();
    assert!(!roots.is_empty(), "{:?}", env.cgroup_dirs("spare-0"));
    let in_root = |root: &PathBuf, list: &[PathBuf]| {
        list.iter()
            .filter(|s| s.parent() == Some(root.as_path()))
            .count()
    };
    assert!(
        eventually(PATIENCE, || {
            let now = spares(&env);
            roots.iter().all(|r| in_root(r, &now) == 4)
        }),
        "the spare cgroups were not made: {:?} in {roots:?}",
        spares(&env)
    );
    assert_eq!(conn.json(&kill_json("spare-0", 9)).status, 200);
    assert_eq!(conn.json(&wait_json("spare-0")).status, 200);
    let before = spares(&env);
    let r = conn.json(&launch_json("spare-1", "exec sleep 600"));
    assert_eq!(r.status, 200, "{}", r.text());
    // In every one of those hierarchies it took a spare (renamed into
    // place; new ones get new names).
    let now = spares(&env);
    for root in &roots {
        assert!(
            before
                .iter()
                .any(|s| s.parent() == Some(root.as_path()) && !now.contains(s)),
            "no spare was taken in {root:?}: before {before:?}, now {now:?}"
        );
    }
    let procs = std::fs::read_to_string(
        PathBuf::from("/sys/fs/cgroup/memory")
            .join(&env.cgroups_root)
            .join("spare-1/cgroup.procs"),
    )
    .unwrap();
    assert!(!procs.trim().is_empty(), "spare-1's memory cgroup is empty");
    // Its devices spare came with the default list written (off the
    // launch's path): exactly the list a made directory gets.
    let devices = PathBuf::from("/sys/fs/cgroup/devices")
        .join(&env.cgroups_root)
        .join("spare-1/devices.list");
    if devices.exists() {
        let list = std::fs::read_to_string(&devices).unwrap();
        let mut got: Vec<&str> = list.lines().collect();
        got.sort_unstable();
        let mut want = vec![
            "c *:* m",
            "b *:* m",
            "c 5:1 rwm",
            "c 4:0 rwm",
            "c 4:1 rwm",
            "c 136:* rwm",
            "c 5:2 rwm",
            "c 10:200 rwm",
            "c 1:3 rwm",
            "c 1:5 rwm",
            "c 1:7 rwm",
            "c 5:0 rwm",
            "c 1:9 rwm",
            "c 1:8 rwm",
        ];
        want.sort_unstable();
        assert_eq!(got, want, "spare-1's devices.list");
    }
    assert_eq!(conn.json(&kill_json("spare-1", 9)).status, 200);
    let r = conn.json(&wait_json("spare-1"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(conn.json(&remove_json("spare-1")).status, 200);
    assert!(env.cgroup_dirs("spare-1").is_empty());

    // A stopped agent leaves none.
    drop(conn);
    drop(agent);
    assert!(spares(&env).is_empty(), "{:?}", spares(&env));

    // A killed one leaves them to the next recovery.
    let agent = Agent::start(&env, &[]);
    let mut conn = agent.conn();
    run_to_end(&mut conn, "spare-2", "exit 0");
    assert!(
        eventually(PATIENCE, || !spares(&env).is_empty()),
        "no spare cgroups were made"
    );
    drop(conn);
    agent.crash();
    assert!(!spares(&env).is_empty());
    let out = env.run(&["recover"]);
    assert!(out.status.success(), "{out:?}");
    assert!(spares(&env).is_empty(), "{:?}", spares(&env));
}
