//! An init spawner, for a face that launches once (`phobos run`): a
//! `phobos init` started at the face's start, in no namespace of a
//! container and with nothing of one (its stdio `/dev/null`, its fd 3 a
//! `SOCK_SEQPACKET` socket), so that its start-up runs while the face
//! parses, plans and makes the container's record, sandbox and cgroup,
//! instead of after them. The run forks it before anything else
//! ([`Spawner::fork`]: no exec, no second glibc start-up); a face that finds no
//! such spawner clones and execs one ([`Spawner::start`]). A long-running
//! face (the agent) has its [`factory`] make one ahead of each plain
//! launch, already in the mount, ipc and uts namespaces the launch will
//! use, which init then shares (`launcher::zygote`).
//!
//! At the launch the face sends it what [`super::spawn_init`] would have
//! cloned an init with: stdin, the sandbox's stdout and stderr, the sync
//! pipe's read end and the init lock (`SCM_RIGHTS`), the cgroup2 directory
//! to create init in, the v1 cgroups' `tasks` files, the namespaces' clone
//! flags and the runtime directory. The spawner moves itself into those v1
//! cgroups (writing `0`: no global threadgroup lock, so no RCU
//! grace-period wait for the face) and then clones the container's init:
//! `clone3(2)` with those namespaces, `CLONE_INTO_CGROUP` and
//! `CLONE_PARENT`, so init is the face's child, born in its cgroups and in
//! fresh namespaces, exactly as one the face cloned and moved. The clone
//! runs init's code at once, without an exec: the spawner is a freshly exec'd,
//! single-threaded `phobos init` whose memory is init's own start-up
//! (DESIGN.md's "clone, then exec" rule is about processes that may have
//! threads). Init does not even copy that memory: the clone shares it
//! (`CLONE_VM`, on the same stack) and the spawner exits at once without
//! touching it, leaving it to init, which answers the face with its own
//! pid (the kernel stores it for the spawner's pid namespace,
//! `CLONE_PARENT_SETTID`); see [`clone_init`]. The spawner answers only
//! when the clone failed (its errno), or when it had to fork init (where
//! sharing is refused or not built). It is used once.
//!
//! Nothing is left behind: before the request the spawner's only tie is
//! its end of the socket, and it exits when the socket reports
//! end-of-file, which the kernel does as soon as the face exits, however
//! it dies. An unused spawner is killed and reaped when its handle drops.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

pub mod factory;
mod fork;

use super::seqpacket::{recv, send};
use super::{
    CLONE_INTO_CGROUP, CloneArgs, ForkedInit, InitSpec, LaunchError, cstring, pipe, read_full, sys,
};
use crate::init_mounts::Premount;

/// Set in a spawner's environment, to the runtime directory whose
/// container it clones an init for (which names it, and that init, for
/// `ps` and the tests): `phobos init` waits on fd
/// [`super::INIT_SYNC_FD`], a socket, for that container (see [`serve`]).
pub const INIT_SPAWNER_ENV: &str = "PHOBOS_INIT_SPAWNER";

/// The descriptors a request carries: stdin, stdout, stderr, the sync
/// pipe, the init lock (init's 0..=4), then the cgroup directory (or a
/// placeholder when init is not created in a cgroup).
const REQUEST_FDS: usize = 6;

/// The longest runtime directory path a request carries.
const PATH_MAX: usize = 4096;

/// The request's fixed header: the clone flags (8 bytes, little-endian),
/// then 1 when the sixth descriptor is a cgroup to create init in.
const HEADER: usize = 9;

/// A started spawner, waiting for its container.
#[derive(Debug)]
pub struct Spawner {
    pid: i32,
    /// The binary it runs and the runtime directory it names (its
    /// environment): a face that started it before reading its settings
    /// uses it only where they are the launch's own ([`Self::serves`]).
    exe: PathBuf,
    runtime_dir: PathBuf,
    pidfd: Option<OwnedFd>,
    sock: OwnedFd,
    exec_report: Option<File>,
    /// Whether it was sent its container (it then exits by itself).
    used: bool,
    /// Whether it was reaped already (right after its answer).
    reaped: bool,
    /// The namespaces it was cloned into (by an agent's factory, see
    /// [`factory`]), which init shares instead of getting new ones, and
    /// the mounts it made in them.
    premade: libc::c_int,
    premount: Premount,
}

