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

/// Every pid in the container's cgroups, any hierarchy, any depth.
fn pids_in(env: &Env, id: &str) -> Vec<i64> {
    let mut pids = Vec::new();
    let mut stack = env.cgroup_dirs(id);
    while let Some(dir) = stack.pop() {
        if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            pids.extend(text.lines().filter_map(|l| l.trim().parse::<i64>().ok()));
        }
        if let Ok(entries) = std::fs::read_dir(&dir) {
            stack.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Launches `id` running a shell that forks a background `sleep` and
/// execs another; returns every pid of the container (init, both sleeps)
/// once all three are in its cgroup.
fn detach_forking(env: &Env, id: &str) -> Vec<i64> {
    env.detach(id, &["sh", "-c", "sleep 1000 & exec sleep 1000"]);
    let mut pids = Vec::new();
    assert!(
        eventually(PATIENCE, || {
            pids = pids_in(env, id);
            pids.len() >= 3
        }),
        "{id}: the command never forked: {pids:?}"
    );
    pids
}

/// The record's directory holds no temporaries (`.NAME.PID`).
fn no_temporaries(env: &Env, id: &str) {
    // A nested record is `<parent>/containers/<child>`.
    let dir = env.container_dir(&id.replace('.', "/containers/"));
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.starts_with('.')), "{id}: {names:?}");
}

/// A destroy's termination (the printed report, or the record `status`
/// shows, which has no `signal`).
fn assert_destroyed(t: &serde_json::Value) {
    if let Some(signal) = t.get("signal") {
        assert_eq!(signal, libc::SIGKILL, "{t}");
    }
    assert_eq!(t["status"], libc::SIGKILL, "{t}");
    assert_eq!(t["state"], "TASK_KILLED", "{t}");
    assert_eq!(t["message"], "Container destroyed", "{t}");
}

/// A batch kills every container before waiting for any: 50 containers
/// whose commands forked children, destroyed in one call, each with its
/// exact termination, every process gone, nothing left in any hierarchy
/// and no temporaries in any record.
#[test]
fn privileged_a_batch_of_50_forking_containers_ends_each_exactly() {
    if !require_root("privileged_a_batch_of_50_forking_containers_ends_each_exactly") {
        return;
    }
    let env = Env::new();
    let ids: Vec<String> = (0..50).map(|n| format!("b{n}")).collect();
    let mut pids = Vec::new();
    for id in &ids {
        pids.extend(detach_forking(&env, id));
    }
    let mut args = vec!["destroy", "--json"];
    args.extend(ids.iter().map(String::as_str));
    let out = env.ok(&args);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let printed: Vec<&str> = lines.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(printed, ids, "{out}");
    for t in &lines {
        assert_destroyed(t);
    }
    for &p in &pids {
        assert!(eventually(PATIENCE, || !alive(p)), "{p} survived destroy");
    }
    for id in &ids {
        assert!(env.cgroup_dirs(id).is_empty(), "cgroup of {id} left");
        no_temporaries(&env, id);
        let status = env.status_json(id);
        assert_eq!(status["state"], "TERMINATED", "{status}");
        assert_destroyed(&status["termination"]);
    }
}

