//! Hosts run by systemd (issue 14 §2): the systemd cgroup driver
//! (`cgroups_driver = "systemd"`: a transient `phobos-<id>.scope` per
//! container, made over D-Bus) and the cgroups-root layouts under real
//! systemd services. Most tests need systemd as PID 1 on pure cgroup v2:
//! the v2 lane's systemd leg (scripts/v2-lane.sh) boots one and sets
//! `PHOBOS_TEST_SYSTEMD=1`, where a skip is a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;
use phobos_cgroups::{Hierarchies, Layout};

/// Prints why `test` does not run here; panics where the lane says
/// systemd runs this host.
fn skip(test: &str, reason: &str) {
    assert!(
        std::env::var_os("PHOBOS_TEST_SYSTEMD").is_none(),
        "{test}: {reason}, yet PHOBOS_TEST_SYSTEMD says systemd runs this pure cgroup v2 host"
    );
    println!("skipping {test}: {reason}");
}

/// Whether systemd is PID 1 of a pure cgroup v2 host with its bus up.
fn under_systemd(test: &str) -> bool {
    if !require_root(test) {
        return false;
    }
    if !Path::new("/run/systemd/system").is_dir() {
        skip(
            test,
            "systemd is not this host's init (no /run/systemd/system)",
        );
        return false;
    }
    if Hierarchies::detect().unwrap().layout() != Layout::Unified {
        skip(test, "this host is not pure cgroup v2");
        return false;
    }
    if !Path::new(phobos_systemd::bus::SYSTEM_BUS_SOCKET).exists() {
        skip(test, "the D-Bus system bus is not running");
        return false;
    }
    true
}

