//! An image's run-time configuration and how it merges with the command a
//! container is launched with (Mesos's `docker/runtime` isolator, reference
//! images §2), as a pure function.
//!
//! [`ImageConfig`] carries the fields of the OCI image configuration's
//! `config` object (and Docker's `container_config`) that matter at run
//! time, under their JSON names, so the image store can deserialize it
//! directly. The merge table is documented in docs/images.md.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::CommandSpec;

/// `config` of an OCI / Docker image configuration: what to run and how.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(
        rename = "Entrypoint",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// `KEY=VALUE` entries; entries without `=` are ignored, as Mesos does.
    #[serde(rename = "Env", default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(
        rename = "WorkingDir",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub working_dir: Option<String>,
    /// `user`, `uid`, `user:group`, `uid:gid` (and mixed), resolved in the
    /// image's own /etc/passwd and /etc/group.
    #[serde(rename = "User", default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// The command a launch asked for, in the form its face gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandRequest {
    /// No command at all: the image's ENTRYPOINT followed by its CMD.
    Image,
    /// A command line's argv (`phobos run --image REF -- ARGV…`), with
    /// Docker's semantics: it replaces CMD and follows ENTRYPOINT.
    Argv(Vec<String>),
    /// A Mesos `CommandInfo`, merged as Mesos's `docker/runtime` does.
    Mesos(CommandSpec),
}

/// What the merge decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergedCommand {
    pub command: CommandSpec,
    /// The image's environment, in its order; the container's own
    /// variables are layered on top by the caller (they win).
    pub env: Vec<(String, String)>,
    /// The request's, else the image's WORKDIR; `None` means the sandbox
    /// directory.
    pub working_dir: Option<PathBuf>,
    /// The request's user, else the image's USER; `None` means root.
    pub user: Option<String>,
}

/// Why an image and a request make no command.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MergeError {
    #[error("no command given and the image has neither ENTRYPOINT nor CMD")]
    NoExecutable,
    #[error("a shell command needs a value (CommandInfo.shell is true, value is empty)")]
    EmptyShellCommand,
}

/// Merges `image` with the request's command, working directory and user
/// (the request wins for the last two). See docs/images.md for the table.
pub fn merge(
    image: &ImageConfig,
    request: CommandRequest,
    working_dir: Option<PathBuf>,
    user: Option<String>,
) -> Result<MergedCommand, MergeError> {
    let entrypoint = non_empty(image.entrypoint.as_deref());
    let cmd = non_empty(image.cmd.as_deref());
    let argv: Vec<String> = match request {
        CommandRequest::Image => image_default(entrypoint, cmd)?,
        CommandRequest::Argv(args) if args.is_empty() => image_default(entrypoint, cmd)?,
        CommandRequest::Argv(args) => match entrypoint {
            Some(ep) => ep.iter().chain(&args).cloned().collect(),
            None => args,
        },
        CommandRequest::Mesos(spec) if spec.shell => {
            if spec.value.is_empty() {
                return Err(MergeError::EmptyShellCommand);
            }
            return Ok(finish(image, spec, working_dir, user));
        }
        CommandRequest::Mesos(spec) if !spec.value.is_empty() => {
            return Ok(finish(image, spec, working_dir, user));
        }
        CommandRequest::Mesos(spec) if spec.arguments.is_empty() => image_default(entrypoint, cmd)?,
        // Mesos keeps CMD's executable and replaces the rest of CMD.
        CommandRequest::Mesos(spec) => match (entrypoint, cmd) {
            (Some(ep), _) => ep.iter().chain(&spec.arguments).cloned().collect(),
            (None, Some(cmd)) => std::iter::once(&cmd[0])
                .chain(&spec.arguments)
                .cloned()
                .collect(),
            (None, None) => return Err(MergeError::NoExecutable),
        },
    };
    let command = CommandSpec::argv(argv).ok_or(MergeError::NoExecutable)?;
    Ok(finish(image, command, working_dir, user))
}

fn non_empty(list: Option<&[String]>) -> Option<&[String]> {
    list.filter(|l| !l.is_empty())
}

/// ENTRYPOINT + CMD, either alone, or nothing to run.
fn image_default(
    entrypoint: Option<&[String]>,
    cmd: Option<&[String]>,
) -> Result<Vec<String>, MergeError> {
    let argv: Vec<String> = entrypoint
        .unwrap_or_default()
        .iter()
        .chain(cmd.unwrap_or_default())
        .cloned()
        .collect();
    if argv.is_empty() {
        return Err(MergeError::NoExecutable);
    }
    Ok(argv)
}

