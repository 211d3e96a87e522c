//! Attacks on the launch path, tried for real (root): descriptors the
//! caller left open must not reach the container (issue 15, item 1).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Env, PATIENCE, PHOBOS, eventually, inits_of, require_root};

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
        .args(env.dir_args())
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
    // Wait until the probe is done and the command is the sleep (the probe's
    // own short-lived children would otherwise be looked at, even as
    // zombies), then look at every descriptor of init and the command.
    let is_sleep = |pid: &u32| {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
    };
    assert!(
        eventually(PATIENCE, || tree(init).iter().any(is_sleep)),
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
    let sleep = tree(init).into_iter().find(is_sleep).unwrap();
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
    assert!(eventually(PATIENCE, || inits_of(env.runtime.path()).is_empty()));
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

/// A directory standing for what an attacker points a symlink at (think
/// /etc): root-owned, with a file in it; returns its owner, mode and
/// listing for "nothing changed".
fn victim(dir: &Path) -> (PathBuf, impl Fn() -> (u32, u32, Vec<String>)) {
    use std::os::unix::fs::MetadataExt;
    let target = dir.join("victim");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("passwd"), "root:x:0:0").unwrap();
    let t = target.clone();
    let snapshot = move || {
        let meta = std::fs::metadata(&t).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&t)
            .unwrap()
            .flatten()
            .map(|e| {
                let m = e.metadata().unwrap();
                format!("{:?} {} {:o}", e.file_name(), m.uid(), m.mode())
            })
            .collect();
        names.sort();
        (meta.uid(), meta.mode(), names)
    };
    (target, snapshot)
}

fn one_line(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    err
}

