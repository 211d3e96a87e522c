//! How init starts the container's command: everything the command's
//! process needs is built first ([`prepare_exec`]), then the process is
//! cloned with `CLONE_VM | CLONE_VFORK` ([`spawn_command`]) and makes only
//! plain system calls (terminal, stdout/stderr pipes of the log pump,
//! hardening, user switch, working directory) until execve(2).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::init::DEFAULT_PATH;
use crate::launch_info::{LaunchInfo, ResolvedUser};

/// Everything the command's process needs, built before it is cloned: it
/// shares init's memory and must not allocate.
pub(crate) struct Exec {
    path: CString,
    /// Owns the strings `argv_ptrs` and `env_ptrs` point into.
    _argv: Vec<CString>,
    _env: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    env_ptrs: Vec<*const libc::c_char>,
    working_dir: CString,
    user: Option<ResolvedUser>,
    display: String,
    /// Limits, capabilities, no_new_privs and seccomp, ready to apply.
    security: crate::security::Prepared,
    /// The terminal's slave: the command's stdin, stdout, stderr and
    /// controlling terminal, in a session of its own.
    pub(crate) tty: Option<libc::c_int>,
    /// The write ends of the log pump's pipes, made the command's stdout
    /// and stderr (`crate::log_pump`); without them it keeps init's, the
    /// sandbox files.
    pub(crate) output: Option<[libc::c_int; 2]>,
    /// A switchboard's pipes (a DEBUG container without a terminal):
    /// the command's stdin, stdout and stderr.
    pub(crate) stdio: Option<[libc::c_int; 3]>,
    /// The command's `oom_score_adj`, as written to the proc file (see
    /// [`oom_scores`]); `None` when init's own could not be read.
    oom_score_adj: Option<CString>,
}

/// How much more likely a victim of the OOM killer the command is than
/// its init (in `oom_score_adj` points, see [`oom_scores`]).
pub(crate) const COMMAND_OOM_BIAS: i32 = 50;

/// The highest `oom_score_adj` (`OOM_SCORE_ADJ_MAX`).
const OOM_SCORE_ADJ_MAX: i32 = 1000;

/// Init's and the command's `oom_score_adj`, from the score init was
/// given (its launcher's, or the `cgroups/mem` isolator's for a memory
/// request below the limit, as Mesos sets it). The command gets
/// [`COMMAND_OOM_BIAS`] more, at most 1000; only where that bound is hit
/// does init lower its own, to 1000 − the bias. So within the container
/// the OOM killer takes the command (and whatever it started) before its
/// init, which then reports the limitation, while no process of the
/// container is made less likely a victim than the host's processes by
/// default (0) unless its launcher already was: the command is never
/// below the score it was given, and init only goes below it from the
/// top of the range. A process's points are its memory in pages plus
/// `oom_score_adj` × (the pages it may use) / 1000: with a memory limit
/// of 32 MB (8192 pages), the bias is worth 409 pages, more than init's
/// whole footprint (about 40 pages). When the command is gone and the
/// memory is still not freed (tmpfs, or a kernel that has not finished
/// reaping the command under slow emulation), init is the only process
/// left and can still be taken: making it immune (-1000) would place it
/// below the host's default, which this rule does not do.
pub(crate) fn oom_scores(given: i32) -> (i32, i32) {
    let command = given
        .saturating_add(COMMAND_OOM_BIAS)
        .min(OOM_SCORE_ADJ_MAX);
    let init = given.min(OOM_SCORE_ADJ_MAX - COMMAND_OOM_BIAS);
    (init, command)
}

/// Init's `oom_score_adj` path.
const OWN_OOM_SCORE_ADJ: &str = "/proc/self/oom_score_adj";

/// Reads init's `oom_score_adj`, lowers it where [`oom_scores`] says so,
/// and returns the command's, as text for the proc file.
fn command_oom_score_adj() -> Option<CString> {
    let given: i32 = std::fs::read_to_string(OWN_OOM_SCORE_ADJ)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let (init, command) = oom_scores(given);
    if init != given
        && let Err(e) = std::fs::write(OWN_OOM_SCORE_ADJ, init.to_string())
    {
        eprintln!("phobos init: failed to lower its oom_score_adj to {init}: {e}");
    }
    CString::new(command.to_string()).ok()
}

/// Where the command's process failed before its `execve` took over, written
/// by it into init's memory (it shares it) and read by init once it is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ExecStep {
    Terminal,
    Output,
    SetGroups,
    SetGid,
    SetUid,
    Chdir,
    Execve,
    Harden(crate::security::Step),
}

