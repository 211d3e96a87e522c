//! A small HTTP/1.1 client for the agent tests: requests over one
//! keep-alive connection (Unix socket or TCP), responses with a
//! Content-Length or chunked body; and helpers to start an agent, build
//! calls in JSON or protobuf and read the answers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use phobos_proto::agent::{Call, Response};
use prost::Message;

use crate::common::{Env, PATIENCE, eventually};

pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// One keep-alive connection.
pub struct Conn {
    reader: BufReader<Box<dyn Stream>>,
}

/// An answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Conn {
    pub fn unix(path: &Path) -> Self {
        let stream =
            UnixStream::connect(path).unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        Self {
            reader: BufReader::new(Box::new(stream)),
        }
    }

    pub fn tcp(addr: &str) -> Self {
        let stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        Self {
            reader: BufReader::new(Box::new(stream)),
        }
    }

    /// Sends a request without reading the answer.
    pub fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: agent\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes()).unwrap();
        // A server may answer (413) and close before the body is all sent:
        // the answer is what counts.
        let _ = stream.write_all(body).and_then(|()| stream.flush());
    }

    /// Sends a JSON call whose answer streams (`Accept:
    /// application/recordio`), its records in `message_accept` when given
    /// (`Message-Accept`); [`Conn::read_head`] and [`Conn::read_chunk`]
    /// read the answer.
    pub fn send_streaming(&mut self, call: &serde_json::Value, message_accept: Option<&str>) {
        let mut headers = vec![
            ("Content-Type", "application/json"),
            ("Accept", "application/recordio"),
        ];
        if let Some(mime) = message_accept {
            headers.push(("Message-Accept", mime));
        }
        self.send("POST", "/api/v1", &headers, call.to_string().as_bytes());
    }

    /// Sends the head of a request whose body is streamed in chunks
    /// ([`Conn::send_chunk`], then [`Conn::end_chunks`]).
    pub fn start_chunked(&mut self, method: &str, path: &str, headers: &[(&str, &str)]) {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: agent\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("Transfer-Encoding: chunked\r\n\r\n");
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes()).unwrap();
        stream.flush().unwrap();
    }

    /// One chunk of a streamed body; false once the server stopped
    /// reading (it answered and closed).
    pub fn send_chunk(&mut self, bytes: &[u8]) -> bool {
        if bytes.is_empty() {
            return true;
        }
        let stream = self.reader.get_mut();
        let mut chunk = format!("{:x}\r\n", bytes.len()).into_bytes();
        chunk.extend_from_slice(bytes);
        chunk.extend_from_slice(b"\r\n");
        stream
            .write_all(&chunk)
            .and_then(|()| stream.flush())
            .is_ok()
    }

    /// Ends a streamed body.
    pub fn end_chunks(&mut self) {
        let stream = self.reader.get_mut();
        let _ = stream.write_all(b"0\r\n\r\n").and_then(|()| stream.flush());
    }

    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        self.send(method, path, headers, body);
        self.read_reply()
    }

    /// Reads the status line and headers of a chunked (streaming)
    /// answer; then [`Conn::read_chunk`] reads its body piece by piece.
    pub fn read_head(&mut self) -> u16 {
        self.read_head_with_headers().0
    }

    /// [`Conn::read_head`] with the headers, as `(name, value)`.
    pub fn read_head_with_headers(&mut self) -> (u16, Vec<(String, String)>) {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("no status line: {line:?}"))
            .parse()
            .unwrap();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            self.reader.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                return (status, headers);
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
    }

    /// The next chunk of a chunked body; `None` at its end.
    pub fn read_chunk(&mut self) -> Option<Vec<u8>> {
        let mut size = String::new();
        self.reader.read_line(&mut size).unwrap();
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        let mut chunk = vec![0; n + 2];
        self.reader.read_exact(&mut chunk).unwrap();
        chunk.truncate(n);
        (n > 0).then_some(chunk)
    }

    /// Reads one answer (Content-Length or chunked).
    pub fn read_reply(&mut self) -> Reply {
        let (status, headers) = self.read_head_with_headers();
        let find = |name: &str| {
            headers
                .iter()
                .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let mut body = Vec::new();
        if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            while let Some(chunk) = self.read_chunk() {
                body.extend_from_slice(&chunk);
            }
        } else if let Some(n) = find("content-length") {
            let mut b = vec![0; n.parse().unwrap()];
            self.reader.read_exact(&mut b).unwrap();
            body = b;
        }
        Reply {
            status,
            headers,
            body,
        }
    }

    /// `POST /api/v1` with a JSON body.
    pub fn json(&mut self, body: &serde_json::Value) -> Reply {
        self.request(
            "POST",
            "/api/v1",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
    }

    /// `POST /api/v1` with a protobuf `Call`, answered in protobuf.
    pub fn proto(&mut self, call: &Call) -> (u16, Option<Response>, String) {
        let reply = self.request(
            "POST",
            "/api/v1",
            &[
                ("Content-Type", "application/x-protobuf"),
                ("Accept", "application/x-protobuf"),
            ],
            &call.encode_to_vec(),
        );
        let response = (reply.status == 200 && !reply.body.is_empty()).then(|| {
            assert_eq!(reply.header("content-type"), Some("application/x-protobuf"));
            Response::decode(reply.body.as_slice()).unwrap()
        });
        (reply.status, response, reply.text())
    }
}

