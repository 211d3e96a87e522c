//! A pre-started init (a "zygote"), for a long-running face (the agent):
//! one `phobos init` cloned ahead of a request into fresh namespaces
//! (`clone3(2)` with the flags a plain launch asked for last), exec'd, and
//! blocked on a `SOCK_SEQPACKET` socketpair. A launch that asks for the
//! same namespaces hands it the container over the socket instead of
//! cloning and exec'ing an init on its path: the descriptors init would
//! have been cloned with (stdin, the sandbox's stdout and stderr, the sync
//! pipe's read end, the init lock) by `SCM_RIGHTS`, then the container's
//! runtime directory. It first moves itself into the container's v1
//! cgroups, whose `tasks` files come with the descriptors (a thread moving
//! itself skips the kernel's global threadgroup lock). From there it is
//! the init of that container exactly as one cloned for it: it reads the
//! launch info, sets up its namespaces and blocks on the sync pipe until
//! the launcher has put it into the container's other cgroups
//! (`cgroup.procs`, as for an init not born in them) and the isolators
//! have written the limits; only then does it start the command. Each zygote is used once; every container gets namespaces of
//! its own.
//!
//! Nothing is left behind: the zygote's only tie to the world before the
//! hand-off is its end of the socket, and it exits when the socket reports
//! end-of-file, which the kernel does as soon as the face that holds the
//! other end (close-on-exec, never inherited) exits, however it dies. It
//! is in no cgroup of ours until the hand-off (it lives in the face's
//! own). `PR_SET_PDEATHSIG` is not used: it follows the *thread* that
//! cloned, and the face clones from a thread pool whose idle threads exit
//! while the face lives.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{ForkedInit, LaunchError, clone_init, cstring, pipe, sys};
use crate::init_mounts::{INIT_PREMOUNT_ENV, Premount};

/// Set in a zygote's environment, to the runtime directory whose
/// containers it may become the init of (which names it for `ps` and the
/// tests): `phobos init` waits for its container on fd
/// [`super::INIT_SYNC_FD`], a socket, instead of reading
/// [`super::INIT_DIR_ENV`].
pub const INIT_ZYGOTE_ENV: &str = "PHOBOS_INIT_ZYGOTE";

/// The descriptors a hand-off carries, in the order init puts them at
/// 0..=4: stdin, stdout, stderr, the sync pipe, the init lock.
pub const HANDOFF_FDS: usize = 5;

/// The longest runtime directory path a hand-off carries.
pub const HANDOFF_PATH_MAX: usize = 4096;

/// One pre-started init waiting for its container.
#[derive(Debug)]
pub struct Zygote {
    pid: i32,
    pidfd: Option<OwnedFd>,
    sock: OwnedFd,
    exec_report: Option<File>,
    clone_flags: libc::c_int,
    /// The mounts it makes before its hand-off.
    premount: Premount,
    exe: PathBuf,
    /// Its mount namespace, held from the clone on (off the launches'
    /// path): see [`hold_mount_namespace`].
    mount_ns: Option<OwnedFd>,
}

