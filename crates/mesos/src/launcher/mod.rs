//! Launchers fork the container's init helper (Mesos §3.8).
//!
//! Forking follows one rule (DESIGN.md "Clone, then exec"): the parent builds
//! every string and pointer first, then calls raw `clone3(2)` with the
//! namespace flags; the child runs only async-signal-safe calls (`setsid`,
//! `fcntl`, `dup2`, `execve`, `write`, `_exit`) and immediately execs
//! `phobos init`. The clone shares the parent's memory until that exec
//! (`CLONE_VM | CLONE_VFORK`, the child on a stack of its own, as
//! `posix_spawn` does), so a launch copies no page tables of the
//! launching process, however large (the agent); fork-style where the
//! kernel refuses that. The init helper then blocks on a pipe until the parent has
//! placed it in its cgroups, and closes its end once the container can be
//! joined (its root filesystem entered), which the parent waits for before
//! it records RUNNING.
//!
//! The child gets fixed descriptors: 0/1/2 (stdin, sandbox stdout, sandbox
//! stderr), 3 (the read end of the sync pipe), 4 (the init lock) and, for
//! a command with a terminal, 5 (the socket init sends the terminal's
//! master on), and nothing else: every other descriptor is close-on-exec
//! (`close_range(2)`).

mod linux;
pub mod owner;
mod posix;
pub mod scope;
mod seqpacket;
pub mod spawner;
pub mod zygote;

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use phobos_core::{CgroupsDriver, ContainerId, LauncherKind};

pub(crate) use linux::mark as mark_container_cgroup;
pub use linux::{KillHierarchy, LinuxLauncher, NESTED_CGROUPS_DIR, cgroup_rel};

/// The descriptor numbers `phobos init` finds its pipe and lock on.
pub const INIT_SYNC_FD: RawFd = 3;
pub const INIT_LOCK_FD: RawFd = 4;
/// Where init finds the socket to send a terminal's master on.
pub const INIT_TTY_FD: RawFd = 5;
/// The environment variable naming the container's runtime directory.
pub const INIT_DIR_ENV: &str = "PHOBOS_INIT_DIR";
/// Set for `phobos exec`'s helper: "<container init pid> <spec file>".
pub const INIT_JOIN_ENV: &str = "PHOBOS_INIT_JOIN";

