//! The configuration file as seen from the binary (`--config`, flags
//! overriding it with provenance, `phobos config`, bad files), `phobos
//! state --rm --older-than`, and the automatic clean-up on `ecp launch`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use phobos_proto::containerizer::{Destroy, Launch};
use phobos_proto::ecp::encode_frame;
use phobos_proto::mesos::{self, CommandInfo, ExecutorId, ExecutorInfo};

const BIN: &str = env!("CARGO_BIN_EXE_phobos");

struct Dirs {
    root: tempfile::TempDir,
    cgroups_root: String,
}

impl Dirs {
    fn new() -> Self {
        Self {
            root: tempfile::tempdir().unwrap(),
            cgroups_root: format!("phobos-test-{}", uuid::Uuid::new_v4()),
        }
    }

    fn runtime(&self) -> PathBuf {
        self.root.path().join("run")
    }

    fn work(&self) -> PathBuf {
        self.root.path().join("work")
    }

    fn config(&self, extra: &str) -> PathBuf {
        let path = self.root.path().join("phobos.toml");
        fs::write(
            &path,
            format!(
                "# test config\nruntime_dir = {:?}\nwork_dir = {:?}\ncgroups_root = {:?}\n{extra}",
                self.runtime(),
                self.work(),
                self.cgroups_root
            ),
        )
        .unwrap();
        path
    }

    fn phobos(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut child = Command::new(BIN)
            .args(args)
            .env_remove("PHOBOS_CONFIG")
            .env_remove("PHOBOS_RUNTIME_DIR")
            .env_remove("PHOBOS_WORK_DIR")
            .env_remove("PHOBOS_CGROUPS_ROOT")
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let c =
            phobos_mesos::MesosContainerizer::new(&self.runtime(), &self.work(), Path::new(BIN));
        if let Ok(list) = c.list() {
            for s in list {
                let _ = c.destroy(&s.id);
            }
        }
        for dir in ["/sys/fs/cgroup".to_owned()].into_iter().chain(
            fs::read_dir("/sys/fs/cgroup")
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path().display().to_string()),
        ) {
            let _ = fs::remove_dir(Path::new(&dir).join(&self.cgroups_root));
        }
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn config_shows_every_value_with_its_source_and_flags_win() {
    let dirs = Dirs::new();
    let config = dirs.config("ecp_termination = \"0.19\"\n\n[log]\nlevel = \"debug\"\n");
    let config_text = config.display().to_string();
    let out = dirs.phobos(
        &[
            "--config",
            &config_text,
            "--work-dir",
            "/srv/sandboxes",
            "config",
        ],
        b"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let line = |key: &str| -> String {
        text.lines()
            .find(|l| l.starts_with(&format!("{key} ")))
            .unwrap_or_else(|| panic!("no {key} in {text}"))
            .to_owned()
    };
    assert!(
        text.starts_with(&format!("# config file: {config_text}")),
        "{text}"
    );
    assert!(
        line("runtime_dir").ends_with(&format!("# {config_text}:2")),
        "{text}"
    );
    assert!(line("work_dir").contains("\"/srv/sandboxes\""), "{text}");
    assert!(line("work_dir").ends_with("# command line"), "{text}");
    assert!(line("ecp_termination").contains("\"0.19\""), "{text}");
    assert!(
        line("ecp_termination").ends_with(&format!("# {config_text}:5")),
        "{text}"
    );
    assert!(
        line("log.level").ends_with(&format!("# {config_text}:8")),
        "{text}"
    );
    assert!(line("docker_stop_timeout").ends_with("# default"), "{text}");

    let out = dirs.phobos(&["--config", &config_text, "config", "--json"], b"");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["file"], config_text.as_str());
    let entry = json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "cgroups_root")
        .unwrap()
        .clone();
    assert_eq!(entry["value"], dirs.cgroups_root.as_str());
    assert_eq!(entry["source"], format!("{config_text}:4"));
}

