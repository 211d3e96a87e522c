//! The fetcher against a real HTTP server on 127.0.0.1 (a thread of this
//! test): files, archives, a redirect, a 404, a server that stalls after
//! its headers, hostile archives; and local files.

mod common;

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{
    Reply, assert_hostile_archives_refused, finish, gzip, only_sandbox_in, raw_member, sandbox,
    serve,
};
use phobos_fetch::{Cause, Settings, Uri, fetch_all, parse_spec};

fn good_tar() -> Vec<u8> {
    use tar::EntryType as T;
    let mut t = Vec::new();
    raw_member(&mut t, "app/", T::Directory, "", b"");
    raw_member(
        &mut t,
        "app/run.sh",
        T::Regular,
        "",
        b"#!/bin/sh\necho hi\n",
    );
    raw_member(&mut t, "app/conf/a.txt", T::Regular, "", b"alpha");
    raw_member(&mut t, "app/link", T::Symlink, "conf/a.txt", b"");
    raw_member(&mut t, "app/hard", T::Link, "app/run.sh", b"");
    finish(t)
}

fn settings() -> Settings {
    Settings {
        stall_timeout: Duration::from_secs(30),
        ..Settings::default()
    }
}

#[test]
fn http_file_executable_and_owned_by_the_user() {
    let base = serve(HashMap::from([(
        "/bin/tool",
        Reply::Body(b"#!/bin/sh\n".to_vec()),
    )]));
    let (_scratch, sb) = sandbox();
    let mut uri = parse_spec(&format!("{base}/bin/tool?v=2,executable")).unwrap();
    uri.cache = true; // no cache yet: fetched directly
    let s = Settings {
        owner: Some((65534, 65534)),
        ..settings()
    };
    let got = fetch_all(&[uri], &sb, &s).unwrap();
    assert_eq!(got[0].name, "tool");
    assert_eq!(got[0].bytes, 10);
    let meta = std::fs::metadata(sb.join("tool")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o755);
    assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
    assert_eq!(std::fs::read(sb.join("tool")).unwrap(), b"#!/bin/sh\n");
}

#[test]
fn redirect_followed_and_tgz_extracted() {
    let base = serve(HashMap::from([
        ("/old/app.tgz", Reply::Redirect("/new/app.tgz".into())),
        ("/new/app.tgz", Reply::Body(gzip(&good_tar()))),
    ]));
    let (scratch, sb) = sandbox();
    let s = Settings {
        owner: Some((65534, 65534)),
        ..settings()
    };
    let got = fetch_all(&[Uri::new(format!("{base}/old/app.tgz"))], &sb, &s).unwrap();
    let ex = got[0].extracted.as_ref().expect("extracted");
    assert_eq!(ex.entries, 5);
    assert!(
        sb.join("app.tgz").is_file(),
        "archive kept beside its contents"
    );
    assert_eq!(std::fs::read(sb.join("app/conf/a.txt")).unwrap(), b"alpha");
    assert_eq!(std::fs::read(sb.join("app/link")).unwrap(), b"alpha");
    assert_eq!(
        std::fs::read_link(sb.join("app/link")).unwrap(),
        Path::new("conf/a.txt")
    );
    let run = std::fs::metadata(sb.join("app/run.sh")).unwrap();
    assert_eq!(run.nlink(), 2, "hard link made with linkat");
    for p in ["app", "app/conf", "app/conf/a.txt", "app/run.sh"] {
        assert_eq!(std::fs::metadata(sb.join(p)).unwrap().uid(), 65534, "{p}");
    }
    assert_eq!(
        std::fs::symlink_metadata(sb.join("app/link"))
            .unwrap()
            .uid(),
        65534
    );
    only_sandbox_in(scratch.path(), "redirect");
}

#[test]
fn extract_false_keeps_the_archive_and_gz_is_gunzipped() {
    let tar = good_tar();
    let base = serve(HashMap::from([
        ("/a.tar", Reply::Body(tar.clone())),
        ("/notes.txt.gz", Reply::Body(gzip(b"plain text"))),
        ("/b.zip", Reply::Body(b"PK\x03\x04".to_vec())),
        ("/c.tar.xz", Reply::Body(b"not xz".to_vec())),
    ]));
    let (_scratch, sb) = sandbox();
    let uris = [
        parse_spec(&format!(
            "{base}/a.tar,extract=false,output_file=keep/a.tar"
        ))
        .unwrap(),
        Uri::new(format!("{base}/notes.txt.gz")),
        parse_spec(&format!("{base}/b.zip,extract=false")).unwrap(),
        parse_spec(&format!("{base}/c.tar.xz,extract=false")).unwrap(),
    ];
    let got = fetch_all(&uris, &sb, &settings()).unwrap();
    assert_eq!(std::fs::read(sb.join("keep/a.tar")).unwrap(), tar);
    assert!(!sb.join("app").exists(), "extract=false must not extract");
    assert!(got[0].extracted.is_none());
    assert_eq!(std::fs::read(sb.join("notes.txt")).unwrap(), b"plain text");
    assert!(sb.join("notes.txt.gz").is_file());
    assert_eq!(std::fs::read(sb.join("b.zip")).unwrap(), b"PK\x03\x04");
    assert_eq!(std::fs::read(sb.join("c.tar.xz")).unwrap(), b"not xz");
    assert!(got[2].extracted.is_none() && got[3].extracted.is_none());
}

