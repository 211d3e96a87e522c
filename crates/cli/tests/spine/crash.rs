//! Crash safety at every launch state: the launcher SIGKILLed where it
//! stops at each point, then `recover` adopts the container or leaves no
//! trace of it (cgroups, mounts, provisioned images). Part of the spine
//! binary (spine.rs).

use std::process::Stdio;

use super::common::*;

/// SIGKILLs a launcher stopped at `point`, runs recover, and checks the
/// container is either adopted (RUNNING) or gone without a trace (with a
/// root filesystem: nothing left mounted either).
fn crash_at(point: &str, detach: bool, root: Root<'_>) {
    let env = Env::new();
    let id = format!("crash-{}", point.to_ascii_lowercase());
    let mut args = vec!["run", "--id", id.as_str()];
    if detach {
        args.push("-d");
    }
    let rootfs = match root {
        Root::Host => None,
        Root::Dir(dir) => {
            args.extend(["--rootfs", dir.to_str().unwrap()]);
            Some(dir.to_owned())
        }
        Root::Image(archive) => {
            env.ok(&["image", "load", archive.to_str().unwrap()]);
            args.extend(["--image", "busybox:local"]);
            Some(env.work.path().join("provisioner"))
        }
    };
    let rootfs = rootfs.as_deref();
    args.extend(["--", "sleep", "1000"]);
    let mut launcher = spawn_stopped_at(
        env.cmd()
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        point,
    );
    let pid = launcher.id();
    // A child cloned just before the stop holds the launcher's descriptors
    // (the operation lock among them) until its exec of `phobos init`
    // closes them; on a loaded machine that can take a while, and recover
    // would find the container busy. Wait until each child has exec'd
    // (its environment is init's, or the init spawner's, which holds
    // none of them, as the init it clones) or is gone. A used spawner
    // exits after its answer and stays a zombie until the stopped
    // launcher reaps it: a zombie has no memory, so its environ reads
    // empty, and it holds no descriptor either.
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    for child in children.split_whitespace() {
        assert!(
            eventually(PATIENCE, || {
                std::fs::read(format!("/proc/{child}/environ")).map_or(true, |env| {
                    env.is_empty()
                        || env.split(|b| *b == 0).any(|kv| {
                            kv.starts_with(b"PHOBOS_INIT_DIR=")
                                || kv.starts_with(b"PHOBOS_INIT_SPAWNER=")
                        })
                })
            }),
            "{point}: the init helper {child} never exec'd"
        );
    }
    launcher.kill().unwrap();
    launcher.wait().unwrap();

    let report = env.ok(&["recover"]);
    if point == "RUNNING" {
        assert!(
            report.contains(&format!("recovered {id}")),
            "{point}: {report}"
        );
        assert_eq!(env.status_json(&id)["state"], "RUNNING");
        env.ok(&["destroy", &id]);
        assert!(inits_of(env.runtime.path()).is_empty());
    } else {
        assert!(
            !env.container_dir(&id).exists(),
            "{point}: runtime dir left: {report}"
        );
        assert!(
            !env.sandbox(&id).exists(),
            "{point}: sandbox left: {report}"
        );
        let leftovers = std::fs::read_dir(env.runtime.path().join("containers"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(leftovers, 0, "{point}: something left in the runtime dir");
        assert!(
            eventually(PATIENCE, || inits_of(env.runtime.path()).is_empty()),
            "{point}: init left running"
        );
    }
    assert!(
        env.cgroup_dirs(&id).is_empty(),
        "{point}: cgroup left behind"
    );
    if let Some(root) = rootfs {
        assert!(
            eventually(PATIENCE, || mounts_mentioning(root).is_empty()),
            "{point}: mounts left: {:#?}",
            mounts_mentioning(root)
        );
    }
    if let Root::Image(_) = root {
        let left = |dir: &str| {
            std::fs::read_dir(env.work.path().join(dir))
                .map(|d| d.count())
                .unwrap_or(0)
        };
        assert_eq!(left("provisioner"), 0, "{point}: a root filesystem left");
        assert_eq!(left("store/in-use"), 0, "{point}: an in-use record left");
    }
}

/// What a crash test's container runs in.
#[derive(Clone, Copy)]
enum Root<'a> {
    Host,
    Dir(&'a std::path::Path),
    /// A `docker save` archive of busybox:local, loaded into the store.
    Image(&'a std::path::Path),
}

#[test]
fn privileged_crash_at_every_launch_state_leaves_nothing_behind() {
    if !require_root("privileged_crash_at_every_launch_state_leaves_nothing_behind") {
        return;
    }
    for point in [
        "created",
        "PROVISIONING",
        "PREPARING",
        "forked",
        "ISOLATING",
        "FETCHING",
        "RUNNING",
    ] {
        crash_at(point, false, Root::Host);
        crash_at(point, true, Root::Host);
    }
}

#[test]
fn privileged_crash_at_every_launch_state_with_a_rootfs_leaves_nothing_mounted() {
    if !require_root("privileged_crash_at_every_launch_state_with_a_rootfs_leaves_nothing_mounted")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(dir.path());
    for point in [
        "created",
        "PROVISIONING",
        "PREPARING",
        "forked",
        "ISOLATING",
        "FETCHING",
        "RUNNING",
    ] {
        crash_at(point, true, Root::Dir(&rootfs));
    }
}

#[test]
fn privileged_crash_at_every_launch_state_with_an_image_leaves_nothing_provisioned() {
    let test = "privileged_crash_at_every_launch_state_with_an_image_leaves_nothing_provisioned";
    if !require_root(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("busybox.tar");
    let saved = std::process::Command::new("docker")
        .args(["save", "-o", archive.to_str().unwrap(), "busybox:local"])
        .output();
    if !saved.as_ref().is_ok_and(|o| o.status.success()) {
        println!("skipping {test}: docker save busybox:local failed: {saved:?}");
        return;
    }
    for point in [
        "created",
        "PROVISIONING",
        "provisioned",
        "PREPARING",
        "forked",
        "ISOLATING",
        "FETCHING",
        "RUNNING",
    ] {
        crash_at(point, true, Root::Image(&archive));
    }
}
