//! Hardening seen from inside real containers (issue 11): capabilities,
//! no_new_privs, seccomp and rlimits, read from /proc/self/status and
//! probed with the system calls they deny; and bad input refused whole.

mod common;

use std::process::Output;

use common::{Env, busybox_rootfs, require_root};

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The value of a `/proc/self/status` field in the output of
/// `grep FIELD: /proc/self/status`.
fn field<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {out}"))
        .trim()
}

fn mask(hex: &str) -> u64 {
    u64::from_str_radix(hex, 16).unwrap()
}

/// Docker's 14 default capabilities.
const DEFAULT_CAPS: u64 = (1 << 0) // CHOWN
    | (1 << 1) // DAC_OVERRIDE
    | (1 << 3) // FOWNER
    | (1 << 4) // FSETID
    | (1 << 5) // KILL
    | (1 << 6) // SETGID
    | (1 << 7) // SETUID
    | (1 << 8) // SETPCAP
    | (1 << 10) // NET_BIND_SERVICE
    | (1 << 13) // NET_RAW
    | (1 << 18) // SYS_CHROOT
    | (1 << 27) // MKNOD
    | (1 << 29) // AUDIT_WRITE
    | (1 << 31); // SETFCAP

/// A shell line that calls keyctl(KEYCTL_GET_KEYRING_ID, 0) through perl
/// and prints errno's text (EINVAL when allowed, EPERM when filtered).
fn keyctl_probe() -> String {
    format!(
        "perl -e 'syscall({}, 0, 0, 0, 0, 0); print \"keyctl: $!\\n\"'",
        libc::SYS_keyctl
    )
}

const STATUS: &str = "grep -E '^(CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status";