#[test]
fn bad_configs_and_flags_are_one_line_naming_file_line_and_key() {
    let dirs = Dirs::new();
    let cases = [
        ("runtime_dri = \"/x\"\n", ":5: runtime_dri"),
        (
            "docker_stop_timeout = \"10 parsecs\"\n",
            ":5: invalid value",
        ),
        (
            "[log]\ndestination = \"carrier-pigeon\"\n",
            ":6: invalid value",
        ),
    ];
    for (extra, needle) in cases {
        let config = dirs.config(extra);
        let out = dirs.phobos(&["--config", &config.display().to_string(), "ps"], b"");
        assert_eq!(out.status.code(), Some(2), "{extra}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!("{}{needle}", config.display())),
            "{err}"
        );
    }
    let out = dirs.phobos(&["--config", "/nonexistent/phobos.toml", "ps"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/phobos.toml"),
        "{}",
        stderr(&out)
    );
    let out = dirs.phobos(&["--log-level", "loud", "ps"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("log.level"), "{}", stderr(&out));
    assert!(!dirs.runtime().exists(), "nothing was created");
}

/// The `key = value` part of each line of `phobos config` (sources differ).
fn values(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with("# config file") && !l.starts_with("# no config file"))
        .map(|l| l.split("  #").next().unwrap().trim_end().to_owned())
        .collect()
}

#[test]
fn config_output_loads_back_as_the_same_configuration() {
    let dirs = Dirs::new();
    let config = dirs.config(
        "cgroups_enable_cfs = true\ndocker_kill_orphans = false\nisolation = \"posix/cpu\"\n[log]\nformat = \"json\"\n",
    );
    let config_text = config.display().to_string();
    let first = dirs.phobos(&["--config", &config_text, "config"], b"");
    assert!(first.status.success(), "{}", stderr(&first));
    let first = stdout(&first);
    assert!(first.contains("cgroups_enable_cfs = true "), "{first}");
    assert!(first.contains("docker_kill_orphans = false "), "{first}");
    let printed = dirs.root.path().join("printed.toml");
    fs::write(&printed, &first).unwrap();
    let second = dirs.phobos(&["--config", &printed.display().to_string(), "config"], b"");
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(values(&stdout(&second)), values(&first));
    assert!(
        stdout(&second).contains(&format!("# {}:", printed.display())),
        "the values came from the printed file"
    );
}

#[test]
fn config_mistakes_name_the_file_line_and_the_real_rule() {
    let dirs = Dirs::new();
    // A duplicate table is named as itself, not `log.log`.
    let config = dirs.config("[log]\nlevel = \"info\"\n[log]\nformat = \"json\"\n");
    let out = dirs.phobos(&["--config", &config.display().to_string(), "config"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim(),
        format!("phobos: {}:7: log: duplicate key", config.display())
    );
    // An isolator name only the containerizer knows still names its line.
    let config = dirs.config("isolation = \"cgroups/bogus\"\n");
    let out = dirs.phobos(
        &[
            "--config",
            &config.display().to_string(),
            "run",
            "--",
            "true",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with(&format!(
            "phobos: {}:5: invalid value \"cgroups/bogus\" for isolation: unknown or unsupported isolator",
            config.display()
        )),
        "{}",
        stderr(&out)
    );
    // Mesos's cgroups_hierarchy is refused with the reason.
    let config = dirs.config("cgroups_hierarchy = \"/sys/fs/cgroup\"\n");
    let out = dirs.phobos(&["--config", &config.display().to_string(), "config"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .contains(":5: invalid value \"/sys/fs/cgroup\" for cgroups_hierarchy: not used"),
        "{}",
        stderr(&out)
    );
    // Relative directories: refused from flags as from the file.
    for flag in ["--runtime-dir", "--work-dir"] {
        let out = dirs.phobos(&[flag, "relative/dir", "ps"], b"");
        assert_eq!(out.status.code(), Some(2), "{flag}");
        assert!(
            stderr(&out).contains("invalid value \"relative/dir\"")
                && stderr(&out).contains("expected an absolute path"),
            "{}",
            stderr(&out)
        );
    }
    assert!(!dirs.runtime().exists(), "nothing was created");
}

/// Launches `script` through `phobos ecp launch` with the dirs of `config`.
fn ecp_launch(dirs: &Dirs, config: &Path, id: &str, script: &str) {
    let sandbox = dirs.root.path().join("sandboxes").join(id);
    fs::create_dir_all(&sandbox).unwrap();
    let launch = Launch {
        container_id: mesos::ContainerId {
            value: id.into(),
            parent: None,
        },
        executor_info: Some(ExecutorInfo {
            executor_id: ExecutorId { value: "e".into() },
            command: CommandInfo {
                value: Some(script.into()),
                ..Default::default()
            },
            ..Default::default()
        }),
        directory: Some(sandbox.display().to_string()),
        ..Default::default()
    };
    let out = dirs.phobos(
        &["--config", &config.display().to_string(), "ecp", "launch"],
        &encode_frame(&launch).unwrap(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

fn ecp_destroy(dirs: &Dirs, config: &Path, id: &str) {
    let destroy = Destroy {
        container_id: mesos::ContainerId {
            value: id.into(),
            parent: None,
        },
    };
    let out = dirs.phobos(
        &["--config", &config.display().to_string(), "ecp", "destroy"],
        &encode_frame(&destroy).unwrap(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Pretends container `id` terminated `secs` ago.
/// Moves a terminated container's end `secs` into the past. The `state`
/// checkpoint is a symlink whose target is `"<STATE> <since>"`.
fn age(dirs: &Dirs, id: &str, secs: f64) {
    let path = dirs.runtime().join("containers").join(id).join("state");
    let target = fs::read_link(&path).unwrap();
    let text = target.to_string_lossy();
    let (state, since) = text.split_once(' ').unwrap();
    assert_eq!(state, "TERMINATED");
    let since: f64 = since.parse().unwrap();
    fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(format!("{state} {}", since - secs), &path).unwrap();
}

#[test]
fn state_rm_honours_older_than_and_keeps_the_agents_sandbox() {
    let dirs = Dirs::new();
    let config = dirs.config("");
    let config_text = config.display().to_string();
    for id in ["old", "new", "live"] {
        ecp_launch(&dirs, &config, id, "exec sleep 600");
    }
    ecp_destroy(&dirs, &config, "old");
    ecp_destroy(&dirs, &config, "new");
    age(&dirs, "old", 3.0 * 3600.0);

    let out = dirs.phobos(
        &[
            "--config",
            &config_text,
            "state",
            "--rm",
            "--older-than",
            "2hrs",
        ],
        b"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "removed old");
    let containers = dirs.runtime().join("containers");
    assert!(!containers.join("old").exists());
    assert!(containers.join("new").exists() && containers.join("live").exists());
    // The sandbox was the agent's (Launch.directory): it stays.
    assert!(dirs.root.path().join("sandboxes/old/stdout").exists());

    let out = dirs.phobos(
        &[
            "--config",
            &config_text,
            "state",
            "--rm",
            "--older-than",
            "soon",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--older-than"), "{}", stderr(&out));

    let out = dirs.phobos(&["--config", &config_text, "state", "--rm"], b"");
    assert_eq!(stdout(&out).trim(), "removed new");
    assert!(containers.join("live").exists(), "a live container stays");
}

#[test]
fn launch_sweeps_old_terminated_state_at_most_once_per_interval() {
    let dirs = Dirs::new();
    let config = dirs.config("");
    ecp_launch(&dirs, &config, "first", "exit 0");
    ecp_destroy(&dirs, &config, "first");
    let stamp = dirs.runtime().join("last-sweep");
    assert!(stamp.exists(), "the first launch swept (nothing to remove)");
    age(&dirs, "first", 2.0 * 3600.0);

    // The stamp is fresh: the next launch only stats it.
    ecp_launch(&dirs, &config, "second", "exit 0");
    let containers = dirs.runtime().join("containers");
    assert!(containers.join("first").exists());

    // Once the interval has passed, a launch removes what ended long ago.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(&stamp)
        .unwrap()
        .set_modified(old)
        .unwrap();
    ecp_launch(&dirs, &config, "third", "exit 0");
    assert!(!containers.join("first").exists(), "swept");
    assert!(containers.join("second").exists(), "not old enough");
}

#[test]
fn a_missing_log_socket_is_one_warning_not_a_failure() {
    let dirs = Dirs::new();
    for (destination, socket) in [
        ("syslog", "/dev/log"),
        ("journald", "/run/systemd/journal/socket"),
    ] {
        if Path::new(socket).exists() {
            println!("skipping the {destination} fallback: {socket} exists on this host");
            continue;
        }
        let config = dirs.config(&format!("[log]\ndestination = {destination:?}\n"));
        let out = dirs.phobos(&["--config", &config.display().to_string(), "ps"], b"");
        assert!(out.status.success(), "{}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&format!("phobos: warning: log destination {destination}")),
            "{err}"
        );
        assert!(
            err.contains(socket) && err.contains("logging to stderr"),
            "{err}"
        );
    }
}

#[test]
fn json_logs_carry_the_container_id_on_every_line() {
    let dirs = Dirs::new();
    let config = dirs.config("[log]\nformat = \"json\"\n");
    let sandbox = dirs.root.path().join("sandbox");
    fs::create_dir_all(&sandbox).unwrap();
    let launch = Launch {
        container_id: mesos::ContainerId {
            value: "json-logs".into(),
            parent: None,
        },
        executor_info: Some(ExecutorInfo {
            executor_id: ExecutorId { value: "e".into() },
            command: CommandInfo {
                value: Some("exit 0".into()),
                ..Default::default()
            },
            ..Default::default()
        }),
        directory: Some(sandbox.display().to_string()),
        ..Default::default()
    };
    let out = dirs.phobos(
        &["--config", &config.display().to_string(), "ecp", "launch"],
        &encode_frame(&launch).unwrap(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.lines().count() >= 2, "{err}");
    for line in err.lines() {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(event["level"], "INFO", "{line}");
        assert!(event["timestamp"].is_string(), "{line}");
        let spans = event["spans"].to_string();
        assert!(spans.contains("container_id=json-logs"), "{line}");
    }
    ecp_destroy(&dirs, &config, "json-logs");
}

#[test]
fn privileged_run_takes_launcher_isolation_and_flags_from_the_config() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!(
            "skipping privileged_run_takes_launcher_isolation_and_flags_from_the_config: needs root"
        );
        return;
    }
    let dirs = Dirs::new();
    let saved = |id: &str| -> serde_json::Value {
        let path = dirs.runtime().join("containers").join(id).join("config");
        serde_json::from_slice(&fs::read(&path).unwrap()).unwrap()
    };
    let run = |config: &Path, args: &[&str]| {
        let mut all = vec!["--config", config.to_str().unwrap(), "run"];
        all.extend_from_slice(args);
        let out = dirs.phobos(&all, b"");
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    };

    let config = dirs.config(
        "isolation = \"filesystem/linux,namespaces/pid\"\n\
         cgroups_enable_cfs = true\n\
         container_disk_watch_interval = \"2secs\"\n",
    );
    run(&config, &["--id", "from-file", "--", "true"]);
    let c = saved("from-file");
    assert_eq!(
        c["isolation"],
        serde_json::json!(["filesystem/linux", "namespaces/pid"])
    );
    assert_eq!(c["launcher"], "linux");
    assert_eq!(c["isolator_flags"]["cgroups_enable_cfs"], true, "{c}");
    assert_eq!(
        c["isolator_flags"]["container_disk_watch_interval_secs"], 2.0,
        "{c}"
    );

    // Flags still win over the file.
    run(
        &config,
        &[
            "--id",
            "from-flags",
            "--isolation",
            "filesystem/linux",
            "--container-disk-watch-interval",
            "5s",
            "--",
            "true",
        ],
    );
    let c = saved("from-flags");
    assert_eq!(c["isolation"], serde_json::json!(["filesystem/linux"]));
    assert_eq!(
        c["isolator_flags"]["container_disk_watch_interval_secs"], 5.0,
        "{c}"
    );

    let config = dirs.config("launcher = \"posix\"\n");
    run(&config, &["--id", "posix", "--", "true"]);
    assert_eq!(saved("posix")["launcher"], "posix");
}
