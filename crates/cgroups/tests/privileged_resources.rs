//! Real-kernel tests of limits, statistics and OOM detection. Need root;
//! print `skipping <test>: <reason>` only where the host lacks the feature.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use phobos_cgroups::cpu::{self, CpuSettings};
use phobos_cgroups::memory::{self, Limit, MemorySettings};
use phobos_cgroups::oom::{self, OomWatcher};
use phobos_cgroups::{Cgroup, Controller, Hierarchies, Version, stats};

const MB: u64 = 1024 * 1024;

/// The most a test waits for a workload to reach a state: generous, since
/// the machine may be loaded and CI runs these tests under qemu TCG too
/// (scripts/v2-lane.sh), 10-50 times slower than natively. Waits end as soon
/// as the condition holds.
const PATIENCE: Duration = Duration::from_secs(120);

/// Polls `done` every 10 ms until it holds or [`PATIENCE`] passes.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    done()
}

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

/// A fresh uniquely named cgroup for controller `c`, created with it
/// enabled; `None` (after printing why) when the host lacks `c`.
fn cgroup_for(test: &str, c: Controller) -> Option<Guard> {
    if !is_root() {
        println!("skipping {test}: needs root");
        return None;
    }
    let h = Hierarchies::detect().unwrap();
    let Some(cg) = h.cgroup(
        c,
        Path::new(&format!("phobos-test-{}", uuid::Uuid::new_v4())),
    ) else {
        println!("skipping {test}: {}", h.missing_reason(c).unwrap());
        return None;
    };
    let guard = Guard(cg);
    guard.0.create_with(&[c]).unwrap();
    Some(guard)
}

