//! Parsers for cgroup statistics files, and readers that apply them to a
//! [`Cgroup`].
//!
//! File formats are those of Documentation/admin-guide/cgroup-v1/
//! (`cpuacct.rst`, `memory.rst`, `blkio-controller.rst`) and
//! Documentation/admin-guide/cgroup-v2.rst ("Interface Files": flat keyed
//! `key value` lines, nested keyed `8:0 rbytes=1 wbytes=2` lines).
//!
//! Parsers take text and never panic: malformed input is a [`ParseError`]
//! (the readers turn it into [`Error::Parse`] with the file's path). Keys the
//! kernel may add in future are ignored; keys we rely on and that every
//! kernel writes are required. The structs are our own; the caller maps them
//! onto Mesos `ResourceStatistics` (mesos-containerizer.md §8).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::cgroup::Cgroup;
use crate::error::Error;
use crate::files::Reader;
use crate::hierarchy::Version;

/// Why a statistics file could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line, 0 when the problem is not one line (a missing key).
    pub line: usize,
    /// What was wrong.
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.reason)
        } else {
            write!(f, "line {}: {}", self.line, self.reason)
        }
    }
}

impl std::error::Error for ParseError {}

fn err(line: usize, reason: impl Into<String>) -> ParseError {
    ParseError {
        line,
        reason: reason.into(),
    }
}

/// A flat keyed file (`key value` per line, values unsigned integers), as a
/// map. Used by `cpuacct.stat`, `cpu.stat`, `memory.stat`, `memory.events`,
/// `memory.oom_control`, `pids.events`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlatKeyed(pub BTreeMap<String, u64>);

impl FlatKeyed {
    /// Parses `text`; every non-empty line must be `key <u64>`.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let pairs = Pairs::parse(text)?;
        Ok(FlatKeyed(
            pairs
                .0
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        ))
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<u64> {
        self.0.get(key).copied()
    }

    /// The value of `key`, or a [`ParseError`] naming it.
    pub fn require(&self, key: &str) -> Result<u64, ParseError> {
        self.get(key)
            .ok_or_else(|| err(0, format!("missing key {key:?}")))
    }

    /// The value of `key`, 0 if absent.
    pub fn or_zero(&self, key: &str) -> u64 {
        self.get(key).unwrap_or(0)
    }
}

/// A flat keyed file's pairs in file order, borrowing the keys from the
/// text: the statistics parsers below read a few keys of each file, and
/// `stats` over thousands of containers should not copy every key of
/// every `memory.stat` into a map to do it (one allocation per file
/// instead of one per line). A key given twice has its last value, as
/// in [`FlatKeyed`].
struct Pairs<'a>(Vec<(&'a str, u64)>);

impl<'a> Pairs<'a> {
    /// Parses `text`; every non-empty line must be `key <u64>`.
    fn parse(text: &'a str) -> Result<Self, ParseError> {
        let mut pairs = Vec::with_capacity(text.len() / 16 + 1);
        for (i, line) in text.lines().enumerate() {
            let mut words = line.split_whitespace();
            let Some(key) = words.next() else { continue };
            let (Some(value), None) = (words.next(), words.next()) else {
                return Err(err(i + 1, format!("expected \"key value\", got {line:?}")));
            };
            let value = value
                .parse::<u64>()
                .map_err(|_| err(i + 1, format!("{value:?} is not an unsigned integer")))?;
            pairs.push((key, value));
        }
        Ok(Pairs(pairs))
    }

    /// The value of `key`, if present (the last one given).
    fn get(&self, key: &str) -> Option<u64> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }

    /// The value of `key`, or a [`ParseError`] naming it.
    fn require(&self, key: &str) -> Result<u64, ParseError> {
        self.get(key)
            .ok_or_else(|| err(0, format!("missing key {key:?}")))
    }

    /// The value of `key`, 0 if absent.
    fn or_zero(&self, key: &str) -> u64 {
        self.get(key).unwrap_or(0)
    }
}

/// The kernel's clock tick rate (`sysconf(_SC_CLK_TCK)`), the unit of
/// `cpuacct.stat`. Falls back to 100, the value on every Linux ABI, if
/// sysconf fails.
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value; _SC_CLK_TCK is a
    // valid name on Linux.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|t| *t > 0).unwrap_or(100)
}