impl Zygote {
    /// Clones and execs `exe init` into `clone_flags`'s namespaces for a
    /// container of `runtime_dir`, its stdio `/dev/null`, its fd 3 the
    /// zygote's end of the socket; it makes the mounts `premount` names
    /// before it waits there.
    pub fn spawn(
        exe: &Path,
        runtime_dir: &Path,
        clone_flags: libc::c_int,
        premount: Premount,
    ) -> Result<Self, LaunchError> {
        if premount.slave && clone_flags & libc::CLONE_NEWNS == 0 {
            return Err(sys("pre-start an init")(io::Error::new(
                io::ErrorKind::InvalidInput,
                "mounts without a mount namespace of its own",
            )));
        }
        let premount_env = (premount != Premount::default())
            .then(|| {
                cstring(
                    format!("{INIT_PREMOUNT_ENV}={}", premount.to_env()).as_bytes(),
                    "name the pre-mounts",
                )
            })
            .transpose()?;
        let (cloned, ours) = clone_waiting_init(
            exe,
            INIT_ZYGOTE_ENV,
            runtime_dir,
            clone_flags,
            premount_env.as_ref(),
        )?;
        let mount_ns = (clone_flags & libc::CLONE_NEWNS != 0)
            .then(|| hold_mount_namespace(cloned.pid))
            .flatten();
        Ok(Self {
            pid: cloned.pid,
            pidfd: cloned.pidfd,
            sock: ours,
            exec_report: Some(cloned.exec_report),
            clone_flags,
            premount,
            exe: exe.to_owned(),
            mount_ns,
        })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Makes this zygote the init of the container whose runtime
    /// directory is `runtime_dir`, as [`super::spawn_init`] would have
    /// cloned one (`stdin` `None`: `/dev/null`). The returned init is not
    /// in the container's cgroups yet (`born_in_cgroup` false: the
    /// launcher's `adopt` moves it) and waits for its release. On an
    /// error nothing was handed over and the zygote is gone.
    pub fn hand_off(
        mut self,
        runtime_dir: &Path,
        stdin: Option<&OwnedFd>,
        stdout: &File,
        stderr: &File,
        init_lock: &File,
        join_cgroups: &[File],
    ) -> Result<ForkedInit, LaunchError> {
        let path = runtime_dir.as_os_str().as_bytes();
        if path.len() > HANDOFF_PATH_MAX {
            return Err(sys("hand the container to the pre-started init")(
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "runtime directory path too long",
                ),
            ));
        }
        let devnull;
        let stdin = match stdin {
            Some(fd) => fd.as_fd(),
            None => {
                devnull = File::open("/dev/null").map_err(sys("open /dev/null"))?;
                devnull.as_fd()
            }
        };
        let (sync_read, sync_write) = pipe()?;
        let mut fds = vec![
            stdin,
            stdout.as_fd(),
            stderr.as_fd(),
            sync_read.as_fd(),
            init_lock.as_fd(),
        ];
        fds.extend(
            join_cgroups
                .iter()
                .take(super::MAX_JOINED_CGROUPS)
                .map(AsFd::as_fd),
        );
        phobos_tty::pty::send_fds(self.sock.as_fd(), &fds)
            .and_then(|()| send(&self.sock, path))
            .map_err(sys("hand the container to the pre-started init"))?;
        drop(sync_read);
        let exec_report = self
            .exec_report
            .take()
            .expect("a zygote is handed off once");
        // The socket stays ours: init closes its end once it is set up.
        let ready = self
            .sock
            .try_clone()
            .map_err(sys("keep the pre-started init's socket"))?;
        Ok(ForkedInit {
            pid: self.pid,
            pidfd: self.pidfd.take(),
            born_in_cgroup: false,
            mount_ns: self.mount_ns.take(),
            ready_before_release: false,
            sync: File::from(sync_write),
            exec_report,
            ready: Some(ready),
            exe: self.exe.display().to_string(),
        })
    }
}

impl Drop for Zygote {
    /// A zygote never handed off is killed and reaped (closing the socket
    /// alone would end it too, but leave a zombie of this process).
    fn drop(&mut self) {
        if self.exec_report.is_none() {
            return;
        }
        kill_and_reap(self.pid, self.pidfd.as_ref());
    }
}

/// A descriptor of the mount namespace of `pid` (our unreaped child, so
/// the pid is its own), `None` when it cannot be opened.
///
/// Why a face holds it: the kernel tears a mount namespace down when its
/// last reference goes, which for a container's is init's exit
/// (`exit_task_namespaces`, before the exit is signalled: `pidfd` turns
/// readable only after it). The teardown unmounts the copy of the host's
/// whole mount table the namespace was cloned with and waits for an
/// expedited RCU grace period (`namespace_unlock`), milliseconds on a
/// loaded host, all of it between the command's end and the moment its
/// waiter can hear of it. With this descriptor open, init's exit drops a
/// reference that is not the last; the face closes it once the end is
/// answered, on a thread off that path, and the namespace goes then. The
/// namespace holds no process (every process of the container is gone
/// when init is) and nothing on disk; a face that dies closes it with
/// everything else it had open.
pub fn hold_mount_namespace(pid: i32) -> Option<OwnedFd> {
    let path = format!("/proc/{pid}/ns/mnt");
    File::open(&path)
        .inspect_err(|e| tracing::debug!(path, error = %e, "cannot hold a mount namespace"))
        .ok()
        .map(OwnedFd::from)
}

