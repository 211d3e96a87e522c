//! `phobos ecp usage` and `phobos ecp update`.
//!
//! `usage` always answers a running container with a `ResourceStatistics`
//! carrying a timestamp and CPU times (Deimos wrote nothing in several
//! normal states and never CPU times): the isolators' statistics when they
//! measure CPU and memory, otherwise a scan of `/proc` for the processes of
//! the container's session (the init helper is a session leader), summing
//! user and system time of the live processes and of the children they
//! reaped, and their resident memory.
//!
//! `update` applies the agent's new resource set (the scalar `cpus`, `mem`
//! and `disk`) through the isolators and checkpoints it. The memory hard
//! limit is only ever raised, as Mesos does.

use std::fs;

use phobos_core::{Operation, ResourceStatistics};
use phobos_proto::containerizer::{Update, Usage};
use phobos_proto::mesos;

use super::translate;
use crate::cli::{EcpCall, Global};
use crate::commands;
use crate::context;

pub fn usage(global: &Global) -> anyhow::Result<()> {
    let request: Usage = super::read_input()?;
    let id = super::container_id(&request.container_id)?;
    let span = super::container_span(EcpCall::Usage, &id);
    let _entered = span.enter();
    let mut stats = commands::statistics(commands::apply_known(global, &id, Operation::Usage)?)?;
    if stats.cpus_user_time_secs.is_none() || stats.cpus_system_time_secs.is_none() {
        // Only a Mesos container measures without CPU times (no isolator
        // for them); its init leads the session to sum up.
        let dir = context::containerizer(global)?.store().open(&id);
        let pid = dir.and_then(|d| d.pid().ok().flatten());
        let session = pid.map(session_usage).unwrap_or_default();
        stats.cpus_user_time_secs = Some(session.user_secs);
        stats.cpus_system_time_secs = Some(session.system_secs);
        if stats.mem_rss_bytes.is_none() && session.processes > 0 {
            stats.mem_rss_bytes = Some(session.rss_bytes);
        }
        if stats.processes.is_none() && session.processes > 0 {
            stats.processes = Some(session.processes);
        }
    }
    super::write_output(&to_proto(&stats))
}

pub fn update(global: &Global) -> anyhow::Result<()> {
    let request: Update = super::read_input()?;
    let id = super::container_id(&request.container_id)?;
    let span = super::container_span(EcpCall::Update, &id);
    let _entered = span.enter();
    let resources = translate::from_mesos(&request.resources);
    tracing::info!(?resources, "updating");
    commands::apply_known(
        global,
        &id,
        Operation::Update {
            resources,
            force: false,
        },
    )?;
    Ok(())
}

/// Our statistics as the Mesos message (every scalar field Phobos fills).
fn to_proto(s: &ResourceStatistics) -> mesos::ResourceStatistics {
    mesos::ResourceStatistics {
        timestamp: s.timestamp,
        processes: s.processes,
        threads: s.threads,
        cpus_user_time_secs: s.cpus_user_time_secs,
        cpus_system_time_secs: s.cpus_system_time_secs,
        cpus_limit: s.cpus_limit,
        cpus_soft_limit: s.cpus_soft_limit,
        cpus_nr_periods: s.cpus_nr_periods,
        cpus_nr_throttled: s.cpus_nr_throttled,
        cpus_throttled_time_secs: s.cpus_throttled_time_secs,
        mem_total_bytes: s.mem_total_bytes,
        mem_total_memsw_bytes: s.mem_total_memsw_bytes,
        mem_limit_bytes: s.mem_limit_bytes,
        mem_soft_limit_bytes: s.mem_soft_limit_bytes,
        mem_file_bytes: s.mem_file_bytes,
        mem_anon_bytes: s.mem_anon_bytes,
        mem_cache_bytes: s.mem_cache_bytes,
        mem_rss_bytes: s.mem_rss_bytes,
        mem_mapped_file_bytes: s.mem_mapped_file_bytes,
        mem_swap_bytes: s.mem_swap_bytes,
        mem_unevictable_bytes: s.mem_unevictable_bytes,
        disk_limit_bytes: s.disk_limit_bytes,
        disk_used_bytes: s.disk_used_bytes,
        ..Default::default()
    }
}

/// CPU time and memory of one session's processes.
#[derive(Debug, Default, PartialEq)]
struct SessionUsage {
    user_secs: f64,
    system_secs: f64,
    rss_bytes: u64,
    processes: u32,
}

/// Sums `/proc/<pid>/stat` over the processes whose session is `sid`.
fn session_usage(sid: i32) -> SessionUsage {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    // SAFETY: as above.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    let mut total = SessionUsage::default();
    let Ok(entries) = fs::read_dir("/proc") else {
        return total;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        // Processes come and go while we scan; a vanished one is skipped.
        let Ok(text) = fs::read_to_string(format!("/proc/{name}/stat")) else {
            continue;
        };
        if let Some(p) = parse_stat(&text).filter(|p| p.session == sid) {
            total.user_secs += (p.utime + p.cutime) as f64 / ticks;
            total.system_secs += (p.stime + p.cstime) as f64 / ticks;
            total.rss_bytes += p.rss_pages * page;
            total.processes += 1;
        }
    }
    total
}

/// The fields of `/proc/<pid>/stat` we use (proc(5)).
#[derive(Debug, PartialEq)]
struct Stat {
    session: i32,
    utime: u64,
    stime: u64,
    cutime: u64,
    cstime: u64,
    rss_pages: u64,
}

fn parse_stat(text: &str) -> Option<Stat> {
    // The command name may contain spaces and parentheses: split after the
    // last ')'. Fields from there on start with field 3, `state`.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| fields.get(i)?.parse::<i64>().ok();
    Some(Stat {
        session: i32::try_from(num(3)?).ok()?,
        utime: num(11)?.max(0) as u64,
        stime: num(12)?.max(0) as u64,
        cutime: num(13)?.max(0) as u64,
        cstime: num(14)?.max(0) as u64,
        rss_pages: num(21)?.max(0) as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_lines_with_odd_command_names() {
        let line = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    150 30 7 3 20 0 1 0 12345 1000000 250 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                session: 4242,
                utime: 150,
                stime: 30,
                cutime: 7,
                cstime: 3,
                rss_pages: 250,
            })
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1"), None);
    }

    #[test]
    fn our_own_session_has_us_in_it() {
        // SAFETY: getsid(0) has no preconditions.
        let sid = unsafe { libc::getsid(0) };
        let usage = session_usage(sid);
        assert!(usage.processes >= 1);
        assert!(usage.rss_bytes > 0);
    }

    #[test]
    fn every_scalar_reaches_the_message() {
        let s = ResourceStatistics {
            timestamp: 5.5,
            cpus_user_time_secs: Some(1.0),
            cpus_system_time_secs: Some(0.5),
            mem_limit_bytes: Some(1 << 20),
            disk_used_bytes: Some(7),
            ..ResourceStatistics::default()
        };
        let m = to_proto(&s);
        assert_eq!(m.timestamp, 5.5);
        assert_eq!(m.cpus_user_time_secs, Some(1.0));
        assert_eq!(m.cpus_system_time_secs, Some(0.5));
        assert_eq!(m.mem_limit_bytes, Some(1 << 20));
        assert_eq!(m.disk_used_bytes, Some(7));
        assert_eq!(m.mem_rss_bytes, None);
    }
}
