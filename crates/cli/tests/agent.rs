//! `phobos agent`: the v1 agent container API driven by a real client
//! over the real Unix socket (and TCP), in JSON and in protobuf; status
//! codes for bad input; restart with live containers; adoption both ways;
//! a thousand concurrent waits.

mod agent_client;
#[path = "agent/cli.rs"]
mod cli;
mod common;
#[path = "agent/nested.rs"]
mod nested;
#[path = "agent/release.rs"]
mod release;
#[path = "agent/spares.rs"]
mod spares;
#[path = "agent/zygote.rs"]
mod zygote;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use agent_client::{Agent, Conn, id, kill_json, launch_json, nested_id, remove_json, wait_json};
use common::{Env, PATIENCE, alive, eventually, require_root};
use phobos_proto::agent::call::{self, Type as CallType};
use phobos_proto::agent::response::Type as ResponseType;
use phobos_proto::agent::{Call, Response};
use phobos_proto::mesos;

fn proto_call(t: CallType) -> Call {
    Call {
        r#type: Some(t as i32),
        ..Call::default()
    }
}

fn proto_launch(value: &str, command: &str) -> Call {
    Call {
        launch_container: Some(call::LaunchContainer {
            container_id: id(value),
            command: Some(mesos::CommandInfo {
                value: Some(command.into()),
                ..Default::default()
            }),
            resources: vec![mesos::Resource {
                name: "mem".into(),
                r#type: mesos::value::Type::Scalar as i32,
                scalar: Some(mesos::value::Scalar { value: 64.0 }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..proto_call(CallType::LaunchContainer)
    }
}

fn proto_wait(value: &str) -> Call {
    Call {
        wait_container: Some(call::WaitContainer {
            container_id: id(value),
        }),
        ..proto_call(CallType::WaitContainer)
    }
}

fn proto_get(standalone: bool) -> Call {
    Call {
        get_containers: Some(call::GetContainers {
            show_nested: Some(false),
            show_standalone: Some(standalone),
        }),
        ..proto_call(CallType::GetContainers)
    }
}

/// The IDs a GET_CONTAINERS JSON answer lists.
fn listed(reply: &serde_json::Value) -> Vec<String> {
    reply["get_containers"]["containers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["container_id"]["value"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn get_json(conn: &mut Conn) -> serde_json::Value {
    let reply = conn.json(&serde_json::json!({"type": "GET_CONTAINERS",
        "get_containers": {"show_standalone": true}}));
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    reply.json()
}

#[test]
fn privileged_agent_serves_every_container_call_in_json() {
    if !require_root("privileged_agent_serves_every_container_call_in_json") {
        return;
    }
    let env = Env::new();
    let agent = Agent::start(&env, &[]);
    let mode = std::fs::metadata(&agent.socket)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the socket is root's only");
    let mut conn = agent.conn();

    // A command that ends on its own: its exit status (raw) and message.
    let r = conn.json(&launch_json("j-exit", "echo out; echo err >&2; exit 3"));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = conn.json(&wait_json("j-exit"));
    assert_eq!(r.status, 200, "{}", r.text());
    let w = &r.json()["wait_container"];
    assert_eq!(w["exit_status"], 3 << 8);
    // As Mesos answers a command that simply ended: the status alone (a
    // client such as the default executor would take a state over its own
    // TASK_KILLED, and append a message to its own).
    assert!(
        w.get("state").is_none() && w.get("message").is_none(),
        "{w}"
    );
    let sandbox = env.sandbox("j-exit");
    assert_eq!(
        std::fs::read_to_string(sandbox.join("stdout")).unwrap(),
        "out\n"
    );
    assert_eq!(
        std::fs::read_to_string(sandbox.join("stderr")).unwrap(),
        "err\n"
    );

    // Not a shell command: `value` is executed with `arguments` as its
    // argv, as Mesos's `execvp(value, arguments)`, even where they differ.
    let r = conn.json(
        &serde_json::json!({"type": "LAUNCH_CONTAINER", "launch_container": {
        "container_id": {"value": "j-argv"},
        "command": {"shell": false, "value": "/bin/sh", "arguments": ["renamed", "-c", "echo $0"]}}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = conn.json(&wait_json("j-argv"));
    assert_eq!(r.json()["wait_container"]["exit_status"], 0, "{}", r.text());
    assert_eq!(
        std::fs::read_to_string(env.sandbox("j-argv").join("stdout")).unwrap(),
        "renamed\n"
    );
    assert_eq!(conn.json(&remove_json("j-argv")).status, 200);
    // A shell command runs as `sh -c VALUE` (argv[0] `sh`, as Mesos's).
    let r = conn.json(&launch_json("j-sh", "echo $0"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(conn.json(&wait_json("j-sh")).status, 200);
    assert_eq!(
        std::fs::read_to_string(env.sandbox("j-sh").join("stdout")).unwrap(),
        "sh\n"
    );
    assert_eq!(conn.json(&remove_json("j-sh")).status, 200);

    // A long one: listed with statistics while it runs, killed by signal.
    let r = conn.json(
        &serde_json::json!({"type": "LAUNCH_CONTAINER", "launch_container": {
        "container_id": {"value": "j-sleep"},
        "command": {"shell": false, "value": "/bin/sleep", "arguments": ["sleep", "600"]},
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}},
                      {"name": "mem", "type": "SCALAR", "scalar": {"value": 64}}]}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let all = get_json(&mut conn);
    // The ended one is not listed, as in Mesos (its end stays for WAIT).
    assert_eq!(listed(&all), ["j-sleep"]);
    let sleeping = all["get_containers"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["container_id"]["value"] == "j-sleep")
        .unwrap()
        .clone();
    let stats = &sleeping["resource_statistics"];
    assert!(stats["timestamp"].as_f64().unwrap() > 0.0, "{sleeping}");
    assert_eq!(stats["mem_limit_bytes"], 64 << 20, "{sleeping}");
    assert!(
        sleeping["container_status"]["executor_pid"]
            .as_u64()
            .unwrap()
            > 0
    );
    // Without show_standalone, Phobos's containers (all standalone) are not listed.
    let r = conn.json(&serde_json::json!({"type": "GET_CONTAINERS"}));
    assert_eq!(listed(&r.json()), Vec::<String>::new());

    let r = conn.json(&kill_json("j-sleep", 15));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = conn.json(&wait_json("j-sleep"));
    assert_eq!(r.json()["wait_container"]["exit_status"], 15);
    // A second kill: already killed.
    assert_eq!(conn.json(&kill_json("j-sleep", 9)).status, 404);

    // The CLI sees what the agent launched.
    let status = env.status_json("j-sleep");
    assert_eq!(status["state"], "TERMINATED");

    for c in ["j-exit", "j-sleep"] {
        let r = conn.json(&remove_json(c));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert!(listed(&get_json(&mut conn)).is_empty());
    assert!(!env.container_dir("j-exit").exists());
}

#[test]
fn privileged_agent_serves_every_container_call_in_protobuf() {
    if !require_root("privileged_agent_serves_every_container_call_in_protobuf") {
        return;
    }
    let env = Env::new();
    let agent = Agent::start(&env, &[]);
    let mut conn = agent.conn();
    let (status, body, text) = conn.proto(&proto_launch("p1", "exec sleep 600"));
    assert_eq!((status, body.is_none()), (200, true), "{text}");
    // A duplicate launch is accepted, idempotently.
    assert_eq!(conn.proto(&proto_launch("p1", "exec sleep 600")).0, 202);

    let (status, body, text) = conn.proto(&proto_get(true));
    assert_eq!(status, 200, "{text}");
    let body: Response = body.unwrap();
    assert_eq!(body.r#type(), ResponseType::GetContainers);
    let containers = body.get_containers.unwrap().containers;
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0].container_id.value, "p1");
    let stats = containers[0].resource_statistics.as_ref().unwrap();
    assert_eq!(stats.mem_limit_bytes, Some(64 << 20));

    let kill = Call {
        kill_container: Some(call::KillContainer {
            container_id: id("p1"),
            signal: None,
        }),
        ..proto_call(CallType::KillContainer)
    };
    assert_eq!(conn.proto(&kill).0, 200);
    let (status, body, text) = conn.proto(&proto_wait("p1"));
    assert_eq!(status, 200, "{text}");
    let body = body.unwrap();
    assert_eq!(body.r#type(), ResponseType::WaitContainer);
    let wait = body.wait_container.unwrap();
    // KILL_CONTAINER's default signal is SIGKILL.
    assert_eq!(wait.exit_status, Some(9));

    let remove = Call {
        remove_container: Some(call::RemoveContainer {
            container_id: id("p1"),
        }),
        ..proto_call(CallType::RemoveContainer)
    };
    assert_eq!(conn.proto(&remove).0, 200);
    assert_eq!(conn.proto(&remove).0, 404);
    assert_eq!(conn.proto(&proto_wait("p1")).0, 404);

    // A JSON request answered in protobuf, as Accept asks.
    let r = conn.request(
        "POST",
        "/api/v1",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/x-protobuf"),
        ],
        br#"{"type":"GET_CONTAINERS","get_containers":{"show_standalone":true}}"#,
    );
    assert_eq!(r.status, 200);
    let decoded = <Response as prost::Message>::decode(r.body.as_slice()).unwrap();
    assert_eq!(decoded.r#type(), ResponseType::GetContainers);
}

#[test]
fn privileged_agent_answers_bad_requests_with_mesos_status_codes() {
    if !require_root("privileged_agent_answers_bad_requests_with_mesos_status_codes") {
        return;
    }
    let env = Env::new();
    let agent = Agent::start(&env, &["--max-body", "65536"]);
    let mut conn = agent.conn();
    let json = [("Content-Type", "application/json")];
    let cases: Vec<Case> = vec![
        ("malformed JSON", json.to_vec(), b"{\"type\":".to_vec(), 400),
        ("JSON of another shape", json.to_vec(), b"[1,2]".to_vec(), 400),
        ("not UTF-8", json.to_vec(), vec![0xff, 0xfe], 400),
        ("no type", json.to_vec(), b"{}".to_vec(), 400),
        (
            "missing payload",
            json.to_vec(),
            br#"{"type":"WAIT_CONTAINER"}"#.to_vec(),
            400,
        ),
        (
            "missing required container_id",
            json.to_vec(),
            br#"{"type":"WAIT_CONTAINER","wait_container":{}}"#.to_vec(),
            400,
        ),
        (
            "invalid container ID",
            json.to_vec(),
            br#"{"type":"WAIT_CONTAINER","wait_container":{"container_id":{"value":"../x"}}}"#.to_vec(),
            400,
        ),
        (
            "garbage protobuf",
            vec![("Content-Type", "application/x-protobuf")],
            vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f],
            400,
        ),
        ("no content type", vec![], b"{}".to_vec(), 415),
        (
            "wrong content type",
            vec![("Content-Type", "text/plain")],
            b"{}".to_vec(),
            415,
        ),
        (
            "unacceptable accept",
            vec![("Content-Type", "application/json"), ("Accept", "text/html")],
            br#"{"type":"GET_CONTAINERS"}"#.to_vec(),
            406,
        ),
        (
            "oversized body",
            json.to_vec(),
            vec![b' '; 65537],
            413,
        ),
        (
            "a negative resource",
            json.to_vec(),
            br#"{"type":"LAUNCH_CONTAINER","launch_container":{"container_id":{"value":"neg"},"command":{"value":"true"},"resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":-1}}]}}"#.to_vec(),
            400,
        ),
        (
            "share_cgroups without a parent",
            json.to_vec(),
            br#"{"type":"LAUNCH_CONTAINER","launch_container":{"container_id":{"value":"shr"},"command":{"value":"true"},"container":{"type":"MESOS","linux_info":{"share_cgroups":true}}}}"#.to_vec(),
            400,
        ),
        (
            "unknown container (wait)",
            json.to_vec(),
            wait_json("nobody").to_string().into_bytes(),
            404,
        ),
        (
            "unknown container (kill)",
            json.to_vec(),
            kill_json("nobody", 9).to_string().into_bytes(),
            404,
        ),
        (
            "unknown container (remove)",
            json.to_vec(),
            remove_json("nobody").to_string().into_bytes(),
            404,
        ),
        (
            "bad signal",
            json.to_vec(),
            kill_json("nobody", 999).to_string().into_bytes(),
            400,
        ),
        (
            "Docker ContainerInfo",
            json.to_vec(),
            br#"{"type":"LAUNCH_CONTAINER","launch_container":{"container_id":{"value":"d"},"command":{"value":"true"},"container":{"type":"DOCKER","docker":{"image":"busybox"}}}}"#.to_vec(),
            400,
        ),
        (
            "unknown isolator-free command",
            json.to_vec(),
            br#"{"type":"LAUNCH_CONTAINER","launch_container":{"container_id":{"value":"e"}}}"#.to_vec(),
            400,
        ),
        (
            "a call not served",
            json.to_vec(),
            br#"{"type":"GET_FLAGS"}"#.to_vec(),
            501,
        ),
    ];
    for (what, headers, body, expected) in cases {
        let r = conn.request("POST", "/api/v1", &headers, &body);
        assert_eq!(r.status, expected, "{what}: {}", r.text());
        let text = r.text();
        assert_eq!(text.lines().count(), 1, "{what}: one line, got {text:?}");
        // The connection stays usable after every refusal but 413.
        if expected == 413 {
            conn = agent.conn();
        }
    }
    assert_eq!(conn.request("GET", "/api/v1", &[], b"").status, 405);
    assert_eq!(conn.request("GET", "/nowhere", &[], b"").status, 404);
    // Refused launches left nothing behind.
    for c in ["d", "e", "neg", "shr"] {
        assert!(!env.container_dir(c).exists());
        assert!(!env.sandbox(c).exists());
    }

    // A duplicate launch: 202; removing a running container: 500.
    assert_eq!(conn.json(&launch_json("dup", "exec sleep 600")).status, 200);
    assert_eq!(conn.json(&launch_json("dup", "exec sleep 600")).status, 202);
    let r = conn.json(&remove_json("dup"));
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.text().contains("not terminated"), "{}", r.text());
    assert_eq!(conn.json(&kill_json("dup", 9)).status, 200);
    assert_eq!(conn.json(&wait_json("dup")).status, 200);

    // Every answer was counted.
    let metrics = conn.request("GET", "/metrics", &[], b"").text();
    assert!(
        metrics.contains("phobos_agent_requests_total{call=\"LAUNCH_CONTAINER\",code=\"202\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("phobos_container_state{container_id=\"dup\",state=\"TERMINATED\"} 1")
    );
}

#[test]
fn privileged_agent_tcp_needs_the_bearer_token() {
    if !require_root("privileged_agent_tcp_needs_the_bearer_token") {
        return;
    }
    let env = Env::new();
    let token = env.runtime.path().join("token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let leased = common::lease::port();
    let port = leased.port;
    let listen = format!("tcp:127.0.0.1:{port}");
    let token_arg = token.to_str().unwrap();

    // Usage errors: TCP without a token file, a token others can read.
    let out = env.run(&["agent", "--listen", &listen]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --token-file"));
    let out = env.run(&["agent", "--listen", &listen, "--token-file", token_arg]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("readable by others"));
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();

    let agent = Agent::start(&env, &["--listen", &listen, "--token-file", token_arg]);
    let addr = format!("127.0.0.1:{port}");
    let body = launch_json("t1", "exit 7").to_string();
    let json = ("Content-Type", "application/json");
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("s3cret-token"),
        Some("Bearer s3cret-tokenX"),
    ] {
        let mut headers = vec![json];
        if let Some(a) = auth {
            headers.push(("Authorization", a));
        }
        // A refused client's connection is closed: a new one each time.
        let r = Conn::tcp(&addr).request("POST", "/api/v1", &headers, body.as_bytes());
        assert_eq!(r.status, 401, "{auth:?}");
        assert_eq!(r.header("connection"), Some("close"));
        let r = Conn::tcp(&addr).request("GET", "/metrics", &headers, b"");
        assert_eq!(r.status, 401, "{auth:?}");
    }
    let mut tcp = Conn::tcp(&addr);
    assert!(
        !env.container_dir("t1").exists(),
        "an unauthorized launch ran"
    );
    let auth = ("Authorization", "Bearer s3cret-token");
    let r = tcp.request("POST", "/api/v1", &[json, auth], body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let r = tcp.request(
        "POST",
        "/api/v1",
        &[json, auth],
        wait_json("t1").to_string().as_bytes(),
    );
    assert_eq!(r.json()["wait_container"]["exit_status"], 7 << 8);
    // The Unix socket needs no token (its mode is the access control).
    assert_eq!(agent.conn().json(&wait_json("t1")).status, 200);

    // A second agent on the same socket is refused.
    let out = env.run(&["agent"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use"));
}

/// What is sent, with which headers and body, and the status expected.
type Case = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    Vec<u8>,
    u16,
);

#[test]
fn privileged_agent_restart_keeps_containers_and_adopts_the_clis() {
    if !require_root("privileged_agent_restart_keeps_containers_and_adopts_the_clis") {
        return;
    }
    let env = Env::new();
    let (agent, _) = Agent::start_with_running(&env, "from-agent");
    let pid = env.status_json("from-agent")["pid"].as_i64().unwrap();
    // A waiter is cut off by the crash; the container is not.
    let mut waiter = agent.conn();
    waiter.send(
        "POST",
        "/api/v1",
        &[("Content-Type", "application/json")],
        wait_json("from-agent").to_string().as_bytes(),
    );
    agent.crash();
    std::thread::sleep(Duration::from_millis(200));
    assert!(alive(pid), "the container died with the agent");
    assert_eq!(env.status_json("from-agent")["state"], "RUNNING");

    // The CLI launches one while no agent runs.
    env.detach("from-cli", &["sleep", "600"]);

    let agent = Agent::start(&env, &[]);
    let mut conn = agent.conn();
    let mut ids = listed(&get_json(&mut conn));
    ids.sort();
    assert_eq!(ids, ["from-agent", "from-cli"]);
    for c in ["from-agent", "from-cli"] {
        let mut waiter = agent.conn();
        waiter.send(
            "POST",
            "/api/v1",
            &[("Content-Type", "application/json")],
            wait_json(c).to_string().as_bytes(),
        );
        assert_eq!(conn.json(&kill_json(c, 15)).status, 200);
        let r = waiter.read_reply();
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["wait_container"]["exit_status"], 15, "{c}");
    }
    assert!(!alive(pid));
    // The CLI's wait agrees with the agent's.
    assert_eq!(env.wait_json("from-agent")["signal"], 15);

    // A container that ends while no agent runs is answered by the next.
    assert_eq!(conn.json(&launch_json("ends-alone", "sleep 1")).status, 200);
    drop(agent);
    let done = eventually(PATIENCE, || {
        env.status_json("ends-alone")["state"] == "TERMINATED"
    });
    assert!(done);
    let agent = Agent::start(&env, &[]);
    let r = agent.conn().json(&wait_json("ends-alone"));
    assert_eq!(r.json()["wait_container"]["exit_status"], 0);
}

#[test]
fn privileged_agent_answers_a_thousand_concurrent_waits() {
    if !require_root("privileged_agent_answers_a_thousand_concurrent_waits") {
        return;
    }
    raise_fd_limit(4096);
    let env = Env::new();
    let agent = Agent::start(&env, &[]);
    let mut conn = agent.conn();
    const CONTAINERS: usize = 10;
    const WAITS: usize = 1000;
    for i in 0..CONTAINERS {
        let r = conn.json(&launch_json(&format!("w{i}"), "exec sleep 600"));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let mut waiters: Vec<Conn> = (0..WAITS)
        .map(|n| {
            let mut c = agent.conn();
            c.send(
                "POST",
                "/api/v1",
                &[("Content-Type", "application/json")],
                wait_json(&format!("w{}", n % CONTAINERS))
                    .to_string()
                    .as_bytes(),
            );
            c
        })
        .collect();
    let open = || {
        let metrics = Conn::unix(&agent.socket)
            .request("GET", "/metrics", &[], b"")
            .text();
        metrics.contains(&format!("phobos_agent_open_waits {WAITS}\n"))
    };
    assert!(eventually(PATIENCE, open), "not every wait was held");
    let rss = rss_kb(agent.pid());
    println!("agent RSS with {WAITS} open waits: {rss} kB");
    for i in 0..CONTAINERS {
        assert_eq!(conn.json(&kill_json(&format!("w{i}"), 9)).status, 200);
    }
    // Every waiter is answered, with its own container's end.
    let handles: Vec<_> = waiters
        .drain(..)
        .map(|mut c| std::thread::spawn(move || c.read_reply()))
        .collect();
    for h in handles {
        let r = h.join().unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["wait_container"]["exit_status"], 9);
    }
}

fn raise_fd_limit(want: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = want.min(lim.rlim_max);
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn privileged_agent_streams_a_containers_output_as_recordio() {
    if !require_root("privileged_agent_streams_a_containers_output_as_recordio") {
        return;
    }
    use base64::Engine as _;
    use phobos_proto::agent::ProcessIo;
    use phobos_proto::agent::process_io::{Type as IoType, control, data};

    let env = Env::new();
    let agent = Agent::start(&env, &["--heartbeat", "1"]);
    let mut conn = agent.conn();
    for (name, message_accept) in [
        ("s-json", "application/json"),
        ("s-proto", "application/x-protobuf"),
    ] {
        // Silent until the test has seen a heartbeat (60 s at most), so
        // the heartbeat is waited for, not guessed from a sleep.
        let gate = env.work.path().join(format!("{name}.gate"));
        let script = format!(
            "echo one; i=0; while [ ! -e {} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; \
             echo two >&2; echo three",
            gate.display()
        );
        assert_eq!(conn.json(&launch_json(name, &script)).status, 200);
        let init = env.status_json(name)["pid"].as_i64().unwrap();
        let attach = serde_json::json!({"type": "ATTACH_CONTAINER_OUTPUT",
            "attach_container_output": {"container_id": {"value": name}}});
        let mut stream = agent.conn();
        stream.send_streaming(&attach, Some(message_accept));
        let (status, headers) = stream.read_head_with_headers();
        assert_eq!(status, 200);
        let header = |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n));
        let content_type = header("content-type").map(|(_, v)| v.as_str());
        assert_eq!(content_type, Some("application/recordio"));
        let message_type = header("message-content-type").map(|(_, v)| v.as_str());
        assert_eq!(message_type, Some(message_accept));
        let decode = |body: &[u8]| -> Vec<ProcessIo> {
            // Whole records only: a chunk may end inside one.
            phobos_proto::recordio::Records::new(std::io::Cursor::new(body))
                .map_while(Result::ok)
                .map(|record| {
                    if message_accept == "application/json" {
                        phobos_proto::json::from_json_str(std::str::from_utf8(&record).unwrap())
                            .unwrap()
                    } else {
                        <ProcessIo as prost::Message>::decode(record.as_slice()).unwrap()
                    }
                })
                .collect()
        };
        let mut body = Vec::new();
        let mut gate_open = false;
        while let Some(chunk) = stream.read_chunk() {
            body.extend_from_slice(&chunk);
            if !gate_open && decode(&body).iter().any(|r| r.r#type() == IoType::Control) {
                std::fs::write(&gate, "").unwrap();
                gate_open = true;
            }
        }
        let records = decode(&body);
        let (mut out, mut err, mut beats) = (Vec::new(), Vec::new(), 0);
        for rec in &records {
            match rec.r#type() {
                IoType::Data => {
                    let d = rec.data.as_ref().unwrap();
                    match d.r#type() {
                        data::Type::Stdout => out.extend_from_slice(d.data()),
                        data::Type::Stderr => err.extend_from_slice(d.data()),
                        other => panic!("unexpected data {other:?}"),
                    }
                }
                IoType::Control => {
                    let c = rec.control.as_ref().unwrap();
                    assert_eq!(c.r#type(), control::Type::Heartbeat);
                    let interval = c.heartbeat.as_ref().unwrap().interval.as_ref().unwrap();
                    assert_eq!(interval.nanoseconds, 1_000_000_000);
                    beats += 1;
                }
                IoType::Unknown => panic!("unknown record"),
            }
        }
        assert_eq!(String::from_utf8_lossy(&out), "one\nthree\n", "{name}");
        assert_eq!(String::from_utf8_lossy(&err), "two\n", "{name}");
        assert!(beats >= 1, "{name}: no heartbeat in 60 s of silence");
        assert!(gate_open, "{name}: the output ended before a heartbeat");
        // The stream ended with the container: its init had exited. (The
        // agent records the end a moment later: waited for.)
        assert!(!alive(init), "{name}: the stream ended before init {init}");
        assert!(
            eventually(PATIENCE, || env.status_json(name)["state"] == "TERMINATED"),
            "{name}: never recorded as ended"
        );
    }
    // JSON records carry the bytes in base64, as Mesos's mapping does (the
    // container has ended: its whole stdout comes in one record).
    let raw = conn.request(
        "POST",
        "/api/v1",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/recordio"),
        ],
        br#"{"type":"ATTACH_CONTAINER_OUTPUT","attach_container_output":{"container_id":{"value":"s-json"}}}"#,
    );
    let text = raw.text();
    let first = text.split_once('\n').unwrap().1;
    let expected = base64::engine::general_purpose::STANDARD.encode("one\nthree\n");
    assert!(
        first.contains(&format!("\"data\":\"{expected}\"")),
        "{text}"
    );

    // A streaming call with a plain Accept, and an unknown container.
    let attach = br#"{"type":"ATTACH_CONTAINER_OUTPUT","attach_container_output":{"container_id":{"value":"s-json"}}}"#;
    let r = conn.request(
        "POST",
        "/api/v1",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
        ],
        attach,
    );
    assert_eq!(r.status, 406, "{}", r.text());
    let r = conn.request(
        "POST",
        "/api/v1",
        &[("Content-Type", "application/json"), ("Accept", "application/recordio")],
        br#"{"type":"ATTACH_CONTAINER_OUTPUT","attach_container_output":{"container_id":{"value":"nobody"}}}"#,
    );
    assert_eq!(r.status, 404, "{}", r.text());
}

/// Recovery waits (up to a grace period each) for containers another
/// process is operating on: holding the operation locks of a few live
/// containers, as a CLI in the middle of a `destroy` would, keeps the
/// agent recovering long enough to watch it answer 503, and letting go
/// lets it finish and serve.
#[test]
fn privileged_agent_answers_503_while_recovering() {
    if !require_root("privileged_agent_answers_503_while_recovering") {
        return;
    }
    let env = Env::new();
    let ids = ["busy-1", "busy-2", "busy-3", "busy-4"];
    for c in ids {
        env.detach(c, &["sleep", "600"]);
    }
    let locks: Vec<std::fs::File> = ids
        .iter()
        .map(|c| {
            let dir = std::fs::File::open(env.container_dir(c)).unwrap();
            dir.lock().unwrap();
            dir
        })
        .collect();
    let socket = env.runtime.path().join("agent.sock");
    let child = env
        .cmd()
        .arg("agent")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let agent = Agent { child, socket };
    assert!(
        eventually(PATIENCE, || std::os::unix::net::UnixStream::connect(
            &agent.socket
        )
        .is_ok()),
        "the agent never listened"
    );
    let mut conn = agent.conn();
    let health = conn.request("GET", "/health", &[], b"");
    assert_eq!(health.status, 503, "{}", health.text());
    assert_eq!(health.json()["recovering"], true);
    let get = serde_json::json!({"type": "GET_CONTAINERS",
        "get_containers": {"show_standalone": true}});
    let r = conn.json(&get);
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("recovery"), "{}", r.text());
    let r = conn.json(&launch_json("too-early", "true"));
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(!env.container_dir("too-early").exists());
    let metrics = conn.request("GET", "/metrics", &[], b"").text();
    assert!(
        metrics.lines().any(|l| l == "phobos_agent_recovering 1"),
        "{metrics}"
    );

    drop(locks);
    assert!(
        eventually(PATIENCE, || {
            conn.request("GET", "/health", &[], b"").status == 200
        }),
        "recovery never finished"
    );
    let mut listed = listed(&get_json(&mut conn));
    listed.sort();
    assert_eq!(listed, ids);
}
