//! A spawner factory, for a long-running face (the agent): a `fork(2)` of
//! the face made first thing in `main`, while it is single-threaded and
//! small, that makes init spawners on request for as long as the face
//! lives, each a fork of itself: no exec, no glibc or Rust start-up per
//! container (an exec'd `phobos init`'s `cpuid` cache probing alone is
//! 0.7 ms of CPU per launch on a paravirtualised guest).
//!
//! The face asks off its launches' path, sending the spawner's end of a
//! new socket pair (`SCM_RIGHTS`), the namespaces to make ahead (mount,
//! ipc and uts: [`PREMADE`]), the mounts to make in them
//! ([`Premount`]) and the runtime directory. The factory clones the
//! spawner with `clone3(2)`: those namespaces and `CLONE_PARENT`, so the
//! spawner, and the container init it later clones (`CLONE_PARENT`
//! again), are the face's children, which it reaps and watches by pidfd
//! as any other. The clone copies the factory's memory (a few page
//! tables) and makes the spawner what [`Spawner::fork`] makes one: its
//! stdio `/dev/null`, its fd 3 the socket, nothing else open (the
//! factory's own socket included), a session of its own, every signal
//! blocked, its environment and `/proc`'s view of it its own. The spawner
//! makes the mounts, then waits for its container; at the launch it
//! joins the container's v1 cgroups and clones init into a new pid
//! namespace and the cgroup2 kill cgroup (`CLONE_INTO_CGROUP`): no
//! process is moved through `cgroup.procs`, whose global lock waits an
//! RCU grace period after a quiet moment.
//!
//! The factory answers with the spawner's pid (or `-errno`). Nothing is
//! left behind: its only tie is its end of the socket to the face, and it
//! exits at end-of-file, which the kernel reports as soon as the face
//! exits, however it dies; an unused spawner likewise.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::super::seqpacket::{kill_and_reap, recv, send, seqpacket_pair};
use super::super::{CloneArgs, LaunchError, cstring, sys};
use super::fork::{Identity, become_spawner};
use super::{PATH_MAX, Spawner};
use crate::init_mounts::{INIT_PREMOUNT_ENV, Premount};

/// The namespaces a factory makes a spawner in ahead of its launch: those
/// a pre-made copy of serves as well as a new one. A pid namespace is
/// made at the launch (init must be its first process), a network one is
/// never plain (its set-up names the container).
pub const PREMADE: libc::c_int = libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;

/// An order's fixed header: the namespaces (4 bytes, little-endian), then
/// the pre-mounts' length (1 byte).
const HEADER: usize = 5;

/// The longest pre-mount list ([`Premount::to_env`]).
const PREMOUNT_MAX: usize = 64;

/// A started factory, serving its face.
#[derive(Debug)]
pub struct SpawnerFactory {
    pid: i32,
    pidfd: Option<OwnedFd>,
    /// The binary it is a fork of: it makes spawners of that one only.
    exe: PathBuf,
    /// One order at a time; `None` once the factory is gone (and
    /// reaped).
    sock: Mutex<Option<OwnedFd>>,
}

impl SpawnerFactory {
    /// Forks the factory from this process, whose binary is `exe`.
    ///
    /// # Safety
    /// This process must be single-threaded (the child runs on in a copy
    /// of its memory, locks included), and `exe` its own binary.
    pub unsafe fn fork(exe: &Path) -> Result<Self, LaunchError> {
        let devnull = File::open("/dev/null").map_err(sys("open /dev/null"))?;
        let (ours, theirs) = seqpacket_pair()?;
        // SAFETY: fork(2) of a single-threaded process (the caller's
        // contract): the child may run any code on its copy.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            serve(theirs.as_raw_fd(), devnull.as_raw_fd(), exe);
        }
        if pid < 0 {
            return Err(sys("fork the spawner factory")(io::Error::last_os_error()));
        }
        drop(theirs);
        Ok(Self {
            pid,
            pidfd: crate::sys::pidfd_open(pid).ok(),
            exe: exe.to_owned(),
            sock: Mutex::new(Some(ours)),
        })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Whether its spawners run `exe`.
    pub fn makes(&self, exe: &Path) -> bool {
        self.exe == exe
    }

    /// Whether it is gone (killed by someone, or failed): it makes no
    /// more spawners, and launches clone their init.
    pub fn gone(&self) -> bool {
        self.sock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }

    /// A new spawner for a container of `runtime_dir`, in new namespaces
    /// of `clone_flags`' [`PREMADE`] kinds with `premount`'s mounts made.
    pub fn spawner(
        &self,
        runtime_dir: &Path,
        clone_flags: libc::c_int,
        premount: Premount,
    ) -> Result<Spawner, LaunchError> {
        let order = |e| sys("order an init spawner")(e);
        let path = runtime_dir.as_os_str().as_bytes();
        let mounts = premount.to_env();
        if path.len() > PATH_MAX || mounts.len() > PREMOUNT_MAX {
            return Err(order(io::Error::new(
                io::ErrorKind::InvalidInput,
                "runtime directory path too long",
            )));
        }
        let premade = clone_flags & PREMADE;
        let mut message = Vec::with_capacity(HEADER + mounts.len() + path.len());
        message.extend_from_slice(&(premade as u32).to_le_bytes());
        message.push(mounts.len() as u8);
        message.extend_from_slice(mounts.as_bytes());
        message.extend_from_slice(path);
        let (ours, theirs) = seqpacket_pair()?;
        let answer = {
            let mut held = self.sock.lock().unwrap_or_else(|e| e.into_inner());
            let Some(sock) = held.as_ref() else {
                return Err(order(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "the spawner factory is gone",
                )));
            };
            let mut answer = [0u8; 4];
            let asked = phobos_tty::pty::send_fds(sock.as_fd(), &[theirs.as_fd()])
                .and_then(|()| send(sock, &message))
                .and_then(|()| recv(sock, &mut answer));
            match asked {
                Ok(4) => i32::from_le_bytes(answer),
                failed => {
                    // Gone, or no longer making sense: ended for good (it
                    // holds nothing), reaped while its pid is still ours.
                    if let Some(sock) = held.take() {
                        drop(sock);
                        kill_and_reap(self.pid, self.pidfd.as_ref());
                    }
                    return Err(order(failed.err().unwrap_or_else(|| {
                        io::Error::new(io::ErrorKind::UnexpectedEof, "the spawner factory is gone")
                    })));
                }
            }
        };
        drop(theirs);
        if answer <= 0 {
            return Err(sys("clone an init spawner")(io::Error::from_raw_os_error(
                -answer,
            )));
        }
        // Our child (CLONE_PARENT), not reaped.
        Spawner::forked(answer, &self.exe, runtime_dir, ours, premade, premount)
    }
}

