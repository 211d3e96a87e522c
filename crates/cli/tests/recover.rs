//! Recovery from crashes and broken states (issue 15): cgroups of other
//! roots, interrupted launches and destroys, malformed runtime entries, a
//! full runtime filesystem, and a chaos run of SIGKILLs at random moments.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Spawns `phobos ARGS` stopped at `point` (PHOBOS_STOP_AT) and SIGKILLs it
/// there.
fn kill_at(env: &Env, point: &str, args: &[&str]) {
    kill_stopped_at(env.cmd().args(args), point);
}

fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Recovering (or listing) creates no cgroup: the cgroups root is made by
/// the first launch, not by a launcher built to recover or destroy (it was
/// left behind in a delegated unit the test had removed).
#[test]
fn privileged_recover_creates_no_cgroups_root() {
    if !require_root("privileged_recover_creates_no_cgroups_root") {
        return;
    }
    let env = Env::new();
    env.ok(&["recover"]);
    env.ok(&["ps"]);
    for hierarchy in all_hierarchies() {
        let root = hierarchy.join(&env.cgroups_root);
        assert!(!root.exists(), "{} was created", root.display());
    }
}

#[test]
fn privileged_recover_leaves_other_roots_and_unmarked_cgroups_alone() {
    if !require_root("privileged_recover_leaves_other_roots_and_unmarked_cgroups_alone") {
        return;
    }
    // Declared first, dropped last: the outer root can only go once the
    // nested one is gone.
    let outer = Env::new();
    let mut nested = Env::new();
    nested.cgroups_root = format!("{}/nested", outer.cgroups_root);
    nested.detach("inner", &["sleep", "1000"]);
    let inner_pid = nested.status_json("inner")["pid"].as_i64().unwrap();
    // Someone else's cgroup under our root, with a process in it.
    outer.detach("keeper", &["sleep", "1000"]);
    let foreign = outer
        .cgroup_dirs("keeper")
        .remove(0)
        .with_file_name("foreign");
    std::fs::create_dir(&foreign).unwrap();
    let mut bystander = std::process::Command::new("sleep")
        .arg("1000")
        .spawn()
        .unwrap();
    std::fs::write(foreign.join("cgroup.procs"), bystander.id().to_string()).unwrap();

    let report = outer.ok(&["recover"]);
    assert!(report.contains("recovered keeper"), "{report}");
    assert!(!report.contains("orphan"), "{report}");
    assert!(alive(inner_pid), "the nested root's container was killed");
    assert_eq!(nested.status_json("inner")["state"], "RUNNING");
    assert!(!nested.cgroup_dirs("inner").is_empty());
    assert!(foreign.exists());
    assert_eq!(
        bystander.try_wait().unwrap(),
        None,
        "the bystander was killed"
    );
    // The nested instance's own recovery still works.
    assert!(nested.ok(&["recover"]).contains("recovered inner"));

    bystander.kill().unwrap();
    bystander.wait().unwrap();
    assert!(eventually(PATIENCE, || std::fs::remove_dir(&foreign).is_ok()));
    nested.ok(&["destroy", "inner"]);
    drop(nested);
}

#[test]
fn privileged_recover_removes_the_sandbox_of_an_interrupted_launch() {
    if !require_root("privileged_recover_removes_the_sandbox_of_an_interrupted_launch") {
        return;
    }
    let env = Env::new();
    for point in ["forked", "ISOLATING", "FETCHING"] {
        let id = format!("again-{}", point.to_ascii_lowercase());
        kill_at(&env, point, &["run", "-d", "--id", &id, "--", "true"]);
        // Files of the first container, as a command would have left them.
        assert!(env.sandbox(&id).is_dir(), "{point}: no sandbox");
        std::fs::write(env.sandbox(&id).join("old"), "secret").unwrap();
        std::fs::write(env.sandbox(&id).join("stdout"), "old output\n").unwrap();

        let report = env.ok(&["recover"]);
        assert!(report.contains(&format!("destroyed {id}")), "{report}");
        assert!(!env.sandbox(&id).exists(), "{point}: sandbox left behind");
        assert!(!env.container_dir(&id).exists());

        // A new container with the same ID starts with a fresh sandbox.
        env.ok(&[
            "run",
            "--id",
            &id,
            "--",
            "sh",
            "-c",
            "ls \"$MESOS_SANDBOX\"",
        ]);
        let listing = std::fs::read_to_string(env.sandbox(&id).join("stdout")).unwrap();
        assert_eq!(listing, "stderr\nstdout\n", "{point}");
    }
}