#[test]
fn privileged_default_hardening_seen_from_inside() {
    if !require_root("privileged_default_hardening_seen_from_inside") {
        return;
    }
    let env = Env::new();
    let script = format!(
        "{STATUS}; {}; unshare -U true && echo unshare-allowed || echo unshare-denied; \
         touch f && chown 1:1 f && echo chown-ok",
        keyctl_probe()
    );
    let out = env.run(&["run", "--", "sh", "-c", &script]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert_eq!(mask(field(&all, "CapEff")), DEFAULT_CAPS, "{all}");
    assert_eq!(mask(field(&all, "CapBnd")), DEFAULT_CAPS, "{all}");
    assert_eq!(field(&all, "NoNewPrivs"), "0");
    assert_eq!(field(&all, "Seccomp"), "2", "filter mode");
    assert!(all.contains("keyctl: Operation not permitted"), "{all}");
    assert!(all.contains("unshare-denied"), "{all}");
    assert!(
        all.contains("chown-ok"),
        "root keeps CAP_CHOWN by default: {all}"
    );

    // Without CAP_CHOWN, chown to another owner fails.
    let out = env.run(&[
        "run",
        "--cap-drop",
        "CAP_CHOWN",
        "--",
        "sh",
        "-c",
        &format!("{STATUS}; touch f; chown 1:1 f || echo chown-denied"),
    ]);
    let all = text(&out);
    assert_eq!(mask(field(&all, "CapEff")), DEFAULT_CAPS & !1, "{all}");
    assert!(all.contains("chown-denied"), "{all}");
}

#[test]
fn privileged_cap_add_no_new_privileges_and_ulimits() {
    if !require_root("privileged_cap_add_no_new_privileges_and_ulimits") {
        return;
    }
    let env = Env::new();
    let out = env.run(&[
        "run",
        "--cap-add",
        "net_admin",
        "--no-new-privileges",
        "--ulimit",
        "nofile=123:456",
        "--ulimit",
        "core=unlimited",
        "--",
        "sh",
        "-c",
        &format!("{STATUS}; echo soft=$(ulimit -n) hard=$(ulimit -Hn) core=$(ulimit -c)"),
    ]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert_eq!(mask(field(&all, "CapEff")), DEFAULT_CAPS | 1 << 12, "{all}");
    assert_eq!(field(&all, "NoNewPrivs"), "1");
    assert_eq!(field(&all, "Seccomp"), "2");
    assert!(all.contains("soft=123 hard=456 core=unlimited"), "{all}");
}

#[test]
fn privileged_seccomp_unconfined_and_own_profiles() {
    if !require_root("privileged_seccomp_unconfined_and_own_profiles") {
        return;
    }
    let env = Env::new();
    // The positive control: unconfined, the same probes pass.
    let script = format!(
        "{STATUS}; {}; unshare -U true && echo unshare-allowed",
        keyctl_probe()
    );
    let out = env.run(&[
        "run",
        "--security-opt",
        "seccomp=unconfined",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert_eq!(field(&all, "Seccomp"), "0");
    assert!(all.contains("keyctl: Invalid argument"), "{all}");
    assert!(all.contains("unshare-allowed"), "{all}");

    // A Docker-format profile: everything allowed but mkdir/mkdirat,
    // which fail with EACCES (errnoRet).
    let profile = env.work.path().join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": []},
                        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": []}],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                          "errnoRet": 13, "args": []}]}"#,
    )
    .unwrap();
    let out = env.run(&[
        "run",
        "--security-opt",
        &format!("seccomp={}", profile.display()),
        "--",
        "sh",
        "-c",
        "mkdir d 2>&1; echo still-running; unshare -U true && echo unshare-allowed",
    ]);
    let all = text(&out);
    assert!(all.contains("Permission denied"), "{all}");
    assert!(all.contains("still-running"), "{all}");
    assert!(
        all.contains("unshare-allowed"),
        "only the profile's rules: {all}"
    );
}

#[test]
fn privileged_non_root_user_keeps_only_added_capabilities() {
    if !require_root("privileged_non_root_user_keeps_only_added_capabilities") {
        return;
    }
    let env = Env::new();
    let out = env.run(&["run", "-u", "nobody", "--", "sh", "-c", STATUS]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert_eq!(mask(field(&all, "CapEff")), 0, "{all}");
    assert_eq!(mask(field(&all, "CapBnd")), DEFAULT_CAPS, "{all}");
    let out = env.run(&[
        "run",
        "-u",
        "nobody",
        "--cap-add",
        "NET_BIND_SERVICE",
        "--",
        "sh",
        "-c",
        STATUS,
    ]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert_eq!(mask(field(&all, "CapEff")), 1 << 10, "{all}");
    assert_eq!(mask(field(&all, "CapAmb")), 1 << 10, "{all}");
}

#[test]
fn privileged_hardening_applies_inside_a_root_filesystem() {
    if !require_root("privileged_hardening_applies_inside_a_root_filesystem") {
        return;
    }
    let env = Env::new();
    let root = busybox_rootfs(env.work.path());
    let rootfs = root.to_str().unwrap();
    let out = env.run(&[
        "run",
        "--rootfs",
        rootfs,
        "--cap-drop",
        "chown",
        "--ulimit",
        "nofile=77",
        "--",
        "sh",
        "-c",
        &format!(
            "{STATUS}; touch /tmp/f; chown 1:1 /tmp/f || echo chown-denied; \
             unshare -U true || echo unshare-denied; echo nofile=$(ulimit -n)"
        ),
    ]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert_eq!(mask(field(&all, "CapEff")), DEFAULT_CAPS & !1, "{all}");
    assert_eq!(field(&all, "Seccomp"), "2");
    assert!(all.contains("chown-denied"), "{all}");
    assert!(all.contains("unshare-denied"), "{all}");
    assert!(all.contains("nofile=77"), "{all}");
}

/// The `/dev/shm` line of the container's mountinfo in `out`.
fn shm_line(out: &str) -> &str {
    out.lines()
        .find(|l| l.split(' ').nth(4) == Some("/dev/shm"))
        .unwrap_or_else(|| panic!("no /dev/shm mount in {out}"))
}

#[test]
fn privileged_shm_size_sizes_the_private_dev_shm() {
    if !require_root("privileged_shm_size_sizes_the_private_dev_shm") {
        return;
    }
    let env = Env::new();
    // The last /dev/shm mount is the container's own (it covers the host's).
    let last_shm = "grep ' /dev/shm ' /proc/self/mountinfo | tail -n 1";
    let out = env.ok(&["run", "--shm-size", "8m", "--", "sh", "-c", last_shm]);
    assert!(shm_line(&out).contains("size=8192k"), "{out}");
    // It is a tmpfs that holds up to that size and not more.
    let out = env.run(&[
        "run",
        "--shm-size",
        "1m",
        "--",
        "sh",
        "-c",
        "head -c 2000000 /dev/zero > /dev/shm/big; echo written=$(stat -c %s /dev/shm/big)",
    ]);
    let all = text(&out);
    assert!(all.contains("written=1048576"), "{all}");
    let root = busybox_rootfs(env.work.path());
    let rootfs = root.to_str().unwrap();
    let show = "grep ' /dev/shm ' /proc/self/mountinfo";
    let out = env.ok(&[
        "run",
        "--rootfs",
        rootfs,
        "--shm-size",
        "16m",
        "--",
        "sh",
        "-c",
        show,
    ]);
    assert!(shm_line(&out).contains("size=16384k"), "{out}");
    // Without the flag a root filesystem keeps Docker's 64 MiB.
    let out = env.ok(&["run", "--rootfs", rootfs, "--", "sh", "-c", show]);
    assert!(shm_line(&out).contains("size=65536k"), "{out}");
}

#[test]
fn privileged_default_container_shm_size_sizes_a_dev_shm_nobody_sized() {
    if !require_root("privileged_default_container_shm_size_sizes_a_dev_shm_nobody_sized") {
        return;
    }
    let env = Env::new();
    let config = env.work.path().join("phobos.toml");
    std::fs::write(&config, "default_container_shm_size = \"4MB\"\n").unwrap();
    let config = config.to_str().unwrap();
    let last_shm = "grep ' /dev/shm ' /proc/self/mountinfo | tail -n 1";
    let run = |flags: &[&str]| {
        let mut args = vec!["--config", config, "run"];
        args.extend_from_slice(flags);
        args.extend(["--", "sh", "-c", last_shm]);
        env.ok(&args)
    };
    // No size asked: the configured default.
    let out = run(&[]);
    assert!(shm_line(&out).contains("size=4096k"), "{out}");
    // An explicit size wins over it.
    let out = run(&["--shm-size", "8m"]);
    assert!(shm_line(&out).contains("size=8192k"), "{out}");
    // A root filesystem's /dev/shm takes it too, instead of 64 MiB.
    let root = busybox_rootfs(env.work.path());
    let out = run(&["--rootfs", root.to_str().unwrap()]);
    assert!(shm_line(&out).contains("size=4096k"), "{out}");
    // Without an IPC namespace of its own a container keeps the host's
    // /dev/shm: the default is not an error there.
    let out = run(&["--isolation", "posix/cpu"]);
    assert!(!out.contains("size=4096k"), "{out}");

    let bad = env.work.path().join("bad.toml");
    std::fs::write(&bad, "default_container_shm_size = \"100B\"\n").unwrap();
    let out = env.run(&["--config", bad.to_str().unwrap(), "run", "--", "true"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("invalid value \"100B\" for default_container_shm_size"),
        "{stderr}"
    );
}

#[test]
fn bad_hardening_input_is_one_line_exit_2_and_changes_nothing() {
    let env = Env::new();
    let malformed = env.work.path().join("bad.json");
    std::fs::write(&malformed, r#"{"defaultAction": "SCMP_ACT_EXPLODE"}"#).unwrap();
    let malformed_opt = format!("seccomp={}", malformed.display());
    let cases: &[(&[&str], &str)] = &[
        (&["--cap-add", "FLY"], "unknown capability \"FLY\""),
        (
            &["--cap-drop", "CAP_NOPE"],
            "unknown capability \"CAP_NOPE\"",
        ),
        (&["--ulimit", "files=1"], "unknown rlimit type \"files\""),
        (
            &["--ulimit", "nofile=9:3"],
            "soft limit is above the hard limit",
        ),
        (
            &["--security-opt", "seccomp=/nonexistent/p.json"],
            "cannot read seccomp profile /nonexistent/p.json",
        ),
        (
            &["--security-opt", &malformed_opt],
            "unknown action \"SCMP_ACT_EXPLODE\"",
        ),
        (
            &["--security-opt", "apparmor=x"],
            "invalid --security-opt \"apparmor=x\"",
        ),
        (
            &["--isolation", "posix/cpu", "--shm-size", "8m"],
            "a /dev/shm size (8388608 bytes) needs an IPC namespace of the container's own",
        ),
        (
            &["--shm-size", "100"],
            "a /dev/shm size must be at least one page (4096 bytes), found 100",
        ),
    ];
    let before: Vec<_> = std::fs::read_dir(env.work.path()).unwrap().collect();
    for (flags, expected) in cases {
        let mut args = vec!["run", "--id", "never"];
        args.extend_from_slice(flags);
        args.extend(["--", "true"]);
        let out = env.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    assert!(!env.runtime.path().join("containers/never").exists());
    let after: Vec<_> = std::fs::read_dir(env.work.path()).unwrap().collect();
    assert_eq!(before.len(), after.len(), "nothing created in the work dir");
}

#[test]
fn privileged_devices_are_denied_but_the_default_list() {
    if !require_root("privileged_devices_are_denied_but_the_default_list") {
        return;
    }
    // The v1 controller, or cgroup2 (a device eBPF program).
    let v1 = std::path::Path::new("/sys/fs/cgroup/devices/devices.allow").exists();
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if !v1 && !v2 {
        println!("skipping: neither a cgroup v1 devices controller nor cgroup2 at /sys/fs/cgroup");
        return;
    }
    let Some(block) = openable_block_device() else {
        println!("skipping: no host block device can be opened here");
        return;
    };
    let block = block.as_str();
    let env = Env::new();
    let probe = format!(
        "head -c1 {block} >/dev/null && echo block-open || echo block-denied; \
         echo x >/dev/null && head -c1 /dev/zero >/dev/null && echo null-zero-ok"
    );
    let out = env.run(&["run", "--id", "dev1", "--", "sh", "-c", &probe]);
    let all = text(&out);
    assert!(all.contains("block-denied"), "{all}");
    assert!(all.contains("null-zero-ok"), "{all}");
    let out = env.run(&[
        "run",
        "--device",
        &format!("{block}:r"),
        "--",
        "sh",
        "-c",
        &probe,
    ]);
    let all = text(&out);
    assert!(all.contains("block-open"), "--device allows it: {all}");
    // The devices cgroup (v1) or the cgroup holding the program (v2)
    // went with the container.
    let cg = std::path::Path::new(if v1 {
        "/sys/fs/cgroup/devices"
    } else {
        "/sys/fs/cgroup"
    })
    .join(&env.cgroups_root)
    .join("dev1");
    assert!(!cg.exists(), "{} left behind", cg.display());
}

/// A host block device root can open (read-only; nothing is written).
fn openable_block_device() -> Option<String> {
    [
        "/dev/loop0",
        "/dev/vda",
        "/dev/sda",
        "/dev/nvme0n1",
        "/dev/vdb",
    ]
    .into_iter()
    .find(|d| std::fs::File::open(d).is_ok())
    .map(str::to_owned)
}

#[test]
fn privileged_device_nodes_are_made_in_a_root_filesystem_and_stay_inside() {
    if !require_root("privileged_device_nodes_are_made_in_a_root_filesystem_and_stay_inside") {
        return;
    }
    let Some(block) = openable_block_device() else {
        println!("skipping: no host block device can be opened here");
        return;
    };
    let env = Env::new();
    let root = busybox_rootfs(env.work.path());
    // A symlink in the image pointing at a host directory: a node made
    // through it must land inside the root filesystem, never on the host.
    let host_dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(host_dir.path(), root.join("lnk")).unwrap();
    // (Resolved inside the root, the symlink names this directory.)
    std::fs::create_dir_all(root.join(host_dir.path().strip_prefix("/").unwrap())).unwrap();
    let out = env.run(&[
        "run",
        "--rootfs",
        root.to_str().unwrap(),
        "--device",
        &format!("{block}:/dev/xblk:r"),
        "--device",
        "/dev/full:/lnk/full",
        "--",
        "sh",
        "-c",
        // `<>` opens the block node read-write without writing anything
        // (and without O_TRUNC): the cgroup must refuse it, as only r was
        // allowed.
        "ls -ln /dev/xblk; head -c1 /dev/xblk >/dev/null && echo xblk-read; \
         head -c1 /lnk/full >/dev/null && echo full-read; \
         (exec 3<>/dev/xblk) && echo xblk-rw-open || echo xblk-rw-denied",
    ]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.trim_start().starts_with('b'), "a block node: {all}");
    assert!(all.contains("xblk-read"), "{all}");
    assert!(all.contains("full-read"), "{all}");
    assert!(
        all.contains("xblk-rw-denied") && all.contains("Operation not permitted"),
        "only r was allowed: {all}"
    );
    assert_eq!(
        std::fs::read_dir(host_dir.path()).unwrap().count(),
        0,
        "nothing made on the host through the image's symlink"
    );
    // A container path with .. is refused before anything exists.
    let out = env.run(&[
        "run",
        "--id",
        "never",
        "--rootfs",
        root.to_str().unwrap(),
        "--device",
        "/dev/null:/dev/../../etc/x",
        "--",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("/dev/../../etc/x"), "{}", text(&out));
    assert!(!env.runtime.path().join("containers/never").exists());
}
