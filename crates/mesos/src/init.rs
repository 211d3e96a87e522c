//! `phobos init`: the helper that becomes each container's init (Mesos's
//! `mesos-containerizer launch`, §3.5).
//!
//! It starts in the namespaces the launcher cloned, with fd 3 the read end
//! of the sync pipe and fd 4 the init lock. It
//! 1. blocks every signal (they are read from a signalfd(2) later, which
//!    also works for pid 1 of a pid namespace: blocked signals are queued,
//!    not ignored);
//! 2. sets up the mount namespace (`/` recursively slave, a fresh `/proc` for
//!    a new pid namespace, a private `/dev/shm` for a new ipc namespace) and
//!    the hostname, overlapping with the launcher's isolation work;
//! 3. blocks on the sync pipe until the launcher says RUNNING (EOF means the
//!    launcher died: exit without running anything);
//! 4. starts the command (user switch, working directory, exec);
//! 5. forwards every signal to the command, reaps every zombie, and when the
//!    command exits kills what is left of its pid namespace, writes the
//!    command's raw wait status atomically to `status`, and exits — which
//!    releases the init lock that `phobos wait` blocks on.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::{MsFlags, mount};
use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::Mode;
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use phobos_core::WaitStatus;
use phobos_core::store::{ContainerDir, LAUNCH_INFO_FILE, STATUS_FILE};
use serde::{Deserialize, Serialize};

use crate::init_exec::{prepare_exec, spawn_command};
use crate::init_mounts::{INIT_PREMOUNT_ENV as PREMOUNT_ENV, Premount};
use crate::launch_info::{LaunchInfo, Namespace, ResolvedUser};
use crate::launcher::spawner::INIT_SPAWNER_ENV as SPAWNER_ENV;
use crate::launcher::{INIT_DIR_ENV, INIT_JOIN_ENV, INIT_SYNC_FD, INIT_TTY_FD};

/// What init writes to `status` when the command ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InitStatus {
    /// The command's raw wait status.
    pub status: WaitStatus,
    /// Why init ended the command, when a watched limit was hit (OOM,
    /// disk); absent otherwise and in files from older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<phobos_core::Reason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limited_resources: Vec<String>,
}

impl InitStatus {
    /// A command that ended on its own.
    pub fn exited(status: WaitStatus) -> Self {
        Self {
            status,
            reason: None,
            message: None,
            limited_resources: Vec::new(),
        }
    }
}

/// The default PATH when the container's environment has none (Mesos uses
/// the host default path the same way).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Runs the init helper; returns its exit code. Diagnostics go to stderr,
/// which is the sandbox's stderr file.
pub fn main() -> i32 {
    let all = SigSet::all();
    if let Err(e) = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&all), None) {
        eprintln!("phobos init: failed to block signals: {e}");
        return 1;
    }
    reset_signal_dispositions();
    match run() {
        Ok(code) => code,
        Err(message) => {
            eprintln!("phobos init: {message}");
            1
        }
    }
}

/// Every signal back to its default action. An ignored signal is dropped
/// when sent, so it would never reach the signalfd to be forwarded (Rust
/// ignores SIGPIPE; `nohup` ignores SIGHUP); and the command inherits the
/// dispositions, with handlers reset by `execve` and ignores kept. All
/// signals are blocked, so none is acted on here.
fn reset_signal_dispositions() {
    for sig in 1..=libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: setting a default disposition installs no handler.
        if unsafe { libc::signal(sig, libc::SIG_DFL) } == libc::SIG_ERR {
            // glibc refuses its own real-time signals (32 and 33), which
            // a parent may still have left ignored: ask the kernel. An
            // all-zero kernel `sigaction` is SIG_DFL with no flags and an
            // empty mask whatever the architecture's field order.
            let default = [0u64; 4];
            // SAFETY: rt_sigaction(2) reads the zeroed record (larger than
            // any architecture's) and writes no old action (null); the
            // signal set size is the kernel's (64 signals).
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    default.as_ptr(),
                    std::ptr::null_mut::<u64>(),
                    8usize,
                )
            };
        }
    }
}