#[test]
fn privileged_recover_completes_interrupted_destroys() {
    if !require_root("privileged_recover_completes_interrupted_destroys") {
        return;
    }
    let env = Env::new();
    for point in ["destroying", "killed", "recorded"] {
        let id = format!("half-{point}");
        env.detach(&id, &["sleep", "1000"]);
        let init = env.status_json(&id)["pid"].as_i64().unwrap();
        kill_at(&env, point, &["destroy", &id]);
        // The temporary link of a state write the kill cut short.
        let stale = env.container_dir(&id).join(".state.999999");
        std::os::unix::fs::symlink("TERMINATED 1.0", &stale).unwrap();
        let state = std::fs::read_link(env.container_dir(&id).join("state")).unwrap();
        assert!(
            state.to_string_lossy().starts_with("DESTROYING"),
            "{point}: {state:?}"
        );

        let report = env.ok(&["recover"]);
        assert!(
            report.contains(&format!("recorded the termination of {id}")),
            "{point}: {report}"
        );
        let status = env.status_json(&id);
        assert_eq!(status["state"], "TERMINATED", "{point}: {status}");
        assert_eq!(status["termination"]["state"], "TASK_KILLED", "{point}");
        assert!(!stale.exists(), "{point}: stale temporary left");
        assert!(
            !names(&env.container_dir(&id))
                .iter()
                .any(|n| n.starts_with('.')),
            "{point}: {:?}",
            names(&env.container_dir(&id))
        );
        assert!(eventually(PATIENCE, || !alive(init)), "{point}");
        assert!(env.cgroup_dirs(&id).is_empty(), "{point}: cgroup left");
    }
}

#[test]
fn privileged_malformed_entries_are_skipped_and_removed() {
    if !require_root("privileged_malformed_entries_are_skipped_and_removed") {
        return;
    }
    for remover in [&["recover"][..], &["state", "--rm"][..]] {
        let env = Env::new();
        env.detach("good", &["sleep", "1000"]);
        let containers = env.runtime.path().join("containers");
        std::fs::create_dir(containers.join("empty")).unwrap();
        std::fs::create_dir(containers.join("garbage")).unwrap();
        std::fs::write(containers.join("garbage/config"), "{not json").unwrap();
        std::os::unix::fs::symlink("RUNNING 1.0", containers.join("garbage/state")).unwrap();
        std::fs::create_dir_all(env.sandbox("garbage")).unwrap();
        // And a broken Docker record.
        let docker = env.runtime.path().join("docker/containers/dgarbage");
        std::fs::create_dir_all(&docker).unwrap();
        std::fs::write(docker.join("config"), "{").unwrap();

        for args in [&["ps"][..], &["ps", "--json"][..], &["status", "good"][..]] {
            let out = env.run(args);
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{args:?}: {stderr}");
            assert!(stdout.contains("good"), "{args:?}: {stdout}");
            assert!(!stdout.contains("garbage"), "{args:?}: {stdout}");
            if args[0] == "ps" {
                let lines: Vec<&str> = stderr.lines().collect();
                assert_eq!(lines.len(), 3, "{args:?}: one line per entry: {stderr}");
                for name in ["empty", "garbage", "dgarbage"] {
                    assert!(
                        lines
                            .iter()
                            .any(|l| l.contains(&format!("container {name}:"))),
                        "{stderr}"
                    );
                }
            }
        }
        std::fs::remove_dir_all(&docker).unwrap();
        let out = env.ok(remover);
        assert!(!containers.join("empty").exists(), "{remover:?}: {out}");
        assert!(!containers.join("garbage").exists(), "{remover:?}: {out}");
        assert!(!env.sandbox("garbage").exists(), "{remover:?}");
        if remover[0] == "recover" {
            assert!(out.contains("removed malformed entry garbage"), "{out}");
            assert!(out.contains("recovered good"), "{out}");
        }
        assert_eq!(env.status_json("good")["state"], "RUNNING");
    }
}

