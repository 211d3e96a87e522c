//! Extraction of `.tar.bz2`, `.tar.xz`, `.zip` and single `.bz2`/`.xz`
//! files (archives made by the real `tar`, `bzip2`, `xz`, `zip` and
//! Python's `zipfile`), hostile zips, and decompression bombs stopped by
//! the limits; plus cancelling a fetch (a destroy during FETCHING).

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Reply, assert_hostile_archives_refused, noise, sandbox, serve};
use phobos_fetch::{Cause, ExtractError, Limits, Settings, Uri, fetch_all, fetch_all_until};

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {out:?}");
}

/// A tree `app/{run.sh,conf/a.txt,link -> conf/a.txt}` in `dir`.
fn tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("app/conf")).unwrap();
    std::fs::write(dir.join("app/run.sh"), b"#!/bin/sh\necho hi\n").unwrap();
    std::fs::write(dir.join("app/conf/a.txt"), b"alpha").unwrap();
    std::os::unix::fs::symlink("conf/a.txt", dir.join("app/link")).unwrap();
}

fn check_tree(sb: &Path) {
    assert_eq!(std::fs::read(sb.join("app/conf/a.txt")).unwrap(), b"alpha");
    assert_eq!(
        std::fs::read_link(sb.join("app/link")).unwrap(),
        Path::new("conf/a.txt")
    );
    assert_eq!(
        std::fs::read(sb.join("app/run.sh")).unwrap(),
        b"#!/bin/sh\necho hi\n"
    );
}

fn settings() -> Settings {
    Settings {
        stall_timeout: Duration::from_secs(30),
        ..Settings::default()
    }
}

#[test]
fn bz2_xz_and_zip_archives_are_extracted() {
    let src = tempfile::tempdir().unwrap();
    tree(src.path());
    let d = src.path();
    run(Command::new("tar")
        .current_dir(d)
        .args(["cjf", "a.tar.bz2", "app"]));
    run(Command::new("tar")
        .current_dir(d)
        .args(["cJf", "a.txz", "app"]));
    run(Command::new("zip")
        .current_dir(d)
        .args(["-qry", "a.zip", "app"]));
    std::fs::write(d.join("notes.txt"), b"notes").unwrap();
    run(Command::new("bzip2")
        .current_dir(d)
        .args(["-k", "notes.txt"]));
    run(Command::new("xz").current_dir(d).args(["-k", "notes.txt"]));
    let body = |n: &str| Reply::Body(std::fs::read(d.join(n)).unwrap());
    let base = serve(HashMap::from([
        ("/a.tar.bz2", body("a.tar.bz2")),
        ("/a.txz", body("a.txz")),
        ("/a.zip", body("a.zip")),
        ("/notes.txt.bz2", body("notes.txt.bz2")),
        ("/notes.txt.xz", body("notes.txt.xz")),
    ]));
    for name in ["a.tar.bz2", "a.txz", "a.zip"] {
        let (_keep, sb) = sandbox();
        let s = Settings {
            owner: Some((65534, 65534)),
            ..settings()
        };
        let got = fetch_all(&[Uri::new(format!("{base}/{name}"))], &sb, &s).unwrap();
        let ex = got[0].extracted.as_ref().expect(name);
        assert!(ex.entries >= 4, "{name}: {ex:?}");
        check_tree(&sb);
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(sb.join("app/conf/a.txt")).unwrap().uid(),
            65534,
            "{name}"
        );
        assert!(sb.join(name).is_file(), "{name}: archive kept");
    }
    for name in ["notes.txt.bz2", "notes.txt.xz"] {
        let (_keep, sb) = sandbox();
        fetch_all(&[Uri::new(format!("{base}/{name}"))], &sb, &settings()).unwrap();
        assert_eq!(
            std::fs::read(sb.join("notes.txt")).unwrap(),
            b"notes",
            "{name}"
        );
    }
}

/// A zip member: name, data, unix mode with its file type bits.
type Member<'a> = (&'a str, &'a str, u32);

