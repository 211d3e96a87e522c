//! The POSIX launcher's destroy: without cgroups, a container is its init's
//! session and process tree. `kill_tree` SIGKILLs every process whose
//! session or process group is init's, or that descends from init, found
//! by walking /proc (proc(5) `stat`). A process that left both the session
//! and the tree (double fork plus setsid) escapes; the linux launcher's
//! freezer cgroup exists for exactly that reason.

use std::fs;

struct ProcStat {
    pid: i32,
    ppid: i32,
    pgrp: i32,
    session: i32,
}

fn read_stat(pid: i32) -> Option<ProcStat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: split after the
    // last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let _state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    let session = fields.next()?.parse().ok()?;
    Some(ProcStat {
        pid,
        ppid,
        pgrp,
        session,
    })
}

fn all_processes() -> Vec<ProcStat> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter_map(read_stat)
        .collect()
}

/// SIGKILLs init and everything belonging to its session, group or tree.
pub fn kill_tree(init_pid: i32) {
    let procs = all_processes();
    let mut victims = vec![init_pid];
    let mut grew = true;
    while grew {
        grew = false;
        for p in &procs {
            let belongs = p.session == init_pid || p.pgrp == init_pid || victims.contains(&p.ppid);
            if belongs && !victims.contains(&p.pid) {
                victims.push(p.pid);
                grew = true;
            }
        }
    }
    for pid in victims {
        // SAFETY: kill(2) with a pid and a signal has no memory effects.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}
