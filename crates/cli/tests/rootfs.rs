//! Containers with their own root filesystem (`phobos run --rootfs DIR`),
//! end to end through the real binary with real namespaces and mounts: a
//! busybox-static root filesystem built by each test, pivot_root, /proc,
//! /dev, devpts, a read-only /sys, masked paths, /etc files, volumes, the
//! sandbox mount, symlinks in the image that must not lead onto the host,
//! users from the image, and nothing left mounted afterwards.

mod common;

use std::path::Path;

use common::*;

/// Runs `script` with `sh -c` in a fresh busybox root filesystem; returns
/// (exit code, stdout, stderr).
fn run_in(env: &Env, rootfs: &Path, extra: &[&str], script: &str) -> (i32, String, String) {
    let root = rootfs.to_str().unwrap();
    let mut args = vec!["run", "--rootfs", root];
    args.extend_from_slice(extra);
    args.extend(["--", "sh", "-c", script]);
    let out = env.run(&args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_nothing_mounted(rootfs: &Path) {
    let gone = eventually(PATIENCE, || mounts_mentioning(rootfs).is_empty());
    assert!(gone, "mounts left behind: {:#?}", mounts_mentioning(rootfs));
}

#[test]
fn privileged_rootfs_is_the_containers_root_and_the_host_is_unreachable() {
    if !require_root("privileged_rootfs_is_the_containers_root_and_the_host_is_unreachable") {
        return;
    }
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(dir.path());
    // A file only the host has, next to the root filesystem.
    let marker = dir.path().join("host-only-marker");
    std::fs::write(&marker, "host").unwrap();
    let script = format!(
        "tr '\\0' ' ' < /proc/1/cmdline; echo; echo PID=$$; ls /; \
         echo SANDBOX=$MESOS_SANDBOX PWD=$(pwd); \
         test -e {marker} && echo HOST-VISIBLE; cd /../../..; ls; \
         echo HOSTNAME=$(hostname) FILE=$(cat /etc/hostname); \
         echo inside > $MESOS_SANDBOX/written; \
         test -s /etc/resolv.conf && echo RESOLV; grep -q localhost /etc/hosts && echo HOSTS",
        marker = marker.display()
    );
    let (code, out, err) = run_in(&env, &rootfs, &["--id", "rootfs-basic"], &script);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let mut lines = out.lines();
    let cmdline = lines.next().unwrap();
    assert!(
        cmdline.trim_end().ends_with(" init"),
        "pid 1 is not the container's init: {cmdline}"
    );
    assert_eq!(lines.next(), Some("PID=2"), "{out}");
    let listing: Vec<&str> = lines.by_ref().take(7).collect();
    assert_eq!(
        listing,
        ["bin", "dev", "etc", "mnt", "proc", "sys", "tmp"],
        "{out}"
    );
    assert_eq!(
        lines.next(),
        Some("SANDBOX=/mnt/mesos/sandbox PWD=/mnt/mesos/sandbox"),
        "{out}"
    );
    assert!(!out.contains("HOST-VISIBLE"), "{out}");
    // `cd /../../..` stays at the container's root.
    let after_cd: Vec<&str> = lines.by_ref().take(7).collect();
    assert_eq!(after_cd, listing, "{out}");
    assert!(
        out.contains("HOSTNAME=rootfs-basic FILE=rootfs-basic"),
        "{out}"
    );
    if Path::new("/etc/resolv.conf").exists() {
        assert!(out.contains("RESOLV"), "{out}");
    }
    assert!(out.contains("HOSTS"), "{out}");
    // The sandbox inside is the host sandbox, and stdout still lands there.
    let sandbox = env.sandbox("rootfs-basic");
    assert_eq!(
        std::fs::read_to_string(sandbox.join("written")).unwrap(),
        "inside\n"
    );
    let logged = std::fs::read_to_string(sandbox.join("stdout")).unwrap();
    assert!(logged.contains("PID=2"), "{logged}");
    assert_nothing_mounted(&rootfs);
}

#[test]
fn privileged_rootfs_has_dev_nodes_devpts_a_read_only_sys_and_masked_paths() {
    if !require_root("privileged_rootfs_has_dev_nodes_devpts_a_read_only_sys_and_masked_paths") {
        return;
    }
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(dir.path());
    let script = "\
        for d in null zero full random urandom tty; do test -c /dev/$d && echo DEV-$d; done; \
        echo x > /dev/null && echo NULL-OK; \
        test $(head -c 16 /dev/urandom | wc -c) = 16 && echo URANDOM-OK; \
        test -c /dev/pts/ptmx && test -L /dev/ptmx && echo PTS-OK; \
        readlink /dev/fd; \
        grep ' /dev/pts ' /proc/self/mountinfo; \
        grep -E ' /(dev/shm|dev/mqueue) ' /proc/self/mountinfo | wc -l; \
        touch /sys/probe 2>/dev/null || echo SYS-RO; \
        grep ' /sys ' /proc/self/mountinfo; \
        echo 1 > /proc/sys/vm/drop_caches 2>/dev/null || echo PROCSYS-RO; \
        ls /sys/firmware | wc -l; \
        test -e /proc/timer_list && { test -s /proc/timer_list && echo TIMER-VISIBLE || echo TIMER-MASKED; }; \
        test -e /proc/keys && { cat /proc/keys | wc -c; }; \
        true";
    let (code, out, err) = run_in(&env, &rootfs, &[], script);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    for d in ["null", "zero", "full", "random", "urandom", "tty"] {
        assert!(out.contains(&format!("DEV-{d}")), "/dev/{d}: {out}");
    }
    for want in [
        "NULL-OK",
        "URANDOM-OK",
        "PTS-OK",
        "/proc/self/fd",
        "SYS-RO",
        "PROCSYS-RO",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
    let pts = out.lines().find(|l| l.contains(" /dev/pts ")).unwrap();
    assert!(
        pts.contains("devpts") && pts.contains("ptmxmode=666") && pts.contains("gid=5"),
        "{pts}"
    );
    // A private instance: none of the host's terminals are there.
    assert!(out.lines().any(|l| l.trim() == "2"), "shm + mqueue: {out}");
    let sys = out.lines().find(|l| l.contains(" /sys ")).unwrap();
    assert!(sys.contains(" ro,"), "{sys}");
    assert!(!out.contains("TIMER-VISIBLE"), "{out}");
    // /sys/firmware is covered by an empty tmpfs; /proc/keys by /dev/null.
    let lines: Vec<&str> = out.lines().collect();
    let fw = lines
        .iter()
        .position(|l| *l == "PROCSYS-RO")
        .map(|i| lines[i + 1]);
    assert_eq!(fw, Some("0"), "{out}");
    if Path::new("/proc/keys").exists() {
        assert_eq!(lines.last().map(|l| l.trim()), Some("0"), "{out}");
    }
    assert_nothing_mounted(&rootfs);
}

#[test]
fn privileged_volumes_mount_read_only_read_write_and_from_the_sandbox() {
    if !require_root("privileged_volumes_mount_read_only_read_write_and_from_the_sandbox") {
        return;
    }
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(dir.path());
    let ro = dir.path().join("ro-src");
    let rw = dir.path().join("rw-src");
    std::fs::create_dir_all(ro.join("sub")).unwrap();
    std::fs::create_dir_all(&rw).unwrap();
    std::fs::write(ro.join("data"), "read me").unwrap();
    let ro_spec = format!("{}:/data:ro", ro.display());
    let rw_spec = format!("{}:/srv/rw:rw", rw.display());
    let rel_spec = format!("{}:inside", rw.display());
    let script = "\
        cat /data/data; echo; \
        echo no > /data/new 2>/dev/null || echo RO-REFUSED; \
        echo yes > /srv/rw/from-container && echo RW-OK; \
        echo cached > /cache/c && echo SANDBOX-VOL-OK; \
        test -f /mnt/mesos/sandbox/inside/from-container && echo RELATIVE-OK";
    let (code, out, err) = run_in(
        &env,
        &rootfs,
        &[
            "--id",
            "vols",
            "-v",
            &ro_spec,
            "-v",
            &rw_spec,
            "-v",
            "cache/dir:/cache",
            "-v",
            &rel_spec,
        ],
        script,
    );
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    for want in [
        "read me",
        "RO-REFUSED",
        "RW-OK",
        "SANDBOX-VOL-OK",
        "RELATIVE-OK",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
    assert!(!ro.join("new").exists());
    assert_eq!(
        std::fs::read_to_string(rw.join("from-container")).unwrap(),
        "yes\n"
    );
    assert_eq!(
        std::fs::read_to_string(env.sandbox("vols").join("cache/dir/c")).unwrap(),
        "cached\n"
    );
    assert_nothing_mounted(&rootfs);
    assert_nothing_mounted(&ro);
}

#[test]
fn privileged_symlinks_in_the_image_never_redirect_mounts_onto_the_host() {
    if !require_root("privileged_symlinks_in_the_image_never_redirect_mounts_onto_the_host") {
        return;
    }
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(dir.path());
    // The image points mount targets at a host directory: an absolute
    // link and a relative one climbing out of the root. Inside the root
    // filesystem the same path exists, so both resolve there.
    let host = dir.path().join("host-side");
    std::fs::create_dir_all(host.join("vol")).unwrap();
    let mirror = rootfs.join(host.strip_prefix("/").unwrap());
    std::fs::create_dir_all(mirror.join("vol")).unwrap();
    std::os::unix::fs::symlink(&host, rootfs.join("abs")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../..", rootfs.join("up")).unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("payload"), "p").unwrap();
    let v1 = format!("{}:/abs/vol/x", src.display());
    let v2 = format!("{}:/up{}/y", src.display(), host.display());
    let (code, out, err) = run_in(
        &env,
        &rootfs,
        &["-v", &v1, "-v", &v2],
        &format!("ls /abs/vol/x /up{}/y", host.display()),
    );
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert_eq!(out.matches("payload").count(), 2, "{out}");
    assert_eq!(walk(&host), ["vol"], "the host side changed");
    assert!(mirror.join("vol/x").is_dir() && mirror.join("y").is_dir());
    assert_nothing_mounted(&rootfs);

    // A file target that is a dangling link to a host path: its target is
    // created inside the root filesystem (as Docker does), never on the
    // host, and the mount lands there.
    // (The first launch made /etc/hosts as a mount point.)
    let _ = std::fs::remove_file(rootfs.join("etc/hosts"));
    std::os::unix::fs::symlink(host.join("hosts"), rootfs.join("etc/hosts")).unwrap();
    let (code, out, err) = run_in(&env, &rootfs, &[], "grep -c localhost /etc/hosts");
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(!host.join("hosts").exists());
    assert!(
        mirror.join("hosts").is_file(),
        "not created inside the root"
    );
    assert_eq!(walk(&host), ["vol"], "the host side changed");
    assert_nothing_mounted(&rootfs);
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            out.push(e.path().strip_prefix(dir).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn privileged_users_come_from_the_images_passwd_and_group() {
    if !require_root("privileged_users_come_from_the_images_passwd_and_group") {
        return;
    }
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(dir.path());
    let (code, out, err) = run_in(
        &env,
        &rootfs,
        &["--user", "imguser"],
        "id -u; id -g; id -G; echo $HOME",
    );
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["4321", "4321", "4321 4400", "/home/imguser"]
    );
    let (code, out, _) = run_in(&env, &rootfs, &["--user", "4321:4400"], "id -u; id -G");
    assert_eq!(code, 0);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["4321", "4400"]);
    // A name only the host knows is unknown here: exit 2, nothing created.
    let out = env.run(&[
        "run",
        "--rootfs",
        rootfs.to_str().unwrap(),
        "--user",
        "daemon",
        "--",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown user 'daemon' in the image's /etc/passwd"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn privileged_destroy_ends_a_rootfs_container_and_leaves_no_mount() {
    if !require_root("privileged_destroy_ends_a_rootfs_container_and_leaves_no_mount") {
        return;
    }
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(dir.path());
    let root = rootfs.to_str().unwrap();
    assert_eq!(
        env.ok(&[
            "run", "-d", "--id", "longrun", "--rootfs", root, "--", "sleep", "1000"
        ]),
        "longrun"
    );
    // The container's namespace holds its mounts while it runs…
    assert!(
        eventually(PATIENCE, || !mounts_mentioning(&rootfs).is_empty()),
        "no mount of the root filesystem while the container runs"
    );
    // …and the host's own mount table never does.
    let host_table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !host_table.contains(root),
        "leaked into the host: {host_table}"
    );
    env.ok(&["destroy", "longrun"]);
    assert_eq!(env.status_json("longrun")["state"], "TERMINATED");
    assert!(inits_of(env.runtime.path()).is_empty());
    assert_nothing_mounted(&rootfs);
}

#[test]
fn privileged_a_broken_rootfs_fails_the_launch_with_one_line() {
    if !require_root("privileged_a_broken_rootfs_fails_the_launch_with_one_line") {
        return;
    }
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(dir.path());
    // /proc must be a directory to mount proc on.
    std::fs::write(rootfs.join("proc"), "not a directory").unwrap();
    let (code, out, err) = run_in(&env, &rootfs, &["--id", "broken"], "echo ran");
    assert_eq!(code, 255, "stdout: {out}\nstderr: {err}");
    assert!(!out.contains("ran"));
    let wait = env.wait_json("broken");
    assert_eq!(wait["reason"], "REASON_CONTAINER_LAUNCH_FAILED", "{wait}");
    let message = wait["message"].as_str().unwrap();
    assert!(
        message.contains("failed to enter the root filesystem") && message.contains("/proc"),
        "{message}"
    );
    assert!(wait.get("status").is_none(), "{wait}");
    assert_nothing_mounted(&rootfs);
}

#[test]
fn privileged_bad_rootfs_and_volume_options_exit_2_and_change_nothing() {
    if !require_root("privileged_bad_rootfs_and_volume_options_exit_2_and_change_nothing") {
        return;
    }
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(dir.path());
    let root = rootfs.to_str().unwrap();
    let missing = dir.path().join("missing");
    let missing_vol = format!("{}:/x", missing.display());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--rootfs", missing.to_str().unwrap()],
            "invalid --rootfs",
        ),
        (
            vec!["--rootfs", root, "--launcher", "posix"],
            "a root filesystem needs the linux launcher",
        ),
        (
            vec!["--rootfs", root, "--isolation", "namespaces/pid"],
            "filesystem/linux",
        ),
        (
            vec!["-v", "/tmp:/x"],
            "or a root filesystem (--image REF or --rootfs DIR)",
        ),
        (
            vec!["--rootfs", root, "-v", "/tmp"],
            "invalid volume '/tmp'",
        ),
        (vec!["--rootfs", root, "-v", "/tmp:/x:rx"], "ro or rw"),
        (
            vec!["--rootfs", root, "-v", "/tmp/../etc:/x"],
            "contains '..'",
        ),
        (vec!["--rootfs", root, "-v", &missing_vol], "does not exist"),
    ];
    for (extra, want) in cases {
        let mut args = vec!["run"];
        args.extend(&extra);
        args.extend(["--", "true"]);
        let out = env.run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(want), "{extra:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{extra:?}: {err}");
    }
    let created = std::fs::read_dir(env.runtime.path().join("containers"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(created, 0, "a refused launch left a container");
    assert!(!missing.exists());
}

#[test]
fn privileged_the_classic_mount_path_makes_the_same_container() {
    if !require_root("privileged_the_classic_mount_path_makes_the_same_container") {
        return;
    }
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(dir.path());
    // A read-only volume with a mount beneath it: read-only too (the
    // classic path remounts each mount of the tree).
    let ro = dir.path().join("ro-src");
    std::fs::create_dir_all(ro.join("sub")).unwrap();
    std::fs::write(ro.join("data"), "read me").unwrap();
    let sub = ro.join("sub");
    let sub_c = std::ffi::CString::new(sub.to_str().unwrap()).unwrap();
    // SAFETY: mount(2) of a tmpfs on a directory this test made.
    let mounted = unsafe {
        libc::mount(
            c"phobos-test".as_ptr(),
            sub_c.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID,
            std::ptr::null(),
        )
    };
    assert_eq!(mounted, 0, "{}", std::io::Error::last_os_error());
    struct Unmount(std::ffi::CString);
    impl Drop for Unmount {
        fn drop(&mut self) {
            // SAFETY: unmounting the tmpfs this test mounted.
            unsafe { libc::umount2(self.0.as_ptr(), libc::MNT_DETACH) };
        }
    }
    let unmount = Unmount(sub_c);
    // The image's /etc/resolv.conf dangles (systemd's layout).
    let resolv = rootfs.join("etc/resolv.conf");
    let _ = std::fs::remove_file(&resolv);
    std::os::unix::fs::symlink("/run/systemd/resolve/stub-resolv.conf", &resolv).unwrap();
    let ro_spec = format!("{}:/data:ro", ro.display());
    let script = "\
        cat /data/data; echo; \
        echo no > /data/new 2>/dev/null || echo RO-REFUSED; \
        echo no > /data/sub/new 2>/dev/null || echo SUB-RO-REFUSED; \
        grep ' /data/sub ' /proc/self/mountinfo; \
        echo cached > /cache/c && echo SANDBOX-VOL-OK; \
        touch /sys/probe 2>/dev/null || echo SYS-RO; \
        echo 1 > /proc/sys/vm/drop_caches 2>/dev/null || echo PROCSYS-RO; \
        ls /sys/firmware | wc -l; \
        test -c /dev/null && test -c /dev/pts/ptmx && echo DEV-OK; \
        test -s /etc/resolv.conf && echo RESOLV; \
        echo SANDBOX=$MESOS_SANDBOX PWD=$(pwd)";
    let out = env
        .cmd()
        .env("PHOBOS_MOUNT_API", "legacy")
        .args([
            "run",
            "--id",
            "classic",
            "--rootfs",
            rootfs.to_str().unwrap(),
            "-v",
            &ro_spec,
            "-v",
            "cache/dir:/cache",
            "--",
            "sh",
            "-c",
            script,
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    for want in [
        "read me",
        "RO-REFUSED",
        "SUB-RO-REFUSED",
        "SANDBOX-VOL-OK",
        "SYS-RO",
        "PROCSYS-RO",
        "DEV-OK",
        "SANDBOX=/mnt/mesos/sandbox PWD=/mnt/mesos/sandbox",
    ] {
        assert!(stdout.contains(want), "{want}: {stdout}");
    }
    // The submount kept its nosuid when it was made read-only.
    let sub_line = stdout.lines().find(|l| l.contains(" /data/sub ")).unwrap();
    assert!(
        sub_line.contains(" ro,") && sub_line.contains("nosuid"),
        "{sub_line}"
    );
    if Path::new("/etc/resolv.conf").exists() {
        assert!(stdout.contains("RESOLV"), "{stdout}");
        // Created inside the image, through its own link.
        assert!(
            rootfs
                .join("run/systemd/resolve/stub-resolv.conf")
                .is_file()
        );
    }
    assert!(!ro.join("new").exists() && !sub.join("new").exists());
    assert_eq!(
        std::fs::read_to_string(env.sandbox("classic").join("cache/dir/c")).unwrap(),
        "cached\n"
    );
    assert_nothing_mounted(&rootfs);
    drop(unmount);
    assert_nothing_mounted(&ro);
}
