//! `phobos run --fetch` end to end through the real binary: URIs served by
//! a real HTTP server on 127.0.0.1 (a thread of this test) are fetched into
//! the sandbox in FETCHING, before the command starts; a failed fetch
//! fails the launch (TASK_FAILED, the URI in the message) and the command
//! never runs; bad specs are usage errors that change nothing.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;

/// Serves `routes` (path → body) on 127.0.0.1; other paths get a 404.
fn serve(routes: HashMap<String, Vec<u8>>) -> String {
    serve_counted(routes).0
}

/// As [`serve`], counting requests; `/stall` sends headers promising 1 MB,
/// a few bytes, and then nothing for ten minutes.
fn serve_counted(routes: HashMap<String, Vec<u8>>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let routes = Arc::new(routes);
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&requests);
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let routes = Arc::clone(&routes);
            counter.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                if path == "/slow.bin" {
                    // 400 kB in 40 pieces, a second in all.
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 400000\r\nConnection: close\r\n\r\n",
                    );
                    for _ in 0..40 {
                        std::thread::sleep(Duration::from_millis(25));
                        if stream.write_all(&[b'x'; 10_000]).is_err() {
                            return;
                        }
                    }
                    return;
                }
                if path == "/stall" {
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\nConnection: close\r\n\r\nabc",
                    );
                    std::thread::sleep(Duration::from_secs(600));
                    return;
                }
                let _ = match routes.get(&path) {
                    Some(body) => stream
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .and_then(|()| stream.write_all(body)),
                    None => stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    ),
                };
            });
        }
    });
    (base, requests)
}

/// A .tar.gz of `app/conf/a.txt` made with the system's tar.
fn app_tgz() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("app/conf")).unwrap();
    std::fs::write(dir.path().join("app/conf/a.txt"), "alpha\n").unwrap();
    let out = dir.path().join("app.tgz");
    let status = Command::new("tar")
        .arg("czf")
        .arg(&out)
        .arg("-C")
        .arg(dir.path())
        .arg("app")
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(out).unwrap()
}

