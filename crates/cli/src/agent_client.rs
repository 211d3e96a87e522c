//! A small blocking HTTP/1.1 client for `phobos --agent SOCKET`: requests
//! to a running `phobos agent` over its Unix socket (`connect(2)` on an
//! `AF_UNIX` stream), one keep-alive connection per command, `Call`s and
//! `Response`s in protobuf (`application/x-protobuf`, which the agent
//! serves beside JSON: prost's encoding costs no reflection, where the
//! JSON mapping builds a descriptor pool in every short-lived `phobos`
//! process), streamed answers as RecordIO inside a chunked body.
//!
//! Everything read is bounded: the status line and headers together at
//! most [`MAX_HEAD`], a whole body at most [`MAX_BODY`], one record of a
//! stream at most [`MAX_RECORD`]; a length beyond them is refused before
//! anything is allocated for it.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use phobos_proto::agent::{Call, Response};
use phobos_proto::recordio::Decoder;
use prost::Message;

const PROTOBUF: &str = "application/x-protobuf";

/// Most bytes of a response's status line and headers.
pub const MAX_HEAD: usize = 64 * 1024;
/// Most bytes of a whole (non-streamed) response body: a listing of
/// 10,000 containers fits many times over.
pub const MAX_BODY: usize = 64 * 1024 * 1024;
/// Most bytes of one record of a streamed answer (the agent sends at most
/// 64 KiB of output per record).
pub const MAX_RECORD: usize = 4 * 1024 * 1024;

/// What can go wrong talking to the agent.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to the agent at {}: {source}", socket.display())]
    Connect {
        socket: PathBuf,
        source: std::io::Error,
    },
    #[error("talking to the agent at {}: {source}", socket.display())]
    Io {
        socket: PathBuf,
        source: std::io::Error,
    },
    #[error("the agent at {} answered something that is not HTTP/1.1: {what}", socket.display())]
    Malformed { socket: PathBuf, what: String },
    #[error("the agent at {} answered more than {limit} bytes of {what}", socket.display())]
    TooLarge {
        socket: PathBuf,
        what: &'static str,
        limit: usize,
    },
    /// The agent refused the call: its status code and its one-line
    /// message.
    #[error("the agent answered {status}: {message}")]
    Api { status: u16, message: String },
    #[error("the agent's answer cannot be decoded: {0}")]
    Decode(String),
}

/// One answer with a whole body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One keep-alive connection to the agent.
pub struct Client {
    socket: PathBuf,
    reader: BufReader<UnixStream>,
}

/// How a response's body is delimited.
enum Framing {
    Length(usize),
    Chunked,
    /// Until the connection closes (HTTP/1.0 style); bounded all the same.
    Close,
}

impl Client {
    pub fn connect(socket: &Path) -> Result<Self, ClientError> {
        let stream = UnixStream::connect(socket).map_err(|source| ClientError::Connect {
            socket: socket.to_owned(),
            source,
        })?;
        Ok(Self {
            socket: socket.to_owned(),
            reader: BufReader::new(stream),
        })
    }

    /// `POST /api/v1` with `call` in protobuf; the answer's status and
    /// body (any status: [`Client::call`] turns the errors into
    /// [`ClientError::Api`]).
    pub fn post(&mut self, call: &Call) -> Result<Reply, ClientError> {
        self.send(
            "POST",
            "/api/v1",
            &[("Content-Type", PROTOBUF), ("Accept", PROTOBUF)],
            &call.encode_to_vec(),
        )?;
        self.read_reply()
    }

