//! `posix/cpu` and `posix/mem` (Mesos `isolators/posix.hpp`): no
//! enforcement, only accounting by walking the process tree under the
//! container's init pid in procfs (proc(5), `/proc/<pid>/stat`): CPU time is
//! the sum of `utime`/`stime` (plus `cutime`/`cstime`, the time of reaped
//! descendants) and memory the sum of `rss` over every descendant.
//!
//! The kernel here has no `/proc/<pid>/task/<tid>/children`, so the tree is
//! found from every process's parent pid: one scan of `/proc` per
//! [`HostCache`](super::HostCache), shared by all containers measured with
//! it (`phobos stats` of many containers scans once).

use std::collections::HashMap;
use std::fs;

use phobos_core::{ContainerId, ResourceStatistics};

use super::{Isolator, IsolatorError, UsageContext};

/// One process from `/proc/<pid>/stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: i32,
    pub ppid: i32,
    /// Clock ticks in user mode (own + reaped children).
    pub user_ticks: u64,
    /// Clock ticks in kernel mode (own + reaped children).
    pub system_ticks: u64,
    /// Resident pages.
    pub rss_pages: u64,
    pub threads: u64,
    /// Process group and session (fields 5 and 6).
    pub pgrp: i32,
    pub session: i32,
    /// State `Z` or `X`: dead, waiting to be reaped.
    pub zombie: bool,
}

/// Parses `/proc/<pid>/stat`, the one parser of it in Phobos (the posix
/// isolators' accounting and the posix launcher's kill both use it). The
/// command name (field 2) may hold spaces and parentheses, so fields are
/// counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // rest[0] is field 3 (state).
    let field = |n: usize| -> Option<u64> { rest.get(n - 3)?.parse().ok() };
    let state = *rest.first()?;
    Some(ProcStat {
        pid,
        ppid: rest.get(1)?.parse().ok()?,
        pgrp: rest.get(2)?.parse().ok()?,
        session: rest.get(3)?.parse().ok()?,
        zombie: state == "Z" || state == "X",
        user_ticks: field(14)?.saturating_add(field(16)?),
        system_ticks: field(15)?.saturating_add(field(17)?),
        threads: field(20)?,
        rss_pages: field(24)?,
    })
}

/// A snapshot of every process's parent and counters.
#[derive(Debug, Default)]
pub struct ProcTable {
    procs: HashMap<i32, ProcStat>,
    children: HashMap<i32, Vec<i32>>,
}

impl ProcTable {
    /// Reads `/proc`. Processes that exit during the scan are skipped.
    pub fn scan() -> Self {
        let mut stats = Vec::new();
        if let Ok(entries) = fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(pid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
                    continue;
                };
                if let Some(s) = fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|t| parse_stat(&t))
                {
                    stats.push(s);
                }
            }
        }
        Self::from_stats(stats)
    }

    pub fn from_stats(stats: impl IntoIterator<Item = ProcStat>) -> Self {
        let mut table = ProcTable::default();
        for s in stats {
            table.children.entry(s.ppid).or_default().push(s.pid);
            table.procs.insert(s.pid, s);
        }
        table
    }

    /// `root` and all its descendants that are in the table.
    pub fn tree(&self, root: i32) -> Vec<&ProcStat> {
        let mut out = Vec::new();
        let mut stack = vec![root];
        while let Some(pid) = stack.pop() {
            if let Some(s) = self.procs.get(&pid) {
                out.push(s);
                if let Some(kids) = self.children.get(&pid) {
                    stack.extend(kids.iter().copied().filter(|k| *k != pid));
                }
            }
        }
        out
    }
}

/// Sums over a process tree.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessTreeUsage {
    pub processes: u32,
    pub threads: u32,
    pub user_secs: f64,
    pub system_secs: f64,
    pub rss_bytes: u64,
}

