//! What `main` forks first thing, before the arguments are parsed, while
//! the process is single-threaded and small: `phobos run`'s init spawner,
//! or `phobos agent`'s spawner factory.
//!
//! A plain launch's container init is cloned by a spawner
//! (`phobos_mesos::launcher::spawner`), here a fork of this process made
//! while it is single-threaded and small: no exec, no second glibc
//! start-up (its `cpuid` cache probing, a VM exit each on a
//! paravirtualised guest), and the spawner's own set-up overlaps clap's
//! parse, the settings and the logging set-up.
//!
//! This is a guess from the raw arguments: `run` first, as root, no
//! agent, and none of the options that make a launch other than plain or
//! that name other settings before `--`. The parsed arguments decide: the
//! face uses the spawner only for a plain launch of this binary and
//! runtime directory (`Door::start_init_spawner`); a wrong guess costs an
//! unused spawner, killed and reaped when dropped, never a different
//! launch.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use phobos_config::Environment;
use phobos_runtime::{EarlyFactory, EarlySpawner, Flags, Settings};

use crate::cli::AGENT_ENV;

/// Long options after which the spawner is not started early: a launch
/// that is not plain (a terminal, an image or root filesystem, a nested
/// one), other settings or an agent, or no launch at all.
const NOT_PLAIN: [&[u8]; 10] = [
    b"tty",
    b"rootfs",
    b"parent",
    b"docker-image",
    b"image",
    b"runtime-dir",
    b"config",
    b"agent",
    b"help",
    b"version",
];

/// What was started for the command the arguments look like.
#[derive(Debug, Default)]
pub struct Early {
    pub spawner: Option<EarlySpawner>,
    pub factory: Option<EarlyFactory>,
}

/// Starts what the command the raw arguments look like can use.
pub fn start() -> Early {
    Early {
        spawner: spawner_for_run(),
        factory: factory_for_agent(),
    }
}

/// The spawner factory (`phobos_mesos::launcher::spawner::factory`) for
/// what looks like `phobos agent` as root: `agent` after nothing but
/// global options (the parse decides; a wrong guess costs a factory,
/// killed and reaped when dropped).
fn factory_for_agent() -> Option<EarlyFactory> {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if !looks_like_agent(&args) || !nix::unistd::geteuid().is_root() {
        return None;
    }
    let exe = std::env::current_exe().ok()?;
    // The agent raises its descriptor limit (`phobos_agent::serve`), and
    // the inits it clones itself inherit that: so must those its
    // spawners clone, which inherit the factory's.
    phobos_agent::raise_fd_limit();
    // SAFETY: `main` calls this first, before anything could start a
    // thread; `exe` is this binary.
    unsafe { EarlyFactory::start(&exe) }
}

/// Whether the first argument that is neither an option nor the value of
/// one (`--name value`) is `agent`.
fn looks_like_agent(args: &[OsString]) -> bool {
    let mut value_next = false;
    for arg in args {
        let bytes = arg.as_bytes();
        if value_next {
            value_next = false;
            continue;
        }
        if bytes == b"--" {
            return false;
        }
        if let Some(long) = bytes.strip_prefix(b"--") {
            value_next = !long.contains(&b'=');
            continue;
        }
        if bytes.starts_with(b"-") {
            continue;
        }
        return bytes == b"agent";
    }
    false
}

/// The spawner for a `phobos run` that looks plain, started now.
fn spawner_for_run() -> Option<EarlySpawner> {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if !looks_plain(&args) || !nix::unistd::geteuid().is_root() {
        return None;
    }
    if std::env::var_os(AGENT_ENV).is_some() {
        return None;
    }
    // The runtime directory as `context::resolve` finds it without flags
    // (the pre-scan let none through): the variable clap reads, else the
    // configuration file, else the default.
    let runtime_dir = match std::env::var_os("PHOBOS_RUNTIME_DIR") {
        Some(dir) if dir.is_empty() => return None,
        dir => dir.map(Into::into),
    };
    let flags = Flags {
        runtime_dir,
        ..Flags::default()
    };
    let settings = Settings::load(&flags, &Environment::from_process()).ok()?;
    let exe = std::env::current_exe().ok()?;
    // SAFETY: `main` calls this first, before anything could start a
    // thread; `exe` is this binary.
    unsafe { EarlySpawner::start(&exe, settings.runtime_dir()) }
}

