//! The mounts init makes in a new mount namespace of a container without
//! a root filesystem (mount(2)): `/` made a recursive slave (the host's
//! unmounts and new mounts still reach the container, nothing of the
//! container's reaches the host), a fresh `/proc` for a new pid namespace
//! and a private tmpfs at `/dev/shm` for a new ipc namespace.
//!
//! A pre-started spawner (`launcher::zygote`) makes the first and the
//! last before it is sent its container, off the launch's path: they
//! depend only on the mount and ipc namespaces it was cloned into and on
//! two fields of the launch info, which together make its [`Premount`]
//! (`/proc` waits for init: it shows the pid namespace init is cloned
//! into). The face sends a launch only to a spawner whose premount is the
//! launch's [`Premount::for_launch`], and init checks it again before it
//! skips what was mounted.

use std::path::Path;

use nix::mount::{MsFlags, mount};

use crate::launch_info::{LaunchInfo, Namespace};

/// In a pre-started spawner's environment: what it mounted before it was
/// sent its container ([`Premount::to_env`]).
pub const INIT_PREMOUNT_ENV: &str = "PHOBOS_INIT_PREMOUNT";

/// The mounts made before a container is known: every field true names
/// one that is done (or, for `/dev/shm`, one the host has no directory
/// for, which init would skip as well).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Premount {
    /// `/` is a recursive slave.
    pub slave: bool,
    /// A private `/dev/shm` of the default size is mounted.
    pub shm: bool,
}

impl Premount {
    /// What a pre-started spawner may mount ahead for `info`: its mount
    /// namespace's set-up when it has no root filesystem, a `/dev/shm`
    /// only of the default size (a size is the container's).
    pub fn for_launch(info: &LaunchInfo) -> Self {
        let own_mounts = info.has(Namespace::Mount) && info.rootfs.is_none();
        Self {
            slave: own_mounts,
            shm: own_mounts && info.private_shm && info.hardening.shm_size.is_none(),
        }
    }

    /// The value of [`INIT_PREMOUNT_ENV`]: the names of the mounts, comma
    /// separated.
    pub fn to_env(self) -> String {
        [(self.slave, "slave"), (self.shm, "shm")]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, name)| *name)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Parses [`Self::to_env`]'s form; unknown names are refused.
    pub fn from_env(value: &str) -> Result<Self, String> {
        let mut premount = Self::default();
        for name in value.split(',').filter(|n| !n.is_empty()) {
            match name {
                "slave" => premount.slave = true,
                "shm" => premount.shm = true,
                other => return Err(format!("unknown pre-mount '{other}'")),
            }
        }
        Ok(premount)
    }

    /// Makes the mounts this names (in the spawner, in its own mount
    /// namespace). `/dev/shm` needs `slave`: it is never mounted where it
    /// would propagate to the host.
    pub fn mount(self) -> Result<(), String> {
        if !self.slave {
            return match self.shm {
                true => Err("pre-mounts without a slave root".into()),
                false => Ok(()),
            };
        }
        make_root_slave()?;
        if self.shm {
            mount_shm(None)?;
        }
        Ok(())
    }
}

/// Sets up the mount namespace of a container without a root filesystem
/// as `info` asks, but for what `done` says is mounted already (which
/// must be what the launch would pre-mount, [`Premount::for_launch`]).
pub(crate) fn setup(info: &LaunchInfo, done: Premount) -> Result<(), String> {
    if done != Premount::default() && done != Premount::for_launch(info) {
        return Err(format!(
            "the pre-started spawner mounted {done:?}, the launch asks for {:?}",
            Premount::for_launch(info)
        ));
    }
    if !info.has(Namespace::Mount) {
        return Ok(());
    }
    if !done.slave {
        make_root_slave()?;
    }
    // A root filesystem gets its own /proc and /dev/shm (crate::rootfs).
    if info.mount_proc && info.rootfs.is_none() {
        mount_proc()?;
    }
    if info.private_shm && info.rootfs.is_none() && !done.shm {
        mount_shm(info.hardening.shm_size)?;
    }
    Ok(())
}

fn make_root_slave() -> Result<(), String> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| format!("failed to make / a recursive slave mount: {e}"))
}

const HARDENED: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

fn mount_proc() -> Result<(), String> {
    mount(Some("proc"), "/proc", Some("proc"), HARDENED, None::<&str>)
        .map_err(|e| format!("failed to mount a fresh /proc: {e}"))
}

/// A private `/dev/shm` of `size` bytes (the kernel's default without);
/// nothing where the host has no `/dev/shm` directory.
fn mount_shm(size: Option<u64>) -> Result<(), String> {
    if !Path::new("/dev/shm").is_dir() {
        return Ok(());
    }
    let options = match size {
        Some(bytes) => format!("mode=1777,size={bytes}"),
        None => "mode=1777".to_owned(),
    };
    mount(
        Some("shm"),
        "/dev/shm",
        Some("tmpfs"),
        HARDENED,
        Some(options.as_str()),
    )
    .map_err(|e| format!("failed to mount a private /dev/shm: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(namespaces: &[Namespace], proc: bool, shm: bool) -> LaunchInfo {
        LaunchInfo {
            namespaces: namespaces.to_vec(),
            mount_proc: proc,
            private_shm: shm,
            ..LaunchInfo::default()
        }
    }

    #[test]
    fn a_launch_pre_mounts_only_in_its_own_mount_namespace() {
        let all = [
            Namespace::Mount,
            Namespace::Pid,
            Namespace::Ipc,
            Namespace::Uts,
        ];
        let p = Premount::for_launch(&info(&all, true, true));
        assert_eq!(
            p,
            Premount {
                slave: true,
                shm: true
            }
        );
        let none = Premount::for_launch(&info(&[Namespace::Pid], true, true));
        assert_eq!(none, Premount::default());
        // A sized /dev/shm is the container's own: init mounts it.
        let mut sized = info(&all, true, true);
        sized.hardening.shm_size = Some(1 << 20);
        assert!(!Premount::for_launch(&sized).shm);
        // So is everything of a container with a root filesystem.
        let mut rooted = info(&all, true, true);
        rooted.rootfs = Some(crate::launch_info::RootfsPlan {
            root: "/x".into(),
            binds: Vec::new(),
            devices: Vec::new(),
            mount_api: phobos_core::mount_api::MountApi::default(),
            shm_size: None,
        });
        assert_eq!(Premount::for_launch(&rooted), Premount::default());
    }

    #[test]
    fn the_environment_form_round_trips() {
        for p in [
            Premount::default(),
            Premount {
                slave: true,
                shm: false,
            },
            Premount {
                slave: true,
                shm: true,
            },
        ] {
            assert_eq!(Premount::from_env(&p.to_env()), Ok(p));
        }
        assert!(Premount::from_env("slave,sys").is_err());
    }

    #[test]
    fn init_refuses_mounts_the_launch_did_not_ask_for() {
        let launch = info(&[Namespace::Mount], false, false);
        let done = Premount {
            slave: true,
            shm: true,
        };
        assert!(setup(&launch, done).is_err());
    }
}
