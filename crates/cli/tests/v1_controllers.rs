//! `cgroups/net_cls`, `cgroups/net_prio` and `cgroups/perf_event` on real
//! cgroup v1 hierarchies. This host has none mounted (its /proc/cgroups
//! shows hierarchy 0 for them), so the test mounts its own, on temporary
//! directories, for the length of the test only, and unmounts them after
//! removing every cgroup made there, until the controllers are back on the
//! default hierarchy.

mod agent_client;
mod common;

use std::path::{Path, PathBuf};

use common::{Env, require_root};
use nix::mount::{MntFlags, MsFlags, mount, umount2};

/// A v1 hierarchy of `controllers` mounted on a temporary directory,
/// unmounted on drop after its cgroups are gone.
struct V1Mount {
    dir: tempfile::TempDir,
    controllers: String,
}

impl V1Mount {
    fn new(controllers: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().unwrap();
        mount_v1(dir.path(), controllers)?;
        Ok(V1Mount {
            dir,
            controllers: controllers.to_owned(),
        })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

fn mount_v1(at: &Path, controllers: &str) -> Result<(), String> {
    mount(
        Some("cgroup"),
        at,
        Some("cgroup"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(controllers),
    )
    .map_err(|e| format!("mount -t cgroup -o {controllers}: {e}"))
}

/// Removes every empty cgroup below `dir`, deepest first.
fn remove_cgroups(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroups(&e.path());
            let _ = std::fs::remove_dir(e.path());
        }
    }
}

impl Drop for V1Mount {
    fn drop(&mut self) {
        // A v1 hierarchy unmounted while a child cgroup still exists, even
        // one removed a moment ago and still being released, stays bound
        // to its controllers with no mount at all. So: remove the cgroups
        // and unmount; if the controllers do not come back to the default
        // hierarchy, mount the same hierarchy again (its cgroups are gone
        // by now) and unmount once more. Bounded; never left mounted.
        let released = || {
            (0..20).any(|_| {
                let back = self
                    .controllers
                    .split(',')
                    .all(|c| hierarchy_of(c) == Some(0));
                if !back {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                back
            })
        };
        for _ in 0..5 {
            remove_cgroups(self.dir.path());
            if umount2(self.dir.path(), MntFlags::empty()).is_err() {
                let _ = umount2(self.dir.path(), MntFlags::MNT_DETACH);
            }
            if released() || mount_v1(self.dir.path(), &self.controllers).is_err() {
                return;
            }
        }
        let _ = umount2(self.dir.path(), MntFlags::MNT_DETACH);
        eprintln!(
            "the {} hierarchy is still bound after its test",
            self.controllers
        );
    }
}

/// The hierarchy id /proc/cgroups gives `controller` (0: the default one).
fn hierarchy_of(controller: &str) -> Option<u32> {
    let text = std::fs::read_to_string("/proc/cgroups").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.first() == Some(&controller))
            .then(|| f.get(1)?.parse().ok())
            .flatten()
    })
}

/// Whether the kernel has `controller` enabled (/proc/cgroups).
fn kernel_has(controller: &str) -> bool {
    std::fs::read_to_string("/proc/cgroups").is_ok_and(|t| {
        t.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.first() == Some(&controller) && f.get(3) == Some(&"1")
        })
    })
}

