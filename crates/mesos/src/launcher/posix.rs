//! The POSIX launcher's destroy: without cgroups, a container is its init's
//! session and process tree. `kill_tree` SIGKILLs every process whose
//! session or process group is init's, or that descends from init, found
//! by walking /proc (proc(5) `stat`). A process that left both the session
//! and the tree (double fork plus setsid) escapes; the linux launcher's
//! freezer cgroup exists for exactly that reason.

use std::fs;

use crate::isolator::{ProcStat, parse_stat};

fn all_processes() -> Vec<ProcStat> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?))
        .collect()
}

/// How many scan-and-kill rounds `kill_tree` makes at most: a process the
/// container forks while a round runs is caught by the next one.
const KILL_ROUNDS: usize = 50;

/// SIGKILLs init and everything belonging to its session, group or tree,
/// again until no live process of the session or group is left (children
/// forked during a round keep init's session after they are reparented).
pub fn kill_tree(init_pid: i32) {
    let mut init_alive = true;
    for _ in 0..KILL_ROUNDS {
        let victims = victims(init_pid, init_alive, &all_processes());
        if victims.is_empty() {
            return;
        }
        for pid in victims {
            // SAFETY: kill(2) with a pid and a signal has no memory effects.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        // Only the first round may name init by pid: once killed, its pid
        // may be reused by an unrelated process.
        init_alive = false;
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// The live processes of init's session, group or tree (init itself while
/// `include_init`).
fn victims(init_pid: i32, include_init: bool, procs: &[ProcStat]) -> Vec<i32> {
    let mut victims: Vec<i32> = Vec::new();
    if include_init {
        victims.push(init_pid);
    }
    let mut grew = true;
    while grew {
        grew = false;
        for p in procs.iter().filter(|p| !p.zombie) {
            let belongs = p.session == init_pid
                || p.pgrp == init_pid
                || (p.ppid == init_pid && include_init)
                || victims.contains(&p.ppid);
            if belongs && !victims.contains(&p.pid) {
                victims.push(p.pid);
                grew = true;
            }
        }
    }
    victims
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(pid: i32, ppid: i32, pgrp: i32, session: i32) -> ProcStat {
        ProcStat {
            pid,
            ppid,
            pgrp,
            session,
            zombie: false,
            ..ProcStat::default()
        }
    }

    #[test]
    fn victims_are_the_session_the_group_and_the_tree() {
        let procs = [
            proc(100, 1, 100, 100),   // init, a session leader
            proc(101, 100, 100, 100), // its command
            proc(102, 101, 102, 102), // setsid'd, but still a descendant
            proc(103, 1, 100, 100),   // reparented, still in the session
            proc(104, 1, 104, 104),   // unrelated
        ];
        let mut v = victims(100, true, &procs);
        v.sort_unstable();
        assert_eq!(v, [100, 101, 102, 103]);
    }

    #[test]
    fn later_rounds_skip_zombies_and_do_not_name_init_by_pid() {
        let mut zombie = proc(101, 100, 100, 100);
        zombie.zombie = true;
        let procs = [zombie, proc(103, 1, 100, 100), proc(100, 1, 200, 200)];
        // pid 100 now belongs to someone else: untouched.
        assert_eq!(victims(100, false, &procs), [103]);
        assert!(victims(100, false, &[proc(7, 1, 7, 7)]).is_empty());
    }
}
