//! What `phobos top` samples, once a second, for every container of both
//! containerizers, without an agent and without asking the Docker engine
//! per refresh: the runtime directory (`state` symlinks, read with
//! `readlinkat(2)` on the record's directory descriptor kept open) and the
//! kernel's accounting, read with `pread(2)` at offset 0 on files opened
//! once per container:
//!
//! - CPU: cgroup v1 `cpuacct.usage` (ns), cgroup v2 `cpu.stat`
//!   `usage_usec`; the percentage is the delta between two refreshes over
//!   the wall time between them (100 % = one busy CPU);
//! - memory: v1 `memory.usage_in_bytes` and `memory.limit_in_bytes`, v2
//!   `memory.current` and `memory.max`;
//! - tasks: `pids.current`;
//! - network: `/proc/<init>/net/dev` of a container with a network
//!   namespace of its own (not the host's, not its parent's), every
//!   interface but `lo`; the file stays bound to the namespace.
//!
//! A new container costs more once: its `config` is parsed, its cgroups
//! found (a Mesos container's from its config, a Docker container's from
//! `/proc/<pid>/cgroup` of the pid the engine gives once) and its files
//! opened. A refresh then costs a few system calls per container. A
//! Docker container whose pid the engine did not give (unreachable, or not
//! answering yet) is asked again every [`ENGINE_RETRY`] refreshes until it
//! does, so its columns fill in once the engine is back.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::Instant;

use nix::fcntl::{OFlag, openat, readlinkat};
use nix::sys::stat::Mode;
use phobos_cgroups::{Controller, Hierarchies, ProcCgroups, Version};
use phobos_core::store::{CONFIG_FILE, STATE_FILE, TERMINATION_FILE};
use phobos_core::{ContainerConfig, ContainerId, ContainerState, StateRecord, Termination};

use phobos_docker::DockerRecord;

use crate::Door;

/// The directory holding container records in a store, and nested ones
/// in a record.
const CONTAINERS: &str = "containers";
/// A Docker record's engine part.
const DOCKER_FILE: &str = "docker";
/// Refreshes between two questions to the engine for a Docker container
/// whose pid it has not given yet.
pub const ENGINE_RETRY: u64 = 5;

/// Which containerizer holds a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Mesos,
    Docker,
}

/// One container in one refresh.
#[derive(Clone, Debug)]
pub struct Row {
    pub id: ContainerId,
    pub kind: Kind,
    pub state: ContainerState,
    /// How it ended, once TERMINATED.
    pub termination: Option<Termination>,
    /// CPU use since the previous refresh, in percent of one CPU; `None`
    /// on the first sight or when nothing measures it.
    pub cpu_percent: Option<f64>,
    pub mem_bytes: Option<u64>,
    /// The memory limit; `None` when unlimited or unknown.
    pub mem_limit_bytes: Option<u64>,
    /// Tasks (threads) in its cgroup.
    pub pids: Option<u64>,
    /// Bytes per second received and sent since the previous refresh, for
    /// a container with a network namespace of its own.
    pub net_rx_rate: Option<f64>,
    pub net_tx_rate: Option<f64>,
    /// Seconds since it was launched.
    pub uptime_secs: f64,
    pub command: String,
}

/// The accounting files of a running container, opened once.
#[derive(Default)]
struct Probes {
    cpu: Option<(File, Version)>,
    mem: Option<File>,
    mem_limit: Option<File>,
    pids: Option<File>,
    net: Option<File>,
    /// The refresh at which to probe again: a Docker container whose pid
    /// the engine did not give.
    again_at: Option<u64>,
}

/// A container seen by an earlier refresh.
struct Tracked {
    kind: Kind,
    /// The record's directory (`O_PATH`), for `readlinkat` of `state`.
    record: OwnedFd,
    command: String,
    started_at: f64,
    /// Whether its config asks for a network namespace of its own.
    own_network: bool,
    termination: Option<Termination>,
    /// `None` until it was seen RUNNING (then tried once).
    probes: Option<Probes>,
    /// The previous CPU reading (ns) and when.
    last_cpu: Option<(u64, Instant)>,
    /// The previous network reading (rx, tx bytes) and when.
    last_net: Option<(u64, u64, Instant)>,
    /// The refresh that last saw its record.
    seen: u64,
}

