//! The pure cgroup v2 probes shared by the cgroups crate's
//! `privileged_v2` tests and the CLI's `v2_host` tests (included by path
//! into both test binaries): how a test skips, and which block device
//! `io.stat` tests read. In the v2 lane (scripts/v2-lane.sh)
//! `PHOBOS_TEST_PURE_V2` is set and a skip is a failure instead.

use std::path::PathBuf;

/// Prints why `test` does not run here; panics on a host declared pure v2.
pub fn skip(test: &str, reason: &str) {
    assert!(
        std::env::var_os("PHOBOS_TEST_PURE_V2").is_none(),
        "{test}: {reason}, yet PHOBOS_TEST_PURE_V2 says this host has it"
    );
    println!("skipping {test}: {reason}");
}

/// The block device to read, and whether a test may write to it: the
/// scratch disk the lane attaches (`PHOBOS_TEST_SCRATCH_DISK`, writable),
/// else the first disk in /sys/block that is not a loop, ram or zram
/// device (read only).
pub fn block_device() -> Option<(PathBuf, bool)> {
    if let Some(disk) = std::env::var_os("PHOBOS_TEST_SCRATCH_DISK") {
        return Some((PathBuf::from(disk), true));
    }
    let mut names: Vec<String> = std::fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !["loop", "ram", "zram"].iter().any(|p| n.starts_with(p)))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| PathBuf::from("/dev").join(n))
        .find(|p| p.exists())
        .map(|p| (p, false))
}