fn short_id(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A test environment whose configuration selects the systemd driver; its
/// cgroups root names the slice `phobos-test-<uuid>.slice`.
struct Sd {
    env: Env,
    config: PathBuf,
    slice_dir: PathBuf,
}

impl Sd {
    fn new() -> Self {
        let env = Env::new();
        let config = env.work.path().join("phobos.toml");
        std::fs::write(&config, "cgroups_driver = \"systemd\"\n").unwrap();
        let slice = phobos_mesos::launcher::scope::slice_path(&env.cgroups_root).unwrap();
        Self {
            slice_dir: Path::new("/sys/fs/cgroup").join(slice),
            env,
            config,
        }
    }

    fn slice_unit(&self) -> String {
        format!("{}.slice", self.env.cgroups_root)
    }

    fn cmd(&self) -> Command {
        let mut c = self.env.cmd();
        c.arg("--config").arg(&self.config);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "phobos {args:?}: {:?}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            stderr(&out)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    fn scope_dir(&self, id: &str) -> PathBuf {
        self.slice_dir.join(format!("phobos-{id}.scope"))
    }
}

impl Drop for Sd {
    fn drop(&mut self) {
        if let Ok(all) =
            serde_json::from_slice::<Vec<serde_json::Value>>(&self.run(&["ps", "--json"]).stdout)
        {
            for c in all {
                if let Some(id) = c["id"].as_str() {
                    let _ = self.run(&["destroy", id]);
                }
            }
        }
        let _ = self.run(&["recover"]);
        let _ = systemctl(&["stop", &self.slice_unit()]);
    }
}

/// `systemd-run` starting what follows as the transient service `svc`
/// with `Delegate=yes`, waited for, its output piped back, collected
/// even when it fails.
fn delegated_service(svc: &str) -> Command {
    let mut c = Command::new("systemd-run");
    c.args([
        "--quiet",
        "--wait",
        "--pipe",
        "--collect",
        "-p",
        "Delegate=yes",
        &format!("--unit={svc}"),
        "--",
    ])
    .stdin(Stdio::null());
    c
}

fn systemctl(args: &[&str]) -> Output {
    Command::new("systemctl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `systemctl show -p NAME --value UNIT`.
fn unit_property(unit: &str, name: &str) -> String {
    let out = systemctl(&["show", "-p", name, "--value", unit]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Whether systemd has no unit `unit` any more (stopped and collected).
fn unit_gone(unit: &str) -> bool {
    unit_property(unit, "LoadState") == "not-found"
        && String::from_utf8_lossy(&systemctl(&["list-units", "--all", "--plain", unit]).stdout)
            .lines()
            .all(|l| !l.contains(unit))
}

fn init_cgroup(pid: i64) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn privileged_systemd_scope_holds_the_container_with_its_limits_and_goes_with_it() {
    let test = "privileged_systemd_scope_holds_the_container_with_its_limits_and_goes_with_it";
    if !under_systemd(test) {
        return;
    }
    let sd = Sd::new();
    let id = short_id("sd");
    let unit = format!("phobos-{id}.scope");
    assert_eq!(
        sd.ok(&[
            "run", "-d", "--id", &id, "--mem", "64", "--", "sleep", "1000"
        ]),
        id
    );
    let pid = sd.env.status_json(&id)["pid"].as_i64().unwrap();
    // Init was born in the leaf of the scope systemd made, in our slice.
    let rel = sd.scope_dir(&id);
    let rel = rel.strip_prefix("/sys/fs/cgroup").unwrap();
    assert_eq!(init_cgroup(pid), format!("0::/{}/leaf", rel.display()));
    assert_eq!(unit_property(&unit, "ActiveState"), "active");
    assert_eq!(unit_property(&unit, "Delegate"), "yes");
    assert_eq!(unit_property(&unit, "Slice"), sd.slice_unit());
    // The limits Phobos wrote into the delegated directory.
    let memory_max = std::fs::read_to_string(sd.scope_dir(&id).join("memory.max")).unwrap();
    assert_eq!(memory_max.trim(), (64u64 << 20).to_string());
    // Stats read the scope's files.
    let stats: serde_json::Value = serde_json::from_str(&sd.ok(&["stats", "--json", &id])).unwrap();
    assert_eq!(stats["mem_limit_bytes"], 64u64 << 20, "{stats}");
    // No placeholder left: only init and its command, in the leaf.
    let procs = std::fs::read_to_string(sd.scope_dir(&id).join("cgroup.procs")).unwrap();
    assert_eq!(procs, "", "the scope itself holds processes");
    let procs = std::fs::read_to_string(sd.scope_dir(&id).join("leaf/cgroup.procs")).unwrap();
    assert_eq!(procs.lines().count(), 2, "{procs}");

    sd.ok(&["destroy", &id]);
    assert!(
        eventually(PATIENCE, || unit_gone(&unit)),
        "{unit} is still known to systemd"
    );
    assert!(!sd.scope_dir(&id).exists(), "the scope's cgroup is left");

    // In the foreground: the command sees its scope, and when it ends the
    // scope goes with it.
    let fg = short_id("fg");
    let out = sd.run(&["run", "--id", &fg, "--", "cat", "/proc/self/cgroup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let shown = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        shown.ends_with(&format!("/phobos-{fg}.scope/leaf")),
        "{shown}"
    );
    let fg_unit = format!("phobos-{fg}.scope");
    assert!(
        eventually(PATIENCE, || unit_gone(&fg_unit)),
        "{fg_unit} is left"
    );
    assert!(!sd.scope_dir(&fg).exists());
}

#[test]
fn privileged_systemd_recover_after_sigkill_leaves_no_scope() {
    let test = "privileged_systemd_recover_after_sigkill_leaves_no_scope";
    if !under_systemd(test) {
        return;
    }
    let sd = Sd::new();
    for point in ["scope-started", "forked", "ISOLATING"] {
        let id = short_id("k");
        let unit = format!("phobos-{id}.scope");
        let mut child = spawn_stopped_at(
            sd.cmd()
                .args([
                    "run", "-d", "--id", &id, "--mem", "64", "--", "sleep", "1000",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            point,
        );
        // The scope exists (its cgroup made by systemd) when the launcher dies.
        assert!(sd.scope_dir(&id).exists(), "{point}: no scope yet");
        child.kill().unwrap();
        child.wait().unwrap();
        sd.ok(&["recover"]);
        assert!(
            eventually(PATIENCE, || unit_gone(&unit)),
            "{point}: {unit} is still known to systemd"
        );
        assert!(
            !sd.scope_dir(&id).exists(),
            "{point}: the scope's cgroup is left"
        );
        assert!(
            inits_of(sd.env.runtime.path()).is_empty(),
            "{point}: an init is left"
        );
    }
    // A live container whose record is lost: recover stops its scope as an
    // orphan.
    let id = short_id("o");
    let unit = format!("phobos-{id}.scope");
    sd.ok(&["run", "-d", "--id", &id, "--", "sleep", "1000"]);
    let pid = sd.env.status_json(&id)["pid"].as_i64().unwrap();
    std::fs::remove_dir_all(sd.env.container_dir(&id)).unwrap();
    let report = sd.ok(&["recover"]);
    assert!(report.contains(&id), "{report}");
    assert!(
        eventually(PATIENCE, || !alive(pid)),
        "the orphan's init lives"
    );
    assert!(eventually(PATIENCE, || unit_gone(&unit)), "{unit} is left");
    assert!(!sd.scope_dir(&id).exists());
}

/// Under the systemd driver a nested container is a plain sub-cgroup of
/// its parent's delegated scope, `phobos-<id>.scope/mesos/<child>`, with
/// limits of its own and its processes in its leaf. Containers keep the
/// driver they were created with: after the configuration switches
/// (systemd → cgroupfs and back), stats, nested launches, recover and
/// destroy of the live containers made under the other driver still work
/// and leave nothing.
#[test]
fn privileged_systemd_nested_cgroups_and_a_driver_switch_with_live_containers() {
    let test = "privileged_systemd_nested_cgroups_and_a_driver_switch_with_live_containers";
    if !under_systemd(test) {
        return;
    }
    let sd = Sd::new();
    let stats = |out: String| -> serde_json::Value { serde_json::from_str(&out).unwrap() };
    // A scope with a nested container of its own.
    let sc = short_id("s");
    let unit = format!("phobos-{sc}.scope");
    sd.ok(&[
        "run", "-d", "--id", &sc, "--mem", "96", "--", "sleep", "1000",
    ]);
    let kid = format!("{sc}.kid");
    sd.ok(&[
        "run", "-d", "--parent", &sc, "--id", "kid", "--mem", "32", "--", "sleep", "1000",
    ]);
    let kid_dir = sd.scope_dir(&sc).join("mesos/kid");
    let read = |p: PathBuf| std::fs::read_to_string(&p).unwrap().trim().to_owned();
    assert_eq!(read(kid_dir.join("memory.max")), (32u64 << 20).to_string());
    let kid_pid = sd.env.status_json(&kid)["pid"].as_i64().unwrap();
    let scope_rel = sd.scope_dir(&sc);
    let scope_rel = scope_rel.strip_prefix("/sys/fs/cgroup").unwrap().display();
    assert_eq!(
        init_cgroup(kid_pid),
        format!("0::/{scope_rel}/mesos/kid/leaf")
    );

    // A cgroupfs container beside it (the same root, no driver set).
    let fs = short_id("c");
    sd.env.ok(&[
        "run", "-d", "--id", &fs, "--mem", "80", "--", "sleep", "1000",
    ]);
    let fs_dir = Path::new("/sys/fs/cgroup")
        .join(&sd.env.cgroups_root)
        .join(&fs);
    assert!(fs_dir.join("leaf").is_dir());

    // Each configuration sees the other driver's containers where they are.
    assert_eq!(
        stats(sd.env.ok(&["stats", "--json", &sc]))["mem_limit_bytes"],
        96u64 << 20
    );
    assert_eq!(
        stats(sd.env.ok(&["stats", "--json", &kid]))["mem_limit_bytes"],
        32u64 << 20
    );
    assert_eq!(
        stats(sd.ok(&["stats", "--json", &fs]))["mem_limit_bytes"],
        80u64 << 20
    );
    // A nested container launched under the other driver's parent goes
    // where its parent's driver puts it.
    sd.ok(&[
        "run", "-d", "--parent", &fs, "--id", "k2", "--mem", "40", "--", "sleep", "1000",
    ]);
    assert_eq!(
        read(fs_dir.join("mesos/k2/memory.max")),
        (40u64 << 20).to_string()
    );
    sd.env.ok(&[
        "run", "-d", "--parent", &sc, "--id", "k3", "--mem", "40", "--", "sleep", "1000",
    ]);
    assert_eq!(
        read(sd.scope_dir(&sc).join("mesos/k3/memory.max")),
        (40u64 << 20).to_string()
    );
    for recover in [sd.ok(&["recover"]), sd.env.ok(&["recover"])] {
        for id in [&sc, &fs] {
            assert!(
                recover.lines().any(|l| l == format!("recovered {id}")),
                "{recover}"
            );
        }
        assert!(!recover.contains("destroyed"), "{recover}");
    }
    for id in [&sc, &kid, &fs] {
        assert_eq!(sd.env.status_json(id)["state"], "RUNNING", "{id}");
    }
    assert_eq!(unit_property(&unit, "ActiveState"), "active");

    // Destroyed through the other configuration: nothing is left.
    sd.env.ok(&["destroy", &sc]);
    sd.ok(&["destroy", &fs]);
    assert!(eventually(PATIENCE, || unit_gone(&unit)), "{unit} is left");
    assert!(!sd.scope_dir(&sc).exists(), "the scope's cgroup is left");
    assert!(!fs_dir.exists(), "the cgroupfs container's cgroup is left");
    // Empty by the kernel's count (cgroup_exit) a moment before the task
    // turns into a zombie.
    assert!(
        eventually(PATIENCE, || !alive(kid_pid)),
        "{kid_pid} survived destroy"
    );
    assert!(
        inits_of(sd.env.runtime.path()).is_empty(),
        "an init is left"
    );
}

/// Recover sweeps the other driver's root too: an orphan left under the
/// cgroupfs root (its record gone) is destroyed by a recovery with the
/// systemd driver configured, since this runtime directory owns that root.
#[test]
fn privileged_systemd_recover_sweeps_the_other_drivers_root() {
    let test = "privileged_systemd_recover_sweeps_the_other_drivers_root";
    if !under_systemd(test) {
        return;
    }
    let sd = Sd::new();
    let fs = short_id("o");
    sd.env
        .ok(&["run", "-d", "--id", &fs, "--", "sleep", "1000"]);
    let pid = sd.env.status_json(&fs)["pid"].as_i64().unwrap();
    let fs_dir = Path::new("/sys/fs/cgroup")
        .join(&sd.env.cgroups_root)
        .join(&fs);
    assert!(fs_dir.is_dir());
    // Its record lost: an orphan cgroup.
    std::fs::remove_dir_all(sd.env.container_dir(&fs)).unwrap();

    let report = sd.ok(&["recover"]);
    assert!(report.contains("destroyed orphan cgroup"), "{report}");
    assert!(report.contains(&fs), "{report}");
    assert!(!fs_dir.exists(), "the orphan's cgroup is left");
    assert!(
        eventually(PATIENCE, || !alive(pid)),
        "the orphan's init lives"
    );
}

#[test]
fn privileged_systemd_cgroups_root_inside_a_running_service_fails_in_one_line() {
    let test = "privileged_systemd_cgroups_root_inside_a_running_service_fails_in_one_line";
    if !under_systemd(test) {
        return;
    }
    let env = Env::new();
    let svc = short_id("svc");
    let root = format!("system.slice/{svc}.service/phobos");
    // phobos runs as the service itself: its cgroup holds a process.
    let out = delegated_service(&svc)
        .arg(PHOBOS)
        .args(env.dir_args())
        .args(["--cgroups-root", &root, "run", "--id", "svc1", "--", "true"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("no-internal-process rule"), "{err}");
    assert!(
        err.contains(&format!("/sys/fs/cgroup/system.slice/{svc}.service")),
        "{err}"
    );
    let t = env.wait_json("svc1");
    assert_eq!(t["state"], "TASK_FAILED", "{t}");
    assert_eq!(t["reason"], "REASON_CONTAINER_LAUNCH_FAILED", "{t}");
    // The service is gone, and with it everything below its cgroup; no
    // container cgroup was made anywhere else.
    assert!(eventually(PATIENCE, || unit_gone(&format!(
        "{svc}.service"
    ))));
    assert!(
        !Path::new("/sys/fs/cgroup")
            .join(&root)
            .join("svc1")
            .exists()
    );
    assert!(
        !Path::new("/sys/fs/cgroup")
            .join(&env.cgroups_root)
            .join("svc1")
            .exists()
    );
}

#[test]
fn privileged_systemd_delegated_service_with_phobos_in_a_leaf_works() {
    let test = "privileged_systemd_delegated_service_with_phobos_in_a_leaf_works";
    if !under_systemd(test) {
        return;
    }
    let env = Env::new();
    let svc = short_id("agent");
    let unit_dir = format!("/sys/fs/cgroup/system.slice/{svc}.service");
    let root = format!("system.slice/{svc}.service/containers");
    // docs/operations.md's layout for systemd < 254: the service moves
    // itself into <unit>/supervisor, containers go to <unit>/containers.
    // (In a script file: systemd would expand `$$` on its command line.)
    let script = env.work.path().join("leaf.sh");
    std::fs::write(
        &script,
        format!(
            "mkdir {unit_dir}/supervisor && echo $$ > {unit_dir}/supervisor/cgroup.procs && exec \"$@\"\n"
        ),
    )
    .unwrap();
    let out = delegated_service(&svc)
        .arg("/bin/sh")
        .arg(&script)
        .arg(PHOBOS)
        .args(env.dir_args())
        .args([
            "--cgroups-root",
            &root,
            "run",
            "--id",
            "leaf",
            "--mem",
            "64",
            "--",
            "sh",
            "-c",
            "cat /proc/self/cgroup; exit 3",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        // The container `leaf`'s processes, in its cgroup's leaf.
        format!("0::/{root}/leaf/leaf")
    );
    assert!(eventually(PATIENCE, || unit_gone(&format!(
        "{svc}.service"
    ))));
}

#[test]
fn privileged_systemd_driver_is_refused_in_one_line_where_it_cannot_work() {
    let test = "privileged_systemd_driver_is_refused_in_one_line_where_it_cannot_work";
    if !require_root(test) {
        return;
    }
    let sd = Sd::new();
    // A cgroups root that names no slice: bad input, nothing changed.
    let out = Command::new(PHOBOS)
        .arg("--config")
        .arg(&sd.config)
        .args(sd.env.dir_args())
        .args(["--cgroups-root", "a/b", "run", "--id", "bad", "--", "true"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("slice") && err.contains("a/b"), "{err}");
    assert!(!sd.env.container_dir("bad").exists());
    // On a host with cgroup v1 controllers (this CI host is hybrid) the
    // driver is refused, naming the layout, before anything is made.
    if Hierarchies::detect().unwrap().layout() == Layout::Unified {
        println!("{test}: pure cgroup v2 here; the hybrid-host refusal is not checked");
        return;
    }
    let out = sd.run(&["run", "--id", "hy", "--", "true"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("pure cgroup v2"), "{err}");
    assert!(!sd.env.container_dir("hy").exists());
    assert!(!sd.slice_dir.exists(), "a slice directory was made");
}