fn run() -> Result<i32, String> {
    // The init a spawner (launcher::spawner) clones learns its container
    // here.
    let mut premounted = Premount::default();
    // Its socket to the face: closed once set up (see below).
    let mut set_up_signal = None;
    let dir_path = match std::env::var_os(SPAWNER_ENV) {
        Some(_) => {
            // A pre-started spawner's mounts first, while no container
            // waits for them (init shares its mount namespace).
            if let Ok(value) = std::env::var(PREMOUNT_ENV) {
                premounted = Premount::from_env(&value)?;
                premounted.mount()?;
            }
            match crate::launcher::spawner::serve()? {
                Some((dir, face)) => {
                    set_up_signal = Some(face);
                    dir
                }
                None => return Ok(0),
            }
        }
        None => std::env::var_os(INIT_DIR_ENV)
            .map(PathBuf::from)
            .ok_or_else(|| {
                format!("{INIT_DIR_ENV} is not set; init is started by the launcher only")
            })?,
    };
    // Keep the pipe, the lock and anything else above stderr away from
    // the command (the launcher already closed what its caller left open).
    crate::launcher::close_from_on_exec(INIT_SYNC_FD);
    let dir = container_dir(&dir_path)?;
    let join = match std::env::var(INIT_JOIN_ENV) {
        Ok(value) => Some(Join::parse(&value)?),
        Err(_) => None,
    };
    let info_file = join
        .as_ref()
        .map_or(LAUNCH_INFO_FILE, |j| j.spec_file.as_str());
    let mut info: LaunchInfo = dir
        .read_json(info_file)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no {info_file} in {}", dir_path.display()))?;
    if let Some(join) = &join {
        join.enter(&dir, &info)?;
        return run_joined(&info);
    }
    // The mounts below may hide the runtime directory's path (a runtime
    // directory under /dev/shm, say), never a descriptor opened before them.
    let pinned_dir = nix::fcntl::open(
        &dir_path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("failed to open {}: {e}", dir_path.display()))?;
    // Room for the status, taken now: a runtime filesystem that fills up
    // while the command runs must not cost the command's exit status.
    let slot = StatusSlot::reserve(&pinned_dir);

    // Descriptors for what init watches on the host, kept open across the
    // pivot or the parent's mount namespace (their /proc/self/fd names
    // replace the paths).
    let joins_mount = info
        .join_parent
        .as_ref()
        .is_some_and(|j| j.namespaces.contains(&Namespace::Mount));
    let _pinned = if info.rootfs.is_some() || joins_mount {
        pin_watched_paths(&mut info)?
    } else {
        Vec::new()
    };
    // The log pump's sandbox, opened while its host path is visible.
    let log_dir = match (&info.logger, &info.tty) {
        (Some(logger), None) if !info.pipes => Some(crate::log_pump::open_sandbox(logger)?),
        _ => None,
    };
    if let Some(parent) = &info.join_parent {
        join_parent(parent)?;
    }
    setup_namespaces(&info, premounted)?;
    // Ready to be joined but for what comes after the release.
    drop(set_up_signal);

    let launcher = wait_for_release()?;
    if let Some(plan) = &info.rootfs {
        // After the release: the launcher has placed init in every cgroup,
        // so what the mounts cost is charged to the container.
        if let Err(message) = enter_rootfs(plan, &info) {
            let message = format!("failed to enter the root filesystem: {message}");
            let record = InitStatus {
                status: WaitStatus::exited(1),
                reason: Some(phobos_core::Reason::ContainerLaunchFailed),
                message: Some(message.clone()),
                limited_resources: Vec::new(),
            };
            let _ = write_status(&pinned_dir, slot, &record);
            return Err(message);
        }
    } else {
        bind_etc_files(&info)?;
    }
    // The container is ready to be joined (its root entered): closing our
    // end of the pipe tells the launcher, which records RUNNING only then.
    drop(launcher);
    let ((status, limitation), pump) = run_command(&info, log_dir.as_ref())?;
    if info.has(Namespace::Pid) && std::process::id() == 1 {
        kill_rest_of_namespace();
    }
    if let Some(live) = pump.and_then(crate::log_pump::Pump::finish) {
        // Init's own last words go to the live stderr, not a rotated one.
        // SAFETY: dup2(2) onto fd 2, which init owns; `live` stays ours.
        unsafe { libc::dup2(live.as_raw_fd(), 2) };
    }
    let mut record = InitStatus::exited(status);
    if let Some(l) = limitation {
        record.reason = Some(l.reason);
        record.message = Some(l.message);
        record.limited_resources = l.resources;
    }
    write_status(&pinned_dir, slot, &record).map_err(|e| {
        format!(
            "failed to write {STATUS_FILE} in {}: {e}",
            dir_path.display()
        )
    })?;
    Ok(0)
}