/// Samples every container; keep one across refreshes so CPU and
/// network rates have a previous reading and files stay open.
pub struct Sampler<'a> {
    door: &'a Door,
    hierarchies: Option<Hierarchies>,
    /// The host's network namespace (inode), which containers sharing it
    /// do not get network columns for.
    host_netns: Option<u64>,
    tracked: HashMap<ContainerId, Tracked>,
    generation: u64,
    buf: Vec<u8>,
}

impl Door {
    /// A sampler for `phobos top`.
    pub fn top(&self) -> Sampler<'_> {
        Sampler {
            door: self,
            hierarchies: Hierarchies::detect().ok(),
            host_netns: netns_inode("/proc/self/ns/net"),
            tracked: HashMap::new(),
            generation: 0,
            buf: vec![0; 16 * 1024],
        }
    }
}

impl Sampler<'_> {
    /// One refresh: every container known now, nested ones included, in no
    /// particular order.
    pub fn refresh(&mut self) -> Vec<Row> {
        self.generation += 1;
        let mesos_root = self.door.mesos_store_root().join(CONTAINERS);
        let docker_root = self.door.docker_store_root().join(CONTAINERS);
        self.discover(&mesos_root, None, Kind::Mesos);
        self.discover(&docker_root, None, Kind::Docker);
        let generation = self.generation;
        self.tracked.retain(|_, t| t.seen == generation);

        let now = Instant::now();
        let wall_now = phobos_core::time::now_secs();
        let ids: Vec<ContainerId> = self.tracked.keys().cloned().collect();
        let mut rows = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(row) = self.sample(&id, now, wall_now) {
                rows.push(row);
            }
        }
        rows
    }

    /// Marks every container under the store directory `dir` seen, and
    /// tracks new ones; recurses into nested containers' directories.
    fn discover(&mut self, dir: &Path, parent: Option<&ContainerId>, kind: Kind) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            // Real directories only: a symlink in a store is no container.
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            // Records being created are hidden (`.name`) and not IDs.
            let Ok(leaf) = ContainerId::new(name) else {
                continue;
            };
            let id = match parent {
                Some(p) => match p.child(&leaf) {
                    Ok(id) => id,
                    Err(_) => continue,
                },
                None => leaf,
            };
            let path = entry.path();
            if let Some(t) = self.tracked.get_mut(&id) {
                t.seen = self.generation;
            } else if let Some(t) = track(&path, kind, self.generation) {
                self.tracked.insert(id.clone(), t);
            } else {
                continue;
            }
            if kind == Kind::Mesos {
                let nested = path.join(CONTAINERS);
                if std::fs::symlink_metadata(&nested).is_ok_and(|m| m.is_dir()) {
                    self.discover(&nested, Some(&id), kind);
                }
            }
        }
    }

    fn sample(&mut self, id: &ContainerId, now: Instant, wall_now: f64) -> Option<Row> {
        let t = self.tracked.get(id)?;
        let state = read_state(&t.record, t.kind);
        let due = match &t.probes {
            None => true,
            Some(p) => p.again_at.is_some_and(|at| self.generation >= at),
        };
        if state == ContainerState::Running && due {
            let probes = self.probe(id);
            if let Some(t) = self.tracked.get_mut(id) {
                t.probes = Some(probes);
            }
        }
        let buf = &mut self.buf;
        let t = self.tracked.get_mut(id)?;
        if state == ContainerState::Terminated && t.termination.is_none() {
            t.termination = read_json(&t.record, TERMINATION_FILE);
        }
        let mut row = Row {
            id: id.clone(),
            kind: t.kind,
            state,
            termination: t.termination.clone(),
            cpu_percent: None,
            mem_bytes: None,
            mem_limit_bytes: None,
            pids: None,
            net_rx_rate: None,
            net_tx_rate: None,
            uptime_secs: (wall_now - t.started_at).max(0.0),
            command: t.command.clone(),
        };
        if state != ContainerState::Running {
            t.probes = None;
            t.last_cpu = None;
            t.last_net = None;
            return Some(row);
        }
        let Some(p) = t.probes.as_ref() else {
            return Some(row);
        };
        if let Some((file, version)) = &p.cpu {
            let ns = read_text(file, buf).and_then(|text| match version {
                Version::V1 => text.trim().parse::<u64>().ok(),
                Version::V2 => flat_key(text, "usage_usec").map(|us| us.saturating_mul(1000)),
            });
            if let Some(ns) = ns {
                if let Some((before, at)) = t.last_cpu {
                    let wall = now.duration_since(at).as_nanos() as f64;
                    if wall > 0.0 {
                        row.cpu_percent = Some(100.0 * ns.saturating_sub(before) as f64 / wall);
                    }
                }
                t.last_cpu = Some((ns, now));
            }
        }
        row.mem_bytes = p.mem.as_ref().and_then(|f| read_u64(f, buf));
        row.mem_limit_bytes = p.mem_limit.as_ref().and_then(|f| read_u64(f, buf));
        row.pids = p.pids.as_ref().and_then(|f| read_u64(f, buf));
        if let Some(file) = &p.net
            && let Some(text) = read_text(file, buf)
        {
            let s = phobos_net::stats::sum_without_loopback(text);
            let (rx, tx) = (s.net_rx_bytes, s.net_tx_bytes);
            if let Some((rx0, tx0, at)) = t.last_net {
                let secs = now.duration_since(at).as_secs_f64();
                if secs > 0.0 {
                    row.net_rx_rate = Some(rx.saturating_sub(rx0) as f64 / secs);
                    row.net_tx_rate = Some(tx.saturating_sub(tx0) as f64 / secs);
                }
            }
            t.last_net = Some((rx, tx, now));
        }
        Some(row)
    }

    /// Opens the accounting files of a container just seen RUNNING.
    fn probe(&self, id: &ContainerId) -> Probes {
        let mut probes = Probes::default();
        let Some(t) = self.tracked.get(id) else {
            return probes;
        };
        let Some(h) = &self.hierarchies else {
            return probes;
        };
        let (pid, dirs) = match t.kind {
            Kind::Mesos => {
                let pid = read_json::<i32>(&t.record, phobos_core::store::PID_FILE)
                    .and_then(|p| u32::try_from(p).ok());
                let Some(config) = read_json::<ContainerConfig>(&t.record, CONFIG_FILE) else {
                    return probes;
                };
                let rel = Path::new(&config.cgroups_root).join(phobos_mesos::launcher::cgroup_rel(
                    config.cgroups_driver,
                    id,
                ));
                let dir = |c| {
                    h.cgroup(c, &rel)
                        .map(|cg| (cg.path().to_owned(), cg.version()))
                };
                (
                    pid,
                    [
                        dir(Controller::Cpuacct),
                        dir(Controller::Memory),
                        dir(Controller::Pids),
                    ],
                )
            }
            Kind::Docker => {
                // The engine's pid once; its cgroups from /proc.
                let pid = self
                    .door
                    .summary(id)
                    .ok()
                    .flatten()
                    .and_then(|s| s.pid())
                    .and_then(|p| u32::try_from(p).ok());
                let procs = pid.and_then(|p| ProcCgroups::read(Path::new("/proc"), p).ok());
                let dir = |c| {
                    procs
                        .as_ref()
                        .and_then(|procs| h.process_cgroup(procs, c))
                        .filter(|pc| !pc.is_root())
                        .map(|pc| (pc.cgroup.path().to_owned(), pc.cgroup.version()))
                };
                if pid.is_none() {
                    probes.again_at = Some(self.generation + ENGINE_RETRY);
                }
                (
                    pid,
                    [
                        dir(Controller::Cpuacct),
                        dir(Controller::Memory),
                        dir(Controller::Pids),
                    ],
                )
            }
        };
        let [cpu, mem, pids] = dirs;
        if let Some((dir, version)) = cpu {
            let name = match version {
                Version::V1 => "cpuacct.usage",
                Version::V2 => "cpu.stat",
            };
            probes.cpu = open_ro(&dir.join(name)).map(|f| (f, version));
        }
        if let Some((dir, version)) = mem {
            let (usage, limit) = match version {
                Version::V1 => ("memory.usage_in_bytes", "memory.limit_in_bytes"),
                Version::V2 => ("memory.current", "memory.max"),
            };
            probes.mem = open_ro(&dir.join(usage));
            probes.mem_limit = open_ro(&dir.join(limit));
        }
        if let Some((dir, _)) = pids {
            probes.pids = open_ro(&dir.join("pids.current"));
        }
        if t.own_network
            && let Some(pid) = pid
        {
            let ns = netns_inode(&format!("/proc/{pid}/ns/net"));
            if ns.is_some() && ns != self.host_netns {
                probes.net = open_ro(Path::new(&format!("/proc/{pid}/net/dev")));
            }
        }
        probes
    }
}

