//! A tmux server of the test's own (its own socket, killed on drop), to
//! drive `phobos` on a real pseudo-terminal of a fixed size and read the
//! screen back.

use std::process::Command;

use super::{PATIENCE, eventually};

/// A tmux server of our own (its own socket), killed on drop.
pub struct Tmux {
    dir: tempfile::TempDir,
}

impl Tmux {
    pub fn start(width: u16, height: u16) -> Option<Self> {
        let tmux = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        let started = tmux
            .cmd()
            .args(["new-session", "-d", "-s", "top", "-x"])
            .arg(width.to_string())
            .arg("-y")
            .arg(height.to_string())
            .args(["sh"])
            .env("PS1", "PROMPT$ ")
            .status();
        match started {
            Ok(s) if s.success() => Some(tmux),
            Ok(s) => panic!("tmux new-session failed: {s}"),
            Err(e) => {
                println!("skipped: no tmux: {e}");
                None
            }
        }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(self.dir.path().join("sock"));
        c
    }

    pub fn send(&self, keys: &[&str]) {
        let ok = self
            .cmd()
            .args(["send-keys", "-t", "top"])
            .args(keys)
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Types `line` and Enter into the shell.
    pub fn type_line(&self, line: &str) {
        self.send(&["-l", line]);
        self.send(&["Enter"]);
    }

    pub fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", "top"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The pid of the pane's shell.
    pub fn pane_pid(&self) -> i32 {
        let out = self
            .cmd()
            .args(["display-message", "-p", "-t", "top", "#{pane_pid}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    pub fn alternate_on(&self) -> bool {
        let out = self
            .cmd()
            .args(["display-message", "-p", "-t", "top", "#{alternate_on}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }

    /// Waits until the screen satisfies `cond`; the last screen either way.
    pub fn until(&self, cond: impl Fn(&str) -> bool) -> (bool, String) {
        let mut last = String::new();
        let ok = eventually(PATIENCE, || {
            last = self.screen();
            cond(&last)
        });
        (ok, last)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}
