//! Real-kernel tests of what only a cgroup v2 host with its controllers on
//! cgroup2 shows: `io.stat` of a real block device and the no-internal-process
//! rule. They need root and run for real in the pure cgroup v2 lane
//! (scripts/v2-lane.sh); elsewhere each prints `skipping <test>: <reason>`
//! when the host lacks the feature. In that lane `PHOBOS_TEST_PURE_V2` is
//! set, and a skip is a failure instead.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use phobos_cgroups::{Cgroup, Controller, Error, Hierarchies, Version, stats};

#[path = "support/v2.rs"]
mod v2;
use v2::{block_device, skip};

const MB: u64 = 1024 * 1024;
/// The most a test waits for the kernel or a workload (a loaded machine,
/// qemu TCG in the v2 lane); every wait returns once its condition holds.
const PATIENCE: Duration = Duration::from_secs(120);

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Kills and removes the test's cgroup however the test ends.
struct Guard(Cgroup);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill_all(PATIENCE);
        let _ = self.0.remove(PATIENCE);
    }
}

/// A fresh `phobos-test-<uuid>` cgroup on cgroup2 (not created yet), or
/// `None` after saying why not.
fn unified(test: &str) -> Option<(Hierarchies, Guard)> {
    if !is_root() {
        skip(test, "needs root");
        return None;
    }
    let h = Hierarchies::detect().unwrap();
    let Some(mount) = h.unified_mount() else {
        skip(test, "no cgroup2 filesystem is mounted");
        return None;
    };
    let name = format!("phobos-test-{}", uuid::Uuid::new_v4());
    let guard = Guard(Cgroup::new(mount, Path::new(&name), Version::V2));
    Some((h, guard))
}

/// `major:minor` of the whole disk holding block device `dev` (io.stat
/// counts whole disks), from sysfs.
fn whole_disk(dev: &Path) -> (u64, u64) {
    let rdev = std::fs::metadata(dev)
        .unwrap_or_else(|e| panic!("{}: {e}", dev.display()))
        .rdev();
    let sys = PathBuf::from(format!(
        "/sys/dev/block/{}:{}",
        // glibc's gnu_dev_major / gnu_dev_minor encoding of dev_t.
        ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff),
        (rdev & 0xff) | ((rdev >> 12) & !0xff)
    ));
    let disk = if sys.join("partition").exists() {
        sys.canonicalize().unwrap().parent().unwrap().to_path_buf()
    } else {
        sys
    };
    let text = std::fs::read_to_string(disk.join("dev")).unwrap();
    let (major, minor) = text.trim().split_once(':').unwrap();
    (major.parse().unwrap(), minor.parse().unwrap())
}

#[test]
fn privileged_v2_io_stat_counts_a_real_block_device() {
    let test = "privileged_v2_io_stat_counts_a_real_block_device";
    let Some((h, guard)) = unified(test) else {
        return;
    };
    if h.locate(Controller::Io).map(|l| l.0) != Some(Version::V2) {
        skip(test, "cgroup2 does not offer the io controller here");
        return;
    }
    let Some((dev, writable)) = block_device() else {
        skip(test, "no block device");
        return;
    };
    let cg = &guard.0;
    cg.create_with(&[Controller::Io]).unwrap();
    // 16 direct reads of 64 KiB (and, on a scratch disk, 16 direct writes):
    // no page cache, so every byte is a bio charged to the cgroup.
    let dev_arg = dev.display().to_string();
    let mut script =
        format!("read go; dd if={dev_arg} of=/dev/null bs=64k count=16 iflag=direct 2>&1");
    if writable {
        script += &format!(
            " && dd if=/dev/zero of={dev_arg} bs=64k count=16 oflag=direct conv=notrunc 2>&1"
        );
    }
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    cg.add_process(child.id() as i32).unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "dd on {dev_arg}: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    let (major, minor) = whole_disk(&dev);
    let io = stats::io_stat(cg).unwrap();
    let text = cg.read("io.stat").unwrap();
    let find = |list: &[stats::DeviceIo]| {
        *list
            .iter()
            .find(|d| (d.major, d.minor) == (major, minor))
            .unwrap_or_else(|| panic!("{major}:{minor} not in io.stat: {text}"))
    };
    let (bytes, ios) = (find(&io.bytes), find(&io.ios));
    assert!(bytes.read >= MB, "{text}");
    assert!(ios.read >= 16, "{text}");
    for d in [bytes, ios] {
        assert_eq!(d.total, d.read + d.write + d.discard, "{text}");
    }
    if writable {
        assert!(bytes.write >= MB, "{text}");
        assert!(ios.write >= 16, "{text}");
    }
}