/// Starts tracking the record at `path`; `None` when it is not complete
/// yet (no config) or cannot be opened.
fn track(path: &Path, kind: Kind, generation: u64) -> Option<Tracked> {
    let record: OwnedFd = openat(
        nix::fcntl::AT_FDCWD,
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let config: ContainerConfig = read_json(&record, CONFIG_FILE)?;
    let (command, own_network) = match kind {
        Kind::Mesos => (
            config.command.display(),
            // A nested container joins its parent's network namespace.
            config.network.own_namespace() && config.id.parent().is_none(),
        ),
        Kind::Docker => {
            let docker: DockerRecord = read_json(&record, DOCKER_FILE)?;
            let own = docker.network != "host" && !docker.network.starts_with("container:");
            let image = docker.image;
            let command = if docker.image_command {
                "(the image's default command)".to_owned()
            } else {
                config.command.display()
            };
            (format!("[docker {image}] {command}"), own)
        }
    };
    Some(Tracked {
        kind,
        record,
        command,
        started_at: config.created_at,
        own_network,
        termination: None,
        probes: None,
        last_cpu: None,
        last_net: None,
        seen: generation,
    })
}

/// The recorded state; a Docker record without one is RUNNING until its
/// termination is written (as `ps` shows it).
fn read_state(record: &OwnedFd, kind: Kind) -> ContainerState {
    if let Ok(target) = readlinkat(record.as_fd(), STATE_FILE)
        && let Some(r) = StateRecord::from_link(&target.to_string_lossy())
    {
        if kind == Kind::Docker && r.state == ContainerState::Running && has_termination(record) {
            return ContainerState::Terminated;
        }
        return r.state;
    }
    match kind {
        Kind::Docker if has_termination(record) => ContainerState::Terminated,
        Kind::Docker => ContainerState::Running,
        Kind::Mesos => ContainerState::Provisioning,
    }
}

fn has_termination(record: &OwnedFd) -> bool {
    nix::unistd::faccessat(
        record.as_fd(),
        TERMINATION_FILE,
        nix::unistd::AccessFlags::F_OK,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .is_ok()
}

/// A small JSON file of a record, never through a symlink.
fn read_json<T: serde::de::DeserializeOwned>(record: &OwnedFd, name: &str) -> Option<T> {
    let fd = openat(
        record.as_fd(),
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let file = File::from(fd);
    // Records are small; a huge one is not read whole.
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(&file, 1 << 20), &mut bytes).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn open_ro(path: &Path) -> Option<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
        .ok()
}

/// The whole content of a kernel file opened once, read again from its
/// start (`pread` at 0 makes the kernel generate it anew).
fn read_text<'b>(file: &File, buf: &'b mut Vec<u8>) -> Option<&'b str> {
    let mut len = 0;
    loop {
        if len == buf.len() {
            if buf.len() >= 1 << 20 {
                break;
            }
            buf.resize(buf.len() * 2, 0);
        }
        match file.read_at(&mut buf[len..], len as u64) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(_) => return None,
        }
    }
    std::str::from_utf8(&buf[..len]).ok()
}