#[test]
fn privileged_net_cls_net_prio_and_perf_event_cgroups_hold_the_container() {
    let name = "privileged_net_cls_net_prio_and_perf_event_cgroups_hold_the_container";
    if !require_root(name) {
        return;
    }
    for c in ["net_cls", "net_prio", "perf_event"] {
        if !kernel_has(c) {
            println!("skipping {name}: the kernel has no {c} controller");
            return;
        }
    }
    // Not while a `cgroups/all` test of any checkout on this host runs: its
    // container would get cgroups in the temporary hierarchies.
    let _alone = common::lease::exclusive("v1-mounts");
    // Before the mounts: a host without a v1 net_prio hierarchy (this
    // one, or any cgroup2-only host) refuses the isolator in one line.
    let h = phobos_cgroups::Hierarchies::detect().unwrap();
    if h.v1_mount(phobos_cgroups::Controller::NetPrio).is_none() {
        let out = Env::new().run(&[
            "run",
            "--id",
            "never",
            "--isolation",
            "cgroups/net_prio",
            "--",
            "true",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("cgroups/net_prio")
                && stderr.contains("cgroup2 has no net_prio controller"),
            "{stderr}"
        );
    }
    // Only where this host has none: never under someone else's mount.
    for c in ["net_cls", "perf_event"] {
        if hierarchy_of(c) != Some(0) {
            println!("skipping {name}: {c} is already on a v1 hierarchy");
            return;
        }
    }
    let (net, perf) = match (V1Mount::new("net_cls,net_prio"), V1Mount::new("perf_event")) {
        (Ok(net), Ok(perf)) => (net, perf),
        (Err(e), _) | (_, Err(e)) => {
            // A kernel booted with cgroup_no_v1 refuses v1 mounts.
            println!("skipping {name}: {e}");
            return;
        }
    };
    // Made after the mounts so that it is dropped (its containers
    // destroyed) before they are unmounted, also when an assertion fails.
    let env = Env::new();
    let isolation = "cgroups/net_cls,cgroups/net_prio,cgroups/perf_event";
    let id = "v1c";
    env.ok(&[
        "run",
        "-d",
        "--id",
        id,
        "--isolation",
        isolation,
        "--",
        "sleep",
        "1000",
    ]);
    let pid = env.status_json(id)["pid"].as_u64().expect("pid");
    let rel = env.cgroup_rel(id);
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for c in ["net_cls,net_prio", "perf_event"] {
        assert!(
            cgroups.lines().any(|l| l.ends_with(&format!(":{c}:{rel}"))),
            "{c} cgroup {rel} not in\n{cgroups}"
        );
    }
    let dirs: Vec<PathBuf> = [net.path(), perf.path()]
        .iter()
        .map(|m| m.join(rel.trim_start_matches('/')))
        .collect();
    for dir in &dirs {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
        assert!(
            procs.lines().any(|p| p == pid.to_string()),
            "{}: {procs}",
            dir.display()
        );
    }
    // Without a primary handle net_cls's classid stays the kernel's
    // default, and status shows no cgroup_info, as in Mesos.
    assert!(env.status_json(id).get("cgroup_info").is_none());
    assert_eq!(
        std::fs::read_to_string(dirs[0].join("net_cls.classid"))
            .unwrap()
            .trim(),
        "0"
    );
    env.ok(&["destroy", id]);
    for dir in &dirs {
        assert!(!dir.exists(), "{} left after destroy", dir.display());
    }

    // With a primary handle each container gets a classid of its own
    // from the secondary range (Mesos's handles), shown in `status`;
    // destroying a container frees its handle.
    let config = env.work.path().join("net_cls.toml");
    std::fs::write(
        &config,
        "cgroups_net_cls_primary_handle = \"0x12\"\n\
         cgroups_net_cls_secondary_handles = \"0x10,0x11\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let launch = |id: &str| {
        env.run(&[
            "--config",
            config,
            "run",
            "-d",
            "--id",
            id,
            "--isolation",
            "cgroups/net_cls",
            "--",
            "sleep",
            "1000",
        ])
    };
    let classid = |id: &str| env.status_json(id)["cgroup_info"]["net_cls"]["classid"].as_u64();
    for id in ["h1", "h2"] {
        let out = launch(id);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(classid("h1"), Some(0x0012_0010));
    assert_eq!(classid("h2"), Some(0x0012_0011));
    // The agent's GET_CONTAINERS carries them too (Mesos's
    // ContainerStatus.cgroup_info.net_cls.classid).
    {
        let agent = agent_client::Agent::start(&env, &[]);
        let reply = agent
            .conn()
            .json(&serde_json::json!({"type": "GET_CONTAINERS",
            "get_containers": {"show_standalone": true}}));
        assert_eq!(reply.status, 200, "{}", reply.text());
        let listed = reply.json();
        let agent_classid = |id: &str| {
            listed["get_containers"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["container_id"]["value"] == id)
                .map(|c| c["container_status"]["cgroup_info"]["net_cls"]["classid"].as_u64())
        };
        assert_eq!(agent_classid("h1"), Some(Some(0x0012_0010)), "{listed}");
        assert_eq!(agent_classid("h2"), Some(Some(0x0012_0011)), "{listed}");
    }
    let cls = net
        .path()
        .join(&env.cgroups_root)
        .join("h2/net_cls.classid");
    assert_eq!(
        std::fs::read_to_string(cls).unwrap().trim(),
        0x0012_0011.to_string()
    );
    let out = launch("h3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no free net_cls secondary handle for primary 0x12"),
        "{stderr}"
    );
    assert!(
        !net.path().join(&env.cgroups_root).join("h3").exists(),
        "refused: nothing left"
    );
    env.ok(&["destroy", "h1"]);
    let out = launch("h4");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        classid("h4"),
        Some(0x0012_0010),
        "h1's handle is free again"
    );
    for id in ["h2", "h4"] {
        env.ok(&["destroy", id]);
    }

    // cgroups/all takes them too while the host has them.
    let out = env.ok(&[
        "run",
        "--isolation",
        "cgroups/all",
        "--",
        "cat",
        "/proc/self/cgroup",
    ]);
    for c in ["net_cls,net_prio", "perf_event"] {
        assert!(
            out.lines()
                .any(|l| l.contains(&format!(":{c}:/{}/", env.cgroups_root))),
            "{c} missing under cgroups/all:\n{out}"
        );
    }

    // Mesos's `perf_events` sampling: a busy container's perf_event cgroup
    // counts task-clock and context switches over `perf_duration`, shown
    // by `stats --json` as Mesos's PerfStatistics.
    let perf_conf = env.work.path().join("perf.toml");
    std::fs::write(
        &perf_conf,
        "perf_events = \"task-clock,cs\"\nperf_duration = \"1s\"\n",
    )
    .unwrap();
    let perf_conf = perf_conf.to_str().unwrap();
    env.ok(&[
        "--config",
        perf_conf,
        "run",
        "-d",
        "--id",
        "busy",
        "--isolation",
        "cgroups/perf_event",
        "--",
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    let out = env.run(&["--config", perf_conf, "stats", "--json", "busy"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("perf_event_open") {
        println!("skipping the perf_events part of {name}: the kernel refuses: {stderr}");
    } else {
        assert!(out.status.success(), "{stderr}");
        let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let perf = &stats["perf"];
        assert_eq!(perf["duration"].as_f64(), Some(1.0), "{stats}");
        assert!(perf["timestamp"].as_f64().unwrap_or(0.0) > 0.0, "{stats}");
        // A process spinning on a CPU for the whole second, on a loaded
        // machine: some of that second, never more than all of it.
        let task_clock = perf["task_clock"].as_f64().expect("task_clock in ms");
        assert!(task_clock > 0.0 && task_clock <= 1000.0 * 1.5, "{stats}");
        assert!(perf["context_switches"].as_u64().is_some(), "{stats}");
        agent_reports_perf(&env, perf_conf);
    }
    env.ok(&["destroy", "busy"]);
    drop(env);
    drop((net, perf));
}

/// The agent's GET_CONTAINERS carries the same sample as Mesos's
/// `ResourceStatistics.perf` (field 13), in JSON and in protobuf, for the
/// running container `busy` spinning in `cgroups/perf_event`.
fn agent_reports_perf(env: &Env, config: &str) {
    use phobos_proto::agent::call::{GetContainers, Type as CallType};
    use phobos_proto::agent::{Call, Response};

    let agent = agent_client::Agent::start(env, &["--config", config]);
    let mut conn = agent.conn();
    let reply = conn.json(&serde_json::json!({"type": "GET_CONTAINERS",
        "get_containers": {"show_standalone": true}}));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let listed = reply.json();
    let busy = listed["get_containers"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["container_id"]["value"] == "busy")
        .unwrap_or_else(|| panic!("busy is not listed: {listed}"));
    let perf = &busy["resource_statistics"]["perf"];
    assert_eq!(perf["duration"].as_f64(), Some(1.0), "{busy}");
    assert!(perf["timestamp"].as_f64().unwrap_or(0.0) > 0.0, "{busy}");
    let task_clock = perf["task_clock"].as_f64().expect("task_clock in ms");
    assert!(task_clock > 0.0 && task_clock <= 1000.0 * 1.5, "{busy}");
    assert!(perf["context_switches"].as_u64().is_some(), "{busy}");

    let call = Call {
        r#type: Some(CallType::GetContainers as i32),
        get_containers: Some(GetContainers {
            show_nested: Some(false),
            show_standalone: Some(true),
        }),
        ..Call::default()
    };
    let (status, body, text) = conn.proto(&call);
    assert_eq!(status, 200, "{text}");
    let body: Response = body.unwrap();
    let containers = body.get_containers.unwrap().containers;
    let busy = containers
        .iter()
        .find(|c| c.container_id.value == "busy")
        .expect("busy is listed");
    let perf = busy
        .resource_statistics
        .as_ref()
        .and_then(|s| s.perf.as_ref())
        .expect("ResourceStatistics.perf");
    assert_eq!(perf.duration, 1.0);
    assert!(perf.timestamp > 0.0);
    let task_clock = perf.task_clock.expect("task_clock");
    assert!(task_clock > 0.0 && task_clock <= 1000.0 * 1.5, "{perf:?}");
    assert!(perf.context_switches.is_some(), "{perf:?}");
    // Events not sampled stay absent.
    assert_eq!(perf.cycles, None);
}