#[test]
fn privileged_a_symlink_planted_as_the_sandbox_is_refused() {
    if !require_root("privileged_a_symlink_planted_as_the_sandbox_is_refused") {
        return;
    }
    let env = Env::new();
    let outside = tempfile::tempdir().unwrap();
    let (target, snapshot) = victim(outside.path());
    let before = snapshot();
    // The exact attack: <work_dir>/containers/ID -> a directory.
    std::fs::create_dir_all(env.work.path().join("containers")).unwrap();
    std::os::unix::fs::symlink(&target, env.sandbox("planted")).unwrap();
    let out = env.run(&["run", "--id", "planted", "-u", "nobody", "--", "true"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = one_line(&out);
    assert!(
        err.contains("already exists") && err.contains("planted"),
        "{err}"
    );
    assert_eq!(snapshot(), before, "the symlink's target was changed");
    assert!(!env.container_dir("planted").exists(), "a record was left");
    // A real directory someone else made there is refused the same way.
    std::fs::create_dir(env.sandbox("premade")).unwrap();
    let out = env.run(&["run", "--id", "premade", "-u", "nobody", "--", "true"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    one_line(&out);
    assert!(!env.container_dir("premade").exists());
    // Detached, the same.
    let out = env.run(&["run", "-d", "--id", "planted", "--", "true"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(snapshot(), before);
}

#[test]
fn privileged_a_symlinked_containers_directory_is_refused() {
    if !require_root("privileged_a_symlinked_containers_directory_is_refused") {
        return;
    }
    let outside = tempfile::tempdir().unwrap();
    let (target, snapshot) = victim(outside.path());
    let before = snapshot();
    // In the work directory: <work_dir>/containers -> the victim.
    let env = Env::new();
    std::os::unix::fs::symlink(&target, env.work.path().join("containers")).unwrap();
    let out = env.run(&["run", "--id", "c1", "-u", "nobody", "--", "true"]);
    // A launch failing after its input was accepted: the container never
    // started, 255 (README).
    assert_eq!(out.status.code(), Some(255), "{}", text(&out));
    let err = one_line(&out);
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(snapshot(), before, "the symlink's target was changed");
    assert!(!env.container_dir("c1").exists(), "a record was left");
    // In the runtime directory: <runtime_dir>/containers -> the victim.
    let env = Env::new();
    std::os::unix::fs::symlink(&target, env.runtime.path().join("containers")).unwrap();
    let out = env.run(&["run", "--id", "c2", "--", "true"]);
    assert_eq!(out.status.code(), Some(255), "{}", text(&out));
    assert!(one_line(&out).contains("symbolic link"));
    assert_eq!(snapshot(), before, "the symlink's target was changed");
    assert!(!env.sandbox("c2").exists());
}

#[test]
fn privileged_a_symlink_planted_as_a_runtime_entry_is_no_container() {
    if !require_root("privileged_a_symlink_planted_as_a_runtime_entry_is_no_container") {
        return;
    }
    let env = Env::new();
    let outside = tempfile::tempdir().unwrap();
    let (target, snapshot) = victim(outside.path());
    let before = snapshot();
    std::fs::create_dir_all(env.runtime.path().join("containers")).unwrap();
    std::os::unix::fs::symlink(&target, env.container_dir("entry")).unwrap();
    // Launching that ID is refused (taken), and nothing follows the link:
    // not destroy (which would write a termination into it), not wait.
    let out = env.run(&["run", "--id", "entry", "--", "true"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    for cmd in [["destroy", "entry"], ["wait", "entry"]] {
        let out = env.run(&cmd);
        assert_eq!(out.status.code(), Some(1), "{cmd:?}: {}", text(&out));
        assert!(one_line(&out).contains("unknown container"));
    }
    env.ok(&["ps"]);
    assert_eq!(snapshot(), before, "the symlink's target was changed");
    assert!(!env.sandbox("entry").exists());
}

#[test]
fn privileged_runtime_and_sandbox_entries_are_private() {
    if !require_root("privileged_runtime_and_sandbox_entries_are_private") {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let env = Env::new();
    env.ok(&[
        "run",
        "-d",
        "--id",
        "p",
        "-u",
        "nobody",
        "-e",
        "TOKEN=s3cret",
        "--",
        "sleep",
        "1000",
    ]);
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().mode() & 0o7777;
    let dir = env.container_dir("p");
    assert_eq!(mode(&dir), 0o700, "runtime entry");
    for name in ["config", "launch_info", "pid"] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
    let sandbox = env.sandbox("p");
    assert_eq!(mode(&sandbox), 0o700, "sandbox");
    // The sandbox keeps the owner the task user needs.
    assert_eq!(std::fs::metadata(&sandbox).unwrap().uid(), 65534);
    assert_eq!(
        std::fs::metadata(sandbox.join("stdout")).unwrap().uid(),
        65534
    );
    env.ok(&["destroy", "p"]);
    for name in ["termination", "status"] {
        let path = dir.join(name);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{name}");
        }
    }
    // init's status file, from a command that ended by itself.
    env.ok(&["run", "--id", "q", "--", "true"]);
    assert_eq!(mode(&env.container_dir("q").join("status")), 0o600);
}

#[test]
fn privileged_a_users_runtime_dir_made_by_someone_else_is_refused() {
    if !require_root("privileged_a_users_runtime_dir_made_by_someone_else_is_refused") {
        return;
    }
    use std::os::unix::process::CommandExt;
    // /tmp/phobos-UID pre-created 0777 by root, in a private place.
    let top = tempfile::tempdir().unwrap();
    std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let base = top.path().join("phobos-65534");
    std::fs::create_dir(&base).unwrap();
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o777)).unwrap();
    let exe = common::private_copy_of_phobos();
    let as_nobody = |args: &[&str]| {
        Command::new(exe.path())
            .arg("--runtime-dir")
            .arg(base.join("run"))
            .arg("--work-dir")
            .arg(base.join("work"))
            .args(args)
            .uid(65534)
            .gid(65534)
            .env("HOME", "/nonexistent")
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    let out = as_nobody(&["run", "--", "true"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = one_line(&out);
    assert!(
        err.contains(&base.display().to_string()) && err.contains("mode 0777"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&base).unwrap().count(),
        0,
        "something was created"
    );
    // Its own directory is fine.
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&base, Some(65534), Some(65534)).unwrap();
    let out = as_nobody(&["run", "--", "true"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn privileged_logs_do_not_follow_a_symlink_the_command_put_in_its_sandbox() {
    if !require_root("privileged_logs_do_not_follow_a_symlink_the_command_put_in_its_sandbox") {
        return;
    }
    let env = Env::new();
    let secret = secret_file(env.work.path());
    // The command (root here, so it can) swaps its stdout for a symlink
    // to a file it wants the caller of `phobos logs` to print.
    let script = format!(
        "rm -f stdout && ln -s {} stdout && touch swapped && exec sleep 1000",
        secret.display()
    );
    env.ok(&["run", "-d", "--id", "swap", "--", "sh", "-c", &script]);
    let swapped = env.sandbox("swap").join("swapped");
    assert!(eventually(PATIENCE, || swapped.exists()));
    let out = env.run(&["logs", "swap"]);
    let all = text(&out);
    assert!(
        !all.contains(SECRET),
        "logs printed the symlink's target: {all}"
    );
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(one_line(&out).contains("symbolic link"), "{all}");
    env.ok(&["destroy", "swap"]);
}

/// The same attacks on a Docker container's sandbox (it is mounted into
/// the container, so a followed symlink would hand the target to it).
#[test]
fn privileged_docker_sandboxes_are_made_fresh_and_never_through_a_symlink() {
    if !common::engine::engine_or_skip(
        "privileged_docker_sandboxes_are_made_fresh_and_never_through_a_symlink",
    ) {
        return;
    }
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let id = |name: &str| format!("sec-{name}-{}", &tag[..12]);
    let docker_record = |env: &Env, id: &str| env.runtime.path().join("docker/containers").join(id);
    let outside = tempfile::tempdir().unwrap();
    let (target, snapshot) = victim(outside.path());
    let before = snapshot();
    let run = |env: &Env, id: &str| {
        env.run(&[
            "run",
            "--id",
            id,
            "--docker-image",
            common::engine::IMAGE,
            "--",
            "sh",
            "-c",
            "echo owned > /mnt/mesos/sandbox/passwd; touch /mnt/mesos/sandbox/planted",
        ])
    };

    // The exact attack: <work_dir>/containers/ID -> a directory.
    let env = Env::new();
    std::fs::create_dir_all(env.work.path().join("containers")).unwrap();
    let planted = id("planted");
    std::os::unix::fs::symlink(&target, env.sandbox(&planted)).unwrap();
    let out = run(&env, &planted);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = one_line(&out);
    assert!(
        err.contains("already exists") && err.contains(&planted),
        "{err}"
    );
    assert_eq!(snapshot(), before, "the symlink's target was changed");
    assert!(!docker_record(&env, &planted).exists(), "a record was left");
    assert!(common::engine::engine_containers(&planted).is_empty());

    // A real directory someone else made there, with files in it.
    let premade = id("premade");
    std::fs::create_dir(env.sandbox(&premade)).unwrap();
    std::fs::write(env.sandbox(&premade).join("stdout"), "old\n").unwrap();
    let out = run(&env, &premade);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(one_line(&out).contains("already exists"));
    assert_eq!(
        std::fs::read_to_string(env.sandbox(&premade).join("stdout")).unwrap(),
        "old\n"
    );
    assert!(!docker_record(&env, &premade).exists());
    assert!(common::engine::engine_containers(&premade).is_empty());

    // <work_dir>/containers -> the victim.
    let env = Env::new();
    std::os::unix::fs::symlink(&target, env.work.path().join("containers")).unwrap();
    let through = id("through");
    let out = run(&env, &through);
    assert_eq!(out.status.code(), Some(255), "{}", text(&out));
    assert!(one_line(&out).contains("symbolic link"), "{}", text(&out));
    assert_eq!(snapshot(), before, "the symlink's target was changed");
    assert!(!docker_record(&env, &through).exists());
    assert!(common::engine::engine_containers(&through).is_empty());

    // And a fresh sandbox works: made here, and removed with the container.
    let env = Env::new();
    let fresh = id("fresh");
    let out = run(&env, &fresh);
    assert!(out.status.success(), "{}", text(&out));
    assert!(env.sandbox(&fresh).join("planted").is_file());
    env.ok(&["state", "--rm"]);
    assert!(!env.sandbox(&fresh).exists());
}