#[test]
fn privileged_run_fetches_into_the_sandbox_before_the_command() {
    if !require_root("privileged_run_fetches_into_the_sandbox_before_the_command") {
        return;
    }
    let base = serve(HashMap::from([
        ("/app.tgz".to_owned(), app_tgz()),
        ("/tool".to_owned(), b"#!/bin/sh\necho tool ran\n".to_vec()),
    ]));
    let env = Env::new();
    let out = env.run(&[
        "run",
        "--id",
        "fetched",
        "--fetch",
        &format!("{base}/app.tgz"),
        "--fetch",
        &format!("{base}/tool,executable"),
        "--",
        "sh",
        "-c",
        "cat app/conf/a.txt && ./tool",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "alpha\ntool ran\n");
    assert!(env.sandbox("fetched").join("app.tgz").is_file());
    assert_eq!(env.wait_json("fetched")["state"], "TASK_FINISHED");
}

#[test]
fn privileged_a_failed_fetch_fails_the_launch_and_the_command_never_runs() {
    if !require_root("privileged_a_failed_fetch_fails_the_launch_and_the_command_never_runs") {
        return;
    }
    let base = serve(HashMap::new());
    let env = Env::new();
    let url = format!("{base}/missing.tgz");
    let out = env.run(&[
        "run", "--id", "nofetch", "--fetch", &url, "--", "touch", "ran",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "stderr: {stderr}");
    assert_ne!(
        out.status.code(),
        Some(2),
        "a runtime failure, not usage: {stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&url) && stderr.contains("HTTP 404"),
        "{stderr}"
    );
    let t = env.wait_json("nofetch");
    assert_eq!(t["state"], "TASK_FAILED", "{t}");
    assert_eq!(t["reason"], "REASON_CONTAINER_LAUNCH_FAILED", "{t}");
    assert!(t["message"].as_str().unwrap().contains(&url), "{t}");
    assert!(t.get("status").is_none(), "the command never ran: {t}");
    assert!(!env.sandbox("nofetch").join("ran").exists());
    assert!(
        inits_of(env.runtime.path()).is_empty(),
        "nothing left running"
    );
}

#[test]
fn privileged_a_failed_fetch_with_rm_leaves_no_record_and_no_sandbox() {
    if !require_root("privileged_a_failed_fetch_with_rm_leaves_no_record_and_no_sandbox") {
        return;
    }
    let base = serve(HashMap::new());
    let env = Env::new();
    let url = format!("{base}/missing.tgz");
    let out = env.run(&[
        "run", "--rm", "--id", "rmfetch", "--fetch", &url, "--", "touch", "ran",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "never started: {stderr}");
    assert!(stderr.contains(&url), "{stderr}");
    assert_eq!(
        env.run(&["status", "rmfetch"]).status.code(),
        Some(1),
        "the FAILED record is forgotten"
    );
    assert!(!env.sandbox("rmfetch").exists(), "the sandbox is removed");
    assert!(
        !env.container_dir("rmfetch").exists(),
        "no runtime record left"
    );
    // The ID is free again: the same launch without a failure works.
    std::fs::write(env.work.path().join("ok.txt"), "x").unwrap();
    let local = env.work.path().join("ok.txt").display().to_string();
    env.ok(&[
        "run", "--rm", "--id", "rmfetch", "--fetch", &local, "--", "true",
    ]);
    assert!(!env.sandbox("rmfetch").exists());

    // A failed launch must not remove another container of that ID.
    env.ok(&["run", "--id", "kept", "--", "true"]);
    let out = env.run(&["run", "--rm", "--id", "kept", "--fetch", &url, "--", "true"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        env.sandbox("kept").exists(),
        "the earlier container's sandbox stays"
    );
    assert!(env.container_dir("kept").exists());
}

#[test]
fn a_bad_fetcher_cache_size_in_the_config_file_is_a_usage_error() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    for (value, needle) in [
        ("\"lots\"", "lots"),
        ("\"12XB\"", "12XB"),
        ("\"9999PB\"", "9999PB"),
        ("-5", "-5"),
        ("1.5", "1.5"),
    ] {
        let config = dir.path().join("phobos.toml");
        std::fs::write(&config, format!("fetcher_cache_size = {value}\n")).unwrap();
        let out = env
            .cmd()
            .arg("--config")
            .arg(&config)
            .args(["run", "--id", "cachecfg", "--", "true"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{value}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{value}: {stderr}");
        assert!(
            stderr.contains("fetcher_cache_size") && stderr.contains(needle),
            "{value}: {stderr}"
        );
    }
    for d in [env.work.path(), env.runtime.path()] {
        let left: Vec<_> = std::fs::read_dir(d).unwrap().flatten().collect();
        assert!(
            left.is_empty(),
            "nothing changed in {}: {left:?}",
            d.display()
        );
    }
}

#[test]
fn bad_fetch_specs_are_usage_errors_that_change_nothing() {
    let env = Env::new();
    for (spec, needle) in [
        ("s3://bucket/key", "not supported"),
        ("hdfs://nn/x", "not supported"),
        ("/tmp/x,bogus", "unknown option \"bogus\""),
        ("", "empty URI"),
        ("/tmp/x,output_file=../x", "output_file"),
    ] {
        let out = env.run(&["run", "--id", "bad", "--fetch", spec, "--", "true"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{spec}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{spec}: {stderr}");
        assert!(stderr.contains(needle), "{spec}: {stderr}");
        assert!(
            env.run(&["status", "bad"]).status.code() != Some(0),
            "{spec}"
        );
    }
    let left: Vec<_> = std::fs::read_dir(env.work.path())
        .unwrap()
        .flatten()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn privileged_destroy_during_fetching_stops_the_download_promptly() {
    if !require_root("privileged_destroy_during_fetching_stops_the_download_promptly") {
        return;
    }
    let (base, _) = serve_counted(HashMap::new());
    let env = Env::new();
    // The stall timeout would end it much later: 10 minutes here (the
    // default 60 s could pass first on a loaded machine, and end it as
    // failed rather than killed).
    let cfg = config("fetcher_stall_timeout = \"10mins\"\n");
    let mut launch = env
        .cmd_config(&cfg.path)
        .args(["run", "--id", "stalled", "--fetch"])
        .arg(format!("{base}/stall"))
        .args(["--", "touch", "ran"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The state is a symlink whose target names it.
    let state = env.container_dir("stalled").join("state");
    assert!(
        eventually(PATIENCE, || std::fs::read_link(&state)
            .is_ok_and(|s| s.to_string_lossy().contains("FETCHING"))),
        "never reached FETCHING"
    );
    let start = Instant::now();
    let out = env
        .cmd_config(&cfg.path)
        .args(["destroy", "stalled"])
        .output()
        .unwrap();
    let took = start.elapsed();
    assert!(out.status.success(), "{out:?}");
    assert!(took < Duration::from_secs(20), "destroy took {took:?}");
    let status = launch.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(launch.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    let t = env.wait_json("stalled");
    assert_eq!(t["state"], "TASK_KILLED", "{t}");
    assert!(t.get("status").is_none(), "the command never ran: {t}");
    let sandbox = env.sandbox("stalled");
    assert!(!sandbox.join("ran").exists());
    assert!(!sandbox.join("stall").exists(), "no partial download");
    assert!(
        inits_of(env.runtime.path()).is_empty(),
        "nothing left running"
    );
}

#[test]
fn privileged_a_cached_uri_is_downloaded_once_for_two_launches() {
    if !require_root("privileged_a_cached_uri_is_downloaded_once_for_two_launches") {
        return;
    }
    let (base, requests) = serve_counted(HashMap::from([("/app.tgz".to_owned(), app_tgz())]));
    let env = Env::new();
    for id in ["cached-1", "cached-2"] {
        let out = env.run(&[
            "run",
            "--id",
            id,
            "--fetch",
            &format!("{base}/app.tgz,cache"),
            "--",
            "cat",
            "app/conf/a.txt",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{id}: {stderr}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "alpha\n");
    }
    assert_eq!(requests.load(Ordering::SeqCst), 1, "one download");
    let cache = env.work.path().join("fetcher-cache");
    let entries = std::fs::read_dir(&cache)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().len() == 64)
        .count();
    assert_eq!(entries, 1);
}

#[test]
fn privileged_a_long_download_shows_progress_on_a_terminal_only() {
    if !require_root("privileged_a_long_download_shows_progress_on_a_terminal_only") {
        return;
    }
    let base = serve(HashMap::new());
    let env = Env::new();
    let url = format!("{base}/slow.bin");
    // Not a terminal: nothing but the command's own output.
    let out = env.run(&[
        "run",
        "--rm",
        "--fetch",
        &format!("{url},extract=false"),
        "--",
        "true",
    ]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "no progress off a terminal"
    );

    let Some(tmux) = common::tmux::Tmux::start(150, 20) else {
        return;
    };
    let line = |extra: &str, tag: &str| {
        format!(
            "{PHOBOS} --runtime-dir {} --work-dir {} --cgroups-root {} run --rm {extra} --fetch {url},extract=false -- true; echo {tag}=$?",
            env.runtime.path().display(),
            env.work.path().display(),
            env.cgroups_root
        )
    };
    tmux.type_line(&line("", "FETCH-EXIT"));
    let (ok, screen) = tmux.until(|s| {
        s.contains("slow.bin: Downloading") && s.contains("/ 400.0 kB (") && s.contains("%)")
    });
    assert!(
        ok,
        "bytes, length and percent while it downloads:\n{screen}"
    );
    let (ok, screen) = tmux.until(|s| s.contains("FETCH-EXIT=0"));
    assert!(ok, "{screen}");
    assert!(
        screen.contains("slow.bin: Fetched 400.0 kB in "),
        "left as fetched:\n{screen}"
    );
    // -q: nothing.
    tmux.type_line("clear");
    tmux.type_line(&line("-q", "QUIET-EXIT"));
    let (ok, screen) = tmux.until(|s| s.contains("QUIET-EXIT=0"));
    assert!(ok, "{screen}");
    assert!(
        !screen.contains("Downloading") && !screen.contains("Fetched"),
        "{screen}"
    );
}