/// Zips Python's `zipfile` writes from `entries`.
fn python_zip(path: &Path, entries: &[Member<'_>]) {
    let mut script = String::from("import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1], 'w')\n");
    for (name, data, mode) in entries {
        script.push_str(&format!(
            "i = zipfile.ZipInfo({name:?}); i.external_attr = {mode} << 16; i.create_system = 3\n\
             z.writestr(i, {data:?})\n"
        ));
    }
    script.push_str("z.close()\n");
    run(Command::new("python3").args(["-c", &script]).arg(path));
}

#[test]
fn hostile_zips_are_refused_and_nothing_escapes() {
    let src = tempfile::tempdir().unwrap();
    let file = 0o100644;
    let link = 0o120777;
    let cases: Vec<(&str, Vec<Member<'_>>)> = vec![
        ("dotdot", vec![("../escape", "pwned", file)]),
        ("nested", vec![("a/../../escape", "pwned", file)]),
        (
            "absolute",
            vec![("/tmp/phobos-zip-abs-escape", "pwned", file)],
        ),
        ("abs-link", vec![("etc", "/etc", link)]),
        ("rel-link-out", vec![("a/out", "../../escape", link)]),
        (
            "through-link",
            vec![
                ("sub/", "", 0o40755),
                ("l", "sub", link),
                ("l/x", "pwned", file),
            ],
        ),
    ];
    let zips: Vec<(&str, Vec<u8>)> = cases
        .iter()
        .map(|(name, entries)| {
            let path = src.path().join(format!("{name}.zip"));
            python_zip(&path, entries);
            (*name, std::fs::read(&path).unwrap())
        })
        .collect();
    assert_hostile_archives_refused("zip", &zips, &settings());
    assert!(!Path::new("/tmp/phobos-zip-abs-escape").exists());
}

#[test]
fn decompression_bombs_stop_at_the_limits() {
    let src = tempfile::tempdir().unwrap();
    let d = src.path();
    // 8 MB of zeros, a few KB compressed.
    std::fs::write(d.join("zeros"), vec![0u8; 8 << 20]).unwrap();
    run(Command::new("tar")
        .current_dir(d)
        .args(["cJf", "bomb.tar.xz", "zeros"]));
    run(Command::new("zip")
        .current_dir(d)
        .args(["-q", "bomb.zip", "zeros"]));
    run(Command::new("bzip2").current_dir(d).args(["-k", "zeros"]));
    for i in 0..20 {
        std::fs::write(d.join(format!("f{i}")), b"x").unwrap();
    }
    let many: Vec<String> = (0..20).map(|i| format!("f{i}")).collect();
    run(Command::new("zip")
        .current_dir(d)
        .arg("-q")
        .arg("many.zip")
        .args(&many));
    let body = |n: &str| Reply::Body(std::fs::read(d.join(n)).unwrap());
    let base = serve(HashMap::from([
        ("/bomb.tar.xz", body("bomb.tar.xz")),
        ("/bomb.zip", body("bomb.zip")),
        ("/zeros.bz2", body("zeros.bz2")),
        ("/many.zip", body("many.zip")),
    ]));
    let s = Settings {
        limits: Limits {
            max_bytes: 1 << 20,
            max_entries: 10,
        },
        ..settings()
    };
    for name in ["bomb.tar.xz", "bomb.zip", "zeros.bz2"] {
        let (_keep, sb) = sandbox();
        let err = fetch_all(&[Uri::new(format!("{base}/{name}"))], &sb, &s).expect_err(name);
        assert!(
            matches!(err.cause, Cause::Extract(ExtractError::TooLarge(_))),
            "{name}: {err}"
        );
        assert!(err.to_string().contains("extraction limit"), "{err}");
        let big = std::fs::read_dir(&sb)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .max()
            .unwrap_or(0);
        assert!(big <= 2 << 20, "{name}: {big} bytes written");
    }
    let (_keep, sb) = sandbox();
    let err = fetch_all(&[Uri::new(format!("{base}/many.zip"))], &sb, &s).unwrap_err();
    assert!(
        matches!(err.cause, Cause::Extract(ExtractError::TooMany(10))),
        "{err}"
    );
    // A corrupt archive fails naming it.
    let (_keep, sb) = sandbox();
    let bad = serve(HashMap::from([(
        "/bad.tar.bz2",
        Reply::Body(b"BZh9 nope".to_vec()),
    )]));
    let err = fetch_all(&[Uri::new(format!("{bad}/bad.tar.bz2"))], &sb, &settings()).unwrap_err();
    assert!(err.to_string().contains("corrupt archive"), "{err}");
}

#[test]
fn a_cancelled_fetch_stops_promptly_and_leaves_no_file() {
    let base = serve(HashMap::from([
        ("/stalls.bin", Reply::Stall),
        (
            "/slow.bin",
            Reply::Slow(noise(8 << 20, 3), Duration::from_millis(50)),
        ),
    ]));
    for name in ["stalls.bin", "slow.bin"] {
        let (scratch, sb) = sandbox();
        let start = Instant::now();
        let cancel_at = start + Duration::from_millis(500);
        let err = fetch_all_until(
            &[Uri::new(format!("{base}/{name}"))],
            &sb,
            &settings(),
            Duration::from_millis(50),
            &|| Instant::now() >= cancel_at,
        )
        .unwrap_err();
        let took = start.elapsed();
        assert!(matches!(err.cause, Cause::Cancelled), "{name}: {err}");
        assert!(err.to_string().contains(name), "{err}");
        assert!(
            took < Duration::from_secs(10),
            "{name}: cancel took {took:?} (stall timeout is 30 s)"
        );
        // The worker, if still reading, never links its file.
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(std::fs::read_dir(&sb).unwrap().count(), 0, "{name}");
        drop(scratch);
    }
    // Not cancelled: the same call fetches.
    let (_keep, sb) = sandbox();
    let ok = serve(HashMap::from([("/f", Reply::Body(b"f".to_vec()))]));
    let got = fetch_all_until(
        &[Uri::new(format!("{ok}/f"))],
        &sb,
        &settings(),
        Duration::from_millis(50),
        &|| false,
    )
    .unwrap();
    assert_eq!(got[0].bytes, 1);
}
