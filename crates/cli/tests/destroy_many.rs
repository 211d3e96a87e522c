//! `phobos destroy ID...` through the real binary: several containers (a
//! nested one and its parent among them) destroyed by one call, each with
//! its own exact termination and nothing left; a bad ID refuses the whole
//! call before anything changes; an unknown one fails alone.

mod common;

use common::*;

#[test]
fn privileged_destroy_of_several_ids_kills_each_exactly_and_leaves_nothing() {
    if !require_root("privileged_destroy_of_several_ids_kills_each_exactly_and_leaves_nothing") {
        return;
    }
    let env = Env::new();
    for id in ["m1", "m2", "m3"] {
        env.detach(id, &["sleep", "1000"]);
    }
    assert_eq!(
        env.ok(&[
            "run", "-d", "--parent", "m1", "--id", "kid", "--", "sleep", "1000"
        ]),
        "m1.kid"
    );
    let pid = |id: &str| env.status_json(id)["pid"].as_i64().unwrap();
    let pids: Vec<i64> = ["m1", "m2", "m3", "m1.kid"].into_iter().map(pid).collect();

    // Bad input anywhere: exit 2 and every container still runs.
    let out = env.run(&["destroy", "m1", "no/slash", "m2"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no/slash"), "{err}");
    for &p in &pids {
        assert!(alive(p), "a refused destroy killed {p}");
    }

    // The parent before its child in the arguments, and a repeat: the
    // child still gets its own termination, every one is printed once.
    let out = env.ok(&["destroy", "--json", "m1", "m2", "m1.kid", "m3", "m2"]);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<&str> = lines.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["m1", "m2", "m1.kid", "m3"], "{out}");
    for t in &lines {
        assert_eq!(t["signal"], libc::SIGKILL, "{t}");
        assert_eq!(t["state"], "TASK_KILLED", "{t}");
    }
    for &p in &pids {
        assert!(eventually(PATIENCE, || !alive(p)), "{p} survived destroy");
    }
    for id in ["m1", "m2", "m3"] {
        assert!(env.cgroup_dirs(id).is_empty(), "cgroup of {id} left");
    }
    let ps: Vec<serde_json::Value> = serde_json::from_str(&env.ok(&["ps", "--json"])).unwrap();
    assert!(ps.iter().all(|c| c["state"] == "TERMINATED"), "{ps:?}");

    // An unknown ID fails alone: the known one is destroyed, exit 1.
    env.detach("m4", &["sleep", "1000"]);
    let p4 = pid("m4");
    let out = env.run(&["destroy", "ghost", "m4"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("destroy ghost: unknown container 'ghost'"),
        "{err}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("m4: "), "{stdout}");
    assert!(eventually(PATIENCE, || !alive(p4)), "m4 survived destroy");
    assert!(env.cgroup_dirs("m4").is_empty(), "cgroup of m4 left");
}