/// How long destroy may take to kill and remove a cgroup (Mesos
/// `--cgroups_destroy_timeout`).
pub const DESTROY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("the linux launcher needs root (running as uid {0}); use --launcher posix")]
    NotRoot(u32),
    #[error(
        "the linux launcher needs a freezer: no v1 freezer hierarchy and no cgroup2 mount found"
    )]
    NoFreezer,
    #[error("cgroups: {0}")]
    Cgroups(#[from] phobos_cgroups::Error),
    #[error("failed to {op}: {source}")]
    Sys {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("failed to execute the init helper {exe}: {source}")]
    ExecInit {
        exe: String,
        #[source]
        source: io::Error,
    },
    #[error("the init helper exited before the container started; see the sandbox's stderr")]
    InitGone,
    #[error("cgroups_driver = \"systemd\": {0}")]
    Systemd(#[from] phobos_systemd::ScopeError),
    #[error("cgroups_driver = \"systemd\": {0}")]
    SystemdLayout(String),
}

fn sys(op: &'static str) -> impl FnOnce(io::Error) -> LaunchError {
    move |source| LaunchError::Sys { op, source }
}

/// The launchers: a closed set, so an enum.
#[derive(Debug)]
pub enum Launcher {
    Linux(LinuxLauncher),
    Posix,
}

impl Launcher {
    /// Takes top-level v1 kill cgroups from `spares` (the linux launcher).
    pub fn with_spares(
        mut self,
        spares: Option<std::sync::Arc<phobos_cgroups::spare::Spares>>,
    ) -> Self {
        if let Self::Linux(linux) = &mut self {
            linux.set_spares(spares);
        }
        self
    }

    pub fn new(kind: LauncherKind, cgroups_root: &str) -> Result<Self, LaunchError> {
        Self::with_hierarchies(kind, cgroups_root, CgroupsDriver::Cgroupfs, None)
    }

    /// Like [`Launcher::new`] with a cgroups driver, reusing detected
    /// hierarchies when given.
    pub fn with_hierarchies(
        kind: LauncherKind,
        cgroups_root: &str,
        driver: CgroupsDriver,
        hierarchies: Option<&phobos_cgroups::Hierarchies>,
    ) -> Result<Self, LaunchError> {
        match (kind, hierarchies) {
            (LauncherKind::Linux, Some(h)) => Ok(Self::Linux(LinuxLauncher::with_driver(
                cgroups_root,
                KillHierarchy::Auto,
                driver,
                h,
            )?)),
            (LauncherKind::Linux, None) => Ok(Self::Linux(LinuxLauncher::with_driver(
                cgroups_root,
                KillHierarchy::Auto,
                driver,
                &phobos_cgroups::Hierarchies::detect()?,
            )?)),
            (LauncherKind::Posix, _) => Ok(Self::Posix),
        }
    }

    /// Before anything else of the container is made: with the systemd
    /// driver, starts a top-level container's scope (its cgroup); the hold
    /// is dropped once init is in it.
    pub fn start_unit(&self, id: &ContainerId) -> Result<Option<scope::ScopeHold>, LaunchError> {
        match self {
            Self::Linux(l) => l.start_unit(id),
            Self::Posix => Ok(None),
        }
    }

    pub fn kind(&self) -> LauncherKind {
        match self {
            Self::Linux(_) => LauncherKind::Linux,
            Self::Posix => LauncherKind::Posix,
        }
    }

    /// Before the fork: creates what the container's processes will live
    /// in; returns the cgroup directory to clone init into, if any.
    pub fn prepare(&self, id: &ContainerId) -> Result<Option<OwnedFd>, LaunchError> {
        match self {
            Self::Linux(l) => l.prepare(id),
            Self::Posix => Ok(None),
        }
    }

    /// After the fork: puts the (still blocked) init into the container.
    pub fn adopt(&self, id: &ContainerId, init: &ForkedInit) -> Result<(), LaunchError> {
        match self {
            Self::Linux(l) => l.adopt(id, init.pid, init.born_in_cgroup),
            Self::Posix => Ok(()),
        }
    }

    /// Starts killing every process of the container without waiting for
    /// them to exit (see [`LinuxLauncher::start_kill`]); the posix
    /// launcher kills init's tree at once and leaves nothing to wait on.
    pub fn start_kill(
        &self,
        id: &ContainerId,
        init_pid: Option<i32>,
    ) -> Result<Vec<phobos_cgroups::Emptying>, LaunchError> {
        match self {
            Self::Linux(l) => l.start_kill(id),
            Self::Posix => {
                if let Some(pid) = init_pid {
                    posix::kill_tree(pid);
                }
                Ok(Vec::new())
            }
        }
    }

    /// Kills every process of the container and removes what `prepare` made.
    pub fn destroy(&self, id: &ContainerId, init_pid: Option<i32>) -> Result<(), LaunchError> {
        match self {
            Self::Linux(l) => l.destroy(id, init_pid),
            Self::Posix => {
                if let Some(pid) = init_pid {
                    posix::kill_tree(pid);
                }
                Ok(())
            }
        }
    }
}

impl Launcher {
    /// [`Self::destroy`] that leaves the emptied kill cgroups for
    /// [`Self::remove_killed`]: every process is gone when it returns.
    pub fn kill(&self, id: &ContainerId, init_pid: Option<i32>) -> Result<(), LaunchError> {
        match self {
            Self::Linux(l) => l.kill(id, init_pid),
            Self::Posix => self.destroy(id, init_pid),
        }
    }

    /// Removes what [`Self::kill`] left (idempotent).
    pub fn remove_killed(&self, id: &ContainerId) -> Result<(), LaunchError> {
        match self {
            Self::Linux(l) => l.remove_killed(id),
            Self::Posix => Ok(()),
        }
    }
}

/// What to give the init helper.
pub struct InitSpec<'a> {
    /// The phobos binary to exec as `phobos init`.
    pub exe: &'a Path,
    /// The container's runtime directory.
    pub runtime_dir: &'a Path,
    pub clone_flags: libc::c_int,
    /// `None` gives the container `/dev/null`.
    pub stdin: Option<&'a OwnedFd>,
    pub stdout: &'a File,
    pub stderr: &'a File,
    pub init_lock: &'a File,
    /// A cgroup2 directory to create init in (`CLONE_INTO_CGROUP`).
    pub cgroup: Option<&'a OwnedFd>,
    /// v1 cgroups' `tasks` files for init to be in before its exec: the
    /// cloned child (or the init spawner, before it clones init) writes
    /// `0` to each (see `join_own_cgroups`).
    pub join_cgroups: &'a [File],
    /// More for a spawner to join before it clones init, never a cloned
    /// child (`JoinFiles::own_memory`: cpuset).
    pub join_own_memory: &'a [File],
    /// `phobos exec`: join this init's namespaces and run this spec
    /// instead (see [`INIT_JOIN_ENV`]).
    pub join: Option<(i32, &'a str)>,
    /// A socket for init to send the command's terminal master on (fd
    /// [`INIT_TTY_FD`]); `None` without a terminal.
    pub tty: Option<&'a OwnedFd>,
}

/// A forked init helper, blocked until [`ForkedInit::release`].
#[derive(Debug)]
pub struct ForkedInit {
    pub pid: i32,
    /// A pidfd for init, from `CLONE_PIDFD` when available.
    pub pidfd: Option<OwnedFd>,
    /// Whether init was created inside its cgroup.
    pub born_in_cgroup: bool,
    /// Init's mount namespace, held open by a long-running face (see
    /// [`zygote::hold_mount_namespace`]); `None` otherwise.
    pub mount_ns: Option<OwnedFd>,
    /// Init has nothing to set up after its release (no root filesystem
    /// to enter, no `/etc` files to bind): with `ready`, the release
    /// returns without waiting for it.
    pub ready_before_release: bool,
    sync: File,
    /// Closes when the exec of `phobos init` succeeded; carries the errno
    /// otherwise. Read only at release, so the exec overlaps isolation.
    exec_report: File,
    /// The socket of the spawner that cloned init, whose other end init
    /// closes once its set-up before the release is done
    /// (`spawner::serve`).
    ready: Option<OwnedFd>,
    exe: String,
}

impl ForkedInit {
    /// Confirms `phobos init` was exec'd, then lets it start the command
    /// (the last step of a launch). Returns once init has closed its end
    /// of the pipe: after entering the container's root filesystem (a
    /// container is joined, by `exec` or a nested container, only once it
    /// is RUNNING, so it is never joined before its root is in place), or
    /// on its exit; a `phobos exec` helper closes it at once. An
    /// init a spawner cloned that has nothing to do after its release is
    /// joinable once its set-up is done, which it says before: the
    /// release then waits for that (usually long past) instead, and not
    /// for init to wake up and answer.
    pub fn release(mut self) -> Result<(), LaunchError> {
        let mut report = [0u8; 4];
        let n = read_full(&mut self.exec_report, &mut report)
            .map_err(sys("read the init helper's exec status"))?;
        if n == 4 {
            return Err(LaunchError::ExecInit {
                exe: self.exe,
                source: io::Error::from_raw_os_error(i32::from_ne_bytes(report)),
            });
        }
        // Its end closes when init is set up, or exits: either way the
        // write below then tells which.
        if let Some(ready) = &self.ready {
            wait_for_events(ready.as_fd(), libc::POLLIN, READY_PATIENCE);
        }
        self.sync.write_all(&[1]).map_err(|e| {
            if e.kind() == io::ErrorKind::BrokenPipe {
                LaunchError::InitGone
            } else {
                LaunchError::Sys {
                    op: "release the init helper",
                    source: e,
                }
            }
        })?;
        if self.ready.is_none() || !self.ready_before_release {
            wait_readers_gone(&self.sync, READY_PATIENCE);
        }
        Ok(())
    }
}

/// How long a release waits for init to be ready before recording RUNNING
/// anyway (init's own failure, if any, is in its status).
const READY_PATIENCE: Duration = Duration::from_secs(30);

/// Waits until the read end of the pipe whose write end is `pipe` has no
/// reader left (poll(2) reports `POLLERR` on a pipe's write end then; no
/// event is asked for, so the free room, `POLLOUT`, does not wake us), or
/// until `patience` has passed.
fn wait_readers_gone(pipe: &File, patience: Duration) {
    wait_for_events(pipe.as_fd(), 0, patience);
}

/// Waits until `fd` reports one of `events` (or an error or hang-up,
/// which poll(2) always reports), or until `patience` has passed.
fn wait_for_events(fd: std::os::fd::BorrowedFd<'_>, events: libc::c_short, patience: Duration) {
    let deadline = std::time::Instant::now() + patience;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events,
            revents: 0,
        };
        let ms = libc::c_int::try_from(left.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd for the duration of the call.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc > 0 || left.is_zero() {
            return;
        }
        if rc < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

/// The most v1 cgroups a pre-started or spawned init is handed to join
/// (a host has a dozen v1 controllers at most).
pub const MAX_JOINED_CGROUPS: usize = 16;

/// Moves this process, single-threaded, into the v1 cgroups whose `tasks`
/// files are `tasks` (opened by the face,
/// `phobos_cgroups::Cgroup::open_tasks_to_join`): a thread writing `0`
/// there moves itself without the kernel's global threadgroup lock and
/// its RCU grace-period wait. A move that fails is left to the face,
/// whose isolate step moves init into every cgroup it is not in.
/// Async-signal-safe (only write(2)), for the child between `clone` and
/// `execve` too.
fn join_own_cgroups(tasks: impl IntoIterator<Item = RawFd>) {
    for fd in tasks {
        // SAFETY: write(2) of one byte from a static buffer to a
        // descriptor the caller holds open.
        unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
    }
}

/// `RUST_LOG=…` for a `phobos init` we start, when the face has one.
fn log_env() -> Option<CString> {
    std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| CString::new(format!("RUST_LOG={v}")).ok())
}

fn pipe() -> Result<(OwnedFd, OwnedFd), LaunchError> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(sys("create a pipe")(io::Error::last_os_error()));
    }
    // SAFETY: pipe2 succeeded, so both fds are new and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn cstring(bytes: &[u8], what: &'static str) -> Result<CString, LaunchError> {
    CString::new(bytes).map_err(|_| LaunchError::Sys {
        op: what,
        source: io::Error::new(io::ErrorKind::InvalidInput, "contains a NUL byte"),
    })
}

