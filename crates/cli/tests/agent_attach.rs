//! `phobos agent`'s terminal calls over the real socket: containers
//! launched with `tty_info`, ATTACH_CONTAINER_INPUT (a streaming RecordIO
//! request, in JSON and protobuf) and ATTACH_CONTAINER_OUTPUT through the
//! container's switchboard, a second input stream (409), a reader that
//! stops reading (the command is not stalled), a `task exec`-like session
//! end to end, the switchboard's lifetime, and a container without a
//! terminal whose output rotates while a stream follows it.

mod agent_client;
mod common;

use std::sync::mpsc;
use std::time::Instant;

use agent_client::{Agent, Conn, id, launch_json, nested_id, wait_json};
use common::{Env, PATIENCE, eventually, require_root};
use phobos_proto::agent::call::attach_container_input::Type as InputType;
use phobos_proto::agent::call::{self, Type as CallType};
use phobos_proto::agent::process_io::{self, control};
use phobos_proto::agent::{Call, ProcessIo};
use phobos_proto::mesos;
use prost::Message;

#[derive(Clone, Copy, Debug)]
enum Enc {
    Json,
    Proto,
}

impl Enc {
    fn mime(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Proto => "application/x-protobuf",
        }
    }

    fn call(self, call: &Call) -> Vec<u8> {
        match self {
            Self::Json => phobos_proto::json::to_json_string(call)
                .unwrap()
                .into_bytes(),
            Self::Proto => call.encode_to_vec(),
        }
    }

    fn process_io(self, record: &[u8]) -> ProcessIo {
        match self {
            Self::Json => {
                phobos_proto::json::from_json_str(std::str::from_utf8(record).unwrap()).unwrap()
            }
            Self::Proto => ProcessIo::decode(record).unwrap(),
        }
    }
}

fn input_call(input: call::AttachContainerInput) -> Call {
    Call {
        r#type: Some(CallType::AttachContainerInput as i32),
        attach_container_input: Some(input),
        ..Call::default()
    }
}

/// The first record of an input stream: the container.
fn first(container: mesos::ContainerId) -> Call {
    input_call(call::AttachContainerInput {
        r#type: Some(InputType::ContainerId as i32),
        container_id: Some(container),
        process_io: None,
    })
}

fn io(process_io: ProcessIo) -> Call {
    input_call(call::AttachContainerInput {
        r#type: Some(InputType::ProcessIo as i32),
        container_id: None,
        process_io: Some(process_io),
    })
}

fn stdin(bytes: &[u8]) -> Call {
    io(ProcessIo {
        r#type: Some(process_io::Type::Data as i32),
        data: Some(process_io::Data {
            r#type: Some(process_io::data::Type::Stdin as i32),
            data: Some(bytes.to_vec()),
        }),
        control: None,
    })
}

fn control(kind: control::Type, size: Option<(u32, u32)>) -> Call {
    io(ProcessIo {
        r#type: Some(process_io::Type::Control as i32),
        data: None,
        control: Some(process_io::Control {
            r#type: Some(kind as i32),
            tty_info: size.map(|(rows, columns)| mesos::TtyInfo {
                window_size: Some(mesos::tty_info::WindowSize { rows, columns }),
            }),
            heartbeat: (kind == control::Type::Heartbeat).then_some(
                process_io::control::Heartbeat {
                    interval: Some(mesos::DurationInfo {
                        nanoseconds: 1_000_000_000,
                    }),
                },
            ),
        }),
    })
}

fn record(enc: Enc, call: &Call) -> Vec<u8> {
    phobos_proto::recordio::encode_record(&enc.call(call)).unwrap()
}

/// Opens an input stream to `container` (its first record sent).
fn open_input(agent: &Agent, enc: Enc, container: mesos::ContainerId) -> Conn {
    let mut conn = agent.conn();
    conn.start_chunked(
        "POST",
        "/api/v1",
        &[
            ("Content-Type", "application/recordio"),
            ("Message-Content-Type", enc.mime()),
        ],
    );
    assert!(conn.send_chunk(&record(enc, &first(container))));
    conn
}