/// Clones and execs `exe init` into `clone_flags`'s namespaces with
/// `env_name=runtime_dir` (and `extra_env`) in its environment, its stdio
/// `/dev/null` and its fd 3 its end of a new socket pair: an init that
/// waits there for what to become (a zygote or a spawner). Returns it and
/// our end.
pub(super) fn clone_waiting_init(
    exe: &Path,
    env_name: &str,
    runtime_dir: &Path,
    clone_flags: libc::c_int,
    extra_env: Option<&std::ffi::CString>,
) -> Result<(super::Cloned, OwnedFd), LaunchError> {
    let exe_c = cstring(exe.as_os_str().as_bytes(), "use the phobos binary path")?;
    let env = cstring(
        &[
            env_name.as_bytes(),
            b"=",
            runtime_dir.as_os_str().as_bytes(),
        ]
        .concat(),
        "use the runtime directory path",
    )?;
    let devnull = File::open("/dev/null").map_err(sys("open /dev/null"))?;
    let (ours, theirs) = seqpacket_pair()?;
    let null = devnull.as_raw_fd();
    let cloned = clone_init(
        &exe_c,
        &[Some(&env), extra_env],
        [null, null, null, theirs.as_raw_fd(), null, -1],
        clone_flags,
        None,
        &[],
    )?;
    Ok((cloned, ours))
}

/// Kills our unreaped child `pid` (through `pidfd` when there is one)
/// and reaps it.
pub(super) fn kill_and_reap(pid: i32, pidfd: Option<&OwnedFd>) {
    match pidfd {
        Some(pidfd) => {
            let _ = crate::sys::pidfd_send_signal(pidfd, libc::SIGKILL);
        }
        // SAFETY: kill(2) of our own unreaped child: the pid is not reused.
        None => unsafe {
            libc::kill(pid, libc::SIGKILL);
        },
    }
    reap(pid);
}

/// Waits for our own child `pid` to end and reaps it.
pub(super) fn reap(pid: i32) {
    let mut status = 0;
    // SAFETY: waitpid on our own child with a valid out-pointer.
    unsafe { libc::waitpid(pid, &mut status, 0) };
}