/// The usage of `root`'s tree in `table`; `None` when `root` is gone.
pub fn process_tree_usage(table: &ProcTable, root: i32) -> Option<ProcessTreeUsage> {
    let tree = table.tree(root);
    if tree.is_empty() {
        return None;
    }
    let tck = phobos_cgroups::stats::clock_ticks_per_second().max(1) as f64;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    let mut u = ProcessTreeUsage::default();
    for p in tree {
        u.processes += 1;
        u.threads = u.threads.saturating_add(p.threads as u32);
        u.user_secs += p.user_ticks as f64 / tck;
        u.system_secs += p.system_ticks as f64 / tck;
        u.rss_bytes = u.rss_bytes.saturating_add(p.rss_pages.saturating_mul(page));
    }
    Some(u)
}

fn tree_usage(ctx: &UsageContext<'_>) -> Option<ProcessTreeUsage> {
    let pid = ctx.pid?;
    process_tree_usage(ctx.host.procs(), pid)
}

#[derive(Debug)]
pub struct PosixCpu;

impl Isolator for PosixCpu {
    fn name(&self) -> &'static str {
        "posix/cpu"
    }

    fn usage(
        &self,
        _id: &ContainerId,
        ctx: &UsageContext<'_>,
    ) -> Result<Option<ResourceStatistics>, IsolatorError> {
        Ok(tree_usage(ctx).map(|u| ResourceStatistics {
            processes: Some(u.processes),
            threads: Some(u.threads),
            cpus_user_time_secs: Some(u.user_secs),
            cpus_system_time_secs: Some(u.system_secs),
            ..ResourceStatistics::default()
        }))
    }
}

#[derive(Debug)]
pub struct PosixMem;

impl Isolator for PosixMem {
    fn name(&self) -> &'static str {
        "posix/mem"
    }

    fn usage(
        &self,
        _id: &ContainerId,
        ctx: &UsageContext<'_>,
    ) -> Result<Option<ResourceStatistics>, IsolatorError> {
        Ok(tree_usage(ctx).map(|u| ResourceStatistics {
            mem_rss_bytes: Some(u.rss_bytes),
            ..ResourceStatistics::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let line = "1234 (a (b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 3 2 1 20 0 5 0 100 1000000 250 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.pid, 1234);
        assert_eq!(s.ppid, 1);
        assert_eq!(s.user_ticks, 9);
        assert_eq!(s.system_ticks, 4);
        assert_eq!(s.threads, 5);
        assert_eq!(s.rss_pages, 250);
        assert!(parse_stat("garbage").is_none());
        assert!(parse_stat("1 (x) S").is_none());
    }

    #[test]
    fn sums_a_tree_and_ignores_others() {
        let p = |pid, ppid, rss| ProcStat {
            pid,
            ppid,
            user_ticks: 1,
            system_ticks: 2,
            rss_pages: rss,
            threads: 1,
            ..ProcStat::default()
        };
        let table = ProcTable::from_stats([p(10, 1, 1), p(11, 10, 2), p(12, 11, 3), p(20, 1, 100)]);
        let u = process_tree_usage(&table, 10).unwrap();
        assert_eq!(u.processes, 3);
        assert_eq!(u.threads, 3);
        assert!(u.rss_bytes >= 6 * 4096);
        assert!(process_tree_usage(&table, 99).is_none());
    }

    proptest::proptest! {
        #[test]
        fn garbage_stat_never_panics(text in ".{0,300}") {
            let _ = parse_stat(&text);
        }

        #[test]
        fn stat_with_any_command_name_parses(name in "[^\\x00]{0,40}", ppid in 0i32..100_000) {
            let line = format!("42 ({name}) R {ppid} 1 1 0 -1 0 0 0 0 0 5 6 7 8 20 0 3 0 1 1 9 0");
            let s = parse_stat(&line).unwrap();
            proptest::prop_assert_eq!(s.ppid, ppid);
            proptest::prop_assert_eq!(s.user_ticks, 12);
            proptest::prop_assert_eq!(s.system_ticks, 14);
            proptest::prop_assert_eq!(s.rss_pages, 9);
        }
    }

    #[test]
    fn measures_this_process() {
        let table = ProcTable::scan();
        let me = std::process::id() as i32;
        let u = process_tree_usage(&table, me).unwrap();
        assert!(u.rss_bytes > 0);
        assert!(u.threads >= 1);
    }
}
