//! `phobos --agent SOCKET <command>`: each routed command against the
//! same containers as the local command, output and exit codes compared;
//! a stopped agent; commands without an API call refused.

use std::process::Output;

use crate::agent_client::Agent;
use crate::common::{Env, PATIENCE, eventually, require_root};

/// `phobos --agent SOCKET args…` for `env`.
fn via(env: &Env, agent: &Agent, args: &[&str]) -> Output {
    env.cmd()
        .arg("--agent")
        .arg(&agent.socket)
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The command through the agent and locally: the same stdout, stderr
/// and exit code. Returns the local output.
fn same(env: &Env, agent: &Agent, args: &[&str]) -> Output {
    let remote = via(env, agent, args);
    let local = env.run(args);
    assert_eq!(
        (
            remote.status.code(),
            text(&remote.stdout),
            text(&remote.stderr)
        ),
        (
            local.status.code(),
            text(&local.stdout),
            text(&local.stderr)
        ),
        "phobos {args:?}: through the agent (left) and locally (right)"
    );
    local
}

#[test]
fn privileged_agent_cli_routes_commands_with_local_output() {
    if !require_root("privileged_agent_cli_routes_commands_with_local_output") {
        return;
    }
    let env = Env::new();
    let agent = Agent::start(&env, &[]);

    // A foreground run: its output, its exit code, as a local run's.
    let script = ["--", "sh", "-c", "echo out; echo err >&2; exit 3"];
    let remote = via(
        &env,
        &agent,
        &[&["run", "--id", "fg-agent"][..], &script].concat(),
    );
    let local = env.run(&[&["run", "--id", "fg-local"][..], &script].concat());
    for out in [&remote, &local] {
        assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "out\n");
        assert_eq!(text(&out.stderr), "err\n");
    }
    for id in ["fg-agent", "fg-local"] {
        let out = same(&env, &agent, &["wait", id]);
        assert!(
            text(&out.stdout).starts_with("exited with status 3"),
            "{}",
            text(&out.stdout)
        );
        same(&env, &agent, &["wait", "--json", id]);
        same(&env, &agent, &["status", id]);
        same(&env, &agent, &["status", "--json", id]);
    }

    // Detached, with resources and the environment; nested under it.
    let out = via(
        &env,
        &agent,
        &[
            "run", "-d", "--id", "bg", "--mem", "64", "-e", "A=1", "--", "sleep", "600",
        ],
    );
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "bg\n".to_owned()),
        "{}",
        text(&out.stderr)
    );
    let out = via(
        &env,
        &agent,
        &[
            "run", "-d", "--parent", "bg", "--id", "n", "--", "sleep", "600",
        ],
    );
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "bg.n\n".to_owned()),
        "{}",
        text(&out.stderr)
    );
    let out = via(
        &env,
        &agent,
        &[
            "run", "--parent", "bg", "--id", "m", "--", "sh", "-c", "exit 4",
        ],
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    for id in ["bg", "bg.n", "bg.m"] {
        same(&env, &agent, &["status", id]);
        same(&env, &agent, &["status", "--json", id]);
    }
    let status = env.status_json("bg");
    assert_eq!(status["resources"]["mem"], 64.0, "{status}");
    same(&env, &agent, &["ps", "--json"]);

    // kill: the signal reaches the command; both faces see its end.
    let out = via(&env, &agent, &["kill", "-s", "TERM", "bg.n"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = same(&env, &agent, &["wait", "bg.n"]);
    assert!(
        text(&out.stdout).starts_with("killed by signal 15"),
        "{}",
        text(&out.stdout)
    );

    // destroy: the termination printed, the record kept (as locally).
    let out = via(&env, &agent, &["destroy", "bg"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("killed by signal 9"),
        "{}",
        text(&out.stdout)
    );
    same(&env, &agent, &["destroy", "bg"]);
    same(&env, &agent, &["destroy", "--json", "bg", "fg-local"]);
    same(&env, &agent, &["status", "bg"]);

    // --rm forgets it once it ended.
    let out = via(&env, &agent, &["run", "--rm", "--id", "gone", "--", "true"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = same(&env, &agent, &["status", "gone"]);
    assert_eq!(out.status.code(), Some(1));

    // Unknown containers: the same line and code as locally.
    for args in [
        &["wait", "nope"][..],
        &["status", "nope"],
        &["status", "--json", "nope"],
        &["kill", "nope"],
        &["destroy", "nope"],
        &["kill", "-s", "NOSUCH", "bg"],
        &["wait", "bad/id"],
        &["run", "-d", "--id", "fg-local", "--", "true"],
    ] {
        let out = same(&env, &agent, args);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
    }

    // Every container has ended: the whole table is stable.
    assert!(eventually(PATIENCE, || {
        env.status_json("bg.m")["state"] == "TERMINATED"
    }));
    same(&env, &agent, &["ps"]);
    same(&env, &agent, &["ps", "--json"]);

    // `ps -q`: the IDs alone, one a line, in the listing's order, as
    // `destroy $(phobos ps -q)` takes them.
    let out = same(&env, &agent, &["ps", "-q"]);
    let listed: Vec<serde_json::Value> = serde_json::from_str(&env.ok(&["ps", "--json"])).unwrap();
    let listed: Vec<&str> = listed.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(text(&out.stdout).lines().collect::<Vec<_>>(), listed);
    assert!(listed.contains(&"bg.n"), "{listed:?}");
    same(&env, &agent, &["ps", "--quiet"]);
    let ids = text(&out.stdout);
    let mut destroy = vec!["destroy"];
    destroy.extend(ids.lines());
    let out = via(&env, &agent, &destroy);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), listed.len());
    // -q with --json is a usage error, through the agent or not.
    let out = same(&env, &agent, &["ps", "-q", "--json"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn privileged_agent_and_ecp_ignore_phobos_agent_in_their_environment() {
    if !require_root("privileged_agent_and_ecp_ignore_phobos_agent_in_their_environment") {
        return;
    }
    let env = Env::new();
    // Started from a shell whose other commands go to some agent.
    let elsewhere = env.runtime.path().join("elsewhere.sock");
    let agent = Agent::spawn(&env, env.cmd().arg("agent").env("PHOBOS_AGENT", &elsewhere));
    // It serves; what it starts acts on the directories itself.
    let out = via(&env, &agent, &["run", "--id", "e", "--", "echo", "hi"]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "hi\n".to_owned()),
        "{}",
        text(&out.stderr)
    );
    let out = env
        .cmd()
        .env("PHOBOS_AGENT", &agent.socket)
        .args(["ps", "-q"])
        .output()
        .unwrap();
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "e\n".to_owned()),
        "{}",
        text(&out.stderr)
    );
    // An ECP call (its input empty) answers as without the variable.
    let out = env
        .cmd()
        .env("PHOBOS_AGENT", &elsewhere)
        .args(["ecp", "containers"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    // On their command line, `--agent` is refused in one line (exit 2).
    for args in [&["agent"][..], &["ecp", "containers"]] {
        let out = via(&env, &agent, args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("--agent"), "{args:?}: {err}");
    }
}

#[test]
fn privileged_agent_cli_refuses_what_it_cannot_route() {
    if !require_root("privileged_agent_cli_refuses_what_it_cannot_route") {
        return;
    }
    let env = Env::new();
    let agent = Agent::start(&env, &[]);
    for args in [
        &["logs", "x"][..],
        &["recover"],
        &["exec", "x", "--", "true"],
        &["run", "-t", "--", "true"],
        &["run", "--workdir", "/", "--", "true"],
        &["run", "--image", "busybox", "--", "true"],
    ] {
        let out = via(&env, &agent, args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("--agent"), "{args:?}: {err}");
    }
    // Nothing was launched.
    let out = via(&env, &agent, &["ps", "--json"]);
    assert_eq!(text(&out.stdout).trim(), "[]");

    // PHOBOS_AGENT is the same as --agent.
    let out = env
        .cmd()
        .env("PHOBOS_AGENT", &agent.socket)
        .args(["logs", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));

    // The agent stopped: one line naming its socket, exit 1.
    let socket = agent.socket.clone();
    drop(agent);
    let out = env
        .cmd()
        .arg("--agent")
        .arg(&socket)
        .arg("ps")
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&socket.display().to_string()), "{err}");
}

#[test]
fn privileged_agent_cli_run_forwards_signals_as_locally() {
    if !require_root("privileged_agent_cli_run_forwards_signals_as_locally") {
        return;
    }
    let env = Env::new();
    let agent = Agent::start(&env, &[]);
    let mut codes = Vec::new();
    for (id, routed) in [("sig-agent", true), ("sig-local", false)] {
        let mut cmd = env.cmd();
        if routed {
            cmd.arg("--agent").arg(&agent.socket);
        }
        let mut child = cmd
            .args(["run", "--id", id, "--", "sleep", "600"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // The command runs (its record says so) before the signal is sent.
        assert!(
            eventually(PATIENCE, || {
                let out = env.run(&["status", "--json", id]);
                out.status.success()
                    && serde_json::from_slice::<serde_json::Value>(&out.stdout)
                        .is_ok_and(|s| s["state"] == "RUNNING")
            }),
            "{id} did not start"
        );
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().unwrap();
        codes.push(status.code());
        let t = env.wait_json(id);
        assert_eq!(t["signal"], libc::SIGTERM, "{id}: {t}");
    }
    assert_eq!(codes, [Some(143), Some(143)]);
    // The agent ignores SIGPIPE (and starts its inits ahead): its
    // containers' commands still start with every signal at its default
    // and none blocked, as the CLI's do.
    let out = via(
        &env,
        &agent,
        &[
            "run",
            "--",
            "grep",
            "-E",
            "^Sig(Ign|Blk):",
            "/proc/self/status",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
    );
}