/// A streaming answer read on a thread: the data of its records, as they
/// come; the channel closes at the stream's end.
struct Output {
    rx: mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
    ended: bool,
}

impl Output {
    /// `conn` has sent a streaming request; its head is read here.
    fn start(mut conn: Conn, enc: Enc) -> Self {
        let status = conn.read_head();
        assert_eq!(status, 200, "the stream was refused");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut decoder = phobos_proto::recordio::Decoder::new(1 << 20);
            let mut records = Vec::new();
            while let Some(chunk) = conn.read_chunk() {
                decoder.feed(&chunk, &mut records).unwrap();
                for r in records.drain(..) {
                    let rec = enc.process_io(&r);
                    if let Some(d) = rec.data {
                        // A terminal's output is all STDOUT; STDERR would
                        // mean the container has none (marked, to fail).
                        let mut bytes = d.data().to_vec();
                        if d.r#type() != process_io::data::Type::Stdout {
                            bytes.splice(0..0, b"[not a terminal's] ".iter().copied());
                        }
                        if tx.send(bytes).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Self {
            rx,
            seen: Vec::new(),
            ended: false,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }

    /// Waits (bounded) until the output holds `needle`.
    fn wait_for(&mut self, needle: &str) -> bool {
        let deadline = Instant::now() + PATIENCE;
        while !self.text().contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(d) => self.seen.extend(d),
                Err(_) => return false,
            }
        }
        true
    }

    /// Waits (bounded) for the stream's end.
    fn wait_end(&mut self) -> bool {
        let deadline = Instant::now() + PATIENCE;
        while !self.ended {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(d) => self.seen.extend(d),
                Err(mpsc::RecvTimeoutError::Disconnected) => self.ended = true,
                Err(mpsc::RecvTimeoutError::Timeout) => return false,
            }
        }
        true
    }
}

fn attach_output(agent: &Agent, enc: Enc, container: &str) -> Output {
    attach_output_to(agent, enc, serde_json::json!({"value": container}))
}

/// [`attach_output`] to a container ID in JSON (a nested one's parent).
fn attach_output_to(agent: &Agent, enc: Enc, container: serde_json::Value) -> Output {
    let mut conn = agent.conn();
    let attach = serde_json::json!({"type": "ATTACH_CONTAINER_OUTPUT",
        "attach_container_output": {"container_id": container}});
    conn.send_streaming(&attach, Some(enc.mime()));
    Output::start(conn, enc)
}

fn tty_launch(name: &str, command: &str, rows: u32, columns: u32) -> serde_json::Value {
    serde_json::json!({"type": "LAUNCH_CONTAINER", "launch_container": {
        "container_id": {"value": name}, "command": {"value": command},
        "container": {"type": "MESOS",
            "tty_info": {"window_size": {"rows": rows, "columns": columns}}}}})
}

