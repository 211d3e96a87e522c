//! Running one CNI plugin: `execve` of the binary with the CNI environment
//! (`CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME`,
//! `CNI_PATH`, and `PATH` for the tools plugins call), the network
//! configuration on stdin, its result on stdout.
//!
//! The plugin's exit is awaited on a pidfd (pidfd_open(2)) with poll(2),
//! so a plugin that hangs is killed with pidfd_send_signal(2) after the
//! timeout without any risk of signalling a recycled pid. Its stdout and
//! stderr are read to the end but kept only up to [`MAX_OUTPUT`] bytes
//! each.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Most bytes of stdout or stderr kept from one plugin run.
pub const MAX_OUTPUT: usize = 1 << 20;

/// `PATH` for plugins (they run iptables, ip, ...).
const PLUGIN_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A CNI operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CniCommand {
    /// Attach.
    Add,
    /// Detach.
    Del,
    /// Verify.
    Check,
}

impl CniCommand {
    /// The `CNI_COMMAND` value.
    pub fn as_str(self) -> &'static str {
        match self {
            CniCommand::Add => "ADD",
            CniCommand::Del => "DEL",
            CniCommand::Check => "CHECK",
        }
    }
}

/// The environment of one invocation.
#[derive(Debug, Clone, Copy)]
pub struct Invocation<'a> {
    /// The operation.
    pub command: CniCommand,
    /// `CNI_CONTAINERID`.
    pub container_id: &'a str,
    /// `CNI_NETNS` (may be absent for DEL).
    pub netns: Option<&'a Path>,
    /// `CNI_IFNAME`.
    pub ifname: &'a str,
    /// `CNI_PATH`.
    pub cni_path: &'a str,
    /// Time limit.
    pub timeout: Duration,
}

/// What a plugin run produced.
#[derive(Debug)]
pub struct Output {
    /// How it ended.
    pub status: ExitStatus,
    /// Its stdout, at most [`MAX_OUTPUT`] bytes.
    pub stdout: Vec<u8>,
    /// Its stderr, at most [`MAX_OUTPUT`] bytes.
    pub stderr: Vec<u8>,
    /// Whether stdout was longer than [`MAX_OUTPUT`].
    pub stdout_truncated: bool,
}

/// Why a run produced no output.
#[derive(Debug)]
pub enum RunError {
    /// The binary could not be started.
    Spawn(std::io::Error),
    /// It ran past the timeout and was killed.
    Timeout,
}

/// Runs `binary` with `stdin` as input.
pub fn run(binary: &Path, invocation: &Invocation<'_>, stdin: &[u8]) -> Result<Output, RunError> {
    let mut command = Command::new(binary);
    command
        .env_clear()
        .env("CNI_COMMAND", invocation.command.as_str())
        .env("CNI_CONTAINERID", invocation.container_id)
        .env("CNI_IFNAME", invocation.ifname)
        .env("CNI_PATH", invocation.cni_path)
        .env("PATH", PLUGIN_PATH)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(netns) = invocation.netns {
        command.env("CNI_NETNS", netns);
    }
    let mut child = command.spawn().map_err(RunError::Spawn)?;
    let pidfd = match pidfd_open(child.id()) {
        Ok(fd) => fd,
        Err(e) => {
            // Without a pidfd the child cannot be timed safely: stop it
            // while it is certainly still ours (unreaped).
            let _ = child.kill();
            let _ = child.wait();
            return Err(RunError::Spawn(e));
        }
    };
    let mut input = child.stdin.take();
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            if let Some(pipe) = input.as_mut() {
                // A plugin that does not read its config gets EPIPE here.
                let _ = pipe.write_all(stdin);
            }
            drop(input);
        });
        let stdout = scope.spawn(move || read_bounded(out.as_mut()));
        let stderr = scope.spawn(move || read_bounded(err.as_mut()));
        let exited = wait_exit(&pidfd, invocation.timeout);
        if !exited {
            kill(&pidfd);
        }
        let status = wait_child(&mut child);
        let (stdout, stdout_truncated) = stdout.join().unwrap_or_default();
        let (stderr, _) = stderr.join().unwrap_or_default();
        match (exited, status) {
            (false, _) => Err(RunError::Timeout),
            (true, Err(e)) => Err(RunError::Spawn(e)),
            (true, Ok(status)) => Ok(Output {
                status,
                stdout,
                stderr,
                stdout_truncated,
            }),
        }
    })
}

fn wait_child(child: &mut Child) -> std::io::Result<ExitStatus> {
    child.wait()
}

/// Reads a pipe to its end, keeping at most [`MAX_OUTPUT`] bytes.
fn read_bounded<R: Read>(pipe: Option<&mut R>) -> (Vec<u8>, bool) {
    let Some(pipe) = pipe else {
        return (Vec::new(), false);
    };
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buf = [0u8; 8192];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let room = MAX_OUTPUT - kept.len();
                if n > room {
                    truncated = true;
                }
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    (kept, truncated)
}

fn pidfd_open(pid: u32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Waits until the process behind `pidfd` exits or `timeout` passes.
fn wait_exit(pidfd: &OwnedFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        let mut fds = [libc::pollfd {
            fd: pidfd.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: `fds` is a valid array of one pollfd for the whole call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) };
        if n > 0 {
            return true;
        }
        if n == 0 {
            return false;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return false;
        }
    }
}

fn kill(pidfd: &OwnedFd) {
    // SAFETY: pidfd_send_signal with a valid pidfd, a signal number, a null
    // siginfo (allowed) and no flags.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, body: &str) -> std::path::PathBuf {
        let path = dir.join("plugin");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn invocation(timeout: Duration) -> Invocation<'static> {
        Invocation {
            command: CniCommand::Add,
            container_id: "c1",
            netns: Some(Path::new("/run/x")),
            ifname: "eth0",
            cni_path: "/usr/lib/cni",
            timeout,
        }
    }

    #[test]
    fn passes_the_environment_and_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let p = script(
            dir.path(),
            r#"echo "$CNI_COMMAND $CNI_CONTAINERID $CNI_NETNS $CNI_IFNAME $CNI_PATH $(cat)"; env | grep -c . >&2"#,
        );
        let out = run(&p, &invocation(Duration::from_secs(60)), b"{}").unwrap();
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "ADD c1 /run/x eth0 /usr/lib/cni {}\n"
        );
        // Only the CNI variables and PATH (the shell adds PWD, SHLVL, _).
        let count: usize = String::from_utf8_lossy(&out.stderr).trim().parse().unwrap();
        assert!(count <= 9, "{count}");
    }

    #[test]
    fn a_hanging_plugin_is_killed_at_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let p = script(dir.path(), "exec sleep 600");
        let start = Instant::now();
        let err = run(&p, &invocation(Duration::from_millis(300)), b"").unwrap_err();
        assert!(matches!(err, RunError::Timeout), "{err:?}");
        assert!(start.elapsed() < Duration::from_secs(60));
    }

    #[test]
    fn output_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let p = script(dir.path(), "head -c 3000000 /dev/zero");
        let out = run(&p, &invocation(Duration::from_secs(60)), b"").unwrap();
        assert_eq!(out.stdout.len(), MAX_OUTPUT);
        assert!(out.stdout_truncated);
    }

    #[test]
    fn a_missing_binary_is_a_spawn_error() {
        let err = run(
            Path::new("/nonexistent/plugin"),
            &invocation(Duration::from_secs(1)),
            b"",
        )
        .unwrap_err();
        assert!(matches!(err, RunError::Spawn(_)));
    }
}