/// A single-number file; `None` for `max` and for v1's "unlimited" (a
/// page-rounded `i64::MAX`).
fn read_u64(file: &File, buf: &mut Vec<u8>) -> Option<u64> {
    let text = read_text(file, buf)?;
    phobos_cgroups::stats::parse_u64_or_max(text)
        .ok()
        .flatten()
        .filter(|v| *v < 1 << 62)
}

/// The value of `key` in a flat-keyed file (`cpu.stat`).
fn flat_key(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

fn netns_inode(path: &str) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_flat_keys() {
        let text = "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n";
        assert_eq!(flat_key(text, "usage_usec"), Some(1500));
        assert_eq!(flat_key(text, "system_usec"), Some(500));
        assert_eq!(flat_key(text, "nope"), None);
        assert_eq!(flat_key("usage_usec x\n", "usage_usec"), None);
    }

    #[test]
    fn kernel_files_are_read_again_from_the_start() {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut tmp, b"9223372036854771712\n").unwrap();
        let file = File::open(tmp.path()).unwrap();
        let mut buf = vec![0; 4];
        // v1's "no limit" is no limit.
        assert_eq!(read_u64(&file, &mut buf), None);
        std::fs::write(tmp.path(), b"4096\n").unwrap();
        assert_eq!(read_u64(&file, &mut buf), Some(4096));
        std::fs::write(tmp.path(), b"max\n").unwrap();
        assert_eq!(read_u64(&file, &mut buf), None);
    }
}