/// A tmpfs of `size` bytes mounted at a fresh directory, unmounted on drop.
struct SmallTmpfs {
    dir: PathBuf,
}

impl SmallTmpfs {
    fn mount(size: usize) -> Self {
        let dir = std::env::temp_dir().join(format!("phobos-full-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir(&dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(&dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mounting a tmpfs at {} failed", dir.display());
        Self { dir }
    }

    /// Writes a file until the filesystem is full.
    fn fill(&self) -> PathBuf {
        self.fill_as("filler")
    }

    fn fill_as(&self, name: &str) -> PathBuf {
        use std::io::Write;
        let path = self.dir.join(name);
        let mut file = std::fs::File::create(&path).unwrap();
        let block = [0u8; 4096];
        loop {
            match file.write_all(&block) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        path
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let c = std::ffi::CString::new(self.dir.as_os_str().to_str().unwrap()).unwrap();
        // SAFETY: umount2 of a path we mounted; MNT_DETACH because inits
        // of a failed test may still hold it.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn privileged_full_runtime_filesystem_keeps_reads_and_true_terminations() {
    if !require_root("privileged_full_runtime_filesystem_keeps_reads_and_true_terminations") {
        return;
    }
    let fs = SmallTmpfs::mount(1 << 20);
    let mut env = Env::new();
    env.runtime = tempfile::Builder::new().tempdir_in(&fs.dir).unwrap();
    // Ends with 3 once the test says so.
    let script = "while [ ! -e \"$MESOS_SANDBOX/go\" ]; do sleep 0.05; done; exit 3";
    env.detach("ender", &["sh", "-c", script]);
    env.detach("victim", &["sleep", "1000"]);
    let filler = fs.fill();

    std::fs::write(env.sandbox("ender").join("go"), "").unwrap();
    let ender = env.container_dir("ender");
    assert!(
        eventually(PATIENCE, || inits_of(env.runtime.path()).len() == 1),
        "the command did not end"
    );
    // Reads work, and leave nothing behind.
    for args in [&["ps"][..], &["ps", "--json"][..], &["status", "ender"][..]] {
        let out = env.run(args);
        assert!(
            out.status.success(),
            "{args:?} with a full runtime fs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("ender"));
    }
    // Writes fail cleanly, without temporaries.
    let out = env.run(&["wait", "ender"]);
    assert_eq!(out.status.code(), Some(1), "wait with a full runtime fs");
    // A destroy frees init's reserved status page: stop it once it has,
    // take that page too, and let it record.
    let destroy = env
        .cmd()
        .args(["destroy", "victim"])
        .env("PHOBOS_STOP_AT", "killed")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = destroy.id();
    assert!(eventually(PATIENCE, || proc_state(pid) == Some('T')));
    let filler2 = fs.fill_as("filler2");
    // SAFETY: kill(2) with a pid of our child and SIGCONT.
    unsafe { libc::kill(pid as i32, libc::SIGCONT) };
    let out = destroy.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "destroy with a full runtime fs");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No space left"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for id in ["ender", "victim"] {
        let left: Vec<String> = names(&env.container_dir(id))
            .into_iter()
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "{id}: temporaries left: {left:?}");
    }

    // Space returns: the true exit status, and no DESTROYING left.
    std::fs::remove_file(filler).unwrap();
    std::fs::remove_file(filler2).unwrap();
    let t = env.wait_json("ender");
    assert_eq!(t["status"], 3 << 8, "{t}");
    assert_eq!(t["state"], "TASK_FAILED", "{t}");
    assert!(ender.join("termination").exists());
    let victim = env.status_json("victim");
    assert_eq!(victim["state"], "TERMINATED", "{victim}");
    assert_eq!(victim["termination"]["state"], "TASK_KILLED", "{victim}");
    assert!(inits_of(env.runtime.path()).is_empty());
    drop(env);
}

/// xorshift64*: enough randomness for timing chaos, reproducible by seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Every pid in any cgroup under this environment's root, any hierarchy.
fn procs_under_root(env: &Env) -> Vec<String> {
    let mut out = Vec::new();
    for h in all_hierarchies() {
        let root = h.join(&env.cgroups_root);
        let mut stack = vec![root];
        while let Some(dir) = stack.pop() {
            if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                out.extend(text.lines().map(|l| format!("{} in {}", l, dir.display())));
            }
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                }
            }
        }
    }
    out
}

