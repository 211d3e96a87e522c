//! The one error type of this crate.
//!
//! Every variant names the file or directory it is about (and, for writes,
//! the value written), so a message read in a log says exactly which kernel
//! interface refused what. Messages are lower-case with no trailing period.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// What went wrong, and where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a control file (or mountinfo) failed.
    #[error("failed to read {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },

    /// Writing a value to a control file failed.
    #[error("failed to write {value:?} to {}: {source}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The value that was written.
        value: String,
        /// The underlying error.
        source: io::Error,
    },

    /// Creating a cgroup directory failed.
    #[error("failed to create cgroup {}: {source}", .path.display())]
    Create {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },

    /// Removing a cgroup directory failed.
    #[error("failed to remove cgroup {}: {source}", .path.display())]
    Remove {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },

    /// Listing a cgroup directory failed.
    #[error("failed to list cgroup {}: {source}", .path.display())]
    List {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },

    /// A control file held something we could not make sense of.
    #[error("failed to parse {}: {reason}", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },

    /// A kernel file was longer than any the kernel writes for it; it was
    /// not read to the end.
    #[error("{} is larger than {limit} bytes", .path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The most we read.
        limit: u64,
    },

    /// A line of mountinfo is malformed.
    #[error("malformed line {line} of {}: {reason}", .path.display())]
    Mountinfo {
        /// Where the mountinfo came from.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was wrong with it.
        reason: String,
    },

    /// The host has no cgroup filesystem mounted at all.
    #[error("no cgroup or cgroup2 filesystem is mounted according to {}", .path.display())]
    NotMounted {
        /// Where the mountinfo came from.
        path: PathBuf,
    },

    /// A controller is needed but the hierarchy does not offer it.
    #[error("controller {controller} is not available in {}", .path.display())]
    ControllerUnavailable {
        /// The cgroup (or mount) that lacks it.
        path: PathBuf,
        /// The controller's kernel name.
        controller: &'static str,
    },

    /// cgroup2 refused to enable controllers for the children of a cgroup
    /// that holds processes itself (EBUSY from `cgroup.subtree_control`):
    /// the no-internal-process rule of Documentation/admin-guide/cgroup-v2.rst.
    /// Typical under systemd when the cgroups root is put inside a service's
    /// own cgroup; docs/operations.md shows the layouts that work.
    #[error(
        "cannot enable {controllers} for the child cgroups of {}: it holds processes, \
         and cgroup v2's no-internal-process rule lets only a cgroup without processes \
         give controllers to its children (place the cgroups root outside any cgroup \
         that holds processes, see docs/operations.md)",
        .path.display()
    )]
    InternalProcesses {
        /// The populated cgroup.
        path: PathBuf,
        /// The controllers asked for, as written (`+cpu +memory`).
        controllers: String,
    },

    /// An operation did not finish in time.
    #[error("timed out after {timeout:?} waiting for {what} in {}", .path.display())]
    Timeout {
        /// The cgroup.
        path: PathBuf,
        /// What we were waiting for.
        what: &'static str,
        /// How long we waited.
        timeout: Duration,
    },

    /// Sending a signal to a process in the cgroup failed (other than
    /// because it had already gone).
    #[error("failed to send SIGKILL to pid {pid} of {}: {source}", .path.display())]
    Kill {
        /// The cgroup.
        path: PathBuf,
        /// The process.
        pid: i32,
        /// The underlying error.
        source: nix::Error,
    },

    /// A system call on a cgroup file (eventfd, poll) failed.
    #[error("{call} failed for {}: {source}", .path.display())]
    Sys {
        /// The file the call was about.
        path: PathBuf,
        /// The system call.
        call: &'static str,
        /// The underlying error.
        source: nix::Error,
    },

    /// The kernel or this hierarchy does not support what was asked.
    #[error("{what} is not supported by {}", .path.display())]
    Unsupported {
        /// The cgroup or mount.
        path: PathBuf,
        /// The unsupported feature.
        what: &'static str,
    },

    /// A value given to us is outside what the kernel accepts.
    #[error("invalid value {value:?} for {}: {reason}", .path.display())]
    InvalidValue {
        /// The file it was meant for.
        path: PathBuf,
        /// The value.
        value: String,
        /// Why it is invalid.
        reason: &'static str,
    },
}

impl Error {
    /// True when the underlying I/O error is "no such file or directory".
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::Read { source, .. }
            | Error::Write { source, .. }
            | Error::List { source, .. }
            | Error::Remove { source, .. } => source.kind() == io::ErrorKind::NotFound,
            _ => false,
        }
    }
}
