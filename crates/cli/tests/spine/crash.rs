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

/// The root filesystem a crash test's container gets.
#[derive(Clone, Copy)]
enum Kind {
    Host,
    Rootfs,
    Image,
}

/// The crash test of `point` with a root of `kind`, a `#[test]` of its own
/// (one test per launch state: the whole list of states in one test came
/// near nextest's limit on a loaded machine).
fn crash_test(test: &str, point: &str, kind: Kind) {
    if !require_root(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    match kind {
        Kind::Host => {
            crash_at(point, false, Root::Host);
            crash_at(point, true, Root::Host);
        }
        Kind::Rootfs => {
            let rootfs = busybox_rootfs(dir.path());
            crash_at(point, true, Root::Dir(&rootfs));
        }
        Kind::Image => {
            let archive = dir.path().join("busybox.tar");
            let saved = std::process::Command::new("docker")
                .args(["save", "-o", archive.to_str().unwrap(), "busybox:local"])
                .output();
            if !saved.as_ref().is_ok_and(|o| o.status.success()) {
                println!("skipping {test}: docker save busybox:local failed: {saved:?}");
                return;
            }
            crash_at(point, true, Root::Image(&archive));
        }
    }
}

/// `name => point, kind;`: a test crashing at `point` with a root of `kind`.
macro_rules! crash_tests {
    ($($name:ident => $point:literal, $kind:ident;)*) => {
        $(
            #[test]
            fn $name() {
                crash_test(stringify!($name), $point, Kind::$kind);
            }
        )*
    };
}

// Without a root filesystem, foreground and detached: nothing left behind.
crash_tests! {
    privileged_crash_at_created_leaves_nothing_behind => "created", Host;
    privileged_crash_at_provisioning_leaves_nothing_behind => "PROVISIONING", Host;
    privileged_crash_at_preparing_leaves_nothing_behind => "PREPARING", Host;
    privileged_crash_at_forked_leaves_nothing_behind => "forked", Host;
    privileged_crash_at_isolating_leaves_nothing_behind => "ISOLATING", Host;
    privileged_crash_at_fetching_leaves_nothing_behind => "FETCHING", Host;
    privileged_crash_at_running_leaves_nothing_behind => "RUNNING", Host;
}

// With a root filesystem directory: nothing left mounted either.
crash_tests! {
    privileged_crash_at_created_with_a_rootfs_leaves_nothing_mounted => "created", Rootfs;
    privileged_crash_at_provisioning_with_a_rootfs_leaves_nothing_mounted => "PROVISIONING", Rootfs;
    privileged_crash_at_preparing_with_a_rootfs_leaves_nothing_mounted => "PREPARING", Rootfs;
    privileged_crash_at_forked_with_a_rootfs_leaves_nothing_mounted => "forked", Rootfs;
    privileged_crash_at_isolating_with_a_rootfs_leaves_nothing_mounted => "ISOLATING", Rootfs;
    privileged_crash_at_fetching_with_a_rootfs_leaves_nothing_mounted => "FETCHING", Rootfs;
    privileged_crash_at_running_with_a_rootfs_leaves_nothing_mounted => "RUNNING", Rootfs;
}

// With an image (a `docker save` archive of busybox:local loaded into the
// store): nothing left provisioned either.
crash_tests! {
    privileged_crash_at_created_with_an_image_leaves_nothing_provisioned => "created", Image;
    privileged_crash_at_provisioning_with_an_image_leaves_nothing_provisioned => "PROVISIONING", Image;
    privileged_crash_at_provisioned_with_an_image_leaves_nothing_provisioned => "provisioned", Image;
    privileged_crash_at_preparing_with_an_image_leaves_nothing_provisioned => "PREPARING", Image;
    privileged_crash_at_forked_with_an_image_leaves_nothing_provisioned => "forked", Image;
    privileged_crash_at_isolating_with_an_image_leaves_nothing_provisioned => "ISOLATING", Image;
    privileged_crash_at_fetching_with_an_image_leaves_nothing_provisioned => "FETCHING", Image;
    privileged_crash_at_running_with_an_image_leaves_nothing_provisioned => "RUNNING", Image;
}
