//! A Docker container's output under the `logrotate` container logger,
//! against the real engine (`busybox:local`): the engine's own json-file
//! log is created bounded by `[logrotate]` (a log driver or options the
//! user chose are kept untouched; the `sandbox` logger leaves the
//! engine's default). Each test has its own runtime and work directories
//! and unique IDs; the environment's drop destroys what a test left.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::Env;
use common::engine::{IMAGE, engine_or_skip};

fn unique() -> String {
    format!("dl-{}", uuid::Uuid::new_v4().simple())
}

/// A config file with `text` in a directory of its own.
struct Config {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn config(text: &str) -> Config {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phobos.toml");
    std::fs::write(&path, text).unwrap();
    Config { _dir: dir, path }
}

fn phobos(env: &Env, cfg: &Config, args: &[&str]) -> std::process::Output {
    env.cmd()
        .arg("--config")
        .arg(&cfg.path)
        .args(args)
        .output()
        .unwrap()
}

fn ok(env: &Env, cfg: &Config, args: &[&str]) -> String {
    let out = phobos(env, cfg, args);
    assert!(
        out.status.success(),
        "phobos {args:?}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `docker inspect`'s `HostConfig.LogConfig` of `mesos-<id>`.
fn log_config(id: &str) -> serde_json::Value {
    let out = Command::new("docker")
        .args([
            "inspect",
            "--format",
            "{{json .HostConfig.LogConfig}}",
            &format!("mesos-{id}"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

const LIMITS: &str =
    "[logrotate]\nmax_stdout_size = \"1MB\"\nmax_stderr_size = \"64KB\"\nmax_files = 3\n";

#[test]
fn privileged_docker_engine_log_is_bounded_unless_the_user_chose_one() {
    if !engine_or_skip("privileged_docker_engine_log_is_bounded_unless_the_user_chose_one") {
        return;
    }
    let env = Env::new();
    let cfg = config(LIMITS);
    let launch = |id: &str, extra: &[&str]| {
        let mut args = vec!["run", "-d", "--id", id, "--docker-image", IMAGE];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "sleep", "600"]);
        ok(&env, &cfg, &args);
    };
    // The logrotate logger (the default): json-file, bounded.
    let bounded = unique();
    launch(&bounded, &[]);
    let log = log_config(&bounded);
    assert_eq!(log["Type"], "json-file", "{log}");
    assert_eq!(
        log["Config"]["max-size"],
        ((1 << 20) + (64 << 10)).to_string(),
        "{log}"
    );
    assert_eq!(log["Config"]["max-file"], "3", "{log}");
    // A log option the user gave: theirs alone, nothing added.
    let user_opt = unique();
    launch(&user_opt, &["--docker-param", "log-opt=max-size=7m"]);
    let log = log_config(&user_opt);
    assert_eq!(
        log["Config"],
        serde_json::json!({"max-size": "7m"}),
        "{log}"
    );
    // A log driver the user gave: kept as given.
    let user_driver = unique();
    launch(&user_driver, &["--docker-param", "log-driver=local"]);
    let log = log_config(&user_driver);
    assert_eq!(log["Type"], "local", "{log}");
    assert!(log["Config"].get("max-size").is_none(), "{log}");
    // The sandbox logger: the engine's default, unbounded as before.
    let default = unique();
    launch(&default, &["--container-logger", "sandbox"]);
    let log = log_config(&default);
    assert!(log["Config"].get("max-size").is_none(), "{log}");
    for id in [bounded, user_opt, user_driver, default] {
        ok(&env, &cfg, &["destroy", &id]);
    }
}
