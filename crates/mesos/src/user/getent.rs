//! The only part of user resolution that touches the system: reading
//! the database files, and running glibc's `getent` so that NSS modules
//! are loaded in its own dynamically linked process, never in ours.

use std::io::{self, Read};
use std::path::Path;
use std::process::{Command, Stdio};

/// Where glibc installs getent; tried before `PATH` so a root process does
/// not run whatever `getent` its environment happens to point at.
const GETENT_PATHS: [&str; 2] = ["/usr/bin/getent", "/bin/getent"];

/// getent prints one passwd line, or a name and at most NGROUPS_MAX
/// (65536) gids; 1 MiB holds either with room to spare, and anything past
/// it is not output we asked for.
const GETENT_OUTPUT_LIMIT: u64 = 1 << 20;

/// getent's exit status for "key not found in the database".
const GETENT_NOT_FOUND: i32 = 2;

/// The answer of one getent run.
#[derive(Debug)]
pub(super) enum Getent {
    /// Exit status 0, with what it printed.
    Found(String),
    /// Exit status 2: no source knows the key.
    NotFound,
    /// getent could not be run, was killed, or reported another error.
    Failed(io::Error),
}

/// What resolution reads from the system; a trait so the decisions above
/// can be tested on fixtures without root or a particular host.
pub(super) trait Host {
    /// A file's contents, or None when it does not exist. Invalid UTF-8
    /// (say, a Latin-1 gecos field) is replaced rather than refused.
    fn read(&self, path: &str) -> io::Result<Option<String>>;
    /// `getent <database> -- <key>`.
    fn getent(&self, database: &str, key: &str) -> Getent;
}

/// The real system.
pub(super) struct System;

impl Host for System {
    fn read(&self, path: &str) -> io::Result<Option<String>> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io::Error::new(
                error.kind(),
                format!("reading {path}: {error}"),
            )),
        }
    }

    fn getent(&self, database: &str, key: &str) -> Getent {
        run_getent(database, key)
    }
}

fn run_getent(database: &str, key: &str) -> Getent {
    let spawned = Command::new(getent_program())
        // `--` so a key can never be taken for an option.
        .args([database, "--", key])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => {
            return Getent::Failed(io::Error::new(
                error.kind(),
                format!("running getent: {error}"),
            ));
        }
    };
    let mut output = Vec::new();
    // The pipe is closed at the end of this statement, so a getent that
    // prints past the limit dies of SIGPIPE instead of blocking wait().
    let read = match child.stdout.take() {
        Some(stdout) => stdout.take(GETENT_OUTPUT_LIMIT).read_to_end(&mut output),
        None => Ok(0),
    };
    let status = match child.wait() {
        Ok(status) => status,
        Err(error) => return Getent::Failed(error),
    };
    if let Err(error) = read {
        return Getent::Failed(io::Error::new(
            error.kind(),
            format!("reading getent's output: {error}"),
        ));
    }
    if status.success() {
        Getent::Found(String::from_utf8_lossy(&output).into_owned())
    } else if status.code() == Some(GETENT_NOT_FOUND) {
        Getent::NotFound
    } else {
        Getent::Failed(io::Error::other(format!(
            "getent {database} {key} exited with {status}"
        )))
    }
}

fn getent_program() -> &'static str {
    GETENT_PATHS
        .into_iter()
        .find(|path| Path::new(path).is_file())
        .unwrap_or("getent")
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::entries::{first_passwd_entry, parse_initgroups};
    use super::super::fixtures::entry;

    #[test]
    fn system_host_reads_files_and_reports_missing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        std::fs::write(&path, b"x:y:1:2:\xe9t\xe9:/:/bin/sh\n").unwrap();
        let contents = System.read(path.to_str().unwrap()).unwrap().unwrap();
        assert_eq!(first_passwd_entry(&contents), Some(entry("x", 1, 2)));
        let missing = dir.path().join("missing");
        assert!(System.read(missing.to_str().unwrap()).unwrap().is_none());
    }

    #[test]
    fn real_getent_distinguishes_found_and_not_found() {
        if !GETENT_PATHS.iter().any(|p| Path::new(p).is_file()) {
            return;
        }
        assert!(
            matches!(run_getent("passwd", "0"), Getent::Found(out) if out.starts_with("root:"))
        );
        assert!(matches!(
            run_getent("passwd", "no-such-user-phobos"),
            Getent::NotFound
        ));
        let Getent::Found(groups) = run_getent("initgroups", "root") else {
            panic!("getent initgroups root failed");
        };
        assert!(parse_initgroups(&groups, "root").is_some(), "{groups:?}");
    }
}