#[test]
fn not_found_fails_naming_the_uri_and_leaves_no_file() {
    let base = serve(HashMap::new());
    let (_scratch, sb) = sandbox();
    let url = format!("{base}/missing.tgz");
    let err = fetch_all(&[Uri::new(&url)], &sb, &settings()).unwrap_err();
    assert!(matches!(err.cause, Cause::Status(404, _)), "{err}");
    let line = err.to_string();
    assert!(line.contains(&url) && line.contains("HTTP 404"), "{line}");
    assert_eq!(line.lines().count(), 1);
    assert_eq!(std::fs::read_dir(&sb).unwrap().count(), 0);
}

#[test]
fn refused_connection_fails() {
    let (_refusing, port) = common::refusing_port::refusing_port();
    let (_scratch, sb) = sandbox();
    let err = fetch_all(
        &[Uri::new(format!("http://127.0.0.1:{port}/x"))],
        &sb,
        &settings(),
    )
    .unwrap_err();
    assert!(matches!(err.cause, Cause::Transport(_)), "{err}");
    assert_eq!(err.to_string().lines().count(), 1);
}

#[test]
fn a_stalled_download_fails_after_the_stall_timeout() {
    let base = serve(HashMap::from([("/slow.bin", Reply::Stall)]));
    let (_scratch, sb) = sandbox();
    let s = Settings {
        stall_timeout: Duration::from_secs(1),
        ..Settings::default()
    };
    let start = Instant::now();
    let err = fetch_all(&[Uri::new(format!("{base}/slow.bin"))], &sb, &s).unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err.cause, Cause::Stalled(_)), "{err}");
    assert!(err.to_string().contains("stalled"), "{err}");
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(
        took < Duration::from_secs(30),
        "stall not detected: {took:?}"
    );
    assert!(!sb.join("slow.bin").exists(), "partial download removed");
}

#[test]
fn hostile_archives_are_refused_and_nothing_escapes() {
    use tar::EntryType as T;
    let one = |name: &str, kind, link: &str| {
        let mut t = Vec::new();
        raw_member(&mut t, name, kind, link, b"pwned");
        finish(t)
    };
    let mut through_link = Vec::new();
    raw_member(&mut through_link, "sub/", T::Directory, "", b"");
    raw_member(&mut through_link, "l", T::Symlink, "sub", b"");
    raw_member(&mut through_link, "l/x", T::Regular, "", b"pwned");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("dotdot", one("../escape", T::Regular, "")),
        ("nested-dotdot", one("a/../../escape", T::Regular, "")),
        (
            "absolute",
            one("/tmp/phobos-fetch-abs-escape", T::Regular, ""),
        ),
        ("abs-symlink", one("etc", T::Symlink, "/etc")),
        ("rel-symlink-out", one("a/out", T::Symlink, "../../escape")),
        ("hardlink-out", one("h", T::Link, "../escape")),
        ("hardlink-abs", one("h", T::Link, "/etc/passwd")),
        ("through-symlink", finish(through_link)),
    ];
    assert_hostile_archives_refused("tar", &cases, &settings());
    assert!(!Path::new("/tmp/phobos-fetch-abs-escape").exists());
}

#[test]
fn a_planted_symlink_in_the_sandbox_is_replaced_not_followed() {
    let base = serve(HashMap::from([("/f", Reply::Body(b"new".to_vec()))]));
    let (scratch, sb) = sandbox();
    let victim = scratch.path().join("victim");
    std::fs::write(&victim, b"old").unwrap();
    std::os::unix::fs::symlink(&victim, sb.join("f")).unwrap();
    std::os::unix::fs::symlink(scratch.path(), sb.join("d")).unwrap();
    fetch_all(&[Uri::new(format!("{base}/f"))], &sb, &settings()).unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"old");
    assert_eq!(std::fs::read(sb.join("f")).unwrap(), b"new");
    let err = fetch_all(
        &[parse_spec(&format!("{base}/f,output_file=d/f")).unwrap()],
        &sb,
        &settings(),
    )
    .unwrap_err();
    assert!(matches!(err.cause, Cause::Sandbox(_)), "{err}");
    assert!(!scratch.path().join("f").exists());
}

