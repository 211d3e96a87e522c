//! One ID namespace for both containerizers: concurrent `phobos run -d
//! --id SAME`, half of them in Docker containers and half in Mesos ones,
//! have exactly one winner; every loser exits 2 with one line saying the
//! container exists, and leaves nothing behind (no engine container, no
//! cgroup, no sandbox, no record, no reservation).

mod common;

use std::process::Stdio;

use common::Env;
use common::engine::{IMAGE, engine_containers, engine_or_skip};

const RACERS: usize = 8;
const ROUNDS: usize = 4;

#[test]
fn privileged_racing_mixed_launches_of_one_id_have_one_winner() {
    if !engine_or_skip("privileged_racing_mixed_launches_of_one_id_have_one_winner") {
        return;
    }
    let env = Env::new();
    for round in 0..ROUNDS {
        let id = format!("race-{}", uuid::Uuid::new_v4().simple());
        let racers: Vec<_> = (0..RACERS)
            .map(|i| {
                let mut c = env.cmd();
                c.args(["run", "-d", "--id", &id]);
                if i % 2 == 0 {
                    c.args(["--docker-image", IMAGE]);
                }
                c.args(["--", "sleep", "300"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                (i % 2 == 0, c.spawn().unwrap())
            })
            .collect();
        let results: Vec<_> = racers
            .into_iter()
            .map(|(docker, child)| (docker, child.wait_with_output().unwrap()))
            .collect();
        let winners: Vec<_> = results.iter().filter(|(_, o)| o.status.success()).collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: {:?}",
            results
                .iter()
                .map(|(d, o)| (d, o.status.code(), String::from_utf8_lossy(&o.stderr)))
                .collect::<Vec<_>>()
        );
        let winner_docker = winners[0].0;
        assert_eq!(String::from_utf8_lossy(&winners[0].1.stdout).trim(), id);
        for (docker, out) in results.iter().filter(|(_, o)| !o.status.success()) {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "docker={docker}: {stderr}");
            assert_eq!(
                stderr,
                format!("phobos: container '{id}' already exists\n"),
                "docker={docker}"
            );
            assert!(out.stdout.is_empty());
        }
        // Only the winner's containerizer holds anything.
        let status = env.status_json(&id);
        assert_eq!(status["state"], "RUNNING", "round {round}: {status}");
        assert_eq!(
            status["containerizer"] == "docker",
            winner_docker,
            "{status}"
        );
        let engine = engine_containers(&id);
        let mesos_record = env.container_dir(&id).exists();
        if winner_docker {
            assert_eq!(engine.len(), 1, "{engine:?}");
            assert!(!mesos_record, "a losing Mesos launch left its record");
            assert!(
                env.cgroup_dirs(&id).is_empty(),
                "a losing Mesos launch left cgroups"
            );
        } else {
            assert!(engine.is_empty(), "a losing Docker launch left {engine:?}");
            assert!(mesos_record);
        }
        // And once it is gone, nothing of the ID is left.
        env.ok(&["destroy", &id]);
        env.ok(&["state", "--rm"]);
        assert!(engine_containers(&id).is_empty());
        assert!(env.cgroup_dirs(&id).is_empty());
        assert!(!env.sandbox(&id).exists());
        assert!(!env.container_dir(&id).exists());
        assert!(
            !env.runtime
                .path()
                .join("docker/containers")
                .join(&id)
                .exists()
        );
        assert!(!env.runtime.path().join("ids").join(&id).exists());
        // The ID is free again, for either containerizer.
        let again = env.run(&["run", "--id", &id, "--", "true"]);
        assert_eq!(again.status.code(), Some(0), "{again:?}");
        env.ok(&["state", "--rm"]);
    }
}