/// Sends `bytes` as one message on `sock`.
pub(super) fn send(sock: &OwnedFd, bytes: &[u8]) -> io::Result<()> {
    loop {
        // SAFETY: send(2) reads `bytes.len()` bytes of a live slice.
        let rc = unsafe {
            libc::send(
                sock.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if rc >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Receives one message into `buf`; its full length (which may exceed
/// `buf`: `MSG_TRUNC`), 0 at end-of-file.
pub(super) fn recv(sock: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: recv(2) writes at most `buf.len()` bytes into `buf`.
        let rc = unsafe {
            libc::recv(
                sock.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC,
            )
        };
        if rc >= 0 {
            return Ok(rc as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

pub(super) fn seqpacket_pair() -> Result<(OwnedFd, OwnedFd), LaunchError> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for socketpair to fill.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(sys("create a socket pair")(io::Error::last_os_error()));
    }
    // SAFETY: socketpair succeeded: both fds are new and ours alone.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The zygote side of a hand-off, in `phobos init`: blocks until the
/// container comes on `sock`; moves this process into the v1 cgroups
/// handed with it; returns its descriptors (in [`HANDOFF_FDS`] order)
/// and runtime directory, or `None` at end-of-file (the face is gone:
/// exit without doing anything).
pub fn receive(sock: &OwnedFd) -> io::Result<Option<([OwnedFd; HANDOFF_FDS], PathBuf)>> {
    let Some((fds, join)) =
        phobos_tty::pty::recv_fds_and_more::<HANDOFF_FDS>(sock.as_fd(), super::MAX_JOINED_CGROUPS)?
    else {
        return Ok(None);
    };
    super::join_own_cgroups(join.iter().map(AsRawFd::as_raw_fd));
    drop(join);
    let mut buf = vec![0u8; HANDOFF_PATH_MAX + 1];
    let n = recv(sock, &mut buf)?;
    if n == 0 || n > HANDOFF_PATH_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a hand-off without a valid runtime directory ({n} bytes)"),
        ));
    }
    buf.truncate(n);
    Ok(Some((
        fds,
        PathBuf::from(std::ffi::OsString::from_vec(buf)),
    )))
}

/// The pre-started init a face keeps (at most one), and the namespaces
/// and pre-mounts the last plain launch asked for, which the next one is
/// made with.
#[derive(Debug)]
pub struct Zygotes {
    exe: PathBuf,
    runtime_dir: PathBuf,
    state: Mutex<Slot>,
}

#[derive(Debug, Default)]
struct Slot {
    ready: Option<Zygote>,
    wanted: Option<(libc::c_int, Premount)>,
}

impl Zygotes {
    /// Zygotes of `exe` (the binary exec'd as `phobos init`) for the
    /// containers of `runtime_dir`.
    pub fn new(exe: &Path, runtime_dir: &Path) -> Self {
        Self {
            exe: exe.to_owned(),
            runtime_dir: runtime_dir.to_owned(),
            state: Mutex::default(),
        }
    }

    /// The ready zygote if it was cloned with `clone_flags` and made the
    /// mounts `premount` names (and no others); remembers both for the
    /// next one either way (one made otherwise is ended).
    pub fn take(&self, clone_flags: libc::c_int, premount: Premount) -> Option<Zygote> {
        let ready = {
            let mut slot = self.state.lock().unwrap_or_else(|e| e.into_inner());
            slot.wanted = Some((clone_flags, premount));
            slot.ready.take()
        };
        ready.filter(|z| z.clone_flags == clone_flags && z.premount == premount)
    }

    /// Makes a zygote when none is ready and a launch has said which
    /// namespaces it wants (slow: a clone and an exec; off the launches'
    /// path). Returns whether one was made.
    pub fn refill(&self) -> Result<bool, LaunchError> {
        let wanted = {
            let slot = self.state.lock().unwrap_or_else(|e| e.into_inner());
            match (&slot.ready, slot.wanted) {
                (None, Some(wanted)) => wanted,
                _ => return Ok(false),
            }
        };
        let zygote = Zygote::spawn(&self.exe, &self.runtime_dir, wanted.0, wanted.1)?;
        let unwanted = {
            let mut slot = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if slot.ready.is_some() || slot.wanted != Some(wanted) {
                Some(zygote)
            } else {
                slot.ready = Some(zygote);
                None
            }
        };
        // Ended (and reaped) outside the lock.
        Ok(unwanted.is_none())
    }

    /// The ready zygote's pid, if one is ready.
    pub fn ready_pid(&self) -> Option<i32> {
        let slot = self.state.lock().unwrap_or_else(|e| e.into_inner());
        slot.ready.as_ref().map(Zygote::pid)
    }

    /// Ends the ready zygote, if any, and makes no more (the face stops).
    pub fn drain(&self) {
        let ready = {
            let mut slot = self.state.lock().unwrap_or_else(|e| e.into_inner());
            slot.wanted = None;
            slot.ready.take()
        };
        drop(ready);
    }
}

/// In `phobos init` started as a zygote: waits for the container on the
/// socket at fd [`super::INIT_SYNC_FD`], puts the descriptors it brings
/// at 0..=4 (where a launcher clones an init with them) and returns its
/// runtime directory and the socket, moved above them, which init closes
/// once it is set up (the face's release waits for that); `None` when the
/// face went without handing one.
pub fn await_container() -> Result<Option<(PathBuf, OwnedFd)>, String> {
    // SAFETY: the face put the zygote's socket at fd 3 and nothing else
    // in this process owns that number.
    let sock = unsafe { OwnedFd::from_raw_fd(super::INIT_SYNC_FD) };
    let received = receive(&sock).map_err(|e| format!("failed to receive a container: {e}"))?;
    let Some((fds, dir)) = received else {
        return Ok(None);
    };
    // The received descriptors are above 4 (0..=4 were taken), so
    // nothing below overwrites one still to be placed; nor the socket,
    // moved (close-on-exec) off fd 3 first.
    let ready = sock
        .try_clone()
        .map_err(|e| format!("failed to keep the face's socket: {e}"))?;
    drop(sock);
    for (target, fd) in fds.iter().enumerate() {
        // SAFETY: dup2(2) onto a number this process owns (its stdio, the
        // closed socket's, the lock's placeholder); `fd` stays valid.
        if unsafe { libc::dup2(fd.as_raw_fd(), target as libc::c_int) } < 0 {
            return Err(format!(
                "failed to place the container's descriptor {target}: {}",
                io::Error::last_os_error()
            ));
        }
    }
    Ok(Some((dir, ready)))
}
