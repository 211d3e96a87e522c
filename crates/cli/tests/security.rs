//! Attacks on the launch path, tried for real (root): descriptors the
//! caller left open must not reach the container (issue 15, item 1).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{Env, PHOBOS, eventually, inits_of, require_root};

const SECRET: &str = "root-only-secret-3f9a";

/// A root-only (0600) file holding [`SECRET`].
fn secret_file(dir: &Path) -> PathBuf {
    let path = dir.join("secret");
    std::fs::write(&path, SECRET).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// Runs `phobos ARGS` from a bash that first opened `secret` on fds 7 and
/// 1000, exactly as `exec 7<root-only-file; phobos run ...` in a shell.
fn with_open_fds(env: &Env, secret: &Path, args: &[&str]) -> Output {
    let mut c = Command::new("bash");
    c.arg("-c")
        .arg(r#"exec 7<"$1" 1000<"$1"; shift; exec "$@""#)
        .arg("bash")
        .arg(secret)
        .arg(PHOBOS)
        .arg("--runtime-dir")
        .arg(env.runtime.path())
        .arg("--work-dir")
        .arg(env.work.path())
        .arg("--cgroups-root")
        .arg(&env.cgroups_root)
        .args(args)
        .env_remove("PHOBOS_STOP_AT")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null());
    c.output().unwrap()
}

/// What the container tries (in bash, as dash knows no fd 1000): read the
/// inherited descriptors, then list every descriptor it has with its target.
const PROBE: &str = "cat <&7; cat <&1000; ls -l /proc/$$/fd/";

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The targets of every descriptor of `pid` (empty once it is gone).
fn fd_targets(pid: u32) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|t| t.display().to_string())
        .collect()
}

/// `pid` and its descendants, from /proc/*/stat.
fn tree(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let parent = all[i];
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                continue;
            };
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                continue;
            };
            let ppid = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok());
            if ppid == Some(parent) && !all.contains(&p) {
                all.push(p);
            }
        }
        i += 1;
    }
    all
}

#[test]
fn privileged_inherited_descriptors_do_not_reach_a_foreground_container() {
    if !require_root("privileged_inherited_descriptors_do_not_reach_a_foreground_container") {
        return;
    }
    let env = Env::new();
    let secret = secret_file(env.work.path());
    // The exact attack.
    let out = with_open_fds(
        &env,
        &secret,
        &["run", "-u", "nobody", "--", "sh", "-c", "cat <&7"],
    );
    let all = text(&out);
    assert!(
        !all.contains(SECRET),
        "the container read the secret: {all}"
    );
    assert_eq!(out.status.code(), Some(2), "cat <&7 must fail: {all}");
    // The high-numbered descriptor, and everything the container holds.
    let out = with_open_fds(
        &env,
        &secret,
        &["run", "-u", "nobody", "--", "bash", "-c", PROBE],
    );
    let all = text(&out);
    assert!(
        !all.contains(SECRET),
        "the container read the secret: {all}"
    );
    assert!(
        !all.contains(secret.to_str().unwrap()),
        "the container holds the secret file open: {all}"
    );
    // The probe itself ran (as nobody, with only its stdio and ls's own
    // directory descriptor).
    assert!(
        all.contains("Bad file descriptor") || all.contains("bad file"),
        "{all}"
    );
    assert!(
        all.contains("/proc/") || all.contains("pipe:") || all.contains("null"),
        "{all}"
    );
    // As root too: nothing to do with the user switch.
    let out = with_open_fds(&env, &secret, &["run", "--", "bash", "-c", PROBE]);
    let all = text(&out);
    assert!(!all.contains(SECRET), "{all}");
    assert!(!all.contains(secret.to_str().unwrap()), "{all}");
}

#[test]
fn privileged_inherited_descriptors_do_not_reach_a_detached_container_or_its_init() {
    if !require_root(
        "privileged_inherited_descriptors_do_not_reach_a_detached_container_or_its_init",
    ) {
        return;
    }
    let env = Env::new();
    let secret = secret_file(env.work.path());
    let out = with_open_fds(
        &env,
        &secret,
        &[
            "run",
            "-d",
            "--id",
            "bg",
            "-u",
            "nobody",
            "--",
            "bash",
            "-c",
            &format!("{PROBE}; exec sleep 1000"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let init = env.status_json("bg")["pid"].as_i64().unwrap() as u32;
    // Wait until the command runs (the sleep is init's child), then look at
    // every descriptor of init and the command.
    assert!(
        eventually(Duration::from_secs(30), || tree(init).len() >= 2),
        "the command never started"
    );
    for pid in tree(init) {
        let targets = fd_targets(pid);
        assert!(
            !targets.iter().any(|t| t == secret.to_str().unwrap()),
            "process {pid} holds the secret open: {targets:?}"
        );
    }
    // Init keeps nothing of its own open across the command's exec either:
    // the command's descriptors are its stdio only.
    let sleep = *tree(init).last().unwrap();
    let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{sleep}/fd"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    fds.sort();
    assert_eq!(fds, ["0", "1", "2"], "the command's descriptors");
    env.ok(&["destroy", "bg"]);
    let stdout = std::fs::read_to_string(env.sandbox("bg").join("stdout")).unwrap();
    let stderr = std::fs::read_to_string(env.sandbox("bg").join("stderr")).unwrap();
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "{stdout}{stderr}"
    );
    assert!(!stdout.contains(secret.to_str().unwrap()), "{stdout}");
    assert!(eventually(Duration::from_secs(10), || inits_of(
        env.runtime.path()
    )
    .is_empty()));
}

#[test]
fn privileged_inherited_descriptors_do_not_reach_an_exec_command() {
    if !require_root("privileged_inherited_descriptors_do_not_reach_an_exec_command") {
        return;
    }
    let env = Env::new();
    let secret = secret_file(env.work.path());
    env.ok(&[
        "run", "-d", "--id", "box", "-u", "nobody", "--", "sleep", "1000",
    ]);
    let out = with_open_fds(&env, &secret, &["exec", "box", "--", "bash", "-c", PROBE]);
    let all = text(&out);
    assert!(
        !all.contains(SECRET),
        "the exec'd command read the secret: {all}"
    );
    assert!(!all.contains(secret.to_str().unwrap()), "{all}");
    assert!(
        all.contains("Bad file descriptor") || all.contains("bad file"),
        "{all}"
    );
    env.ok(&["destroy", "box"]);
}