/// v1 `cpuacct.stat`: CPU time in clock ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuacctStat {
    /// Ticks in user mode.
    pub user_ticks: u64,
    /// Ticks in kernel mode.
    pub system_ticks: u64,
}

impl CpuacctStat {
    /// Parses `user N\nsystem M\n`.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let map = Pairs::parse(text)?;
        Ok(CpuacctStat {
            user_ticks: map.require("user")?,
            system_ticks: map.require("system")?,
        })
    }

    /// User time in seconds, for `ticks_per_second` (see
    /// [`clock_ticks_per_second`]); Mesos's `cpus_user_time_secs`.
    pub fn user_secs(&self, ticks_per_second: u64) -> f64 {
        self.user_ticks as f64 / ticks_per_second.max(1) as f64
    }

    /// System time in seconds; Mesos's `cpus_system_time_secs`.
    pub fn system_secs(&self, ticks_per_second: u64) -> f64 {
        self.system_ticks as f64 / ticks_per_second.max(1) as f64
    }
}

/// `cpu.stat`, v1 or v2, in common units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuStat {
    /// v2 `usage_usec` (v1: `None`; use `cpuacct.usage`).
    pub usage: Option<Duration>,
    /// v2 `user_usec`.
    pub user: Option<Duration>,
    /// v2 `system_usec`.
    pub system: Option<Duration>,
    /// CFS enforcement periods elapsed (`nr_periods`); absent on v2 without
    /// the cpu controller.
    pub nr_periods: Option<u64>,
    /// Periods in which the group was throttled (`nr_throttled`).
    pub nr_throttled: Option<u64>,
    /// Total time throttled (v1 `throttled_time` ns, v2 `throttled_usec`).
    pub throttled: Option<Duration>,
}

impl CpuStat {
    /// Parses v1 `cpu.stat` (`nr_periods`, `nr_throttled`, `throttled_time`
    /// in nanoseconds; all required).
    pub fn parse_v1(text: &str) -> Result<Self, ParseError> {
        let map = Pairs::parse(text)?;
        Ok(CpuStat {
            nr_periods: Some(map.require("nr_periods")?),
            nr_throttled: Some(map.require("nr_throttled")?),
            throttled: Some(Duration::from_nanos(map.require("throttled_time")?)),
            ..CpuStat::default()
        })
    }

    /// Parses v2 `cpu.stat` (`usage_usec`, `user_usec`, `system_usec`
    /// required; throttling keys present only with the cpu controller).
    pub fn parse_v2(text: &str) -> Result<Self, ParseError> {
        let map = Pairs::parse(text)?;
        Ok(CpuStat {
            usage: Some(Duration::from_micros(map.require("usage_usec")?)),
            user: Some(Duration::from_micros(map.require("user_usec")?)),
            system: Some(Duration::from_micros(map.require("system_usec")?)),
            nr_periods: map.get("nr_periods"),
            nr_throttled: map.get("nr_throttled"),
            throttled: map.get("throttled_usec").map(Duration::from_micros),
        })
    }
}

/// Anonymous memory from a parsed `memory.stat`: v1 `total_rss` (the
/// hierarchical count), or the cgroup's own `rss` from a kernel that writes
/// no totals; v2 `anon`.
fn anon_bytes(m: &Pairs<'_>, version: Version) -> Result<u64, ParseError> {
    match version {
        Version::V1 => m
            .get("total_rss")
            .or_else(|| m.get("rss"))
            .ok_or_else(|| err(0, "missing key \"total_rss\" (and \"rss\")")),
        Version::V2 => m.require("anon"),
    }
}