#[test]
fn privileged_agent_attaches_input_and_output_to_a_terminal_container() {
    if !require_root("privileged_agent_attaches_input_and_output_to_a_terminal_container") {
        return;
    }
    let env = Env::new();
    let agent = Agent::start(&env, &["--heartbeat", "1"]);
    let mut conn = agent.conn();
    let r = conn.json(&tty_launch(
        "tt",
        "test -t 0 && echo is-a-tty; read a; echo \"got:$a\"; stty size; exec cat",
        30,
        90,
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    let mut out = attach_output(&agent, Enc::Json, "tt");

    // Input in protobuf records, output in JSON ones.
    let mut input = open_input(&agent, Enc::Proto, id("tt"));
    assert!(input.send_chunk(&record(Enc::Proto, &stdin(b"hi\n"))));
    assert!(out.wait_for("got:hi"), "{:?}", out.text());
    assert!(out.wait_for("30 90"), "the window size: {:?}", out.text());

    // A second input stream while the first is attached: 409, in JSON.
    let mut second = open_input(&agent, Enc::Json, id("tt"));
    second.end_chunks();
    let r = second.read_reply();
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.text().lines().count(), 1);

    // Heartbeats are ignored; a line reaches `cat`; EOF ends it.
    assert!(input.send_chunk(&record(
        Enc::Proto,
        &control(control::Type::Heartbeat, None)
    )));
    assert!(input.send_chunk(&record(Enc::Proto, &stdin(b"bye\n"))));
    assert!(out.wait_for("bye\r\nbye"), "{:?}", out.text());
    assert!(input.send_chunk(&record(Enc::Proto, &stdin(b""))));
    input.end_chunks();
    let r = input.read_reply();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(out.wait_end(), "the output stream outlived the command");
    let r = conn.json(&wait_json("tt"));
    assert_eq!(r.json()["wait_container"]["exit_status"], 0, "{}", r.text());
    // The terminal's output is in the sandbox too.
    let log = std::fs::read_to_string(env.sandbox("tt").join("stdout")).unwrap();
    assert!(
        log.contains("is-a-tty") && log.contains("got:hi"),
        "{log:?}"
    );

    // Refusals: an ended container, an unknown one, one without a
    // terminal, malformed and oversized records, a first record that is
    // not the container, the call sent as a whole body.
    assert_eq!(
        conn.json(&launch_json("plain", "exec sleep 600")).status,
        200
    );
    for (container, status, says) in [
        ("tt", 400, "terminated"),
        ("nobody", 404, "nobody"),
        ("plain", 400, "no terminal"),
    ] {
        let mut c = open_input(&agent, Enc::Json, id(container));
        c.end_chunks();
        let r = c.read_reply();
        assert_eq!(r.status, status, "{container}: {}", r.text());
        assert!(r.text().contains(says), "{container}: {}", r.text());
    }
    let headers = [
        ("Content-Type", "application/recordio"),
        ("Message-Content-Type", "application/json"),
    ];
    let not_first = record(Enc::Json, &stdin(b"x"));
    for (what, body, status) in [
        ("an oversized record", b"99999999999\n".to_vec(), 413),
        (
            "a length past u64",
            b"99999999999999999999999\n".to_vec(),
            400,
        ),
        ("a bad header", b"12x\n".to_vec(), 400),
        ("a truncated record", b"10\n{}".to_vec(), 400),
        ("no record", Vec::new(), 400),
        ("PROCESS_IO first", not_first, 400),
        ("not a call", b"3\nabc".to_vec(), 400),
    ] {
        let mut c = agent.conn();
        c.start_chunked("POST", "/api/v1", &headers);
        c.send_chunk(&body);
        c.end_chunks();
        let r = c.read_reply();
        assert_eq!(r.status, status, "{what}: {}", r.text());
        assert_eq!(r.text().lines().count(), 1, "{what}");
    }
    let whole = serde_json::json!({"type": "ATTACH_CONTAINER_INPUT",
        "attach_container_input": {"type": "CONTAINER_ID", "container_id": {"value": "plain"}}});
    assert_eq!(conn.json(&whole).status, 415);
}

#[test]
fn privileged_agent_output_reader_that_stops_reading_does_not_stall_the_command() {
    if !require_root("privileged_agent_output_reader_that_stops_reading_does_not_stall_the_command")
    {
        return;
    }
    let env = Env::new();
    let agent = Agent::start(&env, &[]);
    let mut conn = agent.conn();
    let r = conn.json(&tty_launch(
        "slow",
        // Starts when told, once the stalled reader is attached (a fixed
        // sleep could let it end first on a loaded machine).
        "while [ ! -e \"$MESOS_SANDBOX/go\" ]; do sleep 0.05; done; \
         yes abcdefgh | head -c 30000000; exit 3",
        24,
        80,
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    // Attached, and never read after the head.
    let mut stalled = agent.conn();
    stalled.send_streaming(
        &serde_json::json!({"type": "ATTACH_CONTAINER_OUTPUT",
            "attach_container_output": {"container_id": {"value": "slow"}}}),
        None,
    );
    assert_eq!(stalled.read_head(), 200);
    std::fs::write(env.sandbox("slow").join("go"), b"").unwrap();
    let started = Instant::now();
    let r = conn.json(&wait_json("slow"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["wait_container"]["exit_status"], 3 << 8);
    eprintln!(
        "30 MB through the terminal with a stalled reader: {:?}",
        started.elapsed()
    );
    // Every byte, across the files the `logrotate` logger (the default,
    // 10 MB files) rotated it into.
    let sandbox = env.sandbox("slow");
    let logged: u64 = ["stdout", "stdout.1", "stdout.2", "stdout.3"]
        .iter()
        .filter_map(|name| std::fs::metadata(sandbox.join(name)).ok())
        .map(|m| m.len())
        .sum();
    assert!(sandbox.join("stdout.2").exists(), "rotated");
    assert!(logged >= 30_000_000, "the log has {logged} bytes");
    drop(stalled);
}

/// A container without a terminal whose `logrotate` logger rotates its
/// stdout about 30 times while an ATTACH_CONTAINER_OUTPUT stream is open:
/// the stream follows the files by inode and gives every line exactly
/// once, in order, then ends with the container.
#[test]
fn privileged_agent_output_follows_rotations_without_loss_or_repeat() {
    if !require_root("privileged_agent_output_follows_rotations_without_loss_or_repeat") {
        return;
    }
    let env = Env::new();
    let cfg = tempfile::tempdir().unwrap();
    let config = cfg.path().join("phobos.toml");
    std::fs::write(
        &config,
        "[logrotate]\nmax_stdout_size = \"64KB\"\nmax_files = 1000\n",
    )
    .unwrap();
    let agent = Agent::start(&env, &["--config", config.to_str().unwrap()]);
    let mut conn = agent.conn();
    // 20 bursts of 15000 numbered lines (about 2 MB in all), a pause
    // between them so the stream also waits for more in the middle; they
    // start once the stream is open.
    let (bursts, per) = (20u64, 15_000u64);
    let command = format!(
        "while [ ! -e \"$MESOS_SANDBOX/go\" ]; do sleep 0.05; done; \
         i=0; while [ $i -lt {bursts} ]; do seq $((i*{per}+1)) $((i*{per}+{per})); \
         i=$((i+1)); sleep 0.1; done"
    );
    let r = conn.json(&launch_json("rotating", &command));
    assert_eq!(r.status, 200, "{}", r.text());
    let mut out = attach_output(&agent, Enc::Proto, "rotating");
    std::fs::write(env.sandbox("rotating").join("go"), b"").unwrap();
    assert!(
        out.wait_end(),
        "the stream ended: {} bytes so far",
        out.seen.len()
    );
    let expected: String = (1..=bursts * per).map(|i| format!("{i}\n")).collect();
    assert!(
        out.seen == expected.as_bytes(),
        "{} bytes, {} expected; first difference at {:?}",
        out.seen.len(),
        expected.len(),
        out.seen
            .iter()
            .zip(expected.as_bytes())
            .position(|(a, b)| a != b)
    );
    let sandbox = env.sandbox("rotating");
    assert!(sandbox.join("stdout.25").exists(), "rotated while attached");
    for i in 1..=25 {
        let len = std::fs::metadata(sandbox.join(format!("stdout.{i}")))
            .unwrap()
            .len();
        assert_eq!(len, 64 << 10, "stdout.{i} is cut at the limit");
    }
    let r = conn.json(&wait_json("rotating"));
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Mesos's `task exec`: a session with a terminal under a running
/// container, its input from ATTACH_CONTAINER_INPUT, its output on the
/// session's own stream, EOF ending it, the exit status from
/// WAIT_NESTED_CONTAINER.
#[test]
fn privileged_agent_task_exec_session_end_to_end() {
    if !require_root("privileged_agent_task_exec_session_end_to_end") {
        return;
    }
    let env = Env::new();
    let (agent, mut conn) = Agent::start_with_running(&env, "exec-par");
    let session_id = nested_id(id("exec-par"), "sh");
    for (n, (input_enc, output_enc)) in [(Enc::Json, Enc::Proto), (Enc::Proto, Enc::Json)]
        .into_iter()
        .enumerate()
    {
        let child = format!("sh{n}");
        let session_id = mesos::ContainerId {
            value: child.clone(),
            ..session_id.clone()
        };
        let session = Call {
            r#type: Some(CallType::LaunchNestedContainerSession as i32),
            launch_nested_container_session: Some(call::LaunchNestedContainerSession {
                container_id: session_id.clone(),
                command: Some(mesos::CommandInfo {
                    value: Some(
                        "test -t 0 && echo is-a-tty; stty size; read a; echo \"got:$a\"; stty size; cat; exit 5"
                            .into(),
                    ),
                    ..Default::default()
                }),
                container: Some(mesos::ContainerInfo {
                    r#type: mesos::container_info::Type::Mesos as i32,
                    tty_info: Some(mesos::TtyInfo {
                        window_size: Some(mesos::tty_info::WindowSize {
                            rows: 30,
                            columns: 100,
                        }),
                    }),
                    ..Default::default()
                }),
            }),
            ..Call::default()
        };
        let mut s = agent.conn();
        s.send(
            "POST",
            "/api/v1",
            &[
                ("Content-Type", "application/x-protobuf"),
                ("Accept", "application/recordio"),
                ("Message-Accept", output_enc.mime()),
            ],
            &session.encode_to_vec(),
        );
        let mut out = Output::start(s, output_enc);
        // Nothing printed before the stream attached is lost.
        assert!(out.wait_for("is-a-tty"), "{:?}", out.text());
        assert!(out.wait_for("30 100"), "{:?}", out.text());
        // A DEBUG container: in its parent's pid namespace.
        let full = format!("exec-par.{child}");
        assert_eq!(env.status_json(&full)["state"], "RUNNING");

        let mut input = open_input(&agent, input_enc, session_id.clone());
        assert!(input.send_chunk(&record(
            input_enc,
            &control(control::Type::TtyInfo, Some((40, 120)))
        )));
        assert!(input.send_chunk(&record(input_enc, &stdin(b"hello\n"))));
        assert!(out.wait_for("got:hello"), "{:?}", out.text());
        assert!(out.wait_for("40 120"), "the resize: {:?}", out.text());
        assert!(input.send_chunk(&record(input_enc, &stdin(b"again\n"))));
        assert!(out.wait_for("again\r\nagain"), "{:?}", out.text());
        assert!(input.send_chunk(&record(input_enc, &stdin(b""))));
        input.end_chunks();
        assert_eq!(input.read_reply().status, 200);
        assert!(out.wait_end(), "the session's stream outlived its command");
        let wait = Call {
            r#type: Some(CallType::WaitNestedContainer as i32),
            wait_nested_container: Some(call::WaitNestedContainer {
                container_id: session_id.clone(),
            }),
            ..Call::default()
        };
        let (status, body, text) = conn.proto(&wait);
        assert_eq!(status, 200, "{text}");
        assert_eq!(
            body.unwrap().wait_nested_container.unwrap().exit_status,
            Some(5 << 8)
        );
    }
    assert_eq!(env.status_json("exec-par")["state"], "RUNNING");

    // A session whose client goes is destroyed, its switchboard with it.
    let mut s = agent.conn();
    s.send_streaming(
        &serde_json::json!({"type": "LAUNCH_NESTED_CONTAINER_SESSION",
            "launch_nested_container_session": {
                "container_id": {"value": "gone", "parent": {"value": "exec-par"}},
                "command": {"value": "echo ready; exec sleep 600"},
                "container": {"type": "MESOS", "tty_info": {}}}}),
        None,
    );
    assert_eq!(s.read_head(), 200);
    let mut decoder = phobos_proto::recordio::Decoder::new(1 << 20);
    let (mut records, mut seen) = (Vec::new(), Vec::new());
    while !String::from_utf8_lossy(&seen).contains("ready") {
        let chunk = s.read_chunk().expect("the session's stream ended early");
        decoder.feed(&chunk, &mut records).unwrap();
        for r in records.drain(..) {
            if let Some(d) = Enc::Json.process_io(&r).data {
                seen.extend_from_slice(d.data());
            }
        }
    }
    let socket = env
        .container_dir("exec-par")
        .join("containers/gone/io_switchboard.sock");
    assert!(socket.exists(), "{} missing", socket.display());
    drop(s);
    assert!(
        eventually(PATIENCE, || env.status_json("exec-par.gone")["state"]
            == "TERMINATED"),
        "the session's container outlived its connection"
    );
    assert!(
        eventually(PATIENCE, || !socket.exists()),
        "the switchboard's socket outlived the container"
    );
}

/// `task exec` into a container with a root filesystem: the session (a
/// DEBUG container in its parent's mount namespace) gets its terminal from
/// the parent's private devpts, and sees the parent's files.
#[test]
fn privileged_agent_session_terminal_in_a_root_filesystem_parent() {
    if !require_root("privileged_agent_session_terminal_in_a_root_filesystem_parent") {
        return;
    }
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let root = common::busybox_rootfs(dir.path());
    let agent = Agent::start(&env, &[]);
    let launched = env.run(&[
        "run",
        "-d",
        "--id",
        "img",
        "--rootfs",
        root.to_str().unwrap(),
        "--",
        "sleep",
        "600",
    ]);
    assert!(launched.status.success(), "{launched:?}");
    let mut s = agent.conn();
    s.send_streaming(
        &serde_json::json!({"type": "LAUNCH_NESTED_CONTAINER_SESSION",
            "launch_nested_container_session": {
                "container_id": {"value": "dbg", "parent": {"value": "img"}},
                "command": {"value": "tty; stty size; ls /bin/busybox; exit 2"},
                "container": {"type": "MESOS",
                    "tty_info": {"window_size": {"rows": 33, "columns": 77}}}}}),
        None,
    );
    let mut out = Output::start(s, Enc::Json);
    assert!(out.wait_end(), "{:?}", out.text());
    let text = out.text();
    assert!(text.contains("/dev/pts/"), "{text:?}");
    assert!(text.contains("33 77"), "{text:?}");
    assert!(text.contains("/bin/busybox"), "{text:?}");
    let mut conn = agent.conn();
    let r = conn.json(&serde_json::json!({"type": "WAIT_NESTED_CONTAINER",
        "wait_nested_container": {"container_id": {"value": "dbg", "parent": {"value": "img"}}}}));
    assert_eq!(r.json()["wait_nested_container"]["exit_status"], 2 << 8);
    env.ok(&["destroy", "img"]);
}

/// The session's WAIT_NESTED_CONTAINER exit status.
fn nested_exit_status(conn: &mut Conn, container: &mesos::ContainerId) -> Option<i32> {
    let wait = Call {
        r#type: Some(CallType::WaitNestedContainer as i32),
        wait_nested_container: Some(call::WaitNestedContainer {
            container_id: container.clone(),
        }),
        ..Call::default()
    };
    let (status, body, text) = conn.proto(&wait);
    assert_eq!(status, 200, "{text}");
    body.unwrap().wait_nested_container.unwrap().exit_status
}

/// `task exec` without `-t`: a session without `tty_info` gets a
/// switchboard over pipes (Mesos gives every DEBUG container one). Output
/// printed before its stream attached is kept for it; stdout and stderr
/// come as STDOUT and STDERR records and land in the sandbox's files;
/// input is echoed back; a second input stream is 409; the input's EOF
/// closes the command's stdin.
#[test]
fn privileged_agent_session_without_a_terminal_echoes_its_input_over_pipes() {
    if !require_root("privileged_agent_session_without_a_terminal_echoes_its_input_over_pipes") {
        return;
    }
    let env = Env::new();
    let (agent, mut conn) = Agent::start_with_running(&env, "pipe-par");
    let session_id = nested_id(id("pipe-par"), "sess");
    let mut s = agent.conn();
    s.send_streaming(
        &serde_json::json!({"type": "LAUNCH_NESTED_CONTAINER_SESSION",
            "launch_nested_container_session": {
                "container_id": {"value": "sess", "parent": {"value": "pipe-par"}},
                "command": {"value": "test -t 0 || echo not-a-tty; echo oops >&2; while read l; do echo \"got:$l\"; done; echo bye; exit 3"}}}),
        Some("application/json"),
    );
    let mut out = Output::start(s, Enc::Json);
    assert!(out.wait_for("not-a-tty"), "{:?}", out.text());
    // stderr is a STDERR record (marked by the reader).
    assert!(out.wait_for("[not a terminal's] oops"), "{:?}", out.text());

    let mut input = open_input(&agent, Enc::Proto, session_id.clone());
    assert!(input.send_chunk(&record(Enc::Proto, &stdin(b"hello\n"))));
    assert!(out.wait_for("got:hello"), "{:?}", out.text());
    let mut second = open_input(&agent, Enc::Json, session_id.clone());
    second.end_chunks();
    let r = second.read_reply();
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(input.send_chunk(&record(Enc::Proto, &stdin(b"again\n"))));
    assert!(out.wait_for("got:again"), "{:?}", out.text());
    // EOF: the command's `read` sees its stdin closed.
    assert!(input.send_chunk(&record(Enc::Proto, &stdin(b""))));
    input.end_chunks();
    assert_eq!(input.read_reply().status, 200);
    assert!(out.wait_for("bye"), "{:?}", out.text());
    assert!(out.wait_end(), "the session's stream outlived its command");
    assert_eq!(nested_exit_status(&mut conn, &session_id), Some(3 << 8));

    let sandbox = env.sandbox("pipe-par").join("containers/sess");
    let stdout = std::fs::read_to_string(sandbox.join("stdout")).unwrap();
    for line in ["not-a-tty", "got:hello", "got:again", "bye"] {
        assert!(stdout.contains(line), "{line} not in stdout: {stdout:?}");
    }
    let stderr = std::fs::read_to_string(sandbox.join("stderr")).unwrap();
    assert!(stderr.contains("oops"), "{stderr:?}");
    assert!(!stdout.contains("oops"), "{stdout:?}");
}

/// A DEBUG container without a terminal (the CLI's `run --debug`) has a
/// switchboard too: ATTACH_CONTAINER_INPUT, then two
/// ATTACH_CONTAINER_OUTPUT streams that both get the output, a second
/// input stream refused (409), and the EOF ends the command's input.
#[test]
fn privileged_agent_debug_container_without_a_terminal_takes_input_then_output() {
    if !require_root("privileged_agent_debug_container_without_a_terminal_takes_input_then_output")
    {
        return;
    }
    let env = Env::new();
    // First: recovery destroys DEBUG containers, as Mesos's does.
    let agent = Agent::start(&env, &[]);
    env.detach("dbg-par", &["sleep", "600"]);
    env.detach_nested(
        "dbg-par",
        "dbg",
        &["--debug"],
        &[
            "sh",
            "-c",
            "while read l; do echo \"got:$l\"; done; echo done-reading",
        ],
    );
    let dbg = nested_id(id("dbg-par"), "dbg");
    let mut input = open_input(&agent, Enc::Json, dbg.clone());
    let nested = serde_json::json!({"value": "dbg", "parent": {"value": "dbg-par"}});
    let mut out = attach_output_to(&agent, Enc::Proto, nested.clone());
    let mut out2 = attach_output_to(&agent, Enc::Json, nested);
    if !input.send_chunk(&record(Enc::Json, &stdin(b"one\n"))) {
        let r = input.read_reply();
        panic!("the input stream was refused: {} {}", r.status, r.text());
    }
    assert!(out.wait_for("got:one"), "{:?}", out.text());
    assert!(out2.wait_for("got:one"), "{:?}", out2.text());
    let mut second = open_input(&agent, Enc::Proto, dbg.clone());
    second.end_chunks();
    let r = second.read_reply();
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(input.send_chunk(&record(Enc::Json, &stdin(b""))));
    input.end_chunks();
    assert_eq!(input.read_reply().status, 200);
    assert!(out.wait_for("done-reading"), "{:?}", out.text());
    assert!(out.wait_end(), "the output stream outlived the command");
    assert!(
        out2.wait_end(),
        "the second output stream outlived the command"
    );
    let waited = env.ok(&["wait", "dbg-par.dbg"]);
    assert!(waited.contains("exited with status 0"), "{waited:?}");
    let stdout =
        std::fs::read_to_string(env.sandbox("dbg-par").join("containers/dbg/stdout")).unwrap();
    assert!(
        stdout.contains("got:one") && stdout.contains("done-reading"),
        "{stdout:?}"
    );
    env.ok(&["destroy", "dbg-par"]);
}