    /// [`Client::post`] for a call that must succeed (200 or 202): its
    /// `Response`, if it has a body.
    pub fn call(&mut self, call: &Call) -> Result<Option<Response>, ClientError> {
        let reply = ok(self.post(call)?)?;
        if reply.body.is_empty() {
            return Ok(None);
        }
        Response::decode(reply.body.as_slice())
            .map(Some)
            .map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// `GET path`, the answer whatever its status.
    pub fn get(&mut self, path: &str) -> Result<Reply, ClientError> {
        self.send("GET", path, &[("Accept", "application/json")], b"")?;
        self.read_reply()
    }

    /// `POST /api/v1` with a call whose answer is a RecordIO stream
    /// (`ATTACH_CONTAINER_OUTPUT`); the records (protobuf `ProcessIO`) are
    /// handed to `each` as they arrive, until the stream ends.
    pub fn stream(
        &mut self,
        call: &Call,
        mut each: impl FnMut(&[u8]) -> Result<(), ClientError>,
    ) -> Result<(), ClientError> {
        self.send(
            "POST",
            "/api/v1",
            &[
                ("Content-Type", PROTOBUF),
                ("Accept", "application/recordio"),
                ("Message-Accept", PROTOBUF),
            ],
            &call.encode_to_vec(),
        )?;
        let (status, framing) = self.read_head()?;
        if status != 200 {
            let body = self.read_body(framing)?;
            return Err(api_error(status, &body));
        }
        let mut decoder = Decoder::new(MAX_RECORD);
        let mut records = Vec::new();
        let mut feed = |bytes: &[u8]| -> Result<(), ClientError> {
            decoder
                .feed(bytes, &mut records)
                .map_err(|e| ClientError::Decode(e.to_string()))?;
            for record in records.drain(..) {
                each(&record)?;
            }
            Ok(())
        };
        match framing {
            Framing::Chunked => {
                while let Some(len) = self.chunk_size()? {
                    let mut left = len;
                    while left > 0 {
                        let bytes = match self.reader.fill_buf() {
                            Ok([]) => {
                                return Err(self.malformed("the stream ended inside a chunk"));
                            }
                            Ok(buf) => buf[..left.min(buf.len())].to_vec(),
                            Err(e) => return Err(self.io(e)),
                        };
                        let take = bytes.len();
                        self.reader.consume(take);
                        left -= take;
                        feed(&bytes)?;
                    }
                    self.crlf()?;
                }
                self.trailers()?;
            }
            Framing::Length(len) => {
                let body = self.read_exact_bounded(len)?;
                feed(&body)?;
            }
            Framing::Close => {
                let body = self.read_to_close()?;
                feed(&body)?;
            }
        }
        decoder
            .finish()
            .map_err(|e| ClientError::Decode(e.to_string()))
    }

    fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), ClientError> {
        let mut out = format!("{method} {path} HTTP/1.1\r\nHost: agent\r\n");
        for (k, v) in headers {
            out.push_str(k);
            out.push_str(": ");
            out.push_str(v);
            out.push_str("\r\n");
        }
        out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(body);
        let stream = self.reader.get_mut();
        stream
            .write_all(&bytes)
            .and_then(|()| stream.flush())
            .map_err(|e| self.io(e))
    }

    fn read_reply(&mut self) -> Result<Reply, ClientError> {
        let (status, framing) = self.read_head()?;
        let body = self.read_body(framing)?;
        Ok(Reply { status, body })
    }

    /// The status line and headers (informational 1xx answers skipped).
    fn read_head(&mut self) -> Result<(u16, Framing), ClientError> {
        loop {
            let mut used = 0usize;
            let status_line = self.line(&mut used)?;
            let mut parts = status_line.splitn(3, ' ');
            let version = parts.next().unwrap_or_default();
            let status = parts
                .next()
                .and_then(|s| s.parse::<u16>().ok())
                .filter(|_| version.starts_with("HTTP/1."))
                .ok_or_else(|| {
                    self.malformed(format!("status line {:?}", truncate(&status_line)))
                })?;
            let mut framing = Framing::Close;
            loop {
                let line = self.line(&mut used)?;
                if line.is_empty() {
                    break;
                }
                let Some((name, value)) = line.split_once(':') else {
                    return Err(self.malformed(format!("header {:?}", truncate(&line))));
                };
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    let len = value.parse::<usize>().map_err(|_| {
                        self.malformed(format!("Content-Length {:?}", truncate(value)))
                    })?;
                    if !matches!(framing, Framing::Chunked) {
                        framing = Framing::Length(len);
                    }
                } else if name.eq_ignore_ascii_case("transfer-encoding")
                    && value.to_ascii_lowercase().contains("chunked")
                {
                    framing = Framing::Chunked;
                }
            }
            if (100..200).contains(&status) {
                continue;
            }
            if status == 204 || status == 304 {
                framing = Framing::Length(0);
            }
            return Ok((status, framing));
        }
    }

    /// One header line without its CRLF; `used` counts the head's bytes.
    fn line(&mut self, used: &mut usize) -> Result<String, ClientError> {
        let mut line = Vec::new();
        let limit = (MAX_HEAD - (*used).min(MAX_HEAD)) as u64 + 1;
        let n = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut line)
            .map_err(|e| self.io(e))?;
        *used += n;
        if *used > MAX_HEAD {
            return Err(self.too_large("headers", MAX_HEAD));
        }
        if n == 0 || line.last() != Some(&b'\n') {
            return Err(self.malformed("the connection closed before the answer's headers ended"));
        }
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        String::from_utf8(line).map_err(|_| self.malformed("a header that is not UTF-8"))
    }

    fn read_body(&mut self, framing: Framing) -> Result<Vec<u8>, ClientError> {
        match framing {
            Framing::Length(len) => self.read_exact_bounded(len),
            Framing::Close => self.read_to_close(),
            Framing::Chunked => {
                let mut body = Vec::new();
                while let Some(len) = self.chunk_size()? {
                    if body.len() + len > MAX_BODY {
                        return Err(self.too_large("body", MAX_BODY));
                    }
                    let chunk = self.read_exact_bounded(len)?;
                    body.extend_from_slice(&chunk);
                    self.crlf()?;
                }
                self.trailers()?;
                Ok(body)
            }
        }
    }

    fn read_exact_bounded(&mut self, len: usize) -> Result<Vec<u8>, ClientError> {
        if len > MAX_BODY {
            return Err(self.too_large("body", MAX_BODY));
        }
        let mut body = Vec::with_capacity(len.min(1 << 20));
        (&mut self.reader)
            .take(len as u64)
            .read_to_end(&mut body)
            .map_err(|e| self.io(e))?;
        if body.len() < len {
            return Err(self.malformed(format!(
                "the body ended after {} of {len} bytes",
                body.len()
            )));
        }
        Ok(body)
    }

    fn read_to_close(&mut self) -> Result<Vec<u8>, ClientError> {
        let mut body = Vec::new();
        (&mut self.reader)
            .take(MAX_BODY as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|e| self.io(e))?;
        if body.len() > MAX_BODY {
            return Err(self.too_large("body", MAX_BODY));
        }
        Ok(body)
    }

    /// The next chunk's size; `None` for the last (empty) chunk.
    fn chunk_size(&mut self) -> Result<Option<usize>, ClientError> {
        let mut used = 0;
        let line = self.line(&mut used)?;
        let hex = line.split(';').next().unwrap_or_default().trim();
        let len = usize::from_str_radix(hex, 16)
            .map_err(|_| self.malformed(format!("chunk size {:?}", truncate(&line))))?;
        if len > MAX_BODY {
            return Err(self.too_large("chunk", MAX_BODY));
        }
        Ok((len > 0).then_some(len))
    }

    fn crlf(&mut self) -> Result<(), ClientError> {
        let mut used = 0;
        let line = self.line(&mut used)?;
        if !line.is_empty() {
            return Err(self.malformed("a chunk not followed by CRLF"));
        }
        Ok(())
    }

    fn trailers(&mut self) -> Result<(), ClientError> {
        let mut used = 0;
        while !self.line(&mut used)?.is_empty() {}
        Ok(())
    }

    fn io(&self, source: std::io::Error) -> ClientError {
        ClientError::Io {
            socket: self.socket.clone(),
            source,
        }
    }

    fn malformed(&self, what: impl Into<String>) -> ClientError {
        ClientError::Malformed {
            socket: self.socket.clone(),
            what: what.into(),
        }
    }

    fn too_large(&self, what: &'static str, limit: usize) -> ClientError {
        ClientError::TooLarge {
            socket: self.socket.clone(),
            what,
            limit,
        }
    }
}