/// Whether `args` (without the program's name) start with `run` and hold
/// none of [`NOT_PLAIN`], `-t` or `-h` (alone or in a cluster of short
/// options) before `--`. Arguments of the command itself are looked at
/// too: a `-t` there only costs the early start.
fn looks_plain(args: &[OsString]) -> bool {
    let Some((first, rest)) = args.split_first() else {
        return false;
    };
    if first != "run" {
        return false;
    }
    for arg in rest {
        let arg = arg.as_bytes();
        if arg == b"--" {
            break;
        }
        if let Some(long) = arg.strip_prefix(b"--") {
            let name = long.split(|b| *b == b'=').next().unwrap_or_default();
            if NOT_PLAIN.contains(&name) {
                return false;
            }
        } else if let Some(short) = arg.strip_prefix(b"-")
            && short.iter().any(|b| matches!(b, b't' | b'h'))
        {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(args: &[&str]) -> bool {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        looks_plain(&args)
    }

    #[test]
    fn a_plain_run_is_recognised() {
        assert!(plain(&["run", "--", "/bin/true"]));
        assert!(plain(&["run", "/bin/true"]));
        assert!(plain(&[
            "run",
            "--isolation",
            "namespaces/pid",
            "-d",
            "--",
            "sleep",
            "1"
        ]));
        assert!(plain(&[
            "run", "-e", "A=b", "--rm", "--", "sh", "-c", "true", "-t"
        ]));
        assert!(plain(&["run", "--cpus=1", "--mem", "64MB", "/bin/true"]));
    }

    fn agent(args: &[&str]) -> bool {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        looks_like_agent(&args)
    }

    #[test]
    fn an_agent_is_recognised_after_global_options() {
        assert!(agent(&["agent"]));
        assert!(agent(&["agent", "--listen", "tcp:127.0.0.1:1"]));
        assert!(agent(&[
            "--runtime-dir",
            "/run/x",
            "--cgroups-root",
            "y",
            "agent"
        ]));
        assert!(agent(&["--runtime-dir=/run/x", "-v", "agent"]));
        assert!(!agent(&[]));
        assert!(!agent(&["run", "--", "agent"]));
        assert!(!agent(&["--runtime-dir", "agent", "run"]));
        assert!(!agent(&["--", "agent"]));
        assert!(!agent(&["ps"]));
    }

    #[test]
    fn anything_else_is_not() {
        assert!(!plain(&[]));
        assert!(!plain(&["exec", "ID", "--", "/bin/true"]));
        assert!(!plain(&["--runtime-dir", "/run/x", "run", "/bin/true"]));
        assert!(!plain(&["run", "-it", "--", "sh"]));
        assert!(!plain(&["run", "-t", "sh"]));
        assert!(!plain(&["run", "--tty", "sh"]));
        assert!(!plain(&["run", "--rootfs=/r", "sh"]));
        assert!(!plain(&["run", "--image", "docker:///busybox", "sh"]));
        assert!(!plain(&["run", "--docker-image", "busybox", "sh"]));
        assert!(!plain(&["run", "--parent", "P", "sh"]));
        assert!(!plain(&["run", "--runtime-dir=/run/x", "sh"]));
        assert!(!plain(&["run", "--config", "/etc/x.toml", "sh"]));
        assert!(!plain(&["run", "--agent", "/run/a.sock", "sh"]));
        assert!(!plain(&["run", "--help"]));
        assert!(!plain(&["run", "-h"]));
    }
}
