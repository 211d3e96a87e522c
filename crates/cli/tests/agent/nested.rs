//! Nested containers over the API: LAUNCH/WAIT/KILL/REMOVE_NESTED_CONTAINER
//! and LinuxInfo/RLimitInfo on a nested launch.

use super::*;

#[test]
fn privileged_nested_launch_honours_linux_info_and_rlimit_info() {
    if !require_root("privileged_nested_launch_honours_linux_info_and_rlimit_info") {
        return;
    }
    let env = Env::new();
    let (_agent, mut conn) = Agent::start_with_running(&env, "lpar");
    let nested = |value: &str| serde_json::json!({"value": value, "parent": {"value": "lpar"}});
    let probe = "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; echo nofile=$(ulimit -n); \
                 grep ' /dev/shm ' /proc/self/mountinfo | tail -n 1; \
                 grep -l '^sleep$' /proc/[0-9]*/comm >/dev/null && echo sees-parent || echo own-pids";
    let launch = |kid: &str, linux: serde_json::Value| {
        serde_json::json!({"type": "LAUNCH_NESTED_CONTAINER",
            "launch_nested_container": {"container_id": nested(kid),
                "command": {"value": probe},
                "container": {"type": "MESOS", "linux_info": linux,
                    "rlimit_info": {"rlimits": [{"type": "RLMT_NOFILE", "soft": 77, "hard": 88}]}}}})
    };
    let wait = |conn: &mut Conn, kid: &str| {
        let r = conn.json(&serde_json::json!({"type": "WAIT_NESTED_CONTAINER",
            "wait_nested_container": {"container_id": nested(kid)}}));
        assert_eq!(r.status, 200, "{}", r.text());
        let out = std::fs::read_to_string(
            env.sandbox("lpar")
                .join("containers")
                .join(kid)
                .join("stdout"),
        )
        .unwrap();
        assert_eq!(r.json()["wait_nested_container"]["exit_status"], 0, "{out}");
        out
    };
    // Own pid and ipc namespaces, CAP_NET_RAW only, a sized /dev/shm.
    let r = conn.json(&launch(
        "k1",
        serde_json::json!({"effective_capabilities": {"capabilities": ["NET_RAW"]},
            "ipc_mode": "PRIVATE", "shm_size": {"value": 8}}),
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    let out = wait(&mut conn, "k1");
    assert!(out.contains("CapEff:\t0000000000002000"), "{out}");
    assert!(out.contains("nofile=77"), "{out}");
    assert!(out.contains("size=8192k"), "{out}");
    assert!(out.contains("own-pids"), "{out}");
    // The parent's pid namespace, and no capabilities at all.
    let r = conn.json(&launch(
        "k2",
        serde_json::json!({"effective_capabilities": {"capabilities": []},
            "share_pid_namespace": true}),
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    let out = wait(&mut conn, "k2");
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    assert!(out.contains("sees-parent"), "{out}");
    // A shm_size without a private ipc namespace is refused, nothing made.
    let r = conn.json(&launch(
        "k3",
        serde_json::json!({"ipc_mode": "SHARE_PARENT", "shm_size": {"value": 8}}),
    ));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text()
            .contains("linux_info.shm_size: 8 MB needs ipc_mode PRIVATE"),
        "{}",
        r.text()
    );
    assert!(!env.sandbox("lpar").join("containers/k3").exists());
}

#[test]
fn privileged_agent_serves_the_nested_container_calls() {
    if !require_root("privileged_agent_serves_the_nested_container_calls") {
        return;
    }
    let env = Env::new();
    let agent = Agent::start(&env, &[]);
    let mut conn = agent.conn();
    assert_eq!(conn.json(&launch_json("par", "exec sleep 600")).status, 200);
    let nested = |value: &str| serde_json::json!({"value": value, "parent": {"value": "par"}});

    // The deprecated calls, in JSON.
    let r = conn.json(&serde_json::json!({"type": "LAUNCH_NESTED_CONTAINER",
        "launch_nested_container": {"container_id": nested("kid"),
            "command": {"value": "echo nested; exit 4"}}}));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = conn.json(&serde_json::json!({"type": "WAIT_NESTED_CONTAINER",
        "wait_nested_container": {"container_id": nested("kid")}}));
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["type"], "WAIT_NESTED_CONTAINER");
    assert_eq!(body["wait_nested_container"]["exit_status"], 4 << 8);
    assert_eq!(
        std::fs::read_to_string(env.sandbox("par").join("containers/kid/stdout")).unwrap(),
        "nested\n"
    );
    // The CLI knows it by its full ID.
    assert_eq!(env.status_json("par.kid")["state"], "TERMINATED");

    // LAUNCH_CONTAINER with a parent (Mesos >= 1.5), two levels deep, in
    // protobuf; listed with show_nested, by their parent chains.
    let deep = nested_id(nested_id(id("par"), "kid2"), "grandkid");
    let mut launch = proto_launch("kid2", "exec sleep 600");
    let l = launch.launch_container.as_mut().unwrap();
    l.container_id.parent = Some(Box::new(id("par")));
    l.resources.clear();
    assert_eq!(conn.proto(&launch).0, 200, "{}", conn.proto(&launch).2);
    let mut launch = proto_launch("grandkid", "exec sleep 600");
    let l = launch.launch_container.as_mut().unwrap();
    l.container_id = deep.clone();
    l.resources.clear();
    let (status, _, text) = conn.proto(&launch);
    assert_eq!(status, 200, "{text}");
    let mut get = proto_get(true);
    get.get_containers.as_mut().unwrap().show_nested = Some(true);
    let (_, body, _) = conn.proto(&get);
    let ids: Vec<mesos::ContainerId> = body
        .unwrap()
        .get_containers
        .unwrap()
        .containers
        .into_iter()
        .map(|c| c.container_id)
        .collect();
    assert!(ids.contains(&deep), "{ids:?}");
    // par, par.kid2 and the grandkid; par.kid has ended.
    assert_eq!(ids.len(), 3, "{ids:?}");
    let (_, body, _) = conn.proto(&proto_get(true));
    assert_eq!(body.unwrap().get_containers.unwrap().containers.len(), 1);

    let kill = Call {
        kill_nested_container: Some(call::KillNestedContainer {
            container_id: deep.clone(),
            signal: Some(15),
        }),
        ..proto_call(CallType::KillNestedContainer)
    };
    assert_eq!(conn.proto(&kill).0, 200);
    let wait = Call {
        wait_nested_container: Some(call::WaitNestedContainer {
            container_id: deep.clone(),
        }),
        ..proto_call(CallType::WaitNestedContainer)
    };
    let (status, body, _) = conn.proto(&wait);
    assert_eq!(status, 200);
    assert_eq!(
        body.unwrap().wait_nested_container.unwrap().exit_status,
        Some(15)
    );
    let remove = Call {
        remove_nested_container: Some(call::RemoveNestedContainer {
            container_id: deep.clone(),
        }),
        ..proto_call(CallType::RemoveNestedContainer)
    };
    assert_eq!(conn.proto(&remove).0, 200);
    assert_eq!(conn.proto(&wait).0, 404);

    // The nested calls need a parent; an unknown parent is refused.
    let r = conn.json(&serde_json::json!({"type": "WAIT_NESTED_CONTAINER",
        "wait_nested_container": {"container_id": {"value": "par"}}}));
    assert_eq!(r.status, 400, "{}", r.text());
    let r = conn.json(&serde_json::json!({"type": "LAUNCH_NESTED_CONTAINER",
        "launch_nested_container": {"container_id": {"value": "x", "parent": {"value": "ghost"}},
            "command": {"value": "true"}}}));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("ghost"), "{}", r.text());

    // A session: its output streams until the client goes, which destroys
    // the container.
    let mut session = agent.conn();
    session.send(
        "POST",
        "/api/v1",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/recordio"),
            ("Message-Accept", "application/json"),
        ],
        serde_json::json!({"type": "LAUNCH_NESTED_CONTAINER_SESSION",
            "launch_nested_container_session": {"container_id": nested("sess"),
                "command": {"value": "echo hello-session; exec sleep 600"}}})
        .to_string()
        .as_bytes(),
    );
    assert_eq!(session.read_head(), 200);
    // Records may span chunks: parse what has arrived, complete records only.
    let mut arrived = Vec::new();
    loop {
        arrived.extend(session.read_chunk().expect("the stream ended early"));
        let mut seen = Vec::new();
        for rec in phobos_proto::recordio::Records::new(std::io::Cursor::new(arrived.clone())) {
            let Ok(rec) = rec else { break };
            let rec: phobos_proto::agent::ProcessIo =
                phobos_proto::json::from_json_str(std::str::from_utf8(&rec).unwrap()).unwrap();
            if let Some(d) = rec.data {
                seen.extend_from_slice(d.data());
            }
        }
        if String::from_utf8_lossy(&seen).contains("hello-session") {
            break;
        }
    }
    assert_eq!(env.status_json("par.sess")["state"], "RUNNING");
    drop(session);
    assert!(
        eventually(PATIENCE, || env.status_json("par.sess")["state"]
            == "TERMINATED"),
        "the session's container outlived its connection"
    );
    assert_eq!(env.status_json("par")["state"], "RUNNING");
}