/// How much room is reserved for the status record: one page, many times
/// the size of any record.
const STATUS_RESERVE: usize = 4096;

/// The status's temporary file, created and filled with `STATUS_RESERVE`
/// bytes before the command starts. Overwriting allocated bytes and
/// shrinking the file needs no free space (on tmpfs, the usual runtime
/// filesystem, the pages are already charged), so the record can be
/// written when the filesystem is full.
struct StatusSlot {
    file: File,
    name: String,
}

impl StatusSlot {
    /// `None` when there is no room even now; the status is then written
    /// the ordinary way at the end.
    fn reserve(dir: &OwnedFd) -> Option<Self> {
        let name = status_tmp_name();
        let mut file = create_status_tmp(dir, &name).ok()?;
        if file.write_all(&[b' '; STATUS_RESERVE]).is_err() {
            drop(file);
            let _ =
                nix::unistd::unlinkat(dir, name.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
            return None;
        }
        Some(Self { file, name })
    }
}

fn status_tmp_name() -> String {
    format!(".{STATUS_FILE}.{}", std::process::id())
}

/// Creates (or empties) the status temporary `name` in `dir`, never
/// through a symlink.
fn create_status_tmp(dir: &OwnedFd, name: &str) -> std::io::Result<File> {
    let fd = nix::fcntl::openat(
        dir,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::from_bits_truncate(0o600),
    )?;
    Ok(File::from(fd))
}

/// Writes `status` atomically (a temporary file renamed into place), like
/// every checkpoint, but relative to the directory descriptor, into the
/// reserved slot when there is one. The temporary is removed on failure.
fn write_status(
    dir: &OwnedFd,
    slot: Option<StatusSlot>,
    record: &InitStatus,
) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;

    let mut bytes = serde_json::to_vec_pretty(record)?;
    bytes.push(b'\n');
    let (tmp, written) = match slot {
        Some(StatusSlot { file, name }) => {
            let written = file
                .write_all_at(&bytes, 0)
                .and_then(|()| file.set_len(bytes.len() as u64));
            (name, written)
        }
        None => {
            let tmp = status_tmp_name();
            let written = create_status_tmp(dir, &tmp).and_then(|mut f| f.write_all(&bytes));
            (tmp, written)
        }
    };
    let renamed = written.and_then(|()| {
        nix::fcntl::renameat(dir, tmp.as_str(), dir, STATUS_FILE).map_err(std::io::Error::from)
    });
    if renamed.is_err() {
        let _ = nix::unistd::unlinkat(dir, tmp.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
    }
    renamed
}

/// Blocks until the launcher has placed us in the container's cgroups.
/// Returns the pipe: the launcher waits until it is closed (see
/// `ForkedInit::release`), which init does once the container can be
/// joined.
fn wait_for_release() -> Result<File, String> {
    // SAFETY: fd 3 was set up by the launcher for us and nobody else owns it.
    let mut sync = unsafe { File::from_raw_fd(INIT_SYNC_FD) };
    let mut byte = [0u8; 1];
    match sync.read(&mut byte) {
        Ok(1) => Ok(sync),
        _ => Err(
            "failed to synchronize with the launcher (it probably exited); not starting the command"
                .into(),
        ),
    }
}

/// Starts the command and supervises it until it exits; with `log_dir`
/// (the `logrotate` logger, no terminal) its stdout and stderr go through
/// the log pump, returned still running.
fn run_command(
    info: &LaunchInfo,
    log_dir: Option<&phobos_core::SafeDir>,
) -> Result<(Supervised, Option<crate::log_pump::Pump>), String> {
    let mut exec = prepare_exec(info)?;
    let mask = SigSet::all();
    let mut signals = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC)
        .map_err(|e| format!("failed to create a signalfd: {e}"))?;
    let slave = match &info.tty {
        Some(tty) => Some(open_terminal(tty, info.user.as_ref())?),
        None => None,
    };
    exec.tty = slave.as_ref().map(AsRawFd::as_raw_fd);
    let pipes = match info.pipes && slave.is_none() {
        true => Some(switchboard_pipes()?),
        false => None,
    };
    exec.stdio = pipes
        .as_ref()
        .map(|[i, o, e]| [i.as_raw_fd(), o.as_raw_fd(), e.as_raw_fd()]);
    let (pump, writers) = match (log_dir, &info.logger) {
        (Some(dir), Some(logger)) if slave.is_none() => {
            let (pump, writers) = crate::log_pump::prepare(dir, logger.rotation)?;
            // Init's own messages from here on (a command that cannot be
            // executed, say) go through the pump too, in order with the
            // command's: only the pump writes the live files.
            // SAFETY: dup2(2) onto fd 2, which init owns.
            unsafe { libc::dup2(writers.raw()[1], 2) };
            (Some(pump), Some(writers))
        }
        _ => (None, None),
    };
    exec.output = writers.as_ref().map(crate::log_pump::Writers::raw);
    let child = spawn_command(&exec)?;
    // The command holds the terminal now; init must not keep it open, or
    // the terminal would not hang up when the command's side is done. The
    // same for the pump's pipes: their end must come with the command's.
    drop(slave);
    drop(pipes);
    drop(writers);
    let mut watches = crate::init_watch::Watches::new(info);
    watches.pump = pump;
    let supervised = supervise(child, &mut signals, &mut watches);
    Ok((supervised, watches.pump.take()))
}