/// `reply` when it is a success (200 or 202), else its error.
pub fn ok(reply: Reply) -> Result<Reply, ClientError> {
    if reply.status == 200 || reply.status == 202 {
        Ok(reply)
    } else {
        Err(api_error(reply.status, &reply.body))
    }
}

/// The agent's error: its status and the first line of its message.
pub fn api_error(status: u16, body: &[u8]) -> ClientError {
    let text = String::from_utf8_lossy(body);
    let message = text.lines().next().unwrap_or("").trim();
    ClientError::Api {
        status,
        message: truncate(message),
    }
}

/// At most 512 characters of `text`, for messages.
fn truncate(text: &str) -> String {
    match text.char_indices().nth(512) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::net::UnixListener;

    use super::*;

    /// A one-shot server answering `answer` to the first request.
    fn serve(answer: Vec<u8>) -> (tempfile::TempDir, PathBuf, std::thread::JoinHandle<()>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let listener = UnixListener::bind(&path).unwrap();
        let handle = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if conn.read(&mut byte).unwrap() == 0 {
                    return;
                }
                head.push(byte[0]);
            }
            let _ = conn.write_all(&answer);
        });
        (dir, path, handle)
    }

    #[test]
    fn chunked_and_sized_bodies_are_read() {
        let (_d, path, h) = serve(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n".to_vec());
        let reply = Client::connect(&path).unwrap().get("/x").unwrap();
        assert_eq!((reply.status, reply.body.as_slice()), (200, &b"abcde"[..]));
        h.join().unwrap();
        let (_d, path, h) =
            serve(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nno such\nx".to_vec());
        let err = ok(Client::connect(&path).unwrap().get("/x").unwrap()).unwrap_err();
        assert_eq!(err.to_string(), "the agent answered 404: no such");
        h.join().unwrap();
    }

    #[test]
    fn oversized_lengths_are_refused_before_reading() {
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        let (_d, path, h) = serve(answer.into_bytes());
        let err = Client::connect(&path).unwrap().get("/x").unwrap_err();
        assert!(matches!(err, ClientError::TooLarge { .. }), "{err}");
        h.join().unwrap();
        let mut answer = b"HTTP/1.1 200 OK\r\n".to_vec();
        answer.extend(std::iter::repeat_n(b'a', MAX_HEAD + 10));
        let (_d, path, h) = serve(answer);
        let err = Client::connect(&path).unwrap().get("/x").unwrap_err();
        assert!(matches!(err, ClientError::TooLarge { .. }), "{err}");
        h.join().unwrap();
    }

    #[test]
    fn garbage_is_one_error_line() {
        let (_d, path, h) = serve(b"SSH-2.0-x\r\n\r\n".to_vec());
        let err = Client::connect(&path).unwrap().get("/x").unwrap_err();
        assert!(err.to_string().contains("not HTTP/1.1"), "{err}");
        h.join().unwrap();
    }

    #[test]
    fn a_missing_socket_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.sock");
        let err = Client::connect(&path).err().unwrap();
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
}