/// Memory statistics from `memory.stat`, hierarchical (v1 `total_*` keys;
/// v2 is hierarchical already). Fields a version lacks are `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStat {
    /// Anonymous memory: v1 `total_rss`, v2 `anon`. Mesos `mem_rss_bytes`
    /// and `mem_anon_bytes`.
    pub anon: u64,
    /// Page cache: v1 `total_cache`, v2 `file`. Mesos `mem_cache_bytes` and
    /// `mem_file_bytes`.
    pub file: u64,
    /// Mapped page cache: v1 `total_mapped_file`, v2 `file_mapped`. Mesos
    /// `mem_mapped_file_bytes`.
    pub mapped_file: u64,
    /// Swap used: v1 `total_swap` (only with swap accounting). v2 keeps swap
    /// in `memory.swap.current`, so `None` there.
    pub swap: Option<u64>,
    /// Unevictable: v1 `total_unevictable`, v2 `unevictable`. Mesos
    /// `mem_unevictable_bytes`.
    pub unevictable: u64,
    /// Anonymous huge pages: v1 `total_rss_huge`, v2 `anon_thp`.
    pub anon_thp: u64,
    /// Shared memory: v1 `total_shmem`, v2 `shmem`.
    pub shmem: Option<u64>,
    /// v2 `kernel` (kernel memory in all), when present.
    pub kernel: Option<u64>,
    /// v2 `sock` (network buffers).
    pub sock: Option<u64>,
    /// LRU sizes (`total_active_anon` / `active_anon`, etc.).
    pub active_anon: u64,
    /// `total_inactive_anon` / `inactive_anon`.
    pub inactive_anon: u64,
    /// `total_active_file` / `active_file`.
    pub active_file: u64,
    /// `total_inactive_file` / `inactive_file`.
    pub inactive_file: u64,
    /// Page faults (`total_pgfault` / `pgfault`).
    pub pgfault: u64,
    /// Major page faults (`total_pgmajfault` / `pgmajfault`).
    pub pgmajfault: u64,
}

impl MemoryStat {
    /// Parses v1 `memory.stat`; the `total_*` (hierarchical) keys are used,
    /// `total_cache` and `total_rss` (or `rss`, see [`memory_anon`]) are
    /// required.
    pub fn parse_v1(text: &str) -> Result<Self, ParseError> {
        let m = Pairs::parse(text)?;
        Ok(MemoryStat {
            anon: anon_bytes(&m, Version::V1)?,
            file: m.require("total_cache")?,
            mapped_file: m.or_zero("total_mapped_file"),
            swap: m.get("total_swap"),
            unevictable: m.or_zero("total_unevictable"),
            anon_thp: m.or_zero("total_rss_huge"),
            shmem: m.get("total_shmem"),
            kernel: None,
            sock: None,
            active_anon: m.or_zero("total_active_anon"),
            inactive_anon: m.or_zero("total_inactive_anon"),
            active_file: m.or_zero("total_active_file"),
            inactive_file: m.or_zero("total_inactive_file"),
            pgfault: m.or_zero("total_pgfault"),
            pgmajfault: m.or_zero("total_pgmajfault"),
        })
    }

    /// Parses v2 `memory.stat`; `anon` and `file` are required.
    pub fn parse_v2(text: &str) -> Result<Self, ParseError> {
        let m = Pairs::parse(text)?;
        Ok(MemoryStat {
            anon: anon_bytes(&m, Version::V2)?,
            file: m.require("file")?,
            mapped_file: m.or_zero("file_mapped"),
            swap: None,
            unevictable: m.or_zero("unevictable"),
            anon_thp: m.or_zero("anon_thp"),
            shmem: m.get("shmem"),
            kernel: m.get("kernel"),
            sock: m.get("sock"),
            active_anon: m.or_zero("active_anon"),
            inactive_anon: m.or_zero("inactive_anon"),
            active_file: m.or_zero("active_file"),
            inactive_file: m.or_zero("inactive_file"),
            pgfault: m.or_zero("pgfault"),
            pgmajfault: m.or_zero("pgmajfault"),
        })
    }
}

/// v2 `memory.events` (or `memory.events.local`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryEvents {
    /// Times reclaimed below `memory.low` despite protection.
    pub low: u64,
    /// Times throttled for going over `memory.high`.
    pub high: u64,
    /// Times about to go over `memory.max`.
    pub max: u64,
    /// Times the OOM killer was about to run (allocation failed).
    pub oom: u64,
    /// Processes killed by the OOM killer in this subtree.
    pub oom_kill: u64,
    /// Group OOM kills (Linux ≥ 5.19).
    pub oom_group_kill: Option<u64>,
}

impl MemoryEvents {
    /// Parses `memory.events`; `oom` and `oom_kill` are required.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let m = Pairs::parse(text)?;
        Ok(MemoryEvents {
            low: m.or_zero("low"),
            high: m.or_zero("high"),
            max: m.or_zero("max"),
            oom: m.require("oom")?,
            oom_kill: m.require("oom_kill")?,
            oom_group_kill: m.get("oom_group_kill"),
        })
    }
}