type Supervised = (WaitStatus, Option<crate::isolator::Limitation>);

/// Allocates the command's terminal, in the mount namespace and root the
/// command will see (a container with its own root filesystem has its
/// private devpts at /dev/pts by now), sets its size, gives the slave to
/// the command's user, and sends the master to the launcher on
/// [`INIT_TTY_FD`]. Returns the slave.
fn open_terminal(
    tty: &crate::launch_info::TtyLaunch,
    user: Option<&ResolvedUser>,
) -> Result<OwnedFd, String> {
    use std::os::fd::AsFd;
    // SAFETY: the launcher put the socket at INIT_TTY_FD for a command
    // with a terminal, and nothing else here owns that number.
    let channel = unsafe { OwnedFd::from_raw_fd(INIT_TTY_FD) };
    // A container without a root filesystem of its own that joined its
    // parent's mount namespace (a nested or debug one) sees the parent's
    // root filesystem, where /dev/ptmx is the link to its private devpts's
    // multiplexer: the devpts is then that one.
    let parents_devpts = std::fs::symlink_metadata(phobos_tty::pty::HOST_PTMX)
        .is_ok_and(|m| m.file_type().is_symlink());
    let ptmx = match tty.private_devpts || parents_devpts {
        true => phobos_tty::pty::PRIVATE_PTMX,
        false => phobos_tty::pty::HOST_PTMX,
    };
    let pair = phobos_tty::pty::open_pair(Path::new(ptmx)).map_err(|e| e.to_string())?;
    phobos_tty::pty::set_window(pair.master.as_fd(), tty.size)
        .map_err(|e| format!("failed to set the terminal's size: {e}"))?;
    if let Some(user) = user {
        nix::unistd::fchown(&pair.slave, Some(user.uid.into()), None)
            .map_err(|e| format!("failed to give the terminal to uid {}: {e}", user.uid))?;
    }
    phobos_tty::pty::send_fd(channel.as_fd(), pair.master.as_fd())
        .map_err(|e| format!("failed to hand the terminal to its switchboard: {e}"))?;
    Ok(pair.slave)
}

/// Makes the command's stdin, stdout and stderr pipes for a switchboard
/// without a terminal, and sends their other ends (stdin's writing end,
/// stdout's and stderr's reading ends) to it on [`INIT_TTY_FD`]. Returns
/// the command's ends.
fn switchboard_pipes() -> Result<[OwnedFd; 3], String> {
    use std::os::fd::AsFd;
    // SAFETY: the launcher put the socket at INIT_TTY_FD for a command
    // with a switchboard, and nothing else here owns that number.
    let channel = unsafe { OwnedFd::from_raw_fd(INIT_TTY_FD) };
    let pipe = || {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| format!("failed to make the switchboard's pipes: {e}"))
    };
    let (stdin_r, stdin_w) = pipe()?;
    let (stdout_r, stdout_w) = pipe()?;
    let (stderr_r, stderr_w) = pipe()?;
    phobos_tty::pty::send_fds(
        channel.as_fd(),
        &[stdin_w.as_fd(), stdout_r.as_fd(), stderr_r.as_fd()],
    )
    .map_err(|e| format!("failed to hand the pipes to the switchboard: {e}"))?;
    Ok([stdin_r, stdout_w, stderr_w])
}