#[test]
fn privileged_v2_enabling_controllers_under_a_populated_cgroup_names_the_rule() {
    let test = "privileged_v2_enabling_controllers_under_a_populated_cgroup_names_the_rule";
    let Some((h, guard)) = unified(test) else {
        return;
    };
    // A domain controller: threaded ones (cpu, cpuset, pids) may be enabled
    // in a populated cgroup, which then becomes a threaded subtree's root.
    // Phobos always asks for memory along with cpu and pids.
    let Some(c) = [Controller::Memory, Controller::Io, Controller::Hugetlb]
        .into_iter()
        .find(|c| h.unified_controllers().iter().any(|n| n == c.name()))
    else {
        skip(test, "cgroup2 offers no domain controller here");
        return;
    };
    // A service's cgroup with a process of its own, as systemd makes them.
    let service = &guard.0;
    service.create().unwrap();
    let mut member = Command::new("sleep").arg("1000").spawn().unwrap();
    service.add_process(member.id() as i32).unwrap();
    let reaper = std::thread::spawn(move || member.wait().unwrap());

    let container = service.child("phobos/c");
    let err = container.create_with(&[c]).unwrap_err();
    match &err {
        Error::InternalProcesses { path, controllers } => {
            assert_eq!(path, service.path());
            assert_eq!(controllers, &format!("+{}", c.name()));
        }
        other => panic!("expected InternalProcesses, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("no-internal-process rule"), "{message}");
    assert!(
        message.contains(&service.path().display().to_string()),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");
    // Refused before anything was created below the service.
    assert!(!service.child("phobos").exists());

    service.kill_all(PATIENCE).unwrap();
    reaper.join().unwrap();
}

#[test]
fn privileged_v2_device_bpf_program_denies_what_it_does_not_allow() {
    let test = "privileged_v2_device_bpf_program_denies_what_it_does_not_allow";
    let Some((_h, guard)) = unified(test) else {
        return;
    };
    let cg = &guard.0;
    cg.create_with(&[]).unwrap();
    let rules: Vec<_> = ["c 1:3 rwm", "c *:* m"]
        .iter()
        .map(|r| phobos_cgroups::device_bpf::DeviceRule::parse(r).unwrap())
        .collect();
    phobos_cgroups::device_bpf::restrict(cg.path(), &rules).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // A shell that moves itself into the cgroup, then tries each access.
    let script = format!(
        "echo $$ > {procs} || exit 99
         head -c 1 /dev/zero >/dev/null 2>{t}/zero.err && echo zero-read
         echo x > /dev/null && echo null-write
         mknod {t}/c c 1 5 && echo mknod-char
         mknod {t}/b b 7 0 2>/dev/null && echo mknod-block
         exit 0",
        procs = cg.path().join("cgroup.procs").display(),
        t = tmp.path().display()
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        said.split_whitespace().collect::<Vec<_>>(),
        ["null-write", "mknod-char"],
        "{out:?}"
    );
    let err = std::fs::read_to_string(tmp.path().join("zero.err")).unwrap();
    assert!(err.contains("Operation not permitted"), "{err}");
    // The host, outside the cgroup, is not restricted.
    assert!(std::fs::File::open("/dev/zero").is_ok());
}