/// One device's counters from a v1 blkio file or v2 `io.stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceIo {
    /// Device major number.
    pub major: u64,
    /// Device minor number.
    pub minor: u64,
    /// Bytes (or operations) read.
    pub read: u64,
    /// Bytes (or operations) written.
    pub write: u64,
    /// v1 `Sync`.
    pub sync: u64,
    /// v1 `Async`.
    pub async_: u64,
    /// Discards (v1 `Discard`, v2 `dbytes`/`dios`).
    pub discard: u64,
    /// v1 `Total`; v2 read + write + discard.
    pub total: u64,
}

/// A v1 blkio file such as `blkio.throttle.io_service_bytes` or
/// `blkio.throttle.io_serviced`: `MAJ:MIN Op value` lines and a final
/// `Total value`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlkioStat {
    /// Per device, in file order.
    pub devices: Vec<DeviceIo>,
    /// The file's `Total` line, if any.
    pub total: Option<u64>,
}

fn parse_dev(word: &str, line: usize) -> Result<(u64, u64), ParseError> {
    let bad = || err(line, format!("{word:?} is not a MAJ:MIN device"));
    let (major, minor) = word.split_once(':').ok_or_else(bad)?;
    Ok((
        major.parse().map_err(|_| bad())?,
        minor.parse().map_err(|_| bad())?,
    ))
}

impl BlkioStat {
    /// Parses a v1 blkio statistics file.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut out = BlkioStat::default();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let words: Vec<&str> = line.split_whitespace().collect();
            let number = |w: &str| {
                w.parse::<u64>()
                    .map_err(|_| err(n, format!("{w:?} is not an unsigned integer")))
            };
            match words.as_slice() {
                [] => {}
                ["Total", value] => out.total = Some(number(value)?),
                [dev, op, value] => {
                    let (major, minor) = parse_dev(dev, n)?;
                    let value = number(value)?;
                    let idx = match out
                        .devices
                        .iter()
                        .position(|d| d.major == major && d.minor == minor)
                    {
                        Some(idx) => idx,
                        None => {
                            out.devices.push(DeviceIo {
                                major,
                                minor,
                                ..DeviceIo::default()
                            });
                            out.devices.len() - 1
                        }
                    };
                    let d = &mut out.devices[idx];
                    match *op {
                        "Read" => d.read = value,
                        "Write" => d.write = value,
                        "Sync" => d.sync = value,
                        "Async" => d.async_ = value,
                        "Discard" => d.discard = value,
                        "Total" => d.total = value,
                        other => return Err(err(n, format!("unknown operation {other:?}"))),
                    }
                }
                _ => return Err(err(n, format!("unexpected line {line:?}"))),
            }
        }
        Ok(out)
    }
}

/// v2 `io.stat`: `MAJ:MIN rbytes=… wbytes=… rios=… wios=… dbytes=… dios=…`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IoStat {
    /// Bytes per device (`read`=`rbytes`, `write`=`wbytes`,
    /// `discard`=`dbytes`).
    pub bytes: Vec<DeviceIo>,
    /// Operations per device (`rios`, `wios`, `dios`).
    pub ios: Vec<DeviceIo>,
}

impl IoStat {
    /// Parses `io.stat`; unknown `key=value` pairs are ignored.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut out = IoStat::default();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let mut words = line.split_whitespace();
            let Some(dev) = words.next() else { continue };
            let (major, minor) = parse_dev(dev, n)?;
            let mut bytes = DeviceIo {
                major,
                minor,
                ..DeviceIo::default()
            };
            let mut ios = bytes;
            for pair in words {
                let (key, value) = pair
                    .split_once('=')
                    .ok_or_else(|| err(n, format!("{pair:?} is not key=value")))?;
                let value = value
                    .parse::<u64>()
                    .map_err(|_| err(n, format!("{value:?} is not an unsigned integer")))?;
                match key {
                    "rbytes" => bytes.read = value,
                    "wbytes" => bytes.write = value,
                    "dbytes" => bytes.discard = value,
                    "rios" => ios.read = value,
                    "wios" => ios.write = value,
                    "dios" => ios.discard = value,
                    _ => {}
                }
            }
            for d in [&mut bytes, &mut ios] {
                d.total = d.read.saturating_add(d.write).saturating_add(d.discard);
            }
            out.bytes.push(bytes);
            out.ios.push(ios);
        }
        Ok(out)
    }
}