/// `phobos exec`: what to join, from [`INIT_JOIN_ENV`] ("<init pid>
/// <spec file>", the spec a [`LaunchInfo`] in the container directory).
struct Join {
    init_pid: i32,
    spec_file: String,
}

impl Join {
    fn parse(value: &str) -> Result<Self, String> {
        let bad = || format!("invalid {INIT_JOIN_ENV} '{value}'");
        let (pid, file) = value.split_once(' ').ok_or_else(bad)?;
        let init_pid = pid.parse().map_err(|_| bad())?;
        // A plain name inside the container directory, nothing else.
        if file.is_empty() || file.contains('/') || file.starts_with('.') {
            return Err(bad());
        }
        Ok(Self {
            init_pid,
            spec_file: file.to_owned(),
        })
    }

    /// Enters the namespaces of the container's init with setns(2) on a
    /// pidfd (Linux 5.8): all at once, and only while the pid still is that
    /// init (the pidfd pins it; the init lock proves whose it is). Children
    /// started afterwards are in its pid namespace.
    fn enter(&self, dir: &ContainerDir, info: &LaunchInfo) -> Result<(), String> {
        let gone = || "the container's init is gone; it is not running".to_owned();
        let pidfd = crate::sys::pidfd_open(self.init_pid).map_err(|_| gone())?;
        if !dir.init_alive().map_err(|e| e.to_string())? {
            return Err(gone());
        }
        // A nested container sharing its parent's pid namespace has it
        // only for its children: entered through init's
        // `pid_for_children`, opened while `/proc` still is the host's.
        let shares_pid = info
            .join_parent
            .as_ref()
            .is_some_and(|j| j.namespaces.contains(&Namespace::Pid));
        let children_pid_ns = match shares_pid {
            true => Some(
                nix::fcntl::open(
                    format!("/proc/{}/ns/pid_for_children", self.init_pid).as_str(),
                    OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| format!("failed to open the container's pid namespace: {e}"))?,
            ),
            false => None,
        };
        let flags = info.clone_flags();
        if flags == 0 && children_pid_ns.is_none() {
            return Ok(());
        }
        if let Some(fd) = &children_pid_ns {
            // SAFETY: setns(2) with a pid namespace descriptor we own; only
            // this helper's children enter it.
            if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWPID) } != 0 {
                return Err(format!(
                    "failed to join the container's pid namespace: {}",
                    std::io::Error::last_os_error()
                ));
            }
            if flags == 0 {
                return Ok(());
            }
        }
        // SAFETY: setns(2) with a pidfd we own and namespace flags; this
        // process is single-threaded, as joining a mount namespace needs.
        if unsafe { libc::setns(pidfd.as_raw_fd(), flags) } != 0 {
            return Err(format!(
                "failed to join the container's namespaces: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    }
}

/// A nested container's init joins its parent's namespaces (see
/// `crate::nested`): each opened as `/proc/<parent init>/ns/<name>` while
/// `/proc` still is the host's, the parent's init lock then proving the
/// pid was still the parent's init, and entered with setns(2), the mount
/// namespace last (it changes the root); a joined mount namespace is
/// unshared again so the child's mounts stay its own.
fn join_parent(parent: &crate::launch_info::ParentJoin) -> Result<(), String> {
    let mut opened = Vec::new();
    for ns in &parent.namespaces {
        let path = format!("/proc/{}/ns/{}", parent.pid, ns.proc_name());
        let fd = nix::fcntl::open(
            path.as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| format!("failed to open the parent's namespace {path}: {e}"))?;
        opened.push((*ns, fd));
    }
    let parent_dir = container_dir(&parent.runtime_dir)?;
    if !parent_dir.init_alive().map_err(|e| e.to_string())? {
        return Err("the parent container's init is gone; it is not running".into());
    }
    opened.sort_by_key(|(ns, _)| *ns == Namespace::Mount);
    for (ns, fd) in &opened {
        // SAFETY: setns(2) with a namespace descriptor we own and its
        // type; init is single-threaded, as joining a mount namespace needs.
        if unsafe { libc::setns(fd.as_raw_fd(), ns.clone_flag()) } != 0 {
            return Err(format!(
                "failed to join the parent's {} namespace: {}",
                ns.proc_name(),
                std::io::Error::last_os_error()
            ));
        }
    }
    if parent.own_mount && opened.iter().any(|(ns, _)| *ns == Namespace::Mount) {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
            .map_err(|e| format!("failed to unshare a mount namespace of its own: {e}"))?;
    }
    Ok(())
}

/// The rest of `phobos exec`'s helper: wait for the launcher, run the
/// command, and exit as it did (128 + N for signal N), recording nothing:
/// the container's own init owns its status.
fn run_joined(info: &LaunchInfo) -> Result<i32, String> {
    drop(wait_for_release()?);
    let ((status, _), _) = run_command(info, None)?;
    Ok(status.shell_exit_code())
}

fn container_dir(path: &Path) -> Result<ContainerDir, String> {
    let id = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| phobos_core::ContainerId::new(n).ok())
        .ok_or_else(|| format!("{} is not a container directory", path.display()))?;
    let root = path
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("{} is not a container directory", path.display()))?;
    phobos_core::RuntimeStore::new(root)
        .open(&id)
        .ok_or_else(|| format!("{} does not exist", path.display()))
}