impl Spawner {
    /// Clones and execs `exe init` as a spawner for a container of
    /// `runtime_dir`.
    pub fn start(exe: &Path, runtime_dir: &Path) -> Result<Self, LaunchError> {
        let (cloned, ours) = clone_waiting_init(exe, runtime_dir)?;
        Ok(Self {
            pid: cloned.pid,
            exe: exe.to_owned(),
            runtime_dir: runtime_dir.to_owned(),
            pidfd: cloned.pidfd,
            sock: ours,
            exec_report: Some(cloned.exec_report),
            used: false,
            reaped: false,
            premade: 0,
            premount: Premount::default(),
        })
    }

    /// A spawner that is a fork, our unreaped child `pid` (so the pid is
    /// its own), made for `runtime_dir` in the `premade` namespaces with
    /// `premount`'s mounts; `sock` our end of its socket. Killed and
    /// reaped when this fails.
    fn forked(
        pid: i32,
        exe: &Path,
        runtime_dir: &Path,
        sock: OwnedFd,
        premade: libc::c_int,
        premount: Premount,
    ) -> Result<Self, LaunchError> {
        let pidfd = crate::sys::pidfd_open(pid).ok();
        // No exec to report on: the face reads end-of-file at once.
        let (report, report_write) = pipe().inspect_err(|_| {
            super::seqpacket::kill_and_reap(pid, pidfd.as_ref());
        })?;
        drop(report_write);
        Ok(Self {
            pid,
            exe: exe.to_owned(),
            runtime_dir: runtime_dir.to_owned(),
            pidfd,
            sock,
            exec_report: Some(File::from(report)),
            used: false,
            reaped: false,
            premade,
            premount,
        })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Whether it runs `exe` and was started for `runtime_dir`'s
    /// containers.
    pub fn serves(&self, exe: &Path, runtime_dir: &Path) -> bool {
        self.exe == exe && self.runtime_dir == runtime_dir
    }

    /// Whether this spawner was already sent its container.
    pub fn used(&self) -> bool {
        self.used
    }

    /// Whether it was made for a launch into `clone_flags`' namespaces
    /// whose mounts made ahead are `premount`: it is in the mount, ipc and
    /// uts namespaces of those flags (new ones, its own) and no others.
    pub fn made_for(&self, clone_flags: libc::c_int, premount: Premount) -> bool {
        self.premade == clone_flags & factory::PREMADE && self.premount == premount
    }

    /// Has the spawner clone the init of `spec`'s container (as
    /// [`super::spawn_init`] would), born in `spec.cgroup` when given.
    /// `spec.tty` and `spec.join` are not carried: the caller sends only
    /// launches without them.
    pub fn spawn(&mut self, spec: &InitSpec<'_>) -> Result<ForkedInit, LaunchError> {
        if self.used || spec.tty.is_some() || spec.join.is_some() {
            return Err(sys("use the init spawner")(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the spawner was used already or cannot carry this launch",
            )));
        }
        let exe = spec.exe.display().to_string();
        // Its exec finished long ago (it ran while the face worked).
        let mut report = self
            .exec_report
            .take()
            .expect("a spawner's exec is checked once");
        let mut errno = [0u8; 4];
        let n =
            read_full(&mut report, &mut errno).map_err(sys("read the spawner's exec status"))?;
        if n == 4 {
            self.used = true;
            return Err(LaunchError::ExecInit {
                exe,
                source: io::Error::from_raw_os_error(i32::from_ne_bytes(errno)),
            });
        }
        let path = spec.runtime_dir.as_os_str().as_bytes();
        if path.len() > PATH_MAX {
            return Err(sys("hand the container to the init spawner")(
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "runtime directory path too long",
                ),
            ));
        }
        let devnull = File::open("/dev/null").map_err(sys("open /dev/null"))?;
        let stdin = spec.stdin.map_or(devnull.as_fd(), AsFd::as_fd);
        let (sync_read, sync_write) = pipe()?;
        let mut fds: Vec<BorrowedFd<'_>> = vec![
            stdin,
            spec.stdout.as_fd(),
            spec.stderr.as_fd(),
            sync_read.as_fd(),
            spec.init_lock.as_fd(),
            spec.cgroup.map_or(devnull.as_fd(), AsFd::as_fd),
        ];
        fds.extend(
            spec.join_cgroups
                .iter()
                .chain(spec.join_own_memory)
                .take(super::MAX_JOINED_CGROUPS)
                .map(AsFd::as_fd),
        );
        let mut message = Vec::with_capacity(HEADER + path.len());
        // Init shares the namespaces the spawner was made in.
        let clone_flags = spec.clone_flags & !self.premade;
        message.extend_from_slice(&(clone_flags as u32 as u64).to_le_bytes());
        message.push(u8::from(spec.cgroup.is_some()));
        message.extend_from_slice(path);
        self.used = true;
        phobos_tty::pty::send_fds(self.sock.as_fd(), &fds)
            .and_then(|()| send(&self.sock, &message))
            .map_err(sys("hand the container to the init spawner"))?;
        drop(sync_read);
        let mut answer = [0u8; 4];
        let n = recv(&self.sock, &mut answer).map_err(sys("hear from the init spawner"))?;
        if n != 4 {
            return Err(sys("hear from the init spawner")(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "it exited without an answer",
            )));
        }
        let pid = i32::from_le_bytes(answer);
        // It exits right after the clone (without a word when init took
        // its memory over): reaped now, so init is the memory's only user
        // (and its owner, whose cgroup is charged for it) before the
        // launch goes on.
        super::seqpacket::reap(self.pid);
        self.reaped = true;
        if pid <= 0 {
            return Err(sys("clone the init helper")(io::Error::from_raw_os_error(
                -pid,
            )));
        }
        // Init is our child (CLONE_PARENT) and not reaped: its pid is
        // still its own.
        let pidfd = crate::sys::pidfd_open(pid).ok();
        // Init closes its copy of the socket once it is set up (the
        // spawner's went with it).
        let ready = self
            .sock
            .try_clone()
            .map_err(sys("keep the init spawner's socket"))?;
        Ok(ForkedInit {
            pid,
            pidfd,
            born_in_cgroup: spec.cgroup.is_some(),
            mount_ns: None,
            ready_before_release: false,
            sync: File::from(sync_write),
            // At end-of-file already: the exec was the spawner's.
            exec_report: report,
            ready: Some(ready),
            exe,
        })
    }
}

