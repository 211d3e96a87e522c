//! The init spawner without its exec: a `fork(2)` of the `phobos run`
//! face itself, made first thing in `main` while the face is still
//! single-threaded and small.
//!
//! An exec'd spawner costs a `phobos` exec, glibc's start-up (its `cpuid`
//! cache probing, a VM exit per instruction on a paravirtualised guest)
//! and Rust's, about 0.7 ms of CPU per launch here, and the face waits in
//! its `vfork`-style clone until that exec has begun. A fork costs a copy
//! of the face's few page tables, and the face goes on at once. The child
//! makes itself what the exec would have made: its stdio `/dev/null`, its
//! fd 3 the socket, nothing else open, a session of its own, every signal
//! blocked, `PHOBOS_INIT_SPAWNER` (and `RUST_LOG`) as its only
//! environment, and a command line and environment in `/proc` that read
//! as an exec'd spawner's (`PR_SET_MM_MAP`: the face's own, which may hold
//! secrets, are no longer shown). Then it runs `phobos init` as the exec'd
//! one would. Where `/proc`'s view cannot be moved (a kernel without
//! `CONFIG_CHECKPOINT_RESTORE`) or `close_range(2)` is missing, the child
//! execs the spawner after all.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::super::{LaunchError, cstring, sys};
use super::{Spawner, spawner_env};
use crate::init_mounts::Premount;

/// What the child shows in `/proc/PID/cmdline` and `environ`, and execs
/// when it cannot: built before the fork, so the child only makes system
/// calls and runs init.
pub(super) struct Identity {
    /// `exe\0init\0`.
    cmdline: Vec<u8>,
    /// Every variable of `vars`, each NUL-terminated.
    environ: Vec<u8>,
    exe: CString,
    /// `PHOBOS_INIT_SPAWNER=dir`, what else the spawner is told, and
    /// `RUST_LOG=…` when the face has one: its whole environment.
    vars: Vec<CString>,
}

impl Identity {
    /// A spawner of `exe` for `runtime_dir`'s containers, with `extra`
    /// in its environment too.
    pub(super) fn new(
        exe: &Path,
        runtime_dir: &Path,
        extra: Option<CString>,
    ) -> Result<Self, LaunchError> {
        let exe = cstring(exe.as_os_str().as_bytes(), "use the phobos binary path")?;
        let vars: Vec<CString> = std::iter::once(spawner_env(runtime_dir)?)
            .chain(extra)
            .chain(super::super::log_env())
            .collect();
        let mut cmdline = exe.as_bytes_with_nul().to_vec();
        cmdline.extend_from_slice(b"init\0");
        let environ = vars
            .iter()
            .flat_map(|v| v.as_bytes_with_nul())
            .copied()
            .collect();
        Ok(Self {
            cmdline,
            environ,
            exe,
            vars,
        })
    }

    /// Points `/proc`'s command line and environment of this process at
    /// ours, with `PR_SET_MM_MAP`, which (unlike the single-field
    /// `PR_SET_MM` options) needs no `CAP_SYS_RESOURCE`: the kernel takes
    /// the whole map, so the other fields are this process's own, read
    /// from `/proc/self/stat` and `brk(2)`. The buffers are on the heap:
    /// `/proc` reads these ranges from anonymous memory only.
    ///
    /// The face's own command line and environment, which may carry
    /// secrets, are then zeroed where the kernel put them (this process's
    /// stack): init's memory holds no more of its caller than an exec'd
    /// one did. Call before the environment is replaced.
    fn show(&self) -> bool {
        let Some(mut map) = MmMap::current() else {
            return false;
        };
        let face = [(map.arg_start, map.arg_end), (map.env_start, map.env_end)];
        let range = |b: &Vec<u8>| (b.as_ptr() as u64, b.as_ptr() as u64 + b.len() as u64);
        (map.arg_start, map.arg_end) = range(&self.cmdline);
        (map.env_start, map.env_end) = range(&self.environ);
        // SAFETY: prctl(2) reads the map (its size passed along); the
        // buffers it names live until this process ends.
        let shown = unsafe {
            libc::prctl(
                libc::PR_SET_MM,
                PR_SET_MM_MAP,
                &raw const map as libc::c_ulong,
                std::mem::size_of::<MmMap>() as libc::c_ulong,
                0,
            ) == 0
        };
        if shown {
            for (start, end) in face.into_iter().filter(|(s, e)| s < e) {
                // SAFETY: the kernel's record of where it wrote this
                // process's argument and environment strings at the exec:
                // writable stack, read later only through `environ` and
                // argv, which see empty strings (and `clearenv` follows).
                unsafe { std::ptr::write_bytes(start as *mut u8, 0, (end - start) as usize) };
            }
        }
        shown
    }