#[test]
fn privileged_chaos_of_killed_launches_and_destroys_leaves_nothing() {
    if !require_root("privileged_chaos_of_killed_launches_and_destroys_leaves_nothing") {
        return;
    }
    let seed = std::env::var("PHOBOS_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("chaos seed {seed} (rerun with PHOBOS_CHAOS_SEED={seed})");
    let mut rng = Rng(seed);
    let env = Env::new();
    let started = Instant::now();
    // A small ID pool, so launches collide and destroys meet launches.
    let ids: Vec<String> = (0..40).map(|i| format!("chaos-{i}")).collect();
    let mut live: Vec<(Child, Instant)> = Vec::new();
    let mut killed = 0;
    for _ in 0..150 {
        let id = &ids[rng.below(ids.len() as u64) as usize];
        let args: Vec<&str> = match rng.below(4) {
            0 => vec!["run", "-d", "--id", id, "--", "sleep", "1000"],
            1 => vec!["run", "--id", id, "--", "sh", "-c", "sleep 0.2"],
            2 => vec!["run", "-d", "--id", id, "--", "true"],
            _ => vec!["destroy", id],
        };
        let child = env
            .cmd()
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_millis(rng.below(120));
        live.push((child, deadline));
        // At most four at once; each is SIGKILLed at its moment (if it is
        // still there).
        while live.len() >= 4 || (!live.is_empty() && rng.below(3) == 0) {
            let (mut child, deadline) = live.remove(0);
            std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
            if child.try_wait().unwrap().is_none() {
                killed += 1;
            }
            let _ = child.kill();
            let status = child.wait().unwrap();
            let _ = status.signal();
        }
    }
    for (mut child, deadline) in live {
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
        let _ = child.kill();
        child.wait().unwrap();
    }
    println!(
        "chaos: {killed} processes SIGKILLed mid-way in {:?}",
        started.elapsed()
    );

    let report = env.ok(&["recover"]);
    // After recovery every container is either running or terminated.
    let all: Vec<serde_json::Value> = serde_json::from_str(&env.ok(&["ps", "--json"])).unwrap();
    for c in &all {
        let state = c["state"].as_str().unwrap();
        assert!(
            state == "RUNNING" || state == "TERMINATED",
            "seed {seed}: {} left {state} after recover: {report}",
            c["id"]
        );
        if state == "RUNNING" {
            env.ok(&["destroy", c["id"].as_str().unwrap()]);
        }
    }
    env.ok(&["state", "--rm"]);

    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let leftovers = [
        ("records", names(&env.runtime.path().join("containers"))),
        ("sandboxes", names(&env.work.path().join("containers"))),
        (
            "processes",
            inits_of(env.runtime.path())
                .iter()
                .map(|p| p.to_string())
                .chain(procs_under_root(&env))
                .collect(),
        ),
        (
            "cgroups",
            all_hierarchies()
                .iter()
                .flat_map(|h| {
                    let root = h.join(&env.cgroups_root);
                    names(&root)
                        .into_iter()
                        .filter(move |n| root.join(n).is_dir())
                })
                .collect(),
        ),
        (
            "mounts",
            mountinfo
                .lines()
                .filter(|l| {
                    l.contains(env.runtime.path().to_str().unwrap())
                        || l.contains(env.work.path().to_str().unwrap())
                })
                .map(str::to_owned)
                .collect(),
        ),
    ];
    for (what, left) in leftovers {
        assert!(left.is_empty(), "seed {seed}: {what} left: {left:?}");
    }
}

/// The error line's and the marks' name for a runtime directory.
fn canonical(dir: &Path) -> String {
    std::fs::canonicalize(dir)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// The runtime directory each existing directory of `env`'s cgroups root
/// is marked as owned by (`None` for an unmarked one).
fn owner_marks(env: &Env) -> Vec<(PathBuf, Option<String>)> {
    all_hierarchies()
        .into_iter()
        .map(|h| h.join(&env.cgroups_root))
        .filter(|root| root.is_dir())
        .map(|root| {
            let cg = phobos_cgroups::Cgroup::new(
                root.parent().unwrap(),
                Path::new(root.file_name().unwrap()),
                phobos_cgroups::Version::V1,
            );
            (root, cg.owner_mark().unwrap())
        })
        .collect()
}

/// One runtime directory per cgroups root: an instance with another
/// runtime directory pointed at a root that one owns has every command
/// that would sweep or create cgroups there refused in one line naming
/// both (exit 2, nothing changed), and the owner's container lives on.
/// Before the owner mark, the second instance's `recover` destroyed the
/// owner's container as an orphan.
#[test]
fn privileged_a_second_runtime_dir_cannot_take_a_cgroups_root() {
    if !require_root("privileged_a_second_runtime_dir_cannot_take_a_cgroups_root") {
        return;
    }
    let owner = Env::new();
    owner.detach("mine", &["sleep", "1000"]);
    let pid = owner.status_json("mine")["pid"].as_i64().unwrap();
    let marks = owner_marks(&owner);

    let mut intruder = Env::new();
    intruder.cgroups_root = owner.cgroups_root.clone();
    for args in [
        &["recover"][..],
        &["state", "--rm"],
        &["run", "-d", "--id", "theirs", "--", "sleep", "1000"],
        &["run", "--id", "mine", "--", "true"],
    ] {
        let out = intruder.run(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains(&canonical(owner.runtime.path()))
                && err.contains(&intruder.runtime.path().to_string_lossy().into_owned())
                && err.contains(&owner.cgroups_root),
            "{args:?}: {err}"
        );
        assert!(alive(pid), "{args:?} killed the owner's container");
        assert_eq!(owner.status_json("mine")["state"], "RUNNING");
        assert!(!owner.cgroup_dirs("mine").is_empty());
        assert!(!intruder.container_dir("theirs").exists(), "{args:?}");
        assert!(!intruder.container_dir("mine").exists(), "{args:?}");
        assert!(owner.cgroup_dirs("theirs").is_empty(), "{args:?}");
        assert_eq!(owner_marks(&owner), marks, "{args:?}");
    }
    assert!(!marks.is_empty());
    for (root, mark) in &marks {
        assert_eq!(
            mark.as_deref(),
            Some(canonical(owner.runtime.path()).as_str()),
            "{}",
            root.display()
        );
    }
    assert!(owner.ok(&["recover"]).contains("recovered mine"));
    owner.ok(&["destroy", "mine"]);
    drop(intruder);
}

/// A cgroups root made before owner marks existed is adopted silently by
/// the first recovery: the container in it is recovered and the root is
/// marked as that runtime directory's from then on.
#[test]
fn privileged_recover_adopts_an_unmarked_cgroups_root() {
    if !require_root("privileged_recover_adopts_an_unmarked_cgroups_root") {
        return;
    }
    let env = Env::new();
    env.detach("old", &["sleep", "1000"]);
    let pid = env.status_json("old")["pid"].as_i64().unwrap();
    // As an older Phobos left it: no owner mark anywhere.
    for (root, _) in owner_marks(&env) {
        let path = std::ffi::CString::new(root.as_os_str().as_encoded_bytes()).unwrap();
        let attr = std::ffi::CString::new(phobos_cgroups::OWNER_MARK).unwrap();
        // SAFETY: both strings are NUL-terminated and outlive the call.
        let rc = unsafe { libc::removexattr(path.as_ptr(), attr.as_ptr()) };
        assert_eq!(rc, 0, "{}", root.display());
    }
    assert!(owner_marks(&env).iter().all(|(_, m)| m.is_none()));

    let out = env.run(&["recover"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("recovered old"));
    assert!(alive(pid));
    let ours = canonical(env.runtime.path());
    for (root, mark) in owner_marks(&env) {
        assert_eq!(mark.as_deref(), Some(ours.as_str()), "{}", root.display());
    }
    env.ok(&["destroy", "old"]);
}