/// A batch mixing live containers with one whose end is recorded, one
/// whose command ended by itself unrecorded, one whose command ends while
/// the batch runs, a nested one and an unknown ID: each known container
/// gets its exact, single termination (the one `wait` answers afterwards),
/// the unknown one is one line on stderr, exit 1.
#[test]
fn privileged_a_mixed_batch_gives_each_its_exact_termination() {
    if !require_root("privileged_a_mixed_batch_gives_each_its_exact_termination") {
        return;
    }
    let env = Env::new();
    let mut pids = Vec::new();
    for id in ["live1", "live2", "live3"] {
        pids.extend(detach_forking(&env, id));
    }
    assert_eq!(
        env.ok(&[
            "run", "-d", "--parent", "live1", "--id", "kid", "--", "sleep", "1000"
        ]),
        "live1.kid"
    );
    pids.push(env.status_json("live1.kid")["pid"].as_i64().unwrap());
    // Recorded before the batch.
    let out = env.run(&["run", "--id", "recorded", "--", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let recorded = env.wait_json("recorded");
    assert_eq!(recorded["exit_code"], 3, "{recorded}");
    // Ended by itself, nobody has recorded it yet.
    env.detach("ended", &["sh", "-c", "exit 5"]);
    let init = env.status_json("ended")["pid"].as_i64().unwrap();
    assert!(eventually(PATIENCE, || !alive(init)), "ended's init lives");
    // Ends by itself as soon as the gate opens, which the test does just
    // as the batch starts: killed or ended, either way once and exactly.
    let gate = env.work.path().join("gate");
    let script = format!(
        "while [ ! -e {} ]; do sleep 0.01; done; exit 7",
        gate.display()
    );
    env.detach("racer", &["sh", "-c", &script]);

    let mut cmd = env.cmd();
    cmd.args([
        "destroy",
        "--json",
        "live1.kid",
        "live1",
        "recorded",
        "ghost",
        "ended",
        "racer",
        "live2",
        "live3",
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    std::fs::write(&gate, "").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = stderr(&out);
    assert_eq!(
        err.trim(),
        "phobos: destroy ghost: unknown container 'ghost'",
        "{err}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by_id = |id: &str| -> serde_json::Value {
        let found: Vec<&serde_json::Value> = lines.iter().filter(|t| t["id"] == id).collect();
        assert_eq!(found.len(), 1, "{id}: {stdout}");
        let mut t = found[0].clone();
        t.as_object_mut().unwrap().remove("id");
        t
    };
    assert_eq!(lines.len(), 7, "{stdout}");
    for id in ["live1", "live2", "live3", "live1.kid"] {
        assert_destroyed(&by_id(id));
    }
    assert_eq!(by_id("recorded"), recorded, "{stdout}");
    let ended = by_id("ended");
    assert_eq!(ended["exit_code"], 5, "{ended}");
    assert_eq!(ended["state"], "TASK_FAILED", "{ended}");
    let racer = by_id("racer");
    if racer.get("exit_code").is_some() {
        assert_eq!(racer["exit_code"], 7, "{racer}");
        assert_eq!(racer["state"], "TASK_FAILED", "{racer}");
    } else {
        assert_destroyed(&racer);
    }
    // Single: what was printed is what is recorded and what `wait` says.
    for id in ["live1", "live1.kid", "recorded", "ended", "racer", "live2"] {
        assert_eq!(env.wait_json(id), by_id(id), "{id}");
        no_temporaries(&env, id);
        assert!(env.cgroup_dirs(id).is_empty(), "cgroup of {id} left");
    }
    for &p in &pids {
        assert!(eventually(PATIENCE, || !alive(p)), "{p} survived destroy");
    }
}

/// A destroyer SIGKILLed after its batch killed every container and
/// before it freed any: each is DESTROYING with nothing recorded, and
/// `recover` records each termination once (a second `recover` or
/// `destroy` changes nothing) and leaves nothing behind.
#[test]
fn privileged_a_batch_killed_between_kill_and_free_is_recovered() {
    if !require_root("privileged_a_batch_killed_between_kill_and_free_is_recovered") {
        return;
    }
    let env = Env::new();
    let ids = ["k1", "k2", "k3", "k4"];
    let mut pids = Vec::new();
    for id in ids {
        pids.extend(detach_forking(&env, id));
    }
    let mut args = vec!["destroy"];
    args.extend(ids);
    kill_stopped_at(env.cmd().args(&args), "batch-killed");
    for id in ids {
        let state = std::fs::read_link(env.container_dir(id).join("state")).unwrap();
        assert!(
            state.to_string_lossy().starts_with("DESTROYING"),
            "{id}: {state:?}"
        );
        assert!(!env.container_dir(id).join("termination").exists(), "{id}");
    }
    let report = env.ok(&["recover"]);
    for id in ids {
        assert!(
            report.contains(&format!("recorded the termination of {id}")),
            "{id}: {report}"
        );
    }
    let mut first = Vec::new();
    for id in ids {
        let status = env.status_json(id);
        assert_eq!(status["state"], "TERMINATED", "{status}");
        assert_destroyed(&status["termination"]);
        first.push(std::fs::read(env.container_dir(id).join("termination")).unwrap());
        assert!(env.cgroup_dirs(id).is_empty(), "cgroup of {id} left");
        no_temporaries(&env, id);
    }
    for &p in &pids {
        assert!(eventually(PATIENCE, || !alive(p)), "{p} survived destroy");
    }
    // Recorded once: nothing later changes it.
    let report = env.ok(&["recover"]);
    assert!(!report.contains("recorded the termination"), "{report}");
    env.ok(&args);
    for (id, before) in ids.iter().zip(&first) {
        let after = std::fs::read(env.container_dir(id).join("termination")).unwrap();
        assert_eq!(&after, before, "{id}");
    }
}