    /// The spawner as [`Spawner::start`] makes it.
    fn exec(&self) -> ! {
        let init = c"init";
        let argv = [self.exe.as_ptr(), init.as_ptr(), std::ptr::null()];
        let envp: Vec<*const libc::c_char> = self
            .vars
            .iter()
            .map(|v| v.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        // SAFETY: NUL-terminated strings and a NULL-terminated array; the
        // strings were built before the fork; _exit(2) if the exec fails
        // (the face sees the socket close and clones init itself).
        unsafe {
            libc::execve(self.exe.as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(127)
        }
    }
}

/// `PR_SET_MM_MAP` (linux/prctl.h; not in the libc crate).
const PR_SET_MM_MAP: libc::c_int = 14;

/// `struct prctl_mm_map` (linux/prctl.h).
#[repr(C)]
#[derive(Default)]
struct MmMap {
    start_code: u64,
    end_code: u64,
    start_data: u64,
    end_data: u64,
    start_brk: u64,
    brk: u64,
    start_stack: u64,
    arg_start: u64,
    arg_end: u64,
    env_start: u64,
    env_end: u64,
    auxv: u64,
    auxv_size: u32,
    exe_fd: u32,
}

impl MmMap {
    /// This process's map as the kernel keeps it: `/proc/self/stat`'s
    /// fields 26–28 and 45–51 (proc(5)), and the break; the auxiliary
    /// vector and the executable left as they are.
    fn current() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields from the third on follow the command name's ')'.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<u64> = rest
            .split_ascii_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        let field = |n: usize| fields.get(n - 3).copied();
        // SAFETY: brk(2) with 0 changes nothing and returns the break.
        let brk = unsafe { libc::syscall(libc::SYS_brk, 0usize) } as u64;
        Some(Self {
            start_code: field(26)?,
            end_code: field(27)?,
            start_stack: field(28)?,
            start_data: field(45)?,
            end_data: field(46)?,
            start_brk: field(47)?,
            arg_start: field(48)?,
            arg_end: field(49)?,
            env_start: field(50)?,
            env_end: field(51)?,
            brk,
            exe_fd: u32::MAX,
            ..Self::default()
        })
    }
}

impl Spawner {
    /// As [`Spawner::start`], but the spawner is a fork of this process
    /// instead of an exec of `exe` (see the module's documentation).
    ///
    /// # Safety
    /// This process must be single-threaded (the child runs on in a copy
    /// of its memory, locks included), and `exe` its own binary.
    pub unsafe fn fork(exe: &Path, runtime_dir: &Path) -> Result<Self, LaunchError> {
        let identity = Identity::new(exe, runtime_dir, None)?;
        let devnull = File::open("/dev/null").map_err(sys("open /dev/null"))?;
        let (ours, theirs) = super::super::seqpacket::seqpacket_pair()?;
        // SAFETY: fork(2) of a single-threaded process (the caller's
        // contract): the child may run any code on its copy.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            become_spawner(theirs.as_raw_fd(), devnull.as_raw_fd(), &identity);
        }
        if pid < 0 {
            return Err(sys("fork the init spawner")(io::Error::last_os_error()));
        }
        drop(theirs);
        Self::forked(pid, exe, runtime_dir, ours, 0, Premount::default())
    }
}

/// The forked child: made what an exec'd spawner is, then `phobos init`.
pub(super) fn become_spawner(sock: RawFd, devnull: RawFd, identity: &Identity) -> ! {
    let Some(rest_closed) = detach(sock, devnull) else {
        // SAFETY: _exit(2) ends this child without touching the face's
        // state (no atexit handlers, no buffers to flush).
        unsafe { libc::_exit(127) }
    };
    if !rest_closed {
        // What the face's caller left open closes at the exec.
        super::super::close_from_on_exec(5);
        identity.exec();
    }
    if !identity.show() {
        identity.exec();
    }
    // SAFETY: single-threaded (the fork's contract); nothing holds a
    // pointer into the environment.
    unsafe {
        libc::clearenv();
        for variable in &identity.vars {
            let bytes = variable.as_bytes();
            if let Some(at) = bytes.iter().position(|b| *b == b'=') {
                std::env::set_var(
                    OsStr::from_bytes(&bytes[..at]),
                    OsStr::from_bytes(&bytes[at + 1..]),
                );
            }
        }
    }
    std::process::exit(crate::init::main())
}

/// A forked child's start, as a spawner or the factory: every signal
/// blocked, its descriptors placed ([`place_descriptors`], whose answer
/// this is) and, once they are, a session of its own, away from the
/// face's terminal and its signals.
pub(super) fn detach(sock: RawFd, devnull: RawFd) -> Option<bool> {
    let all = nix::sys::signal::SigSet::all();
    let _ =
        nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&all), None);
    let rest_closed = place_descriptors(sock, devnull)?;
    // SAFETY: setsid(2) has no memory effects.
    unsafe { libc::setsid() };
    Some(rest_closed)
}

/// Stdio and fd 4 `/dev/null`, fd 3 the socket: `Some(true)` with
/// nothing else open, `Some(false)` where `close_range(2)` is missing,
/// `None` when the descriptors could not be placed.
fn place_descriptors(sock: RawFd, devnull: RawFd) -> Option<bool> {
    const HIGH: RawFd = 16;
    // SAFETY: fcntl(2), dup2(2) and close_range(2) on this process's own
    // descriptor table; the sources are open until the ranges close them.
    unsafe {
        let sock = libc::fcntl(sock, libc::F_DUPFD_CLOEXEC, HIGH);
        let null = libc::fcntl(devnull, libc::F_DUPFD_CLOEXEC, HIGH);
        if sock < 0 || null < 0 {
            return None;
        }
        for (target, source) in [(0, null), (1, null), (2, null), (3, sock), (4, null)] {
            if libc::dup2(source, target) < 0 {
                return None;
            }
        }
        Some(
            libc::syscall(
                libc::SYS_close_range,
                5 as libc::c_uint,
                libc::c_uint::MAX,
                0 as libc::c_uint,
            ) == 0,
        )
    }
}