/// Parses a single-value file: an unsigned integer, or `max` (→ `None`).
pub fn parse_u64_or_max(text: &str) -> Result<Option<u64>, ParseError> {
    match text.trim() {
        "max" => Ok(None),
        t => t.parse::<u64>().map(Some).map_err(|_| {
            err(
                1,
                format!("{t:?} is neither an unsigned integer nor \"max\""),
            )
        }),
    }
}

/// The most we read of a statistics or limit file. The largest the kernel
/// writes are per-device lists (`io.stat`, blkio), about a hundred bytes a
/// device.
const STATS_FILE_LIMIT: u64 = 1 << 20;

/// Reads `file` of `cg` and parses it with `parse`, attaching the path to
/// any error.
pub(crate) fn read_parsed<T>(
    cg: &Cgroup,
    file: &str,
    parse: impl FnOnce(&str) -> Result<T, ParseError>,
) -> Result<T, Error> {
    Reader::default().parsed(cg, file, parse)
}

/// A single unsigned integer file (`memory.usage_in_bytes`, `pids.current`).
pub fn read_u64(cg: &Cgroup, file: &str) -> Result<u64, Error> {
    Reader::default().read_u64(cg, file)
}

/// v1 `cpuacct.stat` of `cg` (a cpuacct cgroup).
pub fn cpuacct_stat(cg: &Cgroup) -> Result<CpuacctStat, Error> {
    Reader::default().cpuacct_stat(cg)
}

/// `cpu.stat` of `cg`, parsed for its version.
pub fn cpu_stat(cg: &Cgroup) -> Result<CpuStat, Error> {
    Reader::default().cpu_stat(cg)
}

/// `memory.stat` of `cg`, parsed for its version.
pub fn memory_stat(cg: &Cgroup) -> Result<MemoryStat, Error> {
    Reader::default().memory_stat(cg)
}

/// The statistics files through a [`Reader`] (below open parent
/// directories, into one buffer); the free functions above are these
/// through a reader of their own.
impl Reader<'_> {
    /// Reads `file` of `cg` and parses it with `parse`, attaching the path
    /// to any error.
    pub fn parsed<T>(
        &mut self,
        cg: &Cgroup,
        file: &str,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<T, Error> {
        let text = self.read_single(cg, file, STATS_FILE_LIMIT)?;
        parse(text).map_err(|e| Error::Parse {
            path: cg.path().join(file),
            reason: e.to_string(),
        })
    }

    /// See [`read_u64`].
    pub fn read_u64(&mut self, cg: &Cgroup, file: &str) -> Result<u64, Error> {
        self.parsed(cg, file, |t| {
            parse_u64_or_max(t)?.ok_or_else(|| err(1, "unexpected \"max\""))
        })
    }

    /// See [`cpuacct_stat`].
    pub fn cpuacct_stat(&mut self, cg: &Cgroup) -> Result<CpuacctStat, Error> {
        self.parsed(cg, "cpuacct.stat", CpuacctStat::parse)
    }

    /// See [`cpu_stat`].
    pub fn cpu_stat(&mut self, cg: &Cgroup) -> Result<CpuStat, Error> {
        match cg.version() {
            Version::V1 => self.parsed(cg, "cpu.stat", CpuStat::parse_v1),
            Version::V2 => self.parsed(cg, "cpu.stat", CpuStat::parse_v2),
        }
    }

    /// See [`memory_stat`].
    pub fn memory_stat(&mut self, cg: &Cgroup) -> Result<MemoryStat, Error> {
        match cg.version() {
            Version::V1 => self.parsed(cg, "memory.stat", MemoryStat::parse_v1),
            Version::V2 => self.parsed(cg, "memory.stat", MemoryStat::parse_v2),
        }
    }

    /// See [`memory_usage`].
    pub fn memory_usage(&mut self, cg: &Cgroup) -> Result<u64, Error> {
        match cg.version() {
            Version::V1 => self.read_u64(cg, "memory.usage_in_bytes"),
            Version::V2 => self.read_u64(cg, "memory.current"),
        }
    }

    /// The number of non-blank lines of `file` (`cgroup.procs`, `tasks`).
    pub fn count_lines(&mut self, cg: &Cgroup, file: &str) -> Result<u64, Error> {
        let text = self.read(cg, file, STATS_FILE_LIMIT)?;
        Ok(text.lines().filter(|l| !l.trim().is_empty()).count() as u64)
    }
}