#[test]
fn local_files_by_path_and_file_uri() {
    let (scratch, sb) = sandbox();
    let src = scratch.path().join("src.tar.gz");
    std::fs::write(&src, gzip(&good_tar())).unwrap();
    let plain = scratch.path().join("plain");
    std::fs::write(&plain, b"p").unwrap();
    let uris = [
        Uri::new(format!("file://{}", src.display())),
        Uri::new(plain.display().to_string()),
    ];
    let got = fetch_all(&uris, &sb, &settings()).unwrap();
    assert_eq!(got[0].name, "src.tar.gz");
    assert_eq!(std::fs::read(sb.join("app/conf/a.txt")).unwrap(), b"alpha");
    assert_eq!(std::fs::read(sb.join("plain")).unwrap(), b"p");

    // A root-only file is not fetched for another user (MESOS-5845).
    let secret = scratch.path().join("secret");
    std::fs::write(&secret, b"s").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let s = Settings {
        owner: Some((65534, 65534)),
        ..settings()
    };
    let err = fetch_all(&[Uri::new(secret.display().to_string())], &sb, &s).unwrap_err();
    assert!(
        err.to_string().contains("not readable by uid 65534"),
        "{err}"
    );
    assert!(!sb.join("secret").exists());

    let missing = fetch_all(&[Uri::new("/nonexistent/phobos/x")], &sb, &settings()).unwrap_err();
    assert!(
        missing.to_string().contains("/nonexistent/phobos/x"),
        "{missing}"
    );
}

#[test]
fn bad_uris_are_refused_before_anything_is_fetched() {
    let base = serve(HashMap::from([("/ok", Reply::Body(b"x".to_vec()))]));
    let (_scratch, sb) = sandbox();
    let uris = [Uri::new(format!("{base}/ok")), Uri::new("s3://bucket/key")];
    let err = fetch_all(&uris, &sb, &settings()).unwrap_err();
    assert_eq!(err.uri, "s3://bucket/key");
    assert!(err.to_string().contains("not supported"), "{err}");
    assert!(!sb.join("ok").exists(), "nothing fetched before the check");
}

/// Records every progress event.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<String>>);

impl phobos_fetch::Progress for Recorder {
    fn event(&self, event: phobos_fetch::Event<'_>) {
        self.0.lock().unwrap().push(format!("{event:?}"));
    }
}

#[test]
fn progress_sees_start_with_the_length_every_chunk_and_the_end() {
    let body = common::noise(3 << 20, 7);
    let base = serve(HashMap::from([
        ("/big.bin", Reply::Body(body.clone())),
        ("/unknown.bin", Reply::NoLength(b"12345".to_vec())),
    ]));
    let (_scratch, sb) = sandbox();
    let recorder = std::sync::Arc::new(Recorder::default());
    let s = Settings {
        progress: Some(phobos_fetch::ProgressSink(recorder.clone())),
        ..settings()
    };
    let big = format!("{base}/big.bin");
    let unknown = format!("{base}/unknown.bin");
    fetch_all(&[Uri::new(&big), Uri::new(&unknown)], &sb, &s).unwrap();
    let events = recorder.0.lock().unwrap().clone();
    let len = body.len();
    assert_eq!(
        events[0],
        format!("Start {{ uri: {big:?}, length: Some({len}), cache_hit: false }}")
    );
    let done = format!("Done {{ uri: {big:?}, bytes: {len} }}");
    let at = events
        .iter()
        .position(|e| *e == done)
        .expect("a Done event");
    let got: Vec<u64> = events[1..at]
        .iter()
        .map(|e| {
            e.rsplit("got: ")
                .next()
                .unwrap()
                .trim_end_matches(" }")
                .parse()
                .unwrap()
        })
        .collect();
    assert!(got.len() > 1, "several chunks: {got:?}");
    assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
    assert_eq!(*got.last().unwrap(), len as u64);
    assert_eq!(
        events[at + 1],
        format!("Start {{ uri: {unknown:?}, length: None, cache_hit: false }}")
    );
    assert_eq!(
        events.last().unwrap(),
        &format!("Done {{ uri: {unknown:?}, bytes: 5 }}")
    );
}
