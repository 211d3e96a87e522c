//! Raw `waitpid(2)` statuses. Mesos passes these around instead of exit codes
//! (`ContainerTermination.status`), so Phobos does too and decodes them only at
//! the edges.

use serde::{Deserialize, Serialize};

/// A raw wait status as returned by `waitpid(2)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WaitStatus(pub i32);

impl WaitStatus {
    /// The status of a process that called `exit(code)`.
    pub fn exited(code: u8) -> Self {
        Self(i32::from(code) << 8)
    }

    /// The status of a process killed by `signal` (no core dump).
    pub fn signaled(signal: i32) -> Self {
        Self(signal & 0x7f)
    }

    pub fn raw(self) -> i32 {
        self.0
    }

    /// `WEXITSTATUS` when the process exited normally.
    pub fn exit_code(self) -> Option<i32> {
        libc::WIFEXITED(self.0).then(|| libc::WEXITSTATUS(self.0))
    }

    /// `WTERMSIG` when the process was killed by a signal.
    pub fn signal(self) -> Option<i32> {
        libc::WIFSIGNALED(self.0).then(|| libc::WTERMSIG(self.0))
    }

    /// The exit code a shell would report: the code itself, or 128 + signal.
    pub fn shell_exit_code(self) -> i32 {
        match (self.exit_code(), self.signal()) {
            (Some(code), _) => code,
            (None, Some(sig)) => 128 + sig,
            (None, None) => 255,
        }
    }
}

impl std::fmt::Display for WaitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.exit_code(), self.signal()) {
            (Some(code), _) => write!(f, "exited with status {code}"),
            (None, Some(sig)) => write!(f, "killed by signal {sig} ({})", signal_name(sig)),
            (None, None) => write!(f, "wait status {:#x}", self.0),
        }
    }
}

impl std::fmt::Debug for WaitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WaitStatus({:#x}: {self})", self.0)
    }
}

/// The conventional name of a signal number, e.g. `SIGKILL`.
pub fn signal_name(sig: i32) -> &'static str {
    SIGNALS
        .iter()
        .find(|(_, n)| *n == sig)
        .map_or("unknown signal", |(name, _)| name)
}

/// Parses `KILL`, `SIGKILL`, `kill` or `9` into a signal number.
pub fn parse_signal(text: &str) -> Option<i32> {
    if let Ok(n) = text.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNALS
        .iter()
        .find(|(n, _)| n.strip_prefix("SIG") == Some(name))
        .map(|(_, num)| *num)
}

const SIGNALS: &[(&str, i32)] = &[
    ("SIGHUP", libc::SIGHUP),
    ("SIGINT", libc::SIGINT),
    ("SIGQUIT", libc::SIGQUIT),
    ("SIGILL", libc::SIGILL),
    ("SIGTRAP", libc::SIGTRAP),
    ("SIGABRT", libc::SIGABRT),
    ("SIGBUS", libc::SIGBUS),
    ("SIGFPE", libc::SIGFPE),
    ("SIGKILL", libc::SIGKILL),
    ("SIGUSR1", libc::SIGUSR1),
    ("SIGSEGV", libc::SIGSEGV),
    ("SIGUSR2", libc::SIGUSR2),
    ("SIGPIPE", libc::SIGPIPE),
    ("SIGALRM", libc::SIGALRM),
    ("SIGTERM", libc::SIGTERM),
    ("SIGCHLD", libc::SIGCHLD),
    ("SIGCONT", libc::SIGCONT),
    ("SIGSTOP", libc::SIGSTOP),
    ("SIGTSTP", libc::SIGTSTP),
    ("SIGTTIN", libc::SIGTTIN),
    ("SIGTTOU", libc::SIGTTOU),
    ("SIGURG", libc::SIGURG),
    ("SIGXCPU", libc::SIGXCPU),
    ("SIGXFSZ", libc::SIGXFSZ),
    ("SIGVTALRM", libc::SIGVTALRM),
    ("SIGPROF", libc::SIGPROF),
    ("SIGWINCH", libc::SIGWINCH),
    ("SIGIO", libc::SIGIO),
    ("SIGPWR", libc::SIGPWR),
    ("SIGSYS", libc::SIGSYS),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_exits_and_signals() {
        let s = WaitStatus::exited(7);
        assert_eq!((s.raw(), s.exit_code(), s.signal()), (0x700, Some(7), None));
        assert_eq!(s.shell_exit_code(), 7);
        let k = WaitStatus::signaled(libc::SIGKILL);
        assert_eq!((k.exit_code(), k.signal()), (None, Some(9)));
        assert_eq!(k.shell_exit_code(), 137);
        assert_eq!(k.to_string(), "killed by signal 9 (SIGKILL)");
    }

    #[test]
    fn parses_signal_names() {
        assert_eq!(parse_signal("TERM"), Some(libc::SIGTERM));
        assert_eq!(parse_signal("sigkill"), Some(9));
        assert_eq!(parse_signal("15"), Some(15));
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_signal("NOPE"), None);
    }
}