/// Anonymous (resident) memory from `memory.stat` of `cg`, needing only
/// that key: v1 `total_rss`, or `rss` from a kernel without hierarchical
/// totals; v2 `anon`. Mesos `mem_rss_bytes`.
pub fn memory_anon(cg: &Cgroup) -> Result<u64, Error> {
    read_parsed(cg, "memory.stat", |text| {
        anon_bytes(&Pairs::parse(text)?, cg.version())
    })
}

/// Memory in use: v1 `memory.usage_in_bytes`, v2 `memory.current`. Mesos
/// `mem_total_bytes`.
pub fn memory_usage(cg: &Cgroup) -> Result<u64, Error> {
    Reader::default().memory_usage(cg)
}

/// Peak memory use: v1 `memory.max_usage_in_bytes`, v2 `memory.peak`
/// (Linux ≥ 5.19).
pub fn memory_peak(cg: &Cgroup) -> Result<u64, Error> {
    match cg.version() {
        Version::V1 => read_u64(cg, "memory.max_usage_in_bytes"),
        Version::V2 => read_u64(cg, "memory.peak"),
    }
}

/// v2 `memory.events` of `cg`.
pub fn memory_events(cg: &Cgroup) -> Result<MemoryEvents, Error> {
    read_parsed(cg, "memory.events", MemoryEvents::parse)
}

/// v1 `blkio.throttle.io_service_bytes` (bytes per device).
pub fn blkio_service_bytes(cg: &Cgroup) -> Result<BlkioStat, Error> {
    read_parsed(cg, "blkio.throttle.io_service_bytes", BlkioStat::parse)
}

/// v1 `blkio.throttle.io_serviced` (operations per device).
pub fn blkio_serviced(cg: &Cgroup) -> Result<BlkioStat, Error> {
    read_parsed(cg, "blkio.throttle.io_serviced", BlkioStat::parse)
}