/// A running `phobos agent` of an environment; killed on drop.
pub struct Agent {
    pub child: Child,
    pub socket: PathBuf,
}

impl Agent {
    pub fn start(env: &Env, extra: &[&str]) -> Self {
        Self::spawn(env, env.cmd().arg("agent").args(extra))
    }

    /// An agent and a connection to it, with container `id` launched
    /// through it running `exec sleep 600`: the parent of the nested
    /// containers and sessions a test starts, or a container that outlives
    /// the agent.
    pub fn start_with_running(env: &Env, id: &str) -> (Self, Conn) {
        let agent = Self::start(env, &[]);
        let mut conn = agent.conn();
        let r = conn.json(&launch_json(id, "exec sleep 600"));
        assert_eq!(r.status, 200, "{}", r.text());
        (agent, conn)
    }

    /// An agent that freezes itself (SIGSTOP) at launch or teardown
    /// point `point` (`PHOBOS_STOP_AT`), for crash tests.
    pub fn start_stopping_at(env: &Env, point: &str) -> Self {
        Self::spawn(env, env.cmd().arg("agent").env("PHOBOS_STOP_AT", point))
    }

    /// Spawns `agent`, the `phobos agent` command for `env`, and waits
    /// until it answers on its socket.
    pub fn spawn(env: &Env, agent: &mut std::process::Command) -> Self {
        let socket = env.runtime.path().join("agent.sock");
        let _ = std::fs::remove_file(&socket);
        let child = agent
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let agent = Self { child, socket };
        assert!(
            eventually(PATIENCE, || agent.healthy()),
            "the agent did not become healthy"
        );
        agent
    }

    pub fn conn(&self) -> Conn {
        Conn::unix(&self.socket)
    }

    fn healthy(&self) -> bool {
        let Ok(stream) = UnixStream::connect(&self.socket) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(PATIENCE));
        let mut conn = Conn {
            reader: BufReader::new(Box::new(stream)),
        };
        conn.request("GET", "/health", &[], b"").status == 200
    }

    /// SIGKILL, as a crash.
    pub fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

pub fn id(value: &str) -> phobos_proto::mesos::ContainerId {
    phobos_proto::mesos::ContainerId {
        value: value.into(),
        parent: None,
    }
}

/// The ID `value` nested under `parent`.
pub fn nested_id(
    parent: phobos_proto::mesos::ContainerId,
    value: &str,
) -> phobos_proto::mesos::ContainerId {
    phobos_proto::mesos::ContainerId {
        value: value.into(),
        parent: Some(Box::new(parent)),
    }
}

pub fn launch_json(value: &str, command: &str) -> serde_json::Value {
    serde_json::json!({"type": "LAUNCH_CONTAINER", "launch_container": {
        "container_id": {"value": value}, "command": {"value": command}}})
}

pub fn wait_json(value: &str) -> serde_json::Value {
    serde_json::json!({"type": "WAIT_CONTAINER", "wait_container": {"container_id": {"value": value}}})
}

pub fn kill_json(value: &str, signal: i32) -> serde_json::Value {
    serde_json::json!({"type": "KILL_CONTAINER", "kill_container": {"container_id": {"value": value}, "signal": signal}})
}

pub fn remove_json(value: &str) -> serde_json::Value {
    serde_json::json!({"type": "REMOVE_CONTAINER", "remove_container": {"container_id": {"value": value}}})
}