impl ExecStep {
    fn what(self) -> &'static str {
        match self {
            Self::Terminal => "set up the terminal of",
            Self::Output => "connect the log (or switchboard) pipes of",
            Self::SetGroups => "set supplementary groups for",
            Self::SetGid => "switch group for",
            Self::SetUid => "switch user for",
            Self::Chdir => "enter the working directory for",
            Self::Execve => "execute",
            Self::Harden(step) => step.what(),
        }
    }
}

/// The command's process gets `Exec` and reports a failure here.
struct ChildArgs<'a> {
    exec: &'a Exec,
    failed: Option<(ExecStep, i32)>,
}

pub(crate) fn prepare_exec(info: &LaunchInfo) -> Result<Exec, String> {
    let program = info
        .program
        .as_ref()
        .or(info.argv.first())
        .ok_or("the launch info has an empty command")?;
    let path_var = info
        .env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map_or(DEFAULT_PATH, |(_, v)| v.as_str());
    let resolved = resolve_program(program, path_var, &info.working_dir);
    let c = |s: &[u8]| CString::new(s).map_err(|_| "the command contains a NUL byte".to_string());
    let argv: Vec<CString> = info
        .argv
        .iter()
        .map(|a| c(a.as_bytes()))
        .collect::<Result<_, _>>()?;
    let env: Vec<CString> = info
        .env
        .iter()
        .map(|(k, v)| c(format!("{k}={v}").as_bytes()))
        .collect::<Result<_, _>>()?;
    let null_terminated = |strings: &[CString]| {
        let mut ptrs: Vec<*const libc::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        ptrs
    };
    Ok(Exec {
        path: c(resolved.as_os_str().as_bytes())?,
        argv_ptrs: null_terminated(&argv),
        env_ptrs: null_terminated(&env),
        _argv: argv,
        _env: env,
        working_dir: c(info.working_dir.as_os_str().as_bytes())?,
        user: info.user.clone(),
        display: program.clone(),
        security: crate::security::Prepared::new(
            &info.hardening,
            info.user.as_ref().map(|u| u.uid),
        )?,
        tty: None,
        output: None,
        stdio: None,
        oom_score_adj: command_oom_score_adj(),
    })
}

/// execvp-style lookup: a name with a '/' is used as is (relative to the
/// working directory); otherwise the first executable match in PATH.
fn resolve_program(program: &str, path_var: &str, working_dir: &Path) -> PathBuf {
    if program.contains('/') {
        let p = Path::new(program);
        return if p.is_absolute() {
            p.to_owned()
        } else {
            working_dir.join(p)
        };
    }
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(program);
        if let Ok(meta) = candidate.metadata() {
            use std::os::unix::fs::PermissionsExt;
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return candidate;
            }
        }
    }
    PathBuf::from(program)
}

/// Stack for the command's process until its `execve`; it only makes
/// system calls, so a little is plenty (pages it does not touch cost nothing).
const CHILD_STACK_SIZE: usize = 64 * 1024;

