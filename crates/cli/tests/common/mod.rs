//! Shared set-up for the CLI's integration tests: every test gets its own
//! runtime directory, work directory and cgroup root, and on drop destroys
//! whatever it left running and removes its cgroup roots.
#![allow(dead_code)]

pub mod engine;
pub mod lease;
pub mod net;
pub mod tmux;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const PHOBOS: &str = env!("CARGO_BIN_EXE_phobos");

/// Cgroup mount points a launcher may use on this host.
pub const CGROUP_ROOTS: [&str; 3] = [
    "/sys/fs/cgroup/unified",
    "/sys/fs/cgroup/freezer",
    "/sys/fs/cgroup",
];

/// A copy of the phobos binary in a private 0755 directory, for running
/// it as another user: the checkout (and so `target/`) may lie under a
/// directory that user cannot enter, such as a 0700 `mktemp -d`.
pub struct PrivateExe {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl PrivateExe {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

pub fn private_copy_of_phobos() -> PrivateExe {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("phobos");
    std::fs::copy(PHOBOS, &path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    PrivateExe { _dir: dir, path }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Returns false (after printing why) when the test cannot run here.
pub fn require_root(test: &str) -> bool {
    if !is_root() {
        println!("skipping {test}: needs root (namespaces and cgroups)");
        return false;
    }
    true
}

pub struct Env {
    pub runtime: tempfile::TempDir,
    pub work: tempfile::TempDir,
    pub cgroups_root: String,
}

impl Env {
    pub fn new() -> Self {
        Self::with_runtime_dir(tempfile::tempdir().unwrap())
    }

    /// An environment whose runtime directory is `runtime`.
    pub fn with_runtime_dir(runtime: tempfile::TempDir) -> Self {
        Self {
            runtime,
            work: tempfile::tempdir().unwrap(),
            cgroups_root: format!("phobos-test-{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// The global options naming this environment's runtime and work
    /// directories, for a `phobos` started some other way (through a shell,
    /// `systemd-run`, another configuration).
    pub fn dir_args(&self) -> [&std::ffi::OsStr; 4] {
        [
            "--runtime-dir".as_ref(),
            self.runtime.path().as_os_str(),
            "--work-dir".as_ref(),
            self.work.path().as_os_str(),
        ]
    }

    /// `phobos` with this environment's global options.
    pub fn cmd(&self) -> Command {
        self.cmd_with(Path::new(PHOBOS))
    }

    /// [`Env::cmd`] with `--config CONFIG`.
    pub fn cmd_config(&self, config: &Path) -> Command {
        let mut c = self.cmd();
        c.arg("--config").arg(config);
        c
    }

    /// Like [`Env::cmd`] with another copy of the binary.
    pub fn cmd_with(&self, exe: &Path) -> Command {
        let mut c = Command::new(exe);
        c.args(self.dir_args())
            .arg("--cgroups-root")
            .arg(&self.cgroups_root)
            .env_remove("PHOBOS_STOP_AT")
            .env_remove("PHOBOS_AGENT")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs a command that must succeed; returns its trimmed stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        succeeded(args, self.run(args)).trim().to_owned()
    }

    /// `run -d` with a fixed id; returns the id.
    pub fn detach(&self, id: &str, command: &[&str]) -> String {
        self.detach_with(id, &[], command)
    }

    /// `run -d --id ID OPTS… -- COMMAND`, which must print the ID; returns
    /// it.
    pub fn detach_with(&self, id: &str, opts: &[&str], command: &[&str]) -> String {
        let mut args = vec!["run", "-d", "--id", id];
        args.extend_from_slice(opts);
        args.push("--");
        args.extend_from_slice(command);
        assert_eq!(self.ok(&args), id);
        id.to_owned()
    }

    /// `run -d --parent PARENT --id ID OPTS… -- COMMAND`, which must print
    /// the full ID `PARENT.ID`; returns it.
    pub fn detach_nested(&self, parent: &str, id: &str, opts: &[&str], command: &[&str]) -> String {
        let mut args = vec!["run", "-d", "--parent", parent, "--id", id];
        args.extend_from_slice(opts);
        args.push("--");
        args.extend_from_slice(command);
        let full = self.ok(&args);
        assert_eq!(full, format!("{parent}.{id}"));
        full
    }

    pub fn wait_json(&self, id: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["wait", "--json", id])).unwrap()
    }

    pub fn status_json(&self, id: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["status", "--json", id])).unwrap()
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.runtime.path().join("containers").join(id)
    }

    pub fn sandbox(&self, id: &str) -> PathBuf {
        self.work.path().join("containers").join(id)
    }

    /// Every cgroup directory this environment's root has, in any hierarchy
    /// (the launcher's, and the cgroups isolators' v1 hierarchies).
    pub fn cgroup_dirs(&self, id: &str) -> Vec<PathBuf> {
        all_hierarchies()
            .iter()
            .map(|root| root.join(&self.cgroups_root).join(id))
            .filter(|p| p.exists())
            .collect()
    }

    /// The container's kill cgroup path relative to the hierarchy, as
    /// `/proc/<pid>/cgroup` shows it.
    pub fn cgroup_rel(&self, id: &str) -> String {
        format!("/{}/{id}", self.cgroups_root)
    }
}

/// Destroys every container `phobos ps --json` lists, each `phobos`
/// command run through `run` (an environment's own options).
pub fn destroy_listed(run: impl Fn(&[&str]) -> Output) {
    let list = run(&["ps", "--json"]);
    if let Ok(all) = serde_json::from_slice::<Vec<serde_json::Value>>(&list.stdout) {
        for c in all {
            if let Some(id) = c["id"].as_str() {
                let _ = run(&["destroy", id]);
            }
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        destroy_listed(|args| self.run(args));
        let _ = self.run(&["recover"]);
        for root in all_hierarchies() {
            let _ = std::fs::remove_dir(root.join(&self.cgroups_root));
        }
    }
}

/// [`CGROUP_ROOTS`] plus every other directory under `/sys/fs/cgroup` (the
/// v1 controller hierarchies of a hybrid host).
pub fn all_hierarchies() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = CGROUP_ROOTS.iter().map(PathBuf::from).collect();
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() && !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// The most a test waits for a workload to reach a state: generous, since
/// the machine may be loaded and CI runs these tests under qemu TCG too
/// (scripts/v2-lane.sh), 10-50 times slower than natively. [`eventually`]
/// returns as soon as the condition holds.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// Polls `cond` every 10 ms until it holds or `limit` passes.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// The state letter of a process from /proc/<pid>/stat ('T' = stopped).
pub fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// Whether process `pid`, or a process of the session it leads (a call
/// started through `sh -c` under `setsid`, as the ECP tests do), is
/// blocked waiting for a file lock (a `->` line of /proc/locks): a `wait`
/// blocks on the shared lock of its container's init lock file until init
/// exits, so a test can start a waiter and know it waits before it ends
/// the container.
pub fn blocked_on_a_lock(pid: u32) -> bool {
    let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    locks.lines().any(|line| {
        // `N: -> FLOCK ADVISORY READ PID MAJ:MIN:INODE START END`
        let mut fields = line.split_whitespace().skip(1);
        if fields.next() != Some("->") {
            return false;
        }
        let Some(waiter) = fields.nth(3).and_then(|p| p.parse::<u32>().ok()) else {
            return false;
        };
        waiter == pid || session_of(waiter) == Some(pid)
    })
}

/// The session ID of a process (field 6 of /proc/<pid>/stat).
fn session_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()
}

/// Spawns `cmd` (a `phobos` command, its output as the caller set it) with
/// `PHOBOS_STOP_AT=point` and returns it once it has stopped itself there
/// (SIGSTOP: state `T`).
pub fn spawn_stopped_at(cmd: &mut Command, point: &str) -> std::process::Child {
    let child = cmd.env("PHOBOS_STOP_AT", point).spawn().unwrap();
    let pid = child.id();
    assert!(
        eventually(PATIENCE, || proc_state(pid) == Some('T')),
        "phobos {:?} never reached {point}",
        cmd.get_args().collect::<Vec<_>>()
    );
    child
}

/// Spawns `cmd` with its output discarded, stopped at `point` as
/// [`spawn_stopped_at`] does, and SIGKILLs and reaps it there: a crash at
/// that point.
pub fn kill_stopped_at(cmd: &mut Command, point: &str) {
    let mut child = spawn_stopped_at(cmd.stdout(Stdio::null()).stderr(Stdio::null()), point);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The stdout of `phobos args` (as it is, not trimmed), which must have
/// succeeded: otherwise the test fails with its status, stdout and stderr.
pub fn succeeded(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "phobos {args:?} failed: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A command's stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: i64) -> bool {
    pid > 0 && proc_state(pid as u32).is_some_and(|s| s != 'Z')
}

/// Processes whose environment names this runtime directory: every init
/// helper (and, through inheritance, nothing else) of an environment,
/// the spawners of `phobos run` and of an agent and the inits they cloned
/// (`PHOBOS_INIT_SPAWNER`) included.
pub fn inits_of(runtime: &Path) -> Vec<u32> {
    let mut out = with_env_prefix(&format!("PHOBOS_INIT_DIR={}", runtime.display()));
    out.extend(spawners_of(runtime));
    out.sort_unstable();
    out.dedup();
    out
}

/// The init spawners of `phobos run` and of an agent for `runtime`
/// (waiting, or an init one cloned: it has the spawner's environment).
pub fn spawners_of(runtime: &Path) -> Vec<u32> {
    with_env_prefix(&format!("PHOBOS_INIT_SPAWNER={}", runtime.display()))
}

/// Processes with an environment variable starting with `needle`.
fn with_env_prefix(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if env
            .split(|b| *b == 0)
            .any(|kv| kv.starts_with(needle.as_bytes()))
        {
            out.push(pid);
        }
    }
    out
}

/// A root filesystem made of Debian's busybox-static (installed by
/// scripts/test.sh): `/bin/busybox`, a symlink per applet, and an
/// `/etc/passwd` and `/etc/group` with a user the host does not have
/// (`imguser`, 4321:4321, member of `imgextra` 4400).
pub fn busybox_rootfs(parent: &Path) -> PathBuf {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.is_file(),
        "/bin/busybox is missing: install busybox-static (scripts/test.sh does)"
    );
    let root = parent.join("rootfs");
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    std::fs::copy(busybox, bin.join("busybox")).unwrap();
    let list = Command::new(busybox).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nimguser:x:4321:4321:image user:/home/imguser:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\nimguser:x:4321:\nimgextra:x:4400:imguser\n",
    )
    .unwrap();
    root
}

/// A log stream's files in `sandbox` (`NAME.N` … `NAME.1`, `NAME`: oldest
/// first) with their sizes, and their concatenation. A missing file reads
/// as empty: the newest between a rotation's rename and its new file, or
/// one rotated away while a logger still writes.
pub fn log_stream(sandbox: &Path, name: &str) -> (Vec<(String, u64)>, Vec<u8>) {
    let mut names: Vec<String> = (1..10_000)
        .map(|i| format!("{name}.{i}"))
        .take_while(|n| sandbox.join(n).exists())
        .collect();
    names.reverse();
    names.push(name.to_owned());
    let mut files = Vec::new();
    let mut all = Vec::new();
    for n in names {
        let bytes = std::fs::read(sandbox.join(&n)).unwrap_or_default();
        files.push((n, bytes.len() as u64));
        all.extend(bytes);
    }
    (files, all)
}

/// Every mount, in any process's mount namespace, whose mountinfo line
/// mentions `path`: what a container can leave behind.
pub fn mounts_mentioning(path: &Path) -> Vec<String> {
    let needle = path.display().to_string();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().parse::<u32>().is_err() {
            continue;
        }
        let Ok(info) = std::fs::read_to_string(entry.path().join("mountinfo")) else {
            continue;
        };
        for line in info.lines().filter(|l| l.contains(&needle)) {
            out.push(format!("pid {}: {line}", name.to_string_lossy()));
        }
    }
    out
}

/// A config file with `text` in a directory of its own (removed on drop).
pub struct Config {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

pub fn config(text: &str) -> Config {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phobos.toml");
    std::fs::write(&path, text).unwrap();
    Config { _dir: dir, path }
}

#[path = "../../../../tests/support/refusing_port.rs"]
pub mod refusing_port;

/// The command's pid (init's only child) of a container.
pub fn command_pid(init: i64) -> i64 {
    let mut found = 0;
    assert!(
        eventually(PATIENCE, || {
            let children = std::fs::read_to_string(format!("/proc/{init}/task/{init}/children"))
                .unwrap_or_default();
            found = children
                .split_whitespace()
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            // Init starts its command vfork-style: until that child has
            // exec'd it is still init's image (its environ, its exe).
            let exe = |pid: i64| std::fs::read_link(format!("/proc/{pid}/exe")).ok();
            found > 0 && exe(found).is_some() && exe(found) != exe(init)
        }),
        "init {init} never started its command"
    );
    found
}