/// Opens the memory cgroup and the sandbox that init's watches read and
/// points the launch info at them through `/proc/self/fd/N`: after the
/// pivot into a root filesystem the host paths are gone, but a magic link
/// of init's own descriptor still leads to them (the descriptors are
/// close-on-exec, so the command never holds them).
fn pin_watched_paths(info: &mut LaunchInfo) -> Result<Vec<OwnedFd>, String> {
    let open = |path: &Path| {
        nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| format!("failed to open {}: {e}", path.display()))
    };
    let via = |fd: &OwnedFd| PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    let mut pinned = Vec::new();
    if let Some(watch) = &mut info.oom_watch {
        let fd = open(watch.cgroup.cgroup().path())?;
        watch.cgroup.mount = via(&fd);
        watch.cgroup.rel = PathBuf::new();
        pinned.push(fd);
    }
    if let Some(watch) = &mut info.disk_watch {
        let fd = open(&watch.path)?;
        watch.path = via(&fd);
        pinned.push(fd);
    }
    Ok(pinned)
}

/// Pivots into the root filesystem, then makes the working directory when
/// the image lacks it (root-owned, as Mesos does, MESOS-7652).
fn enter_rootfs(plan: &crate::launch_info::RootfsPlan, info: &LaunchInfo) -> Result<(), String> {
    if !info.has(Namespace::Mount) {
        return Err("a root filesystem needs its own mount namespace".into());
    }
    crate::rootfs::enter(plan)?;
    std::fs::create_dir_all(&info.working_dir).map_err(|e| {
        format!(
            "failed to create the working directory {}: {e}",
            info.working_dir.display()
        )
    })
}

fn setup_namespaces(info: &LaunchInfo, premounted: Premount) -> Result<(), String> {
    crate::init_mounts::setup(info, premounted)?;
    if let Some(name) = &info.hostname {
        if !info.has(Namespace::Uts) {
            return Err("a hostname needs its own uts namespace".into());
        }
        nix::unistd::sethostname(name)
            .map_err(|e| format!("failed to set hostname '{name}': {e}"))?;
    }
    Ok(())
}

/// Binds the `/etc` files `network/cni` generated (written while init
/// waited for its release) over the host's, in the container's own mount
/// namespace, `nosuid,nodev,noexec` as Mesos does. A file the host lacks is
/// skipped rather than created on the host.
fn bind_etc_files(info: &LaunchInfo) -> Result<(), String> {
    let Some(files) = &info.etc_files else {
        return Ok(());
    };
    if !info.has(Namespace::Mount) {
        return Err("the generated /etc files need a mount namespace".into());
    }
    for (source, target) in [
        (&files.hosts, "/etc/hosts"),
        (&files.hostname, "/etc/hostname"),
        (&files.resolv_conf, "/etc/resolv.conf"),
    ] {
        if !Path::new(target).exists() {
            continue;
        }
        let bind = |flags: MsFlags| {
            mount(
                Some(source.as_path()),
                target,
                None::<&str>,
                flags,
                None::<&str>,
            )
            .map_err(|e| format!("failed to bind {} over {target}: {e}", source.display()))
        };
        bind(MsFlags::MS_BIND)?;
        bind(
            MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
        )?;
    }
    Ok(())
}