/// v2 `io.stat` of `cg`.
pub fn io_stat(cg: &Cgroup) -> Result<IoStat, Error> {
    read_parsed(cg, "io.stat", IoStat::parse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cpuacct_stat_in_seconds() {
        let s = CpuacctStat::parse("user 250\nsystem 50\n").unwrap();
        assert_eq!(s.user_ticks, 250);
        assert_eq!(s.user_secs(100), 2.5);
        assert_eq!(s.system_secs(100), 0.5);
        assert_eq!(s.system_secs(0), 50.0);
        let e = CpuacctStat::parse("user 1\n").unwrap_err();
        assert_eq!(e.reason, "missing key \"system\"");
        assert!(CpuacctStat::parse("user -1\nsystem 2").is_err());
        assert!(clock_ticks_per_second() > 0);
    }

    #[test]
    fn cpu_stat_v1_and_v2() {
        let v1 = CpuStat::parse_v1("nr_periods 10\nnr_throttled 3\nthrottled_time 1500000000\n")
            .unwrap();
        assert_eq!(v1.nr_periods, Some(10));
        assert_eq!(v1.nr_throttled, Some(3));
        assert_eq!(v1.throttled, Some(Duration::from_millis(1500)));
        assert_eq!(v1.usage, None);
        let text = "usage_usec 2000000\nuser_usec 1500000\nsystem_usec 500000\n\
                    core_sched.force_idle_usec 0\nnr_periods 4\nnr_throttled 1\n\
                    throttled_usec 2500\nnr_bursts 0\nburst_usec 0\n";
        let v2 = CpuStat::parse_v2(text).unwrap();
        assert_eq!(v2.usage, Some(Duration::from_secs(2)));
        assert_eq!(v2.user, Some(Duration::from_millis(1500)));
        assert_eq!(v2.system, Some(Duration::from_millis(500)));
        assert_eq!(v2.throttled, Some(Duration::from_micros(2500)));
        // Without the cpu controller there are no throttling keys.
        let bare = CpuStat::parse_v2("usage_usec 1\nuser_usec 1\nsystem_usec 0\n").unwrap();
        assert_eq!(bare.nr_periods, None);
        assert!(CpuStat::parse_v1("usage_usec 1\n").is_err());
    }

    #[test]
    fn memory_stat_v1_uses_hierarchical_totals() {
        let text = "cache 1\nrss 2\nmapped_file 3\ntotal_cache 4096\ntotal_rss 8192\n\
                    total_rss_huge 0\ntotal_mapped_file 1024\ntotal_swap 7\n\
                    total_unevictable 5\ntotal_pgfault 9\ntotal_inactive_file 11\n\
                    hierarchical_memory_limit 9223372036854771712\n";
        let s = MemoryStat::parse_v1(text).unwrap();
        assert_eq!(s.file, 4096);
        assert_eq!(s.anon, 8192);
        assert_eq!(s.mapped_file, 1024);
        assert_eq!(s.swap, Some(7));
        assert_eq!(s.unevictable, 5);
        assert_eq!(s.pgfault, 9);
        assert_eq!(s.inactive_file, 11);
        assert_eq!(s.kernel, None);
        let e = MemoryStat::parse_v1("cache 1\ntotal_cache 1\n").unwrap_err();
        assert!(e.reason.contains("total_rss"), "{e}");
        // Without hierarchical totals the cgroup's own rss stands in.
        let own = MemoryStat::parse_v1("total_cache 1\nrss 2\n").unwrap();
        assert_eq!(own.anon, 2);
    }

    #[test]
    fn memory_anon_needs_only_the_anonymous_key() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("a", Version::V1, "cache 1\nrss 777\n", 777),
            ("b", Version::V1, "rss 1\ntotal_rss 2\n", 2),
            ("c", Version::V2, "anon 5\nfile 6\n", 5),
        ];
        for (name, version, text, anon) in cases {
            let cg = Cgroup::new(dir.path(), std::path::Path::new(name), version);
            std::fs::create_dir(cg.path()).unwrap();
            std::fs::write(cg.path().join("memory.stat"), text).unwrap();
            assert_eq!(memory_anon(&cg).unwrap(), anon, "{text}");
        }
        let cg = Cgroup::new(dir.path(), std::path::Path::new("c"), Version::V1);
        let e = memory_anon(&cg).unwrap_err();
        assert!(matches!(e, Error::Parse { .. }), "{e}");
        assert!(e.to_string().contains("c/memory.stat"), "{e}");
    }

    #[test]
    fn an_oversized_statistics_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cg = Cgroup::new(dir.path(), std::path::Path::new("c"), Version::V2);
        std::fs::create_dir(cg.path()).unwrap();
        let line = "anon 1\n";
        let too_long = line.repeat(usize::try_from(STATS_FILE_LIMIT).unwrap() / line.len() + 1);
        std::fs::write(cg.path().join("memory.stat"), too_long).unwrap();
        let e = memory_stat(&cg).unwrap_err();
        assert!(matches!(e, Error::TooLarge { .. }), "{e}");
        assert!(e.to_string().contains("memory.stat"), "{e}");
    }

    #[test]
    fn memory_stat_v2() {
        let text = "anon 100\nfile 200\nkernel 30\nkernel_stack 4\nsock 5\nshmem 6\n\
                    file_mapped 7\nfile_dirty 0\nanon_thp 8\nunevictable 9\n\
                    active_anon 10\ninactive_anon 11\nactive_file 12\n\
                    inactive_file 13\npgfault 14\npgmajfault 15\n";
        let s = MemoryStat::parse_v2(text).unwrap();
        assert_eq!((s.anon, s.file, s.mapped_file), (100, 200, 7));
        assert_eq!((s.kernel, s.sock, s.shmem), (Some(30), Some(5), Some(6)));
        assert_eq!((s.anon_thp, s.unevictable, s.pgmajfault), (8, 9, 15));
        assert_eq!(s.swap, None);
    }

    #[test]
    fn memory_events_v2() {
        let e = MemoryEvents::parse("low 0\nhigh 2\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n")
            .unwrap();
        assert_eq!((e.high, e.max, e.oom, e.oom_kill), (2, 3, 1, 1));
        assert_eq!(e.oom_group_kill, Some(0));
        assert!(MemoryEvents::parse("low 0\n").is_err());
    }

    #[test]
    fn blkio_v1() {
        let text = "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 100\n8:0 Async 12188\n\
                    8:0 Discard 0\n8:0 Total 12288\n253:1 Read 1\n253:1 Write 0\n\
                    253:1 Total 1\nTotal 12289\n";
        let s = BlkioStat::parse(text).unwrap();
        assert_eq!(s.total, Some(12289));
        assert_eq!(s.devices.len(), 2);
        let d = s.devices[0];
        assert_eq!(
            (d.major, d.minor, d.read, d.write, d.total),
            (8, 0, 4096, 8192, 12288)
        );
        assert_eq!((d.sync, d.async_), (100, 12188));
        assert_eq!((s.devices[1].major, s.devices[1].minor), (253, 1));
        // A cgroup that did no I/O.
        assert_eq!(BlkioStat::parse("Total 0\n").unwrap().total, Some(0));
        assert!(BlkioStat::parse("8:0 Frobnicate 1\n").is_err());
        assert!(BlkioStat::parse("8-0 Read 1\n").is_err());
    }

    #[test]
    fn io_stat_v2() {
        let text = "8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n\
                    8:0 rbytes=90430464 wbytes=299008000 rios=8950 wios=1252 dbytes=50331648 dios=3021 cost.usage=1\n";
        let s = IoStat::parse(text).unwrap();
        assert_eq!(s.bytes.len(), 2);
        assert_eq!((s.bytes[0].major, s.bytes[0].minor), (8, 16));
        assert_eq!(s.bytes[0].read, 1459200);
        assert_eq!(s.bytes[0].total, 1459200 + 314773504);
        assert_eq!(s.ios[1].read, 8950);
        assert_eq!(s.ios[1].discard, 3021);
        assert!(IoStat::parse("8:0 rbytes\n").is_err());
        assert!(IoStat::parse("8:0 rbytes=x\n").is_err());
    }

    #[test]
    fn single_values() {
        assert_eq!(parse_u64_or_max("max\n").unwrap(), None);
        assert_eq!(parse_u64_or_max("42\n").unwrap(), Some(42));
        assert!(parse_u64_or_max("-1").is_err());
        assert!(parse_u64_or_max("").is_err());
    }

    #[test]
    fn flat_keyed_rejects_malformed_lines() {
        let e = FlatKeyed::parse("a 1\nb 2 3\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(FlatKeyed::parse("a\n").is_err());
        assert_eq!(FlatKeyed::parse("\n\n a 1 \n").unwrap().get("a"), Some(1));
    }

    proptest! {
        #[test]
        fn parsers_never_panic(text in "\\PC*") {
            let _ = FlatKeyed::parse(&text);
            let _ = CpuacctStat::parse(&text);
            let _ = CpuStat::parse_v1(&text);
            let _ = CpuStat::parse_v2(&text);
            let _ = MemoryStat::parse_v1(&text);
            let _ = MemoryStat::parse_v2(&text);
            let _ = MemoryEvents::parse(&text);
            let _ = BlkioStat::parse(&text);
            let _ = IoStat::parse(&text);
            let _ = parse_u64_or_max(&text);
        }

        #[test]
        fn parsers_never_panic_on_near_valid_input(
            lines in proptest::collection::vec(
                ("[a-z_]{1,12}|[0-9]{1,4}:[0-9]{1,4}|Total",
                 "[ =]",
                 "[0-9]{0,25}|max|-1|[A-Za-z]{1,8}|rbytes=[0-9x]{0,22}"),
                0..20)
        ) {
            let text: String = lines
                .iter()
                .map(|(a, sep, b)| format!("{a}{sep}{b}\n"))
                .collect();
            let _ = FlatKeyed::parse(&text);
            let _ = CpuStat::parse_v2(&text);
            let _ = MemoryStat::parse_v1(&text);
            let _ = MemoryEvents::parse(&text);
            let _ = BlkioStat::parse(&text);
            let _ = IoStat::parse(&text);
        }

        #[test]
        fn flat_keyed_round_trips(map in proptest::collection::btree_map("[a-z_]{1,16}", any::<u64>(), 0..16)) {
            let text: String = map.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
            let parsed = FlatKeyed::parse(&text).unwrap();
            prop_assert_eq!(parsed.0, map);
        }

        #[test]
        fn io_stat_round_trips(major in 0u64..4096, minor in 0u64..1_048_576, r in any::<u64>(), w in any::<u64>(), rios in any::<u64>()) {
            let text = format!("{major}:{minor} rbytes={r} wbytes={w} rios={rios} wios=0 dbytes=0 dios=0\n");
            let s = IoStat::parse(&text).unwrap();
            prop_assert_eq!((s.bytes[0].major, s.bytes[0].minor), (major, minor));
            prop_assert_eq!((s.bytes[0].read, s.bytes[0].write, s.ios[0].read), (r, w, rios));
        }
    }
}