/// Starts the command in a process that shares init's memory until it
/// execs (`clone(CLONE_VM | CLONE_VFORK)`, what `posix_spawn` does): init
/// sleeps meanwhile, and neither copies page tables nor takes copy-on-write
/// faults, which a `fork` of this binary would. A failure before the exec
/// is reported by the process through `ChildArgs` and printed here; the
/// process then exits 127 (not found, or anything else) or 126 (not
/// executable), as shells do.
pub(crate) fn spawn_command(exec: &Exec) -> Result<libc::pid_t, String> {
    let mut stack: Vec<u8> = Vec::with_capacity(CHILD_STACK_SIZE);
    let mut args = ChildArgs { exec, failed: None };
    // SAFETY: the stack pointer is one past the end of our allocation (the
    // stack grows down) and outlives the process's use of it, because
    // CLONE_VFORK suspends us until the process has exec'd or exited; the
    // argument points at `args`, which lives as long. The entry point only
    // makes system calls (see `command_main`).
    let pid = unsafe {
        let top = stack.as_mut_ptr().add(CHILD_STACK_SIZE);
        libc::clone(
            command_main,
            top.cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            std::ptr::addr_of_mut!(args).cast(),
        )
    };
    if pid < 0 {
        return Err(format!(
            "failed to start the command: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: `args` is ours again: the process has exec'd or exited.
    if let Some((step, errno)) = unsafe { std::ptr::read_volatile(&args.failed) } {
        eprintln!(
            "phobos init: failed to {} '{}': {}",
            step.what(),
            exec.display,
            std::io::Error::from_raw_os_error(errno)
        );
    }
    Ok(pid)
}

/// The command's process until `execve`. It shares init's memory, stack
/// aside, so it neither allocates nor goes through glibc's process-wide
/// credential code: plain system calls only.
extern "C" fn command_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `spawn_command` passes a `ChildArgs` that outlives us.
    let args = unsafe { &mut *arg.cast::<ChildArgs<'_>>() };
    let exec = args.exec;
    let fail = |args: &mut ChildArgs<'_>, step: ExecStep| -> ! {
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        // SAFETY: a plain store into `args`, which outlives this process;
        // volatile so it is not dropped before `_exit`.
        unsafe { std::ptr::write_volatile(&mut args.failed, Some((step, errno))) };
        let code = match errno {
            libc::EACCES | libc::ENOEXEC => 126,
            _ => 127,
        };
        // SAFETY: _exit is always safe.
        unsafe { libc::_exit(code) }
    };
    // SAFETY: plain system calls on data prepared by `prepare_exec`. The
    // signal mask is emptied so the command starts like a normal process;
    // init already reset every disposition to the default.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        if let Some(slave) = exec.tty {
            // A session of its own, with the terminal as its controlling
            // terminal (Mesos: setsid + TIOCSCTTY in the launch helper).
            if libc::setsid() < 0
                || libc::ioctl(slave, libc::TIOCSCTTY, 0) != 0
                || libc::dup2(slave, 0) < 0
                || libc::dup2(slave, 1) < 0
                || libc::dup2(slave, 2) < 0
            {
                fail(args, ExecStep::Terminal);
            }
        }
        if let Some([out, err]) = exec.output
            && (libc::dup2(out, 1) < 0 || libc::dup2(err, 2) < 0)
        {
            fail(args, ExecStep::Output);
        }
        if let Some([i, o, e]) = exec.stdio
            && (libc::dup2(i, 0) < 0 || libc::dup2(o, 1) < 0 || libc::dup2(e, 2) < 0)
        {
            fail(args, ExecStep::Output);
        }
        // The command's OOM score, before anything else can allocate
        // for it (best effort: a container without /proc keeps init's).
        if let Some(score) = &exec.oom_score_adj {
            let fd = libc::open(
                c"/proc/self/oom_score_adj".as_ptr(),
                libc::O_WRONLY | libc::O_CLOEXEC,
            );
            if fd >= 0 {
                let bytes = score.as_bytes();
                libc::write(fd, bytes.as_ptr().cast(), bytes.len());
                libc::close(fd);
            }
        }
        if let Err(step) = exec.security.before_user() {
            fail(args, ExecStep::Harden(step));
        }
        if let Some(user) = &exec.user {
            if libc::syscall(libc::SYS_setgroups, user.groups.len(), user.groups.as_ptr()) != 0 {
                fail(args, ExecStep::SetGroups);
            }
            if libc::syscall(libc::SYS_setgid, user.gid) != 0 {
                fail(args, ExecStep::SetGid);
            }
            if libc::syscall(libc::SYS_setuid, user.uid) != 0 {
                fail(args, ExecStep::SetUid);
            }
        }
        if let Err(step) = exec.security.after_user() {
            fail(args, ExecStep::Harden(step));
        }
        if libc::chdir(exec.working_dir.as_ptr()) != 0 {
            fail(args, ExecStep::Chdir);
        }
        libc::execve(
            exec.path.as_ptr(),
            exec.argv_ptrs.as_ptr(),
            exec.env_ptrs.as_ptr(),
        );
    }
    fail(args, ExecStep::Execve)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_is_a_likelier_oom_victim_than_its_init() {
        assert_eq!(oom_scores(0), (0, 50));
        assert_eq!(oom_scores(500), (500, 550));
        assert_eq!(oom_scores(950), (950, 1000));
        assert_eq!(oom_scores(990), (950, 1000));
        assert_eq!(oom_scores(1000), (950, 1000));
        // A launcher protected by its host keeps its init as protected;
        // the command is still above it.
        assert_eq!(oom_scores(-500), (-500, -450));
        assert_eq!(oom_scores(-1000), (-1000, -950));
    }

    #[test]
    fn resolves_programs_like_execvp() {
        let wd = Path::new("/work");
        assert_eq!(
            resolve_program("/bin/sh", DEFAULT_PATH, wd),
            Path::new("/bin/sh")
        );
        assert_eq!(
            resolve_program("./run.sh", DEFAULT_PATH, wd),
            Path::new("/work/./run.sh")
        );
        let sh = resolve_program("sh", DEFAULT_PATH, wd);
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
        assert_eq!(
            resolve_program("no-such-program-xyz", DEFAULT_PATH, wd),
            Path::new("no-such-program-xyz")
        );
    }
}