/// Forwards signals and reaps children until the command exits; meanwhile
/// keeps the limit watches and SIGKILLs the command when one is hit.
fn supervise(
    child: libc::pid_t,
    signals: &mut SignalFd,
    watches: &mut crate::init_watch::Watches,
) -> (WaitStatus, Option<crate::isolator::Limitation>) {
    let mut limitation = None;
    loop {
        if let Some(status) = reap(child) {
            return (status, limitation.or_else(|| watches.final_oom()));
        }
        if !watches.wait_signal(signals) {
            if limitation.is_none() {
                limitation = watches.check();
                if limitation.is_some() {
                    // SAFETY: kill(2) with our child's pid.
                    unsafe { libc::kill(child, libc::SIGKILL) };
                }
            }
            continue;
        }
        match signals.read_signal() {
            Ok(Some(info)) => {
                let sig = info.ssi_signo as i32;
                if sig != libc::SIGCHLD {
                    // SAFETY: kill(2) with our child's pid.
                    unsafe { libc::kill(child, signal_for_command(&info)) };
                }
            }
            Ok(None) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                eprintln!("phobos init: reading signals failed: {e}; waiting for the command");
                return (wait_blocking(child), limitation);
            }
        }
    }
}

/// The signal that asks init to send its command SIGKILL or SIGSTOP,
/// which init cannot be sent for it (they would end or stop init itself,
/// never reaching its signalfd): this one queued (`SI_QUEUE`) with
/// [`FORWARD_TAG`] | the signal as its value. A real-time signal, so
/// that it queues beside any other rather than merging with it.
pub(crate) fn forward_carrier() -> i32 {
    libc::SIGRTMAX()
}

/// The high bits of a [`forward_carrier`] value.
pub(crate) const FORWARD_TAG: i32 = 0x5048_0000;

/// What the command is sent for a signal init received: the same signal,
/// or the one a [`forward_carrier`] from a face carries.
fn signal_for_command(info: &libc::signalfd_siginfo) -> i32 {
    let sig = info.ssi_signo as i32;
    let carried = info.ssi_int & 0xff;
    let tagged = info.ssi_int & !0xff == FORWARD_TAG;
    match sig == forward_carrier() && info.ssi_code == libc::SI_QUEUE && tagged {
        true if carried == libc::SIGKILL || carried == libc::SIGSTOP => carried,
        _ => sig,
    }
}

/// Reaps every exited child; returns the command's status once it is gone.
fn reap(child: libc::pid_t) -> Option<WaitStatus> {
    let mut found = None;
    loop {
        let mut raw = 0;
        // SAFETY: waitpid with a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut raw, libc::WNOHANG) };
        if pid <= 0 {
            return found;
        }
        if pid == child {
            found = Some(WaitStatus(raw));
        }
    }
}

fn wait_blocking(child: libc::pid_t) -> WaitStatus {
    let mut raw = 0;
    // SAFETY: waitpid with a valid out-pointer on our own child.
    while unsafe { libc::waitpid(child, &mut raw, 0) } < 0 {}
    WaitStatus(raw)
}

/// As pid 1: SIGKILL every other process of the namespace and reap them, so
/// nothing outlives the command and its output is complete. Skipped when
/// the namespace's procfs shows init alone: `kill(-1)` walks every process
/// of the host under the global `tasklist_lock` (see [`crate::init_pidns`]).
fn kill_rest_of_namespace() {
    if crate::init_pidns::init_is_alone() {
        return;
    }
    // SAFETY: kill(-1) from pid 1 of a pid namespace reaches only that
    // namespace's processes (the caller checked both conditions).
    unsafe { libc::kill(-1, libc::SIGKILL) };
    while let Ok(_) | Err(nix::errno::Errno::EINTR) =
        waitpid(Pid::from_raw(-1), Some(WaitPidFlag::__WALL))
    {}
}