impl Drop for SpawnerFactory {
    /// Ended and reaped (closing the socket alone would end it too, but
    /// leave a zombie of this process), unless that was done already.
    fn drop(&mut self) {
        if self.sock.get_mut().map_or(true, |s| s.is_some()) {
            kill_and_reap(self.pid, self.pidfd.as_ref());
        }
    }
}

/// One spawner to make, as the factory received it.
struct Order {
    sock: OwnedFd,
    premade: libc::c_int,
    premount: Premount,
    runtime_dir: PathBuf,
}

fn receive(sock: &OwnedFd) -> io::Result<Option<Order>> {
    let Some(([spawner_sock], _)) = phobos_tty::pty::recv_fds_and_more::<1>(sock.as_fd(), 0)?
    else {
        return Ok(None);
    };
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("an order {what}"));
    let mut buf = vec![0u8; HEADER + PREMOUNT_MAX + PATH_MAX + 1];
    let n = recv(sock, &mut buf)?;
    if n <= HEADER || n > buf.len() - 1 {
        return Err(bad("of a wrong length"));
    }
    buf.truncate(n);
    let premade = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as libc::c_int;
    let mounts_len = usize::from(buf[4]);
    if premade & !PREMADE != 0 || HEADER + mounts_len >= n {
        return Err(bad("with wrong namespaces or no runtime directory"));
    }
    let mounts = std::str::from_utf8(&buf[HEADER..HEADER + mounts_len])
        .map_err(|_| bad("with unreadable pre-mounts"))?;
    let premount = Premount::from_env(mounts).map_err(|e| bad(&e))?;
    let runtime_dir = PathBuf::from(std::ffi::OsString::from_vec(
        buf[HEADER + mounts_len..].to_vec(),
    ));
    Ok(Some(Order {
        sock: spawner_sock,
        premade,
        premount,
        runtime_dir,
    }))
}

/// The forked factory: its stdio and fd 4 `/dev/null`, fd 3 the socket,
/// nothing else open, every signal blocked; then one spawner per order
/// until the face goes.
fn serve(sock: RawFd, devnull: RawFd, exe: &Path) -> ! {
    if super::fork::detach(sock, devnull) != Some(true) {
        // Without close_range(2) the face's descriptors would reach every
        // spawner: no factory (the face sees end-of-file and clones init).
        // SAFETY: _exit(2) ends this child without touching the face's
        // state.
        unsafe { libc::_exit(1) }
    }
    // SAFETY: fd 3 is the socket placed above, owned by nothing else.
    let sock = unsafe { OwnedFd::from_raw_fd(super::super::INIT_SYNC_FD) };
    loop {
        let order = match receive(&sock) {
            Ok(Some(order)) => order,
            // SAFETY: as above: the face is gone, or speaks nonsense.
            Ok(None) | Err(_) => unsafe { libc::_exit(0) },
        };
        let answer = make_spawner(&order, exe);
        drop(order);
        if send(&sock, &answer.to_le_bytes()).is_err() {
            // SAFETY: as above.
            unsafe { libc::_exit(0) }
        }
    }
}

/// Clones the spawner of `exe` that `order` asks for (which never
/// returns here): its pid, or `-errno`.
fn make_spawner(order: &Order, exe: &Path) -> i32 {
    // Built before the clone: the child only places, shows and runs.
    let premount = (order.premount != Premount::default())
        .then(|| format!("{INIT_PREMOUNT_ENV}={}", order.premount.to_env()));
    let premount = match premount.map(|p| cstring(p.as_bytes(), "name the pre-mounts")) {
        Some(Ok(p)) => Some(p),
        Some(Err(_)) => return -libc::EINVAL,
        None => None,
    };
    let identity = match Identity::new(exe, &order.runtime_dir, premount) {
        Ok(identity) => identity,
        Err(_) => return -libc::EINVAL,
    };
    let mut args = CloneArgs {
        flags: (order.premade & PREMADE) as u64 | libc::CLONE_PARENT as u64,
        // With CLONE_PARENT the kernel refuses one: the child gets ours,
        // SIGCHLD (the face forked us), and goes to our parent.
        exit_signal: 0,
        ..CloneArgs::default()
    };
    // SAFETY: clone3(2) without CLONE_VM and with no stack behaves like
    // fork(2); this process is single-threaded, so the child may go on
    // running Rust code on its copy of the memory.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        0 => become_spawner(order.sock.as_raw_fd(), 0, &identity),
        r if r > 0 => r as i32,
        _ => -io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO),
    }
}