/// `sh -c script` started inside every cgroup of `cgs` before it runs
/// `script` (it first waits for a line on stdin).
fn spawn_in(cgs: &[&Cgroup], script: &str) -> Child {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("read go; {script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for cg in cgs {
        cg.add_process(child.id() as i32).unwrap();
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    child
}

/// Grows a shell string without bound: dash reallocates it on every
/// doubling, so memory use rises until the OOM killer steps in.
const HOG: &str = "x=0123456789abcdef; while :; do x=$x$x; done";

fn oom_is_detected(test: &str, guard: &Guard) {
    let cg = &guard.0;
    let applied = memory::apply(cg, &MemorySettings::mesos(32 * MB, None, false), true).unwrap();
    assert_eq!(applied, Limit::Bytes(32 * MB));
    assert_eq!(memory::read_hard_limit(cg).unwrap(), Limit::Bytes(32 * MB));
    let mut watcher = OomWatcher::new(cg).unwrap();
    assert!(!watcher.wait(Some(Duration::ZERO)).unwrap());

    let mut child = spawn_in(&[cg], HOG);
    let fired = watcher.wait(Some(PATIENCE)).unwrap();
    // The v1 notification comes when the group hits its limit, which can be
    // just before the OOM killer picks its victim: give the kernel time to
    // kill the hog itself before stepping in.
    eventually(|| child.try_wait().unwrap().is_some());
    let _ = child.kill();
    let status = child.wait().unwrap();
    assert!(fired, "{test}: no OOM notification within {PATIENCE:?}");
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    assert!(oom::oom_kill_count(cg).unwrap() >= 1);
    let peak = stats::memory_peak(cg).unwrap();
    assert!(peak > 16 * MB && peak <= 32 * MB, "peak {peak}");
    stats::memory_stat(cg).unwrap();
}

#[test]
fn privileged_v1_oom_is_detected() {
    let test = "privileged_v1_oom_is_detected";
    let Some(guard) = cgroup_for(test, Controller::Memory) else {
        return;
    };
    if guard.0.version() != Version::V1 {
        println!("skipping {test}: the memory controller is on cgroup2 on this host");
        return;
    }
    assert_eq!(
        guard.0.read("memory.soft_limit_in_bytes").unwrap().trim(),
        "9223372036854771712"
    );
    oom_is_detected(test, &guard);
    assert_eq!(
        guard.0.read("memory.soft_limit_in_bytes").unwrap().trim(),
        (32 * MB).to_string()
    );
}

/// A fresh cgroup2 memory cgroup; `None` (after printing why) when cgroup2
/// lacks the memory controller (a hybrid host), which the pure cgroup v2
/// lane (scripts/v2-lane.sh) refuses.
fn v2_memory_cgroup(test: &str) -> Option<Guard> {
    if !is_root() {
        println!("skipping {test}: needs root");
        return None;
    }
    let h = Hierarchies::detect().unwrap();
    let Some(mount) = h.unified_mount() else {
        println!("skipping {test}: no cgroup2 filesystem mounted");
        return None;
    };
    if !h.unified_controllers().iter().any(|c| c == "memory") {
        assert!(
            std::env::var_os("PHOBOS_TEST_PURE_V2").is_none(),
            "{test}: cgroup2 lacks the memory controller on a host said to be pure v2"
        );
        println!(
            "skipping {test}: cgroup2 at {} does not offer the memory controller \
             (it is bound to a v1 hierarchy here)",
            mount.display()
        );
        return None;
    }
    let cg = Cgroup::new(
        mount,
        Path::new(&format!("phobos-test-{}", uuid::Uuid::new_v4())),
        Version::V2,
    );
    let guard = Guard(cg);
    guard.0.create_with(&[Controller::Memory]).unwrap();
    Some(guard)
}

#[test]
fn privileged_v2_oom_is_detected() {
    let test = "privileged_v2_oom_is_detected";
    let Some(guard) = v2_memory_cgroup(test) else {
        return;
    };
    oom_is_detected(test, &guard);
    // memory.events counts the limit being hit and the OOM kill.
    let events = stats::memory_events(&guard.0).unwrap();
    assert!(events.max >= 1, "{events:?}");
    assert!(events.oom >= 1 && events.oom_kill >= 1, "{events:?}");
}

/// Every container's init keeps an OOM watch; on v2 that must not take an
/// inotify instance, of which a user (root too) gets 128 by default
/// (`fs.inotify.max_user_instances`): more watchers than that all wake up
/// on one OOM kill.
#[test]
fn privileged_v2_more_oom_watchers_than_inotify_instances_all_fire() {
    let test = "privileged_v2_more_oom_watchers_than_inotify_instances_all_fire";
    let Some(guard) = v2_memory_cgroup(test) else {
        return;
    };
    let limit: usize = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(128);
    // Past the inotify limit, within the descriptor limit of a test process.
    let count = (limit + 16).min(900);
    let cg = &guard.0;
    memory::apply(cg, &MemorySettings::mesos(32 * MB, None, false), true).unwrap();
    let mut watchers: Vec<OomWatcher> = (0..count).map(|_| OomWatcher::new(cg).unwrap()).collect();
    let mut child = spawn_in(&[cg], HOG);
    let last = watchers.last_mut().unwrap();
    assert!(
        last.wait(Some(PATIENCE)).unwrap(),
        "{test}: watcher {count} saw no OOM kill within {PATIENCE:?}"
    );
    eventually(|| child.try_wait().unwrap().is_some());
    let _ = child.kill();
    let _ = child.wait();
    // The last watcher's wake-up was consumed above; every other one must
    // have its own pending.
    for (i, w) in watchers.iter_mut().enumerate().take(count - 1) {
        assert!(
            w.wait(Some(Duration::ZERO)).unwrap(),
            "{test}: watcher {i} of {count} missed the OOM kill"
        );
    }
    assert!(
        watchers.iter().all(|w| w.seen() >= 1),
        "{test}: a watcher counted no OOM kill"
    );
}

#[test]
fn privileged_cpu_limits_and_statistics() {
    let test = "privileged_cpu_limits_and_statistics";
    let Some(guard) = cgroup_for(test, Controller::Cpu) else {
        return;
    };
    let cg = &guard.0;
    // The smallest quota (1 ms per 100 ms period) throttles any spinner in
    // every period it runs, however loaded the host is.
    cpu::apply(cg, &CpuSettings::mesos(0.5, Some(Some(0.01)), false, false)).unwrap();
    match cg.version() {
        Version::V1 => {
            assert_eq!(cg.read("cpu.shares").unwrap().trim(), "512");
            assert_eq!(cg.read("cpu.cfs_period_us").unwrap().trim(), "100000");
            assert_eq!(cg.read("cpu.cfs_quota_us").unwrap().trim(), "1000");
        }
        Version::V2 => {
            assert_eq!(cg.read("cpu.weight").unwrap().trim(), "20");
            assert_eq!(cg.read("cpu.max").unwrap().trim(), "1000 100000");
        }
    }
    // cpuacct may be its own hierarchy (it is here): an unthrottled spinner
    // there accumulates whole clock ticks.
    let acct = cgroup_for(test, Controller::Cpuacct)
        .filter(|a| a.0.version() == Version::V1 && a.0.path() != cg.path());
    let mut throttled = spawn_in(&[cg], "while :; do :; done");
    let mut free = acct
        .as_ref()
        .map(|a| spawn_in(&[&a.0], "while :; do :; done"));
    // Until both spinners have shown up in the counters.
    let counted = || {
        let throttled = stats::cpu_stat(cg).is_ok_and(|s| {
            s.nr_throttled.unwrap_or(0) > 0
                && s.throttled.unwrap_or_default() > Duration::ZERO
                && (cg.version() == Version::V1 || s.usage.unwrap_or_default() > Duration::ZERO)
        });
        let spun = acct.as_ref().is_none_or(|a| {
            let ticks = stats::clock_ticks_per_second();
            stats::cpuacct_stat(&a.0).is_ok_and(|s| s.user_secs(ticks) + s.system_secs(ticks) > 0.0)
        });
        throttled && spun
    };
    eventually(counted);
    for child in std::iter::once(&mut throttled).chain(free.as_mut()) {
        let _ = child.kill();
        child.wait().unwrap();
    }

    let stat = stats::cpu_stat(cg).unwrap();
    assert!(stat.nr_periods.unwrap() > 0, "{stat:?}");
    assert!(stat.nr_throttled.unwrap() > 0, "{stat:?}");
    assert!(stat.throttled.unwrap() > Duration::ZERO, "{stat:?}");
    match &acct {
        Some(a) => {
            let s = stats::cpuacct_stat(&a.0).unwrap();
            let ticks = stats::clock_ticks_per_second();
            assert!(s.user_secs(ticks) + s.system_secs(ticks) > 0.0, "{s:?}");
        }
        None if cg.version() == Version::V2 => {
            assert!(stat.usage.unwrap() > Duration::ZERO, "{stat:?}")
        }
        None => {}
    }
}

#[test]
fn privileged_pids_max_and_current() {
    let test = "privileged_pids_max_and_current";
    let Some(guard) = cgroup_for(test, Controller::Pids) else {
        return;
    };
    let cg = &guard.0;
    assert_eq!(memory::read_pids_max(cg).unwrap(), None);
    memory::apply_pids_max(cg, Some(5)).unwrap();
    assert_eq!(memory::read_pids_max(cg).unwrap(), Some(5));
    assert_eq!(memory::read_pids_current(cg).unwrap(), 0);
    // Six sleeps cannot all start under pids.max = 5 (sh counts too).
    let mut child = spawn_in(
        &[cg],
        "for i in 1 2 3 4 5 6; do sleep 100 & done 2>/dev/null; wait",
    );
    // Until the sixth fork has been refused (pids.events counts it; a
    // kernel without the file gets the same time to try).
    let refused = |events: &str| {
        events
            .lines()
            .any(|l| l.starts_with("max ") && l != "max 0")
    };
    eventually(|| {
        cg.read("pids.events").map_or(true, |e| refused(&e))
            && memory::read_pids_current(cg).is_ok_and(|n| n >= 5)
    });
    let current = memory::read_pids_current(cg).unwrap();
    assert!((1..=5).contains(&current), "pids.current {current}");
    let events = cg.read("pids.events").unwrap_or_default();
    let reaper = thread::spawn(move || child.wait().unwrap());
    cg.kill_all(PATIENCE).unwrap();
    reaper.join().unwrap();
    if !events.is_empty() {
        assert!(!events.contains("max 0"), "pids.events: {events}");
    }
}

#[test]
fn privileged_blkio_and_io_files_parse() {
    let test = "privileged_blkio_and_io_files_parse";
    if let Some(guard) = cgroup_for(test, Controller::Blkio) {
        let s = stats::blkio_service_bytes(&guard.0).unwrap();
        assert!(s.devices.iter().all(|d| d.total >= d.read));
        stats::blkio_serviced(&guard.0).unwrap();
    }
    if let Some(guard) = cgroup_for(test, Controller::Io) {
        stats::io_stat(&guard.0).unwrap();
    }
}