/// `struct clone_args` of clone3(2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_PIDFD: u64 = 0x1000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Clones the init helper into the requested namespaces (and cgroup) and
/// execs it. Returns at once; [`ForkedInit::release`] reports exec errors.
pub fn spawn_init(spec: &InitSpec<'_>) -> Result<ForkedInit, LaunchError> {
    // Everything the child touches is built here, before clone.
    let exe = cstring(
        spec.exe.as_os_str().as_bytes(),
        "use the phobos binary path",
    )?;
    let dir_env = cstring(
        &[
            INIT_DIR_ENV.as_bytes(),
            b"=",
            spec.runtime_dir.as_os_str().as_bytes(),
        ]
        .concat(),
        "use the runtime directory path",
    )?;
    let join_env = match spec.join {
        Some((pid, file)) => Some(cstring(
            format!("{INIT_JOIN_ENV}={pid} {file}").as_bytes(),
            "name the exec spec",
        )?),
        None => None,
    };
    let devnull;
    let stdin_fd = match spec.stdin {
        Some(fd) => fd.as_raw_fd(),
        None => {
            devnull = File::open("/dev/null").map_err(sys("open /dev/null"))?;
            devnull.as_raw_fd()
        }
    };
    let (sync_read, sync_write) = pipe()?;
    let cloned = clone_init(
        &exe,
        &[Some(&dir_env), join_env.as_ref()],
        [
            stdin_fd,
            spec.stdout.as_raw_fd(),
            spec.stderr.as_raw_fd(),
            sync_read.as_raw_fd(),
            spec.init_lock.as_raw_fd(),
            spec.tty.map_or(-1, |fd| fd.as_raw_fd()),
        ],
        spec.clone_flags,
        spec.cgroup,
        spec.join_cgroups,
    )?;
    drop(sync_read);
    Ok(ForkedInit {
        pid: cloned.pid,
        pidfd: cloned.pidfd,
        born_in_cgroup: cloned.born_in_cgroup,
        mount_ns: None,
        ready_before_release: false,
        sync: File::from(sync_write),
        exec_report: cloned.exec_report,
        ready: None,
        exe: spec.exe.display().to_string(),
    })
}

