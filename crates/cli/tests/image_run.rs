//! `phobos run --image REF`: Mesos containers whose root filesystem is
//! provisioned from the image store (overlay over the layers), with the
//! image's ENTRYPOINT, CMD, ENV and WORKDIR merged with the command line;
//! the image in use while the container lives; nothing left mounted or
//! provisioned after destroy. Archives are made with `docker save` of the
//! local engine's test images (scripts/test.sh builds them).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// `docker save IMAGE` into `dir`; `None` (after saying why) without an
/// engine or the image.
fn saved(image: &str, dir: &Path) -> Option<PathBuf> {
    let out = dir.join(format!("{}.tar", image.replace([':', '/'], "_")));
    match Command::new("docker")
        .args(["save", "-o", out.to_str().unwrap(), image])
        .output()
    {
        Ok(o) if o.status.success() => Some(out),
        Ok(o) => {
            println!(
                "skipping: docker save {image} failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            None
        }
        Err(e) => {
            println!("skipping: docker save {image}: {e}");
            None
        }
    }
}

/// An environment with `images` loaded into its store.
fn env_with(images: &[&str], test: &str) -> Option<(Env, tempfile::TempDir)> {
    if !require_root(test) {
        return None;
    }
    let env = Env::new();
    let archives = tempfile::tempdir().unwrap();
    for image in images {
        let tar = saved(image, archives.path())?;
        env.ok(&["image", "load", tar.to_str().unwrap()]);
    }
    Some((env, archives))
}

fn output(env: &Env, args: &[&str]) -> (i32, String, String) {
    let out = env.run(args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn provisioner_entries(env: &Env) -> Vec<String> {
    std::fs::read_dir(env.work.path().join("provisioner"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn in_use_records(env: &Env) -> usize {
    std::fs::read_dir(env.work.path().join("store/in-use"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Everything provisioned for the containers is gone with them: no
/// provisioner entry and no in-use record of an image.
fn assert_nothing_provisioned(env: &Env) {
    assert!(
        provisioner_entries(env).is_empty(),
        "{:?}",
        provisioner_entries(env)
    );
    assert_eq!(in_use_records(env), 0);
}

/// No mount names the work directory (waited for: a container's mount
/// namespace goes with its last process).
fn assert_no_mounts(env: &Env) {
    assert!(
        eventually(PATIENCE, || mounts_mentioning(env.work.path()).is_empty()),
        "{:#?}",
        mounts_mentioning(env.work.path())
    );
}

/// [`assert_nothing_provisioned`] and [`assert_no_mounts`].
fn assert_nothing_left(env: &Env) {
    assert_nothing_provisioned(env);
    assert_no_mounts(env);
}

#[test]
fn privileged_image_config_merges_with_the_command_line() {
    let Some((env, _archives)) = env_with(
        &["busybox:local", "busybox:local-entrypoint"],
        "privileged_image_config_merges_with_the_command_line",
    ) else {
        return;
    };
    // No command: ENTRYPOINT + CMD, in WORKDIR, with ENV.
    let (code, out, err) = output(&env, &["run", "--image", "busybox:local-entrypoint"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "phobos-entrypoint default-arg");
    // A command line replaces CMD and keeps ENTRYPOINT.
    let (code, out, err) = output(
        &env,
        &["run", "--image", "busybox:local-entrypoint", "--", "a", "b"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "phobos-entrypoint a b");
    // Without ENTRYPOINT the command line is the command; the image's
    // WORKDIR and PATH apply, -e and -w win over them.
    let (code, out, err) = output(
        &env,
        &[
            "run",
            "--image",
            "busybox:local-entrypoint",
            "-e",
            "EXTRA=1",
            "--",
            "x",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "phobos-entrypoint x");
    let script = "pwd; echo PATH=$PATH EXTRA=$EXTRA SANDBOX=$MESOS_SANDBOX; ls /mnt/mesos/sandbox";
    let (code, out, err) = output(
        &env,
        &["run", "--image", "busybox:local", "--", "sh", "-c", script],
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "/srv/phobos", "{out}");
    assert!(lines[1].contains("SANDBOX=/mnt/mesos/sandbox"), "{out}");
    assert!(
        lines.contains(&"stdout"),
        "the sandbox is not mounted: {out}"
    );
    let (code, out, _) = output(
        &env,
        &[
            "run",
            "--image",
            "busybox:local",
            "-w",
            "/tmp/made",
            "-e",
            "PATH=/bin",
            "--",
            "sh",
            "-c",
            "pwd; echo $PATH",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["/tmp/made", "/bin"]);
    assert_nothing_left(&env);
}

#[test]
fn privileged_the_sandbox_appears_at_the_configured_sandbox_directory() {
    let Some((env, _archives)) = env_with(
        &["busybox:local"],
        "privileged_the_sandbox_appears_at_the_configured_sandbox_directory",
    ) else {
        return;
    };
    let config = env.work.path().join("phobos.toml");
    std::fs::write(&config, "sandbox_directory = \"/srv/the-sandbox\"\n").unwrap();
    let script = "pwd; echo $MESOS_SANDBOX; echo inside > $MESOS_SANDBOX/written; \
                  test -e /mnt/mesos/sandbox && echo default-too || echo default-absent";
    let out = env
        .cmd()
        .env("PHOBOS_CONFIG", &config)
        .args([
            "run",
            "--id",
            "sbxdir",
            "--image",
            "busybox:local",
            "--",
            "sh",
            "-c",
            script,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // MESOS_SANDBOX and the mount follow the key (the image's WORKDIR
    // stays the working directory); the default path is not made.
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["/srv/phobos", "/srv/the-sandbox", "default-absent"]
    );
    let sandbox = env.sandbox("sbxdir");
    assert_eq!(
        std::fs::read_to_string(sandbox.join("written")).unwrap(),
        "inside\n"
    );
    // The command's output still lands in the host sandbox.
    assert!(
        std::fs::read_to_string(sandbox.join("stdout"))
            .unwrap()
            .contains("/srv/the-sandbox")
    );
    // Without a WORKDIR (a plain root filesystem) the command starts there.
    let dir = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(dir.path());
    let out = env
        .cmd()
        .env("PHOBOS_CONFIG", &config)
        .args([
            "run",
            "--rootfs",
            rootfs.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "pwd",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "/srv/the-sandbox"
    );
    assert_no_mounts(&env);
}

#[test]
fn privileged_the_classic_mount_path_provisions_an_overlay() {
    let Some((env, _archives)) = env_with(
        &["busybox:local"],
        "privileged_the_classic_mount_path_provisions_an_overlay",
    ) else {
        return;
    };
    let out = env
        .cmd()
        .env("PHOBOS_MOUNT_API", "legacy")
        .args([
            "run",
            "--image",
            "busybox:local",
            "--",
            "sh",
            "-c",
            "grep -E '^[0-9]+ [0-9]+ [^ ]+ / / ' /proc/self/mountinfo; echo new > /bin/made && cat /bin/made",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = stdout.lines().next().unwrap_or_default();
    assert!(root.contains(" - overlay "), "{stdout}");
    assert!(stdout.lines().any(|l| l == "new"), "{stdout}");
    assert_nothing_left(&env);
}

#[test]
fn privileged_an_image_in_use_stays_until_its_container_is_destroyed() {
    let Some((env, _archives)) = env_with(
        &["busybox:local"],
        "privileged_an_image_in_use_stays_until_its_container_is_destroyed",
    ) else {
        return;
    };
    env.detach_with(
        "user-of-image",
        &["--image", "busybox:local"],
        &[
            "sh",
            "-c",
            "echo scratch > /tmp/written-by-container; sleep 1000",
        ],
    );
    let upper = env.work.path().join("provisioner/user-of-image/upper");
    assert!(
        eventually(PATIENCE, || upper.join("tmp/written-by-container").exists()),
        "the container's writes are not in its overlay upper dir"
    );
    // The host sees the overlay mount, the container its own copy.
    assert!(!mounts_mentioning(&env.work.path().join("provisioner")).is_empty());
    let (code, _, err) = output(&env, &["image", "rm", "busybox:local"]);
    assert_ne!(code, 0, "removed an image in use");
    assert!(err.contains("user-of-image"), "{err}");
    env.ok(&["destroy", "user-of-image"]);
    assert_nothing_left(&env);
    env.ok(&["image", "rm", "busybox:local"]);
}

#[test]
fn privileged_image_launch_refusals_are_one_line_and_change_nothing() {
    let Some((env, _archives)) = env_with(
        &["busybox:local"],
        "privileged_image_launch_refusals_are_one_line_and_change_nothing",
    ) else {
        return;
    };
    for (args, code, want) in [
        (
            vec!["--launcher", "posix", "--image", "busybox:local"],
            2,
            "an image (the Mesos containerizer pivots into its root filesystem) needs the linux launcher, not posix",
        ),
        (vec!["--image", "Not//A:Ref::"], 2, "Not//A:Ref::"),
        (
            vec!["--image", "busybox:local", "--rootfs", "/"],
            2,
            "are exclusive",
        ),
    ] {
        let mut full = vec!["run"];
        full.extend(&args);
        full.extend(["--", "true"]);
        let (got, _, err) = output(&env, &full);
        assert_eq!(got, code, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
    // An image that is not stored and cannot be pulled: the container
    // never starts (255), one line names the image and the registry, and
    // nothing is left provisioned.
    let (code, _, err) = output(
        &env,
        &["run", "--image", "127.0.0.1:9/none:1", "--", "true"],
    );
    assert_eq!(code, 255, "{err}");
    assert!(
        err.contains("failed to provision image 127.0.0.1:9/none:1")
            && err.contains("registry 127.0.0.1:9"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_nothing_provisioned(&env);
}
