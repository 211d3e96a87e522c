//! What the fetcher's tests share: an HTTP server on 127.0.0.1 (threads
//! of the test) that counts requests per path, and archive builders.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Requests served, per path.
pub type Counts = Arc<Mutex<HashMap<String, usize>>>;

#[derive(Clone)]
pub enum Reply {
    Body(Vec<u8>),
    Redirect(String),
    /// Headers promising 1 MB, a few bytes, then silence.
    Stall,
    /// The body in 64 KiB pieces, `pause` between them.
    Slow(Vec<u8>, Duration),
    /// The body without a Content-Length (read to the connection's end).
    NoLength(Vec<u8>),
    /// Headers promising `.0` bytes, then only the body, then the end.
    Short(u64, Vec<u8>),
}

/// Serves `routes` on 127.0.0.1 (an ephemeral port) until the test ends;
/// unknown paths get a 404.
pub fn serve(routes: HashMap<&'static str, Reply>) -> String {
    serve_counted(routes).0
}

/// As [`serve`], with the request counts.
pub fn serve_counted(routes: HashMap<&'static str, Reply>) -> (String, Counts) {
    let counts = Counts::default();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let routes = Arc::new(routes);
    let seen = Arc::clone(&counts);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let routes = Arc::clone(&routes);
            let seen = Arc::clone(&seen);
            std::thread::spawn(move || answer(stream, &routes, &seen));
        }
    });
    (base, counts)
}

fn answer(mut stream: TcpStream, routes: &HashMap<&'static str, Reply>, seen: &Counts) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
    }
    let path = path.split('?').next().unwrap_or("");
    *seen.lock().unwrap().entry(path.to_owned()).or_default() += 1;
    let _ = match routes.get(path) {
        Some(Reply::Body(body)) => stream
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            )
            .and_then(|()| stream.write_all(body)),
        Some(Reply::Redirect(to)) => stream.write_all(
            format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        ),
        Some(Reply::Stall) => {
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\nConnection: close\r\n\r\nabc",
            );
            std::thread::sleep(Duration::from_secs(60));
            Ok(())
        }
        Some(Reply::Slow(body, pause)) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let mut r = stream.write_all(head.as_bytes());
            for piece in body.chunks(64 * 1024) {
                if r.is_err() {
                    break;
                }
                std::thread::sleep(*pause);
                r = stream.write_all(piece);
            }
            r
        }
        Some(Reply::NoLength(body)) => stream
            .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
            .and_then(|()| stream.write_all(body)),
        Some(Reply::Short(promised, body)) => stream
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {promised}\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            )
            .and_then(|()| stream.write_all(body)),
        None => stream.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
        ),
    };
}

/// A tar member written with a raw name and link name, so hostile names
/// (`..`, absolute) the `tar` builder would refuse can be made.
pub fn raw_member(out: &mut Vec<u8>, name: &str, kind: tar::EntryType, link: &str, data: &[u8]) {
    let mut header = tar::Header::new_old();
    {
        let old = header.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_size(data.len() as u64);
    header.set_cksum();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

pub fn finish(mut tar: Vec<u8>) -> Vec<u8> {
    tar.extend_from_slice(&[0u8; 1024]);
    tar
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A sandbox inside a scratch directory, so writes outside it show.
pub fn sandbox() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = dir.path().join("sandbox");
    std::fs::create_dir(&sandbox).unwrap();
    (dir, sandbox)
}

/// Asserts that `scratch` (from [`sandbox`]) holds the sandbox and
/// nothing else: whatever was fetched stayed inside it.
pub fn only_sandbox_in(scratch: &std::path::Path, what: &str) {
    let names: Vec<_> = std::fs::read_dir(scratch)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("sandbox")], "{what}");
}

/// Serves each hostile archive at `/<name>.<ext>`, fetches it into a
/// fresh sandbox, and asserts the fetch is refused with one line naming an
/// escape, that nothing was written beside the sandbox, and nothing
/// through a link (`sub/x`, where the cases' `l -> sub` would put `l/x`).
pub fn assert_hostile_archives_refused(
    ext: &str,
    cases: &[(&str, Vec<u8>)],
    settings: &phobos_fetch::Settings,
) {
    use phobos_fetch::{Cause, ExtractError, Uri, fetch_all};
    let routes: HashMap<&'static str, Reply> = cases
        .iter()
        .map(|(n, t)| {
            let path: &'static str = Box::leak(format!("/{n}.{ext}").into_boxed_str());
            (path, Reply::Body(t.clone()))
        })
        .collect();
    let base = serve(routes);
    for (name, _) in cases {
        let (scratch, sb) = sandbox();
        let err =
            fetch_all(&[Uri::new(format!("{base}/{name}.{ext}"))], &sb, settings).expect_err(name);
        assert!(
            matches!(
                err.cause,
                Cause::Extract(
                    ExtractError::Escapes(_)
                        | ExtractError::LinkOutside { .. }
                        | ExtractError::Fs(_)
                )
            ),
            "{name}: {err}"
        );
        assert_eq!(err.to_string().lines().count(), 1, "{name}");
        only_sandbox_in(scratch.path(), name);
        assert!(!sb.join("sub/x").exists(), "{name}: written through a link");
    }
}

/// `n` bytes that do not compress to nothing.
pub fn noise(n: usize, seed: u8) -> Vec<u8> {
    let mut x = 0x9e37_79b9_u32 ^ u32::from(seed);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[path = "../../../../tests/support/refusing_port.rs"]
pub mod refusing_port;