/// A `phobos init` just cloned and exec'd (or failing to).
pub(super) struct Cloned {
    pid: i32,
    pidfd: Option<OwnedFd>,
    born_in_cgroup: bool,
    /// Closes when the exec succeeded; carries the errno otherwise.
    exec_report: File,
}

/// Clones `exe init` into `clone_flags`'s namespaces (and `cgroup`) with
/// `sources` as its descriptors 0..=5 (-1: none) and `env` (plus
/// `RUST_LOG`) as its environment, and execs it.
fn clone_init(
    exe: &CString,
    env: &[Option<&CString>],
    sources: [RawFd; 6],
    clone_flags: libc::c_int,
    cgroup: Option<&OwnedFd>,
    join_cgroups: &[File],
) -> Result<Cloned, LaunchError> {
    let init_arg = c"init";
    let log_env = log_env();
    let argv = [exe.as_ptr(), init_arg.as_ptr(), std::ptr::null()];
    let mut envp: Vec<*const libc::c_char> = env.iter().flatten().map(|e| e.as_ptr()).collect();
    envp.extend(log_env.as_ref().map(|e| e.as_ptr()));
    envp.push(std::ptr::null());
    let (err_read, err_write) = pipe()?;
    let mut join = [-1; MAX_JOINED_CGROUPS];
    for (slot, file) in join.iter_mut().zip(join_cgroups) {
        *slot = file.as_raw_fd();
    }
    let fds = ChildFds {
        sources,
        join,
        err_pipe: err_write.as_raw_fd(),
    };

    // Init must start with every signal blocked: until it reads them from
    // its signalfd, a signal with the default action sent to the init of a
    // pid namespace is silently dropped by the kernel. The mask survives
    // execve, so block everything around the clone and restore it after.
    let all = nix::sys::signal::SigSet::all();
    let mut saved = nix::sys::signal::SigSet::empty();
    nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&all),
        Some(&mut saved),
    )
    .map_err(|e| sys("block signals")(e.into()))?;
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: clone_flags as u64 | CLONE_PIDFD,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(cgroup) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = cgroup.as_raw_fd() as u64;
    }
    // First without copying this process's memory (vfork-style, as
    // posix_spawn does); then, should the kernel refuse that combination,
    // fork-style.
    let start = ChildStart {
        fds: &fds,
        exe: exe.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
    };
    let mut ret = clone3_vfork(&mut args, &start);
    if ret < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        args.stack = 0;
        args.stack_size = 0;
        // SAFETY: clone3(2) without CLONE_VM and with no stack behaves
        // like fork(2): the child gets a copy of the address space and
        // continues on a copy of this stack, calling only async-signal-safe
        // functions on data built above.
        ret = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &mut args as *mut CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        };
    }
    let mut born_in_cgroup = cgroup.is_some();
    if ret < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
        // Kernels before 5.3: plain clone, and the launcher moves init.
        born_in_cgroup = false;
        pidfd = -1;
        // SAFETY: as above, for raw clone(2) with fork semantics.
        ret = unsafe {
            libc::syscall(
                libc::SYS_clone,
                (clone_flags | libc::SIGCHLD) as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
    }
    if ret == 0 {
        // SAFETY: we are the freshly cloned child; see `child_exec`.
        unsafe { child_exec(&fds, exe.as_ptr(), argv.as_ptr(), envp.as_ptr()) }
    }
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&saved),
        None,
    );
    if ret < 0 {
        return Err(sys("clone the init helper")(io::Error::last_os_error()));
    }
    drop(err_write);
    Ok(Cloned {
        pid: ret as i32,
        // SAFETY: with CLONE_PIDFD the kernel stored a new fd we now own.
        pidfd: (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) }),
        born_in_cgroup,
        exec_report: File::from(err_read),
    })
}

fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// What the vfork-style child of [`clone3_vfork`] runs [`child_exec`] with.
struct ChildStart<'a> {
    fds: &'a ChildFds,
    exe: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
}

/// Stack for the vfork-style child until its `execve`: it only makes
/// system calls (pages it does not touch cost nothing).
const CHILD_STACK_SIZE: usize = 64 * 1024;

/// clone3(2) with `CLONE_VM | CLONE_VFORK` added to `args`: the child runs
/// [`child_exec`] on a stack of its own in this process's memory until it
/// execs, and this thread sleeps meanwhile. Neither copies page tables nor
/// takes copy-on-write faults afterwards, which a fork of a large
/// multi-threaded process (the agent) pays on every launch. clone3 has no
/// libc wrapper that runs a function on the new stack, so the system call
/// is made here: the child, on its new stack, calls the entry point and
/// never returns. Returns the pid, or -1 with errno set. Fork-style
/// (returns -1 with `EINVAL`) where this is not built.
fn clone3_vfork(args: &mut CloneArgs, start: &ChildStart<'_>) -> libc::c_long {
    #[cfg(target_arch = "x86_64")]
    {
        // 16-byte aligned top: the ABI's alignment before a call.
        let mut stack = vec![0u128; CHILD_STACK_SIZE / 16];
        args.flags |= (libc::CLONE_VM | libc::CLONE_VFORK) as u64;
        args.stack = stack.as_mut_ptr() as u64;
        args.stack_size = CHILD_STACK_SIZE as u64;
        let ret: libc::c_long;
        // SAFETY: the kernel starts the child with its stack pointer at the
        // top of `stack`, which outlives the child's use of it because
        // CLONE_VFORK suspends this thread until the child has exec'd or
        // exited; the child keeps every register but rax (0), so it calls
        // `child_start(start)` and never returns (`child_exec` execs or
        // `_exit`s; ud2 guards the impossible). `start` and everything it
        // points at were built before and live in this suspended frame.
        // The parent resumes after `syscall` with rax = pid or -errno;
        // rcx and r11 are clobbered by `syscall`; nothing of the caller's
        // stack is used.
        unsafe {
            std::arch::asm!(
                "syscall",
                "test rax, rax",
                "jnz 2f",
                "mov rdi, r12",
                "call r13",
                "ud2",
                "2:",
                inlateout("rax") libc::SYS_clone3 => ret,
                in("rdi") args as *mut CloneArgs,
                in("rsi") std::mem::size_of::<CloneArgs>(),
                in("r12") start as *const ChildStart<'_>,
                in("r13") child_start as extern "C" fn(*const ChildStart<'_>) -> !,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        drop(stack);
        args.flags &= !((libc::CLONE_VM | libc::CLONE_VFORK) as u64);
        if ret < 0 {
            // SAFETY: errno of this thread, set as a libc call would.
            unsafe { *libc::__errno_location() = -ret as libc::c_int };
            return -1;
        }
        ret
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (args, start);
        // SAFETY: errno of this thread.
        unsafe { *libc::__errno_location() = libc::EINVAL };
        -1
    }
}

/// The vfork-style child's entry point, on its own stack.
#[cfg(target_arch = "x86_64")]
extern "C" fn child_start(start: *const ChildStart<'_>) -> ! {
    // SAFETY: `clone3_vfork` passes a `ChildStart` that outlives the
    // child's use of it (the parent sleeps until the exec), whose
    // pointers were built as `child_exec` requires.
    unsafe {
        let start = &*start;
        child_exec(start.fds, start.exe, start.argv, start.envp)
    }
}

/// Descriptors the child arranges: sources for fds 0..=5 (5 when not -1)
/// and the error pipe.
struct ChildFds {
    sources: [RawFd; 6],
    /// v1 `tasks` files the child joins before anything else (see
    /// [`join_own_cgroups`]); -1 for none.
    join: [RawFd; MAX_JOINED_CGROUPS],
    err_pipe: RawFd,
}

/// The child's side of `spawn_init`. Never returns.
///
/// # Safety
/// Must only be called in the child right after `clone`; every pointer must
/// point at NUL-terminated data (and NULL-terminated arrays) built before.
unsafe fn child_exec(
    fds: &ChildFds,
    exe: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
) -> ! {
    // Into the v1 cgroups first, while their descriptors are where the
    // parent opened them: this child is a thread group of its own, so
    // init is exec'd, and its memory charged, inside them.
    join_own_cgroups(fds.join.iter().copied().filter(|fd| *fd >= 0));
    // Move every source (and the error pipe) above the fixed targets first,
    // so no dup2 below can clobber a source that is still needed.
    const HIGH: libc::c_int = 16;
    let fail = |err_pipe: RawFd| -> ! {
        // SAFETY: errno location and write/_exit are async-signal-safe.
        unsafe {
            let errno = *libc::__errno_location();
            let bytes = errno.to_ne_bytes();
            libc::write(err_pipe, bytes.as_ptr().cast(), bytes.len());
            libc::_exit(127)
        }
    };
    // SAFETY: fcntl on an fd we own in this process.
    let err_pipe = unsafe { libc::fcntl(fds.err_pipe, libc::F_DUPFD_CLOEXEC, HIGH) };
    if err_pipe < 0 {
        // SAFETY: as above.
        unsafe { libc::_exit(127) }
    }
    let mut high = [-1; 6];
    for (slot, &src) in high.iter_mut().zip(fds.sources.iter()) {
        if src < 0 {
            continue;
        }
        // SAFETY: fcntl duplicates an fd we hold.
        let fd = unsafe { libc::fcntl(src, libc::F_DUPFD_CLOEXEC, HIGH) };
        if fd < 0 {
            fail(err_pipe);
        }
        *slot = fd;
    }
    // SAFETY: setsid, dup2 and execve are async-signal-safe; the pointers
    // were built before clone and stay valid in this copy of the memory.
    unsafe {
        if libc::setsid() < 0 {
            fail(err_pipe);
        }
        let mut next_free = 0;
        for (target, &src) in high.iter().enumerate() {
            if src < 0 {
                continue;
            }
            if libc::dup2(src, target as libc::c_int) < 0 {
                fail(err_pipe);
            }
            next_free = target as libc::c_int + 1;
        }
        // Nothing the caller left open (a shell's `exec 7<secret`) may
        // reach init or the command. Every descriptor above the fixed ones
        // but the error pipe is closed now, not at the exec: the clone
        // copied the descriptors of a multi-threaded caller, and a copy of
        // another thread's lock (a container's operation lock) must not
        // outlive that thread's release of it by the time the exec takes.
        // Where close_range(2) is missing they close at the exec.
        close_except(next_free, err_pipe);
        libc::execve(exe, argv, envp);
    }
    fail(err_pipe)
}

/// Closes every descriptor from `first` up except `keep` (> `first`):
/// `close_range(2)` (Linux 5.9); else marks them close-on-exec.
/// Async-signal-safe, for the child between `clone` and `execve`.
fn close_except(first: RawFd, keep: RawFd) {
    // SAFETY: close_range(2) closes descriptors of this process (the
    // child's own copy of the table) that nothing in it uses any more.
    let closed = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            (keep - 1) as libc::c_uint,
            0 as libc::c_uint,
        ) == 0
            && libc::syscall(
                libc::SYS_close_range,
                (keep + 1) as libc::c_uint,
                libc::c_uint::MAX,
                0 as libc::c_uint,
            ) == 0
    };
    if !closed {
        close_from_on_exec(first);
    }
}

/// Marks every descriptor from `first` up close-on-exec: one
/// `close_range(2)` with `CLOSE_RANGE_CLOEXEC` (Linux 5.11), else
/// `F_SETFD` on each number below the descriptor limit. Async-signal-safe
/// (plain system calls), for the child between `clone` and `execve`.
pub fn close_from_on_exec(first: RawFd) {
    // SAFETY: close_range(2) only changes descriptor flags of this process.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc == 0 {
        return;
    }
    // ENOSYS (before 5.9) or EINVAL (5.9/5.10, without the flag).
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct we pass.
    let max = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur.min(libc::c_int::MAX as libc::rlim_t) as RawFd
    } else {
        1 << 20
    };
    for fd in first..max {
        // SAFETY: F_SETFD on a number that may not be open fails harmlessly.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
}
