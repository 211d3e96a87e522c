//! `--no-new-privileges` (Mesos `linux/nnp`): `prctl(PR_SET_NO_NEW_PRIVS)`
//! makes `execve` never grant privileges (setuid bits and file
//! capabilities are ignored) for the command and everything it starts.

/// Sets `no_new_privs` on the calling process; one system call.
/// Allocates nothing (the caller's process may share init's memory); the
/// error is errno.
pub fn set() -> Result<(), i32> {
    // SAFETY: prctl(2) with integer arguments.
    match unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0)),
    }
}
