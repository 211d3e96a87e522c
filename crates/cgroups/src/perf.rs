//! Counting perf events for every process of one cgroup, as `perf stat -G`
//! does: perf_event_open(2) in cgroup mode (`pid` = a descriptor of the
//! perf_event cgroup's directory, `PERF_FLAG_PID_CGROUP`), one counter per
//! online CPU (cgroup counters are per CPU), all started at once, read
//! after the sample's duration with `PERF_FORMAT_TOTAL_TIME_ENABLED |
//! PERF_FORMAT_TOTAL_TIME_RUNNING` so that a counter the PMU multiplexed is
//! scaled up as perf does, and summed over the CPUs.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

const PERF_FLAG_PID_CGROUP: libc::c_ulong = 1 << 2;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
const PERF_FORMAT_TOTAL_TIME_ENABLED: u64 = 1;
const PERF_FORMAT_TOTAL_TIME_RUNNING: u64 = 2;
/// `PERF_ATTR_SIZE_VER0`: the fields below, which every kernel reads.
const ATTR_SIZE: u32 = 64;

/// `struct perf_event_attr` up to `PERF_ATTR_SIZE_VER0`.
#[repr(C)]
#[derive(Default)]
struct Attr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    /// Bit flags: all clear (enabled at once, kernel and user counted).
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
}

/// Why a sample could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum PerfError {
    #[error("open {path}: {source}")]
    Cgroup { path: String, source: io::Error },
    #[error(
        "perf_event_open of event type {kind} config {config:#x} for cgroup {path} on cpu {cpu}: {source}"
    )]
    Open {
        kind: u32,
        config: u64,
        path: String,
        cpu: u32,
        source: io::Error,
    },
    #[error("read a perf counter: {0}")]
    Read(io::Error),
    #[error("the online CPUs: {0}")]
    Cpus(String),
}

/// Counts each `(type, config)` event in the cgroup at `dir` for
/// `duration`; returns the counts in the same order.
pub fn sample(
    dir: &Path,
    events: &[(u32, u64)],
    duration: Duration,
) -> Result<Vec<u64>, PerfError> {
    let cgroup = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|source| PerfError::Cgroup {
            path: dir.display().to_string(),
            source,
        })?;
    let cpus = online_cpus()?;
    let mut counters: Vec<Vec<File>> = Vec::with_capacity(events.len());
    for &(kind, config) in events {
        let mut per_cpu = Vec::with_capacity(cpus.len());
        for &cpu in &cpus {
            let fd = open(&cgroup, kind, config, cpu).map_err(|source| PerfError::Open {
                kind,
                config,
                path: dir.display().to_string(),
                cpu,
                source,
            })?;
            per_cpu.push(File::from(fd));
        }
        counters.push(per_cpu);
    }
    std::thread::sleep(duration);
    counters
        .iter()
        .map(|per_cpu| {
            per_cpu
                .iter()
                .try_fold(0u64, |sum, f| read_scaled(f).map(|v| sum.saturating_add(v)))
        })
        .collect()
}

fn open(cgroup: &File, kind: u32, config: u64, cpu: u32) -> io::Result<OwnedFd> {
    let attr = Attr {
        kind,
        size: ATTR_SIZE,
        config,
        read_format: PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING,
        ..Attr::default()
    };
    // SAFETY: perf_event_open reads `attr` (ours, `size` bytes long, alive
    // for the call); the other arguments are plain integers.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &raw const attr,
            cgroup.as_raw_fd(),
            cpu as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_PID_CGROUP | PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// The value, enabled time and running time; the value scaled by
/// enabled/running when the counter did not run the whole time.
fn read_scaled(f: &File) -> Result<u64, PerfError> {
    let mut buf = [0u8; 24];
    let n = nix::unistd::read(f, &mut buf).map_err(|e| PerfError::Read(e.into()))?;
    if n != buf.len() {
        return Err(PerfError::Read(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{n} bytes"),
        )));
    }
    let word = |i: usize| u64::from_ne_bytes(buf[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    let (value, enabled, running) = (word(0), word(1), word(2));
    Ok(match running {
        0 => 0,
        r if r >= enabled => value,
        r => (u128::from(value) * u128::from(enabled) / u128::from(r)) as u64,
    })
}

/// The online CPUs (`/sys/devices/system/cpu/online`, e.g. `0-3,6`).
fn online_cpus() -> Result<Vec<u32>, PerfError> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .map_err(|e| PerfError::Cpus(e.to_string()))?;
    parse_cpu_list(text.trim()).ok_or_else(|| PerfError::Cpus(format!("cannot parse {text:?}")))
}

fn parse_cpu_list(text: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if b < a || b - a > 65_536 {
                    return None;
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().ok()?),
        }
    }
    (!cpus.is_empty()).then_some(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse_as_the_kernel_prints_them() {
        assert_eq!(parse_cpu_list("0"), Some(vec![0]));
        assert_eq!(parse_cpu_list("0-3,6"), Some(vec![0, 1, 2, 3, 6]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
        assert_eq!(parse_cpu_list(""), None);
    }
}
