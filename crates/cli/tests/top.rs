//! `phobos top` (issue 13): plain frames in batch mode, and the live view
//! driven through a real pseudo-terminal (tmux with a fixed size): it
//! draws both containers, re-sorts on a key, filters by ID prefix, quits
//! on `q` and on Ctrl-C with exit 0, leaves the alternate screen and
//! gives the shell back its terminal settings.

mod common;

use common::tmux::Tmux;
use common::*;

/// The rows of one frame of batch output, each split into its columns.
fn rows(frame: &str) -> Vec<Vec<String>> {
    frame
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// The rows of the last frame of batch output.
fn last_frame(text: &str) -> Vec<Vec<String>> {
    rows(text.split("\n\n").last().unwrap_or(""))
}

fn ids(frame: &[Vec<String>]) -> Vec<&str> {
    frame.iter().map(|r| r[0].as_str()).collect()
}

/// A sleeping container, a CPU burner, a nested one and one with its own
/// (empty) network namespace.
fn start_four(env: &Env) {
    env.detach("a-sleeper", &["sleep", "1000"]);
    env.detach("b-burner", &["sh", "-c", "while :; do :; done"]);
    env.detach_nested("a-sleeper", "kid", &[], &["sleep", "1000"]);
    env.detach_with("c-nonet", &["--network", "none"], &["sleep", "1000"]);
}

#[test]
fn privileged_top_batch_prints_frames_sorted_nested_and_filtered() {
    if !require_root("privileged_top_batch_prints_frames_sorted_nested_and_filtered") {
        return;
    }
    let env = Env::new();
    start_four(&env);
    let out = env.ok(&["top", "-b", "-n", "2", "-d", "0.2", "-s", "id"]);
    assert_eq!(out.matches("phobos top - ").count(), 2, "{out}");
    let frame = last_frame(&out);
    assert_eq!(
        ids(&frame),
        ["a-sleeper", "kid", "b-burner", "c-nonet"],
        "{out}"
    );
    // The nested container is indented under its parent.
    assert!(out.contains("\n  kid "), "{out}");
    // Memory and tasks of every running container; network rates only for
    // the one with a namespace of its own (loopback not counted: 0B).
    for row in &frame {
        assert_eq!(row[1], "RUNNING", "{out}");
        assert!(row[3].ends_with('B'), "memory of {}: {out}", row[0]);
        assert!(
            row[5].parse::<u32>().unwrap() >= 1,
            "pids of {}: {out}",
            row[0]
        );
    }
    let nonet = &frame[3];
    assert_eq!(
        (nonet[6].as_str(), nonet[7].as_str()),
        ("0B", "0B"),
        "{out}"
    );
    assert_eq!(
        (frame[2][6].as_str(), frame[2][7].as_str()),
        ("-", "-"),
        "{out}"
    );

    // By CPU, the burner comes first once it has been measured running.
    let mut seen = String::new();
    let burner_first = eventually(PATIENCE, || {
        seen = env.ok(&["top", "-b", "-n", "2", "-d", "0.5"]);
        let f = last_frame(&seen);
        ids(&f).first() == Some(&"b-burner")
            && f[0][2].parse::<f64>().is_ok_and(|cpu| cpu > 1.0)
            && f.iter()
                .skip(1)
                .all(|r| r[2].parse::<f64>().is_ok_and(|c| c < 1.0))
    });
    assert!(burner_first, "{seen}");

    let out = env.ok(&["top", "--batch", "-n", "1", "--filter", "a-", "-s", "id"]);
    assert_eq!(ids(&last_frame(&out)), ["a-sleeper", "kid"], "{out}");
    let out = env.ok(&["top", "--batch", "-n", "1", "--filter", "a-sleeper.k"]);
    assert_eq!(ids(&last_frame(&out)), ["a-sleeper.kid"], "{out}");
    let out = env.ok(&["top", "-b", "-n", "1", "--filter", "zzz"]);
    assert!(last_frame(&out).is_empty(), "{out}");

    // An ended container stays listed with how it ended.
    env.ok(&["destroy", "c-nonet"]);
    let out = env.ok(&["top", "-b", "-n", "1", "-s", "id", "-r"]);
    let frame = last_frame(&out);
    assert_eq!(ids(&frame)[0], "c-nonet", "{out}");
    assert!(frame[0][1].starts_with("KILLED"), "{out}");
}

/// Starts a Docker container running `sleep 1000` with a short ID of its
/// own (PREFIX and 12 hex digits, which `top` shows whole); returns the ID.
fn docker_sleeper(env: &Env, prefix: &str) -> String {
    let id = format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    env.ok(&common::engine::run_args(
        true,
        &id,
        &[],
        &["sleep", "1000"],
    ));
    id
}

#[test]
fn privileged_top_shows_docker_containers_from_their_cgroups() {
    if !common::engine::engine_or_skip("privileged_top_shows_docker_containers_from_their_cgroups")
    {
        return;
    }
    let env = Env::new();
    let id = docker_sleeper(&env, "topd");
    env.detach("m-sleeper", &["sleep", "1000"]);
    let mut out = String::new();
    let measured = eventually(PATIENCE, || {
        out = env.ok(&["top", "-b", "-n", "2", "-d", "0.2", "-s", "id"]);
        let frame = last_frame(&out);
        frame.iter().any(|r| {
            r[0] == id
                && r[1] == "RUNNING"
                && r[2].parse::<f64>().is_ok()
                && r[3].ends_with('B')
                && r[5].parse::<u32>().is_ok_and(|p| p >= 1)
        })
    });
    assert!(
        measured,
        "the Docker container measured from its cgroups:\n{out}"
    );
    assert!(
        out.contains(&format!("[docker {}] sleep 1000", common::engine::IMAGE)),
        "{out}"
    );
    assert!(ids(&last_frame(&out)).contains(&"m-sleeper"), "{out}");
    env.ok(&["destroy", &id]);
}

/// A Docker container seen while the engine was unreachable shows `-`;
/// `top` asks the engine again every few refreshes and fills the row in
/// once it answers, without a restart. The engine "comes back" when the
/// configured socket path, missing at first, becomes a symlink to it.
#[test]
fn privileged_top_fills_in_a_docker_container_once_the_engine_is_back() {
    let test = "privileged_top_fills_in_a_docker_container_once_the_engine_is_back";
    if !common::engine::engine_or_skip(test) {
        return;
    }
    let env = Env::new();
    let id = docker_sleeper(&env, "topr");
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("engine.sock");
    let config = dir.path().join("phobos.toml");
    std::fs::write(
        &config,
        format!("docker_socket = \"{}\"\n", socket.display()),
    )
    .unwrap();
    let mut top = env
        .cmd()
        .arg("--config")
        .arg(&config)
        .args(["top", "-b", "-n", "100000", "-d", "0.2", "-s", "id"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let out = out.clone();
        let mut stdout = top.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n @ 1..) = std::io::Read::read(&mut stdout, &mut buf) {
                out.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    // Complete frames (all but the one being written) whose row of `id`
    // passes `check`.
    let seen = |check: &dyn Fn(&[String]) -> bool| {
        let text = out.lock().unwrap().clone();
        let frames: Vec<&str> = text.split("\n\n").collect();
        frames[..frames.len() - 1]
            .iter()
            .any(|f| rows(f).iter().any(|r| r[0] == id && check(r)))
    };
    let unmeasured = eventually(PATIENCE, || {
        seen(&|r: &[String]| r[1] == "RUNNING" && r[5] == "-")
    });
    let measured_before = seen(&|r: &[String]| r[5] != "-");
    std::os::unix::fs::symlink(common::engine::SOCKET, &socket).unwrap();
    let measured = eventually(PATIENCE, || {
        seen(&|r: &[String]| {
            r[1] == "RUNNING" && r[3].ends_with('B') && r[5].parse::<u32>().is_ok_and(|p| p >= 1)
        })
    });
    let _ = top.kill();
    let _ = top.wait();
    reader.join().unwrap();
    env.ok(&["destroy", &id]);
    let text = out.lock().unwrap().clone();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(30)..].join("\n");
    assert!(unmeasured, "no frame showed {id} unmeasured:\n{tail}");
    assert!(!measured_before, "measured without the engine:\n{tail}");
    assert!(
        measured,
        "{id} never filled in once the engine was back:\n{tail}"
    );
}

#[test]
fn top_refuses_bad_options_in_one_line() {
    let env = Env::new();
    for (args, needle) in [
        (&["top", "-d", "0"][..], "-d 0"),
        (&["top", "-d", "nan"][..], "-d NaN"),
        (&["top", "-n", "0"][..], "-n 0"),
    ] {
        let out = env.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let out = env.run(&["top", "-s", "bogus"]);
    assert_eq!(out.status.code(), Some(2));
}

/// The order in which `ids` appear on `screen` (first line of each).
fn order_on(screen: &str, ids: &[&str]) -> Vec<usize> {
    ids.iter()
        .map(|id| {
            screen
                .lines()
                .position(|l| l.split_whitespace().next() == Some(id))
                .unwrap_or(usize::MAX)
        })
        .collect()
}

fn phobos_line(env: &Env, args: &str) -> String {
    format!(
        "{} --runtime-dir {} --work-dir {} --cgroups-root {} {args}",
        PHOBOS,
        env.runtime.path().display(),
        env.work.path().display(),
        env.cgroups_root
    )
}

#[test]
fn privileged_top_on_a_terminal_sorts_filters_and_restores_the_terminal() {
    if !require_root("privileged_top_on_a_terminal_sorts_filters_and_restores_the_terminal") {
        return;
    }
    let env = Env::new();
    env.detach("a-sleeper", &["sleep", "1000"]);
    env.detach("b-burner", &["sh", "-c", "while :; do :; done"]);
    let Some(tmux) = Tmux::start(160, 30) else {
        return;
    };
    let files = tempfile::tempdir().unwrap();
    let before = files.path().join("before");
    let after = files.path().join("after");
    tmux.type_line(&format!("stty -g > {}", before.display()));
    // Runs `top ARGS` in the shell, then prints `TOP-EXIT{tag}=` and its
    // status and saves the terminal's settings in `after`.
    let start = |args: &str, tag: &str| {
        let _ = std::fs::remove_file(&after);
        tmux.type_line(&format!(
            "{}; echo TOP-EXIT{tag}=$?; stty -g > {}",
            phobos_line(&env, args),
            after.display()
        ));
    };
    // Top ended with 0 (`TOP-EXIT{tag}=0`, after `how`), the alternate
    // screen left and the terminal's settings as they were.
    let ended_cleanly = |tag: &str, how: &str| {
        let (ok, screen) = tmux.until(|s| s.contains(&format!("TOP-EXIT{tag}=0")));
        assert!(ok, "top exits 0 on {how}:\n{screen}");
        assert!(!tmux.alternate_on(), "the alternate screen is left");
        assert!(eventually(PATIENCE, || std::fs::metadata(&after)
            .is_ok_and(|m| m.len() > 0)));
        assert_eq!(
            std::fs::read_to_string(&before).unwrap(),
            std::fs::read_to_string(&after).unwrap(),
            "the terminal's settings are restored"
        );
    };
    start("top -d 0.3 -s id", "");

    // Sorted by ID: the sleeper above the burner.
    let (ok, screen) = tmux.until(|s| {
        let o = order_on(s, &["a-sleeper", "b-burner"]);
        o[0] < o[1] && o[1] != usize::MAX
    });
    assert!(ok, "both containers by ID:\n{screen}");
    assert!(tmux.alternate_on(), "top draws on the alternate screen");
    assert!(screen.contains("sort: ID"), "{screen}");

    // `c`: by CPU, the burner first.
    tmux.send(&["c"]);
    let (ok, screen) = tmux.until(|s| {
        let o = order_on(s, &["a-sleeper", "b-burner"]);
        s.contains("sort: CPU") && o[1] < o[0] && o[0] != usize::MAX
    });
    assert!(ok, "the burner first by CPU:\n{screen}");

    // `r` reverses it.
    tmux.send(&["r"]);
    let (ok, screen) = tmux.until(|s| {
        let o = order_on(s, &["a-sleeper", "b-burner"]);
        s.contains("(reversed)") && o[0] < o[1] && o[1] != usize::MAX
    });
    assert!(ok, "reversed:\n{screen}");

    // `/b` Enter: only the burner.
    tmux.send(&["/"]);
    tmux.send(&["-l", "b-"]);
    tmux.send(&["Enter"]);
    let (ok, screen) = tmux.until(|s| {
        s.contains("filter: b-")
            && !s.contains("filter: b-_")
            && s.contains("b-burner")
            && !s.contains("a-sleeper")
    });
    assert!(ok, "filtered by prefix:\n{screen}");

    // A resize is drawn at the new width.
    let resized = tmux
        .cmd()
        .args(["resize-window", "-t", "top", "-x", "60", "-y", "20"])
        .status()
        .unwrap();
    if resized.success() {
        let (ok, screen) =
            tmux.until(|s| s.lines().all(|l| l.chars().count() <= 60) && s.contains("b-burner"));
        assert!(ok, "redrawn at 60 columns:\n{screen}");
    }

    // `q`: exit 0, the alternate screen left, the terminal as it was.
    tmux.send(&["q"]);
    ended_cleanly("", "q");

    // Ctrl-C quits as cleanly.
    tmux.type_line("clear");
    start("top -d 0.3", "2");
    let (ok, screen) = tmux.until(|s| s.contains("b-burner") && s.contains("phobos top - "));
    assert!(ok, "drawn again:\n{screen}");
    tmux.send(&["C-c"]);
    ended_cleanly("2", "Ctrl-C");

    // SIGTERM from elsewhere: the same clean way out.
    tmux.type_line("clear");
    start("top -d 0.3", "3");
    let (ok, screen) = tmux.until(|s| s.contains("b-burner") && s.contains("phobos top - "));
    assert!(ok, "drawn a third time:\n{screen}");
    let shell = tmux.pane_pid();
    let mut top = 0;
    assert!(eventually(PATIENCE, || {
        top = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        top > 0
    }));
    // SAFETY: kill(2) on the pid of the phobos this test started.
    assert_eq!(unsafe { libc::kill(top, libc::SIGTERM) }, 0);
    ended_cleanly("3", "SIGTERM");
}
