//! `phobos image load|ls|rm|prune` from the binary, with archives made by
//! the real tools: `docker save` of the local engine's `busybox:local` and
//! `skopeo copy … oci-archive:`.

mod common;

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_phobos");

fn phobos(work: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args([
            "--work-dir",
            work.to_str().unwrap(),
            "--config",
            "/dev/null",
        ])
        .args(args)
        .env_remove("PHOBOS_RUNTIME_DIR")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn tool(cmd: &mut Command) -> bool {
    match cmd.output() {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            eprintln!(
                "skipping: {cmd:?} failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            false
        }
        Err(e) => {
            eprintln!("skipping: {cmd:?}: {e}");
            false
        }
    }
}

#[test]
fn invalid_references_are_usage_errors() {
    let t = tempfile::tempdir().unwrap();
    for bad in ["Busybox", "busybox:", "a//b", "busybox@sha256:12"] {
        let o = phobos(t.path(), &["image", "rm", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(bad), "{err}");
    }
    let o = phobos(t.path(), &["image", "rm", "busybox"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("docker.io/library/busybox:latest is not in the store"),
        "{}",
        text(&o)
    );
    let o = phobos(
        t.path(),
        &[
            "image",
            "load",
            t.path().join("missing.tar").to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

#[test]
fn privileged_load_docker_save_and_oci_archive_then_ls_rm_prune() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: needs root");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let work = t.path().join("work");
    let saved = t.path().join("bb.tar");
    if !tool(Command::new("docker").args(["save", "-o", saved.to_str().unwrap(), "busybox:local"]))
    {
        return;
    }
    let o = phobos(&work, &["image", "load", saved.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("loaded docker.io/library/busybox:local"),
        "{}",
        text(&o)
    );

    let oci = t.path().join("bb-oci.tar");
    let dest = format!("oci-archive:{}:phobos-test/bb:oci", oci.display());
    if tool(Command::new("skopeo").args(["copy", "docker-daemon:busybox:local", &dest])) {
        let o = phobos(&work, &["image", "load", oci.to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            text(&o).contains("loaded docker.io/phobos-test/bb:oci"),
            "{}",
            text(&o)
        );
    }

    let o = phobos(&work, &["image", "ls", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let refs: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reference"].as_str().unwrap())
        .collect();
    assert!(
        refs.contains(&"docker.io/library/busybox:local"),
        "{refs:?}"
    );
    let layers = list[0]["layers"].as_array().unwrap().len();
    assert!(layers >= 1);
    let sh = work
        .join("store/layers")
        .join(&list[0]["layers"][0].as_str().unwrap()[7..])
        .join("rootfs/bin/busybox");
    assert!(sh.is_file(), "{} missing", sh.display());
    let o = phobos(&work, &["image", "ls"]);
    assert!(text(&o).contains("busybox:local"), "{}", text(&o));

    for r in &refs {
        let o = phobos(&work, &["image", "rm", r]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let o = phobos(&work, &["image", "prune"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read_dir(work.join("store/layers"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn pull_failures_are_one_line_with_the_right_exit_code() {
    let t = tempfile::tempdir().unwrap();
    let (_refusing, free) = common::refusing_port::refusing_port();
    let reference = format!("127.0.0.1:{free}/phobos/none:1");
    let o = phobos(
        t.path(),
        &["image", "pull", &reference, "--timeout", "2secs"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("registry 127.0.0.1:{free}")) && err.contains("refused"),
        "{err}"
    );
    for args in [
        vec!["image", "pull", "a//b"],
        vec!["image", "pull", "busybox", "--timeout", "soon"],
    ] {
        let o = phobos(t.path(), &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
    }
    assert!(
        !t.path()
            .join("store/images")
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some())
    );
}
