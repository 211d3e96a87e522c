//! Whether init, as pid 1 of its pid namespace, is alone in it: read from
//! the namespace's own procfs (proc(5)), whose listing holds the pids of
//! that namespace only.
//!
//! Init used to `kill(-1, SIGKILL)` at every exit to take the rest of its
//! namespace with it. The kernel serves a `kill(-1)` from any namespace by
//! walking every process of the host under the read side of the global
//! `tasklist_lock`, which every `fork` and `exit` of the host takes for
//! writing: with thousands of processes on a host, the most costly call of
//! a launch's end, and one that holds up every other launch's `clone`.
//! When the listing shows init alone there is nothing to kill; a process
//! that joins in between (through `phobos exec`) is killed by the kernel
//! when init, the namespace's reaper, exits, as before.

use nix::dir::Dir;
use nix::fcntl::{OFlag, readlinkat};
use nix::sys::stat::Mode;
use nix::sys::statfs::{PROC_SUPER_MAGIC, fstatfs};

/// True only when `/proc` is a procfs of the caller's own pid namespace
/// (its `self` is 1: the caller is that namespace's init) and lists no
/// process but 1. Anything unexpected (no procfs there, another
/// namespace's, a read error) answers false, so the caller kills.
pub(crate) fn init_is_alone() -> bool {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let Ok(mut dir) = Dir::open("/proc", flags, Mode::empty()) else {
        return false;
    };
    if !fstatfs(&dir).is_ok_and(|s| s.filesystem_type() == PROC_SUPER_MAGIC) {
        return false;
    }
    match readlinkat(&dir, "self") {
        Ok(target) if target == "1" => {}
        _ => return false,
    }
    for entry in dir.iter() {
        let Ok(entry) = entry else {
            return false;
        };
        let name = entry.file_name().to_bytes();
        if !name.is_empty() && name.iter().all(u8::is_ascii_digit) && name != b"1" {
            return false;
        }
    }
    true
}
