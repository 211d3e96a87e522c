//! Volumes of a container with its own root filesystem (Mesos `Volume`,
//! reference images §3.6–3.8), as `-v HOST:CONTAINER[:ro|:rw]` gives them.
//!
//! The source is a host path when absolute (`HOST_PATH`), or a path in the
//! container's own sandbox when relative (`SANDBOX_PATH` of type `SELF`,
//! Mesos's legacy `Volume.host_path` rule). The container path is absolute
//! (beneath the root filesystem) or relative (beneath the sandbox as the
//! container sees it, `sandbox_directory`). Neither may contain `..`:
//! Mesos does no normalisation there, Phobos refuses it.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where a volume's content comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VolumeSource<'a> {
    /// An absolute path on the host.
    HostPath(&'a Path),
    /// A relative path beneath the container's sandbox.
    SandboxPath(&'a Path),
}

/// One volume: `host_path` mounted at `container_path`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// Absolute: a host path; relative: a path beneath the sandbox.
    pub host_path: PathBuf,
    /// Absolute: beneath the root filesystem; relative: beneath the
    /// sandbox directory inside the container.
    pub container_path: PathBuf,
    /// Mount read-only (`Volume.mode = RO`).
    #[serde(default)]
    pub read_only: bool,
}

/// A `-v` value that is not a volume.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid volume '{text}': {reason}")]
pub struct InvalidVolume {
    pub text: String,
    pub reason: String,
}

impl Volume {
    /// Parses `HOST:CONTAINER[:ro|:rw]`. Paths are checked for shape only
    /// (not for existence: that is the launch's business).
    pub fn parse(text: &str) -> Result<Self, InvalidVolume> {
        let bad = |reason: &str| InvalidVolume {
            text: text.to_owned(),
            reason: reason.to_owned(),
        };
        let parts: Vec<&str> = text.split(':').collect();
        let (host, container, read_only) = match parts.as_slice() {
            [h, c] => (*h, *c, false),
            [h, c, "ro"] => (*h, *c, true),
            [h, c, "rw"] => (*h, *c, false),
            [_, _, _] => return Err(bad("the mode must be ro or rw")),
            _ => return Err(bad("expected HOST:CONTAINER[:ro|:rw]")),
        };
        let volume = Self {
            host_path: PathBuf::from(host),
            container_path: PathBuf::from(container),
            read_only,
        };
        volume.validate().map_err(|reason| bad(&reason))?;
        Ok(volume)
    }

    /// Checks both paths: non-empty, no `..`; a sandbox path must name
    /// something beneath the sandbox, not the sandbox itself.
    pub fn validate(&self) -> Result<(), String> {
        for (what, path) in [
            ("host", &self.host_path),
            ("container", &self.container_path),
        ] {
            if path.as_os_str().is_empty() {
                return Err(format!("the {what} path is empty"));
            }
            if path.components().any(|c| c == Component::ParentDir) {
                return Err(format!("the {what} path {} contains '..'", path.display()));
            }
        }
        if self.host_path.is_relative() && !has_normal_component(&self.host_path) {
            return Err(format!(
                "the sandbox path {} names no file beneath the sandbox",
                self.host_path.display()
            ));
        }
        if self.container_path.is_relative() && !has_normal_component(&self.container_path) {
            return Err(format!(
                "the container path {} names nothing beneath the sandbox",
                self.container_path.display()
            ));
        }
        Ok(())
    }

    pub fn source(&self) -> VolumeSource<'_> {
        if self.host_path.is_absolute() {
            VolumeSource::HostPath(&self.host_path)
        } else {
            VolumeSource::SandboxPath(&self.host_path)
        }
    }

    /// The absolute target inside the container: relative container paths
    /// live beneath `sandbox_directory` (Mesos §3.7).
    pub fn target(&self, sandbox_directory: &Path) -> PathBuf {
        if self.container_path.is_absolute() {
            self.container_path.clone()
        } else {
            sandbox_directory.join(&self.container_path)
        }
    }
}

fn has_normal_component(path: &Path) -> bool {
    path.components().any(|c| matches!(c, Component::Normal(_)))
}

/// Mesos's default `--sandbox_directory`: where a container with its own
/// root filesystem sees its sandbox.
pub const DEFAULT_SANDBOX_DIRECTORY: &str = "/mnt/mesos/sandbox";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_and_sandbox_volumes_with_modes() {
        let v = Volume::parse("/data:/srv:ro").unwrap();
        assert_eq!(v.source(), VolumeSource::HostPath(Path::new("/data")));
        assert!(v.read_only);
        assert_eq!(v.target(Path::new("/mnt/mesos/sandbox")), Path::new("/srv"));
        let v = Volume::parse("cache:/var/cache:rw").unwrap();
        assert_eq!(v.source(), VolumeSource::SandboxPath(Path::new("cache")));
        assert!(!v.read_only);
        let v = Volume::parse("/data:out").unwrap();
        assert_eq!(
            v.target(Path::new("/mnt/mesos/sandbox")),
            Path::new("/mnt/mesos/sandbox/out")
        );
    }

    #[test]
    fn refuses_bad_shapes_with_the_value_in_the_message() {
        for (text, why) in [
            ("/data", "expected HOST:CONTAINER"),
            ("/a:/b:rx", "ro or rw"),
            ("/a:/b:ro:x", "expected HOST:CONTAINER"),
            (":/b", "host path is empty"),
            ("/a:", "container path is empty"),
            ("/a/../etc:/b", "contains '..'"),
            ("/a:/b/../../etc", "contains '..'"),
            (".:/b", "names no file"),
            ("/a:.", "names nothing"),
        ] {
            let err = Volume::parse(text).unwrap_err();
            assert_eq!(err.text, text);
            assert!(err.to_string().contains(why), "{text}: {err}");
            assert!(err.to_string().contains(text), "{text}: {err}");
        }
    }
}