impl Drop for Spawner {
    /// An unused spawner is killed; either way it is reaped (a used one
    /// exits right after its answer).
    fn drop(&mut self) {
        match (self.used, self.reaped) {
            (_, true) => {}
            (true, false) => super::seqpacket::reap(self.pid),
            (false, false) => super::seqpacket::kill_and_reap(self.pid, self.pidfd.as_ref()),
        }
    }
}

/// Clones and execs `exe init` with `INIT_SPAWNER_ENV=runtime_dir` in its
/// environment, its stdio `/dev/null` and its fd 3 its end of a new
/// socket pair, where it waits for its container. Returns it and our end.
fn clone_waiting_init(
    exe: &Path,
    runtime_dir: &Path,
) -> Result<(super::Cloned, OwnedFd), LaunchError> {
    let exe_c = cstring(exe.as_os_str().as_bytes(), "use the phobos binary path")?;
    let env = spawner_env(runtime_dir)?;
    let devnull = File::open("/dev/null").map_err(sys("open /dev/null"))?;
    let (ours, theirs) = super::seqpacket::seqpacket_pair()?;
    let null = devnull.as_raw_fd();
    let cloned = super::clone_init(
        &exe_c,
        &[Some(&env)],
        [null, null, null, theirs.as_raw_fd(), null, -1],
        0,
        None,
        &[],
    )?;
    Ok((cloned, ours))
}

/// `INIT_SPAWNER_ENV=runtime_dir`: what names a process a spawner for
/// that directory's containers, exec'd or forked.
fn spawner_env(runtime_dir: &Path) -> Result<std::ffi::CString, LaunchError> {
    cstring(
        &[
            INIT_SPAWNER_ENV.as_bytes(),
            b"=",
            runtime_dir.as_os_str().as_bytes(),
        ]
        .concat(),
        "use the runtime directory path",
    )
}

/// One container's request, as the spawner received it.
struct Request {
    fds: [OwnedFd; REQUEST_FDS],
    /// v1 `tasks` files to join before the clone (init inherits them).
    join: Vec<OwnedFd>,
    clone_flags: u64,
    in_cgroup: bool,
    dir: PathBuf,
}

fn receive(sock: &OwnedFd) -> io::Result<Option<Request>> {
    let Some((fds, join)) =
        phobos_tty::pty::recv_fds_and_more::<REQUEST_FDS>(sock.as_fd(), super::MAX_JOINED_CGROUPS)?
    else {
        return Ok(None);
    };
    let mut buf = vec![0u8; HEADER + PATH_MAX + 1];
    let n = recv(sock, &mut buf)?;
    if n <= HEADER || n > HEADER + PATH_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a request without a valid runtime directory ({n} bytes)"),
        ));
    }
    let mut flags = [0u8; 8];
    flags.copy_from_slice(&buf[..8]);
    let in_cgroup = buf[8] == 1;
    buf.truncate(n);
    let dir = PathBuf::from(std::ffi::OsString::from_vec(buf.split_off(HEADER)));
    Ok(Some(Request {
        fds,
        join,
        clone_flags: u64::from_le_bytes(flags),
        in_cgroup,
        dir,
    }))
}

