//! A Docker container's output under the `logrotate` container logger,
//! against the real engine (`busybox:local`): the engine's own json-file
//! log is created bounded by `[logrotate]` (a log driver or options the
//! user chose are kept untouched; the `sandbox` logger leaves the
//! engine's default), and the copy in the sandbox is rotated, and resumed
//! after a killed writer without a line lost or repeated. Each test has
//! its own runtime and work directories and unique IDs; the environment's
//! drop destroys what a test left.

mod common;

use common::engine::{engine_or_skip, inspect, run_args};
use common::{Config, Env, PATIENCE, config, log_stream, succeeded};

fn unique() -> String {
    common::engine::unique("dl")
}

fn phobos(env: &Env, cfg: &Config, args: &[&str]) -> std::process::Output {
    env.cmd_config(&cfg.path).args(args).output().unwrap()
}

fn ok(env: &Env, cfg: &Config, args: &[&str]) -> String {
    succeeded(args, phobos(env, cfg, args))
}

/// `docker inspect`'s `HostConfig.LogConfig` of `mesos-<id>`.
fn log_config(id: &str) -> serde_json::Value {
    let text = inspect(id, "{{json .HostConfig.LogConfig}}")
        .unwrap_or_else(|| panic!("no container mesos-{id}"));
    serde_json::from_str(&text).unwrap()
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
        ok(&env, &cfg, &run_args(true, id, extra, &["sleep", "600"]));
    };
    // The logrotate logger (the default): json-file, bounded.
    let bounded = unique();
    launch(&bounded, &[]);
    let log = log_config(&bounded);
    assert_eq!(log["Type"], "json-file", "{log}");
    assert_eq!(
        log["Config"]["max-size"],
        (3 * ((1 << 20) + (64 << 10))).to_string(),
        "{log}"
    );
    assert_eq!(log["Config"]["max-file"], "2", "{log}");
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

/// `count` numbered lines of about 200 bytes, as [`WRITER`] prints them.
fn lines(from: u64, to: u64) -> Vec<u8> {
    let pad = "x".repeat(190);
    (from..=to)
        .map(|i| format!("{i} {pad}\n"))
        .collect::<String>()
        .into_bytes()
}

/// Prints lines FROM..TO as [`lines`] does (busybox awk).
const WRITER: &str = r#"awk -v a="$1" -v b="$2" 'BEGIN { p = "x"; while (length(p) < 190) p = p p; p = substr(p, 1, 190); for (i = a; i <= b; i++) print i, p }'"#;

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or((a.len() != b.len()).then(|| a.len().min(b.len())))
}

const SMALL: &str =
    "[logrotate]\nmax_stdout_size = \"256KB\"\nmax_stderr_size = \"16KB\"\nmax_files = 60\n";

/// About 2 MB through a foreground `phobos run`: the terminal gets all
/// of it, and the sandbox copy is rotated into files each within the
/// limit (7 or 8 of them) that hold it all, in order. (The engine streams
/// a running container's log at about 2,000 lines a second here, slower
/// under load: 25,000 lines took 33-62 s at load 12.)
#[test]
fn privileged_docker_sandbox_copy_rotates_within_the_limit_in_order() {
    if !engine_or_skip("privileged_docker_sandbox_copy_rotates_within_the_limit_in_order") {
        return;
    }
    let env = Env::new();
    let cfg = config(SMALL);
    let id = unique();
    let n = 10_000;
    let script = format!("w() {{ {WRITER}; }}; w 1 {n}; w 1 400 >&2");
    let out = phobos(
        &env,
        &cfg,
        &run_args(false, &id, &[], &["sh", "-c", &script]),
    );
    assert!(out.status.success(), "{out:?}");
    let expected = lines(1, n);
    assert!(out.stdout == expected, "the terminal got every line");
    let sandbox = env.sandbox(&id);
    for (name, limit, want) in [
        ("stdout", 256 << 10, expected),
        ("stderr", 16 << 10, lines(1, 400)),
    ] {
        let (files, all) = log_stream(&sandbox, name);
        assert!(files.len() > 4, "{name} rotated: {files:?}");
        assert!(files.iter().all(|(_, len)| *len <= limit), "{files:?}");
        assert!(
            all == want,
            "{name}: {} bytes of {}, first difference at {:?}",
            all.len(),
            want.len(),
            first_difference(&all, &want)
        );
    }
}

/// The pid of the detached `phobos logs --follow --into-sandbox ID`.
fn follower_of(id: &str) -> Option<i32> {
    let wanted = format!("logs\0--follow\0--into-sandbox\0{id}\0");
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        String::from_utf8_lossy(&cmdline)
            .contains(&wanted)
            .then_some(pid)
    })
}

/// A detached container writing about 6 MB in bursts while its copy is
/// written by turns: the detached follower, `phobos logs` refreshes in
/// between, the follower SIGKILLed mid-way, and the container's end
/// (`wait`) replaying from the checkpoint. Every line lands in the
/// rotated sandbox files exactly once, in order.
#[test]
fn privileged_docker_sandbox_copy_resumes_without_loss_or_repeat() {
    if !engine_or_skip("privileged_docker_sandbox_copy_resumes_without_loss_or_repeat") {
        return;
    }
    let env = Env::new();
    let cfg = config(SMALL);
    let id = unique();
    // The second half waits for the test's gate, opened after the
    // follower is killed: the follower is still there to be found and
    // killed however slowly this machine runs (about 3 MB come first).
    let (bursts, per) = (20u64, 1500u64);
    let script = format!(
        "w() {{ {WRITER}; }}; i=0; while [ $i -lt {bursts} ]; do \
         [ $i -eq {half} ] && while [ ! -e \"$MESOS_SANDBOX/go\" ]; do sleep 0.05; done; \
         w $((i*{per}+1)) $((i*{per}+{per})); i=$((i+1)); sleep 0.15; done",
        half = bursts / 2
    );
    ok(
        &env,
        &cfg,
        &run_args(true, &id, &[], &["sh", "-c", &script]),
    );
    let sandbox = env.sandbox(&id);
    let grown = |bytes: u64| {
        common::eventually(PATIENCE, || {
            log_stream(&sandbox, "stdout").1.len() as u64 >= bytes
        })
    };
    assert!(grown(1 << 20), "the follower copies");
    let follower = follower_of(&id).expect("a detached follower");
    // A refresh while the follower copies: they take turns.
    ok(&env, &cfg, &["logs", "--stdout", "--tail", "1", &id]);
    assert!(grown(2 << 20));
    // SIGKILL: wherever it was, the checkpoint says what the files hold.
    // SAFETY: kill(2) on the follower this test's launch started.
    assert_eq!(unsafe { libc::kill(follower, libc::SIGKILL) }, 0);
    std::fs::write(sandbox.join("go"), "").unwrap();
    ok(&env, &cfg, &["logs", "--stdout", "--tail", "1", &id]);
    ok(&env, &cfg, &["wait", &id]);
    assert_eq!(env.wait_json(&id)["exit_code"], 0);
    let expected = lines(1, bursts * per);
    let (files, all) = log_stream(&sandbox, "stdout");
    assert!(files.len() > 10, "rotated: {files:?}");
    assert!(files.iter().all(|(_, len)| *len <= 256 << 10), "{files:?}");
    assert!(
        all == expected,
        "{} bytes of {}, first difference at {:?}",
        all.len(),
        expected.len(),
        first_difference(&all, &expected)
    );
}
