//! The pre-started init spawner (a "zygote") a long-running face (the
//! agent) keeps for its next plain launch: one made ahead by the face's
//! spawner factory (`launcher::spawner::factory`, a fork of the face, no
//! exec) in the mount, ipc and uts namespaces the last plain launch asked
//! for, with their mounts made. A launch that asks for the same sends it
//! the container as `phobos run` sends its spawner one
//! (`launcher::spawner`): the spawner joins the container's v1 cgroups
//! and clones its init into a new pid namespace and the cgroup2 kill
//! cgroup, so the launch neither makes those namespaces nor moves a
//! process through `cgroup.procs`. Each spawner is used once; every
//! container gets namespaces of its own.
//!
//! Nothing is left behind: a spawner's only tie to the world before its
//! launch is its end of the socket, and it exits when the socket reports
//! end-of-file, which the kernel does as soon as the face that holds the
//! other end (close-on-exec, never inherited) exits, however it dies. It
//! is in no cgroup of ours until its launch (it lives in the face's own).

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::LaunchError;
use super::spawner::Spawner;
use super::spawner::factory::SpawnerFactory;
use crate::init_mounts::Premount;

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

/// The pre-started spawner a face keeps (at most one), its factory, and
/// the namespaces and pre-mounts the last plain launch asked for, which
/// the next one is made with.
#[derive(Debug)]
pub struct Zygotes {
    factory: SpawnerFactory,
    runtime_dir: PathBuf,
    state: Mutex<Slot>,
}

#[derive(Debug, Default)]
struct Slot {
    ready: Option<Spawner>,
    wanted: Option<(libc::c_int, Premount)>,
}

impl Zygotes {
    /// Spawners from `factory` for the containers of `runtime_dir`.
    pub fn new(factory: SpawnerFactory, runtime_dir: &Path) -> Self {
        Self {
            factory,
            runtime_dir: runtime_dir.to_owned(),
            state: Mutex::default(),
        }
    }

    /// The ready spawner if it was made for `clone_flags`' namespaces and
    /// `premount`'s mounts; remembers both for the next one either way
    /// (one made otherwise is ended).
    pub fn take(&self, clone_flags: libc::c_int, premount: Premount) -> Option<Spawner> {
        let ready = {
            let mut slot = self.state.lock().unwrap_or_else(|e| e.into_inner());
            slot.wanted = Some((clone_flags, premount));
            slot.ready.take()
        };
        ready.filter(|s| s.made_for(clone_flags, premount))
    }

    /// Has the factory make a spawner when none is ready and a launch has
    /// said which namespaces it wants (a clone, its namespaces and mounts:
    /// off the launches' path). Returns whether one was made.
    pub fn refill(&self) -> Result<bool, LaunchError> {
        if self.factory.gone() {
            return Ok(false);
        }
        let wanted = {
            let slot = self.state.lock().unwrap_or_else(|e| e.into_inner());
            match (&slot.ready, slot.wanted) {
                (None, Some(wanted)) => wanted,
                _ => return Ok(false),
            }
        };
        let spawner = self
            .factory
            .spawner(&self.runtime_dir, wanted.0, wanted.1)?;
        let unwanted = {
            let mut slot = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if slot.ready.is_some() || slot.wanted != Some(wanted) {
                Some(spawner)
            } else {
                slot.ready = Some(spawner);
                None
            }
        };
        // Ended (and reaped) outside the lock.
        Ok(unwanted.is_none())
    }

    /// The ready spawner's pid, if one is ready.
    pub fn ready_pid(&self) -> Option<i32> {
        let slot = self.state.lock().unwrap_or_else(|e| e.into_inner());
        slot.ready.as_ref().map(Spawner::pid)
    }

    /// The factory's pid.
    pub fn factory_pid(&self) -> i32 {
        self.factory.pid()
    }

    /// Ends the ready spawner, if any, and makes no more (the face stops).
    pub fn drain(&self) {
        let ready = {
            let mut slot = self.state.lock().unwrap_or_else(|e| e.into_inner());
            slot.wanted = None;
            slot.ready.take()
        };
        drop(ready);
    }
}