/// The namespaces a request may ask for (nothing else reaches clone3).
const NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUSER) as u64;

/// In `phobos init` started as a spawner (every signal blocked): waits for
/// the container on the socket at fd [`super::INIT_SYNC_FD`] and clones
/// its init. Returns, in that init, its runtime directory with its
/// descriptors at 0..=4 (as a cloned init finds them) and the socket,
/// moved above them, which init closes once it is set up (the face's
/// release waits for that); in the spawner, `None` once it answered or
/// when the face went without a request.
pub fn serve() -> Result<Option<(PathBuf, OwnedFd)>, String> {
    // SAFETY: the face put the spawner's socket at fd 3 and nothing else
    // in this process owns that number.
    let sock = unsafe { OwnedFd::from_raw_fd(super::INIT_SYNC_FD) };
    let request = receive(&sock).map_err(|e| format!("failed to receive a container: {e}"))?;
    let Some(mut request) = request else {
        return Ok(None);
    };
    // Init is cloned into the v1 cgroups this process is in.
    super::join_own_cgroups(request.join.iter().map(AsRawFd::as_raw_fd));
    request.join.clear();
    let mut args = CloneArgs {
        flags: (request.clone_flags & NAMESPACE_FLAGS) | libc::CLONE_PARENT as u64,
        // With CLONE_PARENT the kernel refuses one: the child gets ours,
        // SIGCHLD (the face cloned us with it), and goes to our parent.
        exit_signal: 0,
        ..CloneArgs::default()
    };
    if request.in_cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = request.fds[REQUEST_FDS - 1].as_raw_fd() as u64;
    }
    match clone_init(&mut args) {
        Side::Init { answer } => {
            if let Some(pid) = answer {
                // The spawner is gone without a word: init answers.
                send(&sock, &pid.to_le_bytes())
                    .map_err(|e| format!("failed to answer the face: {e}"))?;
            }
            become_init(sock, request).map(Some)
        }
        Side::Spawner(answer) => {
            // The face waits for this answer; our copies of the
            // descriptors go with us.
            send(&sock, &answer.to_le_bytes())
                .map_err(|e| format!("failed to answer the face: {e}"))?;
            Ok(None)
        }
    }
}

/// Which process [`clone_init`] returned in.
enum Side {
    /// The container's init. `answer` is its pid as the face sees it, for
    /// init to send, when the spawner left without answering (init took
    /// over its memory); `None` when the spawner answers (init has a copy).
    Init { answer: Option<i32> },
    /// The spawner, after a fork-style clone: init's pid, or `-errno` when
    /// the clone failed.
    Spawner(i32),
}

/// Clones the container's init with `args`, which runs on in this
/// process's memory as it is, without an exec.
///
/// First the cheap way: `CLONE_VM` without a stack of its own (see
/// [`clone3_and_leave`]), so the child continues on this very stack and
/// memory and this process, the spawner, exits at once: no page tables are
/// copied, init takes no copy-on-write fault for each page it writes, and
/// the spawner's exit has no address space to tear down (session 9 paid
/// about 75 page faults and 1 ms of CPU per launch for the copy). The
/// kernel stores init's pid, as this pid namespace (the face's) numbers it,
/// at `parent_tid` before init runs, and init sends it. Fork-style (a copy
/// of the memory, the spawner answering) where that is refused or not
/// built.
fn clone_init(args: &mut CloneArgs) -> Side {
    let mut pid: libc::pid_t = 0;
    let flags = args.flags;
    args.flags |= (libc::CLONE_VM | libc::CLONE_PARENT_SETTID) as u64;
    args.parent_tid = &raw mut pid as u64;
    // SAFETY: see `clone3_and_leave`: this process is single-threaded (a
    // freshly exec'd `phobos init` that started no thread) with every
    // signal blocked, and `args` and `pid` are live.
    let ret = unsafe { clone3_and_leave(args) };
    if ret == 0 {
        // SAFETY: the kernel wrote `pid` through `parent_tid` before this
        // child first ran; read it as memory the compiler did not see
        // written.
        let pid = unsafe { std::ptr::read_volatile(&raw const pid) };
        return Side::Init { answer: Some(pid) };
    }
    if ret != -libc::c_long::from(libc::EINVAL) {
        return Side::Spawner(ret as i32);
    }
    args.flags = flags;
    args.parent_tid = 0;
    // SAFETY: clone3(2) without CLONE_VM and with no stack behaves like
    // fork(2); this process is single-threaded, so the child may go on
    // running Rust code on its copy of the memory.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut *args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        0 => Side::Init { answer: None },
        r if r > 0 => Side::Spawner(r as i32),
        _ => Side::Spawner(
            -io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO),
        ),
    }
}

