//! `phobos exec ID -- CMD`: runs a command inside a running container, in
//! its namespaces (setns(2)) and cgroups, with its environment, working
//! directory and user unless overridden; shows its output here, forwards
//! signals to it, and exits with its exit code (128 + N for signal N).

use std::fs::File;
use std::os::fd::AsFd;

use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
use phobos_runtime::exec::{ExecRequest, ExecStdio};

use super::run::{FORWARDED, parse_env};
use super::{parse_id, unknown};
use crate::cli::{ExecArgs, Global};
use crate::context;
use crate::error::usage;
use crate::follow::Forward;

pub fn run(global: &Global, args: &ExecArgs) -> anyhow::Result<u8> {
    let id = parse_id(&args.id)?;
    if args.command.is_empty() {
        return Err(usage("no command given"));
    }
    let request = ExecRequest {
        argv: args.command.clone(),
        env: parse_env(&args.env)?,
        working_dir: args.workdir.clone(),
        user: args.user.clone(),
    };
    let door = context::door(global)?;
    // Block the forwarded signals first so none is lost; the helper resets
    // the mask for the command.
    let mut forwarded = SigSet::empty();
    for sig in FORWARDED {
        forwarded.add(sig);
    }
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&forwarded), None)?;
    let stdin = std::io::stdin().as_fd().try_clone_to_owned()?;
    let stdout = File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
    let stderr = File::from(std::io::stderr().as_fd().try_clone_to_owned()?);
    let process = door
        .exec(
            &id,
            &request,
            ExecStdio {
                stdin: &stdin,
                stdout: &stdout,
                stderr: &stderr,
            },
        )?
        .ok_or_else(|| unknown(&id))?;
    Forward::new(forwarded, &process.pidfd)?.until_exit()?;
    let status = process.finish();
    Ok(status.shell_exit_code().clamp(0, 255) as u8)
}
