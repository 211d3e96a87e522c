//! Hardening of the command, applied by init's command process between
//! its `clone` and its `execve`, in the order that keeps each step
//! possible: resource limits (`prlimit64(2)`), then the user switch (done
//! by init, with `PR_SET_KEEPCAPS` so the permitted set survives it), then
//! capabilities (`PR_CAPBSET_DROP`, `capset(2)`, ambient), then
//! `no_new_privs` (`PR_SET_NO_NEW_PRIVS`), then the seccomp filter last.
//!
//! Loading a filter needs `no_new_privs` or `CAP_SYS_ADMIN`; when the
//! command gets neither, the filter is loaded before the user switch and
//! the capability drop instead (as runc does), so the profile must allow
//! `setgroups`, `setgid`, `setuid`, `capset`, `prctl`, `chdir` and
//! `execve` (Docker's and the built-in default do).
//!
//! Everything is prepared in [`Prepared::new`], before the command's
//! `clone(CLONE_VM | CLONE_VFORK)`: the child only makes system calls on
//! it, and allocates nothing.

pub mod capabilities;
pub mod devices;
pub mod nnp;
pub mod rlimits;
pub mod seccomp;

use phobos_core::{CapabilitySets, Hardening};

/// A hardening step that failed in the command's process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    RLimit,
    Seccomp,
    Bounding,
    KeepCaps,
    Capabilities,
    Ambient,
    NoNewPrivs,
}

impl Step {
    pub fn what(self) -> &'static str {
        match self {
            Self::RLimit => "set a resource limit for",
            Self::Seccomp => "load the seccomp filter for",
            Self::Bounding => "drop from the capability bounding set of",
            Self::KeepCaps => "keep capabilities across the user switch of",
            Self::Capabilities => "set the capabilities of",
            Self::Ambient => "raise ambient capabilities of",
            Self::NoNewPrivs => "set no_new_privs for",
        }
    }
}

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`.
#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// The hardening, ready for a process that may not allocate.
pub struct Prepared {
    rlimits: Vec<(u32, libc::rlimit64)>,
    caps: Option<CapabilitySets>,
    /// The command runs as a non-root user (ambient capabilities).
    non_root: bool,
    switches_user: bool,
    no_new_privs: bool,
    filter: Vec<libc::sock_filter>,
    prog: Option<libc::sock_fprog>,
    /// Load the filter before the user switch (see the module docs).
    early_seccomp: bool,
}

impl Prepared {
    /// Prepares `h` for a command run as `uid` (`None`: init's own).
    pub fn new(h: &Hardening, uid: Option<u32>) -> Result<Self, String> {
        let mut rlimits = Vec::new();
        for l in &h.rlimits {
            let resource = rlimits::resource(&l.kind)
                .ok_or_else(|| format!("unknown rlimit type {:?}", l.kind))?;
            let value = |v: Option<u64>| v.unwrap_or(libc::RLIM64_INFINITY);
            rlimits.push((
                resource,
                libc::rlimit64 {
                    rlim_cur: value(l.soft),
                    rlim_max: value(l.hard),
                },
            ));
        }
        let filter = match &h.seccomp {
            Some(profile) => seccomp::compile(profile)?,
            None => Vec::new(),
        };
        let non_root = uid.is_some_and(|u| u != 0);
        let keeps_admin = match h.capabilities {
            Some(c) => {
                let mine = if non_root { c.non_root } else { c.effective };
                mine & capabilities::SYS_ADMIN != 0
            }
            None => !non_root,
        };
        let mut prepared = Self {
            rlimits,
            caps: h.capabilities,
            non_root,
            switches_user: uid.is_some(),
            no_new_privs: h.no_new_privileges,
            filter,
            prog: None,
            early_seccomp: !h.no_new_privileges && !keeps_admin,
        };
        if h.seccomp.is_some() {
            prepared.prog = Some(libc::sock_fprog {
                len: prepared.filter.len() as u16,
                filter: prepared.filter.as_mut_ptr(),
            });
        }
        Ok(prepared)
    }

    /// Whether anything is to be done.
    pub fn is_empty(&self) -> bool {
        self.rlimits.is_empty() && self.caps.is_none() && !self.no_new_privs && self.prog.is_none()
    }

    fn load_filter(&self) -> Result<(), Step> {
        if let Some(prog) = &self.prog {
            // SAFETY: seccomp(2) with a program that lives in `self`.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0,
                    prog as *const libc::sock_fprog,
                )
            };
            if r != 0 {
                return Err(Step::Seccomp);
            }
        }
        Ok(())
    }

    /// Before the user switch: limits, maybe the filter, the bounding set
    /// and `PR_SET_KEEPCAPS`. Only system calls; no allocation.
    pub fn before_user(&self) -> Result<(), Step> {
        for (resource, limit) in &self.rlimits {
            // SAFETY: prlimit64(2) on this process with a limit we own.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_prlimit64,
                    0,
                    *resource,
                    limit as *const libc::rlimit64,
                    std::ptr::null_mut::<libc::rlimit64>(),
                )
            };
            if r != 0 {
                return Err(Step::RLimit);
            }
        }
        if self.early_seccomp {
            self.load_filter()?;
        }
        if let Some(caps) = self.caps {
            for cap in 0..64u64 {
                if caps.bounding & (1 << cap) != 0 {
                    continue;
                }
                // SAFETY: prctl(2) with integer arguments.
                if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) } != 0 {
                    if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
                        break; // past the kernel's last capability
                    }
                    return Err(Step::Bounding);
                }
            }
            // SAFETY: prctl(2) with integer arguments.
            if self.switches_user && unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } != 0
            {
                return Err(Step::KeepCaps);
            }
        }
        Ok(())
    }

    /// After the user switch: the capability sets, ambient capabilities,
    /// `no_new_privs`, then the filter. Only system calls; no allocation.
    pub fn after_user(&self) -> Result<(), Step> {
        if let Some(caps) = self.caps {
            let mine = if self.non_root {
                caps.non_root
            } else {
                caps.effective
            };
            let header = CapHeader {
                version: CAPABILITY_VERSION_3,
                pid: 0,
            };
            let word = |m: u64, i: u32| (m >> (32 * i)) as u32;
            let data = [0, 1].map(|i| CapData {
                effective: word(mine, i),
                permitted: word(mine, i),
                inheritable: word(mine, i),
            });
            // SAFETY: capset(2) with a v3 header and its two data words.
            let r = unsafe {
                libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr())
            };
            if r != 0 {
                return Err(Step::Capabilities);
            }
            if self.non_root {
                for cap in 0..64u64 {
                    if mine & (1 << cap) == 0 {
                        continue;
                    }
                    // SAFETY: prctl(2) with integer arguments.
                    let r = unsafe {
                        libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE, cap, 0, 0)
                    };
                    if r != 0 {
                        return Err(Step::Ambient);
                    }
                }
            }
        }
        if self.no_new_privs {
            nnp::set().map_err(|_| Step::NoNewPrivs)?;
        }
        if !self.early_seccomp {
            self.load_filter()?;
        }
        Ok(())
    }
}