/// clone3(2) with `args` as they are (`CLONE_VM` among them, no stack):
/// returns in the child (0), or with `-errno` when the clone failed; when
/// it succeeded this process, the parent, ends there and then.
///
/// The child continues on this stack and in this memory, so from the
/// clone on the parent must not touch either: it makes three system calls
/// with register arguments only and no memory access, and exits.
/// `set_tid_address(NULL)` keeps the kernel from clearing glibc's
/// thread-id word (in the thread block the two share) and waking a futex
/// there at the exit; `set_robust_list(NULL)` keeps it from walking the
/// shared robust-futex list; `exit_group(0)`. The face reaps it. No signal
/// can make the kernel write a frame on the shared stack: every signal is
/// blocked, and what cannot be (SIGKILL, SIGSTOP) runs no handler. Only
/// built for x86_64; elsewhere `-EINVAL`, and the caller forks.
///
/// # Safety
/// The caller must be single-threaded and have every signal blocked,
/// `args` must have `CLONE_VM` and no stack, and every pointer in it must
/// be live.
unsafe fn clone3_and_leave(args: &mut CloneArgs) -> libc::c_long {
    #[cfg(target_arch = "x86_64")]
    {
        let ret: libc::c_long;
        // SAFETY: as the function's contract says. rax carries the call
        // number in and the result out; `syscall` clobbers rcx and r11;
        // rdi and rsi are only changed on the parent's path, which never
        // comes back here; nothing of the stack is used.
        unsafe {
            std::arch::asm!(
                "syscall",
                "test rax, rax",
                "jle 2f",
                "xor edi, edi",
                "mov eax, {set_tid_address}",
                "syscall",
                "xor edi, edi",
                "mov esi, {robust_list_head}",
                "mov eax, {set_robust_list}",
                "syscall",
                "xor edi, edi",
                "mov eax, {exit_group}",
                "syscall",
                "ud2",
                "2:",
                set_tid_address = const libc::SYS_set_tid_address,
                set_robust_list = const libc::SYS_set_robust_list,
                // struct robust_list_head: two pointers and a long.
                robust_list_head = const 3 * std::mem::size_of::<usize>(),
                exit_group = const libc::SYS_exit_group,
                inlateout("rax") libc::SYS_clone3 => ret,
                in("rdi") args as *mut CloneArgs,
                in("rsi") std::mem::size_of::<CloneArgs>(),
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        ret
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = args;
        -libc::c_long::from(libc::EINVAL)
    }
}

/// In the freshly cloned init: puts the request's descriptors at 0..=4
/// (moving the socket, whose number is the sync pipe's, above them),
/// leaves the spawner's session and returns the runtime directory and the
/// socket.
fn become_init(sock: OwnedFd, request: Request) -> Result<(PathBuf, OwnedFd), String> {
    let ready = sock
        .try_clone()
        .map_err(|e| format!("failed to keep the face's socket: {e}"))?;
    drop(sock);
    let Request { fds, dir, .. } = request;
    // Above every target first, so no dup2 below overwrites a source
    // still to be placed.
    const HIGH: libc::c_int = 16;
    let mut high = Vec::with_capacity(REQUEST_FDS - 1);
    for fd in &fds[..REQUEST_FDS - 1] {
        // SAFETY: fcntl(2) duplicates a descriptor we own.
        let dup = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, HIGH) };
        if dup < 0 {
            return Err(format!(
                "failed to place the container's descriptors: {}",
                io::Error::last_os_error()
            ));
        }
        // SAFETY: a new descriptor, ours alone.
        high.push(unsafe { OwnedFd::from_raw_fd(dup) });
    }
    drop(fds);
    for (target, fd) in high.iter().enumerate() {
        // SAFETY: dup2(2) onto a number this process owns (its stdio, the
        // closed socket's, the lock's placeholder); `fd` stays valid.
        if unsafe { libc::dup2(fd.as_raw_fd(), target as libc::c_int) } < 0 {
            return Err(format!(
                "failed to place the container's descriptor {target}: {}",
                io::Error::last_os_error()
            ));
        }
    }
    drop(high);
    // As a cloned init: a session of its own, away from the face's.
    // SAFETY: setsid(2) has no memory effects.
    if unsafe { libc::setsid() } < 0 {
        return Err(format!(
            "failed to start a session: {}",
            io::Error::last_os_error()
        ));
    }
    Ok((dir, ready))
}