fn finish(
    image: &ImageConfig,
    command: CommandSpec,
    working_dir: Option<PathBuf>,
    user: Option<String>,
) -> MergedCommand {
    let env = image
        .env
        .iter()
        .flatten()
        .filter_map(|entry| entry.split_once('='))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let image_dir = image
        .working_dir
        .as_deref()
        .filter(|d| !d.is_empty())
        .map(PathBuf::from);
    let image_user = image.user.clone().filter(|u| !u.is_empty());
    MergedCommand {
        command,
        env,
        working_dir: working_dir.or(image_dir),
        user: user.or(image_user),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn image(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> ImageConfig {
        ImageConfig {
            entrypoint: entrypoint.map(strings),
            cmd: cmd.map(strings),
            ..ImageConfig::default()
        }
    }

    fn argv(image: &ImageConfig, request: CommandRequest) -> Result<Vec<String>, MergeError> {
        merge(image, request, None, None).map(|m| m.command.exec_argv())
    }

    fn mesos(shell: bool, value: &str, arguments: &[&str]) -> CommandRequest {
        CommandRequest::Mesos(CommandSpec {
            shell,
            value: value.into(),
            arguments: strings(arguments),
        })
    }

    const EP: &[&str] = &["/entry", "-x"];
    const CMD: &[&str] = &["serve", "--port", "80"];

    #[test]
    fn no_command_runs_entrypoint_then_cmd() {
        assert_eq!(
            argv(&image(Some(EP), Some(CMD)), CommandRequest::Image).unwrap(),
            ["/entry", "-x", "serve", "--port", "80"]
        );
        assert_eq!(
            argv(&image(None, Some(CMD)), CommandRequest::Image).unwrap(),
            CMD
        );
        assert_eq!(
            argv(&image(Some(EP), None), CommandRequest::Argv(vec![])).unwrap(),
            EP
        );
        assert_eq!(
            argv(&image(None, None), CommandRequest::Image),
            Err(MergeError::NoExecutable)
        );
        // Empty lists count as absent, as in Docker.
        assert_eq!(
            argv(&image(Some(&[]), Some(&[])), CommandRequest::Image),
            Err(MergeError::NoExecutable)
        );
    }

    #[test]
    fn a_command_line_replaces_cmd_and_keeps_entrypoint() {
        let args = || CommandRequest::Argv(strings(&["echo", "hi"]));
        assert_eq!(
            argv(&image(Some(EP), Some(CMD)), args()).unwrap(),
            ["/entry", "-x", "echo", "hi"]
        );
        assert_eq!(
            argv(&image(None, Some(CMD)), args()).unwrap(),
            ["echo", "hi"]
        );
        assert_eq!(argv(&image(None, None), args()).unwrap(), ["echo", "hi"]);
    }

    #[test]
    fn mesos_command_infos_merge_as_the_docker_runtime_isolator_does() {
        let both = image(Some(EP), Some(CMD));
        let cmd_only = image(None, Some(CMD));
        let none = image(None, None);
        // shell=true with a value: /bin/sh -c, the image's fields ignored.
        assert_eq!(
            argv(&both, mesos(true, "echo $HOME", &[])).unwrap(),
            ["sh", "-c", "echo $HOME"]
        );
        assert_eq!(
            argv(&none, mesos(true, "", &[])),
            Err(MergeError::EmptyShellCommand)
        );
        // shell=false with a value: exactly that executable and argv.
        assert_eq!(
            argv(&both, mesos(false, "/bin/ls", &["ls", "-l"])).unwrap(),
            ["ls", "-l"]
        );
        // shell=false, no value, no arguments: ENTRYPOINT + CMD.
        assert_eq!(
            argv(&both, mesos(false, "", &[])).unwrap(),
            ["/entry", "-x", "serve", "--port", "80"]
        );
        assert_eq!(
            argv(&none, mesos(false, "", &[])),
            Err(MergeError::NoExecutable)
        );
        // shell=false, no value, arguments: after ENTRYPOINT (CMD
        // dropped), or after CMD's executable (the rest of CMD dropped).
        assert_eq!(
            argv(&both, mesos(false, "", &["a", "b"])).unwrap(),
            ["/entry", "-x", "a", "b"]
        );
        assert_eq!(
            argv(&cmd_only, mesos(false, "", &["a"])).unwrap(),
            ["serve", "a"]
        );
        assert_eq!(
            argv(&image(Some(EP), None), mesos(false, "", &["a"])).unwrap(),
            ["/entry", "-x", "a"]
        );
        assert_eq!(
            argv(&none, mesos(false, "", &["a"])),
            Err(MergeError::NoExecutable)
        );
    }

    #[test]
    fn env_workdir_and_user_come_from_the_image_unless_the_request_says() {
        let config = ImageConfig {
            cmd: Some(strings(&["true"])),
            env: Some(strings(&[
                "PATH=/usr/bin:/bin",
                "NOEQUALS",
                "A=1=2",
                "=x",
                "B=",
            ])),
            working_dir: Some("/app".into()),
            user: Some("www:staff".into()),
            ..ImageConfig::default()
        };
        let merged = merge(&config, CommandRequest::Image, None, None).unwrap();
        assert_eq!(
            merged.env,
            [
                ("PATH".to_string(), "/usr/bin:/bin".to_string()),
                ("A".to_string(), "1=2".to_string()),
                ("B".to_string(), String::new()),
            ]
        );
        assert_eq!(merged.working_dir, Some(PathBuf::from("/app")));
        assert_eq!(merged.user.as_deref(), Some("www:staff"));
        let merged = merge(
            &config,
            CommandRequest::Image,
            Some("/tmp".into()),
            Some("0".into()),
        )
        .unwrap();
        assert_eq!(merged.working_dir, Some(PathBuf::from("/tmp")));
        assert_eq!(merged.user.as_deref(), Some("0"));
        // Empty image fields are absent.
        let blank = ImageConfig {
            cmd: Some(strings(&["true"])),
            working_dir: Some(String::new()),
            user: Some(String::new()),
            ..ImageConfig::default()
        };
        let merged = merge(&blank, CommandRequest::Image, None, None).unwrap();
        assert_eq!((merged.working_dir, merged.user), (None, None));
    }

    #[test]
    fn reads_the_oci_config_object() {
        let json = r#"{"User":"1000","Env":["A=1"],"Entrypoint":["/e"],"Cmd":null,
            "WorkingDir":"/w","ExposedPorts":{"80/tcp":{}}}"#;
        let config: ImageConfig = serde_json::from_str(json).unwrap();
        assert_eq!(config.entrypoint, Some(strings(&["/e"])));
        assert_eq!(config.cmd, None);
        assert_eq!(config.user.as_deref(), Some("1000"));
        assert_eq!(config.working_dir.as_deref(), Some("/w"));
    }
}
