//! `phobos logs [-f] [--tail N] [--since DURATION] [--stdout|--stderr]
//! ID`: the sandbox's stdout and stderr, read across their rotated files
//! (`phobos_core::log_stream`).

use phobos_runtime::Logs;

use super::{parse_id, unknown};
use crate::cli::Global;
use crate::context;
use crate::error::usage;
use crate::follow::Follow;
use phobos_core::log_stream::Start;

/// What was asked for.
pub struct Options {
    pub follow: bool,
    pub tail: Option<u64>,
    pub since: Option<String>,
    pub stdout: bool,
    pub stderr: bool,
    pub into_sandbox: bool,
}

pub fn run(global: &Global, id: &str, opts: Options) -> anyhow::Result<u8> {
    let id = parse_id(id)?;
    let since = opts
        .since
        .as_deref()
        .map(|text| {
            let age = phobos_config::parse_duration(text)
                .map_err(|e| usage(format!("invalid --since {text:?}: {e}")))?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            Ok::<_, anyhow::Error>(now.saturating_sub(age).as_secs() as i64)
        })
        .transpose()?;
    let start = match (opts.tail, since) {
        (Some(_), Some(_)) => return Err(usage("--tail and --since cannot be used together")),
        (Some(n), None) => Start::Tail(n),
        (None, Some(cutoff)) => Start::Since(cutoff),
        (None, None) => Start::Oldest,
    };
    let shown = match (opts.stdout, opts.stderr) {
        (true, false) => [Some(start), None],
        (false, true) => [None, Some(start)],
        _ => [Some(start); 2],
    };
    let logs = context::door(global)?
        .logs(&id, opts.follow, opts.into_sandbox)?
        .ok_or_else(|| unknown(&id))?;
    let broke = match logs {
        Logs::Files { sandbox, until } => {
            let mut follow = Follow::new(&sandbox, shown)?;
            follow.run(until.as_ref(), None)?;
            follow.pipe_broke()
        }
        // The engine's stream ends early when our reader goes away.
        Logs::Streamed => crate::output::reader_gone(),
    };
    if broke {
        crate::output::die_of_sigpipe();
    }
    Ok(0)
}
